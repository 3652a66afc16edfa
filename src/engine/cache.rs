//! The store's cache of session views: one shared view per session id, bounded by count, bytes and
//! idle time (least recently used first), and never by when the JS garbage collector runs.
//!
//! A [`Slot`] is the view of one session id that every `Session` object of that id shares. The cache
//! holds the slots whose state is loaded in an LRU list; evicting a slot drops its state (the
//! megabytes) at once and keeps only its head (a few hundred bytes), so a `Session` object that
//! nobody uses any more pins nothing large, whenever it is finalized. A slot with a live invocation
//! is pinned: it is never evicted while the invocation runs.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};

use crate::core::{Event, Head, SessionState, Snapshot};
use crate::store::{budget, Version};

/// Bounds of a store's cache (`StoreOptions.cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Sessions whose state is held at once.
    pub max_sessions: usize,
    /// Approximate bytes of state held at once (message and state text plus per-entry overhead).
    pub max_bytes: u64,
    /// A session not used for this long is dropped from the cache.
    pub ttl_ms: u64,
}

impl Default for CacheLimits {
    /// 1000 sessions, 64 MiB, 10 minutes: a busy server's working set, a small share of a wasm
    /// instance's 4 GiB, and long enough that a conversation's next turn finds its view.
    fn default() -> Self {
        CacheLimits { max_sessions: 1000, max_bytes: 64 << 20, ttl_ms: 10 * 60 * 1000 }
    }
}

/// Bytes an entry of a folded state costs beside its text (an `Rc<str>` header and its place in a
/// vector or map), so that many tiny messages are not counted as free.
const ENTRY_OVERHEAD: u64 = 48;

/// Approximate bytes `state` holds in memory.
pub(crate) fn state_bytes(state: &SessionState) -> u64 {
    state
        .agents
        .iter()
        .map(|(agent, held)| entry(agent.len()) + messages_bytes(&held.messages) + values_bytes(&held.state))
        .sum()
}

/// What one entry of `text` bytes counts: the text and its overhead.
fn entry(text: usize) -> u64 {
    text as u64 + ENTRY_OVERHEAD
}

fn messages_bytes(messages: &[crate::core::Json]) -> u64 {
    messages.iter().map(|message| entry(message.len())).sum()
}

fn values_bytes(values: &BTreeMap<String, crate::core::Json>) -> u64 {
    values.iter().map(|(key, value)| entry(key.len() + value.len())).sum()
}

/// Applies `events` to `state` and returns the bytes they added and the bytes they took away, as
/// [`state_bytes`] counts them: a replaced or deleted state value and compacted messages are taken
/// off (counted once when set, they had made a hot session's count grow with every write, until
/// its neighbours were evicted and the instance's memory budget refused every store).
pub(crate) fn apply_counted(state: &mut SessionState, events: &[Event]) -> (u64, u64) {
    let (mut added, mut removed) = (0, 0);
    for event in events {
        let agent = event.agent().and_then(|agent| state.agents.get(agent).map(|held| (agent, held)));
        match (event, agent) {
            (Event::StateSet { key, .. } | Event::StateDelete { key, .. }, Some((_, held))) => {
                removed += held.state.get(key).map_or(0, |old| entry(key.len() + old.len()));
            }
            (Event::Compacted { before, .. }, Some((_, held))) => {
                let cut = (*before).min(held.messages.len() as u64) as usize;
                removed += messages_bytes(&held.messages[..cut]);
            }
            (Event::Migrated { .. }, Some((_, held))) => {
                removed += messages_bytes(&held.messages) + values_bytes(&held.state);
            }
            _ => {}
        }
        added += match event {
            Event::Message { data, .. } => entry(data.len()),
            Event::StateSet { key, data, .. } => entry(key.len() + data.len()),
            Event::Compacted { summary, .. } => messages_bytes(summary),
            Event::Migrated { messages, state, .. } => messages_bytes(messages) + values_bytes(state),
            _ => 0,
        };
        // An agent's first data brings its entry (the state keeps every agent that wrote).
        if let Some(agent) = event.agent().filter(|agent| !state.agents.contains_key(*agent)) {
            if matches!(
                event,
                Event::Message { .. } | Event::StateSet { .. } | Event::Compacted { .. } | Event::Migrated { .. }
            ) {
                added += entry(agent.len());
            }
        }
        state.apply(event);
    }
    (added, removed)
}

