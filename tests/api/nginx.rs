//! A real nginx in front of a small upstream, asking patrol through `auth_request`: an
//! allowed request reaches the upstream with patrol's identity headers, denied ones
//! never do and get the right status, and a patrol that is down makes nginx deny.
//!
//! nginx comes from `PATROL_TEST_NGINX`, else `nginx` on the `PATH` or `/usr/sbin/nginx`
//! (`.ci/run` installs Debian's `nginx-light`). Without it this test fails: it is never
//! skipped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, in_days, random_suffix, spawn};

on_both_backends!(nginx_enforces_patrols_decisions);

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

fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PATROL_TEST_NGINX") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!("nginx is needed: install it (apt-get install nginx-light), or run .ci/run")
    })
}

struct Nginx {
    child: Child,
    dir: PathBuf,
    address: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM: the master stops its workers (a KILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The configuration a deployment would use, with patrol and the upstream on loopback.
fn config(dir: &Path, listen: SocketAddr, patrol: &str, key: &str, upstream: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        r#"
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen {listen};
        location /api/ {{
            auth_request /_patrol;
            auth_request_set $patrol_user $upstream_http_x_patrol_user_id;
            auth_request_set $patrol_token $upstream_http_x_patrol_token_id;
            auth_request_set $patrol_accepted $upstream_http_x_accepted_permissions;
            auth_request_set $patrol_status $upstream_status;
            add_header X-Accepted-Permissions $patrol_accepted always;
            # auth_request turns any answer but 2xx, 401 and 403 into a 500.
            error_page 500 = @patrol_error;
            proxy_set_header X-Patrol-User-Id $patrol_user;
            proxy_set_header X-Patrol-Token-Id $patrol_token;
            proxy_pass http://{upstream};
        }}
        location = /_patrol {{
            internal;
            proxy_pass {patrol}/v1/gateway/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Patrol-Key "{key}";
        }}
        location @patrol_error {{
            # 404 from patrol: the boundary does not exist or is not the user's to see.
            if ($patrol_status = 404) {{ return 404; }}
            # patrol down or failing: deny.
            return 503;
        }}
    }}
}}
"#
    )
}

async fn start_nginx(patrol: &str, key: &str, upstream: SocketAddr) -> Nginx {
    let dir = std::env::temp_dir().join(format!("patrol-nginx-{}", random_suffix()));
    for sub in [
        "tmp/body",
        "tmp/proxy",
        "tmp/fastcgi",
        "tmp/uwsgi",
        "tmp/scgi",
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Workers may run as an unprivileged user: let them write their temp files.
    Command::new("chmod")
        .args(["-R", "a+rwx"])
        .arg(&dir)
        .status()
        .unwrap();
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(&dir, address, patrol, key, upstream)).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let nginx = Nginx {
        child,
        dir,
        address,
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return nginx;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not start:\n{log}");
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
}

async fn get(nginx: &Nginx, method: reqwest::Method, path: &str, token: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{path}", nginx.address))
        // A client cannot pass itself off as someone: nginx sets these from patrol.
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
    let app: TestApp = spawn(backend).await;
    app.seed().await;
    let key = app
        .post(
            "/v1/service-keys",
            json!({"name": "nginx", "role": "authorize"}),
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
    let nginx = start_nginx(&app.address, &key, upstream).await;
    let hits = || seen.lock().unwrap().len();
    use reqwest::Method;

    let allowed = get(
        &nginx,
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
        let reply = get(&nginx, method.clone(), path, *token).await;
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
        &nginx,
        Method::POST,
        "/api/v4/projects/42/issues",
        Some(&alice),
    )
    .await;
    assert_eq!(forbidden.headers["x-accepted-permissions"], "create_issue");

    // patrol goes away: nginx denies.
    app.finish().await;
    let down = get(
        &nginx,
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
