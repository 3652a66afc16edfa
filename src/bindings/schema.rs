//! The `schema` store option: the application's migrations, called with each agent's data as
//! frozen JSON values and read back as JSON text (a throw or a non-JSON result is a failure).

use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::bindings::convert::{to_json, to_json_map, Options};
use crate::bindings::errors::JsResult;
use crate::bindings::host::{array_items, freeze};
use crate::bindings::reads::{json_array, state_object};
use crate::caught;
use crate::core::AgentState;
use crate::engine::{Migrate, MigrationFailure};

/// `migrate[n]` of the option, by `n`.
pub struct JsMigrations {
    steps: Vec<(u64, Function)>,
}

impl JsMigrations {
    /// The migrations to `version` in `migrate` (`options.schema.migrate`): a function per step
    /// that is given, each checked to be one.
    pub fn new(version: u64, migrate: &Options) -> JsResult<JsMigrations> {
        let mut steps = Vec::new();
        for step in 1..=version {
            if let Some(function) = migrate.function(&step.to_string())? {
                steps.push((step, function));
            }
        }
        Ok(JsMigrations { steps })
    }
}

fn failure(message: String, cause: Option<JsValue>) -> MigrationFailure {
    MigrationFailure { message, cause: cause.map(|cause| Rc::new(cause) as Rc<dyn std::any::Any>) }
}

impl Migrate for JsMigrations {
    fn migrate(&self, to: u64, agent: &str, data: &AgentState) -> Result<AgentState, MigrationFailure> {
        let function = self
            .steps
            .iter()
            .find(|(step, _)| *step == to)
            .map(|(_, f)| f)
            .ok_or_else(|| failure(format!("schema.migrate[{to}] is not given"), None))?;
        let not_json = |cause: JsValue| failure("its input is not JSON".into(), Some(cause));
        let input = Object::new();
        let messages = json_array(&data.messages).map_err(not_json)?;
        let _ = Reflect::set(&input, &"agent".into(), &agent.into());
        let _ = Reflect::set(&input, &"messages".into(), &freeze(&messages.into()));
        let _ = Reflect::set(&input, &"state".into(), &state_object(&data.state).map_err(not_json)?);
        let output = caught::call1(function, &JsValue::UNDEFINED, &freeze(&input.into()))
            .map_err(|cause| failure(format!("schema.migrate[{to}] threw"), Some(cause)))?;
        let returned = |what: &str, cause: JsValue| {
            failure(format!("schema.migrate[{to}] returned {what} that is not JSON"), Some(cause))
        };
        // (A getter or proxy trap that throws while the shape is read is the cause.)
        let shape = |cause: Option<JsValue>| {
            failure(
                format!("schema.migrate[{to}] must return {{ messages: [...], state: {{...}} }}, state a plain object"),
                cause,
            )
        };
        let messages = caught::get(&output, &"messages".into()).map_err(|cause| shape(Some(cause)))?;
        let messages: Array = messages.dyn_into().map_err(|_| shape(None))?;
        let messages = array_items(&messages, "messages").map_err(|cause| {
            failure(format!("schema.migrate[{to}] returned messages that could not be read"), Some(cause))
        })?;
        let mut migrated = AgentState::default();
        for (index, message) in messages.iter().enumerate() {
            migrated
                .messages
                .push(to_json(&message, &format!("messages[{index}]")).map_err(|e| returned("a message", e))?);
        }
        let state = caught::get(&output, &"state".into()).map_err(|cause| shape(Some(cause)))?;
        // An array, a Map or a class instance read as the state would lose or rename its entries.
        let plain = state.is_object() && is_plain_prototype(&caught::prototype_of(&state).map_err(|c| shape(Some(c)))?);
        if !plain {
            return Err(shape(None));
        }
        migrated.state = to_json_map(&state, "state", &|_| Ok(())).map_err(|e| returned("a state value", e))?;
        Ok(migrated)
    }
}

/// Whether `prototype` is `Object.prototype` or null: the prototype of a plain object.
fn is_plain_prototype(prototype: &JsValue) -> bool {
    let object_prototype: JsValue = Object::get_prototype_of(&Object::new().into()).into();
    prototype.is_null() || *prototype == object_prototype
}
