//! Tokens at rest: only the argon2id hash of the secret, found by the public lookup id.
//! Every column is parsed into its domain type here; a value that does not parse is a
//! corrupt row, never a default.

use std::net::IpAddr;

use ipnet::IpNet;
use sqlx::FromRow;
use time::Date;

use super::{Result, Store, StoreError, Tx, db_id, from_db_id, from_json, on_pool, on_tx, to_json};
use crate::clock;
use crate::domain::AccessKind;
use crate::tokens::{JobRef, NewTokenRecord, TokenKind, TokenRecord, TokenState};

/// `GET /v1/tokens` filters and page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    pub user_id: Option<u64>,
    pub kind: Option<TokenKind>,
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
    /// Last used on or after that day (from 00:00 UTC), before that day.
    pub last_used_after: Option<Date>,
    pub last_used_before: Option<Date>,
    /// Expiring on or after that day, before that day.
    pub expires_after: Option<Date>,
    pub expires_before: Option<Date>,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
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
    /// The `WHERE` clause and its values, numbered from `$1`. Tokens expiring `today` or
    /// earlier are inactive.
    fn clause(&self, today: Date) -> (String, Vec<Bind>) {
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
            let today = push(&mut binds, Bind::Text(clock::format_date(today)));
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
            let p = push(&mut binds, Bind::Int(clock::midnight(after)));
            conditions.push(format!("last_used_at >= {p}"));
        }
        if let Some(before) = self.last_used_before {
            let p = push(&mut binds, Bind::Int(clock::midnight(before)));
            conditions.push(format!("last_used_at < {p}"));
        }
        if let Some(after) = self.expires_after {
            let p = push(&mut binds, Bind::Text(clock::format_date(after)));
            conditions.push(format!("expires_at >= {p}"));
        }
        if let Some(before) = self.expires_before {
            let p = push(&mut binds, Bind::Text(clock::format_date(before)));
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
            kind: TokenKind::from_name(&self.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("a token of kind `{}`", self.kind)))?,
            name: self.name,
            description: self.description,
            lookup_id: self.lookup_id,
            secret_hash: self.secret_hash,
            scopes: from_json(&self.scopes)?,
            granular_scopes: from_json(&self.granular_scopes)?,
            allowed_ips: addresses::<IpNet>(&self.allowed_ips)?,
            created_at: self.created_at,
            expires_at: self
                .expires_at
                .map(|text| {
                    clock::parse_date(&text)
                        .ok_or_else(|| StoreError::Corrupt(format!("an expiry date `{text}`")))
                })
                .transpose()?,
            revoked: self.revoked,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            last_used_ips: addresses::<IpAddr>(&self.last_used_ips)?,
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

/// A column's JSON list of addresses (or networks), each parsed as a `T`.
fn addresses<T: std::str::FromStr>(json: &str) -> Result<Vec<T>> {
    from_json::<Vec<String>>(json)?
        .into_iter()
        .map(|text| {
            text.parse()
                .map_err(|_| StoreError::Corrupt(format!("an address `{text}`")))
        })
        .collect()
}

/// Addresses as the JSON list of strings the column holds.
fn address_list<T: ToString>(addresses: &[T]) -> String {
    to_json(
        &addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    )
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

    /// Replaces a token's secret hash, if it is still `from`, in a transaction of its own
    /// (under the writer lock, as every write). Returns whether it was.
    pub async fn replace_token_hash(&self, id: u64, from: &str, to: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let changed = on_tx!(&mut tx.inner, tx => {
            sqlx::query("UPDATE tokens SET secret_hash = $3 WHERE id = $1 AND secret_hash = $2")
                .bind(db_id(id))
                .bind(from)
                .bind(to)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// One page of tokens, newest first, and how many match in all, as of `today`.
    pub async fn list_tokens(
        &self,
        filter: &TokenFilter,
        today: Date,
    ) -> Result<(Vec<TokenRecord>, u64)> {
        let (clause, binds) = filter.clause(today);
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
    pub async fn insert_token(&mut self, row: &NewTokenRecord) -> Result<u64> {
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
            .bind(address_list(&row.allowed_ips))
            .bind(row.created_at)
            .bind(row.expires_at.map(clock::format_date))
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
    pub ips: Vec<IpAddr>,
}

/// `recent` in front of `stored`, distinct, at most `LAST_USED_IPS`.
fn merge_ips(recent: &[IpAddr], stored: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut merged = Vec::with_capacity(LAST_USED_IPS);
    for ip in recent.iter().copied().chain(stored) {
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
            let ips = merge_ips(&used.ips, addresses(&ips)?);
            let at = last_used_at.map_or(used.at, |before| before.max(used.at));
            on_tx!(&mut tx.inner, tx => {
                sqlx::query("UPDATE tokens SET last_used_at = $2, last_used_ips = $3 WHERE id = $1")
                    .bind(db_id(used.id))
                    .bind(at)
                    .bind(address_list(&ips))
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

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
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
            merge_ips(
                &ips(&["::1", "10.0.0.2", "10.0.0.3"]),
                ips(&["10.0.0.4", "10.0.0.5", "10.0.0.6", "::1"])
            ),
            ips(&["::1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"])
        );
        assert_eq!(merge_ips(&[], Vec::new()), Vec::<IpAddr>::new());
    }
}
