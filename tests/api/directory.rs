//! The directory mirror API (DESIGN.md section 2): every endpoint, every validation, and
//! changes reaching decisions at once.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, in_days, spawn, spawn_on};

on_both_backends!(
    refused_changes_name_their_field_and_change_nothing,
    malformed_bodies_are_400s_naming_the_field,
    changes_reach_decisions_at_once,
    deletes_remove_and_unknown_ones_are_404s,
    a_batch_is_all_or_nothing,
    the_directory_survives_a_restart
);

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, String, String) {
    let answer = app.put(path, body).await;
    (
        answer.status.as_u16(),
        answer.field().to_owned(),
        answer.body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn refused_changes_name_their_field_and_change_nothing(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let group = |parent: Option<u64>, path: &str, visibility: &str| json!({"parent_id": parent, "path": path, "name": "G", "visibility": visibility});
    let project = |kind: &str, id: u64, visibility: &str| json!({"namespace": {"kind": kind, "id": id}, "path": "p", "name": "P", "visibility": visibility});
    let cases: Vec<(&str, String, Value, &str, &str)> = vec![
        (
            "unknown parent",
            "/v1/directory/groups/20".into(),
            group(Some(99), "x", "private"),
            "parent_id",
            "group 99",
        ),
        (
            "more visible than parent",
            "/v1/directory/groups/20".into(),
            group(Some(7), "x", "public"),
            "visibility",
            "more visible",
        ),
        (
            "own ancestor",
            "/v1/directory/groups/7".into(),
            group(Some(8), "acme", "private"),
            "parent_id",
            "own ancestor",
        ),
        (
            "own parent",
            "/v1/directory/groups/7".into(),
            group(Some(7), "acme", "private"),
            "parent_id",
            "own ancestor",
        ),
        (
            "parent less visible than children",
            "/v1/directory/groups/9".into(),
            group(None, "oss", "private"),
            "visibility",
            "more visible",
        ),
        (
            "path taken",
            "/v1/directory/groups/20".into(),
            group(None, "acme", "private"),
            "path",
            "taken",
        ),
        (
            "path taken by a user",
            "/v1/directory/groups/20".into(),
            group(None, "alice", "private"),
            "path",
            "taken",
        ),
        (
            "bad path",
            "/v1/directory/groups/20".into(),
            group(None, "a/b", "private"),
            "path",
            "letters",
        ),
        (
            "empty name",
            "/v1/directory/groups/20".into(),
            json!({"path": "x", "name": " ", "visibility": "private"}),
            "name",
            "",
        ),
        (
            "subgroup plan",
            "/v1/directory/groups/20".into(),
            json!({"parent_id": 7, "path": "x", "name": "X", "visibility": "private", "plan": "ultimate"}),
            "plan",
            "top-level",
        ),
        (
            "project in unknown group",
            "/v1/directory/projects/50".into(),
            project("group", 99, "private"),
            "parent_id",
            "group 99",
        ),
        (
            "project of unknown user",
            "/v1/directory/projects/50".into(),
            project("user", 99, "private"),
            "user_id",
            "user 99",
        ),
        (
            "project more visible",
            "/v1/directory/projects/50".into(),
            project("group", 7, "internal"),
            "visibility",
            "more visible",
        ),
        (
            "unknown feature",
            "/v1/directory/projects/50".into(),
            json!({"namespace": {"kind": "group", "id": 7}, "path": "p", "name": "P", "visibility": "private", "features": {"isues": "enabled"}}),
            "features.isues",
            "feature",
        ),
        (
            "username taken",
            "/v1/directory/users/20".into(),
            json!({"username": "acme"}),
            "path",
            "taken",
        ),
        (
            "bad username",
            "/v1/directory/users/20".into(),
            json!({"username": "-x"}),
            "username",
            "",
        ),
        (
            "member of unknown group",
            "/v1/directory/groups/99/members/1".into(),
            json!({"access_level": 30}),
            "parent_id",
            "group 99",
        ),
        (
            "unknown member",
            "/v1/directory/projects/42/members/99".into(),
            json!({"access_level": 30}),
            "user_id",
            "user 99",
        ),
    ];
    for (label, path, body, field, words) in cases {
        let (status, got_field, error) = put(&app, &path, body).await;
        assert_eq!(status, 422, "{label}: {error}");
        assert_eq!(got_field, field, "{label}: {error}");
        assert!(error.contains(words), "{label}: {error}");
    }
    // Nothing of the refused changes was written: a restart rebuilds the seeded world.
    let db = app.stop().await;
    let app = spawn_on(db).await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    let (status, _, _) = put(
        &app,
        "/v1/directory/groups/20",
        group(None, "newco", "private"),
    )
    .await;
    assert_eq!(status, 204, "the group id was never taken");
    app.finish().await;
}

async fn malformed_bodies_are_400s_naming_the_field(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/v1/directory/users/20", json!({"name": "x"}), "name"),
        ("/v1/directory/users/20", json!({}), "username"),
        (
            "/v1/directory/users/20",
            json!({"username": "x", "state": "gone"}),
            "state",
        ),
        (
            "/v1/directory/groups/20",
            json!({"path": "x", "name": "X", "visibility": "secret"}),
            "visibility",
        ),
        (
            "/v1/directory/groups/20",
            json!({"path": "x", "name": "X", "visibility": "private", "plan": "gold"}),
            "plan",
        ),
        (
            "/v1/directory/projects/50",
            json!({"namespace": {"kind": "team", "id": 1}, "path": "p", "name": "P", "visibility": "private"}),
            "namespace.kind",
        ),
        (
            "/v1/directory/projects/50",
            json!({"namespace": {"kind": "group", "id": 7}, "path": "p", "name": "P", "visibility": "private", "features": {"issues": "on"}}),
            "features.issues",
        ),
        (
            "/v1/directory/projects/42/members/1",
            json!({"access_level": 25}),
            "access_level",
        ),
        (
            "/v1/directory/projects/42/members/1",
            json!({"access_level": "developer"}),
            "access_level",
        ),
    ];
    for (path, body, field) in cases {
        let answer = app.put(path, body.clone()).await;
        assert_eq!(answer.status, 400, "{path} {body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{path} {body}: {}", answer.text);
    }
    let answer = app
        .client
        .put(format!("{}/v1/directory/users/20", app.address))
        .header("X-Patrol-Key", crate::support::ADMIN_KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = app
        .put("/v1/directory/users/x", json!({"username": "x"}))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let answer = app
        .put(
            "/v1/directory/users/18446744073709551615",
            json!({"username": "x"}),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    app.finish().await;
}

async fn changes_reach_decisions_at_once(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");

    // Membership removed: outside the token's boundary.
    let answer = app.delete("/v1/directory/groups/7/members/1").await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(
        app.reason(&token, "read_issue", 42).await,
        "outside_token_boundary"
    );

    // Back as a project member.
    let answer = app
        .put(
            "/v1/directory/projects/42/members/1",
            json!({"access_level": 20}),
        )
        .await;
    assert_eq!(answer.status, 204);
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");

    // Blocked.
    let answer = app
        .put(
            "/v1/directory/users/1",
            json!({"username": "alice", "state": "blocked"}),
        )
        .await;
    assert_eq!(answer.status, 204);
    assert_eq!(app.reason(&token, "read_issue", 42).await, "user_blocked");
    app.put("/v1/directory/users/1", json!({"username": "alice"}))
        .await;

    // Issues made private and the project moved: paths follow.
    let answer = app
        .put(
            "/v1/directory/projects/42",
            json!({"namespace": {"kind": "group", "id": 8}, "path": "app2", "name": "App", "visibility": "private",
                   "features": {"issues": "disabled"}}),
        )
        .await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(
        app.reason(&token, "read_issue", 42).await,
        "feature_disabled"
    );
    let by_path = app
        .post(
            "/v1/authorize",
            json!({"token": token, "permission": "read_issue", "boundary": {"type": "project", "path": "acme/web/app2"}}),
        )
        .await;
    assert_eq!(
        by_path.body["reason"], "feature_disabled",
        "{}",
        by_path.text
    );
    app.finish().await;
}

async fn deletes_remove_and_unknown_ones_are_404s(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    for path in [
        "/v1/directory/users/99",
        "/v1/directory/groups/99",
        "/v1/directory/projects/99",
        "/v1/directory/groups/7/members/2",
        "/v1/directory/projects/42/members/1",
    ] {
        assert_eq!(app.delete(path).await.status, 404, "{path}");
    }
    let answer = app.delete("/v1/directory/groups/7").await;
    assert_eq!(
        answer.status, 422,
        "a group with projects stays: {}",
        answer.text
    );
    let answer = app.delete("/v1/directory/users/1").await;
    assert_eq!(
        answer.status, 422,
        "a user with personal projects stays: {}",
        answer.text
    );

    // Bob, a guest of acme/app only, leaves it.
    let bob = app.token(2, json!({"name": "bob", "scopes": ["read_api"], "expires_at": crate::support::in_days(3)})).await.1;
    assert_eq!(app.reason(&bob, "read_issue", 42).await, "granted");
    assert_eq!(
        app.delete("/v1/directory/projects/42/members/2")
            .await
            .status,
        204
    );
    assert_ne!(app.reason(&bob, "read_issue", 42).await, "granted");
    assert_eq!(
        app.delete("/v1/directory/projects/42/members/2")
            .await
            .status,
        404
    );

    assert_eq!(app.delete("/v1/directory/projects/42").await.status, 204);
    assert_eq!(
        app.reason(&token, "read_issue", 42).await,
        "boundary_not_found"
    );
    assert_eq!(app.delete("/v1/directory/projects/43").await.status, 204);
    assert_eq!(app.delete("/v1/directory/groups/8").await.status, 204);
    assert_eq!(app.delete("/v1/directory/users/2").await.status, 204);
    // A restart agrees.
    let app = spawn_on(app.stop().await).await;
    assert_eq!(app.delete("/v1/directory/groups/8").await.status, 404);
    assert_eq!(app.delete("/v1/directory/users/2").await.status, 404);
    app.finish().await;
}

async fn a_batch_is_all_or_nothing(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let answer = app
        .post(
            "/v1/directory/batch",
            json!({
                "users": [{"id": 10, "username": "dave"}],
                "groups": [{"id": 20, "path": "newco", "name": "NewCo", "visibility": "private"}],
                "projects": [
                    {"id": 60, "namespace": {"kind": "group", "id": 20}, "path": "a", "name": "A", "visibility": "private"},
                    {"id": 61, "namespace": {"kind": "group", "id": 20}, "path": "b", "name": "B", "visibility": "public"}
                ],
                "memberships": [{"group_id": 20, "user_id": 10, "access_level": 40}]
            }),
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.field(), "projects[1].visibility");
    // Nothing of it exists: dave has no user, newco no group.
    let answer = app
        .post(
            "/v1/users/10/tokens",
            json!({"name": "t", "expires_at": in_days(5), "scopes": ["api"]}),
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let answer = app
        .put(
            "/v1/directory/groups/21",
            json!({"parent_id": 20, "path": "x", "name": "X", "visibility": "private"}),
        )
        .await;
    assert_eq!(answer.status, 422);

    for (batch, field) in [
        (
            json!({"memberships": [{"user_id": 1, "access_level": 10}]}),
            "memberships[0].group_id",
        ),
        (
            json!({"memberships": [{"group_id": 7, "user_id": 99, "access_level": 10}]}),
            "memberships[0].user_id",
        ),
        (
            json!({"users": [{"id": 1, "username": "a b"}]}),
            "users[0].username",
        ),
        (
            json!({"groups": [{"id": 30, "parent_id": 31, "path": "x", "name": "X", "visibility": "private"}]}),
            "groups[0].parent_id",
        ),
    ] {
        let answer = app.post("/v1/directory/batch", batch.clone()).await;
        assert_eq!(answer.status, 422, "{batch}: {}", answer.text);
        assert_eq!(answer.field(), field, "{batch}");
    }
    let answer = app.post("/v1/directory/batch", json!({"teams": []})).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.field(), "teams");

    let answer = app
        .post(
            "/v1/directory/batch",
            json!({
                "users": [{"id": 10, "username": "dave"}],
                "groups": [{"id": 20, "path": "newco", "name": "NewCo", "visibility": "internal"}],
                "projects": [{"id": 60, "namespace": {"kind": "group", "id": 20}, "path": "a", "name": "A", "visibility": "internal"}],
                "memberships": [{"group_id": 20, "user_id": 10, "access_level": 40}]
            }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["applied"], 4);
    let (_, token) = app
        .token(10, json!({"name": "d", "expires_at": in_days(5),
                          "granular_scopes": [{"access": "selected_memberships", "group_ids": [20], "permissions": ["create_issue"]}]}))
        .await;
    assert_eq!(app.reason(&token, "create_issue", 60).await, "granted");
    app.finish().await;
}

async fn the_directory_survives_a_restart(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue", "read_repository"]).await;
    let before = [
        app.reason(&token, "read_issue", 42).await,
        app.reason(&token, "read_issue", 43).await,
        app.reason(&token, "read_repository", 44).await,
        app.reason(&token, "read_issue", 45).await,
    ];
    let app = spawn_on(app.stop().await).await;
    let after = [
        app.reason(&token, "read_issue", 42).await,
        app.reason(&token, "read_issue", 43).await,
        app.reason(&token, "read_repository", 44).await,
        app.reason(&token, "read_issue", 45).await,
    ];
    assert_eq!(before, after);
    assert_eq!(after[0], "granted");
    app.finish().await;
}
