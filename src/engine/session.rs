//! `Session`: the cached view of a session's last committed version, and the way into the guard.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use crate::core::guard::{self, Acquire, Holder, Intent, Mark};
use crate::core::lifecycle::{self, Action};
use crate::core::snapshot::Previous;
use crate::core::{
    codec, keys, limits, AgentState, Batch, Commits, CoreError, Event, Head, Interrupt, Json, SessionState, Snapshot,
    SnapshotRef, Status, DEFAULT_AGENT,
};
use crate::engine::cache::{apply_counted, state_bytes, Slot};
use crate::engine::error::EngineResult;
use crate::engine::invocation::Invocation;
use crate::engine::load::{self, HistoryEvent};
use crate::engine::schema;
use crate::engine::store::{Change, OpenOptions, SessionStore, Shared, StoreEvent};
use crate::engine::EngineError;
use crate::store::{self, Decision, Entry, Expect, Put, Version};

/// Options of `begin` / `invoke`.
#[derive(Debug, Clone, Default)]
pub struct BeginOptions {
    pub agent: Option<String>,
    /// The answer to a pending interrupt (JSON text).
    pub resume: Option<Json>,
    /// `onBusy: { waitMs }`: keep trying this long before failing with `ConcurrencyError`.
    pub wait_ms: Option<u64>,
    pub traceparent: Option<String>,
}

/// A session as of its last committed version (reads never take the guard). Every `Session` of one
/// id opened through one store shares that store's cached view of it (a [`Slot`]).
pub struct Session {
    pub(crate) shared: Rc<Shared>,
    pub(crate) slot: Rc<Slot>,
}

/// A read-only view as of one version (`at()`).
#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: String,
    pub version: u64,
    pub status: Status,
    pub state: Rc<SessionState>,
}

impl Session {
    pub(crate) fn new(shared: Rc<Shared>, slot: Rc<Slot>) -> Rc<Session> {
        Rc::new(Session { shared, slot })
    }

    pub fn id(&self) -> &str {
        &self.slot.id
    }

    /// The head as last read or written by this store.
    pub fn head(&self) -> Head {
        self.slot.view.borrow().head.clone()
    }

    pub fn version(&self) -> u64 {
        self.slot.view.borrow().head.version
    }

    /// Creation, last commit and expiry times, by the store's clock (no copy of the head).
    pub fn times(&self) -> (u64, u64, Option<u64>) {
        let view = self.slot.view.borrow();
        (view.head.created_at, view.head.updated_at, view.head.expires_at())
    }

    /// Status by the store's clock now (a crashed holder's lapsed lease reads as idle).
    pub fn status(&self) -> Status {
        self.shared.status_of(&self.slot.view.borrow().head)
    }

    /// The question the session waits on, while it is interrupted (by the store's clock).
    pub fn pending_interrupt(&self) -> Option<Interrupt> {
        let view = self.slot.view.borrow();
        match self.shared.status_of(&view.head) {
            Status::Interrupted => view.head.interrupt.clone(),
            _ => None,
        }
    }

    /// Changes whenever the cached state was loaded whole rather than extended by commits, so that
    /// readers caching values derived from it (parsed messages) know when to start over.
    pub fn generation(&self) -> u64 {
        self.slot.view.borrow().generation
    }

