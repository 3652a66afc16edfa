//! Interrupt and resume, checkpoint, close, idle TTL and maximum lifetime with the sweep.

// The same tests run in wasm (tests/wasm_node.rs, wasm_browser.rs) under wasm-bindgen-test.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use agent_session::core::error::Phase;
use agent_session::core::{Commits, CoreError, Event, Status};
use agent_session::engine::{BeginOptions, Config, EngineError, InvokeError, OpenOptions};

use crate::basics::{begin, core_error, create, j, open, texts, turn};
use crate::support::*;

fn resume(answer: &str) -> BeginOptions {
    BeginOptions { resume: Some(j(answer)), ..BeginOptions::default() }
}

#[test]
fn interrupt_then_resume_through_begin_options() {
    let world = World::new();
    let store = world.store("alice");
    let session = open(&store, "s");
    let t = world.base("s");
    let invocation = begin(&session);
    invocation.append_message(j("\"may I?\""), None).unwrap();
    assert_eq!(block_on(invocation.interrupt("approve".into(), Some(j(r#"{"amount":3}"#)))).unwrap(), 1);
    assert!(invocation.is_ended());
    assert_eq!((session.version(), session.status()), (1, Status::Interrupted));
    let head = world.head("s");
    assert_eq!((head.status, head.lease.is_none()), (Status::Interrupted, true));
    assert_eq!(head.interrupt.as_ref().map(|i| (i.reason.as_str(), &*i.payload)), Some(("approve", r#"{"amount":3}"#)));

    // A plain begin is refused (nothing written); only a resume gets in.
    let before = world.dump();
    let refused = core_error(block_on(session.begin(BeginOptions::default())));
    assert_eq!(refused, CoreError::InvalidTransition { from: Phase::Status(Status::Interrupted), action: "begin" });
    assert_eq!(world.dump(), before);

    // Resumed and aborted: back to interrupted, the question still pending.
    let aborted = block_on(session.begin(resume("\"no\""))).unwrap();
    block_on(aborted.abort()).unwrap();
    assert_eq!(world.head("s").status, Status::Interrupted);
    assert!(world.head("s").interrupt.is_some());

    // Resumed by another owner and committed: the answer is the first event of the version.
    let other = open(&world.store("bob"), "s");
    let resumed = block_on(other.begin(resume("\"yes\""))).unwrap();
    resumed.append_message(j("\"done\""), None).unwrap();
    assert_eq!(block_on(resumed.commit()).unwrap(), 2);
    let head = world.head("s");
    assert_eq!((head.status, head.interrupt.clone()), (Status::Idle, None));
    let v2: Vec<Event> =
        block_on(other.history(Some(2), Some(2))).unwrap().into_iter().filter_map(|e| e.event).collect();
    assert_eq!(
        v2,
        [Event::Resume { data: j("\"yes\"") }, Event::Message { agent: "default".into(), data: j("\"done\"") }]
    );
    let v1: Vec<Event> =
        block_on(other.history(Some(1), Some(1))).unwrap().into_iter().filter_map(|e| e.event).collect();
    assert_eq!(v1.last(), Some(&Event::Interrupt { reason: "approve".into(), data: j(r#"{"amount":3}"#) }));
    assert_eq!(block_on(other.at(1)).unwrap().status, Status::Interrupted);
    assert_eq!(block_on(other.at(2)).unwrap().status, Status::Idle);

    // Resume is only for an interrupted session; the refusal leaves no busy mark behind.
    let refused = core_error(block_on(other.begin(resume("1"))));
    assert_eq!(refused, CoreError::InvalidTransition { from: Phase::Status(Status::Idle), action: "resume" });
    assert_eq!(begin(&other).token(), t + 4);
}

#[test]
fn a_crashed_resumer_leaves_the_session_interrupted() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let t = world.base("s");
    let invocation = begin(&session);
    block_on(invocation.interrupt("q".into(), Some(j("null")))).unwrap();
    let crashed = block_on(session.begin(resume("1"))).unwrap();
    drop(crashed);
    world.advance(1_000);
    let other = open(&world.store("bob"), "s");
    assert_eq!(other.status(), Status::Interrupted);
    assert!(matches!(core_error(block_on(other.begin(BeginOptions::default()))), CoreError::InvalidTransition { .. }));
    let resumed = block_on(other.begin(resume("2"))).unwrap();
    assert_eq!(resumed.token(), t + 3);
}

#[test]
fn checkpoint_then_abort_keeps_the_checkpointed_versions() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let rival = open(&world.store("bob"), "s");
    let t = world.base("s");
    let invocation = begin(&session);
    invocation.append_message(j("1"), None).unwrap();
    world.advance(800);
    assert_eq!(block_on(invocation.checkpoint()).unwrap(), 1);
    assert!(!invocation.is_ended());
    assert_eq!((session.version(), session.status()), (1, Status::Running));
    let lease = world.head("s").lease.unwrap();
    assert_eq!((lease.token, lease.expires_at), (t + 1, world.now() + 1_000), "a checkpoint renews the lease");
    // Past the original expiry the lease still holds, thanks to the checkpoint.
    world.advance(800);
    assert!(matches!(core_error(block_on(rival.begin(BeginOptions::default()))), CoreError::Concurrency { .. }));
    invocation.append_message(j("2"), None).unwrap();
    assert_eq!(block_on(invocation.checkpoint()).unwrap(), 2);
    invocation.append_message(j("3"), None).unwrap();
    block_on(invocation.abort()).unwrap();
    let head = world.head("s");
    assert_eq!(
        (head.version, head.status, head.lease.clone(), head.commits.clone()),
        (2, Status::Idle, None, Commits::from(vec![t + 1, t + 1]))
    );
    block_on(rival.refresh()).unwrap();
    assert_eq!(texts(&rival.messages(None).unwrap()), ["1", "2"]);
    assert_eq!(texts(&open(&world.store("carol"), "s").messages(None).unwrap()), ["1", "2"]);
}

#[test]
fn checkpoint_then_lease_lost_keeps_only_the_checkpoints() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let rival = open(&world.store("bob"), "s");
    let invocation = begin(&session);
    invocation.append_message(j("1"), None).unwrap();
    block_on(invocation.checkpoint()).unwrap();
    invocation.append_message(j("lost"), None).unwrap();
    world.advance(1_000);
    let taker = begin(&rival);
    taker.append_message(j("2"), None).unwrap();
    assert_eq!(block_on(taker.commit()).unwrap(), 2, "the taker starts from the checkpointed version");
    assert_eq!(core_error(block_on(invocation.commit())), CoreError::LeaseLost { token: invocation.token() });
    assert_eq!(texts(&open(&world.store("carol"), "s").messages(None).unwrap()), ["1", "2"]);
}

#[test]
fn close_is_terminal_and_readable() {
    let world = World::new();
    let store = world.store("alice");
    let session = open(&store, "s");
    turn(&session, &["1"]);
    let holder = begin(&session);
    // Close takes the guard like begin.
    assert!(matches!(core_error(block_on(session.close())), CoreError::Concurrency { .. }));
    block_on(holder.abort()).unwrap();
    assert_eq!(block_on(session.close()).unwrap(), 2);
    assert_eq!(session.status(), Status::Closed);
    let before = world.dump();
    assert_eq!(
        core_error(block_on(session.begin(BeginOptions::default()))),
        CoreError::SessionClosed { action: "begin" }
    );
    assert_eq!(core_error(block_on(session.begin(resume("1")))), CoreError::SessionClosed { action: "resume" });
    assert_eq!(core_error(block_on(session.close())), CoreError::SessionClosed { action: "close" });
    assert_eq!(
        core_error(block_on(session.fork(&store, Some("f".into()), None))),
        CoreError::SessionClosed { action: "fork" }
    );
    assert_eq!(world.dump(), before);
    // Still readable, with the close in its history; closed sessions never expire.
    let last = block_on(session.history(None, None)).unwrap().pop().unwrap();
    assert_eq!((last.version, last.event), (2, Some(Event::Closed)));
    assert_eq!(texts(&session.messages(None).unwrap()), ["1"]);
    world.advance(u64::MAX / 4);
    assert_eq!(session.status(), Status::Closed);
}

#[test]
fn idle_ttl_expires_and_sweep_deletes_only_expired_sessions() {
    let world = World::new();
    let store = world.store_with(Config { idle_ttl_ms: Some(5_000), ..World::config("alice") }, 0);
    let s = open(&store, "s");
    let keep = block_on(store.open("keep", OpenOptions { idle_ttl_ms: Some(60_000), ..create() })).unwrap();
    let forever = block_on(store.open("forever", OpenOptions { create: true, ..OpenOptions::default() })).unwrap();
    assert_eq!(forever.head().idle_ttl_ms, Some(5_000), "the store's TTL is the default");
    let no_ttl = world.store("bob");
    let untouched = open(&no_ttl, "untouched");
    world.advance(3_000);
    turn(&s, &["1"]); // a commit moves the idle TTL
    turn(&keep, &["k"]);
    world.advance(4_999);
    assert_eq!(s.status(), Status::Idle);
    assert_eq!(block_on(store.sweep_expired(Some(10))).unwrap(), 1, "only `forever` (idle since creation) has expired");
    world.advance(1);
    assert_eq!(s.status(), Status::Expired);
    let before = world.dump();
    assert_eq!(core_error(block_on(s.begin(BeginOptions::default()))), CoreError::SessionExpired { action: "begin" });
    assert_eq!(world.dump(), before, "a refused begin on an expired session writes nothing");

    // A session with a live lease is not expired, even past its TTL.
    let k = begin(&keep);
    for _ in 0..240 {
        world.advance(500);
        block_on(k.renew()).unwrap(); // the heartbeat
    }
    assert!(world.now() > keep.head().updated_at + 60_000);
    assert_eq!(block_on(store.sweep_expired(Some(10))).unwrap(), 1, "s goes; keep is held by a live lease");
    assert!(world.dump().iter().all(|(key, _)| !key.contains("/s~")), "every record of s is gone");
    assert!(block_on(store.open("keep", OpenOptions::default())).is_ok());
    block_on(k.abort()).unwrap();
    world.advance(1_000);
    assert_eq!(block_on(store.sweep_expired(Some(10))).unwrap(), 1);
    // Sessions without a TTL are never swept.
    let left: Vec<String> = world.dump().into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, ["h/untouched~"]);
    assert_eq!(untouched.status(), Status::Idle);
}

#[test]
fn max_lifetime_is_not_moved_by_commits() {
    let world = World::new();
    let store = world.store_with(Config { max_lifetime_ms: Some(10_000), ..World::config("alice") }, 0);
    let s = open(&store, "s");
    for _ in 0..9 {
        world.advance(1_000);
        turn(&s, &["x"]);
    }
    world.advance(999);
    assert_eq!(s.status(), Status::Idle);
    world.advance(1);
    assert_eq!(s.status(), Status::Expired);
    assert_eq!(block_on(store.sweep_expired(Some(1))).unwrap(), 1);
    assert!(world.dump().is_empty());
}

#[test]
fn sweep_respects_its_limit() {
    let world = World::new();
    let store = world.store_with(Config { idle_ttl_ms: Some(10), ..World::config("alice") }, 0);
    for i in 0..5 {
        open(&store, &format!("s{i}"));
    }
    world.advance(10);
    assert_eq!(block_on(store.sweep_expired(Some(2))).unwrap(), 2);
    assert_eq!(block_on(store.sweep_expired(Some(10))).unwrap(), 3);
    assert_eq!(block_on(store.sweep_expired(Some(10))).unwrap(), 0);
    assert!(world.dump().is_empty());
}

/// The limit counts sessions deleted, not sessions looked at: closed sessions past their TTL and
/// sessions held by a live lease, which are not swept, do not use it up (they once did: with them
/// first, `sweep_expired(Some(1))` deleted nothing while expired sessions waited).
#[test]
fn sweep_limit_counts_deleted_sessions_only() {
    let world = World::new();
    let store = world.store_with(Config { idle_ttl_ms: Some(10), lease_ms: 1_000_000, ..World::config("alice") }, 0);
    for id in ["a-closed", "b-held", "c-expired", "d-expired"] {
        open(&store, id);
    }
    block_on(open(&store, "a-closed").close()).unwrap();
    let held = begin(&open(&store, "b-held"));
    world.advance(10);
    assert_eq!(block_on(store.sweep_expired(Some(1))).unwrap(), 1);
    assert_eq!(block_on(store.sweep_expired(Some(1))).unwrap(), 1);
    assert_eq!(block_on(store.sweep_expired(Some(1))).unwrap(), 0);
    let left: Vec<String> =
        world.dump().iter().filter_map(|(key, _)| key.strip_prefix("h/").map(str::to_owned)).collect();
    assert_eq!(left.len(), 2, "the closed and the held sessions stay: {left:?}");
    block_on(held.abort()).unwrap();
}

/// `invoke` releases the guard on every path: commit on success, abort on a failing body, nothing
/// more when the body ended the invocation itself, and `LeaseLost` when the lease went meanwhile.
#[test]
fn invoke_releases_the_guard_on_every_path() {
    let world = World::new();
    let session = open(&world.store("alice"), "s");
    let rival = open(&world.store("bob"), "s");

    let value = block_on(session.invoke(BeginOptions::default(), |inv| async move {
        inv.append_message(j("1"), None).map_err(|e| e.to_string())?;
        Ok::<_, String>(7)
    }));
    assert_eq!(value.ok(), Some(7));
    assert_eq!(world.head("s").version, 1);

    let failed = block_on(session.invoke(BeginOptions::default(), |inv| async move {
        inv.append_message(j("lost"), None).unwrap();
        Err::<(), _>("the model call failed")
    }));
    assert!(matches!(failed, Err(InvokeError::Body("the model call failed"))));
    let head = world.head("s");
    assert_eq!((head.version, head.lease.clone()), (1, None), "aborted and released at once");

    let interrupted = block_on(session.invoke(BeginOptions::default(), |inv| async move {
        block_on(inv.interrupt("approve?".into(), Some(j("null")))).map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    }));
    assert!(interrupted.is_ok());
    assert_eq!((world.head("s").version, world.head("s").status), (2, Status::Interrupted));

    // The lease lapses and is taken while the body runs: the body's writes are refused.
    let world_ref = &world;
    let rival_ref = &rival;
    let lost = block_on(session.invoke(resume("\"ok\""), |inv| async move {
        inv.append_message(j("late"), None).unwrap();
        world_ref.advance(1_000);
        let taker = block_on(rival_ref.begin(resume("\"other\""))).unwrap();
        block_on(taker.commit()).unwrap();
        Ok::<_, String>(())
    }));
    match lost {
        Err(InvokeError::Engine(EngineError::Core(CoreError::LeaseLost { .. }))) => {}
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    let fresh = open(&world.store("carol"), "s");
    assert_eq!(texts(&fresh.messages(None).unwrap()), ["1"]);
    assert_eq!(fresh.version(), 3);
}
