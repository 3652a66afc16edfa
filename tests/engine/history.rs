//! Snapshots, loading from snapshot + later batches, `at(v)`, `history(from, to)` and fork.

// The same tests run in wasm (tests/wasm_node.rs, wasm_browser.rs) under wasm-bindgen-test.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::rc::Rc;

use agent_session::core::{keys, Commits, CoreError, Event, SnapshotRef};
use agent_session::engine::{Config, EngineError, Session};
use agent_session::store::Store;

use crate::basics::{begin, core_error, j, open, texts, turn};
use crate::support::*;

const N: u64 = 8;

/// A session with N commits, one message `"m<v>"` (and state `v = <v>`) each, snapshots every 3.
fn eight_versions(world: &World) -> Rc<Session> {
    let store = world.store_with(Config { snapshot_every: 3, ..World::config("writer") }, 0);
    let session = open(&store, "s");
    for v in 1..=N {
        let invocation = begin(&session);
        invocation.append_message(j(&format!("\"m{v}\"")), None).unwrap();
        invocation.set_state("v", j(&v.to_string()), None).unwrap();
        assert_eq!(block_on(invocation.commit()).unwrap(), v);
    }
    session
}

fn message(v: u64) -> String {
    format!("\"m{v}\"")
}

#[test]
fn snapshots_every_n_commits_and_a_fresh_open_loads_the_same_state() {
    let world = World::new();
    let writer = eight_versions(&world);
    let head = world.head("s");
    let t = head.last_token - N; // one token per commit
    assert_eq!(head.snapshot, Some(SnapshotRef { version: 6, token: t + 6 }));
    assert_eq!(head.commits, Commits::from(vec![t + 7, t + 8]));
    let snapshots: Vec<String> = world.dump().into_iter().map(|(k, _)| k).filter(|k| k.starts_with("s/")).collect();
    assert_eq!(snapshots, [keys::snapshot_key("s", 3, t + 3), keys::snapshot_key("s", 6, t + 6)]);

    let fresh = open(&world.store("reader"), "s");
    assert_eq!(*fresh.state().unwrap(), *writer.state().unwrap());
    assert_eq!(texts(&fresh.messages(None).unwrap()), (1..=N).map(message).collect::<Vec<_>>());

    // The fresh load really is snapshot + later batches: without the batches the snapshot covers,
    // it still loads the same state.
    for v in 1..=6 {
        assert!(block_on(world.mem.delete(&keys::batch_key("s", v, t + v), None)).unwrap());
    }
    let from_snapshot = open(&world.store("reader2"), "s");
    assert_eq!(*from_snapshot.state().unwrap(), *writer.state().unwrap());
}

#[test]
fn a_missing_record_named_by_the_head_is_corrupt_not_empty() {
    let world = World::new();
    eight_versions(&world);
    let key = keys::batch_key("s", 8, world.head("s").last_token);
    assert!(block_on(world.mem.delete(&key, None)).unwrap());
    match block_on(world.store("reader").open("s", Default::default())) {
        Err(EngineError::Core(CoreError::CorruptRecord { key: named, .. })) => assert_eq!(named, key),
        other => panic!("expected CorruptRecord, got {:?}", other.err()),
    }
    // Bad bytes under a named key: CorruptRecord naming that key, not a panic.
    let world = World::new();
    eight_versions(&world);
    let key = keys::snapshot_key("s", 6, world.head("s").snapshot.unwrap().token);
    block_on(world.mem.put(&key, b"garbage".to_vec().into(), agent_session::store::Expect::Any)).unwrap();
    match block_on(world.store("reader").open("s", Default::default())) {
        Err(EngineError::Core(CoreError::CorruptRecord { key: named, .. })) => assert_eq!(named, key),
        other => panic!("expected CorruptRecord, got {:?}", other.err()),
    }
}

#[test]
fn at_every_version_across_snapshot_boundaries() {
    let world = World::new();
    let writer = eight_versions(&world);
    let reader = open(&world.store("reader"), "s");
    for session in [&writer, &reader] {
        for v in 0..=N {
            let view = block_on(session.at(v)).unwrap();
            assert_eq!(view.version, v);
            let default = view.state.agent("default");
            let messages = default.map(|a| texts(&a.messages)).unwrap_or_default();
            assert_eq!(messages, (1..=v).map(message).collect::<Vec<_>>(), "at({v})");
            let value = default.and_then(|a| a.state.get("v")).map(|x| x.to_string());
            assert_eq!(value, (v > 0).then(|| v.to_string()), "at({v})");
        }
        match block_on(session.at(N + 1)) {
            Err(EngineError::NotFound(_)) => {}
            other => panic!("at(N + 1) gave {:?}", other.map(|v| v.version)),
        }
    }
    // Time travel does not move the session's own view.
    assert_eq!(reader.version(), N);
}

