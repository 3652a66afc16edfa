//! The guard through the engine: fail-fast concurrency, takeover of lapsed leases, fencing of stale
//! holders (the stale-holder test of DESIGN.md), renewal and waiting.

// The same tests run in wasm (tests/wasm_node.rs, wasm_browser.rs) under wasm-bindgen-test.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use agent_session::core::error::Phase;
use std::cell::RefCell;
use std::rc::Rc;

use agent_session::core::{keys, CoreError, Status};
use agent_session::engine::{BeginOptions, Config, SessionStore};

use crate::basics::{begin, core_error, j, open, texts, turn};
use crate::support::*;

#[test]
fn a_second_begin_on_one_store_is_concurrency_before_anything_changes() {
    let world = World::new();
    let store = world.store("alice");
    let session = open(&store, "s");
    let holder = begin(&session);
    world.advance(250);
    let before = world.dump();
    // The same session object, and a second object for the same id from the same store.
    let twin = open(&store, "s");
    for s in [&session, &twin] {
        let error = core_error(block_on(s.begin(BeginOptions::default())));
        assert_eq!(error, CoreError::Concurrency { holder: "alice".into(), retry_after_ms: 750 });
        assert_eq!(error.code(), "CONCURRENT_INVOCATION");
    }
    assert_eq!(world.dump(), before);
    // The holder is unaffected.
    holder.append_message(j("1"), None).unwrap();
    assert_eq!(block_on(holder.commit()).unwrap(), 1);
}

/// In one realm the busy check and mark happen before the first await: a second begin started
/// while the first is still waiting on the store never passes; it reads the head (what the head
/// refuses is its answer) and then, the first still pending, fails with the first's mark.
#[test]
fn the_busy_mark_is_set_before_the_first_await() {
    let world = World::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let yielding = Rc::new(YieldingStore::new(world.mem.clone(), 0, log.clone(), world.clock.clone()));
    let store = SessionStore::new(yielding.clone(), world.env(0), World::config("alice"), None);
    let session = block_on(store.open("s", crate::basics::create())).unwrap();
    let t = world.base("s");

    let mut first = Box::pin(session.begin(BeginOptions::default()));
    assert!(poll_once(first.as_mut()).is_pending(), "the first begin is waiting on its head read");
    let calls = yielding.calls.get();
    let second = session.begin(BeginOptions::default());
    assert_eq!(core_error(block_on(second)), CoreError::Concurrency { holder: "alice".into(), retry_after_ms: 1_000 });
    assert_eq!(yielding.calls.get(), calls + 1, "the refused begin read the head, and wrote nothing");
    let invocation = block_on(first).unwrap();
    assert_eq!(invocation.token(), t + 1);
    assert_eq!(log.borrow().len(), 2, "creation and the one lease write");
    // A begin dropped before it got its lease clears its pending mark.
    block_on(invocation.abort()).unwrap();
    let mut dropped = Box::pin(session.begin(BeginOptions::default()));
    assert!(poll_once(dropped.as_mut()).is_pending());
    drop(dropped);
    assert_eq!(begin(&session).token(), t + 2);
}

/// A begin kept out by this realm's own pending begin answers what the head answers when the head
/// refuses (a closed or interrupted session, another store's lease), not "busy" for a lease nobody
/// will hold; and once the pending begin has failed, the next one is not refused for it.
#[test]
fn a_begin_beside_a_pending_one_gets_the_heads_refusal() {
    let world = World::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let yielding = Rc::new(YieldingStore::new(world.mem.clone(), 0, log.clone(), world.clock.clone()));
    let store = SessionStore::new(yielding.clone(), world.env(0), World::config("alice"), None);
    let session = block_on(store.open("s", crate::basics::create())).unwrap();

    // Idle: a resume (refused by the head) still pending; a plain begin beside it reads the head,
    // which would grant it, and the mark again: once the resume has failed, the begin goes on.
    let resume = BeginOptions { resume: Some(j("\"yes\"")), ..BeginOptions::default() };
    let mut first = Box::pin(session.begin(resume));
    assert!(poll_once(first.as_mut()).is_pending());
    let mut second = Box::pin(session.begin(BeginOptions::default()));
    assert!(poll_once(second.as_mut()).is_pending(), "the second reads the head");
    assert!(matches!(core_error(block_on(first)), CoreError::InvalidTransition { .. }), "resume on an idle session");
    let invocation = block_on(second).expect("not refused for a begin that failed");
    block_on(invocation.commit()).unwrap();

    // Another store holds the lease: both begins of this store name it.
    let other = world.store("bob");
    let held = begin(&open(&other, "s"));
    world.advance(100);
    let mut first = Box::pin(session.begin(BeginOptions::default()));
    assert!(poll_once(first.as_mut()).is_pending());
    let second = session.begin(BeginOptions::default());
    let bob = CoreError::Concurrency { holder: "bob".into(), retry_after_ms: 900 };
    assert_eq!(core_error(block_on(second)), bob, "the holder in the head, not this store's pending mark");
    assert_eq!(core_error(block_on(first)), bob);
    block_on(held.commit()).unwrap();

    // Closed: every call beside the first gets SessionClosed, as the first does.
    block_on(session.close()).unwrap();
    let mut first = Box::pin(session.begin(BeginOptions::default()));
    assert!(poll_once(first.as_mut()).is_pending());
    let closing = session.close();
    assert!(matches!(core_error(block_on(session.begin(BeginOptions::default()))), CoreError::SessionClosed { .. }));
    assert!(matches!(core_error(block_on(closing)), CoreError::SessionClosed { .. }));
    assert!(matches!(core_error(block_on(first)), CoreError::SessionClosed { .. }));
}

