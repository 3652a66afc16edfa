//! `Invocation`: holds the guard; the only way to change a session.
//!
//! Staged events live here until `commit`, `checkpoint` or `interrupt` writes them as one batch at
//! the next version under this invocation's fencing token, and compare-and-sets the head.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use crate::core::error::Phase;
use crate::core::guard::{self, Mark, Outcome};
use crate::core::live::{self, Flush};
use crate::core::snapshot::next_snapshot;
use crate::core::{codec, keys, limits, Batch, CoreError, Event, Head, Interrupt, Json, Status, TurnOutcome};
use crate::engine::cache::{apply_counted, events_bytes};
use crate::engine::error::EngineResult;
use crate::engine::live::{Emitted, LiveLog};
use crate::engine::load;
use crate::engine::schema;
use crate::engine::session::{same_session, Session};
use crate::engine::store::StoreEvent;
use crate::engine::EngineError;
use crate::store::{self, budget, Expect, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    Committing,
    Committed,
    Aborted,
    /// The lease expired or was taken. `reported` once a caller has been told with `LeaseLost`;
    /// after that, calls are refused as `InvalidTransition` from "lease-lost".
    Lost {
        reported: bool,
    },
}

struct State {
    stage: Stage,
    /// The head as this invocation last wrote or read it, with its store version.
    head: Head,
    version: Version,
    staged: Vec<Event>,
    staged_bytes: usize,
    /// A commit whose head write failed in a way that may still have applied it (the store errored,
    /// then the head could not be read back). Until a retry of the commit learns the outcome, nothing
    /// more may be staged: the retry must write exactly the same turn.
    uncertain: Option<Uncertain>,
    /// The version and the number of events of this invocation's last write that failed and was not
    /// there when read back. It may land yet (a write that timed out): a retry of the same turn (no
    /// event staged since: staging only appends) looks for it first, and a refusal of a retry is ours
    /// only when the turn is the same (else what is there is the earlier, shorter turn).
    failed_write: Option<(u64, usize)>,
    /// The events a checkpoint is writing, while it writes them: the invocation stays open for
    /// reads, staging and emitting meanwhile; reads see these (the session's view takes them in once
    /// written), and what is staged meanwhile goes to the next commit.
    in_flight: Option<Rc<Vec<Event>>>,
}

/// See [`State::uncertain`].
#[derive(Debug, Clone, Copy)]
struct Uncertain {
    /// The version the attempt wrote.
    version: u64,
    /// How many of the staged events, at the end, the attempt did not write: those staged while it
    /// was a checkpoint writing. When the retry finds the attempt applied, they are written after it.
    later: usize,
}

/// How one write of [`Invocation::finish`] ended: done, or a checkpoint whose outcome was not known
/// turned out applied, and the events staged after it (and `last`) are still to write.
enum Finished {
    Done(u64),
    Again(Option<Event>),
}

/// What [`Invocation::write`] wrote.
struct Written {
    head: Head,
    version: Version,
    snapshot: bool,
    /// The head it replaced (`None` when an earlier attempt turned out applied).
    base: Option<Head>,
    /// How many of the staged events, at the end, were not written (an earlier attempt that turned
    /// out applied wrote the others); `last`, after them, was not either when this is not 0.
    unwritten: usize,
}

impl State {
    /// The events not in the session's view yet, oldest first: those a checkpoint is writing, then
    /// those staged.
    fn pending(&self) -> [&[Event]; 2] {
        [self.in_flight.as_deref().map_or(&[], Vec::as_slice), &self.staged]
    }
}

/// Why an invocation's `signal` aborts (once, for the first of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `session.stop()` was called for this turn.
    Stop { reason: String, by: String },
    /// The lease expired or was taken over.
    LeaseLost { token: u64 },
    /// The invocation ended (commit, abort, interrupt).
    Ended,
    /// Its store was closed while it was open (nothing in flight): it can commit no more.
    StoreClosed,
}

type SignalHook = Box<dyn Fn(&Signal)>;

/// One guarded change of a session.
pub struct Invocation {
    session: Rc<Session>,
    id: String,
    token: u64,
    agent: String,
    traceparent: Option<String>,
    began_at: u64,
    /// The host's wake-up count before the lease was written ([`Env::wakes`]).
    wakes_at_begin: Option<u64>,
    /// How many of the wake-ups since were this invocation's own (its flushes and commits).
    own_wakes: Cell<u64>,
    state: RefCell<State>,
    /// Whether this invocation still pins its session's cached view (until it ends).
    pinned: Cell<bool>,
    /// The parts emitted for followers.
    pub(crate) live: LiveLog,
    /// Told why the `signal` aborts, once (the host's AbortController).
    signal: RefCell<Option<SignalHook>>,
    signaled: Cell<bool>,
    /// A way out (`commit`, `checkpoint`, `interrupt`, `abort`) was called and has not settled:
    /// another is refused until it has ([`Invocation::way_out`]).
    settling: Cell<bool>,
    /// The phase the caller's calls are refused from while a way out that ends the invocation
    /// (`commit`, `interrupt`, `abort`) settles: from its call on, not from when its write begins,
    /// so that what is staged after it is neither slipped into its commit nor silently dropped by
    /// its abort. `None` again if it fails and the invocation stays open.
    ending: Cell<Option<Phase>>,
    /// The session was deleted under this invocation (its head is gone): what the turn wrote is
    /// named by no head, and no later turn of the session deletes it ([`Invocation::sweep_deleted`]).
    deleted: Cell<bool>,
    /// The session's version when this invocation began, or as its last checkpoint left it: a fence
    /// of this turn is the version after it.
    last_version: Cell<u64>,
    /// The version of this invocation's last commit or checkpoint that wrote records (0: none).
    attempted: Cell<u64>,
}

