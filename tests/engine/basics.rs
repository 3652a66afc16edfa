//! Open, begin, commit, abort, read-your-writes and limits.

// The same tests run in wasm (tests/wasm_node.rs, wasm_browser.rs) under wasm-bindgen-test.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::rc::Rc;

use agent_session::core::error::Phase;
use agent_session::core::limits::Limits;
use agent_session::core::{keys, Commits, CoreError, Json, Status};
use agent_session::engine::{BeginOptions, Config, EngineError, OpenOptions, Session, SessionStore};
use agent_session::store::Store;

use crate::support::*;

pub fn j(text: &str) -> Json {
    Rc::from(text)
}

pub fn create() -> OpenOptions {
    OpenOptions { create: true, ..OpenOptions::default() }
}

pub fn open(store: &SessionStore, id: &str) -> Rc<Session> {
    block_on(store.open(id, create())).expect("open")
}

pub fn begin(session: &Rc<Session>) -> Rc<agent_session::engine::Invocation> {
    block_on(session.begin(BeginOptions::default())).expect("begin")
}

/// One begin + messages + commit; returns the new version.
pub fn turn(session: &Rc<Session>, messages: &[&str]) -> u64 {
    let invocation = begin(session);
    for message in messages {
        invocation.append_message(j(message), None).unwrap();
    }
    block_on(invocation.commit()).expect("commit")
}

pub fn texts(messages: &[Json]) -> Vec<String> {
    messages.iter().map(|m| m.to_string()).collect()
}

#[track_caller]
pub fn core_error<T>(result: Result<T, EngineError>) -> CoreError {
    match result {
        Err(EngineError::Core(error)) => error,
        Err(other) => panic!("expected a core error, got {other:?}"),
        Ok(_) => panic!("expected a core error, got Ok"),
    }
}

