//! The guard protocol: lease and fencing-token decisions over the head record.
//!
//! Every function takes the head as last read, the input and `now`, and returns the head to
//! compare-and-set in its place (or the refusal). The compare-and-set on the head is the only
//! arbiter: a decision made on a stale head fails its write and is taken again on the fresh head.
//!
//! - acquire: refused with `Concurrency` while another lease is live (whoever holds it: an owner name
//!   is a label, not a pass); otherwise a new lease with token `last_token + 1`, so an expired
//!   holder is fenced out by every later write.
//! - renew / checkpoint / commit / release: only while the head still carries this token and the
//!   lease has not run out; otherwise `LeaseLost` (nothing the holder staged becomes visible).
//! - takeover: a live lease whose holder instance is proven gone (its Web Lock is free) is taken
//!   at once with token + 1; [`decide_acquire`] says when to ask ([`Acquire::AskIfAlive`]).
//! - stop: a request recorded on the head without touching the lease ([`stop_step`]); the holder
//!   ends its turn ([`stop_pending`] tells it, and its end records the `stopped` event), or after
//!   the stopper's grace the stopper fences it: the takeover of [`acquire_over`] (token + 1) and a
//!   release, in one compare-and-set.
//! - the busy mark of one realm ([`Mark`]), the first token of a new session, the renew interval
//!   and the pause between tries of a waiting begin: deadlines returned as data, in the manner of
//!   quinn-proto's `poll_timeout`; the engine only sleeps and writes.

use crate::core::commits::Commits;
use crate::core::error::CoreError;
use crate::core::lifecycle::{transition, Action, Status};
use crate::core::record::{Head, Interrupt, Lease, SnapshotRef, StopRequest, TurnEnd, TurnOutcome};

/// Who is asking for the lease.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub owner: &'a str,
    pub instance: &'a str,
    /// Id of the invocation the lease is for.
    pub invocation: &'a str,
}

/// Why the lease is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Begin,
    Resume,
    Close,
    /// A turn of the store's own upkeep (a prune, a stop's fence): from idle or interrupted alike,
    /// decided on the head itself, so that a stale view of the session does not refuse it. When the
    /// session waits on an interrupt it is taken as a resume, and its release leaves it waiting. A
    /// closed session's is taken with its status left closed (`Action::Maintain`): a prune of an
    /// archive.
    Maintain,
}

/// How a guarded change ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Commit and release: idle.
    Commit,
    /// Commit, keep the lease: still running.
    Checkpoint,
    /// Commit with a question for a human, release: interrupted.
    Interrupt(Interrupt),
    /// Commit the close, release: closed.
    Close,
    /// Commit without a change of status, release: how an abort ends a turn that was asked to
    /// stop (its version carries the `stopped` event), and how a fence ends it.
    Abort,
}

/// This realm's busy mark for a session: set synchronously before the first await of a begin, so
/// that two calls in one realm can never both pass the check. It belongs to the lease: once
/// `expires_at` has passed it no longer blocks (a forgotten invocation must not lock a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The token of the lease it belongs to; `None` while the begin has not got one yet.
    pub token: Option<u64>,
    pub expires_at: u64,
}

impl Mark {
    /// The mark of a begin that is still taking its lease: it lasts as long as that lease would.
    pub fn pending(now: u64, lease_ms: u64) -> Mark {
        Mark { token: None, expires_at: now.saturating_add(lease_ms) }
    }

    /// The mark of a held lease.
    pub fn held(lease: &Lease) -> Mark {
        Mark { token: Some(lease.token), expires_at: lease.expires_at }
    }

    /// The mark to keep after a write of the holder of `token` produced `head`: the lease's, while
    /// the head still carries it; `None` (clear it) once it was released.
    pub fn after(head: &Head, token: u64) -> Option<Mark> {
        head.lease.as_ref().filter(|lease| lease.token == token).map(Mark::held)
    }
}

