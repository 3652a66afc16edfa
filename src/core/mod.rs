//! The sans-IO core: every decision of the library as a pure function of (state, input, now).

pub mod codec;
pub mod commits;
pub mod error;
pub mod event;
pub mod guard;
pub mod keys;
pub mod lifecycle;
pub mod limits;
pub mod live;
pub mod record;
pub mod retention;
pub mod snapshot;
pub mod tool_pairs;

pub use commits::Commits;
pub use error::CoreError;
pub use event::{AgentState, Event, SessionState};
pub use lifecycle::Status;
pub use record::{
    Batch, Head, Interrupt, Json, Layers, Lease, Segment, Snapshot, SnapshotRef, StateLayer, StopRequest, TurnEnd,
    TurnOutcome,
};

/// The agent whose messages and state are read and written when no `agent` option is given.
pub const DEFAULT_AGENT: &str = "default";

/// A map of `pairs`, the last value of a key kept, as `collect()` would make it. Not `collect()`:
/// `BTreeMap`'s `FromIterator` sorts the pairs first, and each pair type it sorts adds its own
/// sort to the .wasm (some 12 KB for the few maps decoded here); inserting reuses code there anyway.
pub(crate) fn map_from<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> std::collections::BTreeMap<K, V> {
    let mut map = std::collections::BTreeMap::new();
    for (key, value) in pairs {
        map.insert(key, value);
    }
    map
}
