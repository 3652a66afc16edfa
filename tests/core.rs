//! Unit and property tests of the sans-IO core: the status machine, the guard decisions, the codec,
//! the key layout and the limits. Everything here is synchronous and deterministic: `now` is an
//! argument, so time moves only where a test says so.
#![cfg(not(target_arch = "wasm32"))]

// A crate root's `mod x;` looks next to the root file, so the modules under tests/core/ are named.
#[path = "core/codec.rs"]
mod codec;
#[path = "core/commits.rs"]
mod commits;
#[path = "core/compaction.rs"]
mod compaction;
#[path = "core/event.rs"]
mod event;
#[path = "core/fixtures.rs"]
mod fixtures;
#[path = "core/guard.rs"]
mod guard;
#[path = "core/keys.rs"]
mod keys;
#[path = "core/lifecycle.rs"]
mod lifecycle;
#[path = "core/limits.rs"]
mod limits;
#[path = "core/live.rs"]
mod live;
