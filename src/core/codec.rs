//! Records <-> bytes. Versioned and checksummed; the decoder returns `CorruptRecord` naming the key
//! for any bytes it cannot read and never panics (a panic would kill the wasm instance).
//!
//! Frame: `"AS"`, kind byte (`H` head, `E` batch, `S` snapshot with its messages inline, `T` snapshot
//! whose messages are in segments, `U` snapshot whose messages and state values are in segments, `G`
//! segment, `L` live flush; with encryption at rest, `J` a head
//! whose application fields are sealed and `X` any other record sealed whole), schema version, body, then the
//! CRC-32 of everything before it (little endian). Integers are LEB128 varints, strings are a length
//! then UTF-8, options a 0/1 byte. Schema 1 is the only layout so far; a record of a newer schema is
//! refused by name rather than misread.

use std::rc::Rc;

use crate::core::commits::{Commits, TokenRun};
use crate::core::error::CoreError;
use crate::core::event::{AgentState, Event, SessionState};
use crate::core::lifecycle::Status;
use crate::core::live::Flush;
use crate::core::record::{
    Batch, Head, Interrupt, Json, Layers, Lease, Segment, Snapshot, SnapshotRef, StateLayer, StopRequest, TurnEnd,
    TurnOutcome, SCHEMA_VERSION,
};

const MAGIC: &[u8; 2] = b"AS";
const KIND_HEAD: u8 = b'H';
const KIND_BATCH: u8 = b'E';
const KIND_SNAPSHOT: u8 = b'S';
/// A snapshot whose messages are in segments (see [`Snapshot`]).
const KIND_SEGMENTED_SNAPSHOT: u8 = b'T';
/// A snapshot whose messages and state values are in segments (see [`Snapshot::layers`]).
const KIND_LAYERED_SNAPSHOT: u8 = b'U';
const KIND_SEGMENT: u8 = b'G';
const KIND_LIVE: u8 = b'L';
/// A head whose application fields (metadata, interrupt) are sealed: encryption at rest.
const KIND_SEALED_HEAD: u8 = b'J';
/// Any other record sealed whole: its kind byte, the key id, then the ciphertext.
const KIND_SEALED: u8 = b'X';

/// One AES-GCM ciphertext of encryption at rest: the id of the key that sealed it, and the IV followed
/// by the ciphertext and its tag (what WebCrypto's `encrypt` returns, after the IV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// A head's application fields, each sealed on its own so that a guard decision that carries one
/// over (or drops it) needs no decryption.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealedApp {
    pub interrupt: Option<Sealed>,
    pub metadata: Option<Sealed>,
    /// The reason of a pending stop request (there when `head.stop` is).
    pub stop_reason: Option<Sealed>,
}

impl SealedApp {
    /// A key id these fields need, for the message of a store that cannot open them.
    fn key_id(&self) -> &str {
        let mut fields = self.interrupt.iter().chain(&self.metadata).chain(&self.stop_reason);
        fields.next().map_or("", |sealed| sealed.key_id.as_str())
    }
}

pub fn encode_head(head: &Head) -> Vec<u8> {
    write_head(head, None)
}

/// A head with its application fields sealed (`head.interrupt` and `head.metadata` are not written;
/// their presence is `app`'s).
pub fn encode_sealed_head(head: &Head, app: &SealedApp) -> Vec<u8> {
    write_head(head, Some(app))
}

