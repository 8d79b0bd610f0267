//! Events JSON Lines, streamed with bounded memory.
//!
//! Pass 1 reads the file once, in batches parsed in parallel. Each line is validated (JSON, `type`,
//! time fields) and its raw text is appended to one of N partition files on disk, chosen by a hash
//! of its `userId`; messages with only an `anonymousId` go to a holding file. `identify`, `alias`
//! and `group` messages are fully parsed on the way to build the identity graph and the account
//! book. After the pass, held anonymous messages are routed to the partition of the lead their
//! anonymous id was linked to (or dropped, if never linked). Pass 2 (`load`) parses one partition at
//! a time, so memory holds one partition's events, not the whole file.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use leadscore_core::engine::{EventError, is_ignored};
use leadscore_core::model::{Projection, parse_projected};
use leadscore_core::{AccountBook, CheckedModel, Event, IdentityGraph};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{InputError, Skipped};
use crate::progress;

/// Bytes of input per partition: a partition's parsed events must fit in memory comfortably.
pub const PARTITION_BYTES: u64 = 96 << 20;
/// Bytes of input parsed per parallel batch in pass 1.
pub(crate) const BATCH_BYTES: usize = 8 << 20;

/// The events of a file, split into partitions on disk by lead.
pub struct EventSource {
    pub identities: IdentityGraph,
    pub accounts: AccountBook,
    /// Messages read (valid lines).
    pub messages: u64,
    /// Anonymous messages whose anonymous id was never linked to a lead.
    pub unattributed: u64,
    file: PathBuf,
    parts: Vec<PathBuf>,
    /// What pass 2 keeps of each message: what the model can read (everything without a model).
    projection: Projection,
    /// The model, for `[events] ignore`: ignored messages are dropped as they are loaded, so a
    /// user id seen only in ignored messages (a bot) is no lead.
    model: Option<CheckedModel>,
    _dir: tempfile::TempDir,
}

/// The fields of a message pass 1 needs; the rest is skipped (but still checked to be JSON).
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<Value>,
    #[serde(rename = "userId")]
    user_id: Option<Value>,
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<Value>,
    #[serde(rename = "messageId")]
    message_id: Option<Value>,
    timestamp: Option<Value>,
    #[serde(rename = "originalTimestamp")]
    original_timestamp: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(rename = "receivedAt")]
    received_at: Option<Value>,
}

enum Line {
    Blank,
    Message { user: Option<String>, anonymous: Option<String>, identity: Option<Event> },
}

/// The partition a lead's events go to.
pub fn partition_of(lead_id: &str, partitions: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    lead_id.hash(&mut hasher);
    (hasher.finish() % partitions.max(1) as u64) as usize
}

/// How many partitions a file of `bytes` needs.
pub fn partitions_for(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(PARTITION_BYTES)).unwrap_or(1).max(1)
}

fn id_text(value: &Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn event_error(path: &Path, line: u64, error: EventError) -> InputError {
    let field = match &error {
        EventError::NotAnObject => None,
        EventError::MissingType | EventError::TypeNotString => Some("type"),
        EventError::BadTimestamp { field, .. } | EventError::TimeOutOfRange { field, .. } => Some(*field),
        EventError::NoTime => Some("timestamp"),
        EventError::NotAString(field) => Some(*field),
    };
    InputError::new(path, Some(line), field, error.to_string())
}

pub(crate) fn json_error(path: &Path, line: u64, error: &serde_json::Error) -> InputError {
    let message = match error.classify() {
        serde_json::error::Category::Data => "not a JSON object".to_owned(),
        _ => format!("invalid JSON at column {}: {}", error.column(), strip_position(&error.to_string())),
    };
    InputError::new(path, Some(line), None, message)
}

fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// Validates one line and extracts what pass 1 needs.
fn classify(path: &Path, line_no: u64, line: &[u8], model: Option<&CheckedModel>) -> Result<Line, InputError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Line::Blank);
    }
    let head: Head = serde_json::from_slice(line).map_err(|e| json_error(path, line_no, &e))?;
    let kind = match &head.kind {
        Some(Value::String(s)) => s.as_str(),
        None | Some(Value::Null) => return Err(event_error(path, line_no, EventError::MissingType)),
        Some(_) => return Err(event_error(path, line_no, EventError::TypeNotString)),
    };
    let user = id_text(&head.user_id);
    let anonymous = id_text(&head.anonymous_id);
    if user.is_none() && anonymous.is_none() {
        return Err(InputError::new(
            path,
            Some(line_no),
            Some("userId"),
            "the message has neither `userId` nor `anonymousId`",
        ));
    }
    let identity = if matches!(kind, "identify" | "alias" | "group") {
        let full: Value = serde_json::from_slice(line).map_err(|e| json_error(path, line_no, &e))?;
        let event = Event::from_message(full).map_err(|e| event_error(path, line_no, e))?;
        (!model.is_some_and(|m| is_ignored(m, &event))).then_some(event)
    } else {
        // Validate the time fields exactly as the engine will read them.
        let mut mini = serde_json::Map::new();
        for (key, value) in [
            ("type", head.kind),
            ("messageId", head.message_id),
            ("timestamp", head.timestamp),
            ("originalTimestamp", head.original_timestamp),
            ("sentAt", head.sent_at),
            ("receivedAt", head.received_at),
        ] {
            if let Some(value) = value {
                mini.insert(key.to_owned(), value);
            }
        }
        Event::from_message(Value::Object(mini)).map_err(|e| event_error(path, line_no, e))?;
        None
    };
    Ok(Line::Message { user, anonymous, identity })
}