/// Approximate bytes `events` add to a folded state, before it is known what they replace (a
/// commit's check of the memory budget: it errs high).
pub(crate) fn events_bytes(events: &[Event]) -> u64 {
    events
        .iter()
        .map(|event| match event {
            Event::Message { data, .. } => entry(data.len()),
            Event::StateSet { key, data, .. } => entry(key.len() + data.len()),
            _ => 0,
        })
        .sum()
}

/// The last committed version of one session as this store knows it.
pub(crate) struct View {
    pub head: Head,
    pub version: Version,
    /// `None` once evicted: the next async use reloads it.
    pub state: Option<Rc<SessionState>>,
    /// Approximate bytes of `state`, counted against `max_bytes`.
    pub bytes: u64,
    /// Bumped whenever `state` is replaced by a load rather than extended, so that readers that
    /// cache derived values (the bindings' parsed messages) know to start over.
    pub generation: u64,
    /// The newest snapshot this store read or wrote, without its messages (its segments and
    /// counts): what the next snapshot builds on.
    pub snapshot: Option<Rc<Snapshot>>,
}

/// One session id's shared view.
pub(crate) struct Slot {
    pub id: String,
    pub view: RefCell<View>,
    /// Position in the LRU list while the state is held.
    tick: Cell<Option<u64>>,
    used_at: Cell<u64>,
    /// Live invocations of this session through this store.
    pins: Cell<u32>,
    /// Derived values a layer above keeps with the view (the bindings' parsed reads), dropped with
    /// the state.
    pub attachment: RefCell<Option<Rc<dyn Any>>>,
    /// Whether this store deleted the session (or made a new one under its id) since: a read
    /// that finds no state then says so, rather than that the cache evicted it.
    pub forgotten: Cell<bool>,
}

impl Slot {
    pub fn state(&self) -> Option<Rc<SessionState>> {
        self.view.borrow().state.clone()
    }
}

/// The cache of one store.
pub(crate) struct Cache {
    limits: CacheLimits,
    /// Every slot some `Session` object or the LRU list still holds, so that one id has one slot.
    slots: RefCell<HashMap<String, Weak<Slot>>>,
    /// Slots whose state is held, least recently used first.
    lru: RefCell<BTreeMap<u64, Rc<Slot>>>,
    next_tick: Cell<u64>,
    bytes: Cell<u64>,
    /// Size of `slots` after its last pruning of dead entries.
    pruned_at: Cell<usize>,
}

