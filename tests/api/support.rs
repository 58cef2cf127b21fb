//! Starting the real application on a random port, on a fresh database of either
//! backend, and talking HTTP to it.
//!
//! Postgres: each test creates its own database next to `PATROL_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and drops it at the end. A
//! Postgres that cannot be reached fails the test: no backend is ever skipped.

use std::path::PathBuf;
use std::sync::Arc;

use patrol::app::Application;
use patrol::config::{AdminKey, Settings};
use patrol::secret::Argon2Params;
use patrol::service::Service;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const ADMIN_KEY: &str = "test-bootstrap-admin-key-0123456789";

/// Cheap argon2 for tests; the defaults are covered by unit tests.
pub const TEST_ARGON2: Argon2Params = Argon2Params {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};

/// Runs one async test function on both backends, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await;
            }
        }
    )*};
}

pub fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh, empty database of one backend.
#[derive(Debug)]
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Postgres: the database to drop, and where to connect to drop it.
    pg: Option<(String, String)>,
    /// SQLite: the directory holding the file.
    dir: Option<PathBuf>,
}

pub fn postgres_base_url() -> String {
    std::env::var("PATROL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("patrol-test-{}", random_suffix()));
                std::fs::create_dir_all(&dir).unwrap();
                Self {
                    backend,
                    url: format!("sqlite://{}", dir.join("patrol.db").display()),
                    pg: None,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = postgres_base_url();
                let name = format!("patrol_test_{}", random_suffix());
                let mut admin = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
                    panic!(
                        "cannot reach Postgres at {base} ({e}): start it, or set PATROL_TEST_DATABASE_URL"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                let (prefix, _) = base.rsplit_once('/').unwrap();
                Self {
                    backend,
                    url: format!("{prefix}/{name}"),
                    pg: Some((base, name)),
                    dir: None,
                }
            }
        }
    }

    pub async fn remove(self) {
        if let Some((base, name)) = &self.pg {
            let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn settings(db: &TestDb) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        admin_key: Some(AdminKey(ADMIN_KEY.to_owned())),
        argon2: TEST_ARGON2,
        // Tests call faster than any caller should; tests/api/limits.rs turns it on.
        rate_limit: None,
        ..Settings::default()
    }
}

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    /// Envoy's gRPC ext_authz, when the settings ask for it.
    pub grpc: Option<std::net::SocketAddr>,
    pub client: reqwest::Client,
    pub service: Arc<Service>,
    pub db: Option<TestDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Starts patrol on a fresh database of `backend`.
pub async fn spawn(backend: Backend) -> TestApp {
    spawn_on(TestDb::new(backend).await).await
}

/// Starts patrol on an existing database (a restart).
pub async fn spawn_on(db: TestDb) -> TestApp {
    spawn_with(db, |_| {}).await
}

/// Starts patrol on an existing database with changed settings.
pub async fn spawn_with(db: TestDb, change: impl FnOnce(&mut Settings)) -> TestApp {
    let mut app = spawn_replica(&db, change).await;
    app.db = Some(db);
    app
}

/// Starts another patrol on a database some other `TestApp` owns (a replica); stop it
/// with `stop_replica`.
pub async fn spawn_replica(db: &TestDb, change: impl FnOnce(&mut Settings)) -> TestApp {
    let catalog = Arc::new(patrol::catalog::load_embedded().unwrap());
    let mut settings = settings(db);
    change(&mut settings);
    let app = Application::build(&settings, catalog, true).await.unwrap();
    let address = format!("http://{}", app.local_addr().unwrap());
    let grpc = app.grpc_addr();
    let service = Arc::clone(app.service());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        grpc,
        client: reqwest::Client::new(),
        service,
        db: None,
        stop: Some(stop),
        task: Some(task),
    }
}

