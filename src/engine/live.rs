//! The running turn, made visible: the holder's live log (emit, flush), `follow()` and `stop()`.
//! Every decision is in `core/live.rs` (what a follower yields, when to flush) and `core/guard.rs`
//! (the stop); this file reads and writes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::core::guard::{self, Holder, StopAsk, StopStep};
use crate::core::live::{self, Flush, Follower, LiveEvent, Next};
use crate::core::{codec, keys, Batch, Event, Head, Json, TurnOutcome};
use crate::engine::error::EngineResult;
use crate::engine::load;
use crate::engine::session::Session;
use crate::engine::store::Shared;
use crate::engine::EngineError;
use crate::store::Expect;

/// Lets one flush write at a time, in the order they asked, so that flush `n` is written before
/// `n + 1` is taken and `flush()` resolves only after every earlier flush.
#[derive(Default)]
struct Turnstile {
    busy: Cell<bool>,
    waiting: RefCell<VecDeque<Waker>>,
}

impl Turnstile {
    async fn enter(&self) -> Passage<'_> {
        poll_fn(|cx| {
            if self.busy.replace(true) {
                self.waiting.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        Passage { turnstile: self }
    }
}

pub(crate) struct Passage<'a> {
    turnstile: &'a Turnstile,
}

impl Drop for Passage<'_> {
    fn drop(&mut self) {
        self.turnstile.busy.set(false);
        let next = self.turnstile.waiting.borrow_mut().pop_front();
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

#[derive(Default)]
struct Pending {
    parts: Vec<Json>,
    bytes: usize,
    first_at: u64,
    next_seq: u64,
    /// The seq of `parts[0]`.
    first_seq: u64,
    next_flush: u64,
    /// A flush has been asked for (a timer is set) and has not taken the parts yet.
    scheduled: bool,
}

/// What `emit()` returns: the part's seq, and when the host must call `flush()` (ms from now;
/// `None` when a flush is already due).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emitted {
    pub seq: u64,
    pub flush_in: Option<u64>,
}

/// What a head write of this store that ends a turn or checkpoints tells the store's followers of
/// the session: the head, and the flushes the turn wrote since its last such write (token, number).
/// A follower reads the store between waits; turns run back to back in this realm may begin and end
/// (and delete the turn before's live log) in between, and the notes keep every one of them.
pub(crate) struct Note {
    head: Head,
    token: u64,
    flushes: Flushes,
}

/// Flushes of one turn with their numbers, as a note carries them.
pub(crate) type Flushes = Vec<(u64, Flush)>;

/// A follower's notes not taken yet.
#[derive(Default)]
pub(crate) struct Inbox {
    notes: RefCell<Vec<Note>>,
    /// The bytes of the parts its notes carry.
    bytes: Cell<usize>,
}

/// Notes an inbox holds at most, and the bytes of their parts: a follower nobody iterates must not
/// grow the store without bound. Past either the oldest are dropped, and that follower learns of
/// those turns from the store, as a follower in another store does.
const MAX_NOTES: usize = 256;
const MAX_NOTE_BYTES: usize = 4 << 20;

/// The bytes of the parts of `flushes`.
fn part_bytes(flushes: &Flushes) -> usize {
    flushes.iter().flat_map(|(_, flush)| &flush.parts).map(|part| part.len()).sum()
}

impl Shared {
    /// Whether a follower of session `id` iterates in this store.
    pub(crate) fn is_followed(&self, id: &str) -> bool {
        self.followers.borrow().iter().any(|(followed, inbox)| followed == id && inbox.strong_count() > 0)
    }

