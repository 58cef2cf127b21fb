//! Top-level group token policies (DESIGN.md section 7), and the audit trail of what
//! admins change.

use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, in_days, spawn, spawn_on};

on_both_backends!(a_group_can_refuse_legacy_tokens, admin_changes_are_audited);

async fn admin_changes_are_audited(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let created = app
        .post(
            "/v1/service-keys",
            json!({"name": "gateway", "role": "authorize"}),
        )
        .await;
    let key_id = created.body["id"].as_u64().unwrap();
    let key = created.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/v1/service-keys/{key_id}"))
            .await
            .status,
        204
    );
    let settings = json!({"max_lifetime_days": 90, "require_expiry": true, "allow_legacy_token_creation": false});
    assert_eq!(app.put("/v1/settings", settings.clone()).await.status, 200);
    let policy = json!({"enforce_fine_grained": true, "enforced_after": "2027-01-01"});
    assert!(
        app.put("/v1/groups/7/token-policy", policy.clone())
            .await
            .status
            .is_success()
    );

    let trail = app.get("/v1/audit-events").await;
    let events: Vec<(&str, &str, u64)> = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target_type"].as_str().unwrap(),
                e["target_id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("service_key_created", "service_key", key_id),
            ("service_key_revoked", "service_key", key_id),
            ("settings_updated", "instance", 0),
            ("group_token_policy_updated", "group", 7),
        ]
    );
    let body = &trail.body;
    assert_eq!(
        body[0]["details"],
        json!({"name": "gateway", "role": "authorize"})
    );
    assert_eq!(body[2]["details"]["before"]["max_lifetime_days"], 365);
    assert_eq!(body[2]["details"]["after"], settings);
    assert_eq!(body[3]["details"], policy);
    assert!(!trail.text.contains(&key), "no key plaintext in the trail");
    app.finish().await;
}

async fn a_group_can_refuse_legacy_tokens(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, legacy) = app
        .token(
            1,
            json!({"name": "old", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let (_, fine) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.reason(&legacy, "read_issue", 42).await, "granted");

    let later = app
        .put(
            "/v1/groups/7/token-policy",
            json!({"enforce_fine_grained": true, "enforced_after": in_days(10)}),
        )
        .await;
    assert_eq!(later.status, 200, "{}", later.text);
    assert_eq!(
        app.reason(&legacy, "read_issue", 42).await,
        "granted",
        "not enforced yet"
    );

    let now = app
        .put(
            "/v1/groups/7/token-policy",
            json!({"enforce_fine_grained": true, "enforced_after": null}),
        )
        .await;
    assert_eq!(now.status, 200);
    assert_eq!(
        now.body,
        json!({"enforce_fine_grained": true, "enforced_after": null})
    );
    assert_eq!(
        app.reason(&legacy, "read_issue", 42).await,
        "legacy_token_forbidden"
    );
    assert_eq!(
        app.reason(&legacy, "read_issue", 43).await,
        "legacy_token_forbidden",
        "the whole hierarchy"
    );
    assert_eq!(app.reason(&fine, "read_issue", 42).await, "granted");
    assert_eq!(
        app.reason(&legacy, "read_issue", 45).await,
        "granted",
        "other namespaces are untouched"
    );

    for (path, body, status, field) in [
        (
            "/v1/groups/8/token-policy",
            json!({"enforce_fine_grained": true}),
            422,
            "group_id",
        ),
        (
            "/v1/groups/99/token-policy",
            json!({"enforce_fine_grained": true}),
            404,
            "",
        ),
        (
            "/v1/groups/7/token-policy",
            json!({"enforce_fine_grained": true, "enforced_after": "soon"}),
            422,
            "enforced_after",
        ),
        (
            "/v1/groups/7/token-policy",
            json!({"enforce": true}),
            400,
            "enforce",
        ),
        (
            "/v1/groups/7/token-policy",
            json!({}),
            400,
            "enforce_fine_grained",
        ),
    ] {
        let answer = app.put(path, body.clone()).await;
        assert_eq!(answer.status, status, "{path} {body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{path} {body}");
    }
    // Stored: a restart keeps the policy.
    let app = spawn_on(app.stop().await).await;
    assert_eq!(
        app.reason(&legacy, "read_issue", 42).await,
        "legacy_token_forbidden"
    );
    app.put(
        "/v1/groups/7/token-policy",
        json!({"enforce_fine_grained": false}),
    )
    .await;
    assert_eq!(app.reason(&legacy, "read_issue", 42).await, "granted");
    app.finish().await;
}
