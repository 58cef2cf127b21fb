//! Service keys at rest: argon2id hashes found by lookup id, each with its role.

use sqlx::FromRow;

use super::{Result, Store, StoreError, Tx, db_id, from_db_id, on_pool, on_tx};
use crate::keys::{KeyRole, NewServiceKey, ServiceKeyRecord};

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
            role: KeyRole::from_name(&self.role)
                .ok_or_else(|| StoreError::Corrupt(format!("key role `{}`", self.role)))?,
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
