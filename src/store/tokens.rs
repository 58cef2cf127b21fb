//! Tokens at rest: only the argon2id hash of the secret, found by the public lookup id.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Result, Store, StoreError, Tx, db_id, from_db_id, from_json, on_pool, on_tx, to_json};
use crate::domain::AccessKind;
use crate::tokens::GranularScopeBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKindName {
    Legacy,
    FineGrained,
    Job,
}

impl TokenKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::FineGrained => "fine_grained",
            Self::Job => "job",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        from_json(&format!("\"{s}\""))
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

/// A token as stored (without its plaintext, which is never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: u64,
    pub user_id: u64,
    pub kind: TokenKindName,
    pub name: String,
    pub description: String,
    pub lookup_id: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<GranularScopeBody>,
    pub allowed_ips: Vec<String>,
    pub created_at: i64,
    /// `YYYY-MM-DD`: the token stops working at 00:00 UTC that day.
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ips: Vec<String>,
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

/// What creating a token writes.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTokenRow {
    pub user_id: u64,
    pub kind: TokenKindName,
    pub name: String,
    pub description: String,
    pub lookup_id: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<GranularScopeBody>,
    pub allowed_ips: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<String>,
    pub job: Option<JobRef>,
    /// A rotation's successor: the family it joins. `None` starts a family.
    pub family_id: Option<u64>,
}

impl NewTokenRow {
    /// The record this row is once written with `id`.
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

impl std::fmt::Debug for NewTokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenRow")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/tokens` filters and page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    pub user_id: Option<u64>,
    pub kind: Option<TokenKindName>,
    pub state: Option<TokenState>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub revoked: Option<bool>,
    /// Personal access tokens only (no job tokens).
    pub personal: bool,
    /// Fine-grained tokens with a granular scope of this access kind.
    pub access: Option<AccessKind>,
    /// Tokens that hold a permission: legacy tokens with one of `scopes`, fine-grained
    /// ones with one of `permissions` in a granular scope (the caller expands
    /// `implies`).
    pub holds: Option<Holds>,
    /// Unix seconds: last used at or after, before.
    pub last_used_after: Option<i64>,
    pub last_used_before: Option<i64>,
    /// `YYYY-MM-DD`: expiring on or after, before.
    pub expires_after: Option<String>,
    pub expires_before: Option<String>,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
    /// Today, `YYYY-MM-DD`: tokens expiring today or earlier are inactive.
    pub today: String,
}

/// What grants a permission: the legacy scopes and the granular permissions that do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds {
    pub scopes: Vec<String>,
    pub permissions: Vec<String>,
}

/// A value bound to a filter's placeholder.
#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
    Flag(bool),
}

impl TokenFilter {
    /// The `WHERE` clause and its values, numbered from `$1`.
    fn clause(&self) -> (String, Vec<Bind>) {
        let mut conditions = vec!["TRUE".to_owned()];
        let mut binds = Vec::new();
        let push = |binds: &mut Vec<Bind>, bind: Bind| {
            binds.push(bind);
            format!("${}", binds.len())
        };
        if let Some(user_id) = self.user_id {
            let p = push(&mut binds, Bind::Int(db_id(user_id)));
            conditions.push(format!("user_id = {p}"));
        }
        if let Some(kind) = self.kind {
            let p = push(&mut binds, Bind::Text(kind.as_str().to_owned()));
            conditions.push(format!("kind = {p}"));
        }
        if self.personal {
            conditions.push("kind <> 'job'".to_owned());
        }
        if let Some(state) = self.state {
            let today = push(&mut binds, Bind::Text(self.today.clone()));
            let active = format!("(NOT revoked AND (expires_at IS NULL OR expires_at > {today}))");
            conditions.push(match state {
                TokenState::Active => active,
                TokenState::Inactive => format!("NOT {active}"),
            });
        }
        if let Some(search) = &self.search {
            let p = push(&mut binds, Bind::Text(like_pattern(search)));
            conditions.push(format!("LOWER(name) LIKE {p} ESCAPE '\\'"));
        }
        if let Some(revoked) = self.revoked {
            let p = push(&mut binds, Bind::Flag(revoked));
            conditions.push(format!("revoked = {p}"));
        }
        if let Some(access) = self.access {
            let pattern = format!("%\"access\":\"{}\"%", access.as_str());
            let p = push(&mut binds, Bind::Text(pattern));
            conditions.push(format!("granular_scopes LIKE {p}"));
        }
        if let Some(holds) = &self.holds {
            let mut any = vec!["FALSE".to_owned()];
            for scope in &holds.scopes {
                let p = push(&mut binds, Bind::Text(format!("%\"{scope}\"%")));
                any.push(format!("(kind = 'legacy' AND scopes LIKE {p})"));
            }
            for permission in &holds.permissions {
                let p = push(&mut binds, Bind::Text(format!("%\"{permission}\"%")));
                any.push(format!(
                    "(kind = 'fine_grained' AND granular_scopes LIKE {p})"
                ));
            }
            conditions.push(format!("({})", any.join(" OR ")));
        }
        if let Some(after) = self.last_used_after {
            let p = push(&mut binds, Bind::Int(after));
            conditions.push(format!("last_used_at >= {p}"));
        }
        if let Some(before) = self.last_used_before {
            let p = push(&mut binds, Bind::Int(before));
            conditions.push(format!("last_used_at < {p}"));
        }
        if let Some(after) = &self.expires_after {
            let p = push(&mut binds, Bind::Text(after.clone()));
            conditions.push(format!("expires_at >= {p}"));
        }
        if let Some(before) = &self.expires_before {
            let p = push(&mut binds, Bind::Text(before.clone()));
            conditions.push(format!("expires_at < {p}"));
        }
        (conditions.join(" AND "), binds)
    }
}

