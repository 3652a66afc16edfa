//! The shared wasm suites in worker: the engine (tests/wasm_suite) and the Store contract
//! (tests/store_suite) over memory and IndexedDB.
#![cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);
#[macro_use]
mod store_suite;
#[path = "wasm_suite/idb_contract.rs"]
mod idb_contract;
#[path = "wasm_suite/memory_contract.rs"]
mod memory_contract;
mod wasm_suite;
