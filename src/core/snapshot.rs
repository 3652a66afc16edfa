//! What a snapshot writes: the messages new since the snapshot before it, as one immutable segment,
//! and a small record of state values, message counts and the segments that hold every message.
//! Nothing written before is written again, so a snapshot's cost follows what changed, not the
//! session's length (DESIGN.md "Storage layout"; docs/storage-layout.md).

use std::collections::BTreeMap;

use crate::core::event::{Event, SessionState};
use crate::core::record::{Segment, Snapshot, SnapshotRef};

/// The segment (if any message is new) and the snapshot of the commit that takes `state` (the
/// state before it) to `version` with `events`, under `token`. `previous` is the snapshot before
/// (state values not needed: its `segments` and `counts`), `commits` the tokens since it.
pub fn next_snapshot(
    state: &SessionState,
    events: &[Event],
    previous: Option<&Snapshot>,
    version: u64,
    token: u64,
    commits: Vec<u64>,
) -> (Option<Segment>, Snapshot) {
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
        let counts = after.agents.iter().map(|(agent, a)| (agent.clone(), a.messages.len() as u64)).collect();
        let agents: Vec<_> = after
            .agents
            .iter_mut()
            .filter(|(_, a)| !a.messages.is_empty())
            .map(|(agent, a)| (agent.clone(), std::mem::take(&mut a.messages)))
            .collect();
        let segment = (!agents.is_empty()).then_some(Segment { version, token, agents });
        let segments = segment.iter().map(|_| SnapshotRef { version, token }).collect();
        let snapshot = Snapshot { version, token, previous: previous_ref, commits, segments, counts, state: after };
        return (segment, snapshot);
    }
    let mut after = SessionState { agents: BTreeMap::new() };
    // State values after the commit (messages are counted, not copied).
    for (agent, agent_state) in &state.agents {
        let kept = after.agents.entry(agent.clone()).or_default();
        kept.state = agent_state.state.clone();
        kept.compactions = agent_state.compactions;
    }
    let mut counts: BTreeMap<String, u64> =
        state.agents.iter().map(|(agent, a)| (agent.clone(), a.messages.len() as u64)).collect();
    // Few agents: a list (one less map type in the .wasm).
    let mut appended: Vec<(&str, Vec<crate::core::Json>)> = Vec::new();
    for event in events {
        match event {
            Event::Message { agent, data } => {
                *counts.entry(agent.clone()).or_default() += 1;
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
    let covered = |agent: &str| -> usize { base.and_then(|p| p.counts.get(agent)).map_or(0, |n| *n as usize) };
    let mut segment_agents = Vec::new();
    for agent in counts.keys() {
        // Every committed message past the covered ones, then every message this commit appends.
        let mut messages: Vec<crate::core::Json> = committed(agent)[covered(agent)..].to_vec();
        messages.extend(appended.iter().filter(|(a, _)| a == agent).flat_map(|(_, m)| m.iter().cloned()));
        if !messages.is_empty() {
            segment_agents.push((agent.clone(), messages));
        }
    }
    let mut segments = base.map(|p| p.segments.clone()).unwrap_or_default();
    let segment = (!segment_agents.is_empty()).then(|| {
        segments.push(SnapshotRef { version, token });
        Segment { version, token, agents: segment_agents }
    });
    let snapshot = Snapshot { version, token, previous: previous_ref, commits, segments, counts, state: after };
    (segment, snapshot)
}