/// An old version's status comes from its own batch (the interrupt that ended it) also when a
/// snapshot was written at that version, which holds its state but not that event.
#[test]
fn at_an_interrupted_version_with_a_snapshot_of_it_is_interrupted() {
    use agent_session::core::Status;
    use agent_session::engine::BeginOptions;
    for every in [1, 2, 3] {
        let world = World::new();
        let store = world.store_with(Config { snapshot_every: every, ..World::config("writer") }, 0);
        let session = open(&store, "s");
        let mut expected = vec![Status::Idle];
        for v in 1..=6u64 {
            let options = if expected[v as usize - 1] == Status::Interrupted {
                BeginOptions { resume: Some(j("\"yes\"")), ..BeginOptions::default() }
            } else {
                BeginOptions::default()
            };
            let invocation = block_on(session.begin(options)).unwrap();
            invocation.append_message(j(&message(v)), None).unwrap();
            if v % 2 == 0 {
                block_on(invocation.interrupt("ask".into(), None)).unwrap();
                expected.push(Status::Interrupted);
            } else {
                block_on(invocation.commit()).unwrap();
                expected.push(Status::Idle);
            }
        }
        for reader in [&session, &open(&world.store("reader"), "s")] {
            for (v, status) in expected.iter().enumerate() {
                let view = block_on(reader.at(v as u64)).unwrap();
                assert_eq!(view.status, *status, "at({v}) with snapshots every {every}");
                let messages = view.state.agent("default").map(|a| texts(&a.messages)).unwrap_or_default();
                assert_eq!(messages, (1..=v as u64).map(message).collect::<Vec<_>>(), "at({v})");
            }
        }
    }
}

