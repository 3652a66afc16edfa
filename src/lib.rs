//! agent-session: durable session state and a concurrency guard for long-running AI agents.
//!
//! ```text
//! core      pure and synchronous: records, events, the state fold, the lifecycle, guard decisions,
//!           the codec and the limits. No clock, no randomness, no IO: `now` and ids are arguments.
//! store     one small async trait over keys -> bytes with version tokens; the memory backend.
//! engine    SessionStore / Session / Invocation: runs core decisions against a store.
//! bindings  wasm-bindgen classes and the mapping to JS error classes (wasm32 only).
//! ```
//!
//! The guard protocol lives in [`core::guard`], the status machine in [`core::lifecycle`], the storage
//! layout in [`core::keys`].

pub mod core;
pub mod engine;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod caught;
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod heap;
