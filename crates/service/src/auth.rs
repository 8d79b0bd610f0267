//! Keys and what they may do (SPEC §6.2). Three roles: `write` keys send events to the tracking
//! API only; `read` keys (sales) list and read leads and accounts and record outcomes; `admin` keys
//! do everything, including models, activation, deletes and webhooks. Keys given the way they
//! always were (`--api-key`, `LEADSCORE_API_KEYS`, `[auth] api_keys`) are `admin`.
//!
//! A presented key is compared with every configured key in constant time (SHA-256 digests
//! compared with `subtle`), so response times say nothing about how much of a key was right.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The tracking API only.
    Write,
    /// Leads, accounts, outcomes and the dashboard without admin actions.
    Read,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Write => "write",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "write" => Some(Role::Write),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether a key with this role may use an endpoint that needs `needed` (`read` or `admin`;
    /// write keys are checked by the tracking API itself).
    pub fn allows(self, needed: Role) -> bool {
        match needed {
            Role::Write => self == Role::Write,
            Role::Read => matches!(self, Role::Read | Role::Admin),
            Role::Admin => self == Role::Admin,
        }
    }
}

/// The configured keys, kept as digests.
#[derive(Clone, Default)]
pub struct Keys {
    keys: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("count", &self.keys.len()).finish_non_exhaustive()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Keys {
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, Role)>) -> Keys {
        Keys { keys: keys.into_iter().map(|(key, role)| (digest(key), role)).collect() }
    }

    /// The role of `key`, if it is one of ours. Every configured key is compared, in constant time.
    pub fn role_of(&self, key: &str) -> Option<Role> {
        let presented = digest(key);
        let mut found = None;
        for (known, role) in &self.keys {
            if bool::from(known.ct_eq(&presented)) {
                found = Some(*role);
            }
        }
        found
    }

    /// Whether `key` is a configured key with exactly this role.
    pub fn has(&self, key: &str, role: Role) -> bool {
        self.role_of(key) == Some(role)
    }

    /// Whether a key with this fingerprint (see [`fingerprint`]) is still configured with `role`:
    /// a dashboard session ends when its key is removed from the configuration.
    pub fn has_fingerprint(&self, print: &str, role: Role) -> bool {
        let mut found = false;
        for (known, known_role) in &self.keys {
            let candidate = hex::encode(&known[..16]);
            if bool::from(candidate.as_bytes().ct_eq(print.as_bytes())) && *known_role == role {
                found = true;
            }
        }
        found
    }
}

/// A key's fingerprint: the first half of its SHA-256 digest in hex. Sessions store it instead of
/// the key.
pub fn fingerprint(key: &str) -> String {
    hex::encode(&digest(key)[..16])
}

/// Compares two secrets (CSRF tokens) in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    bool::from(digest(a).ct_eq(&digest(b)))
}

/// `n` bytes from the operating system's CSPRNG, as hex.
pub fn random_token(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// A stored session is looked up by this digest of its token, so a copy of the database holds no
/// usable session.
pub fn token_digest(token: &str) -> String {
    hex::encode(digest(token))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn keys_have_roles_and_roles_have_rights() {
        let keys = Keys::new([("w", Role::Write), ("r", Role::Read), ("a", Role::Admin)]);
        assert_eq!(keys.role_of("r"), Some(Role::Read));
        assert_eq!(keys.role_of("a"), Some(Role::Admin));
        assert_eq!(keys.role_of("x"), None);
        assert_eq!(keys.role_of(""), None);
        assert!(Role::Admin.allows(Role::Read) && Role::Admin.allows(Role::Admin));
        assert!(Role::Read.allows(Role::Read) && !Role::Read.allows(Role::Admin));
        assert!(!Role::Write.allows(Role::Read));
        assert!(keys.has_fingerprint(&fingerprint("r"), Role::Read));
        assert!(!keys.has_fingerprint(&fingerprint("r"), Role::Admin));
        assert!(!keys.has_fingerprint(&fingerprint("gone"), Role::Read));
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let a = random_token(32).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token(32).unwrap());
        assert_ne!(token_digest(&a), a);
        assert!(same_secret(&a, &a.clone()) && !same_secret(&a, "x"));
    }
}
