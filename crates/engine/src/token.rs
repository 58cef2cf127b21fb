//! A token as the engine sees it: verified elsewhere, described here by what it grants.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashSet;
use thiserror::Error;

use patrol_catalog::PermSet;
use patrol_catalog::domain::AccessKind;
use patrol_catalog::{Catalog, PermissionId, ScopeSet};

use crate::snapshot::{GroupId, ProjectId, TokenId, UserId};

/// A token as the decision engine sees it: verified elsewhere, described here.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: TokenId,
    pub user_id: UserId,
    pub revoked: bool,
    /// Unix seconds at which the token stops working (PATs: 00:00 UTC of the expiry date).
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<IpNet>,
    pub grant: Grant,
}

impl Token {
    /// Whether the token holds `permission` anywhere (any scope, any boundary).
    pub fn holds_anywhere(&self, permission: PermissionId) -> bool {
        self.grant.holds_anywhere(permission)
    }

    pub fn ip_allowed(&self, client_ip: Option<IpAddr>) -> bool {
        if self.allowed_ips.is_empty() {
            return true;
        }
        client_ip.is_some_and(|ip| self.allowed_ips.iter().any(|net| net.contains(&ip)))
    }
}

#[derive(Debug, Clone)]
pub enum Grant {
    /// A legacy token: its scopes, and their permissions closed under `implies`.
    Legacy {
        permissions: PermSet,
        scopes: ScopeSet,
    },
    FineGrained {
        scopes: Vec<GranularScope>,
    },
    /// A CI/CD job token of a job in `project`.
    Job {
        project: ProjectId,
        job_id: u64,
    },
}

impl Grant {
    /// Whether the grant holds `permission` anywhere (any scope, any boundary).
    pub fn holds_anywhere(&self, permission: PermissionId) -> bool {
        match self {
            Self::Legacy { permissions, .. } => permissions.contains(permission),
            Self::FineGrained { scopes } => {
                scopes.iter().any(|s| s.permissions.contains(permission))
            }
            Self::Job { .. } => false,
        }
    }

    /// A legacy grant from scope names; the first unknown name is the error.
    pub fn legacy<'a>(
        catalog: &Catalog,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, UnknownName> {
        let mut permissions = catalog.empty_set();
        let mut set = ScopeSet::default();
        for name in scopes {
            let scope = catalog
                .scope(name)
                .ok_or_else(|| UnknownName(name.to_owned()))?;
            permissions.union_with(&scope.permissions);
            set.insert(scope.index);
        }
        Ok(Self::Legacy {
            permissions,
            scopes: set,
        })
    }
}

/// One granular scope of a fine-grained token.
#[derive(Debug, Clone)]
pub struct GranularScope {
    pub access: AccessKind,
    pub project_ids: FxHashSet<ProjectId>,
    pub group_ids: FxHashSet<GroupId>,
    /// The scope's permissions, closed under `implies`.
    pub permissions: PermSet,
}

impl GranularScope {
    /// A scope from permission names; the first unknown name is the error.
    pub fn new<'a>(
        catalog: &Catalog,
        access: AccessKind,
        project_ids: impl IntoIterator<Item = ProjectId>,
        group_ids: impl IntoIterator<Item = GroupId>,
        permissions: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, UnknownName> {
        let mut set = catalog.empty_set();
        for name in permissions {
            let id = catalog
                .permission_id(name)
                .ok_or_else(|| UnknownName(name.to_owned()))?;
            set.union_with(&catalog.permission(id).implied);
        }
        Ok(Self {
            access,
            project_ids: project_ids.into_iter().collect(),
            group_ids: group_ids.into_iter().collect(),
            permissions: set,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);