    /// Tells this store's followers of session `id` of `head`, just written, and of the flushes its
    /// turn wrote since its last note.
    pub(crate) fn tell_followers(&self, id: &str, head: &Head, token: u64, flushes: Flushes) {
        let mut followers = self.followers.borrow_mut();
        followers.retain(|(_, inbox)| inbox.strong_count() > 0);
        for inbox in followers.iter().filter(|(followed, _)| followed == id).filter_map(|(_, inbox)| inbox.upgrade()) {
            let mut notes = inbox.notes.borrow_mut();
            let mut bytes = inbox.bytes.get() + part_bytes(&flushes);
            while !notes.is_empty() && (notes.len() == MAX_NOTES || bytes > MAX_NOTE_BYTES) {
                bytes -= part_bytes(&notes.remove(0).flushes);
            }
            inbox.bytes.set(bytes);
            notes.push(Note { head: head.clone(), token, flushes: flushes.clone() });
        }
    }
}

/// The live log of one invocation.
#[derive(Default)]
pub(crate) struct LiveLog {
    pending: RefCell<Pending>,
    turnstile: Turnstile,
    /// The flushes written since the last note to this store's followers (kept only while the
    /// session has followers here: [`Shared::tell_followers`]).
    kept: RefCell<Flushes>,
    /// The live logs of earlier turns that this turn's first write deletes, beside it (prefixes with
    /// their keys when known): where the lease could not delete them with its own write.
    stale: RefCell<Vec<(String, Vec<String>)>>,
}

impl LiveLog {
    /// Leaves `stale` for the turn's first write to delete ([`LiveLog::take_stale`]).
    pub fn delete_with_first_write(&self, stale: Vec<(String, Vec<String>)>) {
        *self.stale.borrow_mut() = stale;
    }

    /// The stale live logs to delete beside the write about to be made (once).
    pub fn take_stale(&self) -> Vec<(String, Vec<String>)> {
        std::mem::take(&mut *self.stale.borrow_mut())
    }

    /// The stale live logs, kept until a commit that deletes them in its own call is written: a
    /// store's one-call commit (Redis, Deno KV, a Durable Object) deletes nothing when its head is
    /// refused (a stop asked meanwhile), and the retry must send them again.
    pub fn stale(&self) -> Vec<(String, Vec<String>)> {
        self.stale.borrow().clone()
    }

    pub fn emit(&self, data: Json, now: u64, flush_ms: u64) -> Emitted {
        let mut pending = self.pending.borrow_mut();
        if pending.parts.is_empty() {
            pending.first_at = now;
            pending.first_seq = pending.next_seq;
        }
        pending.bytes += data.len();
        pending.parts.push(data);
        let seq = pending.next_seq;
        pending.next_seq += 1;
        let delay = live::flush_delay(pending.bytes, pending.first_at, now, flush_ms);
        let flush_in = if !pending.scheduled || delay == 0 {
            pending.scheduled = true;
            Some(delay)
        } else {
            None
        };
        Emitted { seq, flush_in }
    }

    /// Flush `n` of session `id` is in the store: the next one is `n + 1`, and `flush` is kept for the
    /// next note to the store's followers of the session, if it has any.
    pub fn wrote(&self, shared: &Shared, id: &str, n: u64, flush: Flush) {
        self.pending.borrow_mut().next_flush = n + 1;
        if shared.is_followed(id) {
            self.kept.borrow_mut().push((n, flush));
        }
    }

    /// The flushes kept since the last note.
    pub fn take_kept(&self) -> Flushes {
        std::mem::take(&mut *self.kept.borrow_mut())
    }

    /// How many flushes were written.
    pub fn flushes(&self) -> u64 {
        self.pending.borrow().next_flush
    }

    /// Resolves once no flush or commit holds the turnstile (what was writing has ended).
    pub async fn settled(&self) {
        drop(self.turnstile.enter().await);
    }

    /// Writes the pending parts as the next flush of the turn holding `token`; resolves after every
    /// earlier flush too. A failed write keeps the parts for the next flush.
    pub async fn flush(&self, shared: &Shared, id: &str, token: u64, invocation: &str) -> EngineResult<bool> {
        let (_passage, taken) = self.take_next(invocation).await;
        let Some(taken) = taken else { return Ok(false) };
        self.write_taken(shared, id, token, taken).await.map(|()| true)
    }

    /// Once every earlier flush is written, takes the pending parts as the next flush (`None` when
    /// nothing is pending); no later flush is taken while the returned passage is held. A commit
    /// writes them with its records and then calls [`LiveLog::wrote`] or, when it failed,
    /// [`LiveLog::write_taken`].
    pub async fn take_next(&self, invocation: &str) -> (Passage<'_>, Option<(u64, Flush)>) {
        let passage = self.turnstile.enter().await;
        let mut pending = self.pending.borrow_mut();
        pending.scheduled = false;
        if pending.parts.is_empty() {
            return (passage, None);
        }
        let flush = Flush {
            invocation: invocation.to_owned(),
            first_seq: pending.first_seq,
            parts: std::mem::take(&mut pending.parts),
        };
        pending.bytes = 0;
        (passage, Some((pending.next_flush, flush)))
    }

