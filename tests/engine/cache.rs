//! The store's cache of session views: opening by id on every request reads the head only, Session
//! objects of one id share one view, the cache stays within its bounds, an evicted session reloads on
//! use, and the instance's memory budget refuses what would not fit instead of trapping.

// The same tests run in wasm (tests/wasm_node.rs, wasm_browser.rs) under wasm-bindgen-test.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::RefCell;
use std::rc::Rc;

use agent_session::core::Json;
use agent_session::engine::{CacheLimits, Config, EngineError, SessionStore};
use agent_session::store::{
    budget, Entry, Expect, ListPage, LocalBoxFuture, MemoryStore, Store, StoreError, StoreResult, Value, Version,
};

use crate::basics::{create, open, texts, turn};
use crate::support::*;

/// A memory store that counts the keys it is asked to read.
struct CountingStore {
    inner: Rc<MemoryStore>,
    reads: RefCell<Vec<String>>,
}

impl CountingStore {
    fn new(inner: Rc<MemoryStore>) -> Rc<CountingStore> {
        Rc::new(CountingStore { inner, reads: RefCell::default() })
    }

    /// The keys read since the last call, by their kind (`h`, `e`, `s`).
    fn take_reads(&self) -> Vec<char> {
        self.reads.take().iter().map(|key| key.chars().next().unwrap_or('?')).collect()
    }
}

impl Store for CountingStore {
    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        self.reads.borrow_mut().push(key.to_owned());
        self.inner.get(key)
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        self.inner.put(key, value, expect)
    }

    fn delete<'a>(&'a self, key: &'a str, expected: Option<&'a str>) -> LocalBoxFuture<'a, StoreResult<bool>> {
        self.inner.delete(key, expected)
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> LocalBoxFuture<'a, StoreResult<ListPage>> {
        self.inner.list(prefix, cursor, limit)
    }
}

fn store_over(world: &World, backend: Rc<dyn Store>, cache: CacheLimits) -> SessionStore {
    let config = Config { cache, snapshot_every: 5, ..World::config("server") };
    SessionStore::new(backend, world.env(0), config, None)
}

fn evicted(error: EngineError) -> bool {
    matches!(error, EngineError::Evicted { .. }) && error.code() == "LIMIT_EXCEEDED"
}

#[test]
fn opening_by_id_reads_the_head_and_only_the_batches_the_view_lacks() {
    let world = World::new();
    let counting = CountingStore::new(world.mem.clone());
    let store = store_over(&world, counting.clone(), CacheLimits::default());
    for i in 0..40 {
        let session = open(&store, "long");
        turn(&session, &[&format!("{i}"), &format!("{i}")]);
    }
    counting.take_reads();
    let session = open(&store, "long");
    assert_eq!(counting.take_reads(), ['h'], "an open of a current view reads the head only");
    assert_eq!(session.message_count(None).unwrap(), 80);

    // Another store (another server process) commits twice: the next open reads those two batches.
    let other = world.store("other");
    turn(&open(&other, "long"), &["\"a\""]);
    turn(&open(&other, "long"), &["\"b\""]);
    counting.take_reads();
    let session = open(&store, "long");
    assert_eq!(counting.take_reads(), ['h', 'e', 'e']);
    assert_eq!(texts(&session.messages(None).unwrap())[80..], ["\"a\"", "\"b\""]);
}

#[test]
fn sessions_of_one_id_share_one_view() {
    let world = World::new();
    let store = world.store("server");
    let first = open(&store, "s");
    let second = open(&store, "s");
    turn(&second, &["1"]);
    assert!(Rc::ptr_eq(&first.state().unwrap(), &second.state().unwrap()));
    assert_eq!(first.version(), 1, "a commit through one Session shows in the other");
    assert_eq!(store.cache_usage().0, 1);
}

#[test]
fn the_cache_keeps_at_most_max_sessions_and_an_evicted_session_reloads_on_use() {
    let world = World::new();
    let limits = CacheLimits { max_sessions: 3, ..CacheLimits::default() };
    let store = store_over(&world, world.mem.clone(), limits);
    let first = open(&store, "s0");
    turn(&first, &["\"kept\""]);
    for i in 1..10 {
        turn(&open(&store, &format!("s{i}")), &["1"]);
        assert!(store.cache_usage().0 <= 3);
    }
    assert!(evicted(first.messages(None).unwrap_err()), "a sync read of an evicted view says so");
    assert_eq!(first.version(), 1, "the head stays readable");
    block_on(first.refresh()).unwrap();
    assert_eq!(texts(&first.messages(None).unwrap()), ["\"kept\""]);
    turn(&first, &["\"more\""]);
    assert_eq!(texts(&open(&store, "s0").messages(None).unwrap()), ["\"kept\"", "\"more\""]);
}