/// The busy check of one realm: refused while `mark` is live. `owner` is this store's owner name
/// (the holder the error names: the mark is this realm's own).
pub fn check_mark(mark: Option<&Mark>, owner: &str, now: u64) -> Result<(), CoreError> {
    match mark {
        Some(mark) if mark.expires_at > now => {
            Err(CoreError::Concurrency { holder: owner.to_owned(), retry_after_ms: mark.expires_at - now })
        }
        _ => Ok(()),
    }
}

/// The answer to a begin that this realm's own begin, still taking its lease, keeps out
/// (`check_mark`), by the guard's `decision` on the head as just read: what the head refuses (a
/// closed, expired or interrupted session, another store's live lease) is the truer answer than
/// "busy", since the pending begin gets that refusal too (a live lease is named as the head names
/// it, without asking whether its holder is alive: the pending begin asks). `None`: the head would
/// grant it, so the answer is how the pending begin ends (its mark, checked again: held, cleared, or
/// still pending).
pub fn refusal_beside_pending(decision: Acquire) -> Option<CoreError> {
    match decision {
        Acquire::Refused(refusal) | Acquire::AskIfAlive { refusal, .. } => Some(refusal),
        Acquire::Leased(_) | Acquire::Held => None,
    }
}

/// A begin refused by this store's mark of a lease it holds (`check_mark`), by the guard's `decision`
/// on `head` as just read: a closed or expired session refuses by its status whatever holds it (the
/// only lease a terminal session carries is a prune's), which is the truer answer than "busy", and
/// the one another store gets. `None`: the mark's refusal stands.
pub fn refusal_beside_held(head: &Head, decision: Acquire, now: u64) -> Option<CoreError> {
    match decision {
        Acquire::Refused(refusal) if head.effective_status(now).is_terminal() => Some(refusal),
        _ => None,
    }
}

/// Whether `head` carries the live lease of `holder`'s invocation: this begin's own write, applied
/// though its answer was lost. A client that retried the write after a dropped connection (Upstash's
/// REST client retries, ioredis resends) sees it refused by the head it wrote itself; a write that
/// failed or timed out may have landed. Invocation ids are random: no other begin names this one.
pub fn holds_own_lease(head: &Head, holder: Holder<'_>, now: u64) -> bool {
    !holder.invocation.is_empty()
        && head.live_lease(now).is_some_and(|lease| {
            lease.invocation == holder.invocation && lease.instance == holder.instance && lease.owner == holder.owner
        })
}

/// The store instance a begin on `head` may presume gone: its own (`holder.instance`), when the
/// head's live lease is that of its own begin of invocation `orphan`, which failed with its outcome
/// unknown (a write that timed out may land after the read back said it had not). Nobody holds that
/// invocation, and its lease would keep every begin out, this store's too, until it ran out; taken
/// over, the token goes up, which fences the write should it land still later.
pub fn orphaned_instance<'a>(head: &Head, holder: Holder<'a>, orphan: Option<&str>, now: u64) -> Option<&'a str> {
    let orphan = orphan?;
    holds_own_lease(head, Holder { invocation: orphan, ..holder }, now).then_some(holder.instance)
}

/// Whether `head` names the batch that the holder of `token` wrote at `version`, i.e. whether a
/// commit whose answer was lost (an error, or a refusal of the client's retry of it) was applied;
/// `Some(true)` when that commit also wrote the snapshot the head names.
pub fn commit_applied(head: &Head, version: u64, token: u64) -> Option<bool> {
    let snapshot = head.snapshot == Some(SnapshotRef { version, token });
    (head.version == version && (snapshot || head.token_of(version) == Some(token))).then_some(snapshot)
}

/// Whether `head` shows the commit of `token` at `version` written, whatever came after it: an
/// abort's look for its commit that failed with a storage error and may have landed since.
pub fn commit_landed(head: &Head, version: u64, token: u64) -> bool {
    head.version >= version
        && (head.snapshot == Some(SnapshotRef { version, token }) || head.token_of(version) == Some(token))
}

