//! Notifications: the outbox and the webhook worker, against a real HTTP receiver on
//! loopback; expiry announcements; last-use tracking.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use patrol::config::Webhook;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, TestDb, in_days, spawn_with};

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Delivery {
    key: String,
    event: String,
    attempt: u32,
    body: Value,
}

/// A webhook receiver on loopback. With `fail_first`, it answers 500 to the first
/// delivery of each key (and records it all the same).
#[derive(Debug)]
struct Receiver {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Delivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(address: SocketAddr, fail_first: bool) -> Self {
        let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let log = Arc::clone(&seen);
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let log = Arc::clone(&log);
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let delivery = Delivery {
                        key: header("idempotency-key"),
                        event: header("x-patrol-event"),
                        attempt: header("x-patrol-attempt").parse().unwrap_or(0),
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                    };
                    let mut log = log.lock();
                    let first = !log.iter().any(|d| d.key == delivery.key);
                    log.push(delivery);
                    if fail_first && first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            address,
            seen,
            task,
        }
    }

    fn url(&self) -> String {
        url(self.address)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().clone()
    }

    /// Waits until `count` deliveries arrived (10 s at most).
    async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        for _ in 0..200 {
            if self.seen.lock().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = self.deliveries();
        assert!(
            seen.len() >= count,
            "only {} of {count}: {seen:#?}",
            seen.len()
        );
        seen
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn url(address: SocketAddr) -> String {
    format!("http://{address}/hook")
}

/// A loopback address nothing listens on (yet).
async fn free_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A webhook that retries quickly.
fn quick(url: &str) -> Webhook {
    let mut webhook = Webhook::parse(url).unwrap();
    webhook.retry_base = Duration::from_millis(50);
    webhook.retry_max = Duration::from_millis(200);
    webhook.poll = Duration::from_millis(50);
    webhook.timeout = Duration::from_secs(2);
    webhook
}

async fn spawn_notifying(backend: Backend, url: &str) -> TestApp {
    let url = url.to_owned();
    let app = spawn_with(TestDb::new(backend).await, move |s| {
        s.webhook = Some(quick(&url));
    })
    .await;
    app.seed().await;
    app
}

/// Deliveries by key.
fn by_key(deliveries: &[Delivery]) -> BTreeMap<String, Vec<Delivery>> {
    let mut keys: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for delivery in deliveries {
        keys.entry(delivery.key.clone())
            .or_default()
            .push(delivery.clone());
    }
    keys
}

/// Waits until the outbox holds nothing undelivered (10 s at most).
async fn wait_until_delivered(app: &TestApp) {
    for _ in 0..200 {
        let pending = app.service.store().notifications().await.unwrap();
        if !pending.is_empty() && pending.iter().all(|n| n.delivered_at.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "still undelivered: {:#?}",
        app.service.store().notifications().await.unwrap()
    );
}

async fn legacy_token(app: &TestApp, name: &str, expires_in: i64) -> (u64, String) {
    app.token(
        1,
        json!({"name": name, "scopes": ["read_api"], "expires_at": in_days(expires_in)}),
    )
    .await
}

async fn lifecycle_is_announced_once_per_event(backend: Backend) {
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), false).await;
    let app = spawn_notifying(backend, &receiver.url()).await;
    let (legacy, _) = legacy_token(&app, "ci", 30).await;
    let (fine, fine_plain) = app
        .token(
            1,
            json!({"name": "deploy acme/app", "expires_at": in_days(30), "allowed_ips": ["10.0.0.0/8"],
                   "granular_scopes": [
                       {"access": "selected_memberships", "project_ids": [42], "group_ids": [8],
                        "permissions": ["read_issue", "create_pipeline"]},
                       {"access": "user", "permissions": ["read_personal_access_token"]}]}),
        )
        .await;
    let rotated = app
        .post(&format!("/v1/tokens/{legacy}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let successor = rotated.body["id"].as_u64().unwrap();
    let successor_plain = rotated.body["token"].as_str().unwrap().to_owned();
    assert_eq!(app.delete(&format!("/v1/tokens/{fine}")).await.status, 204);
    let by_value = app
        .post(
            "/v1/tokens/revoke-by-value",
            json!({"token": successor_plain}),
        )
        .await;
    assert_eq!(by_value.status, 204, "{}", by_value.text);

    let expected = [
        format!("token_created:{legacy}"),
        format!("token_created_instrumentation:{legacy}"),
        format!("token_created:{fine}"),
        format!("token_created_instrumentation:{fine}"),
        format!("token_rotated:{legacy}"),
        format!("token_revoked:{fine}"),
        format!("token_revoked:{successor}"),
    ];
    let seen = receiver.wait_for(expected.len()).await;
    wait_until_delivered(&app).await;
    let keys = by_key(&receiver.deliveries());
    assert_eq!(
        keys.keys().cloned().collect::<Vec<_>>(),
        {
            let mut sorted = expected.to_vec();
            sorted.sort();
            sorted
        },
        "{seen:#?}"
    );
    for (key, deliveries) in &keys {
        assert_eq!(deliveries.len(), 1, "{key} delivered more than once");
        let delivery = &deliveries[0];
        assert_eq!(delivery.attempt, 1);
        assert_eq!(delivery.body["idempotency_key"], key.as_str());
        assert_eq!(delivery.body["event"], delivery.event.as_str());
        assert!(key.starts_with(&format!("{}:", delivery.event)));
    }
    let one = |key: String| keys[&key][0].body.clone();
    let created = one(format!("token_created:{fine}"));
    assert_eq!(created["token"]["id"], fine);
    assert_eq!(created["token"]["user_id"], 1);
    assert_eq!(created["token"]["kind"], "fine_grained");
    assert_eq!(
        one(format!("token_rotated:{legacy}"))["new_token_id"],
        successor
    );
    assert_eq!(one(format!("token_revoked:{fine}"))["reason"], "revoked");
    assert_eq!(
        one(format!("token_revoked:{successor}"))["reason"],
        "revoked_by_value"
    );

    // Instrumentation: kind, access kinds and permissions; no user, name or namespace.
    let instrumentation = one(format!("token_created_instrumentation:{fine}"));
    let mut fields: Vec<&str> = instrumentation
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "access",
            "event",
            "expires",
            "idempotency_key",
            "ip_restricted",
            "kind",
            "occurred_at",
            "permissions",
            "scopes"
        ]
    );
    assert_eq!(
        instrumentation["access"],
        json!(["selected_memberships", "user"])
    );
    assert_eq!(
        instrumentation["permissions"],
        json!([
            "create_pipeline",
            "read_issue",
            "read_personal_access_token"
        ])
    );
    assert_eq!(instrumentation["ip_restricted"], true);
    // The clock can read 42 too: the leak check reads everything but the time.
    let mut without_time = instrumentation.clone();
    without_time.as_object_mut().unwrap().remove("occurred_at");
    let text = without_time.to_string();
    for leak in ["42", "acme", "deploy", "alice", "project_ids", "group_ids"] {
        assert!(!text.contains(leak), "`{leak}` in {text}");
    }
    // No payload ever holds a plaintext.
    for delivery in receiver.deliveries() {
        let text = delivery.body.to_string();
        assert!(!text.contains(&fine_plain) && !text.contains(&successor_plain));
        assert!(!text.contains("glpat-"), "{text}");
    }
    app.finish().await;
}

