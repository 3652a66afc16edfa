//! `SessionStore`: the static factories and the store-wide operations.

use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::bindings::cipher;
use crate::bindings::convert::{to_name, to_optional_name, Options};
use crate::bindings::errors::{self, invalid, JsResult};
use crate::bindings::host;
use crate::bindings::origin::OriginLink;
use crate::bindings::promise;
use crate::bindings::schema::JsMigrations;
use crate::bindings::session::{unsubscriber, JsSession};
use crate::core::limits::Limits;
use crate::engine::{CacheLimits, Change, Config, EventHook, OpenOptions, SessionStore, StoreEvent};
use crate::store::{budget, Durability, HostKvStore, IdbStore, MemoryStore, SealedStore, Store};

#[wasm_bindgen(js_name = SessionStore)]
pub struct JsSessionStore {
    pub(crate) inner: SessionStore,
    /// What brings other stores' commits over the same backend (IndexedDB: other realms; HostKv: this
    /// realm's), shared with the store's sessions.
    pub(crate) link: Option<Rc<OriginLink>>,
}

fn set(object: &Object, key: &str, value: JsValue) {
    if !value.is_undefined() {
        // A plain property on a fresh object: cannot fail.
        let _ = Reflect::set(object, &JsValue::from_str(key), &value);
    }
}

fn opt_number(value: Option<u64>) -> JsValue {
    value.map_or(JsValue::UNDEFINED, |n| JsValue::from_f64(n as f64))
}

fn opt_str(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::UNDEFINED, JsValue::from_str)
}

fn event_object(event: &StoreEvent) -> JsValue {
    let object = Object::new();
    set(&object, "type", event.kind.into());
    set(&object, "session", event.session.as_str().into());
    set(&object, "version", opt_number(event.version));
    set(&object, "token", opt_number(event.token));
    set(&object, "owner", opt_str(event.owner.as_deref()));
    set(&object, "durationMs", opt_number(event.duration_ms));
    set(&object, "traceparent", opt_str(event.traceparent.as_deref()));
    set(&object, "key", opt_str(event.key.as_deref()));
    host::freeze(&object)
}

pub fn change_object(change: &Change, with_id: bool) -> JsValue {
    let object = Object::new();
    if with_id {
        set(&object, "id", change.id.as_str().into());
    }
    set(&object, "version", (change.version as f64).into());
    set(&object, "status", change.status.as_str().into());
    host::freeze(&object)
}

/// The options of every store (`StoreOptions`); each backend's own are added to them (`build`).
const STORE_OPTIONS: [&str; 14] = [
    "owner",
    "leaseMs",
    "heartbeat",
    "idleTtlMs",
    "maxLifetimeMs",
    "snapshotEvery",
    "now",
    "limits",
    "onEvent",
    "encryptionKey",
    "cache",
    "liveFlushMs",
    "stopPollMs",
    "schema",
];

/// Builds a store over `backend` from the JS `StoreOptions` (`allow_non_atomic`: the kv option), with
/// `backend_options` the names of the backend's own options, read by its constructor.
pub fn build(
    backend: Rc<dyn Store>,
    options: &JsValue,
    backend_options: &[&str],
    lock_prefix: Option<String>,
    allow_non_atomic: bool,
) -> JsResult<JsSessionStore> {
    let options = Options::new(options, "options")?;
    options.only(&[&STORE_OPTIONS[..], backend_options].concat())?;
    let backend = match options.get("encryptionKey")? {
        None => backend,
        Some(key) => {
            let (keyring, cipher) = cipher::parse(&key)?;
            Rc::new(SealedStore::new(backend, Rc::new(cipher), keyring)) as Rc<dyn Store>
        }
    };
    let env = host::env(options.function("now")?, lock_prefix)?;
    let limits_options = options.object("limits")?;
    limits_options.only(&["maxMessageBytes", "maxStateValueBytes", "maxCommitBytes"])?;
    let defaults = Limits::default();
    let limits = Limits {
        max_message_bytes: limits_options.positive("maxMessageBytes")?.unwrap_or(defaults.max_message_bytes),
        max_state_value_bytes: limits_options.positive("maxStateValueBytes")?.unwrap_or(defaults.max_state_value_bytes),
        max_commit_bytes: limits_options.positive("maxCommitBytes")?.unwrap_or(defaults.max_commit_bytes),
    };
    let owner = options.name("owner")?;
    let mut config = Config::new(owner.unwrap_or_default());
    config.lease_ms = options.positive("leaseMs")?.unwrap_or(config.lease_ms);
    config.idle_ttl_ms = options.positive("idleTtlMs")?;
    config.max_lifetime_ms = options.positive("maxLifetimeMs")?;
    config.snapshot_every = options.positive("snapshotEvery")?.unwrap_or(config.snapshot_every);
    config.limits = limits;
    let cache = options.object("cache")?;
    cache.only(&["maxSessions", "maxBytes", "ttlMs"])?;
    config.cache = CacheLimits {
        max_sessions: cache.positive("maxSessions")?.map_or(config.cache.max_sessions, |n| n as usize),
        max_bytes: cache.positive("maxBytes")?.unwrap_or(config.cache.max_bytes),
        ttl_ms: cache.positive("ttlMs")?.unwrap_or(config.cache.ttl_ms),
    };
    config.heartbeat = options.bool("heartbeat")?.unwrap_or(config.heartbeat);
    config.allow_non_atomic = allow_non_atomic;
    config.live_flush_ms = options.count("liveFlushMs")?.unwrap_or(config.live_flush_ms);
    config.stop_poll_ms = options.positive("stopPollMs")?.unwrap_or(config.stop_poll_ms);
    let schema = options.object("schema")?;
    schema.only(&["version", "migrate"])?;
    let migrate = schema.object("migrate")?;
    let migrations = match schema.count("version")? {
        Some(version) => {
            config.schema_version = version;
            Some(JsMigrations::new(version, &migrate)?)
        }
        None if options.get("schema")?.is_some() => {
            return Err(invalid("options.schema.version", "options.schema needs { version, migrate }".into()));
        }
        None => None,
    };
    let on_event = options.function("onEvent")?.map(|listener| {
        Box::new(move |event: &StoreEvent| crate::caught::listener(&listener, &event_object(event))) as EventHook
    });
    let inner = SessionStore::new(backend, env, config, on_event);
    if let Some(migrations) = migrations {
        inner.set_migrations(Rc::new(migrations));
    }
    inner.refuse_unsafe_backend()?;
    Ok(JsSessionStore { inner, link: None })
}