/// Whether this realm's `mark` no longer stands for a lease: it names a token the head (as just read)
/// no longer carries live, because that invocation was fenced by a stop, taken over or ran out
/// while its holder never ended it. Such a mark must not refuse a begin.
pub fn mark_outlived(mark: &Mark, head: &Head, now: u64) -> bool {
    mark.token.is_some_and(|token| head.live_lease(now).is_none_or(|lease| lease.token != token))
}

/// The `last_token` of a new session, from 32 random bits: tokens do not start at 0, because a
/// holder fenced out by a delete of an earlier session with the same id still writes records under
/// its old token, and those keys must not be ones the new session's heads name. Two sessions
/// created under one id share a (version, token) pair only by a 2^-32 accident; tokens stay exact
/// JS numbers.
pub fn first_token(random: u32) -> u64 {
    u64::from(random)
}

/// How often a holder renews its lease while an invocation is open: three times per lease, so that
/// one late or failed renewal does not lose it.
pub fn renew_every(lease_ms: u64) -> u64 {
    (lease_ms / 3).max(1)
}

/// How long a begin waiting for a busy session (`onBusy: { waitMs }`) pauses before trying again,
/// or `None` when its deadline has passed and it must fail with the `ConcurrencyError`. It wakes
/// when the lease would end, but at least every 250 ms (a release in another process is not
/// announced on every backend) and never after the deadline; news of the session in its realm (a
/// commit or release there, a commit notice from another tab) wakes it sooner (`Env::wait`).
pub fn retry_pause(retry_after_ms: u64, deadline: Option<u64>, now: u64) -> Option<u64> {
    let deadline = deadline.filter(|deadline| *deadline > now)?;
    Some(retry_after_ms.min(deadline - now).clamp(1, RETRY_PAUSE_MAX_MS))
}

/// See [`retry_pause`].
const RETRY_PAUSE_MAX_MS: u64 = 250;

/// The guard's answer to a begin, on the head as stored.
// A decision lives for one step; boxing the head would cost an allocation on every begin.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// Write this head (compare-and-set against the one decided on).
    Leased(Head),
    /// A live lease of store instance `instance` refuses us; if the host can prove that instance
    /// gone, decide again with it as `dead`. Otherwise `refusal` is the answer.
    AskIfAlive { instance: String, refusal: CoreError },
    /// The answer is no.
    Refused(CoreError),
    /// The head already carries this begin's lease (see [`holds_own_lease`]): nothing to write.
    Held,
}

/// The whole decision of a begin on `head`: [`acquire_over`], and on a refusal by a live lease that
/// has not been asked about yet (`dead` is `None`), whether to ask if its holder is alive.
pub fn decide_acquire(
    head: &Head,
    intent: Intent,
    holder: Holder<'_>,
    now: u64,
    lease_ms: u64,
    dead: Option<&str>,
) -> Acquire {
    if holds_own_lease(head, holder, now) {
        return Acquire::Held;
    }
    match acquire_over(head, intent, holder, now, lease_ms, dead) {
        Ok(leased) => Acquire::Leased(leased),
        Err(refusal @ CoreError::Concurrency { .. }) if dead.is_none() => match head.live_lease(now) {
            Some(lease) => Acquire::AskIfAlive { instance: lease.instance.clone(), refusal },
            None => Acquire::Refused(refusal),
        },
        Err(refusal) => Acquire::Refused(refusal),
    }
}

/// Takes the lease on `head` for `intent`.
pub fn acquire(head: &Head, intent: Intent, holder: Holder<'_>, now: u64, lease_ms: u64) -> Result<Head, CoreError> {
    acquire_over(head, intent, holder, now, lease_ms, None)
}

