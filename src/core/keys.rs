//! The storage layout: id escaping and the `h/`, `e/`, `s/`, `g/` keys.
//!
//! ```text
//! h/<session>                    head (the only mutable key, compare-and-set only)
//! e/<session>/<version>/<token>  immutable event batch
//! s/<session>/<version>/<token>  immutable snapshot (state values, message counts, segment refs)
//! g/<session>/<version>/<token>  immutable message segment, written with the snapshot at <version>
//! t/<session>/<token>/<n>        the n-th flush of the live parts of the turn holding lease <token>
//!                                (never named by a head; deleted when the next turn begins)
//! ```
//!
//! `<session>` percent-encodes every byte outside `[A-Za-z0-9_-]` and ends with `~`, which the
//! escaping never produces, so no session's keys are a prefix of another's (ids may hold `/`, `%`,
//! NUL, `..`). Versions and tokens are 16 hex digits so that keys sort in commit order.

use crate::core::error::CoreError;

/// Prefix of every head key: listing it lists the sessions.
pub const HEAD_PREFIX: &str = "h/";
const TERMINATOR: char = '~';

/// The escaped form of a session id.
pub fn escape_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 1);
    push_escaped(&mut out, id);
    out
}

/// Appends the escaped form of `id` to `out`.
fn push_escaped(out: &mut String, id: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in id.as_bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[(byte >> 4) as usize] as char);
            out.push(HEX[(byte & 15) as usize] as char);
        }
    }
    out.push(TERMINATOR);
}

/// `<prefix><escaped id>` followed by `/<16 hex digits>` for each of `numbers`. Built by hand: these
/// keys are made at every commit, and `format!` took a few microseconds each in wasm.
fn key(prefix: &str, id: &str, numbers: &[u64]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(prefix.len() + id.len() + 1 + 17 * numbers.len());
    out.push_str(prefix);
    push_escaped(&mut out, id);
    for &number in numbers {
        out.push('/');
        for shift in (0..16).rev() {
            out.push(HEX[((number >> (4 * shift)) & 15) as usize] as char);
        }
    }
    out
}

/// The id an escaped form stands for; `None` for anything [`escape_id`] cannot have produced.
pub fn unescape_id(escaped: &str) -> Option<String> {
    let body = escaped.strip_suffix(TERMINATOR)?;
    let mut bytes = Vec::with_capacity(body.len());
    let mut iter = body.bytes();
    while let Some(byte) = iter.next() {
        match byte {
            b'%' => {
                let hi = hex_value(iter.next()?)?;
                let lo = hex_value(iter.next()?)?;
                bytes.push(hi << 4 | lo);
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => bytes.push(b),
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

pub fn head_key(id: &str) -> String {
    key(HEAD_PREFIX, id, &[])
}

/// The session id a head key names.
pub fn id_of_head_key(key: &str) -> Option<String> {
    unescape_id(key.strip_prefix(HEAD_PREFIX)?)
}

pub fn batch_key(id: &str, version: u64, token: u64) -> String {
    key("e/", id, &[version, token])
}

pub fn snapshot_key(id: &str, version: u64, token: u64) -> String {
    key("s/", id, &[version, token])
}

pub fn segment_key(id: &str, version: u64, token: u64) -> String {
    key("g/", id, &[version, token])
}

/// The key of the `n`-th flush of live parts of the turn holding lease `token`.
pub fn live_key(id: &str, token: u64, n: u64) -> String {
    key("t/", id, &[token, n])
}

/// The prefix of every live flush of the turn holding lease `token`.
pub fn live_prefix(id: &str, token: u64) -> String {
    let mut prefix = key("t/", id, &[token]);
    prefix.push('/');
    prefix
}

/// The kind (`e`, `s` or `g`), version and token of a batch, snapshot or segment key.
pub fn parse_record_key(key: &str) -> Option<(char, u64, u64)> {
    let kind = key.chars().next()?;
    let mut parts = key.rsplitn(3, '/');
    let token = u64::from_str_radix(parts.next()?, 16).ok()?;
    let version = u64::from_str_radix(parts.next()?, 16).ok()?;
    matches!(kind, 'e' | 's' | 'g').then_some((kind, version, token))
}

/// Marks the cursors `SessionStore.list` hands out: the backend's own cursor follows it. A string
/// without it is no cursor of this package's, and is refused rather than listed from wherever it sorts.
const LIST_CURSOR_MARK: &str = "c1.";

/// The cursor `SessionStore.list` gives for the backend's cursor `backend`.
pub fn list_cursor(backend: &str) -> String {
    format!("{LIST_CURSOR_MARK}{backend}")
}

/// The backend's cursor inside a cursor `SessionStore.list` gave; `""` is the first page, as no cursor.
pub fn backend_cursor(given: &str) -> Result<Option<&str>, CoreError> {
    if given.is_empty() {
        return Ok(None);
    }
    match given.strip_prefix(LIST_CURSOR_MARK) {
        Some(backend) if !backend.is_empty() => Ok(Some(backend)),
        _ => Err(CoreError::invalid(
            Some("options.cursor"),
            "options.cursor is not a cursor that list() gave: pass the cursor of the page before, or none for the first page",
        )),
    }
}

/// Separates a record's key from the index of one of its chunks (`<key>#<i>`): a record over the
/// backend's value limit is stored as chunks under a manifest at its key (store/host_kv.rs). An
/// escaped id never holds it, so no record key does.
const CHUNK_MARK: char = '#';

/// The key of chunk `index` of the record at `key`.
pub fn chunk_key(key: &str, index: usize) -> String {
    format!("{key}{CHUNK_MARK}{index}")
}

/// The record a listed key belongs to: the key itself, or the record of which it is a chunk.
pub fn owner_record(key: &str) -> &str {
    key.split_once(CHUNK_MARK).map_or(key, |(record, _)| record)
}

/// Prefixes under which all of a session's records other than the head live.
pub fn record_prefixes(id: &str) -> [String; 4] {
    let escaped = escape_id(id);
    [format!("e/{escaped}/"), format!("s/{escaped}/"), format!("g/{escaped}/"), format!("t/{escaped}/")]
}
