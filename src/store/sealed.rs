//! Encryption at rest: a [`Store`] over another that seals what the application wrote before it is
//! written and opens it after it is read, outside any backend transaction.
//!
//! - A head keeps the guard's bookkeeping readable and seals its metadata and its interrupt, each on
//!   its own, with the head key and the field's name as additional data. A guard decision inside a
//!   backend's transaction ([`Store::update`]) runs on a head whose fields this store has opened or
//!   sealed before (the two caches below); when it meets one it has not, or decides on a new value, it
//!   keeps the stored head, and the decision runs again once that field was opened or sealed. So no
//!   decision waits on a decryption, and in the steady state (this store wrote the head it decides on)
//!   a guard step costs no cryptography at all.
//! - Every other record is sealed whole, with its key as additional data.
//! - Records written in the clear (before encryption was turned on) read as they are; they are sealed
//!   when rewritten.

use std::cell::RefCell;
use std::rc::Rc;

use crate::core::codec::{self, Sealed, SealedApp};
use crate::core::{keys, CoreError, Head, Json};
use crate::store::{
    Decide, Decision, Entry, Expect, Follow, Linked, ListPage, LocalBoxFuture, Put, Store, StoreError, StoreResult,
    Value, Version,
};

/// Why a ciphertext did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFailure {
    /// The keyring has no key of this id.
    UnknownKey,
    /// The key did not open it: another key, or bytes changed, copied or moved to another key.
    Failed,
}

/// AES-GCM with the keys of the store (WebCrypto in JS hosts; tests bring their own). Both calls
/// start their work when called, so that several futures made before the first is awaited run
/// concurrently.
pub trait Cipher {
    /// Seals `plain` under the key `key_id`: a fresh IV followed by the ciphertext and its tag.
    fn seal(&self, key_id: &str, aad: &[u8], plain: &[u8]) -> LocalBoxFuture<'static, StoreResult<Vec<u8>>>;
    /// Opens what [`Cipher::seal`] returned under `key_id`.
    fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> LocalBoxFuture<'static, Result<Vec<u8>, OpenFailure>>;
}

/// The key ids a store knows and the one it seals with.
#[derive(Debug, Clone)]
pub struct Keyring {
    pub current: String,
    pub ids: Vec<String>,
}

/// Fields remembered (per store); past it the oldest is forgotten (and opened or sealed again once).
const CACHE_ENTRIES: usize = 64;

/// What a field of a head holds in the clear: the metadata's JSON, or an encoded interrupt.
type Clear = Vec<u8>;

/// One head field this store opened or sealed: both directions at once.
struct Field {
    head_key: String,
    name: &'static str,
    clear: Clear,
    sealed: Sealed,
}

/// The head fields this store opened or sealed, so that a guard step (synchronous, inside a backend
/// transaction) can open and seal heads without the cipher. A list: a store decides on few heads at
/// a time, and a map type of its own would cost the .wasm more than the search costs.
#[derive(Default)]
struct FieldCache {
    fields: Vec<Field>,
}

/// A head opened or sealed from the cache, or the one field to open or seal first.
enum Step {
    Done(Vec<u8>),
    Needs(Need),
}

