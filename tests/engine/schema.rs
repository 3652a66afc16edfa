//! Schema migrations through the engine: a session written under schema 1, read by a store at
//! schema 3 (two steps), persisted by the next commit; newer schemas and failing migrations refused
//! with nothing written.

use std::rc::Rc;

use agent_session::core::{AgentState, Event};
use agent_session::engine::{Config, EngineError, Migrate, MigrationFailure, OpenOptions, SessionStore};

use crate::basics::{begin, j, open, texts, turn};
use crate::support::*;

/// Step 2 wraps every message in an array, step 3 counts them in state `n`; `fail_at` throws.
struct Steps {
    fail_at: Option<u64>,
}

impl Migrate for Steps {
    fn migrate(&self, to: u64, _agent: &str, data: &AgentState) -> Result<AgentState, MigrationFailure> {
        if self.fail_at == Some(to) {
            return Err(MigrationFailure { message: "it threw".into(), cause: None });
        }
        let mut next = data.clone();
        match to {
            2 => next.messages = data.messages.iter().map(|m| j(&format!("[{m}]"))).collect(),
            3 => {
                next.state.insert("n".into(), j(&data.messages.len().to_string()));
            }
            _ => {}
        }
        Ok(next)
    }
}

fn at_schema(world: &World, owner: &str, version: u64, fail_at: Option<u64>) -> SessionStore {
    let store = world.store_with(Config { schema_version: version, snapshot_every: 2, ..World::config(owner) }, 0);
    store.set_migrations(Rc::new(Steps { fail_at }));
    store
}

#[test]
fn an_older_session_is_shown_migrated_and_the_next_commit_persists_it() {
    let world = World::new();
    let v1 = open(&at_schema(&world, "v1", 1, None), "s");
    turn(&v1, &["1", "2"]);
    turn(&v1, &["3"]);
    let before = world.dump();
    let v3 = open(&at_schema(&world, "v3", 3, None), "s");
    assert_eq!(texts(&v3.messages(None).unwrap()), ["[1]", "[2]", "[3]"]);
    assert_eq!(v3.value(None, "n").unwrap().as_deref(), Some("3"));
    assert_eq!(world.dump(), before, "a read writes nothing");
    assert_eq!(texts(&v1.messages(None).unwrap()), ["1", "2", "3"], "the stored data is still schema 1");
    let version = turn(&v3, &["[4]"]);
    let history = block_on(v3.history(Some(version), None)).unwrap();
    match &history[0].event {
        Some(Event::Migrated { from: 1, to: 3, messages, .. }) => assert_eq!(texts(messages), ["[1]", "[2]", "[3]"]),
        other => panic!("the commit starts with a migrated event, got {other:?}"),
    }
    assert_eq!(world.head("s").schema, 3);
    // A fresh store at schema 3 loads it without running the functions (they would fail now).
    let fresh = open(&at_schema(&world, "fresh", 3, Some(2)), "s");
    assert_eq!(texts(&fresh.messages(None).unwrap()), ["[1]", "[2]", "[3]", "[4]"]);
    assert_eq!(*fresh.state().unwrap(), *v3.state().unwrap());
    // History keeps the originals: the version before shows schema 1 data.
    let old = block_on(fresh.at(version - 1)).unwrap();
    assert_eq!(texts(&old.state.agent("default").unwrap().messages), ["1", "2", "3"]);
}

#[test]
fn a_newer_schema_and_a_failing_migration_are_refused_with_nothing_written() {
    let world = World::new();
    let v3 = open(&at_schema(&world, "v3", 3, None), "new");
    turn(&v3, &["1"]);
    let before = world.dump();
    match block_on(at_schema(&world, "v2", 2, None).open("new", OpenOptions::default())) {
        Err(EngineError::SchemaVersion { stored: 3, supported: 2 }) => {}
        other => panic!("expected SchemaVersion, got {:?}", other.map(|_| ())),
    }
    let v0 = open(&world.store("v0"), "old");
    turn(&v0, &["1"]);
    let before_old = world.dump();
    match block_on(at_schema(&world, "bad", 3, Some(2)).open("old", OpenOptions::default())) {
        Err(EngineError::Migration { from: 1, to: 2, .. }) => {}
        other => panic!("expected Migration 1 -> 2, got {:?}", other.map(|_| ())),
    }
    // A begin that would migrate fails the same way and releases the lease it took.
    let failing = at_schema(&world, "bad2", 3, Some(1));
    assert!(block_on(failing.open("old", OpenOptions::default())).is_err());
    assert_eq!(world.dump().len(), before_old.len());
    assert!(before.len() <= before_old.len());
    let again = open(&world.store("v0-again"), "old");
    let invocation = begin(&again);
    block_on(invocation.abort()).unwrap();
}

/// A fork is written under its store's schema: a fork of a version committed under an older schema
/// holds that version's data migrated (without it, the fork would label schema-1 data as schema 3
/// and no load would ever migrate it).
#[test]
fn a_fork_of_a_version_committed_under_an_older_schema_holds_it_migrated() {
    let world = World::new();
    let v1 = open(&at_schema(&world, "v1", 1, None), "s");
    turn(&v1, &["1", "2"]); // version 1, schema 1
    let v3_store = at_schema(&world, "v3", 3, None);
    let v3 = open(&v3_store, "s");
    turn(&v3, &["[3]"]); // version 2, persists the migration to schema 3
    turn(&v3, &["[4]"]); // version 3
    for (at, messages, n) in
        [(1, vec!["[1]", "[2]"], "2"), (2, vec!["[1]", "[2]", "[3]"], "2"), (3, vec!["[1]", "[2]", "[3]", "[4]"], "2")]
    {
        let fork = block_on(v3.fork(&v3_store, Some(format!("fork-{at}")), Some(at))).unwrap();
        assert_eq!(texts(&fork.messages(None).unwrap()), messages, "fork at {at}");
        assert_eq!(fork.value(None, "n").unwrap().as_deref(), Some(n), "fork at {at}");
        assert_eq!(world.head(&format!("fork-{at}")).schema, 3);
    }
    // The old version itself reads as it was committed.
    let old = block_on(v3.at(1)).unwrap();
    assert_eq!(texts(&old.state.agent("default").unwrap().messages), ["1", "2"]);
}
