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

#[test]
fn expect_holds_is_the_compare_of_every_compare_and_set() {
    use agent_session::store::Expect;
    assert!(Expect::Any.holds(None) && Expect::Any.holds(Some("3")));
    assert!(Expect::Absent.holds(None) && !Expect::Absent.holds(Some("3")));
    assert!(Expect::Version("3".into()).holds(Some("3")));
    assert!(!Expect::Version("3".into()).holds(Some("4")) && !Expect::Version("3".into()).holds(None));
}
