//! Decisions over HTTP (DESIGN.md section 5): the decision is data, a malformed request
//! is a 400 naming the field, a store that cannot answer is a 503.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{ADMIN_KEY, Backend, in_days, spawn};

on_both_backends!(
    decisions_carry_their_reason,
    expiry_plan_and_role_reasons,
    malformed_requests_name_their_field,
    batches_answer_in_order_up_to_a_thousand,
    a_verified_token_is_answered_from_memory,
    a_store_that_cannot_answer_is_a_503_never_an_allow,
    metrics_count_decisions_by_reason,
    guessing_costs_no_store_reads_and_never_keeps_the_right_secret_out,
    an_argon2id_hash_is_throttled_then_rewritten_as_a_digest,
);

async fn decisions_carry_their_reason(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (id, token) = app.alice_token(&["read_issue", "read_repository"]).await;
    let granted = app.decide(&token, "read_issue", 42).await;
    assert_eq!(
        granted,
        json!({"allowed": true, "reason": "granted", "required_permissions": ["read_issue"],
               "token_id": id, "user_id": 1, "message": "granted"})
    );
    let wrong_secret = patrol::secret::assemble("glpat-", &token[6..18], &"A".repeat(30));
    let mut bad_checksum = token.clone();
    bad_checksum.pop();
    bad_checksum.push(if token.ends_with('0') { '1' } else { '0' });
    let unknown = patrol::secret::assemble("glpat-", "AAAAAAAAAAAA", &"A".repeat(30));
    for (label, presented) in [
        ("garbage", "hello".to_owned()),
        ("bad checksum", bad_checksum),
        ("unknown lookup id", unknown),
        ("wrong secret", wrong_secret),
        ("too long", "x".repeat(10_000)),
    ] {
        let d = app.decide(&presented, "read_issue", 42).await;
        assert_eq!(d["reason"], "token_invalid", "{label}");
        assert_eq!(d["allowed"], false);
        assert_eq!(
            d["token_id"],
            Value::Null,
            "{label}: never says which token"
        );
    }
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"permission": "create_issue", "boundary": {"type": "project", "id": 42}}),
            "permission_not_granted",
        ),
        (
            json!({"permission": "raed_issue", "boundary": {"type": "project", "id": 42}}),
            "unknown_permission",
        ),
        (
            json!({"permission": "read_issue", "boundary": {"type": "project", "id": 999}}),
            "boundary_not_found",
        ),
        (
            json!({"permission": "read_issue", "boundary": {"type": "project", "path": "acme/nope"}}),
            "boundary_not_found",
        ),
        (
            json!({"permission": "read_issue", "boundary": {"type": "project", "path": "acme/app"}}),
            "granted",
        ),
        (
            json!({"permission": "read_issue", "boundary": {"type": "group", "path": "acme"}}),
            "granted",
        ),
        (
            json!({"permission": "read_repository", "boundary": {"type": "group", "id": 7}}),
            "boundary_mismatch",
        ),
        (
            json!({"route": {"method": "GET", "path": "/api/v4/projects/42/issues"}}),
            "granted",
        ),
        (
            json!({"route": {"method": "get", "path": "/api/v4/projects/acme%2Fapp/issues?state=opened"}}),
            "granted",
        ),
        (
            json!({"route": {"method": "POST", "path": "/api/v4/projects/42/issues"}}),
            "permission_not_granted",
        ),
        (
            json!({"route": {"method": "GET", "path": "/api/v4/nothing/here"}}),
            "unknown_route",
        ),
        (
            json!({"permission": "read_issue", "boundary": {"type": "project", "id": 42}, "client_ip": "203.0.113.7"}),
            "granted",
        ),
    ];
    for (mut body, reason) in cases {
        body["token"] = json!(token);
        let answer = app.post("/v1/authorize", body.clone()).await;
        assert_eq!(answer.status, 200, "{body}: {}", answer.text);
        assert_eq!(answer.body["reason"], reason, "{body}: {}", answer.text);
        assert_eq!(answer.body["allowed"], reason == "granted");
        assert!(answer.body["message"].is_string());
    }

    // allowed_ips.
    let (_, fenced) = app
        .token(1, json!({"name": "fenced", "expires_at": in_days(5), "allowed_ips": ["10.0.0.0/8"],
                         "granular_scopes": [{"access": "all_memberships", "permissions": ["read_issue"]}]}))
        .await;
    for (ip, reason) in [
        (Some("10.1.2.3"), "granted"),
        (Some("192.0.2.1"), "ip_not_allowed"),
        (None, "ip_not_allowed"),
    ] {
        let mut body = json!({"token": fenced, "permission": "read_issue", "boundary": {"type": "project", "id": 42}});
        if let Some(ip) = ip {
            body["client_ip"] = json!(ip);
        }
        assert_eq!(
            app.post("/v1/authorize", body).await.body["reason"],
            reason,
            "{ip:?}"
        );
    }
    // Confidential issues: a guest sees only their own.
    let (_, bobs) = app
        .token(2, json!({"name": "b", "expires_at": in_days(5),
                         "granular_scopes": [{"access": "all_memberships", "permissions": ["read_issue"]}]}))
        .await;
    for (resource, reason) in [
        (
            json!({"confidential": true, "author_id": 1, "assignee_ids": [3]}),
            "confidential_resource",
        ),
        (
            json!({"confidential": true, "author_id": 1, "assignee_ids": [2]}),
            "granted",
        ),
        (json!({"confidential": true, "author_id": 2}), "granted"),
        (json!({"confidential": false}), "granted"),
    ] {
        let body = json!({"token": bobs, "permission": "read_issue", "boundary": {"type": "project", "id": 42},
                          "resource": resource});
        assert_eq!(
            app.post("/v1/authorize", body).await.body["reason"],
            reason,
            "{resource}"
        );
    }
    // A blocked user's token.
    let (_, carols) = app
        .token(
            4,
            json!({"name": "c", "expires_at": in_days(5), "scopes": ["api"]}),
        )
        .await;
    assert_eq!(app.reason(&carols, "read_issue", 42).await, "user_blocked");
    app.finish().await;
}

