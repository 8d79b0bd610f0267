//! Events JSON Lines (or Parquet) read once, through the model, into compact events.
//!
//! The file is read in chunks of lines (a reader thread fills the next while this one is read);
//! each chunk is read in parallel on every core: each message is parsed once
//! (`core::compact::read_message`, which keeps only what the engine and the model's conditions
//! read), `[events] ignore` is applied, and the rules that depend only on the message are decided
//! there (`CheckedModel::compact`). Each compact event is then filed, in parallel by shard, under
//! its lead id (or its anonymous id): an id is interned once per shard and events are kept in
//! one array per shard, so filing allocates nothing per event. Identity links live with the
//! anonymous ids they link. At the end, anonymous events go to the lead their anonymous id was
//! linked to (visible from the link's time), or are counted as never linked; account traits are
//! recorded in file order as they come.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;

use leadscore_core::compact::{CompactEvent, FieldValue, Kind, Message, Plan, ReadError, read_fields, read_message};
use leadscore_core::identity;
use leadscore_core::time::Millis;
use leadscore_core::{AccountBook, CheckedModel};
use rayon::prelude::*;
use serde_json::Map;

use super::events::{BATCH_BYTES, ParquetLines, event_error, json_error};
use super::parquet::Group;
use super::{InputError, Skipped};
use crate::progress;

/// Every lead's compact events, read from one events file.
pub struct CompactSource {
    /// The events file.
    pub path: std::path::PathBuf,
    pub accounts: AccountBook,
    /// Messages read (valid lines, ignored ones included).
    pub messages: u64,
    /// Anonymous messages whose anonymous id was never linked to a lead.
    pub unattributed: u64,
    /// Compact events by lead id.
    pub leads: LeadEvents,
}

/// Shards of ids: an id's shard is given by the top bits of its hash.
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// A 128-bit hash of an id (the same in every run and thread): ids are told apart by it alone,
/// so interning one touches only the table (two different ids among a billion collide with odds
/// below 10^-20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdHash(u64, u64);

fn hash_id(id: &str) -> IdHash {
    use std::hash::BuildHasher;
    IdHash(
        foldhash::quality::FixedState::with_seed(0x6c65_6164_5f69_6473).hash_one(id),
        foldhash::quality::FixedState::with_seed(0x616e_6f6e_5f69_6473).hash_one(id),
    )
}

fn shard_of(hash: IdHash) -> usize {
    (hash.0 >> (64 - SHARD_BITS)) as usize
}

/// Interned ids: open addressing with linear probing over `(hash, index)` slots, so that looking
/// an id up reads one cache line, which a batch of lookups can load ahead ([`IdTable::touch`]):
/// with hundreds of thousands of ids the table does not fit in the cache, and lookups one after
/// the other would each wait for memory.
#[derive(Default)]
struct IdTable {
    /// A power of two many slots (or none), at most 60% used; index [`NO_ID`]: empty.
    slots: Vec<(IdHash, u32)>,
    len: usize,
}

const NO_ID: u32 = u32::MAX;

impl IdTable {
    /// Loads the slot where `hash` is looked for first (the value means nothing).
    fn touch(&self, hash: IdHash) -> u32 {
        let mask = self.slots.len().wrapping_sub(1);
        self.slots.get(hash.1 as usize & mask).map_or(0, |slot| slot.1)
    }

