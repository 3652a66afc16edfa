//! `Session`: getters and reads of the cached view, and the ways into the guard.

use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::bindings::convert::{agent_option, to_count, to_name, Options};
use crate::bindings::errors::{self, invalid, JsResult};
use crate::bindings::host::freeze;
use crate::bindings::invocation::JsInvocation;
use crate::bindings::origin::OriginLink;
use crate::bindings::promise;
use crate::bindings::reads::{json_array, parse, session_messages, session_state, state_object};
use crate::bindings::store::change_object;
use crate::bindings::view::JsSessionView;
use crate::core::limits::Limits;
use crate::core::TurnOutcome;
use crate::engine::{BeginOptions, Change, HistoryEvent, InvokeError, Session, SessionStore};

#[wasm_bindgen(js_name = Session)]
pub struct JsSession {
    pub(crate) inner: Rc<Session>,
    pub(crate) store: SessionStore,
    /// The store's tie to the other stores over its backend (IndexedDB: other realms; HostKv: this realm): kept while any handle of its sessions or
    /// invocations is, so that a session whose store object was dropped still hears their commits.
    pub(crate) link: Option<Rc<OriginLink>>,
}

impl JsSession {
    pub fn new(inner: Rc<Session>, store: SessionStore, link: Option<Rc<OriginLink>>) -> JsSession {
        JsSession { inner, store, link }
    }

    /// Another handle on the same session (what `invocation.session` returns).
    pub fn handle(&self) -> JsSession {
        JsSession { inner: self.inner.clone(), store: self.store.clone(), link: self.link.clone() }
    }
}

/// `limits`: a `resume` answer is refused before it is copied into wasm memory when it alone would
/// exceed the commit it is staged into.
fn begin_options(value: &JsValue, limits: &Limits) -> JsResult<BeginOptions> {
    let options = Options::new(value, "options")?;
    options.only(&["agent", "resume", "onBusy", "traceparent"])?;
    let wait_ms = match options.get("onBusy")? {
        None => None,
        Some(v) if v.as_string().as_deref() == Some("reject") => None,
        Some(v) if v.is_string() => {
            return Err(invalid("options.onBusy", "options.onBusy must be \"reject\" or { waitMs: number }".into()))
        }
        Some(v) => {
            let busy = Options::new(&v, "options.onBusy")?;
            busy.only(&["waitMs"])?;
            match busy.count("waitMs")? {
                Some(ms) => Some(ms),
                None => {
                    return Err(invalid(
                        "options.onBusy",
                        "options.onBusy must be \"reject\" or { waitMs: number }".into(),
                    ))
                }
            }
        }
    };
    Ok(BeginOptions {
        agent: options.name("agent")?,
        resume: options.json_within("resume", &|n| Ok(limits.check_commit(n)?))?,
        wait_ms,
        traceparent: options.string("traceparent")?,
    })
}

fn version_option(options: &Options, key: &str) -> JsResult<Option<u64>> {
    options.get(key)?.map(|v| to_count(&v, &options.path(key))).transpose()
}