    /// Writes flush number `n` (taken by [`LiveLog::take_next`]) on its own. Its key is written once
    /// with these parts: a commit that failed may have written it already, and then it is there as
    /// it would be now. A failed write puts the parts back.
    pub async fn write_taken(
        &self,
        shared: &Shared,
        id: &str,
        token: u64,
        (n, flush): (u64, Flush),
    ) -> EngineResult<()> {
        let key = keys::live_key(id, token, n);
        match shared.store.put(&key, codec::encode_flush(&flush).into(), Expect::Absent).await {
            Ok(_) => {
                self.wrote(shared, id, n, flush);
                Ok(())
            }
            Err(error) => {
                self.put_back(flush);
                Err(error.into())
            }
        }
    }

    /// A flush that was not written: its parts go back in front of anything emitted meanwhile, seqs
    /// unchanged, for the next flush.
    pub fn put_back(&self, flush: Flush) {
        let mut pending = self.pending.borrow_mut();
        let later = std::mem::replace(&mut pending.parts, flush.parts);
        pending.bytes = pending.parts.iter().chain(&later).map(|part| part.len()).sum();
        pending.parts.extend(later);
        pending.first_seq = flush.first_seq;
    }
}

/// A stop this store asked, listed in [`Shared::stops_asked`] until its `stop()` returns, or, when
/// it fenced a turn this store holds, until that turn's invocation fires its signal
/// ([`crate::engine::Invocation`]'s `fire`): its first read of `signal` after the fence is then
/// aborted by this stop, as one read during the grace is.
struct AskedHere<'a> {
    shared: &'a Shared,
    id: &'a str,
    token: Cell<Option<u64>>,
    kept: Cell<bool>,
}

impl AskedHere<'_> {
    fn note(&self, token: u64, reason: &str) {
        self.token.set(Some(token));
        self.shared.stops_asked.borrow_mut().push((self.id.to_owned(), token, reason.to_owned()));
    }

    /// Leaves the stop of `token` listed after `stop()` returns: it fenced a turn this store holds.
    fn keep_for_holder(&self, token: u64, reason: &str) {
        if self.token.get() != Some(token) {
            self.note(token, reason);
        }
        self.kept.set(true);
    }
}

impl Drop for AskedHere<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.get().filter(|_| !self.kept.get()) {
            self.shared.stops_asked.borrow_mut().retain(|(id, asked, _)| !(id == self.id && *asked == token));
        }
    }
}

/// How `stop()` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopResult {
    pub outcome: &'static str,
    pub invocation: Option<String>,
    pub version: u64,
}

/// How often a stopper reads the head while it waits for the holder (sooner when woken).
const STOP_POLL_MS: u64 = 50;
/// A follower's poll interval without news: from the first to the last, doubling.
const FOLLOW_POLL_MIN_MS: u64 = 25;
const FOLLOW_POLL_MAX_MS: u64 = 250;

impl Session {
    /// The live logs that the turn of `token`, just leased on `head`, makes stale: prefixes with
    /// their keys when known ([`Store::delete_prefix`]'s arguments). A failed delete leaves them for
    /// `delete()` of the session: they are never shown again either way.
    pub(crate) fn stale_live_logs(&self, head: &Head, token: u64) -> Vec<(String, Vec<String>)> {
        let id = self.id();
        live::stale_logs(head, token)
            .into_iter()
            .map(|(stale, flushes)| {
                let known = (0..flushes.unwrap_or(0)).map(|n| keys::live_key(id, stale, n)).collect();
                (keys::live_prefix(id, stale), known)
            })
            .collect()
    }

    /// The prefixes of [`Session::stale_live_logs`] for the lease of `leased`, where the store deletes
    /// them with the lease's write; none elsewhere (the turn's first write deletes them then).
    pub(crate) fn stale_live_prefixes(&self, leased: &Head) -> Vec<String> {
        if !self.shared.store.clears_in_put() {
            return Vec::new();
        }
        self.stale_live_logs(leased, leased.last_token).into_iter().map(|(prefix, _)| prefix).collect()
    }

