//! A store over a host-supplied KV object (`HostKv` of the JS API): Durable Object storage, Deno
//! KV, Redis, Workers KV or anything with the same four methods. Duck-typed: the adapter is a plain
//! JS object, called through these externs.
//!
//! Round trips: a read is one `get`, a compare-and-set one `put`; the trait's defaults make begin a
//! `get` + `put`, and a commit is one call of the adapter's optional `commit(records, head)` or else
//! the records' `put`s at once, then the head's. Values over the adapter's `maxValueBytes`
//! are written as chunks (`<key>#<i>`, immutable like the record they belong to) under a small
//! manifest at `<key>`; a chunk that is missing or does not match the manifest's checksum makes the
//! record corrupt.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::caught;
use crate::core::codec::{self, read_varint, write_varint};
use crate::core::keys;
use crate::store::{
    budget, commit_in_order, Entry, Expect, Expiry, ListPage, LocalBoxFuture, Put, Store, StoreError, StoreResult,
    Value, Version,
};

#[wasm_bindgen]
extern "C" {
    /// The host's KV object.
    pub type HostKv;
}

// The adapter's methods, called as `kv.get(key)` and so on; a synchronous throw is kept for
// `caught::checked` (crate::caught says why there is no `catch` import).
#[wasm_bindgen(module = "/js/runtime.js")]
extern "C" {
    #[wasm_bindgen(js_name = methodCatching)]
    fn kv_get(kv: &HostKv, method: &str, key: &str) -> JsValue;
    #[wasm_bindgen(js_name = methodCatching)]
    fn kv_put(kv: &HostKv, method: &str, key: &str, value: &Uint8Array, options: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = methodCatching)]
    fn kv_delete(kv: &HostKv, method: &str, key: &str, options: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = methodCatching)]
    fn kv_list(kv: &HostKv, method: &str, prefix: &str, options: &JsValue) -> JsValue;
}

#[wasm_bindgen(module = "/js/runtime.js")]
extern "C" {
    /// `value` as a promise that rejects with a timeout error after `ms`.
    #[wasm_bindgen(js_name = withTimeout)]
    fn with_timeout(value: &JsValue, ms: f64, what: &str) -> Promise;
    #[wasm_bindgen(js_name = fromBase64)]
    fn from_base64(text: &str) -> Option<Uint8Array>;
    /// The bytes of a Uint8Array or ArrayBuffer of any realm (a Node Buffer made outside Jest's
    /// sandbox is not `instanceof` the sandbox's Uint8Array), as a Uint8Array of this one.
    #[wasm_bindgen(js_name = bytesIn)]
    fn bytes_in(value: &JsValue) -> Option<Uint8Array>;
}

#[wasm_bindgen(module = "/js/json.js")]
extern "C" {
    /// The elements of an array an adapter returned, in a plain array (a throwing getter: kept for
    /// `caught::checked`).
    #[wasm_bindgen(js_name = arrayItems)]
    fn returned_items(value: &JsValue, path: &str) -> JsValue;
}

/// What an adapter says it guarantees (`capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Single-key compare-and-set is atomic; without it the guard cannot be trusted.
    pub atomic: bool,
    pub max_value_bytes: Option<usize>,
    pub min_ttl_ms: Option<u64>,
}

/// Manifest of a chunked value: `"AS"`, `'C'`, then varints: chunk count, total length, CRC-32.
const MANIFEST: &[u8; 3] = b"ASC";
/// Room added to a head's backend TTL: the store decides expiry itself, the backend only cleans up.
/// A week, because the backend deletes the head alone: the session's other records have no TTL (a
/// session's life grows with each commit, a written record's TTL would not), and once its head is
/// gone no sweep can find them. So `sweepExpired` run at least weekly deletes whole sessions; the
/// TTL is the backstop of a store nobody sweeps.
const TTL_MARGIN_MS: u64 = 7 * 24 * 60 * 60 * 1000;

pub struct HostKvStore {
    kv: HostKv,
    /// The adapter's optional `commit(records, head)`: a session commit in one call.
    commit: Option<js_sys::Function>,
    prefix: String,
    capabilities: Capabilities,
    timeout_ms: u64,
}

