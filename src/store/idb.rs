//! The IndexedDB backend, on web-sys. Every operation is one transaction: the compare runs inside
//! the request's success callback and the write is issued from there, so nothing is awaited while a
//! transaction is open (it would auto-commit); the result is read when the transaction completes.
//!
//! Layout: one object store `records`, out-of-line string keys, values `{ v: Uint8Array, n: number,
//! x?: number }`: the record bytes, a random version number (changes on every write, so a deleted
//! and recreated key never repeats a version), and for heads the expiry that the `expiresAt` index
//! serves to the sweep.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore, IdbRequest, IdbRequestReadyState, IdbTransaction};

use crate::caught;
use crate::store::{
    budget, Decide, Decision, Entry, Expect, Expiry, Follow, Linked, ListPage, LocalBoxFuture, Put, Store, StoreError,
    StoreResult, Value, Version,
};

const RECORDS: &str = "records";
const EXPIRY_INDEX: &str = "expiresAt";
/// Upper bound of a key prefix range: keys are ASCII (ids are escaped), so this sorts after all.
const PREFIX_END: char = '\u{ffff}';

/// How durably a readwrite transaction is committed (`IDBTransactionOptions.durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Complete once the write reached the OS: the browser default for most, and the fastest.
    Relaxed,
    /// Complete once the write was flushed to disk.
    Strict,
}