#[test]
fn history_of_every_range_across_snapshot_boundaries() {
    let world = World::new();
    let writer = eight_versions(&world);
    let all = block_on(writer.history(None, None)).unwrap();
    assert_eq!(all.len(), 1 + 2 * N as usize, "created + a message and a state.set per version");
    assert_eq!((all[0].version, all[0].event.clone(), all[0].at), (0, None, START));
    for from in 0..=N {
        for to in from..=N {
            let events = block_on(writer.history(Some(from), Some(to))).unwrap();
            let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
            let mut want: Vec<u64> = Vec::new();
            if from == 0 {
                want.push(0);
            }
            for v in from.max(1)..=to {
                want.extend([v, v]);
            }
            assert_eq!(versions, want, "history({from}, {to})");
            let messages: Vec<String> = events
                .iter()
                .filter_map(|e| match &e.event {
                    Some(Event::Message { data, .. }) => Some(data.to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!(messages, (from.max(1)..=to).map(message).collect::<Vec<_>>());
            // Each batch's events carry its invocation id; one invocation per version here.
            for pair in events.windows(2) {
                if pair[0].version == pair[1].version {
                    assert_eq!(pair[0].invocation, pair[1].invocation);
                } else if pair[0].version > 0 {
                    assert_ne!(pair[0].invocation, pair[1].invocation);
                }
            }
        }
    }
    let error = core_error(block_on(writer.history(Some(3), Some(2))));
    assert!(matches!(error, CoreError::InvalidInput { .. }), "{error:?}");
    assert!(matches!(block_on(writer.history(Some(0), Some(N + 1))), Err(EngineError::NotFound(_))));
    // A `from` above the latest version, with `to` left out, is a version that is not there (API.md).
    assert!(matches!(block_on(writer.history(Some(N + 1), None)), Err(EngineError::NotFound(_))));
}

#[test]
fn fork_copies_the_state_at_a_version_and_starts_its_own_history() {
    let world = World::new();
    let source = eight_versions(&world);
    let store = world.store("forker");
    let fork = block_on(source.fork(&store, Some("f/1".into()), Some(5))).unwrap();
    assert_eq!(fork.id(), "f/1");
    assert_eq!(fork.version(), 1);
    assert_eq!(texts(&fork.messages(None).unwrap()), (1..=5).map(message).collect::<Vec<_>>());
    assert_eq!(fork.values(None).unwrap().get("v").map(|v| v.to_string()), Some("5".into()));
    let history = block_on(fork.history(Some(1), None)).unwrap();
    assert_eq!(history[0].event, Some(Event::Forked { data: j(r#"{"from":"s","version":5}"#) }));

    // The fork and the source are independent from here on.
    turn(&fork, &["\"fork only\""]);
    assert_eq!(source.version(), N);
    let reread = open(&world.store("reader"), "s");
    assert_eq!(*reread.state().unwrap(), *source.state().unwrap());
    let fork_again = open(&world.store("reader"), "f/1");
    assert_eq!(fork_again.messages(None).unwrap().last().map(|m| m.to_string()), Some("\"fork only\"".into()));

    // Latest by default; an existing id is refused without touching it.
    let latest = block_on(source.fork(&store, None, None)).unwrap();
    assert_eq!(*latest.state().unwrap(), *source.state().unwrap());
    assert_ne!(latest.id(), source.id());
    let before = world.dump();
    let error = core_error(block_on(source.fork(&store, Some("f/1".into()), None)));
    assert!(matches!(error, CoreError::InvalidInput { .. }), "{error:?}");
    assert_eq!(world.dump(), before);
}

#[test]
fn snapshots_do_not_grow_with_the_session_and_old_inline_snapshots_still_load() {
    use agent_session::core::{codec, keys};
    let world = World::new();
    let store = world.store_with(Config { snapshot_every: 10, ..World::config("writer") }, 0);
    let session = open(&store, "long");
    let text = format!("\"{}\"", "m".repeat(200));
    let mut snapshot_sizes = Vec::new();
    for i in 0..400 {
        turn(&session, &[&text, &text]);
        let head = world.head("long");
        if head.snapshot.map(|s| s.version) == Some(head.version) {
            let at = head.snapshot.unwrap();
            let dump = world.dump();
            let size = lookup(&dump, &keys::snapshot_key("long", at.version, at.token)).unwrap().len();
            snapshot_sizes.push((i, size));
        }
    }
    assert!(snapshot_sizes.len() > 10, "{snapshot_sizes:?}");
    // The messages (up to 800 of 200 bytes, 160 KB) are in segments; a snapshot holds the commit
    // tokens since the one before and a reference per segment: a few hundred bytes.
    assert!(snapshot_sizes.iter().all(|&(_, size)| size < 1024), "snapshot records stay small: {snapshot_sizes:?}");
    // A fresh store loads the whole session from the newest snapshot's segments plus batches.
    let fresh = open(&world.store("reader"), "long");
    assert_eq!(fresh.message_count(None).unwrap(), 800);
    assert_eq!(*fresh.state().unwrap(), *session.state().unwrap());
    let old = block_on(fresh.at(123)).unwrap();
    assert_eq!(old.state.agent("default").unwrap().messages.len(), 246);

    // A session whose newest snapshot has the first layout (messages inline, as older builds
    // wrote) loads, and the next snapshot puts every message in a segment.
    let legacy = open(&store, "legacy");
    for _ in 0..3 {
        turn(&legacy, &["1"]);
    }
    let head = world.head("legacy");
    let at = head.snapshot;
    assert!(at.is_none(), "no snapshot yet at 3 commits");
    let state = legacy.state().unwrap();
    let inline = agent_session::core::Snapshot {
        version: 3,
        token: head.last_token,
        previous: None,
        commits: head.commits.clone(),
        segments: Vec::new(),
        counts: Default::default(),
        state: (*state).clone(),
        layers: None,
    };
    let key = keys::snapshot_key("legacy", 3, head.last_token);
    block_on(world.mem.put(&key, codec::encode_snapshot(&inline).into(), agent_session::store::Expect::Any)).unwrap();
    let rewritten = agent_session::core::Head {
        snapshot: Some(agent_session::core::SnapshotRef { version: 3, token: head.last_token }),
        commits: Commits::default(),
        ..head
    };
    let head_key = keys::head_key("legacy");
    block_on(world.mem.put(&head_key, codec::encode_head(&rewritten).into(), agent_session::store::Expect::Any))
        .unwrap();
    let reader = open(&world.store("legacy-reader"), "legacy");
    assert_eq!(reader.message_count(None).unwrap(), 3);
    for _ in 0..10 {
        turn(&reader, &["2"]);
    }
    assert_eq!(open(&world.store("third"), "legacy").message_count(None).unwrap(), 13);
}

/// One commit of the growing session below: a new 2 KB value each version (the way the LangGraph
/// saver keeps a checkpoint per step), one value of another agent overwritten, every fifth an old one
/// deleted.
fn grow(session: &Rc<Session>, v: u64) {
    let invocation = begin(session);
    invocation.set_state(&format!("checkpoint/{v}"), j(&format!("\"{}{v}\"", "x".repeat(2000))), None).unwrap();
    invocation.set_state("latest", j(&v.to_string()), Some("other")).unwrap();
    if v % 5 == 0 {
        invocation.delete_state(&format!("checkpoint/{}", v - 3), None).unwrap();
    }
    assert_eq!(block_on(invocation.commit()).unwrap(), v);
}

#[test]
fn a_snapshot_writes_the_values_changed_since_the_one_before_and_every_load_reads_them_all() {
    let world = World::new();
    let config = || Config { snapshot_every: 4, ..World::config("writer") };
    let writer = open(&world.store_with(config(), 0), "grow");
    let mut written = Vec::new(); // bytes of the snapshot and segment records of each snapshot
    for v in 1..=60 {
        grow(&writer, v);
        let of_version =
            |key: &str| keys::parse_record_key(key).is_some_and(|(kind, at, _)| "sg".contains(kind) && at == v);
        let bytes: usize = world.dump().iter().filter(|(key, _)| of_version(key)).map(|(_, value)| value.len()).sum();
        if bytes > 0 {
            written.push(bytes);
        }
    }
    assert!(written.len() >= 10, "{} snapshots", written.len());
    let state_bytes: usize =
        writer.state().unwrap().agents.values().flat_map(|a| a.state.values()).map(|v| v.len()).sum();
    assert!(state_bytes > 90_000, "the state grew to {state_bytes} bytes");
    // Each snapshot writes the values new since the one before (2 KB a commit, 4 to 7 commits apart)
    // and the other agent's, not the whole state: far below the 90 KB and more it holds by then.
    assert!(written.iter().all(|bytes| *bytes < state_bytes / 5), "bytes written by each snapshot: {written:?}");

    // A fresh load (snapshot, its segments and layers, then the batches after it) and a load of an
    // old version read the same values as the writer's.
    let reader = open(&world.store("reader"), "grow");
    assert_eq!(*reader.state().unwrap(), *writer.state().unwrap());
    let old = block_on(reader.at(22)).unwrap();
    let replayed = World::new();
    let again = open(&replayed.store_with(config(), 0), "grow");
    for v in 1..=22 {
        grow(&again, v);
    }
    assert_eq!(*old.state, *again.state().unwrap());

    // A writer that did not write or load the snapshot before (this reader loaded it; the writer
    // below did not) writes a full layer; the loads still agree.
    let second = open(&world.store_with(Config { snapshot_every: 4, ..World::config("second") }, 0), "grow");
    for v in 61..=64 {
        grow(&second, v);
    }
    let fresh = open(&world.store("reader2"), "grow");
    assert_eq!(*fresh.state().unwrap(), *second.state().unwrap());
}

/// The head, written at every begin and commit, stays a few bytes long however long the session:
/// its commit tokens are runs (core/commits.rs), also when snapshots fall in the middle of turns of
/// several checkpoints and an aborted turn skips a token now and then.
#[test]
fn the_head_does_not_grow_with_the_session() {
    let world = World::new();
    let store = world.store_with(Config { snapshot_every: 7, ..World::config("writer") }, 0);
    let session = open(&store, "s");
    let head_bytes = || block_on(world.mem.get(&keys::head_key("s"))).unwrap().unwrap().value.len();
    let mut largest_late = 0;
    let mut first = 0;
    for turn in 0..600u64 {
        let invocation = begin(&session);
        if turn % 97 == 0 {
            block_on(invocation.abort()).unwrap();
            continue;
        }
        for _ in 0..3 {
            invocation.append_message(j(&message(turn)), None).unwrap();
            block_on(invocation.checkpoint()).unwrap();
        }
        invocation.append_message(j(&message(turn)), None).unwrap();
        block_on(invocation.commit()).unwrap();
        if turn == 20 {
            first = head_bytes();
        }
        if turn > 300 {
            largest_late = largest_late.max(head_bytes());
        }
    }
    let head = world.head("s");
    assert_eq!(head.snapshot_version() + head.commits.len(), head.version);
    assert!(head.commits.runs().len() <= 4, "{:?}", head.commits.runs());
    assert!(largest_late <= first + 40, "head {first} bytes at turn 20, up to {largest_late} after turn 300");
}