async fn a_webhook_down_for_a_while_loses_nothing_and_repeats_nothing(backend: Backend) {
    let address = free_address().await;
    let app = spawn_notifying(backend, &url(address)).await;
    let (first, _) = legacy_token(&app, "one", 30).await;
    let (second, _) = legacy_token(&app, "two", 30).await;
    assert_eq!(
        app.delete(&format!("/v1/tokens/{second}")).await.status,
        204
    );

    // Down: every attempt fails, and is tried again later.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let outbox = app.service.store().notifications().await.unwrap();
    assert_eq!(outbox.len(), 5, "{outbox:#?}");
    assert!(outbox.iter().all(|n| n.delivered_at.is_none()));
    assert!(
        outbox
            .iter()
            .all(|n| n.attempts >= 2 && n.last_error.is_some()),
        "{outbox:#?}"
    );

    // Up: everything arrives, each key once.
    let receiver = Receiver::start(address, false).await;
    receiver.wait_for(5).await;
    wait_until_delivered(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys = by_key(&receiver.deliveries());
    assert_eq!(keys.len(), 5, "{keys:#?}");
    assert!(keys.values().all(|d| d.len() == 1), "{keys:#?}");
    assert!(keys.contains_key(&format!("token_created:{first}")));
    assert!(keys.contains_key(&format!("token_revoked:{second}")));
    assert!(
        keys.values().all(|d| d[0].attempt >= 3),
        "the attempt number counts the failed ones: {keys:#?}"
    );
    app.finish().await;
}

async fn a_refused_delivery_is_repeated_under_the_same_key(backend: Backend) {
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), true).await;
    let app = spawn_notifying(backend, &receiver.url()).await;
    let (id, _) = legacy_token(&app, "ci", 30).await;
    receiver.wait_for(4).await;
    wait_until_delivered(&app).await;
    let keys = by_key(&receiver.deliveries());
    let created = &keys[&format!("token_created:{id}")];
    assert_eq!(
        created.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [1, 2],
        "the repeat says it is one"
    );
    assert_eq!(
        created[0].body, created[1].body,
        "the same event, the same body"
    );
    let outbox = app.service.store().notifications().await.unwrap();
    assert!(outbox.iter().all(|n| n.attempts == 2), "{outbox:#?}");
    app.finish().await;
}

