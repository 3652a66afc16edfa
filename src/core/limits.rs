//! Size and id checks, run before anything is staged or written.

use crate::core::error::CoreError;

/// Ids, agent names and state keys are 1 to this many UTF-8 bytes (API.md pinned behaviour).
pub const MAX_NAME_BYTES: usize = 256;
/// Interrupt reasons are at most this many UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 4096;
/// Traceparent headers are at most this many bytes (W3C: 55 for version 00).
pub const MAX_TRACEPARENT_BYTES: usize = 512;

/// Configured size limits, in bytes of UTF-8 JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_bytes: u64,
    pub max_state_value_bytes: u64,
    pub max_commit_bytes: u64,
}

impl Default for Limits {
    /// 1 MiB per message or state value, 4 MiB per commit: room for a long tool result, small enough
    /// that one turn cannot grow a browser's storage by surprise.
    fn default() -> Self {
        Limits { max_message_bytes: 1 << 20, max_state_value_bytes: 1 << 20, max_commit_bytes: 4 << 20 }
    }
}

impl Limits {
    pub fn check_message(&self, bytes: usize) -> Result<(), CoreError> {
        check("a message", "maxMessageBytes", self.max_message_bytes, bytes)
    }

    /// A live part of a running turn counts against the messages' limit (API.md).
    pub fn check_part(&self, bytes: usize) -> Result<(), CoreError> {
        check("a part", "maxMessageBytes", self.max_message_bytes, bytes)
    }

    pub fn check_state_value(&self, bytes: usize) -> Result<(), CoreError> {
        check("a state value", "maxStateValueBytes", self.max_state_value_bytes, bytes)
    }

    /// A session's metadata lives in its head, which every lease and commit writes again: it is held
    /// to the state values' limit.
    pub fn check_metadata(&self, bytes: usize) -> Result<(), CoreError> {
        check("the session's metadata", "maxStateValueBytes", self.max_state_value_bytes, bytes)
    }

    pub fn check_commit(&self, bytes: usize) -> Result<(), CoreError> {
        check("the staged commit", "maxCommitBytes", self.max_commit_bytes, bytes)
    }

    /// A fork is one commit of the messages and state it copies (`bytes`), held to the same limit.
    pub fn check_fork(&self, bytes: usize) -> Result<(), CoreError> {
        let what = "a fork, one commit of the messages and state it copies (fork at an earlier version, or compact the session first),";
        check(what, "maxCommitBytes", self.max_commit_bytes, bytes)
    }
}

fn check(what: &'static str, option: &'static str, limit: u64, actual: usize) -> Result<(), CoreError> {
    if actual as u64 > limit {
        return Err(CoreError::LimitExceeded { what, option, limit, actual: actual as u64 });
    }
    Ok(())
}

/// Checks a session id, agent name or state key: 1 to [`MAX_NAME_BYTES`] UTF-8 bytes, any characters.
/// Too long is a validation error, not a limit (API.md).
pub fn check_name(what: &str, name: &str) -> Result<(), CoreError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(CoreError::invalid(
            None,
            format!("{what} must be a string of 1 to {MAX_NAME_BYTES} UTF-8 bytes, got {} bytes", name.len()),
        ));
    }
    Ok(())
}

/// Checks the reason of an interrupt or a stop (`what`, given at `path`): at most [`MAX_REASON_BYTES`].
pub fn check_reason(what: &str, path: &str, reason: &str) -> Result<(), CoreError> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(CoreError::invalid(
            Some(path),
            format!("{what} must be at most {MAX_REASON_BYTES} UTF-8 bytes, got {}", reason.len()),
        ));
    }
    Ok(())
}

pub fn check_traceparent(traceparent: &str) -> Result<(), CoreError> {
    if traceparent.len() > MAX_TRACEPARENT_BYTES || !traceparent.is_ascii() {
        return Err(CoreError::invalid(Some("traceparent"), "traceparent must be an ASCII W3C trace context header"));
    }
    Ok(())
}
