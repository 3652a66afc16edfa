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

/// Prefixes under which all of a session's records other than the head live.
pub fn record_prefixes(id: &str) -> [String; 4] {
    let escaped = escape_id(id);
    [format!("e/{escaped}/"), format!("s/{escaped}/"), format!("g/{escaped}/"), format!("t/{escaped}/")]
}
