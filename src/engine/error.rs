//! `EngineError`: a core refusal, a store failure, or what only the engine can see.

use crate::core::CoreError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Store(StoreError),
    /// The session (or the version of it) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The head changed under a compare-and-set that was not about a lease, too often to retry.
    #[error("session \"{0}\" changed while this operation was writing it; retry the operation")]
    Conflict(String),
    /// The backend cannot compare-and-set atomically, and the store was not told to accept that.
    #[error("this KV store cannot compare-and-set atomically (it is eventually consistent, like Cloudflare Workers KV, whose writes take up to 60 s to be seen everywhere), so the concurrency guard could admit two invocations at once and lose commits; keep sessions in a Durable Object (durableObjectKv(ctx.storage)) or another atomic store, or pass allowNonAtomic: true to use it as a best-effort store without that guarantee")]
    UnsafeStore,
    /// The `SessionStore` was closed: it refuses every further use, and its sessions' reads of
    /// messages and state (its cached views were freed).
    #[error("this SessionStore was closed; create a new one (SessionStore.memory/indexedDb/kv) to go on")]
    StoreClosed,
    /// A synchronous read of a session whose cached view the store evicted to stay within its
    /// cache limits (or freed on dispose or close).
    #[error("the cached view of session \"{id}\" was freed (this store's cache keeps at most {max_sessions} sessions and {max_bytes} bytes, least recently used first, or the session was disposed); await session.refresh() or begin a turn to load it again, or raise the cache option's limits")]
    Evicted { id: String, max_sessions: usize, max_bytes: u64 },
    /// `error`, about the value at `path` of the caller's input (an import's).
    #[error("{path}: {error}")]
    AtPath { path: String, error: Box<EngineError> },
    /// The session was committed under a newer application schema than this store's.
    #[error("this session was written under application schema {stored}, and this store supports up to {supported}; upgrade the application (its schema option) to read it; nothing was written")]
    SchemaVersion { stored: u64, supported: u64 },
    /// A migration of the application's data threw, returned what is not JSON, or is missing.
    #[error("migrating the session's data from schema {from} to {to} failed: {message}; the session's stored data is intact (no commit was written); fix the migration and try again")]
    Migration { from: u64, to: u64, message: String, cause: Option<std::rc::Rc<dyn std::any::Any>> },
}

impl EngineError {
    /// A record that cannot be decoded or is missing: corrupt, or taken by another store's delete or
    /// prune after this one read the head that names it (the callers read the head again to tell).
    pub(crate) fn is_corrupt_record(&self) -> bool {
        matches!(self, EngineError::Core(CoreError::CorruptRecord { .. }))
    }

    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Core(error) => error.code(),
            EngineError::Store(error) => error.code(),
            EngineError::NotFound(_) => "NOT_FOUND",
            EngineError::Conflict(_) => "VERSION_CONFLICT",
            EngineError::Evicted { .. } => "LIMIT_EXCEEDED",
            EngineError::StoreClosed => "STORE_CLOSED",
            EngineError::UnsafeStore => "UNSAFE_STORE",
            EngineError::SchemaVersion { .. } => "SCHEMA_VERSION",
            EngineError::AtPath { error, .. } => error.code(),
            EngineError::Migration { .. } => "MIGRATION_FAILED",
        }
    }
}

impl From<StoreError> for EngineError {
    /// A record the backend could not give back whole is corrupt, not a storage failure.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt { key, detail } => EngineError::Core(CoreError::CorruptRecord { key, detail }),
            other => EngineError::Store(other),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
