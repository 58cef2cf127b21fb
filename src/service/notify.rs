//! Notifications (DESIGN.md section 7): each is enqueued in the outbox in the
//! transaction of the change it tells of, then delivered to the webhook by a background
//! worker, at least once, with retries and exponential backoff. The idempotency key
//! names the event (`token_revoked:42`), so a receiver that sees a key twice knows it is
//! the same event; the `X-Patrol-Attempt` header says which attempt brought it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::Date;

use super::{Result, Service};
use crate::clock;
use crate::config::Webhook;
use crate::store::{ExpiryEvent, NewNotification, Notification, Tx};
use crate::tokens::{TokenKind, TokenRecord};

/// How many due notifications one pass of the worker takes.
const BATCH: u32 = 32;
/// Tokens are announced as expiring this many days ahead.
const EXPIRING_DAYS: i64 = 7;
/// An expiry missed while patrol was down is still announced this many days late.
const EXPIRED_GRACE_DAYS: i64 = 7;

/// Why a token was revoked, as its notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Revocation {
    Revoked,
    ByValue,
    ReuseDetected,
}

impl Revocation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::ByValue => "revoked_by_value",
            Self::ReuseDetected => "reuse_detected",
        }
    }
}

/// What a notification says of a token: who and what it is, never its secret.
fn about(record: &TokenRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "user_id": record.user_id,
        "kind": record.kind.as_str(),
        "expires_at": record.expires_at.map(clock::format_date),
    })
}

fn notification(event: &'static str, record: &TokenRecord, extra: Value) -> NewNotification {
    let idempotency_key = format!("{event}:{}", record.id);
    let mut payload = json!({
        "event": event,
        "idempotency_key": idempotency_key,
        "occurred_at": clock::rfc3339(clock::now()),
        "token": about(record),
    });
    if let (Some(body), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        body.extend(extra);
    }
    NewNotification {
        idempotency_key,
        event,
        payload: payload.to_string(),
    }
}

/// The instrumentation event of a new token: what kind of token people make, with which
/// access kinds and permissions. No user, name, namespace id or namespace name.
fn instrumentation(record: &TokenRecord) -> NewNotification {
    let event = "token_created_instrumentation";
    let idempotency_key = format!("{event}:{}", record.id);
    let mut access: Vec<&str> = record
        .granular_scopes
        .iter()
        .map(|scope| scope.access.as_str())
        .collect();
    access.sort_unstable();
    access.dedup();
    let mut permissions: Vec<&str> = record
        .granular_scopes
        .iter()
        .flat_map(|scope| scope.permissions.iter().map(String::as_str))
        .collect();
    permissions.sort_unstable();
    permissions.dedup();
    let payload = json!({
        "event": event,
        "idempotency_key": idempotency_key,
        "occurred_at": clock::rfc3339(clock::now()),
        "kind": record.kind.as_str(),
        "scopes": record.scopes,
        "access": access,
        "permissions": permissions,
        "expires": record.expires_at.is_some(),
        "ip_restricted": !record.allowed_ips.is_empty(),
    });
    NewNotification {
        idempotency_key,
        event,
        payload: payload.to_string(),
    }
}

impl Service {
    /// In `tx`: enqueues notifications, when a webhook is configured. Job tokens are
    /// made and ended by CI for every job: they are not announced.
    async fn enqueue(&self, tx: &mut Tx, notifications: &[NewNotification]) -> Result<()> {
        if !self.notifications {
            return Ok(());
        }
        let now = clock::now_ms();
        for notification in notifications {
            tx.enqueue(notification, now).await?;
        }
        Ok(())
    }

    /// In `tx`: a personal token was made.
    pub(super) async fn notify_created(
        &self,
        tx: &mut Tx,
        record: &TokenRecord,
        duplicated_from: Option<u64>,
    ) -> Result<()> {
        let created = notification(
            "token_created",
            record,
            json!({ "duplicated_from": duplicated_from }),
        );
        self.enqueue(tx, &[created, instrumentation(record)]).await
    }

    /// In `tx`: `old` was rotated into token `new_id`.
    pub(super) async fn notify_rotated(
        &self,
        tx: &mut Tx,
        old: &TokenRecord,
        new_id: u64,
    ) -> Result<()> {
        let rotated = notification("token_rotated", old, json!({ "new_token_id": new_id }));
        self.enqueue(tx, &[rotated]).await
    }

    /// In `tx`: personal tokens were revoked.
    pub(super) async fn notify_revoked(
        &self,
        tx: &mut Tx,
        records: &[TokenRecord],
        why: Revocation,
    ) -> Result<()> {
        let revoked: Vec<NewNotification> = records
            .iter()
            .filter(|record| record.kind != TokenKind::Job)
            .map(|record| notification("token_revoked", record, json!({ "reason": why.as_str() })))
            .collect();
        self.enqueue(tx, &revoked).await
    }

    /// Wakes the delivery worker after a commit that enqueued something.
    pub(super) fn outbox_written(&self) {
        if self.notifications {
            self.outbox_ready.notify_one();
        }
    }

