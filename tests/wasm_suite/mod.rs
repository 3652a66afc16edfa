//! The engine on wasm32, over the memory store: the guard, commits, history, time travel, fork and
//! the codec, run by wasm-bindgen-test in Node, a browser window and a dedicated worker
//! (tests/wasm_node.rs, wasm_browser.rs, wasm_worker.rs only pick the runner).

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use agent_session::core::{codec, CoreError, Status};
use agent_session::engine::{BeginOptions, Config, EngineError, Env, OpenOptions, SessionStore};
use agent_session::store::{LocalBoxFuture, MemoryStore, Store};
use wasm_bindgen_test::wasm_bindgen_test;

/// A clock the test moves by hand; randomness from a counter (ids only need to differ).
struct TestEnv {
    now: Cell<u64>,
    seed: Cell<u64>,
}

impl Env for TestEnv {
    fn now(&self) -> u64 {
        self.now.get()
    }
    fn fill_random(&self, bytes: &mut [u8]) {
        for byte in bytes {
            let next = self.seed.get().wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.seed.set(next);
            *byte = (next >> 56) as u8;
        }
    }
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        self.now.set(self.now.get() + ms);
        Box::pin(std::future::ready(()))
    }
}

fn world(seed: u64) -> (Rc<TestEnv>, Rc<MemoryStore>) {
    (Rc::new(TestEnv { now: Cell::new(1_000_000), seed: Cell::new(seed) }), Rc::new(MemoryStore::new()))
}

fn store_over(env: &Rc<TestEnv>, backend: &Rc<MemoryStore>, owner: &str, snapshot_every: u64) -> SessionStore {
    let mut config = Config::new(owner.to_owned());
    config.lease_ms = 1_000;
    config.snapshot_every = snapshot_every;
    SessionStore::new(backend.clone() as Rc<dyn Store>, env.clone() as Rc<dyn Env>, config, None)
}

async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    poll_fn(|cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (out_a.unwrap(), out_b.unwrap())
}

fn json(text: &str) -> agent_session::core::Json {
    Rc::from(text)
}

#[wasm_bindgen_test]
async fn racing_begins_admit_exactly_one_and_the_loser_writes_nothing() {
    let (env, backend) = world(1);
    let store = store_over(&env, &backend, "tab", 0);
    let session = store.open("s", OpenOptions { create: true, ..Default::default() }).await.unwrap();
    let (a, b) = join2(session.begin(BeginOptions::default()), session.begin(BeginOptions::default())).await;
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("expected exactly one winner, got {:?} and {:?}", a.is_ok(), b.is_ok()),
    };
    assert!(matches!(loser, EngineError::Core(CoreError::Concurrency { ref holder, .. }) if holder == "tab"));
    winner.append_message(json("\"first\""), None).unwrap();
    assert_eq!(winner.commit().await.unwrap(), 1);
    let fresh = store_over(&env, &backend, "reader", 0).open("s", OpenOptions::default()).await.unwrap();
    assert_eq!(fresh.messages(None).unwrap(), vec![json("\"first\"")]);
    assert_eq!(fresh.version(), 1);
}

#[wasm_bindgen_test]
async fn two_stores_on_one_backend_exclude_each_other_even_with_one_owner_name() {
    let (env, backend) = world(2);
    let one = store_over(&env, &backend, "same", 0)
        .open("s", OpenOptions { create: true, ..Default::default() })
        .await
        .unwrap();
    let two = store_over(&env, &backend, "same", 0).open("s", OpenOptions::default()).await.unwrap();
    let held = one.begin(BeginOptions::default()).await.unwrap();
    let denied = two.begin(BeginOptions::default()).await.err().expect("second store must be refused");
    assert_eq!(denied.code(), "CONCURRENT_INVOCATION");
    held.abort().await.unwrap();
    assert!(two.begin(BeginOptions::default()).await.is_ok());
}

#[wasm_bindgen_test]
async fn a_stale_holder_is_fenced_out_and_changes_no_named_record() {
    let (env, backend) = world(3);
    let a_store = store_over(&env, &backend, "a", 0);
    let b_store = store_over(&env, &backend, "b", 0);
    let a = a_store.open("s", OpenOptions { create: true, ..Default::default() }).await.unwrap();
    let stale = a.begin(BeginOptions::default()).await.unwrap();
    stale.append_message(json("\"stale\""), None).unwrap();
    env.now.set(env.now.get() + 5_000);
    let b = b_store.open("s", OpenOptions::default()).await.unwrap();
    let fresh = b.begin(BeginOptions::default()).await.unwrap();
    assert_eq!(fresh.token(), stale.token() + 1);
    fresh.append_message(json("\"fresh\""), None).unwrap();
    fresh.commit().await.unwrap();
    let before = backend.dump();
    let refused = stale.commit().await.expect_err("stale commit must fail");
    assert_eq!(refused.code(), "LEASE_LOST");
    let after = backend.dump();
    for (key, bytes) in &before {
        let still = after.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        assert_eq!(still, Some(bytes), "record {key} changed");
    }
    b.refresh().await.unwrap();
    assert_eq!(b.messages(None).unwrap(), vec![json("\"fresh\"")]);
}

#[wasm_bindgen_test]
async fn history_time_travel_and_fork_across_snapshots() {
    let (env, backend) = world(4);
    let store = store_over(&env, &backend, "w", 3);
    let session = store.open("s", OpenOptions { create: true, ..Default::default() }).await.unwrap();
    for n in 1..=8 {
        let inv = session.begin(BeginOptions::default()).await.unwrap();
        inv.append_message(json(&n.to_string()), None).unwrap();
        assert_eq!(inv.commit().await.unwrap(), n);
    }
    let reopened = store_over(&env, &backend, "r", 3).open("s", OpenOptions::default()).await.unwrap();
    assert_eq!(reopened.messages(None).unwrap().len(), 8);
    let view = session.at(4).await.unwrap();
    assert_eq!(view.state.agent("default").unwrap().messages.len(), 4);
    let history = session.history(Some(2), Some(7)).await.unwrap();
    assert_eq!(history.iter().map(|e| e.version).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6, 7]);
    let fork = session.fork(&store, Some("f".into()), Some(5)).await.unwrap();
    assert_eq!(fork.messages(None).unwrap(), (1..=5).map(|n| json(&n.to_string())).collect::<Vec<_>>());
    assert_eq!(fork.status(), Status::Idle);
}

#[wasm_bindgen_test]
fn the_codec_refuses_corrupt_bytes_on_wasm32_without_panicking() {
    let (env, backend) = world(5);
    let _ = (env, backend);
    let head = agent_session::core::Head::new(u64::MAX - 1, Some(u64::MAX), None, None);
    let bytes = codec::encode_head(&head);
    assert_eq!(codec::decode_head("h/x~", &bytes).unwrap(), head);
    for cut in 0..bytes.len() {
        let error = codec::decode_head("h/x~", &bytes[..cut]).unwrap_err();
        assert!(matches!(error, CoreError::CorruptRecord { ref key, .. } if key == "h/x~"));
    }
    let mut huge_count = bytes.clone();
    huge_count[5] = 0xff;
    assert!(codec::decode_head("h/x~", &huge_count).is_err());
}