/// [`acquire`], treating a lease held by store instance `dead` as ended: the caller has proof that
/// the instance is gone (its Web Lock is no longer held), so waiting for the lease to run out would
/// only delay the takeover. The token still goes up by one, so the dead holder stays fenced out.
pub fn acquire_over(
    head: &Head,
    intent: Intent,
    holder: Holder<'_>,
    now: u64,
    lease_ms: u64,
    dead: Option<&str>,
) -> Result<Head, CoreError> {
    let presumed;
    let head = match (&head.lease, dead) {
        (Some(lease), Some(dead)) if lease.instance == dead && lease.expires_at > now => {
            presumed = Head { lease: Some(Lease { expires_at: now, ..lease.clone() }), ..head.clone() };
            &presumed
        }
        _ => head,
    };
    let closed = head.effective_status(now) == Status::Closed;
    if let Some(lease) = head.live_lease(now) {
        // A terminal session refuses a begin by its status, whoever holds it (a prune's lease);
        // upkeep of a closed one waits for the upkeep that holds it.
        if !head.status.is_terminal() || (closed && intent == Intent::Maintain) {
            return Err(CoreError::Concurrency { holder: lease.owner.clone(), retry_after_ms: lease.expires_at - now });
        }
    }
    let action = match intent {
        Intent::Begin => Action::Begin,
        Intent::Resume => Action::Resume,
        Intent::Close => Action::Close,
        Intent::Maintain if closed => Action::Maintain,
        Intent::Maintain if head.interrupt.is_some() => Action::Resume,
        Intent::Maintain => Action::Begin,
    };
    let status = transition(head.effective_status(now), action)?;
    let token = head.last_token + 1;
    Ok(Head {
        status,
        lease: Some(Lease {
            owner: holder.owner.to_owned(),
            instance: holder.instance.to_owned(),
            token,
            expires_at: now.saturating_add(lease_ms),
            invocation: holder.invocation.to_owned(),
        }),
        last_token: token,
        // A stop asked of an earlier turn does not stop this one.
        stop: None,
        ..head.clone()
    })
}

/// Checks that `head` still carries the live lease with `token` (the fence of every holder write).
pub fn check_lease(head: &Head, token: u64, now: u64) -> Result<&Lease, CoreError> {
    match head.live_lease(now) {
        Some(lease) if lease.token == token && head.status == Status::Running => Ok(lease),
        _ => Err(CoreError::LeaseLost { token }),
    }
}

/// Extends the lease to `now + lease_ms`, never shortens it: a holder whose clock went back (or runs
/// behind the clock that wrote the lease) would otherwise end its lease early for everyone else.
pub fn renew(head: &Head, token: u64, now: u64, lease_ms: u64) -> Result<Head, CoreError> {
    let lease = check_lease(head, token, now)?;
    let lease = Lease { expires_at: extended(lease, now, lease_ms), ..lease.clone() };
    Ok(Head { lease: Some(lease), ..head.clone() })
}

/// A lease's end once renewed at `now`: `now + lease_ms`, or its end as written when that is later.
fn extended(lease: &Lease, now: u64, lease_ms: u64) -> u64 {
    now.saturating_add(lease_ms).max(lease.expires_at)
}

/// What a commit writes: the new head, and whether it must be accompanied by a snapshot of the
/// state at the new version (written under `head.snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub head: Head,
    pub snapshot_due: bool,
    /// The stop request this commit answers by ending the turn: its batch must carry the `stopped`
    /// event.
    pub stopped: Option<StopRequest>,
}

/// The stop request pending for the turn holding `token`, if any: the holder's signal aborts, and
/// the commit, interrupt or abort that ends the turn records a `stopped` event (an abort then
/// commits with [`Outcome::Abort`] instead of releasing, so that the stop is in history).
pub fn stop_pending(head: &Head, token: u64) -> Option<&StopRequest> {
    head.stop.as_ref().filter(|stop| stop.token == token && head.lease.as_ref().is_some_and(|l| l.token == token))
}

