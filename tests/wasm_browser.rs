//! The shared wasm suite (tests/wasm_suite) in browser.
#![cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
mod wasm_suite;
