//! Unit and property tests of the sans-IO core: the status machine, the guard decisions, the codec,
//! the key layout and the limits. Everything here is synchronous and deterministic: `now` is an
//! argument, so time moves only where a test says so.

mod codec;
mod event;
mod fixtures;
mod guard;
mod keys;
mod lifecycle;
mod limits;
