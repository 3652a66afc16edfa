//! The property test of live turns through the engine: two holders (emit, flush, commit, abort,
//! crash, a stale holder's commit), a stopper (`stop()` with a random grace) and a follower, each its
//! own `SessionStore` over one `MemoryStore` behind a `YieldingStore`, interleaved inside their
//! operations by the scheduler below, with clock moves. The checks run on the backend's write log,
//! the recorded results and what the follower yielded:
//!
//! - at most one holder: every commit's token held the lease the head it replaced carried;
//! - a fenced holder never commits (no version by its token at or after the fence);
//! - every part the follower yields was flushed by that invocation under its token, with that data,
//!   exactly once, in seq order, none after its turn's end, and a turn its holder ended itself is
//!   yielded whole before its end (unless the next turn deleted its log before the follower read it,
//!   as the contract allows);
//! - every stop ends: it resolves, and the turn it reports stopped no longer holds the lease.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::task::Poll;

use agent_session::core::live::{Flush, LiveEvent};
use agent_session::core::{codec, keys, Head, TurnOutcome};
use agent_session::engine::{
    BeginOptions, Config, EngineError, Invocation, LiveFollow, OpenOptions, Session, SessionStore, StopResult,
};
use agent_session::store::LocalBoxFuture;
use proptest::prelude::*;

use crate::basics::j;
use crate::support::*;

const LEASE_MS: u64 = 100;
const ID: &str = "live/session";
const HOLDERS: usize = 2;
const STOPPER: usize = HOLDERS;
const FOLLOWER: usize = HOLDERS + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Begin,
    Emit,
    Flush,
    Commit,
    Abort,
    Crash,
    ZombieCommit,
    Stop(u64),
    Poll,
}

#[derive(Debug, Clone)]
enum Step {
    Act(usize, Op),
    Advance(u64),
}

fn holder_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Begin),
        6 => Just(Op::Emit),
        2 => Just(Op::Flush),
        2 => Just(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Crash),
        1 => Just(Op::ZombieCommit),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        12 => (0..HOLDERS, holder_op()).prop_map(|(owner, op)| Step::Act(owner, op)),
        2 => (0..=LEASE_MS).prop_map(|grace| Step::Act(STOPPER, Op::Stop(grace))),
        6 => Just(Step::Act(FOLLOWER, Op::Poll)),
        1 => (1..=LEASE_MS).prop_map(Step::Advance),
    ];
    proptest::collection::vec(step, 1..250)
}

enum Done {
    Began(Result<Rc<Invocation>, EngineError>),
    Wrote(Result<u64, EngineError>),
    Unit(Result<(), EngineError>),
    Stopped(Result<StopResult, EngineError>),
    Followed(Result<Vec<LiveEvent>, EngineError>),
}