#[test]
fn open_creates_then_loads_and_create_false_is_not_found() {
    let world = World::new();
    let store = world.store("alice");
    let missing = block_on(store.open("nobody", OpenOptions::default())).err().expect("NotFound");
    assert!(matches!(&missing, EngineError::NotFound(_)), "{missing:?}");
    assert_eq!(missing.code(), "NOT_FOUND");
    assert!(world.dump().is_empty(), "a refused open writes nothing");

    let options = OpenOptions { create: true, metadata: Some(j(r#"{"user":1}"#)), ..OpenOptions::default() };
    let session = block_on(store.open("a/b", options)).unwrap();
    assert_eq!((session.id(), session.version(), session.status()), ("a/b", 0, Status::Idle));
    let dump = world.dump();
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0].0, "h/a%2Fb~");
    let head = world.head("a/b");
    assert_eq!((head.created_at, head.metadata.as_deref()), (START, Some(r#"{"user":1}"#)));

    // Opening again (here, from another owner with create: false) loads the same session.
    let other = world.store("bob");
    let again = block_on(other.open("a/b", OpenOptions::default())).unwrap();
    assert_eq!(again.head(), session.head());
    // Opening with create: true an existing session does not reset it.
    turn(&session, &["\"m\""]);
    let reopened = open(&other, "a/b");
    assert_eq!((reopened.version(), texts(&reopened.messages(None).unwrap())), (1, vec!["\"m\"".to_owned()]));
}

#[test]
fn begin_commit_writes_one_batch_and_the_head() {
    let world = World::new();
    let store = world.store("alice");
    let session = open(&store, "s");
    let t = world.base("s");
    assert_eq!(world.head("s").lease, None);
    let invocation = begin(&session);
    assert_eq!(invocation.token(), t + 1);
    assert_eq!(session.status(), Status::Running);
    let lease = world.head("s").lease.unwrap();
    assert_eq!((lease.owner.as_str(), lease.instance.as_str(), lease.token), ("alice", store.instance(), t + 1));
    assert_eq!(lease.expires_at, START + 1_000);

    invocation.append_message(j("\"hi\""), None).unwrap();
    invocation.append_message(j("\"there\""), Some("helper")).unwrap();
    invocation.set_state("k", j("1"), None).unwrap();
    invocation.set_state("gone", j("2"), None).unwrap();
    invocation.delete_state("gone", None).unwrap();
    // Nothing is visible before the commit, except to the invocation itself.
    assert!(session.messages(None).unwrap().is_empty());
    assert_eq!(texts(&invocation.messages(None).unwrap()), ["\"hi\""]);
    assert_eq!(invocation.values(None).unwrap().keys().collect::<Vec<_>>(), ["k"]);
    assert_eq!(world.dump().len(), 1, "staging writes nothing");

    world.advance(5);
    assert_eq!(block_on(invocation.commit()).unwrap(), 1);
    assert!(invocation.is_ended());
    assert_eq!((session.version(), session.status()), (1, Status::Idle));
    assert_eq!(texts(&session.messages(None).unwrap()), ["\"hi\""]);
    assert_eq!(texts(&session.messages(Some("helper")).unwrap()), ["\"there\""]);
    assert_eq!(session.values(None).unwrap().get("k").map(|v| v.to_string()), Some("1".to_owned()));

    let head = world.head("s");
    assert_eq!(
        (head.version, head.status, head.lease.clone(), head.commits.clone(), head.updated_at),
        (1, Status::Idle, None, Commits::from(vec![t + 1]), START + 5)
    );
    let keys: Vec<String> = world.dump().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [keys::batch_key("s", 1, t + 1), keys::head_key("s")]);

    // A fresh owner loads exactly what was committed.
    let fresh = open(&world.store("bob"), "s");
    assert_eq!(*fresh.state().unwrap(), *session.state().unwrap());

    // An ended invocation refuses everything, naming its phase.
    let committed = Phase::Committed;
    assert_eq!(
        invocation.append_message(j("1"), None),
        Err(CoreError::InvalidTransition { from: committed, action: "appendMessage" })
    );
    assert_eq!(
        core_error(block_on(invocation.commit())),
        CoreError::InvalidTransition { from: committed, action: "commit" }
    );
    assert_eq!(
        core_error(block_on(invocation.abort())),
        CoreError::InvalidTransition { from: committed, action: "abort" }
    );
    assert_eq!(world.head("s"), head);
}

#[test]
fn abort_discards_staged_events_and_releases() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let t = world.base("s");
    turn(&session, &["1"]);
    let before = world.dump();
    let invocation = begin(&session);
    invocation.append_message(j("2"), None).unwrap();
    block_on(invocation.abort()).unwrap();
    assert!(invocation.is_ended());
    assert_eq!((session.version(), session.status()), (1, Status::Idle));
    let head = world.head("s");
    assert_eq!((head.version, head.status, head.lease.clone(), head.last_token), (1, Status::Idle, None, t + 2));
    // Only the head changed (its lease came and went); no batch was written.
    let after = world.dump();
    assert_eq!(after.len(), before.len());
    for ((k1, v1), (k2, v2)) in before.iter().zip(&after) {
        assert_eq!(k1, k2);
        if *k1 != keys::head_key("s") {
            assert_eq!(v1, v2);
        }
    }
    assert_eq!(
        core_error(block_on(invocation.commit())),
        CoreError::InvalidTransition { from: Phase::Aborted, action: "commit" }
    );
    // The session is free again at once, with the next token.
    let next = begin(&session);
    assert_eq!(next.token(), t + 3);
    assert_eq!(block_on(next.commit()).unwrap(), 2);
    assert_eq!(texts(&open(&world.store("bob"), "s").messages(None).unwrap()), ["1"]);
}

#[test]
fn an_empty_commit_is_a_version() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let t = world.base("s");
    assert_eq!(turn(&session, &[]), 1);
    let history = block_on(session.history(None, None)).unwrap();
    assert_eq!(history.len(), 1, "only the creation event");
    assert!(block_on(world.mem.get(&keys::batch_key("s", 1, t + 1))).unwrap().is_some());
}

#[test]
fn limits_are_checked_before_anything_is_staged_or_written() {
    let world = World::new();
    let limits = Limits { max_message_bytes: 8, max_state_value_bytes: 4, max_commit_bytes: 20 };
    let store = world.store_with(Config { limits, ..World::config("alice") }, 0);

    // Ids: 0 and 257 bytes refused before any write.
    for id in [String::new(), "x".repeat(257)] {
        let error = core_error(block_on(store.open(&id, create())));
        assert!(matches!(error, CoreError::InvalidInput { .. }), "{error:?}");
    }
    assert!(world.dump().is_empty());
    let long_id = "x".repeat(256);
    open(&store, &long_id);
    let session = open(&store, "s");
    let t = world.base("s");

    let invocation = begin(&session);
    let over = |what, option, limit, actual| CoreError::LimitExceeded { what, option, limit, actual };
    assert_eq!(invocation.append_message(j("123456789"), None), Err(over("a message", "maxMessageBytes", 8, 9)));
    assert_eq!(invocation.set_state("k", j("12345"), None), Err(over("a state value", "maxStateValueBytes", 4, 5)));
    assert!(matches!(invocation.set_state("", j("1"), None), Err(CoreError::InvalidInput { .. })));
    assert!(matches!(invocation.append_message(j("1"), Some(&"a".repeat(257))), Err(CoreError::InvalidInput { .. })));
    // The commit limit counts agent names, keys and values of everything staged: 7 + 1 each.
    invocation.append_message(j("1234567"), None).unwrap(); // "default" (7) + 7 = 14
    assert_eq!(invocation.append_message(j("1234567"), None), Err(over("the staged commit", "maxCommitBytes", 20, 28)));
    invocation.append_message(j("12345"), Some("a")).unwrap(); // 14 + 1 + 5 = 20
    assert_eq!(texts(&invocation.messages(None).unwrap()), ["1234567"], "refused events were not staged");
    assert_eq!(block_on(invocation.commit()).unwrap(), 1);
    assert_eq!(texts(&session.messages(None).unwrap()), ["1234567"]);
    assert_eq!(texts(&session.messages(Some("a")).unwrap()), ["12345"]);
    assert!(session.values(None).unwrap().is_empty());

    // Options of begin are checked before the guard is touched.
    let before = world.dump();
    let bad_agent = BeginOptions { agent: Some(String::new()), ..BeginOptions::default() };
    assert!(matches!(core_error(block_on(session.begin(bad_agent))), CoreError::InvalidInput { .. }));
    let bad_trace = BeginOptions { traceparent: Some("é".into()), ..BeginOptions::default() };
    assert!(matches!(core_error(block_on(session.begin(bad_trace))), CoreError::InvalidInput { .. }));
    assert_eq!(world.dump(), before);
    // And the busy mark was not left behind by the refusals.
    assert_eq!(begin(&session).token(), t + 2);
}

#[test]
fn agents_option_routes_default_writes() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let invocation =
        block_on(session.begin(BeginOptions { agent: Some("planner".into()), ..BeginOptions::default() })).unwrap();
    invocation.append_message(j("1"), None).unwrap();
    invocation.append_message(j("2"), Some("default")).unwrap();
    block_on(invocation.commit()).unwrap();
    assert_eq!(texts(&session.messages(Some("planner")).unwrap()), ["1"]);
    assert_eq!(texts(&session.messages(None).unwrap()), ["2"]);
}

