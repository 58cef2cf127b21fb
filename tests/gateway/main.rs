//! The differential gateway suite: a real nginx, Traefik and Envoy (asking over HTTP, and
//! again over gRPC), configured exactly as docs/gateway/ shows, each in front of an upstream that records the bytes it gets,
//! all asking patrol, all on loopback and started here. Thousands of hostile requests go
//! through each. For every request that reaches the upstream, patrol must have decided
//! on the method, the route, the namespace and the credential that GitLab reads from
//! those very bytes (`oracle.rs`, written apart from patrol's reading), and nothing
//! patrol denied may arrive.
//!
//! `PATROL_GATEWAY_REQUESTS` (10,000 per gateway) and `PATROL_GATEWAY_SEED` change the run; the seed
//! is printed, so a failure can be replayed. The binaries come from `PATROL_TEST_NGINX`,
//! `PATROL_TEST_TRAEFIK` and `PATROL_TEST_ENVOY`, else the `PATH` (`.ci/run` installs
//! them): no gateway is ever skipped.
//!
//! Not generated: credentials in the request body. nginx's `auth_request` cannot show a
//! body to patrol, and GitLab reads a `private_token` there (docs/threat-model.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod gateways;
mod generator;
mod graphql;
mod oracle;
mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use patrol::app::Application;
use patrol::catalog::Catalog;
use patrol::config::{AdminKey, Settings};
use patrol::secret::Argon2Params;

use gateways::Kind;
use generator::{Hostile, Tokens};
use oracle::{Reading, Wire, World};
use upstream::Seen;

const ADMIN_KEY: &str = "gateway-suite-admin-key-0123456789";
/// A cheap argon2 cost: the suite tests reading, not hashing.
const ARGON2: Argon2Params = Argon2Params {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};
/// A forged identity the generator sends; patrol never issues it.
const FORGED: &str = "424242";

/// One patrol, pinned to one gateway's convention, on the shared store.
struct Patrol {
    address: SocketAddr,
    /// Its gRPC ext_authz, for Envoy over gRPC.
    grpc: Option<SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_patrol(database_url: &str, kind: Kind) -> Patrol {
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        grpc_listen: (kind == Kind::EnvoyGrpc).then(|| "127.0.0.1:0".parse().unwrap()),
        database_url: database_url.to_owned(),
        admin_key: Some(AdminKey(ADMIN_KEY.to_owned())),
        argon2: ARGON2,
        rate_limit: None,
        track_usage: false,
        gateway: kind.convention(),
        ..Settings::default()
    };
    let catalog = Arc::new(patrol::catalog::load_embedded().unwrap());
    let app = Application::build(&settings, catalog, true).await.unwrap();
    let address = app.local_addr().unwrap();
    let grpc = app.grpc_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(async {
        let _ = stopped.await;
    }));
    Patrol {
        address,
        grpc,
        stop,
    }
}

