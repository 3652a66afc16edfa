//! The property test of the guard through the engine: 3-4 owners (each its own `SessionStore`, all
//! sharing one `MemoryStore`) run random begin / append / commit / checkpoint / abort / renew /
//! crash / stale-commit steps and clock moves on one session. Every owner's store is wrapped in a
//! `YieldingStore`, so each store call is suspended once and the scheduler below polls the owners'
//! in-flight futures in the order the strategy chooses: owners interleave inside operations (between
//! a head read and its compare-and-set, between a batch write and the head write).
//!
//! The wrappers log every write the backend applied, tagged with the owner and operation, and every
//! operation's result is recorded; the checks run on those two histories and on a fresh load.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::task::Poll;

use agent_session::core::{codec, keys, CoreError, Event, Head, Status};
use agent_session::engine::{BeginOptions, Config, EngineError, Invocation, OpenOptions, Session, SessionStore};
use agent_session::store::LocalBoxFuture;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};

use crate::basics::j;
use crate::support::*;

const LEASE_MS: u64 = 100;
const ID: &str = "shared/session %1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Begin,
    Append,
    Commit,
    Checkpoint,
    Abort,
    Renew,
    /// Forget the current invocation without releasing it (it becomes the owner's zombie).
    Crash,
    /// Commit the zombie: a holder that comes back after its lease may have been taken.
    ZombieCommit,
}

#[derive(Debug, Clone)]
enum Step {
    /// Start `Op` on the owner, or, when it has an operation in flight, poll that once instead.
    Act(usize, Op),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Begin),
        4 => Just(Op::Append),
        4 => Just(Op::Commit),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Abort),
        1 => Just(Op::Renew),
        1 => Just(Op::Crash),
        1 => Just(Op::ZombieCommit),
    ]
}

fn steps(owners: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        16 => (0..owners, op()).prop_map(|(owner, op)| Step::Act(owner, op)),
        1 => (1..=LEASE_MS * 3 / 2).prop_map(Step::Advance),
    ];
    proptest::collection::vec(step, 1..300)
}

/// Owners, clock skews (ms, per owner) and snapshot period.
fn scenario(skewed: bool) -> impl Strategy<Value = (Vec<i64>, u64, Vec<Step>)> {
    let skew = if skewed { -(LEASE_MS as i64)..=LEASE_MS as i64 } else { 0..=0i64 };
    (3..=4usize, 0..=3u64).prop_flat_map(move |(owners, every)| {
        (proptest::collection::vec(skew.clone(), owners), Just(every), steps(owners))
    })
}

struct Held {
    invocation: Rc<Invocation>,
    staged: Vec<String>,
}

enum Done {
    Began(Result<Rc<Invocation>, EngineError>),
    Wrote(Result<u64, EngineError>),
    Unit(Result<(), EngineError>),
}

struct InFlight {
    op: u64,
    kind: Op,
    /// The messages the commit carries (for commits), or the staged ones (for others).
    messages: Vec<String>,
    future: LocalBoxFuture<'static, Done>,
}

struct Owner {
    name: String,
    session: Rc<Session>,
    wrapper: Rc<YieldingStore>,
    current: Option<Held>,
    zombie: Option<Held>,
    in_flight: Option<InFlight>,
}

/// One successful commit or checkpoint, as its caller saw it.
#[derive(Debug, Clone)]
struct Commit {
    op: u64,
    owner: usize,
    token: u64,
    invocation: String,
    version: u64,
    messages: Vec<String>,
}

#[derive(Debug, Default)]
struct Record {
    /// Successful begins: op -> (owner, token).
    acquired: BTreeMap<u64, (usize, u64)>,
    commits: Vec<Commit>,
    /// Ops that got `Concurrency`: op -> (holder, retry_after_ms).
    refused: BTreeMap<u64, (String, u64)>,
    /// Ops that got `LeaseLost`, with the messages they were carrying.
    lost: BTreeMap<u64, Vec<String>>,
    /// Ops that got `Conflict` (allowed, but they must have written no head).
    conflicts: BTreeSet<u64>,
    /// Messages that were staged and never committed (aborted, forgotten, or left at the end).
    discarded: Vec<String>,
    /// Successful renews and aborts: op -> the invocation's token.
    renewed_or_aborted: BTreeMap<u64, u64>,
}

