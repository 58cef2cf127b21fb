//! Personal access tokens and CI/CD job tokens (DESIGN.md sections 4 and 8) as patrol
//! holds them: a stored token with every field parsed, its granular scopes, and the
//! engine's view of it. The requests that make and change one are in `request`, the
//! token object of the API in `view`.

mod request;
mod view;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::clock;
use crate::domain::AccessKind;
use crate::engine::{Grant, GranularScope, GroupId, ProjectId, Token, TokenId, UserId};

pub use request::{
    CreateToken, DuplicateToken, GranularScopeBody, RevokeByValue, RotateToken, UpdateToken,
    ValidToken,
};
pub use view::TokenView;

/// What a token is: what it grants is read from its scopes, its granular scopes or its
/// job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Legacy,
    FineGrained,
    Job,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::FineGrained => "fine_grained",
            Self::Job => "job",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Legacy, Self::FineGrained, Self::Job]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Neither revoked nor expired.
    Active,
    Inactive,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

/// One granular scope of a fine-grained token, as validated at creation: every
/// permission is a name of the catalog, every namespace one the user belonged to.
/// Names, not catalog ids, are what is kept: ids are positions in one loaded catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub access: AccessKind,
    pub project_ids: Vec<u64>,
    pub group_ids: Vec<u64>,
    pub permissions: Vec<String>,
}

/// A stored token (without its plaintext, which is never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: u64,
    pub user_id: u64,
    pub kind: TokenKind,
    pub name: String,
    pub description: String,
    pub lookup_id: String,
    pub secret_hash: String,
    /// A legacy token's scopes.
    pub scopes: Vec<String>,
    /// A fine-grained token's scopes.
    pub granular_scopes: Vec<Scope>,
    pub allowed_ips: Vec<IpNet>,
    pub created_at: i64,
    /// The token stops working at 00:00 UTC that day.
    pub expires_at: Option<Date>,
    pub revoked: bool,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Most recent first.
    pub last_used_ips: Vec<IpAddr>,
    /// Job tokens only: the job the token belongs to.
    pub job: Option<JobRef>,
    /// The id of the first token of its rotation family (its own id if it started one).
    pub family_id: u64,
}

/// What ties a job token to its CI/CD job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRef {
    pub project_id: u64,
    pub job_id: u64,
    /// Unix seconds at which the token stops working.
    pub expires_unix: i64,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// A token about to be written: a record without what the store assigns.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTokenRecord {
    pub user_id: u64,
    pub kind: TokenKind,
    pub name: String,
    pub description: String,
    pub lookup_id: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<Scope>,
    pub allowed_ips: Vec<IpNet>,
    pub created_at: i64,
    pub expires_at: Option<Date>,
    pub job: Option<JobRef>,
    /// A rotation's successor: the family it joins. `None` starts a family.
    pub family_id: Option<u64>,
}

impl NewTokenRecord {
    /// The record this is once written with `id`.
    pub fn into_record(self, id: u64) -> TokenRecord {
        TokenRecord {
            id,
            user_id: self.user_id,
            kind: self.kind,
            name: self.name,
            description: self.description,
            lookup_id: self.lookup_id,
            secret_hash: self.secret_hash,
            scopes: self.scopes,
            granular_scopes: self.granular_scopes,
            allowed_ips: self.allowed_ips,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked: false,
            revoked_at: None,
            last_used_at: None,
            last_used_ips: Vec::new(),
            job: self.job,
            family_id: self.family_id.unwrap_or(id),
        }
    }
}

impl std::fmt::Debug for NewTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenRecord")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// Whether the token's date has come (job tokens expire by their job, not a date).
    pub fn expired_on(&self, today: Date) -> bool {
        self.expires_at.is_some_and(|date| date <= today)
    }
}

/// What a legacy or fine-grained token grants, from its scope names; `None` when a name
/// is not in the catalog (or `kind` is `job`).
pub fn personal_grant(
    kind: TokenKind,
    scopes: &[String],
    granular_scopes: &[Scope],
    catalog: &Catalog,
) -> Option<Grant> {
    match kind {
        TokenKind::Legacy => Grant::legacy(catalog, scopes.iter().map(String::as_str)).ok(),
        TokenKind::FineGrained => Some(Grant::FineGrained {
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
        TokenKind::Job => None,
    }
}

/// The engine's view of a stored token. `None` when the record no longer makes sense
/// against the catalog (a permission or scope that was removed): such a token is dead.
pub fn engine_token(record: &TokenRecord, catalog: &Catalog) -> Option<Token> {
    let grant = match record.kind {
        TokenKind::Job => {
            let job = record.job?;
            Grant::Job {
                project: ProjectId(job.project_id),
                job_id: job.job_id,
            }
        }
        kind => personal_grant(kind, &record.scopes, &record.granular_scopes, catalog)?,
    };
    // PATs expire at 00:00 UTC of their date, job tokens at their instant.
    let expires_at = match record.job {
        Some(job) => Some(job.expires_unix),
        None => record.expires_at.map(clock::midnight),
    };
    Some(Token {
        id: TokenId(record.id),
        user_id: UserId(record.user_id),
        revoked: record.revoked,
        expires_at,
        allowed_ips: record.allowed_ips.clone(),
        grant,
    })
}