    /// The index of `hash`, or `new` if it was not there (then it is now).
    fn get_or_insert(&mut self, hash: IdHash, new: u32) -> u32 {
        if (self.len + 1) * 5 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = hash.1 as usize & mask;
        loop {
            let (h, i) = self.slots[at];
            if i == NO_ID {
                self.slots[at] = (hash, new);
                self.len += 1;
                return new;
            }
            if h == hash {
                return i;
            }
            at = (at + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(256);
        let old = std::mem::replace(&mut self.slots, vec![(IdHash(0, 0), NO_ID); size]);
        let mask = size - 1;
        for (hash, i) in old.into_iter().filter(|(_, i)| *i != NO_ID) {
            let mut at = hash.1 as usize & mask;
            while self.slots[at].1 != NO_ID {
                at = (at + 1) & mask;
            }
            self.slots[at] = (hash, i);
        }
    }
}

/// Ids interned in one shard, and the compact events filed under them.
#[derive(Default)]
pub struct Shard {
    table: IdTable,
    ids: Vec<Box<str>>,
    /// `(id index, event)`, in the order they were filed (file order), in blocks of
    /// [`BLOCK`] (a growing array would copy itself and, at worst, hold twice its size).
    events: Vec<Vec<(u32, CompactEvent)>>,
    /// Full blocks written to a temporary file because more events than the budget allows were
    /// in memory.
    spilled: Option<Spilled>,
    /// A write to that file failed: the shard keeps its blocks in memory from then on (the file
    /// holds its earlier blocks whole, and perhaps part of the failed one after them).
    spill_failed: bool,
}

/// A shard's blocks on disk (MessagePack, one after the other; the file is deleted when closed).
struct Spilled {
    file: std::io::BufWriter<std::fs::File>,
    blocks: usize,
}

type Block = Vec<(u32, CompactEvent)>;

/// How many compact events may stay in memory while a file is read; full blocks beyond that go
/// to temporary files, and each shard's come back when its leads are scored, one shard per core
/// at a time. Counted in whole blocks.
struct Budget {
    resident: std::sync::atomic::AtomicUsize,
    limit: usize,
    /// Blocks written to disk.
    spilled: std::sync::atomic::AtomicUsize,
}

impl Budget {
    /// `LEADSCORE_MEMORY_EVENTS` (default [`DEFAULT_MEMORY_EVENTS`]; a value that is not a
    /// number of events is named on stderr and the default used).
    fn from_env() -> Budget {
        let limit = match std::env::var("LEADSCORE_MEMORY_EVENTS") {
            Ok(value) => value.trim().parse().unwrap_or_else(|_| {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    eprintln!(
                        "warning: LEADSCORE_MEMORY_EVENTS=`{value}` is not a number of events; using {DEFAULT_MEMORY_EVENTS}"
                    );
                });
                DEFAULT_MEMORY_EVENTS
            }),
            Err(_) => DEFAULT_MEMORY_EVENTS,
        };
        Budget {
            resident: std::sync::atomic::AtomicUsize::new(0),
            limit,
            spilled: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Counts a block that just filled up; `true` if it should go to disk.
    fn full_block(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let resident = self.resident.fetch_add(BLOCK, Relaxed) + BLOCK;
        if resident > self.limit {
            self.resident.fetch_sub(BLOCK, Relaxed);
            return true;
        }
        false
    }
}

/// About 1.3 GB of compact events (80 bytes each in a block, plus what few carry in a box).
const DEFAULT_MEMORY_EVENTS: usize = 16_000_000;

/// Events per block of a shard.
const BLOCK: usize = 4096;

impl Shard {
    /// The index of `id` (with hash `hash`), added if new.
    fn intern(&mut self, hash: IdHash, id: &str) -> u32 {
        let new = u32::try_from(self.ids.len()).unwrap_or(NO_ID - 1);
        let i = self.table.get_or_insert(hash, new);
        if i == new {
            self.ids.push(id.into());
        }
        i
    }

    /// Files a batch of events: their table slots are loaded first, all at once.
    fn file_all(&mut self, batch: &mut [Pending<'_>], budget: &Budget) {
        let touched = batch.iter().fold(0u32, |sum, p| sum.wrapping_add(self.table.touch(p.hash)));
        std::hint::black_box(touched);
        for pending in batch {
            if let Some(event) = pending.event.take() {
                self.file(pending.hash, &pending.id, event, budget);
            }
        }
    }

    /// Files `event` under `id` (with hash `hash`).
    fn file(&mut self, hash: IdHash, id: &str, event: CompactEvent, budget: &Budget) {
        let i = self.intern(hash, id);
        self.push(i, event, budget);
    }

    fn push(&mut self, id: u32, event: CompactEvent, budget: &Budget) {
        match self.events.last_mut() {
            Some(block) if block.len() < BLOCK => block.push((id, event)),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push((id, event));
                self.events.push(block);
            }
        }
        if self.events.last().is_some_and(|b| b.len() == BLOCK) && budget.full_block() {
            self.spill_last(budget);
        }
    }

    /// Writes the last (full) block to the shard's file. If that fails, the block stays in
    /// memory: nothing is lost, only the budget is exceeded.
    fn spill_last(&mut self, budget: &Budget) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.spill_failed {
            budget.resident.fetch_add(BLOCK, Relaxed);
            return;
        }
        let Some(block) = self.events.pop() else { return };
        let written = match &mut self.spilled {
            Some(spilled) => rmp_serde::encode::write(&mut spilled.file, &block).map_err(|e| e.to_string()),
            None => tempfile::tempfile().map_err(|e| e.to_string()).and_then(|file| {
                let mut file = std::io::BufWriter::new(file);
                rmp_serde::encode::write(&mut file, &block).map_err(|e| e.to_string())?;
                self.spilled = Some(Spilled { file, blocks: 0 });
                Ok(())
            }),
        };
        match (written, &mut self.spilled) {
            (Ok(()), Some(spilled)) => {
                spilled.blocks += 1;
                budget.spilled.fetch_add(1, Relaxed);
            }
            (result, _) => {
                self.spill_failed = true;
                budget.resident.fetch_add(BLOCK, Relaxed);
                if let Err(why) = result {
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    WARNED.call_once(|| {
                        eprintln!("warning: cannot write events to a temporary file ({why}); keeping them in memory")
                    });
                }
                self.events.push(block);
            }
        }
    }

    /// Every block, those written to disk read back first.
    fn blocks(&mut self) -> std::io::Result<Vec<Block>> {
        use std::io::{Seek, SeekFrom};
        let mut blocks = Vec::new();
        if let Some(Spilled { file, blocks: n }) = self.spilled.take() {
            let mut file = file.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            file.seek(SeekFrom::Start(0))?;
            let mut reader = std::io::BufReader::new(file);
            blocks.reserve(n + self.events.len());
            for _ in 0..n {
                let block: Block =
                    rmp_serde::decode::from_read(&mut reader).map_err(|e| std::io::Error::other(e.to_string()))?;
                blocks.push(block);
            }
        }
        blocks.append(&mut self.events);
        Ok(blocks)
    }

    /// Each id with its events (in file order), consuming the shard.
    fn into_groups(mut self) -> std::io::Result<impl Iterator<Item = (Box<str>, Vec<CompactEvent>)>> {
        let blocks = self.blocks()?;
        let mut counts = vec![0usize; self.ids.len()];
        for (i, _) in blocks.iter().flatten() {
            counts[*i as usize] += 1;
        }
        let mut groups: Vec<Vec<CompactEvent>> = counts.into_iter().map(Vec::with_capacity).collect();
        for block in blocks {
            for (i, event) in block {
                groups[i as usize].push(event);
            }
        }
        Ok(self.ids.into_iter().zip(groups))
    }
}

/// Compact events by lead id, in shards.
#[derive(Default)]
pub struct LeadEvents {
    shards: Vec<Shard>,
}

impl LeadEvents {
    fn new() -> LeadEvents {
        LeadEvents { shards: (0..SHARDS).map(|_| Shard::default()).collect() }
    }