pub(crate) fn history_object(event: &HistoryEvent, metadata: Option<&str>) -> JsResult<JsValue> {
    let object = Object::new();
    let set = |key: &str, value: JsValue| -> JsResult<()> {
        if !value.is_undefined() {
            Reflect::set(&object, &JsValue::from_str(key), &value)?;
        }
        Ok(())
    };
    set("version", (event.version as f64).into())?;
    set("at", (event.at as f64).into())?;
    set("invocation", event.invocation.as_str().into())?;
    use crate::core::Event;
    match &event.event {
        None => {
            set("type", "created".into())?;
            if let Some(metadata) = metadata {
                set("data", parse(metadata)?)?;
            }
        }
        Some(inner) => {
            set("type", inner.type_name().into())?;
            if let Some(agent) = inner.agent() {
                set("agent", agent.into())?;
            }
            match inner {
                Event::Message { data, .. } | Event::Resume { data } | Event::Forked { data } => {
                    set("data", parse(data)?)?
                }
                Event::StateSet { key, data, .. } => {
                    set("key", key.as_str().into())?;
                    set("data", parse(data)?)?;
                }
                Event::StateDelete { key, .. } => set("key", key.as_str().into())?,
                Event::Interrupt { reason, data } => {
                    set("reason", reason.as_str().into())?;
                    set("data", parse(data)?)?;
                }
                Event::Closed => {}
                Event::Migrated { from, to, messages, state, .. } => {
                    let data = Object::new();
                    Reflect::set(&data, &"from".into(), &(*from as f64).into())?;
                    Reflect::set(&data, &"to".into(), &(*to as f64).into())?;
                    Reflect::set(&data, &"messages".into(), &freeze(&json_array(messages)?.into()))?;
                    Reflect::set(&data, &"state".into(), &state_object(state)?)?;
                    set("data", freeze(&data))?;
                }
                Event::Compacted { before, summary, .. } => {
                    set("before", (*before as f64).into())?;
                    set("data", freeze(&json_array(summary)?.into()))?;
                }
                Event::Stopped { reason, by, outcome } => {
                    set("reason", reason.as_str().into())?;
                    let outcome = if *outcome == TurnOutcome::Fenced { "fenced" } else { "stopped" };
                    let data = Object::new();
                    Reflect::set(&data, &"by".into(), &by.as_str().into())?;
                    Reflect::set(&data, &"outcome".into(), &outcome.into())?;
                    set("data", freeze(&data))?;
                }
            }
        }
    }
    if let Some(traceparent) = &event.traceparent {
        set("traceparent", traceparent.as_str().into())?;
    }
    Ok(freeze(&object))
}

#[wasm_bindgen(js_class = Session)]
impl JsSession {
    /// `new Session()`: refused ([`errors::no_constructor`]).
    #[wasm_bindgen(constructor)]
    pub fn refused() -> JsResult<JsSession> {
        Err(errors::no_constructor("Session", "store.open(id), session.fork() and store.import(data)"))
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.inner.version() as f64
    }

    #[wasm_bindgen(getter)]
    pub fn status(&self) -> String {
        self.inner.status().as_str().to_owned()
    }

    #[wasm_bindgen(getter, js_name = createdAt)]
    pub fn created_at(&self) -> f64 {
        self.inner.times().0 as f64
    }

    #[wasm_bindgen(getter, js_name = updatedAt)]
    pub fn updated_at(&self) -> f64 {
        self.inner.times().1 as f64
    }

    #[wasm_bindgen(getter, js_name = expiresAt)]
    pub fn expires_at(&self) -> JsValue {
        self.inner.times().2.map_or(JsValue::NULL, |at| JsValue::from_f64(at as f64))
    }

    pub fn messages(&self, options: JsValue) -> JsResult<Array> {
        let agent = agent_option(&options)?;
        session_messages(&self.inner, agent.as_deref())
    }

    pub fn state(&self, options: JsValue) -> JsResult<JsValue> {
        let agent = agent_option(&options)?;
        session_state(&self.inner, agent.as_deref())
    }