fn write_head(head: &Head, app: Option<&SealedApp>) -> Vec<u8> {
    let mut w = Writer::frame(if app.is_some() { KIND_SEALED_HEAD } else { KIND_HEAD });
    w.u64(head.version);
    w.u8(head.status.to_byte());
    w.option(head.lease.as_ref(), |w, lease| {
        w.str(&lease.owner);
        w.str(&lease.instance);
        w.u64(lease.token);
        w.u64(lease.expires_at);
    });
    w.u64(head.last_token);
    w.option(head.snapshot.as_ref(), |w, snapshot| w.snapshot_ref(snapshot));
    w.token_runs(&head.commits);
    w.u64(head.created_at);
    w.u64(head.updated_at);
    w.option(head.idle_ttl_ms.as_ref(), |w, ttl| w.u64(*ttl));
    w.option(head.max_lifetime_ms.as_ref(), |w, max| w.u64(*max));
    match app {
        None => {
            w.option(head.interrupt.as_ref(), |w, interrupt| {
                w.str(&interrupt.reason);
                w.str(&interrupt.payload);
            });
            w.option(head.metadata.as_ref(), |w, metadata| w.str(metadata));
        }
        Some(app) => {
            w.option(app.interrupt.as_ref(), Writer::sealed);
            w.option(app.metadata.as_ref(), Writer::sealed);
        }
    }
    // Added with live turns; a head written before them ends here and reads as none of either.
    w.option(head.stop.as_ref(), |w, stop| {
        w.u64(stop.token);
        match app.and_then(|app| app.stop_reason.as_ref()) {
            Some(reason) => w.sealed(reason),
            None => w.str(&stop.reason),
        }
        w.str(&stop.by);
        w.u64(stop.at);
    });
    w.option(head.ended.as_ref(), |w, ended| {
        w.u64(ended.token);
        w.u8(ended.outcome.to_byte());
        w.str(&ended.invocation);
        w.option(ended.flushes.as_ref(), |w, flushes| w.u64(*flushes));
    });
    w.option(head.lease.as_ref(), |w, lease| w.str(&lease.invocation));
    w.u64(head.retained);
    w.u64(head.schema);
    w.finish()
}

/// A head as the engine uses it. A head whose application fields are sealed is refused by name:
/// only a store with its key (which opens them first) may hand it on.
pub fn decode_head(key: &str, bytes: &[u8]) -> Result<Head, CoreError> {
    match decode_any_head(key, bytes)? {
        // A sealed head with nothing sealed in it hides nothing: the records it names say what they need.
        (head, None) | (head, Some(SealedApp { interrupt: None, metadata: None, stop_reason: None })) => Ok(head),
        (_, Some(app)) => Err(CoreError::CorruptRecord {
            key: key.to_owned(),
            detail: format!(
                "its metadata and interrupt are encrypted (key id \"{}\"): open the store with an encryptionKey that has it",
                app.key_id()
            ),
        }),
    }
}

/// A head of either layout: its application fields are `head`'s for a clear head, and `Some(app)`
/// (with `head.interrupt` and `head.metadata` empty) for a sealed one. The guard's bookkeeping is
/// readable in both.
pub fn decode_any_head(key: &str, bytes: &[u8]) -> Result<(Head, Option<SealedApp>), CoreError> {
    let (mut r, kind) = Reader::frame_of(key, bytes, &[KIND_HEAD, KIND_SEALED_HEAD])?;
    let sealed = kind == KIND_SEALED_HEAD;
    let version = r.u64()?;
    let status = Status::from_byte(r.u8()?).ok_or_else(|| r.corrupt("unknown status"))?;
    let lease = r.option(|r| {
        Ok(Lease {
            owner: r.string()?,
            instance: r.string()?,
            token: r.u64()?,
            expires_at: r.u64()?,
            invocation: String::new(),
        })
    })?;
    let last_token = r.u64()?;
    let snapshot = r.option(Reader::snapshot_ref)?;
    // Layout 1 listed every token; layout 2 writes runs (core/commits.rs).
    let commits = if r.layout >= 2 { r.token_runs()? } else { r.tokens()? };
    if commits.len() > version {
        return Err(r.corrupt("more commits than versions"));
    }
    let created_at = r.u64()?;
    let updated_at = r.u64()?;
    let idle_ttl_ms = r.option(Reader::u64)?;
    let max_lifetime_ms = r.option(Reader::u64)?;
    let (interrupt, metadata, app) = if sealed {
        let app =
            SealedApp { interrupt: r.option(Reader::sealed)?, metadata: r.option(Reader::sealed)?, stop_reason: None };
        (None, None, Some(app))
    } else {
        let interrupt = r.option(|r| Ok(Interrupt { reason: r.string()?, payload: r.json()? }))?;
        (interrupt, r.option(Reader::json)?, None)
    };
    let mut head = Head {
        version,
        status,
        lease,
        last_token,
        snapshot,
        commits,
        created_at,
        updated_at,
        idle_ttl_ms,
        max_lifetime_ms,
        interrupt,
        metadata,
        stop: None,
        ended: None,
        retained: 0,
        schema: 0,
    };
    let mut stop_reason = None;
    if !r.at_end() {
        head.stop = r.option(|r| {
            let token = r.u64()?;
            let reason = match sealed {
                true => {
                    stop_reason = Some(r.sealed()?);
                    String::new()
                }
                false => r.string()?,
            };
            Ok(StopRequest { token, reason, by: r.string()?, at: r.u64()? })
        })?;
        head.ended = r.option(|r| {
            let token = r.u64()?;
            let outcome = TurnOutcome::from_byte(r.u8()?).ok_or_else(|| r.corrupt("unknown turn outcome"))?;
            Ok(TurnEnd { token, outcome, invocation: r.string()?, flushes: r.option(Reader::u64)? })
        })?;
        let invocation = r.option(Reader::string)?;
        if let (Some(lease), Some(invocation)) = (head.lease.as_mut(), invocation) {
            lease.invocation = invocation;
        }
        if !r.at_end() {
            head.retained = r.u64()?;
        }
        if !r.at_end() {
            head.schema = r.u64()?;
        }
    }
    r.end()?;
    let app = app.map(|app| SealedApp { stop_reason, ..app });
    Ok((head, app))
}