/// A field new to the cache: to open (a sealed field met) or to seal (a clear field to write).
enum Need {
    Open(&'static str, Sealed),
    Seal(&'static str, Clear),
}

impl FieldCache {
    fn remember(&mut self, head_key: &str, name: &'static str, clear: Clear, sealed: Sealed) {
        if self.fields.len() >= CACHE_ENTRIES {
            self.fields.remove(0);
        }
        self.fields.push(Field { head_key: head_key.to_owned(), name, clear, sealed });
    }

    fn find(&self, head_key: &str, name: &str, matches: impl Fn(&Field) -> bool) -> Option<&Field> {
        self.fields.iter().rev().find(|field| field.head_key == head_key && field.name == name && matches(field))
    }

    /// `bytes` (a stored head) in the clear, or the field to open first.
    fn open_head(&self, key: &str, bytes: &[u8]) -> StoreResult<Step> {
        if !codec::is_sealed_head(bytes) {
            return Ok(Step::Done(bytes.to_vec()));
        }
        let (mut head, app) = codec::decode_any_head(key, bytes).map_err(from_core)?;
        let app = app.unwrap_or_default();
        for (name, sealed) in [(METADATA, app.metadata), (INTERRUPT, app.interrupt), (STOP_REASON, app.stop_reason)] {
            let Some(sealed) = sealed else { continue };
            let Some(field) = self.find(key, name, |field| field.sealed == sealed) else {
                return Ok(Step::Needs(Need::Open(name, sealed)));
            };
            let text =
                || std::str::from_utf8(&field.clear).map_err(|_| corrupt(key, format!("its {name} is not UTF-8")));
            match name {
                METADATA => head.metadata = Some(Json::from(text()?)),
                INTERRUPT => head.interrupt = Some(codec::decode_interrupt(key, &field.clear).map_err(from_core)?),
                _ => {
                    if let Some(stop) = head.stop.as_mut() {
                        stop.reason = text()?.to_owned();
                    }
                }
            }
        }
        Ok(Step::Done(codec::encode_head(&head)))
    }

    /// `bytes` (a head in the clear) sealed under `current`, or the field to seal first. A field still
    /// sealed under an older key is sealed again: a rewritten head moves to the current key.
    fn seal_head(&self, key: &str, bytes: &[u8], current: &str) -> StoreResult<Step> {
        if codec::is_sealed_head(bytes) {
            return Ok(Step::Done(bytes.to_vec()));
        }
        let head = codec::decode_head(key, bytes).map_err(from_core)?;
        let mut app = SealedApp::default();
        for (name, clear) in clear_fields(&head) {
            let Some(clear) = clear else { continue };
            let Some(field) = self.find(key, name, |field| field.clear == clear && field.sealed.key_id == current)
            else {
                return Ok(Step::Needs(Need::Seal(name, clear)));
            };
            *slot(&mut app, name) = Some(field.sealed.clone());
        }
        Ok(Step::Done(codec::encode_sealed_head(&head, &app)))
    }
}

const METADATA: &str = "metadata";
const INTERRUPT: &str = "interrupt";
const STOP_REASON: &str = "stop";

/// What a synchronous guard step could not do without the cipher, or why it failed; the step runs
/// again once the field was opened or sealed.
enum Missing {
    Need(Need),
    Failed(StoreError),
}

pub struct SealedStore {
    inner: Rc<dyn Store>,
    cipher: Rc<dyn Cipher>,
    keyring: Keyring,
    fields: Rc<RefCell<FieldCache>>,
}

impl std::fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStore").field("current", &self.keyring.current).finish()
    }
}

fn is_head(key: &str) -> bool {
    key.starts_with(keys::HEAD_PREFIX)
}

fn field_aad(head_key: &str, field: &str) -> Vec<u8> {
    format!("{head_key}#{field}").into_bytes()
}

fn corrupt(key: &str, detail: String) -> StoreError {
    StoreError::Corrupt { key: key.to_owned(), detail }
}

/// The pinned `CorruptRecordError` of a record this store cannot open: it names the key id it needs.
fn open_failed(key: &str, key_id: &str, failure: OpenFailure) -> StoreError {
    let why = match failure {
        OpenFailure::UnknownKey => "which this store's encryptionKey does not have; add it to encryptionKey.keys",
        OpenFailure::Failed => {
            "and does not decrypt with it: another key under that id, or the record was changed or copied from another key"
        }
    };
    corrupt(key, format!("it is encrypted with key id \"{key_id}\", {why}"))
}

fn from_core(error: CoreError) -> StoreError {
    match error {
        CoreError::CorruptRecord { key, detail } => StoreError::Corrupt { key, detail },
        other => StoreError::backend(other.to_string()),
    }
}