/// Coverage counters, so that a test can show the paths it claims to check were taken.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub commits: u64,
    pub takeovers: u64,
    pub refused: u64,
    pub lost: u64,
    pub stale_batches: u64,
    pub snapshots: u64,
    /// Compare-and-set races lost inside operations (only possible when owners interleave).
    pub lost_races: u64,
}

fn start(owner: &mut Owner, index: usize, op_id: u64, kind: Op, counter: &mut u64, record: &mut Record) {
    // An owner without an invocation keeps contending for one.
    let kind = if owner.current.is_none() && kind != Op::ZombieCommit { Op::Begin } else { kind };
    let commit_on = |held: &mut Held| -> (Vec<String>, Rc<Invocation>) {
        (std::mem::take(&mut held.staged), held.invocation.clone())
    };
    let (messages, future): (Vec<String>, LocalBoxFuture<'static, Done>) = match kind {
        Op::Begin => {
            let session = owner.session.clone();
            (Vec::new(), Box::pin(async move { Done::Began(session.begin(BeginOptions::default()).await) }))
        }
        Op::Append => {
            if let Some(held) = &mut owner.current {
                *counter += 1;
                let message = format!("\"{index}-{counter}\"");
                held.invocation.append_message(j(&message), None).expect("an open invocation stages");
                held.staged.push(message);
            }
            return;
        }
        Op::Commit | Op::Checkpoint => {
            let Some(held) = &mut owner.current else { return };
            let (messages, invocation) = commit_on(held);
            let checkpoint = kind == Op::Checkpoint;
            let future = Box::pin(async move {
                Done::Wrote(if checkpoint { invocation.checkpoint().await } else { invocation.commit().await })
            });
            (messages, future)
        }
        Op::ZombieCommit => {
            let Some(held) = &mut owner.zombie else { return };
            let (messages, invocation) = commit_on(held);
            (messages, Box::pin(async move { Done::Wrote(invocation.commit().await) }))
        }
        Op::Abort => {
            let Some(held) = &owner.current else { return };
            let invocation = held.invocation.clone();
            (held.staged.clone(), Box::pin(async move { Done::Unit(invocation.abort().await) }))
        }
        Op::Renew => {
            let Some(held) = &owner.current else { return };
            let invocation = held.invocation.clone();
            (held.staged.clone(), Box::pin(async move { Done::Unit(invocation.renew().await) }))
        }
        Op::Crash => {
            if let Some(held) = owner.current.take() {
                if let Some(old) = owner.zombie.replace(held) {
                    record.discarded.extend(old.staged);
                }
            }
            return;
        }
    };
    owner.wrapper.op.set(op_id);
    owner.in_flight = Some(InFlight { op: op_id, kind, messages, future });
}