fn create(dir: &Path, name: &str, path: &Path) -> Result<(PathBuf, BufWriter<File>), InputError> {
    let file_path = dir.join(name);
    let file = File::create(&file_path).map_err(|e| {
        InputError::new(path, None, None, format!("cannot create a temporary file in `{}`: {e}", dir.display()))
    })?;
    Ok((file_path, BufWriter::with_capacity(1 << 20, file)))
}

fn write_line(writer: &mut BufWriter<File>, line_no: u64, line: &[u8], path: &Path) -> Result<(), InputError> {
    let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    writer
        .write_all(format!("{line_no}\t").as_bytes())
        .and_then(|()| writer.write_all(trimmed))
        .and_then(|()| writer.write_all(b"\n"))
        .map_err(|e| InputError::new(path, Some(line_no), None, format!("cannot write a temporary file: {e}")))
}

/// Pass 1: validate every line and split the file into `partitions` files by lead.
pub fn partition_events(
    path: &Path,
    model: Option<&CheckedModel>,
    partitions: usize,
    skipped: &mut Skipped,
) -> Result<EventSource, InputError> {
    let io_error = |e: std::io::Error| InputError::new(path, None, None, format!("cannot read: {e}"));
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    let dir = tempfile::Builder::new().prefix("leadscore-events").tempdir().map_err(io_error)?;
    let mut parts = Vec::new();
    let mut writers = Vec::new();
    for p in 0..partitions.max(1) {
        let (part_path, writer) = create(dir.path(), &format!("part-{p}.jsonl"), path)?;
        parts.push(part_path);
        writers.push(writer);
    }
    let (held_path, mut held) = create(dir.path(), "anonymous.jsonl", path)?;
    let mut identities = IdentityGraph::default();
    let mut accounts = AccountBook::default();
    let mut messages = 0u64;
    let mut input = if super::parquet::is_parquet(path) {
        let rows = super::parquet::open(path)?;
        let bar = progress::bar(rows.total, "reading", false);
        Input::Parquet(rows, bar)
    } else {
        Input::Lines(BufReader::with_capacity(1 << 20, file), progress::bar(size, "reading", true))
    };
    let mut line_no = 0u64;
    let mut buffer: Vec<u8> = Vec::with_capacity(BATCH_BYTES + (1 << 16));
    let mut lines: Vec<(u64, usize, usize)> = Vec::new();
    loop {
        buffer.clear();
        lines.clear();
        for error in input.fill(&mut buffer, &mut lines, &mut line_no, path)? {
            skipped.handle(error)?;
        }
        if lines.is_empty() {
            break;
        }
        let classified: Vec<Result<Line, InputError>> =
            lines.par_iter().map(|&(n, s, e)| classify(path, n, &buffer[s..e], model)).collect();
        for (&(n, s, e), result) in lines.iter().zip(classified) {
            let (user, anonymous, identity) = match result {
                Ok(Line::Blank) => continue,
                Ok(Line::Message { user, anonymous, identity }) => (user, anonymous, identity),
                Err(error) => {
                    skipped.handle(error)?;
                    continue;
                }
            };
            messages += 1;
            if let Some(event) = &identity {
                identities.observe(event);
                accounts.record_event(event);
            }
            let line = &buffer[s..e];
            match (user, anonymous) {
                (Some(user), _) => {
                    let p = partition_of(&user, writers.len());
                    write_line(&mut writers[p], n, line, path)?;
                }
                (None, Some(_)) => write_line(&mut held, n, line, path)?,
                (None, None) => {}
            }
        }
    }
    input.finish();
    held.flush().map_err(io_error)?;
    drop(held);

    // Route held anonymous messages now that every link is known.
    let mut unattributed = 0u64;
    let held_reader = BufReader::new(File::open(&held_path).map_err(io_error)?);
    for entry in held_reader.split(b'\n') {
        let entry = entry.map_err(io_error)?;
        let Some((n, json)) = split_entry(&entry) else { continue };
        let head: Head = serde_json::from_slice(json).map_err(|e| json_error(path, n, &e))?;
        match id_text(&head.anonymous_id).and_then(|a| identities.lead_of(&a).map(str::to_owned)) {
            Some(lead) => {
                let p = partition_of(&lead, writers.len());
                write_line(&mut writers[p], n, json, path)?;
            }
            None => unattributed += 1,
        }
    }
    for writer in &mut writers {
        writer.flush().map_err(io_error)?;
    }
    let projection = model.map_or_else(Projection::everything, CheckedModel::event_projection);
    Ok(EventSource {
        identities,
        accounts,
        messages,
        unattributed,
        file: path.to_owned(),
        parts,
        projection,
        model: model.cloned(),
        _dir: dir,
    })
}