/// The clear fields of `head` (metadata JSON, encoded interrupt, stop reason).
fn clear_fields(head: &Head) -> [(&'static str, Option<Clear>); 3] {
    [
        (METADATA, head.metadata.as_ref().map(|m| m.as_bytes().to_vec())),
        (INTERRUPT, head.interrupt.as_ref().map(codec::encode_interrupt)),
        (STOP_REASON, head.stop.as_ref().map(|stop| stop.reason.as_bytes().to_vec())),
    ]
}

/// Where a sealed field goes among a head's sealed fields.
fn slot<'a>(app: &'a mut SealedApp, name: &str) -> &'a mut Option<Sealed> {
    match name {
        METADATA => &mut app.metadata,
        INTERRUPT => &mut app.interrupt,
        _ => &mut app.stop_reason,
    }
}

impl SealedStore {
    pub fn new(inner: Rc<dyn Store>, cipher: Rc<dyn Cipher>, keyring: Keyring) -> SealedStore {
        SealedStore { inner, cipher, keyring, fields: Rc::default() }
    }

    async fn open_bytes(&self, key: &str, aad: &[u8], sealed: &Sealed) -> StoreResult<Vec<u8>> {
        let id = &sealed.key_id;
        if !self.keyring.ids.contains(id) {
            return Err(open_failed(key, id, OpenFailure::UnknownKey));
        }
        self.cipher.open(id, aad, &sealed.bytes).await.map_err(|failure| open_failed(key, id, failure))
    }

    async fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> StoreResult<Sealed> {
        let key_id = self.keyring.current.clone();
        let bytes = self.cipher.seal(&key_id, aad, plain).await?;
        Ok(Sealed { key_id, bytes })
    }

    /// A record as written: sealed whole, or a head with its fields sealed.
    async fn seal(&self, key: &str, bytes: Vec<u8>) -> StoreResult<Vec<u8>> {
        if is_head(key) {
            return self.seal_head(key, &bytes).await;
        }
        let mut sealed = self.seal_all(vec![(key.to_owned(), bytes)]).await?;
        Ok(sealed.pop().map(|(_, bytes)| bytes).unwrap_or_default())
    }

    /// Seals every record of a commit, concurrently.
    async fn seal_all(&self, records: Vec<(String, Vec<u8>)>) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let pending: Vec<_> = records
            .into_iter()
            .map(|(key, bytes)| {
                let kind = codec::record_kind(&bytes).unwrap_or(0);
                let segments = codec::segments_named(&key, &bytes);
                let sealing = self.cipher.seal(&self.keyring.current, key.as_bytes(), &bytes);
                (key, kind, segments, sealing)
            })
            .collect();
        let mut sealed = Vec::with_capacity(pending.len());
        for (key, kind, segments, sealing) in pending {
            let record = Sealed { key_id: self.keyring.current.clone(), bytes: sealing.await? };
            sealed.push((key, codec::encode_sealed_record(kind, &record, &segments)));
        }
        Ok(sealed)
    }

    async fn seal_head(&self, key: &str, bytes: &[u8]) -> StoreResult<Vec<u8>> {
        self.through_cache(key, |fields| fields.seal_head(key, bytes, &self.keyring.current)).await
    }

    async fn open_head(&self, key: &str, bytes: &[u8]) -> StoreResult<Vec<u8>> {
        self.through_cache(key, |fields| fields.open_head(key, bytes)).await
    }

    /// Runs `step` on the cache until it is done, opening or sealing each field it needs first.
    async fn through_cache(&self, key: &str, step: impl Fn(&FieldCache) -> StoreResult<Step>) -> StoreResult<Vec<u8>> {
        loop {
            let next = step(&self.fields.borrow())?;
            match next {
                Step::Done(bytes) => return Ok(bytes),
                Step::Needs(need) => self.complete(key, need).await?,
            }
        }
    }

    /// Opens or seals the one field `need` names, remembering it.
    async fn complete(&self, key: &str, need: Need) -> StoreResult<()> {
        let (name, clear, sealed) = match need {
            Need::Open(name, sealed) => (name, self.open_bytes(key, &field_aad(key, name), &sealed).await?, sealed),
            Need::Seal(name, clear) => {
                let sealed = self.seal_bytes(&field_aad(key, name), &clear).await?;
                (name, clear, sealed)
            }
        };
        self.fields.borrow_mut().remember(key, name, clear, sealed);
        Ok(())
    }

    /// One entry read, opened (see [`SealedStore::open_all`]).
    async fn open_one(&self, key: &str, entry: Option<Entry>) -> StoreResult<Option<Entry>> {
        let mut opened = self.open_all(vec![(key.to_owned(), entry)]).await?;
        Ok(opened.pop().and_then(|(_, entry)| entry))
    }
}