    /// Values a layer above derives from this session's state (the bindings' parsed reads), shared
    /// by every `Session` of the id and dropped with the cached state.
    pub fn attachment<T: 'static>(&self, make: impl FnOnce() -> T) -> Rc<T> {
        let mut attachment = self.slot.attachment.borrow_mut();
        if let Some(existing) = attachment.as_ref().and_then(|a| a.clone().downcast::<T>().ok()) {
            return existing;
        }
        let made = Rc::new(make());
        *attachment = Some(made.clone());
        made
    }

    /// The committed state (shared, no copy). Fails when the store's cache evicted it: any async
    /// method (`refresh`, `begin`) reloads it.
    pub fn state(&self) -> EngineResult<Rc<SessionState>> {
        self.shared.check_open()?;
        self.shared.cache.touch(&self.slot, self.shared.now());
        self.slot.state().ok_or_else(|| {
            if self.slot.forgotten.get() {
                return EngineError::NotFound(format!(
                    "session \"{}\" was deleted (or created again) through this store since this Session \
                     object read it: open it again with store.open(id)",
                    self.id()
                ));
            }
            let limits = self.shared.cache.limits();
            EngineError::Evicted {
                id: self.id().to_owned(),
                max_sessions: limits.max_sessions,
                max_bytes: limits.max_bytes,
            }
        })
    }

    fn with_agent<T>(&self, agent: Option<&str>, read: impl FnOnce(Option<&AgentState>) -> T) -> EngineResult<T> {
        let state = self.state()?;
        Ok(read(state.agent(agent.unwrap_or(DEFAULT_AGENT))))
    }

    pub fn messages(&self, agent: Option<&str>) -> EngineResult<Vec<Json>> {
        self.with_agent(agent, |a| a.map(|a| a.messages.clone()).unwrap_or_default())
    }

    /// How many messages `agent` has (reads that cache parsed messages take only the new tail).
    pub fn message_count(&self, agent: Option<&str>) -> EngineResult<usize> {
        self.with_agent(agent, |a| a.map_or(0, |a| a.messages.len()))
    }

    /// One state value of `agent` (no copy of the others).
    pub fn value(&self, agent: Option<&str>, key: &str) -> EngineResult<Option<Json>> {
        self.with_agent(agent, |a| a.and_then(|a| a.state.get(key).cloned()))
    }

    pub fn values(&self, agent: Option<&str>) -> EngineResult<BTreeMap<String, Json>> {
        self.with_agent(agent, |a| a.map(|a| a.state.clone()).unwrap_or_default())
    }

    /// The snapshot record at `at` without its messages (segments and counts), and whether its
    /// state holds its values: the one this view remembers (it does), or read (a snapshot another
    /// store wrote since this view was loaded: it does not, unless they are inline in the record).
    pub(crate) async fn snapshot_meta(&self, at: Option<SnapshotRef>) -> EngineResult<Option<(Rc<Snapshot>, bool)>> {
        let Some(at) = at else { return Ok(None) };
        let known = self.slot.view.borrow().snapshot.clone();
        if let Some(known) = known.filter(|s| s.version == at.version && s.token == at.token) {
            return Ok(Some((known, true)));
        }
        let mut snapshot = load::read_snapshot(&*self.shared.store, self.id(), at).await?;
        snapshot.state = load::compactions_of(&snapshot.state);
        Ok(Some((Rc::new(snapshot), false)))
    }

    /// The [`Previous`] of a snapshot from [`Session::snapshot_meta`].
    pub(crate) fn previous_of(meta: &Option<(Rc<Snapshot>, bool)>) -> Option<Previous<'_>> {
        meta.as_ref().map(|(snapshot, known)| Previous { snapshot, values: known.then_some(&snapshot.state) })
    }

    /// Remembers the newest snapshot with its state values (its messages dropped: the segments hold
    /// them), which the next snapshot compares the state with.
    pub(crate) fn remember_snapshot(&self, mut snapshot: Snapshot) {
        for agent_state in snapshot.state.agents.values_mut() {
            agent_state.messages = Vec::new();
        }
        self.slot.view.borrow_mut().snapshot = Some(Rc::new(snapshot));
    }

    /// Frees this store's cached view of the session now, unless an invocation of it is running;
    /// the next async use of any `Session` of the id loads it again.
    pub fn dispose(&self) {
        self.shared.cache.evict(&self.slot);
    }

    /// Reloads the latest committed version (only the batches this view lacks). A record the head
    /// named that is gone when read was taken by another store's delete or prune meanwhile: the
    /// refresh starts again on the head as it is now (as `open` does; the error stays if it persists).
    pub async fn refresh(&self) -> EngineResult<()> {
        self.shared.check_open()?;
        let head_key = keys::head_key(self.id());
        let mut missing = None;
        for _ in 0..3 {
            let Some(entry) = self.shared.store.get(&head_key).await? else {
                return Err(self.deleted());
            };
            match self.catch_up_to(&head_key, entry).await {
                Err(error) if error.is_corrupt_record() => missing = Some(error),
                caught_up => return caught_up,
            }
        }
        Err(missing.unwrap_or_else(|| EngineError::Conflict(self.id().to_owned())))
    }

    /// Brings the view to the stored head `entry`. A head whose store version is the one the view
    /// was built from is not decoded again: versions are never reused, even across a delete.
    pub(crate) async fn catch_up_to(&self, head_key: &str, entry: Entry) -> EngineResult<()> {
        let current = {
            let view = self.slot.view.borrow();
            view.version == entry.version && view.state.is_some()
        };
        if current {
            self.shared.cache.touch(&self.slot, self.shared.now());
            return Ok(());
        }
        let head = codec::decode_head(head_key, &entry.value)?;
        self.catch_up(head, entry.version).await
    }

    pub(crate) async fn read_head(&self) -> EngineResult<(Head, Version)> {
        self.shared.check_open()?;
        load::read_head(&*self.shared.store, self.id()).await?.ok_or_else(|| self.deleted())
    }

    /// Brings the shared view to `head`: only the batches it lacks, or a whole load when its state
    /// was evicted, is too old for the head to name what it lacks, or belongs to an earlier session
    /// of the same id (deleted and created again). Loads are awaited before the view changes, and
    /// the view is checked again after them (another `Session` of the id may have moved it).
    pub(crate) async fn catch_up(&self, head: Head, version: Version) -> EngineResult<()> {
        self.catch_up_loaded(head, version, None).await
    }

    /// [`Session::catch_up`], given what a whole load of `head` read (the state at it and its
    /// snapshot), used instead of reading it again if a whole load is what the view needs.
    pub(crate) async fn catch_up_loaded(
        &self,
        mut head: Head,
        mut version: Version,
        mut loaded: Option<(SessionState, Option<Snapshot>)>,
    ) -> EngineResult<()> {
        let (cache, store) = (&self.shared.cache, &*self.shared.store);
        let supported = self.shared.config.schema_version;
        // Whether the view is of an earlier session of the id (deleted and created again), proven
        // by a head read after the view's version that is older than it.
        let mut earlier = false;
        loop {
            // A session of an older application schema is loaded whole and shown migrated.
            let migrating = schema::needs_migration(&head, supported)?;
            let (from, generation, extendable) = self.extendable(&head);
            let extendable = extendable && !migrating && !earlier;
            if extendable && from > head.version {
                // The view is newer than the head read: our own commit landed while it was read,
                // when the view has the head's last commit under the same token. Otherwise (at
                // version 0 there is none; the view's commits since its snapshot may not list it) it
                // may be of an earlier session deleted since (one created again within the same
                // millisecond has its createdAt): read the head again; still older than the view, it
                // is of a new session.
                let proven = self
                    .slot
                    .view
                    .borrow()
                    .head
                    .commit_token(head.version)
                    .is_some_and(|t| head.commit_token(head.version) == Some(t));
                if proven {
                    return Ok(());
                }
                (head, version) = self.read_head().await?;
                earlier = head.version < from;
                loaded = None;
                continue;
            }
            if extendable && from < head.version {
                let batches = load::batches_after(store, self.id(), &head, from, head.version).await?;
                if self.extendable(&head) != (from, generation, true) {
                    continue;
                }
                let (mut added, mut removed) = (0, 0);
                let mut state = self.slot.view.borrow_mut().state.take().unwrap_or_default();
                let folded = Rc::make_mut(&mut state);
                for batch in &batches {
                    let (more, fewer) = apply_counted(folded, &batch.events);
                    added += more;
                    removed += fewer;
                }
                let bytes = self.slot.view.borrow().bytes;
                cache.hold(&self.slot, state, bytes.saturating_sub(removed) + added, false, self.shared.now());
            } else if !extendable {
                // A view holding another session of the id than `head`'s may hold the newer one
                // (created again after a delete, once `head` was read): the head is read again
                // after the load, and a load of a deleted session is not installed.
                let other_session = {
                    let view = self.slot.view.borrow();
                    view.state.is_some() && !same_session(&view.head, &head)
                };
                let before = self.stamp();
                let (state, snapshot) = match loaded.take() {
                    Some(loaded) => loaded,
                    None => load::load_state(store, self.id(), &head).await?,
                };
                let (now_from, _, now_extendable) = self.extendable(&head);
                if now_extendable && now_from > head.version && !earlier {
                    return Ok(());
                }
                if self.stamp() != before {
                    // Another use of the view moved it while this load was read (a commit, or a load
                    // of a session created again under the id since `head` was read): what was read
                    // may be of a deleted session. Start again from the head as it is now.
                    (head, version) = self.read_head().await?;
                    earlier = false;
                    continue;
                }
                if other_session {
                    let (now_head, now_version) = self.read_head().await?;
                    if now_version != version || self.stamp() != before {
                        (head, version) = (now_head, now_version);
                        earlier = false;
                        continue;
                    }
                }
                let state = match migrating {
                    true => {
                        let migrate = self.shared.migrate.borrow().clone();
                        schema::migrate_state(
                            migrate.as_deref(),
                            &self.shared.config.limits,
                            &state,
                            head.schema,
                            supported,
                        )?
                    }
                    false => state,
                };
                let bytes = state_bytes(&state);
                cache.hold(&self.slot, Rc::new(state), bytes, true, self.shared.now());
                if let Some(snapshot) = snapshot {
                    self.remember_snapshot(snapshot);
                }
            }
            let mut view = self.slot.view.borrow_mut();
            view.head = head;
            view.version = version;
            drop(view);
            cache.touch(&self.slot, self.shared.now());
            return Ok(());
        }
    }

    /// Whether the view holds the state at `head`'s commit (of this session).
    pub(crate) fn holds(&self, head: &Head) -> bool {
        let view = self.slot.view.borrow();
        view.state.is_some() && view.head.version == head.version && same_session(&view.head, head)
    }

    /// What a change of the view changes: its head's version and creation time, its store version
    /// and its generation (an eviction changes none of them).
    fn stamp(&self) -> (u64, u64, Version, u64) {
        let view = self.slot.view.borrow();
        (view.head.version, view.head.created_at, view.version.clone(), view.generation)
    }

    /// The view's version and generation, and whether its state can be brought to `head` by
    /// applying the batches after it (held, of the same session, and not older than the batches
    /// `head` still names).
    fn extendable(&self, head: &Head) -> (u64, u64, bool) {
        let view = self.slot.view.borrow();
        let same_session = same_session(&view.head, head);
        let named = view.head.version >= head.snapshot_version() || view.head.version > head.version;
        (view.head.version, view.generation, view.state.is_some() && same_session && named)
    }

    /// Takes the guard: fails fast with `ConcurrencyError` unless `options.wait_ms` is given. The
    /// store is told now, at the call, that the lease's write of the head follows
    /// ([`store::Store::prepare_write`]), unless this instance already holds or is taking the lease.
    pub fn begin(
        self: &Rc<Self>,
        options: BeginOptions,
    ) -> impl Future<Output = EngineResult<Rc<Invocation>>> + 'static {
        let shared = &self.shared;
        // (try_borrow: a hint is not worth a panic, should a host callback ever call in mid-update.)
        let free = shared
            .marks
            .try_borrow()
            .is_ok_and(|marks| guard::check_mark(marks.get(self.id()), &shared.config.owner, shared.now()).is_ok());
        if free {
            self.prepare_head_write();
        }
        let session = self.clone();
        async move {
            let intent = if options.resume.is_some() { Intent::Resume } else { Intent::Begin };
            session.acquire(intent, options).await
        }
    }

    /// Tells the store that a read-then-write of this session's head follows within this task
    /// ([`store::Store::prepare_write`]): a lease's, a commit's or a checkpoint's.
    pub(crate) fn prepare_head_write(&self) {
        self.shared.store.prepare_write(&keys::head_key(self.id()));
    }

    pub(crate) async fn acquire(
        self: &Rc<Self>,
        intent: Intent,
        options: BeginOptions,
    ) -> EngineResult<Rc<Invocation>> {
        self.shared.check_open()?;
        if let Some(agent) = &options.agent {
            limits::check_name("an agent name", agent)?;
        }
        if let Some(traceparent) = &options.traceparent {
            limits::check_traceparent(traceparent)?;
        }
        if let Some(answer) = &options.resume {
            // The answer is staged as the turn's first event: it alone must fit in a commit.
            self.shared.config.limits.check_commit(answer.len())?;
        }
        let deadline = options.wait_ms.map(|wait| self.shared.now().saturating_add(wait));
        loop {
            match self.try_acquire(intent, &options).await {
                Err(EngineError::Core(CoreError::Concurrency { holder, retry_after_ms })) => {
                    self.shared.emit(&|| StoreEvent {
                        kind: "lease.denied",
                        session: self.id().to_owned(),
                        owner: Some(holder.clone()),
                        ..Default::default()
                    });
                    match guard::retry_pause(retry_after_ms, deadline, self.shared.now()) {
                        // Woken sooner by news of the session in this realm (a commit, a release, a
                        // commit notice from another tab), which may have ended the holder's turn.
                        Some(pause) => {
                            self.shared.env.wait(self.id(), pause, None).await;
                            // A store closed meanwhile takes no lease (its close woke this wait).
                            self.shared.check_open()?;
                        }
                        None => return Err(CoreError::Concurrency { holder, retry_after_ms }.into()),
                    }
                }
                // Refused by the stored head's status (another process interrupted, resumed,
                // closed or expired the session): the view is brought to that head, so that
                // `status` tells the caller what to do next, as the error does.
                Err(
                    refusal @ EngineError::Core(
                        CoreError::InvalidTransition { .. }
                        | CoreError::SessionClosed { .. }
                        | CoreError::SessionExpired { .. },
                    ),
                ) => {
                    let _ = self.refresh().await;
                    return Err(refusal);
                }
                // A lease taken as the store closed: given back at once, not left for leaseMs.
                Ok(invocation) if self.shared.check_open().is_err() => {
                    let _ = invocation.abort().await;
                    return Err(EngineError::StoreClosed);
                }
                other => return other,
            }
        }
    }

    async fn try_acquire(self: &Rc<Self>, intent: Intent, options: &BeginOptions) -> EngineResult<Rc<Invocation>> {
        let shared = &self.shared;
        let config = &shared.config;
        // The busy check and the busy mark are one synchronous step, before the first await.
        let mut checked_head = false;
        loop {
            let refused = {
                let now = shared.now();
                let mut marks = shared.marks.borrow_mut();
                match guard::check_mark(marks.get(self.id()), &config.owner, now) {
                    Ok(()) => {
                        marks.insert(self.id().to_owned(), Mark::pending(now, config.lease_ms));
                        None
                    }
                    Err(refusal) => Some((refusal, marks.get(self.id()).copied())),
                }
            };
            let Some((refusal, mark)) = refused else { break };
            let Some(mark) = mark.filter(|_| !checked_head) else { return Err(refusal.into()) };
            checked_head = true;
            let head = load::read_head(&*shared.store, self.id()).await?;
            if mark.token.is_none() {
                // This realm's own begin is still taking its lease: what the head refuses is the
                // truer answer; otherwise the mark, checked again, says how that begin ended.
                let Some((head, _)) = head else { return Err(self.deleted()) };
                let decision = self.decide(&head, intent, None, shared.now(), "");
                if let Some(refusal) = guard::refusal_beside_pending(decision) {
                    return Err(refusal.into());
                }
                continue;
            }
            if let Some((head, _)) = &head {
                let decision = self.decide(head, intent, None, shared.now(), "");
                if let Some(refusal) = guard::refusal_beside_held(head, decision, shared.now()) {
                    return Err(refusal.into());
                }
            }
            // A mark of a held lease may have outlived it (fenced by a stop, taken over): the head says.
            if !head.is_none_or(|(head, _)| guard::mark_outlived(&mark, &head, shared.now())) {
                return Err(refusal.into());
            }
            shared.clear_mark(self.id(), mark.token);
        }
        let pending = PendingMark { shared, id: self.id(), armed: true };
        let head_key = keys::head_key(self.id());
        let invocation_id = crate::engine::random_id(&*shared.env);
        // Counted before the lease is written: a stop of this turn can only wake after it.
        let wakes_at_begin = shared.env.wakes();
        let (leased, new_version, now, cleared) = match self.lease(intent, &head_key, &invocation_id).await {
            // A write that failed or timed out may have landed: then the lease is ours, and
            // reporting the failure would leave the session held by nobody until it runs out.
            Err(error @ EngineError::Store(_)) => match self.own_lease(&invocation_id).await {
                Ok(Some(held)) => held,
                _ => {
                    // Not there when read back, or not known: it may land yet.
                    shared.remember_orphan(self.id(), invocation_id);
                    return Err(error);
                }
            },
            other => other?,
        };
        // The live logs of earlier turns are readable until this one begins: deleted with the lease
        // where the store could (IndexedDB), else beside this turn's first write (no round trip of
        // their own on a KV store).
        let stale = if cleared { Vec::new() } else { self.stale_live_logs(&leased, leased.last_token) };
        // Validate the cached view against the head we just leased, loading only what it lacks. A
        // record it names that is gone was taken by a delete since the lease: the session is gone.
        if let Err(error) = self.catch_up(leased.clone(), new_version.clone()).await {
            let error = self.pruned_or(error, 0).await;
            if let Some(released) = guard::release(&leased, leased.last_token) {
                // The release is this turn's first and last write: the head it writes no longer
                // tells of the turn before, so that turn's live log goes beside it.
                let release =
                    shared.store.put(&head_key, crate::engine::head_value(&released), Expect::Version(new_version));
                let _ = store::beside_deletes(&*shared.store, release, stale).await;
            }
            return Err(error);
        }
        let token = leased.last_token;
        shared.forget_orphan(self.id());
        if let Some(mark) = Mark::after(&leased, token) {
            shared.marks.borrow_mut().insert(self.id().to_owned(), mark);
        }
        pending.disarm();
        let mut staged = Vec::new();
        if let (Intent::Resume, Some(answer)) = (intent, &options.resume) {
            staged.push(Event::Resume { data: answer.clone() });
        }
        let invocation = Invocation::new(
            self.clone(),
            invocation_id,
            token,
            options.agent.clone().unwrap_or_else(|| DEFAULT_AGENT.to_owned()),
            options.traceparent.clone(),
            leased,
            new_version,
            staged,
            now,
            wakes_at_begin,
        );
        invocation.live.delete_with_first_write(stale);
        shared.emit(&|| StoreEvent {
            kind: "lease.acquired",
            session: self.id().to_owned(),
            version: Some(self.version()),
            token: Some(token),
            owner: Some(config.owner.clone()),
            traceparent: options.traceparent.clone(),
            ..Default::default()
        });
        Ok(invocation)
    }

    /// Writes a head carrying a new lease for this store: the new head, its store version and the
    /// clock of the decision. The guard decides ([`guard::decide_acquire`]); this loop only finds
    /// the head to decide on, cheapest first: the cached head (one compare-and-set when it is
    /// current), then the head a refused compare-and-set reported, then a read-modify-write of the
    /// stored head (one IndexedDB transaction). When the guard asks whether a live lease's holder
    /// is still alive, the host is asked (Web Locks) and the guard decides again with its answer.
    /// Also tells whether the write deleted the live logs the new turn makes stale.
    async fn lease(
        &self,
        intent: Intent,
        head_key: &str,
        invocation: &str,
    ) -> EngineResult<(Head, Version, u64, bool)> {
        let shared = &self.shared;
        // Before a lease of this instance can exist, others must be able to see it alive.
        shared.env.hold_alive(&shared.instance);
        let mut source = {
            let view = self.slot.view.borrow();
            match view.state {
                Some(_) => HeadSource::Cached(Box::new(view.head.clone()), view.version.clone()),
                // An evicted view keeps a trimmed head (no commit tokens): decide on the stored one.
                None => HeadSource::Stored,
            }
        };
        let mut dead: Option<String> = None;
        loop {
            let now = shared.now();
            let mut cleared = false;
            let (decision, written) = match source {
                HeadSource::Cached(head, version) => {
                    let decision = self.decide(&head, intent, dead.as_deref(), now, invocation);
                    let written = match &decision {
                        // The live logs of earlier turns are readable until this one begins: deleted
                        // with the lease's write (one transaction on IndexedDB).
                        Acquire::Leased(leased) => Some(
                            shared
                                .store
                                .put_clearing(
                                    head_key,
                                    crate::engine::head_value(leased),
                                    Expect::Version(version),
                                    self.stale_live_prefixes(leased),
                                )
                                .await?,
                        ),
                        _ => None,
                    };
                    match written {
                        Some(Put::Written(version)) => {
                            cleared = shared.store.clears_in_put();
                            (decision, Some(version))
                        }
                        // Stale: decide on what the store reported, or read it.
                        Some(Put::Refused { current }) => {
                            // The cached head was stale: another store wrote since this one read it.
                            shared.emit(&|| StoreEvent {
                                kind: "conflict",
                                session: self.id().to_owned(),
                                ..Default::default()
                            });
                            source = current.map_or(HeadSource::Stored, HeadSource::Reported);
                            continue;
                        }
                        // The cached head refuses: confirm on the stored one before answering.
                        None => {
                            source = HeadSource::Stored;
                            continue;
                        }
                    }
                }
                HeadSource::Reported(current) => {
                    let decision =
                        self.decide_on(head_key, current.as_ref(), intent, dead.as_deref(), now, invocation)?;
                    let written = match &decision {
                        Acquire::Leased(leased) => {
                            let expect = current.map_or(Expect::Absent, |entry| Expect::Version(entry.version));
                            match shared.store.put(head_key, crate::engine::head_value(leased), expect).await? {
                                Some(version) => Some(version),
                                None => {
                                    source = HeadSource::Stored; // raced again: decide on a fresh read
                                    continue;
                                }
                            }
                        }
                        _ => None,
                    };
                    (decision, written)
                }
                HeadSource::Stored => self.decide_on_stored(intent, head_key, dead.clone(), invocation).await?,
            };
            match decision {
                Acquire::Leased(leased) => {
                    let version = written.ok_or_else(|| EngineError::Conflict(self.id().to_owned()))?;
                    return Ok((leased, version, now, cleared));
                }
                Acquire::AskIfAlive { instance, refusal } => {
                    if !self.shared.holder_gone(&instance).await {
                        return Err(refusal.into());
                    }
                    dead = Some(instance);
                    source = HeadSource::Stored;
                }
                Acquire::Refused(refusal) => return Err(refusal.into()),
                // The head decided on carries this begin's lease (rare: a client's retry of its write
                // was refused): read it again for its version.
                Acquire::Held => return self.own_lease(invocation).await?.ok_or_else(|| self.deleted()),
            }
        }
    }

    /// The stored head and its version when it carries the live lease of this store's begin of
    /// `invocation` (`guard::holds_own_lease`): a write of it that failed, timed out or was refused
    /// by the client's own retry was applied.
    async fn own_lease(&self, invocation: &str) -> EngineResult<Option<(Head, Version, u64, bool)>> {
        let shared = &self.shared;
        let Some((head, version)) = load::read_head(&*shared.store, self.id()).await? else { return Ok(None) };
        let now = shared.now();
        let holder = Holder { owner: &shared.config.owner, instance: &shared.instance, invocation };
        Ok(guard::holds_own_lease(&head, holder, now).then_some((head, version, now, false)))
    }

    /// The guard's decision on `head` by the clock `now`.
    fn decide(&self, head: &Head, intent: Intent, dead: Option<&str>, now: u64, invocation: &str) -> Acquire {
        let config = &self.shared.config;
        let holder = Holder { owner: &config.owner, instance: &self.shared.instance, invocation };
        let orphan = self.shared.orphan_of(self.id());
        let orphaned = guard::orphaned_instance(head, holder, orphan.as_deref(), now);
        guard::decide_acquire(head, intent, holder, now, config.lease_ms, dead.or(orphaned))
    }

    /// The guard's decision on the stored head `entry`: a session deleted meanwhile is not found,
    /// a head that does not decode is a corrupt record.
    fn decide_on(
        &self,
        head_key: &str,
        entry: Option<&Entry>,
        intent: Intent,
        dead: Option<&str>,
        now: u64,
        invocation: &str,
    ) -> EngineResult<Acquire> {
        let entry = entry.ok_or_else(|| self.deleted())?;
        let head = codec::decode_head(head_key, &entry.value)?;
        Ok(self.decide(&head, intent, dead, now, invocation))
    }

    /// The error of a session whose head is gone: it was deleted, or the backend lost it (a Redis
    /// restarted without its data), which the store cannot tell apart.
    pub(crate) fn deleted(&self) -> EngineError {
        EngineError::NotFound(format!(
            "session \"{}\" was deleted (by delete(), sweepExpired() or another process), or the backend lost it; open it again to start it anew",
            self.id()
        ))
    }

    /// One read-modify-write of the head in which the guard decides (one IndexedDB transaction, by
    /// the clock at the moment of the decision): the decision and the version written.
    async fn decide_on_stored(
        &self,
        intent: Intent,
        head_key: &str,
        dead: Option<String>,
        invocation: &str,
    ) -> EngineResult<(Acquire, Option<Version>)> {
        // The store calls the decision from inside its transaction and keeps only the bytes to
        // write: the decision itself comes back through this cell.
        let decided: Rc<RefCell<Option<EngineResult<Acquire>>>> = Rc::default();
        let decide_now = {
            let (session, decided, head_key) = (self.detached(), decided.clone(), head_key.to_owned());
            let invocation = invocation.to_owned();
            Box::new(move |entry: Option<&Entry>| {
                let now = session.shared.now();
                let decision = session.decide_on(&head_key, entry, intent, dead.as_deref(), now, &invocation);
                let write = match &decision {
                    Ok(Acquire::Leased(leased)) => Decision::Write(crate::engine::head_value(leased)),
                    _ => Decision::Keep,
                };
                *decided.borrow_mut() = Some(decision);
                write
            })
        };
        let written = self.shared.store.update(head_key, decide_now).await?;
        let decision = decided.borrow_mut().take().ok_or_else(|| EngineError::Conflict(self.id().to_owned()))??;
        Ok((decision, written))
    }

    /// A `Session` sharing this one's store and view (for callbacks that must be `'static`).
    fn detached(&self) -> Session {
        Session { shared: self.shared.clone(), slot: self.slot.clone() }
    }

    /// Begins, runs `body`, and commits what it staged; if `body` fails (or the commit does), aborts
    /// and returns the failure. The guard is released on every path. `body` may end the invocation
    /// itself (commit, interrupt or abort); then nothing more is written.
    pub async fn invoke<T, E, F, Fut>(self: &Rc<Self>, options: BeginOptions, body: F) -> Result<T, InvokeError<E>>
    where
        F: FnOnce(Rc<Invocation>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let invocation = self.begin(options).await.map_err(InvokeError::Engine)?;
        let outcome = body(invocation.clone()).await;
        let committed = match &outcome {
            Ok(_) if !invocation.is_ended() => invocation.commit().await.map(|_| ()),
            // The lease was lost while the body ran (a failed heartbeat): its writes are not there.
            Ok(_) if invocation.is_lost() => Err(CoreError::LeaseLost { token: invocation.token() }.into()),
            _ => Ok(()),
        };
        if !invocation.is_ended() {
            // The body failed, or the commit failed with the invocation still open: release.
            let _ = invocation.abort().await;
        }
        match (outcome, committed) {
            (Err(error), _) => Err(InvokeError::Body(error)),
            (Ok(_), Err(error)) => Err(InvokeError::Engine(error)),
            (Ok(value), Ok(())) => Ok(value),
        }
    }

    /// Closes the session for good: takes the guard like `begin`, then commits a `closed` event.
    pub async fn close(self: &Rc<Self>) -> EngineResult<u64> {
        let invocation = self.acquire(Intent::Close, BeginOptions::default()).await?;
        invocation.close().await
    }

    fn check_version(&self, head: &Head, version: u64) -> EngineResult<()> {
        if version < head.retained {
            return Err(EngineError::NotFound(format!(
                "version {version} of session \"{}\" was pruned; the oldest version kept is {}",
                self.id(),
                head.retained
            )));
        }
        if version > head.version {
            return Err(EngineError::NotFound(format!(
                "session \"{}\" has no version {version}; its latest version is {}",
                self.id(),
                head.version
            )));
        }
        Ok(())
    }

    /// The state as of `version`.
    pub async fn at(&self, version: u64) -> EngineResult<SessionView> {
        let (head, head_version) = self.read_head().await?;
        self.check_version(&head, version)?;
        if version == head.version {
            let token = head.commit_token(version);
            self.catch_up(head.clone(), head_version).await?;
            // The cached view, unless another call moved it past `version` while this one waited.
            if self.has_commit(version, token) {
                return Ok(SessionView {
                    id: self.id().to_owned(),
                    version,
                    status: head.committed_status(),
                    state: self.state()?,
                });
            }
        }
        let (state, last) = match load::state_at(&*self.shared.store, self.id(), &head, version).await {
            Ok(read) => read,
            Err(error) => return Err(self.pruned_or(error, version).await),
        };
        // A version only a stop's event made has the status of the one before (read back until one
        // says; a version pruned since says nothing more).
        let (mut ending, mut at) = (last, version);
        while lifecycle::keeps_status(&ending) && at > 1 {
            at -= 1;
            match load::batches_after(&*self.shared.store, self.id(), &head, at - 1, at).await {
                Ok(mut batches) if batches.len() == 1 => {
                    ending = batches.pop().map(|batch| batch.events).unwrap_or_default()
                }
                _ => break,
            }
        }
        let status = lifecycle::status_at(&ending);
        Ok(SessionView { id: self.id().to_owned(), version, status, state: Rc::new(state) })
    }

    /// Events of versions `from..=to` (defaults: the oldest kept and the latest) in commit order.
    pub async fn history(&self, from: Option<u64>, to: Option<u64>) -> EngineResult<Vec<HistoryEvent>> {
        Ok(self.history_with_metadata(from, to).await?.0)
    }

    /// [`Session::history`], with the metadata of the head it was read on (its `created` event's
    /// data): not the cached view's, which may be of a session since deleted and created again.
    pub async fn history_with_metadata(
        &self,
        from: Option<u64>,
        to: Option<u64>,
    ) -> EngineResult<(Vec<HistoryEvent>, Option<Json>)> {
        loop {
            let (head, _) = self.read_head().await?;
            // Without `from`, from the oldest version kept (a pruned session has no earlier ones).
            let first = from.unwrap_or(head.retained);
            let last = to.unwrap_or(head.version);
            // Only a range the caller gave whole can be out of order; a bound left out is the kept
            // range's, so a given one beyond it is a version that is not there (pruned, or not yet).
            if let (Some(from), Some(to)) = (from, to) {
                if from > to {
                    return Err(CoreError::invalid(
                        Some("from"),
                        format!("history: from ({from}) must not be greater than to ({to})"),
                    )
                    .into());
                }
            }
            self.check_version(&head, last)?;
            self.check_version(&head, first)?;
            match load::history(&*self.shared.store, self.id(), &head, first, last).await {
                Err(error) => match self.pruned_or(error, first).await {
                    // Everything kept was asked for: what is kept now.
                    EngineError::NotFound(_) if from.is_none() => continue,
                    error => return Err(error),
                },
                read => return Ok((read?, head.metadata)),
            }
        }
    }

    /// What a read of versions from `first` on, on a head read before it, failed with: a record that
    /// another store's prune or delete took meanwhile is missing (a `CorruptRecordError`), and then
    /// the head keeps versions from after `first` on, or is gone: the `NotFoundError` of a pruned
    /// version or of the deleted session. Otherwise `error`.
    pub(crate) async fn pruned_or(&self, error: EngineError, first: u64) -> EngineError {
        if !error.is_corrupt_record() {
            return error;
        }
        match self.read_head().await {
            Ok((head, _)) => self.check_version(&head, first).err().unwrap_or(error),
            Err(deleted @ EngineError::NotFound(_)) => deleted,
            Err(_) => error,
        }
    }

    /// A new session holding this one's state as of `at` (default: latest). Its history starts with
    /// a `forked` event naming the source, followed by the copied messages and state.
    pub async fn fork(
        self: &Rc<Self>,
        store: &SessionStore,
        new_id: Option<String>,
        at: Option<u64>,
    ) -> EngineResult<Rc<Session>> {
        let (head, _) = self.read_head().await?;
        lifecycle::transition(head.effective_status(self.shared.now()), Action::Fork)?;
        let version = at.unwrap_or(head.version);
        let source = self.at(version).await?;
        let state = self.in_schema_of(store, &head, version, source.state).await?;
        let new_id = new_id.unwrap_or_else(|| store.new_id());
        limits::check_name("a session id", &new_id)?;
        let events: Vec<Event> = std::iter::once(Event::forked(self.id(), version)).chain(state.to_events()).collect();
        // The fork is one commit in `store`, version 1 of a new session: refused before anything is
        // written, and written whole (head and batch at once) or not at all.
        store.shared.config.limits.check_fork(events.iter().map(Event::weight).sum())?;
        // A new session's head, at version 1 with its one commit.
        let mut fork = store.new_head(&OpenOptions { metadata: head.metadata.clone(), ..Default::default() });
        let (token, now) = (fork.last_token, fork.created_at);
        fork.version = 1;
        fork.commits = Commits::repeated(token, 1);
        let invocation = crate::engine::random_id(&*store.shared.env);
        let batch = Batch { version: 1, token, at: now, invocation, traceparent: None, events };
        let records = vec![(keys::batch_key(&new_id, 1, token), codec::encode_batch(&batch))];
        store.create_whole(&new_id, &fork, records).await?.ok_or_else(|| {
            CoreError::invalid(
                Some("id"),
                format!("fork: a session with id \"{new_id}\" already exists; pass another id or none"),
            )
            .into()
        })
    }

    /// `state`, as committed at `version`, in the application schema of `store`, which a fork is
    /// written under: an old version committed under an older schema than `store`'s is migrated, as
    /// the session's own view is (the latest version's view already is). Finding the schema of an old
    /// version reads the batches after it, once the session was ever committed under a schema.
    async fn in_schema_of(
        &self,
        store: &SessionStore,
        head: &Head,
        version: u64,
        state: Rc<SessionState>,
    ) -> EngineResult<Rc<SessionState>> {
        let supported = store.shared.config.schema_version;
        if version == head.version {
            return Ok(state);
        }
        let from = match head.schema {
            0 => 0, // never committed under a schema
            _ => {
                let later = load::history(&*self.shared.store, self.id(), head, version + 1, head.version).await?;
                schema::schema_at(later.iter().filter_map(|e| e.event.as_ref()), head.schema)
            }
        };
        if from > supported {
            return Err(EngineError::SchemaVersion { stored: from, supported });
        }
        if from == supported {
            return Ok(state);
        }
        let migrate = store.shared.migrate.borrow().clone();
        let limits = &store.shared.config.limits;
        Ok(Rc::new(schema::migrate_state(migrate.as_deref(), limits, &state, from, supported)?))
    }

    /// Tells this store's listeners (and, through them, the other realms of a browser-shared store)
    /// of a head this store wrote that changed the session's version or status.
    pub(crate) fn announce(&self, version: u64, status: Status) {
        let token = self.slot.view.borrow().head.commit_token(version);
        self.shared.notify(&Change { id: self.id().to_owned(), version, status, token, remote: false });
    }

    /// Whether the view is at `version`, made by the commit of `token` (when given).
    pub(crate) fn has_commit(&self, version: u64, token: Option<u64>) -> bool {
        let view = self.slot.view.borrow();
        view.head.version == version && token.is_none_or(|token| view.head.commit_token(version) == Some(token))
    }

    /// Calls `listener` after each commit of this session made through this store.
    pub fn on_change(&self, listener: Rc<dyn Fn(&Change)>) -> u64 {
        self.shared.subscribe(Some(self.id().to_owned()), listener)
    }

    pub fn off_change(&self, subscription: u64) {
        self.shared.unsubscribe(subscription);
    }
}

