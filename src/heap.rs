//! The wasm heap: dlmalloc (the allocator std uses on wasm32) over a memory that grows in steps
//! proportional to its size instead of std's one 64 KiB page at a time.
//!
//! Why: V8 answers every growth of a wasm memory with a garbage collection ("external memory
//! pressure" in `node --trace-gc`). A memory store that came to hold 100 MB of LangGraph threads grew
//! ~1,600 times, and the collections took a quarter of the turns' time (`node --cpu-prof`); a turn over
//! 100 threads per store cost 2.60-5.41x MemorySaver, 1.57-1.71x with this heap
//! (`bench/frameworks/langgraph.mjs --threads=100`). Growing by an eighth of the memory, at most 8 MiB
//! at a time, takes ~40 steps to 100 MB and leaves at most 8 MiB unused; when that much cannot be had,
//! it grows by exactly what is needed, as std would.
//!
//! One thread is assumed throughout (wasm32 without the atomics feature): the heap takes no lock.

#[cfg(target_feature = "atomics")]
compile_error!("src/heap.rs takes no lock: a build with wasm threads (the atomics feature) needs one");

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::{Cell, UnsafeCell};
use core::ptr;

use dlmalloc::{Allocator, Dlmalloc};

const PAGE: usize = 64 * 1024;
/// A growth takes at least 1/GROWTH_DIVISOR of the memory's current size...
const GROWTH_DIVISOR: usize = 8;
/// ...but no more than 8 MiB beyond what is needed: hosts that count the whole memory against a limit
/// (a Cloudflare Worker has 128 MB) lose at most that much to growth that is not used yet.
const MAX_STEP_PAGES: usize = 128;

extern "C" {
    // The linker's bounds of the initial memory left free after the data and the stack.
    static __heap_base: u8;
    static __heap_end: u8;
}

/// The system side of dlmalloc: where its segments come from.
struct Pages {
    /// Whether the initial memory after `__heap_base` was handed out yet (once, as std does).
    initial_given: Cell<bool>,
}

// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
unsafe impl Send for Pages {}

impl Pages {
    /// The free part of the initial memory, once (too small for the first request, it is never used:
    /// as in std).
    fn initial(&self) -> Option<(usize, usize)> {
        if self.initial_given.replace(true) {
            return None;
        }
        // Only the linker symbols' addresses are read.
        let base = &raw const __heap_base as usize;
        let end = &raw const __heap_end as usize;
        (base != 0 && end > base).then(|| (base, end - base))
    }
}

fn grow(pages: usize) -> Option<(*mut u8, usize, u32)> {
    let previous = wasm32::memory_grow(0, pages);
    if previous == usize::MAX {
        return None;
    }
    let start = previous * PAGE;
    let size = pages * PAGE;
    // A region reaching the end of the 4 GiB address space would end at address 0: keep its last bytes.
    let size = if start.wrapping_add(size) == 0 { size - 16 } else { size };
    Some((start as *mut u8, size, 0))
}

// SAFETY: regions come from memory.grow (or the linker's free initial memory) and are never reused.
unsafe impl Allocator for Pages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if let Some((base, len)) = self.initial().filter(|&(_, len)| len >= size) {
            return (base as *mut u8, len, 0);
        }
        let needed = size.div_ceil(PAGE);
        let step = needed.max((wasm32::memory_size(0) / GROWTH_DIVISOR).min(MAX_STEP_PAGES));
        grow(step).or_else(|| grow(needed)).unwrap_or((ptr::null_mut(), 0, 0))
    }
    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }
    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }
    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }
    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }
    fn allocates_zeros(&self) -> bool {
        true
    }
    fn page_size(&self) -> usize {
        PAGE
    }
}

struct Heap {
    dlmalloc: UnsafeCell<Dlmalloc<Pages>>,
    /// Bytes of the allocations live now (what the memory has grown to is `memory_size`): what
    /// store/budget.rs `check_heap` holds under its limit.
    in_use: Cell<usize>,
}

// SAFETY: one thread (above), and no allocation re-enters the allocator.
unsafe impl Sync for Heap {}

#[global_allocator]
static HEAP: Heap = Heap {
    dlmalloc: UnsafeCell::new(Dlmalloc::new_with_allocator(Pages { initial_given: Cell::new(false) })),
    in_use: Cell::new(0),
};

/// Bytes of the allocations live now, including those of objects JS dropped and its garbage
/// collector has not finalized yet.
pub fn in_use() -> u64 {
    HEAP.in_use.get() as u64
}

impl Heap {
    /// Counts an allocation of `size` bytes that gave `ptr` (none when it failed).
    fn counted(&self, ptr: *mut u8, size: usize) -> *mut u8 {
        if !ptr.is_null() {
            self.in_use.set(self.in_use.get().wrapping_add(size));
        }
        ptr
    }
}

// SAFETY: each call has the heap to itself (one thread) and forwards GlobalAlloc's contract to dlmalloc.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.counted((*self.dlmalloc.get()).malloc(layout.size(), layout.align()), layout.size())
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.counted((*self.dlmalloc.get()).calloc(layout.size(), layout.align()), layout.size())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.in_use.set(self.in_use.get().wrapping_sub(layout.size()));
        (*self.dlmalloc.get()).free(ptr, layout.size(), layout.align())
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = (*self.dlmalloc.get()).realloc(ptr, layout.size(), layout.align(), new_size);
        if !moved.is_null() {
            // The old block is gone (dlmalloc's realloc freed it or grew it in place).
            self.in_use.set(self.in_use.get().wrapping_sub(layout.size()));
        }
        self.counted(moved, new_size)
    }
}
