//! The store trait: keys -> bytes with version tokens, compare-and-set on one key.
//!
//! Every backend (memory, IndexedDB, a host KV) implements [`Store`]; the engine never knows which one
//! it runs on. Futures are `!Send` (`LocalBoxFuture`) because JS backends live on one thread.

pub mod budget;
#[cfg(target_arch = "wasm32")]
mod host_kv;
#[cfg(target_arch = "wasm32")]
mod idb;
mod memory;
mod sealed;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

#[cfg(target_arch = "wasm32")]
pub use host_kv::{Capabilities, HostKvStore};
#[cfg(target_arch = "wasm32")]
pub use idb::{Durability, IdbStore};
pub use memory::MemoryStore;
pub use sealed::{Cipher, Keyring, OpenFailure, SealedStore};

/// What [`read_linked`] asks of each value it read: the keys to read next because of it, or `None`
/// when it cannot tell from these bytes (a sealed record: asked again once it has been opened).
pub type Follow = Rc<dyn Fn(&str, &Entry) -> Option<Vec<String>>>;

/// What [`read_linked`] read: every key it tried, with its entry if there was one, in no
/// particular order (a list, not a map: a load reads tens to hundreds of keys, and a map type of its
/// own costs the .wasm some 7 KB gzipped).
pub type Linked = Vec<(String, Option<Entry>)>;

/// The entry [`read_linked`] read under `key`, taken out of `read`.
pub fn take_linked(read: &mut Linked, key: &str) -> Option<Entry> {
    let at = read.iter().position(|(read_key, _)| read_key == key)?;
    read.swap_remove(at).1
}

/// The values under `keys` and, for each value found, under the keys `follow` names for it, and so
/// on: a session load (head, then its snapshot and batches, then the snapshot's segments). In one
/// go where the backend can ([`Store::get_linked`]), else a level at a time with
/// [`Store::get_many`]. A key read at one level is not read again at a later one.
/// Deletes the records a write made that no head names (a head write refused, or that provably did
/// not happen; their keys carry the writer's token), each with its chunks. A failure leaves them for
/// the id's next delete.
pub async fn discard_records(store: &dyn Store, keys: Vec<String>) {
    for key in keys {
        let _ = store.delete_prefix(&key, vec![key.clone()]).await;
    }
}

pub async fn read_linked(store: &dyn Store, keys: Vec<String>, follow: Follow) -> StoreResult<Linked> {
    // The keys whose values have been followed, so that a value is followed once.
    let followed: Rc<std::cell::RefCell<Vec<String>>> = Rc::default();
    let remembering: Follow = {
        let (follow, followed) = (follow.clone(), followed.clone());
        Rc::new(move |key: &str, entry: &Entry| {
            let next = follow(key, entry);
            if next.is_some() {
                followed.borrow_mut().push(key.to_owned());
            }
            next
        })
    };
    let mut read = Linked::new();
    let mut level = keys;
    loop {
        // Not a search of the level itself for keys it names twice (none of its callers does): a long
        // session's load names thousands of batches in one level, and that search was quadratic.
        level.retain(|key| !read.iter().any(|(read_key, _)| read_key == key));
        if level.is_empty() {
            return Ok(read);
        }
        let start = followed.borrow().len();
        let got = match store.get_linked(level.clone(), remembering.clone()) {
            Some(reading) => reading.await?,
            None => {
                let entries = store.get_many(level.clone()).await?;
                level.into_iter().zip(entries).collect()
            }
        };
        // What a one-go read did not follow (a sealed record, opened only after it) and what a
        // level-at-a-time read names are read next. A one-go read follows values in the order it
        // returns them: a walk finds each at once (a search per key was quadratic in a long
        // session's batches), and only the few it did not follow are searched for.
        let end = followed.borrow().len();
        let mut walk = start;
        let next: Vec<String> = got
            .iter()
            .filter(|(key, _)| {
                let followed = followed.borrow();
                if walk < end && followed[walk] == *key {
                    walk += 1;
                    return false;
                }
                !followed[start..end].contains(key)
            })
            .filter_map(|(key, entry)| entry.as_ref().and_then(|entry| remembering(key, entry)))
            .flatten()
            .collect();
        read.extend(got);
        level = next;
    }
}

/// A boxed future that may hold JS values (not `Send`).
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Opaque version token of a stored value; changes on every write of the key.
pub type Version = String;