async fn expiry_plan_and_role_reasons(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;

    // A token whose date has passed: written to the store as time would leave it, since
    // the API refuses expiry dates in the past. It expired at 00:00 UTC of its date.
    let (_, expired) = written_token(&app, "EXPIREDTOKEN", Some(in_days(0))).await;
    assert_eq!(
        app.reason(&expired, "read_issue", 42).await,
        "token_expired"
    );

    // Epics need premium; acme is on the free plan, oss on premium (public, so the token
    // reads its epics as any visitor could).
    let (_, alice) = app
        .token(
            1,
            json!({"name": "epics", "expires_at": in_days(30), "granular_scopes": [
                {"access": "selected_memberships", "group_ids": [7], "permissions": ["read_epic"]}]}),
        )
        .await;
    for (group, reason) in [(7, "plan_required"), (9, "granted")] {
        let answer = app
            .post(
                "/v1/authorize",
                json!({"token": alice, "permission": "read_epic",
                       "boundary": {"type": "group", "id": group}}),
            )
            .await;
        assert_eq!(
            answer.body["reason"], reason,
            "group {group}: {}",
            answer.text
        );
    }

    // Bob is a guest on acme/app: his legacy `api` token cannot open merge requests.
    let (_, bob) = app
        .token(
            2,
            json!({"name": "api", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    assert_eq!(app.reason(&bob, "read_issue", 42).await, "granted");
    assert_eq!(
        app.reason(&bob, "create_merge_request", 42).await,
        "insufficient_role"
    );
    app.finish().await;
}

async fn malformed_requests_name_their_field(backend: Backend) {
    let app = spawn(backend).await;
    let t = "glpat-x";
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"permission": "read_issue", "boundary": {"type": "instance"}}),
            "token",
        ),
        (
            json!({"token": t, "boundary": {"type": "instance"}}),
            "permission",
        ),
        (
            json!({"token": t, "permission": "read_issue", "route": {"method": "GET", "path": "/x"}}),
            "route",
        ),
        (json!({"token": t, "permission": "read_issue"}), "boundary"),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "project"}}),
            "boundary.id",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "project", "id": 1, "path": "a/b"}}),
            "boundary.id",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "user", "id": 1}}),
            "boundary.id",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "namespace", "id": 1}}),
            "boundary.type",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "project", "id": -1}}),
            "boundary.id",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "instance"}, "client_ip": "local"}),
            "client_ip",
        ),
        (
            json!({"token": t, "route": {"method": "G ET", "path": "/x"}}),
            "route.method",
        ),
        (
            json!({"token": t, "route": {"method": "GET", "path": "x"}}),
            "route.path",
        ),
        (
            json!({"token": t, "route": {"method": "GET"}}),
            "route.path",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "instance"}, "resource": {"confidential": "yes"}}),
            "resource.confidential",
        ),
        (
            json!({"token": t, "permission": "read_issue", "boundary": {"type": "instance"}, "extra": 1}),
            "extra",
        ),
        (
            json!({"token": 7, "permission": "read_issue", "boundary": {"type": "instance"}}),
            "token",
        ),
    ];
    for (body, field) in cases {
        let answer = app.post("/v1/authorize", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}: {}", answer.text);
    }
    let raw = app
        .client
        .post(format!("{}/v1/authorize", app.address))
        .header("X-Patrol-Key", ADMIN_KEY)
        .body("[")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    app.finish().await;
}