#[test]
fn delete_removes_every_record_of_one_session_only() {
    let world = World::new();
    let store = world.store_with(Config { snapshot_every: 2, ..World::config("alice") }, 0);
    let a = open(&store, "a");
    let ab = open(&store, "a/b");
    for i in 0..3 {
        turn(&a, &[&i.to_string()]);
        turn(&ab, &[&i.to_string()]);
    }
    let ab_keys = named_keys(&world.mem, "a/b");
    assert!(block_on(store.delete("a")).unwrap());
    assert!(!block_on(store.delete("a")).unwrap());
    let left: Vec<String> = world.dump().into_iter().map(|(k, _)| k).collect();
    let mut want = ab_keys;
    want.sort();
    assert_eq!(left, want);
    assert!(matches!(block_on(store.open("a", OpenOptions::default())).err(), Some(EngineError::NotFound(_))));
}

fn flaky_world() -> (World, Rc<FlakyStore>, SessionStore) {
    let world = World::new();
    let flaky = Rc::new(FlakyStore::new(world.mem.clone()));
    let store = SessionStore::new(flaky.clone(), world.env(0), World::config("alice"), None);
    (world, flaky, store)
}

/// API.md: a commit that rejects with a storage error leaves the invocation open with its staged
/// events; retrying commits them once.
#[test]
fn a_refused_storage_write_leaves_the_invocation_open_for_a_retry() {
    for prefix in ["e/", "h/"] {
        let (world, flaky, store) = flaky_world();
        let session = open(&store, "s");
        let invocation = begin(&session);
        invocation.append_message(j("1"), None).unwrap();
        flaky.fail_next(prefix, Failure::Before);
        match block_on(invocation.commit()) {
            Err(error @ EngineError::Store(_)) => assert_eq!(error.code(), "STORAGE"),
            other => panic!("expected a storage error, got {:?}", other.err()),
        }
        assert!(!invocation.is_ended());
        assert_eq!(world.head("s").version, 0);
        assert_eq!(texts(&invocation.messages(None).unwrap()), ["1"], "still staged");
        invocation.append_message(j("2"), None).unwrap();
        assert_eq!(block_on(invocation.commit()).unwrap(), 1);
        assert_eq!(texts(&open(&world.store("bob"), "s").messages(None).unwrap()), ["1", "2"]);
        assert_eq!(world.head("s").version, 1);
    }
}

