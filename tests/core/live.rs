//! The running turn in the core: the flush record, when a holder flushes, what a follower yields
//! from the heads and flushes it reads, and the stop decisions of the guard.

use agent_session::core::codec::{decode_flush, encode_flush};
use agent_session::core::guard::{
    acquire, check_lease, commit, release, release_kept, stop_pending, stop_step, Intent, Outcome,
};
use agent_session::core::guard::{StopAsk, StopStep};
use agent_session::core::live::{flush_delay, note_flushes, stale_logs, Flush, Follower, LiveEvent, Next};
use agent_session::core::{Batch, CoreError, Event, Head, Status, TurnOutcome};

use crate::fixtures::*;

fn begun(head: &Head, at: u64) -> Head {
    acquire(head, Intent::Begin, holder("holder"), at, LEASE_MS).unwrap()
}

fn flush(first_seq: u64, parts: &[&str]) -> Flush {
    Flush { invocation: "invocation-of-this-test".into(), first_seq, parts: parts.iter().map(|p| json(p)).collect() }
}

fn part(seq: u64, data: &str) -> LiveEvent {
    LiveEvent::Part { invocation: "invocation-of-this-test".into(), seq, data: json(data) }
}

/// Feeds `head` and then the flushes the follower asks for (from `log`: token -> flushes) until it
/// waits; returns what it yielded and how it stopped.
fn observe(
    follower: &mut Follower,
    head: Option<&Head>,
    now: u64,
    log: &[(u64, Vec<Flush>)],
) -> (Vec<LiveEvent>, Next) {
    follower.on_head(head.cloned(), now, false);
    let mut events = Vec::new();
    loop {
        let (next, decided) = follower.advance();
        events.extend(decided);
        match next {
            Next::Read { token, n } => {
                let found = log.iter().find(|(t, _)| *t == token).and_then(|(_, f)| f.get(n as usize).cloned());
                events.extend(follower.on_flush(found));
            }
            // No batches known here: the turn ends as the head's commits say (see the fence test).
            Next::Batches { .. } => follower.on_batches(&[]),
            other => return (events, other),
        }
    }
}