/// Attempts of a guard step that keeps meeting fields new to the caches (another store rewriting
/// them between our opening and our transaction) before it reports contention.
const SEALED_UPDATE_ATTEMPTS: usize = 8;

impl Store for SealedStore {
    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        Box::pin(async move {
            let entry = self.inner.get(key).await?;
            self.open_one(key, entry).await
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        Box::pin(async move {
            let bytes = self.seal(key, value.bytes).await?;
            self.inner.put(key, Value { bytes, expiry: value.expiry }, expect).await
        })
    }

    fn put_or_current<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        // The same write with nothing to clear: one copy of the sealing code in the .wasm.
        self.put_clearing(key, value, expect, Vec::new())
    }

    fn put_clearing<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
        stale: Vec<String>,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        Box::pin(async move {
            let bytes = self.seal(key, value.bytes).await?;
            match self.inner.put_clearing(key, Value { bytes, expiry: value.expiry }, expect, stale).await? {
                Put::Refused { current: Some(current) } => {
                    Ok(Put::Refused { current: Some(self.open_one(key, current).await?) })
                }
                written => Ok(written),
            }
        })
    }

    fn clears_in_put(&self) -> bool {
        self.inner.clears_in_put()
    }

    // No `prepare_write`: a sealed write first waits for WebCrypto, a task or more, and a read
    // prepared before it would have ended by then (an IndexedDB transaction opened for nothing).

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

    fn commit<'a>(
        &'a self,
        records: Vec<(String, Vec<u8>)>,
        head_key: &'a str,
        head: Value,
        expected: Expect,
        _stale: &mut Vec<(String, Vec<String>)>,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        // The inner commit comes after the sealing: the caller deletes every stale log beside it.
        Box::pin(async move {
            let records = self.seal_all(records).await?;
            let bytes = self.seal_head(head_key, &head.bytes).await?;
            let head = Value { bytes, expiry: head.expiry };
            self.inner.commit(records, head_key, head, expected, &mut Vec::new()).await
        })
    }

    fn update<'a>(&'a self, key: &'a str, decide: Decide) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        let decide = Rc::new(RefCell::new(decide));
        Box::pin(async move {
            for _ in 0..SEALED_UPDATE_ATTEMPTS {
                let missing: Rc<RefCell<Option<Missing>>> = Rc::default();
                let step = self.guard_step(key, decide.clone(), missing.clone());
                let written = self.inner.update(key, step).await?;
                let Some(missing) = missing.borrow_mut().take() else { return Ok(written) };
                // Done outside the transaction; the step then runs again on the stored head.
                match missing {
                    Missing::Need(need) => self.complete(key, need).await?,
                    Missing::Failed(error) => return Err(error),
                }
            }
            Err(StoreError::Contended { key: key.to_owned() })
        })
    }

    fn delete_session<'a>(
        &'a self,
        head_key: &'a str,
        expected: Option<&'a str>,
        prefixes: &'a [String],
    ) -> LocalBoxFuture<'a, StoreResult<bool>> {
        self.inner.delete_session(head_key, expected, prefixes)
    }

    fn delete_keys<'a>(&'a self, keys: Vec<String>) -> LocalBoxFuture<'a, StoreResult<u64>> {
        self.inner.delete_keys(keys)
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str, known: Vec<String>) -> LocalBoxFuture<'a, StoreResult<()>> {
        self.inner.delete_prefix(prefix, known)
    }

    fn get_many<'a>(&'a self, keys: Vec<String>) -> LocalBoxFuture<'a, StoreResult<Vec<Option<Entry>>>> {
        Box::pin(async move {
            let entries = self.inner.get_many(keys.clone()).await?;
            self.open_all(keys.into_iter().zip(entries).collect())
                .await
                .map(|read| read.into_iter().map(|(_, e)| e).collect())
        })
    }

    fn get_linked<'a>(&'a self, keys: Vec<String>, follow: Follow) -> Option<LocalBoxFuture<'a, StoreResult<Linked>>> {
        let reading = self.inner.get_linked(keys, follow)?;
        Some(Box::pin(async move { self.open_all(reading.await?).await }))
    }

    fn atomic(&self) -> bool {
        self.inner.atomic()
    }

    fn wakes_on_news(&self) -> bool {
        self.inner.wakes_on_news()
    }

    fn close(&self) {
        self.inner.close();
    }

    fn expiring<'a>(&'a self, now: u64, limit: usize) -> LocalBoxFuture<'a, StoreResult<Option<Vec<String>>>> {
        self.inner.expiring(now, limit)
    }
}

