//! `session.export()` and `store.import()`: the export's JSON form in and out. Every shape check
//! names the path; the engine checks order, versions and limits, and writes nothing on a refusal.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::bindings::convert::{to_count, to_json_at, to_json_map, to_name, to_text, Options};
use crate::bindings::errors::{invalid, JsResult};
use crate::bindings::host::{array_items, thawed};
use crate::bindings::promise;
use crate::bindings::reads::parse;
use crate::bindings::session::{history_object, JsSession};
use crate::bindings::store::JsSessionStore;
use crate::caught;
use crate::core::limits::Limits;
use crate::core::{CoreError, Event, Json, Status, TurnOutcome, DEFAULT_AGENT};
use crate::engine::{HistoryEvent, ImportTtls, SessionExport};

/// The `format` of every export this build writes and reads.
const FORMAT: &str = "agent-session.export/1";

fn set(object: &Object, key: &str, value: JsValue) -> JsResult<()> {
    Reflect::set(object, &JsValue::from_str(key), &value).map(|_| ())
}

fn export_object(export: &SessionExport) -> JsResult<JsValue> {
    let object = Object::new();
    set(&object, "format", FORMAT.into())?;
    set(&object, "id", export.id.as_str().into())?;
    set(&object, "version", (export.version as f64).into())?;
    set(&object, "status", export.status.as_str().into())?;
    set(&object, "createdAt", (export.created_at as f64).into())?;
    set(&object, "updatedAt", (export.updated_at as f64).into())?;
    set(&object, "expiresAt", export.expires_at.map_or(JsValue::NULL, |at| (at as f64).into()))?;
    set(&object, "metadata", export.metadata.as_deref().map_or(Ok(JsValue::NULL), parse)?)?;
    set(&object, "schema", (export.schema as f64).into())?;
    if let Some(retained) = export.retained {
        set(&object, "retained", (retained as f64).into())?;
    }
    let events_array = |events: &[HistoryEvent]| -> JsResult<JsValue> {
        let array = Array::new();
        for event in events {
            array.push(&history_object(event, export.metadata.as_deref())?);
        }
        Ok(array.into())
    };
    if let Some(base) = &export.base {
        set(&object, "base", events_array(base)?)?;
    }
    set(&object, "events", events_array(&export.events)?)?;
    // The events are built as history() builds them, frozen; the export is the caller's to edit.
    Ok(thawed(&object.into()))
}

/// Reads the fields of one object at `path`.
struct Fields {
    object: JsValue,
    path: String,
}

impl Fields {
    fn new(value: JsValue, path: String) -> JsResult<Fields> {
        if !value.is_object() || Array::is_array(&value) {
            return Err(invalid(&path, format!("{path} must be an object")));
        }
        Ok(Fields { object: value, path })
    }

    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&self, key: &str) -> JsResult<Option<JsValue>> {
        let value = caught::get(&self.object, &key.into())
            .map_err(|_| invalid(&self.path(key), format!("{} could not be read", self.path(key))))?;
        Ok((!value.is_undefined()).then_some(value))
    }

    fn need(&self, key: &str) -> JsResult<JsValue> {
        self.get(key)?.ok_or_else(|| invalid(&self.path(key), format!("{} is missing", self.path(key))))
    }

    fn count(&self, key: &str) -> JsResult<u64> {
        to_count(&self.need(key)?, &self.path(key))
    }

    fn text(&self, key: &str) -> JsResult<String> {
        to_text(&self.need(key)?, &self.path(key))
    }

    /// The JSON text of `key`, refused before its copy into wasm memory when over the size limit
    /// `fits` checks (the error names the field's path, as the engine's check of the import does).
    fn json_within(&self, key: &str, fits: &dyn Fn(usize) -> Result<(), CoreError>) -> JsResult<Json> {
        to_json_at(&self.need(key)?, &self.path(key), &|n| Ok(fits(n)?))
    }

    fn agent(&self) -> JsResult<String> {
        match self.get("agent")? {
            Some(agent) => to_name(&agent, &self.path("agent")),
            None => Ok(DEFAULT_AGENT.to_owned()),
        }
    }

    /// The array `key`, its elements read into a plain array (see host::array_items).
    fn array(&self, key: &str) -> JsResult<Array> {
        let array: Array = self
            .need(key)?
            .dyn_into()
            .map_err(|_| invalid(&self.path(key), format!("{} must be an array", self.path(key))))?;
        array_items(&array, &self.path(key))
    }

    /// The array `key` as JSON texts, each refused before its copy when it alone is over a commit.
    fn json_list(&self, key: &str, limits: &Limits) -> JsResult<Vec<Json>> {
        let path = self.path(key);
        let fits = |n| Ok(limits.check_commit(n)?);
        self.array(key)?.iter().enumerate().map(|(i, v)| to_json_at(&v, &format!("{path}[{i}]"), &fits)).collect()
    }
}