struct Actor {
    session: Rc<Session>,
    wrapper: Rc<YieldingStore>,
    current: Option<Rc<Invocation>>,
    zombie: Option<Rc<Invocation>>,
    in_flight: Option<(Op, Option<Rc<Invocation>>, LocalBoxFuture<'static, Done>)>,
}

#[derive(Default)]
struct Record {
    /// Successful commits: (token, version).
    commits: Vec<(u64, u64)>,
    /// Invocation id -> token, from successful begins.
    tokens: BTreeMap<String, u64>,
    /// Invocations that ended by their holder's own commit or abort (not lost, not fenced).
    ended_by_holder: BTreeSet<String>,
    stops: Vec<StopResult>,
    yielded: Vec<LiveEvent>,
    parts_emitted: u64,
}

fn start(actor: &mut Actor, op: Op, follow: &Rc<LiveFollow>, counter: &mut u64, record: &mut Record) {
    let op = match op {
        Op::Stop(_) | Op::Poll | Op::ZombieCommit | Op::Crash => op,
        _ if actor.current.is_none() => Op::Begin,
        other => other,
    };
    let mut on: Option<Rc<Invocation>> = None;
    let future: LocalBoxFuture<'static, Done> = match op {
        Op::Begin => {
            let session = actor.session.clone();
            Box::pin(async move { Done::Began(session.begin(BeginOptions::default()).await) })
        }
        Op::Emit => {
            let invocation = actor.current.as_ref().unwrap();
            *counter += 1;
            if invocation.emit(j(&format!("\"p{counter}\""))).is_ok() {
                record.parts_emitted += 1;
            }
            invocation.append_message(j(&format!("\"m{counter}\"")), None).ok();
            return;
        }
        Op::Flush => {
            let invocation = actor.current.clone().unwrap();
            Box::pin(async move { Done::Unit(invocation.flush().await) })
        }
        Op::Commit => {
            let invocation = actor.current.take().unwrap();
            on = Some(invocation.clone());
            Box::pin(async move { Done::Wrote(invocation.commit().await) })
        }
        Op::ZombieCommit => {
            let Some(invocation) = actor.zombie.take() else { return };
            on = Some(invocation.clone());
            Box::pin(async move { Done::Wrote(invocation.commit().await) })
        }
        Op::Abort => {
            let invocation = actor.current.clone().unwrap();
            Box::pin(async move { Done::Unit(invocation.abort().await) })
        }
        Op::Crash => {
            if let Some(held) = actor.current.take() {
                actor.zombie = Some(held);
            }
            return;
        }
        Op::Stop(grace) => {
            let session = actor.session.clone();
            Box::pin(async move { Done::Stopped(session.stop("test", grace).await) })
        }
        Op::Poll => {
            let follow = follow.clone();
            Box::pin(async move { Done::Followed(follow.poll().await) })
        }
    };
    actor.in_flight = Some((op, on, future));
}

fn poll(actor: &mut Actor, record: &mut Record) -> Result<(), TestCaseError> {
    let Some((op, _, future)) = actor.in_flight.as_mut() else { return Ok(()) };
    let op = *op;
    let Poll::Ready(done) = poll_once(future.as_mut()) else { return Ok(()) };
    let (_, on, _) = actor.in_flight.take().unwrap();
    match done {
        Done::Began(Ok(invocation)) => {
            record.tokens.insert(invocation.id().to_owned(), invocation.token());
            if let Some(previous) = actor.current.replace(invocation) {
                actor.zombie = Some(previous);
            }
        }
        Done::Began(Err(_)) => {}
        Done::Wrote(result) => {
            let invocation = on.expect("a commit runs on an invocation");
            match result {
                Ok(version) => {
                    record.commits.push((invocation.token(), version));
                    record.ended_by_holder.insert(invocation.id().to_owned());
                }
                // Retryable: the invocation stays open.
                Err(_) if !invocation.is_ended() && op == Op::Commit && actor.current.is_none() => {
                    actor.current = Some(invocation);
                }
                Err(_) => {}
            }
        }
        Done::Unit(result) => {
            if op == Op::Abort {
                let invocation = actor.current.take().unwrap();
                if result.is_ok() && !invocation.is_lost() {
                    record.ended_by_holder.insert(invocation.id().to_owned());
                }
            }
        }
        Done::Stopped(result) => {
            let result = result.map_err(|e| TestCaseError::fail(format!("stop failed: {e:?}")))?;
            record.stops.push(result);
        }
        Done::Followed(result) => {
            record.yielded.extend(result.map_err(|e| TestCaseError::fail(format!("follow failed: {e:?}")))?);
        }
    }
    Ok(())
}