/// What a head's sealed interrupt holds once opened (`reason`, then `payload`).
pub fn encode_interrupt(interrupt: &Interrupt) -> Vec<u8> {
    let mut w = Writer { bytes: Vec::with_capacity(interrupt.reason.len() + interrupt.payload.len() + 4) };
    w.str(&interrupt.reason);
    w.str(&interrupt.payload);
    w.bytes
}

pub fn decode_interrupt(key: &str, bytes: &[u8]) -> Result<Interrupt, CoreError> {
    let mut r = Reader { key, bytes, at: 0, layout: SCHEMA_VERSION };
    let interrupt = Interrupt { reason: r.string()?, payload: r.json()? };
    r.end()?;
    Ok(interrupt)
}

/// A record other than a head sealed whole: `bytes_kind` is the kind byte of the record `sealed`
/// holds. A sealed segmented snapshot also carries the segments it names, readable (bookkeeping, like
/// a head's), so that a load reads them with it instead of after opening it.
pub fn encode_sealed_record(bytes_kind: u8, sealed: &Sealed, segments: &[SnapshotRef]) -> Vec<u8> {
    let mut w = Writer::frame(KIND_SEALED);
    w.u8(bytes_kind);
    w.sealed(sealed);
    w.u64(segments.len() as u64);
    for segment in segments {
        w.snapshot_ref(segment);
    }
    w.finish()
}

/// The sealed record in `bytes` with the kind byte of what it holds, or `None` for a record that is
/// not sealed (written in the clear, or not ours: its decoder says which).
pub fn decode_sealed_record(key: &str, bytes: &[u8]) -> Result<Option<(u8, Sealed)>, CoreError> {
    Ok(read_sealed_record(key, bytes)?.map(|(kind, sealed, _)| (kind, sealed)))
}

fn read_sealed_record(key: &str, bytes: &[u8]) -> Result<Option<(u8, Sealed, Vec<SnapshotRef>)>, CoreError> {
    if record_kind(bytes) != Some(KIND_SEALED) {
        return Ok(None);
    }
    let mut r = Reader::frame(key, bytes, KIND_SEALED)?;
    let kind = r.u8()?;
    let sealed = r.sealed()?;
    let segments = r.list(Reader::snapshot_ref)?;
    r.end()?;
    Ok(Some((kind, sealed, segments)))
}

/// The segments a snapshot record names, whether it is in the clear or sealed.
pub fn snapshot_segments(key: &str, bytes: &[u8]) -> Result<Vec<SnapshotRef>, CoreError> {
    match read_sealed_record(key, bytes)? {
        Some((_, _, segments)) => Ok(segments),
        None => decode_snapshot(key, bytes).map(|snapshot| snapshot.segments),
    }
}