/// A head write that the backend applied but whose reply was lost (a network KV timing out) is
/// ambiguous to the engine. Whatever it reports, a retry must not rewrite the batch the head now
/// names, nor commit the same turn twice.
#[test]
fn an_ambiguous_head_write_failure_never_rewrites_a_named_batch() {
    for checkpoint in [false, true] {
        let (world, flaky, store) = flaky_world();
        let session = open(&store, "s");
        let invocation = begin(&session);
        invocation.append_message(j("1"), None).unwrap();
        flaky.fail_next("h/", Failure::After);
        let first = if checkpoint { block_on(invocation.checkpoint()) } else { block_on(invocation.commit()) };
        // The store reported a failure but had applied the write: reading the head back shows the
        // commit happened, so it resolves with its version instead of inviting a double retry.
        assert_eq!(first.unwrap(), 1);
        assert_eq!(world.head("s").version, 1, "the head write was applied");
        let named = named_keys(&world.mem, "s");
        let before = world.dump();
        invocation.append_message(j("2"), None).ok();
        let _ = block_on(invocation.commit());
        let after = world.dump();
        // The head is the one mutable key (a checkpoint's follow-up commit moves it on); every
        // record it named must be byte-identical.
        for key in named.iter().filter(|key| !key.starts_with("h/")) {
            assert_eq!(lookup(&after, key), lookup(&before, key), "{key} is named by the head and was rewritten");
        }
        let messages = texts(&open(&world.store("bob"), "s").messages(None).unwrap());
        assert_eq!(messages.iter().filter(|m| *m == "1").count(), 1, "the turn was committed twice: {messages:?}");
    }
}

