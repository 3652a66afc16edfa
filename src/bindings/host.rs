//! The JS helpers the bindings import (copied by wasm-bindgen next to the .wasm) and the engine's
//! `Env` over them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::bindings::errors::{invalid, invalid_with_cause};
use crate::caught;
use crate::engine::Env;
use crate::store::LocalBoxFuture;

#[wasm_bindgen(module = "/js/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeError)]
    pub fn make_error(code: &str, message: &str, fields: &JsValue) -> JsValue;
}

// Each helper of js/json.js that may throw keeps the error for `takeThrown` and returns undefined
// (crate::caught says why).
#[wasm_bindgen(module = "/js/json.js")]
extern "C" {
    #[wasm_bindgen(js_name = toJsonTextCaught)]
    fn to_json_text_caught(value: &JsValue, path: &str, key: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = fromJsonText)]
    fn from_json_text_caught(text: &str) -> JsValue;
    pub fn freeze(value: &JsValue) -> JsValue;
    pub fn thawed(value: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = arrayItems)]
    fn array_items_caught(value: &JsValue, path: &str) -> JsValue;
    #[wasm_bindgen(js_name = objectEntries)]
    fn object_entries_caught(value: &JsValue, path: &str) -> JsValue;
    #[wasm_bindgen(js_name = appendJsonTexts)]
    fn append_json_texts_caught(items: &js_sys::Array, texts: &str) -> JsValue;
}

/// The deep-frozen value of JSON text.
pub fn from_json_text(text: &str) -> Result<JsValue, JsValue> {
    caught::checked(from_json_text_caught(text))
}

/// The elements of a caller's array in a plain array (a throwing getter: a ValidationError at `path`).
pub fn array_items(value: &JsValue, path: &str) -> Result<js_sys::Array, JsValue> {
    caught::checked(array_items_caught(value, path)).map(JsCast::unchecked_into)
}

/// `Object.entries` of a caller's object (a throwing getter: a ValidationError at `path`).
pub fn object_entries(value: &JsValue, path: &str) -> Result<js_sys::Array, JsValue> {
    caught::checked(object_entries_caught(value, path)).map(JsCast::unchecked_into)
}

/// Appends the values of `texts` (one JSON array text) to `items`; `items` frozen in a copy. A
/// SyntaxError when a text is not JSON.
pub fn append_json_texts(items: &js_sys::Array, texts: &str) -> Result<js_sys::Array, JsValue> {
    caught::checked(append_json_texts_caught(items, texts)).map(JsCast::unchecked_into)
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
}

/// JSON text of a JS value; a ValidationError naming `path` (`path[key]` when `key` is not
/// undefined, built only then) for what JSON cannot carry (js/json.js `toJsonText`).
pub fn to_json_text(value: &JsValue, path: &str, key: &JsValue) -> Result<js_sys::JsString, JsValue> {
    caught::checked(to_json_text_caught(value, path, key)).map(JsCast::unchecked_into)
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
    #[wasm_bindgen(js_name = openRealmChannel)]
    pub fn open_realm_channel(kv: &JsValue, prefix: &str, on_message: &Function) -> JsValue;
    #[wasm_bindgen(js_name = postRealmChange)]
    pub fn post_realm_change(
        kv: &JsValue,
        prefix: &str,
        from: &JsValue,
        id: &str,
        version: f64,
        status: &str,
        token: Option<f64>,
    );
    #[wasm_bindgen(js_name = closeRealmChannel)]
    pub fn close_realm_channel(member: &JsValue);
}

/// The engine's clock, randomness and timer in a JS realm; `now` is the `now` store option.
pub struct JsEnv {
    now: Option<Function>,
    /// The `now` option's last reading that was a time: what a later one that throws or is not a
    /// time reads as.
    last_now: Cell<u64>,
    /// Name prefix of the Web Locks that store instances hold while they may hold leases (IndexedDB).
    pub lock_prefix: Option<String>,
    /// The release function of this store's Web Lock, once asked for.
    alive: RefCell<Option<JsValue>>,
}

/// A store collected without `close()` lets its Web Lock go: held, it said for good that the store's
/// leases might be alive (and each such store kept one more lock).
impl Drop for JsEnv {
    fn drop(&mut self) {
        if let Some(release) = self.alive.get_mut().take() {
            release_lock(&release);
        }
    }
}

impl Env for JsEnv {
    fn now(&self) -> u64 {
        let Some(now) = &self.now else { return js_sys::Date::now() as u64 };
        // A clock that throws or gives what is not a time stands still: this store's leases then end
        // no earlier than they should, where reading it as 0 (as once) ended every lease it wrote.
        match reading(now) {
            Reading::Time(ms) => {
                self.last_now.set(ms);
                ms
            }
            Reading::Threw(_) | Reading::NotTime(_) => self.last_now.get(),
        }
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

/// What one call of the `now` option gave.
enum Reading {
    Time(u64),
    Threw(JsValue),
    NotTime(JsValue),
}

fn reading(now: &Function) -> Reading {
    match caught::call0(now, &JsValue::UNDEFINED) {
        Err(error) => Reading::Threw(error),
        Ok(value) => match value.as_f64() {
            Some(ms) if ms.is_finite() && ms >= 0.0 => Reading::Time(ms as u64),
            _ => Reading::NotTime(value),
        },
    }
}

/// The engine's environment; the `now` option is read once here, and refused unless it gives a time.
pub fn env(now: Option<Function>, lock_prefix: Option<String>) -> Result<Rc<dyn Env>, JsValue> {
    const PATH: &str = "options.now";
    const RULE: &str = "it must return the time in ms since the epoch, a finite number >= 0, as Date.now() does";
    let first = match now.as_ref().map(reading) {
        None => 0,
        Some(Reading::Time(ms)) => ms,
        Some(Reading::Threw(error)) => return Err(invalid_with_cause(PATH, &format!("threw: {RULE}"), error)),
        Some(Reading::NotTime(value)) => {
            let shown = match value.as_f64() {
                Some(_) => "a number that is not a time (NaN, infinite or negative)".to_owned(),
                None => value.js_typeof().as_string().unwrap_or_default(),
            };
            return Err(invalid(PATH, format!("{PATH} returned {shown}: {RULE}")));
        }
    };
    if let Some(prefix) = &lock_prefix {
        listen_live(&live_channel(prefix));
    }
    Ok(Rc::new(JsEnv { now, last_now: Cell::new(first), lock_prefix, alive: RefCell::new(None) }))
}
