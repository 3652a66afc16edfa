//! `Invocation`: staging, read-your-writes and the ways out (commit, checkpoint, interrupt, abort),
//! plus the heartbeat that renews the lease while it is open.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;

use crate::bindings::convert::{agent_option, to_count, to_json_within, to_name, to_text, Options};
use crate::bindings::errors::stop_requested;
use crate::bindings::errors::{self, invalid, JsResult};
use crate::bindings::host::{array_items, freeze, new_abort_controller, start_interval, stop_interval};
use crate::bindings::promise;
use crate::bindings::reads::{json_array, parse, session_messages, state_object};
use crate::bindings::session::JsSession;
use crate::bindings::spawn;
use crate::engine::{Invocation, Signal};
use crate::store::LocalBoxFuture;

/// The invocation's `signal`: the AbortController (made when `signal` is first read), the drop-ins'
/// stop callbacks (`onStop`), and the reason they are told once the engine has fired.
#[derive(Default)]
struct SignalState {
    controller: RefCell<Option<JsValue>>,
    /// Called once with the reason of a stop or a lost lease; never at the end of the invocation.
    on_stop: RefCell<Vec<Function>>,
    /// `Some(reason)` once fired (one shared AbortError for the end of the invocation).
    reason: RefCell<Option<JsValue>>,
    /// Fired because the invocation ended, not because of a stop or a lost lease.
    ended: Cell<bool>,
    /// The stop watch was started (by the first read of `signal` or the first `onStop`).
    watching: Cell<bool>,
}

impl SignalState {
    fn fire(&self, why: &Signal) {
        let reason = signal_reason(why);
        self.ended.set(matches!(why, Signal::Ended));
        *self.reason.borrow_mut() = Some(reason);
        self.abort();
        let callbacks = self.on_stop.take();
        if !self.ended.get() {
            for callback in &callbacks {
                self.tell(callback);
            }
        }
    }

    fn abort(&self) {
        let (Some(controller), Some(reason)) = (&*self.controller.borrow(), &*self.reason.borrow()) else { return };
        if let Ok(abort) = crate::caught::get(controller, &"abort".into()) {
            if let Ok(abort) = abort.dyn_into::<Function>() {
                let _ = crate::caught::call1(&abort, controller, reason);
            }
        }
    }

    /// Calls `callback(reason)`; what it throws stays in JS (the callback is the caller's business).
    fn tell(&self, callback: &Function) {
        if let Some(reason) = &*self.reason.borrow() {
            let _ = crate::caught::call1(callback, &JsValue::UNDEFINED, reason);
        }
    }
}

fn signal_reason(signal: &Signal) -> JsValue {
    match signal {
        Signal::Stop { reason, by } => stop_requested(reason, by),
        Signal::LeaseLost { token } => crate::core::CoreError::LeaseLost { token: *token }.into(),
        Signal::Ended => crate::bindings::host::invocation_ended(),
        Signal::StoreClosed => crate::engine::EngineError::StoreClosed.into(),
    }
}

/// A running interval: its handle, and the closure it calls (kept alive until stopped).
type Timer = (JsValue, Closure<dyn FnMut()>);

/// Renews the lease every third of its length while the invocation is open.
#[derive(Default)]
pub struct Heartbeat {
    timer: RefCell<Option<Timer>>,
}

impl Heartbeat {
    fn start(self: &Rc<Self>, invocation: Rc<Invocation>, every_ms: u64) {
        let weak = Rc::downgrade(self);
        let tick = Closure::<dyn FnMut()>::new(move || {
            if !invocation.wants_heartbeat() {
                if let Some(heartbeat) = weak.upgrade() {
                    heartbeat.stop();
                }
                return;
            }
            let invocation = invocation.clone();
            // A failed renewal is not reported here: the commit that follows reports LeaseLost. (Not
            // one at a time: a renewal that hangs until the backend's timeout would cost a live
            // holder its lease; one that lands after the lease was given up gives it back.)
            spawn(async move {
                let _ = invocation.heartbeat().await;
            });
        });
        let handle = start_interval(tick.as_ref().unchecked_ref::<Function>(), every_ms as f64);
        *self.timer.borrow_mut() = Some((handle, tick));
    }

