//! The audit trail: one row per change, written in the transaction of the change.

use sqlx::FromRow;

use super::{Result, Store, Tx, db_id, from_db_id, from_json, on_pool, on_tx, to_json};
use crate::audit::{AuditEvent, NewAuditEvent};

/// `GET /v1/audit-events` filters and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<u64>,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
}

#[derive(FromRow)]
struct EventRow {
    id: i64,
    created_at: i64,
    actor: String,
    action: String,
    target_type: String,
    target_id: i64,
    source_ip: Option<String>,
    details: String,
}

const FILTER: &str = "($1 IS NULL OR action = $1)
     AND ($2 IS NULL OR target_type = $2)
     AND ($3 IS NULL OR target_id = $3)";

impl Store {
    /// One page of events in the order they happened, and how many match in all.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<(Vec<AuditEvent>, u64)> {
        let count_sql = format!("SELECT COUNT(*) FROM audit_events WHERE {FILTER}");
        let page_sql = format!(
            "SELECT id, created_at, actor, action, target_type, target_id, source_ip, details
             FROM audit_events WHERE {FILTER} ORDER BY id LIMIT $4 OFFSET $5"
        );
        let target_id = filter.target_id.map(db_id);
        let offset = i64::from(filter.page.saturating_sub(1)) * i64::from(filter.per_page);
        let (total, rows): (i64, Vec<EventRow>) = on_pool!(&self.pool, pool => {
            let total = sqlx::query_scalar(&count_sql)
                .bind(&filter.action)
                .bind(&filter.target_type)
                .bind(target_id)
                .fetch_one(pool)
                .await?;
            let rows = sqlx::query_as(&page_sql)
                .bind(&filter.action)
                .bind(&filter.target_type)
                .bind(target_id)
                .bind(i64::from(filter.per_page))
                .bind(offset)
                .fetch_all(pool)
                .await?;
            (total, rows)
        });
        let events = rows
            .into_iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: from_db_id(r.id)?,
                    created_at_unix: r.created_at,
                    created_at: crate::clock::rfc3339(r.created_at),
                    actor: r.actor,
                    action: r.action,
                    target_type: r.target_type,
                    target_id: from_db_id(r.target_id)?,
                    source_ip: r.source_ip,
                    details: from_json(&r.details)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((events, u64::try_from(total).unwrap_or(0)))
    }
}

impl Tx {
    pub async fn record_event(&mut self, event: &NewAuditEvent, now: i64) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO audit_events
                     (created_at, actor, action, target_type, target_id, source_ip, details)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(now)
            .bind(&event.actor)
            .bind(event.action)
            .bind(event.target_type)
            .bind(db_id(event.target_id))
            .bind(&event.source_ip)
            .bind(to_json(&event.details))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }
}