/// The segments of a segmented snapshot record in the clear (empty for any other record), for
/// [`encode_sealed_record`].
pub fn segments_named(key: &str, bytes: &[u8]) -> Vec<SnapshotRef> {
    match record_kind(bytes) {
        Some(KIND_SEGMENTED_SNAPSHOT | KIND_LAYERED_SNAPSHOT) => {
            decode_snapshot(key, bytes).map(|snapshot| snapshot.segments).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The kind byte of what looks like one of our records (not checked further).
pub fn record_kind(bytes: &[u8]) -> Option<u8> {
    (bytes.len() > 3 && &bytes[..2] == MAGIC).then(|| bytes[2])
}

/// Whether `bytes` is a head with sealed application fields (see [`decode_any_head`]).
pub fn is_sealed_head(bytes: &[u8]) -> bool {
    record_kind(bytes) == Some(KIND_SEALED_HEAD)
}

pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    let texts: usize = batch.events.iter().map(Event::weight).sum();
    let mut w = Writer::frame_sized(KIND_BATCH, texts + ENCODED_EVENT_EXTRA * batch.events.len());
    w.u64(batch.version);
    w.u64(batch.token);
    w.u64(batch.at);
    w.str(&batch.invocation);
    w.option(batch.traceparent.as_ref(), |w, t| w.str(t));
    w.u64(batch.events.len() as u64);
    for event in &batch.events {
        w.event(event);
    }
    w.finish()
}

pub fn decode_batch(key: &str, bytes: &[u8]) -> Result<Batch, CoreError> {
    let mut r = Reader::frame(key, bytes, KIND_BATCH)?;
    let version = r.u64()?;
    let token = r.u64()?;
    let at = r.u64()?;
    let invocation = r.string()?;
    let traceparent = r.option(Reader::string)?;
    let events = r.list(Reader::event)?;
    r.end()?;
    Ok(Batch { version, token, at, invocation, traceparent, events })
}

/// A snapshot of the first layout, every message inline: what builds before segments wrote (kept
/// so that tests can write such records; the engine writes [`encode_segmented_snapshot`]).
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut w = Writer::frame(KIND_SNAPSHOT);
    w.u64(snapshot.version);
    w.u64(snapshot.token);
    w.option(snapshot.previous.as_ref(), |w, previous| w.snapshot_ref(previous));
    w.tokens(&snapshot.commits);
    w.u64(snapshot.state.agents.len() as u64);
    for (agent, agent_state) in &snapshot.state.agents {
        w.str(agent);
        w.u64(agent_state.messages.len() as u64);
        for message in &agent_state.messages {
            w.str(message);
        }
        w.u64(agent_state.state.len() as u64);
        for (key, value) in &agent_state.state {
            w.str(key);
            w.str(value);
        }
    }
    w.finish()
}

/// A snapshot whose messages are in `snapshot.segments`: with `layers`, its state values are in them
/// too (kind `U`: message counts, compactions, where the layers start); without, they are inline
/// (kind `T`, what builds before layers wrote).
pub fn encode_segmented_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let kind = if snapshot.layers.is_some() { KIND_LAYERED_SNAPSHOT } else { KIND_SEGMENTED_SNAPSHOT };
    let mut w = Writer::frame(kind);
    w.u64(snapshot.version);
    w.u64(snapshot.token);
    w.option(snapshot.previous.as_ref(), |w, previous| w.snapshot_ref(previous));
    w.tokens(&snapshot.commits);
    w.u64(snapshot.segments.len() as u64);
    for segment in &snapshot.segments {
        w.snapshot_ref(segment);
    }
    w.u64(snapshot.state.agents.len() as u64);
    if let Some(layers) = snapshot.layers {
        for (agent, agent_state) in &snapshot.state.agents {
            w.str(agent);
            w.u64(snapshot.count(agent));
            w.u64(agent_state.compactions);
        }
        w.u64(layers.from);
        w.u64(layers.bytes);
        return w.finish();
    }
    for (agent, agent_state) in &snapshot.state.agents {
        w.str(agent);
        w.u64(snapshot.count(agent));
        w.u64(agent_state.state.len() as u64);
        for (key, value) in &agent_state.state {
            w.str(key);
            w.str(value);
        }
    }
    let compacted: Vec<(&String, u64)> = snapshot
        .state
        .agents
        .iter()
        .filter(|(_, a)| a.compactions > 0)
        .map(|(agent, a)| (agent, a.compactions))
        .collect();
    if !compacted.is_empty() {
        w.u64(compacted.len() as u64);
        for (agent, compactions) in compacted {
            w.str(agent);
            w.u64(compactions);
        }
    }
    w.finish()
}