/// Where pass 1 reads messages from: JSON Lines, or Parquet rows turned into JSON lines.
pub(crate) enum Input {
    Lines(BufReader<File>, indicatif::ProgressBar),
    Parquet(super::parquet::ParquetRows, indicatif::ProgressBar),
}

impl Input {
    /// Appends about `BATCH_BYTES` of messages to `buffer`, one `(line, start, end)` each; returns
    /// the rows that could not be turned into a message.
    pub(crate) fn fill(
        &mut self,
        buffer: &mut Vec<u8>,
        lines: &mut Vec<(u64, usize, usize)>,
        line_no: &mut u64,
        path: &Path,
    ) -> Result<Vec<InputError>, InputError> {
        let mut errors = Vec::new();
        while buffer.len() < BATCH_BYTES {
            let start = buffer.len();
            match self {
                Input::Lines(reader, bar) => {
                    let read = reader
                        .read_until(b'\n', buffer)
                        .map_err(|e| InputError::new(path, Some(*line_no + 1), None, format!("cannot read: {e}")))?;
                    if read == 0 {
                        break;
                    }
                    bar.inc(read as u64);
                    *line_no += 1;
                }
                Input::Parquet(rows, bar) => match rows.next() {
                    None => break,
                    Some(Ok((row, object))) => {
                        bar.inc(1);
                        *line_no = row;
                        serde_json::to_writer(&mut *buffer, &Value::Object(object))
                            .map_err(|e| InputError::new(path, Some(row), None, e.to_string()))?;
                    }
                    Some(Err(error)) => {
                        *line_no += 1;
                        errors.push(error);
                        continue;
                    }
                },
            }
            lines.push((*line_no, start, buffer.len()));
        }
        Ok(errors)
    }

    pub(crate) fn finish(&self) {
        match self {
            Input::Lines(_, bar) | Input::Parquet(_, bar) => bar.finish_and_clear(),
        }
    }
}

fn split_entry(entry: &[u8]) -> Option<(u64, &[u8])> {
    let tab = entry.iter().position(|&b| b == b'\t')?;
    let n = std::str::from_utf8(&entry[..tab]).ok()?.parse().ok()?;
    Some((n, &entry[tab + 1..]))
}

impl EventSource {
    /// Whether `load` drops the messages the model's `[events] ignore` matches.
    pub fn applies_ignore(&self) -> bool {
        self.model.is_some()
    }

    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Pass 2: the events of one partition, grouped by lead, with anonymous events stitched.
    pub fn load(&self, partition: usize) -> Result<HashMap<String, Vec<Event>>, InputError> {
        let path = &self.file;
        let io_error =
            |e: std::io::Error| InputError::new(path, None, None, format!("cannot read a temporary file: {e}"));
        let mut bytes = Vec::new();
        File::open(&self.parts[partition]).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_error)?;
        let entries: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        let parsed: Vec<Result<Option<(String, Event)>, InputError>> = entries
            .par_iter()
            .map(|entry| {
                let (n, json) = split_entry(entry)
                    .ok_or_else(|| InputError::new(path, None, None, "corrupt temporary partition file"))?;
                let value = parse_projected(json, &self.projection).map_err(|e| json_error(path, n, &e))?;
                let mut event = Event::from_message(value).map_err(|e| event_error(path, n, e))?;
                if self.model.as_ref().is_some_and(|m| is_ignored(m, &event)) {
                    return Ok(None);
                }
                Ok(self.identities.attribute(&event).map(|a| {
                    event.visible_at = a.from;
                    (a.lead_id, event)
                }))
            })
            .collect();
        let mut groups: HashMap<String, Vec<Event>> = HashMap::new();
        for result in parsed {
            if let Some((lead, event)) = result? {
                groups.entry(lead).or_default().push(event);
            }
        }
        Ok(groups)
    }
}