/// Binds a filter's values to a query, in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(v) => query.bind(*v),
                Bind::Text(v) => query.bind(v.clone()),
                Bind::Flag(v) => query.bind(*v),
            };
        }
        query
    }};
}

#[derive(FromRow)]
pub(super) struct TokenRow {
    id: i64,
    user_id: i64,
    kind: String,
    name: String,
    description: String,
    lookup_id: String,
    secret_hash: String,
    scopes: String,
    granular_scopes: String,
    allowed_ips: String,
    created_at: i64,
    expires_at: Option<String>,
    revoked: bool,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    last_used_ips: String,
    project_id: Option<i64>,
    job_id: Option<i64>,
    expires_unix: Option<i64>,
    family_id: i64,
}

impl TokenRow {
    pub(super) fn into_record(self) -> Result<TokenRecord> {
        Ok(TokenRecord {
            id: from_db_id(self.id)?,
            user_id: from_db_id(self.user_id)?,
            kind: TokenKindName::parse(&self.kind)?,
            name: self.name,
            description: self.description,
            lookup_id: self.lookup_id,
            secret_hash: self.secret_hash,
            scopes: from_json(&self.scopes)?,
            granular_scopes: from_json(&self.granular_scopes)?,
            allowed_ips: from_json(&self.allowed_ips)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked: self.revoked,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            last_used_ips: from_json(&self.last_used_ips)?,
            job: match (self.project_id, self.job_id, self.expires_unix) {
                (Some(project_id), Some(job_id), Some(expires_unix)) => Some(JobRef {
                    project_id: from_db_id(project_id)?,
                    job_id: from_db_id(job_id)?,
                    expires_unix,
                }),
                (None, None, None) => None,
                _ => {
                    return Err(StoreError::Corrupt(
                        "a job token without its job".to_owned(),
                    ));
                }
            },
            family_id: from_db_id(self.family_id)?,
        })
    }
}

pub(super) const COLUMNS: &str = "id, user_id, kind, name, description, lookup_id, secret_hash, scopes, \
     granular_scopes, allowed_ips, created_at, expires_at, revoked, revoked_at, last_used_at, \
     last_used_ips, project_id, job_id, expires_unix, COALESCE(family_id, id) AS family_id";

/// `search` as a LIKE pattern: lower case, `%`, `_` and `\` escaped.
fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    pub async fn token_by_lookup(&self, lookup_id: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens WHERE lookup_id = $1");
        let row: Option<TokenRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(lookup_id).fetch_optional(pool).await?
        });
        row.map(TokenRow::into_record).transpose()
    }

    /// The token of a CI/CD job.
    pub async fn token_by_job(&self, job_id: u64) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens WHERE job_id = $1");
        let row: Option<TokenRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(db_id(job_id)).fetch_optional(pool).await?
        });
        row.map(TokenRow::into_record).transpose()
    }

    pub async fn token(&self, id: u64) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens WHERE id = $1");
        let row: Option<TokenRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(db_id(id)).fetch_optional(pool).await?
        });
        row.map(TokenRow::into_record).transpose()
    }

    /// One page of tokens, newest first, and how many match in all.
    pub async fn list_tokens(&self, filter: &TokenFilter) -> Result<(Vec<TokenRecord>, u64)> {
        let (clause, binds) = filter.clause();
        let count_sql = format!("SELECT COUNT(*) FROM tokens WHERE {clause}");
        let n = binds.len();
        let page_sql = format!(
            "SELECT {COLUMNS} FROM tokens WHERE {clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let offset = i64::from(filter.page.saturating_sub(1)) * i64::from(filter.per_page);
        let (total, rows): (i64, Vec<TokenRow>) = on_pool!(&self.pool, pool => {
            let total = bind_all!(sqlx::query_scalar(&count_sql), &binds)
                .fetch_one(pool)
                .await?;
            let rows = bind_all!(sqlx::query_as(&page_sql), &binds)
                .bind(i64::from(filter.per_page))
                .bind(offset)
                .fetch_all(pool)
                .await?;
            (total, rows)
        });
        let records = rows
            .into_iter()
            .map(TokenRow::into_record)
            .collect::<Result<_>>()?;
        Ok((records, u64::try_from(total).unwrap_or(0)))
    }
}

