//! A token's life after creation (DESIGN.md section 4): update, duplicate, rotate with
//! reuse detection, revoke, revoke by value, and the audit trail all of it leaves.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, in_days, spawn};

on_both_backends!(
    a_scripted_lifecycle_leaves_a_complete_audit_trail,
    updates_follow_the_rules_of_creation,
    duplicates_and_revocation_by_value,
    rotation_sets_a_new_expiry,
    tokens_act_on_themselves,
);

/// Calls a self endpoint with a token in `header`, and no service key.
async fn as_token(
    app: &TestApp,
    method: Method,
    path: &str,
    header: (&str, &str),
) -> crate::support::Answer {
    app.call_with(method, path, &[header], None).await
}

async fn tokens_act_on_themselves(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (reader, reader_token) = app
        .token(
            1,
            json!({"name": "introspect", "expires_at": in_days(30), "granular_scopes": [
                {"access": "user", "permissions": ["read_personal_access_token"]}]}),
        )
        .await;
    let shown = as_token(
        &app,
        Method::GET,
        "/v1/tokens/self",
        ("PRIVATE-TOKEN", &reader_token),
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["id"], reader);
    assert!(shown.body.get("token").is_none());
    let refused = as_token(
        &app,
        Method::POST,
        "/v1/tokens/self/rotate",
        ("PRIVATE-TOKEN", &reader_token),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.body["reason"], "permission_not_granted");

    // `self_rotate` lets a legacy token rotate itself, and do nothing else.
    let (rotating, rotating_token) = app
        .token(
            1,
            json!({"name": "rot", "expires_at": in_days(30), "scopes": ["self_rotate"]}),
        )
        .await;
    let bearer = format!("Bearer {rotating_token}");
    let peek = as_token(
        &app,
        Method::GET,
        "/v1/tokens/self",
        ("Authorization", &bearer),
    )
    .await;
    assert_eq!(peek.status, 403, "{}", peek.text);
    let rotated = as_token(
        &app,
        Method::POST,
        "/v1/tokens/self/rotate",
        ("Authorization", &bearer),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.body["scopes"], json!(["self_rotate"]));
    let successor = rotated.body["token"].as_str().unwrap().to_owned();
    let again = as_token(
        &app,
        Method::POST,
        "/v1/tokens/self/rotate",
        ("Authorization", &bearer),
    )
    .await;
    assert_eq!(
        again.status, 401,
        "the old value is revoked: {}",
        again.text
    );
    assert_eq!(again.body["reason"], "token_revoked");
    assert!(again.headers.contains_key("www-authenticate"));
    let next = as_token(
        &app,
        Method::POST,
        "/v1/tokens/self/rotate",
        ("PRIVATE-TOKEN", &successor),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.text);
    let rotated_events = app.get("/v1/audit-events?action=token_rotated").await;
    assert_eq!(rotated_events.body[0]["actor"], format!("token:{rotating}"));
    assert_eq!(rotated_events.body[0]["target_id"], rotating);

    // An `api` token may revoke itself.
    let (_, api) = app
        .token(
            1,
            json!({"name": "api", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let gone = as_token(
        &app,
        Method::DELETE,
        "/v1/tokens/self",
        ("PRIVATE-TOKEN", &api),
    )
    .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let after = as_token(
        &app,
        Method::GET,
        "/v1/tokens/self",
        ("PRIVATE-TOKEN", &api),
    )
    .await;
    assert_eq!(after.status, 401);

    for header in [("PRIVATE-TOKEN", "glpat-garbage"), ("X-Nothing", "x")] {
        let answer = as_token(&app, Method::GET, "/v1/tokens/self", header).await;
        assert_eq!(answer.status, 401, "{header:?}");
    }
    app.finish().await;
}

async fn patch(app: &TestApp, id: u64, body: Value) -> crate::support::Answer {
    app.call(Method::PATCH, &format!("/v1/tokens/{id}"), Some(body))
        .await
}

async fn a_scripted_lifecycle_leaves_a_complete_audit_trail(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (first, first_token) = app
        .token(
            1,
            json!({"name": "ci", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    assert_eq!(
        app.reason(&first_token, "create_issue", 42).await,
        "granted"
    );

    let updated = patch(
        &app,
        first,
        json!({"name": "ci reader", "scopes": ["read_api"]}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["name"], "ci reader");
    assert_eq!(updated.body["scopes"], json!(["read_api"]));
    assert!(updated.body.get("token").is_none());
    assert_eq!(
        app.reason(&first_token, "create_issue", 42).await,
        "permission_not_granted",
        "narrowed at once, the cached verification kept"
    );
    assert_eq!(app.reason(&first_token, "read_issue", 42).await, "granted");

    let rotated = app
        .post(&format!("/v1/tokens/{first}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let second = rotated.body["id"].as_u64().unwrap();
    let second_token = rotated.body["token"].as_str().unwrap().to_owned();
    assert_eq!(rotated.body["name"], "ci reader");
    assert_eq!(rotated.body["scopes"], json!(["read_api"]));
    assert_eq!(
        app.reason(&first_token, "read_issue", 42).await,
        "token_revoked"
    );
    assert_eq!(app.reason(&second_token, "read_issue", 42).await, "granted");

    // The old value comes back: someone kept it. The whole family goes.
    let reused = app
        .post(&format!("/v1/tokens/{first}/rotate"), json!({}))
        .await;
    assert_eq!(reused.status, 409, "{}", reused.text);
    assert_eq!(
        app.reason(&second_token, "read_issue", 42).await,
        "token_revoked"
    );
    assert_eq!(
        app.get(&format!("/v1/tokens/{second}")).await.body["revoked"],
        true
    );

    let (third, _) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.delete(&format!("/v1/tokens/{third}")).await.status, 204);

    let trail = app.get("/v1/audit-events?target_type=token").await;
    assert_eq!(trail.status, 200, "{}", trail.text);
    let events: Vec<(String, u64)> = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target_id"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("token_created", first),
        ("token_updated", first),
        ("token_rotated", first),
        ("token_reuse_detected", first),
        ("token_created", third),
        ("token_revoked", third),
    ];
    let expected: Vec<(String, u64)> = expected
        .iter()
        .map(|(a, id)| ((*a).to_owned(), *id))
        .collect();
    assert_eq!(events, expected, "complete and in order");
    let body = &trail.body;
    assert_eq!(body[1]["details"]["before"]["scopes"], json!(["api"]));
    assert_eq!(body[1]["details"]["after"]["scopes"], json!(["read_api"]));
    assert_eq!(body[2]["details"]["to"], second);
    assert_eq!(body[3]["details"]["revoked"], json!([second]));
    for event in body.as_array().unwrap() {
        assert_eq!(event["actor"], "admin_key");
        assert_eq!(event["source_ip"], "127.0.0.1");
    }
    for plaintext in [&first_token, &second_token] {
        assert!(
            !trail.text.contains(plaintext.as_str()),
            "no plaintext in the trail"
        );
    }
    assert!(!trail.text.contains("glpat-") && !trail.text.contains("$argon2"));
    app.finish().await;
}

async fn updates_follow_the_rules_of_creation(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (fine, token) = app.alice_token(&["read_issue"]).await;
    let (legacy, _) = app
        .token(
            1,
            json!({"name": "l", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let cases: Vec<(u64, Value, u16, &str)> = vec![
        (
            fine,
            json!({"granular_scopes": [{"access": "all_memberships", "permissions": ["raed_issue"]}]}),
            422,
            "granular_scopes[0].permissions[0]",
        ),
        (fine, json!({"scopes": ["api"]}), 422, "scopes"),
        (
            legacy,
            json!({"granular_scopes": []}),
            422,
            "granular_scopes",
        ),
        (legacy, json!({"scopes": ["nope"]}), 422, "scopes[0]"),
        (fine, json!({"name": " "}), 422, "name"),
        (fine, json!({"expires_at": "2030-01-01"}), 400, "expires_at"),
        (fine, json!({"name": 7}), 400, "name"),
    ];
    for (id, body, status, field) in cases {
        let answer = patch(&app, id, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}");
    }
    let unchanged = app.get(&format!("/v1/tokens/{fine}")).await.body;
    assert_eq!(unchanged["name"], "alice", "nothing written");
    assert_eq!(patch(&app, 999, json!({"name": "x"})).await.status, 404);

    // Widening reaches decisions at once.
    assert_eq!(
        app.reason(&token, "create_issue", 42).await,
        "permission_not_granted"
    );
    let widened = patch(
        &app,
        fine,
        json!({"granular_scopes": [{"access": "all_memberships", "permissions": ["read_issue", "create_issue"]}]}),
    )
    .await;
    assert_eq!(widened.status, 200, "{}", widened.text);
    assert_eq!(app.reason(&token, "create_issue", 42).await, "granted");

    assert_eq!(app.delete(&format!("/v1/tokens/{fine}")).await.status, 204);
    assert_eq!(
        patch(&app, fine, json!({"name": "x"})).await.status,
        409,
        "revoked"
    );
    let job = app
        .post(
            "/v1/jobs",
            json!({"project_id": 43, "user_id": 1, "job_id": 1,
                   "expires_at": patrol::clock::rfc3339(patrol::clock::now() + 600)}),
        )
        .await;
    let job_id = job.body["id"].as_u64().unwrap();
    assert_eq!(
        patch(&app, job_id, json!({"name": "x"})).await.status,
        409,
        "job token"
    );
    assert_eq!(
        app.post(&format!("/v1/tokens/{job_id}/rotate"), json!({}))
            .await
            .status,
        409
    );
    assert_eq!(
        app.post(&format!("/v1/tokens/{job_id}/duplicate"), json!({}))
            .await
            .status,
        409,
        "a job token is not duplicated"
    );
    app.finish().await;
}

async fn duplicates_and_revocation_by_value(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (original, original_token) = app.alice_token(&["read_issue"]).await;
    let copy = app
        .post(
            &format!("/v1/tokens/{original}/duplicate"),
            json!({"name": "copy"}),
        )
        .await;
    assert_eq!(copy.status, 201, "{}", copy.text);
    assert_eq!(copy.body["name"], "copy");
    let shown = app.get(&format!("/v1/tokens/{original}")).await.body;
    assert_eq!(copy.body["granular_scopes"], shown["granular_scopes"]);
    assert_eq!(copy.body["expires_at"], shown["expires_at"]);
    let copy_token = copy.body["token"].as_str().unwrap().to_owned();
    assert_ne!(copy_token, original_token);
    assert_eq!(app.reason(&copy_token, "read_issue", 42).await, "granted");
    assert_eq!(
        app.reason(&original_token, "read_issue", 42).await,
        "granted",
        "untouched"
    );
    let bare = app
        .client
        .post(format!("{}/v1/tokens/{original}/duplicate", app.address))
        .header("X-Patrol-Key", crate::support::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 201, "a body is optional");
    let past = app
        .post(
            &format!("/v1/tokens/{original}/duplicate"),
            json!({"expires_at": "2020-01-01"}),
        )
        .await;
    assert_eq!((past.status.as_u16(), past.field()), (422, "expires_at"));

    // A scanner reports the copy's value.
    let wrong = patrol::secret::assemble("glpat-", &copy_token[6..18], &"Z".repeat(30));
    for (value, status) in [("glpat-nothing", 404), (wrong.as_str(), 404)] {
        let answer = app
            .post("/v1/tokens/revoke-by-value", json!({"token": value}))
            .await;
        assert_eq!(answer.status, status, "{}", answer.text);
    }
    assert_eq!(app.reason(&copy_token, "read_issue", 42).await, "granted");
    let revoked = app
        .post("/v1/tokens/revoke-by-value", json!({"token": copy_token}))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_eq!(
        app.reason(&copy_token, "read_issue", 42).await,
        "token_revoked"
    );
    let again = app
        .post("/v1/tokens/revoke-by-value", json!({"token": copy_token}))
        .await;
    assert_eq!(again.status, 204, "already revoked is fine");
    let events = app
        .get("/v1/audit-events?action=token_revoked_by_value")
        .await;
    assert_eq!(events.headers["x-total"], "1");
    let duplicated = app.get("/v1/audit-events?action=token_duplicated").await;
    assert_eq!(duplicated.body[0]["details"]["from"], original);
    app.finish().await;
}

async fn rotation_sets_a_new_expiry(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (id, _) = app.alice_token(&["read_issue"]).await;
    let rotated = app
        .post(&format!("/v1/tokens/{id}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.body["expires_at"], in_days(7), "a week, as GitLab");
    let id = rotated.body["id"].as_u64().unwrap();
    let chosen = app
        .post(
            &format!("/v1/tokens/{id}/rotate"),
            json!({"expires_at": in_days(20)}),
        )
        .await;
    assert_eq!(chosen.status, 200, "{}", chosen.text);
    assert_eq!(chosen.body["expires_at"], in_days(20));
    let id = chosen.body["id"].as_u64().unwrap();
    let too_far = app
        .post(
            &format!("/v1/tokens/{id}/rotate"),
            json!({"expires_at": in_days(400)}),
        )
        .await;
    assert_eq!(
        (too_far.status.as_u16(), too_far.field()),
        (422, "expires_at")
    );
    assert_eq!(
        app.get(&format!("/v1/tokens/{id}")).await.body["revoked"],
        false,
        "nothing written"
    );
    let answer = app
        .put(
            "/v1/settings",
            json!({"max_lifetime_days": 3, "require_expiry": true, "allow_legacy_token_creation": true}),
        )
        .await;
    assert_eq!(answer.status, 200);
    let short = app
        .post(&format!("/v1/tokens/{id}/rotate"), json!({}))
        .await;
    assert_eq!(short.status, 200, "{}", short.text);
    assert_eq!(
        short.body["expires_at"],
        in_days(3),
        "bounded by the maximum lifetime"
    );
    assert_eq!(
        app.post("/v1/tokens/999/rotate", json!({})).await.status,
        404
    );
    app.finish().await;
}
