//! The shared wasm suites in node: the engine (tests/wasm_suite) and the Store contract
//! (tests/store_suite) over memory.
#![cfg(target_arch = "wasm32")]
#[macro_use]
mod store_suite;
#[path = "wasm_suite/memory_contract.rs"]
mod memory_contract;
mod wasm_suite;
