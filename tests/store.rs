//! The Store contract (tests/store_suite) over the memory backend, natively.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/mod.rs"]
mod support;
#[macro_use]
mod store_suite;

use std::rc::Rc;

use agent_session::store::MemoryStore;

async fn memory() -> Rc<MemoryStore> {
    Rc::new(MemoryStore::new())
}

store_contract!(native, memory);