/// An answer: status, headers and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The `field` of an error body.
    pub fn field(&self) -> &str {
        self.body["field"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// Stops the server and returns its database, for a restart.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.db.take().unwrap()
    }

    /// Stops a server started by `spawn_replica`.
    pub async fn stop_replica(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Stops the server and deletes its database.
    pub async fn finish(self) {
        self.stop().await.remove().await;
    }

    /// Calls an endpoint with a service key (or none) and a JSON body (or none).
    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let key = key.map(|k| ("X-Patrol-Key", k));
        self.call_with(method, path, key.as_slice(), body).await
    }

    /// Calls an endpoint with these headers and a JSON body (or none).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let method_name = method.to_string();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        note_status(&method_name, path, status);
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// Calls an endpoint as the bootstrap admin.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Some(ADMIN_KEY), method, path, body).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Pushes a small world:
    /// - users alice (1), bob (2), root (3, admin), carol (4, blocked);
    /// - group `acme` (7, private) with subgroup `acme/web` (8, private), and group `oss`
    ///   (9, public, premium);
    /// - projects `acme/app` (42), `acme/web/site` (43, issues private), `oss/lib`
    ///   (44, public), and alice's personal `alice/notes` (45);
    /// - alice developer on acme, bob guest on acme/app, carol developer on acme.
    pub async fn seed(&self) {
        let answer = self
            .post(
                "/v1/directory/batch",
                json!({
                    "users": [
                        {"id": 1, "username": "alice"},
                        {"id": 2, "username": "bob"},
                        {"id": 3, "username": "root", "admin": true},
                        {"id": 4, "username": "carol", "state": "blocked"}
                    ],
                    "groups": [
                        {"id": 7, "path": "acme", "name": "Acme", "visibility": "private"},
                        {"id": 8, "parent_id": 7, "path": "web", "name": "Web", "visibility": "private"},
                        {"id": 9, "path": "oss", "name": "OSS", "visibility": "public", "plan": "premium"}
                    ],
                    "projects": [
                        {"id": 42, "namespace": {"kind": "group", "id": 7}, "path": "app", "name": "App", "visibility": "private"},
                        {"id": 43, "namespace": {"kind": "group", "id": 8}, "path": "site", "name": "Site", "visibility": "private",
                         "features": {"issues": "private"}},
                        {"id": 44, "namespace": {"kind": "group", "id": 9}, "path": "lib", "name": "Lib", "visibility": "public"},
                        {"id": 45, "namespace": {"kind": "user", "id": 1}, "path": "notes", "name": "Notes", "visibility": "private"}
                    ],
                    "memberships": [
                        {"group_id": 7, "user_id": 1, "access_level": 30},
                        {"project_id": 42, "user_id": 2, "access_level": 10},
                        {"group_id": 7, "user_id": 4, "access_level": 30}
                    ]
                }),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }

    /// Creates a token for a user and returns (id, plaintext).
    pub async fn token(&self, user_id: u64, body: Value) -> (u64, String) {
        let answer = self
            .post(&format!("/v1/users/{user_id}/tokens"), body)
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        (
            answer.body["id"].as_u64().unwrap(),
            answer.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// A fine-grained token of alice over `acme` (group 7) with these permissions.
    pub async fn alice_token(&self, permissions: &[&str]) -> (u64, String) {
        self.token(
            1,
            json!({"name": "alice", "expires_at": in_days(30),
                   "granular_scopes": [{"access": "all_memberships", "permissions": permissions}]}),
        )
        .await
    }

    /// `/v1/authorize` for a permission on a project; returns the decision body.
    pub async fn decide(&self, token: &str, permission: &str, project: u64) -> Value {
        let answer = self
            .post(
                "/v1/authorize",
                json!({"token": token, "permission": permission,
                       "boundary": {"type": "project", "id": project}}),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.body
    }

    /// The reason of a decision.
    pub async fn reason(&self, token: &str, permission: &str, project: u64) -> String {
        self.decide(token, permission, project).await["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// An hour from now, RFC 3339 (a job token's expiry).
pub fn in_an_hour() -> String {
    patrol::clock::rfc3339(patrol::clock::now() + 3600)
}

/// A date `days` from today, `YYYY-MM-DD`.
pub fn in_days(days: i64) -> String {
    let today = patrol::clock::date_of(patrol::clock::now());
    patrol::clock::format_date(today + time::Duration::days(days))
}

/// The real `patrol` binary, serving `db` on a free loopback port with the tests' admin
/// key and cheap argon2, `env` on top, its output to `output`. Returns it and its base
/// URL once `/readyz` answers.
pub async fn start_binary(
    db: &TestDb,
    env: &[(&str, &str)],
    output: Option<std::fs::File>,
) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
    command
        .arg("serve")
        .env("PATROL_LISTEN", format!("127.0.0.1:{port}"))
        .env("PATROL_DATABASE_URL", &db.url)
        .env("PATROL_ADMIN_KEY", ADMIN_KEY)
        .env("PATROL_ARGON2", "m=256,t=1,p=1")
        .envs(env.iter().copied());
    match output {
        Some(file) => command.stdout(file.try_clone().unwrap()).stderr(file),
        None => command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    };
    let child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "patrol did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (child, base)
}

/// Appends `METHOD path status` to the file `PATROL_SEEN_STATUSES` names, when it names
/// one: `tests/schema/coverage.py` holds what the suites saw against the statuses the
/// OpenAPI document promises.
pub fn note_status(method: &str, path: &str, status: StatusCode) {
    use std::io::Write;
    let Ok(file) = std::env::var("PATROL_SEEN_STATUSES") else {
        return;
    };
    let line = format!("{method} {path} {}\n", status.as_u16());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot note a status in {file}: {e}");
    }
}
