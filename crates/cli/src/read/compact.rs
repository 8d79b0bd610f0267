//! Events JSON Lines (or Parquet) read once, through the model, into compact events.
//!
//! The file is read in batches of lines; each batch is read in parallel on every core: each
//! message is parsed once (`core::compact::read_message`, which keeps only what the engine and
//! the model's conditions read), `[events] ignore` is applied, and the rules that depend only on
//! the message are decided there (`CheckedModel::compact`). Then, in order, identity links and
//! account traits are recorded and each compact event is filed under its lead; anonymous
//! messages wait until every link is known, then go to the lead their anonymous id was linked to
//! (visible from the link's time), or are counted as never linked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use leadscore_core::compact::{CompactEvent, Kind, Message, Plan, ReadError, read_message};
use leadscore_core::{AccountBook, CheckedModel, IdentityGraph};
use rayon::prelude::*;
use serde_json::Map;

use super::events::{BATCH_BYTES, Input, event_error, json_error};
use super::{InputError, Skipped};
use crate::progress;

/// Every lead's compact events, read from one events file.
pub struct CompactSource {
    pub accounts: AccountBook,
    /// Messages read (valid lines, ignored ones included).
    pub messages: u64,
    /// Anonymous messages whose anonymous id was never linked to a lead.
    pub unattributed: u64,
    /// Compact events by lead id (not in time order).
    pub leads: Leads,
}

/// Compact events by lead id.
pub type Leads = HashMap<String, Vec<CompactEvent>, foldhash::fast::RandomState>;

/// One message as read, before it is filed for each model.
struct Line<'a> {
    user: Option<Cow<'a, str>>,
    anonymous: Option<Cow<'a, str>>,
    message: Message<'a>,
}

/// Reads and checks one line; `None` for a blank line.
fn read_line<'a>(path: &Path, line_no: u64, line: &'a [u8], plan: &Plan) -> Result<Option<Line<'a>>, InputError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut message: Message<'a> = read_message(plan, line).map_err(|e| match e {
        ReadError::Json(e) => json_error(path, line_no, &e),
        ReadError::Event(e) => event_error(path, line_no, e),
    })?;
    if message.user_id.is_none() && message.anonymous_id.is_none() {
        return Err(InputError::new(
            path,
            Some(line_no),
            Some("userId"),
            "the message has neither `userId` nor `anonymousId`",
        ));
    }
    let user = message.user_id.take();
    let anonymous = message.anonymous_id.take();
    Ok(Some(Line { user, anonymous, message }))
}

/// Lead shards: events are filed by lead in parallel, one shard per task.
const SHARDS: usize = 64;

fn shard_of(lead: &str) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(7).hash_one(lead) % SHARDS as u64) as usize
}

/// Events to file under their leads: `(lead id, event)`.
type Filed<'a> = Vec<(Cow<'a, str>, CompactEvent)>;

/// What one slice of a chunk's lines gives one model, grouped for filing.
#[derive(Default)]
struct Part<'a> {
    /// Per shard: `(lead id, event)`.
    by_shard: Vec<Filed<'a>>,
    /// Anonymous events: `(anonymous id, event)`.
    held: Vec<(String, CompactEvent)>,
    /// `(anonymous id, user id, at)` of messages that link them (`identify` with both, `alias`).
    links: Vec<(String, String, i64)>,
    /// `(group id, at, traits)` of `group` messages.
    groups: Vec<(String, i64, Map<String, serde_json::Value>)>,
}

/// What one slice of a chunk's lines gives.
struct Slice<'a> {
    messages: u64,
    errors: Vec<InputError>,
    parts: Vec<Part<'a>>,
}