/// A snapshot of any layout. A segmented one comes back with its messages empty and its
/// `segments` and `counts` set: the loader fills the messages from the segments, and for a layered
/// one (`layers` set) the state values too.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<Snapshot, CoreError> {
    let kinds = [KIND_SNAPSHOT, KIND_SEGMENTED_SNAPSHOT, KIND_LAYERED_SNAPSHOT];
    let (mut r, kind) = Reader::frame_of(key, bytes, &kinds)?;
    let version = r.u64()?;
    let token = r.u64()?;
    let previous = r.option(Reader::snapshot_ref)?;
    let commits = r.tokens()?;
    let mut segments = Vec::new();
    let mut counts = Vec::new();
    if kind == KIND_LAYERED_SNAPSHOT {
        segments = r.list(Reader::snapshot_ref)?;
        let agents = r.list(|r| {
            let agent = r.string()?;
            counts.push((agent.clone(), r.u64()?));
            let compactions = r.u64()?;
            Ok((agent, AgentState { compactions, ..AgentState::default() }))
        })?;
        let layers = Layers { from: r.u64()?, bytes: r.u64()? };
        if layers.from > segments.len() as u64 {
            return Err(r.corrupt("its state layers start past its segments"));
        }
        r.end()?;
        let state = SessionState { agents: crate::core::map_from(agents) };
        return Ok(Snapshot { version, token, previous, commits, segments, counts, state, layers: Some(layers) });
    }
    let agents = if kind == KIND_SNAPSHOT {
        r.list(|r| {
            let agent = r.string()?;
            let messages = r.list(Reader::json)?;
            let state = crate::core::map_from(r.list(|r| Ok((r.string()?, r.json()?)))?);
            Ok((agent, AgentState { messages, state, compactions: 0 }))
        })?
    } else {
        segments = r.list(Reader::snapshot_ref)?;
        r.list(|r| {
            let agent = r.string()?;
            counts.push((agent.clone(), r.u64()?));
            let state = crate::core::map_from(r.list(|r| Ok((r.string()?, r.json()?)))?);
            Ok((agent, AgentState { messages: Vec::new(), state, compactions: 0 }))
        })?
    };
    let mut state = SessionState { agents: crate::core::map_from(agents) };
    // Added with compaction: how many compactions each agent's messages went through (none listed
    // in a snapshot written before).
    if kind == KIND_SEGMENTED_SNAPSHOT && !r.at_end() {
        for (agent, compactions) in r.list(|r| Ok((r.string()?, r.u64()?)))? {
            state.agents.entry(agent).or_default().compactions = compactions;
        }
    }
    r.end()?;
    Ok(Snapshot { version, token, previous, commits, segments, counts, state, layers: None })
}

/// A segment: its messages, then (third layout) its state layer, which a build before layers reads
/// as trailing bytes and refuses rather than misses.
pub fn encode_segment(segment: &Segment) -> Vec<u8> {
    let messages = segment.agents.iter().flat_map(|(_, messages)| messages);
    let mut size = messages.map(|message| message.len() + ENCODED_EVENT_EXTRA).sum::<usize>();
    if let Some(layer) = &segment.state {
        size += layer.events.iter().map(|event| event.weight() + ENCODED_EVENT_EXTRA).sum::<usize>();
    }
    let mut w = Writer::frame_sized(KIND_SEGMENT, size);
    w.u64(segment.version);
    w.u64(segment.token);
    w.u64(segment.agents.len() as u64);
    for (agent, messages) in &segment.agents {
        w.str(agent);
        w.u64(messages.len() as u64);
        for message in messages {
            w.str(message);
        }
    }
    if let Some(layer) = &segment.state {
        w.u8(u8::from(layer.full));
        w.u64(layer.events.len() as u64);
        for event in &layer.events {
            w.event(event);
        }
    }
    w.finish()
}

pub fn decode_segment(key: &str, bytes: &[u8]) -> Result<Segment, CoreError> {
    let mut r = Reader::frame(key, bytes, KIND_SEGMENT)?;
    let version = r.u64()?;
    let token = r.u64()?;
    let agents = r.list(|r| Ok((r.string()?, r.list(Reader::json)?)))?;
    let state = match r.at_end() {
        true => None,
        false => {
            let full = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(r.corrupt("its state layer is neither full nor partial")),
            };
            let events = r.list(Reader::event)?;
            if !events.iter().all(|e| matches!(e, Event::StateSet { .. } | Event::StateDelete { .. })) {
                return Err(r.corrupt("its state layer holds more than state values"));
            }
            Some(StateLayer { full, events })
        }
    };
    r.end()?;
    Ok(Segment { version, token, agents, state })
}

/// One flush of a running turn's live parts (`t/<session>/<token>/<n>`).
pub fn encode_flush(flush: &Flush) -> Vec<u8> {
    let mut w = Writer::frame(KIND_LIVE);
    w.str(&flush.invocation);
    w.u64(flush.first_seq);
    w.u64(flush.parts.len() as u64);
    for part in &flush.parts {
        w.str(part);
    }
    w.finish()
}