#[test]
fn two_stores_with_one_owner_name_exclude_each_other() {
    let world = World::new();
    let one = world.store("same-name");
    let two = world.store("same-name");
    assert_ne!(one.instance(), two.instance(), "each store is its own instance");
    let s1 = open(&one, "s");
    let s2 = open(&two, "s");
    let t = world.base("s");
    let holder = begin(&s1);
    world.advance(100);
    let before = world.dump();
    let error = core_error(block_on(s2.begin(BeginOptions::default())));
    assert_eq!(error, CoreError::Concurrency { holder: "same-name".into(), retry_after_ms: 900 });
    assert_eq!(world.dump(), before, "nothing was written by the refused begin");
    assert_eq!(world.head("s").lease.unwrap().instance, one.instance());
    // The refusal left no busy mark in the second store: once free, it begins at once.
    block_on(holder.commit()).unwrap();
    assert_eq!(begin(&s2).token(), t + 2);
}

#[test]
fn same_realm_takeover_after_the_lease_lapsed_fences_the_old_invocation() {
    let world = World::new();
    let store = world.store("alice");
    let session = open(&store, "s");
    let t = world.base("s");
    turn(&session, &["\"v1\""]);
    let old = begin(&session);
    old.append_message(j("\"stale\""), None).unwrap();
    // A forgotten invocation does not lock the session for ever: at expiry the next begin takes over.
    world.advance(999);
    assert!(matches!(
        core_error(block_on(session.begin(BeginOptions::default()))),
        CoreError::Concurrency { retry_after_ms: 1, .. }
    ));
    world.advance(1);
    let new = begin(&session);
    assert_eq!((old.token(), new.token()), (t + 2, t + 3));
    new.append_message(j("\"fresh\""), None).unwrap();
    assert_eq!(block_on(new.commit()).unwrap(), 2);

    let named = named_keys(&world.mem, "s");
    let before = world.dump();
    assert_eq!(core_error(block_on(old.commit())), CoreError::LeaseLost { token: t + 2 });
    let after = world.dump();
    for key in &named {
        assert_eq!(lookup(&after, key), lookup(&before, key), "{key} changed");
    }
    // Same clock: the old holder saw its lease had lapsed and wrote nothing at all.
    assert_eq!(after, before);
    assert!(old.is_ended() && old.is_lost());
    // LeaseLost is said once, by the call that found it; later calls are refused as ended.
    assert!(matches!(
        old.append_message(j("1"), None),
        Err(CoreError::InvalidTransition { from: Phase::LeaseLost, action: "appendMessage" })
    ));
    let fresh = open(&world.store("bob"), "s");
    assert_eq!(texts(&fresh.messages(None).unwrap()), ["\"v1\"", "\"fresh\""]);
}

