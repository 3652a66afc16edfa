//! The wasm heap (src/heap.rs) grows the memory in steps proportional to its size: V8 collects
//! garbage at every growth, and std's allocator grew one 64 KiB page at a time.

use core::arch::wasm32;
use wasm_bindgen_test::wasm_bindgen_test;

const BLOCK: usize = 256 * 1024;
const BLOCKS: usize = 384;
/// The most a growth may add beyond what the allocation needs (src/heap.rs): 8 MiB, in 64 KiB pages.
const MAX_STEP_PAGES: usize = 128;

#[wasm_bindgen_test]
fn the_memory_grows_in_few_steps_and_keeps_what_was_written() {
    let mut growths = 0;
    let mut pages = wasm32::memory_size(0);
    let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(BLOCKS);
    for i in 0..BLOCKS {
        blocks.push(vec![i as u8; BLOCK]);
        let now = wasm32::memory_size(0);
        if now != pages {
            growths += 1;
            // A block takes 4 pages and a few bytes of dlmalloc's own.
            assert!(now - pages <= MAX_STEP_PAGES + 5, "grew {} pages at once for a {BLOCK}-byte block", now - pages);
            pages = now;
        }
    }
    // 96 MiB held: std's allocator grows ~300 times here (about once per block), this heap ~35 times
    // (by an eighth of the memory up to 64 MiB, then 8 MiB at a time).
    assert!(growths <= 45, "{growths} growths of the wasm memory for {BLOCKS} blocks");
    for (i, block) in blocks.iter().enumerate() {
        assert!(block.iter().all(|&b| b == i as u8), "block {i} changed");
    }
    // What is freed is reused: the same again does not grow the memory.
    drop(blocks);
    let again: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; BLOCK]).collect();
    assert_eq!(wasm32::memory_size(0), pages);
    assert!(again.iter().enumerate().all(|(i, b)| b[BLOCK - 1] == i as u8));
}
