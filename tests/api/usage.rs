//! Last-use tracking: decisions note uses in memory; a flush writes them in one batch.

use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{ADMIN_KEY, Backend, TestApp, TestDb, in_days, spawn_with};

/// Patrol with flushes far apart: only the test (or a stop) flushes.
async fn spawn_tracking(backend: Backend, track: bool) -> TestApp {
    let app = spawn_with(TestDb::new(backend).await, move |s| {
        s.track_usage = track;
        s.usage_flush = Duration::from_secs(3600);
    })
    .await;
    app.seed().await;
    app
}

async fn decide_from(app: &TestApp, token: &str, ip: &str) -> Value {
    let answer = app
        .post(
            "/v1/authorize",
            json!({"token": token, "permission": "read_issue",
                   "boundary": {"type": "project", "id": 42}, "client_ip": ip}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body
}

async fn shown(app: &TestApp, id: u64) -> Value {
    let answer = app.get(&format!("/v1/tokens/{id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body
}

async fn last_use_is_written_in_batches_behind_decisions(backend: Backend) {
    let app = spawn_tracking(backend, true).await;
    let (id, token) = app.alice_token(&["read_issue"]).await;
    let (other, other_token) = app.alice_token(&["read_pipeline"]).await;
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3"] {
        assert_eq!(decide_from(&app, &token, ip).await["allowed"], true);
    }
    // A denial for the permission is still a use of the token.
    assert_eq!(
        decide_from(&app, &other_token, "10.9.9.9").await["allowed"],
        false
    );

    let before = shown(&app, id).await;
    assert_eq!(
        before["last_used_at"],
        Value::Null,
        "decisions do not write"
    );
    assert_eq!(before["last_used_ips"], json!([]));

    assert_eq!(
        app.service.flush_usage().await.unwrap(),
        2,
        "one batch, two tokens"
    );
    let after = shown(&app, id).await;
    assert!(after["last_used_at"].is_string(), "{after}");
    assert_eq!(
        after["last_used_ips"],
        json!(["10.0.0.3", "10.0.0.1", "10.0.0.2"]),
        "most recent first, distinct"
    );
    assert_eq!(
        shown(&app, other).await["last_used_ips"],
        json!(["10.9.9.9"])
    );
    assert_eq!(app.service.flush_usage().await.unwrap(), 0, "nothing new");

    // The gateway's client address counts too; the list keeps the 5 most recent.
    for ip in ["10.0.0.4", "10.0.0.5", "10.0.0.6"] {
        let answer = app
            .call_with(
                reqwest::Method::GET,
                "/v1/gateway/check/api/v4/projects/42/issues",
                &[
                    ("X-Patrol-Key", ADMIN_KEY),
                    ("PRIVATE-TOKEN", &token),
                    // Envoy's convention: the address it saw ends X-Forwarded-For.
                    ("X-Forwarded-For", &format!("203.0.113.1, {ip}")),
                ],
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    app.service.flush_usage().await.unwrap();
    assert_eq!(
        shown(&app, id).await["last_used_ips"],
        json!(["10.0.0.6", "10.0.0.5", "10.0.0.4", "10.0.0.3", "10.0.0.1"])
    );

    // The inventory filters on it.
    let used = app
        .get(&format!(
            "/v1/tokens?user_id=1&last_used_after={}",
            in_days(-1)
        ))
        .await;
    assert_eq!(used.body.as_array().unwrap().len(), 2, "{}", used.text);
    app.finish().await;
}

async fn refused_tokens_are_not_used(backend: Backend) {
    let app = spawn_tracking(backend, true).await;
    let (fenced, fenced_token) = app
        .token(
            1,
            json!({"name": "fenced", "expires_at": in_days(30), "allowed_ips": ["192.168.0.0/16"],
                   "granular_scopes": [{"access": "all_memberships", "permissions": ["read_issue"]}]}),
        )
        .await;
    let (revoked, revoked_token) = app.alice_token(&["read_issue"]).await;
    assert_eq!(
        app.delete(&format!("/v1/tokens/{revoked}")).await.status,
        204
    );
    assert_eq!(
        decide_from(&app, &fenced_token, "10.0.0.1").await["reason"],
        "ip_not_allowed"
    );
    assert_eq!(
        decide_from(&app, &revoked_token, "10.0.0.1").await["reason"],
        "token_revoked"
    );
    assert_eq!(app.service.flush_usage().await.unwrap(), 0);
    assert_eq!(shown(&app, fenced).await["last_used_at"], Value::Null);
    app.finish().await;
}

async fn uses_noted_before_a_stop_are_written_at_the_stop(backend: Backend) {
    let app = spawn_tracking(backend, true).await;
    let (id, token) = app.alice_token(&["read_issue"]).await;
    decide_from(&app, &token, "10.0.0.7").await;
    let db = app.stop().await;
    let app = spawn_with(db, |_| {}).await;
    assert_eq!(shown(&app, id).await["last_used_ips"], json!(["10.0.0.7"]));
    app.finish().await;
}

async fn tracking_off_records_nothing(backend: Backend) {
    let app = spawn_tracking(backend, false).await;
    let (id, token) = app.alice_token(&["read_issue"]).await;
    decide_from(&app, &token, "10.0.0.1").await;
    assert_eq!(app.service.flush_usage().await.unwrap(), 0);
    assert_eq!(shown(&app, id).await["last_used_at"], Value::Null);
    app.finish().await;
}

on_both_backends!(
    last_use_is_written_in_batches_behind_decisions,
    refused_tokens_are_not_used,
    uses_noted_before_a_stop_are_written_at_the_stop,
    tracking_off_records_nothing,
);