/// Polls the owner's in-flight operation once and, if it finished, records its result.
fn poll(owner: &mut Owner, index: usize, record: &mut Record) -> Result<(), TestCaseError> {
    let Some(flight) = owner.in_flight.as_mut() else { return Ok(()) };
    let Poll::Ready(done) = poll_once(flight.future.as_mut()) else { return Ok(()) };
    let InFlight { op, kind, messages, .. } = owner.in_flight.take().unwrap();
    let slot = if kind == Op::ZombieCommit { &mut owner.zombie } else { &mut owner.current };
    match done {
        Done::Began(Ok(invocation)) => {
            record.acquired.insert(op, (index, invocation.token()));
            let held = Held { invocation, staged: Vec::new() };
            if let Some(previous) = owner.current.replace(held) {
                // The owner's own earlier invocation had lapsed: it is now a stale holder.
                if let Some(old) = owner.zombie.replace(previous) {
                    record.discarded.extend(old.staged);
                }
            }
        }
        Done::Began(Err(EngineError::Core(CoreError::Concurrency { holder, retry_after_ms }))) => {
            record.refused.insert(op, (holder, retry_after_ms));
        }
        Done::Began(Err(EngineError::Conflict(_))) => {
            record.conflicts.insert(op);
        }
        Done::Began(Err(error)) => return Err(TestCaseError::fail(format!("begin failed with {error:?}"))),
        Done::Wrote(result) => {
            let held = slot.as_mut().expect("the invocation an op runs on stays in its slot");
            match result {
                Ok(version) => {
                    record.commits.push(Commit {
                        op,
                        owner: index,
                        token: held.invocation.token(),
                        invocation: held.invocation.id().to_owned(),
                        version,
                        messages,
                    });
                    if kind != Op::Checkpoint {
                        *slot = None;
                    }
                }
                Err(EngineError::Core(CoreError::LeaseLost { token })) => {
                    prop_assert_eq!(token, held.invocation.token());
                    prop_assert!(held.invocation.is_lost());
                    record.lost.insert(op, messages);
                    *slot = None;
                }
                Err(EngineError::Conflict(_)) => {
                    // The invocation stays open with its events staged.
                    held.staged = messages;
                    record.conflicts.insert(op);
                }
                Err(error) => return Err(TestCaseError::fail(format!("{kind:?} failed with {error:?}"))),
            }
        }
        Done::Unit(result) => {
            let held = slot.as_mut().expect("the invocation an op runs on stays in its slot");
            match (kind, result) {
                (Op::Abort, Ok(())) => {
                    record.discarded.extend(std::mem::take(&mut held.staged));
                    record.renewed_or_aborted.insert(op, held.invocation.token());
                    *slot = None;
                }
                (Op::Renew, Ok(())) => {
                    record.renewed_or_aborted.insert(op, held.invocation.token());
                }
                (Op::Renew, Err(EngineError::Core(CoreError::LeaseLost { token }))) => {
                    prop_assert_eq!(token, held.invocation.token());
                    record.lost.insert(op, std::mem::take(&mut held.staged));
                    *slot = None;
                }
                (Op::Abort, Err(EngineError::Conflict(_))) => {
                    // The release write failed; the invocation is ended anyway (its lease runs out).
                    record.discarded.extend(std::mem::take(&mut held.staged));
                    record.conflicts.insert(op);
                    *slot = None;
                }
                (_, Err(EngineError::Conflict(_))) => {
                    record.conflicts.insert(op);
                }
                (kind, Err(error)) => return Err(TestCaseError::fail(format!("{kind:?} failed with {error:?}"))),
                (kind, Ok(())) => unreachable!("{kind:?} is not a unit op"),
            }
        }
    }
    Ok(())
}

