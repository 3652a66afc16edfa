//! Session events and the fold: the state of a session is the fold of its events.

use std::collections::BTreeMap;

use crate::core::record::{Json, TurnOutcome};

/// One immutable change, as committed in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message {
        agent: String,
        data: Json,
    },
    StateSet {
        agent: String,
        key: String,
        data: Json,
    },
    StateDelete {
        agent: String,
        key: String,
    },
    /// The turn ended with a question; `data` is the payload (`null` when none).
    Interrupt {
        reason: String,
        data: Json,
    },
    /// The answer to the pending interrupt, first event of a resumed turn.
    Resume {
        data: Json,
    },
    Closed,
    /// First event of a fork: `{"from": id, "version": v}`; the copied content follows it.
    Forked {
        data: Json,
    },
    /// The agent's first `before` messages (as the fold has them at this point) are replaced by
    /// `summary`; the replaced message events stay in their batches (history, `at`).
    Compacted {
        agent: String,
        before: u64,
        summary: Vec<Json>,
    },
    /// The agent's data as migrated from application schema `from` to `to` (the `schema` store
    /// option): first events of the first commit after the migration; they replace the agent's
    /// messages and state.
    Migrated {
        agent: String,
        from: u64,
        to: u64,
        messages: Vec<Json>,
        state: BTreeMap<String, Json>,
    },
    /// The turn ended because `session.stop()` was called (by the owner `by`): in the version that
    /// ended it, the holder's (`Stopped`) or the stopper's fence (`Fenced`).
    Stopped {
        reason: String,
        by: String,
        outcome: TurnOutcome,
    },
}

impl Event {
    /// The first event of a fork of session `from` at its `version`.
    pub fn forked(from: &str, version: u64) -> Event {
        Event::Forked { data: format!("{{\"from\":{},\"version\":{version}}}", json_string(from)).into() }
    }

    /// The `type` string of the JS `SessionEvent`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Message { .. } => "message",
            Event::StateSet { .. } => "state.set",
            Event::StateDelete { .. } => "state.delete",
            Event::Interrupt { .. } => "interrupt",
            Event::Resume { .. } => "resume",
            Event::Closed => "closed",
            Event::Forked { .. } => "forked",
            Event::Stopped { .. } => "stopped",
            Event::Compacted { .. } => "compacted",
            Event::Migrated { .. } => "migrated",
        }
    }

    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::Message { agent, .. }
            | Event::StateSet { agent, .. }
            | Event::StateDelete { agent, .. }
            | Event::Compacted { agent, .. }
            | Event::Migrated { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// Bytes this event adds to a commit, for the commit size limit.
    pub fn weight(&self) -> usize {
        let text = |s: &str| s.len();
        match self {
            Event::Message { agent, data } => text(agent) + text(data),
            Event::StateSet { agent, key, data } => text(agent) + text(key) + text(data),
            Event::StateDelete { agent, key } => text(agent) + text(key),
            Event::Interrupt { reason, data } => text(reason) + text(data),
            Event::Resume { data } | Event::Forked { data } => text(data),
            Event::Closed => 0,
            Event::Stopped { reason, by, .. } => text(reason) + text(by),
            Event::Compacted { agent, summary, .. } => text(agent) + summary.iter().map(|m| text(m)).sum::<usize>(),
            Event::Migrated { agent, messages, state, .. } => {
                text(agent)
                    + messages.iter().map(|m| text(m)).sum::<usize>()
                    + state.iter().map(|(k, v)| text(k) + text(v)).sum::<usize>()
            }
        }
    }
}

/// Messages and key/value state of one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentState {
    pub messages: Vec<Json>,
    pub state: BTreeMap<String, Json>,
    /// How many compactions the messages went through: a snapshot whose segments were written
    /// under another count cannot be extended, since the messages it holds were replaced.
    pub compactions: u64,
}

/// The folded state of a session: one [`AgentState`] per agent that ever wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    pub agents: BTreeMap<String, AgentState>,
}

impl SessionState {
    /// Applies one event. Events that carry no agent data (interrupt, resume, closed, forked) live in
    /// the head and the history only.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Message { agent, data } => self.agent_mut(agent).messages.push(data.clone()),
            Event::StateSet { agent, key, data } => {
                self.agent_mut(agent).state.insert(key.clone(), data.clone());
            }
            Event::StateDelete { agent, key } => {
                if let Some(agent_state) = self.agents.get_mut(agent.as_str()) {
                    agent_state.state.remove(key);
                }
            }
            Event::Compacted { agent, before, summary } => {
                let agent_state = self.agent_mut(agent);
                let cut = (*before).min(agent_state.messages.len() as u64) as usize;
                agent_state.messages.splice(..cut, summary.iter().cloned());
                agent_state.compactions += 1;
            }
            Event::Migrated { agent, messages, state, .. } => {
                let agent_state = self.agent_mut(agent);
                agent_state.messages.clone_from(messages);
                agent_state.state.clone_from(state);
                // Its messages were replaced, as by a compaction (snapshots start their segments again).
                agent_state.compactions += 1;
            }
            Event::Interrupt { .. }
            | Event::Resume { .. }
            | Event::Closed
            | Event::Forked { .. }
            | Event::Stopped { .. } => {}
        }
    }

    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events {
            self.apply(event);
        }
    }

    pub fn agent(&self, agent: &str) -> Option<&AgentState> {
        self.agents.get(agent)
    }

    fn agent_mut(&mut self, agent: &str) -> &mut AgentState {
        self.agents.entry(agent.to_owned()).or_default()
    }

    /// The events that rebuild this state from nothing (what a fork copies).
    pub fn to_events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for (agent, agent_state) in &self.agents {
            for data in &agent_state.messages {
                events.push(Event::Message { agent: agent.clone(), data: data.clone() });
            }
            for (key, data) in &agent_state.state {
                events.push(Event::StateSet { agent: agent.clone(), key: key.clone(), data: data.clone() });
            }
        }
        events
    }
}

/// A string as JSON text (for the small JSON the engine writes itself).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