    pub fn stop(&self) {
        if let Some((handle, _tick)) = self.timer.borrow_mut().take() {
            stop_interval(&handle);
        }
    }
}

impl Drop for Heartbeat {
    /// An invocation left open and collected by the garbage collector: its interval must not call
    /// the closure that goes with it.
    fn drop(&mut self) {
        self.stop();
    }
}

#[wasm_bindgen(js_name = Invocation)]
pub struct JsInvocation {
    inner: Rc<Invocation>,
    session: JsSession,
    heartbeat: Rc<Heartbeat>,
    signal: Rc<SignalState>,
}

impl JsInvocation {
    /// Wraps a fresh invocation and starts its heartbeat (unless the store disabled it).
    pub fn start(inner: Rc<Invocation>, session: JsSession) -> JsInvocation {
        let heartbeat = Rc::new(Heartbeat::default());
        if session.store.config().heartbeat {
            heartbeat.start(inner.clone(), inner.renew_every_ms());
        }
        let signal = Rc::new(SignalState::default());
        let fired = signal.clone();
        inner.on_signal(Box::new(move |why: &Signal| fired.fire(why)));
        JsInvocation { inner, session, heartbeat, signal }
    }

    pub fn heartbeat(&self) -> Rc<Heartbeat> {
        self.heartbeat.clone()
    }

    /// Starts watching for a stop of this turn, once, unless the signal already fired (or fires now:
    /// a stop of this store asked it already).
    fn watch(&self) {
        if self.signal.reason.borrow().is_some() || self.signal.watching.replace(true) {
            return;
        }
        if self.inner.check_stop_asked_here() {
            return;
        }
        let inner = self.inner.clone();
        spawn(async move { inner.watch_stop().await });
    }

    /// A promise of `finish` (a way out of the invocation), stopping the heartbeat once the
    /// invocation has ended. Boxed: one copy of this wrapper in the .wasm for every way out.
    fn finishing(&self, finish: LocalBoxFuture<'static, JsResult<JsValue>>) -> Promise {
        let inner = self.inner.clone();
        let heartbeat = self.heartbeat.clone();
        promise(async move {
            let result = finish.await;
            if inner.is_ended() {
                heartbeat.stop();
            }
            result
        })
    }
}