fn read_slice<'a>(path: &Path, buffer: &'a [u8], lines: &[(u64, usize, usize)], models: &[&CheckedModel]) -> Slice<'a> {
    let mut slice = Slice {
        messages: 0,
        errors: Vec::new(),
        parts: models
            .iter()
            .map(|_| Part { by_shard: (0..SHARDS).map(|_| Vec::new()).collect(), ..Part::default() })
            .collect(),
    };
    let Some(first) = models.first() else { return slice };
    for &(n, s, e) in lines {
        let line = match read_line(path, n, &buffer[s..e], &first.plan) {
            Ok(Some(line)) => line,
            Ok(None) => continue,
            Err(error) => {
                slice.errors.push(error);
                continue;
            }
        };
        slice.messages += 1;
        let message = &line.message;
        let kind = Kind::of(&message.kind);
        for (model, part) in models.iter().zip(&mut slice.parts) {
            if model.plan.ignores(message) {
                continue;
            }
            let user = line.user.as_deref();
            let link = match (kind, user) {
                (Kind::Alias, Some(_)) => message.previous_id.as_deref(),
                (Kind::Identify, Some(_)) => line.anonymous.as_deref(),
                _ => None,
            }
            .filter(|a| !a.is_empty() && Some(*a) != user)
            .zip(user);
            if let Some((anonymous, user)) = link {
                part.links.push((anonymous.to_owned(), user.to_owned(), message.at));
            }
            if let (Kind::Group, Some(group)) = (kind, message.group_id.as_deref()) {
                part.groups.push((group.to_owned(), message.at, message.traits.clone().unwrap_or_default()));
            }
            let event = model.compact(message);
            match (&line.user, &line.anonymous) {
                (Some(user), _) => part.by_shard[shard_of(user)].push((user.clone(), event)),
                (None, Some(anonymous)) => part.held.push((anonymous.to_string(), event)),
                (None, None) => {}
            }
        }
    }
    slice
}

/// Reads the events of `path` once for several models whose plans share their slot paths
/// (`core::compact::share_plans`): one source per model, in order.
pub fn read_compact_many(
    path: &Path,
    models: &[&CheckedModel],
    skipped: &mut Skipped,
) -> Result<Vec<CompactSource>, InputError> {
    let io_error = |e: std::io::Error| InputError::new(path, None, None, format!("cannot read: {e}"));
    let file = std::fs::File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    let parquet = super::parquet::is_parquet(path);
    let mut input = if parquet {
        let rows = super::parquet::open(path)?;
        let bar = progress::bar(rows.total, "reading", false);
        Some(Input::Parquet(rows, bar))
    } else {
        None
    };
    let mut states: Vec<State> = models.iter().map(|_| State::new()).collect();
    let mut messages = 0u64;
    // JSON Lines: a reader thread fills the next chunk while this one is read; buffers go back
    // to it to be filled again (fresh 8 MB buffers would cost a page fault per 4 KB).
    let (sender, chunks) = std::sync::mpsc::sync_channel::<Result<Chunk, std::io::Error>>(1);
    let (recycle, spare) = std::sync::mpsc::channel::<Chunk>();
    let bar = progress::bar(size, "reading", true);
    let reader = (!parquet).then(|| {
        let bar = bar.clone();
        std::thread::spawn(move || read_chunks(file, &sender, &spare, &bar))
    });
    let mut line_no = 0u64;
    loop {
        let chunk = match &mut input {
            Some(input) => {
                let mut chunk = Chunk::default();
                for error in input.fill(&mut chunk.bytes, &mut chunk.lines, &mut line_no, path)? {
                    skipped.handle(error)?;
                }
                if chunk.lines.is_empty() {
                    break;
                }
                chunk
            }
            None => match chunks.recv() {
                Ok(chunk) => chunk.map_err(io_error)?,
                Err(_) => break,
            },
        };
        let mut slices: Vec<Slice<'_>> =
            chunk.lines.par_chunks(2048).map(|lines| read_slice(path, &chunk.bytes, lines, models)).collect();
        for slice in &mut slices {
            messages += slice.messages;
            for error in slice.errors.drain(..) {
                skipped.handle(error)?;
            }
        }
        for (m, state) in states.iter_mut().enumerate() {
            let parts = slices.iter_mut().filter_map(|s| s.parts.get_mut(m));
            state.file(parts);
        }
        drop(slices);
        let _ = recycle.send(chunk);
    }
    if let Some(input) = &input {
        input.finish();
    }
    bar.finish_and_clear();
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    Ok(states.into_iter().map(|state| state.finish(messages)).collect())
}

