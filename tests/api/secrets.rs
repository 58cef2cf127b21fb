//! Secrets never reach the logs: the real binary at its most verbose (`RUST_LOG=trace`)
//! is driven through every kind of endpoint that takes or returns a secret, and its whole
//! output is searched for each token, secret and key it saw.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ADMIN_KEY, Backend, TestDb, in_an_hour, in_days, spawn_with, start_binary};

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self
            .call(method, path, &[("X-Patrol-Key", ADMIN_KEY)], body)
            .await;
        assert!(status < 300, "{path}: {status} {body}");
        body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    use reqwest::Method;

    let db = TestDb::new(Backend::Sqlite).await;
    let seeded = spawn_with(db, |_| {}).await;
    seeded.seed().await;
    let db = seeded.stop().await;

    let log_path = std::env::temp_dir().join(format!(
        "patrol-secrets-{}.log",
        crate::support::random_suffix()
    ));
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut child, base) = start_binary(
        &db,
        &[
            (
                "PATROL_WEBHOOK_URL",
                "http://127.0.0.1:9/hook?key=webhook-credential-0123",
            ),
            ("RUST_LOG", "trace"),
        ],
        Some(log),
    )
    .await;
    let client = Client {
        base,
        http: reqwest::Client::new(),
    };
    let mut secrets: Vec<String> = vec![ADMIN_KEY.to_owned(), "webhook-credential-0123".to_owned()];

    // A service key, used once.
    let key = client
        .admin(
            Method::POST,
            "/v1/service-keys",
            Some(json!({"name": "gw", "role": "authorize"})),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(key.clone());
    // Tokens: legacy, fine-grained, a job's.
    let legacy = client
        .admin(
            Method::POST,
            "/v1/users/3/tokens",
            Some(json!({"name": "admin", "expires_at": in_days(30), "scopes": ["api", "admin_mode"]})),
        )
        .await;
    let fine = client
        .admin(
            Method::POST,
            "/v1/users/1/tokens",
            Some(json!({"name": "fine", "expires_at": in_days(30),
                        "granular_scopes": [
                            {"access": "all_memberships", "permissions": ["read_issue"]},
                            {"access": "user", "permissions": ["read_personal_access_token", "rotate_personal_access_token"]}]})),
        )
        .await;
    let job = client
        .admin(
            Method::POST,
            "/v1/jobs",
            Some(json!({"project_id": 42, "user_id": 1, "job_id": 77,
                        "expires_at": in_an_hour()})),
        )
        .await;
    let [legacy, fine, job] =
        [&legacy, &fine, &job].map(|v| v["token"].as_str().unwrap().to_owned());
    let fine_id = client
        .admin(Method::GET, "/v1/tokens?user_id=1", None)
        .await[0]["id"]
        .as_u64()
        .unwrap();
    secrets.extend([legacy.clone(), fine.clone(), job.clone()]);

    // Decisions, every way a token comes in.
    let check = json!({"token": fine, "permission": "read_issue", "boundary": {"type": "project", "id": 42}});
    client
        .call(
            Method::POST,
            "/v1/authorize",
            &[("X-Patrol-Key", &key)],
            Some(check.clone()),
        )
        .await;
    client
        .call(
            Method::POST,
            "/v1/authorize/batch",
            &[("X-Patrol-Key", &key)],
            Some(json!({"checks": [check]})),
        )
        .await;
    let gateway = "/v1/gateway/check/api/v4/projects/42/issues";
    let bearer = format!("Bearer {fine}");
    for (name, value) in [
        ("PRIVATE-TOKEN", fine.as_str()),
        ("Authorization", bearer.as_str()),
        ("JOB-TOKEN", job.as_str()),
    ] {
        client
            .call(
                Method::GET,
                gateway,
                &[("X-Patrol-Key", &key), (name, value)],
                None,
            )
            .await;
    }
    client
        .call(
            Method::GET,
            &format!("{gateway}?private_token={fine}"),
            &[("X-Patrol-Key", &key)],
            None,
        )
        .await;
    client
        .call(
            Method::GET,
            "/v1/gateway/check",
            &[
                ("X-Patrol-Key", &key),
                (
                    "X-Original-URI",
                    &format!("/api/v4/projects/42/issues?job_token={job}"),
                ),
                ("X-Original-Method", "GET"),
            ],
            None,
        )
        .await;
    // A right-looking token with a wrong secret, twice (argon2, then the throttle).
    let mut wrong = fine.clone();
    wrong.replace_range(20..21, if &fine[20..21] == "a" { "b" } else { "a" });
    secrets.push(wrong.clone());
    for _ in 0..2 {
        client
            .call(
                Method::GET,
                "/v1/tokens/self",
                &[("PRIVATE-TOKEN", &wrong)],
                None,
            )
            .await;
    }

    // The token on itself, and the GitLab API.
    client
        .call(
            Method::GET,
            "/v1/tokens/self",
            &[("Authorization", &bearer)],
            None,
        )
        .await;
    for path in [
        "/api/v4/user",
        "/api/v4/personal_access_tokens",
        "/api/v4/personal_access_tokens/self",
    ] {
        client
            .call(Method::GET, path, &[("PRIVATE-TOKEN", &legacy)], None)
            .await;
    }
    let (_, created) = client
        .call(
            Method::POST,
            "/api/v4/users/1/personal_access_tokens",
            &[("PRIVATE-TOKEN", &legacy)],
            Some(json!({"name": "made", "scopes": ["read_api"], "expires_at": in_days(5)})),
        )
        .await;
    secrets.push(created["token"].as_str().unwrap().to_owned());
    let (_, rotated) = client
        .call(
            Method::POST,
            "/api/v4/personal_access_tokens/self/rotate",
            &[("PRIVATE-TOKEN", &fine)],
            None,
        )
        .await;
    let fine = rotated["token"].as_str().unwrap().to_owned();
    secrets.push(fine.clone());

    // Management: update, duplicate, rotate, revoke by value, revoke; the job ends.
    let fine_id = rotated["id"].as_u64().unwrap_or(fine_id);
    client
        .admin(
            Method::PATCH,
            &format!("/v1/tokens/{fine_id}"),
            Some(json!({"name": "renamed"})),
        )
        .await;
    let duplicate = client
        .admin(
            Method::POST,
            &format!("/v1/tokens/{fine_id}/duplicate"),
            Some(json!({})),
        )
        .await;
    secrets.push(duplicate["token"].as_str().unwrap().to_owned());
    let again = client
        .admin(
            Method::POST,
            &format!("/v1/tokens/{fine_id}/rotate"),
            Some(json!({})),
        )
        .await;
    let last = again["token"].as_str().unwrap().to_owned();
    secrets.push(last.clone());
    client
        .admin(
            Method::POST,
            "/v1/tokens/revoke-by-value",
            Some(json!({"token": last})),
        )
        .await;
    client.admin(Method::DELETE, "/v1/jobs/77", None).await;
    client.admin(Method::GET, "/v1/audit-events", None).await;
    client.call(Method::GET, "/metrics", &[], None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the webhook worker tries

    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
    let output = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        output.lines().count() > 200 && output.contains("TRACE"),
        "the log is as verbose as it gets: {} lines",
        output.lines().count()
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        if let Some(line) = output.lines().find(|line| line.contains(secret.as_str())) {
            panic!("a secret reached the log: {line}");
        }
        // The secret part alone (after `glpat-` and the 12-character lookup id).
        if let Some(rest) = secret
            .strip_prefix("glpat-")
            .or_else(|| secret.strip_prefix("glcbt-"))
        {
            let part = &rest[12..42];
            assert!(
                !output.contains(part),
                "a token's secret part reached the log"
            );
        }
    }
    db.remove().await;
}
