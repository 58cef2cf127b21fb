//! Limits: per-caller rate limits (429), body size (413), head size (431), slow requests
//! (408) and slow heads (disconnected), each with a JSON error where there is an answer;
//! decisions are not rate limited.

use std::time::Duration;

use patrol::config::RateLimit;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{ADMIN_KEY, Answer, Backend, TestApp, TestDb, spawn_with};

async fn spawn_limited(change: impl FnOnce(&mut patrol::config::Settings)) -> TestApp {
    let app = spawn_with(TestDb::new(Backend::Sqlite).await, change).await;
    app.seed().await;
    app
}

fn json_error(answer: &Answer) -> &str {
    assert_eq!(
        answer.headers["content-type"], "application/json",
        "{}",
        answer.text
    );
    answer.body["error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_is_told_to_wait_and_others_are_not() {
    let app = spawn_limited(|s| {
        s.rate_limit = Some(RateLimit {
            per_second: 1,
            burst: 3,
        });
    })
    .await;
    // The seed took one, the token another; one more fits in the burst, the next not.
    let (_, token) = app.alice_token(&["read_issue"]).await;
    assert_eq!(app.get("/v1/tokens").await.status, 200);
    let limited = app.get("/v1/tokens").await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert!(
        json_error(&limited).contains("retry in"),
        "{}",
        limited.text
    );
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");

    // Another caller (here: a token holder) has its own budget.
    let own = app
        .call_with(
            reqwest::Method::GET,
            "/v1/tokens/self",
            &[("Authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_ne!(own.status, 429, "{}", own.text);
    // Decisions are never limited here: a gateway carries everyone's traffic.
    for _ in 0..20 {
        app.decide(&token, "read_issue", 42).await;
    }
    // Made-up keys are limited before they are checked.
    let forged = || {
        app.call_with(
            reqwest::Method::GET,
            "/v1/tokens",
            &[("X-Patrol-Key", "not-a-key")],
            None,
        )
    };
    let statuses = [
        forged().await.status,
        forged().await.status,
        forged().await.status,
        forged().await.status,
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [401, 401, 401, 429]);

    // The budget comes back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/v1/tokens").await.status, 200);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_with_413_and_nothing_is_written() {
    let app = spawn_limited(|s| s.body_limit = 4096).await;
    let users: Vec<Value> = (100..300)
        .map(|id| json!({"id": id, "username": format!("user-{id}-with-a-long-name")}))
        .collect();
    let answer = app
        .post("/v1/directory/batch", json!({ "users": users }))
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert!(json_error(&answer).contains("too large"), "{}", answer.text);
    let unknown = app
        .post(
            "/v1/users/100/tokens",
            json!({"name": "x", "scopes": ["read_api"], "expires_at": crate::support::in_days(3)}),
        )
        .await;
    assert_eq!(
        unknown.status, 404,
        "the batch wrote nothing: {}",
        unknown.text
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_to_send_its_body_gets_408() {
    let app = spawn_limited(|s| s.request_timeout = Duration::from_millis(300)).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Headers promise 100 bytes; 10 arrive, then nothing.
    let head = format!(
        "POST /v1/directory/batch HTTP/1.1\r\nhost: {address}\r\nx-patrol-key: {ADMIN_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"users\":["
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await
    .expect("patrol answers a stalled body within its timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("application/json") && text.contains("took too long"),
        "{text}"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_limit_is_refused_with_431_and_nothing_is_written() {
    let app = spawn_limited(|s| s.header_limit = 2048).await;
    let before = app.get("/v1/tokens").await;
    assert_eq!(before.status, 200, "{}", before.text);
    let create = |padding: String| {
        let app = &app;
        async move {
            app.call_with(
                reqwest::Method::POST,
                "/v1/users/1/tokens",
                &[("X-Patrol-Key", ADMIN_KEY), ("X-Padding", &padding)],
                Some(json!({"name": "x", "scopes": ["read_api"],
                        "expires_at": crate::support::in_days(3)})),
            )
            .await
        }
    };
    // Just over the limit: patrol's own answer, in JSON.
    let over = create("a".repeat(2048)).await;
    assert_eq!(over.status, 431, "{}", over.text);
    assert!(json_error(&over).contains("2048 bytes"), "{}", over.text);
    // Far over it: hyper refuses the head before it is whole, with a bare 431.
    let far_over = create("a".repeat(64 * 1024)).await;
    assert_eq!(far_over.status, 431, "{}", far_over.text);
    let after = app.get("/v1/tokens").await;
    assert_eq!(after.body, before.body, "no token was made");
    // A head within the limit is served as ever.
    let within = create("a".repeat(512)).await;
    assert_eq!(within.status, 201, "{}", within.text);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_to_send_its_head_is_disconnected() {
    let app = spawn_limited(|s| s.header_timeout = Duration::from_millis(300)).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    // A request line and one header, then nothing: the head never ends.
    stream
        .write_all(format!("GET /v1/tokens HTTP/1.1\r\nhost: {address}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("patrol lets a stalled head go within its timeout");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the connection is closed without an answer: {read:?}"
    );
    // Everyone else is served.
    assert_eq!(app.get("/v1/tokens").await.status, 200);
    app.finish().await;
}

/// The published document and the router agree on which operations are rate limited:
/// each operation is called twice with a made-up key of its own under a burst of one, and
/// answers 429 the second time exactly when the document says it may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_429_on_exactly_the_limited_operations() {
    let app = spawn_limited(|s| {
        s.rate_limit = Some(RateLimit {
            per_second: 1,
            burst: 1,
        });
    })
    .await;
    let document: Value = serde_json::from_str(&patrol::http::openapi::document()).unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|part| if part.starts_with('{') { "1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().unwrap() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let key = format!("made-up-{method}-{path}");
            let headers = [("X-Patrol-Key", key.as_str())];
            app.call_with(method.clone(), &concrete, &headers, None)
                .await;
            let second = app
                .call_with(method.clone(), &concrete, &headers, None)
                .await
                .status;
            let documented = operation["responses"].get("429").is_some();
            assert_eq!(
                second == 429,
                documented,
                "{method} {path}: second call {second}, 429 documented: {documented}"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} operations");
    app.finish().await;
}
