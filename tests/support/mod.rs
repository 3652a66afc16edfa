//! Test harness shared by the engine tests: a fake clock and RNG (`FakeEnv`), a tiny executor
//! (`block_on`), a world of owners over one `MemoryStore`, and `YieldingStore`, a wrapper that makes
//! every store call return `Pending` once so that a scheduler can interleave owners inside their
//! operations (between a head read and its compare-and-set).
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use agent_session::core::{codec, keys, Head};
use agent_session::engine::{Config, Env, SessionStore};
use agent_session::store::{
    Entry, Expect, Keyring, ListPage, LocalBoxFuture, MemoryStore, SealedStore, Store, StoreResult, Value, Version,
};

pub mod cipher;

/// Polls `future` to completion with a no-op waker. Every future in these tests makes progress on
/// each poll (fake sleeps are ready, `YieldingStore` yields once per call), so a bounded loop is enough.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("future did not complete in 1,000,000 polls");
}

/// Polls once.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// The clock of a test world: milliseconds that move only when a test moves them.
pub const START: u64 = 1_700_000_000_000;

/// `Env` over a shared fake clock: `now()` is the clock plus this env's skew, `sleep(ms)` advances the
/// shared clock and is ready at once, `fill_random` is a seeded xorshift.
pub struct FakeEnv {
    clock: Rc<Cell<u64>>,
    skew: i64,
    rng: Cell<u64>,
}

impl FakeEnv {
    pub fn new(clock: Rc<Cell<u64>>, skew: i64, seed: u64) -> FakeEnv {
        FakeEnv { clock, skew, rng: Cell::new(seed | 1) }
    }
}

impl Env for FakeEnv {
    fn now(&self) -> u64 {
        self.clock.get().saturating_add_signed(self.skew)
    }

    fn fill_random(&self, bytes: &mut [u8]) {
        for byte in bytes {
            let mut x = self.rng.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng.set(x);
            *byte = (x >> 24) as u8;
        }
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        self.clock.set(self.clock.get() + ms);
        Box::pin(std::future::ready(()))
    }
}

/// One backend (a `MemoryStore`) and one clock, shared by any number of owners.
pub struct World {
    pub mem: Rc<MemoryStore>,
    pub clock: Rc<Cell<u64>>,
    seeds: Cell<u64>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        World {
            mem: Rc::new(MemoryStore::new()),
            clock: Rc::new(Cell::new(START)),
            seeds: Cell::new(0x9E37_79B9_7F4A_7C15),
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.get()
    }

    pub fn advance(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }

    pub fn env(&self, skew: i64) -> Rc<FakeEnv> {
        let seed = self.seeds.get().wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.seeds.set(seed);
        Rc::new(FakeEnv::new(self.clock.clone(), skew, seed))
    }

    /// A config with short leases so that tests read in milliseconds.
    pub fn config(owner: &str) -> Config {
        Config { lease_ms: 1_000, snapshot_every: 0, ..Config::new(owner.to_owned()) }
    }

    /// A new owner over this world's backend and clock.
    pub fn store(&self, owner: &str) -> SessionStore {
        self.store_with(World::config(owner), 0)
    }

    pub fn store_with(&self, config: Config, skew: i64) -> SessionStore {
        SessionStore::new(self.mem.clone(), self.env(skew), config, None)
    }

    /// A new owner over this world's backend, sealing through `cipher` (encryption at rest).
    pub fn sealed_store(&self, config: Config, cipher: Rc<cipher::TestCipher>, keyring: Keyring) -> SessionStore {
        let sealed = SealedStore::new(self.mem.clone(), cipher, keyring);
        SessionStore::new(Rc::new(sealed), self.env(0), config, None)
    }

    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.mem.dump()
    }

    /// The `last_token` a session was created with (tokens of a new session start at a random base).
    pub fn base(&self, id: &str) -> u64 {
        self.head(id).last_token
    }

    /// The head of `id` as stored.
    pub fn head(&self, id: &str) -> Head {
        stored_head(&self.mem, id).expect("the session exists")
    }
}

pub fn stored_head(mem: &MemoryStore, id: &str) -> Option<Head> {
    let key = keys::head_key(id);
    let entry = block_on(mem.get(&key)).unwrap()?;
    Some(codec::decode_any_head(&key, &entry.value).expect("a valid head").0)
}

/// Every key that the stored head of `id` names, directly or through its snapshot chain: the head,
/// the batch of every version 1..=head.version, every snapshot and the message segments they name.
pub fn named_keys(mem: &MemoryStore, id: &str) -> Vec<String> {
    let head = stored_head(mem, id).expect("the session exists");
    let mut keys = vec![keys::head_key(id)];
    let mut tokens = std::collections::BTreeMap::new();
    let base = head.snapshot_version();
    for (i, token) in head.commits.iter().enumerate() {
        tokens.insert(base + 1 + i as u64, token);
    }
    let mut cursor = head.snapshot;
    while let Some(at) = cursor {
        let key = keys::snapshot_key(id, at.version, at.token);
        let entry = block_on(mem.get(&key)).unwrap().unwrap_or_else(|| panic!("{key} is named but missing"));
        let snapshot = codec::decode_snapshot(&key, &entry.value).unwrap();
        let start = snapshot.previous.map_or(0, |p| p.version);
        for (i, token) in snapshot.commits.iter().enumerate() {
            tokens.insert(start + 1 + i as u64, token);
        }
        for segment in &snapshot.segments {
            let segment_key = keys::segment_key(id, segment.version, segment.token);
            if !keys.contains(&segment_key) {
                keys.push(segment_key);
            }
        }
        keys.push(key);
        cursor = snapshot.previous;
    }
    assert_eq!(
        tokens.keys().copied().collect::<Vec<_>>(),
        (1..=head.version).collect::<Vec<_>>(),
        "the head names every version once"
    );
    for (version, token) in tokens {
        keys.push(keys::batch_key(id, version, token));
    }
    keys
}

