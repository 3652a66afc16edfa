//! `SessionStore`: one owner over one backend; opens, lists, deletes and sweeps sessions.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::core::guard::{self, Mark};
use crate::core::limits::Limits;
use crate::core::{codec, keys, limits, CoreError, Head, Json, Status};
use crate::engine::cache::{Cache, CacheLimits};
use crate::engine::error::EngineResult;
use crate::engine::load;
use crate::engine::schema::Migrate;
use crate::engine::session::Session;
use crate::engine::EngineError;
use crate::store::{Expect, LocalBoxFuture, Store, StoreError};

/// What the engine needs from its host: a clock, randomness and a timer. Tests pass a fake clock.
pub trait Env {
    /// Milliseconds since the epoch, by the store's clock.
    fn now(&self) -> u64;
    fn fill_random(&self, bytes: &mut [u8]);
    /// Resolves after `ms` ([`Env::wait`] of a host that cannot be woken).
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;

    /// Whether the store instance `instance` (a lease holder) is still alive: `Some(false)` only with
    /// proof that it is gone (in browsers, its Web Lock is no longer held), `None` when this host
    /// cannot tell; then a lease ends only when it runs out.
    fn holder_alive(&self, instance: &str) -> LocalBoxFuture<'static, Option<bool>> {
        let _ = instance;
        Box::pin(std::future::ready(None))
    }

    /// Shows, from now until [`Env::release_alive`], that the store instance `instance` is alive, to
    /// [`Env::holder_alive`] in other realms (browsers: a Web Lock). Called before the store writes a
    /// lease, not when it opens: a store that only reads never pays for it.
    fn hold_alive(&self, instance: &str) {
        let _ = instance;
    }

    /// Ends what [`Env::hold_alive`] started (the store closes).
    fn release_alive(&self) {}

    /// Tells whoever waits on session `id` in this realm ([`Env::wait`]) that something happened
    /// to it (a flush, a stop request, a commit) and, with `everywhere`, the other realms that share
    /// the backend where the host can (browsers: a BroadcastChannel). Hosts without it do nothing:
    /// waiters then find out by polling.
    fn wake(&self, id: &str, everywhere: bool) {
        let _ = (id, everywhere);
    }

    /// How many wake-ups ([`Env::wake`] in this realm, and those other realms announced to it) the
    /// host has delivered, for any session; `None` when it cannot count them. An unchanged count
    /// tells a holder that no stop was requested here, or announced here, in between.
    fn wakes(&self) -> Option<u64> {
        None
    }

    /// Resolves after `ms`, or sooner when [`Env::wake`] names `id`, or when the store instance
    /// `holder` (a lease holder) is known to be gone.
    fn wait(&self, id: &str, ms: u64, holder: Option<&str>) -> LocalBoxFuture<'static, ()> {
        let _ = (id, holder);
        self.sleep(ms)
    }
}

/// Store-wide settings (`StoreOptions` of the JS API).
#[derive(Debug, Clone)]
pub struct Config {
    pub owner: String,
    pub lease_ms: u64,
    pub idle_ttl_ms: Option<u64>,
    pub max_lifetime_ms: Option<u64>,
    /// Commits between snapshots; 0 disables snapshots.
    pub snapshot_every: u64,
    pub limits: Limits,
    /// Bounds of the cache of session views (`StoreOptions.cache`).
    pub cache: CacheLimits,
    /// Renew the lease while an invocation is open (every `guard::renew_every(lease_ms)`; the host
    /// runs the timer).
    pub heartbeat: bool,
    /// Accept a backend that cannot compare-and-set atomically (no guard: best effort).
    pub allow_non_atomic: bool,
    /// Emitted parts are flushed this long after the first unflushed one (`liveFlushMs`).
    pub live_flush_ms: u64,
    /// How often a holder whose `signal` is watched reads the head for a stop request (`stopPollMs`).
    pub stop_poll_ms: u64,
    /// The application schema version (`schema.version`; 0 without one).
    pub schema_version: u64,
}

