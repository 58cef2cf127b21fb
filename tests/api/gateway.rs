//! The gateway check (DESIGN.md section 5): header conventions of nginx, Traefik and
//! Envoy, and the 200/401/403/404 mapping. `tests/api/proxies.rs` puts a real nginx, and
//! a real Envoy over gRPC, in front.

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{ADMIN_KEY, Answer, Backend, TestApp, in_days, spawn};

on_both_backends!(
    the_gateway_maps_decisions_to_statuses,
    the_gateway_reads_the_request_as_gitlab_does
);

/// Calls the check endpoint (or `path` under it, for Envoy) with these headers.
async fn check(app: &TestApp, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("X-Patrol-Key", ADMIN_KEY)];
    all.extend_from_slice(headers);
    app.call_with(method, &format!("/v1/gateway/check{path}"), &all, None)
        .await
}

/// (label, method of the check, path after the check prefix, headers, status, reason)
type Case<'a> = (
    &'a str,
    Method,
    &'a str,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

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
            "boundary_not_found",
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
            "x-original-method",
        ),
        (
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "api/v4/projects/42/issues"),
            ],
            "x-original-uri",
        ),
        (vec![("X-Original-URI", issues)], "x-original-method"),
    ] {
        let answer = check(&app, Method::GET, "", &headers).await;
        assert_eq!(answer.status, 400, "{headers:?}: {}", answer.text);
        assert_eq!(answer.field(), field);
    }
    app.finish().await;
}

