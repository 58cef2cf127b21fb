//! Fine-grained permissions for CI/CD job tokens (DESIGN.md section 8): minting and
//! finishing jobs, project job token scopes and allowlists, their audit trail, and the
//! cross-project decisions.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, in_an_hour, spawn, spawn_on};

on_both_backends!(
    cross_project_decisions,
    jobs_are_minted_and_finished,
    bad_jobs_are_refused_and_nothing_is_written,
    scopes_and_allowlists_are_validated,
    scope_changes_are_audited_in_order,
    scopes_survive_a_restart,
    deleting_a_source_forgets_its_links,
);

/// Mints a job token; returns its plaintext.
async fn job(app: &TestApp, job_id: u64, project_id: u64, user_id: u64) -> String {
    let answer = app
        .post(
            "/v1/jobs",
            json!({"project_id": project_id, "user_id": user_id, "job_id": job_id,
                   "expires_at": in_an_hour()}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let token = answer.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("glcbt-"), "{token}");
    token
}

async fn scope(app: &TestApp, project_id: u64, body: Value) {
    let answer = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/projects/{project_id}/job-token-scope"),
            Some(body),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

async fn allow(app: &TestApp, target: u64, body: Value) {
    let answer = app
        .post(
            &format!("/v1/projects/{target}/job-token-scope/allowlist"),
            body,
        )
        .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{}",
        answer.text
    );
}

async fn unlist(app: &TestApp, target: u64, kind: &str, source: u64) {
    let answer = app
        .delete(&format!(
            "/v1/projects/{target}/job-token-scope/allowlist/{kind}/{source}"
        ))
        .await;
    assert_eq!(answer.status, 204, "{}", answer.text);
}

/// What the job token may do: `(permission, project, reason)` each.
async fn expect(app: &TestApp, token: &str, label: &str, cases: &[(&str, u64, &str)]) {
    for &(permission, project, reason) in cases {
        assert_eq!(
            app.reason(token, permission, project).await,
            reason,
            "{label}: {permission} on project {project}"
        );
    }
}

/// The seeded world: alice (1) is a developer in `acme` (7), so on `acme/app` (42) and
/// `acme/web/site` (43, under `acme/web`, 8). Her job runs in 43 and reaches for 42.
async fn cross_project_decisions(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let token = job(&app, 1001, 43, 1).await;

    expect(
        &app,
        &token,
        "same project: the user's role",
        &[
            ("read_package", 43, "granted"),
            ("create_package", 43, "granted"),
            // No job token policy names it: not reachable by job tokens, even at home.
            ("create_issue", 43, "permission_not_granted"),
        ],
    )
    .await;
    expect(
        &app,
        &token,
        "another project, not allowlisted",
        &[("read_package", 42, "job_token_scope_denied")],
    )
    .await;
    let on_group = app
        .post(
            "/v1/authorize",
            json!({"token": token, "permission": "read_issue", "boundary": {"type": "group", "id": 7}}),
        )
        .await;
    assert_eq!(
        on_group.body["reason"], "job_token_scope_denied",
        "job tokens reach projects only"
    );

    allow(
        &app,
        42,
        json!({"source_project_id": 43, "policies": ["read_packages"]}),
    )
    .await;
    expect(
        &app,
        &token,
        "allowlisted, fine-grained off: the allowlist alone decides",
        &[
            ("read_package", 42, "granted"),
            ("create_package", 42, "granted"),
        ],
    )
    .await;

    scope(&app, 42, json!({"fine_grained_enabled": true})).await;
    expect(
        &app,
        &token,
        "fine-grained on: the link's policies bound it",
        &[
            ("read_package", 42, "granted"),
            ("create_package", 42, "job_token_scope_denied"),
            ("read_pipeline", 42, "job_token_scope_denied"),
        ],
    )
    .await;

    let unlisted = job(&app, 1005, 44, 1).await;
    expect(
        &app,
        &unlisted,
        "a job of a project not listed",
        &[("read_package", 42, "job_token_scope_denied")],
    )
    .await;

    allow(
        &app,
        42,
        json!({"source_project_id": 43, "policies": ["admin_packages"]}),
    )
    .await;
    expect(
        &app,
        &token,
        "admin implies read",
        &[
            ("read_package", 42, "granted"),
            ("create_package", 42, "granted"),
        ],
    )
    .await;

    allow(&app, 42, json!({"source_project_id": 43, "policies": []})).await;
    expect(
        &app,
        &token,
        "no policy, no access",
        &[("read_package", 42, "job_token_scope_denied")],
    )
    .await;

    allow(
        &app,
        42,
        json!({"source_project_id": 43, "default_permissions": true}),
    )
    .await;
    expect(
        &app,
        &token,
        "default permissions: the user's role",
        &[
            ("create_package", 42, "granted"),
            ("delete_package", 42, "insufficient_role"),
        ],
    )
    .await;

    unlist(&app, 42, "projects", 43).await;
    allow(
        &app,
        42,
        json!({"source_group_id": 7, "policies": ["read_packages"]}),
    )
    .await;
    expect(
        &app,
        &token,
        "an allowlisted ancestor group",
        &[
            ("read_package", 42, "granted"),
            ("create_package", 42, "job_token_scope_denied"),
        ],
    )
    .await;

    allow(
        &app,
        42,
        json!({"source_group_id": 8, "policies": ["admin_packages"]}),
    )
    .await;
    expect(
        &app,
        &token,
        "the nearest group link wins",
        &[("create_package", 42, "granted")],
    )
    .await;

    allow(
        &app,
        42,
        json!({"source_project_id": 43, "policies": ["read_packages"]}),
    )
    .await;
    expect(
        &app,
        &token,
        "a project link overrides group links",
        &[
            ("read_package", 42, "granted"),
            ("create_package", 42, "job_token_scope_denied"),
        ],
    )
    .await;

    scope(&app, 42, json!({"inbound_enabled": false})).await;
    expect(
        &app,
        &token,
        "inbound off: any project's job, within the user's role",
        &[
            ("create_package", 42, "granted"),
            ("delete_package", 42, "insufficient_role"),
        ],
    )
    .await;
    scope(&app, 42, json!({"inbound_enabled": true})).await;

    // The user's own role bounds everything: bob is a guest on acme/app.
    let bobs = job(&app, 1002, 42, 2).await;
    expect(
        &app,
        &bobs,
        "the user's role bounds the job",
        &[("read_package", 42, "insufficient_role")],
    )
    .await;

    // Carol is blocked: her jobs can do nothing.
    let carols = job(&app, 1003, 43, 4).await;
    expect(
        &app,
        &carols,
        "a blocked user",
        &[("read_package", 43, "user_blocked")],
    )
    .await;

    // A job token is not a personal access token, and the other way round.
    let (_, pat) = app.alice_token(&["read_package"]).await;
    let as_job = pat.replacen("glpat-", "glcbt-", 1);
    expect(
        &app,
        &as_job,
        "a PAT with a job prefix",
        &[("read_package", 43, "token_invalid")],
    )
    .await;

    // The job ends: its token is dead at once.
    assert_eq!(app.delete("/v1/jobs/1001").await.status, 204);
    expect(
        &app,
        &token,
        "a finished job",
        &[("read_package", 43, "token_revoked")],
    )
    .await;

    // A job whose expiry has passed: written as time would leave it.
    let secret = "J".repeat(30);
    let hash = patrol::secret::hash_secret(crate::support::TEST_ARGON2, &secret).unwrap();
    let now = patrol::clock::now();
    let mut tx = app.service.store().begin().await.unwrap();
    tx.insert_token(&patrol::tokens::NewTokenRecord {
        user_id: 1,
        kind: patrol::tokens::TokenKind::Job,
        name: "job 1004".to_owned(),
        description: String::new(),
        lookup_id: "EXPIREDJOB00".to_owned(),
        secret_hash: hash,
        scopes: Vec::new(),
        granular_scopes: Vec::new(),
        allowed_ips: Vec::new(),
        created_at: now - 7200,
        expires_at: Some(patrol::clock::date_of(now)),
        job: Some(patrol::tokens::JobRef {
            project_id: 43,
            job_id: 1004,
            expires_unix: now - 60,
        }),
        family_id: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let expired = patrol::secret::assemble("glcbt-", "EXPIREDJOB00", &secret);
    expect(
        &app,
        &expired,
        "an expired job",
        &[("read_package", 43, "token_expired")],
    )
    .await;
    app.finish().await;
}

async fn jobs_are_minted_and_finished(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let expires_at = in_an_hour();
    let answer = app
        .post(
            "/v1/jobs",
            json!({"project_id": 43, "user_id": 1, "job_id": 77, "expires_at": expires_at}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let body = &answer.body;
    assert_eq!(
        (&body["job_id"], &body["project_id"], &body["user_id"]),
        (&json!(77), &json!(43), &json!(1))
    );
    assert_eq!(body["expires_at"], expires_at);
    let id = body["id"].as_u64().unwrap();

    // The token is listed with the others, without its plaintext.
    let listed = app.get("/v1/tokens?kind=job").await;
    assert_eq!(listed.headers["x-total"], "1");
    assert_eq!(listed.body[0]["id"], id);
    assert_eq!(listed.body[0]["active"], true);
    assert!(listed.body[0].get("token").is_none());

    let again = app
        .post(
            "/v1/jobs",
            json!({"project_id": 43, "user_id": 1, "job_id": 77, "expires_at": in_an_hour()}),
        )
        .await;
    assert_eq!(again.status, 409, "one token per job: {}", again.text);

    assert_eq!(app.delete("/v1/jobs/77").await.status, 204);
    assert_eq!(
        app.delete("/v1/jobs/77").await.status,
        409,
        "already finished"
    );
    assert_eq!(app.delete("/v1/jobs/78").await.status, 404);
    assert_eq!(
        app.get(&format!("/v1/tokens/{id}")).await.body["revoked"],
        true
    );
    app.finish().await;
}

async fn bad_jobs_are_refused_and_nothing_is_written(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let now = patrol::clock::now();
    let good = json!({"project_id": 43, "user_id": 1, "job_id": 5, "expires_at": in_an_hour()});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (without("project_id"), 400, "project_id"),
        (without("expires_at"), 400, "expires_at"),
        (with("job_id", json!("five")), 400, "job_id"),
        (with("extra", json!(1)), 400, "extra"),
        (with("project_id", json!(999)), 422, "project_id"),
        (with("user_id", json!(999)), 422, "user_id"),
        (with("job_id", json!(u64::MAX)), 422, "job_id"),
        (with("expires_at", json!("tomorrow")), 422, "expires_at"),
        (with("expires_at", json!("2026-11-23")), 422, "expires_at"),
        (
            with("expires_at", json!(patrol::clock::rfc3339(now - 1))),
            422,
            "expires_at",
        ),
        (
            with(
                "expires_at",
                json!(patrol::clock::rfc3339(now + 366 * 86_400)),
            ),
            422,
            "expires_at",
        ),
    ];
    for (body, status, field) in cases {
        let answer = app.post("/v1/jobs", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}");
    }
    assert_eq!(app.get("/v1/tokens?kind=job").await.headers["x-total"], "0");
    assert_eq!(app.post("/v1/jobs", good).await.status, 201);
    app.finish().await;
}

async fn scopes_and_allowlists_are_validated(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let defaults = app.get("/v1/projects/42/job-token-scope").await;
    assert_eq!(defaults.status, 200);
    assert_eq!(
        defaults.body,
        json!({"project_id": 42, "inbound_enabled": true, "fine_grained_enabled": false})
    );
    assert_eq!(
        app.get("/v1/projects/999/job-token-scope").await.status,
        404
    );
    assert_eq!(
        app.get("/v1/projects/999/job-token-scope/allowlist")
            .await
            .status,
        404
    );

    let patch = |body: Value| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PATCH,
                "/v1/projects/42/job-token-scope",
                Some(body),
            )
            .await
        }
    };
    let bad = patch(json!({"fine_grained": true})).await;
    assert_eq!((bad.status.as_u16(), bad.field()), (400, "fine_grained"));
    let bad = patch(json!({"inbound_enabled": "yes"})).await;
    assert_eq!((bad.status.as_u16(), bad.field()), (400, "inbound_enabled"));
    let changed = patch(json!({"fine_grained_enabled": true})).await;
    assert_eq!(changed.body["fine_grained_enabled"], true);
    assert_eq!(
        changed.body["inbound_enabled"], true,
        "what is absent stays"
    );
    let missing = app
        .call(
            reqwest::Method::PATCH,
            "/v1/projects/999/job-token-scope",
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.status, 404);

    let path = "/v1/projects/42/job-token-scope/allowlist";
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"policies": ["read_packages"]}),
            422,
            "source_project_id",
        ),
        (
            json!({"source_project_id": 43, "source_group_id": 7}),
            422,
            "source_group_id",
        ),
        (json!({"source_project_id": 999}), 422, "source_project_id"),
        (json!({"source_group_id": 999}), 422, "source_group_id"),
        (json!({"source_project_id": 42}), 422, "source_project_id"),
        (
            json!({"source_project_id": 43, "policies": ["read_packages", "read_issues"]}),
            422,
            "policies[1]",
        ),
        (
            json!({"source_project_id": 43, "policies": ["read_packages"], "default_permissions": true}),
            422,
            "policies",
        ),
        (
            json!({"source_project_id": 43, "policies": "read_packages"}),
            400,
            "policies",
        ),
        (
            json!({"source_project_id": 43, "scopes": []}),
            400,
            "scopes",
        ),
    ];
    for (body, status, field) in cases {
        let answer = app.post(path, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}");
    }
    assert_eq!(app.get(path).await.body, json!([]), "nothing written");
    let missing = app
        .post(
            "/v1/projects/999/job-token-scope/allowlist",
            json!({"source_project_id": 43}),
        )
        .await;
    assert_eq!(missing.status, 404);

    let added = app
        .post(
            path,
            json!({"source_project_id": 43,
                           "policies": ["read_packages", "admin_jobs", "read_packages"]}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["source_project_id"], 43);
    assert_eq!(added.body["source_path"], "acme/web/site");
    assert_eq!(
        added.body["policies"],
        json!(["admin_jobs", "read_packages"]),
        "deduplicated, in catalog order"
    );
    let updated = app
        .post(
            path,
            json!({"source_project_id": 43, "policies": ["read_jobs"]}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["created_at"], added.body["created_at"]);
    let group = app
        .post(
            path,
            json!({"source_group_id": 8, "default_permissions": true}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.text);

    let listed = app.get(path).await.body;
    let summary: Vec<(Value, Value, Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source_path"].clone(),
                e["policies"].clone(),
                e["default_permissions"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("acme/web/site"), json!(["read_jobs"]), json!(false)),
            (json!("acme/web"), json!([]), json!(true)),
        ]
    );
    assert_eq!(app.delete(&format!("{path}/groups/8")).await.status, 204);
    assert_eq!(app.delete(&format!("{path}/groups/8")).await.status, 404);
    assert_eq!(app.delete(&format!("{path}/projects/44")).await.status, 404);
    assert_eq!(app.get(path).await.body.as_array().unwrap().len(), 1);
    app.finish().await;
}

async fn scope_changes_are_audited_in_order(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let manage = app
        .post("/v1/service-keys", json!({"name": "ci", "role": "manage"}))
        .await;
    let manage_id = manage.body["id"].as_u64().unwrap();
    let manage_key = manage.body["key"].as_str().unwrap().to_owned();

    scope(&app, 42, json!({"fine_grained_enabled": true})).await;
    allow(
        &app,
        42,
        json!({"source_project_id": 43, "policies": ["read_packages"]}),
    )
    .await;
    let by_manager = app
        .call_as(
            Some(&manage_key),
            reqwest::Method::POST,
            "/v1/projects/42/job-token-scope/allowlist",
            Some(json!({"source_project_id": 43, "policies": ["admin_packages"]})),
        )
        .await;
    assert_eq!(by_manager.status, 200, "{}", by_manager.text);
    unlist(&app, 42, "projects", 43).await;
    allow(&app, 44, json!({"source_group_id": 7})).await;

    let events = app
        .get("/v1/audit-events?target_type=project&target_id=42")
        .await;
    assert_eq!(events.status, 200, "{}", events.text);
    assert_eq!(events.headers["x-total"], "4");
    let trail: Vec<(Value, Value)> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].clone(), e["details"].clone()))
        .collect();
    assert_eq!(
        trail,
        [
            (
                json!("job_token_scope_updated"),
                json!({"before": {"inbound_enabled": true, "fine_grained_enabled": false},
                       "after": {"inbound_enabled": true, "fine_grained_enabled": true}}),
            ),
            (
                json!("job_token_allowlist_added"),
                json!({"source_type": "project", "source_id": 43,
                       "policies": ["read_packages"], "default_permissions": false}),
            ),
            (
                json!("job_token_policies_updated"),
                json!({"source_type": "project", "source_id": 43,
                       "before": {"policies": ["read_packages"], "default_permissions": false},
                       "after": {"policies": ["admin_packages"], "default_permissions": false}}),
            ),
            (
                json!("job_token_allowlist_removed"),
                json!({"source_type": "project", "source_id": 43}),
            ),
        ]
    );
    let actors: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    let manager = format!("service_key:{manage_id}");
    assert_eq!(
        actors,
        ["admin_key", "admin_key", manager.as_str(), "admin_key"]
    );
    for event in events.body.as_array().unwrap() {
        assert_eq!(event["target_type"], "project");
        assert_eq!(event["target_id"], 42);
        assert_eq!(event["source_ip"], "127.0.0.1");
        assert!(event["created_at"].as_str().unwrap().ends_with('Z'));
    }

    let all = app
        .get("/v1/audit-events?target_type=project&per_page=2&page=2")
        .await;
    assert_eq!(all.headers["x-total"], "5");
    assert_eq!(all.headers["x-next-page"], "3");
    let link = all.headers["link"].to_str().unwrap();
    assert!(
        link.contains("target_type=project&page=3&per_page=2"),
        "{link}"
    );
    assert_eq!(all.body[0]["action"], "job_token_policies_updated");
    let added = app
        .get("/v1/audit-events?action=job_token_allowlist_added")
        .await;
    assert_eq!(added.headers["x-total"], "2");
    assert_eq!(app.get("/v1/audit-events?target_id=x").await.status, 400);
    assert_eq!(
        app.get("/v1/audit-events?per_page=0").await.field(),
        "per_page"
    );
    app.finish().await;
}