impl Config {
    pub fn new(owner: String) -> Config {
        Config {
            owner,
            lease_ms: 30_000,
            idle_ttl_ms: None,
            max_lifetime_ms: None,
            snapshot_every: 50,
            limits: Limits::default(),
            cache: CacheLimits::default(),
            heartbeat: true,
            allow_non_atomic: false,
            live_flush_ms: 50,
            stop_poll_ms: 1000,
            schema_version: 0,
        }
    }
}

/// Per-session settings given to `open` (`OpenOptions`).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub create: bool,
    pub idle_ttl_ms: Option<u64>,
    pub max_lifetime_ms: Option<u64>,
    pub metadata: Option<Json>,
}

/// One line of `list()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub version: u64,
    pub status: Status,
    pub created_at: u64,
    pub updated_at: u64,
    pub expires_at: Option<u64>,
}

/// A committed change, for `onChange` listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    pub version: u64,
    pub status: Status,
    /// The fencing token of the commit that made `version`, when known: two sessions created under
    /// one id (one deleted before the other) can have the same version, not the same token.
    pub token: Option<u64>,
    /// Made by another store over the same backend (another tab), and reported to this one.
    pub remote: bool,
}

/// An observability event (`StoreEvent` of the JS API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreEvent {
    pub kind: &'static str,
    pub session: String,
    pub version: Option<u64>,
    pub token: Option<u64>,
    pub owner: Option<String>,
    pub duration_ms: Option<u64>,
    pub traceparent: Option<String>,
    pub key: Option<String>,
}

type Listener = Rc<dyn Fn(&Change)>;

/// The `onEvent` hook.
pub type EventHook = Box<dyn Fn(&StoreEvent)>;

pub(crate) struct Shared {
    pub store: Rc<dyn Store>,
    pub env: Rc<dyn Env>,
    pub config: Config,
    /// Random id of this store instance, recorded in its leases.
    pub instance: String,
    pub marks: RefCell<HashMap<String, Mark>>,
    /// This store's followers, by session id: what its invocations write that ends a turn or
    /// checkpoints reaches them directly (`engine::live::Inbox`), so that none misses a turn that
    /// began and ended between two of its reads of the store.
    pub followers: RefCell<Vec<(String, std::rc::Weak<crate::engine::live::Inbox>)>>,
    /// The stops this store's `stop()` calls have asked and not yet seen end: (session id, token,
    /// reason). A holder of this store reads its `signal` aborted at once when one names its turn.
    pub stops_asked: RefCell<Vec<(String, u64, String)>>,
    /// Per session id, the invocation of this store's last begin that failed with its outcome
    /// unknown: its lease may be there, held by nobody (`guard::orphaned_instance`).
    /// A list, not a map: rare and few, and another map type would add its code to the .wasm.
    orphans: RefCell<Vec<(String, String)>>,
    /// Store instances of other realms known gone (a Web Lock no longer held; an instance id is never
    /// used again): their leases read as ended ([`Shared::status_of`]). The newest [`MAX_GONE`].
    gone: RefCell<Vec<String>>,
    on_event: Option<EventHook>,
    listeners: RefCell<Vec<(u64, Option<String>, Listener)>>,
    next_listener: Cell<u64>,
    closed: Cell<bool>,
    /// One shared, bounded view per session id: what `open` validates against the head instead of
    /// loading the session again, and what a change made elsewhere refreshes.
    pub cache: Cache,
    /// The host's migrations of the application's data (`schema.migrate`).
    pub migrate: RefCell<Option<Rc<dyn Migrate>>>,
}

/// How many sessions' orphaned begins a store remembers (`Shared::orphans`), the oldest forgotten
/// first: an outage that failed begins on many sessions must not grow the store without bound, and
/// an orphaned lease is of use only until it runs out (`leaseMs`), after which anyone takes it.
const MAX_ORPHANS: usize = 64;

/// How many gone store instances a store remembers (`Shared::gone`).
const MAX_GONE: usize = 64;

impl Shared {
    pub fn now(&self) -> u64 {
        self.env.now()
    }

    /// Remembers that this store's begin of `invocation` on session `id` failed with its outcome
    /// unknown, in place of an earlier one of the session.
    pub fn remember_orphan(&self, id: &str, invocation: String) {
        let mut orphans = self.orphans.borrow_mut();
        orphans.retain(|(orphaned, _)| orphaned != id);
        if orphans.len() == MAX_ORPHANS {
            orphans.remove(0);
        }
        orphans.push((id.to_owned(), invocation));
    }

