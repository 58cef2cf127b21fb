//! Personal access tokens as the API sees them (DESIGN.md section 4): the create request
//! and every rule it must pass, the token object GitLab clients know, and the engine's
//! view of a stored token.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::clock;
use crate::directory::Invalid;
use crate::domain::{AccessKind, AccessLevel, MinRole};
use crate::engine::{Grant, GranularScope, GroupId, ProjectId, Snapshot, Token, TokenId, UserId};
use crate::store::{InstanceSettings, TokenKindName, TokenRecord};

/// One granular scope, as in GitLab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GranularScopeBody {
    pub access: AccessKind,
    /// Only with `selected_memberships`.
    #[serde(default)]
    pub project_ids: Vec<u64>,
    /// Only with `selected_memberships`.
    #[serde(default)]
    pub group_ids: Vec<u64>,
    pub permissions: Vec<String>,
}

/// `POST /v1/users/{user_id}/tokens`: `scopes` makes a legacy token, `granular_scopes`
/// a fine-grained one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `YYYY-MM-DD`; the token stops working at 00:00 UTC that day.
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub granular_scopes: Option<Vec<GranularScopeBody>>,
    /// CIDR ranges or single addresses the token may be used from.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// A catalog template (`GET /v1/catalog/templates`) to start from: it fills `name`,
    /// `description` and one granular scope, each overridable by the fields below.
    #[serde(default)]
    pub template: Option<String>,
    /// With `template`: the scope's access kind instead of the template's.
    #[serde(default)]
    pub access: Option<AccessKind>,
    /// With `template`: the scope's projects (for `selected_memberships`).
    #[serde(default)]
    pub project_ids: Option<Vec<u64>>,
    /// With `template`: the scope's groups (for `selected_memberships`).
    #[serde(default)]
    pub group_ids: Option<Vec<u64>>,
    /// With `template`: the scope's permissions instead of the template's.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
}

impl CreateToken {
    /// Fills what a template gives and the request leaves out; the result is an
    /// ordinary fine-grained request, validated like any other.
    pub fn with_template(self, catalog: &Catalog) -> Result<Self, Invalid> {
        let Some(name) = self.template.as_deref() else {
            for (field, given) in [
                ("access", self.access.is_some()),
                ("project_ids", self.project_ids.is_some()),
                ("group_ids", self.group_ids.is_some()),
                ("permissions", self.permissions.is_some()),
            ] {
                if given {
                    return Err(Invalid::new(field, "is only taken with `template`"));
                }
            }
            return Ok(self);
        };
        let template = catalog.template(name).ok_or_else(|| {
            Invalid::new(
                "template",
                format!("`{name}` is not a template of the catalog"),
            )
        })?;
        if self.scopes.is_some() || self.granular_scopes.is_some() {
            return Err(Invalid::new(
                "template",
                "cannot be given with `scopes` or `granular_scopes`: a template makes one granular scope",
            ));
        }
        let permissions = self.permissions.unwrap_or_else(|| {
            template
                .permissions
                .iter()
                .map(|&id| catalog.permission(id).name.clone())
                .collect()
        });
        Ok(Self {
            name: self.name.or_else(|| Some(template.name.clone())),
            description: self
                .description
                .or_else(|| Some(template.description.clone())),
            expires_at: self.expires_at,
            scopes: None,
            granular_scopes: Some(vec![GranularScopeBody {
                access: self.access.unwrap_or(template.access),
                project_ids: self.project_ids.unwrap_or_default(),
                group_ids: self.group_ids.unwrap_or_default(),
                permissions,
            }]),
            allowed_ips: self.allowed_ips,
            template: None,
            access: None,
            project_ids: None,
            group_ids: None,
            permissions: None,
        })
    }
}

/// `PATCH /v1/tokens/{id}`: what is absent stays. A legacy token changes `scopes`, a
/// fine-grained one `granular_scopes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateToken {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub granular_scopes: Option<Vec<GranularScopeBody>>,
}