async fn call(patrol: SocketAddr, method: reqwest::Method, path: &str, body: Value) -> Value {
    let answer = reqwest::Client::new()
        .request(method, format!("http://{patrol}{path}"))
        .header("X-Patrol-Key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// alice (1) develops in `acme` (7, private, with `acme/web`, 8); bob (2) is a guest of
/// `acme/app` (42) only; `acme/secret` (43) is private to acme; `oss/lib` (44) public.
async fn seed_world(patrol: SocketAddr) -> (Tokens, World, String) {
    use reqwest::Method;
    call(
        patrol,
        Method::POST,
        "/v1/directory/batch",
        json!({
            "users": [
                {"id": 1, "username": "alice"},
                {"id": 2, "username": "bob"},
                {"id": 3, "username": "root", "admin": true}
            ],
            "groups": [
                {"id": 7, "path": "acme", "name": "Acme", "visibility": "private"},
                {"id": 8, "parent_id": 7, "path": "web", "name": "Web", "visibility": "private"},
                {"id": 9, "path": "oss", "name": "OSS", "visibility": "public"}
            ],
            "projects": [
                {"id": 42, "namespace": {"kind": "group", "id": 7}, "path": "app", "name": "App", "visibility": "private"},
                {"id": 43, "namespace": {"kind": "group", "id": 7}, "path": "secret", "name": "Secret", "visibility": "private"},
                {"id": 44, "namespace": {"kind": "group", "id": 9}, "path": "lib", "name": "Lib", "visibility": "public"}
            ],
            "memberships": [
                {"group_id": 7, "user_id": 1, "access_level": 30},
                {"project_id": 42, "user_id": 2, "access_level": 10}
            ]
        }),
    )
    .await;
    let expires =
        patrol::clock::format_date(patrol::clock::date_of(patrol::clock::now() + 30 * 86_400));
    let token = |user: u64, body: Value| async move {
        let made = call(
            patrol,
            Method::POST,
            &format!("/v1/users/{user}/tokens"),
            body,
        )
        .await;
        (
            made["token"].as_str().unwrap().to_owned(),
            made["id"].as_u64().unwrap(),
        )
    };
    let wide = token(
        1,
        json!({"name": "wide", "expires_at": expires, "scopes": ["api"]}),
    )
    .await;
    let narrow = token(
        2,
        json!({"name": "narrow", "expires_at": expires, "granular_scopes": [
            {"access": "selected_memberships", "project_ids": [42], "permissions": ["read_issue"]}]}),
    )
    .await;
    let ip_bound = token(
        1,
        json!({"name": "ip", "expires_at": expires, "scopes": ["api"], "allowed_ips": ["127.0.0.2/32"]}),
    )
    .await;
    let revoked = token(
        1,
        json!({"name": "revoked", "expires_at": expires, "scopes": ["api"]}),
    )
    .await;
    let gone = reqwest::Client::new()
        .delete(format!("http://{patrol}/v1/tokens/{}", revoked.1))
        .header("X-Patrol-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let job = call(
        patrol,
        Method::POST,
        "/v1/jobs",
        json!({"project_id": 42, "user_id": 1, "job_id": 555,
               "expires_at": patrol::clock::rfc3339(patrol::clock::now() + 3_600)}),
    )
    .await;
    let job = (
        job["token"].as_str().unwrap().to_owned(),
        job["id"].as_u64().unwrap(),
    );
    let key = call(
        patrol,
        Method::POST,
        "/v1/service-keys",
        json!({"name": "gateways", "role": "authorize"}),
    )
    .await;
    let world = World {
        projects: vec![
            (42, "acme/app".into()),
            (43, "acme/secret".into()),
            (44, "oss/lib".into()),
        ],
        groups: vec![
            (7, "acme".into()),
            (8, "acme/web".into()),
            (9, "oss".into()),
        ],
        users: vec![(1, "alice".into()), (2, "bob".into()), (3, "root".into())],
        tokens: vec![
            (wide.0.clone(), wide.1, 1, false),
            (narrow.0.clone(), narrow.1, 2, false),
            (ip_bound.0.clone(), ip_bound.1, 1, false),
            (revoked.0.clone(), revoked.1, 1, false),
            (job.0.clone(), job.1, 1, true),
        ],
    };
    let tokens = Tokens {
        wide: wide.0,
        narrow: narrow.0,
        job: job.0,
        ip_bound: ip_bound.0,
        revoked: revoked.0,
    };
    (tokens, world, key["key"].as_str().unwrap().to_owned())
}

/// Sends raw bytes and returns the status the client got, or what went wrong. The
/// answer is read to its end by its own framing: a proxy may wait for the client to
/// close first (Envoy's delayed close).
async fn send(address: SocketAddr, bytes: &[u8]) -> Result<u16, String> {
    let head_only = bytes.starts_with(b"HEAD ");
    let exchange = async {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        loop {
            if let Some(status) = complete(&answer, head_only) {
                return Ok(status);
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        // Closed: whatever head came is the answer.
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer) {
            Ok(_) if response.code.is_some() => Ok(response.code.unwrap_or_default()),
            _ => Err(format!("no answer ({} bytes)", answer.len())),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| Err("timeout".to_owned()))
}

/// The status once a whole answer is in `bytes`.
fn complete(bytes: &[u8], head_only: bool) -> Option<u16> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(bytes).ok()? else {
        return None;
    };
    let status = response.code?;
    let value = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    if head_only || status == 204 || status == 304 || status < 200 {
        return Some(status);
    }
    if let Some(length) = value("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        return (bytes.len() >= head + length).then_some(status);
    }
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return bytes[head..].ends_with(b"0\r\n\r\n").then_some(status);
    }
    None
}

/// Waits until the gateway routes to patrol (Traefik loads its routes after it listens).
async fn ready(gateway: SocketAddr) {
    let probe = b"GET /api/v4/user HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let deadline = Instant::now() + Duration::from_secs(30);
    while send(gateway, probe).await != Ok(401) {
        assert!(
            Instant::now() < deadline,
            "the gateway at {gateway} never asked patrol"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one gateway did with the requests.
#[derive(Debug, Default)]
struct Tally {
    statuses: BTreeMap<String, usize>,
    arrived: usize,
    with_token: usize,
    skipped: usize,
    refused: BTreeMap<String, usize>,
    violations: Vec<String>,
}

fn list(seen: &Seen, name: &str) -> Vec<String> {
    seen.header(name)
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(", ")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The property, for one request that reached the upstream.
fn check(
    seen: &Seen,
    request: Option<&Hostile>,
    catalog: &Catalog,
    world: &World,
    ip_bound: u64,
    tally: &mut Tally,
) {
    let shown = |seen: &Seen| {
        format!(
            "sent: {}\nupstream got: {} {} {:?}",
            request.map_or_else(String::new, |r| String::from_utf8_lossy(
                &r.bytes[..r.bytes.len().min(600)]
            )
            .into_owned()),
            seen.method,
            String::from_utf8_lossy(&seen.target[..seen.target.len().min(300)]),
            seen.headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(&v[..v.len().min(120)])))
                .collect::<Vec<_>>()
        )
    };
    tally.arrived += 1;
    if seen.method.is_empty() {
        // Bytes no HTTP parser takes: GitLab acts on nothing.
        *tally.refused.entry("unparsable".into()).or_default() += 1;
        return;
    }
    let routes = list(seen, "x-patrol-route");
    if routes.is_empty() {
        tally.violations.push(format!(
            "reached the upstream without patrol's allow\n{}",
            shown(seen)
        ));
        return;
    }
    for name in ["x-patrol-user-id", "x-patrol-token-id"] {
        let values = list(seen, name);
        if values.len() > 1 || values.iter().any(|v| v == FORGED) {
            tally.violations.push(format!(
                "a client-made `{name}` reached the upstream: {values:?}\n{}",
                shown(seen)
            ));
        }
    }
    let wire = Wire {
        method: &seen.method,
        target: &seen.target,
        headers: &seen.headers,
        body: &seen.body,
    };
    match oracle::gitlab_reads(&wire, catalog, world) {
        Reading::Refuses(why) => {
            let why = why.split(':').next().unwrap_or_default().to_owned();
            *tally.refused.entry(why).or_default() += 1;
        }
        Reading::Acts {
            route,
            boundary,
            token,
        } => {
            if !routes.contains(&route) {
                tally.violations.push(format!(
                    "GitLab routes it to `{route}`, patrol decided {routes:?}\n{}",
                    shown(seen)
                ));
            }
            match token {
                None => tally.skipped += 1,
                Some(id) => {
                    tally.with_token += 1;
                    let decided = list(seen, "x-patrol-token-id");
                    if decided != [id.to_string()] {
                        tally.violations.push(format!(
                            "GitLab authenticates token {id}, patrol decided on {decided:?}\n{}",
                            shown(seen)
                        ));
                    }
                    if id == ip_bound {
                        tally.violations.push(format!(
                            "a token bound to 127.0.0.2 was allowed from 127.0.0.1\n{}",
                            shown(seen)
                        ));
                    }
                }
            }
            if let Some(boundary) = boundary {
                let decided = list(seen, "x-patrol-boundary");
                if !decided.contains(&boundary) {
                    tally.violations.push(format!(
                        "GitLab acts on `{boundary}`, patrol decided on {decided:?}\n{}",
                        shown(seen)
                    ));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_forwards_only_what_patrol_decided() {
    let started = Instant::now();
    let count: usize = std::env::var("PATROL_GATEWAY_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = std::env::var("PATROL_GATEWAY_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_261_202);
    println!("{count} requests per gateway, seed {seed} (PATROL_GATEWAY_SEED)");

    let dir = std::env::temp_dir().join(format!("patrol-gateways-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = format!("sqlite://{}", dir.join("patrol.db").display());
    let first = start_patrol(&database_url, Kind::Nginx).await;
    let (tokens, world, key) = seed_world(first.address).await;
    let ip_bound = world
        .tokens
        .iter()
        .find(|t| t.0 == tokens.ip_bound)
        .unwrap()
        .1;
    let catalog = patrol::catalog::load_embedded().unwrap();
    let requests = generator::requests(&catalog, &tokens, seed, count);
    let by_seq: BTreeMap<u64, &Hostile> = requests.iter().map(|r| (r.seq, r)).collect();
    let (upstream, log) = upstream::start().await;

    let mut patrols = vec![(Kind::Nginx, first)];
    for kind in [Kind::Traefik, Kind::Envoy, Kind::EnvoyGrpc] {
        patrols.push((kind, start_patrol(&database_url, kind).await));
    }
    // PATROL_GATEWAYS=envoy (say) runs one gateway, to look at it alone.
    let only = std::env::var("PATROL_GATEWAYS").ok();
    let mut failures = Vec::new();
    for (kind, patrol) in &patrols {
        if only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|g| g == kind.name()))
        {
            continue;
        }
        let address = patrol.grpc.unwrap_or(patrol.address);
        let (kind, key) = (*kind, key.clone());
        let began = Instant::now();
        // On a thread that lives as long as the test: Envoy ends itself when the thread
        // that started it ends (a parent-death signal), as a blocking-pool thread would.
        let gateway =
            tokio::task::block_in_place(|| gateways::start(kind, address, upstream, &key));
        ready(gateway.address).await;
        log.lock().unwrap().clear();

        let mut tally = Tally::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(8));
        let mut sent = Vec::new();
        for request in &requests {
            let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
            let bytes = request.bytes.clone();
            let to = gateway.address;
            sent.push(tokio::spawn(async move {
                let status = send(to, &bytes).await;
                drop(permit);
                status
            }));
        }
        let mut unanswered = 0;
        for (task, request) in sent.into_iter().zip(&requests) {
            let status = match task.await.unwrap() {
                Ok(status) => status.to_string(),
                Err(e) => {
                    if unanswered < 3 {
                        println!(
                            "{}: no answer to {}: {e}",
                            kind.name(),
                            String::from_utf8_lossy(&request.bytes[..request.bytes.len().min(400)])
                        );
                    }
                    unanswered += 1;
                    e
                }
            };
            *tally.statuses.entry(status).or_default() += 1;
        }
        // Let the last forwarded requests land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let arrived: Vec<Seen> = log.lock().unwrap().clone();
        for seen in &arrived {
            let seq = seen
                .header_text("x-test-seq")
                .and_then(|s| s.trim().parse::<u64>().ok());
            check(
                seen,
                seq.and_then(|s| by_seq.get(&s).copied()),
                &catalog,
                &world,
                ip_bound,
                &mut tally,
            );
        }
        println!(
            "{} ({:.1} s): client statuses {:?}; reached the upstream {} (GitLab acts with a token {}, needs none {}, would not act {:?}); violations {}",
            kind.name(),
            began.elapsed().as_secs_f64(),
            tally.statuses,
            tally.arrived,
            tally.with_token,
            tally.skipped,
            tally.refused,
            tally.violations.len()
        );
        for v in tally.violations.iter().take(5) {
            println!("--- {}: {v}", kind.name());
        }
        if !tally.violations.is_empty() {
            failures.push(format!(
                "{}: {} violations",
                kind.name(),
                tally.violations.len()
            ));
        }
        // Not vacuous: the generator reaches every outcome through every gateway.
        assert!(
            tally.with_token >= count / 20 && tally.skipped > 0 && !tally.refused.is_empty(),
            "{}: too few requests exercised the property: {tally:?}",
            kind.name()
        );
        drop(gateway);
    }
    let gateways = patrols.len();
    for (_, patrol) in patrols {
        let _ = patrol.stop.send(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{} requests through {gateways} gateways in {:.1} s",
        gateways * count,
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:?}");
}