    /// One committed state value (frozen), or `undefined`: no copy of the agent's other values.
    #[wasm_bindgen(js_name = stateValue)]
    pub fn state_value(&self, key: JsValue, options: JsValue) -> JsResult<JsValue> {
        let key = to_name(&key, "a state key")?;
        let agent = agent_option(&options)?;
        match self.inner.value(agent.as_deref(), &key)? {
            Some(text) => parse(&text),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    #[wasm_bindgen(js_name = pendingInterrupt)]
    pub fn pending_interrupt(&self) -> JsResult<JsValue> {
        let Some(interrupt) = self.inner.pending_interrupt() else { return Ok(JsValue::NULL) };
        let object = Object::new();
        Reflect::set(&object, &"reason".into(), &interrupt.reason.as_str().into())?;
        Reflect::set(&object, &"payload".into(), &parse(&interrupt.payload)?)?;
        Ok(freeze(&object))
    }

    /// Reloads the latest committed version; js/api.js makes it resolve to this same object.
    #[wasm_bindgen(js_name = refreshView)]
    pub fn refresh_view(&self) -> Promise {
        let session = self.inner.clone();
        promise(async move {
            session.refresh().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn begin(&self, options: JsValue) -> Promise {
        let handle = self.handle();
        // The engine's begin is called here, not when the promise's task first runs: its first step
        // (telling the store the lease's write follows) belongs to the call.
        let begun = begin_options(&options, &handle.store.config().limits).and_then(|options| {
            crate::bindings::heap_room()?;
            Ok(handle.inner.begin(options))
        });
        promise(async move {
            let invocation = begun?.await?;
            Ok(JsInvocation::start(invocation, handle).into())
        })
    }

    /// Begins, calls `fn(invocation)`, commits; aborts and rethrows when `fn` throws or rejects.
    pub fn invoke(&self, body: JsValue, options: JsValue) -> Promise {
        let handle = self.handle();
        promise(async move {
            let body: Function = body.dyn_into().map_err(|_| invalid("fn", "invoke(fn) needs a function".into()))?;
            let options = begin_options(&options, &handle.store.config().limits)?;
            crate::bindings::heap_room()?;
            let session = handle.inner.clone();
            let outcome = session
                .invoke(options, |invocation| async move {
                    let js_invocation = JsInvocation::start(invocation, handle);
                    let heartbeat = js_invocation.heartbeat();
                    let result = match crate::caught::call1(&body, &JsValue::UNDEFINED, &js_invocation.into()) {
                        Ok(value) => JsFuture::from(Promise::resolve(&value)).await,
                        Err(error) => Err(error),
                    };
                    heartbeat.stop();
                    result
                })
                .await;
            match outcome {
                Ok(value) => Ok(value),
                Err(InvokeError::Body(error)) => Err(error),
                Err(InvokeError::Engine(error)) => Err(error.into()),
            }
        })
    }

    pub fn history(&self, options: JsValue) -> Promise {
        let session = self.inner.clone();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["from", "to"])?;
            let from = version_option(&options, "from")?;
            let to = version_option(&options, "to")?;
            let (events, metadata) = session.history_with_metadata(from, to).await?;
            let array = Array::new();
            for event in &events {
                array.push(&history_object(event, metadata.as_deref())?);
            }
            Ok(freeze(&array))
        })
    }

    pub fn at(&self, version: JsValue) -> Promise {
        let session = self.inner.clone();
        promise(async move {
            let version = to_count(&version, "version")?;
            crate::bindings::heap_room()?;
            Ok(JsSessionView::new(session.at(version).await?).into())
        })
    }

    pub fn fork(&self, options: JsValue) -> Promise {
        let handle = self.handle();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["id", "at"])?;
            let id = options.name("id")?;
            let at = version_option(&options, "at")?;
            crate::bindings::heap_room()?;
            let fork = handle.inner.fork(&handle.store, id, at).await?;
            Ok(JsSession::new(fork, handle.store.clone(), handle.link.clone()).into())
        })
    }

    /// Calls `listener({ version, status })` after each commit of this session; returns the
    /// unsubscribe function.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, listener: JsValue) -> JsResult<Function> {
        let listener: Function =
            listener.dyn_into().map_err(|_| invalid("listener", "onChange needs a function".into()))?;
        self.store.check_open()?;
        if let Some(link) = &self.link {
            link.listen();
        }
        let subscription = self.inner.on_change(Rc::new(move |change: &Change| {
            crate::caught::listener(&listener, &change_object(change, false))
        }));
        let session = self.inner.clone();
        Ok(unsubscriber(move || session.off_change(subscription)))
    }

    /// Frees this store's cached view of the session now (`Symbol.dispose`); any Session object of
    /// the id reloads it on its next async use.
    pub fn dispose(&self) {
        self.inner.dispose();
    }

    pub fn close(&self) -> Promise {
        let session = self.inner.clone();
        promise(async move {
            session.close().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Under the guard, deletes what only versions below `before` need; resolves to how many
    /// records went.
    pub fn prune(&self, options: JsValue) -> Promise {
        let session = self.inner.clone();
        promise(async move {
            let options = Options::new(&options, "options")?;
            options.only(&["before"])?;
            let before = to_count(
                &options.get("before")?.ok_or_else(|| invalid("before", "prune() needs options.before".into()))?,
                "before",
            )?;
            Ok((session.prune(before).await? as f64).into())
        })
    }
}

/// The function `onChange` returns: unsubscribes; calling it again does nothing.
pub fn unsubscriber(unsubscribe: impl Fn() + 'static) -> Function {
    Closure::<dyn Fn()>::new(unsubscribe).into_js_value().unchecked_into()
}