/// `POST /v1/tokens/{id}/duplicate`: a new token prefilled from this one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateToken {
    #[serde(default)]
    pub name: Option<String>,
    /// `YYYY-MM-DD`; default: the original's.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/tokens/{id}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateToken {
    /// `YYYY-MM-DD`; default: a week from today (as GitLab), or the instance's maximum
    /// lifetime when that is shorter.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/tokens/revoke-by-value`: a leaked token, as a secret scanner found it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeByValue {
    pub token: String,
}

impl CreateToken {
    /// A create request prefilled from an existing token.
    pub fn like(record: &TokenRecord) -> Self {
        let fine = record.kind == TokenKindName::FineGrained;
        Self {
            name: Some(record.name.clone()),
            description: Some(record.description.clone()),
            expires_at: record.expires_at.clone(),
            scopes: (!fine).then(|| record.scopes.clone()),
            granular_scopes: fine.then(|| record.granular_scopes.clone()),
            allowed_ips: record.allowed_ips.clone(),
            ..Self::default()
        }
    }
}

/// A create request that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub kind: TokenKindName,
    pub name: String,
    pub description: String,
    pub expires_at: Option<Date>,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<GranularScopeBody>,
    pub allowed_ips: Vec<IpNet>,
}

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 1024;
const MAX_ALLOWED_IPS: usize = 100;
const MAX_SCOPES: usize = 50;

impl CreateToken {
    /// Checks every rule of DESIGN.md section 4 against the catalog, the directory and
    /// the instance settings. The first broken rule is the error, naming its field.
    pub fn validate(
        &self,
        user_id: UserId,
        catalog: &Catalog,
        snapshot: &Snapshot,
        settings: &InstanceSettings,
        today: Date,
    ) -> Result<ValidToken, Invalid> {
        let name = self.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(Invalid::new("name", "is required"));
        }
        if name.len() > MAX_NAME {
            return Err(Invalid::new("name", "must be at most 255 characters"));
        }
        let description = self.description.clone().unwrap_or_default();
        if description.len() > MAX_DESCRIPTION {
            return Err(Invalid::new(
                "description",
                "must be at most 1024 characters",
            ));
        }
        let expires_at = check_expiry(self.expires_at.as_deref(), settings, today)?;
        let allowed_ips = parse_allowed_ips(&self.allowed_ips)?;
        let user = snapshot
            .user(user_id)
            .ok_or_else(|| Invalid::new("user_id", format!("user {} does not exist", user_id.0)))?;

        let (kind, scopes, granular_scopes) = match (&self.scopes, &self.granular_scopes) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    "granular_scopes",
                    "a token has either `scopes` (legacy) or `granular_scopes` (fine-grained), not both",
                ));
            }
            (None, None) => {
                return Err(Invalid::new(
                    "scopes",
                    "is required: give `scopes` (legacy) or `granular_scopes` (fine-grained)",
                ));
            }
            (Some(scopes), None) => {
                if !settings.allow_legacy_token_creation {
                    return Err(Invalid::new(
                        "scopes",
                        "legacy tokens can no longer be created on this instance: use `granular_scopes`",
                    ));
                }
                if scopes.is_empty() {
                    return Err(Invalid::new("scopes", "must name at least one scope"));
                }
                let mut names: Vec<String> = Vec::new();
                for (i, scope) in scopes.iter().enumerate() {
                    let known = catalog.scope(scope).ok_or_else(|| {
                        Invalid::new(format!("scopes[{i}]"), format!("`{scope}` is not a scope"))
                    })?;
                    // Whoever asks: a manage key, an admin, or a token.
                    if known.admin_only && !user.admin {
                        return Err(Invalid::new(
                            format!("scopes[{i}]"),
                            format!("`{scope}` is given only to administrators"),
                        ));
                    }
                    if !names.contains(scope) {
                        names.push(scope.clone());
                    }
                }
                (TokenKindName::Legacy, names, Vec::new())
            }
            (None, Some(granular)) => {
                if granular.is_empty() {
                    return Err(Invalid::new(
                        "granular_scopes",
                        "must hold at least one scope",
                    ));
                }
                if granular.len() > MAX_SCOPES {
                    return Err(Invalid::new(
                        "granular_scopes",
                        "must hold at most 50 scopes",
                    ));
                }
                for (i, scope) in granular.iter().enumerate() {
                    check_granular_scope(scope, user_id, user.admin, catalog, snapshot)
                        .map_err(|e| e.within(&format!("granular_scopes[{i}]")))?;
                }
                (TokenKindName::FineGrained, Vec::new(), granular.clone())
            }
        };
        Ok(ValidToken {
            kind,
            name: name.to_owned(),
            description,
            expires_at,
            scopes,
            granular_scopes,
            allowed_ips,
        })
    }
}