/// Whether `head` shows the turn of `token` ended by a stopper's fence: its holder learns of the stop
/// (its reason is in the fence's batch), not of a lease lost to nobody in particular.
pub fn fenced_by_stop(head: &Head, token: u64) -> bool {
    head.ended.as_ref().is_some_and(|ended| ended.token == token && ended.outcome == TurnOutcome::Fenced)
}

/// The version where a stopper's fence of the turn of `token` may be, the head having moved past it
/// (the next turn committed before the holder looked): the first version it names committed under
/// `token + 1`. A takeover after the lease ran out commits under that token too, so only that
/// batch's `stopped` event of outcome `fenced` tells a fence.
pub fn fence_version(head: &Head, token: u64) -> Option<u64> {
    let next = token.checked_add(1)?;
    if fenced_by_stop(head, token) {
        return Some(head.version);
    }
    (head.snapshot_version().max(1)..=head.version).find(|version| head.commit_token(*version) == Some(next))
}

/// How long a holder watching for stops waits, at `now`, before it reads the head again (0: read it
/// at once). The head as of `checked_at` (its lease's, at first, then each read's) held no stop; one
/// made in this realm, or announced to it, wakes it (`woken`: a wake-up not its own arrived since),
/// and one made elsewhere must be found within `stop_poll_ms` of being made, so by `checked_at +
/// stop_poll_ms` at the latest. Until then, with no such wake-up, what it read is still the news:
/// reading again would find no stop (its own flushes and commits wake the realm too, for others).
/// Never more than `stop_poll_ms`, whatever a host clock that went back says.
pub fn next_stop_check(checked_at: u64, now: u64, stop_poll_ms: u64, woken: bool) -> u64 {
    if woken {
        0
    } else {
        checked_at.saturating_add(stop_poll_ms).saturating_sub(now).min(stop_poll_ms)
    }
}

/// Commits one batch at `head.version + 1` under `token`. `snapshot_every` is the number of commits
/// between snapshots (0: never).
pub fn commit(
    head: &Head,
    token: u64,
    now: u64,
    lease_ms: u64,
    outcome: Outcome,
    snapshot_every: u64,
) -> Result<Committed, CoreError> {
    let lease = check_lease(head, token, now)?.clone();
    let version = head.version + 1;
    let stop = stop_pending(head, token).cloned();
    let ends = |outcome| TurnEnd {
        token,
        outcome: if stop.is_some() { TurnOutcome::Stopped } else { outcome },
        invocation: lease.invocation.clone(),
        flushes: Some(0),
    };
    let (status, interrupt, ended) = match &outcome {
        Outcome::Checkpoint => (Status::Running, None, head.ended.clone()),
        Outcome::Commit => (transition(head.status, Action::Commit)?, None, Some(ends(TurnOutcome::Committed))),
        Outcome::Close => (transition(head.status, Action::CommitClose)?, None, Some(ends(TurnOutcome::Committed))),
        Outcome::Interrupt(interrupt) => {
            (transition(head.status, Action::Interrupt)?, Some(interrupt.clone()), Some(ends(TurnOutcome::Interrupted)))
        }
        Outcome::Abort => {
            let status = transition(head.status, Action::Release { interrupted: head.interrupt.is_some() })?;
            (status, head.interrupt.clone(), Some(ends(TurnOutcome::Aborted)))
        }
    };
    let (lease, stop_kept, stopped) = match outcome {
        Outcome::Checkpoint => {
            (Some(Lease { expires_at: extended(&lease, now, lease_ms), ..lease }), head.stop.clone(), None)
        }
        _ => (None, None, stop),
    };
    let snapshot_due = snapshot_every == SNAPSHOT_NOW
        || (snapshot_every > 0 && version - head.snapshot_version() >= snapshot_interval(version, snapshot_every));
    let (snapshot, commits) = if snapshot_due {
        (Some(SnapshotRef { version, token }), Commits::default())
    } else {
        let mut commits = head.commits.clone();
        commits.push(token);
        (head.snapshot, commits)
    };
    let head = Head {
        version,
        status,
        lease,
        snapshot,
        commits,
        // Never earlier than the commit before: a committer whose clock runs behind would make the
        // session older than it is, expired at once for the other stores' clocks (idleTtlMs).
        updated_at: now.max(head.updated_at),
        // Every commit of a resumed turn answers the interrupt (its first event is the resume).
        interrupt,
        stop: stop_kept,
        ended,
        ..head.clone()
    };
    Ok(Committed { head, snapshot_due, stopped })
}

