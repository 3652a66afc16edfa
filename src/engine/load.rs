//! Reading sessions back: head, snapshot + later batches, time travel and history.
//!
//! A batch is found by the (version, token) pair that a head or snapshot names; the tokens of old
//! versions are found by walking the snapshot chain back from the head.

use std::rc::Rc;

use crate::core::{
    codec, keys, AgentState, Batch, Commits, CoreError, Event, Head, SessionState, Snapshot, SnapshotRef, StateLayer,
};
use crate::engine::error::EngineResult;
use crate::store::{budget, read_linked, take_linked, Entry, Follow, Linked, Store, Version};

/// The head of `id` and its store version, if the session exists.
pub(crate) async fn read_head(store: &dyn Store, id: &str) -> EngineResult<Option<(Head, Version)>> {
    let key = keys::head_key(id);
    match store.get(&key).await? {
        None => Ok(None),
        Some(entry) => Ok(Some((codec::decode_head(&key, &entry.value)?, entry.version))),
    }
}

async fn read_record(store: &dyn Store, key: &str) -> EngineResult<Vec<u8>> {
    match store.get(key).await? {
        Some(entry) => Ok(entry.value),
        None => {
            Err(CoreError::CorruptRecord { key: key.to_owned(), detail: "named by the head but missing".into() }.into())
        }
    }
}

/// The records under `keys`, read in one go (one IndexedDB transaction); each must be there (a head
/// or snapshot names it).
async fn read_named(store: &dyn Store, keys: &[String]) -> EngineResult<Vec<Vec<u8>>> {
    let read = read_linked(store, keys.to_vec(), Rc::new(|_: &str, _: &Entry| Some(Vec::new()))).await?;
    budget_read(&read)?;
    let mut named = Named { read, next: 0 };
    keys.iter().map(|key| named.take(key)).collect()
}

/// What a read returned, taken by key; each must be there (a head or snapshot names it). In the
/// order the keys were asked for where the backend keeps it, so each is found at once (a long
/// session's load names thousands of batches: a search per key was quadratic); else searched.
struct Named {
    read: Linked,
    next: usize,
}

impl Named {
    fn take(&mut self, key: &str) -> EngineResult<Vec<u8>> {
        let read = &mut self.read;
        let at = match read.get(self.next) {
            Some((read_key, _)) if read_key == key => self.next,
            _ => read.iter().position(|(read_key, _)| read_key == key).unwrap_or(read.len()),
        };
        self.next = at + 1;
        read.get_mut(at).and_then(|(_, entry)| entry.take()).map(|entry| entry.value).ok_or_else(|| {
            CoreError::CorruptRecord { key: key.to_owned(), detail: "named by the head but missing".into() }.into()
        })
    }
}

/// Checks what a load read against the memory budget: decoding makes about one more copy of it.
fn budget_read(read: &Linked) -> EngineResult<()> {
    let bytes: usize = read.iter().filter_map(|(_, entry)| entry.as_ref()).map(|entry| entry.value.len()).sum();
    Ok(budget::check("loading a session's records", bytes as u64)?)
}

fn batch_of(key: &str, bytes: &[u8], (version, token): (u64, u64)) -> EngineResult<Batch> {
    let batch = codec::decode_batch(key, bytes)?;
    if batch.version != version || batch.token != token {
        return Err(CoreError::CorruptRecord { key: key.to_owned(), detail: "holds another version".into() }.into());
    }
    Ok(batch)
}

/// The batches of `(version, token)` pairs, read in one go.
async fn read_batches(store: &dyn Store, id: &str, wanted: Vec<(u64, u64)>) -> EngineResult<Vec<Batch>> {
    read_with_batches(store, id, None, wanted).await
}

/// Reads, in one go, the segments of `snapshot` (filling its messages and values) and the batches `wanted`.
async fn read_with_batches(
    store: &dyn Store,
    id: &str,
    snapshot: Option<&mut Snapshot>,
    wanted: Vec<(u64, u64)>,
) -> EngineResult<Vec<Batch>> {
    let segments: Vec<SnapshotRef> = snapshot.as_ref().map(|s| s.segments.clone()).unwrap_or_default();
    let mut keys: Vec<String> = segments.iter().map(|at| keys::segment_key(id, at.version, at.token)).collect();
    keys.extend(wanted.iter().map(|&(version, token)| keys::batch_key(id, version, token)));
    let records = read_named(store, &keys).await?;
    let (segment_records, batch_records) = records.split_at(segments.len());
    if let Some(snapshot) = snapshot {
        fill_from_segments(id, snapshot, segment_records)?;
    }
    let batches = keys[segments.len()..]
        .iter()
        .zip(batch_records)
        .zip(wanted)
        .map(|((key, bytes), pair)| batch_of(key, bytes, pair))
        .collect::<EngineResult<Vec<_>>>()?;
    Ok(batches)
}