/// The value of `key` in a dump.
pub fn lookup<'a>(dump: &'a [(String, Vec<u8>)], key: &str) -> Option<&'a [u8]> {
    dump.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
}

// ---------------------------------------------------------------------------------------------
// YieldingStore

/// Returns `Pending` once, then `Ready`.
#[derive(Default)]
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// One successful write to the backend, in the order the backend applied them.
#[derive(Debug, Clone)]
pub struct Write {
    /// Which wrapper (owner) wrote it, and the operation that owner had in flight.
    pub owner: usize,
    pub op: u64,
    pub key: String,
    /// `None` for a delete.
    pub value: Option<Vec<u8>>,
    /// The shared clock when the backend applied it.
    pub at: u64,
}

/// A `Store` over a shared `MemoryStore` whose every call yields once before it takes effect, so
/// its effect happens on a later poll than the call. Successful writes are appended to a log shared
/// by all wrappers, tagged with this wrapper's owner and the op id set by the test.
pub struct YieldingStore {
    pub inner: Rc<MemoryStore>,
    pub owner: usize,
    pub op: Cell<u64>,
    pub calls: Cell<u64>,
    /// Conditional writes the backend refused (lost compare-and-set races).
    pub refused_writes: Cell<u64>,
    pub log: Rc<RefCell<Vec<Write>>>,
    clock: Rc<Cell<u64>>,
}

impl YieldingStore {
    pub fn new(
        inner: Rc<MemoryStore>,
        owner: usize,
        log: Rc<RefCell<Vec<Write>>>,
        clock: Rc<Cell<u64>>,
    ) -> YieldingStore {
        YieldingStore { inner, owner, op: Cell::new(0), calls: Cell::new(0), refused_writes: Cell::new(0), log, clock }
    }

    fn record(&self, key: &str, value: Option<Vec<u8>>) {
        self.log.borrow_mut().push(Write {
            owner: self.owner,
            op: self.op.get(),
            key: key.to_owned(),
            value,
            at: self.clock.get(),
        });
    }
}

impl Store for YieldingStore {
    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        self.calls.set(self.calls.get() + 1);
        Box::pin(async move {
            YieldOnce::default().await;
            self.inner.get(key).await
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        self.calls.set(self.calls.get() + 1);
        Box::pin(async move {
            YieldOnce::default().await;
            let result = self.inner.put(key, value.clone(), expect).await;
            match &result {
                Ok(Some(_)) => self.record(key, Some(value.bytes)),
                Ok(None) => self.refused_writes.set(self.refused_writes.get() + 1),
                Err(_) => {}
            }
            result
        })
    }

    fn delete<'a>(&'a self, key: &'a str, expected: Option<&'a str>) -> LocalBoxFuture<'a, StoreResult<bool>> {
        self.calls.set(self.calls.get() + 1);
        Box::pin(async move {
            YieldOnce::default().await;
            let result = self.inner.delete(key, expected).await;
            if let Ok(true) = result {
                self.record(key, None);
            }
            result
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> LocalBoxFuture<'a, StoreResult<ListPage>> {
        self.calls.set(self.calls.get() + 1);
        Box::pin(async move {
            YieldOnce::default().await;
            self.inner.list(prefix, cursor, limit).await
        })
    }
    // `commit` keeps the trait's default: the records, then the head, each a yielding put (the KV path).
}

// ---------------------------------------------------------------------------------------------
// FlakyStore

/// How the next write to a key with a given prefix fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The backend refuses the write: nothing is stored.
    Before,
    /// The backend stores the write, then the reply is lost (a timeout): the caller sees an error.
    After,
}

/// A `Store` over a `MemoryStore` that fails the next write to a key starting with an armed prefix.
pub struct FlakyStore {
    pub inner: Rc<MemoryStore>,
    armed: RefCell<Option<(String, Failure)>>,
}

impl FlakyStore {
    pub fn new(inner: Rc<MemoryStore>) -> FlakyStore {
        FlakyStore { inner, armed: RefCell::new(None) }
    }

    pub fn fail_next(&self, prefix: &str, failure: Failure) {
        *self.armed.borrow_mut() = Some((prefix.to_owned(), failure));
    }

    fn take_failure(&self, key: &str) -> Option<Failure> {
        let mut armed = self.armed.borrow_mut();
        match &*armed {
            Some((prefix, failure)) if key.starts_with(prefix.as_str()) => {
                let failure = *failure;
                *armed = None;
                Some(failure)
            }
            _ => None,
        }
    }
}

impl Store for FlakyStore {
    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        self.inner.get(key)
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        match self.take_failure(key) {
            None => self.inner.put(key, value, expect),
            Some(failure) => Box::pin(async move {
                if failure == Failure::After {
                    self.inner.put(key, value, expect).await?;
                }
                Err(agent_session::store::StoreError::backend("injected failure"))
            }),
        }
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