fn status_of(name: &str, path: &str) -> JsResult<Status> {
    [Status::Idle, Status::Running, Status::Interrupted, Status::Closed, Status::Expired]
        .into_iter()
        .find(|status| status.as_str() == name)
        .ok_or_else(|| invalid(path, format!("{path} is not a status: \"{name}\"")))
}

fn event_of(value: JsValue, path: String, limits: &Limits) -> JsResult<HistoryEvent> {
    let fields = Fields::new(value, path)?;
    let kind = fields.text("type")?;
    let event = match kind.as_str() {
        "created" => None,
        "message" => Some(Event::Message {
            agent: fields.agent()?,
            data: fields.json_within("data", &|n| limits.check_message(n))?,
        }),
        "state.set" => Some(Event::StateSet {
            agent: fields.agent()?,
            key: to_name(&fields.need("key")?, &fields.path("key"))?,
            data: fields.json_within("data", &|n| limits.check_state_value(n))?,
        }),
        "state.delete" => Some(Event::StateDelete {
            agent: fields.agent()?,
            key: to_name(&fields.need("key")?, &fields.path("key"))?,
        }),
        // An interrupt's payload or a resume's answer alone over a commit is refused before its copy.
        "interrupt" => Some(Event::Interrupt {
            reason: fields.text("reason")?,
            data: fields.json_within("data", &|n| limits.check_commit(n))?,
        }),
        "resume" => Some(Event::Resume { data: fields.json_within("data", &|n| limits.check_commit(n))? }),
        "closed" => Some(Event::Closed),
        "forked" => {
            let data = Fields::new(fields.need("data")?, fields.path("data"))?;
            Some(Event::forked(&to_name(&data.need("from")?, &data.path("from"))?, data.count("version")?))
        }
        "stopped" => {
            let data = Fields::new(fields.need("data")?, fields.path("data"))?;
            let outcome = match data.text("outcome")?.as_str() {
                "stopped" => TurnOutcome::Stopped,
                "fenced" => TurnOutcome::Fenced,
                other => {
                    return Err(invalid(
                        &data.path("outcome"),
                        format!("{} is not \"stopped\" or \"fenced\": \"{other}\"", data.path("outcome")),
                    ))
                }
            };
            Some(Event::Stopped { reason: fields.text("reason")?, by: data.text("by")?, outcome })
        }
        "compacted" => Some(Event::Compacted {
            agent: fields.agent()?,
            before: fields.count("before")?,
            summary: fields.json_list("data", limits)?,
        }),
        "migrated" => {
            let data = Fields::new(fields.need("data")?, fields.path("data"))?;
            let state = Fields::new(data.need("state")?, data.path("state"))?;
            let values = to_json_map(&state.object, &state.path, &|n| Ok(limits.check_commit(n)?))?;
            Some(Event::Migrated {
                agent: fields.agent()?,
                from: data.count("from")?,
                to: data.count("to")?,
                messages: data.json_list("messages", limits)?,
                state: values,
            })
        }
        other => {
            return Err(invalid(
                &fields.path("type"),
                format!("{} is not an event type: \"{other}\"", fields.path("type")),
            ))
        }
    };
    let traceparent = match fields.get("traceparent")? {
        Some(value) => Some(to_text(&value, &fields.path("traceparent"))?),
        None => None,
    };
    let invocation = match fields.get("invocation")? {
        Some(value) => to_text(&value, &fields.path("invocation"))?,
        None => String::new(),
    };
    Ok(HistoryEvent { version: fields.count("version")?, at: fields.count("at")?, invocation, traceparent, event })
}