/// Runs one scenario; returns how many fences, stops answered by the holder and parts yielded it saw.
fn run(steps: &[Step]) -> Result<(usize, usize, u64), TestCaseError> {
    let world = World::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    block_on(world.store("creator").open(ID, OpenOptions { create: true, ..OpenOptions::default() })).unwrap();
    let mut actors: Vec<Actor> = (0..=FOLLOWER)
        .map(|i| {
            let wrapper = Rc::new(YieldingStore::new(world.mem.clone(), i, log.clone(), world.clock.clone()));
            let config = Config { lease_ms: LEASE_MS, snapshot_every: 3, ..Config::new(format!("actor-{i}")) };
            let store = SessionStore::new(wrapper.clone(), world.env(0), config, None);
            let session = block_on(store.open(ID, OpenOptions::default())).unwrap();
            Actor { session, wrapper, current: None, zombie: None, in_flight: None }
        })
        .collect();
    let follow = Rc::new(actors[FOLLOWER].session.follow(None));
    let mut record = Record::default();
    let mut counter = 0;
    let mut op_id = 0;
    for step in steps {
        match *step {
            Step::Advance(ms) => world.advance(ms),
            Step::Act(i, op) => {
                if actors[i].in_flight.is_none() {
                    op_id += 1;
                    actors[i].wrapper.op.set(op_id);
                    start(&mut actors[i], op, &follow, &mut counter, &mut record);
                }
                poll(&mut actors[i], &mut record)?;
            }
        }
    }
    for _ in 0..100_000 {
        if actors.iter().all(|a| a.in_flight.is_none()) {
            break;
        }
        for actor in &mut actors {
            poll(actor, &mut record)?;
        }
    }
    prop_assert!(actors.iter().all(|a| a.in_flight.is_none()), "every operation (every stop) ends");
    // The follower catches up with what is stored now.
    for _ in 0..4 {
        record.yielded.extend(block_on(follow.poll()).unwrap());
    }

    let writes = log.borrow().clone();
    let head_key = keys::head_key(ID);
    let live_prefix = format!("t/{}/", keys::escape_id(ID));
    // Parts flushed, from the backend's own writes: invocation -> (token, seq -> data).
    let mut flushed: BTreeMap<String, (u64, BTreeMap<u64, String>)> = BTreeMap::new();
    // Live keys -> the bytes written under them.
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Fences: fenced token -> version of the fence.
    let mut fences: BTreeMap<u64, u64> = BTreeMap::new();
    let mut previous: Option<Head> = None;
    for write in &writes {
        let Some(value) = &write.value else { continue };
        if let Some(rest) = write.key.strip_prefix(&live_prefix) {
            let token = u64::from_str_radix(rest.split('/').next().unwrap(), 16).unwrap();
            // A flush's key is written with one content: a commit that writes the turn's last flush
            // with its batch writes it again when it retries after a lost race for the head.
            if let Some(before) = contents.insert(write.key.clone(), value.clone()) {
                prop_assert_eq!(&before, value, "{} rewritten with other parts", write.key);
                continue;
            }
            let Flush { invocation, first_seq, parts } = codec::decode_flush(&write.key, value).unwrap();
            let entry = flushed.entry(invocation).or_insert((token, BTreeMap::new()));
            prop_assert_eq!(entry.0, token, "one invocation flushes under one token");
            for (offset, data) in parts.iter().enumerate() {
                let fresh = entry.1.insert(first_seq + offset as u64, data.to_string()).is_none();
                prop_assert!(fresh, "seq {} flushed twice", first_seq + offset as u64);
            }
        } else if write.key == head_key {
            let head = codec::decode_head(&head_key, value).unwrap();
            if let Some(before) = &previous {
                if head.version > before.version {
                    // A commit: the head it replaced carried the committer's lease, or this is a fence.
                    let fenced = head.ended.as_ref().filter(|e| e.outcome == TurnOutcome::Fenced);
                    match fenced {
                        Some(end) if before.ended.as_ref() != Some(end) => {
                            fences.insert(end.token, head.version);
                        }
                        _ => {
                            let lease = before.lease.as_ref().map(|l| l.token);
                            let by = head.token_of(head.version).or(head.snapshot.map(|s| s.token));
                            prop_assert_eq!(lease, by, "version {} committed by the lease holder", head.version);
                        }
                    }
                }
            }
            previous = Some(head);
        }
    }

    // A fenced holder never commits.
    for (token, version) in &record.commits {
        if let Some(fence) = fences.get(token) {
            prop_assert!(version < fence, "token {} committed version {} after its fence at {}", token, version, fence);
        }
    }

    // What the follower yielded.
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ended: BTreeMap<String, &'static str> = BTreeMap::new();
    for event in &record.yielded {
        match event {
            LiveEvent::Part { invocation, seq, data } => {
                prop_assert!(!ended.contains_key(invocation), "a part of {} after its end", invocation);
                let (token, parts) = flushed.get(invocation).ok_or_else(|| TestCaseError::fail("unflushed part"))?;
                prop_assert_eq!(parts.get(seq), Some(&data.to_string()), "part {} of {} as flushed", seq, invocation);
                prop_assert_eq!(record.tokens.get(invocation), Some(token), "flushed under its own token");
                let seqs = seen.entry(invocation.clone()).or_default();
                prop_assert!(seqs.last().is_none_or(|last| last < seq), "{} yielded out of order", invocation);
                seqs.push(*seq);
            }
            LiveEvent::End { invocation, outcome, .. } => {
                prop_assert!(ended.insert(invocation.clone(), outcome).is_none(), "{} ended twice", invocation);
            }
            LiveEvent::Commit { .. } => {}
        }
    }
    for (invocation, seqs) in &seen {
        // From the turn's first part, with no gap (the follower replays a running turn whole).
        prop_assert_eq!(seqs, &(0..seqs.len() as u64).collect::<Vec<_>>(), "parts of {}", invocation);
    }
    // Tokens whose live log a later turn deleted (by design, as it began): a follower that had not
    // read it yet cannot have it all.
    let deleted: BTreeSet<u64> = writes
        .iter()
        .filter(|w| w.value.is_none())
        .filter_map(|w| w.key.strip_prefix(&live_prefix))
        .map(|rest| u64::from_str_radix(rest.split('/').next().unwrap(), 16).unwrap())
        .collect();
    for (invocation, outcome) in &ended {
        let kept = flushed.get(invocation).is_none_or(|(token, _)| !deleted.contains(token));
        if kept && record.ended_by_holder.contains(invocation) && matches!(*outcome, "committed" | "aborted") {
            let all = flushed.get(invocation).map_or(0, |(_, parts)| parts.len());
            let got = seen.get(invocation).map_or(0, Vec::len);
            prop_assert_eq!(got, all, "{} ended {} before all its parts were yielded", invocation, outcome);
        }
    }

    // Every stop that reports a stopped turn left it without the lease.
    let head = world.head(ID);
    for stop in &record.stops {
        if let (Some(invocation), "stopped" | "fenced") = (&stop.invocation, stop.outcome) {
            let token = record.tokens.get(invocation);
            prop_assert!(token.is_some(), "stop names invocation {} that began", invocation);
            prop_assert!(
                head.lease.as_ref().map(|l| l.token) != token.copied(),
                "{} still holds the lease",
                invocation
            );
        }
    }
    let parts = record.yielded.iter().filter(|e| matches!(e, LiveEvent::Part { .. })).count() as u64;
    let by_holder = record.stops.iter().filter(|s| s.outcome == "stopped").count();
    Ok((fences.len(), by_holder, parts))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn live_turns_interleaved_with_stops_and_a_follower(steps in steps()) {
        run(&steps)?;
    }
}

/// The paths the property claims to check are taken: fences, stops by the holder, parts yielded.
#[test]
fn the_live_property_test_reaches_fences_and_followed_parts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut fences, mut stopped, mut parts) = (0, 0, 0);
    for _ in 0..64 {
        let steps = steps().new_tree(&mut runner).unwrap().current();
        let (f, s, p) = run(&steps).unwrap();
        fences += f;
        stopped += s;
        parts += p;
    }
    assert!(fences > 10 && stopped > 5 && parts > 100, "fences {fences}, stopped by holder {stopped}, parts {parts}");
}
