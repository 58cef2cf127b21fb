//! Service keys (DESIGN.md section 6): what the main application, gateways and
//! operators present to call patrol, each with a role.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a service key may call (DESIGN.md section 6). Ordered: each role may do what
/// the ones before it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Decisions only.
    Authorize,
    /// Directory sync and tokens on behalf of users, and decisions.
    Manage,
    /// Everything, including settings, policies and service keys.
    Admin,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Manage => "manage",
            Self::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Authorize, Self::Manage, Self::Admin]
            .into_iter()
            .find(|role| role.as_str() == name)
    }
}

/// A service key as stored: the argon2id hash of its secret, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceKeyRecord {
    pub id: u64,
    pub name: String,
    pub role: KeyRole,
    pub lookup_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for ServiceKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A service key about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceKey {
    pub name: String,
    pub role: KeyRole,
    pub lookup_id: String,
    pub secret_hash: String,
    pub created_at: i64,
}
