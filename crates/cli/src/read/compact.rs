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

use leadscore_core::compact::{CompactEvent, Kind, Message, ReadError, read_message};
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

/// What reading one line gives.
enum Line<'a> {
    Blank,
    /// A message `[events] ignore` drops.
    Ignored,
    Message(Box<Read<'a>>),
}

struct Read<'a> {
    user: Option<Cow<'a, str>>,
    anonymous: Option<Cow<'a, str>>,
    /// `(anonymous id, user id, at)` when the message links them (`identify` with both, `alias`).
    link: Option<(String, String, i64)>,
    /// `(group id, at, traits)` of a `group` message.
    group: Option<(String, i64, Map<String, serde_json::Value>)>,
    event: CompactEvent,
}

fn read_line<'a>(path: &Path, line_no: u64, line: &'a [u8], model: &CheckedModel) -> Result<Line<'a>, InputError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Line::Blank);
    }
    let mut message: Message<'a> = read_message(&model.plan, line).map_err(|e| match e {
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
    if model.plan.ignores(&message) {
        return Ok(Line::Ignored);
    }
    let kind = Kind::of(&message.kind);
    let user = message.user_id.take();
    let anonymous = message.anonymous_id.take();
    let link = match (kind, &user) {
        (Kind::Alias, Some(_)) => message.previous_id.as_deref(),
        (Kind::Identify, Some(_)) => anonymous.as_deref(),
        _ => None,
    }
    .filter(|a| !a.is_empty() && Some(*a) != user.as_deref())
    .zip(user.as_deref())
    .map(|(a, u)| (a.to_owned(), u.to_owned(), message.at));
    let group = match (kind, message.group_id.as_deref()) {
        (Kind::Group, Some(g)) => Some((g.to_owned(), message.at, message.traits.clone().unwrap_or_default())),
        _ => None,
    };
    let event = model.compact(message);
    Ok(Line::Message(Box::new(Read { user, anonymous, link, group, event })))
}

/// Lead shards: events are filed by lead in parallel, one shard per task.
const SHARDS: usize = 64;

fn shard_of(lead: &str) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(7).hash_one(lead) % SHARDS as u64) as usize
}

/// Events to file under their leads: `(lead id, event)`.
type Filed<'a> = Vec<(Cow<'a, str>, CompactEvent)>;

/// What one slice of a chunk's lines gives, grouped for filing.
#[derive(Default)]
struct Slice<'a> {
    messages: u64,
    errors: Vec<InputError>,
    /// Per shard: `(lead id, event)`.
    by_shard: Vec<Filed<'a>>,
    /// Anonymous events: `(anonymous id, event)`.
    held: Vec<(String, CompactEvent)>,
    links: Vec<(String, String, i64)>,
    groups: Vec<(String, i64, Map<String, serde_json::Value>)>,
}

fn read_slice<'a>(path: &Path, buffer: &'a [u8], lines: &[(u64, usize, usize)], model: &CheckedModel) -> Slice<'a> {
    let mut slice = Slice { by_shard: (0..SHARDS).map(|_| Vec::new()).collect(), ..Slice::default() };
    for &(n, s, e) in lines {
        match read_line(path, n, &buffer[s..e], model) {
            Ok(Line::Blank) => {}
            Ok(Line::Ignored) => slice.messages += 1,
            Ok(Line::Message(read)) => {
                slice.messages += 1;
                let Read { user, anonymous, link, group, event } = *read;
                slice.links.extend(link);
                slice.groups.extend(group);
                match (user, anonymous) {
                    (Some(user), _) => slice.by_shard[shard_of(&user)].push((user, event)),
                    (None, Some(anonymous)) => slice.held.push((anonymous.into_owned(), event)),
                    (None, None) => {}
                }
            }
            Err(error) => slice.errors.push(error),
        }
    }
    slice
}

/// Reads the events of `path` for `model`.
pub fn read_compact(path: &Path, model: &CheckedModel, skipped: &mut Skipped) -> Result<CompactSource, InputError> {
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
    let mut identities = IdentityGraph::default();
    let mut accounts = AccountBook::default();
    let mut shards: Vec<Leads> = (0..SHARDS).map(|_| Leads::default()).collect();
    let mut held: Vec<(String, CompactEvent)> = Vec::new();
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
            chunk.lines.par_chunks(2048).map(|lines| read_slice(path, &chunk.bytes, lines, model)).collect();
        for slice in &mut slices {
            messages += slice.messages;
            for error in slice.errors.drain(..) {
                skipped.handle(error)?;
            }
            for (anonymous, user, at) in slice.links.drain(..) {
                identities.link(&anonymous, &user, at);
            }
            for (group_id, at, traits) in slice.groups.drain(..) {
                accounts.record(&group_id, at, traits);
            }
            held.append(&mut slice.held);
        }
        // File each shard's events in parallel.
        let mut per_shard: Vec<Vec<Filed<'_>>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for slice in &mut slices {
            for (j, events) in slice.by_shard.iter_mut().enumerate() {
                per_shard[j].push(std::mem::take(events));
            }
        }
        shards.par_iter_mut().zip(per_shard).for_each(|(shard, lists)| {
            for (lead, event) in lists.into_iter().flatten() {
                match shard.get_mut(lead.as_ref()) {
                    Some(events) => events.push(event),
                    None => {
                        shard.insert(lead.into_owned(), vec![event]);
                    }
                }
            }
        });
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
    let mut leads = Leads::with_capacity_and_hasher(shards.iter().map(Leads::len).sum(), Default::default());
    for shard in shards {
        leads.extend(shard);
    }
    let mut unattributed = 0u64;
    for (anonymous, mut event) in held {
        match identities.link_of(&anonymous) {
            Some((linked_at, lead)) => {
                event.visible_at = event.at.max(linked_at);
                leads.entry(lead.to_owned()).or_default().push(event);
            }
            None => unattributed += 1,
        }
    }
    Ok(CompactSource { accounts, messages, unattributed, leads })
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
