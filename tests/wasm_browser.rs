//! The wasm suites in a browser window: the native engine tests (tests/engine), the codec
//! (tests/wasm_suite) and the Store contract
//! (tests/store_suite) over memory and IndexedDB.
#![cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
#[macro_use]
mod store_suite;
#[path = "wasm_suite/idb_contract.rs"]
mod idb_contract;
#[path = "wasm_suite/memory_contract.rs"]
mod memory_contract;
mod wasm_suite;

// The native engine tests, unchanged (tests/engine.rs runs them natively); the interleaving
// property test stays native (proptest needs an OS random source).
#[path = "engine/basics.rs"]
mod basics;
#[path = "engine/cache.rs"]
mod cache;
#[path = "engine/contention.rs"]
mod contention;
#[path = "engine/history.rs"]
mod history;
#[path = "engine/lifecycle.rs"]
mod lifecycle;
#[path = "support/mod.rs"]
mod support;
