//! Service keys at rest: argon2id hashes found by lookup id, each with its role.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Result, Store, StoreError, Tx, db_id, from_db_id, on_pool, on_tx};

/// What a service key may call (DESIGN.md section 6). Ordered: each role may do what
/// the ones before it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Decisions only.
    Authorize,
    /// Directory sync and tokens on behalf of users, and decisions.
    Manage,
    /// Everything, including settings, policies and service keys.
    Admin,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Manage => "manage",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "authorize" => Ok(Self::Authorize),
            "manage" => Ok(Self::Manage),
            "admin" => Ok(Self::Admin),
            other => Err(StoreError::Corrupt(format!("key role `{other}`"))),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ServiceKeyRecord {
    pub id: u64,
    pub name: String,
    pub role: KeyRole,
    pub lookup_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for ServiceKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServiceKey {
    pub name: String,
    pub role: KeyRole,
    pub lookup_id: String,
    pub secret_hash: String,
    pub created_at: i64,
}

#[derive(FromRow)]
struct KeyRow {
    id: i64,
    name: String,
    role: String,
    lookup_id: String,
    secret_hash: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl KeyRow {
    fn into_record(self) -> Result<ServiceKeyRecord> {
        Ok(ServiceKeyRecord {
            id: from_db_id(self.id)?,
            name: self.name,
            role: KeyRole::parse(&self.role)?,
            lookup_id: self.lookup_id,
            secret_hash: self.secret_hash,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

const COLUMNS: &str = "id, name, role, lookup_id, secret_hash, created_at, revoked_at";

impl Store {
    pub async fn service_key_by_lookup(&self, lookup_id: &str) -> Result<Option<ServiceKeyRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM service_keys WHERE lookup_id = $1");
        let row: Option<KeyRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(lookup_id).fetch_optional(pool).await?
        });
        row.map(KeyRow::into_record).transpose()
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn service_keys(&self) -> Result<Vec<ServiceKeyRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM service_keys ORDER BY id");
        let rows: Vec<KeyRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter().map(KeyRow::into_record).collect()
    }
}

impl Tx {
    pub async fn insert_service_key(&mut self, key: &NewServiceKey) -> Result<u64> {
        let id: i64 = on_tx!(&mut self.inner, tx => {
            sqlx::query_scalar(
                "INSERT INTO service_keys (name, role, lookup_id, secret_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&key.name)
            .bind(key.role.as_str())
            .bind(&key.lookup_id)
            .bind(&key.secret_hash)
            .bind(key.created_at)
            .fetch_one(&mut **tx)
            .await?
        });
        from_db_id(id)
    }

    /// Revokes a key; returns its lookup id when it was active.
    pub async fn revoke_service_key(&mut self, id: u64, now: i64) -> Result<Option<String>> {
        let lookup: Option<String> = on_tx!(&mut self.inner, tx => {
            sqlx::query_scalar(
                "UPDATE service_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
                 RETURNING lookup_id",
            )
            .bind(db_id(id))
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?
        });
        Ok(lookup)
    }
}
