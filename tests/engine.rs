//! Engine tests: `SessionStore` / `Session` / `Invocation` over `MemoryStore`, on a fake clock.
//! No sleeps and no wall clock: time moves only through `World::advance` and the fake `Env::sleep`.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/mod.rs"]
mod support;

#[path = "engine/basics.rs"]
mod basics;
#[path = "engine/cache.rs"]
mod cache;
#[path = "engine/contention.rs"]
mod contention;
#[path = "engine/history.rs"]
mod history;
#[path = "engine/interleave.rs"]
mod interleave;
#[path = "engine/lifecycle.rs"]
mod lifecycle;
#[path = "engine/live.rs"]
mod live;
#[path = "engine/retention.rs"]
mod retention;
#[path = "engine/schema.rs"]
mod schema;
#[path = "engine/sealed.rs"]
mod sealed;
