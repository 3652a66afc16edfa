//! JS values -> Rust: options, names and JSON values. Anything else is a ValidationError.

use js_sys::{Function, JsString, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::bindings::errors::{invalid, JsResult};
use crate::bindings::host;
use crate::caught;
use crate::core::{limits, Json};
use crate::engine::EngineError;
use crate::store::budget;

/// The `agent` of a read's or a write's options (`None`: the default agent). Options without an
/// `agent` may hold no other property: a misspelt `agnet` would read or write the default agent's
/// data without a word. (Only then are the keys read: with an `agent`, as the frameworks pass on
/// every call, the call costs what it did.)
pub fn agent_option(options: &JsValue) -> JsResult<Option<String>> {
    let options = Options::new(options, "options")?;
    let agent = options.name("agent")?;
    if agent.is_none() {
        options.only(&["agent"])?;
    }
    Ok(agent)
}

/// An options argument: `undefined`/`null` or an object.
pub struct Options {
    object: Option<Object>,
    what: String,
}

impl Options {
    pub fn new(value: &JsValue, what: &str) -> JsResult<Options> {
        if value.is_undefined() || value.is_null() {
            return Ok(Options { object: None, what: what.to_owned() });
        }
        match value.dyn_ref::<Object>() {
            Some(object) if !value.is_function() => Ok(Options { object: Some(object.clone()), what: what.to_owned() }),
            _ => Err(invalid(what, format!("{what} must be an object or undefined"))),
        }
    }

    /// Refuses a property that is none of `known`: a misspelt option (`encryptionkey`, `creat`) would
    /// otherwise be ignored, and its default taken silently (a store without encryption, a session
    /// created). Own string-keyed properties only, as an object literal or a spread gives them.
    pub fn only(&self, known: &[&str]) -> JsResult<()> {
        let Some(object) = &self.object else { return Ok(()) };
        // Reflect.ownKeys (not Object.keys): a proxy's trap that throws is a ValidationError, not a trap.
        let keys = caught::own_keys(object)
            .map_err(|cause| crate::bindings::errors::invalid_with_cause(&self.what, "could not be read", cause))?;
        for key in keys.iter() {
            let Some(key) = key.as_string() else { continue };
            if known.contains(&key.as_str()) {
                continue;
            }
            let path = self.path(&key);
            let hint = known
                .iter()
                .find(|name| name.eq_ignore_ascii_case(&key))
                .map_or(String::new(), |name| format!(" (did you mean {name}?)"));
            return Err(invalid(&path, format!("{path} is not an option here{hint}; leave it out or fix its name")));
        }
        Ok(())
    }

    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.what)
    }

    /// The property `key`, `None` when absent or `undefined`.
    pub fn get(&self, key: &str) -> JsResult<Option<JsValue>> {
        let Some(object) = &self.object else { return Ok(None) };
        let value = caught::get(object, &property_name(key)).map_err(|cause| {
            crate::bindings::errors::invalid_with_cause(&self.path(key), "could not be read", cause)
        })?;
        Ok(if value.is_undefined() { None } else { Some(value) })
    }

    /// A non-negative integer of milliseconds or a count.
    pub fn count(&self, key: &str) -> JsResult<Option<u64>> {
        self.get(key)?.map(|value| to_count(&value, &self.path(key))).transpose()
    }

    /// A positive integer: anything else (0, a negative or fractional number, not a number) is refused
    /// with the same message.
    pub fn positive(&self, key: &str) -> JsResult<Option<u64>> {
        let Some(value) = self.get(key)? else { return Ok(None) };
        let path = self.path(key);
        match to_count(&value, &path) {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(invalid(&path, format!("{path} must be a positive integer"))),
        }
    }

    pub fn bool(&self, key: &str) -> JsResult<Option<bool>> {
        match self.get(key)? {
            None => Ok(None),
            Some(value) => value
                .as_bool()
                .map(Some)
                .ok_or_else(|| invalid(&self.path(key), format!("{} must be a boolean", self.path(key)))),
        }
    }

    pub fn string(&self, key: &str) -> JsResult<Option<String>> {
        match self.get(key)? {
            None => Ok(None),
            Some(value) if value.is_string() => to_text(&value, &self.path(key)).map(Some),
            Some(_) => Err(invalid(&self.path(key), format!("{} must be a string", self.path(key)))),
        }
    }

    /// A session id, agent name or other 1..=256-byte name; a refusal names its path (`options.agent`),
    /// which is built only then (an `agent` option is read at every read and write that passes one).
    pub fn name(&self, key: &str) -> JsResult<Option<String>> {
        let Some(value) = self.get(key)? else { return Ok(None) };
        match to_name(&value, "") {
            Ok(name) => Ok(Some(name)),
            Err(_) => to_name(&value, &self.path(key)).map(Some),
        }
    }

    pub fn function(&self, key: &str) -> JsResult<Option<Function>> {
        match self.get(key)? {
            None => Ok(None),
            Some(value) => value
                .dyn_into::<Function>()
                .map(Some)
                .map_err(|_| invalid(&self.path(key), format!("{} must be a function", self.path(key)))),
        }
    }

    pub fn object(&self, key: &str) -> JsResult<Options> {
        Options::new(&self.get(key)?.unwrap_or(JsValue::UNDEFINED), &self.path(key))
    }

    /// The JSON text of `key`, refused before its copy into wasm memory when `fits` (a size limit)
    /// refuses its length ([`to_json_within`]).
    pub fn json_within(&self, key: &str, fits: &dyn Fn(usize) -> Result<(), EngineError>) -> JsResult<Option<Json>> {
        self.get(key)?.map(|value| to_json_within(&value, &self.path(key), &JsValue::UNDEFINED, fits)).transpose()
    }
}