#[test]
fn the_cache_stays_within_max_bytes_except_the_session_in_use() {
    let world = World::new();
    let limits = CacheLimits { max_bytes: 20_000, ..CacheLimits::default() };
    let store = store_over(&world, world.mem.clone(), limits);
    let big = format!("\"{}\"", "x".repeat(1000));
    for i in 0..100 {
        let session = open(&store, &format!("s{i}"));
        turn(&session, &[&big, &big]);
        assert!(store.cache_usage().1 <= 20_000, "{} bytes held", store.cache_usage().1);
    }
    // One session larger than max_bytes stays usable while it is the one in use.
    let huge = open(&store, "huge");
    for _ in 0..25 {
        turn(&huge, &[&big]);
    }
    assert_eq!(huge.message_count(None).unwrap(), 25);
    assert_eq!(store.cache_usage().0, 1, "everything else was evicted for it");
}

#[test]
fn a_session_idle_for_the_ttl_is_dropped_from_the_cache() {
    let world = World::new();
    let limits = CacheLimits { ttl_ms: 60_000, ..CacheLimits::default() };
    let store = store_over(&world, world.mem.clone(), limits);
    let idle = open(&store, "idle");
    turn(&idle, &["1"]);
    world.advance(60_000);
    turn(&open(&store, "busy"), &["2"]);
    assert_eq!(store.cache_usage().0, 1);
    assert!(evicted(idle.state().unwrap_err()));
    assert_eq!(texts(&open(&store, "idle").messages(None).unwrap()), ["1"]);
}

/// Not only a load makes room: a read of a cached session drops the others idle past the TTL.
#[test]
fn a_read_of_a_cached_session_drops_those_idle_past_the_ttl() {
    let world = World::new();
    let limits = CacheLimits { ttl_ms: 60_000, ..CacheLimits::default() };
    let store = store_over(&world, world.mem.clone(), limits);
    let idle = open(&store, "idle");
    turn(&idle, &["1"]);
    let used = open(&store, "used");
    turn(&used, &["2"]);
    assert_eq!(store.cache_usage().0, 2);
    world.advance(30_000);
    used.state().unwrap();
    world.advance(30_000);
    used.state().unwrap();
    assert_eq!(store.cache_usage().0, 1, "the idle one went at a read of the other");
    assert!(evicted(idle.state().unwrap_err()));
}

#[test]
fn a_running_invocation_pins_its_view() {
    let world = World::new();
    let limits = CacheLimits { max_sessions: 1, ..CacheLimits::default() };
    let store = store_over(&world, world.mem.clone(), limits);
    let held = open(&store, "held");
    let invocation = block_on(held.begin(Default::default())).unwrap();
    invocation.append_message(Json::from("\"staged\""), None).unwrap();
    for i in 0..5 {
        turn(&open(&store, &format!("other{i}")), &["1"]);
    }
    assert!(held.state().is_ok(), "not evicted while its invocation runs");
    block_on(invocation.commit()).unwrap();
    assert_eq!(texts(&held.messages(None).unwrap()), ["\"staged\""]);
    turn(&open(&store, "after"), &["1"]);
    assert!(evicted(held.state().unwrap_err()), "evictable again once the invocation ended");
}

#[test]
fn dispose_and_close_free_at_once() {
    let world = World::new();
    let store = world.store("server");
    let session = open(&store, "s");
    turn(&session, &["1"]);
    assert!(store.cache_usage().1 > 0);
    session.dispose();
    assert_eq!(store.cache_usage(), (0, 0));
    assert_eq!(texts(&open(&store, "s").messages(None).unwrap()), ["1"], "reloaded on use");
    store.close();
    assert_eq!(store.cache_usage(), (0, 0));
}

#[test]
fn a_view_of_a_deleted_session_is_not_mistaken_for_its_successor() {
    let world = World::new();
    let store = world.store("server");
    let old = open(&store, "s");
    turn(&old, &["\"old\""]);
    // Deleted and created again by another store: this store's slot still holds the old state.
    let other = world.store("other");
    assert!(block_on(other.delete("s")).unwrap());
    turn(&open(&other, "s"), &["\"new\""]);
    assert_eq!(texts(&open(&store, "s").messages(None).unwrap()), ["\"new\""]);
}