impl Invocation {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        session: Rc<Session>,
        id: String,
        token: u64,
        agent: String,
        traceparent: Option<String>,
        head: Head,
        version: Version,
        staged: Vec<Event>,
        began_at: u64,
        wakes_at_begin: Option<u64>,
    ) -> Rc<Invocation> {
        let staged_bytes = staged.iter().map(Event::weight).sum();
        let last_version = Cell::new(head.version);
        let state = State {
            stage: Stage::Open,
            head,
            version,
            staged,
            staged_bytes,
            uncertain: None,
            failed_write: None,
            in_flight: None,
        };
        // The cached view stays loaded while this invocation may commit onto it.
        session.shared.cache.pin(&session.slot);
        Rc::new(Invocation {
            session,
            id,
            token,
            agent,
            traceparent,
            began_at,
            wakes_at_begin,
            own_wakes: Cell::new(0),
            state: RefCell::new(state),
            pinned: Cell::new(true),
            live: LiveLog::default(),
            signal: RefCell::new(None),
            signaled: Cell::new(false),
            settling: Cell::new(false),
            ending: Cell::new(None),
            deleted: Cell::new(false),
            attempted: Cell::new(0),
            last_version,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The size limits this invocation's stages are checked against.
    pub fn limits(&self) -> limits::Limits {
        self.session.shared.config.limits
    }

    pub fn token(&self) -> u64 {
        self.token
    }

    /// The agent this invocation's writes go to when no `agent` option is given.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    pub fn session(&self) -> &Rc<Session> {
        &self.session
    }

    /// Whether commit, interrupt or abort has ended this invocation (or its lease was lost).
    pub fn is_ended(&self) -> bool {
        !matches!(self.state.borrow().stage, Stage::Open | Stage::Committing)
    }

    /// Whether the heartbeat still has a lease to renew: the invocation is open and its store is not
    /// closed (`store.close()` refuses its commit; its lease then runs out by itself, or `abort()`
    /// releases it).
    pub fn wants_heartbeat(&self) -> bool {
        !self.is_ended() && self.session.shared.check_open().is_ok()
    }

    /// Whether the lease was lost (expired or taken): the invocation ended without writing.
    pub fn is_lost(&self) -> bool {
        matches!(self.state.borrow().stage, Stage::Lost { .. })
    }

    /// Whether the invocation is open, without telling anyone of a lease lost meanwhile.
    fn is_open(&self) -> bool {
        matches!(self.state.borrow().stage, Stage::Open)
    }

    /// `Ok` while the invocation is open. A lease lost in the background (a failed heartbeat) is
    /// reported as `LeaseLost` to the next call; an ended invocation refuses with `InvalidTransition`.
    fn check_open(&self, action: &'static str) -> Result<(), CoreError> {
        let mut state = self.state.borrow_mut();
        let from = match state.stage {
            Stage::Open => return Ok(()),
            Stage::Lost { reported: false } => {
                state.stage = Stage::Lost { reported: true };
                return Err(CoreError::LeaseLost { token: self.token });
            }
            Stage::Lost { reported: true } => Phase::LeaseLost,
            Stage::Committing => Phase::Committing,
            Stage::Committed => Phase::Committed,
            Stage::Aborted => Phase::Aborted,
        };
        Err(CoreError::InvalidTransition { from, action })
    }

    /// [`Invocation::check_open`] for a read: also while a checkpoint writes (it does not end the
    /// invocation, and a read sees what it writes).
    fn check_readable(&self, action: &'static str) -> Result<(), CoreError> {
        self.check_not_ending(action)?;
        let writing = self.state.borrow().in_flight.is_some();
        if writing {
            return Ok(());
        }
        self.check_open(action)
    }

    /// [`Invocation::check_open`] for staging and emitting: also while a checkpoint writes (a
    /// framework's next step runs while its last step's checkpoint is written; what it stages goes
    /// to the next commit, what it emits to the next flush).
    fn check_stageable(&self, action: &'static str) -> Result<(), CoreError> {
        self.check_not_ending(action)?;
        let writing = {
            let state = self.state.borrow();
            matches!(state.stage, Stage::Committing) && state.in_flight.is_some()
        };
        if writing {
            return Ok(());
        }
        self.check_open(action)
    }

    /// Refuses the caller's calls once a way out that ends the invocation was called.
    fn check_not_ending(&self, action: &'static str) -> Result<(), CoreError> {
        match self.ending.get() {
            Some(from) => Err(CoreError::InvalidTransition { from, action }),
            None => Ok(()),
        }
    }

    fn agent_or_default<'a>(&'a self, agent: Option<&'a str>) -> Result<&'a str, CoreError> {
        match agent {
            Some(agent) => {
                limits::check_name("an agent name", agent)?;
                Ok(agent)
            }
            None => Ok(&self.agent),
        }
    }

    fn stage(&self, event: Event) -> Result<(), CoreError> {
        let mut state = self.state.borrow_mut();
        if state.uncertain.is_some() {
            return Err(CoreError::InvalidTransition { from: Phase::Committing, action: "stage more events" });
        }
        let total = state.staged_bytes + event.weight();
        self.session.shared.config.limits.check_commit(total)?;
        state.staged_bytes = total;
        state.staged.push(event);
        Ok(())
    }

    /// Stages a message (JSON text), checked against the limits now.
    pub fn append_message(&self, data: Json, agent: Option<&str>) -> Result<(), CoreError> {
        self.check_stageable("appendMessage")?;
        let agent = self.agent_or_default(agent)?.to_owned();
        self.session.shared.config.limits.check_message(data.len())?;
        self.stage(Event::Message { agent, data })
    }

    pub fn set_state(&self, key: &str, data: Json, agent: Option<&str>) -> Result<(), CoreError> {
        self.check_stageable("setState")?;
        let agent = self.agent_or_default(agent)?.to_owned();
        limits::check_name("a state key", key)?;
        self.session.shared.config.limits.check_state_value(data.len())?;
        self.stage(Event::StateSet { agent, key: key.to_owned(), data })
    }

    pub fn delete_state(&self, key: &str, agent: Option<&str>) -> Result<(), CoreError> {
        self.check_stageable("deleteState")?;
        let agent = self.agent_or_default(agent)?.to_owned();
        limits::check_name("a state key", key)?;
        self.stage(Event::StateDelete { agent, key: key.to_owned() })
    }

    /// Committed messages with the staged appends and compactions applied (read your writes).
    pub fn messages(&self, agent: Option<&str>) -> EngineResult<Vec<Json>> {
        self.check_readable("messages")?;
        let agent = self.agent_or_default(agent)?;
        let mut messages = self.session.messages(Some(agent))?;
        let state = self.state.borrow();
        for event in state.pending().into_iter().flatten() {
            match event {
                Event::Message { agent: a, data } if a == agent => messages.push(data.clone()),
                Event::Compacted { agent: a, before, summary } if a == agent => {
                    let cut = (*before as usize).min(messages.len());
                    messages.splice(..cut, summary.iter().cloned());
                }
                _ => {}
            }
        }
        Ok(messages)
    }

    /// Only the staged messages of `agent` (reads that cache the committed ones add these), or
    /// `None` when a compaction of its messages is staged (then read [`Invocation::messages`]).
    pub fn staged_messages(&self, agent: Option<&str>) -> Result<Option<Vec<Json>>, CoreError> {
        self.check_readable("messages")?;
        let agent = self.agent_or_default(agent)?;
        let state = self.state.borrow();
        let mut staged = Vec::new();
        for event in state.pending().into_iter().flatten() {
            match event {
                Event::Message { agent: a, data } if a == agent => staged.push(data.clone()),
                Event::Compacted { agent: a, .. } if a == agent => return Ok(None),
                _ => {}
            }
        }
        Ok(Some(staged))
    }

    /// Stages the replacement of `agent`'s first `before` messages (as this invocation sees them)
    /// by `summary`. Refused when the cut would separate a tool call from its result, unless `force`.
    pub fn compact(&self, before: u64, summary: Vec<Json>, agent: Option<&str>, force: bool) -> EngineResult<()> {
        self.check_stageable("compact")?;
        let agent = self.agent_or_default(agent)?.to_owned();
        for message in &summary {
            self.session.shared.config.limits.check_message(message.len())?;
        }
        let messages = self.messages(Some(&agent))?;
        if before > messages.len() as u64 {
            let message = format!(
                "before ({before}) is past the {} messages of agent \"{agent}\" (as this invocation sees them)",
                messages.len()
            );
            return Err(CoreError::invalid(Some("before"), message).into());
        }
        if !force {
            crate::core::tool_pairs::check_cut(&messages, before as usize)?;
        }
        Ok(self.stage(Event::Compacted { agent, before, summary })?)
    }

    /// Committed state with staged sets and deletes applied.
    pub fn values(&self, agent: Option<&str>) -> EngineResult<BTreeMap<String, Json>> {
        self.check_readable("state")?;
        let agent = self.agent_or_default(agent)?;
        let mut values = self.session.values(Some(agent))?;
        let state = self.state.borrow();
        for event in state.pending().into_iter().flatten() {
            match event {
                Event::StateSet { agent: a, key, data } if a == agent => {
                    values.insert(key.clone(), data.clone());
                }
                Event::StateDelete { agent: a, key } if a == agent => {
                    values.remove(key);
                }
                _ => {}
            }
        }
        Ok(values)
    }

    /// One state value of `agent` as this invocation sees it: the last staged set or delete of
    /// `key`, else the committed value.
    pub fn value(&self, agent: Option<&str>, key: &str) -> EngineResult<Option<Json>> {
        self.check_readable("state")?;
        let agent = self.agent_or_default(agent)?;
        let state = self.state.borrow();
        for event in state.pending().into_iter().rev().flat_map(|events| events.iter().rev()) {
            match event {
                Event::StateSet { agent: a, key: k, data } if a == agent && k == key => return Ok(Some(data.clone())),
                Event::StateDelete { agent: a, key: k } if a == agent && k == key => return Ok(None),
                _ => {}
            }
        }
        self.session.value(Some(agent), key)
    }

    /// Appends a part (JSON text) to the turn's live log; validated now like a message. Returns its
    /// seq and when the host must call [`Invocation::flush`].
    pub fn emit(&self, data: Json) -> EngineResult<Emitted> {
        self.check_stageable("emit")?;
        // A closed store writes nothing more: not even the parts of a turn it still holds.
        self.session.shared.check_open()?;
        self.session.shared.config.limits.check_part(data.len())?;
        let shared = &self.session.shared;
        Ok(self.live.emit(data, shared.now(), shared.config.live_flush_ms))
    }

    /// Writes every emitted part (durable and visible to followers once this resolves).
    pub async fn flush(&self) -> EngineResult<()> {
        let shared = &self.session.shared;
        shared.check_open()?;
        let id = self.session.id();
        if self.live.flush(shared, id, self.token, &self.id).await? {
            // A stop made in another process reaches a store that is not woken by news only when
            // read: there the holder's flush is news for its stop watch, which then reads the head
            // (a stop reaches the holder at its next flush, API.md "Live turns").
            if shared.store.wakes_on_news() {
                self.count_own_wake();
            }
            shared.env.wake(id, true);
        }
        Ok(())
    }

    /// The automatic flush an [`Invocation::emit`] asked for (`flush_in`): after `delay` ms, or sooner
    /// when the session has news in this realm, its turn's end among them (a plain timer kept a Node
    /// process alive for up to `liveFlushMs` after the commit). A failed flush keeps its parts for
    /// the next one; the commit reports a failure.
    pub async fn flush_later(&self, delay: u64) {
        if delay > 0 {
            self.session.shared.env.wait(self.session.id(), delay, None).await;
        }
        let _ = self.flush().await;
    }

    /// `inv.flush()`: [`Invocation::flush`], refused once commit, interrupt or abort has ended the
    /// invocation (API.md: every method of an ended Invocation throws). While a commit writes, a flush
    /// waits for it, as the flushes emit schedules do.
    pub async fn flush_requested(&self) -> EngineResult<()> {
        let committing = matches!(self.state.borrow().stage, Stage::Committing);
        if !committing {
            self.check_open("flush")?;
        }
        self.flush().await
    }

    /// The head as this invocation last wrote or read it, and its store version.
    pub(crate) fn current_head(&self) -> (Head, Version) {
        let state = self.state.borrow();
        (state.head.clone(), state.version.clone())
    }

    /// Ends this invocation after a write of the engine's own released its lease (`head`): a prune.
    pub(crate) fn released_by(&self, head: &Head) {
        self.state.borrow_mut().stage = Stage::Aborted;
        self.keep_mark(head);
        self.unpin();
        self.shed();
        self.fire(Signal::Ended);
        self.session.shared.emit(&|| self.event("lease.released", None));
    }

    /// Sets what the host's `signal` is told; called at once when it already fired.
    pub fn on_signal(&self, hook: SignalHook) {
        *self.signal.borrow_mut() = Some(hook);
    }

    fn fire(&self, signal: Signal) {
        if self.signaled.replace(true) {
            return;
        }
        // A stop of this store that fenced this turn is listed until now (engine::live `AskedHere`).
        let shared = &self.session.shared;
        shared.stops_asked.borrow_mut().retain(|(id, token, _)| !(id == self.session.id() && *token == self.token));
        if let Some(hook) = self.signal.borrow_mut().take() {
            hook(&signal);
        }
    }

    /// Reads the head and fires the signal when a stop was requested for this turn or the lease is
    /// gone. `true` once the signal has fired (nothing more to watch).
    pub async fn check_stop(&self) -> EngineResult<bool> {
        if self.is_ended() || self.signaled.get() {
            return Ok(true);
        }
        let shared = &self.session.shared;
        let Some((head, _)) = load::read_head(&*shared.store, self.session.id()).await? else {
            self.fire(Signal::LeaseLost { token: self.token });
            return Ok(true);
        };
        if self.is_ended() {
            return Ok(true);
        }
        if let Some(stop) = guard::stop_pending(&head, self.token) {
            self.fire(Signal::Stop { reason: stop.reason.clone(), by: stop.by.clone() });
        } else if let Some((reason, by)) = self.fence_reason(&head).await {
            self.fire(Signal::Stop { reason, by });
        } else if guard::check_lease(&head, self.token, shared.now()).is_err() {
            self.fire(Signal::LeaseLost { token: self.token });
        }
        Ok(self.signaled.get())
    }

    /// The reason and asker of the stop whose fence ended this turn (`stop({ graceMs })` ran out
    /// before the holder looked): in the fence's batch, which the head does not repeat, and which a
    /// later turn's commit may have moved the head past (`guard::fence_version`).
    async fn fence_reason(&self, head: &Head) -> Option<(String, String)> {
        let own = self.last_version.get();
        let at = match guard::fence_version(head, self.token) {
            Some(at) => at,
            // A snapshot since hides the versions' tokens from the head: the version after this
            // turn's last, once the lease is no longer this turn's (read only then).
            None if head.version > own && head.lease.as_ref().is_none_or(|lease| lease.token != self.token) => own + 1,
            None => return None,
        };
        let store = &*self.session.shared.store;
        let batches = load::batches_after(store, self.session.id(), head, at.saturating_sub(1), at).await.ok()?;
        let fence = batches.iter().filter(|batch| batch.token == self.token + 1);
        fence.flat_map(|batch| &batch.events).find_map(|event| match event {
            Event::Stopped { reason, by, outcome: TurnOutcome::Fenced } => Some((reason.clone(), by.clone())),
            _ => None,
        })
    }

    /// Fires the signal at once when a `stop()` of this store has asked this turn to stop: a signal
    /// first read after the stop is aborted when it is read. `true` once the signal has fired.
    pub fn check_stop_asked_here(&self) -> bool {
        if self.is_ended() || self.signaled.get() {
            return self.signaled.get();
        }
        if let Some(stop) = self.stop_asked_here() {
            self.fire(stop);
        } else if self.session.shared.check_open().is_err() && matches!(self.state.borrow().stage, Stage::Open) {
            // The store was closed: this turn is renewed and committed no more. (A commit being
            // written when it closed settles the turn itself: the signal says how it ends.)
            self.fire(Signal::StoreClosed);
        }
        self.signaled.get()
    }

    /// The stop a `stop()` of this store asked of this turn, if one did.
    fn stop_asked_here(&self) -> Option<Signal> {
        let shared = &self.session.shared;
        let asked =
            shared.stops_asked.borrow().iter().find_map(|(id, token, reason)| {
                (id == self.session.id() && *token == self.token).then(|| reason.clone())
            });
        asked.map(|reason| Signal::Stop { reason, by: shared.config.owner.clone() })
    }

    /// Watches for a stop of this turn until the invocation ends or the signal fires: woken by a
    /// stop in this realm or, where the host pushes them, another; otherwise every `stopPollMs`.
    pub async fn watch_stop(&self) {
        let shared = &self.session.shared;
        // The head as of `checked_at` (the lease, then each read) held no stop; the host's wake-up
        // count and this invocation's own wake-ups then tell whether anyone else woke the realm since.
        let (mut checked_at, mut wakes_then, mut own_then) = (self.began_at, self.wakes_at_begin, 0);
        loop {
            if self.check_stop_asked_here() || self.is_ended() {
                return;
            }
            let (now, wakes) = (shared.now(), shared.env.wakes());
            let woken = match (wakes_then, wakes) {
                (Some(then), Some(wakes)) => wakes.wrapping_sub(then) > self.own_wakes.get() - own_then,
                _ => true,
            };
            let wait = guard::next_stop_check(checked_at, now, shared.config.stop_poll_ms, woken);
            if wait > 0 {
                shared.env.wait(self.session.id(), wait, None).await;
                continue;
            }
            (checked_at, wakes_then, own_then) = (now, wakes, self.own_wakes.get());
            // A failed read is retried at the next wake or poll.
            if let Ok(true) = self.check_stop().await {
                return;
            }
        }
    }

    /// Counts a wake-up of the realm this invocation is about to make: its own, no news for its
    /// stop watch ([`Invocation::watch_stop`]).
    fn count_own_wake(&self) {
        self.own_wakes.set(self.own_wakes.get() + 1);
    }

    /// Extends the lease to `now + leaseMs`.
    pub async fn renew(&self) -> EngineResult<()> {
        self.extend(true).await
    }

    /// A renewal nobody awaits (the heartbeat): a lost lease is reported by the next call instead.
    pub async fn heartbeat(&self) -> EngineResult<()> {
        self.extend(false).await
    }

    async fn extend(&self, reported: bool) -> EngineResult<()> {
        if reported {
            self.check_open("renew")?;
        } else if !self.is_open() {
            // The heartbeat of an invocation that ended: nothing to renew, and a loss already noted
            // stays for the caller's next call to be told as `LeaseLost`.
            return Ok(());
        }
        let shared = &self.session.shared;
        // A closed store renews no lease: an invocation left open lets its lease run out.
        shared.check_open()?;
        let head_key = keys::head_key(self.session.id());
        for _ in 0..4 {
            let (head, version) = {
                let state = self.state.borrow();
                (state.head.clone(), state.version.clone())
            };
            let now = shared.now();
            let renewed = match guard::renew(&head, self.token, now, shared.config.lease_ms) {
                Ok(renewed) => renewed,
                // The lease went with a commit of ours that failed with a storage error and landed
                // after all: not a loss. Its retry (or an abort) learns that the turn is committed.
                Err(_)
                    if self.unsettled_write().is_some_and(|tried| guard::commit_landed(&head, tried, self.token)) =>
                {
                    return Ok(())
                }
                Err(error) => return Err(self.lost(error, reported).await),
            };
            match shared.store.put(&head_key, crate::engine::head_value(&renewed), Expect::Version(version)).await? {
                Some(written) if self.is_lost() => {
                    // Landed after the lease was found lost (a backend that stalled past the lease's
                    // end): given back, not held by nobody until it runs out again.
                    if let Some(released) = guard::release(&renewed, self.token) {
                        let value = crate::engine::head_value(&released);
                        let _ = shared.store.put(&head_key, value, Expect::Version(written)).await;
                    }
                    return Ok(());
                }
                Some(written) => {
                    self.remember(renewed.clone(), written.clone());
                    self.keep_mark(&renewed);
                    self.session.apply_commit(renewed, written, Some(&head), &[]);
                    shared.emit(&|| self.event("lease.renewed", None));
                    return Ok(());
                }
                None => {
                    if !self.is_open() {
                        return Ok(()); // a commit of ours ended the invocation meanwhile
                    }
                    shared.emit(&|| self.event("conflict", None));
                    // A session deleted meanwhile: the lease is lost, and the signal says so now.
                    match self.reread().await {
                        Err(EngineError::Core(error @ CoreError::LeaseLost { .. })) => {
                            return Err(self.lost(error, reported).await)
                        }
                        other => other?,
                    }
                }
            }
        }
        Err(EngineError::Conflict(self.session.id().to_owned()))
    }

    /// Called when the caller asks for a way out of the invocation (`commit` and `checkpoint` call it
    /// themselves; the host calls it for `interrupt` and `abort`), before its future is first polled:
    /// refused while another has not settled, whatever the store. (A memory store's write is done in
    /// its first poll: without this, a second call made before awaiting the first was refused on a KV
    /// store only.) The mark holds until the returned value is dropped, when the way out has settled.
    pub fn way_out(self: &Rc<Self>, action: &'static str) -> EngineResult<WayOut> {
        if self.settling.replace(true) {
            // (From "aborted" while an abort settles, as the staging calls say.)
            let from = self.ending.get().unwrap_or(Phase::Committing);
            return Err(CoreError::InvalidTransition { from, action }.into());
        }
        self.ending.set(match action {
            "checkpoint" => None,
            "abort" => Some(Phase::Aborted),
            _ => Some(Phase::Committing),
        });
        Ok(WayOut(self.clone()))
    }

    /// Commits and releases.
    pub fn commit(self: &Rc<Self>) -> impl Future<Output = EngineResult<u64>> + 'static {
        self.commit_as("commit", Outcome::Commit)
    }

    /// Commits and keeps the lease: the turn goes on.
    pub fn checkpoint(self: &Rc<Self>) -> impl Future<Output = EngineResult<u64>> + 'static {
        self.commit_as("checkpoint", Outcome::Checkpoint)
    }

    /// [`Invocation::finish`] without a last event. The store is told now, at the call, that the
    /// head's write follows ([`crate::store::Store::prepare_write`]), while the invocation is open
    /// and its last commit's outcome is known (else the head is read back first).
    fn commit_as(
        self: &Rc<Self>,
        action: &'static str,
        outcome: Outcome,
    ) -> impl Future<Output = EngineResult<u64>> + 'static {
        let way_out = self.way_out(action);
        // (try_borrow: a hint is not worth a panic, should a host callback ever call in mid-update.)
        let ready = way_out.is_ok()
            && self
                .state
                .try_borrow()
                .is_ok_and(|state| matches!(state.stage, Stage::Open) && state.uncertain.is_none());
        if ready {
            self.session.prepare_head_write();
        }
        let invocation = self.clone();
        async move {
            let _settling = way_out?;
            invocation.finish(action, outcome, None).await
        }
    }

    /// Commits the staged events and the question `reason` (with `payload`, JSON `null` when none),
    /// and releases: the session waits interrupted for a `resume`.
    pub async fn interrupt(&self, reason: String, payload: Option<Json>) -> EngineResult<u64> {
        self.check_open("interrupt")?;
        let payload = payload.unwrap_or_else(|| Json::from("null"));
        limits::check_reason("an interrupt reason", "reason", &reason)?;
        let event = Event::Interrupt { reason: reason.clone(), data: payload.clone() };
        self.finish("interrupt", Outcome::Interrupt(Interrupt { reason, payload }), Some(event)).await
    }

    pub(crate) async fn close(&self) -> EngineResult<u64> {
        self.finish("close", Outcome::Close, Some(Event::Closed)).await
    }

    /// Writes the staged events (plus `last`) as one batch at the next version and compare-and-sets
    /// the head; on a lost race for the head it decides again on the fresh head (our own heartbeat
    /// may have renewed it), and a head that no longer carries our token ends in `LeaseLost`.
    async fn finish(&self, action: &'static str, outcome: Outcome, mut last: Option<Event>) -> EngineResult<u64> {
        loop {
            match self.finish_once(action, outcome.clone(), last).await? {
                Finished::Done(version) => return Ok(version),
                Finished::Again(again) => last = again,
            }
        }
    }

    /// One write of [`Invocation::finish`].
    async fn finish_once(&self, action: &'static str, outcome: Outcome, last: Option<Event>) -> EngineResult<Finished> {
        if last.is_none() {
            if let Some(version) = self.landed_earlier().await? {
                return Ok(Finished::Done(version));
            }
        }
        self.check_open(action)?;
        // Followers get every part with the turn's end: the parts not flushed yet are written with the
        // commit's records (no write of their own: one transaction on IndexedDB), after every earlier
        // flush. After a commit whose outcome was not known, they are flushed on their own first.
        if self.state.borrow().uncertain.is_some() {
            self.flush().await?;
        }
        // Held until the commit is written: no flush is taken meanwhile.
        let (_passage, live) = self.live.take_next(&self.id).await;
        let put_back = |live: Option<(u64, Flush)>| {
            if let Some((_, flush)) = live {
                self.live.put_back(flush);
            }
        };
        if let Err(error) = self.check_open(action) {
            put_back(live);
            return Err(error.into());
        }
        let shared = &self.session.shared;
        let config = &shared.config;
        let mut events = std::mem::take(&mut self.state.borrow_mut().staged);
        let last_is_some = last.is_some();
        if let Some(last) = last {
            let total = self.state.borrow().staged_bytes + last.weight();
            if let Err(error) = config.limits.check_commit(total) {
                self.state.borrow_mut().staged = events;
                put_back(live);
                return Err(error.into());
            }
            events.push(last);
        }
        let events = Rc::new(events);
        {
            let mut state = self.state.borrow_mut();
            state.stage = Stage::Committing;
            if matches!(outcome, Outcome::Checkpoint) {
                state.in_flight = Some(events.clone());
            }
        }
        let result = self.write(outcome, &events, live.as_ref()).await;
        // Taken out before anything else runs: the view takes the events in (below) or they are staged again.
        self.state.borrow_mut().in_flight = None;
        match result {
            Ok(Written { head, version, snapshot, base, unwritten }) => {
                if let Some((n, flush)) = live {
                    self.live.wrote(shared, self.session.id(), n, flush);
                }
                let (events, again) = if unwritten == 0 {
                    (events, None)
                } else {
                    let mut written = Rc::try_unwrap(events).unwrap_or_else(|events| (*events).clone());
                    let mut rest = written.split_off(written.len() - unwritten - usize::from(last_is_some));
                    let last = if last_is_some { rest.pop() } else { None };
                    let mut state = self.state.borrow_mut();
                    rest.append(&mut state.staged);
                    state.staged = rest;
                    (Rc::new(written), Some(last))
                };
                let new_version = head.version;
                self.last_version.set(new_version);
                let status = head.status;
                let mut state = self.state.borrow_mut();
                // What was staged while a checkpoint wrote is left for the next commit.
                state.staged_bytes = state.staged.iter().map(Event::weight).sum();
                state.stage = if status == Status::Running { Stage::Open } else { Stage::Committed };
                state.head = head.clone();
                state.version = version.clone();
                drop(state);
                self.keep_mark(&head);
                shared.tell_followers(self.session.id(), &head, self.token, self.live.take_kept());
                self.session.apply_commit(head, version, base.as_ref(), &events);
                if status != Status::Running {
                    self.unpin();
                    self.shed();
                    self.fire(Signal::Ended);
                }

                if snapshot {
                    shared.emit(&|| self.event("snapshot", Some(new_version)));
                }
                let kind = match status {
                    Status::Interrupted => "interrupt",
                    _ => "commit",
                };
                shared.emit(&|| StoreEvent {
                    duration_ms: Some(shared.now().saturating_sub(self.began_at)),
                    ..self.event(kind, Some(new_version))
                });
                if status != Status::Running {
                    shared.emit(&|| self.event("lease.released", Some(new_version)));
                }
                // Announcing wakes the realm once (Shared::notify).
                self.count_own_wake();
                self.session.announce(new_version, status);
                Ok(match again {
                    Some(last) => Finished::Again(last),
                    None => Finished::Done(new_version),
                })
            }
            Err(error) => {
                let error = self.deleted_or(error).await;
                let lease_lost = matches!(error, EngineError::Core(CoreError::LeaseLost { .. }));
                // The only owner now (`in_flight` was cleared above): no copy is made.
                let mut events = Rc::try_unwrap(events).unwrap_or_else(|events| (*events).clone());
                if !lease_lost {
                    // Retryable (a storage failure): the invocation stays open with its staged events,
                    // followed by those staged while a checkpoint wrote.
                    if last_is_some {
                        events.pop();
                    }
                    let mut state = self.state.borrow_mut();
                    let later = std::mem::take(&mut state.staged);
                    if let Some(uncertain) = state.uncertain.as_mut() {
                        uncertain.later += later.len();
                    }
                    events.extend(later);
                    state.staged = events;
                }
                // The parts taken for the commit are flushed as they are (the commit may have written
                // their key already), before anything emitted after them; followers of a lost turn see
                // them as when it flushed before committing.
                if let Some(taken) = live {
                    let _ = self.live.write_taken(shared, self.session.id(), self.token, taken).await;
                }
                match error {
                    EngineError::Core(error @ CoreError::LeaseLost { .. }) => Err(self.lost(error, true).await),
                    error => {
                        self.state.borrow_mut().stage = Stage::Open;
                        Err(error)
                    }
                }
            }
        }
    }

    /// `live`: the parts not flushed yet, as flush number `.0` of this turn, written with the batch.
    async fn write(&self, outcome: Outcome, events: &[Event], live: Option<&(u64, Flush)>) -> EngineResult<Written> {
        let shared = &self.session.shared;
        let config = &shared.config;
        let id = self.session.id();
        let head_key = keys::head_key(id);
        // A write whose outcome is not known is looked for first, and so is the last failed write of
        // this same turn, which may have landed since it was read back (a write that timed out; the
        // lease may have run out meanwhile).
        let uncertain = self.state.borrow_mut().uncertain.take();
        let failed = self.state.borrow().failed_write;
        let same_failed = failed.filter(|(_, count)| *count == events.len()).map(|(tried, _)| tried);
        if let Some(tried) = uncertain.map(|attempt| attempt.version).or(same_failed) {
            match self.applied(tried).await {
                Ok(Some((head, version, snapshot))) => {
                    self.settled();
                    // The events staged after an attempt not known are still to write.
                    let unwritten = uncertain.map_or(0, |attempt| attempt.later);
                    return Ok(Written { head, version, snapshot, base: None, unwritten });
                }
                Ok(None) => {}
                Err(error) => {
                    // Still not known: a retry must not write the batch again under another version.
                    self.state.borrow_mut().uncertain = uncertain;
                    return Err(error);
                }
            }
        }
        for _ in 0..4 {
            let (head, version) = {
                let state = self.state.borrow();
                (state.head.clone(), state.version.clone())
            };
            // What the commit folds and snapshots is the view: brought to the head it builds on,
            // should a load racing a delete have left it elsewhere (`Session::apply_commit`).
            if !self.session.holds(&head) {
                self.session.catch_up(head.clone(), version.clone()).await?;
            }
            let now = shared.now();
            let reshapes = head.schema < config.schema_version || self.compacts_most(events)?;
            let every = match self.snapshot_every() {
                0 => 0,
                _ if reshapes => guard::SNAPSHOT_NOW,
                every => every,
            };
            let mut committed = guard::commit(&head, self.token, now, config.lease_ms, outcome.clone(), every)?;
            live::note_flushes(&mut committed.head, self.token, self.live.flushes() + u64::from(live.is_some()));
            let new_version = committed.head.version;
            // The first commit after a migration on load persists the migrated data first.
            let supported = config.schema_version;
            let mut batch_events = if head.schema < supported {
                committed.head.schema = supported;
                schema::migrated_events(&*self.session.state()?, head.schema, supported)
            } else {
                Vec::new()
            };
            batch_events.extend_from_slice(events);
            if let Some(stop) = &committed.stopped {
                batch_events.push(Event::Stopped {
                    reason: stop.reason.clone(),
                    by: stop.by.clone(),
                    outcome: TurnOutcome::Stopped,
                });
            }
            let batch = Batch {
                version: new_version,
                token: self.token,
                at: now,
                invocation: self.id.clone(),
                traceparent: self.traceparent.clone(),
                events: batch_events,
            };
            let mut records = vec![(keys::batch_key(id, new_version, self.token), codec::encode_batch(&batch))];
            if let Some((n, flush)) = live {
                records.push((keys::live_key(id, self.token, *n), codec::encode_flush(flush)));
            }
            let mut snapshot = None;
            if committed.snapshot_due {
                let previous = self.session.snapshot_meta(head.snapshot).await?;
                let mut commits = head.commits.clone();
                commits.push(self.token);
                let state = self.session.state()?;
                let (segment, next) = next_snapshot(
                    &state,
                    &batch.events,
                    Session::previous_of(&previous),
                    new_version,
                    self.token,
                    commits,
                );
                if let Some(segment) = segment {
                    records.push((keys::segment_key(id, new_version, self.token), codec::encode_segment(&segment)));
                }
                records
                    .push((keys::snapshot_key(id, new_version, self.token), codec::encode_segmented_snapshot(&next)));
                snapshot = Some(next);
            }
            // What the commit brings into this instance's memory: the encoded records and the
            // cached view's growth (a memory store also counts what it keeps).
            let incoming = records.iter().map(|(_, value)| value.len() as u64).sum::<u64>() + events_bytes(events);
            budget::check("a commit", incoming)?;
            let value = crate::engine::head_value(&committed.head);
            let stale = self.live.stale();
            self.attempted.set(new_version);
            let written =
                store::commit_deleting(&*shared.store, records, &head_key, value, Expect::Version(version), stale)
                    .await;
            let written = match written {
                Ok(written) => written,
                // A failed write may still have been applied (a KV that timed out after writing):
                // read the head back before reporting, so a retry never rewrites a batch it names.
                Err(error) => match self.applied(new_version).await {
                    Ok(Some((head, version, snapshot))) => {
                        self.settled();
                        return Ok(Written { head, version, snapshot, base: None, unwritten: 0 });
                    }
                    // Not there when read back: it may land yet (a write that timed out), which a
                    // retry of the same turn looks for first (see `State::failed_write`).
                    Ok(None) => {
                        self.state.borrow_mut().failed_write = Some((new_version, events.len()));
                        return Err(error.into());
                    }
                    Err(_) => {
                        self.state.borrow_mut().uncertain = Some(Uncertain { version: new_version, later: 0 });
                        return Err(error.into());
                    }
                },
            };
            match written {
                Some(written) => {
                    self.settled();
                    if let Some(snapshot) = snapshot {
                        self.session.remember_snapshot(snapshot);
                    }
                    return Ok(Written {
                        head: committed.head,
                        version: written,
                        snapshot: committed.snapshot_due,
                        base: Some(head),
                        unwritten: 0,
                    });
                }
                None => {
                    self.reread().await?;
                    // Refused by our own write: a client that retried it after its answer was lost.
                    let (head, version) = {
                        let state = self.state.borrow();
                        (state.head.clone(), state.version.clone())
                    };
                    // (Unless an earlier failed write of a shorter turn at this version is what is
                    // there: then this one was refused, and the lease went with that commit.)
                    let same_turn = failed.is_none_or(|(tried, count)| tried != new_version || count == events.len());
                    if let Some(snapshot) = guard::commit_applied(&head, new_version, self.token).filter(|_| same_turn)
                    {
                        self.settled();
                        return Ok(Written { head, version, snapshot, base: None, unwritten: 0 });
                    }
                    shared.emit(&|| self.event("conflict", None));
                }
            }
        }
        Err(EngineError::Conflict(id.to_owned()))
    }

    /// The store's snapshot spacing, or 0 (no snapshot in this commit) when encoding the whole state
    /// would not fit in the instance's memory budget: the commit still goes through, and loads
    /// replay its batch instead.
    /// Whether `events` hold a compaction that drops at least as many messages as it keeps
    /// ([`guard::compaction_snapshots_now`]).
    fn compacts_most(&self, events: &[Event]) -> EngineResult<bool> {
        let state = self.session.state()?;
        Ok(events.iter().any(|event| match event {
            Event::Compacted { agent, before, summary } => {
                let count = state.agent(agent).map_or(0, |a| a.messages.len() as u64);
                guard::compaction_snapshots_now(*before, count.saturating_sub(*before) + summary.len() as u64)
            }
            _ => false,
        }))
    }

    fn snapshot_every(&self) -> u64 {
        let bytes = self.session.slot.view.borrow().bytes;
        match budget::check("a snapshot", bytes) {
            Ok(()) => self.session.shared.config.snapshot_every,
            Err(_) => 0,
        }
    }

    /// A write of this invocation is there: no earlier failed write is still to look for, and the
    /// stale live logs went with it.
    fn settled(&self) {
        self.state.borrow_mut().failed_write = None;
        self.live.take_stale();
    }

    /// Reads the head back and tells whether it names this invocation's batch at `version`, i.e.
    /// whether a commit whose outcome was unknown was applied.
    async fn applied(&self, version: u64) -> EngineResult<Option<(Head, Version, bool)>> {
        let Some((head, store_version)) = load::read_head(&*self.session.shared.store, self.session.id()).await? else {
            return Ok(None);
        };
        self.remember(head.clone(), store_version.clone());
        Ok(guard::commit_applied(&head, version, self.token).map(|snapshot| (head, store_version, snapshot)))
    }

    /// What a commit that read a record which is gone failed with: `LeaseLost` when the session was
    /// deleted meanwhile (by another store, taking our lease with it: its head is gone or is another
    /// session's), else `error` (a corrupt record, or a storage failure).
    async fn deleted_or(&self, error: EngineError) -> EngineError {
        if !error.is_corrupt_record() {
            return error;
        }
        let ours = self.state.borrow().head.created_at;
        match load::read_head(&*self.session.shared.store, self.session.id()).await {
            Ok(None) => {
                self.deleted.set(true);
                CoreError::LeaseLost { token: self.token }.into()
            }
            Ok(Some((head, _))) if head.created_at != ours => CoreError::LeaseLost { token: self.token }.into(),
            _ => error,
        }
    }

    /// Re-reads the head after a lost compare-and-set; a deleted session fences us out.
    async fn reread(&self) -> EngineResult<()> {
        match load::read_head(&*self.session.shared.store, self.session.id()).await? {
            Some((head, version)) => {
                self.remember(head, version);
                Ok(())
            }
            None => {
                self.deleted.set(true);
                Err(CoreError::LeaseLost { token: self.token }.into())
            }
        }
    }

    /// Deletes what a turn whose session was deleted under it wrote after the delete (the records of
    /// its refused commit, its live flushes): only keys under its own fencing token, which nothing
    /// else writes (a session created or imported again under the id meanwhile keeps all of its
    /// own). A record's chunks go with it. A failure leaves them for the id's next delete.
    async fn sweep_deleted(&self) {
        let (id, token) = (self.session.id(), self.token);
        let store = &*self.session.shared.store;
        let mut doomed = Vec::new();
        let attempted = self.attempted.get();
        if attempted > 0 {
            for key in [
                keys::batch_key(id, attempted, token),
                keys::snapshot_key(id, attempted, token),
                keys::segment_key(id, attempted, token),
            ] {
                doomed.push((key.clone(), vec![key]));
            }
        }
        let flushes = self.live.flushes();
        if flushes > 0 {
            doomed.push((keys::live_prefix(id, token), (0..flushes).map(|n| keys::live_key(id, token, n)).collect()));
        }
        for (prefix, known) in doomed {
            let _ = store.delete_prefix(&prefix, known).await;
        }
    }

    fn remember(&self, head: Head, version: Version) {
        let mut state = self.state.borrow_mut();
        state.head = head;
        state.version = version;
    }

    /// Ends the invocation as lost and reports it (`reported`: the caller gets the error now). Its
    /// signal is told why: a stop's fence (the head read last shows it) is a stop, as when the
    /// signal saw the fence first; another loss is a lost lease.
    async fn lost(&self, error: CoreError, reported: bool) -> EngineError {
        let head = {
            let mut state = self.state.borrow_mut();
            state.stage = Stage::Lost { reported };
            state.staged.clear();
            state.head.clone()
        };
        self.unpin();
        self.shed();
        let shared = &self.session.shared;
        shared.clear_mark(self.session.id(), Some(self.token));
        shared.emit(&|| self.event("lease.lost", None));
        if !self.signaled.get() {
            let signal = match self.stop_asked_here() {
                Some(stop) => stop,
                None => match self.fence_reason(&head).await {
                    Some((reason, by)) => Signal::Stop { reason, by },
                    None => Signal::LeaseLost { token: self.token },
                },
            };
            self.fire(signal);
        }
        // After the commit's own last write (its live parts): nothing of this turn is written later.
        if self.deleted.get() {
            self.sweep_deleted().await;
        }
        error.into()
    }

    /// Discards the staged events and gives the lease back. The invocation is ended even when the
    /// release write fails (the lease then runs out by itself).
    pub async fn abort(&self) -> EngineResult<()> {
        self.end_uncommitted(false).await
    }

    /// `[Symbol.asyncDispose]`: aborts an open invocation, else does nothing. A commit in flight
    /// decides first: it ends the invocation, or leaves it open (a storage failure) to be aborted.
    pub async fn dispose(&self) -> EngineResult<()> {
        if matches!(self.state.borrow().stage, Stage::Committing) {
            self.live.settled().await;
        }
        if !self.is_ended() {
            self.abort().await?;
        }
        Ok(())
    }

    /// [`Invocation::abort`], or with `at_checkpoint` the end of a turn that succeeded at its last
    /// checkpoint (a framework's guard that checkpoints each step and has nothing left to write):
    /// when nothing staged is dropped and that checkpoint wrote the head's version, followers see the
    /// turn end `committed` ([`guard::release_kept`]), without an empty version.
    pub async fn end_uncommitted(&self, at_checkpoint: bool) -> EngineResult<()> {
        if matches!(self.state.borrow().stage, Stage::Lost { reported: true }) {
            // A call was refused with LeaseLost, which ended the invocation: abort refuses as it does
            // after a commit (API.md), from "lease-lost".
            return Err(CoreError::InvalidTransition { from: Phase::LeaseLost, action: "abort" }.into());
        }
        if self.is_lost() {
            // Lost in the background and nobody told yet: the abort is the caller's cleanup, and
            // nothing of ours is in the store to release, so it just ends the invocation (unless
            // what took the lease was a failed commit of ours that landed after all).
            self.state.borrow_mut().stage = Stage::Aborted;
            self.unpin();
            if self.unsettled_write().is_some() {
                if let Ok(Some((head, _))) = load::read_head(&*self.session.shared.store, self.session.id()).await {
                    return self.landed_after_all(&head);
                }
            }
            return Ok(());
        }
        self.check_open("abort")?;
        // Followers see what was emitted before the turn's end; a failure does not stop the abort.
        // Also with nothing pending: a flush in flight is waited for, so that the end records it.
        let _ = self.flush().await;
        self.check_open("abort")?;
        let discarded = {
            let mut state = self.state.borrow_mut();
            state.stage = Stage::Aborted;
            let discarded = !state.staged.is_empty();
            state.staged.clear();
            discarded
        };
        self.unpin();
        let shared = &self.session.shared;
        shared.clear_mark(self.session.id(), Some(self.token));
        shared.emit(&|| StoreEvent {
            duration_ms: Some(shared.now().saturating_sub(self.began_at)),
            ..self.event("abort", None)
        });
        let released = self.release(discarded || !at_checkpoint).await;
        self.shed();
        self.fire(Signal::Ended);
        // A begin of this realm waiting for the session (`onBusy: { waitMs }`) tries again now.
        shared.env.wake(self.session.id(), false);
        released
    }

    /// Writes the head without our lease (an abort's release); `aborted`: the turn ends `aborted`
    /// for its followers, else as its last checkpoint left it ([`guard::release_kept`]).
    async fn release(&self, aborted: bool) -> EngineResult<()> {
        let shared = &self.session.shared;
        let head_key = keys::head_key(self.session.id());
        for _ in 0..4 {
            let (head, version) = {
                let state = self.state.borrow();
                (state.head.clone(), state.version.clone())
            };
            if guard::stop_pending(&head, self.token).is_some() {
                // A stopped turn's end is in history: the abort commits the `stopped` event.
                return match self.write(Outcome::Abort, &[], None).await {
                    Ok(Written { head, version, base, .. }) => {
                        let (new_version, status) = (head.version, head.status);
                        shared.tell_followers(self.session.id(), &head, self.token, self.live.take_kept());
                        self.session.apply_commit(head, version, base.as_ref(), &[]);
                        shared.emit(&|| self.event("lease.released", Some(new_version)));
                        self.session.announce(new_version, status);
                        Ok(())
                    }
                    Err(EngineError::Core(CoreError::LeaseLost { .. })) => Ok(()),
                    Err(error) => Err(error),
                };
            }
            let released =
                if aborted { guard::release(&head, self.token) } else { guard::release_kept(&head, self.token) };
            let Some(mut released) = released else { return self.landed_after_all(&head) };
            live::note_flushes(&mut released, self.token, self.live.flushes());
            let put = shared.store.put(&head_key, crate::engine::head_value(&released), Expect::Version(version));
            if let Some(written) = store::beside_deletes(&*shared.store, put, self.live.take_stale()).await? {
                shared.tell_followers(self.session.id(), &released, self.token, self.live.take_kept());
                self.session.apply_commit(released, written, Some(&head), &[]);
                shared.emit(&|| self.event("lease.released", None));
                return Ok(());
            }
            if load::read_head(&*shared.store, self.session.id()).await?.map(|(h, v)| self.remember(h, v)).is_none() {
                // Deleted under the turn: nothing to release, but its flushes to delete.
                self.sweep_deleted().await;
                return Ok(());
            }
        }
        Err(EngineError::Conflict(self.session.id().to_owned()))
    }

    /// A retried commit or checkpoint whose last attempt, holding everything staged, failed with a
    /// storage error and landed after all where [`Invocation::write`]'s look for it cannot tell: the
    /// lease ran out before it landed (this invocation is lost), or later commits were built on it.
    /// The turn then ends committed at that version (the session's view learns it on its next
    /// refresh); redoing it would store it twice. `None` in every other case.
    async fn landed_earlier(&self) -> EngineResult<Option<u64>> {
        let (tried, lost) = {
            let state = self.state.borrow();
            let lost = matches!(state.stage, Stage::Lost { reported: false });
            let tried = match (state.uncertain, state.failed_write) {
                (Some(attempt), _) if attempt.later == 0 => attempt.version,
                // (A lost invocation's staged events are dropped: whether more were staged since is
                // not known, and a different turn is not this one.)
                (None, Some((version, count))) if !lost && count == state.staged.len() => version,
                _ => return Ok(None),
            };
            if !lost && !matches!(state.stage, Stage::Open) {
                return Ok(None);
            }
            (tried, lost)
        };
        let Some((head, _)) = load::read_head(&*self.session.shared.store, self.session.id()).await? else {
            return Ok(None);
        };
        if !guard::commit_landed(&head, tried, self.token) || (!lost && head.version == tried) {
            return Ok(None); // not there, or there as the head, where the write path takes it in
        }
        {
            let mut state = self.state.borrow_mut();
            state.stage = Stage::Committed;
            state.uncertain = None;
            state.failed_write = None;
            state.staged_bytes = 0;
        }
        self.unpin();
        self.shed();
        self.fire(Signal::Ended);
        let shared = &self.session.shared;
        shared.emit(&|| self.event("commit", Some(tried)));
        Ok(Some(tried))
    }

    /// An abort that finds the lease gone: when a commit of this turn that failed with a storage
    /// error landed after all (a write that timed out, a client that sent it again on reconnecting),
    /// nothing was discarded, and the caller learns that the turn is committed.
    fn landed_after_all(&self, head: &Head) -> EngineResult<()> {
        if !self.unsettled_write().is_some_and(|version| guard::commit_landed(head, version, self.token)) {
            return Ok(());
        }
        self.state.borrow_mut().stage = Stage::Committed;
        Err(CoreError::InvalidTransition { from: Phase::Committed, action: "abort" }.into())
    }

    /// The version of this turn's last commit that failed and may land yet (its outcome not known,
    /// or not there when read back).
    fn unsettled_write(&self) -> Option<u64> {
        let state = self.state.borrow();
        state.uncertain.map(|attempt| attempt.version).or(state.failed_write.map(|(version, _)| version))
    }

    fn event(&self, kind: &'static str, version: Option<u64>) -> StoreEvent {
        StoreEvent {
            kind,
            session: self.session.id().to_owned(),
            version,
            token: Some(self.token),
            owner: Some(self.session.shared.config.owner.clone()),
            traceparent: self.traceparent.clone(),
            ..Default::default()
        }
    }
}