/// What a write stores: the bytes, and when the record may be dropped by the backend (heads only:
/// a session's expiry travels with the write that sets it, so that no backend decodes a head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub bytes: Vec<u8>,
    pub expiry: Option<Expiry>,
}

/// When a written head's session expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// By the store's clock (ms since the epoch): what an expiry index (IndexedDB) sorts on.
    pub at: u64,
    /// From the write on: what a backend TTL (Redis, Deno KV, Durable Objects) is set to.
    pub ttl_ms: u64,
}

impl From<Vec<u8>> for Value {
    /// Bytes that do not expire by themselves.
    fn from(bytes: Vec<u8>) -> Value {
        Value { bytes, expiry: None }
    }
}

/// A stored value and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    pub version: Version,
}

/// The condition of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// Write only if the key does not exist.
    Absent,
    /// Write only if the key holds this version.
    Version(Version),
}

impl Expect {
    /// Whether the condition holds when the key is at `current` (its version, `None` if absent):
    /// the compare of every compare-and-set, for the backends that decide it themselves.
    pub fn holds(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (Expect::Any, _) | (Expect::Absent, None) => true,
            (Expect::Version(want), Some(have)) => want == have,
            _ => false,
        }
    }
}

/// One page of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    /// Pass back to get the next page; `None` on the last page.
    pub cursor: Option<String>,
}

impl ListPage {
    /// A page from up to `limit + 1` keys read in order: the extra key only says that more follow,
    /// and the page's last key is then the cursor.
    pub fn from_overfetch(mut keys: Vec<String>, limit: usize) -> ListPage {
        let cursor = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        ListPage { keys, cursor }
    }
}

/// What a backend's failure of a call leaves, said after its detail: what the caller can do.
#[cfg(target_arch = "wasm32")]
pub(crate) const AFTER_FAILURE: &str =
    "what was committed before stays; when this was a commit or checkpoint, its invocation is still open: retry it, or abort()";

