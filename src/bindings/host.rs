//! The JS helpers the bindings import (copied by wasm-bindgen next to the .wasm) and the engine's
//! `Env` over them.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::engine::Env;
use crate::store::LocalBoxFuture;

#[wasm_bindgen(module = "/js/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeError)]
    pub fn make_error(code: &str, message: &str, fields: &JsValue) -> JsValue;
}

#[wasm_bindgen(module = "/js/json.js")]
extern "C" {
    /// [`to_json_text`], its error kept for `takeThrown` (not a `catch` import: see [`call1`]).
    #[wasm_bindgen(js_name = toJsonTextCaught)]
    fn to_json_text_caught(value: &JsValue, path: &str, key: &JsValue) -> JsValue;
    /// The deep-frozen value of JSON text.
    #[wasm_bindgen(catch, js_name = fromJsonText)]
    pub fn from_json_text(text: &str) -> Result<JsValue, JsValue>;
    pub fn freeze(value: &JsValue) -> JsValue;
    /// The elements of a caller's array in a plain array (a throwing getter: a ValidationError at `path`).
    #[wasm_bindgen(catch, js_name = arrayItems)]
    pub fn array_items(value: &JsValue, path: &str) -> Result<js_sys::Array, JsValue>;
    /// `Object.entries` of a caller's object (a throwing getter: a ValidationError at `path`).
    #[wasm_bindgen(catch, js_name = objectEntries)]
    pub fn object_entries(value: &JsValue, path: &str) -> Result<js_sys::Array, JsValue>;
    /// Appends the values of `texts` (one JSON array text) to `items`; `items` frozen in a copy.
    /// Throws a SyntaxError when a text is not JSON.
    #[wasm_bindgen(catch, js_name = appendJsonTexts)]
    pub fn append_json_texts(items: &js_sys::Array, texts: &str) -> Result<js_sys::Array, JsValue>;
}

#[wasm_bindgen(module = "/js/runtime.js")]
extern "C" {
    /// The UTF-8 length of a JS string, without copying it.
    #[wasm_bindgen(js_name = utf8Length)]
    pub fn utf8_length(text: &js_sys::JsString) -> f64;
    #[wasm_bindgen(js_name = fillRandom)]
    fn fill_random(bytes: &mut [u8]);
    pub fn sleep(ms: f64) -> Promise;
    #[wasm_bindgen(js_name = startInterval)]
    pub fn start_interval(tick: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = stopInterval)]
    pub fn stop_interval(handle: &JsValue);
    #[wasm_bindgen(js_name = callCatching)]
    fn call_catching(function: &Function, this: &JsValue, arg: &JsValue) -> JsValue;
    fn threw() -> bool;
    #[wasm_bindgen(js_name = takeThrown)]
    fn take_thrown() -> JsValue;
}

/// `function.call1(this, arg)`, its throw the `Err`. Not through js_sys's `call1`, a `catch` import:
/// wasm-bindgen (0.2.130) leaves a slot of the externref table allocated for each call that throws,
/// and a callback that throws on every turn took a server's instance to V8's table limit (a trap).
pub fn call1(function: &Function, this: &JsValue, arg: &JsValue) -> Result<JsValue, JsValue> {
    let value = call_catching(function, this, arg);
    if threw() {
        return Err(take_thrown());
    }
    Ok(value)
}

/// JSON text of a JS value; a ValidationError naming `path` (`path[key]` when `key` is not
/// undefined, built only then) for what JSON cannot carry (js/json.js `toJsonText`).
pub fn to_json_text(value: &JsValue, path: &str, key: &JsValue) -> Result<js_sys::JsString, JsValue> {
    let text = to_json_text_caught(value, path, key);
    if text.is_undefined() {
        return Err(take_thrown());
    }
    Ok(text.unchecked_into())
}

#[wasm_bindgen(module = "/js/web.js")]
extern "C" {
    #[wasm_bindgen(js_name = listenLive)]
    fn listen_live(name: &str);
    #[wasm_bindgen(js_name = wakeLive)]
    fn wake_live(name: Option<String>, id: &str);
    #[wasm_bindgen(js_name = wakeCount)]
    fn wake_count() -> f64;
    #[wasm_bindgen(js_name = waitLive)]
    fn wait_live(id: &str, ms: f64, lock_name: Option<String>) -> Promise;
    #[wasm_bindgen(js_name = newAbortController)]
    pub fn new_abort_controller() -> JsValue;
    #[wasm_bindgen(js_name = invocationEnded)]
    pub fn invocation_ended() -> JsValue;
}

