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
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Core(error) => error.code(),
            EngineError::Store(_) => "STORAGE",
            EngineError::NotFound(_) => "NOT_FOUND",
            EngineError::Conflict(_) => "VERSION_CONFLICT",
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