async fn scopes_survive_a_restart(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    scope(&app, 42, json!({"fine_grained_enabled": true})).await;
    allow(
        &app,
        42,
        json!({"source_group_id": 7, "policies": ["admin_packages"]}),
    )
    .await;
    allow(
        &app,
        42,
        json!({"source_project_id": 43, "policies": ["read_packages"]}),
    )
    .await;
    scope(&app, 44, json!({"inbound_enabled": false})).await;
    let token = job(&app, 9, 43, 1).await;
    let before = [
        ("read_package", 42, "granted"),
        ("create_package", 42, "job_token_scope_denied"),
    ];
    expect(&app, &token, "before the restart", &before).await;

    let app = spawn_on(app.stop().await).await;
    expect(&app, &token, "after the restart", &before).await;
    assert_eq!(
        app.get("/v1/projects/44/job-token-scope").await.body["inbound_enabled"],
        false
    );
    assert_eq!(
        app.get("/v1/projects/42/job-token-scope/allowlist")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.finish().await;
}

async fn deleting_a_source_forgets_its_links(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    allow(&app, 42, json!({"source_project_id": 45})).await;
    allow(&app, 42, json!({"source_group_id": 9})).await;
    allow(&app, 45, json!({"source_project_id": 42})).await;
    assert_eq!(app.delete("/v1/directory/projects/45").await.status, 204);
    let listed = app
        .get("/v1/projects/42/job-token-scope/allowlist")
        .await
        .body;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["source_group_id"], 9);

    // A project of the same id pushed again starts without the old links.
    let answer = app
        .put(
            "/v1/directory/projects/45",
            json!({"namespace": {"kind": "user", "id": 1}, "path": "notes", "name": "Notes",
                   "visibility": "private"}),
        )
        .await;
    assert!(answer.status.is_success(), "{}", answer.text);
    assert_eq!(
        app.get("/v1/projects/45/job-token-scope/allowlist")
            .await
            .body,
        json!([])
    );
    let token = job(&app, 3, 45, 1).await;
    expect(
        &app,
        &token,
        "a re-created project",
        &[("read_package", 42, "job_token_scope_denied")],
    )
    .await;
    app.finish().await;
}