/// The `snapshot_every` of a commit that must write a snapshot whatever the spacing: one that
/// replaces messages (a migration, a large compaction), so that loads and snapshots follow the new
/// view at once instead of reading the old messages until the next snapshot is due.
pub const SNAPSHOT_NOW: u64 = u64::MAX;

/// Whether a compaction that drops `dropped` messages and keeps `kept` (the summary included) is worth
/// a snapshot at once: when it drops at least as many as it keeps, loads would otherwise read mostly
/// messages nobody sees. A sliding window that drops a few messages a turn (Strands' conversation
/// managers) waits for the next snapshot that is due anyway, instead of writing one every turn.
pub fn compaction_snapshots_now(dropped: u64, kept: u64) -> bool {
    dropped >= kept
}

/// Commits between the snapshot before `version` and the next: at least `snapshot_every`, and an
/// eighth of the session's versions once that is more. A snapshot holds the whole state, so with a
/// fixed interval the bytes stored in snapshots, and the amortized cost of writing them, would grow
/// with the square of a session's length; growing the interval with the session keeps both in
/// proportion to its size, while a load still reads at most an eighth of the history in batches.
pub fn snapshot_interval(version: u64, snapshot_every: u64) -> u64 {
    snapshot_every.max(version / SNAPSHOT_GROWTH)
}

/// See [`snapshot_interval`].
const SNAPSHOT_GROWTH: u64 = 8;

/// [`release`] by a turn that discards nothing: when its last checkpoint wrote the head's version,
/// the turn ended there, so its followers see it end `committed` (a framework's guard that
/// checkpoints each step ends so, without an empty version); otherwise `aborted`, as any release.
pub fn release_kept(head: &Head, token: u64) -> Option<Head> {
    let mut released = release(head, token)?;
    if head.commit_token(head.version) == Some(token) {
        if let Some(ended) = released.ended.as_mut() {
            ended.outcome = TurnOutcome::Committed;
        }
    }
    Some(released)
}

/// Gives the lease back without a change. `None` when the head no longer carries `token`: there is
/// nothing of ours to release (the lease ran out or was taken), which is not an error for an abort.
pub fn release(head: &Head, token: u64) -> Option<Head> {
    match &head.lease {
        Some(lease) if lease.token == token => {
            let action = Action::Release { interrupted: head.interrupt.is_some() };
            let status = transition(head.status, action).ok()?;
            let ended = TurnEnd {
                token,
                outcome: TurnOutcome::Aborted,
                invocation: lease.invocation.clone(),
                flushes: Some(0),
            };
            Some(Head { status, lease: None, stop: None, ended: Some(ended), ..head.clone() })
        }
        _ => None,
    }
}

/// Marks a session expired, when it is (for the sweep). `None` when it is not expired at `now`.
pub fn expire(head: &Head, now: u64) -> Option<Head> {
    if head.effective_status(now) != Status::Expired {
        return None;
    }
    let status = transition(head.status, Action::Expire).ok()?;
    Some(Head { status, lease: None, ..head.clone() })
}

/// What a stopper asks: `session.stop({ reason, graceMs })` of the store owned by `by`.
#[derive(Debug, Clone, Copy)]
pub struct StopAsk<'a> {
    pub reason: &'a str,
    pub grace_ms: u64,
}