    /// Asks the turn running now to stop and resolves once it ended (`stopped`), or once the grace
    /// ran out and this store fenced it (`fenced`); `idle` when nothing runs.
    pub async fn stop(&self, reason: &str, grace_ms: u64) -> EngineResult<StopResult> {
        let shared = &self.shared;
        shared.check_open()?;
        crate::core::limits::check_reason("a stop reason", "options.reason", reason)?;
        let id = self.id();
        let head_key = keys::head_key(id);
        let stopper = crate::engine::random_id(&*shared.env);
        let holder = Holder { owner: &shared.config.owner, instance: &shared.instance, invocation: &stopper };
        let ask = StopAsk { reason, grace_ms };
        let mut asked: Option<(u64, u64)> = None;
        let asked_here = AskedHere { shared, id, token: Cell::new(None), kept: Cell::new(false) };
        let mut invocation: Option<String> = None;
        for _ in 0..100_000 {
            let Some((head, version)) = load::read_head(&*shared.store, id).await? else {
                return Err(self.deleted());
            };
            let now = shared.now();
            if invocation.is_none() {
                invocation = head.lease.as_ref().map(|lease| lease.invocation.clone());
            }
            // Asked only of a turn still running by the clock: in browsers, whether its realm is gone.
            let running = head.live_lease(now).map(|lease| lease.instance.clone());
            let holder_gone = match running {
                Some(instance) => shared.holder_gone(&instance).await,
                None => false,
            };
            let now = shared.now();
            match guard::stop_step(&head, asked, ask, holder, now, shared.config.lease_ms, holder_gone) {
                StopStep::Idle => {
                    self.catch_up(head.clone(), version).await?;
                    return Ok(StopResult { outcome: "idle", invocation: None, version: head.version });
                }
                StopStep::Request { head: requested, token, deadline } => {
                    let written = shared
                        .store
                        .put(&head_key, crate::engine::head_value(&requested), Expect::Version(version))
                        .await?;
                    if written.is_some() {
                        asked = Some((token, deadline));
                        asked_here.note(token, reason);
                        shared.env.wake(id, true);
                    }
                }
                StopStep::Wait { token, deadline } => {
                    asked = Some((token, deadline));
                    let pause = deadline.saturating_sub(now).clamp(1, STOP_POLL_MS);
                    shared.env.wait(id, pause, None).await;
                }
                StopStep::Ended(outcome) => {
                    self.catch_up(head.clone(), version).await?;
                    let outcome = live::stop_result(outcome);
                    let invocation = if outcome == "idle" { None } else { invocation };
                    return Ok(StopResult { outcome, invocation, version: head.version });
                }
                StopStep::Fence { committed, request } => {
                    let mut fenced = committed.head;
                    // The flushes the fenced turn wrote so far are all followers read of it: one its
                    // holder writes after the fence is never shown.
                    if let Some(lease) = &head.lease {
                        let written = shared.store.list(&keys::live_prefix(id, lease.token), None, 10_000).await?;
                        live::note_flushes(&mut fenced, lease.token, written.keys.len() as u64);
                    }
                    let batch = Batch {
                        version: fenced.version,
                        token: fenced.last_token,
                        at: now,
                        invocation: stopper.clone(),
                        traceparent: None,
                        events: vec![Event::Stopped {
                            reason: request.reason.clone(),
                            by: request.by.clone(),
                            outcome: TurnOutcome::Fenced,
                        }],
                    };
                    let records =
                        vec![(keys::batch_key(id, fenced.version, fenced.last_token), codec::encode_batch(&batch))];
                    // The fenced turn may not have written since its begin: the live logs it made stale
                    // go with the fence.
                    let stale =
                        head.lease.as_ref().map_or_else(Vec::new, |lease| self.stale_live_logs(&head, lease.token));
                    let fence = crate::engine::head_value(&fenced);
                    let expected = Expect::Version(version);
                    let written =
                        crate::store::commit_deleting(&*shared.store, records, &head_key, fence, expected, stale)
                            .await?;
                    if let Some(written) = written {
                        // This realm's mark of the fenced turn (when this store held it) is spent.
                        if let Some(ended) = &fenced.ended {
                            if shared.marks.borrow().get(id).is_some_and(|mark| mark.token == Some(ended.token)) {
                                asked_here.keep_for_holder(ended.token, &request.reason);
                            }
                            shared.clear_mark(id, Some(ended.token));
                        }
                        shared.tell_followers(id, &fenced, fenced.last_token, Vec::new());
                        self.catch_up(fenced.clone(), written).await?;
                        shared.emit_commit(id, &fenced);
                        self.announce(fenced.version, fenced.status);
                        shared.env.wake(id, true);
                        return Ok(StopResult { outcome: "fenced", invocation, version: fenced.version });
                    }
                }
            }
        }
        Err(EngineError::Conflict(id.to_owned()))
    }

