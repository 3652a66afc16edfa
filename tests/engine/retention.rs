//! Compaction and pruning through the engine on a memory store: what every reader sees, what
//! history keeps, what a prune deletes, and what stays readable.

use agent_session::core::{Event, Status};
use agent_session::engine::{Config, EngineError, OpenOptions};

use crate::basics::{begin, core_error, j, open, texts, turn};
use crate::support::*;

fn store(world: &World, owner: &str) -> agent_session::engine::SessionStore {
    world.store_with(Config { snapshot_every: 3, ..World::config(owner) }, 0)
}

fn bytes_of(world: &World, prefix: &str) -> usize {
    world.dump().iter().filter(|(key, _)| key.starts_with(prefix)).map(|(_, value)| value.len()).sum()
}

#[test]
fn a_compaction_is_what_every_reader_sees_and_history_keeps_the_originals() {
    let world = World::new();
    let writer = store(&world, "writer");
    let session = open(&writer, "c");
    for n in 0..20 {
        turn(&session, &[&format!("\"q{n}\""), &format!("\"a{n}\"")]);
    }
    let invocation = begin(&session);
    invocation.append_message(j("\"staged\""), None).unwrap();
    // `before` counts what the invocation sees: 40 committed + 1 staged.
    invocation.compact(38, vec![j("\"summary\"")], None, false).unwrap();
    let compacted = ["\"summary\"", "\"q19\"", "\"a19\"", "\"staged\""];
    assert_eq!(texts(&invocation.messages(None).unwrap()), compacted);
    let version = block_on(invocation.commit()).unwrap();
    assert_eq!(texts(&session.messages(None).unwrap()), compacted);
    turn(&session, &["\"after\""]);

    // A fresh store (snapshots before and after the compaction) reads the same.
    let fresh = open(&store(&world, "reader"), "c");
    assert_eq!(texts(&fresh.messages(None).unwrap()), [&compacted[..], &["\"after\""]].concat());
    assert_eq!(*fresh.state().unwrap(), *session.state().unwrap());
    // Before the compaction, the originals.
    let old = block_on(fresh.at(version - 1)).unwrap();
    assert_eq!(old.state.agent("default").unwrap().messages.len(), 40);
    let history = block_on(fresh.history(Some(version), Some(version))).unwrap();
    let kinds: Vec<_> = history.iter().filter_map(|e| e.event.as_ref().map(Event::type_name)).collect();
    assert_eq!(kinds, ["message", "compacted"]);
    let all = block_on(fresh.history(None, None)).unwrap();
    let originals = all.iter().filter(|e| matches!(e.event, Some(Event::Message { .. }))).count();
    assert_eq!(originals, 40 + 1 + 1, "every original message event is kept");
}

