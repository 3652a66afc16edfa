//! wasm-bindgen classes over the engine. Translation only: JS values in, engine calls, JS values and
//! error classes out. Every Promise-returning method converts its arguments inside the promise, so
//! it never throws synchronously.

mod cipher;
mod convert;
mod errors;
mod host;
mod invocation;
mod live;
mod origin;
mod reads;
mod schema;
mod session;
mod store;
mod transfer;
mod view;

/// The Promise of an async binding. Every async method goes through this one non-generic call, so
/// the glue that drives a future from JS is in the .wasm once, not once per method (each method
/// keeps only its own state machine): measured 2026-12-02, see docs/benchmarks.md "Size".
pub(crate) fn promise(
    future: impl std::future::Future<Output = errors::JsResult<wasm_bindgen::JsValue>> + 'static,
) -> js_sys::Promise {
    boxed_promise(Box::pin(future))
}

#[inline(never)]
fn boxed_promise(
    future: crate::store::LocalBoxFuture<'static, errors::JsResult<wasm_bindgen::JsValue>>,
) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(future)
}

/// Runs a future to completion in the background, through one non-generic call (as [`promise`]).
pub(crate) fn spawn(future: impl std::future::Future<Output = ()> + 'static) {
    spawn_boxed(Box::pin(future))
}

#[inline(never)]
fn spawn_boxed(future: crate::store::LocalBoxFuture<'static, ()>) {
    wasm_bindgen_futures::spawn_local(future)
}

/// `Ok` while the heap may take another object JS holds (a `Session`, an `Invocation`, a
/// `SessionView`, a follower, a store exporter); past the
/// heap limit a `LimitExceededError` (store/budget.rs `check_heap`).
pub(crate) fn heap_room() -> errors::JsResult<()> {
    Ok(crate::store::budget::check_heap(crate::heap::in_use())?)
}