/// The next step of a `stop()`, decided on the head as last read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopStep {
    /// No turn is running: nothing to stop.
    Idle,
    /// Write this head (compare-and-set): it records the request for the turn holding `token`; then
    /// wait for that turn until `deadline`.
    Request { head: Head, token: u64, deadline: u64 },
    /// The request for turn `token` is recorded (by this stopper or another); wait for the holder
    /// to end the turn, deciding again on the next head read, until `deadline`.
    Wait { token: u64, deadline: u64 },
    /// The turn asked to stop has ended: by its holder (`Stopped`), by a fence (`Fenced`), or by
    /// losing its lease (`None`: it no longer runs, which `stop()` reports as idle).
    Ended(Option<TurnOutcome>),
    /// The grace ran out: write the fence. `committed.head` at `head.version + 1`, whose batch
    /// (written first, under `committed.head.last_token`) carries the `stopped` event of `request`.
    Fence { committed: Committed, request: StopRequest },
}

/// One step of a stop. `asked` is the turn this stopper is waiting for and its deadline, once it
/// has recorded or found a request. The fence is the takeover rule of [`acquire_over`] (the holder
/// counts as gone once the grace has passed) followed by an [`Outcome::Abort`] commit, in one
/// compare-and-set, so no reader ever sees a fenced turn without its end. `holder_gone`: the
/// holder's realm is known to be gone (its Web Lock released): its turn is lost, as when its lease
/// runs out (followers see `lost`; the next begin takes it over), so there is nothing to wait for
/// or to fence.
pub fn stop_step(
    head: &Head,
    asked: Option<(u64, u64)>,
    ask: StopAsk<'_>,
    stopper: Holder<'_>,
    now: u64,
    lease_ms: u64,
    holder_gone: bool,
) -> StopStep {
    let (token, deadline) = match asked {
        Some(asked) => asked,
        None => {
            let Some(lease) = head.live_lease(now).filter(|_| head.status == Status::Running && !holder_gone) else {
                return StopStep::Idle;
            };
            let deadline = now.saturating_add(ask.grace_ms);
            if stop_pending(head, lease.token).is_none() && deadline > now {
                let stop = StopRequest {
                    token: lease.token,
                    reason: ask.reason.to_owned(),
                    by: stopper.owner.to_owned(),
                    at: now,
                };
                let requested = Head { stop: Some(stop), ..head.clone() };
                return StopStep::Request { head: requested, token: lease.token, deadline };
            }
            (lease.token, deadline)
        }
    };
    if let Some(ended) = head.ended.as_ref().filter(|ended| ended.token == token) {
        return StopStep::Ended(
            Some(ended.outcome).filter(|o| matches!(o, TurnOutcome::Stopped | TurnOutcome::Fenced)),
        );
    }
    let Some(lease) = head.live_lease(now).filter(|lease| lease.token == token && !holder_gone) else {
        return StopStep::Ended(None);
    };
    if now < deadline {
        return StopStep::Wait { token, deadline };
    }
    let request = stop_pending(head, token).cloned().unwrap_or_else(|| StopRequest {
        token,
        reason: ask.reason.to_owned(),
        by: stopper.owner.to_owned(),
        at: now,
    });
    let fenced = lease.clone();
    let Ok(taken) = acquire_over(head, Intent::Maintain, stopper, now, lease_ms, Some(&fenced.instance)) else {
        return StopStep::Ended(None);
    };
    let Ok(mut committed) = commit(&taken, taken.last_token, now, lease_ms, Outcome::Abort, 0) else {
        return StopStep::Ended(None);
    };
    committed.head.ended =
        Some(TurnEnd { token, outcome: TurnOutcome::Fenced, invocation: fenced.invocation, flushes: None });
    StopStep::Fence { committed, request }
}