thread_local! {
    /// The JS strings of option names, made once: a name crossing into JS costs a decode on every
    /// call (`agent` on every setState, stateValue and appendMessage that passes one).
    static PROPERTY_NAMES: std::cell::RefCell<Vec<(String, JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// At most this many option names are kept (the bindings read a few dozen distinct ones).
const MAX_PROPERTY_NAMES: usize = 64;

fn property_name(key: &str) -> JsValue {
    PROPERTY_NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some((_, name)) = names.iter().find(|(known, _)| known == key) {
            return name.clone();
        }
        let name = JsValue::from_str(key);
        if names.len() < MAX_PROPERTY_NAMES {
            names.push((key.to_owned(), name.clone()));
        }
        name
    })
}

/// A string without lone surrogates (they have no UTF-8 form: converting them would merge ids).
pub(crate) fn well_formed(value: &JsValue) -> Option<String> {
    let text = value.as_string()?;
    // The conversion turns a lone surrogate into U+FFFD; only then is the original asked (one
    // crossing into JS less for every other name).
    // (U+FFFD is EF BF BD in UTF-8; a byte scan, not str::contains and its searcher's code.)
    let replaced = text.as_bytes().windows(3).any(|bytes| bytes == [0xEF, 0xBF, 0xBD]);
    if replaced && !value.unchecked_ref::<JsString>().is_valid_utf16() {
        return None;
    }
    Some(text)
}

/// The most UTF-16 units a text argument (a reason, a traceparent, a prefix, a cursor) may have: every
/// such text has a far smaller bound, checked after the copy; this one is checked before it, so that a
/// huge string never reaches wasm memory, which would keep its size for good.
const MAX_TEXT_UNITS: usize = 1 << 20;

/// The UTF-16 length of a JS string over `max` (a UTF-8 text is at least that many bytes), read
/// without copying the string into wasm memory, which would keep a huge string's size for good.
fn units_over(value: &JsValue, max: usize) -> Option<usize> {
    value.dyn_ref::<JsString>().map(|text| text.length() as usize).filter(|units| *units > max)
}

/// A string argument that must convert to UTF-8 exactly (no lone surrogates).
pub fn to_text(value: &JsValue, path: &str) -> JsResult<String> {
    if let Some(units) = units_over(value, MAX_TEXT_UNITS) {
        return Err(invalid(path, format!("{path} is {units} characters long, far over its limit")));
    }
    well_formed(value).ok_or_else(|| invalid(path, format!("{path} must be a string without lone surrogates")))
}