#[test]
fn a_refused_compaction_stages_nothing() {
    let world = World::new();
    let session = open(&store(&world, "w"), "t");
    turn(
        &session,
        &[r#"{"role":"assistant","tool_calls":[{"id":"call_1"}]}"#, r#"{"role":"tool","tool_call_id":"call_1"}"#],
    );
    let invocation = begin(&session);
    let refused = core_error(invocation.compact(1, vec![], None, false));
    assert!(refused.to_string().contains("call_1"), "{refused}");
    let past = core_error(invocation.compact(3, vec![], None, false));
    assert!(past.to_string().contains("past"), "{past}");
    assert_eq!(invocation.messages(None).unwrap().len(), 2, "nothing staged");
    invocation.compact(1, vec![], None, true).unwrap();
    assert_eq!(invocation.messages(None).unwrap().len(), 1, "force cuts anyway");
    block_on(invocation.abort()).unwrap();
    assert_eq!(session.messages(None).unwrap().len(), 2, "an abort discards it");
}

#[test]
fn prune_deletes_what_only_older_versions_need_and_keeps_the_rest_readable() {
    let world = World::new();
    let writer = store(&world, "writer");
    let session = open(&writer, "p");
    for n in 0..60 {
        turn(&session, &[&format!("\"{n}{}\"", "x".repeat(200))]);
    }
    let before_bytes = bytes_of(&world, "");
    let keep_from = 45;
    let kept_view = block_on(session.at(keep_from)).unwrap();
    let kept_history = block_on(session.history(Some(keep_from), None)).unwrap();
    let went = block_on(session.prune(keep_from)).unwrap();
    assert!(went > 0);
    assert!(bytes_of(&world, "") < before_bytes);
    assert_eq!(session.status(), Status::Idle, "the guard was given back");
    // What `before` and later need is unchanged; older versions are refused as pruned.
    assert_eq!(*block_on(session.at(keep_from)).unwrap().state, *kept_view.state);
    assert_eq!(block_on(session.history(Some(keep_from), None)).unwrap(), kept_history);
    let retained = world.head("p").retained;
    assert!(retained > 0 && retained <= keep_from);
    match block_on(session.at(retained - 1)) {
        Err(EngineError::NotFound(message)) => assert!(message.contains("pruned"), "{message}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(block_on(session.history(Some(0), None)), Err(EngineError::NotFound(_))));
    let fresh = open(&store(&world, "reader"), "p");
    assert_eq!(fresh.messages(None).unwrap(), session.messages(None).unwrap());
    turn(&session, &["\"more\""]);
    assert!(matches!(block_on(session.prune(10_000)), Err(EngineError::NotFound(_))));
}

#[test]
fn compacting_then_pruning_at_the_latest_version_keeps_only_the_compacted_view() {
    let world = World::new();
    let session = open(&store(&world, "w"), "long");
    for n in 0..200 {
        turn(&session, &[&format!("\"{n}{}\"", "y".repeat(500))]);
    }
    let stored = bytes_of(&world, "");
    let invocation = begin(&session);
    invocation.compact(195, vec![j("\"summary\"")], None, false).unwrap();
    let version = block_on(invocation.commit()).unwrap();
    block_on(session.prune(version)).unwrap();
    let after = bytes_of(&world, "");
    assert!(after * 20 < stored, "stored {stored} bytes before, {after} after");
    let fresh = open(&world.store("reader"), "long");
    assert_eq!(fresh.messages(None).unwrap().len(), 6);
    assert_eq!(block_on(fresh.history(Some(version), None)).unwrap().len(), 1, "the compaction's own version");
    // A busy session cannot be pruned.
    let held = begin(&session);
    let other = open(&world.store("other"), "long");
    assert!(matches!(block_on(other.prune(version)), Err(EngineError::Core(_))));
    block_on(held.abort()).unwrap();
    let _ = OpenOptions::default();
}

mod property {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// A turn appending this many messages to agent 0 or 1.
        Append(usize, u8),
        /// A turn compacting agent 0 or 1 before a fraction (in 1/8) of its messages, with 0-2 summary messages.
        Compact(usize, u8, u8),
        Prune,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..2usize, 1..4u8).prop_map(|(a, n)| Step::Append(a, n)),
            2 => (0..2usize, 0..=8u8, 0..3u8).prop_map(|(a, f, s)| Step::Compact(a, f, s)),
            1 => Just(Step::Prune),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever mix of appends, compactions (with snapshots every 1 to 4 commits) and prunes, the
        /// writer's view, a fresh store's load and `at()` of every kept version match a model.
        #[test]
        fn views_loads_and_time_travel_match_a_model(steps in proptest::collection::vec(step(), 1..40), every in 1..5u64) {
            let world = World::new();
            let writer = world.store_with(Config { snapshot_every: every, ..World::config("w") }, 0);
            let session = open(&writer, "m");
            let agents = ["default", "other"];
            let mut model: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
            let mut versions: Vec<Vec<Vec<String>>> = vec![model.clone()];
            let mut counter = 0;
            for step in &steps {
                match *step {
                    Step::Prune => {
                        let version = session.version();
                        block_on(session.prune(version)).unwrap();
                        continue;
                    }
                    Step::Append(agent, n) => {
                        let invocation = begin(&session);
                        for _ in 0..n {
                            counter += 1;
                            let text = format!("\"m{counter}\"");
                            invocation.append_message(j(&text), Some(agents[agent])).unwrap();
                            model[agent].push(text);
                        }
                        block_on(invocation.commit()).unwrap();
                    }
                    Step::Compact(agent, eighths, summary) => {
                        let before = model[agent].len() * eighths as usize / 8;
                        let summary: Vec<String> = (0..summary).map(|i| format!("\"s{counter}-{i}\"")).collect();
                        let invocation = begin(&session);
                        invocation
                            .compact(before as u64, summary.iter().map(|s| j(s)).collect(), Some(agents[agent]), false)
                            .unwrap();
                        block_on(invocation.commit()).unwrap();
                        model[agent].splice(..before, summary);
                    }
                }
                versions.push(model.clone());
            }
            let fresh = open(&world.store("reader"), "m");
            for (agent, name) in agents.iter().enumerate() {
                prop_assert_eq!(texts(&session.messages(Some(name)).unwrap()), model[agent].clone());
                prop_assert_eq!(texts(&fresh.messages(Some(name)).unwrap()), model[agent].clone());
            }
            let retained = world.head("m").retained;
            // Every version the prunes kept (those below `retained` are refused, as tested above).
            for (version, expected) in versions.iter().enumerate().filter(|(version, _)| *version as u64 >= retained) {
                let view = block_on(session.at(version as u64)).unwrap();
                for (agent, name) in agents.iter().enumerate() {
                    let got = view.state.agent(name).map(|a| texts(&a.messages)).unwrap_or_default();
                    prop_assert_eq!(&got, &expected[agent], "agent {} at version {}", name, version);
                }
            }
        }
    }
}

#[test]
fn a_compaction_commit_writes_a_snapshot_of_the_compacted_view_at_once() {
    let world = World::new();
    // A long spacing: without the compaction, no snapshot would be due for many commits.
    let store = world.store_with(Config { snapshot_every: 1000, ..World::config("w") }, 0);
    let session = open(&store, "now");
    for n in 0..300 {
        turn(&session, &[&format!("\"{n}{}\"", "z".repeat(300))]);
    }
    assert_eq!(world.head("now").snapshot, None);
    let invocation = begin(&session);
    invocation.compact(298, vec![j("\"summary\"")], None, false).unwrap();
    let version = block_on(invocation.commit()).unwrap();
    let head = world.head("now");
    assert_eq!(head.snapshot.map(|s| s.version), Some(version), "the compaction's commit carries a snapshot");
    let snapshots = bytes_of(&world, "s/") + bytes_of(&world, "g/");
    // Three messages of about 300 bytes, and the 301 commit tokens since there was no snapshot.
    assert!(snapshots < 4_000, "the snapshot holds the compacted view: {snapshots} bytes");
    let fresh = open(&world.store("reader"), "now");
    assert_eq!(fresh.messages(None).unwrap().len(), 3);
}

#[test]
fn only_a_compaction_that_drops_most_messages_writes_a_snapshot_at_once() {
    let world = World::new();
    // Snapshots are otherwise far apart: any snapshot below is the compaction's.
    let store = world.store_with(Config { snapshot_every: 1000, ..World::config("w") }, 0);
    let session = open(&store, "s");
    turn(&session, &["\"1\"", "\"2\"", "\"3\"", "\"4\"", "\"5\"", "\"6\"", "\"7\"", "\"8\""]);
    let snapshots = |world: &World| world.dump().iter().filter(|(key, _)| key.starts_with("s/")).count();
    // A sliding window's step: 2 of 8 dropped, 6 kept.
    let invocation = begin(&session);
    invocation.compact(2, Vec::new(), None, false).unwrap();
    block_on(invocation.commit()).unwrap();
    assert_eq!(snapshots(&world), 0, "a small compaction waits for the next snapshot that is due");
    assert_eq!(texts(&session.messages(None).unwrap()), ["\"3\"", "\"4\"", "\"5\"", "\"6\"", "\"7\"", "\"8\""]);
    // 5 of 6 dropped for a summary: a snapshot of the compacted view at once.
    let invocation = begin(&session);
    invocation.compact(5, vec![j("\"summary\"")], None, false).unwrap();
    block_on(invocation.commit()).unwrap();
    assert_eq!(snapshots(&world), 1, "a compaction that drops most messages snapshots at once");
    let fresh = open(&world.store_with(Config { snapshot_every: 1000, ..World::config("r") }, 0), "s");
    assert_eq!(texts(&fresh.messages(None).unwrap()), ["\"summary\"", "\"8\""]);
}
