//! The running turn made visible: the live log's flushes, when a holder flushes, and what a
//! follower yields, as pure functions of what was read and `now`.
//!
//! A holder's `emit()`ed parts are written in flushes `t/<session>/<token>/<n>` (n = 0, 1, ...),
//! immutable, under its fencing token and never named by a head. A follower reads the head first,
//! then the flushes of the turn it follows from the next one it has not read until one is absent;
//! because a holder's commit waits for its flushes and writes the parts not flushed yet with its
//! batch (in its transaction, or before the head), a head that shows a turn ended is read before that
//! turn's last flushes, so draining after it yields every part before the `end`.

use crate::core::event::Event;
use crate::core::lifecycle::{self, Status};
use crate::core::record::{Batch, Head, Json, TurnEnd, TurnOutcome};

/// One flush of live parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush {
    /// Id of the invocation that emitted the parts.
    pub invocation: String,
    /// The seq of the first part; the others follow one by one.
    pub first_seq: u64,
    /// JSON texts.
    pub parts: Vec<Json>,
}

/// Pending bytes at which a holder flushes at once instead of waiting for `liveFlushMs`.
pub const FLUSH_NOW_BYTES: usize = 16 * 1024;

/// When the holder's pending parts must be flushed, in ms from now: at once past
/// [`FLUSH_NOW_BYTES`], otherwise `flush_ms` after the first unflushed part.
pub fn flush_delay(pending_bytes: usize, first_pending_at: u64, now: u64, flush_ms: u64) -> u64 {
    if pending_bytes >= FLUSH_NOW_BYTES {
        return 0;
    }
    first_pending_at.saturating_add(flush_ms).saturating_sub(now)
}

/// The live logs that the turn of `token`, whose lease `head` carries, deletes as it begins: the
/// previous turn's, when it wrote flushes, and the turn before ours when it never ended by a
/// decision (its lease ran out or was taken over; how many flushes it wrote is unknown: `None`,
/// list them). A fenced turn's holder may have flushed after the fence (followers never see those
/// flushes: the fence counted the ones before it), so its log is listed too. A session none of whose
/// turns ended yet has nothing to delete.
pub fn stale_logs(head: &Head, token: u64) -> Vec<(u64, Option<u64>)> {
    let Some(ended) = &head.ended else { return Vec::new() };
    let mut logs = Vec::new();
    let fenced = ended.outcome == TurnOutcome::Fenced;
    if (fenced || ended.flushes != Some(0)) && ended.token != token {
        logs.push((ended.token, if fenced { None } else { ended.flushes }));
    }
    let before = token.saturating_sub(1);
    if ended.token != before && ended.token < before {
        logs.push((before, None));
    }
    logs
}

/// Where `head` stands in its session's sequence of heads: the turn last granted, then the version,
/// then the turn's end after its running heads. A head with a greater place was written after one
/// with a smaller; two with the same place differ only in what a follower learns from the store
/// anyway (a stop request, a lease running out by the clock).
pub fn head_place(head: &Head) -> (u64, u64, bool) {
    (head.last_token, head.version, head.lease.is_none())
}

/// Records on a head that ends the turn of `token` how many flushes that turn wrote.
pub fn note_flushes(head: &mut Head, token: u64, flushes: u64) {
    if let Some(ended) = head.ended.as_mut().filter(|ended| ended.token == token) {
        ended.flushes = Some(flushes);
    }
}

/// What a follower yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    Part { invocation: String, seq: u64, data: Json },
    End { invocation: String, outcome: &'static str, version: u64, status: Status },
    Commit { version: u64, status: Status },
}

/// What the follower needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read flush `n` of the turn holding `token` and pass it to [`Follower::on_flush`].
    Read { token: u64, n: u64 },
    /// Read the batches of versions `after + 1 ..= last` and pass them to [`Follower::on_batches`]:
    /// how the followed turn ended, when the head no longer says.
    Batches { after: u64, last: u64 },
    /// Nothing more until something changes: wait for a wake or a poll.
    Wait,
    /// The session was deleted, closed or expired: the iteration ends.
    Done,
}

