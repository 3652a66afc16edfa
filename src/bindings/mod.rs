//! wasm-bindgen classes over the engine. Translation only: JS values in, engine calls, JS values and
//! error classes out. Every Promise-returning method converts its arguments inside the promise, so
//! it never throws synchronously.

mod convert;
mod errors;
mod host;
mod invocation;
mod live;
mod origin;
mod reads;
mod session;
mod store;
mod view;
