//! CI/CD job tokens and project job token scopes (DESIGN.md section 8): request bodies,
//! their validation, answers, and a project's scope and allowlist as stored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::{Catalog, PolicySet};
use crate::clock;
use crate::directory::{Invalid, stored_id};
use crate::engine::{AllowlistLink, GroupId, ProjectId, Snapshot, UserId};
use crate::settings::InstanceSettings;

/// `POST /v1/jobs`: the CI system mints a token for one job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// The project the job runs in.
    pub project_id: u64,
    /// The user the job runs as.
    pub user_id: u64,
    pub job_id: u64,
    /// RFC 3339: when the token stops working even if the job never ends.
    pub expires_at: String,
}

/// A job as checked: the instant its token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidJob {
    pub project_id: u64,
    pub user_id: u64,
    pub job_id: u64,
    pub expires_unix: i64,
}

impl NewJob {
    /// Checks the job against the directory and the instance's maximum lifetime.
    pub fn validate(
        &self,
        snapshot: &Snapshot,
        settings: &InstanceSettings,
        now: i64,
    ) -> Result<ValidJob, Invalid> {
        if snapshot.project_path(ProjectId(self.project_id)).is_none() {
            return Err(Invalid::new(
                "project_id",
                format!("names project {}, which does not exist", self.project_id),
            ));
        }
        if snapshot.user(UserId(self.user_id)).is_none() {
            return Err(Invalid::new(
                "user_id",
                format!("names user {}, which does not exist", self.user_id),
            ));
        }
        stored_id(self.job_id, "job_id")?;
        let expires_unix = clock::parse_rfc3339(&self.expires_at).ok_or_else(|| {
            Invalid::new(
                "expires_at",
                "must be an RFC 3339 time such as 2026-11-23T00:00:00Z",
            )
        })?;
        if expires_unix <= now {
            return Err(Invalid::new("expires_at", "must be in the future"));
        }
        let max = now + i64::from(settings.max_lifetime_days) * 86_400;
        if expires_unix > max {
            return Err(Invalid::new(
                "expires_at",
                format!(
                    "may be at most {} days from now",
                    settings.max_lifetime_days
                ),
            ));
        }
        Ok(ValidJob {
            project_id: self.project_id,
            user_id: self.user_id,
            job_id: self.job_id,
            expires_unix,
        })
    }
}

/// A job's token. `token` is shown in the answer to `POST /v1/jobs` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// The token's id.
    pub id: u64,
    pub job_id: u64,
    pub project_id: u64,
    pub user_id: u64,
    /// RFC 3339.
    pub expires_at: String,
    pub token: String,
}

/// `PATCH /v1/projects/{id}/job-token-scope`: what is absent stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopePatch {
    #[serde(default)]
    pub inbound_enabled: Option<bool>,
    #[serde(default)]
    pub fine_grained_enabled: Option<bool>,
}

impl ScopePatch {
    pub fn apply(self, scope: JobTokenScopeRecord) -> JobTokenScopeRecord {
        JobTokenScopeRecord {
            project_id: scope.project_id,
            inbound_enabled: self.inbound_enabled.unwrap_or(scope.inbound_enabled),
            fine_grained_enabled: self
                .fine_grained_enabled
                .unwrap_or(scope.fine_grained_enabled),
        }
    }
}

/// `POST /v1/projects/{id}/job-token-scope/allowlist`: one source, and what its job
/// tokens may do here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowlistBody {
    #[serde(default)]
    pub source_project_id: Option<u64>,
    #[serde(default)]
    pub source_group_id: Option<u64>,
    /// Job token policies (`read_packages`, `admin_jobs`, ...). Used when the target has
    /// fine-grained permissions on; none means no access.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Act with the user's role, without fine-grained restriction.
    #[serde(default)]
    pub default_permissions: bool,
}

