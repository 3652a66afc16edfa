//! The engine: runs core decisions against a [`Store`](crate::store::Store), with each session's
//! last committed view cached once per store, bounded (`cache.rs`).

mod cache;
mod error;
mod invocation;
mod live;
mod load;
mod retention;
mod schema;
mod session;
mod store;
mod transfer;

pub use cache::CacheLimits;
pub use error::EngineError;
pub use invocation::{Invocation, Signal};
pub use live::{Emitted, LiveFollow, StopResult};
pub use load::HistoryEvent;
pub use schema::{Migrate, MigrationFailure};
pub use session::{BeginOptions, InvokeError, Session, SessionView};
pub use store::{Change, Config, Env, EventHook, OpenOptions, SessionInfo, SessionStore, StoreEvent};
pub use transfer::{ImportTtls, SessionExport};

/// A head as written to the store: its bytes and the session's expiry, which travels with the write
/// so that no backend needs to decode a head (an expiry index, a backend TTL).
pub(crate) fn head_value(head: &crate::core::Head) -> crate::store::Value {
    let expiry = head.expires_at().map(|at| crate::store::Expiry { at, ttl_ms: at.saturating_sub(head.updated_at) });
    crate::store::Value { bytes: crate::core::codec::encode_head(head), expiry }
}

/// 16 random bytes as 22 characters of `[A-Za-z0-9_-]` (base64url without padding).
pub(crate) fn random_id(env: &dyn Env) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    env.fill_random(&mut bytes);
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = String::with_capacity(22);
    for byte in bytes {
        bits = bits << 8 | u32::from(byte);
        count += 8;
        while count >= 6 {
            count -= 6;
            out.push(ALPHABET[(bits >> count & 63) as usize] as char);
        }
    }
    if count > 0 {
        out.push(ALPHABET[(bits << (6 - count) & 63) as usize] as char);
    }
    out
}
