//! What only wasm32 can show beside the engine tests (which run unchanged in wasm: see
//! tests/wasm_node.rs): the codec's refusals of corrupt bytes compile to no panic on this target,
//! where a panic would mark the whole instance dead.

mod heap;

use agent_session::core::{codec, CoreError};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn the_codec_refuses_corrupt_bytes_on_wasm32_without_panicking() {
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
