//! The engine's answer, and why: the reason for every deny, and a sentence for people.

use std::fmt;

use patrol_catalog::domain::BoundaryKind;
use patrol_catalog::{Catalog, PermissionId};

use crate::{NsIdx, TokenId, UserId};

/// Why a decision came out as it did, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    TokenInvalid,
    TokenRevoked,
    TokenExpired,
    UserBlocked,
    IpNotAllowed,
    UnknownPermission,
    UnknownRoute,
    BoundaryNotFound,
    BoundaryUnresolved,
    BoundaryMismatch,
    LegacyTokenForbidden,
    JobTokenScopeDenied,
    OutsideTokenBoundary,
    PermissionNotGranted,
    FeatureDisabled,
    PlanRequired,
    InsufficientRole,
    ConfidentialResource,
    Granted,
}

impl Reason {
    pub const ALL: [Self; 19] = [
        Self::TokenInvalid,
        Self::TokenRevoked,
        Self::TokenExpired,
        Self::UserBlocked,
        Self::IpNotAllowed,
        Self::UnknownPermission,
        Self::UnknownRoute,
        Self::BoundaryNotFound,
        Self::BoundaryUnresolved,
        Self::BoundaryMismatch,
        Self::LegacyTokenForbidden,
        Self::JobTokenScopeDenied,
        Self::OutsideTokenBoundary,
        Self::PermissionNotGranted,
        Self::FeatureDisabled,
        Self::PlanRequired,
        Self::InsufficientRole,
        Self::ConfidentialResource,
        Self::Granted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenInvalid => "token_invalid",
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
            Self::UserBlocked => "user_blocked",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::UnknownPermission => "unknown_permission",
            Self::UnknownRoute => "unknown_route",
            Self::BoundaryNotFound => "boundary_not_found",
            Self::BoundaryUnresolved => "boundary_unresolved",
            Self::BoundaryMismatch => "boundary_mismatch",
            Self::LegacyTokenForbidden => "legacy_token_forbidden",
            Self::JobTokenScopeDenied => "job_token_scope_denied",
            Self::OutsideTokenBoundary => "outside_token_boundary",
            Self::PermissionNotGranted => "permission_not_granted",
            Self::FeatureDisabled => "feature_disabled",
            Self::PlanRequired => "plan_required",
            Self::InsufficientRole => "insufficient_role",
            Self::ConfidentialResource => "confidential_resource",
            Self::Granted => "granted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer. Borrowed from the catalog so that making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'c> {
    pub allowed: bool,
    pub reason: Reason,
    /// Every permission the action needs (the permission or route's, then `requires`).
    pub required: &'c [PermissionId],
    /// The required permission that failed, when one did.
    pub failed: Option<PermissionId>,
    pub token_id: Option<TokenId>,
    pub user_id: Option<UserId>,
    pub boundary: Option<BoundaryKind>,
    /// The namespace the action was asked on, once it was found.
    pub namespace: Option<NsIdx>,
}

impl Decision<'_> {
    pub(crate) fn deny(reason: Reason) -> Self {
        Self {
            allowed: false,
            reason,
            required: &[],
            failed: None,
            token_id: None,
            user_id: None,
            boundary: None,
            namespace: None,
        }
    }

    /// The names of the required permissions.
    pub fn required_names<'a>(&'a self, catalog: &'a Catalog) -> impl Iterator<Item = &'a str> {
        self.required
            .iter()
            .map(|&id| catalog.permission(id).name.as_str())
    }

    /// A sentence for people; built only when asked for.
    pub fn message(&self, catalog: &Catalog) -> String {
        let permission = self
            .failed
            .or_else(|| self.required.first().copied())
            .map(|id| catalog.permission(id).name.as_str())
            .unwrap_or("the action");
        let boundary = self.boundary.map_or("this boundary", BoundaryKind::as_str);
        match self.reason {
            Reason::TokenInvalid => "the token is not valid".to_owned(),
            Reason::TokenRevoked => "the token has been revoked".to_owned(),
            Reason::TokenExpired => "the token has expired".to_owned(),
            Reason::UserBlocked => "the token's user is blocked".to_owned(),
            Reason::IpNotAllowed => {
                "the client address is not in the token's allowed IPs".to_owned()
            }
            Reason::UnknownPermission => "the permission is not in the catalog".to_owned(),
            Reason::UnknownRoute => "no permission in the catalog covers this route".to_owned(),
            Reason::BoundaryNotFound => "the boundary does not exist".to_owned(),
            Reason::BoundaryUnresolved => {
                "the request does not say where the permission is needed".to_owned()
            }
            Reason::BoundaryMismatch => format!("`{permission}` does not apply to a {boundary}"),
            Reason::LegacyTokenForbidden => {
                "the top-level group allows only fine-grained tokens".to_owned()
            }
            Reason::JobTokenScopeDenied => format!(
                "the target project's job token allowlist does not allow `{permission}` for this job"
            ),
            Reason::OutsideTokenBoundary => "no scope of the token covers this boundary".to_owned(),
            Reason::PermissionNotGranted => format!("the token does not grant `{permission}`"),
            Reason::FeatureDisabled => {
                format!("the feature that `{permission}` needs is not available here")
            }
            Reason::PlanRequired => format!("`{permission}` needs a higher plan"),
            Reason::InsufficientRole => {
                format!("the token's user does not have the role `{permission}` needs")
            }
            Reason::ConfidentialResource => {
                "the resource is confidential: reporter or above, its author or an assignee only"
                    .to_owned()
            }
            Reason::Granted => "granted".to_owned(),
        }
    }
}