/// Each class of the gateway integrity issue, by the example that let a request through
/// (or told the client what exists), over HTTP.
async fn the_gateway_reads_the_request_as_gitlab_does(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, wide) = app
        .token(
            1,
            json!({"name": "wide", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let (_, narrow) = app
        .token(
            1,
            json!({"name": "narrow", "expires_at": in_days(30), "granular_scopes": [
                {"access": "selected_memberships", "project_ids": [42], "permissions": ["read_issue"]}]}),
        )
        .await;
    let (_, bob) = app
        .token(
            2,
            json!({"name": "api", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let narrow_query = format!("/api/v4/projects/42/issues?private_token={narrow}");
    // The wide token may read merge requests; the narrow one may not.
    let narrow_mrs = format!("/api/v4/projects/42/merge_requests?private_token={narrow}");
    let wide_query = format!("/api/v4/projects/42?private_token={wide}");
    let cases: Vec<Case> = vec![
        // 1. The query never moves the path: this is DELETE of project 42, not the
        // skipped `DELETE /api/v4/runners`, and it needs a token.
        (
            "a URL in the query",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "DELETE"),
                (
                    "X-Original-URI",
                    "/api/v4/projects/42?x=://h/api/v4/runners",
                ),
            ],
            401,
            "token_invalid",
        ),
        (
            "a URL in the query, through Envoy",
            Method::DELETE,
            "/api/v4/projects/42?x=://h/api/v4/runners",
            vec![],
            401,
            "token_invalid",
        ),
        (
            "an absolute URL is read whole",
            Method::GET,
            "",
            vec![
                ("X-Forwarded-Method", "GET"),
                (
                    "X-Forwarded-Uri",
                    wide_query
                        .replacen("/api", "https://gitlab.example/api", 1)
                        .leak(),
                ),
            ],
            200,
            "granted",
        ),
        // 2. An unreadable X-Original-URI is a 400, never a reason to read Traefik's
        // headers, which nginx passes on from the client.
        (
            "two conventions that disagree",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "DELETE"),
                ("X-Original-URI", "/api/v4/projects/42"),
                ("X-Forwarded-Method", "DELETE"),
                ("X-Forwarded-Uri", "/api/v4/runners"),
            ],
            400,
            "",
        ),
        // 3. GitLab takes the `private_token` parameter first: a narrow token there and
        // a wide one in the header would be decided on the wide one and run as the
        // narrow one's user.
        (
            "a narrow parameter and a wide header",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", narrow_mrs.as_str()),
                ("PRIVATE-TOKEN", wide.as_str()),
            ],
            401,
            "token_invalid",
        ),
        (
            "the parameter alone",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", narrow_query.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "a comma-joined header",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/projects/42"),
                ("PRIVATE-TOKEN", format!("{narrow}, {wide}").leak()),
            ],
            401,
            "token_invalid",
        ),
        // 5. Routing as GitLab routes.
        (
            "HEAD is decided as GET",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "HEAD"),
                ("X-Original-URI", "/api/v4/projects/42/issues"),
                ("PRIVATE-TOKEN", narrow.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "paths in any case",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/projects/ACME%2FApp/issues"),
                ("PRIVATE-TOKEN", narrow.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "a case-varied group is that group, not the user's own namespace",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/namespaces/ACME"),
                ("PRIVATE-TOKEN", bob.as_str()),
            ],
            404,
            "boundary_not_found",
        ),
        (
            "the user's own namespace",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/namespaces/Bob"),
                ("PRIVATE-TOKEN", bob.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "an encoded literal is that literal",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/projects/42/issu%65s"),
                ("PRIVATE-TOKEN", narrow.as_str()),
            ],
            200,
            "granted",
        ),
        (
            "methods are case-sensitive",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "delete"),
                ("X-Original-URI", "/api/v4/projects/42"),
                ("PRIVATE-TOKEN", wide.as_str()),
            ],
            400,
            "",
        ),
        (
            "a POST that may be a DELETE in disguise needs what a DELETE needs",
            Method::GET,
            "",
            vec![
                ("X-Original-Method", "POST"),
                ("X-Original-URI", "/api/v4/projects/42/issues"),
                ("Content-Type", "application/json"),
                ("X-HTTP-Method-Override", "PUT"),
                ("PRIVATE-TOKEN", narrow.as_str()),
            ],
            403,
            "unknown_route",
        ),
    ];
    // Every case is asked, and every one that goes wrong is named.
    let mut wrong = Vec::new();
    for (label, method, path, headers, status, reason) in cases {
        let answer = check(&app, method, path, &headers).await;
        if answer.status != status || (!reason.is_empty() && answer.body["reason"] != reason) {
            wrong.push(format!(
                "{label}: wanted {status} {reason}, got {} {}",
                answer.status, answer.text
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // 2. An unreadable X-Original-URI (a raw byte above ASCII) is a 400, never a reason
    // to read Traefik's headers, which nginx passes on from the client.
    let unreadable = app
        .client
        .get(format!("{}{}", app.address, "/v1/gateway/check"))
        .header("X-Patrol-Key", ADMIN_KEY)
        .header("X-Original-Method", "DELETE")
        .header(
            "X-Original-URI",
            reqwest::header::HeaderValue::from_bytes(b"/api/v4/projects/42\xff").unwrap(),
        )
        .header("X-Forwarded-Method", "DELETE")
        .header("X-Forwarded-Uri", "/api/v4/runners")
        .send()
        .await
        .unwrap();
    crate::support::note_status("GET", "/v1/gateway/check", unreadable.status());
    assert_eq!(unreadable.status(), 400);

    // 4. No existence oracle: through the gateway, a private group bob may not see and
    // one that does not exist get the same answer, byte for byte.
    let see = |uri: &'static str| {
        let bob = bob.clone();
        let app = &app;
        async move {
            let headers = [
                ("X-Original-Method", "GET"),
                ("X-Original-URI", uri),
                ("PRIVATE-TOKEN", bob.as_str()),
            ];
            let answer = check(app, Method::GET, "", &headers).await;
            let mut kept: Vec<(String, String)> = answer
                .headers
                .iter()
                .filter(|(n, _)| !matches!(n.as_str(), "date" | "x-request-id"))
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            kept.sort();
            (answer.status, kept, answer.text)
        }
    };
    let hidden = see("/api/v4/groups/7/issues").await;
    let missing = see("/api/v4/groups/97/issues").await;
    assert_eq!(hidden.0, 404, "{}", hidden.2);
    assert_eq!(hidden, missing, "a hidden group answers as a missing one");
    // `/v1/authorize`, asked by services, keeps the precise reason.
    let precise = app
        .post(
            "/v1/authorize",
            json!({"token": bob, "permission": "read_issue", "boundary": {"type": "group", "id": 7}}),
        )
        .await;
    assert_eq!(
        precise.body["reason"], "insufficient_role",
        "{}",
        precise.text
    );
    app.finish().await;
}
