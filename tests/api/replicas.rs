//! Scale-out (DESIGN.md section 10): two replicas on one Postgres behave as one. What
//! one acknowledges, the other applies from `LISTEN`/`NOTIFY`, and after a lost
//! listening connection it rebuilds from the store. Replicas share a store only on
//! Postgres: SQLite is one process by design.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::{Backend, TestApp, TestDb, in_days, spawn_on, spawn_replica};

/// Polls `ready` every few milliseconds for up to five seconds; returns how long it
/// took, or panics with `what`.
async fn within<F, Fut>(what: &str, mut ready: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if ready().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{what}: not within 5 s");
}

async fn reason_on(app: &TestApp, token: &str, permission: &str, project: u64) -> String {
    let answer = app
        .post(
            "/v1/authorize",
            json!({"token": token, "permission": permission,
                   "boundary": {"type": "project", "id": project}}),
        )
        .await;
    answer.body["reason"]
        .as_str()
        .unwrap_or("(no decision)")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_is_denied_by_the_other_within_a_second() {
    let db = TestDb::new(Backend::Postgres).await;
    let b = spawn_replica(&db, |_| {}).await;
    let a = spawn_on(db).await;
    a.seed().await;
    // The directory reaches B as any change does: wait until it has alice.
    let (_, first) = a.alice_token(&["read_issue"]).await;
    within("B learns the seeded directory", || async {
        reason_on(&b, &first, "read_issue", 42).await == "granted"
    })
    .await;
    let mut delays = Vec::new();
    for _ in 0..20 {
        let (id, token) = a.alice_token(&["read_issue"]).await;
        // B verifies it once (store and argon2) and from then on answers from memory.
        assert_eq!(reason_on(&b, &token, "read_issue", 42).await, "granted");
        assert_eq!(reason_on(&b, &token, "read_issue", 42).await, "granted");

        assert_eq!(a.delete(&format!("/v1/tokens/{id}")).await.status, 204);
        let delay = within("B denies the revoked token", || async {
            reason_on(&b, &token, "read_issue", 42).await == "token_revoked"
        })
        .await;
        delays.push(delay);
    }
    delays.sort();
    eprintln!(
        "revocation acknowledged by A, denied by B after: median {:?}, max {:?} (20 tokens)",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(
        delays.iter().all(|d| *d < Duration::from_secs(1)),
        "{delays:?}"
    );
    b.stop_replica().await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_reaches_the_other_replica() {
    let db = TestDb::new(Backend::Postgres).await;
    let b = spawn_replica(&db, |_| {}).await;
    let a = spawn_on(db).await;
    a.seed().await;
    let (_, token) = a.alice_token(&["read_issue", "read_package"]).await;
    within("the seeded directory reaches B", || async {
        reason_on(&b, &token, "read_issue", 42).await == "granted"
    })
    .await;

    // Directory: alice leaves acme.
    assert_eq!(
        a.delete("/v1/directory/groups/7/members/1").await.status,
        204
    );
    within("a removed membership", || async {
        reason_on(&b, &token, "read_issue", 42).await == "outside_token_boundary"
    })
    .await;
    assert_eq!(
        a.put(
            "/v1/directory/groups/7/members/1",
            json!({"access_level": 30})
        )
        .await
        .status,
        204
    );
    within("a membership", || async {
        reason_on(&b, &token, "read_issue", 42).await == "granted"
    })
    .await;

    // A project changes: issues turned off.
    let answer = a
        .put(
            "/v1/directory/projects/42",
            json!({"namespace": {"kind": "group", "id": 7}, "path": "app", "name": "App",
                   "visibility": "private", "features": {"issues": "disabled"}}),
        )
        .await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    within("a project", || async {
        reason_on(&b, &token, "read_issue", 42).await == "feature_disabled"
    })
    .await;

    // A batch.
    let answer = a
        .post(
            "/v1/directory/batch",
            json!({"users": [{"id": 5, "username": "erin"}],
                   "memberships": [{"project_id": 44, "user_id": 5, "access_level": 30}]}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let (_, erin) = a
        .token(
            5,
            json!({"name": "e", "expires_at": in_days(3), "scopes": ["api"]}),
        )
        .await;
    within("a batch", || async {
        reason_on(&b, &erin, "create_issue", 44).await == "granted"
    })
    .await;

    // A group policy: acme refuses legacy tokens.
    let (_, legacy) = a
        .token(
            1,
            json!({"name": "l", "expires_at": in_days(3), "scopes": ["api"]}),
        )
        .await;
    assert_eq!(
        reason_on(&b, &legacy, "read_repository", 42).await,
        "granted"
    );
    let answer = a
        .put(
            "/v1/groups/7/token-policy",
            json!({"enforce_fine_grained": true}),
        )
        .await;
    assert!(answer.status.is_success(), "{}", answer.text);
    within("a group token policy", || async {
        reason_on(&b, &legacy, "read_repository", 42).await == "legacy_token_forbidden"
    })
    .await;

    // Job token scopes and allowlists.
    let job = a
        .post(
            "/v1/jobs",
            json!({"project_id": 43, "user_id": 1, "job_id": 7,
                   "expires_at": patrol::clock::rfc3339(patrol::clock::now() + 600)}),
        )
        .await;
    let job = job.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        reason_on(&b, &job, "read_package", 42).await,
        "job_token_scope_denied"
    );
    let answer = a
        .post(
            "/v1/projects/42/job-token-scope/allowlist",
            json!({"source_project_id": 43, "policies": ["read_packages"]}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    within("an allowlist entry", || async {
        reason_on(&b, &job, "read_package", 42).await == "granted"
    })
    .await;
    let answer = a
        .call(
            Method::PATCH,
            "/v1/projects/42/job-token-scope",
            Some(json!({"fine_grained_enabled": true})),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        a.delete("/v1/projects/42/job-token-scope/allowlist/projects/43")
            .await
            .status,
        204
    );
    within("a removed allowlist entry", || async {
        reason_on(&b, &job, "read_package", 42).await == "job_token_scope_denied"
    })
    .await;
    assert_eq!(a.delete("/v1/jobs/7").await.status, 204);
    within("a finished job", || async {
        reason_on(&b, &job, "read_package", 43).await == "token_revoked"
    })
    .await;

    // A token's permissions narrowed on A.
    let (narrowed, narrowed_token) = a.alice_token(&["read_issue", "create_issue"]).await;
    assert_eq!(
        reason_on(&b, &narrowed_token, "create_issue", 43).await,
        "granted"
    );
    let answer = a
        .call(
            Method::PATCH,
            &format!("/v1/tokens/{narrowed}"),
            Some(json!({"granular_scopes": [{"access": "all_memberships", "permissions": ["read_issue"]}]})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    within("an updated token", || async {
        reason_on(&b, &narrowed_token, "create_issue", 43).await == "permission_not_granted"
    })
    .await;
    assert_eq!(
        reason_on(&b, &narrowed_token, "read_issue", 43).await,
        "granted"
    );

    // Settings.
    let answer = a
        .put(
            "/v1/settings",
            json!({"max_lifetime_days": 7, "require_expiry": true, "allow_legacy_token_creation": false}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    within("settings", || async {
        b.get("/v1/settings").await.body["max_lifetime_days"] == 7
    })
    .await;

    // A service key revoked on A stops working on B.
    let created = a
        .post(
            "/v1/service-keys",
            json!({"name": "gw", "role": "authorize"}),
        )
        .await;
    let (key_id, key) = (
        created.body["id"].as_u64().unwrap(),
        created.body["key"].as_str().unwrap().to_owned(),
    );
    let with_key = |app: &TestApp| {
        let key = key.clone();
        let address = app.address.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{address}/v1/authorize"))
                .header("X-Patrol-Key", key)
                .json(&json!({"token": "x", "permission": "read_issue", "boundary": {"type": "instance"}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(with_key(&b).await, 200);
    assert_eq!(
        a.delete(&format!("/v1/service-keys/{key_id}")).await.status,
        204
    );
    within("a revoked service key", || async {
        with_key(&b).await == 401
    })
    .await;

    b.stop_replica().await;
    a.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_connection_rebuilds_from_the_store() {
    let db = TestDb::new(Backend::Postgres).await;
    let b = spawn_replica(&db, |_| {}).await;
    let a = spawn_on(db).await;
    a.seed().await;
    let (id, token) = a.alice_token(&["read_issue"]).await;
    assert_eq!(reason_on(&b, &token, "read_issue", 42).await, "granted");

    // Cut every listening connection to this database, then revoke while B may be
    // deaf: B must still learn of it.
    let database =
        a.db.as_ref()
            .unwrap()
            .url
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&crate::support::postgres_base_url())
            .await
            .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&database)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "no listening connection to cut");
    assert_eq!(a.delete(&format!("/v1/tokens/{id}")).await.status, 204);

    within("B denies the token revoked while it was deaf", || async {
        reason_on(&b, &token, "read_issue", 42).await == "token_revoked"
    })
    .await;
    within("B is ready again", || async {
        b.get("/readyz").await.status == 200
    })
    .await;
    b.stop_replica().await;
    a.finish().await;
}

/// Two replicas asked at once to give one username to two users: the store's uniqueness
/// rule backs each replica's own check, so exactly one wins; the other is refused with
/// 422 (its replica already knew) or 409 (the store refused the commit), and both
/// replicas then agree on who has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_for_one_username_give_it_to_one_user() {
    let db = TestDb::new(Backend::Postgres).await;
    let b = spawn_replica(&db, |_| {}).await;
    let a = spawn_on(db).await;
    let mut outcomes = std::collections::BTreeMap::<(u16, u16), usize>::new();
    for round in 0..20u64 {
        let name = format!("racer-{round}");
        // One replica takes it in a batch, the other one user at a time; they swap
        // every round, so that either way may lose.
        let (batcher, putter) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (by_batch, by_put) = (100 + 2 * round, 101 + 2 * round);
        let path = format!("/v1/directory/users/{by_put}");
        let (batched, put) = tokio::join!(
            batcher.post(
                "/v1/directory/batch",
                json!({"users": [{"id": by_batch, "username": name}]})
            ),
            putter.put(&path, json!({"username": name})),
        );
        let statuses = (batched.status.as_u16(), put.status.as_u16());
        *outcomes.entry(statuses).or_default() += 1;
        let (winner, loser, lost) = match statuses {
            (200, 409 | 422) => (by_batch, by_put, &put),
            (409 | 422, 204) => (by_put, by_batch, &batched),
            _ => panic!(
                "round {round}: {statuses:?}: {} / {}",
                batched.text, put.text
            ),
        };
        assert!(
            lost.text.contains("taken"),
            "the refusal says why: {}",
            lost.text
        );
        // Both replicas come to know the winner, and neither knows the loser.
        let body = json!({"name": "t", "scopes": ["read_api"], "expires_at": in_days(3)});
        for replica in [&a, &b] {
            within("the winner is known", || async {
                replica
                    .post(&format!("/v1/users/{winner}/tokens"), body.clone())
                    .await
                    .status
                    == 201
            })
            .await;
            let for_loser = replica
                .post(&format!("/v1/users/{loser}/tokens"), body.clone())
                .await;
            assert_eq!(for_loser.status, 404, "{}", for_loser.text);
        }
    }
    eprintln!("(batch, put) statuses over 20 rounds: {outcomes:?}");
    b.stop_replica().await;
    a.finish().await;
}