/// One model's events as they are filed.
struct State {
    identities: IdentityGraph,
    accounts: AccountBook,
    shards: Vec<Leads>,
    held: Vec<(String, CompactEvent)>,
}

impl State {
    fn new() -> State {
        State {
            identities: IdentityGraph::default(),
            accounts: AccountBook::default(),
            shards: (0..SHARDS).map(|_| Leads::default()).collect(),
            held: Vec::new(),
        }
    }

    /// Records the links and accounts of a chunk's parts (in line order), then files their
    /// events, each shard in parallel.
    fn file<'a, 'p: 'a>(&mut self, parts: impl Iterator<Item = &'a mut Part<'p>>) {
        let mut per_shard: Vec<Vec<Filed<'p>>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for part in parts {
            for (anonymous, user, at) in part.links.drain(..) {
                self.identities.link(&anonymous, &user, at);
            }
            for (group_id, at, traits) in part.groups.drain(..) {
                self.accounts.record(&group_id, at, traits);
            }
            self.held.append(&mut part.held);
            for (j, events) in part.by_shard.iter_mut().enumerate() {
                per_shard[j].push(std::mem::take(events));
            }
        }
        self.shards.par_iter_mut().zip(per_shard).for_each(|(shard, lists)| {
            for (lead, event) in lists.into_iter().flatten() {
                match shard.get_mut(lead.as_ref()) {
                    Some(events) => events.push(event),
                    None => {
                        shard.insert(lead.into_owned(), vec![event]);
                    }
                }
            }
        });
    }

    /// Attributes the anonymous events now that every link is known.
    fn finish(self, messages: u64) -> CompactSource {
        let mut leads = Leads::with_capacity_and_hasher(self.shards.iter().map(Leads::len).sum(), Default::default());
        for shard in self.shards {
            leads.extend(shard);
        }
        let mut unattributed = 0u64;
        for (anonymous, mut event) in self.held {
            match self.identities.link_of(&anonymous) {
                Some((linked_at, lead)) => {
                    event.visible_at = event.at.max(linked_at);
                    leads.entry(lead.to_owned()).or_default().push(event);
                }
                None => unattributed += 1,
            }
        }
        CompactSource { accounts: self.accounts, messages, unattributed, leads }
    }
}

/// A run of whole lines: the bytes and each line's `(number, start, end)`.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    lines: Vec<(u64, usize, usize)>,
}

/// Reads `file` in chunks of whole lines (about `BATCH_BYTES` each) and sends them.
fn read_chunks(
    mut file: std::fs::File,
    sender: &std::sync::mpsc::SyncSender<Result<Chunk, std::io::Error>>,
    spare: &std::sync::mpsc::Receiver<Chunk>,
    bar: &indicatif::ProgressBar,
) {
    use std::io::Read as _;
    let mut carry: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    loop {
        let Chunk { mut bytes, mut lines } = spare.try_recv().unwrap_or_default();
        bytes.clear();
        lines.clear();
        bytes.extend_from_slice(&carry);
        carry.clear();
        let start = bytes.len();
        bytes.resize(start + BATCH_BYTES, 0);
        let mut filled = start;
        let mut eof = false;
        while filled < bytes.len() {
            match file.read(&mut bytes[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = sender.send(Err(e));
                    return;
                }
            }
        }
        bar.inc((filled - start) as u64);
        bytes.truncate(filled);
        // Keep the unfinished last line for the next chunk.
        let end = if eof { bytes.len() } else { memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1) };
        carry.extend_from_slice(&bytes[end..]);
        bytes.truncate(end);
        let mut from = 0;
        while from < bytes.len() {
            let to = memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |i| from + i + 1);
            line_no += 1;
            lines.push((line_no, from, to));
            from = to;
        }
        if !lines.is_empty() && sender.send(Ok(Chunk { bytes, lines })).is_err() {
            return;
        }
        if eof && carry.is_empty() {
            return;
        }
    }
}