impl Durability {
    fn as_str(self) -> &'static str {
        match self {
            Durability::Relaxed => "relaxed",
            Durability::Strict => "strict",
        }
    }
}

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase` seen through `transaction(store, mode, { durability })`: web-sys keeps the
    /// options dictionary behind its unstable-API flag.
    type TransactionOpener;
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &TransactionOpener,
        store: &JsValue,
        mode: &JsValue,
        options: &JsValue,
    ) -> Result<IdbTransaction, JsValue>;
    /// An `IDBTransaction` seen through `objectStore(name)` with a name made once (web-sys takes a
    /// `&str`, decoded anew at each call).
    type StoreOpener;
    #[wasm_bindgen(method, catch, js_name = objectStore)]
    fn object_store_named(this: &StoreOpener, name: &JsValue) -> Result<IdbObjectStore, JsValue>;
}

/// The JS strings every transaction passes, made once per realm: each `JsValue::from_str` decodes a
/// new string out of wasm memory, and a turn made twenty of them, garbage that the page's collector
/// then pays for (`node bench/idb-alloc.mjs`).
struct Names {
    records: JsValue,
    readwrite: JsValue,
    readonly: JsValue,
    /// The record's bytes, its version and its expiry: `{ v, n, x }`.
    bytes: JsValue,
    version: JsValue,
    expiry: JsValue,
}

thread_local! {
    static NAMES: Names = Names {
        records: JsValue::from_str(RECORDS),
        readwrite: JsValue::from_str("readwrite"),
        readonly: JsValue::from_str("readonly"),
        bytes: JsValue::from_str("v"),
        version: JsValue::from_str("n"),
        expiry: JsValue::from_str("x"),
    };
}

/// A connection's onversionchange or onclose handler (given the event).
type EventHandler = Closure<dyn FnMut(JsValue)>;

/// A session store in one IndexedDB database.
pub struct IdbStore {
    name: String,
    db: RefCell<Option<IdbDatabase>>,
    /// Set when the browser closed the connection or another tab wants to upgrade.
    stale: Rc<Cell<bool>>,
    /// Set when another connection deletes the database (a logout that clears it, say): the store
    /// then refuses every call rather than create the database again, empty, with this tab's writes.
    deleted: Rc<Cell<bool>>,
    /// Keeps the connection's onversionchange / onclose handlers alive.
    _handlers: RefCell<Vec<EventHandler>>,
    /// The transaction opened ahead of a write ([`Store::prepare_write`]): the last one prepared.
    prepared: RefCell<Option<Prepared>>,
    /// `{ durability }`, the options of every transaction (IndexedDB reads them when it is opened).
    options: Object,
}

/// A readwrite transaction opened ahead of a read-then-write of `key`, its read of `key` issued.
struct Prepared {
    key: String,
    tx: IdbTransaction,
    records: IdbObjectStore,
    read: IdbRequest,
}

impl Prepared {
    /// Whether its read has no result yet: then its success callback has not run, and a write may
    /// still join the transaction from there. Once it has run with nothing to write, the transaction
    /// commits on its own.
    fn pending(&self) -> bool {
        self.read.ready_state() == IdbRequestReadyState::Pending
    }
}

impl std::fmt::Debug for IdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStore").field("name", &self.name).finish()
    }
}

fn backend(message: &str, cause: JsValue) -> StoreError {
    let detail = cause
        .dyn_ref::<js_sys::Error>()
        .map(|error| format!("{}: {}", String::from(error.name()), String::from(error.message())))
        .or_else(|| cause.dyn_ref::<web_sys::DomException>().map(|e| format!("{}: {}", e.name(), e.message())))
        .unwrap_or_else(|| "unknown error".to_owned());
    let message = format!("IndexedDB {message}: {detail}; {}", super::AFTER_FAILURE);
    StoreError::Backend { message, cause: Some(Rc::new(cause)) }
}

fn factory() -> StoreResult<IdbFactory> {
    caught::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
        .ok()
        .and_then(|value| value.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| StoreError::backend(
            "IndexedDB is not available here: SessionStore.indexedDb() is for browsers and their workers; on a server use SessionStore.kv() (Redis, Deno KV, a Durable Object) or SessionStore.memory()",
        ))
}

// The callbacks of these promises are JavaScript's (js/web.js says why).
#[wasm_bindgen(module = "/js/web.js")]
extern "C" {
    #[wasm_bindgen(js_name = openDatabase)]
    fn open_database(
        factory: &IdbFactory,
        name: &str,
        records: &str,
        index: &str,
        key_path: &str,
        create: bool,
    ) -> Promise;
    #[wasm_bindgen(js_name = transactionDone)]
    fn transaction_promise(tx: &IdbTransaction) -> Array;
}

/// Resolves when `tx` completes, rejects with its error when it aborts (a quota error arrives so).
/// A read-only transaction resolves as soon as every request issued has had its result, given its
/// `requests` (`Requests::all_read`): its results are final then, and waiting for `complete` too
/// cost a turn of the event loop (about 0.15 ms of a 1 ms cold load in Chromium).
async fn transaction_done(tx: &IdbTransaction, reads: Option<&Requests>) -> Result<(), JsValue> {
    let pair = transaction_promise(tx);
    let (done, settle) = (pair.get(0), pair.get(1));
    if let Some(reads) = reads {
        *reads.all_read.borrow_mut() = Some(settle.unchecked_into());
    }
    JsFuture::from(done.unchecked_into::<Promise>()).await.map(|_| ())
}

/// Calls `then` with the request's result from inside its success callback, where the transaction
/// is still active and may be given more requests. An error from `then` aborts the transaction.
fn on_success(
    tx: &IdbTransaction,
    request: &IdbRequest,
    requests: &Requests,
    then: impl FnOnce(JsValue) -> Result<(), Failed> + 'static,
) {
    on_success_boxed(tx, request, requests, Box::new(then));
}

/// [`on_success`] for one closure type: the JS glue of a callback is generated per Rust closure type,
/// and this keeps it to one copy in the .wasm.
fn on_success_boxed(
    tx: &IdbTransaction,
    request: &IdbRequest,
    requests: &Requests,
    then: Box<dyn FnOnce(JsValue) -> Result<(), Failed>>,
) {
    let (tx, done, requests) = (tx.clone(), request.clone(), requests.clone());
    requests.waiting.set(requests.waiting.get() + 1);
    let callback = Closure::once_into_js(move || {
        let result = done.result().unwrap_or(JsValue::UNDEFINED);
        if let Err(error) = then(result) {
            *requests.failed.borrow_mut() = Some(error);
            let _ = tx.abort();
            return;
        }
        // `then` may have issued more requests: counted before this one is taken off.
        requests.waiting.set(requests.waiting.get() - 1);
        if requests.waiting.get() == 0 {
            if let Some(all_read) = requests.all_read.borrow_mut().take() {
                let _ = caught::call0(&all_read, &JsValue::UNDEFINED);
            }
        }
    });
    request.set_onsuccess(Some(callback.unchecked_ref()));
}

/// What a read-then-write transaction writes, given what it read (boxed: one copy of the
/// transaction's code in the .wasm for every caller).
type Decider = Box<dyn FnOnce(&IdbObjectStore, Option<Entry>) -> Result<Option<Version>, JsValue>>;

/// What issues a transaction's requests ([`IdbStore::run_boxed`]).
type Starter = Box<dyn FnOnce(&IdbTransaction, &IdbObjectStore, &Requests) -> Result<(), JsValue>>;

/// What the request callbacks of one transaction share: an error one of them raised (reported
/// instead of the bare abort it caused), how many requests still wait for their result, and for a
/// read-only transaction what resolves it once none does ([`transaction_done`]).
type Requests = Rc<RequestState>;

#[derive(Default)]
struct RequestState {
    failed: RefCell<Option<Failed>>,
    waiting: Cell<u32>,
    all_read: RefCell<Option<js_sys::Function>>,
}

/// Why a request callback failed: IndexedDB itself, or what it returned (a record that is not what
/// this package wrote, named by its key; one too large for the memory budget).
enum Failed {
    Js(JsValue),
    Store(StoreError),
}

impl From<JsValue> for Failed {
    fn from(error: JsValue) -> Self {
        Failed::Js(error)
    }
}

/// The stored value and version under `key`, from the JS object in the store. Anything else there
/// (other code's value, an object without its bytes) is a corrupt record named by its key.
fn entry_of(key: &str, value: &JsValue) -> Result<Option<Entry>, Failed> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let corrupt = |detail: &str| Failed::Store(StoreError::Corrupt { key: key.to_owned(), detail: detail.to_owned() });
    if !value.is_object() || value.is_instance_of::<Uint8Array>() {
        return Err(corrupt("it is not a record of agent-session (an object { v: bytes, n: version })"));
    }
    let (bytes, version) = NAMES.with(|names| (caught::get(value, &names.bytes), caught::get(value, &names.version)));
    let (bytes, version) = (bytes?, version?);
    let bytes = bytes.dyn_into::<Uint8Array>().map_err(|_| corrupt("its record has no bytes"))?;
    let version = version.as_f64().filter(|n| n.is_finite()).ok_or_else(|| corrupt("its record has no version"))?;
    // Checked before the bytes are copied into wasm memory, where a failed allocation would trap.
    budget::check("a record read from IndexedDB", u64::from(bytes.length())).map_err(Failed::Store)?;
    Ok(Some(Entry { value: bytes.to_vec(), version: version_string(version) }))
}

/// The version of what a read-then-write read (`None`: nothing there), for its compare.
fn version_of(current: &Option<Entry>) -> Option<&str> {
    current.as_ref().map(|entry| entry.version.as_str())
}

fn version_string(version: f64) -> String {
    // Integers below 2^53 (random versions are floored): integer formatting, not float formatting,
    // which would add some 15 KB of float printing to the .wasm.
    (version as u64).to_string()
}

/// The JS object stored for `value`, with a fresh random version and, for a head that sets one, the
/// session's expiry (`x`, what the expiry index sorts on).
fn stored(value: &[u8], expiry: Option<Expiry>) -> (JsValue, Version) {
    let version = (js_sys::Math::random() * 9_007_199_254_740_991.0).floor();
    let object = Object::new();
    // Setting plain properties on a fresh object cannot fail.
    NAMES.with(|names| {
        let _ = Reflect::set(&object, &names.bytes, &Uint8Array::from(value));
        let _ = Reflect::set(&object, &names.version, &JsValue::from_f64(version));
        if let Some(expiry) = expiry {
            let _ = Reflect::set(&object, &names.expiry, &JsValue::from_f64(expiry.at as f64));
        }
    });
    (object.into(), version_string(version))
}

fn prefix_range(prefix: &str, after: Option<&str>) -> Result<IdbKeyRange, JsValue> {
    let upper = JsValue::from_str(&format!("{prefix}{PREFIX_END}"));
    match after {
        Some(after) => IdbKeyRange::bound_with_lower_open(&JsValue::from_str(after), &upper, true),
        None => IdbKeyRange::bound(&JsValue::from_str(prefix), &upper),
    }
}

impl Drop for IdbStore {
    fn drop(&mut self) {
        Store::close(self);
    }
}

impl IdbStore {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str, durability: Durability) -> StoreResult<IdbStore> {
        let store = IdbStore {
            name: name.to_owned(),
            db: RefCell::new(None),
            stale: Rc::new(Cell::new(false)),
            deleted: Rc::new(Cell::new(false)),
            _handlers: RefCell::new(Vec::new()),
            prepared: RefCell::new(None),
            options: Object::new(),
        };
        let _ = Reflect::set(&store.options, &JsValue::from_str("durability"), &JsValue::from_str(durability.as_str()));
        store.connect(true).await?;
        Ok(store)
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens the connection; `create` (the store's first connection only) lets it create the
    /// database. A reconnection finding none (the browser cleared the site's data, which closes
    /// connections without a versionchange) treats it as deleted: it never creates it again, empty.
    async fn connect(&self, create: bool) -> StoreResult<IdbDatabase> {
        // No version: a new database is created at version 1 (its store and index made as it is
        // upgraded), an existing one is opened at whatever version another tab upgraded it to.
        let opening = open_database(&factory()?, &self.name, RECORDS, EXPIRY_INDEX, "x", create);
        let opened = JsFuture::from(opening).await.map_err(|e| backend("open failed", e))?;
        if opened.is_undefined() {
            self.deleted.set(true);
            return Err(self.deleted_error());
        }
        if opened.is_null() && self.db.borrow().is_some() {
            // It had the object store when this store opened it: another connection's upgrade
            // (a newer version of the application) took it away since.
            return Err(StoreError::backend(format!(
                "IndexedDB database \"{}\" was upgraded by another tab or worker to a version without the \"{RECORDS}\" object store (a newer version of the application?), so this store cannot go on; reload the page to run that version",
                self.name
            )));
        }
        if opened.is_null() {
            return Err(StoreError::Foreign { database: self.name.clone(), store: RECORDS });
        }
        let db: IdbDatabase = opened.unchecked_into();
        // Another tab upgrading, or the browser closing the connection: close ours and reopen later.
        // Another connection deleting the database (its event's newVersion is null): close ours, and
        // never reopen it.
        let (stale, deleted) = (self.stale.clone(), self.deleted.clone());
        let closing = db.clone();
        let on_versionchange = EventHandler::new(move |event: JsValue| {
            closing.close();
            stale.set(true);
            if caught::get(&event, &JsValue::from_str("newVersion")).is_ok_and(|version| version.is_null()) {
                deleted.set(true);
            }
        });
        db.set_onversionchange(Some(on_versionchange.as_ref().unchecked_ref()));
        let stale = self.stale.clone();
        let on_close = EventHandler::new(move |_| stale.set(true));
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut handlers = self._handlers.borrow_mut();
        handlers.clear();
        handlers.push(on_versionchange);
        handlers.push(on_close);
        self.stale.set(false);
        *self.db.borrow_mut() = Some(db.clone());
        Ok(db)
    }

    async fn database(&self) -> StoreResult<IdbDatabase> {
        if self.deleted.get() {
            return Err(self.deleted_error());
        }
        let current = self.db.borrow().clone();
        match current {
            Some(db) if !self.stale.get() => Ok(db),
            _ => self.connect(false).await,
        }
    }

    fn deleted_error(&self) -> StoreError {
        StoreError::backend(format!(
            "IndexedDB database \"{}\" was deleted (by indexedDB.deleteDatabase in this or another tab or worker, or by the browser clearing the site's data), so this store writes and reads nothing more rather than create it again, empty; to go on, open a new store with SessionStore.indexedDb()",
            self.name
        ))
    }

    /// A transaction over the records; a connection the browser closed is reopened once.
    async fn transaction(&self, write: bool) -> StoreResult<(IdbTransaction, IdbObjectStore)> {
        let db = self.database().await?;
        match self.transaction_on(&db, write) {
            Ok(opened) => Ok(opened),
            Err(_) => {
                self.stale.set(true);
                let db = self.database().await?;
                self.transaction_on(&db, write).map_err(|e| backend("transaction failed", e))
            }
        }
    }

    fn transaction_on(&self, db: &IdbDatabase, write: bool) -> Result<(IdbTransaction, IdbObjectStore), JsValue> {
        NAMES.with(|names| {
            let mode = if write { &names.readwrite } else { &names.readonly };
            let tx = db.unchecked_ref::<TransactionOpener>().transaction_with_options(
                &names.records,
                mode,
                &self.options,
            )?;
            let records = tx.unchecked_ref::<StoreOpener>().object_store_named(&names.records)?;
            Ok((tx, records))
        })
    }

    /// The transaction prepared for a write of `key`, if its read is still pending.
    fn take_prepared(&self, key: &str) -> Option<Prepared> {
        let prepared = self.prepared.borrow_mut().take_if(|prepared| prepared.key == key)?;
        prepared.pending().then_some(prepared)
    }

    /// Runs one transaction: `start` issues the requests (its callbacks may issue more), `out` is
    /// read once the transaction has completed.
    async fn run<T: 'static>(
        &self,
        write: bool,
        what: &str,
        start: impl FnOnce(&IdbTransaction, &IdbObjectStore, &Requests, Rc<RefCell<Option<T>>>) -> Result<(), JsValue>
            + 'static,
    ) -> StoreResult<Option<T>> {
        let out = Rc::new(RefCell::new(None));
        let slot = out.clone();
        self.run_boxed(None, write, what, Box::new(move |tx, records, requests| start(tx, records, requests, slot)))
            .await?;
        let result = out.borrow_mut().take();
        Ok(result)
    }

    /// [`IdbStore::run`] without its result type, in the transaction `opened` when given (one
    /// prepared ahead), else a new one: one copy of the transaction's code in the .wasm for every kind
    /// of request.
    fn run_boxed<'a>(
        &'a self,
        opened: Option<(IdbTransaction, IdbObjectStore)>,
        write: bool,
        what: &'a str,
        start: Starter,
    ) -> LocalBoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let (tx, records) = match opened {
                Some(opened) => opened,
                None => self.transaction(write).await?,
            };
            let requests: Requests = Rc::default();
            if let Err(error) = start(&tx, &records, &requests) {
                let _ = tx.abort();
                return Err(backend(what, error));
            }
            // A write is done when it is committed; a read once its results are in.
            if let Err(error) = transaction_done(&tx, (!write).then_some(&requests)).await {
                return Err(match requests.failed.borrow_mut().take() {
                    Some(Failed::Store(error)) => error,
                    Some(Failed::Js(cause)) => backend(what, cause),
                    None => backend(what, error),
                });
            }
            Ok(())
        })
    }

    /// One readwrite transaction: if `key` is as `expect` says, write `records`, then `value` under
    /// `key`, and delete every key under the `clear` prefixes (a put is this without records, a
    /// commit with them, a lease that ends a finished turn's live log with a prefix to clear).
    async fn write_after(
        &self,
        records: Vec<(String, Vec<u8>)>,
        key: &str,
        value: Value,
        expect: Expect,
        what: &str,
        clear: Vec<String>,
    ) -> StoreResult<Option<Version>> {
        let owned = key.to_owned();
        let decide: Decider = Box::new(move |store, current| {
            if !expect.holds(version_of(&current)) {
                return Ok(None);
            }
            for (record_key, bytes) in &records {
                put_now(store, record_key, bytes, None)?;
            }
            let version = put_now(store, &owned, &value.bytes, value.expiry)?;
            for prefix in &clear {
                store.delete(&prefix_range(prefix, None)?.into())?;
            }
            Ok(Some(version))
        });
        self.read_then_write(key, what, decide).await
    }

    /// One readwrite transaction: read `key`, ask `decide` what to write (if anything), write it. In
    /// the transaction prepared for `key` when its read is still pending ([`Store::prepare_write`]).
    async fn read_then_write(&self, key: &str, what: &str, decide: Decider) -> StoreResult<Option<Version>> {
        let (opened, read) = match self.take_prepared(key) {
            Some(Prepared { tx, records, read, .. }) => (Some((tx, records)), Some(read)),
            None => (None, None),
        };
        let key = key.to_owned();
        let out = Rc::new(RefCell::new(None));
        let slot = out.clone();
        let start: Starter = Box::new(move |tx, records, requests| {
            let request = match read {
                Some(read) => read,
                None => records.get(&JsValue::from_str(&key))?,
            };
            let records = records.clone();
            on_success(tx, &request, requests, move |value| {
                *slot.borrow_mut() = decide(&records, entry_of(&key, &value)?)?;
                Ok(())
            });
            Ok(())
        });
        self.run_boxed(opened, true, what, start).await?;
        let written = out.borrow_mut().take();
        Ok(written)
    }
}

fn put_now(records: &IdbObjectStore, key: &str, value: &[u8], expiry: Option<Expiry>) -> Result<Version, JsValue> {
    let (object, version) = stored(value, expiry);
    records.put_with_key(&object, &JsValue::from_str(key))?;
    Ok(version)
}

/// Reads `key` and, from its success callback (the transaction still active), the keys `follow`
/// names for what it read: a whole chain of records in one transaction.
fn get_following(
    tx: &IdbTransaction,
    records: &IdbObjectStore,
    requests: &Requests,
    key: String,
    follow: &Follow,
    out: &Rc<RefCell<Option<Linked>>>,
) -> Result<(), JsValue> {
    if out.borrow().as_ref().is_some_and(|read| read.iter().any(|(read_key, _)| *read_key == key)) {
        return Ok(());
    }
    if let Some(read) = out.borrow_mut().as_mut() {
        read.push((key.clone(), None)); // claimed: a key named twice is read once
    }
    let request = records.get(&JsValue::from_str(&key))?;
    let (next_tx, next_records, next_requests) = (tx.clone(), records.clone(), requests.clone());
    let (follow, out) = (follow.clone(), out.clone());
    on_success(tx, &request, requests, move |value| {
        let Some(entry) = entry_of(&key, &value)? else { return Ok(()) };
        let next = follow(&key, &entry).unwrap_or_default();
        if let Some(slot) = out.borrow_mut().iter_mut().flatten().find(|(read_key, _)| *read_key == key) {
            slot.1 = Some(entry);
        }
        for key in next {
            get_following(&next_tx, &next_records, &next_requests, key, &follow, &out)?;
        }
        Ok(())
    });
    Ok(())
}

impl Store for IdbStore {
    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        Box::pin(async move {
            let key = key.to_owned();
            let entry = self
                .run(false, "read failed", move |tx, records, requests, out| {
                    let request = records.get(&JsValue::from_str(&key))?;
                    on_success(tx, &request, requests, move |value| {
                        *out.borrow_mut() = Some(entry_of(&key, &value)?);
                        Ok(())
                    });
                    Ok(())
                })
                .await?;
            Ok(entry.flatten())
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        Box::pin(self.write_after(Vec::new(), key, value, expect, "write failed", Vec::new()))
    }

    fn put_or_current<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        self.put_clearing(key, value, expect, Vec::new())
    }

    fn put_clearing<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
        stale: Vec<String>,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        Box::pin(
            async move { self.write_after(Vec::new(), key, value, expect, "write failed", stale).await.map(Put::from) },
        )
    }

    fn clears_in_put(&self) -> bool {
        true
    }

    /// One transaction is kept, the last prepared: of several writes prepared in one task (begins
    /// of sessions called together), the others open their own, as without preparing.
    fn prepare_write(&self, key: &str) {
        // Only on an open connection: opening one is asynchronous.
        let db = self.db.borrow().clone().filter(|_| !self.stale.get());
        let Some(Ok((tx, records))) = db.map(|db| self.transaction_on(&db, true)) else { return };
        match records.get(&JsValue::from_str(key)) {
            Ok(read) => *self.prepared.borrow_mut() = Some(Prepared { key: key.to_owned(), tx, records, read }),
            Err(_) => {
                let _ = tx.abort();
            }
        }
    }

    fn delete<'a>(&'a self, key: &'a str, expected: Option<&'a str>) -> LocalBoxFuture<'a, StoreResult<bool>> {
        let owned = key.to_owned();
        let expected = expected.map(str::to_owned);
        Box::pin(async move {
            let deleted = self
                .read_then_write(
                    key,
                    "delete failed",
                    Box::new(move |records, current| {
                        let Some(current) = current else { return Ok(None) };
                        if expected.as_ref().is_some_and(|want| *want != current.version) {
                            return Ok(None);
                        }
                        records.delete(&JsValue::from_str(&owned))?;
                        Ok(Some(current.version))
                    }),
                )
                .await?;
            Ok(deleted.is_some())
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> LocalBoxFuture<'a, StoreResult<ListPage>> {
        Box::pin(async move {
            let range = prefix_range(prefix, cursor).map_err(|e| backend("list failed", e))?;
            let fetch = u32::try_from(limit.saturating_add(1)).unwrap_or(u32::MAX);
            let keys = self
                .run(false, "list failed", move |tx, records, requests, out| {
                    let request = records.get_all_keys_with_key_and_limit(&range, fetch)?;
                    on_success(tx, &request, requests, move |value| {
                        let keys: Vec<String> = Array::from(&value).iter().filter_map(|key| key.as_string()).collect();
                        *out.borrow_mut() = Some(keys);
                        Ok(())
                    });
                    Ok(())
                })
                .await?
                .unwrap_or_default();
            Ok(ListPage::from_overfetch(keys, limit))
        })
    }

    fn commit<'a>(
        &'a self,
        records_to_write: Vec<(String, Vec<u8>)>,
        head_key: &'a str,
        head: Value,
        expected: Expect,
        _stale: &mut Vec<(String, Vec<String>)>,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        Box::pin(self.write_after(records_to_write, head_key, head, expected, "commit failed", Vec::new()))
    }

    fn update<'a>(&'a self, key: &'a str, mut decide: Decide) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        let owned = key.to_owned();
        Box::pin(self.read_then_write(
            key,
            "write failed",
            Box::new(move |records, current| match decide(current.as_ref()) {
                Decision::Keep => Ok(None),
                Decision::Write(value) => put_now(records, &owned, &value.bytes, value.expiry).map(Some),
            }),
        ))
    }

    fn delete_session<'a>(
        &'a self,
        head_key: &'a str,
        expected: Option<&'a str>,
        prefixes: &'a [String],
    ) -> LocalBoxFuture<'a, StoreResult<bool>> {
        let (owned, expected, prefixes) = (head_key.to_owned(), expected.map(str::to_owned), prefixes.to_vec());
        Box::pin(async move {
            let deleted = self
                .read_then_write(
                    head_key,
                    "delete failed",
                    Box::new(move |records, current| {
                        if version_of(&current) != expected.as_deref() {
                            return Ok(None);
                        }
                        records.delete(&JsValue::from_str(&owned))?;
                        for prefix in &prefixes {
                            records.delete(&prefix_range(prefix, None)?.into())?;
                        }
                        Ok(Some(expected.unwrap_or_default()))
                    }),
                )
                .await?;
            Ok(deleted.is_some())
        })
    }

    fn delete_keys<'a>(&'a self, keys: Vec<String>) -> LocalBoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let count = keys.len() as u64;
            self.run::<()>(true, "delete failed", move |_, records, _, _| {
                for key in &keys {
                    records.delete(&JsValue::from_str(key))?;
                }
                Ok(())
            })
            .await?;
            // Listed just before by the caller, under a guard: they existed.
            Ok(count)
        })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str, _known: Vec<String>) -> LocalBoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let range = prefix_range(prefix, None).map_err(|e| backend("delete failed", e))?;
            self.run::<()>(true, "delete failed", move |_, records, _, _| {
                records.delete(&range.into())?;
                Ok(())
            })
            .await?;
            Ok(())
        })
    }

    fn get_linked<'a>(&'a self, keys: Vec<String>, follow: Follow) -> Option<LocalBoxFuture<'a, StoreResult<Linked>>> {
        Some(Box::pin(async move {
            let read = self
                .run(false, "read failed", move |tx, records, requests, out| {
                    *out.borrow_mut() = Some(Linked::new());
                    for key in keys {
                        get_following(tx, records, requests, key, &follow, &out)?;
                    }
                    Ok(())
                })
                .await?;
            Ok(read.unwrap_or_default())
        }))
    }

    fn close(&self) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.set_onversionchange(None);
            db.set_onclose(None);
            db.close();
        }
        self._handlers.borrow_mut().clear();
        self.stale.set(true);
    }

    fn expiring<'a>(&'a self, now: u64, limit: usize) -> LocalBoxFuture<'a, StoreResult<Option<Vec<String>>>> {
        Box::pin(async move {
            let range =
                IdbKeyRange::upper_bound(&JsValue::from_f64(now as f64)).map_err(|e| backend("sweep failed", e))?;
            let fetch = u32::try_from(limit).unwrap_or(u32::MAX);
            let keys = self
                .run(false, "sweep failed", move |tx, records, requests, out| {
                    let request = records.index(EXPIRY_INDEX)?.get_all_keys_with_key_and_limit(&range, fetch)?;
                    on_success(tx, &request, requests, move |value| {
                        *out.borrow_mut() =
                            Some(Array::from(&value).iter().filter_map(|key| key.as_string()).collect());
                        Ok(())
                    });
                    Ok(())
                })
                .await?;
            Ok(Some(keys.unwrap_or_default()))
        })
    }
}
