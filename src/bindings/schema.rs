//! The `schema` store option: the application's migrations, called with each agent's data as
//! frozen JSON values and read back as JSON text (a throw or a non-JSON result is a failure).

use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::bindings::convert::{to_json, to_json_map, Options};
use crate::bindings::errors::JsResult;
use crate::bindings::host::{array_items, freeze};
use crate::bindings::reads::{json_array, state_object};
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
        let output = function
            .call1(&JsValue::UNDEFINED, &freeze(&input.into()))
            .map_err(|cause| failure(format!("schema.migrate[{to}] threw"), Some(cause)))?;
        let returned = |what: &str, cause: JsValue| {
            failure(format!("schema.migrate[{to}] returned {what} that is not JSON"), Some(cause))
        };
        let messages: Array =
            Reflect::get(&output, &"messages".into()).ok().and_then(|messages| messages.dyn_into().ok()).ok_or_else(
                || failure(format!("schema.migrate[{to}] must return {{ messages: [...], state: {{...}} }}"), None),
            )?;
        let messages = array_items(&messages, "messages").map_err(|cause| {
            failure(format!("schema.migrate[{to}] returned messages that could not be read"), Some(cause))
        })?;
        let mut migrated = AgentState::default();
        for (index, message) in messages.iter().enumerate() {
            migrated
                .messages
                .push(to_json(&message, &format!("messages[{index}]")).map_err(|e| returned("a message", e))?);
        }
        let state = Reflect::get(&output, &"state".into()).unwrap_or(JsValue::UNDEFINED);
        if !state.is_object() {
            return Err(failure(
                format!("schema.migrate[{to}] must return {{ messages: [...], state: {{...}} }}"),
                None,
            ));
        }
        migrated.state = to_json_map(&state, "state").map_err(|e| returned("a state value", e))?;
        Ok(migrated)
    }
}
