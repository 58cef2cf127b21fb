//! The load harness: starts a release `patrol serve` on loopback, gives it a world and
//! tokens, and measures in one run, on that one server:
//!
//! 1. saturation throughput of `GET /healthz` (the trivial endpoint of the same binary),
//!    `POST /v1/authorize` with a warm token, `GET /v1/gateway/check`, and Envoy's gRPC
//!    ext_authz `Check` on the same request;
//! 2. p50/p99 latency of `/v1/authorize` at half of its saturation, open loop (latency
//!    counted from when each request was due, so a stall is not hidden);
//! 3. cold first use of a token (a store read and the secret's verification);
//! 4. the server's resident memory.
//!
//! `--cold N` measures only what a restart costs: N tokens stored as patrol stores them
//! (salted digests) and, beside them, 200 stored as patrol did before (argon2id at the
//! default cost), each used for the first time after a restart, `--connections` at a
//! time.
//!
//! `--gateway-cost` measures only what patrol costs a gateway: nginx and Envoy in front
//! of a small upstream, without patrol and with it as docs/gateway/ configures them
//! (`load/gateway.rs`).
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p patrol-benches --bin load                       # SQLite, small world
//! cargo run --release -p patrol-benches --bin load -- --cold 10000        # restart cost
//! cargo run --release -p patrol-benches --bin load -- --gateway-cost     # nginx, Envoy
//! cargo run --release -p patrol-benches --bin load -- --scale postgres://postgres@127.0.0.1/patrol_load
//! ```
//!
//! `--scale URL` first fills that (empty) Postgres database with 1 M tokens, 100 k
//! namespaces and 1 M memberships. Every phase is bounded by `--seconds` and by
//! `--max-requests`; everything stays on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a measuring tool: a broken assumption should stop it loudly"
)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

// A module of its own directory, beside this binary (not a binary of its own).
#[path = "load/gateway.rs"]
mod gateway;
// The gateway suite's wiring of docs/gateway/, which `--gateway-cost` starts as well.
#[path = "../../../tests/gateway/gateways.rs"]
#[allow(
    dead_code,
    reason = "shared with tests/gateway, which starts every gateway"
)]
mod gateways;

use gateways::free_port;

const ADMIN_KEY: &str = "load-harness-admin-key-0123456789";

#[derive(Debug)]
struct Options {
    binary: String,
    scale: Option<String>,
    seconds: u64,
    connections: usize,
    max_requests: u64,
    /// Only compare decisions with last-use tracking off and on.
    usage: bool,
    /// Only measure first uses after a restart, of this many tokens.
    cold: Option<usize>,
    /// Only measure nginx and Envoy with and without patrol (`gateway.rs`).
    gateway_cost: bool,
}

fn options() -> Options {
    let mut o = Options {
        binary: "target/release/patrol".to_owned(),
        scale: None,
        seconds: 10,
        connections: 32,
        max_requests: 5_000_000,
        usage: false,
        cold: None,
        gateway_cost: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--binary" => o.binary = value(),
            "--scale" => o.scale = Some(value()),
            "--seconds" => o.seconds = value().parse().unwrap(),
            "--connections" => o.connections = value().parse().unwrap(),
            "--max-requests" => o.max_requests = value().parse().unwrap(),
            "--usage" => o.usage = true,
            "--cold" => o.cold = Some(value().parse().unwrap()),
            "--gateway-cost" => o.gateway_cost = true,
            other => panic!(
                "unknown argument {other}; use --binary PATH --scale POSTGRES_URL --seconds N --connections N --max-requests N --usage --cold N --gateway-cost"
            ),
        }
    }
    o
}

