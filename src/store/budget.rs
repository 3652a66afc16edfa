//! The memory budget of this WebAssembly instance, shared by every store in it.
//!
//! Wasm memory grows and never shrinks, and an allocation it cannot serve aborts the instance (the
//! `.wasm` traps with `unreachable`, killing every session in it). So the bytes the library keeps
//! (stored values of memory stores, cached session state) are counted here, and anything that would
//! bring in more (a value to store, a record read from a backend, a value crossing from JS) is
//! checked first: over the ceiling it is a typed error and nothing is written or loaded, while the
//! instance and its other sessions keep working. The ceiling leaves room for transient copies and
//! fragmentation under the 4 GiB that a 32-bit wasm memory can address.

use std::cell::Cell;

use crate::store::{StoreError, StoreResult};

/// Default ceiling: 1 GiB of counted bytes.
pub const DEFAULT_CEILING: u64 = 1 << 30;

/// Default limit of the heap's live allocations: 1.5 GiB, the ceiling and half a GiB more for working
/// copies and for what the ceiling does not count: the Rust side of `Session` and `Invocation`
/// objects that JS dropped and its garbage collector has not finalized yet (under a KiB each). A
/// loop of turns that never lets the event loop run cannot finalize them; without this limit it grew
/// the memory past 2 GiB, where Node 20 stopped with a V8 fatal error (docs/storage-layout.md), and
/// at 4 GiB an allocation would fail and the instance trap.
pub const DEFAULT_HEAP_LIMIT: u64 = 3 << 29;

thread_local! {
    static HELD: Cell<u64> = const { Cell::new(0) };
    static CEILING: Cell<u64> = const { Cell::new(DEFAULT_CEILING) };
    static HEAP_LIMIT: Cell<u64> = const { Cell::new(DEFAULT_HEAP_LIMIT) };
}

/// Bytes counted as held now.
pub fn held() -> u64 {
    HELD.with(Cell::get)
}

pub fn ceiling() -> u64 {
    CEILING.with(Cell::get)
}

/// Sets the ceiling of this instance (tests use a small one to reach it quickly).
pub fn set_ceiling(bytes: u64) {
    CEILING.with(|ceiling| ceiling.set(bytes));
}

pub fn heap_limit() -> u64 {
    HEAP_LIMIT.with(Cell::get)
}

/// Sets the heap limit of this instance (tests use a small one to reach it quickly).
pub fn set_heap_limit(bytes: u64) {
    HEAP_LIMIT.with(|limit| limit.set(bytes));
}

/// `Ok` while the heap's live allocations (`in_use` bytes) are within the heap limit: checked before
/// anything makes another object JS holds (an open, a begin, a view, a fork, an import, a follower, a
/// store exporter: `heap_room` in src/bindings/mod.rs), which is refused past it.
pub fn check_heap(in_use: u64) -> StoreResult<()> {
    let limit = heap_limit();
    if in_use > limit {
        return Err(StoreError::HeapFull { in_use, limit });
    }
    Ok(())
}

/// `Ok` when `incoming` more bytes fit under the ceiling; `what` names them in the error.
pub fn check(what: &'static str, incoming: u64) -> StoreResult<()> {
    let (held, limit) = (held(), ceiling());
    if held.saturating_add(incoming) > limit {
        return Err(StoreError::OutOfMemory { what, needed: incoming, held, limit });
    }
    Ok(())
}

/// Counts `bytes` more as held.
pub fn take(bytes: u64) {
    HELD.with(|held| held.set(held.get().saturating_add(bytes)));
}

/// Counts `bytes` fewer as held.
pub fn give_back(bytes: u64) {
    HELD.with(|held| held.set(held.get().saturating_sub(bytes)));
}
