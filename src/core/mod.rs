//! The sans-IO core: every decision of the library as a pure function of (state, input, now).

pub mod codec;
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

pub use error::CoreError;
pub use event::{AgentState, Event, SessionState};
pub use lifecycle::Status;
pub use record::{
    Batch, Head, Interrupt, Json, Lease, Segment, Snapshot, SnapshotRef, StopRequest, TurnEnd, TurnOutcome,
};

/// The agent whose messages and state are read and written when no `agent` option is given.
pub const DEFAULT_AGENT: &str = "default";
