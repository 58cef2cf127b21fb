//! What the service answers when it cannot do what was asked: a refusal naming a
//! field, a conflict, something missing, or a store that cannot answer (503).

use thiserror::Error;

use super::changes::NotApplied;
use crate::directory::Invalid;
use crate::engine::SnapshotError;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum ServiceError {
    /// Input that breaks a rule: 422 naming the field.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The caller may not ask this: 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The store cannot answer, or the snapshot is being rebuilt: 503.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// A change the snapshot refused, as the 422 it is.
pub(super) fn refused(e: SnapshotError) -> ServiceError {
    let field = match &e {
        SnapshotError::UnknownUser(_) => "user_id",
        SnapshotError::UnknownGroup(_) | SnapshotError::Cycle(_) => "parent_id",
        SnapshotError::UnknownProject(_) => "project_id",
        SnapshotError::MoreVisibleThanParent { .. } => "visibility",
        SnapshotError::PathTaken(_) => "path",
        SnapshotError::NotEmpty(_) | SnapshotError::UserHasProjects(_) => "id",
        SnapshotError::NotTopLevel(_) => "group_id",
    };
    Invalid::new(field, e.to_string()).into()
}

/// A change of a batch that does not apply, named by its place (`users[3]`).
pub(super) fn refused_at(prefix: &str, e: NotApplied) -> ServiceError {
    let invalid = match e {
        NotApplied::Refused(e) => match refused(e) {
            ServiceError::Invalid(invalid) => invalid,
            other => return other,
        },
        NotApplied::Catalog(invalid) => invalid,
    };
    invalid.within(prefix).into()
}