impl Invocation {
    /// This realm's busy mark after a write of ours produced `head` (`guard::Mark::after`).
    fn keep_mark(&self, head: &Head) {
        let shared = &self.session.shared;
        match Mark::after(head, self.token) {
            Some(mark) => {
                shared.marks.borrow_mut().insert(self.session.id().to_owned(), mark);
            }
            None => shared.clear_mark(self.session.id(), Some(self.token)),
        }
    }

    /// The refusal of another begin while this invocation holds the session, as another store's
    /// begin gets it: the owner of the lease and the time until it ends (a framework that turns such a
    /// begin away itself, before it reaches the store, tells it so).
    pub fn busy_refusal(&self) -> CoreError {
        let now = self.session.shared.now();
        let state = self.state.borrow();
        let lease = state.head.lease.as_ref().filter(|lease| lease.token == self.token);
        CoreError::Concurrency {
            holder: lease.map_or_else(|| self.session.shared.config.owner.clone(), |lease| lease.owner.clone()),
            retry_after_ms: lease.map_or(0, |lease| lease.expires_at.saturating_sub(now)),
        }
    }

    /// How often the host should renew this invocation's lease while it is open.
    pub fn renew_every_ms(&self) -> u64 {
        guard::renew_every(self.session.shared.config.lease_ms)
    }

