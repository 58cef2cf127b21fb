//! Tokens (DESIGN.md section 4): create with every validation, list, show, revoke.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, in_days, spawn};

on_both_backends!(
    legacy_and_fine_grained_tokens_are_created_and_shown_once,
    bad_requests_name_their_field_and_write_nothing,
    instance_settings_govern_creation,
    tokens_are_listed_filtered_and_paged,
    revocation_takes_effect_at_once,
    templates_prefill_creation,
    the_inventory_filters_by_access_permission_and_dates,
);

async fn the_inventory_filters_by_access_permission_and_dates(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (api, _) = app
        .token(
            1,
            json!({"name": "api", "expires_at": in_days(10), "scopes": ["api"]}),
        )
        .await;
    let (pipelines, _) = app
        .token(
            1,
            json!({"name": "pipelines", "expires_at": in_days(20), "scopes": ["read_api"]}),
        )
        .await;
    let (updater, _) = app
        .token(1, json!({"name": "updater", "expires_at": in_days(30), "granular_scopes": [
            {"access": "selected_memberships", "project_ids": [42], "permissions": ["update_issue"]}]}))
        .await;
    let (reader, _) = app.alice_token(&["read_repository"]).await;
    let ids = |answer: &crate::support::Answer| -> Vec<u64> {
        answer
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect()
    };
    let cases: Vec<(String, Vec<u64>)> = vec![
        // `api` grants it, and `update_issue` implies it; `read_api` grants reading too.
        (
            "permission=read_issue".to_owned(),
            vec![updater, pipelines, api],
        ),
        ("permission=update_issue".to_owned(), vec![updater, api]),
        ("access=selected_memberships".to_owned(), vec![updater]),
        (
            "access=all_memberships&permission=read_repository".to_owned(),
            vec![reader],
        ),
        (format!("expires_before={}", in_days(15)), vec![api]),
        (
            format!(
                "expires_after={}&expires_before={}",
                in_days(15),
                in_days(25)
            ),
            vec![pipelines],
        ),
        (format!("last_used_after={}", in_days(-30)), vec![]),
    ];
    for (query, expected) in cases {
        let answer = app.get(&format!("/v1/tokens?{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        assert_eq!(ids(&answer), expected, "{query}");
        assert_eq!(
            answer.headers["x-total"],
            expected.len().to_string().as_str(),
            "{query}"
        );
    }
    let paged = app.get("/v1/tokens?permission=read_issue&per_page=1").await;
    let link = paged.headers["link"].to_str().unwrap();
    assert!(
        link.contains("permission=read_issue&page=2&per_page=1"),
        "{link}"
    );
    for (query, field) in [
        ("permission=raed_issue", "permission"),
        ("access=everything", "query"),
        ("expires_before=soon", "expires_before"),
        ("last_used_after=2026-13-01", "last_used_after"),
    ] {
        let answer = app.get(&format!("/v1/tokens?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert_eq!(answer.field(), field, "{query}");
    }
    app.finish().await;
}

async fn templates_prefill_creation(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let templates = app
        .call_as(None, reqwest::Method::GET, "/v1/catalog/templates", None)
        .await;
    let triage = templates
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "issue_triage")
        .unwrap()
        .clone();

    let made = app
        .post(
            "/v1/users/1/tokens",
            json!({"template": "issue_triage", "expires_at": in_days(30)}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.body["name"], "issue_triage");
    assert_eq!(made.body["description"], triage["description"]);
    assert_eq!(
        made.body["granular_scopes"],
        json!([{"access": "all_memberships", "project_ids": [], "group_ids": [],
                "permissions": triage["permissions"]}])
    );
    let token = made.body["token"].as_str().unwrap();
    assert_eq!(app.reason(token, "update_issue", 42).await, "granted");

    // Field by field: a name, the projects, fewer permissions.
    let made = app
        .post(
            "/v1/users/1/tokens",
            json!({"template": "read_only_repository", "name": "clone app", "expires_at": in_days(30),
                   "project_ids": [42], "permissions": ["read_repository"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.body["name"], "clone app");
    assert_eq!(
        made.body["granular_scopes"],
        json!([{"access": "selected_memberships", "project_ids": [42], "group_ids": [],
                "permissions": ["read_repository"]}])
    );

    let before = count(&app).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"template": "nope", "expires_at": in_days(3)}),
            "template",
        ),
        (
            json!({"template": "issue_triage", "expires_at": in_days(3), "scopes": ["api"]}),
            "template",
        ),
        (
            json!({"expires_at": in_days(3), "name": "x", "access": "all_memberships",
                "scopes": ["api"]}),
            "access",
        ),
        (
            json!({"template": "issue_triage", "expires_at": in_days(3), "permissions": ["raed_issue"]}),
            "granular_scopes[0].permissions[0]",
        ),
    ];
    for (body, field) in cases {
        let answer = app.post("/v1/users/1/tokens", body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}");
    }
    // A selected-memberships template still needs its projects or groups.
    let answer = app
        .post(
            "/v1/users/1/tokens",
            json!({"template": "read_only_repository", "expires_at": in_days(3)}),
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert!(
        answer.field().starts_with("granular_scopes[0]"),
        "{}",
        answer.text
    );
    assert_eq!(count(&app).await, before, "nothing written");
    app.finish().await;
}

fn fine(permissions: &[&str]) -> Value {
    json!({"name": "ci", "expires_at": in_days(30),
           "granular_scopes": [{"access": "all_memberships", "permissions": permissions}]})
}

async fn count(app: &TestApp) -> u64 {
    let answer = app.get("/v1/tokens").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.headers["x-total"].to_str().unwrap().parse().unwrap()
}

async fn legacy_and_fine_grained_tokens_are_created_and_shown_once(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let created = app
        .post(
            "/v1/users/1/tokens",
            json!({"name": "deploy", "description": "reads issues", "expires_at": in_days(30),
                   "allowed_ips": ["10.0.0.0/8", "192.0.2.7"],
                   "granular_scopes": [{"access": "selected_memberships", "project_ids": [42], "group_ids": [8],
                                        "permissions": ["read_issue", "create_issue"]}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("glpat-") && token.len() == "glpat-".len() + 48);
    let id = created.body["id"].as_u64().unwrap();
    for (field, value) in [
        ("name", json!("deploy")),
        ("description", json!("reads issues")),
        ("user_id", json!(1)),
        ("active", json!(true)),
        ("revoked", json!(false)),
        ("expired", json!(false)),
        ("granular", json!(true)),
        ("scopes", json!([])),
        ("allowed_ips", json!(["10.0.0.0/8", "192.0.2.7/32"])),
        ("expires_at", json!(in_days(30))),
        ("last_used_at", Value::Null),
        ("last_used_ips", json!([])),
    ] {
        assert_eq!(created.body[field], value, "{field}");
    }
    assert_eq!(
        created.body["granular_scopes"][0]["project_ids"],
        json!([42])
    );
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));

    let shown = app.get(&format!("/v1/tokens/{id}")).await;
    assert_eq!(shown.status, 200);
    assert!(
        shown.body.get("token").is_none(),
        "the plaintext is shown once"
    );
    assert!(!shown.text.contains(&token[6..]));
    let mut without_token = created.body.clone();
    without_token.as_object_mut().unwrap().remove("token");
    assert_eq!(shown.body, without_token);

    let legacy = app
        .post(
            "/v1/users/2/tokens",
            json!({"name": "old", "expires_at": in_days(10), "scopes": ["read_api", "read_api"]}),
        )
        .await;
    assert_eq!(legacy.status, 201, "{}", legacy.text);
    assert_eq!(legacy.body["granular"], false);
    assert_eq!(legacy.body["kind"], "legacy");
    assert_eq!(legacy.body["scopes"], json!(["read_api"]));
    let legacy_token = legacy.body["token"].as_str().unwrap();
    assert_eq!(app.reason(legacy_token, "read_issue", 42).await, "granted");
    assert_eq!(
        app.reason(legacy_token, "create_issue", 42).await,
        "permission_not_granted"
    );

    assert_eq!(app.get("/v1/tokens/999").await.status, 404);
    app.finish().await;
}

async fn bad_requests_name_their_field_and_write_nothing(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let scope = |extra: Value| {
        let mut s = json!({"access": "all_memberships", "permissions": ["read_issue"]});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        json!({"name": "t", "expires_at": in_days(30), "granular_scopes": [s]})
    };
    let with = |field: &str, value: Value| {
        let mut body = fine(&["read_issue"]);
        body[field] = value;
        body
    };
    let unprocessable: Vec<(&str, u64, Value, &str)> = vec![
        (
            "missing name",
            1,
            json!({"expires_at": in_days(30), "scopes": ["api"]}),
            "name",
        ),
        ("blank name", 1, with("name", json!("  ")), "name"),
        ("long name", 1, with("name", json!("x".repeat(256))), "name"),
        (
            "no scopes at all",
            1,
            json!({"name": "t", "expires_at": in_days(30)}),
            "scopes",
        ),
        (
            "both kinds",
            1,
            json!({"name": "t", "expires_at": in_days(30), "scopes": ["api"],
            "granular_scopes": [{"access": "user", "permissions": ["read_user"]}]}),
            "granular_scopes",
        ),
        (
            "empty legacy scopes",
            1,
            json!({"name": "t", "expires_at": in_days(30), "scopes": []}),
            "scopes",
        ),
        (
            "unknown legacy scope",
            1,
            json!({"name": "t", "expires_at": in_days(30), "scopes": ["api", "root"]}),
            "scopes[1]",
        ),
        (
            "empty granular scopes",
            1,
            with("granular_scopes", json!([])),
            "granular_scopes",
        ),
        (
            "unknown permission",
            1,
            fine(&["read_issue", "raed_issue"]),
            "granular_scopes[0].permissions[1]",
        ),
        (
            "no permissions",
            1,
            fine(&[]),
            "granular_scopes[0].permissions",
        ),
        (
            "permission of another boundary",
            1,
            json!({"name": "t", "expires_at": in_days(30), "granular_scopes": [{"access": "user", "permissions": ["read_issue"]}]}),
            "granular_scopes[0].permissions[0]",
        ),
        (
            "ids without selected_memberships",
            1,
            scope(json!({"project_ids": [42]})),
            "granular_scopes[0].project_ids",
        ),
        (
            "group ids without selected_memberships",
            1,
            scope(json!({"group_ids": [7]})),
            "granular_scopes[0].group_ids",
        ),
        (
            "selected_memberships without ids",
            1,
            scope(json!({"access": "selected_memberships"})),
            "granular_scopes[0].project_ids",
        ),
        (
            "unknown project",
            1,
            scope(json!({"access": "selected_memberships", "project_ids": [99]})),
            "granular_scopes[0].project_ids[0]",
        ),
        (
            "not a member of the project",
            1,
            scope(json!({"access": "selected_memberships", "project_ids": [44]})),
            "granular_scopes[0].project_ids[0]",
        ),
        (
            "not a member of the group",
            2,
            scope(json!({"access": "selected_memberships", "group_ids": [7]})),
            "granular_scopes[0].group_ids[0]",
        ),
        (
            "instance access for a non-admin",
            1,
            json!({"name": "t", "expires_at": in_days(30), "granular_scopes": [{"access": "instance", "permissions": ["admin_mode"]}]}),
            "granular_scopes[0].access",
        ),
        (
            "expiry in the past",
            1,
            with("expires_at", json!("2020-01-01")),
            "expires_at",
        ),
        (
            "expiry today",
            1,
            with("expires_at", json!(in_days(0))),
            "expires_at",
        ),
        (
            "expiry beyond the maximum",
            1,
            with("expires_at", json!(in_days(366))),
            "expires_at",
        ),
        (
            "expiry not a date",
            1,
            with("expires_at", json!("next week")),
            "expires_at",
        ),
        (
            "expiry missing",
            1,
            json!({"name": "t", "scopes": ["api"]}),
            "expires_at",
        ),
        (
            "bad allowed ip",
            1,
            with("allowed_ips", json!(["10.0.0.0/8", "10.0.0.300"])),
            "allowed_ips[1]",
        ),
    ];
    for (label, user, body, field) in unprocessable {
        let answer = app.post(&format!("/v1/users/{user}/tokens"), body).await;
        assert_eq!(answer.status, 422, "{label}: {}", answer.text);
        assert_eq!(answer.field(), field, "{label}: {}", answer.text);
        assert!(
            answer.body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{label}: {}",
            answer.text
        );
    }
    let malformed: Vec<(&str, Value, &str)> = vec![
        ("unknown field", with("scope", json!(["api"])), "scope"),
        (
            "unknown access",
            scope(json!({"access": "everything"})),
            "granular_scopes[0].access",
        ),
        ("name not a string", with("name", json!(7)), "name"),
        (
            "unknown scope field",
            scope(json!({"projects": [1]})),
            "granular_scopes[0].projects",
        ),
    ];
    for (label, body, field) in malformed {
        let answer = app.post("/v1/users/1/tokens", body).await;
        assert_eq!(answer.status, 400, "{label}: {}", answer.text);
        assert_eq!(answer.field(), field, "{label}: {}", answer.text);
    }
    let answer = app.post("/v1/users/99/tokens", fine(&["read_issue"])).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(count(&app).await, 0, "nothing was written");
    app.finish().await;
}

async fn instance_settings_govern_creation(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let settings = app.get("/v1/settings").await;
    assert_eq!(settings.status, 200);
    assert_eq!(
        settings.body,
        json!({"max_lifetime_days": 365, "require_expiry": true, "allow_legacy_token_creation": true,
               "personal_token_prefix": "glpat-", "job_token_prefix": "glcbt-", "argon2": "m=256,t=1,p=1"})
    );
    let put = app
        .put(
            "/v1/settings",
            json!({"max_lifetime_days": 30, "require_expiry": false, "allow_legacy_token_creation": false}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["max_lifetime_days"], 30);

    let legacy = app
        .post(
            "/v1/users/1/tokens",
            json!({"name": "t", "scopes": ["api"]}),
        )
        .await;
    assert_eq!(legacy.status, 422);
    assert_eq!(legacy.field(), "scopes");
    let mut too_long = fine(&["read_issue"]);
    too_long["expires_at"] = json!(in_days(31));
    let answer = app.post("/v1/users/1/tokens", too_long).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.field(), "expires_at");
    assert_eq!(
        app.post("/v1/users/1/tokens", fine(&["read_issue"]))
            .await
            .status,
        201
    );
    let mut forever = fine(&["read_issue"]);
    forever.as_object_mut().unwrap().remove("expires_at");
    let answer = app.post("/v1/users/1/tokens", forever).await;
    assert_eq!(
        answer.status, 201,
        "expiry is optional now: {}",
        answer.text
    );
    assert_eq!(answer.body["expires_at"], Value::Null);

    for (body, status, field) in [
        (
            json!({"max_lifetime_days": 0, "require_expiry": true, "allow_legacy_token_creation": true}),
            422,
            "max_lifetime_days",
        ),
        (
            json!({"max_lifetime_days": 3651, "require_expiry": true, "allow_legacy_token_creation": true}),
            422,
            "max_lifetime_days",
        ),
        (
            json!({"max_lifetime_days": 10, "require_expiry": true}),
            400,
            "allow_legacy_token_creation",
        ),
        (
            json!({"max_lifetime_days": 10, "require_expiry": true, "allow_legacy_token_creation": true,
                "personal_token_prefix": "x-"}),
            400,
            "personal_token_prefix",
        ),
    ] {
        let answer = app.put("/v1/settings", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}");
    }
    // Settings are stored: a restart keeps them.
    let app = crate::support::spawn_on(app.stop().await).await;
    assert_eq!(app.get("/v1/settings").await.body["max_lifetime_days"], 30);
    app.finish().await;
}

async fn tokens_are_listed_filtered_and_paged(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    for i in 0..5 {
        app.token(
            1,
            json!({"name": format!("Alpha {i}"), "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    }
    let (revoked, _) = app.alice_token(&["read_issue"]).await;
    app.delete(&format!("/v1/tokens/{revoked}")).await;
    app.token(
        2,
        json!({"name": "bob_100%", "expires_at": in_days(30),
                        "granular_scopes": [{"access": "user", "permissions": ["read_user"]}]}),
    )
    .await;

    let page = app.get("/v1/tokens?user_id=1&per_page=2&page=2").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let h = |name: &str| page.headers[name].to_str().unwrap().to_owned();
    assert_eq!(h("x-total"), "6");
    assert_eq!(h("x-total-pages"), "3");
    assert_eq!(h("x-page"), "2");
    assert_eq!(h("x-per-page"), "2");
    assert_eq!(h("x-next-page"), "3");
    assert_eq!(h("x-prev-page"), "1");
    assert!(
        h("link").contains("</v1/tokens?user_id=1&page=3&per_page=2>; rel=\"next\""),
        "{}",
        h("link")
    );
    assert!(h("link").contains("rel=\"first\"") && h("link").contains("rel=\"last\""));
    let names: Vec<&str> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // Newest first: the revoked token, Alpha 4 | Alpha 3, Alpha 2 | ...
    assert_eq!(names, ["Alpha 3", "Alpha 2"], "newest first");

    for (query, expected) in [
        ("", 7),
        ("?user_id=2", 1),
        ("?kind=legacy", 5),
        ("?kind=fine_grained", 2),
        ("?state=inactive", 1),
        ("?state=active", 6),
        ("?state=active&user_id=1&kind=fine_grained", 0),
        ("?search=alpha", 5),
        ("?search=ALPHA%202", 1),
        ("?search=100%25", 1),
        ("?search=_", 1),
        ("?search=%25", 1),
    ] {
        let answer = app.get(&format!("/v1/tokens{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        assert_eq!(
            answer.headers["x-total"].to_str().unwrap(),
            expected.to_string(),
            "{query}"
        );
        assert_eq!(
            answer.body.as_array().unwrap().len(),
            expected.min(20),
            "{query}"
        );
    }
    for query in [
        "?per_page=0",
        "?per_page=101",
        "?page=0",
        "?state=dead",
        "?kind=root",
        "?user_id=x",
        "?color=red",
    ] {
        let answer = app.get(&format!("/v1/tokens{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
    }
    let last = app.get("/v1/tokens?per_page=5&page=2").await;
    assert_eq!(last.headers["x-next-page"], "");
    assert_eq!(last.body.as_array().unwrap().len(), 2);
    app.finish().await;
}

async fn revocation_takes_effect_at_once(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (id, token) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    assert_eq!(app.delete(&format!("/v1/tokens/{id}")).await.status, 204);
    assert_eq!(app.reason(&token, "read_issue", 42).await, "token_revoked");
    let shown = app.get(&format!("/v1/tokens/{id}")).await.body;
    assert_eq!(
        (shown["revoked"].clone(), shown["active"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(app.delete(&format!("/v1/tokens/{id}")).await.status, 409);
    assert_eq!(app.delete("/v1/tokens/999").await.status, 404);

    // Revoked before it was ever used on this replica: a fresh start still denies it.
    let (id2, token2) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.delete(&format!("/v1/tokens/{id2}")).await.status, 204);
    let app = crate::support::spawn_on(app.stop().await).await;
    assert_eq!(app.reason(&token2, "read_issue", 42).await, "token_revoked");
    assert_eq!(app.reason(&token, "read_issue", 42).await, "token_revoked");
    app.finish().await;
}
