//! The requests that make and change a personal access token (DESIGN.md section 4),
//! and every rule a create request must pass to become a `ValidToken`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use super::{Scope, TokenKind, TokenRecord};
use crate::catalog::Catalog;
use crate::clock;
use crate::directory::Invalid;
use crate::domain::{AccessKind, AccessLevel, MinRole};
use crate::engine::{GroupId, ProjectId, Snapshot, UserId};
use crate::settings::InstanceSettings;

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
        let fine = record.kind == TokenKind::FineGrained;
        Self {
            name: Some(record.name.clone()),
            description: Some(record.description.clone()),
            expires_at: record.expires_at.map(clock::format_date),
            scopes: (!fine).then(|| record.scopes.clone()),
            granular_scopes: fine.then(|| {
                record
                    .granular_scopes
                    .iter()
                    .map(GranularScopeBody::from)
                    .collect()
            }),
            allowed_ips: record.allowed_ips.iter().map(ToString::to_string).collect(),
            ..Self::default()
        }
    }
}

/// A create request that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub kind: TokenKind,
    pub name: String,
    pub description: String,
    pub expires_at: Option<Date>,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<Scope>,
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
                (TokenKind::Legacy, names, Vec::new())
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
                let scopes = granular
                    .iter()
                    .enumerate()
                    .map(|(i, scope)| {
                        check_granular_scope(scope, user_id, user.admin, catalog, snapshot)
                            .map_err(|e| e.within(&format!("granular_scopes[{i}]")))
                    })
                    .collect::<Result<_, _>>()?;
                (TokenKind::FineGrained, Vec::new(), scopes)
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
) -> Result<Scope, Invalid> {
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
                    scope.access.as_str()
                ),
            ));
        }
    }
    Ok(Scope {
        access: scope.access,
        project_ids: scope.project_ids.clone(),
        group_ids: scope.group_ids.clone(),
        permissions: scope.permissions.clone(),
    })
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