#[test]
fn a_flush_round_trips_and_a_damaged_one_is_corrupt() {
    let record =
        Flush { invocation: "inv é".into(), first_seq: 1 << 40, parts: vec![json(r#"{"delta":"\u0000"}"#), json("")] };
    let bytes = encode_flush(&record);
    assert_eq!(decode_flush("t/x~/1/0", &bytes), Ok(record));
    for len in 0..bytes.len() {
        assert!(matches!(decode_flush("t/x~/1/0", &bytes[..len]), Err(CoreError::CorruptRecord { .. })));
    }
}

#[test]
fn a_holder_flushes_after_the_delay_or_at_once_past_16_kib() {
    assert_eq!(flush_delay(10, T0, T0, 50), 50);
    assert_eq!(flush_delay(10, T0, T0 + 30, 50), 20);
    assert_eq!(flush_delay(10, T0, T0 + 80, 50), 0, "overdue: now");
    assert_eq!(flush_delay(16 * 1024, T0, T0, 50), 0);
    assert_eq!(flush_delay(10, T0, T0, 0), 0, "liveFlushMs 0 flushes every part");
}

#[test]
fn a_follower_yields_every_flushed_part_once_in_order_then_the_end() {
    let idle = minimal_head();
    let running = begun(&idle, T0);
    let token = running.last_token;
    let mut log = vec![(token, vec![flush(0, &["0", "1"])])];
    let mut follower = Follower::new(None, &minimal_head());
    let (events, next) = observe(&mut follower, Some(&running), T0 + 1, &log);
    assert_eq!((events, next), (vec![part(0, "0"), part(1, "1")], Next::Wait));
    // Nothing new: nothing yielded again.
    assert_eq!(observe(&mut follower, Some(&running), T0 + 2, &log), (vec![], Next::Wait));
    log[0].1.push(flush(2, &["2"]));
    log[0].1.push(flush(3, &["3", "4"]));
    let mut done = commit(&running, token, T0 + 3, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    note_flushes(&mut done, token, 3);
    let (events, next) = observe(&mut follower, Some(&done), T0 + 4, &log);
    let end = LiveEvent::End {
        invocation: "invocation-of-this-test".into(),
        outcome: "committed",
        version: 1,
        status: Status::Idle,
    };
    assert_eq!(events, vec![part(2, "2"), part(3, "3"), part(4, "4"), end]);
    assert_eq!(next, Next::Wait);
    assert_eq!(observe(&mut follower, Some(&done), T0 + 5, &log), (vec![], Next::Wait), "the end is yielded once");
}

#[test]
fn a_resumed_follower_skips_what_it_had_and_a_new_turn_starts_from_seq_0() {
    let running = begun(&minimal_head(), T0);
    let log = vec![(running.last_token, vec![flush(0, &["a", "b"]), flush(2, &["c"])])];
    let mut follower = Follower::new(Some(("invocation-of-this-test".into(), 1)), &minimal_head());
    assert_eq!(observe(&mut follower, Some(&running), T0, &log).0, vec![part(2, "c")]);
    let mut other = Follower::new(Some(("another invocation".into(), 1)), &minimal_head());
    assert_eq!(observe(&mut other, Some(&running), T0, &log).0.len(), 3, "`after` names one invocation");
}

#[test]
fn a_reload_that_resumes_a_turn_which_ended_meanwhile_gets_its_other_parts_and_its_end() {
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let log = vec![(token, vec![flush(0, &["a", "b"]), flush(2, &["c"])])];
    let mut committed = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    note_flushes(&mut committed, token, 2); // as the engine's commit records them
    let end = LiveEvent::End {
        invocation: "invocation-of-this-test".into(),
        outcome: "committed",
        version: committed.version,
        status: Status::Idle,
    };
    // The page had seen seq 0 before it reloaded; the turn committed before it came back.
    let mut resumed = Follower::new(Some(("invocation-of-this-test".into(), 0)), &minimal_head());
    let (events, next) = observe(&mut resumed, Some(&committed), T0 + 2, &log);
    assert_eq!(events, vec![part(1, "b"), part(2, "c"), end], "the rest of the turn, then its end");
    assert_eq!(next, Next::Wait);
    assert_eq!(observe(&mut resumed, Some(&committed), T0 + 3, &log).0, vec![], "once");
    // A follower that did not follow that turn starts after it, as before.
    for after in [None, Some(("another invocation".to_owned(), 0))] {
        let mut fresh = Follower::new(after, &minimal_head());
        assert_eq!(observe(&mut fresh, Some(&committed), T0 + 2, &log).0, vec![]);
    }
    // Once the next turn has begun (its first write deletes that live log), the reload follows the
    // running turn, as a follower does whose `after` names an older invocation.
    let next_turn = begun(&committed, T0 + 4);
    let mut late = Follower::new(Some(("invocation-of-this-test".into(), 0)), &minimal_head());
    let (events, next) = observe(&mut late, Some(&next_turn), T0 + 5, &[]);
    assert_eq!((events, next), (vec![], Next::Wait));
}

/// Takes in `head` (a later turn's end replaced the followed turn's), reads no flushes, checks that the
/// follower asks for the batches of versions 1 and 2, and gives it `batches`: the followed turn's end.
fn end_from_batches(follower: &Follower, head: &Head, now: u64, batches: &[Batch]) -> (&'static str, u64) {
    let mut follower = follower.clone();
    follower.on_head(Some(head.clone()), now, false);
    let mut next_step = follower.advance().0;
    while let Next::Read { .. } = next_step {
        follower.on_flush(None);
        next_step = follower.advance().0;
    }
    assert_eq!(next_step, Next::Batches { after: 0, last: 2 });
    follower.on_batches(batches);
    match follower.advance().1.first() {
        Some(LiveEvent::End { outcome, version, .. }) => (*outcome, *version),
        other => panic!("expected the followed turn's end, got {other:?}"),
    }
}

#[test]
fn a_turn_a_fence_ended_before_a_later_turn_ended_ends_stopped_at_the_fence_not_lost() {
    // The followed turn is fenced at version 1 (a stopper's write under the turn's token + 1, with a
    // `stopped` event of outcome `fenced`), and the next turn begins and commits version 2 before
    // the follower reads the head again: the head's end is the later turn's. The batches after the
    // last version reported tell where the followed turn ended.
    let running = begun(&minimal_head(), T0);
    let mut follower = Follower::new(None, &minimal_head());
    observe(&mut follower, Some(&running), T0, &[]);
    let fence = begun(&running, T0 + LEASE_MS + 1);
    assert_eq!(fence.last_token, running.last_token + 1);
    let fenced = commit(&fence, fence.last_token, T0 + LEASE_MS + 2, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let next = begun(&fenced, T0 + LEASE_MS + 3);
    let later = commit(&next, next.last_token, T0 + LEASE_MS + 4, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let batch = |version: u64, token: u64, outcome: Option<TurnOutcome>| Batch {
        version,
        token,
        at: T0,
        invocation: "a writer".into(),
        traceparent: None,
        events: outcome
            .map(|outcome| Event::Stopped { reason: "user".into(), by: "stopper".into(), outcome })
            .into_iter()
            .collect(),
    };
    let (fence_token, next_batch) = (fence.last_token, batch(2, next.last_token, None));
    for (batches, want) in [
        (vec![batch(1, fence_token, Some(TurnOutcome::Fenced)), next_batch.clone()], ("stopped", 1)),
        // No fence of this turn (a holder's own stop, a fence of another turn's token): lost, at the
        // last version reported.
        (vec![batch(1, fence_token, Some(TurnOutcome::Stopped)), next_batch.clone()], ("lost", 0)),
        (vec![batch(1, fence_token + 1, Some(TurnOutcome::Fenced)), next_batch.clone()], ("lost", 0)),
    ] {
        assert_eq!(end_from_batches(&follower, &later, T0 + LEASE_MS + 5, &batches), want);
    }
}

#[test]
fn a_turn_whose_end_a_later_turn_replaced_ends_as_its_own_last_batch_says() {
    // The followed turn commits version 1 and ends; the next turn commits version 2 before the
    // follower reads the head again. The turn's own batch says how it ended.
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let mut follower = Follower::new(None, &minimal_head());
    observe(&mut follower, Some(&running), T0, &[]);
    let ended = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let next = begun(&ended, T0 + 2);
    let later = commit(&next, next.last_token, T0 + 3, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let message = Event::Message { agent: "default".into(), data: json("\"m\"") };
    let interrupt = Event::Interrupt { reason: "approve?".into(), data: json("null") };
    let stop = Event::Stopped { reason: "user".into(), by: "stopper".into(), outcome: TurnOutcome::Stopped };
    for (own, want) in [
        (vec![message.clone()], "committed"),
        (vec![message.clone(), interrupt.clone()], "interrupted"),
        (vec![message.clone(), stop.clone()], "stopped"),
        (vec![message.clone(), interrupt, stop], "stopped"),
    ] {
        let batches = [
            Batch { version: 1, token, at: T0, invocation: "it".into(), traceparent: None, events: own },
            Batch {
                version: 2,
                token: next.last_token,
                at: T0,
                invocation: "next".into(),
                traceparent: None,
                events: vec![message.clone()],
            },
        ];
        assert_eq!(end_from_batches(&follower, &later, T0 + 4, &batches), (want, 1));
    }
}

#[test]
fn a_turn_that_died_after_a_checkpoint_and_was_taken_over_ends_lost_at_its_own_last_version() {
    // The holder checkpoints version 1 (the follower sees it), then dies; after its lease another
    // holder takes the session over and commits version 2 before the follower reads the head again.
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let checkpointed = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    let mut follower = Follower::new(None, &minimal_head());
    observe(&mut follower, Some(&running), T0, &[]);
    let (events, _) = observe(&mut follower, Some(&checkpointed), T0 + 2, &[]);
    assert!(matches!(events.as_slice(), [LiveEvent::Commit { version: 1, .. }]), "{events:?}");
    let taken = begun(&checkpointed, T0 + LEASE_MS + 2);
    let resumer = taken.last_token;
    let resumed = commit(&taken, resumer, T0 + LEASE_MS + 3, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    assert_eq!(resumed.version, 2);
    let (events, _) = observe(&mut follower, Some(&resumed), T0 + LEASE_MS + 4, &[]);
    match events.first() {
        Some(LiveEvent::End { outcome, version, .. }) => {
            assert_eq!((*outcome, *version), ("lost", 1), "version 2 is the other turn's")
        }
        other => panic!("expected the dead turn's end, got {other:?}"),
    }
}

#[test]
fn ends_report_how_the_turn_ended() {
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let checkpointed = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    let cases = [
        (commit(&running, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head, "committed"),
        (release(&running, token).unwrap(), "aborted"),
        // A turn that checkpointed and ends there (nothing left to write): it ended committed.
        (release_kept(&checkpointed, token).unwrap(), "committed"),
        // One that never wrote the head's version ends aborted, however it releases.
        (release_kept(&running, token).unwrap(), "aborted"),
        (
            commit(
                &running,
                token,
                T0 + 1,
                LEASE_MS,
                Outcome::Interrupt(agent_session::core::Interrupt { reason: "approve?".into(), payload: json("null") }),
                0,
            )
            .unwrap()
            .head,
            "interrupted",
        ),
        // The lease ran out without an end: the holder is lost.
        (running.clone(), "lost"),
        // Taken over by another begin after it ran out.
        (begun(&running, T0 + LEASE_MS + 1), "lost"),
    ];
    for (after, want) in cases {
        let mut follower = Follower::new(None, &minimal_head());
        observe(&mut follower, Some(&running), T0, &[]);
        let (events, _) = observe(&mut follower, Some(&after), T0 + LEASE_MS + 2, &[]);
        match events.first() {
            Some(LiveEvent::End { outcome, .. }) => assert_eq!(*outcome, want),
            other => panic!("expected an end ({want}), got {other:?}"),
        }
    }
    // Read only once the next turn had begun (begin does not move the version): the end still reports
    // the status the turn left the session in, not the next turn's.
    let ended = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let mut follower = Follower::new(None, &minimal_head());
    observe(&mut follower, Some(&running), T0, &[]);
    let (events, _) = observe(&mut follower, Some(&begun(&ended, T0 + 2)), T0 + 3, &[]);
    match events.first() {
        Some(LiveEvent::End { outcome, version, status, .. }) => {
            assert_eq!((*outcome, *version, *status), ("committed", ended.version, Status::Idle))
        }
        other => panic!("expected the end of the first turn, got {other:?}"),
    }
    // The host saying that the holder's realm is gone ends the turn at once, before the lease runs out.
    let mut follower = Follower::new(None, &minimal_head());
    observe(&mut follower, Some(&running), T0, &[]);
    follower.on_head(Some(running.clone()), T0 + 1, true);
    let (next, _) = follower.advance();
    assert!(matches!(next, Next::Read { .. }), "the flushes are read before the end");
    assert_eq!(follower.on_flush(None), vec![]);
    let (_, events) = follower.advance();
    assert!(matches!(events.first(), Some(LiveEvent::End { outcome: "lost", .. })), "{events:?}");
}

#[test]
fn a_follower_reports_checkpoints_and_turns_it_did_not_see_running_and_ends_with_the_session() {
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let mut follower = Follower::new(None, &minimal_head());
    observe(&mut follower, Some(&running), T0, &[]);
    let checkpointed = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    assert_eq!(
        observe(&mut follower, Some(&checkpointed), T0 + 2, &[]).0,
        vec![LiveEvent::Commit { version: 1, status: Status::Running }]
    );
    let done = commit(&checkpointed, token, T0 + 3, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    observe(&mut follower, Some(&done), T0 + 4, &[]);
    // A whole turn between two reads: its parts (its log is still there), then its end.
    let next = begun(&done, T0 + 5);
    let mut unseen = commit(&next, next.last_token, T0 + 6, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    note_flushes(&mut unseen, next.last_token, 1);
    let log = [(next.last_token, vec![flush(0, &["x"])])];
    let end = LiveEvent::End {
        invocation: "invocation-of-this-test".into(),
        outcome: "committed",
        version: 3,
        status: Status::Idle,
    };
    assert_eq!(observe(&mut follower, Some(&unseen), T0 + 7, &log).0, vec![part(0, "x"), end]);
    assert_eq!(observe(&mut follower, Some(&unseen), T0 + 8, &log).0, vec![], "once");
    // An aborted one too: no version, still its end.
    let aborted = release(&begun(&unseen, T0 + 9), next.last_token + 1).unwrap();
    assert!(matches!(
        observe(&mut follower, Some(&aborted), T0 + 10, &[]).0.as_slice(),
        [LiveEvent::End { outcome: "aborted", version: 3, .. }]
    ));
    // A follower that starts after a turn ended does not replay it.
    let mut late = Follower::new(None, &minimal_head());
    assert_eq!(observe(&mut late, Some(&aborted), T0 + 11, &log).0, vec![]);
    // A deleted session ends the iteration.
    assert_eq!(observe(&mut follower, None, T0 + 8, &[]).1, Next::Done);
}

#[test]
fn stop_records_a_request_waits_for_the_holder_then_fences_once_the_grace_has_passed() {
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let stopper = holder("stopper");
    let ask = StopAsk { reason: "user", grace_ms: 100 };
    assert_eq!(stop_step(&minimal_head(), None, ask, stopper, T0, LEASE_MS, false), StopStep::Idle);
    let StopStep::Request { head: requested, token: asked, deadline } =
        stop_step(&running, None, ask, stopper, T0 + 1, LEASE_MS, false)
    else {
        panic!("a running turn gets a stop request")
    };
    assert_eq!((asked, deadline), (token, T0 + 101));
    assert_eq!(requested.lease, running.lease, "a stop request does not touch the lease");
    let stop = stop_pending(&requested, token).expect("the holder sees the request");
    assert_eq!((stop.reason.as_str(), stop.by.as_str()), ("user", "stopper"));
    assert!(check_lease(&requested, token, T0 + 2).is_ok(), "the holder may still commit");
    // A second stopper finds the request and waits for the same turn.
    assert_eq!(
        stop_step(&requested, None, ask, holder("second"), T0 + 2, LEASE_MS, false),
        StopStep::Wait { token, deadline: T0 + 102 }
    );
    assert_eq!(
        stop_step(&requested, Some((token, deadline)), ask, stopper, T0 + 50, LEASE_MS, false),
        StopStep::Wait { token, deadline }
    );

    // The holder ends the turn: its commit carries the `stopped` event and the end says stopped.
    let ended = commit(&requested, token, T0 + 60, LEASE_MS, Outcome::Commit, 0).unwrap();
    assert_eq!(ended.stopped.as_ref().map(|s| s.reason.as_str()), Some("user"));
    assert_eq!(ended.head.stop, None);
    assert_eq!(ended.head.ended.as_ref().map(|e| e.outcome), Some(TurnOutcome::Stopped));
    assert_eq!(
        stop_step(&ended.head, Some((token, deadline)), ask, stopper, T0 + 61, LEASE_MS, false),
        StopStep::Ended(Some(TurnOutcome::Stopped))
    );
    // A checkpoint keeps the request: the turn goes on until it ends.
    let checkpointed = commit(&requested, token, T0 + 60, LEASE_MS, Outcome::Checkpoint, 0).unwrap();
    assert!(checkpointed.stopped.is_none() && stop_pending(&checkpointed.head, token).is_some());

    // The grace runs out: the fence is a takeover (token + 1) and a release in one head.
    let StopStep::Fence { committed, request } =
        stop_step(&requested, Some((token, deadline)), ask, stopper, deadline, LEASE_MS, false)
    else {
        panic!("fence after the grace")
    };
    let fenced = committed.head;
    assert_eq!((request.reason.as_str(), fenced.version, fenced.last_token), ("user", 1, token + 1));
    assert_eq!((fenced.status, fenced.lease.is_none(), fenced.stop.is_none()), (Status::Idle, true, true));
    assert_eq!(fenced.ended.as_ref().map(|e| (e.token, e.outcome)), Some((token, TurnOutcome::Fenced)));
    assert_eq!(
        commit(&fenced, token, deadline + 1, LEASE_MS, Outcome::Commit, 0),
        Err(CoreError::LeaseLost { token }),
        "the fenced holder's commit is refused"
    );
    assert_eq!(
        stop_step(&fenced, Some((token, deadline)), ask, stopper, deadline + 1, LEASE_MS, false),
        StopStep::Ended(Some(TurnOutcome::Fenced))
    );
    // graceMs 0 fences at once, without a separate request write.
    let at_once = StopAsk { reason: "now", grace_ms: 0 };
    assert!(matches!(stop_step(&running, None, at_once, stopper, T0 + 1, LEASE_MS, false), StopStep::Fence { .. }));
    // A new turn is not stopped by a request of an earlier one.
    let next = begun(&fenced, deadline + 2);
    assert_eq!(stop_pending(&next, next.last_token), None);
}

#[test]
fn an_abort_of_a_stopped_turn_commits_its_end() {
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let ask = StopAsk { reason: "user", grace_ms: 100 };
    let StopStep::Request { head: requested, .. } = stop_step(&running, None, ask, holder("s"), T0, LEASE_MS, false)
    else {
        panic!()
    };
    let ended = commit(&requested, token, T0 + 1, LEASE_MS, Outcome::Abort, 0).unwrap();
    assert_eq!((ended.head.version, ended.head.status), (1, Status::Idle));
    assert!(ended.stopped.is_some());
}

#[test]
fn a_beginning_turn_deletes_the_live_logs_it_makes_stale() {
    let first = begun(&minimal_head(), T0);
    assert_eq!(stale_logs(&first, first.last_token), vec![], "nothing ended yet");
    let t1 = first.last_token;
    let mut done = commit(&first, t1, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let quiet = begun(&done, T0 + 2);
    assert_eq!(stale_logs(&quiet, quiet.last_token), vec![], "the last turn wrote no flushes");
    note_flushes(&mut done, t1, 4);
    let second = begun(&done, T0 + 2);
    assert_eq!(stale_logs(&second, second.last_token), vec![(t1, Some(4))]);
    // The second turn's holder is lost; the third deletes its log by listing it.
    let third = begun(&second, T0 + 2 + LEASE_MS);
    assert_eq!(stale_logs(&third, third.last_token), vec![(t1, Some(4)), (second.last_token, None)]);
    // A fenced turn's holder may flush after the fence, past the count the fence wrote: its log is
    // listed, whatever the count (none included).
    for counted in [0, 2] {
        let mut fenced = done.clone();
        let end = fenced.ended.as_mut().unwrap();
        (end.outcome, end.flushes) = (TurnOutcome::Fenced, Some(counted));
        let next = begun(&fenced, T0 + 3);
        assert_eq!(stale_logs(&next, next.last_token), vec![(t1, None)], "fenced with {counted} flushes counted");
    }
}

#[test]
fn a_stop_of_a_turn_whose_holder_is_gone_has_nothing_to_wait_for() {
    let stopper = holder("stopper");
    let ask = StopAsk { reason: "user", grace_ms: 5_000 };
    let running = begun(&minimal_head(), T0);
    assert_eq!(stop_step(&running, None, ask, stopper, T0 + 1, LEASE_MS, true), StopStep::Idle);
    let StopStep::Request { head: requested, token, deadline } =
        stop_step(&running, None, ask, stopper, T0 + 1, LEASE_MS, false)
    else {
        panic!("a running turn is asked to stop");
    };
    // The holder goes away while the stopper waits: its turn is lost, not fenced.
    assert_eq!(
        stop_step(&requested, Some((token, deadline)), ask, stopper, T0 + 50, LEASE_MS, true),
        StopStep::Ended(None)
    );
    assert_eq!(
        stop_step(&requested, Some((token, deadline)), ask, stopper, deadline, LEASE_MS, true),
        StopStep::Ended(None)
    );
}

#[test]
fn a_follower_reads_no_flush_past_the_count_a_turn_ended_with() {
    let running = begun(&minimal_head(), T0);
    let token = running.last_token;
    let mut follower = Follower::new(None, &minimal_head());
    let early = vec![(token, vec![flush(0, &["a"])])];
    assert_eq!(observe(&mut follower, Some(&running), T0, &early).0, vec![part(0, "a")]);
    // Fenced with one flush written; its holder, fenced out, writes a second one afterwards.
    let mut ended = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    note_flushes(&mut ended, token, 1);
    let late = vec![(token, vec![flush(0, &["a"]), flush(1, &["late"])])];
    let (events, _) = observe(&mut follower, Some(&ended), T0 + 2, &late);
    assert!(events.iter().all(|event| !matches!(event, LiveEvent::Part { .. })), "no late part: {events:?}");
    assert!(matches!(events.last(), Some(LiveEvent::End { .. })));
}

#[test]
fn a_checkpoint_of_a_turn_first_seen_after_it_is_reported_after_the_parts_flushed_before_it() {
    let idle = minimal_head();
    let running = begun(&idle, T0);
    let token = running.last_token;
    let checkpointed = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Checkpoint, 0).unwrap().head;
    let log = vec![(token, vec![flush(0, &["a"])])];
    let mut follower = Follower::new(None, &minimal_head());
    assert_eq!(observe(&mut follower, Some(&idle), T0, &[]).0, vec![]);
    let (events, next) = observe(&mut follower, Some(&checkpointed), T0 + 2, &log);
    assert_eq!(
        events,
        vec![part(0, "a"), LiveEvent::Commit { version: checkpointed.version, status: Status::Running }]
    );
    assert_eq!(next, Next::Wait);
    // A version committed before the turn began (by a turn not seen) is reported first, as before.
    let mut late = Follower::new(None, &minimal_head());
    assert_eq!(observe(&mut late, Some(&idle), T0, &[]).0, vec![]);
    let ended = commit(&running, token, T0 + 1, LEASE_MS, Outcome::Commit, 0).unwrap().head;
    let next_turn = begun(&ended, T0 + 3);
    let next_log = vec![(next_turn.last_token, vec![flush(0, &["b"])])];
    let (events, _) = observe(&mut late, Some(&next_turn), T0 + 4, &next_log);
    assert!(matches!(events.first(), Some(LiveEvent::Commit { .. }) | Some(LiveEvent::End { .. })), "{events:?}");
}

#[test]
fn a_follower_ends_when_the_id_holds_another_session_than_the_one_it_follows() {
    let followed = Head { version: 2, last_token: 2, created_at: T0, ..minimal_head() };
    // Created again later: another creation time.
    let mut follower = Follower::new(None, &followed);
    assert_eq!(observe(&mut follower, Some(&followed), T0 + 1, &[]), (vec![], Next::Wait));
    let again = Head { version: 3, last_token: 3, created_at: T0 + 1000, ..minimal_head() };
    assert_eq!(observe(&mut follower, Some(&again), T0 + 1001, &[]), (vec![], Next::Done));
    // A stale read of the same session (an eventually consistent backend): lower version and token,
    // the same creation time; the follower goes on.
    let mut follower = Follower::new(None, &followed);
    assert_eq!(observe(&mut follower, Some(&followed), T0 + 1, &[]), (vec![], Next::Wait));
    let stale = Head { version: 1, last_token: 1, created_at: T0, ..minimal_head() };
    assert_eq!(observe(&mut follower, Some(&stale), T0 + 2, &[]).1, Next::Wait);
    // The view the follower was made from is of a session deleted since: its first read ends it.
    let mut follower = Follower::new(None, &followed);
    assert_eq!(observe(&mut follower, Some(&again), T0 + 1001, &[]), (vec![], Next::Done));
}
