//! The stored records: the head (the only mutable key), event batches and snapshots.

use std::rc::Rc;

use crate::core::commits::Commits;
use crate::core::event::{Event, SessionState};
use crate::core::lifecycle::Status;

/// A JSON value kept as its text: the core never interprets message bodies or state values, so no
/// JSON parser ships in the `.wasm` (the JS side parses with the engine's own `JSON.parse`).
pub type Json = Rc<str>;

/// Version of the record layout written by this build; older records are migrated on load. 2: the
/// head lists its commit tokens as runs (core/commits.rs); an older build refuses it by this number.
pub const SCHEMA_VERSION: u8 = 2;

/// The lease of the invocation that holds a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Owner name of the holding store: a label for errors and events, never a pass.
    pub owner: String,
    /// Random id of the holding store instance: what "is the holder alive?" checks name.
    pub instance: String,
    /// Fencing token: every record the holder writes carries it, and the head must carry it to commit.
    pub token: u64,
    /// When the lease ends by the store's clock (ms since epoch).
    pub expires_at: u64,
    /// Id of the invocation holding it (what followers name a turn by).
    pub invocation: String,
}

/// A question for a human that the session waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupt {
    pub reason: String,
    /// JSON text; `null` when none was given.
    pub payload: Json,
}

/// Which snapshot record holds the state at `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotRef {
    pub version: u64,
    pub token: u64,
}

/// A request to stop the running turn (`session.stop()`): recorded on the head without touching
/// the lease, answered by the holder ending its turn or, after the stopper's grace, by a fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    /// The fencing token of the turn it asks to stop.
    pub token: u64,
    pub reason: String,
    /// Owner name of the store that asked.
    pub by: String,
    pub at: u64,
}

/// How a turn ended, as followers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnOutcome {
    Committed,
    Interrupted,
    Aborted,
    /// The holder ended the turn after a stop was requested.
    Stopped,
    /// The stopper took the lease over after the grace and released it.
    Fenced,
}

impl TurnOutcome {
    /// The `outcome` of a follower's `end` event.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnOutcome::Committed => "committed",
            TurnOutcome::Interrupted => "interrupted",
            TurnOutcome::Aborted => "aborted",
            TurnOutcome::Stopped | TurnOutcome::Fenced => "stopped",
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            TurnOutcome::Committed => 0,
            TurnOutcome::Interrupted => 1,
            TurnOutcome::Aborted => 2,
            TurnOutcome::Stopped => 3,
            TurnOutcome::Fenced => 4,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<TurnOutcome> {
        Some(match byte {
            0 => TurnOutcome::Committed,
            1 => TurnOutcome::Interrupted,
            2 => TurnOutcome::Aborted,
            3 => TurnOutcome::Stopped,
            4 => TurnOutcome::Fenced,
            _ => return None,
        })
    }
}

/// The end of the last turn that ended by a decision (not by a lost lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnEnd {
    /// The fencing token of the turn.
    pub token: u64,
    pub outcome: TurnOutcome,
    /// Id of the invocation that ran it.
    pub invocation: String,
    /// How many flushes of live parts it wrote (`t/<session>/<token>/<n>` for n below it), or
    /// `None` when unknown (a fenced turn): what the next turn deletes.
    pub flushes: Option<u64>,
}

/// The head record `h/<session>`: written only by compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Number of commits so far (0 for a new session).
    pub version: u64,
    /// Stored status; see [`Head::effective_status`] for the status a reader acts on.
    pub status: Status,
    pub lease: Option<Lease>,
    /// The highest fencing token ever issued for this session.
    pub last_token: u64,
    /// The newest snapshot, if any.
    pub snapshot: Option<SnapshotRef>,
    /// Fencing tokens of the commits after the snapshot: the `i`-th wrote version `base + 1 + i`.
    pub commits: Commits,
    pub created_at: u64,
    pub updated_at: u64,
    pub idle_ttl_ms: Option<u64>,
    pub max_lifetime_ms: Option<u64>,
    pub interrupt: Option<Interrupt>,
    /// JSON text given at creation (`open(id, { metadata })`).
    pub metadata: Option<Json>,
    /// A pending request to stop the turn holding the lease.
    pub stop: Option<StopRequest>,
    /// How the last turn ended (followers' `end`; which live log the next turn deletes).
    pub ended: Option<TurnEnd>,
    /// The oldest version still readable (`prune`): `at()` and `history()` below it are refused.
    pub retained: u64,
    /// The application schema version the session was last committed under (`schema` option; 0
    /// without one).
    pub schema: u64,
}

impl Head {
    /// A new session's head at version 0.
    pub fn new(now: u64, idle_ttl_ms: Option<u64>, max_lifetime_ms: Option<u64>, metadata: Option<Json>) -> Head {
        Head {
            version: 0,
            status: Status::Idle,
            lease: None,
            last_token: 0,
            snapshot: None,
            commits: Commits::default(),
            created_at: now,
            updated_at: now,
            idle_ttl_ms,
            max_lifetime_ms,
            interrupt: None,
            metadata,
            stop: None,
            ended: None,
            retained: 0,
            schema: 0,
        }
    }