    /// Makes sure `id` is a lead here (with no events if none were filed).
    pub fn add_lead(&mut self, id: &str) {
        if self.shards.is_empty() {
            *self = LeadEvents::new();
        }
        let hash = hash_id(id);
        if let Some(shard) = self.shards.get_mut(shard_of(hash)) {
            shard.intern(hash, id);
        }
    }

    /// How many leads there are.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.ids.len()).sum()
    }

    /// Every lead and its events (in file order), shard by shard in parallel (an error: a
    /// shard's events could not be read back from disk).
    pub fn into_par_groups(self) -> impl ParallelIterator<Item = std::io::Result<(Box<str>, Vec<CompactEvent>)>> {
        self.shards.into_par_iter().flat_map_iter(|shard| match shard.into_groups() {
            Ok(groups) => rayon::iter::Either::Left(groups.map(Ok)),
            Err(e) => rayon::iter::Either::Right(std::iter::once(Err(e))),
        })
    }
}

/// Anonymous ids in one shard: their events, and the lead each is linked to.
#[derive(Default)]
struct AnonymousShard {
    shard: Shard,
    /// Per anonymous id: the winning link `(at, lead id)`.
    links: Vec<Option<(Millis, Box<str>)>>,
}

impl AnonymousShard {
    fn link(&mut self, hash: IdHash, anonymous: &str, lead: &str, at: Millis) {
        let i = self.shard.intern(hash, anonymous) as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, None);
        }
        let link = &mut self.links[i];
        if link.as_ref().is_none_or(|(t, l)| identity::replaces((*t, l), (at, lead))) {
            *link = Some((at, lead.into()));
        }
    }
}

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
    line_of(path, line_no, read_message(plan, line)).map(Some)
}