    /// Whether store instance `instance` is known gone ([`Env::holder_alive`] says so), which is
    /// remembered: its leases read as ended from then on.
    pub async fn holder_gone(&self, instance: &str) -> bool {
        let gone = self.env.holder_alive(instance).await == Some(false);
        if gone {
            self.note_gone(instance);
        }
        gone
    }

    /// Remembers that store instance `instance` is gone (its realm's Web Lock is free).
    fn note_gone(&self, instance: &str) {
        let mut gone = self.gone.borrow_mut();
        if gone.iter().any(|known| known == instance) {
            return;
        }
        if gone.len() == MAX_GONE {
            gone.remove(0);
        }
        gone.push(instance.to_owned());
    }

    /// The status a reader of `head` acts on now, the leases of instances known gone ended.
    pub fn status_of(&self, head: &Head) -> Status {
        let gone = self.gone.borrow();
        head.effective_status_given(self.now(), &|instance| gone.iter().any(|known| known == instance))
    }

    /// Forgets session `id`'s orphaned begin (a begin of this store holds its lease now).
    pub fn forget_orphan(&self, id: &str) {
        self.orphans.borrow_mut().retain(|(orphaned, _)| orphaned != id);
    }

    /// The invocation of this store's orphaned begin on session `id`, if any.
    pub fn orphan_of(&self, id: &str) -> Option<String> {
        self.orphans.borrow().iter().find(|(orphaned, _)| orphaned == id).map(|(_, invocation)| invocation.clone())
    }

    /// Tells the `onEvent` hook of the event `make` builds, built only when there is a hook (most
    /// stores have none, and an event's strings were a few of a turn's allocations).
    pub fn emit(&self, make: &dyn Fn() -> StoreEvent) {
        if let Some(on_event) = &self.on_event {
            on_event(&make());
        }
    }

    /// Tells `onEvent` of a head this store wrote itself, not through an invocation (a fork, an
    /// import, a stop's fence), as a commit of its version under its last token.
    pub fn emit_commit(&self, id: &str, head: &Head) {
        self.emit(&|| StoreEvent {
            kind: "commit",
            session: id.to_owned(),
            version: Some(head.version),
            token: Some(head.last_token),
            owner: Some(self.config.owner.clone()),
            ..Default::default()
        });
    }

    pub fn notify(&self, change: &Change) {
        // Cloned out first: a listener may subscribe, unsubscribe or commit re-entrantly.
        let listeners: Vec<Listener> = self
            .listeners
            .borrow()
            .iter()
            .filter(|(_, filter, _)| filter.as_deref().is_none_or(|id| id == change.id))
            .map(|(_, _, listener)| listener.clone())
            .collect();
        for listener in listeners {
            listener(change);
        }
        // Followers and stoppers in this realm (other realms hear of it through their own store).
        self.env.wake(&change.id, false);
    }

    pub fn subscribe(&self, filter: Option<String>, listener: Listener) -> u64 {
        let id = self.next_listener.get();
        self.next_listener.set(id + 1);
        self.listeners.borrow_mut().push((id, filter, listener));
        id
    }

    pub fn unsubscribe(&self, id: u64) {
        self.listeners.borrow_mut().retain(|(listener, _, _)| *listener != id);
    }

    pub fn check_open(&self) -> EngineResult<()> {
        if self.closed.get() {
            return Err(EngineError::StoreClosed);
        }
        Ok(())
    }

    /// Releases this realm's mark for `id` if it is the one `token` set.
    pub fn clear_mark(&self, id: &str, token: Option<u64>) {
        let mut marks = self.marks.borrow_mut();
        if marks.get(id).is_some_and(|mark| mark.token == token) {
            marks.remove(id);
        }
    }
}

/// One owner of leases over one backend.
#[derive(Clone)]
pub struct SessionStore {
    pub(crate) shared: Rc<Shared>,
}