    /// Drops what an ended invocation no longer needs (its copy of the head, staged events), so that
    /// a JS wrapper the garbage collector has not finalized yet holds next to nothing.
    fn shed(&self) {
        let mut state = self.state.borrow_mut();
        state.head = Head::new(0, None, None, None);
        state.version = String::new();
        state.staged = Vec::new();
    }

    /// Lets the store's cache evict the session's view again (the invocation ended).
    fn unpin(&self) {
        if self.pinned.replace(false) {
            let shared = &self.session.shared;
            shared.cache.unpin(&self.session.slot, shared.now());
        }
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        self.unpin();
    }
}

impl Session {
    /// Takes a head this store just wrote (and the events it committed) into the cached view.
    /// The view takes the events in only when it is at the commit the write built on (`base`, the
    /// head it replaced): a load that ran meanwhile (a `refresh`, an `open` of the id) may have read
    /// this very write already, or a later one, or, racing a delete, another session of the id. A
    /// view that is none of these is dropped and loaded again on its next use.
    pub(crate) fn apply_commit(&self, head: Head, version: Version, base: Option<&Head>, events: &[Event]) {
        let mut view = self.slot.view.borrow_mut();
        if view.version == version {
            return; // a load read this very write already
        }
        // Every view of one session at one commit holds the same state (a lease, a renewal or a stop
        // rewrites the head, not the state).
        let at_base = base.is_some_and(|base| view.head.version == base.version && same_session(&view.head, base));
        if !at_base {
            let has_it = same_session(&view.head, &head) && view.head.version >= head.version;
            if !has_it {
                view.head = head;
                view.version = version;
                drop(view);
                self.shared.cache.drop_state(&self.slot);
            } else if view.head.version == head.version {
                view.head = head;
                view.version = version;
            }
            return;
        }
        let from = view.head.schema;
        let changed = match view.state.as_mut() {
            Some(state) if !events.is_empty() || from < head.schema => {
                let state = Rc::make_mut(state);
                // A commit that persisted a migrated view began its batch with `migrated` events
                // (the view already showed their data: counted as it was).
                if from < head.schema {
                    state.apply_all(&schema::migrated_events(state, from, head.schema));
                }
                apply_counted(state, events)
            }
            _ => (0, 0),
        };
        view.head = head;
        view.version = version;
        drop(view);
        self.shared.cache.grow(&self.slot, changed, self.shared.now());
    }
}

/// A way out of an invocation, called and not settled yet ([`Invocation::way_out`]).
pub struct WayOut(Rc<Invocation>);

impl Drop for WayOut {
    fn drop(&mut self) {
        self.0.settling.set(false);
        self.0.ending.set(None);
    }
}