#[wasm_bindgen(js_class = SessionStore)]
impl JsSessionStore {
    /// `new SessionStore()`: refused ([`errors::no_constructor`]).
    #[wasm_bindgen(constructor)]
    pub fn refused() -> JsResult<JsSessionStore> {
        Err(errors::no_constructor(
            "SessionStore",
            "SessionStore.memory(), SessionStore.indexedDb() and SessionStore.kv(kv)",
        ))
    }

    /// An in-memory store: sessions live as long as this object, shared with nothing else.
    pub fn memory(options: JsValue) -> Promise {
        promise(async move { build(Rc::new(MemoryStore::new()), &options, &[], None, false).map(JsValue::from) })
    }

    /// A store over a host-supplied KV object (see `agent-session/adapters`). Refused with
    /// `UnsafeStoreError` when the adapter cannot compare-and-set atomically, unless
    /// `allowNonAtomic: true`.
    pub fn kv(kv: JsValue, options: JsValue) -> Promise {
        promise(async move {
            let parsed = Options::new(&options, "options")?;
            let prefix = parsed.string("prefix")?.unwrap_or_default();
            let timeout_ms = parsed.positive("timeoutMs")?;
            let allow_non_atomic = parsed.bool("allowNonAtomic")?.unwrap_or(false);
            if !kv.is_object() {
                return Err(invalid(
                    "kv",
                    "SessionStore.kv(kv) needs a HostKv object (see agent-session/adapters)".into(),
                ));
            }
            let backend =
                HostKvStore::new(kv.clone(), prefix.clone(), timeout_ms).map_err(|message| invalid("kv", message))?;
            let mut store =
                build(Rc::new(backend), &options, &["prefix", "allowNonAtomic", "timeoutMs"], None, allow_non_atomic)?;
            store.link = Some(Rc::new(OriginLink::connect_realm(&store.inner, kv, prefix)));
            Ok(store.into())
        })
    }

    /// A store in IndexedDB, shared by every tab and worker of the origin; its own owner, with its
    /// own connection and cache.
    #[wasm_bindgen(js_name = indexedDb)]
    pub fn indexed_db(options: JsValue) -> Promise {
        promise(async move {
            let parsed = Options::new(&options, "options")?;
            let database = parsed.name("database")?.unwrap_or_else(|| "agent-session".to_owned());
            let durability = match parsed.string("durability")?.as_deref() {
                None | Some("relaxed") => Durability::Relaxed,
                Some("strict") => Durability::Strict,
                Some(_) => {
                    return Err(invalid(
                        "options.durability",
                        "options.durability must be \"relaxed\" or \"strict\"".into(),
                    ))
                }
            };
            let backend = IdbStore::open(&database, durability).await?;
            let prefix = format!("agent-session/{database}/");
            let mut store =
                build(Rc::new(backend), &options, &["database", "durability"], Some(prefix.clone()), false)?;
            store.link = Some(Rc::new(OriginLink::connect(&store.inner, &prefix)));
            Ok(store.into())
        })
    }