/// One HTTP/1.1 request as the harness sends it.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Call {
    fn get(path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn post(path: &str, body: &serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            path: path.to_owned(),
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-patrol-key", ADMIN_KEY.to_owned()),
            ],
            body: Bytes::from(body.to_string()),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header("host", "127.0.0.1");
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request.body(Full::new(self.body.clone())).unwrap()
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(address: SocketAddr) -> Sender {
    let stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// Sends one call; returns the status and the body.
async fn send(sender: &mut Sender, call: &Call) -> (u16, Bytes) {
    sender.ready().await.unwrap();
    let response = sender.send_request(call.request()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

async fn once(address: SocketAddr, call: &Call) -> (u16, serde_json::Value) {
    let mut sender = connect(address).await;
    let (status, body) = send(&mut sender, call).await;
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

/// Closed loop: `connections` clients send back to back until the time or the count
/// is up. Returns requests per second; any answer but `expect` stops the run.
async fn saturate(address: SocketAddr, call: &Call, expect: u16, o: &Options) -> f64 {
    let (requests, elapsed) = closed_loop(address, call, expect, o).await;
    requests as f64 / elapsed.as_secs_f64()
}

/// `saturate`'s loop: returns how many requests were answered, and in what time.
async fn closed_loop(
    address: SocketAddr,
    call: &Call,
    expect: u16,
    o: &Options,
) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.connections {
        let (call, done) = (call.clone(), Arc::clone(&done));
        let max = o.max_requests;
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(address).await;
            while Instant::now() < deadline && done.load(Ordering::Relaxed) < max {
                let (status, body) = send(&mut sender, &call).await;
                assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (done.load(Ordering::Relaxed), started.elapsed())
}

/// Open loop at `rate` requests per second. Returns each request's latency, from when
/// it was sent, and how late it was sent (tokio's timer wakes within about a
/// millisecond; a client that falls behind shows here rather than hide a stall).
async fn at_rate(
    address: SocketAddr,
    call: &Call,
    rate: f64,
    o: &Options,
) -> (Vec<Duration>, Vec<Duration>) {
    let workers = o.connections.min(16);
    let interval = Duration::from_secs_f64(workers as f64 / rate);
    let count = ((rate * o.seconds as f64) as u64).min(o.max_requests) / workers as u64;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let call = call.clone();
        let offset = interval.mul_f64(w as f64 / workers as f64);
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(address).await;
            let mut latencies = Vec::with_capacity(count as usize);
            let mut lags = Vec::with_capacity(count as usize);
            for k in 0..count {
                let due = start + offset + interval.mul_f64(k as f64);
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                let (status, _) = send(&mut sender, &call).await;
                assert_eq!(status, 200);
                latencies.push(sent.elapsed());
                lags.push(sent.saturating_duration_since(due));
            }
            (latencies, lags)
        }));
    }
    let (mut all, mut all_lags) = (Vec::new(), Vec::new());
    for task in tasks {
        let (latencies, lags) = task.await.unwrap();
        all.extend(latencies);
        all_lags.extend(lags);
    }
    all.sort();
    all_lags.sort();
    (all, all_lags)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(o: &Options, database_url: &str, address: SocketAddr) -> Server {
    start_with(o, database_url, address, &[])
}

/// Starts patrol with `env` over the harness's settings.
fn start_with(
    o: &Options,
    database_url: &str,
    address: SocketAddr,
    env: &[(&str, &str)],
) -> Server {
    let child = Command::new(&o.binary)
        .arg("serve")
        .env("PATROL_TRACK_USAGE", "true")
        .env("PATROL_LISTEN", address.to_string())
        .env("PATROL_GRPC_LISTEN", grpc_address(address).to_string())
        .env("PATROL_DATABASE_URL", database_url)
        .env("PATROL_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): run `cargo build --release` first",
                o.binary
            )
        });
    Server(child)
}

async fn wait_ready(address: SocketAddr) {
    for _ in 0..600 {
        if let Ok(stream) = TcpStream::connect(address).await {
            drop(stream);
            if once(address, &Call::get("/readyz")).await.0 == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("patrol did not become ready");
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The small world: a group, a project, a developer, and tokens made through the API.
async fn small_world(address: SocketAddr, cold: usize) -> (String, Vec<String>) {
    let batch = serde_json::json!({
        "users": [{"id": 1, "username": "alice"}],
        "groups": [{"id": 1, "path": "acme", "name": "Acme", "visibility": "private"}],
        "projects": [{"id": 1, "namespace": {"kind": "group", "id": 1}, "path": "app", "name": "App", "visibility": "private"}],
        "memberships": [{"group_id": 1, "user_id": 1, "access_level": 30}]
    });
    assert_eq!(
        once(address, &Call::post("/v1/directory/batch", &batch))
            .await
            .0,
        200
    );
    let mut tokens = Vec::new();
    let expires = patrol::clock::rfc3339(patrol::clock::now() + 30 * 86_400)[..10].to_owned();
    for i in 0..=cold {
        let body = serde_json::json!({"name": format!("load {i}"), "expires_at": expires, "scopes": ["api"]});
        let (status, answer) = once(address, &Call::post("/v1/users/1/tokens", &body)).await;
        assert_eq!(status, 201, "{answer}");
        tokens.push(answer["token"].as_str().unwrap().to_owned());
    }
    let warm = tokens.remove(0);
    (warm, tokens)
}

/// Fills an empty Postgres database: 100 k users, 10 k groups and 90 k projects, 1 M
/// memberships, 1 M legacy tokens (all with the same secret). Returns the tokens the
/// run uses: one to keep warm, and ones used once for the first time.
async fn big_world(o: &Options, url: &str) -> (String, Vec<String>) {
    let migrated = Command::new(&o.binary)
        .arg("migrate")
        .env("PATROL_DATABASE_URL", url)
        .status()
        .unwrap();
    assert!(migrated.success());
    let secret = "S".repeat(30);
    let hash = patrol::secret::digest_secret(&secret).unwrap();
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let statements = [
        "INSERT INTO users (id, username, blocked, admin)
         SELECT i, 'user' || i, FALSE, FALSE FROM generate_series(1, 100000) i",
        "INSERT INTO groups (id, parent_id, path, name, visibility, plan)
         SELECT i, NULL, 'g' || i, 'G' || i, 'private', 'free' FROM generate_series(1, 1000) i",
        "INSERT INTO groups (id, parent_id, path, name, visibility, plan)
         SELECT i, ((i - 1) % 1000) + 1, 'g' || i, 'G' || i, 'private', NULL
         FROM generate_series(1001, 10000) i",
        "INSERT INTO projects (id, namespace_kind, namespace_id, path, name, visibility, features)
         SELECT p, 'group', ((p - 1) % 10000) + 1, 'p' || p, 'P' || p, 'private', '{}'
         FROM generate_series(1, 90000) p",
        // Each user: 2 groups and 8 projects, all distinct.
        "INSERT INTO group_members (group_id, user_id, access_level)
         SELECT (((i % 100000) * 7 + i / 100000) % 10000) + 1, (i % 100000) + 1, 30
         FROM generate_series(0, 199999) i",
        "INSERT INTO project_members (project_id, user_id, access_level)
         SELECT (((i % 100000) * 13 + i / 100000) % 90000) + 1, (i % 100000) + 1, 20
         FROM generate_series(0, 799999) i",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO tokens (user_id, kind, name, description, lookup_id, secret_hash, scopes,
             granular_scopes, allowed_ips, created_at, expires_at, revoked, last_used_ips)
         SELECT (i % 100000) + 1, 'legacy', 't' || i, '', 'L' || lpad(i::text, 11, '0'), $1,
             '[\"api\"]', '[]', '[]', 0, '2099-01-01', FALSE, '[]'
         FROM generate_series(1, 1000000) i",
    )
    .bind(&hash)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    // Tokens 100000, 200000, ... belong to user 1, a member of projects 1 to 8.
    let token = |i: u64| patrol::secret::assemble("glpat-", &format!("L{i:011}"), &secret);
    let warm = token(100_000);
    let cold = (2..=10).map(|k| token(k * 100_000)).collect();
    (warm, cold)
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(o));
}

async fn run(o: Options) {
    let address = free_port();
    let dir = std::env::temp_dir().join(format!("patrol-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if o.usage {
        usage(&o, address, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    if let Some(n) = o.cold {
        cold(&o, address, &dir, n).await;
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    if o.gateway_cost {
        gateway::cost(&o, address, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let (database_url, world) = match &o.scale {
        Some(url) => (
            url.clone(),
            "1 M tokens, 100 k namespaces, 1 M memberships (Postgres)",
        ),
        None => (
            format!("sqlite://{}", dir.join("patrol.db").display()),
            "1 user, 1 group, 1 project, 10 tokens (SQLite)",
        ),
    };
    let seeded = match &o.scale {
        Some(url) => {
            let started = Instant::now();
            let seeded = big_world(&o, url).await;
            eprintln!("generated the world in {:.0?}", started.elapsed());
            Some(seeded)
        }
        None => None,
    };
    let (warm, cold) = match seeded {
        Some(seeded) => seeded,
        None => {
            // Tokens made through the API are cached where they were made: a restart
            // below makes their first use cold.
            let server = start(&o, &database_url, address);
            wait_ready(address).await;
            let made = small_world(address, 9).await;
            drop(server);
            made
        }
    };
    let started = Instant::now();
    let server = start(&o, &database_url, address);
    wait_ready(address).await;
    let startup = started.elapsed();

    let authorize = |token: &str| {
        Call::post(
            "/v1/authorize",
            &serde_json::json!({"token": token, "permission": "read_issue",
                                "boundary": {"type": "project", "id": 1}}),
        )
    };
    let gateway = Call::get("/v1/gateway/check")
        .header("x-patrol-key", ADMIN_KEY)
        .header("x-original-method", "GET")
        .header("x-original-uri", "/api/v4/projects/1/issues")
        .header("private-token", &warm);
    let (status, decision) = once(address, &authorize(&warm)).await;
    assert_eq!(
        (status, decision["reason"].as_str()),
        (200, Some("granted")),
        "{decision}"
    );

    // Cold first use, before anything else warms the store's pages for these rows.
    let mut first = Vec::new();
    let mut second = Vec::new();
    for token in &cold {
        let mut sender = connect(address).await;
        let call = authorize(token);
        let t = Instant::now();
        let (status, body) = send(&mut sender, &call).await;
        first.push(t.elapsed());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let t = Instant::now();
        send(&mut sender, &call).await;
        second.push(t.elapsed());
    }
    first.sort();
    second.sort();

    let trivial = saturate(address, &Call::get("/healthz"), 200, &o).await;
    let decisions = saturate(address, &authorize(&warm), 200, &o).await;
    let checks = saturate(address, &gateway, 200, &o).await;
    let grpc_checks = saturate_grpc(grpc_address(address), &warm, &o).await;
    let (latencies, lags) = at_rate(address, &authorize(&warm), decisions / 2.0, &o).await;
    let rss = resident_kib(server.0.id());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
    println!(
        "world: {world}; server ready in {:.1} s",
        startup.as_secs_f64()
    );
    println!(
        "{} s per phase, {} connections, loopback, client and server on the same {} cores",
        o.seconds,
        o.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| `GET /healthz` (trivial), saturated | {trivial:.0} req/s |");
    println!("| `POST /v1/authorize`, warm token, saturated | {decisions:.0} req/s |");
    println!(
        "| **authorize / trivial** | **{:.1}%** |",
        decisions / trivial * 100.0
    );
    println!("| `GET /v1/gateway/check`, warm token, saturated | {checks:.0} req/s |");
    println!("| gateway / trivial | {:.1}% |", checks / trivial * 100.0);
    println!(
        "| Envoy's gRPC ext_authz `Check`, warm token, saturated | {grpc_checks:.0} req/s ({:.1}% of trivial, {:.1}% of the HTTP check) |",
        grpc_checks / trivial * 100.0,
        grpc_checks / checks * 100.0
    );
    println!(
        "| authorize at {:.0} req/s (half of saturation): p50 / p99 / max | {} / {} / {} ({} requests) |",
        decisions / 2.0,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        latencies.len()
    );
    println!(
        "| the same: how late the client sent them, p50 / p99 | {} / {} |",
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99))
    );
    println!(
        "| first use of a token made through the API (store read + digest): median / max | {} / {} ({} tokens) |",
        ms(percentile(&first, 0.5)),
        ms(*first.last().unwrap()),
        first.len()
    );
    println!(
        "| the same tokens' second use: median | {} |",
        ms(percentile(&second, 0.5))
    );
    println!(
        "| server resident memory after the run | {:.1} MiB |",
        rss as f64 / 1024.0
    );
}

/// Decisions with last-use tracking off and on, alternately, on the small world: each
/// decision names a client address, so that every one is noted. Tracking's cost is the
/// ratio of the two.
async fn usage(o: &Options, address: SocketAddr, dir: &std::path::Path) {
    let database_url = format!("sqlite://{}", dir.join("patrol.db").display());
    let server = start(o, &database_url, address);
    wait_ready(address).await;
    let (warm, _) = small_world(address, 0).await;
    drop(server);
    let call = Call::post(
        "/v1/authorize",
        &serde_json::json!({"token": warm, "permission": "read_issue",
                            "boundary": {"type": "project", "id": 1}, "client_ip": "10.1.2.3"}),
    );
    let mut rates = [Vec::new(), Vec::new()];
    for _round in 0..3 {
        for track in [false, true] {
            let track_usage = [("PATROL_TRACK_USAGE", if track { "true" } else { "false" })];
            let server = start_with(o, &database_url, address, &track_usage);
            wait_ready(address).await;
            // Warm the token's verification before measuring.
            assert_eq!(once(address, &call).await.0, 200);
            rates[usize::from(track)].push(saturate(address, &call, 200, o).await);
            drop(server);
        }
    }
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (off, on) = (mean(&rates[0]), mean(&rates[1]));
    println!(
        "{} s per phase, {} connections, 3 rounds of off then on, loopback, client and server on the same {} cores",
        o.seconds,
        o.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| tracking | `POST /v1/authorize` req/s per round | mean |");
    println!("|---|---|---|");
    let list = |r: &[f64]| {
        r.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("| off | {} | {off:.0} |", list(&rates[0]));
    println!("| on | {} | {on:.0} |", list(&rates[1]));
    println!("| **on / off** | | **{:.1}%** |", on / off * 100.0);
}

/// How many tokens stored as argon2id the cold run uses beside the digests.
const ARGON2_TOKENS: usize = 200;

/// First uses after a restart: `n` tokens stored as salted digests, and
/// `ARGON2_TOKENS` stored as argon2id hashes at the default cost (as before digests),
/// written straight into the store, then each used once by `--connections` clients.
async fn cold(o: &Options, address: SocketAddr, dir: &std::path::Path, n: usize) {
    let database_url = format!("sqlite://{}", dir.join("patrol.db").display());
    let server = start(o, &database_url, address);
    wait_ready(address).await;
    small_world(address, 0).await;
    drop(server);

    let secret = |i: usize| format!("{i:0>30}");
    let digests: Vec<(String, String)> = (0..n)
        .map(|i| {
            let hash = patrol::secret::digest_secret(&secret(i)).unwrap();
            (format!("D{i:011}"), hash)
        })
        .collect();
    let params = patrol::secret::Argon2Params::default();
    let argon2: Vec<(String, String)> = (0..ARGON2_TOKENS)
        .map(|i| {
            let hash = patrol::secret::hash_secret(params, &secret(i)).unwrap();
            (format!("A{i:011}"), hash)
        })
        .collect();
    let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for (lookup_id, hash) in digests.iter().chain(&argon2) {
        sqlx::query(
            "INSERT INTO tokens (user_id, kind, name, description, lookup_id, secret_hash, scopes,
                 granular_scopes, allowed_ips, created_at, expires_at, revoked, last_used_ips)
             VALUES (1, 'legacy', $1, '', $1, $2, '[\"api\"]', '[]', '[]', 0, '2099-01-01', FALSE, '[]')",
        )
        .bind(lookup_id)
        .bind(hash)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
    let tokens = |rows: &[(String, String)]| -> Vec<String> {
        rows.iter()
            .enumerate()
            .map(|(i, (lookup_id, _))| patrol::secret::assemble("glpat-", lookup_id, &secret(i)))
            .collect()
    };

    let server = start(o, &database_url, address);
    wait_ready(address).await;
    let (digest_wall, digest_times) = first_uses(address, tokens(&digests), o.connections).await;
    let (argon2_wall, argon2_times) = first_uses(address, tokens(&argon2), o.connections).await;
    drop(server);

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "first use of each token after a restart (SQLite), {} connections, loopback, client and server on the same {} cores",
        o.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| tokens stored as | first uses | all of them | per second | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    for (label, wall, times) in [
        (
            "salted HMAC-SHA256 digest (now)",
            digest_wall,
            &digest_times,
        ),
        (
            "argon2id m=19456,t=2,p=1 (before)",
            argon2_wall,
            &argon2_times,
        ),
    ] {
        println!(
            "| {label} | {} | {:.2} s | {:.0} | {} | {} | {} |",
            times.len(),
            wall.as_secs_f64(),
            times.len() as f64 / wall.as_secs_f64(),
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99)),
            ms(*times.last().unwrap()),
        );
    }
}

/// Uses each token once, `connections` at a time, each client on its own connection.
/// Returns the time all of them took and each one's latency, sorted. Any answer but a
/// grant stops the run.
async fn first_uses(
    address: SocketAddr,
    tokens: Vec<String>,
    connections: usize,
) -> (Duration, Vec<Duration>) {
    let shares: Vec<Vec<String>> = (0..connections)
        .map(|c| {
            tokens
                .iter()
                .skip(c)
                .step_by(connections)
                .cloned()
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(address).await;
            let mut times = Vec::with_capacity(share.len());
            for token in share {
                let call = Call::post(
                    "/v1/authorize",
                    &serde_json::json!({"token": token, "permission": "read_issue",
                                        "boundary": {"type": "project", "id": 1}}),
                );
                let t = Instant::now();
                let (status, body) = send(&mut sender, &call).await;
                times.push(t.elapsed());
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(answer["reason"], "granted", "{answer}");
            }
            times
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    (wall, all)
}

/// Where the harness's patrol serves gRPC: the next port after its HTTP one.
fn grpc_address(http: SocketAddr) -> SocketAddr {
    SocketAddr::new(http.ip(), http.port().wrapping_add(1))
}

/// Closed loop over Envoy's gRPC ext_authz: `connections` clients, each on a channel of
/// its own, ask `Check` for `GET /api/v4/projects/1/issues` with `token` back to back.
/// Returns requests per second; any answer but OK stops the run.
async fn saturate_grpc(address: SocketAddr, token: &str, o: &Options) -> f64 {
    use envoy_types::ext_authz::v3::pb::CheckRequest;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;

    let check = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".to_owned(),
                    path: "/api/v4/projects/1/issues".to_owned(),
                    headers: [("private-token".to_owned(), token.to_owned())].into(),
                    ..HttpRequest::default()
                }),
                ..Request::default()
            }),
            ..AttributeContext::default()
        }),
    };
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.connections {
        let (check, done) = (check.clone(), Arc::clone(&done));
        let max = o.max_requests;
        tasks.push(tokio::spawn(async move {
            let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = AuthorizationClient::new(channel);
            while Instant::now() < deadline && done.load(Ordering::Relaxed) < max {
                let mut request = tonic::Request::new(check.clone());
                request
                    .metadata_mut()
                    .insert("x-patrol-key", ADMIN_KEY.parse().unwrap());
                let answer = client.check(request).await.unwrap().into_inner();
                assert_eq!(
                    answer.status.as_ref().map(|s| s.code),
                    Some(0),
                    "{answer:?}"
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