/// Reads and checks one Parquet row.
fn read_row<'g>(
    path: &Path,
    group: &'g Group,
    row: usize,
    plan: &Plan,
    fields: &mut Vec<(&'g str, FieldValue<'g>)>,
) -> Result<Line<'g>, InputError> {
    let n = group.row_number(row);
    let tie = group.fields(row, fields).map_err(|(column, why)| InputError::new(path, Some(n), Some(&column), why))?;
    line_of(path, n, read_fields(plan, fields, tie))
}

/// Checks a message as read.
fn line_of<'a>(path: &Path, line_no: u64, read: Result<Message<'a>, ReadError>) -> Result<Line<'a>, InputError> {
    let mut message = read.map_err(|e| match e {
        ReadError::Json(e) => json_error(path, line_no, &e),
        ReadError::Event(e) => event_error(path, line_no, e),
        ReadError::FieldJson { field, error } => {
            InputError::new(path, Some(line_no), Some(&field), format!("column holds invalid JSON: {error}"))
        }
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
    Ok(Line { user, anonymous, message })
}

/// What one slice of a chunk's lines gives besides the events it filed (those go to their
/// shards, a batch per shard, when the slice ends: [`Slice::flush`]).
struct Slice<'a> {
    messages: u64,
    errors: Vec<InputError>,
    /// Per model: `(group id, at, traits)` of `group` messages, in line order.
    groups: Vec<Vec<GroupMessage>>,
    pending: Vec<Pending<'a>>,
}

impl Pending<'_> {
    /// Which shard of which model the event goes to.
    fn key(&self) -> (usize, bool, usize) {
        (self.model, self.anonymous, shard_of(self.hash))
    }
}

/// Files a batch of events of one shard; `false` if the shard was busy and `wait` is false.
fn file_batch(states: &[State], batch: &mut [Pending<'_>], wait: bool) -> bool {
    let Some((model, anonymous, shard)) = batch.first().map(Pending::key) else { return true };
    let Some(state) = states.get(model) else { return true };
    if anonymous {
        acquire(&state.anonymous[shard], wait).map(|mut s| s.shard.file_all(batch, &state.budget)).is_some()
    } else {
        acquire(&state.leads[shard], wait).map(|mut s| s.file_all(batch, &state.budget)).is_some()
    }
}

/// An event on its way to its shard.
struct Pending<'a> {
    model: usize,
    anonymous: bool,
    hash: IdHash,
    id: Cow<'a, str>,
    /// Taken when filed.
    event: Option<CompactEvent>,
}

/// A `group` message's account, time and traits.
type GroupMessage = (String, Millis, Map<String, serde_json::Value>);

