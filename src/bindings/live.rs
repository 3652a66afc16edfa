//! `session.stop()` and the reader behind `session.follow()` (js/api.js makes it an async
//! iterator): options in, engine calls, frozen event objects out.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::bindings::convert::{to_count, to_text, Options};
use crate::bindings::errors::{invalid, JsResult};
use crate::bindings::host::freeze;
use crate::bindings::promise;
use crate::bindings::reads::parse;
use crate::bindings::session::JsSession;
use crate::caught;
use crate::core::live::LiveEvent;
use crate::engine::LiveFollow;

/// The reason recorded when `stop()` is given none.
const DEFAULT_STOP_REASON: &str = "stop requested";
/// `graceMs` when not given.
const DEFAULT_GRACE_MS: u64 = 5000;

fn object(pairs: &[(&str, JsValue)]) -> JsResult<JsValue> {
    let object = Object::new();
    for (key, value) in pairs {
        if !value.is_undefined() {
            Reflect::set(&object, &JsValue::from_str(key), value)?;
        }
    }
    Ok(freeze(&object))
}

fn event_object(event: &LiveEvent) -> JsResult<JsValue> {
    match event {
        LiveEvent::Part { invocation, seq, data } => object(&[
            ("type", "part".into()),
            ("invocation", invocation.as_str().into()),
            ("seq", (*seq as f64).into()),
            ("data", parse(data)?),
        ]),
        LiveEvent::End { invocation, outcome, version, status } => object(&[
            ("type", "end".into()),
            ("invocation", invocation.as_str().into()),
            ("outcome", (*outcome).into()),
            ("version", (*version as f64).into()),
            ("status", status.as_str().into()),
        ]),
        LiveEvent::Commit { version, status } => object(&[
            ("type", "commit".into()),
            ("version", (*version as f64).into()),
            ("status", status.as_str().into()),
        ]),
    }
}

/// The reader of one `follow()` iteration.
#[wasm_bindgen(js_name = LiveFollower)]
pub struct JsLiveFollower {
    inner: Rc<LiveFollow>,
}

#[wasm_bindgen(js_class = LiveFollower)]
impl JsLiveFollower {
    /// The events to yield now (an empty array: wait), or `null` once the iteration is over.
    pub fn poll(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            if inner.is_done() {
                return Ok(JsValue::NULL);
            }
            let events = inner.poll().await?;
            let array = Array::new();
            for event in &events {
                array.push(&event_object(event)?);
            }
            Ok(array.into())
        })
    }

    /// Resolves on news for this session, or at the next poll.
    pub fn wait(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.wait().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

#[wasm_bindgen(js_class = Session)]
impl JsSession {
    /// The reader behind `follow()` (js/api.js wraps it in the async iterator); validates the
    /// options now.
    pub fn follow(&self, options: JsValue) -> JsResult<JsLiveFollower> {
        self.store.check_open()?;
        let options = Options::new(&options, "options")?;
        options.only(&["after", "signal"])?;
        let after = match options.get("after")? {
            None => None,
            Some(after) => {
                let after = Options::new(&after, "options.after")?;
                after.only(&["invocation", "seq"])?;
                let (invocation, seq) = (after.get("invocation")?, after.get("seq")?);
                let missing = || invalid("options.after", "options.after needs { invocation, seq }".into());
                let (invocation, seq) = (invocation.ok_or_else(missing)?, seq.ok_or_else(missing)?);
                Some((to_text(&invocation, "options.after.invocation")?, to_count(&seq, "options.after.seq")?))
            }
        };
        if let Some(signal) = options.get("signal")? {
            let aborted = caught::get(&signal, &"aborted".into()).ok().and_then(|v| v.as_bool());
            if aborted.is_none() {
                return Err(invalid("options.signal", "options.signal must be an AbortSignal".into()));
            }
        }
        crate::bindings::heap_room()?;
        Ok(JsLiveFollower { inner: Rc::new(self.inner.follow(after)) })
    }

    /// Asks the running turn to stop; resolves once it ended: `{ outcome, invocation?, version }`.
    pub fn stop(&self, options: JsValue) -> Promise {
        let session = self.inner.clone();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["reason", "graceMs"])?;
            let reason = match options.get("reason")? {
                Some(reason) => to_text(&reason, "options.reason")?,
                None => DEFAULT_STOP_REASON.to_owned(),
            };
            let grace_ms = options.count("graceMs")?.unwrap_or(DEFAULT_GRACE_MS);
            let result = session.stop(&reason, grace_ms).await?;
            object(&[
                ("outcome", result.outcome.into()),
                ("invocation", result.invocation.as_deref().map_or(JsValue::UNDEFINED, JsValue::from)),
                ("version", (result.version as f64).into()),
            ])
        })
    }
}
