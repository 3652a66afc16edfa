//! The Store contract (tests/store_suite) over IndexedDB, for runners that have it (a browser
//! window, a dedicated worker); each test opens a fresh database.

use std::rc::Rc;

use agent_session::store::{Durability, IdbStore};

async fn open() -> Rc<IdbStore> {
    let name = format!("contract-{}", js_sys::Math::random());
    Rc::new(IdbStore::open(&name, Durability::Relaxed).await.expect("IndexedDB opens"))
}

store_contract!(wasm, open);

/// A transaction prepared for a write ends on its own once its read has its result and nothing was
/// written in it: a write that comes later (here after another connection's write, which waited for
/// it) reads again in its own transaction, so its compare sees that write.
#[wasm_bindgen_test::wasm_bindgen_test]
async fn a_write_after_its_prepared_read_ended_compares_against_what_is_stored_then() {
    use agent_session::store::{Expect, Store};
    let name = format!("contract-{}", js_sys::Math::random());
    let a = IdbStore::open(&name, Durability::Relaxed).await.expect("IndexedDB opens");
    let b = IdbStore::open(&name, Durability::Relaxed).await.expect("a second connection opens");
    let v0 = a.put("h/s~", b"zero".to_vec().into(), Expect::Absent).await.unwrap().unwrap();
    a.prepare_write("h/s~");
    // b's readwrite transaction starts after a's prepared one has ended.
    let by_b = b.put("h/s~", b"b".to_vec().into(), Expect::Version(v0.clone())).await.unwrap();
    assert!(by_b.is_some(), "b writes at the version it read");
    assert_eq!(a.put("h/s~", b"a".to_vec().into(), Expect::Version(v0)).await.unwrap(), None, "a sees b's write");
    assert_eq!(a.get("h/s~").await.unwrap().map(|entry| entry.value), Some(b"b".to_vec()));
}