    /// When the session expires: the earlier of idle TTL after the last commit and max lifetime;
    /// never once it is closed (terminal: `core/lifecycle.rs`), so that no backend TTL or expiry index
    /// deletes or lists a closed session's head (its other records would be left behind, and a
    /// closed session would vanish on Redis while it stayed in IndexedDB).
    pub fn expires_at(&self) -> Option<u64> {
        if self.status == Status::Closed {
            return None;
        }
        let idle = self.idle_ttl_ms.map(|ttl| self.updated_at.saturating_add(ttl));
        let life = self.max_lifetime_ms.map(|max| self.created_at.saturating_add(max));
        match (idle, life) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The lease if it is still live at `now`.
    pub fn live_lease(&self, now: u64) -> Option<&Lease> {
        self.lease.as_ref().filter(|lease| lease.expires_at > now)
    }

    /// The status a reader acts on at `now`: a running session whose lease ran out is idle (or
    /// interrupted, when it was resuming) for the next acquirer; a non-terminal session past its
    /// expiry without a live lease is expired.
    pub fn effective_status(&self, now: u64) -> Status {
        self.effective_status_given(now, &|_| false)
    }

    /// [`Head::effective_status`], a lease of a store instance `gone` says is gone (its realm closed:
    /// Web Locks) counted as ended: the next begin takes it over at once, so the session reads as
    /// that begin will find it, not as running until the lease runs out.
    pub fn effective_status_given(&self, now: u64, gone: &dyn Fn(&str) -> bool) -> Status {
        if self.status.is_terminal() {
            return self.status;
        }
        let live = self.live_lease(now).is_some_and(|lease| !gone(&lease.instance));
        if !live && self.expires_at().is_some_and(|at| now >= at) {
            return Status::Expired;
        }
        match self.status {
            Status::Running if !live => self.resting_status(),
            other => other,
        }
    }

    /// The status the session returns to when its lease is released without a commit.
    pub fn resting_status(&self) -> Status {
        if self.interrupt.is_some() {
            Status::Interrupted
        } else {
            Status::Idle
        }
    }

    /// The status the commit of the head's version left (`at(version)`'s, which a lease taken or
    /// run out since, or an expiry, does not change): as [`crate::core::lifecycle::status_at`] gives
    /// for that commit's events.
    pub fn committed_status(&self) -> Status {
        if self.status == Status::Closed {
            Status::Closed
        } else {
            self.resting_status()
        }
    }

    /// The version the commits in `commits` start after.
    pub fn snapshot_version(&self) -> u64 {
        self.snapshot.map_or(0, |snapshot| snapshot.version)
    }

    /// The fencing token of the commit that wrote `version`, if the head still names it: its
    /// snapshot's, or a batch's.
    pub fn commit_token(&self, version: u64) -> Option<u64> {
        match self.snapshot {
            Some(snapshot) if snapshot.version == version => Some(snapshot.token),
            _ => self.token_of(version),
        }
    }

    /// The fencing token of the batch that wrote `version`, if the head still names it.
    pub fn token_of(&self, version: u64) -> Option<u64> {
        let base = self.snapshot_version();
        if version <= base {
            return None;
        }
        self.commits.get(version - base - 1)
    }
}

/// An immutable batch `e/<session>/<version>/<token>`: the events one commit carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub version: u64,
    pub token: u64,
    /// Commit time by the store's clock.
    pub at: u64,
    /// Id of the invocation that committed it.
    pub invocation: String,
    pub traceparent: Option<String>,
    pub events: Vec<Event>,
}

/// An immutable snapshot `s/<session>/<version>/<token>` of the state at `version`.
///
/// A snapshot holds how many messages each agent has; the messages themselves are in immutable
/// segments (`g/<session>/<version>/<token>`, one written with each snapshot, holding what was appended
/// since the one before), which it names, and so are the state values (`layers`): each segment holds
/// the values set or deleted since the snapshot before. So writing a snapshot never rewrites old
/// messages or unchanged values: its size follows what changed, not the session's length.
/// Snapshots of the first layout held every message and value inline (`segments` empty, `counts`
/// empty); those of the second held the values inline (`layers` `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub token: u64,
    /// The snapshot before this one, so that history can be walked back.
    pub previous: Option<SnapshotRef>,
    /// Tokens of the commits from `previous` (exclusive) to `version` (inclusive).
    pub commits: Commits,
    /// The message segments, oldest first (each named by the snapshot it was written with).
    pub segments: Vec<SnapshotRef>,
    /// Messages per agent in those segments, to check them against (agents in order; a list, not a
    /// map: one map type less in the .wasm).
    pub counts: Vec<(String, u64)>,
    /// The state values, and the messages once the segments are read (the values inline in the
    /// first two layouts; in the third, once the segments' layers are read).
    pub state: SessionState,
    /// Where the state values are when they are not inline: in the layers of the segments.
    pub layers: Option<Layers>,
}

impl Snapshot {
    /// How many of `agent`'s messages the segments hold.
    pub fn count(&self, agent: &str) -> u64 {
        self.counts.iter().find(|(name, _)| name == agent).map_or(0, |(_, n)| *n)
    }
}

/// The state layers a snapshot's values are read from: those of its segments from index `from` on,
/// applied in order, the one at `from` holding every value (a full layer). `bytes` is what those
/// layers hold in all, values that later ones replaced included: once that is over twice what the
/// state holds, the next snapshot writes a full layer again, so that a load never reads more than
/// about twice the state's size for its values (core/snapshot.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    pub from: u64,
    pub bytes: u64,
}

/// The state values one segment holds (see [`Layers`]), as the `StateSet` and `StateDelete` events
/// that make them: every value of every agent (`full`: applied to no values), or the values set and
/// deleted since the snapshot before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateLayer {
    pub full: bool,
    pub events: Vec<crate::core::Event>,
}

/// An immutable segment `g/<session>/<version>/<token>`: the messages each agent appended after the
/// snapshot before the one written with it, up to `version`, and (third layout) its state layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub version: u64,
    pub token: u64,
    pub agents: Vec<(String, Vec<Json>)>,
    pub state: Option<StateLayer>,
}