    /// Memory of this WebAssembly instance, shared by every store in it: `{ wasmBytes, countedBytes,
    /// ceilingBytes, heapBytes, heapLimitBytes }` (the size of wasm memory, which never shrinks; the
    /// bytes the library counts as held, stored values of memory stores and cached state; the budget
    /// they must stay under; the bytes of all live allocations, objects JS has not finalized yet
    /// included; the limit past which opens and begins are refused).
    #[wasm_bindgen(js_name = memoryUsage)]
    pub fn memory_usage() -> JsValue {
        let object = Object::new();
        let pages = core::arch::wasm32::memory_size(0) as f64;
        set(&object, "wasmBytes", (pages * 65536.0).into());
        set(&object, "countedBytes", (budget::held() as f64).into());
        set(&object, "ceilingBytes", (budget::ceiling() as f64).into());
        set(&object, "heapBytes", (crate::heap::in_use() as f64).into());
        set(&object, "heapLimitBytes", (budget::heap_limit() as f64).into());
        host::freeze(&object)
    }

    /// Sets the heap limit of this instance, for tests that reach it without filling GiBs (not in
    /// the typings; `undefined` restores the default).
    #[wasm_bindgen(js_name = __setHeapLimit)]
    pub fn set_heap_limit(bytes: JsValue) {
        budget::set_heap_limit(bytes.as_f64().map_or(budget::DEFAULT_HEAP_LIMIT, |bytes| bytes.max(0.0) as u64));
    }

    /// What this store's cache holds now: `{ sessions, bytes }` (bytes approximate).
    #[wasm_bindgen(js_name = cacheUsage)]
    pub fn cache_usage(&self) -> JsValue {
        let (sessions, bytes) = self.inner.cache_usage();
        let object = Object::new();
        set(&object, "sessions", (sessions as f64).into());
        set(&object, "bytes", (bytes as f64).into());
        host::freeze(&object)
    }

    /// The owner name recorded in this store's leases.
    #[wasm_bindgen(getter)]
    pub fn owner(&self) -> String {
        self.inner.config().owner.clone()
    }

    pub fn open(&self, id: JsValue, options: JsValue) -> Promise {
        let store = self.inner.clone();
        let link = self.link.clone();
        promise(async move {
            let id = match to_optional_name(&id, "a session id")? {
                Some(id) => id,
                None => store.new_id(),
            };
            let options = Options::new(&options, "options")?;
            options.only(&["create", "idleTtlMs", "maxLifetimeMs", "metadata"])?;
            let open = OpenOptions {
                create: options.bool("create")?.unwrap_or(true),
                idle_ttl_ms: options.positive("idleTtlMs")?,
                max_lifetime_ms: options.positive("maxLifetimeMs")?,
                metadata: options.json_within("metadata", &|n| Ok(store.config().limits.check_metadata(n)?))?,
            };
            crate::bindings::heap_room()?;
            let session = store.open(&id, open).await?;
            Ok(JsSession::new(session, store, link).into())
        })
    }

    pub fn list(&self, options: JsValue) -> Promise {
        let store = self.inner.clone();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["prefix", "limit", "cursor"])?;
            let prefix = options.string("prefix")?.unwrap_or_default();
            let limit = options.positive("limit")?.map(|n| n as usize);
            let cursor = options.string("cursor")?;
            let (sessions, cursor) = store.list(&prefix, cursor.as_deref(), limit).await?;
            let array = Array::new();
            for info in sessions {
                let object = Object::new();
                set(&object, "id", info.id.as_str().into());
                set(&object, "version", (info.version as f64).into());
                set(&object, "status", info.status.as_str().into());
                set(&object, "createdAt", (info.created_at as f64).into());
                set(&object, "updatedAt", (info.updated_at as f64).into());
                set(&object, "expiresAt", info.expires_at.map_or(JsValue::NULL, |at| (at as f64).into()));
                array.push(&object);
            }
            // Made for this call and shared with nothing: the caller's to keep or edit, as API.md types it.
            let result = Object::new();
            set(&result, "sessions", array.into());
            set(&result, "cursor", opt_str(cursor.as_deref()));
            Ok(result.into())
        })
    }

    pub fn delete(&self, id: JsValue) -> Promise {
        let store = self.inner.clone();
        promise(async move {
            let id = to_name(&id, "a session id")?;
            Ok(store.delete(&id).await?.into())
        })
    }

    #[wasm_bindgen(js_name = sweepExpired)]
    pub fn sweep_expired(&self, options: JsValue) -> Promise {
        let store = self.inner.clone();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["limit"])?;
            let limit = options.positive("limit")?.map(|n| n as usize);
            Ok((store.sweep_expired(limit).await? as f64).into())
        })
    }

    /// Calls `listener({ id, version, status })` after each commit; returns the unsubscribe function.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, listener: JsValue) -> JsResult<Function> {
        let listener: Function =
            listener.dyn_into().map_err(|_| invalid("listener", "onChange needs a function".into()))?;
        self.inner.check_open()?;
        if let Some(link) = &self.link {
            link.listen();
        }
        let subscription = self.inner.on_change(Rc::new(move |change: &Change| {
            crate::caught::listener(&listener, &change_object(change, true))
        }));
        let store = self.inner.clone();
        Ok(unsubscriber(move || store.off_change(subscription)))
    }

    pub fn close(&self) -> Promise {
        let store = self.inner.clone();
        if let Some(link) = &self.link {
            link.close();
        }
        promise(async move {
            store.close();
            Ok(JsValue::UNDEFINED)
        })
    }
}