pub fn decode_flush(key: &str, bytes: &[u8]) -> Result<Flush, CoreError> {
    let mut r = Reader::frame(key, bytes, KIND_LIVE)?;
    let invocation = r.string()?;
    let first_seq = r.u64()?;
    let parts = r.list(Reader::json)?;
    r.end()?;
    Ok(Flush { invocation, first_seq, parts })
}

const EVENT_MESSAGE: u8 = 1;
const EVENT_STATE_SET: u8 = 2;
const EVENT_STATE_DELETE: u8 = 3;
const EVENT_INTERRUPT: u8 = 4;
const EVENT_RESUME: u8 = 5;
const EVENT_CLOSED: u8 = 6;
const EVENT_FORKED: u8 = 7;
const EVENT_STOPPED: u8 = 8;
const EVENT_COMPACTED: u8 = 9;
const EVENT_MIGRATED: u8 = 10;

/// Appends `value` as an unsigned LEB128 varint (the integers of every record, and of the host KV
/// store's chunk manifests).
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 varint at `*at`, moving `at` past it. A varint that ends early is
/// "truncated"; one whose value does not fit in 64 bits, or longer than ten bytes, is "integer
/// overflow".
pub fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated")?;
        *at += 1;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err("integer overflow");
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("integer overflow")
}

struct Writer {
    bytes: Vec<u8>,
}

/// What an event or message takes encoded beyond its texts (`Event::weight`), about: its tag and the
/// varint lengths of its strings. Records whose size is known are written into a buffer of that size,
/// so that they are not copied as the buffer doubles, and keep no spare capacity in a memory store.
const ENCODED_EVENT_EXTRA: usize = 16;

impl Writer {
    fn frame(kind: u8) -> Writer {
        Writer::frame_sized(kind, 0)
    }

    /// A writer for a record of about `size` bytes of content.
    fn frame_sized(kind: u8, size: usize) -> Writer {
        // The frame (magic, kind, version), the record's own numbers and its checksum.
        let mut bytes = Vec::with_capacity(128 + size);
        bytes.extend_from_slice(MAGIC);
        bytes.push(kind);
        bytes.push(SCHEMA_VERSION);
        Writer { bytes }
    }

    fn finish(mut self) -> Vec<u8> {
        let crc = crc32(&self.bytes);
        self.bytes.extend_from_slice(&crc.to_le_bytes());
        self.bytes
    }

    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    fn u64(&mut self, value: u64) {
        write_varint(&mut self.bytes, value);
    }

    /// Commit tokens one by one (a snapshot's: as many as its interval).
    fn tokens(&mut self, commits: &Commits) {
        self.u64(commits.len());
        for token in commits.iter() {
            self.u64(token);
        }
    }

    /// Commit tokens as runs (the head's: a few, whatever the session's length).
    fn token_runs(&mut self, commits: &Commits) {
        self.u64(commits.runs().len() as u64);
        for run in commits.runs() {
            self.u64(run.first);
            self.u64(run.each);
            self.u64(run.tokens);
        }
    }

    fn str(&mut self, value: &str) {
        self.u64(value.len() as u64);
        self.bytes.extend_from_slice(value.as_bytes());
    }

    fn option<T>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }

    fn snapshot_ref(&mut self, snapshot: &SnapshotRef) {
        self.u64(snapshot.version);
        self.u64(snapshot.token);
    }

    fn sealed(&mut self, sealed: &Sealed) {
        self.str(&sealed.key_id);
        self.u64(sealed.bytes.len() as u64);
        self.bytes.extend_from_slice(&sealed.bytes);
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Message { agent, data } => {
                self.u8(EVENT_MESSAGE);
                self.str(agent);
                self.str(data);
            }
            Event::StateSet { agent, key, data } => {
                self.u8(EVENT_STATE_SET);
                self.str(agent);
                self.str(key);
                self.str(data);
            }
            Event::StateDelete { agent, key } => {
                self.u8(EVENT_STATE_DELETE);
                self.str(agent);
                self.str(key);
            }
            Event::Interrupt { reason, data } => {
                self.u8(EVENT_INTERRUPT);
                self.str(reason);
                self.str(data);
            }
            Event::Resume { data } => {
                self.u8(EVENT_RESUME);
                self.str(data);
            }
            Event::Closed => self.u8(EVENT_CLOSED),
            Event::Forked { data } => {
                self.u8(EVENT_FORKED);
                self.str(data);
            }
            Event::Compacted { agent, before, summary } => {
                self.u8(EVENT_COMPACTED);
                self.str(agent);
                self.u64(*before);
                self.u64(summary.len() as u64);
                for message in summary {
                    self.str(message);
                }
            }
            Event::Migrated { agent, from, to, messages, state } => {
                self.u8(EVENT_MIGRATED);
                self.str(agent);
                self.u64(*from);
                self.u64(*to);
                self.u64(messages.len() as u64);
                for message in messages {
                    self.str(message);
                }
                self.u64(state.len() as u64);
                for (key, value) in state {
                    self.str(key);
                    self.str(value);
                }
            }
            Event::Stopped { reason, by, outcome } => {
                self.u8(EVENT_STOPPED);
                self.str(reason);
                self.str(by);
                self.u8(outcome.to_byte());
            }
        }
    }
}

