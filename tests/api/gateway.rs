//! The gateway check (DESIGN.md section 5): header conventions of nginx, Traefik and
//! Envoy, and the 200/401/403/404 mapping. `tests/api/nginx.rs` puts a real nginx in
//! front.

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{ADMIN_KEY, Answer, Backend, TestApp, in_days, spawn};

on_both_backends!(the_gateway_maps_decisions_to_statuses);

/// Calls the check endpoint (or `path` under it, for Envoy) with these headers.
async fn check(app: &TestApp, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("X-Patrol-Key", ADMIN_KEY)];
    all.extend_from_slice(headers);
    app.call_with(method, &format!("/v1/gateway/check{path}"), &all, None)
        .await
}

fn nginx<'a>(method: &'a str, uri: &'a str, token: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("X-Original-Method", method),
        ("X-Original-URI", uri),
        ("PRIVATE-TOKEN", token),
    ]
}

async fn the_gateway_maps_decisions_to_statuses(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (alice_id, alice) = app.alice_token(&["read_issue", "read_package"]).await;
    let (_, bob) = app
        .token(
            2,
            json!({"name": "api", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let (revoked_id, revoked) = app.alice_token(&["read_issue"]).await;
    assert_eq!(
        app.delete(&format!("/v1/tokens/{revoked_id}")).await.status,
        204
    );
    let job = app
        .post(
            "/v1/jobs",
            json!({"project_id": 43, "user_id": 1, "job_id": 1,
                   "expires_at": patrol::clock::rfc3339(patrol::clock::now() + 600)}),
        )
        .await;
    let job = job.body["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {alice}");
    let alice_id = alice_id.to_string();

    let issues = "/api/v4/projects/42/issues";
    let in_query = format!("{issues}?private_token={alice}");
    // (label, method of the check, path after the check prefix, headers, status, reason)
    type Case<'a> = (
        &'a str,
        Method,
        &'a str,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "nginx",
            Method::GET,
            "",
            nginx("GET", issues, &alice),
            200,
            "granted",
        ),
        (
            "trailing slash",
            Method::GET,
            "",
            nginx("GET", "/api/v4/projects/42/issues/", &alice),
            200,
            "granted",
        ),
        (
            "Bearer, a URL-encoded full path, a query string",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                (
                    "X-Original-URI",
                    "/api/v4/projects/acme%2Fapp/issues?state=opened",
                ),
                ("Authorization", bearer.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "Traefik",
            Method::GET,
            "",
            vec![
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", issues),
                ("PRIVATE-TOKEN", alice.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "Envoy: the original path after the prefix",
            Method::GET,
            issues,
            vec![("PRIVATE-TOKEN", alice.as_str())],
            200,
            "granted",
        ),
        (
            "private_token in the query",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", in_query.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "JOB-TOKEN, the job's own project",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/projects/43/packages"),
                ("JOB-TOKEN", job.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "JOB-TOKEN, another project",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/projects/42/packages"),
                ("JOB-TOKEN", job.as_str()),
            ],
            403,
            "job_token_scope_denied",
        ),
        (
            "not granted",
            Method::GET,
            "",
            nginx("POST", issues, &alice),
            403,
            "permission_not_granted",
        ),
        (
            "no token",
            Method::GET,
            "",
            vec![("X-Original-Method", "GET"), ("X-Original-URI", issues)],
            401,
            "token_invalid",
        ),
        (
            "garbage",
            Method::GET,
            "",
            nginx("GET", issues, "glpat-nope"),
            401,
            "token_invalid",
        ),
        (
            "revoked",
            Method::GET,
            "",
            nginx("GET", issues, &revoked),
            401,
            "token_revoked",
        ),
        (
            "no such project",
            Method::GET,
            "",
            nginx("GET", "/api/v4/projects/999/issues", &alice),
            404,
            "boundary_not_found",
        ),
        (
            "a private project the user cannot see: 404, not 403",
            Method::GET,
            "",
            nginx("GET", "/api/v4/projects/43/merge_requests", &bob),
            404,
            "insufficient_role",
        ),
        (
            "a public project the user may see but not change",
            Method::GET,
            "",
            nginx("POST", "/api/v4/projects/44/issues", &bob),
            403,
            "insufficient_role",
        ),
        (
            "an unknown route",
            Method::GET,
            "",
            nginx("GET", "/api/v4/nothing", &alice),
            403,
            "unknown_route",
        ),
        (
            "a public endpoint needs no token",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/templates/licenses"),
            ],
            200,
            "skipped_route",
        ),
        (
            "a removed endpoint",
            Method::GET,
            "",
            nginx("POST", "/api/v4/session", &alice),
            404,
            "unknown_route",
        ),
    ];
    for (label, method, path, headers, status, reason) in cases {
        let answer = check(&app, method, path, &headers).await;
        assert_eq!(answer.status, status, "{label}: {}", answer.text);
        assert_eq!(answer.body["reason"], reason, "{label}");
        assert_eq!(answer.headers["x-patrol-reason"], reason, "{label}");
        assert_eq!(answer.body["allowed"], status == 200, "{label}");
        match status {
            200 if reason == "granted" => {
                assert!(answer.headers.contains_key("x-patrol-user-id"), "{label}");
                assert!(answer.headers.contains_key("x-patrol-token-id"), "{label}");
            }
            401 => {
                let challenge = answer.headers["www-authenticate"].to_str().unwrap();
                assert!(
                    challenge.starts_with("Bearer realm=\"patrol\""),
                    "{label}: {challenge}"
                );
            }
            _ => assert!(!answer.headers.contains_key("x-patrol-user-id"), "{label}"),
        }
    }

    let allowed = check(&app, Method::GET, "", &nginx("GET", issues, &alice)).await;
    assert_eq!(allowed.headers["x-patrol-user-id"], "1");
    assert_eq!(allowed.headers["x-patrol-token-id"], alice_id.as_str());
    let denied = check(&app, Method::GET, "", &nginx("POST", issues, &alice)).await;
    assert_eq!(denied.headers["x-accepted-permissions"], "create_issue");
    let hidden = check(
        &app,
        Method::GET,
        "",
        &nginx("GET", "/api/v4/projects/43/issues", &bob),
    )
    .await;
    assert!(
        !hidden.headers.contains_key("x-accepted-permissions"),
        "a 404 names nothing"
    );
    assert_eq!(hidden.body["message"], "not found");

    // No original request, or a malformed one: 400 naming what is missing.
    for (headers, field) in [
        (vec![("PRIVATE-TOKEN", alice.as_str())], "x-original-uri"),
        (
            vec![("X-Original-Method", "G T"), ("X-Original-URI", issues)],
            "method",
        ),
        (
            vec![("X-Original-URI", "api/v4/projects/42/issues")],
            "x-original-uri",
        ),
    ] {
        let answer = check(&app, Method::GET, "", &headers).await;
        assert_eq!(answer.status, 400, "{headers:?}: {}", answer.text);
        assert_eq!(answer.field(), field);
    }
    app.finish().await;
}
