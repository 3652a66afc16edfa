//! What a snapshot writes: the messages new since the snapshot before it, and the state values set
//! or deleted since, as one immutable segment, and a small record of message counts and the segments
//! that hold every message and value. Nothing written before is written again (but for a full state
//! layer, once the layers repeat more than the state holds), so a snapshot's cost follows what
//! changed, not the session's length (DESIGN.md "Storage layout"; docs/storage-layout.md).

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::core::commits::Commits;
use crate::core::event::{Event, SessionState};
use crate::core::record::{Json, Layers, Segment, Snapshot, SnapshotRef, StateLayer};

/// The snapshot a new one builds on: the record (its segments, counts, compactions and layers), and
/// the state values at its version when the caller has them (a store that wrote or loaded it). Without
/// them the new snapshot writes a full state layer.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub snapshot: &'a Snapshot,
    pub values: Option<&'a SessionState>,
}

/// The segment holding every message and value of `after` (the state at `version`) and the snapshot
/// that names it alone: a segment list that starts again, so that no segment written before is
/// needed (after a compaction, and for a prune at the latest version). `previous` and `commits` keep
/// the snapshot's place in the chain, as for any snapshot.
pub fn self_contained(
    mut after: SessionState,
    previous: Option<SnapshotRef>,
    version: u64,
    token: u64,
    commits: Commits,
) -> (Option<Segment>, Snapshot) {
    let counts = after.agents.iter().map(|(agent, a)| (agent.clone(), a.messages.len() as u64)).collect();
    let agents: Vec<_> = after
        .agents
        .iter_mut()
        .filter(|(_, a)| !a.messages.is_empty())
        .map(|(agent, a)| (agent.clone(), std::mem::take(&mut a.messages)))
        .collect();
    let layer = full_layer(&after);
    let layers = Some(Layers { from: 0, bytes: layer_bytes(&layer) });
    let segment = Segment { version, token, agents, state: Some(layer) };
    let segments = vec![SnapshotRef { version, token }];
    let snapshot = Snapshot { version, token, previous, commits, segments, counts, state: after, layers };
    (Some(segment), snapshot)
}

/// The segment (if any message or value is new) and the snapshot of the commit that takes `state`
/// (the state before it) to `version` with `events`, under `token`. `previous` is the snapshot
/// before, `commits` the tokens since it. The snapshot returned holds the state values after the
/// commit (not its messages), which a store keeps as the next one's `Previous::values`.
pub fn next_snapshot(
    state: &SessionState,
    events: &[Event],
    previous: Option<Previous>,
    version: u64,
    token: u64,
    commits: Commits,
) -> (Option<Segment>, Snapshot) {
    let values = previous.and_then(|p| p.values);
    let previous = previous.map(|p| p.snapshot);
    let previous_ref = previous.map(|p| SnapshotRef { version: p.version, token: p.token });
    // Segments hold messages as appended; once a compaction replaced some (in this commit, or since
    // the previous snapshot's segments were written), the list starts again with the compacted view.
    let compactions = |s: &SessionState, agent: &str| s.agent(agent).map_or(0, |a| a.compactions);
    let compacted = events.iter().any(|event| matches!(event, Event::Compacted { .. } | Event::Migrated { .. }))
        || previous.is_some_and(|p| {
            state.agents.keys().any(|agent| compactions(&p.state, agent) != compactions(state, agent))
        });
    if compacted {
        let mut after = state.clone();
        after.apply_all(events);
        return self_contained(after, previous_ref, version, token, commits);
    }
    let mut after = SessionState { agents: BTreeMap::new() };
    // State values after the commit (messages are counted, not copied).
    for (agent, agent_state) in &state.agents {
        let kept = after.agents.entry(agent.clone()).or_default();
        kept.state = agent_state.state.clone();
        kept.compactions = agent_state.compactions;
    }
    let mut counts: Vec<(String, u64)> =
        state.agents.iter().map(|(agent, a)| (agent.clone(), a.messages.len() as u64)).collect();
    // Few agents: a list (one less map type in the .wasm).
    let mut appended: Vec<(&str, Vec<crate::core::Json>)> = Vec::new();
    for event in events {
        match event {
            Event::Message { agent, data } => {
                // Kept in agent order, as the fold's map has them.
                let at = counts.partition_point(|(name, _)| name < agent);
                match counts.get_mut(at).filter(|(name, _)| name == agent) {
                    Some((_, n)) => *n += 1,
                    None => counts.insert(at, (agent.clone(), 1)),
                }
                after.agents.entry(agent.clone()).or_default();
                match appended.iter_mut().find(|(a, _)| a == agent) {
                    Some((_, messages)) => messages.push(data.clone()),
                    None => appended.push((agent, vec![data.clone()])),
                }
            }
            other => after.apply(other),
        }
    }
    // What the previous snapshot's segments hold. It is of an earlier version than `state`, so it
    // counts at most the messages `state` has. A snapshot of the first layout (messages inline)
    // holds nothing in segments; nor, to be safe, does one that counts more than `state` has: then
    // this segment starts the list again with every message.
    let committed = |agent: &str| state.agent(agent).map_or(&[][..], |a| &a.messages[..]);
    let base = previous
        .filter(|p| !p.segments.is_empty() && p.counts.iter().all(|(agent, n)| *n as usize <= committed(agent).len()));
    let covered = |agent: &str| -> usize { base.map_or(0, |p| p.count(agent) as usize) };
    let mut segment_agents = Vec::new();
    for (agent, _) in &counts {
        // Every committed message past the covered ones, then every message this commit appends.
        let mut messages: Vec<crate::core::Json> = committed(agent)[covered(agent)..].to_vec();
        messages.extend(appended.iter().filter(|(a, _)| a == agent).flat_map(|(_, m)| m.iter().cloned()));
        if !messages.is_empty() {
            segment_agents.push((agent.clone(), messages));
        }
    }
    let mut segments = base.map(|p| p.segments.clone()).unwrap_or_default();
    // The values set or deleted since the snapshot before, when its layers go on in this list and
    // its values are known, unless the layers would then repeat more than the state holds: then,
    // as for a list that starts here, every value.
    let since = base.and_then(|p| {
        let (layers, layer) = (p.layers?, diff_layer(values?, &after));
        Some((layers.bytes + layer_bytes(&layer), layers, layer))
    });
    let (layer, layers) = match since {
        Some((bytes, layers, layer)) if bytes <= 2 * values_bytes(&after) => {
            ((!layer.events.is_empty()).then_some(layer), Layers { bytes, ..layers })
        }
        _ => {
            let layer = full_layer(&after);
            let layers = Layers { from: segments.len() as u64, bytes: layer_bytes(&layer) };
            (Some(layer), layers)
        }
    };
    let segment = (!segment_agents.is_empty() || layer.is_some()).then(|| {
        segments.push(SnapshotRef { version, token });
        Segment { version, token, agents: segment_agents, state: layer }
    });
    let layers = Some(layers);
    let snapshot = Snapshot { version, token, previous: previous_ref, commits, segments, counts, state: after, layers };
    (segment, snapshot)
}

