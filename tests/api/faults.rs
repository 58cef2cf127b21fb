//! Faults: the store going away under load (Postgres behind a proxy the test cuts), and
//! patrol killed in the middle of writes (the real binary, SIGKILL).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{
    ADMIN_KEY, Backend, TestApp, TestDb, in_an_hour, in_days, spawn_with, start_binary,
};

/// A TCP proxy in front of Postgres that the test can cut (every connection closed, new
/// ones dropped at once) and restore.
struct Proxy {
    address: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (accept_up, accept_links) = (Arc::clone(&up), Arc::clone(&links));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let target = target.clone();
                accept_links.lock().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self {
            address,
            up,
            links,
            task,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

/// `postgres://user@host:port/db` with host:port replaced.
fn through(url: &str, address: std::net::SocketAddr) -> String {
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (_, db) = rest.split_once('/').unwrap();
    format!("{scheme_user}@{address}/{db}")
}

/// One answer under load: sent during the outage, by which caller, status, allowed.
type Answered = (bool, &'static str, u16, bool);

async fn decision(app: &TestApp, token: &str) -> (u16, bool) {
    let answer = app
        .post(
            "/v1/authorize",
            json!({"token": token, "permission": "read_issue",
                   "boundary": {"type": "project", "id": 42}}),
        )
        .await;
    (answer.status.as_u16(), answer.body["allowed"] == true)
}

/// The design's bar: store down, every answer is a deny or a 503, never an allow (a
/// replica that cannot hear the others cannot know what they revoked); store back,
/// patrol recovers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_under_load_never_allows_and_heals_without_a_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let real = db.url.trim_start_matches("postgres://").to_owned();
    let target = real
        .split_once('@')
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .0
        .to_owned();
    let proxy = Proxy::start(target).await;
    let proxied = through(&db.url, proxy.address);
    let app = Arc::new(spawn_with(db, move |s| s.database_url = proxied).await);
    app.seed().await;
    let (_, alive) = app.alice_token(&["read_issue"]).await;
    let (revoked_id, revoked) = app.alice_token(&["read_issue"]).await;
    assert_eq!(decision(&app, &alive).await, (200, true));
    assert_eq!(decision(&app, &revoked).await, (200, true));
    assert_eq!(
        app.delete(&format!("/v1/tokens/{revoked_id}")).await.status,
        204
    );
    let garbage = "glpat-thisisnotatokenatallbutlooksclosetoone00";

    // Load: four callers in a loop, each answer logged with the phase it was sent in.
    let outage = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let mut load = Vec::new();
    for (name, token) in [
        ("alive", alive.clone()),
        ("revoked", revoked.clone()),
        ("garbage", garbage.to_owned()),
    ] {
        let (app, outage, stop, log) = (
            Arc::clone(&app),
            Arc::clone(&outage),
            Arc::clone(&stop),
            Arc::clone(&log),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let during = outage.load(Ordering::SeqCst);
                let (status, allowed) = decision(&app, &token).await;
                log.lock().push((during, name, status, allowed));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    outage.store(true, Ordering::SeqCst);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "not ready while the store is away");
    // What else answers from memory refuses as well: the gateway and the token API.
    let gate = app
        .call_with(
            reqwest::Method::GET,
            "/v1/gateway/check",
            &[
                ("X-Patrol-Key", ADMIN_KEY),
                ("PRIVATE-TOKEN", &alive),
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/api/v4/projects/42/issues"),
            ],
            None,
        )
        .await;
    assert_eq!(gate.status, 503, "{}", gate.text);
    let user = app
        .call_with(
            reqwest::Method::GET,
            "/api/v4/user",
            &[("PRIVATE-TOKEN", &alive)],
            None,
        )
        .await;
    assert_eq!(user.status, 503, "{}", user.text);

    proxy.restore();
    outage.store(false, Ordering::SeqCst);
    let started = Instant::now();
    while decision(&app, &alive).await != (200, true) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "patrol did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_in = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }

    let log = log.lock().clone();
    let mut counts: BTreeMap<Answered, usize> = BTreeMap::new();
    for entry in &log {
        *counts.entry(*entry).or_default() += 1;
    }
    eprintln!(
        "answers (during outage, caller, status, allowed): {counts:?}; recovered in {recovered_in:?}"
    );
    assert!(
        !log.iter()
            .any(|(_, name, _, allowed)| *allowed && *name != "alive"),
        "a revoked or made-up token was allowed: {counts:?}"
    );
    // During the outage, once the loss was noticed (the first 503), nothing is allowed.
    let during: Vec<_> = log.iter().filter(|e| e.0 && e.1 == "alive").collect();
    let first_503 = during
        .iter()
        .position(|e| e.2 == 503)
        .expect("the outage was noticed");
    assert!(
        during[first_503..].iter().all(|e| !e.3),
        "allowed after the outage was noticed: {counts:?}"
    );
    assert!(log.iter().all(|e| e.2 == 200 || e.2 == 503), "{counts:?}");
    // Back: the same answers as before the outage.
    assert_eq!(decision(&app, &revoked).await, (200, false));
    assert_eq!(app.get("/readyz").await.status, 200);
    let app = Arc::into_inner(app).unwrap();
    app.finish().await;
}

const POLICIES_A: [&str; 3] = ["read_packages", "read_jobs", "read_releases"];
const POLICIES_B: [&str; 2] = ["admin_deployments", "read_environments"];

/// Starts the real binary on `url`, hammering writes, and SIGKILLs it mid-stream.
async fn kill_mid_writes(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Migrate and seed through an in-process instance first.
    let app = spawn_with(db, |_| {}).await;
    app.seed().await;
    let db = app.stop().await;

    let (mut child, base) = start_binary(
        &db,
        &[
            ("PATROL_RATE_LIMIT", "off"),
            ("PATROL_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("RUST_LOG", "warn"),
        ],
        None,
    )
    .await;
    let client = reqwest::Client::new();
    // Writers: tokens, and allowlist entries with policies (a scope set).
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (client, base) = (client.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let mut done = 0u64;
            loop {
                let request = if w % 2 == 0 {
                    client
                        .post(format!("{base}/v1/users/1/tokens"))
                        .json(&json!({"name": format!("w{w}-{done}"), "expires_at": in_days(30),
                                      "granular_scopes": [{"access": "all_memberships", "permissions": ["read_issue"]}]}))
                } else {
                    // Three sources, their policies replaced back and forth.
                    let source = [43, 44, 45][usize::try_from(done % 3).unwrap()];
                    let policies: &[&str] = if done % 2 == 0 { &POLICIES_A } else { &POLICIES_B };
                    client
                        .post(format!("{base}/v1/projects/42/job-token-scope/allowlist"))
                        .json(&json!({"source_project_id": source, "policies": policies}))
                };
                match request.header("X-Patrol-Key", ADMIN_KEY).send().await {
                    Ok(_) => done += 1,
                    Err(_) => return done,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }
    assert!(written > 10, "the writers barely wrote ({written})");

    // Whatever committed is whole: each token has its creation event and notifications,
    // each allowlist entry its event, and no event points at nothing.
    let app = spawn_with(db, |_| {}).await;
    let store = app.service.store();
    let tokens = app.get("/v1/tokens?user_id=1&per_page=100").await;
    let total: usize = tokens.headers["x-total"].to_str().unwrap().parse().unwrap();
    let mut events = Vec::new();
    for page in 1.. {
        let answer = app
            .get(&format!("/v1/audit-events?per_page=100&page={page}"))
            .await;
        let batch = answer.body.as_array().unwrap().clone();
        if batch.is_empty() {
            break;
        }
        events.extend(batch);
    }
    let created: Vec<u64> = events
        .iter()
        .filter(|e| e["action"] == "token_created")
        .map(|e| e["target_id"].as_u64().unwrap())
        .collect();
    assert_eq!(created.len(), total, "one creation event per token");
    let outbox = store.notifications().await.unwrap();
    assert_eq!(
        outbox.iter().filter(|n| n.event == "token_created").count(),
        total,
        "one notification per token"
    );
    for id in &created {
        assert_eq!(app.get(&format!("/v1/tokens/{id}")).await.status, 200);
    }
    let allowlist = app.get("/v1/projects/42/job-token-scope/allowlist").await;
    let entries = allowlist.body.as_array().unwrap();
    let added = events
        .iter()
        .filter(|e| e["action"] == "job_token_allowlist_added")
        .count();
    assert_eq!(entries.len(), added, "one event per allowlist entry");
    let sorted = |list: &[&str]| {
        let mut list: Vec<String> = list.iter().map(|p| (*p).to_owned()).collect();
        list.sort();
        list
    };
    for entry in entries {
        let policies: Vec<&str> = entry["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let policies = sorted(&policies);
        assert!(
            policies == sorted(&POLICIES_A) || policies == sorted(&POLICIES_B),
            "each scope set whole: {entries:?}"
        );
    }
    eprintln!(
        "killed after {written} answered writes; {total} tokens and {} allowlist entries whole",
        entries.len()
    );
    app.finish().await;
}

mod killed_mid_writes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::kill_mid_writes(crate::support::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::kill_mid_writes(crate::support::Backend::Postgres).await;
    }
}

/// With the store gone, every operation that documents a 503 answers one (JSON, with
/// `Retry-After`) to a request that would otherwise succeed: none fails open, none
/// fails with a 500. What is answered from memory by design is not in the list: settings,
/// a project's job token scope, and decisions (the gateway, `GET /api/v4/user`), which
/// answer 503 when the replica is deaf to the store's changes (Postgres:
/// `store_outage_under_load_never_allows_and_heals_without_a_restart`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_503_while_the_store_is_gone() {
    let app = spawn_with(TestDb::new(Backend::Sqlite).await, |s| s.rate_limit = None).await;
    app.seed().await;
    let legacy = |user: u64, scopes: &[&str]| {
        app.token(
            user,
            json!({"name": "t", "scopes": scopes, "expires_at": in_days(30)}),
        )
    };
    let (alice_id, alice) = legacy(1, &["api"]).await;
    let (_, root) = legacy(3, &["api", "admin_mode"]).await;
    let (_, spare) = legacy(1, &["read_api"]).await;
    let job = app
        .post(
            "/v1/jobs",
            json!({"project_id": 42, "user_id": 1, "job_id": 5, "expires_at": in_an_hour()}),
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    let allowed = app
        .post(
            "/v1/projects/42/job-token-scope/allowlist",
            json!({"source_project_id": 43}),
        )
        .await;
    assert!(allowed.status.is_success(), "{}", allowed.text);
    // Warm every credential, so that what follows reaches the handlers.
    for token in [&alice, &root] {
        let answer = app
            .call_with(
                reqwest::Method::GET,
                "/api/v4/user",
                &[("PRIVATE-TOKEN", token)],
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    app.service.store().close().await;

    let token_body = json!({"name": "x", "scopes": ["read_api"], "expires_at": in_days(3)});
    let cases: Vec<(&str, String, Option<&str>, Option<serde_json::Value>)> = vec![
        (
            "GET",
            "/api/v4/personal_access_tokens".into(),
            Some(&alice),
            None,
        ),
        (
            "GET",
            format!("/api/v4/personal_access_tokens/{alice_id}"),
            Some(&alice),
            None,
        ),
        (
            "DELETE",
            format!("/api/v4/personal_access_tokens/{alice_id}"),
            Some(&alice),
            None,
        ),
        (
            "POST",
            "/api/v4/personal_access_tokens/self/rotate".into(),
            Some(&alice),
            None,
        ),
        (
            "POST",
            "/api/v4/user/personal_access_tokens".into(),
            Some(&alice),
            Some(token_body.clone()),
        ),
        (
            "POST",
            "/api/v4/users/1/personal_access_tokens".into(),
            Some(&root),
            Some(token_body.clone()),
        ),
        ("GET", "/v1/tokens/self".into(), Some(&alice), None),
        ("DELETE", "/v1/tokens/self".into(), Some(&alice), None),
        ("POST", "/v1/tokens/self/rotate".into(), Some(&alice), None),
        ("GET", "/v1/audit-events".into(), None, None),
        (
            "POST",
            "/v1/directory/batch".into(),
            None,
            Some(json!({"users": [{"id": 10, "username": "dave"}]})),
        ),
        (
            "PUT",
            "/v1/directory/users/20".into(),
            None,
            Some(json!({"username": "erin"})),
        ),
        ("DELETE", "/v1/directory/users/2".into(), None, None),
        (
            "PUT",
            "/v1/directory/groups/20".into(),
            None,
            Some(json!({"path": "newco", "name": "N", "visibility": "private"})),
        ),
        ("DELETE", "/v1/directory/groups/8".into(), None, None),
        (
            "PUT",
            "/v1/directory/projects/50".into(),
            None,
            Some(
                json!({"namespace": {"kind": "group", "id": 7}, "path": "p", "name": "P", "visibility": "private"}),
            ),
        ),
        ("DELETE", "/v1/directory/projects/44".into(), None, None),
        (
            "PUT",
            "/v1/directory/projects/42/members/2".into(),
            None,
            Some(json!({"access_level": 30})),
        ),
        (
            "DELETE",
            "/v1/directory/projects/42/members/2".into(),
            None,
            None,
        ),
        (
            "PUT",
            "/v1/directory/groups/7/members/2".into(),
            None,
            Some(json!({"access_level": 30})),
        ),
        (
            "DELETE",
            "/v1/directory/groups/7/members/1".into(),
            None,
            None,
        ),
        (
            "PUT",
            "/v1/groups/7/token-policy".into(),
            None,
            Some(json!({"enforce_fine_grained": true})),
        ),
        (
            "PUT",
            "/v1/settings".into(),
            None,
            Some(
                json!({"max_lifetime_days": 90, "require_expiry": true, "allow_legacy_token_creation": true}),
            ),
        ),
        ("GET", "/v1/service-keys".into(), None, None),
        (
            "POST",
            "/v1/service-keys".into(),
            None,
            Some(json!({"name": "k", "role": "manage"})),
        ),
        ("DELETE", "/v1/service-keys/1".into(), None, None),
        (
            "POST",
            "/v1/jobs".into(),
            None,
            Some(json!({"project_id": 42, "user_id": 1, "job_id": 6, "expires_at": in_an_hour()})),
        ),
        ("DELETE", "/v1/jobs/5".into(), None, None),
        (
            "PATCH",
            "/v1/projects/42/job-token-scope".into(),
            None,
            Some(json!({"inbound_enabled": false})),
        ),
        (
            "GET",
            "/v1/projects/42/job-token-scope/allowlist".into(),
            None,
            None,
        ),
        (
            "POST",
            "/v1/projects/42/job-token-scope/allowlist".into(),
            None,
            Some(json!({"source_group_id": 9})),
        ),
        (
            "DELETE",
            "/v1/projects/42/job-token-scope/allowlist/projects/43".into(),
            None,
            None,
        ),
        (
            "DELETE",
            "/v1/projects/42/job-token-scope/allowlist/groups/9".into(),
            None,
            None,
        ),
        ("GET", "/v1/tokens".into(), None, None),
        (
            "POST",
            "/v1/users/1/tokens".into(),
            None,
            Some(token_body.clone()),
        ),
        ("GET", format!("/v1/tokens/{alice_id}"), None, None),
        (
            "PATCH",
            format!("/v1/tokens/{alice_id}"),
            None,
            Some(json!({"name": "renamed"})),
        ),
        ("POST", format!("/v1/tokens/{alice_id}/rotate"), None, None),
        (
            "POST",
            format!("/v1/tokens/{alice_id}/duplicate"),
            None,
            Some(json!({"name": "copy"})),
        ),
        ("DELETE", format!("/v1/tokens/{alice_id}"), None, None),
        (
            "POST",
            "/v1/tokens/revoke-by-value".into(),
            None,
            Some(json!({"token": spare})),
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, token, body) in cases {
        let bearer;
        let headers: Vec<(&str, &str)> = match token {
            Some(token) => {
                bearer = format!("Bearer {token}");
                vec![("Authorization", bearer.as_str())]
            }
            None if path == "/v1/gateway/check" => {
                vec![
                    ("X-Patrol-Key", ADMIN_KEY),
                    ("PRIVATE-TOKEN", alice.as_str()),
                    ("X-Original-Method", "GET"),
                    ("X-Original-URI", "/api/v4/projects/42/issues"),
                ]
            }
            None => vec![("X-Patrol-Key", ADMIN_KEY)],
        };
        let answer = app
            .call_with(method.parse().unwrap(), &path, &headers, body)
            .await;
        let fine = answer.status == 503
            && answer.headers.contains_key("retry-after")
            && answer.body.get("error").is_some();
        if !fine {
            failures.push(format!(
                "{method} {path}: {} {}",
                answer.status, answer.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