fn check_expiry(
    expires_at: Option<&str>,
    settings: &InstanceSettings,
    today: Date,
) -> Result<Option<Date>, Invalid> {
    let Some(text) = expires_at else {
        if settings.require_expiry {
            return Err(Invalid::new(
                "expires_at",
                "is required on this instance (YYYY-MM-DD)",
            ));
        }
        return Ok(None);
    };
    let date = clock::parse_date(text).ok_or_else(|| {
        Invalid::new(
            "expires_at",
            format!("must be a date YYYY-MM-DD, not `{text}`"),
        )
    })?;
    if date <= today {
        return Err(Invalid::new(
            "expires_at",
            "must be in the future (a token expires at 00:00 UTC of that day)",
        ));
    }
    let limit = today.saturating_add(time::Duration::days(i64::from(settings.max_lifetime_days)));
    if date > limit {
        return Err(Invalid::new(
            "expires_at",
            format!(
                "must be at most {} days from today ({})",
                settings.max_lifetime_days,
                clock::format_date(limit)
            ),
        ));
    }
    Ok(Some(date))
}

fn parse_allowed_ips(ips: &[String]) -> Result<Vec<IpNet>, Invalid> {
    if ips.len() > MAX_ALLOWED_IPS {
        return Err(Invalid::new("allowed_ips", "must hold at most 100 entries"));
    }
    ips.iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    Invalid::new(
                        format!("allowed_ips[{i}]"),
                        format!("`{text}` is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

fn check_granular_scope(
    scope: &GranularScopeBody,
    user_id: UserId,
    user_is_admin: bool,
    catalog: &Catalog,
    snapshot: &Snapshot,
) -> Result<(), Invalid> {
    let selected = scope.access == AccessKind::SelectedMemberships;
    let names_namespaces = !(scope.project_ids.is_empty() && scope.group_ids.is_empty());
    if !selected && names_namespaces {
        let field = if scope.project_ids.is_empty() {
            "group_ids"
        } else {
            "project_ids"
        };
        return Err(Invalid::new(
            field,
            "is only allowed with `selected_memberships` access",
        ));
    }
    if selected && !names_namespaces {
        return Err(Invalid::new(
            "project_ids",
            "`selected_memberships` needs at least one project or group",
        ));
    }
    if scope.access == AccessKind::Instance && !user_is_admin {
        return Err(Invalid::new(
            "access",
            "`instance` access is for administrators only",
        ));
    }
    for (i, &id) in scope.project_ids.iter().enumerate() {
        let level = snapshot.project_member_level(user_id, ProjectId(id));
        check_member(level, format!("project_ids[{i}]"), "project", id)?;
    }
    for (i, &id) in scope.group_ids.iter().enumerate() {
        let level = snapshot.group_member_level(user_id, GroupId(id));
        check_member(level, format!("group_ids[{i}]"), "group", id)?;
    }
    if scope.permissions.is_empty() {
        return Err(Invalid::new(
            "permissions",
            "must name at least one permission",
        ));
    }
    let boundaries = scope.access.boundaries();
    for (i, name) in scope.permissions.iter().enumerate() {
        let field = || format!("permissions[{i}]");
        let permission = catalog
            .permission_by_name(name)
            .ok_or_else(|| Invalid::new(field(), format!("`{name}` is not a permission")))?;
        if !user_is_admin
            && boundaries
                .iter()
                .any(|&b| permission.min_role(b) == Some(MinRole::Admin))
        {
            return Err(Invalid::new(
                field(),
                format!("`{name}` is given only to administrators"),
            ));
        }
        if !boundaries.iter().any(|&b| permission.min_role(b).is_some()) {
            return Err(Invalid::new(
                field(),
                format!(
                    "`{name}` does not apply to `{}` access",
                    serde_json::to_value(scope.access)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

fn check_member(
    level: Option<AccessLevel>,
    field: String,
    what: &str,
    id: u64,
) -> Result<(), Invalid> {
    match level {
        None => Err(Invalid::new(field, format!("{what} {id} does not exist"))),
        Some(level) if level < AccessLevel::GUEST => Err(Invalid::new(
            field,
            format!("the user is not a member of {what} {id}"),
        )),
        Some(_) => Ok(()),
    }
}

/// What a legacy or fine-grained token grants, from its scope names; `None` when a name
/// is not in the catalog (or `kind` is `job`).
pub fn personal_grant(
    kind: TokenKindName,
    scopes: &[String],
    granular_scopes: &[GranularScopeBody],
    catalog: &Catalog,
) -> Option<Grant> {
    match kind {
        TokenKindName::Legacy => Grant::legacy(catalog, scopes.iter().map(String::as_str)).ok(),
        TokenKindName::FineGrained => Some(Grant::FineGrained {
            scopes: granular_scopes
                .iter()
                .map(|s| {
                    GranularScope::new(
                        catalog,
                        s.access,
                        s.project_ids.iter().copied().map(ProjectId),
                        s.group_ids.iter().copied().map(GroupId),
                        s.permissions.iter().map(String::as_str),
                    )
                    .ok()
                })
                .collect::<Option<_>>()?,
        }),
        TokenKindName::Job => None,
    }
}

/// The engine's view of a stored token. `None` when the record no longer makes sense
/// against the catalog (a permission or scope that was removed): such a token is dead.
pub fn engine_token(record: &TokenRecord, catalog: &Catalog) -> Option<Token> {
    let grant = match record.kind {
        TokenKindName::Job => {
            let job = record.job?;
            Grant::Job {
                project: ProjectId(job.project_id),
                job_id: job.job_id,
            }
        }
        kind => personal_grant(kind, &record.scopes, &record.granular_scopes, catalog)?,
    };
    // PATs expire at 00:00 UTC of their date, job tokens at their instant.
    let expires_at = match (&record.job, &record.expires_at) {
        (Some(job), _) => Some(job.expires_unix),
        (None, Some(text)) => Some(clock::midnight(clock::parse_date(text)?)),
        (None, None) => None,
    };
    let allowed_ips = record
        .allowed_ips
        .iter()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    Some(Token {
        id: TokenId(record.id),
        user_id: UserId(record.user_id),
        revoked: record.revoked,
        expires_at,
        allowed_ips,
        grant,
    })
}

/// The token object of the API, with GitLab's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub user_id: u64,
    pub kind: TokenKindName,
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
        let expired = record
            .expires_at
            .as_deref()
            .and_then(clock::parse_date)
            .is_some_and(|date| date <= today);
        Self {
            id: record.id,
            name: record.name.clone(),
            description: record.description.clone(),
            user_id: record.user_id,
            kind: record.kind,
            active: !record.revoked && !expired,
            revoked: record.revoked,
            expired,
            granular: record.kind == TokenKindName::FineGrained,
            scopes: record.scopes.clone(),
            granular_scopes: record.granular_scopes.clone(),
            allowed_ips: record.allowed_ips.clone(),
            created_at: clock::rfc3339(record.created_at),
            expires_at: record.expires_at.clone(),
            last_used_at: record.last_used_at.map(clock::rfc3339),
            last_used_ips: record.last_used_ips.clone(),
            token: None,
        }
    }
}