impl SessionStore {
    /// A store over `store`. An empty `config.owner` becomes the random instance id.
    pub fn new(
        store: Rc<dyn Store>,
        env: Rc<dyn Env>,
        mut config: Config,
        on_event: Option<EventHook>,
    ) -> SessionStore {
        let instance = crate::engine::random_id(&*env);
        if config.owner.is_empty() {
            config.owner = instance.clone();
        }
        let cache = Cache::new(config.cache);
        let shared = Shared {
            store,
            env,
            config,
            instance,
            marks: RefCell::new(HashMap::new()),
            followers: RefCell::default(),
            stops_asked: RefCell::default(),
            orphans: RefCell::new(Vec::new()),
            gone: RefCell::new(Vec::new()),
            on_event,
            listeners: RefCell::new(Vec::new()),
            cache,
            next_listener: Cell::new(0),
            closed: Cell::new(false),
            migrate: RefCell::new(None),
        };
        SessionStore { shared: Rc::new(shared) }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// Sets the migrations that bring sessions of older schemas to `config.schema_version`.
    pub fn set_migrations(&self, migrate: Rc<dyn Migrate>) {
        *self.shared.migrate.borrow_mut() = Some(migrate);
    }

    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    pub fn new_id(&self) -> String {
        crate::engine::random_id(&*self.shared.env)
    }

    /// Opens `id`, creating it unless `options.create` is false.
    pub async fn open(&self, id: &str, options: OpenOptions) -> EngineResult<Rc<Session>> {
        self.shared.check_open()?;
        limits::check_name("a session id", id)?;
        let shared = &self.shared;
        if let Some(metadata) = &options.metadata {
            shared.config.limits.check_metadata(metadata.len())?;
        }
        let head_key = keys::head_key(id);
        // A record the head named that is gone when read: another store deleted or pruned the session
        // meanwhile. The open starts again on the head as it is now (the error stays if it persists).
        let mut missing = None;
        for _ in 0..3 {
            if let Some(slot) = shared.cache.get(id) {
                if let Some(entry) = shared.store.get(&head_key).await? {
                    let session = Session::new(shared.clone(), slot);
                    match session.catch_up_to(&head_key, entry).await {
                        Err(error) if error.is_corrupt_record() => {
                            missing = Some(error);
                            continue;
                        }
                        caught_up => caught_up?,
                    }
                    return Ok(session);
                }
            } else if let Some(loaded) = match load::load_session(&*shared.store, id).await {
                Err(error) if error.is_corrupt_record() => {
                    missing = Some(error);
                    continue;
                }
                loaded => loaded?,
            } {
                // Not cached: the head and every record it names, read in one go.
                let (head, version) = (loaded.head.clone(), loaded.version.clone());
                let session = Session::new(shared.clone(), shared.cache.slot(id, head.clone(), version.clone()));
                // (Another open may have made the slot meanwhile, holding a session created again
                // since this load: then the head is read again, and what it names may be gone.)
                match session.catch_up_loaded(head, version, Some((loaded.state, loaded.snapshot))).await {
                    Err(error) if error.is_corrupt_record() => {
                        missing = Some(error);
                        continue;
                    }
                    caught_up => caught_up?,
                }
                return Ok(session);
            }
            if !options.create {
                return Err(EngineError::NotFound(format!(
                    "session \"{id}\" does not exist; open it without create: false to create it"
                )));
            }
            match self.create(id, &options).await {
                Ok(Some(session)) => return Ok(session),
                // Another store created it between our read and our write: load theirs.
                Ok(None) => {}
                Err(error) if error.is_corrupt_record() => missing = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(missing.unwrap_or_else(|| EngineError::Conflict(id.to_owned())))
    }

    /// The head of a new session of this store, at version 0: created now, its TTLs those of `options`
    /// or the store's, a random first token, the store's schema.
    pub(crate) fn new_head(&self, options: &OpenOptions) -> Head {
        let shared = &self.shared;
        let mut head = Head::new(
            shared.now(),
            options.idle_ttl_ms.or(shared.config.idle_ttl_ms),
            options.max_lifetime_ms.or(shared.config.max_lifetime_ms),
            options.metadata.clone(),
        );
        head.last_token = guard::first_token(random_u32(&*shared.env));
        head.schema = shared.config.schema_version;
        head
    }

    /// Creates session `id` if no session has that id (one compare-and-set of its head against
    /// absent); `None` when one has.
    pub(crate) async fn create(&self, id: &str, options: &OpenOptions) -> EngineResult<Option<Rc<Session>>> {
        let shared = &self.shared;
        let head = self.new_head(options);
        let head_key = keys::head_key(id);
        let Some(version) = shared.store.put(&head_key, crate::engine::head_value(&head), Expect::Absent).await? else {
            return Ok(None);
        };
        // A slot left from an earlier session of this id (deleted, here or elsewhere) is not this
        // session's.
        shared.cache.forget(id);
        let slot = shared.cache.slot(id, head.clone(), version.clone());
        let session = Session::new(shared.clone(), slot);
        session.catch_up(head, version).await?;
        Ok(Some(session))
    }

    /// Creates session `id` whole: `records` and its `head` (at its version) in one commit, if no
    /// session has that id; `None` when one has. An import and a fork are so visible in one commit
    /// or not at all, and are told to listeners and `onEvent` as a commit of that version.
    pub(crate) async fn create_whole(
        &self,
        id: &str,
        head: &Head,
        records: Vec<(String, Vec<u8>)>,
    ) -> EngineResult<Option<Rc<Session>>> {
        let shared = &self.shared;
        shared.check_open()?;
        // Taken already: nothing is written (the records would go under its id, named by no head).
        if load::read_head(&*shared.store, id).await?.is_some() {
            return Ok(None);
        }
        let head_key = keys::head_key(id);
        let value = crate::engine::head_value(head);
        let written: Vec<String> = records.iter().map(|(key, _)| key.clone()).collect();
        let failed = match shared.store.commit(records, &head_key, value, Expect::Absent, &mut Vec::new()).await {
            Ok(Some(_)) => None,
            // Taken meanwhile, or refused before the head was written (over the backend's per-value
            // limit, the memory budget): no head names the records written.
            Ok(None) => Some(None),
            Err(error @ (StoreError::TooLarge { .. } | StoreError::OutOfMemory { .. })) => Some(Some(error)),
            Err(error) => match load::read_head(&*shared.store, id).await {
                // It landed after all (the backend failed after the head's write).
                Ok(Some((landed, _)))
                    if landed.last_token == head.last_token && landed.created_at == head.created_at =>
                {
                    None
                }
                // Not there now, but a head write that timed out may still land: the records stay
                // (under this write's token, which no other head names) for the id's next delete.
                _ => return Err(error.into()),
            },
        };
        if let Some(error) = failed {
            // The records go (their keys carry this write's token).
            crate::store::discard_records(&*shared.store, written).await;
            return match error {
                None => Ok(None),
                Some(error) => Err(error.into()),
            };
        }
        // A slot left from an earlier session of this id (deleted, here or elsewhere) is not this one's.
        shared.cache.forget(id);
        let session = self.open(id, OpenOptions { create: false, ..Default::default() }).await?;
        shared.emit_commit(id, head);
        session.announce(session.version(), session.status());
        Ok(Some(session))
    }

    /// One page of sessions whose id starts with `prefix`, after `cursor` (one a page before gave). A
    /// head that cannot be decoded is left out and reported through `onEvent` as `corrupt`.
    pub async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> EngineResult<(Vec<SessionInfo>, Option<String>)> {
        self.shared.check_open()?;
        let limit = limit.unwrap_or(LIST_PAGE).min(LIST_PAGE_MAX);
        let cursor = cursor.map(keys::backend_cursor).transpose()?.flatten();
        let escaped = keys::escape_id(prefix);
        let key_prefix = format!("{}{}", keys::HEAD_PREFIX, &escaped[..escaped.len() - 1]);
        let page = self.shared.store.list(&key_prefix, cursor, limit).await?;
        let mut sessions = Vec::with_capacity(page.keys.len());
        for key in &page.keys {
            // A key this package does not write (another program's) is reported, not listed.
            let Some(id) = keys::id_of_head_key(key) else {
                self.report_corrupt("", key);
                continue;
            };
            // A head that is not what this package wrote (the backend says so, or it does not
            // decode) leaves that session out of the page; the others are listed.
            let entry = match self.shared.store.get(key).await {
                Ok(Some(entry)) => Ok(entry),
                Ok(None) => continue,
                Err(StoreError::Corrupt { key, detail }) => Err(CoreError::CorruptRecord { key, detail }),
                Err(error) => return Err(error.into()),
            };
            match entry.and_then(|entry| codec::decode_head(key, &entry.value)) {
                Ok(head) => sessions.push(SessionInfo {
                    id,
                    version: head.version,
                    status: self.shared.status_of(&head),
                    created_at: head.created_at,
                    updated_at: head.updated_at,
                    expires_at: head.expires_at(),
                }),
                Err(_) => self.report_corrupt(&id, key),
            }
        }
        Ok((sessions, page.cursor.as_deref().map(keys::list_cursor)))
    }

    /// Tells `onEvent` of a record under `key` (of session `id`, when known) that this package did
    /// not write: a walk over heads (`list`, `sweepExpired`) leaves it out and goes on.
    fn report_corrupt(&self, id: &str, key: &str) {
        self.shared.emit(&|| StoreEvent {
            kind: "corrupt",
            session: id.to_owned(),
            key: Some(key.to_owned()),
            ..Default::default()
        });
    }

    /// The ids of one page of sessions whose id starts with `prefix`, from their head keys alone
    /// (nothing decoded: a backup opens each one and so meets a corrupt head instead of skipping it).
    pub async fn list_ids(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> EngineResult<(Vec<String>, Option<String>)> {
        self.shared.check_open()?;
        let escaped = keys::escape_id(prefix);
        let key_prefix = format!("{}{}", keys::HEAD_PREFIX, &escaped[..escaped.len() - 1]);
        let page = self.shared.store.list(&key_prefix, cursor, limit.min(LIST_PAGE_MAX)).await?;
        Ok((page.keys.iter().filter_map(|key| keys::id_of_head_key(key)).collect(), page.cursor))
    }

    /// Deletes a session: the head first (by compare-and-set), then its other records. Without a
    /// session under `id`, it deletes the records an earlier delete that failed part-way left.
    pub async fn delete(&self, id: &str) -> EngineResult<bool> {
        self.shared.check_open()?;
        limits::check_name("a session id", id)?;
        let head_key = keys::head_key(id);
        for _ in 0..3 {
            let Some(entry) = self.shared.store.get(&head_key).await? else {
                self.shared.store.delete_session(&head_key, None, &keys::record_prefixes(id)).await?;
                return Ok(false);
            };
            if self.shared.store.delete_session(&head_key, Some(&entry.version), &keys::record_prefixes(id)).await? {
                self.shared.cache.forget(id);
                return Ok(true);
            }
        }
        Err(EngineError::Conflict(id.to_owned()))
    }

    /// Deletes up to `limit` sessions that are expired by the store's clock; returns how many.
    /// Candidates come from the backend's expiry index when it has one, else from every head.
    pub async fn sweep_expired(&self, limit: Option<usize>) -> EngineResult<usize> {
        self.shared.check_open()?;
        let limit = limit.unwrap_or(usize::MAX);
        let now = self.shared.now();
        let mut deleted = 0;
        // An expiry index gives the heads due by `now`, among them some that are not swept (closed
        // sessions, live leases): `limit` counts the sessions deleted, so ask again for as many more
        // as were passed over, until the index has no more or gives only those.
        let mut passed: Vec<String> = Vec::new();
        loop {
            let want = passed.len().saturating_add(limit - deleted);
            let Some(keys) = self.shared.store.expiring(now, want).await? else { break };
            let mut new = false;
            for key in &keys {
                if deleted == limit {
                    return Ok(deleted);
                }
                let Err(at) = passed.binary_search(key) else { continue };
                new = true;
                match self.sweep_one(key).await? {
                    true => deleted += 1,
                    false => passed.insert(at, key.clone()),
                }
            }
            if keys.len() < want || !new {
                return Ok(deleted);
            }
        }
        let mut cursor: Option<String> = None;
        while deleted < limit {
            let page = self.shared.store.list(keys::HEAD_PREFIX, cursor.as_deref(), 256).await?;
            for key in &page.keys {
                if deleted == limit {
                    break;
                }
                deleted += usize::from(self.sweep_one(key).await?);
            }
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(deleted)
    }

    /// Deletes the session of head `key` if it is expired now; whether it did.
    async fn sweep_one(&self, key: &str) -> EngineResult<bool> {
        let Some(id) = keys::id_of_head_key(key) else {
            self.report_corrupt("", key);
            return Ok(false);
        };
        let entry = match self.shared.store.get(key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(false),
            Err(StoreError::Corrupt { .. }) => {
                self.report_corrupt(&id, key);
                return Ok(false);
            }
            Err(error) => return Err(error.into()),
        };
        let Ok(head) = codec::decode_head(key, &entry.value) else {
            self.report_corrupt(&id, key);
            return Ok(false);
        };
        // Stored as expired already, or expired by the clock now.
        if head.status != Status::Expired && guard::expire(&head, self.shared.now()).is_none() {
            return Ok(false);
        }
        if !self.shared.store.delete_session(key, Some(&entry.version), &keys::record_prefixes(&id)).await? {
            return Ok(false);
        }
        self.shared.cache.forget(&id);
        self.shared.emit(&|| StoreEvent {
            kind: "expire",
            session: id.clone(),
            version: Some(head.version),
            ..Default::default()
        });
        Ok(true)
    }

    /// Calls `listener` after every commit made through this store; returns the id to unsubscribe.
    pub fn on_change(&self, listener: Rc<dyn Fn(&Change)>) -> u64 {
        self.shared.subscribe(None, listener)
    }

    /// `StoreClosed` once `close()` was called: what the bindings' calls that read no session check.
    pub fn check_open(&self) -> EngineResult<()> {
        self.shared.check_open()
    }

    /// Takes in a commit made by another store over the same backend (reported by the host, e.g. a
    /// BroadcastChannel): the open views of that session catch up, then listeners hear of it.
    pub async fn handle_remote_change(&self, id: String, version: u64, status: Status, token: Option<u64>) {
        if let Some(slot) = self.shared.cache.get(&id) {
            let session = Session::new(self.shared.clone(), slot);
            // A notice of another version than the view's, or of its version under another token,
            // comes from a session created again under the id since (or arrived out of order): the
            // head says which.
            if !session.has_commit(version, token) && session.slot.state().is_some() {
                // A view that cannot catch up stays as it was; its next begin() reloads it.
                let _ = session.refresh().await;
            }
        }
        self.shared.notify(&Change { id, version, status, token, remote: true });
    }

    pub fn off_change(&self, subscription: u64) {
        self.shared.unsubscribe(subscription);
    }

    /// Refuses further use and frees every cached view at once (Sessions keep their ids, versions
    /// and statuses; their reads of messages and state then fail with the eviction error).
    pub fn close(&self) {
        self.shared.closed.set(true);
        self.shared.env.release_alive();
        // The invocations still open lose their lease (none is renewed or committed): their stop
        // watches wake to abort their signals now, and begins waiting for a lease to give up.
        for id in self.shared.cache.clear() {
            self.shared.env.wake(&id, false);
        }
        self.shared.store.close();
    }

    /// Refuses a backend that cannot compare-and-set atomically, unless the store was configured to
    /// accept it (`allowNonAtomic`): the guard could admit two invocations at once.
    pub fn refuse_unsafe_backend(&self) -> EngineResult<()> {
        if !self.shared.store.atomic() && !self.shared.config.allow_non_atomic {
            return Err(EngineError::UnsafeStore);
        }
        Ok(())
    }

    /// Sessions whose state this store's cache holds now, and their approximate bytes.
    pub fn cache_usage(&self) -> (usize, u64) {
        (self.shared.cache.len(), self.shared.cache.bytes())
    }
}

/// Sessions per `list()` page unless asked, and at most.
const LIST_PAGE: usize = 100;
const LIST_PAGE_MAX: usize = 1000;

/// 32 random bits from the host.
pub(crate) fn random_u32(env: &dyn Env) -> u32 {
    let mut bytes = [0u8; 4];
    env.fill_random(&mut bytes);
    u32::from_le_bytes(bytes)
}