#[wasm_bindgen(js_class = Invocation)]
impl JsInvocation {
    /// `new Invocation()`: refused ([`errors::no_constructor`]).
    #[wasm_bindgen(constructor)]
    pub fn refused() -> JsResult<JsInvocation> {
        Err(errors::no_constructor("Invocation", "session.begin() and session.invoke(fn)"))
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    #[wasm_bindgen(getter)]
    pub fn token(&self) -> f64 {
        self.inner.token() as f64
    }

    #[wasm_bindgen(getter)]
    pub fn session(&self) -> JsSession {
        self.session.handle()
    }

    /// Aborts when a stop is requested (a StopRequestedError), when the lease is lost (a
    /// LeaseLostError) and when the invocation ends. The first read starts watching for stops.
    #[wasm_bindgen(getter)]
    pub fn signal(&self) -> JsValue {
        let existing = self.signal.controller.borrow().clone();
        let controller = match existing {
            Some(controller) => controller,
            None => {
                let controller = new_abort_controller();
                *self.signal.controller.borrow_mut() = Some(controller.clone());
                self.signal.abort();
                self.watch();
                controller
            }
        };
        crate::caught::get(&controller, &"signal".into()).unwrap_or(JsValue::UNDEFINED)
    }

    /// The drop-ins' stop link (js/api.js moves it to `Symbol.for("agent-session.onStop")`; not in
    /// the public types): calls `callback(reason)` once when a stop is requested or the lease is lost,
    /// at once if that already happened, and never when the invocation ends. What `signal` tells
    /// without an AbortController and its listener, which cost a Strands turn about a tenth.
    #[wasm_bindgen(js_name = onStop)]
    pub fn on_stop(&self, callback: Function) {
        if self.signal.reason.borrow().is_none() {
            self.signal.on_stop.borrow_mut().push(callback);
            self.watch();
        } else if !self.signal.ended.get() {
            self.signal.tell(&callback);
        }
    }

    /// The drop-ins' refusal of a second guard of a thread this invocation holds (js/api.js moves it
    /// to `Symbol.for("agent-session.busyRefusal")`; not in the public types): the ConcurrencyError
    /// another store's begin would get, with this lease's owner and the time until it ends.
    #[wasm_bindgen(js_name = busyRefusal)]
    pub fn busy_refusal(&self) -> JsValue {
        self.inner.busy_refusal().into()
    }

    /// Appends a part to the turn's live log; returns its seq. Flushed within `liveFlushMs`.
    pub fn emit(&self, part: JsValue) -> JsResult<f64> {
        let limits = self.inner.limits();
        let data = to_json_within(&part, "part", &JsValue::UNDEFINED, &|n| Ok(limits.check_part(n)?))?;
        let emitted = self.inner.emit(data)?;
        if let Some(delay) = emitted.flush_in {
            let inner = self.inner.clone();
            spawn(async move { inner.flush_later(delay).await });
        }
        Ok(emitted.seq as f64)
    }

    /// Resolves once every emitted part is durable and visible to followers.
    pub fn flush(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.flush_requested().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = appendMessage)]
    pub fn append_message(&self, message: JsValue, options: JsValue) -> JsResult<()> {
        let agent = agent_option(&options)?;
        let limits = self.inner.limits();
        let data = to_json_within(&message, "message", &JsValue::UNDEFINED, &|n| Ok(limits.check_message(n)?))?;
        self.inner.append_message(data, agent.as_deref()).map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = setState)]
    pub fn set_state(&self, key: JsValue, value: JsValue, options: JsValue) -> JsResult<()> {
        let agent = agent_option(&options)?;
        let name = to_name(&key, "a state key")?;
        let limits = self.inner.limits();
        let data = to_json_within(&value, "state", &key, &|n| Ok(limits.check_state_value(n)?))?;
        self.inner.set_state(&name, data, agent.as_deref()).map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = deleteState)]
    pub fn delete_state(&self, key: JsValue, options: JsValue) -> JsResult<()> {
        let agent = agent_option(&options)?;
        let key = to_name(&key, "a state key")?;
        self.inner.delete_state(&key, agent.as_deref()).map_err(JsValue::from)
    }

    /// Committed messages followed by this invocation's staged ones.
    pub fn messages(&self, options: JsValue) -> JsResult<Array> {
        let agent = agent_option(&options)?;
        let Some(staged) = self.inner.staged_messages(agent.as_deref())? else {
            // A compaction is staged: the messages as it leaves them.
            return Ok(freeze(&json_array(&self.inner.messages(agent.as_deref())?)?.into()).into());
        };
        let committed = session_messages(&self.session.inner, Some(agent.as_deref().unwrap_or(self.inner.agent())))?;
        if staged.is_empty() {
            // Nothing staged: the committed array itself, frozen and shared (no copy of the session).
            return Ok(committed);
        }
        Ok(freeze(&committed.concat(&json_array(&staged)?)).into())
    }

    pub fn state(&self, options: JsValue) -> JsResult<JsValue> {
        let agent = agent_option(&options)?;
        state_object(&self.inner.values(agent.as_deref())?)
    }

    /// One state value as this invocation sees it (staged over committed), or `undefined`.
    #[wasm_bindgen(js_name = stateValue)]
    pub fn state_value(&self, key: JsValue, options: JsValue) -> JsResult<JsValue> {
        let agent = agent_option(&options)?;
        let key = to_name(&key, "a state key")?;
        match self.inner.value(agent.as_deref(), &key)? {
            Some(text) => parse(&text),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// Stages the replacement of the agent's first `before` messages by `summary` (committed with
    /// the turn); a cut between a tool call and its result is refused unless `force`.
    pub fn compact(&self, options: JsValue) -> JsResult<()> {
        let options = Options::new(&options, "options")?;
        options.only(&["before", "summary", "agent", "force"])?;
        let missing = |key: &str| invalid(key, format!("compact() needs options.{key}"));
        // Named `before`, as the tool-pair refusal names it.
        let before = to_count(&options.get("before")?.ok_or_else(|| missing("before"))?, "before")?;
        let summary = options.get("summary")?.ok_or_else(|| missing("summary"))?;
        let summary: Array = summary
            .dyn_into()
            .map_err(|_| invalid("summary", "options.summary must be an array of messages".into()))?;
        let summary = array_items(&summary, "summary")?;
        let limits = self.inner.limits();
        let mut messages = Vec::with_capacity(summary.length() as usize);
        for (index, message) in summary.iter().enumerate() {
            let path = format!("summary[{index}]");
            messages.push(to_json_within(&message, &path, &JsValue::UNDEFINED, &|n| Ok(limits.check_message(n)?))?);
        }
        let agent = options.name("agent")?;
        let force = options.bool("force")?.unwrap_or(false);
        Ok(self.inner.compact(before, messages, agent.as_deref(), force)?)
    }

    pub fn renew(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.renew().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    // The engine's commit and checkpoint are called here, not when the promise's task first runs:
    // their first step (telling the store the head's write follows) belongs to the call.
    pub fn checkpoint(&self) -> Promise {
        let checkpoint = self.inner.checkpoint();
        self.finishing(Box::pin(async move { Ok((checkpoint.await? as f64).into()) }))
    }

    pub fn commit(&self) -> Promise {
        let commit = self.inner.commit();
        self.finishing(Box::pin(async move { Ok((commit.await? as f64).into()) }))
    }

    /// `abort()`; js/api.js passes `at_checkpoint` true only for the drop-ins' end of a turn that
    /// succeeded at its last checkpoint (engine `end_at_checkpoint`), and false for the public method.
    pub fn abort(&self, at_checkpoint: bool) -> Promise {
        let way_out = self.inner.way_out("abort");
        let inner = self.inner.clone();
        self.finishing(Box::pin(async move {
            let _settling = way_out?;
            inner.end_uncommitted(at_checkpoint).await?;
            Ok(JsValue::UNDEFINED)
        }))
    }

    pub fn interrupt(&self, reason: JsValue, payload: JsValue) -> Promise {
        let way_out = self.inner.way_out("interrupt");
        let inner = self.inner.clone();
        self.finishing(Box::pin(async move {
            let _settling = way_out?;
            let reason = to_text(&reason, "reason")?;
            // Refused before its copy into wasm memory when it alone is over the commit it ends.
            let limits = inner.limits();
            let payload = if payload.is_undefined() {
                None
            } else {
                Some(to_json_within(&payload, "payload", &JsValue::UNDEFINED, &|n| Ok(limits.check_commit(n)?))?)
            };
            Ok((inner.interrupt(reason, payload).await? as f64).into())
        }))
    }

    /// `[Symbol.asyncDispose]` (wired in js/api.js): aborts an open invocation, else does nothing.
    pub fn dispose(&self) -> Promise {
        let inner = self.inner.clone();
        self.finishing(Box::pin(async move {
            inner.dispose().await?;
            Ok(JsValue::UNDEFINED)
        }))
    }
}