async fn batches_answer_in_order_up_to_a_thousand(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    let check = |permission: &str, project: u64| json!({"token": token, "permission": permission, "boundary": {"type": "project", "id": project}});
    let answer = app
        .post(
            "/v1/authorize/batch",
            json!({"checks": [check("read_issue", 42), check("create_issue", 42), check("read_issue", 999),
                              {"token": "nope", "permission": "read_issue", "boundary": {"type": "project", "id": 42}}]}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let reasons: Vec<&str> = answer.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "granted",
            "permission_not_granted",
            "boundary_not_found",
            "token_invalid"
        ]
    );

    let full: Vec<Value> = (0..1000)
        .map(|i| check("read_issue", if i % 2 == 0 { 42 } else { 999 }))
        .collect();
    let answer = app
        .post("/v1/authorize/batch", json!({"checks": full}))
        .await;
    assert_eq!(answer.status, 200);
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| r["allowed"] == (i % 2 == 0))
    );

    let too_many: Vec<Value> = (0..1001).map(|_| check("read_issue", 42)).collect();
    let answer = app
        .post("/v1/authorize/batch", json!({"checks": too_many}))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.field(), "checks");
    let answer = app
        .post("/v1/authorize/batch", json!({"checks": [check("read_issue", 42), {"token": token, "permission": "read_issue"}]}))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.field(), "checks[1].boundary");
    let answer = app.post("/v1/authorize/batch", json!({"checks": []})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["results"], json!([]));
    app.finish().await;
}

