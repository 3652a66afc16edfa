//! What ties a browser-shared store to the other realms of its origin: the BroadcastChannel that
//! carries commits both ways. (The Web Lock that says the store instance is alive is the host's
//! `Env::hold_alive`, asked for before its first lease.)

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::bindings::host::{close_channel, open_channel, post_change};
use crate::bindings::spawn;
use crate::caught;
use crate::core::Status;
use crate::engine::{Change, SessionStore};

pub struct OriginLink {
    channel: JsValue,
    _on_message: Closure<dyn FnMut(JsValue)>,
}

fn status_of(name: &str) -> Option<Status> {
    [Status::Idle, Status::Running, Status::Interrupted, Status::Closed, Status::Expired]
        .into_iter()
        .find(|status| status.as_str() == name)
}

/// `{ id, version, status }` from another realm, or `None` for anything else on the channel.
fn change_of(message: &JsValue) -> Option<Notice> {
    let field = |key: &str| caught::get(message, &JsValue::from_str(key)).ok();
    let count = |value: JsValue| value.as_f64().filter(|v| *v >= 0.0 && v.fract() == 0.0).map(|v| v as u64);
    let id = field("id")?.as_string()?;
    let version = count(field("version")?)?;
    let status = status_of(&field("status")?.as_string()?)?;
    // (A realm of a version before tokens sends none.)
    let token = field("token").and_then(count);
    Some((id, version, status, token))
}

/// A commit notice: session id, version, status and the commit's token.
type Notice = (String, u64, Status, Option<u64>);

/// Other realms' changes, handled one at a time in the order they arrived: handling one may read the
/// store (the view catches up), and a change that overtook the one before would fire `onChange` out of
/// order (a tab that joins hears a burst of replayed commits, then the next ones).
#[derive(Default)]
struct Inbox {
    waiting: RefCell<VecDeque<Notice>>,
    draining: Cell<bool>,
}

impl Inbox {
    fn push(self: &Rc<Self>, store: &SessionStore, change: Notice) {
        self.waiting.borrow_mut().push_back(change);
        if self.draining.replace(true) {
            return;
        }
        let (inbox, store) = (self.clone(), store.clone());
        spawn(async move {
            loop {
                let next = inbox.waiting.borrow_mut().pop_front();
                let Some((id, version, status, token)) = next else { break };
                store.handle_remote_change(id, version, status, token).await;
            }
            inbox.draining.set(false);
        });
    }
}

impl OriginLink {
    /// Joins the channel `<prefix without />`.
    pub fn connect(store: &SessionStore, prefix: &str) -> OriginLink {
        let receiver = store.clone();
        let inbox: Rc<Inbox> = Rc::default();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |message: JsValue| {
            if let Some(change) = change_of(&message) {
                inbox.push(&receiver, change);
            }
        });
        let channel = open_channel(prefix.trim_end_matches('/'), on_message.as_ref().unchecked_ref());
        let sender = channel.clone();
        store.on_change(Rc::new(move |change: &Change| {
            if change.remote {
                return;
            }
            post_change(
                &sender,
                &change.id,
                change.version as f64,
                change.status.as_str(),
                change.token.map(|t| t as f64),
            );
        }));
        OriginLink { channel, _on_message: on_message }
    }

    pub fn close(&self) {
        close_channel(&self.channel);
    }
}

/// A store collected without `close()`, once its sessions and invocations are collected too, leaves the
/// channel: its callback goes with it, and the realm's other stores must not meet it (js/web.js also
/// drops a member whose callback throws).
impl Drop for OriginLink {
    fn drop(&mut self) {
        close_channel(&self.channel);
    }
}