/// Every state value of `state`, as the events that set them.
fn full_layer(state: &SessionState) -> StateLayer {
    let sets =
        state.agents.iter().flat_map(|(agent, a)| a.state.iter().map(move |(key, value)| set(agent, key, value)));
    StateLayer { full: true, events: sets.collect() }
}

/// The values `after` sets (new, or other than in `before`) and deletes (in `before` only), in one
/// pass over both maps in key order. A value carried over from `before` is the same `Rc`, which makes
/// the usual case a pointer compare.
fn diff_layer(before: &SessionState, after: &SessionState) -> StateLayer {
    let empty = BTreeMap::new();
    let mut events = Vec::new();
    let names = before.agents.keys().chain(after.agents.keys().filter(|agent| !before.agents.contains_key(*agent)));
    for agent in names {
        let delete = |key: &String| Event::StateDelete { agent: agent.clone(), key: key.clone() };
        let mut old = before.agents.get(agent).map_or(&empty, |a| &a.state).iter().peekable();
        for (key, value) in after.agents.get(agent).map_or(&empty, |a| &a.state) {
            while let Some((gone, _)) = old.next_if(|(was, _)| *was < key) {
                events.push(delete(gone));
            }
            match old.next_if(|(was, _)| *was == key) {
                Some((_, was)) if Rc::ptr_eq(was, value) || was == value => {}
                _ => events.push(set(agent, key, value)),
            }
        }
        events.extend(old.map(|(gone, _)| delete(gone)));
    }
    StateLayer { full: false, events }
}

fn set(agent: &str, key: &str, value: &Json) -> Event {
    Event::StateSet { agent: agent.to_owned(), key: key.to_owned(), data: value.clone() }
}

/// What a layer holds, in bytes of keys and values.
fn layer_bytes(layer: &StateLayer) -> u64 {
    let bytes = |event: &Event| match event {
        Event::StateSet { key, data, .. } => key.len() + data.len(),
        Event::StateDelete { key, .. } => key.len(),
        _ => 0,
    };
    layer.events.iter().map(bytes).sum::<usize>() as u64
}

/// What the state values of `state` hold, in bytes of keys and values.
fn values_bytes(state: &SessionState) -> u64 {
    let entries = state.agents.values().flat_map(|a| a.state.iter());
    entries.map(|(key, value)| key.len() + value.len()).sum::<usize>() as u64
}
