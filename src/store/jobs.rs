//! Project job token scopes and their allowlists (DESIGN.md section 8). Job tokens
//! themselves are rows of `tokens`.

use sqlx::FromRow;

use super::{Result, Store, StoreError, Tx, db_id, from_db_id, from_json, on_pool, on_tx, to_json};
use crate::jobs::{AllowlistRecord, JobTokenScopeRecord, SourceKind};

#[derive(FromRow)]
struct ScopeRow {
    project_id: i64,
    inbound_enabled: bool,
    fine_grained_enabled: bool,
}

#[derive(FromRow)]
struct EntryRow {
    project_id: i64,
    source_kind: String,
    source_id: i64,
    default_permissions: bool,
    policies: String,
    created_at: i64,
}

impl EntryRow {
    fn into_record(self) -> Result<AllowlistRecord> {
        Ok(AllowlistRecord {
            project_id: from_db_id(self.project_id)?,
            source: SourceKind::from_name(&self.source_kind).ok_or_else(|| {
                StoreError::Corrupt(format!("allowlist source kind `{}`", self.source_kind))
            })?,
            source_id: from_db_id(self.source_id)?,
            default_permissions: self.default_permissions,
            policies: from_json(&self.policies)?,
            created_at: self.created_at,
        })
    }
}

const ENTRY_COLUMNS: &str =
    "project_id, source_kind, source_id, default_permissions, policies, created_at";

impl Store {
    /// Every stored scope (projects with the defaults have none).
    pub async fn job_token_scopes(&self) -> Result<Vec<JobTokenScopeRecord>> {
        let rows: Vec<ScopeRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT project_id, inbound_enabled, fine_grained_enabled
                 FROM job_token_scopes ORDER BY project_id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(JobTokenScopeRecord {
                    project_id: from_db_id(r.project_id)?,
                    inbound_enabled: r.inbound_enabled,
                    fine_grained_enabled: r.fine_grained_enabled,
                })
            })
            .collect()
    }

    /// Allowlist entries, of one target project or of all; by project, projects before
    /// groups, then by source id.
    pub async fn allowlist(&self, project_id: Option<u64>) -> Result<Vec<AllowlistRecord>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM job_token_allowlist WHERE ($1 IS NULL OR project_id = $1)
             ORDER BY project_id, source_kind DESC, source_id"
        );
        let rows: Vec<EntryRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(project_id.map(db_id)).fetch_all(pool).await?
        });
        rows.into_iter().map(EntryRow::into_record).collect()
    }
}

impl Tx {
    pub async fn put_job_token_scope(&mut self, scope: &JobTokenScopeRecord) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO job_token_scopes (project_id, inbound_enabled, fine_grained_enabled)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (project_id) DO UPDATE
                 SET inbound_enabled = excluded.inbound_enabled,
                     fine_grained_enabled = excluded.fine_grained_enabled",
            )
            .bind(db_id(scope.project_id))
            .bind(scope.inbound_enabled)
            .bind(scope.fine_grained_enabled)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// One entry, read inside the transaction that is about to change it.
    pub async fn allowlist_entry(
        &mut self,
        project_id: u64,
        source: SourceKind,
        source_id: u64,
    ) -> Result<Option<AllowlistRecord>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM job_token_allowlist
             WHERE project_id = $1 AND source_kind = $2 AND source_id = $3"
        );
        let row: Option<EntryRow> = on_tx!(&mut self.inner, tx => {
            sqlx::query_as(&sql)
                .bind(db_id(project_id))
                .bind(source.as_str())
                .bind(db_id(source_id))
                .fetch_optional(&mut **tx)
                .await?
        });
        row.map(EntryRow::into_record).transpose()
    }

    /// Adds an entry or replaces its policies (its `created_at` stays).
    pub async fn put_allowlist_entry(&mut self, entry: &AllowlistRecord) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO job_token_allowlist
                     (project_id, source_kind, source_id, default_permissions, policies, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (project_id, source_kind, source_id) DO UPDATE
                 SET default_permissions = excluded.default_permissions,
                     policies = excluded.policies",
            )
            .bind(db_id(entry.project_id))
            .bind(entry.source.as_str())
            .bind(db_id(entry.source_id))
            .bind(entry.default_permissions)
            .bind(to_json(&entry.policies))
            .bind(entry.created_at)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    pub async fn delete_allowlist_entry(
        &mut self,
        project_id: u64,
        source: SourceKind,
        source_id: u64,
    ) -> Result<bool> {
        let deleted = on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "DELETE FROM job_token_allowlist
                 WHERE project_id = $1 AND source_kind = $2 AND source_id = $3",
            )
            .bind(db_id(project_id))
            .bind(source.as_str())
            .bind(db_id(source_id))
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Forgets a deleted project or group: its own scope and allowlist, and the entries
    /// that name it as a source.
    pub(super) async fn forget_job_token_links(
        &mut self,
        source: SourceKind,
        id: u64,
    ) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            if source == SourceKind::Project {
                sqlx::query("DELETE FROM job_token_scopes WHERE project_id = $1")
                    .bind(db_id(id))
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("DELETE FROM job_token_allowlist WHERE project_id = $1")
                    .bind(db_id(id))
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query("DELETE FROM job_token_allowlist WHERE source_kind = $1 AND source_id = $2")
                .bind(source.as_str())
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }
}