#[wasm_bindgen(module = "/js/web.js")]
extern "C" {
    #[wasm_bindgen(js_name = holdLock)]
    fn hold_lock(name: &str) -> JsValue;
    #[wasm_bindgen(js_name = releaseLock)]
    fn release_lock(release: &JsValue);
    #[wasm_bindgen(js_name = isLockHeld)]
    fn is_lock_held(name: &str) -> Promise;
    #[wasm_bindgen(js_name = openChannel)]
    pub fn open_channel(name: &str, on_message: &Function) -> JsValue;
    #[wasm_bindgen(js_name = postChange)]
    pub fn post_change(channel: &JsValue, id: &str, version: f64, status: &str, token: Option<f64>);
    #[wasm_bindgen(js_name = closeChannel)]
    pub fn close_channel(channel: &JsValue);
}

/// The engine's clock, randomness and timer in a JS realm; `now` is the `now` store option.
pub struct JsEnv {
    pub now: Option<Function>,
    /// Name prefix of the Web Locks that store instances hold while they may hold leases (IndexedDB).
    pub lock_prefix: Option<String>,
    /// The release function of this store's Web Lock, once asked for.
    alive: RefCell<Option<JsValue>>,
}

impl Env for JsEnv {
    fn now(&self) -> u64 {
        let ms = match &self.now {
            Some(now) => now.call0(&JsValue::UNDEFINED).ok().and_then(|v| v.as_f64()).unwrap_or(f64::NAN),
            None => js_sys::Date::now(),
        };
        // `as` saturates: a clock returning NaN or a negative number reads as 0.
        ms as u64
    }

    fn fill_random(&self, bytes: &mut [u8]) {
        fill_random(bytes);
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        let promise = sleep(ms as f64);
        Box::pin(async move {
            let _ = JsFuture::from(promise).await;
        })
    }

    fn holder_alive(&self, instance: &str) -> LocalBoxFuture<'static, Option<bool>> {
        let Some(prefix) = &self.lock_prefix else { return Box::pin(std::future::ready(None)) };
        let query = is_lock_held(&format!("{prefix}{instance}"));
        Box::pin(async move { JsFuture::from(query).await.ok().and_then(|held| held.as_bool()) })
    }

    fn hold_alive(&self, instance: &str) {
        let Some(prefix) = &self.lock_prefix else { return };
        let mut alive = self.alive.borrow_mut();
        if alive.is_none() {
            *alive = Some(hold_lock(&format!("{prefix}{instance}")));
        }
    }

    fn release_alive(&self) {
        if let Some(release) = self.alive.borrow_mut().take() {
            release_lock(&release);
        }
    }

    fn wake(&self, id: &str, everywhere: bool) {
        let channel = self.lock_prefix.as_ref().filter(|_| everywhere).map(|prefix| live_channel(prefix));
        wake_live(channel, id);
    }

    fn wakes(&self) -> Option<u64> {
        Some(wake_count() as u64)
    }

    fn wait(&self, id: &str, ms: u64, holder: Option<&str>) -> LocalBoxFuture<'static, ()> {
        let lock = match (&self.lock_prefix, holder) {
            (Some(prefix), Some(instance)) => Some(format!("{prefix}{instance}")),
            _ => None,
        };
        let promise = wait_live(id, ms as f64, lock);
        Box::pin(async move {
            let _ = JsFuture::from(promise).await;
        })
    }
}

/// The BroadcastChannel that carries live wake-ups between the realms of a browser-shared store.
fn live_channel(prefix: &str) -> String {
    format!("{prefix}live")
}

pub fn env(now: Option<Function>, lock_prefix: Option<String>) -> Rc<dyn Env> {
    if let Some(prefix) = &lock_prefix {
        listen_live(&live_channel(prefix));
    }
    Rc::new(JsEnv { now, lock_prefix, alive: RefCell::new(None) })
}
