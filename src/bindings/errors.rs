//! Engine, core and store errors -> the JS error classes of js/errors.js, in one place.

use std::rc::Rc;

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use crate::bindings::host::make_error;
use crate::caught;
use crate::core::CoreError;
use crate::engine::EngineError;
use crate::store::StoreError;

pub type JsResult<T> = Result<T, JsValue>;

fn fields(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in pairs {
        // Setting a plain property on a fresh object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object.into()
}

/// What `new SessionStore()` (or `Session`, `Invocation`) throws: the classes have no public
/// constructor (API.md), and an object made by one would throw "null pointer passed to rust" from
/// every method. A TypeError, as a platform class without a constructor throws.
pub fn no_constructor(class: &str, made_by: &str) -> JsValue {
    js_sys::TypeError::new(&format!("{class} has no public constructor: {made_by} make one")).into()
}

/// The fields of every `LimitExceededError`: the limit and what would have exceeded it.
fn limit_fields(limit: u64, actual: u64) -> JsValue {
    fields(&[("limit", (limit as f64).into()), ("actual", (actual as f64).into())])
}

/// A ValidationError for the value at `path`.
pub fn invalid(path: &str, message: String) -> JsValue {
    make_error("INVALID_INPUT", &message, &fields(&[("path", path.into())]))
}

pub fn invalid_with_cause(path: &str, what: &str, cause: JsValue) -> JsValue {
    make_error("INVALID_INPUT", &format!("{path} {what}"), &fields(&[("path", path.into()), ("cause", cause)]))
}

/// The reason of an invocation's `signal` when `session.stop()` was called.
pub fn stop_requested(reason: &str, by: &str) -> JsValue {
    let message = format!("session.stop() was called by owner \"{by}\" ({reason}): end the turn now (commit what you have, or abort); after the stopper's grace the turn is fenced and a later commit fails with LeaseLostError");
    make_error("STOP_REQUESTED", &message, &fields(&[("reason", reason.into()), ("by", by.into())]))
}

fn core(error: CoreError) -> JsValue {
    let message = error.to_string();
    let extra = match &error {
        CoreError::Concurrency { holder, retry_after_ms } => {
            fields(&[("holder", holder.as_str().into()), ("retryAfterMs", (*retry_after_ms as f64).into())])
        }
        CoreError::LeaseLost { token } => fields(&[("token", (*token as f64).into())]),
        CoreError::InvalidTransition { from, action } => {
            fields(&[("from", from.as_str().into()), ("action", (*action).into())])
        }
        CoreError::SessionClosed { action } => fields(&[("from", "closed".into()), ("action", (*action).into())]),
        CoreError::SessionExpired { action } => fields(&[("from", "expired".into()), ("action", (*action).into())]),
        CoreError::InvalidInput { path, .. } => {
            fields(&[("path", path.as_deref().map_or(JsValue::UNDEFINED, JsValue::from))])
        }
        CoreError::LimitExceeded { limit, actual, .. } => limit_fields(*limit, *actual),
        CoreError::CorruptRecord { key, .. } => fields(&[("key", key.as_str().into())]),
    };
    make_error(error.code(), &message, &extra)
}

fn store(error: StoreError) -> JsValue {
    match &error {
        StoreError::Corrupt { key, .. } => {
            return make_error("CORRUPT_RECORD", &error.to_string(), &fields(&[("key", key.as_str().into())]))
        }
        StoreError::TooLarge { limit, actual } => {
            return make_error("LIMIT_EXCEEDED", &error.to_string(), &limit_fields(*limit, *actual));
        }
        StoreError::OutOfMemory { needed, held, limit, .. } => {
            let extra = limit_fields(*limit, held.saturating_add(*needed));
            return make_error("LIMIT_EXCEEDED", &error.to_string(), &extra);
        }
        StoreError::HeapFull { in_use, limit } => {
            return make_error("LIMIT_EXCEEDED", &error.to_string(), &limit_fields(*limit, *in_use));
        }
        StoreError::Foreign { .. } => {
            return make_error(error.code(), &error.to_string(), &fields(&[("path", "options.database".into())]));
        }
        _ => {}
    }
    let cause = match &error {
        StoreError::Backend { cause: Some(cause), .. } => {
            Rc::clone(cause).downcast::<JsValue>().map_or(JsValue::UNDEFINED, |v| (*v).clone())
        }
        _ => JsValue::UNDEFINED,
    };
    make_error("STORAGE", &error.to_string(), &fields(&[("cause", cause)]))
}

// One conversion per layer's error, so that bindings propagate every error with `?`.
impl From<EngineError> for JsValue {
    fn from(error: EngineError) -> JsValue {
        engine(error)
    }
}

impl From<CoreError> for JsValue {
    fn from(error: CoreError) -> JsValue {
        core(error)
    }
}

impl From<StoreError> for JsValue {
    fn from(error: StoreError) -> JsValue {
        store(error)
    }
}

fn engine(error: EngineError) -> JsValue {
    match error {
        EngineError::Core(error) => core(error),
        EngineError::Store(error) => store(error),
        EngineError::NotFound(message) => make_error("NOT_FOUND", &message, &JsValue::UNDEFINED),
        EngineError::Conflict(_) => make_error("VERSION_CONFLICT", &error.to_string(), &JsValue::UNDEFINED),
        EngineError::StoreClosed | EngineError::UnsafeStore => {
            make_error(error.code(), &error.to_string(), &JsValue::UNDEFINED)
        }
        EngineError::AtPath { path, error } => {
            let value = engine(*error);
            let message = caught::get(&value, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
            let _ = Reflect::set(&value, &"message".into(), &format!("{path}: {message}").into());
            let _ = Reflect::set(&value, &"path".into(), &path.into());
            value
        }
        EngineError::SchemaVersion { stored, supported } => {
            let extra = fields(&[("stored", (stored as f64).into()), ("supported", (supported as f64).into())]);
            make_error("SCHEMA_VERSION", &error.to_string(), &extra)
        }
        EngineError::Migration { from, to, ref cause, .. } => {
            let cause = cause
                .as_ref()
                .and_then(|cause| Rc::clone(cause).downcast::<JsValue>().ok())
                .map_or(JsValue::UNDEFINED, |cause| (*cause).clone());
            let extra = fields(&[("from", (from as f64).into()), ("to", (to as f64).into()), ("cause", cause)]);
            make_error("MIGRATION_FAILED", &error.to_string(), &extra)
        }
        EngineError::Evicted { max_bytes, .. } => {
            make_error("LIMIT_EXCEEDED", &error.to_string(), &limit_fields(max_bytes, 0))
        }
    }
}