impl Tx {
    /// Writes a new token and returns its id.
    pub async fn insert_token(&mut self, row: &NewTokenRow) -> Result<u64> {
        let id: i64 = on_tx!(&mut self.inner, tx => {
            sqlx::query_scalar(
                "INSERT INTO tokens (user_id, kind, name, description, lookup_id, secret_hash, scopes,
                     granular_scopes, allowed_ips, created_at, expires_at, revoked, last_used_ips,
                     project_id, job_id, expires_unix, family_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, FALSE, '[]', $12, $13, $14, $15)
                 RETURNING id",
            )
            .bind(db_id(row.user_id))
            .bind(row.kind.as_str())
            .bind(&row.name)
            .bind(&row.description)
            .bind(&row.lookup_id)
            .bind(&row.secret_hash)
            .bind(to_json(&row.scopes))
            .bind(to_json(&row.granular_scopes))
            .bind(to_json(&row.allowed_ips))
            .bind(row.created_at)
            .bind(&row.expires_at)
            .bind(row.job.map(|j| db_id(j.project_id)))
            .bind(row.job.map(|j| db_id(j.job_id)))
            .bind(row.job.map(|j| j.expires_unix))
            .bind(row.family_id.map(db_id))
            .fetch_one(&mut **tx)
            .await?
        });
        from_db_id(id)
    }

    /// Replaces what `PATCH` may change.
    pub async fn update_token(&mut self, record: &TokenRecord) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "UPDATE tokens SET name = $2, description = $3, scopes = $4, granular_scopes = $5
                 WHERE id = $1",
            )
            .bind(db_id(record.id))
            .bind(&record.name)
            .bind(&record.description)
            .bind(to_json(&record.scopes))
            .bind(to_json(&record.granular_scopes))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// Revokes every active token of a rotation family; returns them, revoked.
    pub async fn revoke_family(&mut self, family_id: u64, now: i64) -> Result<Vec<TokenRecord>> {
        let sql = format!(
            "UPDATE tokens SET revoked = TRUE, revoked_at = $2
             WHERE COALESCE(family_id, id) = $1 AND NOT revoked
             RETURNING {COLUMNS}"
        );
        let rows: Vec<TokenRow> = on_tx!(&mut self.inner, tx => {
            sqlx::query_as(&sql)
                .bind(db_id(family_id))
                .bind(now)
                .fetch_all(&mut **tx)
                .await?
        });
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    /// Revokes a token that is not revoked yet. Returns whether it changed.
    pub async fn revoke_token(&mut self, id: u64, now: i64) -> Result<bool> {
        let changed = on_tx!(&mut self.inner, tx => {
            sqlx::query("UPDATE tokens SET revoked = TRUE, revoked_at = $2 WHERE id = $1 AND NOT revoked")
                .bind(db_id(id))
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }
}

/// How many distinct client addresses a token remembers.
pub const LAST_USED_IPS: usize = 5;

/// One token's use since the last flush: when, and from where (most recent first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    pub id: u64,
    pub at: i64,
    pub ips: Vec<String>,
}

/// `recent` in front of `stored`, distinct, at most `LAST_USED_IPS`.
fn merge_ips(recent: &[String], stored: Vec<String>) -> Vec<String> {
    let mut merged: Vec<String> = Vec::with_capacity(LAST_USED_IPS);
    for ip in recent.iter().cloned().chain(stored) {
        if merged.len() == LAST_USED_IPS {
            break;
        }
        if !merged.contains(&ip) {
            merged.push(ip);
        }
    }
    merged
}

impl Store {
    /// Records token uses in one transaction: `last_used_at` only moves forward, and new
    /// addresses go in front of those stored.
    pub async fn record_usage(&self, uses: &[TokenUse]) -> Result<()> {
        let mut tx = self.begin().await?;
        for used in uses {
            let stored: Option<(Option<i64>, String)> = on_tx!(&mut tx.inner, tx => {
                sqlx::query_as("SELECT last_used_at, last_used_ips FROM tokens WHERE id = $1")
                    .bind(db_id(used.id))
                    .fetch_optional(&mut **tx)
                    .await?
            });
            let Some((last_used_at, ips)) = stored else {
                continue;
            };
            let ips = merge_ips(&used.ips, from_json(&ips)?);
            let at = last_used_at.map_or(used.at, |before| before.max(used.at));
            on_tx!(&mut tx.inner, tx => {
                sqlx::query("UPDATE tokens SET last_used_at = $2, last_used_ips = $3 WHERE id = $1")
                    .bind(db_id(used.id))
                    .bind(at)
                    .bind(to_json(&ips))
                    .execute(&mut **tx)
                    .await?;
            });
        }
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn recent_addresses_come_first_distinct_and_at_most_five() {
        assert_eq!(
            merge_ips(
                &ips(&["10.0.0.9", "10.0.0.1"]),
                ips(&["10.0.0.1", "10.0.0.2"])
            ),
            ips(&["10.0.0.9", "10.0.0.1", "10.0.0.2"])
        );
        assert_eq!(
            merge_ips(&ips(&["a", "b", "c"]), ips(&["d", "e", "f", "a"])),
            ips(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(merge_ips(&[], Vec::new()), Vec::<String>::new());
    }
}