impl<'a> Slice<'a> {
    fn new(models: &[&CheckedModel]) -> Slice<'a> {
        Slice {
            messages: 0,
            errors: Vec::new(),
            groups: models.iter().map(|_| Vec::new()).collect(),
            pending: Vec::with_capacity(SLICE * models.len()),
        }
    }

    /// Files the slice's events: sorted by shard, each shard locked once for its batch. Shards
    /// another thread holds are left for a second round rather than waited for.
    fn flush(&mut self, states: &[State]) {
        self.pending.sort_unstable_by_key(Pending::key);
        let mut busy = Vec::new();
        for batch in self.pending.chunk_by_mut(|a, b| a.key() == b.key()) {
            if !file_batch(states, batch, false) {
                busy.push(batch);
            }
        }
        for batch in busy {
            file_batch(states, batch, true);
        }
        self.pending.clear();
    }

    /// Adds one message as read (or its error) for every model: files its event under its lead
    /// or anonymous id, and the link it makes.
    fn add(&mut self, line: Result<Option<Line<'a>>, InputError>, models: &[&CheckedModel], states: &[State]) {
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) => {
                self.errors.push(error);
                return;
            }
        };
        self.messages += 1;
        let message = &line.message;
        let kind = Kind::of(&message.kind);
        let user = line.user.as_deref();
        let linked = match (kind, user) {
            (Kind::Alias, Some(_)) => message.previous_id.as_deref(),
            (Kind::Identify, Some(_)) => line.anonymous.as_deref(),
            _ => None,
        }
        .filter(|a| !a.is_empty() && Some(*a) != user);
        let (id, anonymous) = match (&line.user, &line.anonymous) {
            (Some(user), _) => (user, false),
            (None, Some(anonymous)) => (anonymous, true),
            (None, None) => return,
        };
        let hash = hash_id(id);
        let link_hash = linked.map(hash_id);
        for (m, ((model, groups), state)) in models.iter().zip(&mut self.groups).zip(states).enumerate() {
            if model.plan.ignores(message) {
                continue;
            }
            if let (Some(anonymous), Some(lead), Some(link_hash)) = (linked, user, link_hash) {
                lock(&state.anonymous[shard_of(link_hash)]).link(link_hash, anonymous, lead, message.at);
            }
            if let (Kind::Group, Some(group)) = (kind, message.group_id.as_deref()) {
                groups.push((group.to_owned(), message.at, message.traits.clone().unwrap_or_default()));
            }
            let event = model.compact(message);
            self.pending.push(Pending { model: m, anonymous, hash, id: id.clone(), event: Some(event) });
        }
    }
}

fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An anonymous event on its way to the lead it was linked to: `(lead hash, lead id, event)`.
type Moved = (IdHash, Box<str>, CompactEvent);