/// A verified token is remembered: repeated checks do no store and no argon2 work,
/// shown by answering after the store has gone away.
async fn a_verified_token_is_answered_from_memory(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    // Restart so the token is not known from its creation, then verify it once.
    let app = crate::support::spawn_on(app.stop().await).await;
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    let metrics = app.call_as(None, Method::GET, "/metrics", None).await.text;
    assert!(
        metrics.contains("patrol_token_cache_total{result=\"miss\"} 1"),
        "{metrics}"
    );

    // SQLite: nothing else can change the store, so a closed one still leaves the
    // verified token answerable. Postgres: a closed store also deafens the replica to the
    // others' revocations, and it answers 503 instead (faults.rs); there the metrics
    // below show the store was not asked.
    if backend == Backend::Sqlite {
        app.service.store().close().await;
    }
    for _ in 0..3 {
        assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    }
    let wrong = patrol::secret::assemble("glpat-", &token[6..18], &"B".repeat(30));
    assert_eq!(
        app.reason(&wrong, "read_issue", 42).await,
        "token_invalid",
        "no store needed to refuse it"
    );
    let metrics = app.call_as(None, Method::GET, "/metrics", None).await.text;
    assert!(
        metrics.contains("patrol_token_cache_total{result=\"hit\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("patrol_token_cache_total{result=\"miss\"} 1"),
        "{metrics}"
    );
    app.finish().await;
}

async fn a_store_that_cannot_answer_is_a_503_never_an_allow(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    let app = crate::support::spawn_on(app.stop().await).await;
    app.service.store().close().await;
    // Never verified on this replica, and the store cannot be asked.
    let answer = app
        .post("/v1/authorize", json!({"token": token, "permission": "read_issue", "boundary": {"type": "project", "id": 42}}))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.headers["retry-after"], "1");
    assert!(answer.body.get("allowed").is_none());
    let batch = app
        .post("/v1/authorize/batch", json!({"checks": [{"token": token, "permission": "read_issue", "boundary": {"type": "project", "id": 42}}]}))
        .await;
    assert_eq!(batch.status, 503);
    // A GraphQL operation too: its checks are decided like any others.
    let graphql = app
        .post(
            "/v1/authorize/graphql",
            json!({"token": token,
            "query": "{ project(fullPath: \"acme/app\") { issues { nodes { title } } } }"}),
        )
        .await;
    assert_eq!(graphql.status, 503, "{}", graphql.text);
    assert!(graphql.body.get("allowed").is_none());
    // Writes fail the same way, and change nothing in memory.
    let answer = app
        .put(
            "/v1/directory/groups/7/members/1",
            json!({"access_level": 50}),
        )
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    app.finish().await;
}