    /// A follower of this session from now on (`after`: skip those parts of that invocation).
    pub fn follow(self: &Rc<Self>, after: Option<(String, u64)>) -> LiveFollow {
        let inbox = Rc::new(Inbox::default());
        self.shared.followers.borrow_mut().push((self.id().to_owned(), Rc::downgrade(&inbox)));
        LiveFollow {
            session: self.clone(),
            follower: RefCell::new(Follower::new(after, &self.head())),
            quiet: Cell::new(0),
            news: Cell::new(false),
            done: Cell::new(false),
            inbox,
            cache: RefCell::default(),
            place: Cell::new(None),
            start: RefCell::new(Some(self.head())),
        }
    }
}

/// One `follow()` iteration's reader.
pub struct LiveFollow {
    session: Rc<Session>,
    follower: RefCell<Follower>,
    /// Polls in a row that found nothing new (the next wait doubles).
    quiet: Cell<u32>,
    /// Whether the last poll yielded something.
    news: Cell<bool>,
    done: Cell<bool>,
    /// What this store's own turns told this follower since its last poll ([`Shared::tell_followers`]).
    inbox: Rc<Inbox>,
    /// Flushes the notes carried, by token, each with its number, until read.
    cache: RefCell<Vec<(u64, Flushes)>>,
    /// The place of the last head this follower took in ([`live::head_place`]).
    place: Cell<Option<(u64, u64, bool)>>,
    /// The head this store knew when `follow()` was called: where the follower starts when notes of
    /// turns that began after it come before its first read of the store (those turns are replayed).
    start: RefCell<Option<Head>>,
}

impl LiveFollow {
    pub fn is_done(&self) -> bool {
        self.done.get()
    }

