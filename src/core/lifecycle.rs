//! The session status machine: one transition function, every refused move a typed error.
//!
//! ```text
//! idle --begin--> running --commit/abort--> idle
//! running --interrupt--> interrupted --begin(resume)--> running
//! idle | interrupted --close--> closed                 (terminal; close holds the guard while it commits)
//! closed --prune--> closed                             (a lease of the store's upkeep: no status change)
//! any non-terminal --idle TTL or max lifetime--> expired (terminal; sweep deletes)
//! ```
//!
//! "Running with an expired lease counts as idle (or interrupted) for the next acquirer" is decided by
//! [`crate::core::Head::effective_status`], which is where the clock enters; this table is timeless.

use crate::core::error::{CoreError, Phase};
use crate::core::event::Event;

/// The status of a session, as stored in its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Idle,
    Running,
    Interrupted,
    Closed,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Running => "running",
            Status::Interrupted => "interrupted",
            Status::Closed => "closed",
            Status::Expired => "expired",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Closed | Status::Expired)
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Status::Idle => 0,
            Status::Running => 1,
            Status::Interrupted => 2,
            Status::Closed => 3,
            Status::Expired => 4,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Status> {
        Some(match byte {
            0 => Status::Idle,
            1 => Status::Running,
            2 => Status::Interrupted,
            3 => Status::Closed,
            4 => Status::Expired,
            _ => return None,
        })
    }
}

/// A move of the status machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Take the guard to change an idle session.
    Begin,
    /// Take the guard to answer a pending interrupt.
    Resume,
    /// Take the guard to close the session (the commit that follows ends in `closed`).
    Close,
    /// End a guarded change: back to idle.
    Commit,
    /// End a guarded change with a question for a human: interrupted.
    Interrupt,
    /// End a guarded change by committing the close.
    CommitClose,
    /// Give the guard back without a change (abort, or a failed close).
    Release { interrupted: bool },
    /// The idle TTL or maximum lifetime passed.
    Expire,
    /// Copy the session into a new one (no change to this one).
    Fork,
    /// Take the guard of a closed session for the store's upkeep (a prune), which changes no
    /// status: the session stays closed, and its release leaves it so.
    Maintain,
}

impl Action {
    /// The verb used in error messages and in the `action` field of the JS error.
    pub fn name(self) -> &'static str {
        match self {
            Action::Begin => "begin",
            Action::Resume => "resume",
            Action::Close => "close",
            Action::Commit => "commit",
            Action::Interrupt => "interrupt",
            Action::CommitClose => "close",
            Action::Release { .. } => "abort",
            Action::Expire => "expire",
            Action::Fork => "fork",
            Action::Maintain => "prune",
        }
    }
}

/// The status after `action`, or the typed refusal. Busy-ness is not decided here: a `running`
/// session is refused by the guard with `ConcurrencyError` before this table is consulted.
pub fn transition(from: Status, action: Action) -> Result<Status, CoreError> {
    use Status::*;
    let refused = || match from {
        Closed => CoreError::SessionClosed { action: action.name() },
        Expired => CoreError::SessionExpired { action: action.name() },
        _ => CoreError::InvalidTransition { from: Phase::Status(from), action: action.name() },
    };
    match (from, action) {
        (Idle, Action::Begin) | (Interrupted, Action::Resume) => Ok(Running),
        (Idle | Interrupted, Action::Close) => Ok(Running),
        (Running, Action::Commit) => Ok(Idle),
        (Running, Action::Interrupt) => Ok(Interrupted),
        (Running, Action::CommitClose) => Ok(Closed),
        (Running, Action::Release { interrupted }) => Ok(if interrupted { Interrupted } else { Idle }),
        (Idle | Running | Interrupted, Action::Expire) => Ok(Expired),
        (Idle | Running | Interrupted, Action::Fork) => Ok(from),
        // A closed session's records can still be pruned (its history is readable for years); the
        // only lease a closed session ever carries is such a prune's.
        (Closed, Action::Maintain | Action::Release { .. }) => Ok(Closed),
        _ => Err(refused()),
    }
}

/// The status a session had at an old version, from the events committed at it (time travel:
/// `at(v)`). A version reached by an interrupt is interrupted, by a close closed, otherwise idle.
/// Not only the last event: a turn asked to stop ends with a `stopped` event after its interrupt.
pub fn status_at(events: &[Event]) -> Status {
    let ending = events.iter().rev().find(|event| !matches!(event, Event::Stopped { .. }));
    match ending {
        Some(Event::Interrupt { .. }) => Status::Interrupted,
        Some(Event::Closed) => Status::Closed,
        _ => Status::Idle,
    }
}

/// Whether a version committed with `events` kept the status of the version before: one of `stopped`
/// events alone (a stop's fence, or a stopped turn its holder aborted) released the lease without a
/// turn's commit, so a session waiting on an interrupt (a resumed turn stopped) still waits.
pub fn keeps_status(events: &[Event]) -> bool {
    !events.is_empty() && events.iter().all(|event| matches!(event, Event::Stopped { .. }))
}