/// A shard's lock (a panic elsewhere leaves it usable: the read fails anyway).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A shard's lock, or `None` if another thread holds it and `wait` is false.
fn acquire<T>(mutex: &Mutex<T>, wait: bool) -> Option<std::sync::MutexGuard<'_, T>> {
    if wait {
        return Some(lock(mutex));
    }
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Messages read in parallel, in slices of this many.
const SLICE: usize = 2048;

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
    let mut states: Vec<State> = models.iter().map(|_| State::new()).collect();
    let mut messages = 0u64;
    let reading = progress::step("reading");
    if super::parquet::is_parquet(path) {
        // Only the columns the engine and the models read, row groups decoded in parallel; a
        // file that is not flat is read row by row.
        let columns = match models.first().and_then(|m| m.plan.top_level_fields()) {
            Some(wanted) => super::parquet::columns(path, &wanted)?,
            None => None,
        };
        match columns {
            Some(columns) => {
                let bar = progress::bar(columns.total, "reading", false);
                let groups: Vec<usize> = (0..columns.row_groups()).collect();
                for window in groups.chunks(rayon::current_num_threads().max(1)) {
                    let decoded: Vec<Result<Group, InputError>> =
                        window.par_iter().map(|&g| columns.decode(g)).collect();
                    for group in decoded {
                        let group = group?;
                        let rows: Vec<usize> = (0..group.rows()).collect();
                        let group = &group;
                        read_in_slices(&rows, models, &mut states, &mut messages, skipped, |rows, plan, add| {
                            let mut fields = Vec::new();
                            for &row in rows {
                                add(read_row(path, group, row, plan, &mut fields).map(Some));
                            }
                        })?;
                        bar.inc(group.rows() as u64);
                    }
                }
                bar.finish_and_clear();
            }
            None => {
                let rows = super::parquet::open(path)?;
                let bar = progress::bar(rows.total, "reading", false);
                let mut input = ParquetLines(rows, bar);
                let mut line_no = 0u64;
                loop {
                    let mut chunk = Chunk::default();
                    for error in input.fill(&mut chunk.bytes, &mut chunk.lines, &mut line_no, path)? {
                        skipped.handle(error)?;
                    }
                    if chunk.lines.is_empty() {
                        break;
                    }
                    read_chunk(path, &chunk, models, &mut states, &mut messages, skipped)?;
                }
                input.finish();
            }
        }
    } else {
        // A reader thread fills the next chunk while this one is read; buffers go back to it to
        // be filled again (fresh 8 MB buffers would cost a page fault per 4 KB).
        let (sender, chunks) = std::sync::mpsc::sync_channel::<Result<Chunk, std::io::Error>>(1);
        let (recycle, spare) = std::sync::mpsc::channel::<Chunk>();
        let bar = progress::bar(size, "reading", true);
        let reader = {
            let bar = bar.clone();
            std::thread::spawn(move || read_chunks(file, &sender, &spare, &bar))
        };
        while let Ok(chunk) = chunks.recv() {
            let chunk = chunk.map_err(io_error)?;
            read_chunk(path, &chunk, models, &mut states, &mut messages, skipped)?;
            let _ = recycle.send(chunk);
        }
        bar.finish_and_clear();
        let _ = reader.join();
    }
    drop(reading);
    if let Some(state) = states.first() {
        let spilled = state.budget.spilled.load(std::sync::atomic::Ordering::Relaxed);
        if spilled > 0 {
            eprintln!(
                "note: {} events were kept in temporary files to hold at most {} in memory (LEADSCORE_MEMORY_EVENTS)",
                spilled * BLOCK,
                state.budget.limit
            );
        }
    }
    let _step = progress::step("stitching");
    states
        .into_iter()
        .map(|state| {
            state.finish(path, messages).map_err(|e| {
                InputError::new(path, None, None, format!("cannot read back events written to a temporary file: {e}"))
            })
        })
        .collect()
}

/// Reads one chunk's lines in parallel and files what they give for each model.
fn read_chunk(
    path: &Path,
    chunk: &Chunk,
    models: &[&CheckedModel],
    states: &mut [State],
    messages: &mut u64,
    skipped: &mut Skipped,
) -> Result<(), InputError> {
    read_in_slices(&chunk.lines, models, states, messages, skipped, |lines, plan, add| {
        for &(n, s, e) in lines {
            add(read_line(path, n, &chunk.bytes[s..e], plan));
        }
    })
}