impl Cache {
    pub fn new(limits: CacheLimits) -> Cache {
        Cache {
            limits,
            slots: RefCell::new(HashMap::new()),
            lru: RefCell::new(BTreeMap::new()),
            next_tick: Cell::new(0),
            bytes: Cell::new(0),
            pruned_at: Cell::new(0),
        }
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// Bytes of state held now (pinned slots included).
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// Sessions whose state is held now.
    pub fn len(&self) -> usize {
        self.lru.borrow().len()
    }

    /// The slot of `id`, if anyone still holds it.
    pub fn get(&self, id: &str) -> Option<Rc<Slot>> {
        self.slots.borrow().get(id).and_then(Weak::upgrade)
    }

    /// The slot of `id`, made from `head` when there is none.
    pub fn slot(&self, id: &str, head: Head, version: Version) -> Rc<Slot> {
        if let Some(slot) = self.get(id) {
            return slot;
        }
        let slot = Rc::new(Slot {
            id: id.to_owned(),
            view: RefCell::new(View { head, version, state: None, bytes: 0, generation: 0, snapshot: None }),
            tick: Cell::new(None),
            used_at: Cell::new(0),
            pins: Cell::new(0),
            attachment: RefCell::new(None),
            forgotten: Cell::new(false),
        });
        let mut slots = self.slots.borrow_mut();
        // Dead entries (slots every holder dropped) are pruned when the map has doubled.
        if slots.len() >= 2 * self.pruned_at.get().max(64) {
            slots.retain(|_, weak| weak.strong_count() > 0);
            self.pruned_at.set(slots.len());
        }
        slots.insert(id.to_owned(), Rc::downgrade(&slot));
        slot
    }

    /// Marks `slot` as used now (its state stays held), and drops what has been idle past the TTL:
    /// at every use of the cache, since nothing else would (no timer keeps an idle store busy).
    pub fn touch(&self, slot: &Rc<Slot>, now: u64) {
        self.mark_used(slot, now);
        self.make_room(slot, now);
    }

    fn mark_used(&self, slot: &Rc<Slot>, now: u64) {
        slot.used_at.set(now);
        if slot.view.borrow().state.is_none() {
            return;
        }
        let tick = self.next_tick.get();
        self.next_tick.set(tick + 1);
        let mut lru = self.lru.borrow_mut();
        if let Some(old) = slot.tick.replace(Some(tick)) {
            lru.remove(&old);
        }
        lru.insert(tick, slot.clone());
    }

    /// Stores a freshly loaded state in `slot` and makes room for it. `replaced`: the state was
    /// loaded whole (readers' derived values start over), not extended.
    pub fn hold(&self, slot: &Rc<Slot>, state: Rc<SessionState>, bytes: u64, replaced: bool, now: u64) {
        {
            let mut view = slot.view.borrow_mut();
            self.count(view.bytes, bytes);
            view.state = Some(state);
            view.bytes = bytes;
            if replaced {
                view.generation += 1;
            }
        }
        self.touch(slot, now);
    }

    /// Counts `added` more bytes in `slot`'s state and `removed` fewer (a commit changed it).
    pub fn grow(&self, slot: &Rc<Slot>, (added, removed): (u64, u64), now: u64) {
        let removed = {
            let mut view = slot.view.borrow_mut();
            if view.state.is_none() {
                return;
            }
            let removed = removed.min(view.bytes);
            view.bytes = view.bytes - removed + added;
            removed
        };
        self.count(removed, added);
        self.touch(slot, now);
    }

    /// Replaces `old` counted bytes by `new`, here and in the instance's memory budget.
    fn count(&self, old: u64, new: u64) {
        // Saturating: a miscount must never become an overflow panic, which would kill the instance.
        self.bytes.set(self.bytes.get().saturating_sub(old).saturating_add(new));
        budget::give_back(old);
        budget::take(new);
    }

    pub fn pin(&self, slot: &Slot) {
        slot.pins.set(slot.pins.get() + 1);
    }

    pub fn unpin(&self, slot: &Rc<Slot>, now: u64) {
        slot.pins.set(slot.pins.get().saturating_sub(1));
        self.make_room(slot, now);
    }

    /// Evicts least recently used slots (never a pinned one, nor `keep`, the one in use) until the
    /// cache is within its limits, and every slot idle for longer than the TTL.
    fn make_room(&self, keep: &Rc<Slot>, now: u64) {
        let victims: Vec<Rc<Slot>> = {
            let lru = self.lru.borrow();
            let mut bytes = self.bytes.get();
            let mut count = lru.len();
            let mut victims = Vec::new();
            for slot in lru.values() {
                let over = count > self.limits.max_sessions || bytes > self.limits.max_bytes;
                let stale = now.saturating_sub(slot.used_at.get()) >= self.limits.ttl_ms;
                if !over && !stale {
                    break;
                }
                if Rc::ptr_eq(slot, keep) || slot.pins.get() > 0 {
                    continue;
                }
                bytes = bytes.saturating_sub(slot.view.borrow().bytes);
                count -= 1;
                victims.push(slot.clone());
            }
            victims
        };
        for slot in victims {
            self.evict(&slot);
        }
    }

    /// Forgets the slot of `id`, whose session was deleted or replaced by a new one under its id: the
    /// next [`Cache::slot`] of `id` makes a new view, whatever the old one holds. (Keeping the old view
    /// let a session created again within the same millisecond, whose head cannot be told from the
    /// deleted one's at version 0, be served the deleted session's state.) Session objects and
    /// invocations of the old session keep the old slot; its state is dropped now unless an invocation
    /// holds it.
    pub fn forget(&self, id: &str) {
        let old = self.slots.borrow_mut().remove(id).and_then(|weak| weak.upgrade());
        if let Some(slot) = old {
            slot.forgotten.set(true);
            self.evict(&slot);
        }
    }

    /// Drops `slot`'s state now (it is reloaded on its next use), unless an invocation holds it.
    pub fn evict(&self, slot: &Slot) {
        if slot.pins.get() > 0 {
            return;
        }
        self.drop_state(slot);
    }

    /// Drops `slot`'s state now, even while an invocation holds it (the state is not the session's:
    /// [`crate::engine::Session::apply_commit`]); whoever needs it next loads it again.
    pub fn drop_state(&self, slot: &Slot) {
        if let Some(tick) = slot.tick.take() {
            self.lru.borrow_mut().remove(&tick);
        }
        let mut view = slot.view.borrow_mut();
        self.count(view.bytes, 0);
        view.state = None;
        view.bytes = 0;
        view.snapshot = None;
        // An evicted view is reloaded from the stored head before any write (see `Session::lease`),
        // so its own copy of the tokens since the snapshot can go.
        view.head.commits.clear();
        drop(view);
        slot.attachment.borrow_mut().take();
    }

    /// Drops every state held (the store was closed); returns the ids of the sessions some `Session`
    /// object still holds (an invocation may run on one, a begin wait on one).
    pub fn clear(&self) -> Vec<String> {
        let held = self.slots.borrow().values().filter_map(Weak::upgrade).map(|slot| slot.id.clone()).collect();
        let slots: Vec<Rc<Slot>> = self.lru.borrow().values().cloned().collect();
        for slot in slots {
            slot.pins.set(0);
            self.evict(&slot);
        }
        self.slots.borrow_mut().clear();
        held
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        budget::give_back(self.bytes.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Json;

    /// After any events, the count kept by [`apply_counted`] is what [`state_bytes`] counts.
    #[test]
    fn apply_counted_keeps_the_count_exact() {
        let json = |text: &str| Json::from(text);
        let message = |agent: &str, text: &str| Event::Message { agent: agent.into(), data: json(text) };
        let set = |agent: &str, key: &str, text: &str| Event::StateSet {
            agent: agent.into(),
            key: key.into(),
            data: json(text),
        };
        let batches = vec![
            vec![message("a", "\"one\""), set("a", "k", "\"xxxxxxxxxx\""), set("b", "k", "1")],
            vec![set("a", "k", "\"y\""), set("a", "k", "\"zzzzzzzzzzzzzzzzzzzz\"")],
            vec![
                Event::StateDelete { agent: "a".into(), key: "k".into() },
                Event::StateDelete { agent: "c".into(), key: "k".into() },
            ],
            vec![message("a", "\"two\""), message("a", "\"three\"")],
            vec![Event::Compacted { agent: "a".into(), before: 2, summary: vec![json("\"summary\"")] }],
            vec![Event::Compacted { agent: "d".into(), before: 0, summary: vec![] }],
            vec![Event::Migrated {
                agent: "b".into(),
                from: 0,
                to: 1,
                messages: vec![json("\"m\"")],
                state: BTreeMap::new(),
            }],
        ];
        let mut state = SessionState::default();
        let mut count = 0;
        for events in &batches {
            let (added, removed) = apply_counted(&mut state, events);
            count = count + added - removed;
            assert_eq!(count, state_bytes(&state), "after {events:?}");
        }
    }
}