/// DESIGN.md: "record the stored keys and bytes after the newer commit, run the stale commit,
/// compare". Holder A's lease expires, B takes over and commits v+1; A then commits. With a shared
/// clock A refuses locally; with A's clock running behind, A believes its lease is live and really
/// writes, and the fencing token in the keys and the head's compare-and-set are all that stop it.
#[test]
fn a_stale_holder_cannot_touch_what_the_head_names() {
    for (a_skew, snapshot_every) in [(0, 0), (-5_000, 0), (-5_000, 1), (-5_000, 2)] {
        let world = World::new();
        let config = |owner: &str| Config { snapshot_every, ..World::config(owner) };
        let a_store = world.store_with(config("a"), a_skew);
        let b_store = world.store_with(config("b"), 0);
        let a_session = open(&a_store, "s");
        let b_session = open(&b_store, "s");
        let t = world.base("s");
        turn(&a_session, &["\"v1\""]);
        let v = 1;

        let a = begin(&a_session);
        a.append_message(j("\"from A\""), None).unwrap();
        a.set_state("who", j("\"A\""), None).unwrap();
        // By B's clock A's lease has run out; by A's own (behind) clock it has not, when skewed.
        world.advance(if a_skew == 0 { 1_000 } else { 0 });
        let b = begin(&b_session);
        assert_eq!((a.token(), b.token()), (t + 2, t + 3));
        b.append_message(j("\"from B\""), None).unwrap();
        assert_eq!(block_on(b.commit()).unwrap(), v + 1);

        let named = named_keys(&world.mem, "s");
        let before = world.dump();
        let result = block_on(a.commit());
        assert_eq!(
            core_error(result),
            CoreError::LeaseLost { token: t + 2 },
            "skew {a_skew}, snapshots every {snapshot_every}"
        );
        let after = world.dump();

        for key in &named {
            assert_eq!(lookup(&after, key), lookup(&before, key), "{key} was named by the head and changed");
        }
        let new_keys: Vec<&str> =
            after.iter().map(|(k, _)| k.as_str()).filter(|k| lookup(&before, k).is_none()).collect();
        for (key, value) in &before {
            assert_eq!(lookup(&after, key), Some(value.as_slice()), "{key} changed or vanished");
        }
        if a_skew == 0 {
            assert!(new_keys.is_empty(), "A saw its lease lapse and wrote nothing: {new_keys:?}");
        } else {
            // A really wrote, but only under its own older token, at keys no head names.
            let mut want = vec![keys::batch_key("s", v + 1, t + 2)];
            if snapshot_every == 1 || (snapshot_every == 2 && (v + 1) % 2 == 0) {
                want.push(keys::snapshot_key("s", v + 1, t + 2));
                want.push(keys::segment_key("s", v + 1, t + 2));
            }
            want.sort();
            assert_eq!(new_keys, want, "skew {a_skew}, snapshots every {snapshot_every}");
            for key in &new_keys {
                assert!(!named_keys(&world.mem, "s").contains(&key.to_string()));
            }
        }
        let head = world.head("s");
        assert_eq!(
            (head.version, head.last_token, head.token_of(v + 1).or(head.snapshot.map(|s| s.token))),
            (v + 1, t + 3, Some(t + 3))
        );
        let fresh = open(&world.store("reader"), "s");
        assert_eq!(texts(&fresh.messages(None).unwrap()), ["\"v1\"", "\"from B\""]);
        assert!(fresh.values(None).unwrap().is_empty(), "A's state write is nowhere");
        // A's store is usable again: the lost invocation cleared its mark.
        let again = begin(&a_session);
        assert_eq!(again.token(), t + 4);
    }
}

#[test]
fn renew_keeps_the_lease_and_a_lapsed_renew_is_lease_lost() {
    let world = World::new();
    let a = open(&world.store("a"), "s");
    let b = open(&world.store("b"), "s");
    let t = world.base("s");
    let holder = begin(&a);
    world.advance(900);
    block_on(holder.renew()).unwrap();
    let lease = world.head("s").lease.unwrap();
    assert_eq!((lease.token, lease.expires_at), (t + 1, world.now() + 1_000));
    world.advance(900);
    // Without the renewal this begin would have taken over.
    assert_eq!(
        core_error(block_on(b.begin(BeginOptions::default()))),
        CoreError::Concurrency { holder: "a".into(), retry_after_ms: 100 }
    );
    world.advance(100);
    let taker = begin(&b);
    assert_eq!(taker.token(), t + 2);
    let before = world.dump();
    assert_eq!(core_error(block_on(holder.renew())), CoreError::LeaseLost { token: t + 1 });
    assert_eq!(world.dump(), before);
    // The renew that found the loss said LeaseLost, which ended the invocation: later calls, abort
    // included (API.md: as after a commit), are refused from "lease-lost", and leave the new holder's
    // lease alone.
    assert!(holder.is_lost() && holder.is_ended());
    assert!(matches!(
        core_error(block_on(holder.commit())),
        CoreError::InvalidTransition { from: Phase::LeaseLost, action: "commit" }
    ));
    assert!(matches!(
        core_error(block_on(holder.abort())),
        CoreError::InvalidTransition { from: Phase::LeaseLost, action: "abort" }
    ));
    assert_eq!(world.dump(), before);
    assert_eq!(world.head("s").lease.unwrap().token, t + 2);
    block_on(taker.commit()).unwrap();
}