struct Reader<'a> {
    key: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The layout version the record was written with (its fourth byte).
    layout: u8,
}

impl<'a> Reader<'a> {
    fn frame(key: &'a str, bytes: &'a [u8], kind: u8) -> Result<Reader<'a>, CoreError> {
        Reader::frame_of(key, bytes, &[kind]).map(|(reader, _)| reader)
    }

    /// A reader of a record of one of `kinds`, and which kind it is.
    fn frame_of(key: &'a str, bytes: &'a [u8], kinds: &[u8]) -> Result<(Reader<'a>, u8), CoreError> {
        let corrupt = |detail: &str| CoreError::CorruptRecord { key: key.to_owned(), detail: detail.to_owned() };
        if bytes.len() < MAGIC.len() + 2 + 4 || &bytes[..2] != MAGIC {
            return Err(corrupt("not an agent-session record"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let kind = body[2];
        // A sealed record's checksum is not checked on read: AES-GCM's tag authenticates what it holds
        // (changed bytes do not decrypt), the record inside has its own, and it would be a second pass
        // over every byte of a load.
        if kind != KIND_SEALED && crc32(body).to_le_bytes() != crc {
            return Err(corrupt("checksum mismatch"));
        }
        if kind == KIND_SEALED && !kinds.contains(&kind) {
            let mut r = Reader { key, bytes: body, at: 5, layout: body[3] };
            let key_id = r.string().unwrap_or_default();
            return Err(corrupt(&format!(
                "it is encrypted (key id \"{key_id}\"): open the store with an encryptionKey that has it"
            )));
        }
        if !kinds.contains(&kind) {
            return Err(corrupt("record of another kind"));
        }
        match body[3] {
            0 => return Err(corrupt("schema version 0")),
            v if v > SCHEMA_VERSION => {
                return Err(corrupt(&format!(
                    "written with schema {v} by a newer agent-session; this build reads up to {SCHEMA_VERSION}, upgrade the package"
                )))
            }
            _ => {}
        }
        Ok((Reader { key, bytes: body, at: 4, layout: body[3] }, kind))
    }

    fn corrupt(&self, detail: &str) -> CoreError {
        CoreError::CorruptRecord { key: self.key.to_owned(), detail: format!("{detail} at byte {}", self.at) }
    }

    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn end(&self) -> Result<(), CoreError> {
        if self.at != self.bytes.len() {
            return Err(self.corrupt("trailing bytes"));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, CoreError> {
        let byte = *self.bytes.get(self.at).ok_or_else(|| self.corrupt("truncated"))?;
        self.at += 1;
        Ok(byte)
    }

    fn u64(&mut self) -> Result<u64, CoreError> {
        let mut at = self.at;
        let value = read_varint(self.bytes, &mut at);
        self.at = at;
        value.map_err(|detail| self.corrupt(detail))
    }

    /// A count of items that each take at least one byte: bounded by what is left, so corrupt
    /// lengths cannot make the decoder allocate more than the record's size.
    fn count(&mut self) -> Result<usize, CoreError> {
        let count = self.u64()?;
        if count > (self.bytes.len() - self.at) as u64 {
            return Err(self.corrupt("length past the end"));
        }
        Ok(count as usize)
    }

    fn tokens(&mut self) -> Result<Commits, CoreError> {
        let count = self.count()?;
        let mut commits = Commits::default();
        for _ in 0..count {
            commits.push(self.u64()?);
        }
        Ok(commits)
    }

    fn token_runs(&mut self) -> Result<Commits, CoreError> {
        let runs = self.list(|r| Ok(TokenRun { first: r.u64()?, each: r.u64()?, tokens: r.u64()? }))?;
        Commits::from_runs(runs).ok_or_else(|| self.corrupt("malformed commit token runs"))
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, CoreError>) -> Result<Vec<T>, CoreError> {
        let count = self.count()?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(items)
    }

    fn str(&mut self) -> Result<&'a str, CoreError> {
        let len = self.count()?;
        let slice = &self.bytes[self.at..self.at + len];
        let text = std::str::from_utf8(slice).map_err(|_| self.corrupt("invalid UTF-8"))?;
        self.at += len;
        Ok(text)
    }

    fn string(&mut self) -> Result<String, CoreError> {
        self.str().map(str::to_owned)
    }

    fn json(&mut self) -> Result<Json, CoreError> {
        self.str().map(Rc::from)
    }

    fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, CoreError>) -> Result<Option<T>, CoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(self.corrupt("bad option tag")),
        }
    }

    fn snapshot_ref(&mut self) -> Result<SnapshotRef, CoreError> {
        Ok(SnapshotRef { version: self.u64()?, token: self.u64()? })
    }

    fn sealed(&mut self) -> Result<Sealed, CoreError> {
        let key_id = self.string()?;
        let len = self.count()?;
        let bytes = self.bytes[self.at..self.at + len].to_vec();
        self.at += len;
        Ok(Sealed { key_id, bytes })
    }

    fn event(&mut self) -> Result<Event, CoreError> {
        Ok(match self.u8()? {
            EVENT_MESSAGE => Event::Message { agent: self.string()?, data: self.json()? },
            EVENT_STATE_SET => Event::StateSet { agent: self.string()?, key: self.string()?, data: self.json()? },
            EVENT_STATE_DELETE => Event::StateDelete { agent: self.string()?, key: self.string()? },
            EVENT_INTERRUPT => Event::Interrupt { reason: self.string()?, data: self.json()? },
            EVENT_RESUME => Event::Resume { data: self.json()? },
            EVENT_CLOSED => Event::Closed,
            EVENT_FORKED => Event::Forked { data: self.json()? },
            EVENT_COMPACTED => {
                Event::Compacted { agent: self.string()?, before: self.u64()?, summary: self.list(Reader::json)? }
            }
            EVENT_MIGRATED => Event::Migrated {
                agent: self.string()?,
                from: self.u64()?,
                to: self.u64()?,
                messages: self.list(Reader::json)?,
                state: crate::core::map_from(self.list(|r| Ok((r.string()?, r.json()?)))?),
            },
            EVENT_STOPPED => {
                let (reason, by) = (self.string()?, self.string()?);
                let outcome = TurnOutcome::from_byte(self.u8()?).ok_or_else(|| self.corrupt("unknown turn outcome"))?;
                Event::Stopped { reason, by, outcome }
            }
            _ => return Err(self.corrupt("unknown event type")),
        })
    }
}

