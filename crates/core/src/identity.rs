//! Which lead a message belongs to. A message with a `userId` belongs to that lead. An anonymous
//! message (only `anonymousId`) belongs to the lead its anonymous id was linked to by an
//! `identify` carrying both ids or an `alias` (`previousId` -> `userId`), from the link's time on
//! (earlier visits count once the link exists; before it, they belong to nobody).
//!
//! If one anonymous id is linked to several users (a shared computer), the earliest link wins.

use std::collections::HashMap;

use crate::engine::Event;
use crate::time::Millis;

/// Whether a link `(at, user id)` for an anonymous id replaces the one it has: the earlier link
/// wins, and of two at the same time the smaller user id, whatever order they come in.
pub fn replaces(existing: (Millis, &str), candidate: (Millis, &str)) -> bool {
    candidate < existing
}

/// Links from anonymous ids to lead ids, with the time each link was made.
#[derive(Debug, Clone, Default)]
pub struct IdentityGraph {
    links: HashMap<String, (Millis, String)>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub lead_id: String,
    /// When the message became the lead's (`visible_at` of the event).
    pub from: Millis,
}

impl IdentityGraph {
    /// Learns the link a message makes, if it makes one (`identify` with both ids, or `alias`).
    pub fn observe(&mut self, event: &Event) {
        let Some(user) = event.user_id() else { return };
        let anonymous = match event.kind() {
            "alias" => event.body.get("previousId").and_then(|v| v.as_str()),
            "identify" => event.anonymous_id(),
            _ => None,
        };
        if let Some(anonymous) = anonymous.filter(|a| !a.is_empty() && *a != user) {
            self.link(anonymous, user, event.at);
        }
    }

    /// Links `anonymous_id` to `user_id` from `at`; an earlier link for the same anonymous id is
    /// kept (ties broken by the smaller user id, so the result does not depend on input order).
    pub fn link(&mut self, anonymous_id: &str, user_id: &str, at: Millis) {
        match self.links.get_mut(anonymous_id) {
            Some(existing) => {
                if replaces((existing.0, &existing.1), (at, user_id)) {
                    *existing = (at, user_id.to_owned());
                }
            }
            None => {
                self.links.insert(anonymous_id.to_owned(), (at, user_id.to_owned()));
            }
        }
    }

    /// The lead a message belongs to, or `None` for an anonymous message never linked.
    pub fn attribute(&self, event: &Event) -> Option<Attribution> {
        if let Some(user) = event.user_id() {
            return Some(Attribution { lead_id: user.to_owned(), from: event.at });
        }
        let anonymous = event.anonymous_id()?;
        let (linked_at, user) = self.links.get(anonymous)?;
        Some(Attribution { lead_id: user.clone(), from: event.at.max(*linked_at) })
    }

    /// The lead an anonymous id is linked to.
    pub fn lead_of(&self, anonymous_id: &str) -> Option<&str> {
        self.links.get(anonymous_id).map(|(_, user)| user.as_str())
    }

    /// The winning link of an anonymous id: from when, and to which lead.
    pub fn link_of(&self, anonymous_id: &str) -> Option<(Millis, &str)> {
        self.links.get(anonymous_id).map(|(at, user)| (*at, user.as_str()))
    }

    /// The anonymous ids whose winning link names `lead_id`.
    pub fn anonymous_ids_of<'a>(&'a self, lead_id: &'a str) -> impl Iterator<Item = &'a str> {
        self.links.iter().filter(move |(_, (_, user))| user == lead_id).map(|(anon, _)| anon.as_str())
    }
}