#[test]
fn a_crashed_holder_blocks_only_until_its_lease_lapses() {
    let world = World::new();
    let a = open(&world.store("a"), "s");
    let b = open(&world.store("b"), "s");
    let t = world.base("s");
    let crashed = begin(&a);
    crashed.append_message(j("\"lost\""), None).unwrap();
    drop(crashed); // forgotten without a release: a crash
    block_on(b.refresh()).unwrap();
    assert_eq!(b.status(), Status::Running);
    assert!(matches!(core_error(block_on(b.begin(BeginOptions::default()))), CoreError::Concurrency { .. }));
    world.advance(1_000);
    assert_eq!(b.status(), Status::Idle, "a running session whose lease lapsed reads as idle");
    let next = begin(&b);
    assert_eq!(next.token(), t + 2);
    assert_eq!(block_on(next.commit()).unwrap(), 1);
    assert!(open(&world.store("c"), "s").messages(None).unwrap().is_empty());
}

#[test]
fn begin_with_wait_ms_waits_on_the_env_clock() {
    let world = World::new();
    let a = open(&world.store("a"), "s");
    let b = open(&world.store("b"), "s");
    let t = world.base("s");
    let _holder = begin(&a);
    let start = world.now();
    // Waiting less than the lease has left: still busy, after waiting about that long.
    let short = BeginOptions { wait_ms: Some(300), ..BeginOptions::default() };
    assert!(matches!(core_error(block_on(b.begin(short))), CoreError::Concurrency { .. }));
    assert!(world.now() >= start + 300 && world.now() < start + 1_000, "waited {} ms", world.now() - start);
    // Waiting longer: the crashed holder's lease lapses during the wait and the begin takes over.
    let long = BeginOptions { wait_ms: Some(5_000), ..BeginOptions::default() };
    let invocation = block_on(b.begin(long)).unwrap();
    assert_eq!(invocation.token(), t + 2);
    assert!(world.now() >= start + 1_000 && world.now() <= start + 1_250, "took over at +{}", world.now() - start);
}

#[test]
fn a_deleted_session_fences_its_holder() {
    let world = World::new();
    let store = world.store("a");
    let session = open(&store, "s");
    let holder = begin(&session);
    holder.append_message(j("1"), None).unwrap();
    assert!(block_on(store.delete("s")).unwrap());
    assert_eq!(core_error(block_on(holder.commit())), CoreError::LeaseLost { token: holder.token() });
    let leftovers: Vec<String> = world.dump().into_iter().map(|(k, _)| k).collect();
    assert!(leftovers.iter().all(|k| !k.starts_with("h/")), "{leftovers:?}");
}

/// A holder fenced out by a delete must not be able to write into a session later created under the
/// same id: its record keys (version, token) must not be ones the new session's head can name.
#[test]
fn a_holder_of_a_deleted_session_cannot_write_into_its_successor() {
    let world = World::new();
    let a_store = world.store("a");
    let b_store = world.store("b");
    let a_session = open(&a_store, "s");
    let stale = begin(&a_session);
    stale.append_message(j("\"from the deleted session\""), None).unwrap();
    // Well inside A's lease, the session is deleted and created again, and B commits version 1.
    world.advance(10);
    assert!(block_on(b_store.delete("s")).unwrap());
    let b_session = open(&b_store, "s");
    assert_eq!(b_session.version(), 0);
    let b = begin(&b_session);
    b.append_message(j("\"from B\""), None).unwrap();
    assert_eq!(block_on(b.commit()).unwrap(), 1);

    // Each session created under the id draws its own token base (kept an exact JS number).
    assert_ne!(b.token(), stale.token());
    assert!(b.token() < 1 << 53 && stale.token() < 1 << 53);

    let named = named_keys(&world.mem, "s");
    let before = world.dump();
    assert_eq!(core_error(block_on(stale.commit())), CoreError::LeaseLost { token: stale.token() });
    let after = world.dump();
    for key in &named {
        assert_eq!(lookup(&after, key), lookup(&before, key), "{key} is named by the new head and was overwritten");
    }
    let fresh = open(&world.store("reader"), "s");
    assert_eq!(texts(&fresh.messages(None).unwrap()), ["\"from B\""]);
}

/// A loss found by the heartbeat (nobody awaits it) is reported by the next call, once.
#[test]
fn a_lease_lost_in_the_heartbeat_is_reported_by_the_next_commit() {
    let world = World::new();
    let a = open(&world.store("alice"), "s");
    let holder = begin(&a);
    let t = holder.token();
    world.advance(1_001); // past World::config's 1 s lease
    let taker = begin(&open(&world.store("bob"), "s"));
    assert_eq!(taker.token(), t + 1);
    assert!(block_on(holder.heartbeat()).is_err());
    assert!(holder.is_lost());
    assert_eq!(core_error(block_on(holder.commit())), CoreError::LeaseLost { token: t });
    assert!(matches!(
        core_error(block_on(holder.commit())),
        CoreError::InvalidTransition { from: Phase::LeaseLost, .. }
    ));
}
