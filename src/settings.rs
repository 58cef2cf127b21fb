//! The instance's token rules, which an administrator changes at runtime.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The token rules an admin sets at runtime (`PUT /v1/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceSettings {
    /// The longest a token may live, in days (1 to 3650).
    pub max_lifetime_days: u32,
    /// Whether every new token must have an expiry date.
    pub require_expiry: bool,
    /// Whether legacy (scoped) tokens may still be created.
    pub allow_legacy_token_creation: bool,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            max_lifetime_days: 365,
            require_expiry: true,
            allow_legacy_token_creation: true,
        }
    }
}