impl AllowlistBody {
    /// The entry this body asks for on `project_id`; policies deduplicated, in catalog
    /// order.
    pub fn validate(
        &self,
        project_id: u64,
        catalog: &Catalog,
        snapshot: &Snapshot,
        now: i64,
    ) -> Result<AllowlistRecord, Invalid> {
        let (source, source_id) = match (self.source_project_id, self.source_group_id) {
            (Some(id), None) => {
                if snapshot.project_path(ProjectId(id)).is_none() {
                    return Err(Invalid::new(
                        "source_project_id",
                        format!("names project {id}, which does not exist"),
                    ));
                }
                if id == project_id {
                    return Err(Invalid::new(
                        "source_project_id",
                        "is this project: its own job tokens always reach it",
                    ));
                }
                (SourceKind::Project, id)
            }
            (None, Some(id)) => {
                if snapshot.group_path(GroupId(id)).is_none() {
                    return Err(Invalid::new(
                        "source_group_id",
                        format!("names group {id}, which does not exist"),
                    ));
                }
                (SourceKind::Group, id)
            }
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    "source_group_id",
                    "cannot be given with `source_project_id`: one entry names one source",
                ));
            }
            (None, None) => {
                return Err(Invalid::new(
                    "source_project_id",
                    "or `source_group_id` is required",
                ));
            }
        };
        let mut ids = Vec::with_capacity(self.policies.len());
        for (i, name) in self.policies.iter().enumerate() {
            let id = catalog.policy_id(name).ok_or_else(|| {
                Invalid::new(
                    format!("policies[{i}]"),
                    format!("`{name}` is not a job token policy"),
                )
            })?;
            ids.push(id.0);
        }
        if self.default_permissions && !ids.is_empty() {
            return Err(Invalid::new(
                "policies",
                "must be empty when `default_permissions` is true",
            ));
        }
        ids.sort_unstable();
        ids.dedup();
        let policies = ids
            .into_iter()
            .map(|id| catalog.policy(crate::catalog::PolicyId(id)).name.clone())
            .collect();
        Ok(AllowlistRecord {
            project_id,
            source,
            source_id,
            default_permissions: self.default_permissions,
            policies,
            created_at: now,
        })
    }
}

/// An allowlist entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllowlistView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_project_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_group_id: Option<u64>,
    /// The source's full path.
    pub source_path: Option<String>,
    pub policies: Vec<String>,
    pub default_permissions: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl AllowlistView {
    pub fn of(entry: &AllowlistRecord, snapshot: &Snapshot) -> Self {
        let (project, group, path) = match entry.source {
            SourceKind::Project => (
                Some(entry.source_id),
                None,
                snapshot.project_path(ProjectId(entry.source_id)),
            ),
            SourceKind::Group => (
                None,
                Some(entry.source_id),
                snapshot.group_path(GroupId(entry.source_id)),
            ),
        };
        Self {
            source_project_id: project,
            source_group_id: group,
            source_path: path.map(str::to_owned),
            policies: entry.policies.clone(),
            default_permissions: entry.default_permissions,
            created_at: clock::rfc3339(entry.created_at),
        }
    }
}

/// The engine's view of an entry: its policies expanded by `implies`. A stored policy
/// the catalog no longer knows grants nothing.
pub fn link(entry: &AllowlistRecord, catalog: &Catalog) -> AllowlistLink {
    let mut policies = PolicySet::default();
    for name in &entry.policies {
        match catalog.policy_id(name) {
            Some(id) => policies.0 |= catalog.policy(id).implied.0,
            None => {
                tracing::warn!(policy = %name, "a stored job token policy is not in the catalog")
            }
        }
    }
    AllowlistLink {
        default_permissions: entry.default_permissions,
        policies,
    }
}

/// A project's inbound job token settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobTokenScopeRecord {
    pub project_id: u64,
    /// Whether only allowlisted projects' job tokens may reach this project.
    pub inbound_enabled: bool,
    /// Whether allowlist entries are bounded by their policies.
    pub fine_grained_enabled: bool,
}

impl JobTokenScopeRecord {
    /// What a project without a stored scope has: inbound on, fine-grained off.
    pub fn default_for(project_id: u64) -> Self {
        Self {
            project_id,
            inbound_enabled: true,
            fine_grained_enabled: false,
        }
    }
}

/// What an allowlist entry names: a project or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Project,
    Group,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Group => "group",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Project, Self::Group]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// One allowlist entry of a target project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowlistRecord {
    pub project_id: u64,
    pub source: SourceKind,
    pub source_id: u64,
    pub default_permissions: bool,
    /// Policy names as given (not expanded).
    pub policies: Vec<String>,
    pub created_at: i64,
}