#[test]
fn many_sessions_opened_and_dropped_hold_a_bounded_cache() {
    let world = World::new();
    let limits = CacheLimits { max_sessions: 50, ..CacheLimits::default() };
    let store = store_over(&world, world.mem.clone(), limits);
    let mut peak = 0;
    for i in 0..2000 {
        turn(&open(&store, &format!("s{i}")), &["1", "2"]);
        peak = peak.max(store.cache_usage().1);
    }
    let (sessions, bytes) = store.cache_usage();
    assert_eq!(sessions, 50);
    assert!(bytes <= peak);
}

/// Restores the instance's memory ceiling and heap limit when a test ends, even by a panic.
struct Limits {
    ceiling: u64,
    heap: u64,
}

impl Limits {
    fn restored_at_end() -> Limits {
        Limits { ceiling: budget::ceiling(), heap: budget::heap_limit() }
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        budget::set_ceiling(self.ceiling);
        budget::set_heap_limit(self.heap);
    }
}

#[test]
fn the_memory_budget_refuses_what_would_not_fit_and_other_sessions_keep_working() {
    let _restore = Limits::restored_at_end();
    let world = World::new();
    let store = world.store("server");
    let small = open(&store, "small");
    turn(&small, &["\"before\""]);
    budget::set_ceiling(budget::held() + 200_000);
    let big = open(&store, "big");
    let chunk = format!("\"{}\"", "y".repeat(50_000));
    let mut refused = None;
    for _ in 0..20 {
        let invocation = block_on(big.begin(Default::default())).unwrap();
        invocation.append_message(Json::from(chunk.as_str()), None).unwrap();
        match block_on(invocation.commit()) {
            Ok(_) => {}
            Err(error) => {
                block_on(invocation.abort()).expect("a release fits: it replaces the head it grows");
                refused = Some(error);
                break;
            }
        }
    }
    let error = refused.expect("the budget refuses a commit before 1 MB is stored");
    assert_eq!(error.code(), "LIMIT_EXCEEDED");
    assert!(matches!(error, EngineError::Store(StoreError::OutOfMemory { .. })), "{error}");
    let version = big.version();
    assert_eq!(world.head("big").version, version, "nothing of the refused commit is named");
    // The other session reads, and once the big one is gone, commits again.
    assert_eq!(texts(&small.messages(None).unwrap()), ["\"before\""]);
    assert!(block_on(store.delete("big")).unwrap());
    turn(&small, &["\"after\""]);
    assert_eq!(texts(&open(&store, "small").messages(None).unwrap()), ["\"before\"", "\"after\""]);
}

#[test]
fn loading_a_session_larger_than_the_budget_is_refused_without_harm() {
    let _restore = Limits::restored_at_end();
    let world = World::new();
    let writer = world.store("writer");
    let big = open(&writer, "big");
    let chunk = format!("\"{}\"", "z".repeat(20_000));
    for _ in 0..10 {
        turn(&big, &[&chunk]);
    }
    drop(big);
    // A fresh server with little room left: opening the big session is refused, not a trap.
    budget::set_ceiling(budget::held() + 100_000);
    let server = world.store("server");
    let error = block_on(server.open("big", create())).err().expect("refused");
    assert_eq!(error.code(), "LIMIT_EXCEEDED");
    let small = open(&server, "small");
    turn(&small, &["1"]);
    assert_eq!(small.version(), 1);
}

#[test]
fn the_heap_limit_refuses_past_it_with_a_message_that_says_what_to_do() {
    let _restore = Limits::restored_at_end();
    assert_eq!(budget::heap_limit(), budget::DEFAULT_HEAP_LIMIT);
    const { assert!(budget::DEFAULT_HEAP_LIMIT > budget::DEFAULT_CEILING, "the budget fits under the heap limit") };
    budget::set_heap_limit(1 << 20);
    assert!(budget::check_heap(1 << 20).is_ok(), "at the limit is within it");
    let error = budget::check_heap((1 << 20) + 1).expect_err("past the limit");
    assert_eq!(error.code(), "LIMIT_EXCEEDED");
    assert!(matches!(error, StoreError::HeapFull { in_use, limit } if in_use == (1 << 20) + 1 && limit == 1 << 20));
    let message = error.to_string();
    assert!(message.contains("garbage collector has not finalized"), "{message}");
    assert!(message.contains("let the event loop run"), "{message}");
}