/// The export `value`, each message, state value and the metadata refused before its copy into wasm
/// memory when over `limits` (the engine's import checks them again, with everything else).
fn export_of(value: JsValue, limits: &Limits) -> JsResult<SessionExport> {
    let fields = Fields::new(value, "data".into())?;
    let format = fields.text("format")?;
    if format != FORMAT {
        return Err(invalid("data.format", format!("data.format is \"{format}\"; this build reads \"{FORMAT}\"")));
    }
    let metadata = match fields.get("metadata")? {
        None => None,
        Some(value) if value.is_null() => None,
        Some(_) => Some(fields.json_within("metadata", &|n| limits.check_metadata(n))?),
    };
    let expires_at = match fields.get("expiresAt")? {
        None => None,
        Some(value) if value.is_null() => None,
        Some(value) => Some(to_count(&value, "data.expiresAt")?),
    };
    let schema = match fields.get("schema")? {
        Some(value) => to_count(&value, "data.schema")?,
        None => 0,
    };
    let retained = match fields.get("retained")? {
        Some(value) => Some(to_count(&value, "data.retained")?),
        None => None,
    };
    let events_at = |key: &str| -> JsResult<Vec<HistoryEvent>> {
        let path = fields.path(key);
        let events = fields.array(key)?;
        events.iter().enumerate().map(|(index, event)| event_of(event, format!("{path}[{index}]"), limits)).collect()
    };
    let base = match fields.get("base")? {
        Some(_) => Some(events_at("base")?),
        None => None,
    };
    let events = events_at("events")?;
    Ok(SessionExport {
        id: to_name(&fields.need("id")?, "data.id")?,
        version: fields.count("version")?,
        status: status_of(&fields.text("status")?, "data.status")?,
        created_at: fields.count("createdAt")?,
        updated_at: fields.count("updatedAt")?,
        expires_at,
        metadata,
        schema,
        retained,
        base,
        events,
    })
}

#[wasm_bindgen(js_class = Session)]
impl JsSession {
    /// The session's retained history and facts as plain JSON (`agent-session.export/1`).
    pub fn export(&self) -> js_sys::Promise {
        let session = self.inner.clone();
        promise(async move { export_object(&session.export().await?) })
    }
}

#[wasm_bindgen(js_class = SessionStore)]
impl JsSessionStore {
    /// Writes an export as a new session (under `options.id` when given).
    pub fn import(&self, data: JsValue, options: JsValue) -> js_sys::Promise {
        let store = self.inner.clone();
        let link = self.link.clone();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["id", "idleTtlMs", "maxLifetimeMs"])?;
            let id = options.name("id")?;
            let ttls = ImportTtls {
                idle_ttl_ms: options.positive("idleTtlMs")?,
                max_lifetime_ms: options.positive("maxLifetimeMs")?,
            };
            let given = ttls.idle_ttl_ms.is_some() || ttls.max_lifetime_ms.is_some();
            let export = export_of(data, &store.config().limits)?;
            crate::bindings::heap_room()?;
            let session = store.import(export, id, given.then_some(ttls)).await?;
            Ok(JsSession::new(session, store, link).into())
        })
    }
}

/// Sessions listed at a time by `store.export()`.
const EXPORT_PAGE: usize = 100;

/// The reader behind `store.export()` (js/api.js makes it an async iterator): one session at a
/// time (`SessionStore::export_session`).
#[wasm_bindgen(js_name = StoreExporter)]
pub struct JsStoreExporter {
    state: std::rc::Rc<std::cell::RefCell<ExporterState>>,
}

struct ExporterState {
    store: crate::engine::SessionStore,
    prefix: String,
    cursor: Option<String>,
    pending: std::collections::VecDeque<String>,
    done: bool,
}

#[wasm_bindgen(js_class = StoreExporter)]
impl JsStoreExporter {
    /// The next session's export, or `null` once every session was exported.
    pub fn next(&self) -> js_sys::Promise {
        let state = self.state.clone();
        promise(async move {
            loop {
                let next = state.borrow_mut().pending.pop_front();
                if let Some(id) = next {
                    let store = state.borrow().store.clone();
                    match store.export_session(&id).await? {
                        Some(exported) => return export_object(&exported),
                        None => continue, // deleted since it was listed
                    }
                }
                let (store, prefix, cursor, done) = {
                    let state = state.borrow();
                    (state.store.clone(), state.prefix.clone(), state.cursor.clone(), state.done)
                };
                if done {
                    return Ok(JsValue::NULL);
                }
                let (ids, cursor) = store.list_ids(&prefix, cursor.as_deref(), EXPORT_PAGE).await?;
                let mut state = state.borrow_mut();
                state.pending.extend(ids);
                state.done = cursor.is_none();
                state.cursor = cursor;
            }
        })
    }
}

#[wasm_bindgen(js_class = SessionStore)]
impl JsSessionStore {
    /// The reader behind `store.export({ prefix })`; validates the options now.
    pub fn export(&self, options: JsValue) -> JsResult<JsStoreExporter> {
        let options = Options::new(&options, "options")?;
        options.only(&["prefix"])?;
        let prefix = options.string("prefix")?.unwrap_or_default();
        crate::bindings::heap_room()?;
        let state = ExporterState {
            store: self.inner.clone(),
            prefix,
            cursor: None,
            pending: std::collections::VecDeque::new(),
            done: false,
        };
        Ok(JsStoreExporter { state: std::rc::Rc::new(std::cell::RefCell::new(state)) })
    }
}