    /// Enqueues `token_expiring` for active tokens expiring within 7 days after `today`,
    /// and `token_expired` for those that expired in the last 7 days, each once per
    /// token whichever replica scans. Returns how many were enqueued.
    pub async fn scan_expiry(&self, today: Date) -> Result<usize> {
        if !self.notifications {
            return Ok(0);
        }
        let day = |offset: i64| clock::format_date(today + time::Duration::days(offset));
        let expiring = self
            .store
            .expiry_candidates(ExpiryEvent::Expiring, &day(1), &day(EXPIRING_DAYS))
            .await?;
        let expired = self
            .store
            .expiry_candidates(ExpiryEvent::Expired, &day(-EXPIRED_GRACE_DAYS), &day(0))
            .await?;
        if expiring.is_empty() && expired.is_empty() {
            return Ok(0);
        }
        let today_midnight = clock::midnight(today);
        let days_left = |record: &TokenRecord| {
            record
                .expires_at
                .map(|date| (clock::midnight(date) - today_midnight) / 86_400)
        };
        let notifications: Vec<NewNotification> = expiring
            .iter()
            .map(|record| {
                notification(
                    ExpiryEvent::Expiring.as_str(),
                    record,
                    json!({ "expires_in_days": days_left(record) }),
                )
            })
            .chain(
                expired
                    .iter()
                    .map(|record| notification(ExpiryEvent::Expired.as_str(), record, json!({}))),
            )
            .collect();
        let now = clock::now_ms();
        let mut written = 0;
        let mut write = self.write().await?;
        for notification in &notifications {
            written += usize::from(write.tx.enqueue(notification, now).await?);
        }
        write.commit().await?;
        self.outbox_written();
        Ok(written)
    }

    /// Scans for expiring and expired tokens every `every`, from now on.
    pub async fn scan_expiry_forever(&self, every: Duration) {
        loop {
            if let Err(e) = self.scan_expiry(clock::date_of(clock::now())).await {
                tracing::warn!(error = %e, "cannot scan for expiring tokens yet");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Delivers what is due, until the process ends.
    pub async fn deliver_forever(self: Arc<Self>, webhook: Webhook) {
        let client = match webhook_client(&webhook) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook client: notifications stay in the outbox");
                return;
            }
        };
        loop {
            let attempted = match self.deliver_due(&client, &webhook).await {
                Ok(attempted) => attempted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the outbox yet");
                    0
                }
            };
            if attempted == 0 {
                tokio::select! {
                    () = self.outbox_ready.notified() => {}
                    () = tokio::time::sleep(webhook.poll) => {}
                }
            }
        }
    }

    /// One pass: claims each due notification, posts it, and records the outcome.
    /// Returns how many were attempted.
    async fn deliver_due(&self, client: &reqwest::Client, webhook: &Webhook) -> Result<usize> {
        let now = clock::now_ms();
        let due = self.store.due_notifications(now, BATCH).await?;
        let lease = millis(webhook.timeout) + 5_000;
        let mut attempted = 0;
        for notification in &due {
            if !self
                .store
                .claim_notification(notification.id, notification.next_attempt_ms, now + lease)
                .await?
            {
                continue;
            }
            attempted += 1;
            let attempt = notification.attempts + 1;
            match post(client, webhook, notification, attempt).await {
                Ok(()) => {
                    self.metrics.webhook_delivery(true);
                    self.store
                        .notification_delivered(notification.id, clock::now())
                        .await?;
                }
                Err(why) => {
                    self.metrics.webhook_delivery(false);
                    let wait = backoff(webhook, attempt);
                    tracing::warn!(
                        key = %notification.idempotency_key,
                        attempt,
                        retry_in_ms = wait,
                        why = %why,
                        "webhook delivery failed"
                    );
                    self.store
                        .notification_failed(notification.id, clock::now_ms() + wait, &why)
                        .await?;
                }
            }
        }
        Ok(attempted)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The wait after failed attempt `attempt` (from 1): the base, doubled each time, capped.
fn backoff(webhook: &Webhook, attempt: u32) -> i64 {
    let doublings = attempt.saturating_sub(1).min(30);
    millis(webhook.retry_base)
        .saturating_mul(1 << doublings)
        .min(millis(webhook.retry_max))
}

/// Makes ring the process's TLS crypto provider (the webhook client needs one), unless
/// a provider was installed already.
pub fn install_crypto_provider() {
    // An error means one is installed: either is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn webhook_client(webhook: &Webhook) -> std::result::Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(webhook.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("patrol/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Posts one notification; any answer but a 2xx is a failure. An error never names the
/// URL: it may carry a credential.
async fn post(
    client: &reqwest::Client,
    webhook: &Webhook,
    notification: &Notification,
    attempt: u32,
) -> std::result::Result<(), String> {
    let answer = client
        .post(webhook.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", &notification.idempotency_key)
        .header("X-Patrol-Event", &notification.event)
        .header("X-Patrol-Attempt", attempt.to_string())
        .body(notification.payload.clone())
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", answer.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let mut webhook = Webhook::parse("http://127.0.0.1:9/hook").unwrap();
        webhook.retry_base = Duration::from_millis(100);
        webhook.retry_max = Duration::from_millis(1_000);
        let waits: Vec<i64> = (1..=6).map(|n| backoff(&webhook, n)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(&webhook, u32::MAX), 1_000);
    }
}
