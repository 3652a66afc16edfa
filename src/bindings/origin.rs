//! What ties a store to the other stores over the same backend, so that their commits reach its
//! `onChange` and its cached views: for IndexedDB the BroadcastChannel that carries commits between
//! the realms of the origin (the Web Lock that says the store instance is alive is the host's
//! `Env::hold_alive`, asked for before its first lease); for a HostKv the other stores of this realm
//! over the same HostKv object (a KV host has no channel between realms).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::bindings::host::{
    close_channel, close_realm_channel, open_channel, open_realm_channel, post_change, post_realm_change,
};
use crate::bindings::spawn;
use crate::caught;
use crate::core::Status;
use crate::engine::{Change, SessionStore};

pub struct OriginLink {
    reach: Reach,
    /// This store's member of the channel; for a HostKv, undefined until something listens.
    member: Rc<RefCell<JsValue>>,
    /// Left for good (`store.close()`): a listener added since does not join again.
    closed: Cell<bool>,
    on_message: Closure<dyn FnMut(JsValue)>,
}

enum Reach {
    /// The BroadcastChannel of an IndexedDB store, joined at once: its views must catch up.
    Origin,
    /// The stores of this realm over this HostKv object and prefix, joined at the first listener.
    Realm { kv: JsValue, prefix: String },
}

thread_local! {
    /// How many HostKv stores of this realm listen (joined their realm channel): while none does, a
    /// commit tells nobody, without a call out of the wasm.
    static REALM_LISTENERS: Cell<usize> = const { Cell::new(0) };
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
    /// The link's callback: other stores' changes go to `store`'s inbox, in order.
    fn receiver(store: &SessionStore) -> Closure<dyn FnMut(JsValue)> {
        let receiver = store.clone();
        let inbox: Rc<Inbox> = Rc::default();
        Closure::<dyn FnMut(JsValue)>::new(move |message: JsValue| {
            if let Some(change) = change_of(&message) {
                inbox.push(&receiver, change);
            }
        })
    }

    /// Joins the channel `<prefix without />` of an IndexedDB store.
    pub fn connect(store: &SessionStore, prefix: &str) -> OriginLink {
        let on_message = Self::receiver(store);
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
        OriginLink {
            reach: Reach::Origin,
            member: Rc::new(RefCell::new(channel)),
            closed: Cell::new(false),
            on_message,
        }
    }

    /// Links a store over a HostKv to the realm's other stores over `kv` and `prefix`: its commits
    /// reach those that listen; it hears theirs once [`OriginLink::listen`] is called.
    pub fn connect_realm(store: &SessionStore, kv: JsValue, prefix: String) -> OriginLink {
        let member: Rc<RefCell<JsValue>> = Rc::new(RefCell::new(JsValue::UNDEFINED));
        let (sender, from, key) = (kv.clone(), member.clone(), prefix.clone());
        store.on_change(Rc::new(move |change: &Change| {
            if change.remote || REALM_LISTENERS.get() == 0 {
                return;
            }
            post_realm_change(
                &sender,
                &key,
                &from.borrow(),
                &change.id,
                change.version as f64,
                change.status.as_str(),
                change.token.map(|t| t as f64),
            );
        }));
        OriginLink {
            reach: Reach::Realm { kv, prefix },
            member,
            closed: Cell::new(false),
            on_message: Self::receiver(store),
        }
    }

    /// Something listens to this store (its `onChange` or a session's): a HostKv store joins its realm
    /// channel now. (An IndexedDB store joined at once.)
    pub fn listen(&self) {
        let Reach::Realm { kv, prefix } = &self.reach else { return };
        let mut member = self.member.borrow_mut();
        if member.is_undefined() && !self.closed.get() {
            *member = open_realm_channel(kv, prefix, self.on_message.as_ref().unchecked_ref());
            REALM_LISTENERS.set(REALM_LISTENERS.get() + 1);
        }
    }

    pub fn close(&self) {
        self.closed.set(true);
        let member = self.member.replace(JsValue::UNDEFINED);
        match &self.reach {
            Reach::Origin => close_channel(&member),
            Reach::Realm { .. } if !member.is_undefined() => {
                close_realm_channel(&member);
                REALM_LISTENERS.set(REALM_LISTENERS.get() - 1);
            }
            Reach::Realm { .. } => {}
        }
    }
}

/// A store collected without `close()`, once its sessions and invocations are collected too, leaves the
/// channel: its callback goes with it, and the realm's other stores must not meet it (js/web.js also
/// drops a member whose callback throws).
impl Drop for OriginLink {
    fn drop(&mut self) {
        self.close();
    }
}
