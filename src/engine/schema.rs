//! Schema migrations of the application's own data (`schema: { version, migrate }`): a session
//! committed under an older application schema is shown migrated as soon as it is loaded (nothing
//! written by a read); the next commit writes the migrated data as `migrated` events. The
//! migration functions are the host's code, run here on load.

use std::any::Any;
use std::rc::Rc;

use crate::core::limits::{self, Limits};
use crate::core::{AgentState, CoreError, Event, Head, SessionState};
use crate::engine::error::{EngineError, EngineResult};

/// The host's migrations: `migrate(to, agent, data)` turns an agent's data of schema `to - 1` into
/// schema `to`.
pub trait Migrate {
    fn migrate(&self, to: u64, agent: &str, data: &AgentState) -> Result<AgentState, MigrationFailure>;
}

/// Why a migration failed: it threw (`cause`), returned what is not JSON, or is missing.
#[derive(Clone)]
pub struct MigrationFailure {
    pub message: String,
    pub cause: Option<Rc<dyn Any>>,
}

impl std::fmt::Debug for MigrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `Ok(true)` when a session at `head` must be shown migrated to `supported`; a session of a newer
/// schema than this store's is refused.
pub(crate) fn needs_migration(head: &Head, supported: u64) -> EngineResult<bool> {
    if head.schema > supported {
        return Err(EngineError::SchemaVersion { stored: head.schema, supported });
    }
    Ok(head.schema < supported)
}

/// The application schema an old version was committed under, from the events of the versions after
/// it (in commit order) and the head's schema: the first migration after it started from that schema;
/// with none after it, the head's is its.
pub(crate) fn schema_at<'a>(later: impl IntoIterator<Item = &'a Event>, head_schema: u64) -> u64 {
    later
        .into_iter()
        .find_map(|event| match event {
            Event::Migrated { from, .. } => Some(*from),
            _ => None,
        })
        .unwrap_or(head_schema)
}

/// `state` (of schema `from`) migrated to `to`, every agent step by step.
pub(crate) fn migrate_state(
    migrate: Option<&dyn Migrate>,
    limits: &Limits,
    state: &SessionState,
    from: u64,
    to: u64,
) -> EngineResult<SessionState> {
    let mut migrated = state.clone();
    for (agent, data) in migrated.agents.iter_mut() {
        for step in from + 1..=to {
            let failed = |failure: MigrationFailure| EngineError::Migration {
                from: step - 1,
                to: step,
                message: failure.message,
                cause: failure.cause,
            };
            let migrate = migrate.ok_or_else(|| {
                failed(MigrationFailure { message: format!("no migration to schema {step}"), cause: None })
            })?;
            let compactions = data.compactions;
            *data = migrate.migrate(step, agent, data).map_err(failed)?;
            check_migrated(limits, data).map_err(|refused| {
                failed(MigrationFailure {
                    message: format!("what schema.migrate[{step}] returned is refused: {refused}"),
                    cause: None,
                })
            })?;
            data.compactions = compactions;
        }
    }
    Ok(migrated)
}

/// What a migration returned, held to the rules of what a turn stages: state keys of 1 to 256 UTF-8
/// bytes, each message and state value within the store's limits (it is committed as it is).
fn check_migrated(limits: &Limits, data: &AgentState) -> Result<(), CoreError> {
    for message in &data.messages {
        limits.check_message(message.len())?;
    }
    for (key, value) in &data.state {
        limits::check_name("a state key", key)?;
        limits.check_state_value(value.len())?;
    }
    Ok(())
}

/// The events that persist a migrated view: one `migrated` event per agent, first in the batch of
/// the commit after the migration.
pub(crate) fn migrated_events(state: &SessionState, from: u64, to: u64) -> Vec<Event> {
    state
        .agents
        .iter()
        .map(|(agent, data)| Event::Migrated {
            agent: agent.clone(),
            from,
            to,
            messages: data.messages.clone(),
            state: data.state.clone(),
        })
        .collect()
}