async fn metrics_count_decisions_by_reason(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (_, token) = app.alice_token(&["read_issue"]).await;
    app.decide(&token, "read_issue", 42).await;
    app.decide(&token, "read_issue", 42).await;
    app.decide(&token, "create_issue", 42).await;
    app.decide("garbage", "read_issue", 42).await;
    let metrics = app.call_as(None, Method::GET, "/metrics", None).await.text;
    for line in [
        "patrol_decisions_total{reason=\"granted\"} 2",
        "patrol_decisions_total{reason=\"permission_not_granted\"} 1",
        "patrol_decisions_total{reason=\"token_invalid\"} 1",
        "patrol_decision_duration_seconds_count 4",
        "patrol_token_cache_total{result=\"rejected\"} 1",
        "patrol_token_cache_total{result=\"hit\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    app.finish().await;
}

/// The value of `patrol_token_cache_total{result="..."}` on `/metrics`.
async fn cache_count(app: &crate::support::TestApp, result: &str) -> u64 {
    let text = app.call_as(None, Method::GET, "/metrics", None).await.text;
    let prefix = format!("patrol_token_cache_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Alice's `api` token written to the store as tokens were before digests: its secret
/// an argon2id hash. Returns its id and plaintext.
async fn written_token(
    app: &crate::support::TestApp,
    lookup_id: &str,
    expires_at: Option<String>,
) -> (u64, String) {
    let secret = "S".repeat(30);
    let hash = patrol::secret::hash_secret(crate::support::TEST_ARGON2, &secret).unwrap();
    let mut tx = app.service.store().begin().await.unwrap();
    let id = tx
        .insert_token(&patrol::tokens::NewTokenRecord {
            user_id: 1,
            kind: patrol::tokens::TokenKind::Legacy,
            name: "old".to_owned(),
            description: String::new(),
            lookup_id: lookup_id.to_owned(),
            secret_hash: hash,
            scopes: vec!["api".to_owned()],
            granular_scopes: Vec::new(),
            allowed_ips: Vec::new(),
            created_at: 0,
            expires_at: expires_at.as_deref().and_then(patrol::clock::parse_date),
            job: None,
            family_id: None,
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (id, patrol::secret::assemble("glpat-", lookup_id, &secret))
}

async fn stored_hash(app: &crate::support::TestApp, id: u64) -> String {
    app.service
        .store()
        .token(id)
        .await
        .unwrap()
        .unwrap()
        .secret_hash
}

async fn guessing_costs_no_store_reads_and_never_keeps_the_right_secret_out(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (id, token) = app.alice_token(&["read_issue"]).await;
    assert!(
        stored_hash(&app, id).await.starts_with("$hmac-sha256$"),
        "a new token's secret is stored as a salted digest"
    );

    // Guesses of one unknown lookup id: one store read, then refused from memory.
    let unknown = patrol::secret::assemble("glpat-", "UNKNOWNLOOKU", &"A".repeat(30));
    for _ in 0..5 {
        assert_eq!(
            app.reason(&unknown, "read_issue", 42).await,
            "token_invalid"
        );
    }
    assert_eq!(cache_count(&app, "miss").await, 1);
    assert_eq!(cache_count(&app, "unknown").await, 4);

    // A restart empties the verified-token cache; the window is long for this part.
    // Wrong secrets for a real lookup id: one store read, then each is checked against
    // the digest that read found, in memory.
    let db = app.stop().await;
    let app = crate::support::spawn_with(db, |s| {
        s.failed_secret_window = std::time::Duration::from_secs(3600);
    })
    .await;
    let wrong = patrol::secret::assemble("glpat-", &token[6..18], &"B".repeat(30));
    for _ in 0..5 {
        assert_eq!(app.reason(&wrong, "read_issue", 42).await, "token_invalid");
    }
    assert_eq!(cache_count(&app, "miss").await, 1, "one store read");
    assert_eq!(cache_count(&app, "rejected").await, 4);
    assert_eq!(cache_count(&app, "throttled").await, 0);
    // The right secret is never kept out, however many wrong ones came first.
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    assert_eq!(
        cache_count(&app, "miss").await,
        2,
        "read again, for its record"
    );
    assert_eq!(app.reason(&wrong, "read_issue", 42).await, "token_invalid");
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    assert_eq!(
        (
            cache_count(&app, "rejected").await,
            cache_count(&app, "hit").await
        ),
        (5, 1),
        "verified now: compared with the cache"
    );
    app.finish().await;
}

async fn an_argon2id_hash_is_throttled_then_rewritten_as_a_digest(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let (id, token) = written_token(&app, "ARGONTOKEN01", Some(in_days(30))).await;
    assert!(stored_hash(&app, id).await.starts_with("$argon2id$"));

    // A wrong secret for an argon2id hash: at most one verification per window, so
    // argon2 cannot pin the CPU; within the window the right secret waits too.
    let db = app.stop().await;
    let app = crate::support::spawn_with(db, |s| {
        s.failed_secret_window = std::time::Duration::from_millis(300);
    })
    .await;
    let wrong = patrol::secret::assemble("glpat-", "ARGONTOKEN01", &"B".repeat(30));
    for _ in 0..3 {
        assert_eq!(app.reason(&wrong, "read_issue", 42).await, "token_invalid");
    }
    assert_eq!(cache_count(&app, "miss").await, 1, "argon2 ran once");
    assert_eq!(cache_count(&app, "throttled").await, 2);
    assert_eq!(app.reason(&token, "read_issue", 42).await, "token_invalid");
    assert!(stored_hash(&app, id).await.starts_with("$argon2id$"));

    // Once the window has passed, the right secret verifies, and its hash is written
    // again as a digest (in the background: the decision does not wait).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    let mut hash = stored_hash(&app, id).await;
    for _ in 0..100 {
        if hash.starts_with("$hmac-sha256$") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        hash = stored_hash(&app, id).await;
    }
    assert!(hash.starts_with("$hmac-sha256$"), "rewritten: {hash}");

    // After a restart the digest verifies the same secret, and only that one.
    let db = app.stop().await;
    let app = crate::support::spawn_with(db, |_| {}).await;
    assert_eq!(app.reason(&wrong, "read_issue", 42).await, "token_invalid");
    assert_eq!(app.reason(&token, "read_issue", 42).await, "granted");
    assert_eq!(stored_hash(&app, id).await, hash, "rewritten once");
    app.finish().await;
}
