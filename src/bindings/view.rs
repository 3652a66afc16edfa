//! `SessionView`: a read-only session as of one version (`session.at(v)`).

use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::bindings::convert::agent_option;
use crate::bindings::errors::JsResult;
use crate::bindings::host::freeze;
use crate::bindings::reads::{agent_of, json_array, state_object};
use crate::engine::SessionView;

#[wasm_bindgen(js_name = SessionView)]
pub struct JsSessionView {
    inner: Rc<SessionView>,
}

impl JsSessionView {
    pub fn new(inner: SessionView) -> JsSessionView {
        JsSessionView { inner: Rc::new(inner) }
    }
}

#[wasm_bindgen(js_class = SessionView)]
impl JsSessionView {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.inner.version as f64
    }

    #[wasm_bindgen(getter)]
    pub fn status(&self) -> String {
        self.inner.status.as_str().to_owned()
    }

    pub fn messages(&self, options: JsValue) -> JsResult<Array> {
        let agent = agent_option(&options)?;
        let messages = agent_of(&self.inner.state, agent.as_deref()).map(|a| json_array(&a.messages)).transpose()?;
        Ok(freeze(&messages.unwrap_or_default()).into())
    }

    pub fn state(&self, options: JsValue) -> JsResult<JsValue> {
        let agent = agent_option(&options)?;
        match agent_of(&self.inner.state, agent.as_deref()) {
            Some(a) => state_object(&a.state),
            None => Ok(freeze(&js_sys::Object::new().into())),
        }
    }
}
