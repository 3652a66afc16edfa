//! Calls into JavaScript that may throw, without wasm-bindgen's `catch` imports.
//!
//! Why: a `catch` import that returns a value takes a slot of the instance's externref table for that
//! value before it looks at the exception, and nothing frees the slot when there was one
//! (wasm-bindgen 0.2.130). A server whose callbacks, options or KV adapter throw on every request
//! leaked a slot per request, and at V8's table limit (about eight million) the instance trapped,
//! every session in it with it. Here the throw is caught in JavaScript (`js/runtime.js`): the call
//! returns undefined and the error waits in `takeThrown()`.
//!
//! The catch imports left in the .wasm are listed, each with why it cannot throw per caller's call,
//! in `tests/js/externref.test.mjs`, which fails on any other.

use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/runtime.js")]
extern "C" {
    #[wasm_bindgen(js_name = callCatching)]
    fn call0_caught(function: &Function, this: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = callCatching)]
    fn call1_caught(function: &Function, this: &JsValue, a: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = callCatching)]
    fn call3_caught(function: &Function, this: &JsValue, a: &JsValue, b: &JsValue, c: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = getCatching)]
    fn get_caught(object: &JsValue, key: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = ownKeysCatching)]
    fn own_keys_caught(object: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = prototypeCatching)]
    fn prototype_caught(object: &JsValue) -> JsValue;
    /// `function(a)`, a listener's call (onEvent, onChange): what it throws, or its promise rejects
    /// with, is ignored (`js/runtime.js`); it never throws.
    #[wasm_bindgen(js_name = callListener)]
    pub fn listener(function: &Function, a: &JsValue);
    fn threw() -> bool;
    #[wasm_bindgen(js_name = takeThrown)]
    fn take_thrown() -> JsValue;
}

/// What a call through a catching helper of `js/` returned, or what it threw.
pub fn checked(value: JsValue) -> Result<JsValue, JsValue> {
    if threw() {
        return Err(take_thrown());
    }
    Ok(value)
}

/// `function.call(this)`.
pub fn call0(function: &Function, this: &JsValue) -> Result<JsValue, JsValue> {
    checked(call0_caught(function, this))
}

/// `function.call(this, a)`.
pub fn call1(function: &Function, this: &JsValue, a: &JsValue) -> Result<JsValue, JsValue> {
    checked(call1_caught(function, this, a))
}

/// `function.call(this, a, b, c)`.
pub fn call3(function: &Function, this: &JsValue, a: &JsValue, b: &JsValue, c: &JsValue) -> Result<JsValue, JsValue> {
    checked(call3_caught(function, this, a, b, c))
}

/// `Reflect.get(object, key)` (a getter or proxy trap may throw).
pub fn get(object: &JsValue, key: &JsValue) -> Result<JsValue, JsValue> {
    checked(get_caught(object, key))
}

/// `Reflect.ownKeys(object)`.
pub fn own_keys(object: &JsValue) -> Result<js_sys::Array, JsValue> {
    checked(own_keys_caught(object)).map(JsCast::unchecked_into)
}

/// `Reflect.getPrototypeOf(object)`.
pub fn prototype_of(object: &JsValue) -> Result<JsValue, JsValue> {
    checked(prototype_caught(object))
}