/// Whether heads `a` and `b` are of the same session, not one and a successor created under its id
/// after a delete: the same creation time, and the commit the older is at has the same fencing token
/// in both where both still name it (tokens start at a random base; a head names the tokens since
/// its snapshot).
pub(crate) fn same_session(a: &Head, b: &Head) -> bool {
    let at = a.version.min(b.version);
    let tokens_agree = match (a.commit_token(at), b.commit_token(at)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    a.created_at == b.created_at && (at == 0 || tokens_agree)
}

/// Where `lease` finds the head the guard decides on.
enum HeadSource {
    /// The view's head and its store version (current unless another store wrote since).
    Cached(Box<Head>, Version),
    /// What a refused compare-and-set reported the stored head to be.
    Reported(Option<Entry>),
    /// Read it, inside the store's read-modify-write.
    Stored,
}

/// Why `invoke` failed: the engine, or the body (returned as it was).
#[derive(Debug)]
pub enum InvokeError<E> {
    Engine(EngineError),
    Body(E),
}

/// Clears a pending busy mark when `try_acquire` fails or is dropped before it holds a lease.
struct PendingMark<'a> {
    shared: &'a Shared,
    id: &'a str,
    armed: bool,
}

impl PendingMark<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for PendingMark<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.clear_mark(self.id, None);
        }
    }
}