/// The checksum records carry, for other framings of record bytes (chunk manifests).
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32(bytes)
}

/// CRC-32 (IEEE, reflected, as zlib), eight bytes a step ("slicing-by-8"): a cold load checks every
/// byte it reads (about 200 KB at 1000 messages), and a byte at a time took 0.57 ms of a 3.3 ms load
/// in Chromium; eight at a time is about a quarter of that. The tables are built on first use, so
/// the `.wasm` carries the few instructions that build them rather than 8 KiB of data.
fn crc32(bytes: &[u8]) -> u32 {
    let tables = crc_tables();
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = tables[7][(low & 0xff) as usize]
            ^ tables[6][((low >> 8) & 0xff) as usize]
            ^ tables[5][((low >> 16) & 0xff) as usize]
            ^ tables[4][(low >> 24) as usize]
            ^ tables[3][(high & 0xff) as usize]
            ^ tables[2][((high >> 8) & 0xff) as usize]
            ^ tables[1][((high >> 16) & 0xff) as usize]
            ^ tables[0][(high >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ tables[0][((crc ^ u32::from(byte)) & 0xff) as usize];
    }
    !crc
}

/// `tables[0]`: the CRC of every byte value; `tables[k]`: of that byte followed by `k` zero bytes.
fn crc_tables() -> &'static [[u32; 256]; 8] {
    static TABLES: std::sync::OnceLock<Box<[[u32; 256]; 8]>> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut tables = Box::new([[0u32; 256]; 8]);
        for n in 0..256 {
            let mut crc = n as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
            tables[0][n] = crc;
        }
        for n in 0..256 {
            for k in 1..8 {
                let previous = tables[k - 1][n];
                tables[k][n] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            }
        }
        tables
    })
}
