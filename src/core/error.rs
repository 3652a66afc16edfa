//! `CoreError`: every refusal the core can decide, each with a stable code.

use crate::core::lifecycle::Status;

/// What an invocation or session was doing when a move was refused (the `from` of the JS error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The session's status.
    Status(Status),
    /// The invocation is in the middle of its own commit, checkpoint or interrupt.
    Committing,
    /// The invocation already committed (or interrupted).
    Committed,
    /// The invocation was aborted.
    Aborted,
    /// The invocation lost its lease.
    LeaseLost,
}

impl Phase {
    /// The string the JS `from` field carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Status(status) => status.as_str(),
            Phase::Committing => "committing",
            Phase::Committed => "committed",
            Phase::Aborted => "aborted",
            Phase::LeaseLost => "lease-lost",
        }
    }
}

/// A refusal decided by the core. Nothing has been written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Another invocation holds a live lease on the session.
    #[error("session is busy: an invocation of owner \"{holder}\" holds it for another {retry_after_ms} ms; retry after that, or begin with onBusy: {{ waitMs }}")]
    Concurrency { holder: String, retry_after_ms: u64 },
    /// The invocation's lease expired or was taken over; what it staged is not visible anywhere.
    #[error("the lease of this invocation (fencing token {token}) expired or was taken over, or the session was deleted, so nothing it staged since its last checkpoint was written; begin a new invocation and redo the turn (open the session with {{ create: false }} first if it may have been deleted)")]
    LeaseLost { token: u64 },
    /// A lifecycle move that the current status or invocation phase does not allow.
    #[error("cannot {action} when the {}is {}{}", if matches!(from, Phase::Status(_)) { "session " } else { "invocation " }, from.as_str(), hint(*from, action))]
    InvalidTransition { from: Phase, action: &'static str },
    /// The session was closed: it is read-only for ever (`fork` it to continue).
    #[error(
        "cannot {action}: the session is closed; it stays readable (history, at), start a new session to continue"
    )]
    SessionClosed { action: &'static str },
    /// The session passed its idle TTL or maximum lifetime.
    #[error("cannot {action}: the session expired (idle TTL or maximum lifetime passed); its history stays readable until store.sweepExpired() or store.delete(id) removes it, after which open(id) starts the id anew; or open a session under another id")]
    SessionExpired { action: &'static str },
    /// Input that the API does not accept (bad id, bad option, bad version).
    #[error("{message}")]
    InvalidInput { path: Option<String>, message: String },
    /// A configured size limit would be exceeded; nothing was staged or written.
    #[error("{what} is {actual} bytes, over the limit of {limit} bytes; store large data elsewhere and keep a reference, or raise limits.{option}")]
    LimitExceeded { what: &'static str, option: &'static str, limit: u64, actual: u64 },
    /// Stored bytes that cannot be decoded; names the key so the record can be found.
    #[error("stored record \"{key}\" cannot be decoded ({detail}); the session cannot be loaded, other sessions are unaffected")]
    CorruptRecord { key: String, detail: String },
}

fn hint(from: Phase, action: &str) -> &'static str {
    match (from, action) {
        (Phase::Status(Status::Interrupted), "begin") => {
            ": pass begin({ resume }) with the answer to the pending interrupt"
        }
        (Phase::Status(_), "resume") => ": resume is only for a session whose status is \"interrupted\"",
        (Phase::Status(_), _) => "",
        (Phase::Committing, _) => ": await the commit or checkpoint being written first (a checkpoint leaves it open)",
        (Phase::Committed, "abort") => {
            ": it was committed (also when its commit rejected with a StorageError and landed after all: session.refresh() shows it); begin a new one"
        }
        _ => ": an invocation ends with its first commit, interrupt or abort; begin a new one",
    }
}

impl CoreError {
    /// The stable code of the JS error class this maps to.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Concurrency { .. } => "CONCURRENT_INVOCATION",
            CoreError::LeaseLost { .. } => "LEASE_LOST",
            CoreError::InvalidTransition { .. } => "INVALID_TRANSITION",
            CoreError::SessionClosed { .. } => "SESSION_CLOSED",
            CoreError::SessionExpired { .. } => "SESSION_EXPIRED",
            CoreError::InvalidInput { .. } => "INVALID_INPUT",
            CoreError::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            CoreError::CorruptRecord { .. } => "CORRUPT_RECORD",
        }
    }

    /// A refusal of a closed or expired session, named as the call that was made (`prune` takes
    /// the guard as a begin does, and must not say "cannot begin").
    pub(crate) fn named_for(self, action: &'static str) -> Self {
        match self {
            CoreError::SessionClosed { .. } => CoreError::SessionClosed { action },
            CoreError::SessionExpired { .. } => CoreError::SessionExpired { action },
            other => other,
        }
    }

    pub(crate) fn invalid(path: Option<&str>, message: impl Into<String>) -> Self {
        CoreError::InvalidInput { path: path.map(str::to_owned), message: message.into() }
    }
}