#[derive(Debug, Clone)]
struct Turn {
    token: u64,
    invocation: String,
    next_flush: u64,
    next_seq: u64,
    /// Whether the flushes present at the last head read have all been read.
    drained: bool,
    /// Once the batches from its last commit on were read ([`Next::Batches`]): how and at which
    /// version they say it ended, if they say.
    read_end: Option<Option<(&'static str, u64, Status)>>,
}

impl Turn {
    /// A turn to read from its first flush on.
    fn from_start(token: u64, invocation: &str) -> Turn {
        Turn { token, invocation: invocation.to_owned(), next_flush: 0, next_seq: 0, drained: false, read_end: None }
    }
}

/// A follower of one session (`session.follow()`).
#[derive(Debug, Clone)]
pub struct Follower {
    /// Skip the parts of this invocation up to this seq (a resume after a reload).
    after: Option<(String, u64)>,
    turn: Option<Turn>,
    /// The highest token of a turn this follower has followed, or passed over at its start: a turn
    /// with a higher one that already ended when a head showed it began and ended between two
    /// reads, and is still read (its parts, then its end).
    seen: Option<u64>,
    /// The version this follower has reported (or found at its start).
    version: Option<u64>,
    head: Option<Head>,
    /// The followed session's creation time: a head of another session under the id (deleted and
    /// created again between two reads) has another. (Not its version or tokens: a stale read of an
    /// eventually consistent backend, Workers KV, may show lower ones of the same session.)
    created_at: u64,
    deleted: bool,
    holder_gone: bool,
    now: u64,
    done: bool,
}

impl Follower {
    /// A follower of the session whose head, as the caller's view holds it, is `of` (its creation
    /// time names the session followed, whatever the follower's first read finds).
    pub fn new(after: Option<(String, u64)>, of: &Head) -> Follower {
        Follower {
            after,
            turn: None,
            seen: None,
            version: None,
            head: None,
            created_at: of.created_at,
            deleted: false,
            holder_gone: false,
            now: 0,
            done: false,
        }
    }

    /// The instance of the live lease whose holder this follower waits on (to be told when that
    /// realm goes away), if any.
    pub fn holder_instance(&self) -> Option<&str> {
        let head = self.head.as_ref()?;
        let turn = self.turn.as_ref()?;
        head.lease.as_ref().filter(|lease| lease.token == turn.token).map(|lease| lease.instance.as_str())
    }

    /// Takes a freshly read head (`None`: the session was deleted) and whether the host knows the
    /// holder of its lease to be gone. Read the head before the flushes it leads to. A head of a
    /// session created again under the id since the last read (another creation time) means the
    /// followed one was deleted.
    pub fn on_head(&mut self, head: Option<Head>, now: u64, holder_gone: bool) {
        self.now = now;
        self.holder_gone = holder_gone;
        let head = head.filter(|head| !self.is_another_session(head));
        self.deleted = head.is_none();
        self.head = head;
        if let Some(turn) = self.turn.as_mut() {
            turn.drained = false;
            turn.read_end = None;
        }
    }

    /// The head last taken in.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// Takes the batches [`Next::Batches`] asked for (none when they are gone): the followed turn
    /// ended where a stopper's fence of it wrote one (the turn's token + 1, a `stopped` event of
    /// outcome `fenced`, which nothing else writes), else at its own last commit, as that batch says
    /// (`stopped` with a stop's event, `interrupted` when it ends with an interrupt, else
    /// `committed`: a checkpoint its holder then aborted, or died after, looks the same).
    pub fn on_batches(&mut self, batches: &[Batch]) {
        let Some(turn) = self.turn.as_mut() else { return };
        let fenced = |batch: &&Batch| {
            batch.token == turn.token + 1
                && batch.events.iter().any(|e| matches!(e, Event::Stopped { outcome: TurnOutcome::Fenced, .. }))
        };
        // The status each left: a fence releases (idle); a commit as its events end it.
        let ended = match batches.iter().find(fenced) {
            Some(fence) => Some((TurnOutcome::Fenced.as_str(), fence.version, Status::Idle)),
            None => batches.iter().rev().find(|batch| batch.token == turn.token).map(|own| {
                // (A stop asked of the turn outranks its interrupt, as on the head: `guard::commit`.)
                let outcome = if own.events.iter().any(|e| matches!(e, Event::Stopped { .. })) {
                    TurnOutcome::Stopped
                } else if lifecycle::status_at(&own.events) == Status::Interrupted {
                    TurnOutcome::Interrupted
                } else {
                    TurnOutcome::Committed
                };
                (outcome.as_str(), own.version, lifecycle::status_at(&own.events))
            }),
        };
        turn.read_end = Some(ended);
    }