impl std::fmt::Debug for HostKvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKvStore").field("prefix", &self.prefix).field("capabilities", &self.capabilities).finish()
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a plain property on a fresh object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn field(object: &JsValue, key: &str) -> JsValue {
    caught::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// The compare-and-set condition and backend TTL of a write, as `put` options (or a `commit`'s head).
fn set_condition(options: &Object, expect: &Expect, ttl: Option<u64>) {
    match expect {
        Expect::Any => {}
        Expect::Absent => set(options, "expectedVersion", &JsValue::NULL),
        Expect::Version(version) => set(options, "expectedVersion", &JsValue::from_str(version)),
    }
    if let Some(ttl) = ttl {
        set(options, "ttlMs", &JsValue::from_f64(ttl as f64));
    }
}

/// A version an adapter gave as a number, as the string JS makes of it (`String(n)`): done by JS,
/// so the .wasm carries no float printing.
fn js_number_text(number: &JsValue) -> String {
    // Number.prototype.toString: a JsString of a number would be a string only by an unchecked cast.
    let number: &js_sys::Number = number.unchecked_ref();
    number.to_string_with_radix(10).ok().and_then(|text| text.as_string()).unwrap_or_default()
}

/// At most this many characters of an adapter's error message go into a StorageError's (the error
/// itself is its `cause`): a client may put its whole request in the message, and with it the
/// session's data (a 300 KB message made a 400 KB error message, for every log to keep).
const DETAIL_CHARS: usize = 300;

/// Whether an adapter's error has the code `CORRUPT_RECORD`: what the backend holds under the key is
/// not what the adapter writes (`corruptRecord` in js/adapters/values.js).
fn says_corrupt(cause: &dyn std::any::Any) -> bool {
    cause
        .downcast_ref::<JsValue>()
        .is_some_and(|cause| cause.is_object() && field(cause, "code").as_string().as_deref() == Some("CORRUPT_RECORD"))
}

fn shortened(detail: String) -> String {
    match detail.char_indices().nth(DETAIL_CHARS) {
        Some((end, _)) => format!("{}... (cut: the whole error is the cause)", &detail[..end]),
        None => detail,
    }
}

impl HostKvStore {
    /// Wraps `kv`, reading its `capabilities` (a missing object means atomic, no size limit).
    /// A store over `kv`; each call may take `timeout_ms` (default 10 s) before it fails.
    pub fn new(kv: JsValue, prefix: String, timeout_ms: Option<u64>) -> Result<HostKvStore, String> {
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        for method in ["get", "put", "delete", "list"] {
            if !field(&kv, method).is_function() {
                return Err(format!(
                    "the KV object has no {method}() method; pass a HostKv (see agent-session/adapters)"
                ));
            }
        }
        let capabilities = field(&kv, "capabilities");
        let number = |key: &str| field(&capabilities, key).as_f64().filter(|n| *n > 0.0);
        let capabilities = Capabilities {
            atomic: field(&capabilities, "atomic").as_bool().unwrap_or(!capabilities.is_object()),
            max_value_bytes: number("maxValueBytes").map(|n| n as usize),
            min_ttl_ms: number("minTtlMs").map(|n| n as u64),
        };
        let commit = field(&kv, "commit").dyn_into::<js_sys::Function>().ok();
        Ok(HostKvStore { kv: kv.unchecked_into(), commit, prefix, capabilities, timeout_ms })
    }

    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Awaits what an adapter method returned (a value or a promise), with the store's timeout.
    async fn call(&self, what: &str, returned: Result<JsValue, JsValue>) -> StoreResult<JsValue> {
        let failed = |cause: JsValue| {
            let detail = cause
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
                .or_else(|| cause.as_string())
                .unwrap_or_else(|| "it threw a non-Error value".to_owned());
            let detail = shortened(detail);
            let message = format!("host KV {what} failed: {detail}; {}", super::AFTER_FAILURE);
            StoreError::Backend { message, cause: Some(Rc::new(cause)) }
        };
        let value = returned.map_err(failed)?;
        JsFuture::from(with_timeout(&value, self.timeout_ms as f64, what)).await.map_err(failed)
    }

    fn malformed(what: &str, returned: &JsValue) -> StoreError {
        StoreError::Backend {
            message: format!(
                "host KV {what} returned a malformed result; see the HostKv contract in the agent-session docs"
            ),
            cause: Some(Rc::new(returned.clone())),
        }
    }

    /// One `get`: the bytes and version stored under the full key, as the adapter returned them.
    async fn raw_get(&self, key: &str) -> StoreResult<Option<Entry>> {
        let what = format!("get(\"{key}\")");
        let returned = match self.call(&what, caught::checked(kv_get(&self.kv, "get", &self.full(key)))).await {
            // The adapter found there what it did not write (a Redis key of another type): a corrupt
            // record naming the key, which a walk over heads leaves out and goes on.
            Err(StoreError::Backend { message, cause })
                if cause.as_ref().is_some_and(|cause| says_corrupt(&**cause)) =>
            {
                return Err(StoreError::Corrupt { key: key.to_owned(), detail: message });
            }
            returned => returned?,
        };
        Self::entry_of(&what, &returned)
    }

    /// The `{ value, version }` an adapter returned (from `get`, or as the `current` of a refused
    /// `put`), or `None` for null.
    fn entry_of(what: &str, returned: &JsValue) -> StoreResult<Option<Entry>> {
        if returned.is_null() || returned.is_undefined() {
            return Ok(None);
        }
        let value = field(returned, "value");
        // Checked before the bytes are copied into wasm memory, where a failed allocation would trap
        // (a base64 string is copied as text first: 4 characters per 3 bytes).
        let bytes = bytes_in(&value);
        let incoming = match (&bytes, value.dyn_ref::<js_sys::JsString>()) {
            (Some(array), _) => u64::from(array.length()),
            (None, Some(text)) => u64::from(text.length()) * 2,
            _ => 0,
        };
        budget::check("a record read from the host KV", incoming)?;
        // An empty or detached array (length 0) is no bytes: copying from a detached one would throw
        // through the engine.
        let bytes = if let Some(array) = bytes {
            if array.length() == 0 {
                Vec::new()
            } else {
                array.to_vec()
            }
        } else if let Some(array) = value.as_string().and_then(|text| from_base64(&text)) {
            array.to_vec()
        } else {
            return Err(Self::malformed(what, returned));
        };
        let version = field(returned, "version");
        let version = match (version.as_string(), version.as_f64()) {
            (Some(text), _) => text,
            (None, Some(_)) => js_number_text(&version),
            _ => return Err(Self::malformed(what, returned)),
        };
        Ok(Some(Entry { value: bytes, version }))
    }

    /// One `put`, with the compare-and-set condition and, for heads, a TTL for the backend.
    async fn raw_put(
        &self,
        key: &str,
        value: &[u8],
        expect: &Expect,
        ttl: Option<u64>,
    ) -> StoreResult<Option<Version>> {
        Ok(match self.raw_put_reporting(key, value, expect, ttl, false).await? {
            Put::Written(version) => Some(version),
            Put::Refused { .. } => None,
        })
    }

    /// One `put`; with `report`, an adapter that can may answer a refused condition with
    /// `{ current: { value, version } | null }` instead of null (the `reportCurrent` option).
    async fn raw_put_reporting(
        &self,
        key: &str,
        value: &[u8],
        expect: &Expect,
        ttl: Option<u64>,
        report: bool,
    ) -> StoreResult<Put> {
        let what = format!("put(\"{key}\")");
        let options = Object::new();
        if report {
            set(&options, "reportCurrent", &JsValue::TRUE);
        }
        set_condition(&options, expect, ttl);
        let returned = self
            .call(&what, caught::checked(kv_put(&self.kv, "put", &self.full(key), &Uint8Array::from(value), &options)))
            .await?;
        match Self::written(&returned) {
            Some(put) => Ok(put),
            _ if report
                && returned.is_object()
                && Reflect::has(&returned, &JsValue::from_str("current")).unwrap_or(false) =>
            {
                let current = Self::entry_of(&what, &field(&returned, "current"))?;
                Ok(Put::Refused { current: Some(current) })
            }
            _ => Err(Self::malformed(&what, &returned)),
        }
    }

    /// What a `put` or `commit` answered, when it is a new version or a refused condition.
    fn written(returned: &JsValue) -> Option<Put> {
        match (returned.as_string(), returned.as_f64()) {
            (Some(version), _) => Some(Put::Written(version)),
            (None, Some(_)) => Some(Put::Written(js_number_text(returned))),
            // (Not undefined: a put that wrote and resolved nothing would be taken for a refusal.)
            _ if returned.is_null() || *returned == JsValue::FALSE => Some(Put::Refused { current: None }),
            _ => None,
        }
    }

    /// A session commit in one call of the adapter's `commit(records, head, deletes)`: the records (each
    /// one value, none chunked), then the head's compare-and-set, then the deletes (keys no head names
    /// any more), which a refused head leaves for the session's delete (it lost a race: rare, and they
    /// are never shown again).
    async fn commit_at_once(
        &self,
        commit: &js_sys::Function,
        records: Vec<(String, Vec<u8>)>,
        head_key: &str,
        head: Value,
        expected: Expect,
        deletes: Array,
    ) -> StoreResult<Option<Version>> {
        let what = format!("commit(\"{head_key}\")");
        let written = Array::new_with_length(records.len() as u32);
        for (index, (key, value)) in records.iter().enumerate() {
            let record = Object::new();
            set(&record, "key", &JsValue::from_str(&self.full(key)));
            set(&record, "value", &Uint8Array::from(value.as_slice()));
            written.set(index as u32, record.into());
        }
        let head_write = Object::new();
        set(&head_write, "key", &JsValue::from_str(&self.full(head_key)));
        set(&head_write, "value", &Uint8Array::from(head.bytes.as_slice()));
        set_condition(&head_write, &expected, self.ttl_of(head.expiry));
        let returned = self.call(&what, caught::call3(commit, &self.kv, &written, &head_write, &deletes)).await?;
        match Self::written(&returned) {
            Some(Put::Written(version)) => Ok(Some(version)),
            Some(Put::Refused { .. }) => Ok(None),
            None => Err(Self::malformed(&what, &returned)),
        }
    }

    /// The backend TTL of a write that carries an expiry: the session's remaining life plus a
    /// margin (the head keeps the real expiry; the backend only deletes what nobody swept), raised
    /// to the backend's minimum.
    fn ttl_of(&self, expiry: Option<Expiry>) -> Option<u64> {
        let remaining = expiry?.ttl_ms;
        Some((remaining + TTL_MARGIN_MS).max(self.capabilities.min_ttl_ms.unwrap_or(0)))
    }

    fn manifest(value: &[u8], chunks: usize) -> Vec<u8> {
        let mut out = MANIFEST.to_vec();
        write_varint(&mut out, chunks as u64);
        write_varint(&mut out, value.len() as u64);
        write_varint(&mut out, u64::from(codec::checksum(value)));
        out
    }

    /// The whole value of a chunked record, or `Corrupt` naming the first chunk that is missing.
    async fn reassemble(&self, key: &str, manifest: &[u8]) -> StoreResult<Vec<u8>> {
        let corrupt = |key: &str, detail: &str| StoreError::Corrupt { key: key.to_owned(), detail: detail.to_owned() };
        let mut at = MANIFEST.len();
        let (Some(chunks), Some(len), Some(crc)) = (
            read_varint(manifest, &mut at).ok(),
            read_varint(manifest, &mut at).ok(),
            read_varint(manifest, &mut at).ok(),
        ) else {
            return Err(corrupt(key, "unreadable chunk manifest"));
        };
        let mut value = Vec::with_capacity((len as usize).min(64 << 20));
        for index in 0..chunks as usize {
            let chunk = keys::chunk_key(key, index);
            match self.raw_get(&chunk).await? {
                Some(entry) => value.extend_from_slice(&entry.value),
                None => return Err(corrupt(&chunk, "chunk missing")),
            }
        }
        if value.len() as u64 != len || u64::from(crate::core::codec::checksum(&value)) != crc {
            return Err(corrupt(key, "chunks do not match their manifest"));
        }
        Ok(value)
    }
}

/// The most records one call of the adapter's `commit` takes (a turn writes at most four).
const MAX_COMMIT_RECORDS: usize = 64;

/// How long one host KV call may take by default before it is a `StorageError`.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

impl Store for HostKvStore {
    fn atomic(&self) -> bool {
        self.capabilities.atomic
    }

    fn wakes_on_news(&self) -> bool {
        false
    }

    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        Box::pin(async move {
            let Some(entry) = self.raw_get(key).await? else { return Ok(None) };
            if !entry.value.starts_with(MANIFEST) {
                return Ok(Some(entry));
            }
            let value = self.reassemble(key, &entry.value).await?;
            Ok(Some(Entry { value, version: entry.version }))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        Box::pin(async move {
            let ttl = self.ttl_of(value.expiry);
            let value = value.bytes;
            let limit = self.capabilities.max_value_bytes.unwrap_or(usize::MAX);
            if value.len() <= limit {
                return self.raw_put(key, &value, &expect, ttl).await;
            }
            // Heads are compare-and-set and must stay one value; records are immutable and chunked.
            if key.starts_with(keys::HEAD_PREFIX) || limit < 64 {
                return Err(StoreError::TooLarge { limit: limit as u64, actual: value.len() as u64 });
            }
            let chunks: Vec<&[u8]> = value.chunks(limit).collect();
            for (index, chunk) in chunks.iter().enumerate() {
                self.raw_put(&keys::chunk_key(key, index), chunk, &Expect::Any, ttl).await?;
            }
            self.raw_put(key, &Self::manifest(&value, chunks.len()), &expect, ttl).await
        })
    }

    fn put_or_current<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        Box::pin(async move {
            if value.bytes.len() > self.capabilities.max_value_bytes.unwrap_or(usize::MAX) {
                // Chunked values are immutable records, never compared: the plain path.
                return self.put(key, value, expect).await.map(Put::from);
            }
            let ttl = self.ttl_of(value.expiry);
            let outcome = self.raw_put_reporting(key, &value.bytes, &expect, ttl, true).await?;
            // A reported value that is a chunk manifest is not a head: treat it as unknown.
            Ok(match outcome {
                Put::Refused { current: Some(Some(entry)) } if entry.value.starts_with(MANIFEST) => {
                    Put::Refused { current: None }
                }
                other => other,
            })
        })
    }

    fn commit<'a>(
        &'a self,
        records: Vec<(String, Vec<u8>)>,
        head_key: &'a str,
        head: Value,
        expected: Expect,
        stale: &mut Vec<(String, Vec<String>)>,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        let limit = self.capabilities.max_value_bytes.unwrap_or(usize::MAX);
        // A head is never chunked: one over the limit is refused before any record is written (the
        // records of a refused commit would stay, named by no head).
        if head.bytes.len() > limit {
            let actual = head.bytes.len() as u64;
            return Box::pin(std::future::ready(Err(StoreError::TooLarge { limit: limit as u64, actual })));
        }
        // A stale live log goes in the call when its keys are known and none of them can have chunks (a
        // backend without a value limit); otherwise it is deleted beside the commit (`delete_prefix`).
        let takes_stale = self.keys_name_every_value() && stale.iter().all(|(_, known)| !known.is_empty());
        let deletes: usize = if takes_stale { stale.iter().map(|(_, known)| known.len()).sum() } else { 0 };
        // A record over the limit is chunked by `put`, and a commit of many records (an import) would be
        // one long backend operation (a Redis script blocks the server while it runs): those commits go
        // the way of separate writes.
        let fits =
            records.len() + deletes <= MAX_COMMIT_RECORDS && records.iter().all(|(_, value)| value.len() <= limit);
        match &self.commit {
            Some(commit) if fits => {
                let taken = if takes_stale { std::mem::take(stale) } else { Vec::new() };
                let deletes = taken.iter().flat_map(|(_, known)| known).map(|key| JsValue::from_str(&self.full(key)));
                let deletes = deletes.collect();
                Box::pin(self.commit_at_once(commit, records, head_key, head, expected, deletes))
            }
            _ => Box::pin(commit_in_order(self, records, head_key, head, expected)),
        }
    }

    /// Where values may be chunked, a record's key does not name its chunks.
    fn keys_name_every_value(&self) -> bool {
        self.capabilities.max_value_bytes.is_none()
    }

    fn delete<'a>(&'a self, key: &'a str, expected: Option<&'a str>) -> LocalBoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let what = format!("delete(\"{key}\")");
            let options = Object::new();
            if let Some(version) = expected {
                set(&options, "expectedVersion", &JsValue::from_str(version));
            }
            let returned =
                self.call(&what, caught::checked(kv_delete(&self.kv, "delete", &self.full(key), &options))).await?;
            returned.as_bool().ok_or_else(|| Self::malformed(&what, &returned))
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> LocalBoxFuture<'a, StoreResult<ListPage>> {
        Box::pin(async move {
            let what = format!("list(\"{prefix}\")");
            let options = Object::new();
            if let Some(cursor) = cursor {
                set(&options, "cursor", &JsValue::from_str(cursor));
            }
            set(&options, "limit", &JsValue::from_f64(limit as f64));
            let returned =
                self.call(&what, caught::checked(kv_list(&self.kv, "list", &self.full(prefix), &options))).await?;
            let keys = field(&returned, "keys");
            if !Array::is_array(&keys) {
                return Err(Self::malformed(&what, &returned));
            }
            let mut out = Vec::new();
            let keys: Array = caught::checked(returned_items(&keys, "keys"))
                .map_err(|_| Self::malformed(&what, &returned))?
                .unchecked_into();
            for key in keys.iter() {
                let key = key.as_string().ok_or_else(|| Self::malformed(&what, &returned))?;
                if let Some(key) = key.strip_prefix(&self.prefix) {
                    out.push(key.to_owned());
                }
            }
            let next = field(&returned, "cursor").as_string().filter(|c| !c.is_empty());
            // The cursor it was given back would have the caller list the same page for ever.
            if next.is_some() && next.as_deref() == cursor {
                return Err(StoreError::Backend {
                    message: format!("host KV {what} gave back the cursor it was given: it would be listed for ever"),
                    cause: Some(Rc::new(returned)),
                });
            }
            Ok(ListPage { keys: out, cursor: next })
        })
    }
}
