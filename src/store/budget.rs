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

thread_local! {
    static HELD: Cell<u64> = const { Cell::new(0) };
    static CEILING: Cell<u64> = const { Cell::new(DEFAULT_CEILING) };
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