/// Puts the messages of `segment_records` (the snapshot's segments, in order) into its state, and
/// its state values when they are in the segments' layers; checks the messages against its counts.
fn fill_from_segments(id: &str, snapshot: &mut Snapshot, segment_records: &[Vec<u8>]) -> EngineResult<()> {
    let from = snapshot.layers.map(|layers| layers.from as usize);
    for (index, (at, bytes)) in snapshot.segments.iter().zip(segment_records).enumerate() {
        let key = keys::segment_key(id, at.version, at.token);
        let segment = codec::decode_segment(&key, bytes)?;
        let corrupt = |detail: &str| CoreError::CorruptRecord { key: key.clone(), detail: detail.into() };
        if segment.version != at.version || segment.token != at.token {
            return Err(corrupt("holds another version").into());
        }
        for (agent, messages) in segment.agents {
            snapshot.state.agents.entry(agent).or_default().messages.extend(messages);
        }
        // The layers from `from` on; the one at `from` holds every value.
        match (from, segment.state) {
            (Some(from), Some(layer)) if index >= from => {
                if index == from && !layer.full {
                    return Err(corrupt("holds only some state values, where its snapshot reads them all").into());
                }
                apply_layer(&mut snapshot.state, layer);
            }
            (Some(from), None) if index == from => {
                return Err(corrupt("holds no state values, where its snapshot reads them all").into());
            }
            _ => {}
        }
    }
    for (agent, agent_state) in &snapshot.state.agents {
        let want = snapshot.count(agent);
        if !snapshot.segments.is_empty() && agent_state.messages.len() as u64 != want {
            let key = keys::snapshot_key(id, snapshot.version, snapshot.token);
            let detail =
                format!("its segments hold {} messages of \"{agent}\", it counts {want}", agent_state.messages.len());
            return Err(CoreError::CorruptRecord { key, detail }.into());
        }
    }
    Ok(())
}

/// The tokens of consecutive versions, as `(first version, its token and the next ones')`: one from
/// the head and one from each snapshot walked back (a few; not a map, one map type less in the .wasm).
type TokenRuns = Vec<(u64, Commits)>;

/// `(version, token)` for `versions`, from token runs; a version they lack is a gap in the head.
fn pairs(id: &str, runs: &TokenRuns, versions: std::ops::RangeInclusive<u64>) -> EngineResult<Vec<(u64, u64)>> {
    let token_of = |version: u64| runs.iter().find_map(|(first, tokens)| tokens.get(version.checked_sub(*first)?));
    versions.map(|version| Ok((version, token_of(version).ok_or_else(|| head_gap(id, version))?))).collect()
}

/// The snapshot record at `at`: state values, and its messages only in the first layout (a
/// segmented one names its segments; see [`read_with_batches`]).
pub(crate) async fn read_snapshot(store: &dyn Store, id: &str, at: SnapshotRef) -> EngineResult<Snapshot> {
    let key = keys::snapshot_key(id, at.version, at.token);
    let bytes = read_record(store, &key).await?;
    snapshot_of(&key, &bytes, at)
}

fn snapshot_of(key: &str, bytes: &[u8], at: SnapshotRef) -> EngineResult<Snapshot> {
    budget::check("loading a session's snapshot", bytes.len() as u64)?;
    let snapshot = codec::decode_snapshot(key, bytes)?;
    if snapshot.version != at.version || snapshot.token != at.token {
        return Err(CoreError::CorruptRecord { key: key.to_owned(), detail: "holds another version".into() }.into());
    }
    Ok(snapshot)
}

/// A stored session read whole: its head, the head's store version, the state at the head and the
/// newest snapshot's meta (see [`load_state`]).
pub(crate) struct LoadedSession {
    pub head: Head,
    pub version: Version,
    pub state: SessionState,
    pub snapshot: Option<Snapshot>,
}

/// Reads session `id` whole, head and records in one go (one IndexedDB transaction), or `None`
/// when it does not exist.
pub(crate) async fn load_session(store: &dyn Store, id: &str) -> EngineResult<Option<LoadedSession>> {
    let head_key = keys::head_key(id);
    let mut read = read_linked(store, vec![head_key.clone()], follow_links(id)).await?;
    let Some(entry) = take_linked(&mut read, &head_key) else { return Ok(None) };
    let head = codec::decode_head(&head_key, &entry.value)?;
    let (state, snapshot) = state_from(id, &head, read)?;
    Ok(Some(LoadedSession { head, version: entry.version, state, snapshot }))
}

