//! The token object of the API.

use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use super::{GranularScopeBody, Scope, TokenKind, TokenRecord};
use crate::clock;

/// The token object of the API, with GitLab's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub user_id: u64,
    pub kind: TokenKind,
    pub active: bool,
    pub revoked: bool,
    pub expired: bool,
    pub granular: bool,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<GranularScopeBody>,
    pub allowed_ips: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// `YYYY-MM-DD`.
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ips: Vec<String>,
    /// The plaintext: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TokenView {
    pub fn of(record: &TokenRecord, today: Date) -> Self {
        let expired = record.expired_on(today);
        Self {
            id: record.id,
            name: record.name.clone(),
            description: record.description.clone(),
            user_id: record.user_id,
            kind: record.kind,
            active: !record.revoked && !expired,
            revoked: record.revoked,
            expired,
            granular: record.kind == TokenKind::FineGrained,
            scopes: record.scopes.clone(),
            granular_scopes: record
                .granular_scopes
                .iter()
                .map(GranularScopeBody::from)
                .collect(),
            allowed_ips: record.allowed_ips.iter().map(ToString::to_string).collect(),
            created_at: clock::rfc3339(record.created_at),
            expires_at: record.expires_at.map(clock::format_date),
            last_used_at: record.last_used_at.map(clock::rfc3339),
            last_used_ips: record
                .last_used_ips
                .iter()
                .map(ToString::to_string)
                .collect(),
            token: None,
        }
    }
}

impl From<&Scope> for GranularScopeBody {
    fn from(scope: &Scope) -> Self {
        Self {
            access: scope.access,
            project_ids: scope.project_ids.clone(),
            group_ids: scope.group_ids.clone(),
            permissions: scope.permissions.clone(),
        }
    }
}
