//! The audit trail's events: one per change, written in the transaction of the change.

use serde::Serialize;
use utoipa::ToSchema;

/// An event to record. `details` never holds a token or key plaintext.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// `service_key:<id>` or `admin_key` (the bootstrap key).
    pub actor: String,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: u64,
    pub source_ip: Option<String>,
    pub details: serde_json::Value,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: u64,
    /// Unix seconds.
    #[serde(skip)]
    pub created_at_unix: i64,
    /// RFC 3339.
    pub created_at: String,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: u64,
    pub source_ip: Option<String>,
    /// What changed: for updates, `{"before": ..., "after": ...}`.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}
