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
    python_gitlab_works_unchanged,
    a_token_creates_tokens_only_within_what_it_holds,
    minting_never_reaches_past_the_minter,
    a_token_without_the_routes_permission_is_forbidden
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

/// A token makes a token for its own user (`POST /api/v4/user/personal_access_tokens`).
async fn mint(app: &TestApp, holder: &str, body: Value) -> Answer {
    as_token(
        app,
        Method::POST,
        "/api/v4/user/personal_access_tokens",
        holder,
        Some(body),
    )
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
        // A path patrol cannot read names no token (found by schemathesis).
        (
            Method::GET,
            "/api/v4/personal_access_tokens/%F1%8Fk%0A".to_owned(),
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

async fn a_token_creates_tokens_only_within_what_it_holds(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    // alice (developer on acme, so on 42 and 43) with a token over project 42 only.
    let (_, holder) = app
        .token(
            1,
            json!({"name": "maker", "expires_at": in_days(30), "allowed_ips": ["127.0.0.0/8"],
                   "granular_scopes": [
                       {"access": "selected_memberships", "project_ids": [42], "permissions": ["read_issue"]},
                       {"access": "user", "permissions": ["create_personal_access_token"]}]}),
        )
        .await;
    let create = |body: Value| mint(&app, &holder, body);
    let within = json!({"name": "narrow", "expires_at": in_days(10), "allowed_ips": ["127.0.0.1/32"],
        "granular_scopes": [{"access": "selected_memberships", "project_ids": [42], "permissions": ["read_issue"]}]});
    let made = create(within.clone()).await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.body["user_id"], 1);
    let made_token = made.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.reason(&made_token, "read_issue", 42).await,
        "ip_not_allowed",
        "no client_ip given"
    );

    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = within.clone();
        change(&mut body);
        body
    };
    let refused = [
        (
            with(&|b| b["granular_scopes"][0]["project_ids"] = json!([43])),
            "granular_scopes",
            "`read_issue` on project 43",
        ),
        (
            with(&|b| b["granular_scopes"][0]["permissions"] = json!(["create_issue"])),
            "granular_scopes",
            "`create_issue` on project 42",
        ),
        (
            with(&|b| {
                b["granular_scopes"] =
                    json!([{"access": "all_memberships", "permissions": ["read_issue"]}]);
            }),
            "granular_scopes",
            "on all memberships",
        ),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("granular_scopes");
                b["scopes"] = json!(["read_api"]);
            }),
            "scopes",
            "calling token does not hold",
        ),
        (
            with(&|b| b["allowed_ips"] = json!(["10.0.0.0/8"])),
            "allowed_ips",
            "own `allowed_ips`",
        ),
        (
            with(&|b| b["allowed_ips"] = json!([])),
            "allowed_ips",
            "own `allowed_ips`",
        ),
        (
            with(&|b| b["expires_at"] = json!(in_days(60))),
            "expires_at",
            "own expiry",
        ),
    ];
    let before = app
        .get("/v1/tokens?user_id=1")
        .await
        .body
        .as_array()
        .unwrap()
        .len();
    for (body, field, says) in refused {
        let answer = create(body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        let message = answer.body["message"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains(says),
            "{body}: {message}"
        );
    }
    let after = app
        .get("/v1/tokens?user_id=1")
        .await
        .body
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "nothing was written");

    // A token without the permission to create may not try; a legacy `api` token may
    // make anything `api` covers.
    let (_, reader) = app.alice_token(&["read_issue"]).await;
    let answer = as_token(
        &app,
        Method::POST,
        "/api/v4/user/personal_access_tokens",
        &reader,
        Some(within.clone()),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    let (_, api) = app
        .token(
            1,
            json!({"name": "api", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let answer = as_token(
        &app,
        Method::POST,
        "/api/v4/user/personal_access_tokens",
        &api,
        Some(json!({"name": "from api", "expires_at": in_days(10),
                    "granular_scopes": [{"access": "all_memberships", "permissions": ["create_issue"]}]})),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    app.finish().await;
}

/// Each way a token once minted more than it held (the gateway integrity issue, class
/// 6), refused with 400 naming the field and what was lacking, nothing written; and
/// `admin_mode` and `sudo` go to administrators only, whoever asks.
async fn minting_never_reaches_past_the_minter(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let fine = |scopes: Value| json!({"name": "minted", "expires_at": in_days(10), "granular_scopes": scopes});
    let legacy =
        |scopes: Value| json!({"name": "minted", "expires_at": in_days(10), "scopes": scopes});
    let maker = json!({"access": "user", "permissions": ["create_personal_access_token"]});
    let holder = |scopes: Value| {
        let app = &app;
        async move {
            app.token(
                1,
                json!({"name": "maker", "expires_at": in_days(30), "granular_scopes": scopes}),
            )
            .await
            .1
        }
    };
    // Holds only the permission to mint.
    let bare = holder(json!([maker])).await;
    // Reads repositories wherever alice is a member.
    let reader =
        holder(json!([maker, {"access": "all_memberships", "permissions": ["read_repository"]}]))
            .await;
    // Reads issues of group 7 (and so of projects 42 and 43 while they are in it).
    let group = holder(json!([maker, {"access": "selected_memberships", "group_ids": [7], "permissions": ["read_issue"]}])).await;
    // root, an administrator, with `api` and `admin_mode` but not `sudo`.
    let admin = app
        .token(
            3,
            json!({"name": "admin", "expires_at": in_days(30), "scopes": ["api", "admin_mode"]}),
        )
        .await
        .1;
    let tokens_of = |user: u64| {
        let app = &app;
        async move {
            app.get(&format!("/v1/tokens?user_id={user}"))
                .await
                .body
                .as_array()
                .unwrap()
                .len()
        }
    };
    let before = (tokens_of(1).await, tokens_of(3).await);
    let refused: Vec<(&str, String, Value, &str, &str)> = vec![
        (
            "a group scope covers the projects below it",
            bare.clone(),
            fine(json!([{"access": "selected_memberships", "group_ids": [7],
                         "permissions": ["push_repository", "create_pipeline"]}])),
            "granular_scopes",
            "on group 7",
        ),
        (
            "a legacy scope reaches what a fine-grained one does not (internal projects)",
            reader.clone(),
            legacy(json!(["read_repository"])),
            "scopes",
            "`read_repository` on everything its user can reach",
        ),
        (
            "a project may leave the maker's group while the new token still names it",
            group.clone(),
            fine(
                json!([{"access": "selected_memberships", "project_ids": [42], "permissions": ["read_issue"]}]),
            ),
            "granular_scopes",
            "`read_issue` on project 42",
        ),
        (
            "a membership may end while the new token still names the project",
            reader.clone(),
            fine(
                json!([{"access": "selected_memberships", "project_ids": [42], "permissions": ["read_repository"]}]),
            ),
            "granular_scopes",
            "`read_repository` on project 42",
        ),
        (
            "sudo grants no permission, but is a scope to hold",
            admin.clone(),
            legacy(json!(["api", "sudo"])),
            "scopes",
            "`sudo`",
        ),
    ];
    // Every case is asked, and every one that goes wrong is named.
    let mut wrong = Vec::new();
    for (why, holder, body, field, says) in refused {
        let answer = mint(&app, &holder, body.clone()).await;
        let message = answer.body["message"].as_str().unwrap_or_default();
        if answer.status != 400 || !(message.contains(field) && message.contains(says)) {
            wrong.push(format!("{why}: {body}: {} {}", answer.status, answer.text));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        (tokens_of(1).await, tokens_of(3).await),
        before,
        "nothing was written"
    );

    // What stays within: the same group, and a legacy scope whose permissions are held.
    let same_group = mint(
        &app,
        &group,
        fine(json!([{"access": "selected_memberships", "group_ids": [7], "permissions": ["read_issue"]}])),
    )
    .await;
    assert_eq!(same_group.status, 201, "{}", same_group.text);
    let read_api = mint(&app, &admin, legacy(json!(["read_api"]))).await;
    assert_eq!(read_api.status, 201, "{}", read_api.text);

    // `admin_mode` and `sudo` go only to administrators, even from a manage key.
    for scope in ["admin_mode", "sudo"] {
        let answer = app
            .post("/v1/users/1/tokens", legacy(json!(["api", scope])))
            .await;
        assert_eq!(answer.status, 422, "{scope}: {}", answer.text);
        assert_eq!(answer.field(), "scopes[1]", "{scope}: {}", answer.text);
        let answer = app
            .post("/v1/users/3/tokens", legacy(json!(["api", scope])))
            .await;
        assert_eq!(answer.status, 201, "{scope} for root: {}", answer.text);
    }
    app.finish().await;
}

/// A genuine token whose permissions do not cover a route of the token API gets 403,
/// not 401 (it is alive) and not 404.
async fn a_token_without_the_routes_permission_is_forbidden(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (id, token) = app.alice_token(&["read_issue"]).await;
    for (method, path) in [
        (Method::GET, "/api/v4/user".to_owned()),
        (Method::GET, format!("/api/v4/personal_access_tokens/{id}")),
        (
            Method::DELETE,
            format!("/api/v4/personal_access_tokens/{id}"),
        ),
        (Method::DELETE, "/v1/tokens/self".to_owned()),
    ] {
        let answer = as_token(&app, method.clone(), &path, &token, None).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
    }
    // And the token is still alive: nothing was revoked.
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");

    // An administrator revokes it; a second revocation is GitLab's 400.
    let admin = admin_token(&app).await;
    let path = format!("/api/v4/personal_access_tokens/{id}");
    let first = as_token(&app, Method::DELETE, &path, &admin, None).await;
    assert_eq!(first.status, 204, "{}", first.text);
    let again = as_token(&app, Method::DELETE, &path, &admin, None).await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert!(again.text.contains("already revoked"), "{}", again.text);
    app.finish().await;
}