/// A failure of the backing store (not a refused compare-and-set, which is `Ok(None)`).
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed or rejected; `cause` is the backend's own error value (a `JsValue` on wasm).
    #[error("the backing store failed: {message}")]
    Backend { message: String, cause: Option<Rc<dyn Any>> },
    /// The database named in the options exists and is not one of ours (IndexedDB: it has no object
    /// store `store`); nothing was written to it.
    #[error("the IndexedDB database \"{database}\" exists and has no \"{store}\" object store: something else made it; pass another name as options.database (agent-session keeps its records in a database of its own)")]
    Foreign { database: String, store: &'static str },
    /// A stored record is incomplete or inconsistent (a chunk of it is missing); names the key.
    #[error("stored record \"{key}\" is corrupt: {detail}")]
    Corrupt { key: String, detail: String },
    /// A read-modify-write kept losing compare-and-set races.
    #[error("the value under \"{key}\" kept changing under a read-modify-write; retry")]
    Contended { key: String },
    /// A head is larger than the backend accepts in one key: a compare-and-set writes it whole
    /// (records are chunked).
    #[error("the session's head record is {actual} bytes, over the backend's per-value limit of {limit} bytes (capabilities.maxValueBytes); the head holds the session's metadata, a pending interrupt's payload and a stop's reason: keep large data in messages or state values, which are chunked, and a reference to it there")]
    TooLarge { limit: u64, actual: u64 },
    /// Taking in `needed` more bytes would bring this wasm instance over its memory budget
    /// (`budget.rs`); nothing was written or loaded.
    #[error("{what} needs {needed} bytes, but this WebAssembly instance already holds {held} bytes of its {limit}-byte memory budget, so nothing was written or loaded (the instance and its other sessions keep working); delete or prune large sessions, lower the cache option's maxBytes, or keep large data outside the session")]
    OutOfMemory { what: &'static str, needed: u64, held: u64, limit: u64 },
    #[error("this WebAssembly instance's heap holds {in_use} bytes, over its {limit}-byte limit, counting the Session and Invocation objects that JavaScript dropped and its garbage collector has not finalized yet, so nothing was opened or begun (the instance and its other sessions keep working); let the event loop run between turns (await I/O or a timer, e.g. every thousand turns) so that they are finalized")]
    HeapFull { in_use: u64, limit: u64 },
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl StoreError {
    /// The stable code of the JS error class this maps to.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Corrupt { .. } => "CORRUPT_RECORD",
            StoreError::TooLarge { .. } | StoreError::OutOfMemory { .. } | StoreError::HeapFull { .. } => {
                "LIMIT_EXCEEDED"
            }
            StoreError::Backend { .. } | StoreError::Contended { .. } => "STORAGE",
            StoreError::Foreign { .. } => "INVALID_INPUT",
        }
    }

    pub fn backend(message: impl Into<String>) -> StoreError {
        StoreError::Backend { message: message.into(), cause: None }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Awaits `futures` together (each polled whenever the task wakes): `Ok` once all succeeded, else
/// the first error, dropping those still pending (writes of records no head names yet, or deletes
/// of records none names any more: either way nothing a reader follows).
async fn all_done<T>(mut futures: Vec<LocalBoxFuture<'_, StoreResult<T>>>) -> StoreResult<()> {
    std::future::poll_fn(move |cx| {
        let mut i = 0;
        while i < futures.len() {
            match futures[i].as_mut().poll(cx) {
                std::task::Poll::Ready(Ok(_)) => drop(futures.swap_remove(i)),
                std::task::Poll::Ready(Err(error)) => return std::task::Poll::Ready(Err(error)),
                std::task::Poll::Pending => i += 1,
            }
        }
        if futures.is_empty() {
            std::task::Poll::Ready(Ok(()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// [`Store::commit`] as separate writes: the records at once (independent of each other: one round trip
/// on a remote KV, not one each), then the head's compare-and-set once all of them are written.
pub(crate) async fn commit_in_order<S: Store + ?Sized>(
    store: &S,
    mut records: Vec<(String, Vec<u8>)>,
    head_key: &str,
    head: Value,
    expected: Expect,
) -> StoreResult<Option<Version>> {
    let writes =
        records.iter_mut().map(|(key, value)| store.put(key, std::mem::take(value).into(), Expect::Any)).collect();
    all_done(writes).await?;
    store.put(head_key, head, expected).await
}

/// [`Store::commit`] with the `stale` live logs it does not delete itself deleted beside it: how the
/// engine commits.
pub(crate) async fn commit_deleting(
    store: &dyn Store,
    records: Vec<(String, Vec<u8>)>,
    head_key: &str,
    head: Value,
    expected: Expect,
    mut stale: Vec<(String, Vec<String>)>,
) -> StoreResult<Option<Version>> {
    let commit = store.commit(records, head_key, head, expected, &mut stale);
    beside_deletes(store, commit, stale).await
}

/// Awaits `main` while `store` deletes the `stale` prefixes (with their keys when known, as
/// [`Store::delete_prefix`] takes them) beside it, and those deletes too. They delete records no head
/// names any more: a failed one is left for the session's delete to sweep.
pub(crate) async fn beside_deletes<'a, T>(
    store: &'a dyn Store,
    main: LocalBoxFuture<'a, T>,
    stale: Vec<(String, Vec<String>)>,
) -> T {
    if stale.is_empty() {
        return main.await;
    }
    let mut deletes: Vec<_> = stale.iter().map(|(prefix, known)| store.delete_prefix(prefix, known.clone())).collect();
    let (mut main, mut out) = (main, None);
    std::future::poll_fn(move |cx| {
        if out.is_none() {
            if let std::task::Poll::Ready(value) = main.as_mut().poll(cx) {
                out = Some(value);
            }
        }
        deletes.retain_mut(|delete| delete.as_mut().poll(cx).is_pending());
        match out.take() {
            Some(value) if deletes.is_empty() => std::task::Poll::Ready(value),
            value => {
                out = value;
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// A key/bytes store with single-key compare-and-set: all the guard protocol needs.
pub trait Store {
    /// The value and version under `key`, or `None`.
    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>>;

    /// Writes `value` under `key` if `expect` holds: `Some(new version)`, or `None` when it did not
    /// hold (nothing written).
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>>;

    /// [`Store::put`], telling on a refused condition what the key holds when the backend can say so
    /// without another round trip (`current: Some(..)`); `None` when it cannot. The guard's begin uses
    /// it to decide again on the reported head instead of reading it.
    fn put_or_current<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        Box::pin(async move { self.put(key, value, expect).await.map(Put::from) })
    }

    /// [`Store::put_or_current`] that, when it writes, also deletes every key under each of the
    /// `stale` prefixes in the same transaction, where [`Store::clears_in_put`] says the backend
    /// does (IndexedDB): records no head names any more, a finished turn's live log deleted as the
    /// lease of the next one is written. The default ignores `stale`: the caller deletes them another
    /// way (the engine, beside the turn's first write).
    fn put_clearing<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
        stale: Vec<String>,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        let _ = stale;
        self.put_or_current(key, value, expect)
    }

    /// Whether [`Store::put_clearing`] deletes what it is given.
    fn clears_in_put(&self) -> bool {
        false
    }

    /// A hint: a write that reads `key` first (a lease's [`Store::put_clearing`] or [`Store::update`],
    /// a commit's compare-and-set of its head) follows within this task. A backend whose writes are
    /// transactions may open one now and issue that read, so that the caller's work until the write
    /// overlaps it (IndexedDB: the request then waits in the browser while the engine decides and
    /// encodes). A write of `key` that comes while that read is still pending joins the transaction;
    /// one that comes later opens its own, and the prepared one ends without writing. The default
    /// does nothing.
    fn prepare_write(&self, key: &str) {
        let _ = key;
    }

    /// Whether what other processes write reaches this realm as a wake-up (IndexedDB's
    /// BroadcastChannel across tabs and workers; the memory store is one process), or only when read
    /// (a KV store: a holder then reads the head for a stop at its flushes, API.md "Live turns").
    fn wakes_on_news(&self) -> bool {
        true
    }

    /// Deletes `key` (only at `expected`, when given). `true` when something was deleted.
    fn delete<'a>(&'a self, key: &'a str, expected: Option<&'a str>) -> LocalBoxFuture<'a, StoreResult<bool>>;

    /// Keys starting with `prefix` in ascending order, a page at a time.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> LocalBoxFuture<'a, StoreResult<ListPage>>;

    /// Writes the immutable `records`, then compare-and-sets `head` from `expected`: a commit. The
    /// default is those writes in order, which is safe because the records' keys carry the writer's
    /// fencing token and no head names them until the compare-and-set succeeds; IndexedDB overrides it
    /// to make the whole commit one transaction, a host KV with a `commit` method one call.
    /// `stale`: live logs no head names any more (prefixes with their keys when known, as
    /// [`Store::delete_prefix`] takes them), which the caller deletes beside the commit; a store that
    /// deletes some of them with the commit itself, whether or not the head is written, takes them out
    /// (a host KV's one call). The default takes none.
    fn commit<'a>(
        &'a self,
        records: Vec<(String, Vec<u8>)>,
        head_key: &'a str,
        head: Value,
        expected: Expect,
        stale: &mut Vec<(String, Vec<String>)>,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        let _ = stale;
        Box::pin(commit_in_order(self, records, head_key, head, expected))
    }

    /// Reads `key`, lets `decide` choose synchronously whether to write, and writes atomically with
    /// respect to the value it decided on: `Some(new version)` when it wrote, `None` when `decide`
    /// kept the value. The default is a read and a compare-and-set, re-deciding on a lost race; a
    /// backend with transactions (IndexedDB) decides inside one transaction. This is how the guard
    /// takes a lease in one round trip.
    fn update<'a>(&'a self, key: &'a str, mut decide: Decide) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        Box::pin(async move {
            for _ in 0..UPDATE_ATTEMPTS {
                let current = self.get(key).await?;
                let Decision::Write(value) = decide(current.as_ref()) else { return Ok(None) };
                let expect = current.map_or(Expect::Absent, |entry| Expect::Version(entry.version));
                if let Some(version) = self.put(key, value, expect).await? {
                    return Ok(Some(version));
                }
            }
            Err(StoreError::Contended { key: key.to_owned() })
        })
    }

    /// Deletes a session: its head if still at `expected`, then every key under `prefixes`;
    /// `expected` `None`: while no head is there, the records a delete that failed part-way left.
    /// `false` (nothing deleted) when the head is not as expected. The default deletes the head
    /// first, so a failure part-way leaves records that no head names (deleted by the next delete
    /// of the id); a backend with transactions does it all in one. It stops at a head written
    /// again under the id (a session created anew meanwhile): a page listed while no head was there
    /// holds only the deleted session's records, one listed later may hold the new session's (its
    /// head comes first).
    fn delete_session<'a>(
        &'a self,
        head_key: &'a str,
        expected: Option<&'a str>,
        prefixes: &'a [String],
    ) -> LocalBoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let removed = match expected {
                Some(expected) => self.delete(head_key, Some(expected)).await?,
                None => self.get(head_key).await?.is_none(),
            };
            if !removed {
                return Ok(false);
            }
            for prefix in prefixes {
                // From the start again after each page deleted; past a page with nothing on it (a
                // backend may give one, with a cursor) by its cursor, or this would list it for ever.
                let mut cursor: Option<String> = None;
                loop {
                    let page = self.list(prefix, cursor.as_deref(), 256).await?;
                    if self.get(head_key).await?.is_some() {
                        return Ok(true);
                    }
                    for key in &page.keys {
                        self.delete(key, None).await?;
                    }
                    match page.cursor {
                        None => break,
                        Some(next) => cursor = page.keys.is_empty().then_some(next),
                    }
                }
            }
            Ok(true)
        })
    }

    /// Deletes `keys` (records no head names any more); how many existed. The default deletes one by
    /// one; IndexedDB deletes them in one transaction.
    fn delete_keys<'a>(&'a self, keys: Vec<String>) -> LocalBoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let mut deleted = 0;
            for key in keys {
                if self.delete(&key, None).await? {
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
    }

    /// Whether the keys of the records are every key their values take: not where a value too large
    /// for the backend is stored as chunks under keys of its own (a host KV with `maxValueBytes`).
    fn keys_name_every_value(&self) -> bool {
        true
    }

    /// Deletes every key under `prefix` (records no head names: a turn's live log). `known` lists
    /// them when the caller knows them, so that a backend without range deletes need not list (unless
    /// they may have chunks); the default deletes one by one; IndexedDB deletes the range in one request.
    fn delete_prefix<'a>(&'a self, prefix: &'a str, known: Vec<String>) -> LocalBoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let keys = if known.is_empty() || !self.keys_name_every_value() {
                self.list(prefix, None, 10_000).await?.keys
            } else {
                known
            };
            all_done(keys.iter().map(|key| self.delete(key, None)).collect()).await
        })
    }

    /// The values under `keys`, in order. The default reads them one by one; loads go through
    /// [`read_linked`], which IndexedDB serves in one transaction.
    fn get_many<'a>(&'a self, keys: Vec<String>) -> LocalBoxFuture<'a, StoreResult<Vec<Option<Entry>>>> {
        Box::pin(async move {
            let mut entries = Vec::with_capacity(keys.len());
            for key in &keys {
                entries.push(self.get(key).await?);
            }
            Ok(entries)
        })
    }

    /// [`read_linked`] in one go where the backend can: IndexedDB reads the whole chain in one
    /// transaction, issuing the next reads from the callbacks of the ones they follow. `None` (the
    /// default): the backend has no better way than [`read_linked`]'s level at a time.
    fn get_linked<'a>(&'a self, keys: Vec<String>, follow: Follow) -> Option<LocalBoxFuture<'a, StoreResult<Linked>>> {
        let _ = (keys, follow);
        None
    }

    /// Whether the backend's compare-and-set is atomic (what the guard needs). Only a host KV can
    /// say it is not (Workers KV).
    fn atomic(&self) -> bool {
        true
    }

    /// Releases what the backend holds (IndexedDB: its connection, so that other tabs can upgrade
    /// or delete the database). Later calls may fail.
    fn close(&self) {}

    /// Head keys whose session may have expired by `now` (at most `limit`), from an index; `None`
    /// when the backend has no such index (the sweep then reads every head).
    fn expiring<'a>(&'a self, now: u64, limit: usize) -> LocalBoxFuture<'a, StoreResult<Option<Vec<String>>>> {
        let _ = (now, limit);
        Box::pin(std::future::ready(Ok(None)))
    }
}

/// Attempts of the default [`Store::update`] before it reports contention.
const UPDATE_ATTEMPTS: usize = 16;

/// The decision of a read-modify-write, run on the current value (possibly more than once). It is
/// `'static` because a transactional backend calls it from inside a request callback.
pub type Decide = Box<dyn FnMut(Option<&Entry>) -> Decision>;

/// The outcome of [`Store::put_or_current`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Written(Version),
    /// The condition did not hold; `current` is what the key holds (`Some(None)`: nothing), when known.
    Refused {
        current: Option<Option<Entry>>,
    },
}

impl From<Option<Version>> for Put {
    /// What a plain `put` says: written, or refused without knowing the current value.
    fn from(written: Option<Version>) -> Put {
        match written {
            Some(version) => Put::Written(version),
            None => Put::Refused { current: None },
        }
    }
}

/// What [`Store::update`]'s callback decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Write(Value),
    Keep,
}
