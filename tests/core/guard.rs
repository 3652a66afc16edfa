//! Guard decisions over the head: acquire, renew, commit, checkpoint, interrupt, resume, release,
//! expire, and the effective status a reader acts on.

use agent_session::core::error::Phase;
use agent_session::core::guard::{
    self, acquire, check_lease, commit, expire, release, renew, Committed, Holder, Intent, Outcome,
};
use agent_session::core::{CoreError, Head, Interrupt, Lease, SnapshotRef, Status, TurnEnd, TurnOutcome};
use proptest::prelude::*;

use crate::fixtures::*;

fn idle_head() -> Head {
    Head::new(T0, None, None, None)
}

/// `idle_head` taken by owner `a` at `T0`.
fn leased(intent: Intent) -> Head {
    acquire(&idle_head(), intent, holder("a"), T0, LEASE_MS).unwrap()
}

fn token_of_lease(head: &Head) -> u64 {
    head.lease.as_ref().expect("a lease").token
}

fn interrupt() -> Interrupt {
    Interrupt { reason: "approve?".into(), payload: json(r#"{"q":1}"#) }
}

#[test]
fn acquire_on_idle_takes_last_token_plus_one() {
    let head = Head { last_token: 41, version: 7, commits: vec![1; 7].into(), ..idle_head() };
    let now = T0 + 123;
    let got = acquire(
        &head,
        Intent::Begin,
        Holder { owner: "alice", instance: "inst-1", invocation: "inv-1" },
        now,
        LEASE_MS,
    )
    .unwrap();
    assert_eq!(
        got,
        Head {
            status: Status::Running,
            lease: Some(Lease {
                owner: "alice".into(),
                instance: "inst-1".into(),
                token: 42,
                expires_at: now + LEASE_MS,
                invocation: "inv-1".into(),
            }),
            last_token: 42,
            ..head.clone()
        }
    );
    // Nothing else moves: version, commits, timestamps.
    assert_eq!((got.version, got.updated_at, got.created_at), (7, T0, T0));
}

#[test]
fn acquire_while_a_live_lease_exists_is_concurrency_whoever_asks() {
    let head = leased(Intent::Begin);
    for (who, at) in [(holder("b"), T0 + 1), (holder("a"), T0 + 500), (holder("a"), T0 + LEASE_MS - 1)] {
        for intent in [Intent::Begin, Intent::Resume, Intent::Close] {
            let got = acquire(&head, intent, who, at, LEASE_MS);
            assert_eq!(
                got,
                Err(CoreError::Concurrency { holder: "a".into(), retry_after_ms: T0 + LEASE_MS - at }),
                "{intent:?} by {} at +{}",
                who.owner,
                at - T0
            );
        }
    }
    // Even the very same owner and instance is refused: the name is a label, not a pass.
    let same = Holder { owner: "a", instance: "instance-of-this-test", invocation: "invocation-of-this-test" };
    assert!(matches!(
        acquire(&head, Intent::Begin, same, T0, LEASE_MS),
        Err(CoreError::Concurrency { retry_after_ms: LEASE_MS, .. })
    ));
}

#[test]
fn takeover_of_an_expired_lease_gives_token_plus_one() {
    let head = leased(Intent::Begin);
    assert_eq!(token_of_lease(&head), 1);
    // The lease ends at T0 + LEASE_MS: from that instant on it no longer blocks.
    let at = T0 + LEASE_MS;
    let taken = acquire(&head, Intent::Begin, holder("b"), at, LEASE_MS).unwrap();
    let lease = taken.lease.clone().unwrap();
    assert_eq!((lease.owner.as_str(), lease.token, lease.expires_at), ("b", 2, at + LEASE_MS));
    assert_eq!((taken.status, taken.last_token, taken.version), (Status::Running, 2, 0));
    // The fenced-out holder can no longer do anything with its token.
    assert_eq!(renew(&taken, 1, at, LEASE_MS), Err(CoreError::LeaseLost { token: 1 }));
    assert_eq!(commit(&taken, 1, at, LEASE_MS, Outcome::Commit, 0), Err(CoreError::LeaseLost { token: 1 }));
    assert_eq!(commit(&taken, 1, at, LEASE_MS, Outcome::Checkpoint, 0), Err(CoreError::LeaseLost { token: 1 }));
    assert_eq!(release(&taken, 1), None);
    // A crashed resumer's session goes back to interrupted, not idle: a plain begin is refused.
    let resuming = Head { interrupt: Some(interrupt()), ..head.clone() };
    assert_eq!(
        acquire(&resuming, Intent::Begin, holder("b"), at, LEASE_MS),
        Err(CoreError::InvalidTransition { from: Phase::Status(Status::Interrupted), action: "begin" })
    );
    assert_eq!(token_of_lease(&acquire(&resuming, Intent::Resume, holder("b"), at, LEASE_MS).unwrap()), 2);
}

#[test]
fn renew_extends_and_is_fenced() {
    let head = leased(Intent::Begin);
    let renewed = renew(&head, 1, T0 + 900, LEASE_MS).unwrap();
    assert_eq!(renewed.lease.as_ref().unwrap().expires_at, T0 + 900 + LEASE_MS);
    assert_eq!(Head { lease: head.lease.clone(), ..renewed.clone() }, head, "renew changes only the expiry");
    assert_eq!(renew(&head, 2, T0 + 1, LEASE_MS), Err(CoreError::LeaseLost { token: 2 }));
    assert_eq!(renew(&head, 1, T0 + LEASE_MS, LEASE_MS), Err(CoreError::LeaseLost { token: 1 }));
    assert_eq!(renew(&idle_head(), 1, T0, LEASE_MS), Err(CoreError::LeaseLost { token: 1 }));
    assert!(check_lease(&head, 1, T0).is_ok());
    assert!(check_lease(&head, 1, T0 + LEASE_MS).is_err());
}

/// A holder whose clock went back (or runs behind the one that wrote its lease) renews, checkpoints
/// and commits without ending its lease early for the others, or making the session older than its
/// last commit (audit42b N2, N3).
#[test]
fn a_clock_behind_never_shortens_the_lease_nor_moves_updated_at_back() {
    let head = leased(Intent::Begin);
    let ends = head.lease.as_ref().unwrap().expires_at;
    let behind = T0 - 5_000;
    let renewed = renew(&head, 1, behind, LEASE_MS).unwrap();
    assert_eq!(renewed.lease.as_ref().unwrap().expires_at, ends, "renewed behind: the lease ends as it did");
    let checkpoint = commit(&head, 1, behind, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    assert_eq!(checkpoint.lease.as_ref().unwrap().expires_at, ends);
    assert_eq!(checkpoint.updated_at, T0, "not before the head's");
    let later = commit(&checkpoint, 1, T0 + 300, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    assert_eq!((later.updated_at, later.lease.as_ref().unwrap().expires_at), (T0 + 300, T0 + 300 + LEASE_MS));
    let done = commit(&later, 1, T0 + 100, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    assert_eq!(done.updated_at, T0 + 300, "a commit behind the one before keeps its time");
}

#[test]
fn commit_bumps_version_releases_and_records_the_token() {
    let head = leased(Intent::Begin);
    let now = T0 + 10;
    let Committed { head: next, snapshot_due, .. } = commit(&head, 1, now, LEASE_MS, Outcome::Commit, 0).unwrap();
    assert!(!snapshot_due);
    assert_eq!(
        next,
        Head {
            version: 1,
            status: Status::Idle,
            lease: None,
            commits: vec![1].into(),
            updated_at: now,
            last_token: 1,
            ended: Some(TurnEnd {
                token: 1,
                outcome: TurnOutcome::Committed,
                invocation: "invocation-of-this-test".into(),
                flushes: Some(0),
            }),
            ..idle_head()
        }
    );
    assert_eq!(next.token_of(1), Some(1));
    assert_eq!(next.token_of(0), None);
    assert_eq!(next.token_of(2), None);
    // Wrong token, expired lease, released lease: nothing to commit with.
    assert_eq!(commit(&head, 9, now, LEASE_MS, Outcome::Commit, 0), Err(CoreError::LeaseLost { token: 9 }));
    assert_eq!(commit(&head, 1, T0 + LEASE_MS, LEASE_MS, Outcome::Commit, 0), Err(CoreError::LeaseLost { token: 1 }));
    assert_eq!(commit(&next, 1, now, LEASE_MS, Outcome::Commit, 0), Err(CoreError::LeaseLost { token: 1 }));
}

/// Runs `n` begin+commit turns from `head`, one token each, returning every head after a commit.
fn turns(mut head: Head, n: u64, snapshot_every: u64) -> Vec<(Head, bool)> {
    let mut out = Vec::new();
    for i in 0..n {
        let now = T0 + i * 10;
        let leased = acquire(&head, Intent::Begin, holder("a"), now, LEASE_MS).unwrap();
        let token = token_of_lease(&leased);
        let committed = commit(&leased, token, now + 1, LEASE_MS, Outcome::Commit, snapshot_every).unwrap();
        head = committed.head.clone();
        out.push((committed.head, committed.snapshot_due));
    }
    out
}

#[test]
fn snapshot_due_every_n_commits() {
    let heads = turns(idle_head(), 8, 3);
    let due: Vec<bool> = heads.iter().map(|(_, due)| *due).collect();
    assert_eq!(due, [false, false, true, false, false, true, false, false]);
    let (v3, _) = &heads[2];
    assert_eq!(v3.snapshot, Some(SnapshotRef { version: 3, token: 3 }));
    assert!(v3.commits.is_empty(), "commits are cleared at a snapshot");
    let (v5, _) = &heads[4];
    assert_eq!((v5.snapshot, v5.commits.clone()), (Some(SnapshotRef { version: 3, token: 3 }), vec![4, 5].into()));
    assert_eq!((v5.snapshot_version(), v5.token_of(4), v5.token_of(5), v5.token_of(3)), (3, Some(4), Some(5), None));
    let (v8, _) = &heads[7];
    assert_eq!((v8.snapshot, v8.commits.clone()), (Some(SnapshotRef { version: 6, token: 6 }), vec![7, 8].into()));
    // 0 never snapshots; 1 snapshots every commit.
    assert!(turns(idle_head(), 5, 0).iter().all(|(head, due)| !due && head.snapshot.is_none()));
    assert!(turns(idle_head(), 5, 1).iter().all(|(head, due)| *due && head.commits.is_empty()));
    // Invariant on every head: the snapshot plus the named commits reach the version.
    for every in [0, 1, 2, 3, 7] {
        for (head, _) in turns(idle_head(), 9, every) {
            assert_eq!(head.snapshot_version() + head.commits.len(), head.version);
        }
    }
}

#[test]
fn checkpoint_keeps_the_lease_renewed_and_running() {
    let head = leased(Intent::Begin);
    let c1 = commit(&head, 1, T0 + 600, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    assert_eq!((c1.version, c1.status, c1.commits.clone()), (1, Status::Running, vec![1].into()));
    let lease = c1.lease.clone().unwrap();
    assert_eq!((lease.token, lease.expires_at), (1, T0 + 600 + LEASE_MS));
    // Still ours past the first expiry, because the checkpoint renewed it.
    let c2 = commit(&c1, 1, T0 + 1_500, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    assert_eq!((c2.version, c2.commits.clone()), (2, vec![1, 1].into()));
    assert!(matches!(
        acquire(&c2, Intent::Begin, holder("b"), T0 + 1_600, LEASE_MS),
        Err(CoreError::Concurrency { .. })
    ));
    let done = commit(&c2, 1, T0 + 1_700, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    assert_eq!((done.version, done.status, done.lease.clone()), (3, Status::Idle, None));
    // A checkpoint after the lease ran out is refused.
    assert_eq!(
        commit(&c1, 1, T0 + 600 + LEASE_MS, LEASE_MS, Outcome::Checkpoint, 0),
        Err(CoreError::LeaseLost { token: 1 })
    );
}

#[test]
fn interrupt_then_resume() {
    let head = leased(Intent::Begin);
    let interrupted = commit(&head, 1, T0 + 5, LEASE_MS, Outcome::Interrupt(interrupt()), 0).unwrap().head;
    assert_eq!((interrupted.status, interrupted.lease.clone(), interrupted.version), (Status::Interrupted, None, 1));
    assert_eq!(interrupted.interrupt, Some(interrupt()));
    // Begin is refused on an interrupted session; resume is the way in.
    assert_eq!(
        acquire(&interrupted, Intent::Begin, holder("a"), T0 + 6, LEASE_MS),
        Err(CoreError::InvalidTransition { from: Phase::Status(Status::Interrupted), action: "begin" })
    );
    let resumed = acquire(&interrupted, Intent::Resume, holder("b"), T0 + 6, LEASE_MS).unwrap();
    assert_eq!((resumed.status, token_of_lease(&resumed)), (Status::Running, 2));
    assert_eq!(resumed.interrupt, Some(interrupt()), "the question stays until an answer is committed");
    // Releasing a resumed turn goes back to interrupted.
    let released = release(&resumed, 2).unwrap();
    assert_eq!((released.status, released.lease.clone()), (Status::Interrupted, None));
    // Committing the resumed turn answers the interrupt.
    let answered = commit(&resumed, 2, T0 + 7, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    assert_eq!((answered.status, answered.interrupt.clone(), answered.version), (Status::Idle, None, 2));
    // Resume only from interrupted.
    for head in [idle_head(), answered] {
        assert_eq!(
            acquire(&head, Intent::Resume, holder("a"), T0 + 8, LEASE_MS),
            Err(CoreError::InvalidTransition { from: Phase::Status(Status::Idle), action: "resume" })
        );
    }
}

#[test]
fn close_is_terminal() {
    for start in [idle_head(), Head { status: Status::Interrupted, interrupt: Some(interrupt()), ..idle_head() }] {
        let closing = acquire(&start, Intent::Close, holder("a"), T0, LEASE_MS).unwrap();
        assert_eq!(closing.status, Status::Running);
        let closed = commit(&closing, 1, T0 + 1, LEASE_MS, Outcome::Close, 0).unwrap().head;
        assert_eq!((closed.status, closed.lease.clone(), closed.version), (Status::Closed, None, 1));
        for intent in [Intent::Begin, Intent::Resume, Intent::Close] {
            let error = acquire(&closed, intent, holder("a"), T0 + 2, LEASE_MS).unwrap_err();
            assert_eq!(error.code(), "SESSION_CLOSED", "{intent:?}");
        }
        assert_eq!(closed.effective_status(u64::MAX), Status::Closed);
        assert_eq!(expire(&closed, u64::MAX), None);
    }
}

#[test]
fn a_closed_sessions_upkeep_lease_leaves_it_closed() {
    let closing = acquire(&idle_head(), Intent::Close, holder("a"), T0, LEASE_MS).unwrap();
    let closed = commit(&closing, 1, T0 + 1, LEASE_MS, Outcome::Close, 0).unwrap().head;
    let pruning = acquire(&closed, Intent::Maintain, holder("b"), T0 + 2, LEASE_MS).unwrap();
    assert_eq!((pruning.status, token_of_lease(&pruning)), (Status::Closed, 2));
    // It is no turn's lease: nothing commits on it.
    let error = commit(&pruning, 2, T0 + 3, LEASE_MS, Outcome::Commit, 0).unwrap_err();
    assert_eq!(error.code(), "LEASE_LOST");
    // The pruning store's own begin, refused first by its mark of the lease, answers by the status.
    let decision = guard::decide_acquire(&pruning, Intent::Begin, holder("c"), T0 + 3, LEASE_MS, None);
    let refusal = guard::refusal_beside_held(&pruning, decision, T0 + 3).expect("a refusal by status");
    assert_eq!(refusal.code(), "SESSION_CLOSED");
    let decision = guard::decide_acquire(&pruning, Intent::Maintain, holder("c"), T0 + 3, LEASE_MS, None);
    assert_eq!(guard::refusal_beside_held(&pruning, decision, T0 + 3), None, "a second prune: busy");
    // While it holds: another upkeep waits, a begin is refused as on any closed session.
    let busy = acquire(&pruning, Intent::Maintain, holder("c"), T0 + 3, LEASE_MS).unwrap_err();
    assert_eq!(busy.code(), "CONCURRENT_INVOCATION");
    for intent in [Intent::Begin, Intent::Resume, Intent::Close] {
        let error = acquire(&pruning, intent, holder("c"), T0 + 3, LEASE_MS).unwrap_err();
        assert_eq!(error.code(), "SESSION_CLOSED", "{intent:?}");
    }
    let released = release(&pruning, 2).unwrap();
    assert_eq!((released.status, released.lease.clone(), released.version), (Status::Closed, None, 1));
    assert_eq!(released.effective_status(u64::MAX), Status::Closed);
}

#[test]
fn release_returns_to_idle_or_interrupted() {
    let head = Head { version: 4, commits: vec![1, 1, 1, 1].into(), last_token: 4, ..idle_head() };
    let leased = acquire(&head, Intent::Begin, holder("a"), T0, LEASE_MS).unwrap();
    let released = release(&leased, 5).unwrap();
    let ended = TurnEnd {
        token: 5,
        outcome: TurnOutcome::Aborted,
        invocation: "invocation-of-this-test".into(),
        flushes: Some(0),
    };
    assert_eq!(released, Head { status: Status::Idle, lease: None, ended: Some(ended), ..leased.clone() });
    assert_eq!((released.version, released.last_token), (4, 5), "release keeps the version and the spent token");
    assert_eq!(release(&leased, 4), None, "not our token");
    assert_eq!(release(&head, 5), None, "no lease at all");
    assert_eq!(release(&released, 5), None, "already released");
    // A lapsed lease that nobody took is still ours to give back.
    assert!(release(&leased, 5).is_some());
}

#[test]
fn expire_only_past_expiry_and_without_a_live_lease() {
    let head = Head::new(T0, Some(1_000), Some(10_000), None);
    assert_eq!(head.expires_at(), Some(T0 + 1_000));
    assert_eq!(expire(&head, T0 + 999), None);
    let expired = expire(&head, T0 + 1_000).unwrap();
    assert_eq!(expired, Head { status: Status::Expired, ..head.clone() });
    assert_eq!(expire(&expired, T0 + 5_000), None, "already expired");
    // A live lease holds expiry off; once it lapses the session expires.
    let running = acquire(&head, Intent::Begin, holder("a"), T0 + 900, LEASE_MS).unwrap();
    assert_eq!(expire(&running, T0 + 1_500), None);
    let expired = expire(&running, T0 + 1_900).unwrap();
    assert_eq!((expired.status, expired.lease.clone()), (Status::Expired, None));
    // A commit moves the idle TTL, not the maximum lifetime.
    let committed = commit(&running, 1, T0 + 950, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    assert_eq!(committed.expires_at(), Some(T0 + 1_950));
    let late = Head { updated_at: T0 + 9_500, ..committed.clone() };
    assert_eq!(late.expires_at(), Some(T0 + 10_000));
    assert!(expire(&late, T0 + 9_999).is_none());
    assert!(expire(&late, T0 + 10_000).is_some());
    // No TTL, no expiry.
    assert_eq!(expire(&idle_head(), u64::MAX), None);
    assert_eq!(idle_head().expires_at(), None);
    // Saturating: a huge TTL does not wrap around into the past.
    let forever = Head::new(u64::MAX - 5, Some(u64::MAX), Some(u64::MAX), None);
    assert_eq!(forever.expires_at(), Some(u64::MAX));
    assert_eq!(expire(&forever, u64::MAX - 1), None);
    // Acquire on an expired session is refused with SessionExpired.
    assert_eq!(
        acquire(&head, Intent::Begin, holder("a"), T0 + 1_000, LEASE_MS),
        Err(CoreError::SessionExpired { action: "begin" })
    );
}

#[test]
fn effective_status() {
    let idle = Head::new(T0, Some(10_000), None, None);
    let running = acquire(&idle, Intent::Begin, holder("a"), T0, LEASE_MS).unwrap();
    let resuming = Head { interrupt: Some(interrupt()), ..running.clone() };
    let interrupted = Head { status: Status::Interrupted, interrupt: Some(interrupt()), ..idle.clone() };
    let closed = Head { status: Status::Closed, ..idle.clone() };
    let cases = [
        (&idle, T0, Status::Idle),
        (&idle, T0 + 9_999, Status::Idle),
        (&idle, T0 + 10_000, Status::Expired),
        (&running, T0 + LEASE_MS - 1, Status::Running),
        (&running, T0 + LEASE_MS, Status::Idle),
        (&running, T0 + 10_000, Status::Expired),
        (&resuming, T0 + 1, Status::Running),
        (&resuming, T0 + LEASE_MS, Status::Interrupted),
        (&interrupted, T0 + 1, Status::Interrupted),
        (&interrupted, T0 + 10_000, Status::Expired),
        (&closed, T0, Status::Closed),
        (&closed, u64::MAX, Status::Closed),
    ];
    for (head, now, want) in cases {
        assert_eq!(head.effective_status(now), want, "{:?} at +{}", head.status, now - T0);
    }
    // A live lease past the TTL keeps the session running (the holder may still commit).
    let long = acquire(&idle, Intent::Begin, holder("a"), T0 + 9_990, LEASE_MS).unwrap();
    assert_eq!(long.effective_status(T0 + 10_500), Status::Running);
    assert_eq!(guard::expire(&long, T0 + 10_500), None);
    // A lease of a store instance known gone (its realm closed) reads as ended at once.
    let instance = running.lease.as_ref().unwrap().instance.clone();
    let gone = |known: &str| known == instance;
    assert_eq!(running.effective_status_given(T0 + 1, &gone), Status::Idle);
    assert_eq!(resuming.effective_status_given(T0 + 1, &gone), Status::Interrupted);
    assert_eq!(running.effective_status_given(T0 + 1, &|_| false), Status::Running);
    assert_eq!(running.effective_status_given(T0 + 10_000, &gone), Status::Expired);
}

// ---------------------------------------------------------------------------------------------
// A guard history: random steps of three holders against one head, checked step by step.

#[derive(Debug, Clone)]
enum Step {
    Acquire(usize, Intent),
    Renew(usize),
    Commit(usize, Outcome),
    Release(usize),
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0..3usize;
    prop_oneof![
        3 => (who.clone(), prop_oneof![Just(Intent::Begin), Just(Intent::Resume), Just(Intent::Close)]).prop_map(|(w, i)| Step::Acquire(w, i)),
        1 => who.clone().prop_map(Step::Renew),
        3 => (who.clone(), prop_oneof![
            3 => Just(Outcome::Commit),
            2 => Just(Outcome::Checkpoint),
            1 => Just(Outcome::Interrupt(Interrupt { reason: "r".into(), payload: json("null") })),
            1 => Just(Outcome::Close),
        ]).prop_map(|(w, o)| Step::Commit(w, o)),
        1 => who.prop_map(Step::Release),
        2 => (0..=LEASE_MS + 200).prop_map(Step::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn guard_histories_keep_one_holder_and_gapless_versions(steps in proptest::collection::vec(step(), 1..60)) {
        let names = ["a", "b", "c"];
        let mut head = Head::new(T0, None, None, None);
        let mut now = T0;
        // The token each holder believes it holds.
        let mut held: [Option<u64>; 3] = [None; 3];
        let mut commits = 0u64;
        for step in steps {
            let before = head.clone();
            let live = before.live_lease(now).cloned();
            match step {
                Step::Advance(ms) => now += ms,
                Step::Acquire(w, intent) => match acquire(&before, intent, holder(names[w]), now, LEASE_MS) {
                    Ok(next) => {
                        prop_assert!(live.is_none() || before.status.is_terminal(), "acquired over a live lease");
                        let lease = next.lease.clone().unwrap();
                        prop_assert_eq!(lease.token, before.last_token + 1);
                        prop_assert_eq!(next.last_token, lease.token);
                        prop_assert_eq!(lease.expires_at, now + LEASE_MS);
                        prop_assert_eq!(next.version, before.version);
                        held[w] = Some(lease.token);
                        head = next;
                    }
                    Err(CoreError::Concurrency { holder, retry_after_ms }) => {
                        let live = live.expect("Concurrency only while a lease is live");
                        prop_assert_eq!(holder, live.owner);
                        prop_assert_eq!(retry_after_ms, live.expires_at - now);
                    }
                    Err(other) => {
                        prop_assert!(live.is_none());
                        prop_assert!(matches!(other, CoreError::InvalidTransition { .. } | CoreError::SessionClosed { .. }), "{:?}", other);
                    }
                },
                Step::Renew(w) => {
                    let Some(token) = held[w] else { continue };
                    match renew(&before, token, now, LEASE_MS) {
                        Ok(next) => {
                            prop_assert_eq!(live.map(|l| l.token), Some(token));
                            prop_assert_eq!(next.lease.as_ref().unwrap().expires_at, now + LEASE_MS);
                            head = next;
                        }
                        Err(error) => {
                            prop_assert_eq!(error, CoreError::LeaseLost { token });
                            prop_assert!(live.map(|l| l.token) != Some(token) || before.status != Status::Running);
                        }
                    }
                }
                Step::Commit(w, outcome) => {
                    let Some(token) = held[w] else { continue };
                    match commit(&before, token, now, LEASE_MS, outcome.clone(), 3) {
                        Ok(Committed { head: next, snapshot_due, .. }) => {
                            prop_assert_eq!(live.map(|l| l.token), Some(token), "committed without holding the live lease");
                            commits += 1;
                            prop_assert_eq!(next.version, commits);
                            prop_assert_eq!(next.last_token, before.last_token);
                            prop_assert_eq!(snapshot_due, next.version % 3 == 0);
                            if snapshot_due {
                                prop_assert_eq!(next.snapshot, Some(SnapshotRef { version: next.version, token }));
                            } else {
                                prop_assert_eq!(next.commits.last(), Some(token));
                            }
                            let want = match outcome {
                                Outcome::Checkpoint => Status::Running,
                                Outcome::Commit => Status::Idle,
                                Outcome::Interrupt(_) => Status::Interrupted,
                                Outcome::Close => Status::Closed,
                                Outcome::Abort => before.resting_status(),
                            };
                            prop_assert_eq!(next.status, want);
                            prop_assert_eq!(next.lease.is_some(), want == Status::Running);
                            if want != Status::Running {
                                held[w] = None;
                            }
                            head = next;
                        }
                        Err(CoreError::LeaseLost { token: lost }) => {
                            prop_assert_eq!(lost, token);
                            prop_assert!(live.map(|l| l.token) != Some(token) || before.status != Status::Running);
                            held[w] = None;
                        }
                        Err(other) => prop_assert!(false, "commit gave {:?}", other),
                    }
                }
                Step::Release(w) => {
                    let Some(token) = held[w] else { continue };
                    if let Some(next) = release(&before, token) {
                        prop_assert_eq!(before.lease.as_ref().map(|l| l.token), Some(token));
                        prop_assert_eq!(next.lease.clone(), None);
                        prop_assert_eq!(next.version, before.version);
                        head = next;
                    }
                    held[w] = None;
                }
            }
            // Invariants of every head the guard produces.
            prop_assert_eq!(head.snapshot_version() + head.commits.len(), head.version);
            prop_assert_eq!(head.status == Status::Running, head.lease.is_some());
            if let Some(lease) = &head.lease {
                prop_assert_eq!(lease.token, head.last_token, "only the newest token can hold the lease");
            }
        }
    }
}

/// Snapshots hold the whole state: their spacing grows with the session, so that what they store in
/// all (the sum of the state sizes they copy, here the versions they cover) stays proportional to the
/// session's length instead of its square, and a load never folds more than an eighth of the history.
#[test]
fn snapshot_spacing_keeps_snapshot_storage_linear_in_the_session_length() {
    use agent_session::core::guard::snapshot_interval;
    let every = 50;
    let mut last = 0u64;
    let mut copied = 0u64;
    let mut snapshots = 0u64;
    for version in 1..=100_000u64 {
        if version - last >= snapshot_interval(version, every) {
            assert!(version - last <= every.max(version / 8), "gap at {version}");
            copied += version;
            snapshots += 1;
            last = version;
        }
    }
    assert!(copied <= 10 * 100_000, "snapshots copied {copied} versions' worth of state");
    assert!(snapshots < 100, "{snapshots} snapshots for 100000 commits");
    assert!(100_000 - last <= 100_000 / 8 + 1);
    // Short sessions keep the configured spacing exactly.
    for version in 1..=8 * every + 7 {
        assert_eq!(snapshot_interval(version, every), every, "at {version}");
    }
    assert_eq!(snapshot_interval(8 * every + 8, every), every + 1);
}

#[test]
fn the_busy_mark_blocks_until_its_lease_would_end() {
    let pending = guard::Mark::pending(T0, LEASE_MS);
    assert_eq!(pending, guard::Mark { token: None, expires_at: T0 + LEASE_MS });
    assert_eq!(
        guard::check_mark(Some(&pending), "me", T0 + 10),
        Err(CoreError::Concurrency { holder: "me".into(), retry_after_ms: LEASE_MS - 10 })
    );
    assert_eq!(guard::check_mark(Some(&pending), "me", T0 + LEASE_MS), Ok(()), "a forgotten mark stops blocking");
    assert_eq!(guard::check_mark(None, "me", T0), Ok(()));
    let head = leased(Intent::Begin);
    let token = token_of_lease(&head);
    let lease = head.lease.clone().unwrap();
    assert_eq!(
        guard::Mark::after(&head, token),
        Some(guard::Mark { token: Some(token), expires_at: lease.expires_at })
    );
    assert_eq!(guard::Mark::after(&head, token + 1), None, "another lease's head clears our mark");
    let committed = commit(&head, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    assert_eq!(guard::Mark::after(&committed, token), None, "a released lease clears the mark");
}

#[test]
fn deadlines_are_data() {
    assert_eq!(guard::renew_every(30_000), 10_000);
    assert_eq!(guard::renew_every(1), 1);
    assert_eq!(guard::retry_pause(5_000, None, T0), None, "fail fast without onBusy");
    assert_eq!(guard::retry_pause(5_000, Some(T0), T0), None, "the deadline passed");
    assert_eq!(guard::retry_pause(5_000, Some(T0 + 100), T0), Some(100), "never past the deadline");
    assert_eq!(guard::retry_pause(5_000, Some(T0 + 10_000), T0), Some(250), "at least every 250 ms");
    assert_eq!(guard::retry_pause(0, Some(T0 + 10_000), T0), Some(1));
    assert_eq!(guard::first_token(7), 7);
}

#[test]
fn the_next_stop_check_waits_only_while_the_head_last_read_is_still_the_news() {
    // Nothing woke the holder: a stop made elsewhere after its last read is found by then + poll.
    assert_eq!(guard::next_stop_check(T0, T0 + 10, 1_000, false), 990);
    assert_eq!(guard::next_stop_check(T0, T0 + 1_000, 1_000, false), 0, "the poll period is over: read now");
    assert_eq!(guard::next_stop_check(T0, T0 + 5_000, 1_000, false), 0);
    // A wake-up since the lease (a stop in this realm, or announced to it): read at once.
    assert_eq!(guard::next_stop_check(T0, T0 + 10, 1_000, true), 0);
    assert_eq!(guard::next_stop_check(T0, T0 - 5_000, 1_000, false), 1_000, "a clock that went back: one period");
    assert_eq!(guard::next_stop_check(u64::MAX - 1, u64::MAX, 1_000, false), 0, "saturates, never wraps");
}

#[test]
fn decide_acquire_asks_about_a_live_holder_once_then_takes_over_a_dead_one() {
    let head = leased(Intent::Begin);
    let instance = head.lease.as_ref().unwrap().instance.clone();
    let me = Holder { owner: "b", instance: "inst-b", invocation: "inv-b" };
    match guard::decide_acquire(&head, Intent::Begin, me, T0 + 1, LEASE_MS, None) {
        guard::Acquire::AskIfAlive { instance: asked, refusal } => {
            assert_eq!(asked, instance);
            assert_eq!(refusal.code(), "CONCURRENT_INVOCATION");
        }
        other => panic!("{other:?}"),
    }
    match guard::decide_acquire(&head, Intent::Begin, me, T0 + 1, LEASE_MS, Some(&instance)) {
        guard::Acquire::Leased(taken) => assert_eq!(token_of_lease(&taken), token_of_lease(&head) + 1),
        other => panic!("{other:?}"),
    }
    match guard::decide_acquire(&head, Intent::Begin, me, T0 + 1, LEASE_MS, Some("someone else")) {
        guard::Acquire::Refused(refusal) => assert_eq!(refusal.code(), "CONCURRENT_INVOCATION"),
        other => panic!("{other:?}"),
    }
    let closed = Head { status: Status::Closed, lease: None, ..idle_head() };
    assert!(matches!(
        guard::decide_acquire(&closed, Intent::Begin, me, T0, LEASE_MS, None),
        guard::Acquire::Refused(CoreError::SessionClosed { .. })
    ));
}

#[test]
fn a_lease_of_this_begins_invocation_is_held_not_refused() {
    let me = holder("a");
    let head = acquire(&idle_head(), Intent::Begin, me, T0, LEASE_MS).unwrap();
    // The head this begin wrote, seen again (its answer lost): held, by the same owner, instance and invocation only.
    assert!(guard::holds_own_lease(&head, me, T0 + 1));
    assert_eq!(guard::decide_acquire(&head, Intent::Begin, me, T0 + 1, LEASE_MS, None), guard::Acquire::Held);
    for other in [
        Holder { invocation: "another invocation", ..me },
        Holder { instance: "another instance", ..me },
        Holder { owner: "b", ..me },
        Holder { invocation: "", ..me },
    ] {
        assert!(!guard::holds_own_lease(&head, other, T0 + 1), "{other:?}");
    }
    // Once it ran out it is no longer held: the begin decides again (and takes a new token).
    assert!(!guard::holds_own_lease(&head, me, T0 + LEASE_MS));
    assert!(matches!(
        guard::decide_acquire(&head, Intent::Begin, me, T0 + LEASE_MS, LEASE_MS, None),
        guard::Acquire::Leased(_)
    ));
}

#[test]
fn a_commit_is_applied_when_the_head_names_its_batch_or_its_snapshot() {
    let head = leased(Intent::Begin);
    let token = token_of_lease(&head);
    let Committed { head: committed, .. } = commit(&head, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap();
    let version = committed.version;
    assert_eq!(guard::commit_applied(&committed, version, token), Some(false));
    assert_eq!(guard::commit_applied(&committed, version, token + 1), None, "another holder's commit");
    assert_eq!(guard::commit_applied(&committed, version + 1, token), None, "a later version");
    assert_eq!(guard::commit_applied(&head, version, token), None, "the head before it");
    let snapshotted = Head { snapshot: Some(SnapshotRef { version, token }), ..committed.clone() };
    assert_eq!(guard::commit_applied(&snapshotted, version, token), Some(true));
}

#[test]
fn the_lease_of_a_begin_of_this_store_that_failed_is_presumed_gone_for_this_store_only() {
    let me = holder("a");
    let orphan = Holder { invocation: "the begin that failed", ..me };
    let head = acquire(&idle_head(), Intent::Begin, orphan, T0, LEASE_MS).unwrap();
    assert_eq!(guard::orphaned_instance(&head, me, Some("the begin that failed"), T0 + 1), Some(me.instance));
    assert_eq!(guard::orphaned_instance(&head, me, Some("another invocation"), T0 + 1), None);
    assert_eq!(guard::orphaned_instance(&head, me, None, T0 + 1), None);
    let elsewhere = Holder { instance: "another instance", ..me };
    assert_eq!(guard::orphaned_instance(&head, elsewhere, Some("the begin that failed"), T0 + 1), None);
    // Taken over with the next token, which fences the orphan's write should it land later.
    let dead = guard::orphaned_instance(&head, me, Some("the begin that failed"), T0 + 1);
    match guard::decide_acquire(&head, Intent::Begin, me, T0 + 1, LEASE_MS, dead) {
        guard::Acquire::Leased(taken) => assert_eq!(token_of_lease(&taken), token_of_lease(&head) + 1),
        other => panic!("{other:?}"),
    }
}