/// Reads `items` (lines, rows) in slices of [`SLICE`] on every core: `read(slice, plan, add)`
/// reads each item of its slice with the shared plan and hands it to `add`, which files it for
/// every model; then the slices' counts, errors and accounts are recorded in order.
fn read_in_slices<'a, T: Sync>(
    items: &[T],
    models: &[&CheckedModel],
    states: &mut [State],
    messages: &mut u64,
    skipped: &mut Skipped,
    read: impl Fn(&[T], &Plan, &mut dyn FnMut(Result<Option<Line<'a>>, InputError>)) + Sync,
) -> Result<(), InputError> {
    let shared: &[State] = states;
    let slices: Vec<Slice> = items
        .par_chunks(SLICE)
        .map(|items| {
            let mut slice = Slice::new(models);
            if let Some(plan) = models.first().map(|m| &m.plan) {
                read(items, plan, &mut |line| slice.add(line, models, shared));
            }
            slice.flush(shared);
            slice
        })
        .collect();
    finish_slices(slices, states, messages, skipped)
}

/// Counts what slices of messages read, and records their accounts in line order.
fn finish_slices(
    slices: Vec<Slice>,
    states: &mut [State],
    messages: &mut u64,
    skipped: &mut Skipped,
) -> Result<(), InputError> {
    for slice in slices {
        *messages += slice.messages;
        for error in slice.errors {
            skipped.handle(error)?;
        }
        for (state, groups) in states.iter_mut().zip(slice.groups) {
            for (group_id, at, traits) in groups {
                state.accounts.record(&group_id, at, traits);
            }
        }
    }
    Ok(())
}

/// One model's events as they are filed: shards behind locks, filled from every thread.
struct State {
    accounts: AccountBook,
    leads: Vec<Mutex<Shard>>,
    anonymous: Vec<Mutex<AnonymousShard>>,
    budget: Budget,
}

impl State {
    fn new() -> State {
        State {
            budget: Budget::from_env(),
            accounts: AccountBook::default(),
            leads: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            anonymous: (0..SHARDS).map(|_| Mutex::new(AnonymousShard::default())).collect(),
        }
    }

    /// Attributes the anonymous events now that every link is known.
    fn finish(self, path: &Path, messages: u64) -> std::io::Result<CompactSource> {
        let State { accounts, leads, anonymous, budget } = self;
        let mut leads = LeadEvents { shards: leads.into_iter().map(into_inner).collect() };
        let anonymous: Vec<AnonymousShard> = anonymous.into_iter().map(into_inner).collect();
        // Per anonymous shard: its linked events by the lead shard they go to.
        let moved: Vec<(u64, Vec<Vec<Moved>>)> = anonymous
            .into_par_iter()
            .map(|AnonymousShard { mut shard, links }| {
                let blocks = shard.blocks()?;
                let mut unattributed = 0u64;
                let mut by_shard: Vec<Vec<Moved>> = (0..SHARDS).map(|_| Vec::new()).collect();
                let targets: Vec<Option<(IdHash, Millis, &str)>> = (0..shard.ids.len())
                    .map(|i| links.get(i).and_then(Option::as_ref).map(|(at, lead)| (hash_id(lead), *at, &**lead)))
                    .collect();
                for (i, mut event) in blocks.into_iter().flatten() {
                    match targets.get(i as usize).copied().flatten() {
                        Some((hash, linked_at, lead)) => {
                            event.visible_at = event.at.max(linked_at);
                            by_shard[shard_of(hash)].push((hash, lead.into(), event));
                        }
                        None => unattributed += 1,
                    }
                }
                Ok((unattributed, by_shard))
            })
            .collect::<std::io::Result<_>>()?;
        let unattributed = moved.iter().map(|(n, _)| n).sum();
        let mut incoming: Vec<Vec<Vec<Moved>>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for (_, by_shard) in moved {
            for (j, list) in by_shard.into_iter().enumerate() {
                incoming[j].push(list);
            }
        }
        leads.shards.par_iter_mut().zip(incoming).for_each(|(shard, lists)| {
            for (hash, lead, event) in lists.into_iter().flatten() {
                shard.file(hash, &lead, event, &budget);
            }
        });
        Ok(CompactSource { path: path.to_owned(), accounts, messages, unattributed, leads })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id keeps the index it was first given, through every growth of the table, and ids
    /// whose hashes start at the same slot are told apart.
    #[test]
    fn interned_ids_keep_their_index() {
        let mut shard = Shard::default();
        let ids: Vec<String> = (0..5000).map(|i| format!("lead-{i}")).collect();
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(shard.intern(hash_id(id), id), n as u32);
        }
        for (n, id) in ids.iter().enumerate().rev() {
            assert_eq!(shard.intern(hash_id(id), id), n as u32, "{id}");
        }
        // Same first slot, different ids: linear probing keeps both.
        let mut table = IdTable::default();
        assert_eq!(table.get_or_insert(IdHash(1, 7), 0), 0);
        assert_eq!(table.get_or_insert(IdHash(2, 7), 1), 1);
        assert_eq!(table.get_or_insert(IdHash(1, 7), 2), 0);
        assert_eq!(table.get_or_insert(IdHash(2, 7), 2), 1);
        assert_eq!(shard.ids.len(), ids.len());
        assert!(shard.table.len * 5 <= shard.table.slots.len() * 3);
    }
}
