//! The GitLab-compatible API (DESIGN.md section 6): GitLab's paths, fields, statuses
//! and paging, with the token itself; and the real python-gitlab client driving it
//! (`tests/gitlab/client.py`; `.ci/run` installs python-gitlab from PyPI, and without it
//! this test fails: it is never skipped).

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Answer, Backend, TestApp, in_days, spawn};

on_both_backends!(
    gitlab_paths_fields_and_statuses,
    python_gitlab_works_unchanged
);

async fn as_token(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    app.call_with(method, path, &[("PRIVATE-TOKEN", token)], body)
        .await
}

/// root (3) is an admin: a token with `api` and `admin_mode` acts as one.
async fn admin_token(app: &TestApp) -> String {
    app.token(
        3,
        json!({"name": "admin", "expires_at": in_days(30), "scopes": ["api", "admin_mode"]}),
    )
    .await
    .1
}

async fn gitlab_paths_fields_and_statuses(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let admin = admin_token(&app).await;
    let user = as_token(&app, Method::GET, "/api/v4/user", &admin, None).await;
    assert_eq!(user.status, 200, "{}", user.text);
    assert_eq!(
        (user.body["id"].clone(), user.body["is_admin"].clone()),
        (json!(3), json!(true))
    );

    let created = as_token(
        &app,
        Method::POST,
        "/api/v4/users/1/personal_access_tokens",
        &admin,
        Some(json!({"name": "cli", "scopes": ["api"], "expires_at": in_days(10)})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    for field in [
        "id",
        "name",
        "revoked",
        "created_at",
        "description",
        "scopes",
        "user_id",
        "last_used_at",
        "active",
        "expires_at",
        "token",
    ] {
        assert!(
            created.body.get(field).is_some(),
            "GitLab's field `{field}`: {}",
            created.text
        );
    }
    assert_eq!(created.body["user_id"], 1);
    let alice = created.body["token"].as_str().unwrap().to_owned();
    let alice_id = created.body["id"].as_u64().unwrap();

    // A user sees their own tokens only.
    let (_, other) = app.alice_token(&["read_issue"]).await;
    let listed = as_token(
        &app,
        Method::GET,
        "/api/v4/personal_access_tokens?per_page=1",
        &alice,
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.headers["x-total"], "2");
    assert_eq!(listed.headers["x-next-page"], "2");
    assert!(
        listed.headers["link"]
            .to_str()
            .unwrap()
            .contains("/api/v4/personal_access_tokens?page=2&per_page=1")
    );
    let all = as_token(
        &app,
        Method::GET,
        "/api/v4/personal_access_tokens",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        all.headers["x-total"], "3",
        "an administrator sees every user's"
    );
    let cases: Vec<(Method, String, &str, u16)> = vec![
        (
            Method::GET,
            "/api/v4/personal_access_tokens?user_id=3".to_owned(),
            alice.as_str(),
            403,
        ),
        (
            Method::GET,
            "/api/v4/personal_access_tokens/1".to_owned(),
            alice.as_str(),
            404,
        ),
        (
            Method::GET,
            "/api/v4/personal_access_tokens/nope".to_owned(),
            alice.as_str(),
            404,
        ),
        (
            Method::GET,
            "/api/v4/personal_access_tokens/self".to_owned(),
            "glpat-forged",
            401,
        ),
        (
            Method::POST,
            "/api/v4/users/2/personal_access_tokens".to_owned(),
            alice.as_str(),
            403,
        ),
        // A fine-grained token without personal access token permissions.
        (
            Method::GET,
            "/api/v4/personal_access_tokens".to_owned(),
            other.as_str(),
            403,
        ),
    ];
    for (method, path, token, status) in cases {
        let answer = as_token(
            &app,
            method.clone(),
            &path,
            token,
            Some(json!({"name": "x", "scopes": ["api"]})),
        )
        .await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text);
        assert!(
            answer.body["message"].is_string(),
            "GitLab's error body: {}",
            answer.text
        );
    }
    let me = as_token(
        &app,
        Method::GET,
        "/api/v4/personal_access_tokens/self",
        &alice,
        None,
    )
    .await;
    assert_eq!(me.body["id"], alice_id);
    assert!(me.body.get("token").is_none());

    let rotated = as_token(
        &app,
        Method::POST,
        "/api/v4/personal_access_tokens/self/rotate",
        &alice,
        None,
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let fresh = rotated.body["token"].as_str().unwrap().to_owned();
    let stale = as_token(
        &app,
        Method::GET,
        "/api/v4/personal_access_tokens/self",
        &alice,
        None,
    )
    .await;
    assert_eq!(stale.status, 401);
    assert!(stale.headers.contains_key("www-authenticate"));
    let deleted = as_token(
        &app,
        Method::DELETE,
        "/api/v4/personal_access_tokens/self",
        &fresh,
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    // `self_rotate` rotates itself and nothing else.
    let (_, own) = app
        .token(
            1,
            json!({"name": "r", "expires_at": in_days(5), "scopes": ["self_rotate"]}),
        )
        .await;
    let (victim, _) = app
        .token(
            1,
            json!({"name": "v", "expires_at": in_days(5), "scopes": ["read_api"]}),
        )
        .await;
    let refused = as_token(
        &app,
        Method::POST,
        &format!("/api/v4/personal_access_tokens/{victim}/rotate"),
        &own,
        None,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let itself = as_token(
        &app,
        Method::POST,
        "/api/v4/personal_access_tokens/self/rotate",
        &own,
        None,
    )
    .await;
    assert_eq!(itself.status, 200, "{}", itself.text);
    app.finish().await;
}

async fn python_gitlab_works_unchanged(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let admin = admin_token(&app).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gitlab/client.py");
    let address = app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, &address, &admin, "1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python-gitlab against patrol failed (pip install python-gitlab, or run .ci/run):\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("python-gitlab") && stdout.ends_with("ok\n"),
        "{stdout}"
    );
    app.finish().await;
}