impl SealedStore {
    /// Opens every entry read; the sealed records' decryptions are started together and awaited in
    /// turn, so that the host works on them concurrently.
    async fn open_all(&self, read: Linked) -> StoreResult<Linked> {
        let mut opening = Vec::with_capacity(read.len());
        for (key, entry) in read {
            let sealed = match &entry {
                Some(entry) if !is_head(&key) => {
                    codec::decode_sealed_record(&key, &entry.value).map_err(from_core)?.map(|(_, sealed)| sealed)
                }
                _ => None,
            };
            // A key id it does not have is reported in turn below, as a failed decryption would be.
            let started = sealed.map(|sealed| {
                let open = self
                    .keyring
                    .ids
                    .contains(&sealed.key_id)
                    .then(|| self.cipher.open(&sealed.key_id, key.as_bytes(), &sealed.bytes));
                (open, sealed.key_id)
            });
            opening.push((key, entry, started));
        }
        let mut opened = Linked::with_capacity(opening.len());
        for (key, entry, started) in opening {
            let entry = match (entry, started) {
                (Some(entry), Some((open, key_id))) => {
                    let opened = match open {
                        Some(open) => open.await,
                        None => Err(OpenFailure::UnknownKey),
                    };
                    let value = opened.map_err(|failure| open_failed(&key, &key_id, failure))?;
                    Some(Entry { value, version: entry.version })
                }
                (Some(entry), None) if is_head(&key) => {
                    Some(Entry { value: self.open_head(&key, &entry.value).await?, version: entry.version })
                }
                (entry, _) => entry, // written in the clear, or not there
            };
            opened.push((key, entry));
        }
        Ok(opened)
    }

    /// The engine's guard step `decide` run on the clear head, from the caches alone; what it could
    /// not open or seal is left in `missing`, and the stored head kept.
    fn guard_step(&self, key: &str, decide: Rc<RefCell<Decide>>, missing: Rc<RefCell<Option<Missing>>>) -> Decide {
        let (key, fields, key_id) = (key.to_owned(), self.fields.clone(), self.keyring.current.clone());
        let done = move |step: StoreResult<Step>| match step {
            Ok(Step::Done(bytes)) => Some(bytes),
            Ok(Step::Needs(need)) => {
                *missing.borrow_mut() = Some(Missing::Need(need));
                None
            }
            Err(error) => {
                *missing.borrow_mut() = Some(Missing::Failed(error));
                None
            }
        };
        Box::new(move |current: Option<&Entry>| {
            let clear = match current {
                None => None,
                Some(entry) => match done(fields.borrow().open_head(&key, &entry.value)) {
                    Some(value) => Some(Entry { value, version: entry.version.clone() }),
                    None => return Decision::Keep,
                },
            };
            match (decide.borrow_mut())(clear.as_ref()) {
                Decision::Keep => Decision::Keep,
                Decision::Write(value) => match done(fields.borrow().seal_head(&key, &value.bytes, &key_id)) {
                    Some(bytes) => Decision::Write(Value { bytes, expiry: value.expiry }),
                    None => Decision::Keep,
                },
            }
        })
    }
}