pub fn to_name(value: &JsValue, what: &str) -> JsResult<String> {
    if let Some(units) = units_over(value, limits::MAX_NAME_BYTES) {
        let max = limits::MAX_NAME_BYTES;
        return Err(invalid(
            what,
            format!("{what} must be a string of 1 to {max} UTF-8 bytes, got at least {units} bytes"),
        ));
    }
    let name = well_formed(value).ok_or_else(|| {
        let max = limits::MAX_NAME_BYTES;
        match value.as_string() {
            Some(_) => {
                invalid(what, format!("{what} must be a string of 1 to {max} UTF-8 bytes without lone surrogates"))
            }
            None => {
                let kind =
                    if value.is_null() { "null".to_owned() } else { value.js_typeof().as_string().unwrap_or_default() };
                invalid(what, format!("{what} must be a string of 1 to {max} UTF-8 bytes, got {kind}"))
            }
        }
    })?;
    // The same path as for a value that is not a string at all.
    limits::check_name(what, &name).map_err(|error| invalid(what, error.to_string()))?;
    Ok(name)
}

pub fn to_optional_name(value: &JsValue, what: &str) -> JsResult<Option<String>> {
    if value.is_undefined() {
        return Ok(None);
    }
    to_name(value, what).map(Some)
}

pub fn to_count(value: &JsValue, path: &str) -> JsResult<u64> {
    match value.as_f64() {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 => Ok(n as u64),
        _ => Err(invalid(path, format!("{path} must be a non-negative integer"))),
    }
}

/// The own properties of the object `value` as JSON texts by key; a value JSON cannot carry is a
/// `ValidationError` naming `path[key]`, one that `fits` refuses is refused before its copy.
pub fn to_json_map(
    value: &JsValue,
    path: &str,
    fits: &dyn Fn(usize) -> Result<(), EngineError>,
) -> JsResult<std::collections::BTreeMap<String, Json>> {
    let mut map = std::collections::BTreeMap::new();
    for entry in host::object_entries(value, path)?.iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        // A key with a lone surrogate would become U+FFFD, one with another such key: refused.
        let key = to_name(&pair.get(0), "a state key")?;
        let json = to_json_at(&pair.get(1), &format!("{path}[{key}]"), fits)?;
        map.insert(key, json);
    }
    Ok(map)
}

/// The JSON text of `value`, copied into wasm memory only when it fits the instance's memory
/// budget (a UTF-16 unit takes at most 3 bytes of UTF-8).
pub fn to_json(value: &JsValue, path: &str) -> JsResult<Json> {
    to_json_within(value, path, &JsValue::UNDEFINED, &|_| Ok(()))
}

/// [`to_json_within`] of the value at `path`, a refusal by `fits` naming `path`.
pub fn to_json_at(value: &JsValue, path: &str, fits: &dyn Fn(usize) -> Result<(), EngineError>) -> JsResult<Json> {
    let at = |n| fits(n).map_err(|error| EngineError::AtPath { path: path.to_owned(), error: Box::new(error) });
    to_json_within(value, path, &JsValue::UNDEFINED, &at)
}

/// [`to_json`] of the entry `key` of `path` (a ValidationError names `path["key"]`; the path's text is
/// built only for an error, not on every setState), refused before it is copied into wasm memory when
/// `fits` (a size limit of UTF-8 bytes, its error naming where, if it says) refuses it: a text over the limit in UTF-16 units is over it in
/// bytes, and a refused 100 MB message would otherwise have grown the instance's memory for good.
pub fn to_json_within(
    value: &JsValue,
    path: &str,
    key: &JsValue,
    fits: &dyn Fn(usize) -> Result<(), EngineError>,
) -> JsResult<Json> {
    let text = host::to_json_text(value, path, key)?;
    budget::check("a value given to agent-session", u64::from(text.length()) * 3)?;
    if fits(text.length() as usize).is_err() {
        fits(host::utf8_length(&text) as usize)?;
    }
    Ok(Json::from(String::from(text)))
}
