//! The Store contract (tests/store_suite) over IndexedDB, for runners that have it (a browser
//! window, a dedicated worker); each test opens a fresh database.

use std::rc::Rc;

use agent_session::store::{Durability, IdbStore};

async fn open() -> Rc<IdbStore> {
    let name = format!("contract-{}", js_sys::Math::random());
    Rc::new(IdbStore::open(&name, Durability::Relaxed).await.expect("IndexedDB opens"))
}

store_contract!(wasm, open);
