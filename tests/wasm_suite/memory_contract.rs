//! The Store contract (tests/store_suite) over the memory backend on wasm32.

use std::rc::Rc;

mod memory {
    use super::*;
    use agent_session::store::MemoryStore;

    async fn open() -> Rc<MemoryStore> {
        Rc::new(MemoryStore::new())
    }

    store_contract!(wasm, open);
}