#[test]
fn list_pages_by_escaped_prefix_and_reports_corrupt_heads() {
    let world = World::new();
    let events = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = events.clone();
    let hook: agent_session::engine::EventHook = Box::new(move |event| sink.borrow_mut().push(event.clone()));
    let store = SessionStore::new(world.mem.clone(), world.env(0), World::config("alice"), Some(hook));
    for id in ["a", "a/b", "a/c", "ab", "b", "a%", "a~"] {
        open(&store, id);
    }
    let ids = |prefix: &str| -> Vec<String> {
        let (page, cursor) = block_on(store.list(prefix, None, Some(100))).unwrap();
        assert_eq!(cursor, None);
        page.into_iter().map(|info| info.id).collect()
    };
    let mut want = vec!["a", "a%", "a/b", "a/c", "a~", "ab"];
    let mut got = ids("a");
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let mut got = ids("a/");
    got.sort();
    assert_eq!(got, ["a/b", "a/c"]);
    assert_eq!(ids("a~"), ["a~"]);
    assert_eq!(ids("zzz"), Vec::<String>::new());
    assert_eq!(ids("").len(), 7);

    // Pages of two, following the cursor, give every session once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = block_on(store.list("", cursor.as_deref(), Some(2))).unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|info| info.id));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen.sort();
    let mut all = ids("");
    all.sort();
    assert_eq!(seen, all);

    // A head that cannot be decoded is left out and reported; the others are still listed.
    let key = keys::head_key("a/b");
    block_on(world.mem.put(&key, b"not a head".to_vec().into(), agent_session::store::Expect::Any)).unwrap();
    let mut got = ids("a/");
    got.sort();
    assert_eq!(got, ["a/c"]);
    let corrupt: Vec<_> = events.borrow().iter().filter(|e| e.kind == "corrupt").cloned().collect();
    assert_eq!(corrupt.len(), 1);
    assert_eq!((corrupt[0].session.as_str(), corrupt[0].key.as_deref()), ("a/b", Some(key.as_str())));
    match block_on(store.open("a/b", OpenOptions::default())) {
        Err(EngineError::Core(CoreError::CorruptRecord { key: named, .. })) => assert_eq!(named, key),
        other => panic!("expected CorruptRecord, got {:?}", other.err()),
    }

    // A key under the heads' prefix that names no id (another program's) is reported too, by
    // `list` and by `sweepExpired`, which also reports the head it cannot decode.
    let foreign = format!("{}a%2Fno-tilde", keys::HEAD_PREFIX);
    block_on(world.mem.put(&foreign, b"junk".to_vec().into(), agent_session::store::Expect::Any)).unwrap();
    events.borrow_mut().clear();
    assert_eq!(ids("a/"), ["a/c"]);
    let reported = |events: &[agent_session::engine::StoreEvent]| -> Vec<Option<String>> {
        events.iter().filter(|e| e.kind == "corrupt").map(|e| e.key.clone()).collect()
    };
    assert_eq!(reported(&events.borrow()), [Some(key.clone()), Some(foreign.clone())]);
    events.borrow_mut().clear();
    assert_eq!(block_on(store.sweep_expired(None)).unwrap(), 0);
    let mut swept = reported(&events.borrow());
    swept.sort();
    let mut expected = [Some(foreign), Some(key)];
    expected.sort();
    assert_eq!(swept, expected);
}

#[test]
fn on_change_reports_each_commit_of_this_store() {
    let world = World::new();
    let store = world.store("alice");
    let session = open(&store, "s");
    let other = open(&store, "t");
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = seen.clone();
    let all = store
        .on_change(Rc::new(move |change| sink.borrow_mut().push((change.id.clone(), change.version, change.status))));
    let only_s = Rc::new(std::cell::Cell::new(0));
    let counter = only_s.clone();
    session.on_change(Rc::new(move |_| counter.set(counter.get() + 1)));
    turn(&session, &["1"]);
    turn(&other, &["1"]);
    let invocation = begin(&session);
    block_on(invocation.checkpoint()).unwrap();
    block_on(invocation.abort()).unwrap();
    store.off_change(all);
    turn(&session, &["2"]);
    assert_eq!(
        *seen.borrow(),
        [("s".to_owned(), 1, Status::Idle), ("t".to_owned(), 1, Status::Idle), ("s".to_owned(), 2, Status::Running)]
    );
    assert_eq!(only_s.get(), 3);
}