/// Runs one scenario and checks every property; returns what happened, for the coverage test.
fn run(skews: &[i64], snapshot_every: u64, steps: &[Step]) -> Result<Stats, TestCaseError> {
    let world = World::new();
    let shared_clock = skews.iter().all(|&s| s == 0);
    let log = Rc::new(RefCell::new(Vec::new()));
    // Created up front, outside the interleaving.
    let creator = world.store("creator");
    block_on(creator.open(ID, OpenOptions { create: true, ..OpenOptions::default() })).unwrap();
    let initial = world.head(ID);
    let mut owners: Vec<Owner> = skews
        .iter()
        .enumerate()
        .map(|(i, &skew)| {
            let wrapper = Rc::new(YieldingStore::new(world.mem.clone(), i, log.clone(), world.clock.clone()));
            let name = format!("owner-{i}");
            let config = Config { lease_ms: LEASE_MS, snapshot_every, ..Config::new(name.clone()) };
            let store = SessionStore::new(wrapper.clone(), world.env(skew), config, None);
            let session = block_on(store.open(ID, OpenOptions::default())).unwrap();
            Owner { name, session, wrapper, current: None, zombie: None, in_flight: None }
        })
        .collect();
    prop_assert!(log.borrow().is_empty());

    let mut record = Record::default();
    let mut next_op = 0u64;
    let mut counter = 0u64;
    for step in steps {
        match *step {
            Step::Advance(ms) => world.advance(ms),
            Step::Act(i, kind) => {
                if owners[i].in_flight.is_some() {
                    poll(&mut owners[i], i, &mut record)?;
                } else {
                    next_op += 1;
                    start(&mut owners[i], i, next_op, kind, &mut counter, &mut record);
                    // The synchronous part of the op (the busy mark, the first store call) runs now.
                    poll(&mut owners[i], i, &mut record)?;
                }
            }
        }
    }
    // Let every operation in flight finish, round robin.
    for _ in 0..10_000 {
        if owners.iter().all(|o| o.in_flight.is_none()) {
            break;
        }
        for (i, owner) in owners.iter_mut().enumerate() {
            poll(owner, i, &mut record)?;
        }
    }
    prop_assert!(owners.iter().all(|o| o.in_flight.is_none()), "operations still in flight");
    for owner in &mut owners {
        for held in [owner.current.take(), owner.zombie.take()].into_iter().flatten() {
            record.discarded.extend(held.staged);
        }
    }

    let head = world.head(ID);
    let writes = log.borrow().clone();
    let head_key = keys::head_key(ID);

    // 1. Versions are gapless 1..=n, each committed exactly once, and n is the head's version.
    let mut commits = record.commits.clone();
    commits.sort_by_key(|c| c.version);
    let versions: Vec<u64> = commits.iter().map(|c| c.version).collect();
    prop_assert_eq!(&versions, &(1..=head.version).collect::<Vec<_>>(), "versions of successful commits");

    // 2. A fresh store loads every committed message exactly once, in commit order.
    let reader = world.store_with(Config { lease_ms: LEASE_MS, ..World::config("reader") }, 0);
    let fresh = block_on(reader.open(ID, OpenOptions::default())).unwrap();
    let expected: Vec<String> = commits.iter().flat_map(|c| c.messages.iter().cloned()).collect();
    let loaded: Vec<String> = fresh.messages(None).unwrap().iter().map(|m| m.to_string()).collect();
    prop_assert_eq!(&loaded, &expected, "messages loaded by a fresh store");

    // 3. Nothing from a refused, lost or discarded path appears.
    let loaded_set: BTreeSet<&String> = loaded.iter().collect();
    for message in record.lost.values().flatten().chain(&record.discarded) {
        prop_assert!(!loaded_set.contains(message), "{} was never committed but is visible", message);
    }

    // 4. History names, for every version, the invocation that committed it and its messages.
    let history = block_on(fresh.history(None, None)).unwrap();
    let mut by_version: BTreeMap<u64, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for event in history.into_iter().filter(|e| e.version > 0) {
        let entry = by_version.entry(event.version).or_default();
        entry.0.insert(event.invocation.clone());
        match event.event {
            Some(Event::Message { data, .. }) => entry.1.push(data.to_string()),
            other => prop_assert!(false, "unexpected event {:?}", other),
        }
    }
    for commit in &commits {
        match by_version.remove(&commit.version) {
            Some((invocations, messages)) => {
                prop_assert_eq!(invocations, BTreeSet::from([commit.invocation.clone()]));
                prop_assert_eq!(&messages, &commit.messages);
            }
            None => prop_assert!(commit.messages.is_empty(), "version {} lost its events", commit.version),
        }
    }
    prop_assert!(by_version.is_empty(), "history has versions nobody committed: {:?}", by_version);

    // 5. Every owner's cached view catches up to the same state.
    for owner in &owners {
        block_on(owner.session.refresh()).unwrap();
        prop_assert_eq!(&*owner.session.state().unwrap(), &*fresh.state().unwrap(), "view of {}", owner.name);
    }

    // 6. The head's history in the backend's own order of writes.
    let commit_ops: BTreeMap<u64, &Commit> = record.commits.iter().map(|c| (c.op, c)).collect();
    let mut stats = Stats::default();
    let mut prev = initial.clone();
    // (token, start, end) of every lease, in acquisition order.
    let mut leases: Vec<(u64, u64, Option<u64>)> = Vec::new();
    let mut head_writes_by_op: BTreeMap<u64, usize> = BTreeMap::new();
    for write in writes.iter().filter(|w| w.key == head_key) {
        let value = write.value.as_ref().expect("no head is deleted here");
        let next: Head = codec::decode_head(&head_key, value).unwrap();
        *head_writes_by_op.entry(write.op).or_default() += 1;
        let prev_lease = prev.lease.clone();
        if next.last_token != prev.last_token {
            // An acquire.
            let lease = next.lease.clone().expect("an acquire writes a lease");
            prop_assert_eq!(next.last_token, prev.last_token + 1, "tokens go up by one");
            prop_assert_eq!(lease.token, next.last_token);
            prop_assert_eq!(next.version, prev.version);
            prop_assert_eq!(next.status, Status::Running);
            let decided_at = lease.expires_at - LEASE_MS;
            if let Some(old) = &prev_lease {
                prop_assert!(old.expires_at <= decided_at, "token {} acquired over live lease {:?}", lease.token, old);
                if let Some(last) = leases.last_mut() {
                    if last.2.is_none() {
                        last.2 = Some(old.expires_at);
                    }
                }
                stats.takeovers += 1;
            }
            prop_assert_eq!(
                record.acquired.get(&write.op),
                Some(&(write.owner, lease.token)),
                "acquire by op {}",
                write.op
            );
            leases.push((lease.token, decided_at, None));
        } else if next.version != prev.version {
            // A commit or checkpoint, by the holder of the live lease.
            prop_assert_eq!(next.version, prev.version + 1);
            let lease = prev_lease.clone().expect("a commit needs a lease");
            let token =
                next.token_of(next.version).or(next.snapshot.filter(|s| s.version == next.version).map(|s| s.token));
            prop_assert_eq!(token, Some(lease.token), "the batch named is the holder's");
            // `updated_at` is the committer's clock at its decision, unless that was behind the commit
            // before (a skewed clock): it never goes back.
            prop_assert!(next.updated_at >= prev.updated_at, "updated_at went back");
            prop_assert!(
                next.updated_at < lease.expires_at || next.updated_at == prev.updated_at,
                "committed after the lease ended"
            );
            let commit = commit_ops.get(&write.op).copied();
            prop_assert!(
                commit.is_some_and(|c| c.version == next.version && c.token == lease.token && c.owner == write.owner),
                "head write of version {} by op {} that did not report it",
                next.version,
                write.op
            );
            if next.lease.is_none() {
                if let Some(last) = leases.last_mut() {
                    last.2 = Some(write.at);
                }
            }
            if next.snapshot.is_some_and(|s| s.version == next.version) {
                stats.snapshots += 1;
            }
        } else {
            // A renew or a release, by the holder.
            let lease = prev_lease.clone().expect("a renew or release needs a lease");
            prop_assert_eq!(next.last_token, prev.last_token);
            prop_assert_eq!(
                record.renewed_or_aborted.get(&write.op),
                Some(&lease.token),
                "renew/release by op {}",
                write.op
            );
            match &next.lease {
                Some(renewed) => prop_assert_eq!(renewed.token, lease.token),
                None => {
                    prop_assert_eq!(next.status, prev.resting_status());
                    if let Some(last) = leases.last_mut() {
                        last.2 = Some(write.at);
                    }
                }
            }
        }
        prev = next;
    }
    prop_assert_eq!(&prev, &head, "the last logged head is the stored head");

    // 7. At most one live holder at any instant: with one clock for everybody, no two leases overlap.
    if shared_clock {
        for pair in leases.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            prop_assert!(first.2.is_some_and(|end| end <= second.1), "lease {:?} overlaps lease {:?}", first, second);
        }
    }
    // Tokens: strictly increasing, one per successful begin, and every successful begin is in the log.
    let logged: Vec<u64> = leases.iter().map(|l| l.0).collect();
    prop_assert_eq!(&logged, &(initial.last_token + 1..=head.last_token).collect::<Vec<_>>());
    let mut begun: Vec<u64> = record.acquired.values().map(|&(_, t)| t).collect();
    begun.sort_unstable();
    prop_assert_eq!(&begun, &logged, "tokens handed to callers");

    // 8. Writes per operation: a refused begin writes nothing; a lost or conflicting one no head.
    for write in &writes {
        prop_assert!(!record.refused.contains_key(&write.op), "a refused begin (op {}) wrote {}", write.op, write.key);
    }
    let names: Vec<&str> = owners.iter().map(|o| o.name.as_str()).collect();
    for (holder, retry_after_ms) in record.refused.values() {
        prop_assert!(names.contains(&holder.as_str()), "Concurrency names {}", holder);
        // Skews (up to a lease either way) stretch what one owner's lease looks like to another.
        let longest = if shared_clock { LEASE_MS } else { 3 * LEASE_MS };
        prop_assert!((1..=longest).contains(retry_after_ms), "retry after {} ms", retry_after_ms);
    }
    for op in record.lost.keys().chain(&record.conflicts) {
        prop_assert_eq!(head_writes_by_op.get(op), None, "op {} failed but wrote the head", op);
    }
    for commit in &record.commits {
        prop_assert_eq!(head_writes_by_op.get(&commit.op), Some(&1), "op {} committed with one head write", commit.op);
    }
    for op in record.acquired.keys() {
        let by_op: Vec<&str> = writes.iter().filter(|w| w.op == *op).map(|w| w.key.as_str()).collect();
        prop_assert_eq!(by_op, vec![head_key.as_str()], "a begin writes the head once and nothing else");
    }

    // 9. The one rule of the layout: every key the head names was written exactly once, by its commit.
    let named: BTreeSet<String> = named_keys(&world.mem, ID).into_iter().filter(|k| *k != head_key).collect();
    let by_version: BTreeMap<u64, &Commit> = commits.iter().map(|c| (c.version, c)).collect();
    for key in &named {
        let puts: Vec<&Write> = writes.iter().filter(|w| &w.key == key).collect();
        prop_assert_eq!(puts.len(), 1, "{} was written {} times", key, puts.len());
        let version = u64::from_str_radix(key.split('/').nth(2).unwrap(), 16).unwrap();
        let commit = by_version[&version];
        prop_assert_eq!((puts[0].owner, puts[0].op), (commit.owner, commit.op), "{} written by another op", key);
    }
    // A successful commit wrote nothing but what the head names; whatever else was written (by
    // stale or failed commits) carries keys that no head names.
    for write in writes.iter().filter(|w| w.key != head_key) {
        if commit_ops.contains_key(&write.op) {
            prop_assert!(
                named.contains(&write.key),
                "{} was written by a successful commit but is not named",
                write.key
            );
        } else {
            prop_assert!(!named.contains(&write.key));
            stats.stale_batches += 1;
        }
    }

    stats.lost_races = owners.iter().map(|o| o.wrapper.refused_writes.get()).sum();
    stats.commits = record.commits.len() as u64;
    stats.refused = record.refused.len() as u64;
    stats.lost = record.lost.len() as u64;
    Ok(stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// One clock for all owners: the full set of properties, including no overlapping leases.
    #[test]
    fn interleaved_owners_on_one_clock((skews, every, steps) in scenario(false)) {
        run(&skews, every, &steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Owners' clocks skewed by up to a lease either way: leases can overlap in real time, but fencing
    /// must still keep every commit linear and every stale write invisible.
    #[test]
    fn interleaved_owners_with_skewed_clocks((skews, every, steps) in scenario(true)) {
        run(&skews, every, &steps)?;
    }
}

/// The property tests above are only worth something if their scenarios reach the interesting
/// paths: this runs a fixed sample and requires each of them to have been taken.
#[test]
fn the_interleavings_reach_takeovers_refusals_lost_leases_and_stale_writes() {
    let mut total = Stats::default();
    for skewed in [false, true] {
        let mut runner = TestRunner::deterministic();
        for _ in 0..48 {
            let (skews, every, steps) = scenario(skewed).new_tree(&mut runner).unwrap().current();
            let stats = run(&skews, every, &steps).unwrap();
            total.commits += stats.commits;
            total.takeovers += stats.takeovers;
            total.refused += stats.refused;
            total.lost += stats.lost;
            total.stale_batches += stats.stale_batches;
            total.snapshots += stats.snapshots;
            total.lost_races += stats.lost_races;
        }
    }
    assert!(total.commits > 100, "{total:?}");
    assert!(total.takeovers > 10, "{total:?}");
    assert!(total.refused > 50, "{total:?}");
    assert!(total.lost > 10, "{total:?}");
    assert!(total.stale_batches > 0, "{total:?}");
    assert!(total.snapshots > 10, "{total:?}");
    assert!(total.lost_races > 10, "{total:?}");
}
