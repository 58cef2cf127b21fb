//! The notification outbox: written in the transaction of the change it tells of, read
//! and marked by the delivery worker.

use sqlx::FromRow;

use super::tokens::{COLUMNS, TokenRow};
use super::{Result, Store, Tx, db_id, from_db_id, on_pool, on_tx};
use crate::tokens::TokenRecord;

/// A notification to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Names the event once and for all (`token_revoked:42`); enqueuing the same key
    /// again does nothing.
    pub idempotency_key: String,
    pub event: &'static str,
    /// The JSON body sent to the webhook.
    pub payload: String,
}

/// An enqueued notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: u64,
    pub idempotency_key: String,
    pub event: String,
    pub payload: String,
    pub created_at: i64,
    /// Deliveries tried so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(FromRow)]
struct NotificationRow {
    id: i64,
    idempotency_key: String,
    event: String,
    payload: String,
    created_at: i64,
    attempts: i32,
    next_attempt_ms: i64,
    delivered_at: Option<i64>,
    last_error: Option<String>,
}

impl NotificationRow {
    fn into_notification(self) -> Result<Notification> {
        Ok(Notification {
            id: from_db_id(self.id)?,
            idempotency_key: self.idempotency_key,
            event: self.event,
            payload: self.payload,
            created_at: self.created_at,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_ms: self.next_attempt_ms,
            delivered_at: self.delivered_at,
            last_error: self.last_error,
        })
    }
}

const NOTIFICATION_COLUMNS: &str = "id, idempotency_key, event, payload, created_at, attempts, \
     next_attempt_ms, delivered_at, last_error";

/// Which expiry event a scan looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryEvent {
    Expiring,
    Expired,
}

impl ExpiryEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expiring => "token_expiring",
            Self::Expired => "token_expired",
        }
    }
}

impl Tx {
    /// Enqueues `notification`, due at once. Returns false when its key was enqueued
    /// before (nothing is written).
    pub async fn enqueue(&mut self, notification: &NewNotification, now_ms: i64) -> Result<bool> {
        let written = on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO outbox (idempotency_key, event, payload, created_at, next_attempt_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(&notification.idempotency_key)
            .bind(notification.event)
            .bind(&notification.payload)
            .bind(now_ms / 1000)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        Ok(written == 1)
    }
}

impl Store {
    /// Undelivered notifications due at `now_ms`, oldest first.
    pub async fn due_notifications(&self, now_ms: i64, limit: u32) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM outbox
             WHERE delivered_at IS NULL AND next_attempt_ms <= $1
             ORDER BY id LIMIT $2"
        );
        let rows: Vec<NotificationRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(now_ms).bind(i64::from(limit)).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(NotificationRow::into_notification)
            .collect()
    }

    /// Every notification, oldest first (tests, inspection).
    pub async fn notifications(&self) -> Result<Vec<Notification>> {
        let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM outbox ORDER BY id");
        let rows: Vec<NotificationRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(NotificationRow::into_notification)
            .collect()
    }

    /// Claims a due notification for one delivery attempt, until `lease_until` (Unix
    /// ms): true when no other worker claimed it since it was read as due at `seen_next`.
    pub async fn claim_notification(
        &self,
        id: u64,
        seen_next: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let claimed = on_pool!(&self.pool, pool => {
            sqlx::query(
                "UPDATE outbox SET next_attempt_ms = $3, attempts = attempts + 1
                 WHERE id = $1 AND next_attempt_ms = $2 AND delivered_at IS NULL",
            )
            .bind(db_id(id))
            .bind(seen_next)
            .bind(lease_until)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(claimed == 1)
    }

    /// The webhook took notification `id`.
    pub async fn notification_delivered(&self, id: u64, now: i64) -> Result<()> {
        on_pool!(&self.pool, pool => {
            sqlx::query("UPDATE outbox SET delivered_at = $2, last_error = NULL WHERE id = $1")
                .bind(db_id(id))
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The attempt failed: try again at `next_attempt_ms` (Unix ms).
    pub async fn notification_failed(
        &self,
        id: u64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<()> {
        on_pool!(&self.pool, pool => {
            sqlx::query("UPDATE outbox SET next_attempt_ms = $2, last_error = $3 WHERE id = $1")
                .bind(db_id(id))
                .bind(next_attempt_ms)
                .bind(error)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Active personal tokens whose expiry date lies in `from..=to` (`YYYY-MM-DD`) and
    /// whose `event` was not enqueued yet.
    pub async fn expiry_candidates(
        &self,
        event: ExpiryEvent,
        from: &str,
        to: &str,
    ) -> Result<Vec<TokenRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tokens t
             WHERE t.revoked = FALSE AND t.kind <> 'job' AND t.expires_at IS NOT NULL
               AND t.expires_at >= $1 AND t.expires_at <= $2
               AND NOT EXISTS (SELECT 1 FROM outbox o
                               WHERE o.idempotency_key = $3 || ':' || t.id)
             ORDER BY t.id"
        );
        let rows: Vec<TokenRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql)
                .bind(from)
                .bind(to)
                .bind(event.as_str())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(TokenRow::into_record).collect()
    }
}