/// The state at `head.version`: the newest snapshot plus the batches after it.
pub(crate) async fn load_state(
    store: &dyn Store,
    id: &str,
    head: &Head,
) -> EngineResult<(SessionState, Option<Snapshot>)> {
    let read = read_linked(store, records_of_head(id, head)?, follow_links(id)).await?;
    state_from(id, head, read)
}

/// What a whole load reads after the head: its newest snapshot and the batches after it.
fn records_of_head(id: &str, head: &Head) -> EngineResult<Vec<String>> {
    let snapshot = head.snapshot.map(|at| keys::snapshot_key(id, at.version, at.token));
    let batches = named_after(id, head, head.snapshot_version())?;
    Ok(snapshot.into_iter().chain(batches.into_iter().map(|(v, t)| keys::batch_key(id, v, t))).collect())
}

/// What a load reads next because of a record it read: a head names its snapshot and batches, a
/// snapshot its segments. Only a prefetch: a record that does not decode names nothing here, and
/// [`state_from`] reports it when it decodes it again.
fn follow_links(id: &str) -> Follow {
    let (id, head_key) = (id.to_owned(), keys::head_key(id));
    Rc::new(move |key: &str, entry: &Entry| {
        if key == head_key {
            // Sealed or not: what a head names is its readable bookkeeping.
            let (head, _) = codec::decode_any_head(key, &entry.value).ok()?;
            records_of_head(&id, &head).ok()
        } else if keys::parse_record_key(key).is_some_and(|(kind, _, _)| kind == 's') {
            // A sealed snapshot names its segments readable, so they are read with it.
            Some(segment_keys(&id, &codec::snapshot_segments(key, &entry.value).ok()?))
        } else {
            Some(Vec::new())
        }
    })
}

fn segment_keys(id: &str, segments: &[SnapshotRef]) -> Vec<String> {
    segments.iter().map(|at| keys::segment_key(id, at.version, at.token)).collect()
}

/// The state at `head.version` from the records a load read (`read`, which must hold every record
/// the head names and its snapshot's segments).
fn state_from(id: &str, head: &Head, read: Linked) -> EngineResult<(SessionState, Option<Snapshot>)> {
    budget_read(&read)?;
    let mut named = Named { read, next: 0 };
    let mut take = |key: &str| named.take(key);
    let mut snapshot = match head.snapshot {
        Some(at) => {
            let key = keys::snapshot_key(id, at.version, at.token);
            Some(snapshot_of(&key, &take(&key)?, at)?)
        }
        None => None,
    };
    if let Some(snapshot) = snapshot.as_mut() {
        let segments =
            segment_keys(id, &snapshot.segments).iter().map(|key| take(key)).collect::<EngineResult<Vec<_>>>()?;
        fill_from_segments(id, snapshot, &segments)?;
    }
    let mut state = snapshot.as_ref().map(|snapshot| snapshot.state.clone()).unwrap_or_default();
    for (version, token) in named_after(id, head, head.snapshot_version())? {
        let key = keys::batch_key(id, version, token);
        state.apply_all(&batch_of(&key, &take(&key)?, (version, token))?.events);
    }
    // What a later snapshot needs of this one: its segments, counts and state values (not its
    // messages; the values are shared with the state, not copied).
    let meta = snapshot.map(|snapshot| Snapshot { state: without_messages(&snapshot.state), ..snapshot });
    Ok((state, meta))
}

/// The `(version, token)` of the batches after `after` up to the head, which the head names.
fn named_after(id: &str, head: &Head, after: u64) -> EngineResult<Vec<(u64, u64)>> {
    (after + 1..=head.version)
        .map(|version| Ok((version, head.token_of(version).ok_or_else(|| head_gap(id, version))?)))
        .collect()
}

/// The batches of versions `after + 1 ..= last` (`head.version` at most): their tokens from the head,
/// or, for versions at or below its snapshot, from the snapshots (read back as far as `after`).
pub(crate) async fn batches_after(
    store: &dyn Store,
    id: &str,
    head: &Head,
    after: u64,
    last: u64,
) -> EngineResult<Vec<Batch>> {
    let versions = after + 1..=last.min(head.version);
    let named = match versions.clone().map(|version| Ok((version, head.token_of(version).ok_or(())?))).collect() {
        Ok(named) => named,
        Err(()) => {
            let (tokens, _) = tokens_from(store, id, head, after + 1, false).await?;
            pairs(id, &tokens, versions)?
        }
    };
    read_batches(store, id, named).await
}