    /// Whether `head` is of another session than the one followed: one created again under the id
    /// (another creation time). One created again in the same millisecond is not told apart.
    pub fn is_another_session(&self, head: &Head) -> bool {
        head.created_at != self.created_at
    }

    /// Takes flush `n` of the followed turn (`None`: absent) and returns the parts to yield.
    pub fn on_flush(&mut self, flush: Option<Flush>) -> Vec<LiveEvent> {
        let Some(turn) = self.turn.as_mut() else { return Vec::new() };
        let Some(flush) = flush else {
            turn.drained = true;
            return Vec::new();
        };
        turn.next_flush += 1;
        turn.invocation.clone_from(&flush.invocation);
        let skip = match &self.after {
            Some((invocation, seq)) if *invocation == flush.invocation => Some(*seq),
            _ => None,
        };
        let mut events = Vec::new();
        for (offset, data) in flush.parts.into_iter().enumerate() {
            let seq = flush.first_seq + offset as u64;
            if seq < turn.next_seq || skip.is_some_and(|skip| seq <= skip) {
                continue;
            }
            turn.next_seq = seq + 1;
            events.push(LiveEvent::Part { invocation: flush.invocation.clone(), seq, data });
        }
        events
    }

    /// What to read next, and the events decided by the last head once the flushes it led to are
    /// read (`end`, `commit`).
    pub fn advance(&mut self) -> (Next, Vec<LiveEvent>) {
        let mut events = Vec::new();
        if self.done {
            return (Next::Done, events);
        }
        loop {
            if let Some(turn) = self.turn.as_mut() {
                // A turn whose end the head records with its number of flushes has none past it: a
                // holder fenced out may still write one, which is never shown.
                let written = self.head.as_ref().and_then(|head| head.ended.as_ref());
                let written = written.filter(|ended| ended.token == turn.token).and_then(|ended| ended.flushes);
                if written.is_some_and(|flushes| turn.next_flush >= flushes) {
                    turn.drained = true;
                }
                if !turn.drained {
                    return (Next::Read { token: turn.token, n: turn.next_flush }, events);
                }
            }
            let Some(head) = self.head.as_ref() else {
                if self.deleted {
                    if let Some(turn) = self.turn.take() {
                        let version = self.version.unwrap_or(0);
                        events.push(LiveEvent::End {
                            invocation: turn.invocation,
                            outcome: "lost",
                            version,
                            status: Status::Closed,
                        });
                    }
                    self.done = true;
                    return (Next::Done, events);
                }
                return (Next::Wait, events);
            };
            let now = self.now;
            let version = head.version;
            let status = head.effective_status(now);
            if let Some(turn) = self.turn.take() {
                let live = head.status == Status::Running
                    && !self.holder_gone
                    && head.live_lease(now).is_some_and(|lease| lease.token == turn.token);
                if live {
                    self.turn = Some(turn);
                    if self.version.is_some_and(|seen| version > seen) {
                        events.push(LiveEvent::Commit { version, status });
                        self.version = Some(version);
                    }
                    return (Next::Wait, events);
                }
                let (outcome, version, read_status) =
                    match head.ended.as_ref().filter(|ended| ended.token == turn.token) {
                        Some(ended) => (ended.outcome.as_str(), version, None),
                        // A later turn ended since: the head no longer says how this one did, but its
                        // batches do (its last commit, and the version after it, which only a stopper's
                        // fence could commit while the turn held the lease; every version since the
                        // follower's last when a snapshot hides the turn's commits from the head). Only a
                        // turn that wrote none since the last version reported, and was not fenced, is
                        // reported lost (it may have aborted, or died after a checkpoint), at that
                        // version: the later ones are the later turn's.
                        None => {
                            let seen = self.version.unwrap_or(version);
                            let committed = committed_at(head, turn.token, self.version);
                            let after = committed.map_or(seen, |at| at - 1);
                            let last = match committed {
                                None if head.snapshot_version() > seen => version,
                                _ => version.min(after + 2),
                            };
                            match turn.read_end {
                                None if after < version => {
                                    self.turn = Some(turn);
                                    return (Next::Batches { after, last }, events);
                                }
                                Some(Some((outcome, at, status))) => (outcome, at, Some(status)),
                                _ => match committed {
                                    Some(at) => ("committed", at, None),
                                    None => ("lost", seen, None),
                                },
                            }
                        }
                    };
                // The status the turn left the session in: as its batch says when read; else a head
                // already running the next turn (a begin does not move the version) was at rest at
                // this version.
                let status = match (read_status, status) {
                    (Some(read), _) => read,
                    (None, Status::Running) => head.resting_status(),
                    (None, status) => status,
                };
                events.push(LiveEvent::End { invocation: turn.invocation, outcome, version, status });
                self.version = Some(version);
                continue;
            }
            let first_look = self.version.is_none();
            let unseen = |token: u64| self.seen.is_none_or(|seen| token > seen);
            if first_look {
                // Turns that ended before the follower started are not replayed, but for the one a
                // reload resumes (`after` names it) while no next turn has begun: the rest of its
                // parts, then its end, exactly once across the reload (its live log is readable until
                // the next turn begins; then the follower follows that one, as before).
                let resumes = |ended: &&TurnEnd| {
                    head.status != Status::Running
                        && self.after.as_ref().is_some_and(|(invocation, _)| *invocation == ended.invocation)
                };
                let resumed = head.ended.as_ref().filter(resumes);
                self.seen = head.ended.as_ref().map(|ended| ended.token);
                if let Some(ended) = resumed {
                    self.turn = Some(Turn::from_start(ended.token, &ended.invocation));
                    continue;
                }
            } else if let Some(ended) = head.ended.as_ref().filter(|ended| unseen(ended.token)) {
                // A turn that began and ended between two reads: its parts, then its end.
                self.seen = Some(ended.token);
                self.turn = Some(Turn::from_start(ended.token, &ended.invocation));
                continue;
            }
            let running = head.live_lease(now).filter(|lease| {
                head.status == Status::Running && self.seen.is_none_or(|seen| lease.token > seen) && !self.holder_gone
            });
            if let Some(lease) = running {
                self.seen = Some(lease.token);
                match self.version {
                    // A checkpoint of this turn: reported once the parts flushed before it are read
                    // (the turn's branch above), as an `end` is after them.
                    Some(seen) if version > seen && head.commit_token(version) == Some(lease.token) => {}
                    // A version this follower has not reported, from a turn it did not see begin.
                    Some(seen) if version > seen => {
                        events.push(LiveEvent::Commit { version, status });
                        self.version = Some(version);
                    }
                    _ => self.version = Some(version),
                }
                self.turn = Some(Turn::from_start(lease.token, &lease.invocation));
                continue;
            }
            if !first_look && self.version.is_some_and(|seen| version > seen) {
                events.push(LiveEvent::Commit { version, status });
            }
            self.version = Some(version);
            if status.is_terminal() {
                self.done = true;
                return (Next::Done, events);
            }
            return (Next::Wait, events);
        }
    }
}

/// The last version after `reported` that the turn of `token` wrote, as far as `head` names it.
fn committed_at(head: &Head, token: u64, reported: Option<u64>) -> Option<u64> {
    let after = reported.unwrap_or(0);
    (after.saturating_add(1)..=head.version).rev().find(|&version| head.commit_token(version) == Some(token))
}

/// The outcome a turn ended by a fence reports to the stopper (`StopResult.outcome`).
pub fn stop_result(outcome: Option<TurnOutcome>) -> &'static str {
    match outcome {
        Some(TurnOutcome::Fenced) => "fenced",
        Some(_) => "stopped",
        None => "idle",
    }
}