    /// Reads the head, then the flushes it leads to: the events to yield now (empty: wait). The heads
    /// this store's own turns wrote since the last poll come first, in the order they were written:
    /// turns run back to back here may have begun and ended between two reads of the store.
    pub async fn poll(&self) -> EngineResult<Vec<LiveEvent>> {
        let session = &self.session;
        let shared = &session.shared;
        // A follower whose store was closed finishes (API.md: ended "by `close`", not thrown).
        if self.done.get() || shared.check_open().is_err() {
            self.done.set(true);
            return Ok(Vec::new());
        }
        let id = session.id();
        let read = load::read_head(&*shared.store, id).await?;
        let now = shared.now();
        let mut holder_gone = false;
        // A head of a session created again under the id ends this follower (as its deletion does),
        // whatever place its version and token give it; the Session followed is not moved onto it.
        let another = read.as_ref().is_some_and(|(head, _)| self.follower.borrow().is_another_session(head));
        if let Some((head, version)) = read.as_ref().filter(|_| !another) {
            if head.version != session.version() || head.status != session.status() {
                // The Session followed shows the version an `end` or `commit` reports.
                let _ = session.catch_up(head.clone(), version.clone()).await;
            }
            let waiting_on = self.follower.borrow().holder_instance().map(str::to_owned);
            if let Some(instance) = waiting_on {
                holder_gone = shared.holder_gone(&instance).await;
            }
        }
        // Taken after the read: a note of a head written before it completed is older or the same.
        // The notes are in the order their heads were written; the store's read goes after every note
        // of its place or before (not a sort: each element type sorted adds a sort's code to the .wasm).
        let notes = std::mem::take(&mut *self.inbox.notes.borrow_mut());
        self.inbox.bytes.set(0);
        let mut heads = Vec::with_capacity(notes.len() + 2);
        let start = self.start.borrow_mut().take();
        if let Some(start) = start.filter(|_| !notes.is_empty()) {
            heads.push((Some(start), false));
        }
        for Note { head, token, flushes } in notes {
            self.cache.borrow_mut().push((token, flushes));
            heads.push((Some(head), false));
        }
        let at = match &read {
            Some((head, _)) => {
                let place = live::head_place(head);
                heads.iter().position(|(note, _)| note.as_ref().is_some_and(|note| live::head_place(note) > place))
            }
            None => None,
        };
        heads.insert(at.unwrap_or(heads.len()), (read.map(|(head, _)| head), true));
        let mut events = Vec::new();
        for (head, from_store) in heads {
            if self.done.get() {
                break;
            }
            // A note's head taken in already is passed over; the store's read of the same place is
            // taken again (it may show a stop request, or a lease the clock has ended since).
            if let Some(head) = head.as_ref().filter(|_| !(from_store && another)) {
                let place = live::head_place(head);
                if self.place.get().is_some_and(|taken| if from_store { place < taken } else { place <= taken }) {
                    continue;
                }
                self.place.set(Some(place));
            }
            self.follower.borrow_mut().on_head(head, now, from_store && holder_gone);
            loop {
                let (next, decided) = self.follower.borrow_mut().advance();
                events.extend(decided);
                match next {
                    Next::Read { token, n } => {
                        let cached = {
                            let mut cache = self.cache.borrow_mut();
                            let flushes = cache.iter_mut().filter(|(t, _)| *t == token).map(|(_, flushes)| flushes);
                            flushes
                                .filter_map(|flushes| {
                                    flushes.iter().position(|(m, _)| *m == n).map(|at| flushes.swap_remove(at).1)
                                })
                                .next()
                        };
                        let flush = match cached {
                            Some(flush) => Some(flush),
                            None => {
                                let key = keys::live_key(id, token, n);
                                match shared.store.get(&key).await? {
                                    Some(entry) => Some(codec::decode_flush(&key, &entry.value)?),
                                    None => None,
                                }
                            }
                        };
                        events.extend(self.follower.borrow_mut().on_flush(flush));
                    }
                    Next::Batches { after, last } => {
                        let head = self.follower.borrow().head().cloned();
                        let batches = match head {
                            Some(head) => match load::batches_after(&*shared.store, id, &head, after, last).await {
                                Ok(batches) => batches,
                                // The backend failed: the follower says so, as for a flush it reads.
                                Err(error @ EngineError::Store(_)) => return Err(error),
                                // Gone (pruned, or deleted meanwhile): they tell nothing, and the turn
                                // ends as its commits say.
                                Err(_) => Vec::new(),
                            },
                            None => Vec::new(),
                        };
                        self.follower.borrow_mut().on_batches(&batches);
                    }
                    Next::Wait => break,
                    Next::Done => {
                        self.done.set(true);
                        break;
                    }
                }
            }
        }
        if let Some((turn, _, _)) = self.place.get() {
            // Turns before the last head taken in have been read to their end (or passed over).
            self.cache.borrow_mut().retain(|(token, _)| *token >= turn);
        }
        // The first empty poll after news keeps the shortest wait: the iterator polls again at once
        // after yielding, and that poll finding nothing yet says nothing about the stream slowing.
        let quiet = match (events.is_empty(), self.news.replace(!events.is_empty())) {
            (false, _) | (true, true) => 0,
            (true, false) => self.quiet.get().saturating_add(1),
        };
        self.quiet.set(quiet);
        Ok(events)
    }

    /// Waits for news: a wake for this session, the holder's realm going away, or the next poll.
    /// Notes this store's turns left since the last poll are news already.
    pub async fn wait(&self) {
        if !self.inbox.notes.borrow().is_empty() {
            return;
        }
        let shared = &self.session.shared;
        let ms = FOLLOW_POLL_MIN_MS.saturating_mul(1 << self.quiet.get().min(8)).min(FOLLOW_POLL_MAX_MS);
        let holder = self.follower.borrow().holder_instance().map(str::to_owned);
        shared.env.wait(self.session.id(), ms, holder.as_deref()).await;
    }
}