fn head_gap(id: &str, version: u64) -> CoreError {
    CoreError::CorruptRecord { key: keys::head_key(id), detail: format!("names no batch for version {version}") }
}

/// Tokens of versions `from..=head.version`, walking snapshots back as far as needed; also the
/// newest snapshot at or below `from - 1` when `want_base` (for time travel).
async fn tokens_from(
    store: &dyn Store,
    id: &str,
    head: &Head,
    from: u64,
    want_base: bool,
) -> EngineResult<(TokenRuns, Option<Snapshot>)> {
    let mut runs = vec![(head.snapshot_version() + 1, head.commits.clone())];
    let mut cursor = head.snapshot;
    while let Some(at) = cursor {
        if at.version < from {
            let base = if want_base { Some(read_snapshot(store, id, at).await?) } else { None };
            return Ok((runs, base));
        }
        let snapshot = read_snapshot(store, id, at).await?;
        let start = snapshot.previous.map_or(0, |previous| previous.version);
        runs.push((start + 1, snapshot.commits));
        cursor = snapshot.previous;
    }
    Ok((runs, None))
}

/// The state as of `version` (which must be at most `head.version`) and the events of `version`'s
/// own batch (what tells its status).
pub(crate) async fn state_at(
    store: &dyn Store,
    id: &str,
    head: &Head,
    version: u64,
) -> EngineResult<(SessionState, Vec<Event>)> {
    let (tokens, mut base) = tokens_from(store, id, head, version + 1, true).await?;
    let start = base.as_ref().map_or(0, |snapshot| snapshot.version);
    let wanted = match &base {
        // A snapshot of `version` itself holds its state, not the events that ended it (an interrupt,
        // a close): its batch is read too, for them only. The snapshot's commits name its token.
        Some(snapshot) if version > 0 && snapshot.version == version => {
            let first = snapshot.previous.map_or(0, |previous| previous.version) + 1;
            pairs(id, &vec![(first, snapshot.commits.clone())], version..=version)?
        }
        _ => pairs(id, &tokens, start + 1..=version)?,
    };
    let batches = read_with_batches(store, id, base.as_mut(), wanted).await?;
    let mut state = base.map(|snapshot| snapshot.state).unwrap_or_default();
    let mut last = Vec::new();
    for batch in batches {
        if batch.version > start {
            state.apply_all(&batch.events);
        }
        last = batch.events;
    }
    Ok((state, last))
}

/// One event of `history()`, with the batch it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    pub version: u64,
    pub at: u64,
    pub invocation: String,
    pub traceparent: Option<String>,
    /// `None` for the synthesized `created` event of version 0.
    pub event: Option<Event>,
}

/// Events of versions `from..=to` in commit order; version 0 is the session's creation.
pub(crate) async fn history(
    store: &dyn Store,
    id: &str,
    head: &Head,
    from: u64,
    to: u64,
) -> EngineResult<Vec<HistoryEvent>> {
    let mut events = Vec::new();
    if from == 0 {
        events.push(HistoryEvent {
            version: 0,
            at: head.created_at,
            invocation: String::new(),
            traceparent: None,
            event: None,
        });
    }
    let (tokens, _) = tokens_from(store, id, head, from.max(1), false).await?;
    for batch in read_batches(store, id, pairs(id, &tokens, from.max(1)..=to)?).await? {
        let version = batch.version;
        for event in batch.events {
            events.push(HistoryEvent {
                version,
                at: batch.at,
                invocation: batch.invocation.clone(),
                traceparent: batch.traceparent.clone(),
                event: Some(event),
            });
        }
    }
    Ok(events)
}

/// Applies one state layer: a full one replaces every value, a partial one sets and deletes some.
fn apply_layer(state: &mut SessionState, layer: StateLayer) {
    if layer.full {
        for agent_state in state.agents.values_mut() {
            agent_state.state.clear();
        }
    }
    state.apply_all(&layer.events);
}

/// `state` with its state values and compactions only.
fn without_messages(state: &SessionState) -> SessionState {
    let mut kept = SessionState::default();
    for (agent, a) in &state.agents {
        kept.agents.insert(agent.clone(), AgentState { messages: Vec::new(), state: a.state.clone(), ..*a });
    }
    kept
}

/// What a later snapshot needs of an agent's state besides its counts: how many compactions its
/// messages went through (no messages, no values).
pub(crate) fn compactions_of(state: &SessionState) -> SessionState {
    let mut kept = SessionState::default();
    for (agent, agent_state) in &state.agents {
        kept.agents.entry(agent.clone()).or_default().compactions = agent_state.compactions;
    }
    kept
}