async fn expiry_is_announced_seven_days_ahead_and_on_the_day_once_each(backend: Backend) {
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), false).await;
    let app = spawn_notifying(backend, &receiver.url()).await;
    let (soon, _) = legacy_token(&app, "soon", 3).await;
    let (later, _) = legacy_token(&app, "later", 30).await;
    let (revoked, _) = legacy_token(&app, "revoked", 10).await;
    assert_eq!(
        app.delete(&format!("/v1/tokens/{revoked}")).await.status,
        204
    );
    let today = patrol::clock::date_of(patrol::clock::now());
    let day = |n: i64| today + time::Duration::days(n);
    // The background scan (at start, then hourly) may find them first: what counts is
    // what the outbox holds after each scan, one row per event and token at most.
    let scanned_on = |n: i64| {
        let app = &app;
        async move {
            app.service.scan_expiry(day(n)).await.unwrap();
            let mut keys: Vec<String> = app
                .service
                .store()
                .notifications()
                .await
                .unwrap()
                .into_iter()
                .filter(|n| n.event.starts_with("token_expir"))
                .map(|n| n.idempotency_key)
                .collect();
            keys.sort();
            keys
        }
    };
    let expiring = |id: u64| format!("token_expiring:{id}");
    let expired = |id: u64| format!("token_expired:{id}");
    assert_eq!(
        scanned_on(0).await,
        [expiring(soon)],
        "`soon` expires within 7 days"
    );
    assert_eq!(scanned_on(0).await, [expiring(soon)], "once");
    assert_eq!(scanned_on(2).await, [expiring(soon)], "still once");
    assert_eq!(
        scanned_on(3).await,
        [expired(soon), expiring(soon)],
        "`soon` expired today"
    );
    assert_eq!(scanned_on(4).await, [expired(soon), expiring(soon)], "once");
    let all = {
        let mut all = vec![expired(soon), expiring(later), expiring(soon)];
        all.sort();
        all
    };
    assert_eq!(scanned_on(23).await, all, "`later` expires in 7 days");
    let mut everything = all.clone();
    everything.push(expired(later));
    everything.sort();
    assert_eq!(
        scanned_on(36).await,
        everything,
        "`later` expired 6 days ago, unannounced"
    );
    assert_eq!(scanned_on(37).await, everything, "once");
    // Created (with instrumentation) 3 times, revoked once, 4 expiry events.
    let keys = by_key(&receiver.wait_for(6 + 1 + 4).await);
    let body = |key: String| keys[&key][0].body.clone();
    assert_eq!(body(format!("token_expiring:{soon}"))["expires_in_days"], 3);
    assert_eq!(
        body(format!("token_expiring:{later}"))["expires_in_days"],
        7
    );
    assert_eq!(
        body(format!("token_expired:{soon}"))["token"]["expires_at"],
        in_days(3)
    );
    assert!(
        !keys
            .keys()
            .any(|k| k.starts_with("token_expir") && k.ends_with(&format!(":{revoked}"))),
        "a revoked token does not expire"
    );
    assert!(keys.values().all(|d| d.len() == 1), "{keys:#?}");
    app.finish().await;
}

async fn queued_notifications_survive_a_restart(backend: Backend) {
    let address = free_address().await;
    let app = spawn_notifying(backend, &url(address)).await;
    let (id, _) = legacy_token(&app, "ci", 30).await;
    let db = app.stop().await;

    let receiver = Receiver::start(address, false).await;
    let webhook = url(address);
    let app = spawn_with(db, move |s| s.webhook = Some(quick(&webhook))).await;
    let keys = by_key(&receiver.wait_for(2).await);
    assert!(
        keys.contains_key(&format!("token_created:{id}")),
        "{keys:#?}"
    );
    wait_until_delivered(&app).await;
    app.finish().await;
}

async fn without_a_webhook_nothing_is_queued(backend: Backend) {
    let app = spawn_with(TestDb::new(backend).await, |_| {}).await;
    app.seed().await;
    let (id, _) = legacy_token(&app, "ci", 3).await;
    assert_eq!(app.delete(&format!("/v1/tokens/{id}")).await.status, 204);
    let today = patrol::clock::date_of(patrol::clock::now());
    assert_eq!(app.service.scan_expiry(today).await.unwrap(), 0);
    assert!(
        app.service
            .store()
            .notifications()
            .await
            .unwrap()
            .is_empty()
    );
    app.finish().await;
}

on_both_backends!(
    lifecycle_is_announced_once_per_event,
    a_webhook_down_for_a_while_loses_nothing_and_repeats_nothing,
    a_refused_delivery_is_repeated_under_the_same_key,
    expiry_is_announced_seven_days_ahead_and_on_the_day_once_each,
    queued_notifications_survive_a_restart,
    without_a_webhook_nothing_is_queued,
);
