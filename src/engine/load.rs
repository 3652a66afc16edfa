//! Reading sessions back: head, snapshot + later batches, time travel and history.
//!
//! A batch is found by the (version, token) pair that a head or snapshot names; the tokens of old
//! versions are found by walking the snapshot chain back from the head.

use std::collections::BTreeMap;

use crate::core::{codec, keys, Batch, CoreError, Event, Head, SessionState, Snapshot, SnapshotRef};
use crate::engine::error::EngineResult;
use crate::store::{budget, Store, Version};

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

/// The batches of `(version, token)` pairs, read in one go (one IndexedDB transaction).
async fn read_batches(store: &dyn Store, id: &str, wanted: Vec<(u64, u64)>) -> EngineResult<Vec<Batch>> {
    let keys: Vec<String> = wanted.iter().map(|&(version, token)| keys::batch_key(id, version, token)).collect();
    let entries = store.get_many(keys.clone()).await?;
    let bytes: usize = entries.iter().flatten().map(|entry| entry.value.len()).sum();
    // Decoding makes about one more copy of what was read.
    budget::check("loading a session's batches", bytes as u64)?;
    let mut batches = Vec::with_capacity(wanted.len());
    for ((key, entry), (version, token)) in keys.into_iter().zip(entries).zip(wanted) {
        let Some(entry) = entry else {
            return Err(CoreError::CorruptRecord { key, detail: "named by the head but missing".into() }.into());
        };
        let batch = codec::decode_batch(&key, &entry.value)?;
        if batch.version != version || batch.token != token {
            return Err(CoreError::CorruptRecord { key, detail: "holds another version".into() }.into());
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// `(version, token)` for `versions`, from a token map; a version it lacks is a gap in the head.
fn pairs(
    id: &str,
    tokens: &BTreeMap<u64, u64>,
    versions: std::ops::RangeInclusive<u64>,
) -> EngineResult<Vec<(u64, u64)>> {
    versions.map(|version| Ok((version, *tokens.get(&version).ok_or_else(|| head_gap(id, version))?))).collect()
}

async fn read_snapshot(store: &dyn Store, id: &str, at: SnapshotRef) -> EngineResult<Snapshot> {
    let key = keys::snapshot_key(id, at.version, at.token);
    let bytes = read_record(store, &key).await?;
    budget::check("loading a session's snapshot", bytes.len() as u64)?;
    let snapshot = codec::decode_snapshot(&key, &bytes)?;
    if snapshot.version != at.version || snapshot.token != at.token {
        return Err(CoreError::CorruptRecord { key, detail: "holds another version".into() }.into());
    }
    Ok(snapshot)
}

/// The state at `head.version`: the newest snapshot plus the batches after it.
pub(crate) async fn load_state(store: &dyn Store, id: &str, head: &Head) -> EngineResult<SessionState> {
    let mut state = match head.snapshot {
        Some(at) => read_snapshot(store, id, at).await?.state,
        None => SessionState::default(),
    };
    apply_batches(store, id, head, head.snapshot_version() + 1, &mut state).await?;
    Ok(state)
}

/// The batches of versions `after + 1 ..= head.version`, which the head names (the caller checked
/// that `after` is not below the head's snapshot).
pub(crate) async fn batches_after(store: &dyn Store, id: &str, head: &Head, after: u64) -> EngineResult<Vec<Batch>> {
    let wanted = (after + 1..=head.version)
        .map(|version| Ok((version, head.token_of(version).ok_or_else(|| head_gap(id, version))?)))
        .collect::<EngineResult<Vec<_>>>()?;
    read_batches(store, id, wanted).await
}

async fn apply_batches(
    store: &dyn Store,
    id: &str,
    head: &Head,
    from: u64,
    state: &mut SessionState,
) -> EngineResult<()> {
    for batch in batches_after(store, id, head, from - 1).await? {
        state.apply_all(&batch.events);
    }
    Ok(())
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
) -> EngineResult<(BTreeMap<u64, u64>, Option<Snapshot>)> {
    let mut tokens = BTreeMap::new();
    let base = head.snapshot_version();
    for (offset, token) in head.commits.iter().enumerate() {
        tokens.insert(base + 1 + offset as u64, *token);
    }
    let mut cursor = head.snapshot;
    while let Some(at) = cursor {
        if at.version < from {
            let base = if want_base { Some(read_snapshot(store, id, at).await?) } else { None };
            return Ok((tokens, base));
        }
        let snapshot = read_snapshot(store, id, at).await?;
        let start = snapshot.previous.map_or(0, |previous| previous.version);
        for (offset, token) in snapshot.commits.iter().enumerate() {
            tokens.insert(start + 1 + offset as u64, *token);
        }
        cursor = snapshot.previous;
    }
    Ok((tokens, None))
}

/// The state as of `version` (which must be at most `head.version`) and the last batch's events.
pub(crate) async fn state_at(
    store: &dyn Store,
    id: &str,
    head: &Head,
    version: u64,
) -> EngineResult<(SessionState, Vec<Event>)> {
    let (tokens, base) = tokens_from(store, id, head, version + 1, true).await?;
    let (mut state, start) = match base {
        Some(snapshot) => (snapshot.state, snapshot.version),
        None => (SessionState::default(), 0),
    };
    let mut last = Vec::new();
    for batch in read_batches(store, id, pairs(id, &tokens, start + 1..=version)?).await? {
        state.apply_all(&batch.events);
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
