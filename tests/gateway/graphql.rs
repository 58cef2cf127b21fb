//! GraphQL through the real gateways, configured as docs/gateway/ shows: Envoy (HTTP and
//! gRPC) forwards `/api/graphql`'s body to patrol (`with_request_body`), Traefik too
//! (`forwardBody`), and nginx, whose `auth_request` cannot, lets no `POST` through.
//! Each hostile request says by hand whether GitLab would run something the token may
//! not: what reaches the upstream must be the very body patrol decided, under the token
//! patrol decided on, and nothing else may arrive.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::gateways::{self, Kind};
use super::upstream::{self, Seen};
use super::{call, ready, seed_world, send, start_patrol};

const ALLOWED: &str = r#"{ project(fullPath: "acme/app") { issues { nodes { title } } } }"#;
const SECRET: &str = r#"{ project(fullPath: "acme/secret") { id } }"#;

/// A request and what must come of it.
struct Case {
    name: &'static str,
    /// The request line's target.
    target: String,
    method: &'static str,
    /// Headers besides `Host`, `Connection` and the sequence number.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    /// Reaches the upstream through gateways that forward the body (and, for a `GET`,
    /// through nginx too).
    reaches: bool,
}

impl Case {
    fn bytes(&self, seq: usize) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: gitlab.test\r\nConnection: close\r\nX-Test-Seq: {seq}\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut bytes = Vec::new();
        if self.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            bytes.extend_from_slice(head.as_bytes());
            for chunk in self.body.chunks(7) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        } else {
            if !self.body.is_empty() || self.method == "POST" {
                head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
            }
            head.push_str("\r\n");
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    fn reaches_through(&self, kind: Kind) -> bool {
        self.reaches && (kind != Kind::Nginx || self.method == "GET")
    }
}

fn post(name: &'static str, token: Option<&str>, body: Value, reaches: bool) -> Case {
    post_raw(name, token, body.to_string().into_bytes(), reaches)
}

fn post_raw(name: &'static str, token: Option<&str>, body: Vec<u8>, reaches: bool) -> Case {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(token) = token {
        headers.push(("PRIVATE-TOKEN".to_owned(), token.to_owned()));
    }
    Case {
        name,
        target: "/api/graphql".to_owned(),
        method: "POST",
        headers,
        body,
        chunked: false,
        reaches,
    }
}

fn get(name: &'static str, token: &str, query: &str, reaches: bool) -> Case {
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Case {
        name,
        target: format!("/api/graphql?query={encoded}"),
        method: "GET",
        headers: vec![("PRIVATE-TOKEN".to_owned(), token.to_owned())],
        body: Vec::new(),
        chunked: false,
        reaches,
    }
}

fn cases(scoped: &str, wide: &str) -> Vec<Case> {
    let mut chunked = post(
        "chunked body",
        Some(scoped),
        json!({"query": ALLOWED}),
        true,
    );
    chunked.chunked = true;
    let mut form = post_raw(
        "a form body",
        Some(scoped),
        format!("query={SECRET}").into_bytes(),
        false,
    );
    form.headers[0].1 = "application/x-www-form-urlencoded".to_owned();
    let mut in_url = post(
        "query in the URL too",
        Some(scoped),
        json!({"query": ALLOWED}),
        false,
    );
    in_url.target = format!("/api/graphql?query={}", "%7B__typename%7D");
    let mut padded = json!({"query": ALLOWED}).to_string();
    padded.insert_str(1, &" ".repeat(70_000));
    vec![
        post(
            "allowed query",
            Some(scoped),
            json!({"query": ALLOWED}),
            true,
        ),
        post(
            "introspection only",
            Some(scoped),
            json!({"query": "{ __typename }"}),
            true,
        ),
        post(
            "alias to a project outside the token",
            Some(scoped),
            json!({"query": r#"{ a: project(fullPath: "acme/app") { id } b: project(fullPath: "acme/secret") { id } }"#}),
            false,
        ),
        post(
            "@skip around a project outside the token",
            Some(scoped),
            json!({"query": r#"{ project(fullPath: "acme/app") { id } s: project(fullPath: "acme/secret") @skip(if: true) { id } }"#}),
            false,
        ),
        post(
            "variable naming a project outside the token, in a fragment",
            Some(scoped),
            json!({"query": "query($p: ID!) { ...F } fragment F on Query { project(fullPath: $p) { id } }",
                   "variables": {"p": "acme/secret"}}),
            false,
        ),
        post(
            "variables as a string of JSON",
            Some(scoped),
            json!({"query": "query($p: ID!) { project(fullPath: $p) { id } }",
                   "variables": "{\"p\": \"acme/secret\"}"}),
            false,
        ),
        post(
            "variable naming the token's project",
            Some(scoped),
            json!({"query": "query($p: ID!) { ...F } fragment F on Query { project(fullPath: $p) { id } }",
                   "variables": {"p": "acme/app"}}),
            true,
        ),
        post(
            "a mutation the token does not hold",
            Some(scoped),
            json!({"query": r#"mutation { updateIssue(input: {projectPath: "acme/app", iid: "1", title: "x"}) { errors } }"#}),
            false,
        ),
        post(
            "a second credential in the body",
            Some(scoped),
            json!({"query": ALLOWED, "private_token": wide}),
            false,
        ),
        post(
            "the credential in the body only",
            None,
            json!({"query": ALLOWED, "private_token": scoped}),
            true,
        ),
        post("no credential", None, json!({"query": ALLOWED}), false),
        post(
            "a batch with one operation outside the token",
            Some(scoped),
            json!([{"query": ALLOWED}, {"query": SECRET}]),
            false,
        ),
        post(
            "a batch the token may run",
            Some(scoped),
            json!([{"query": ALLOWED}, {"query": "{ __typename }"}]),
            true,
        ),
        post_raw(
            "a key given twice",
            Some(scoped),
            format!(
                "{{\"query\": {}, \"query\": {}}}",
                Value::from(SECRET),
                Value::from(ALLOWED)
            )
            .into_bytes(),
            false,
        ),
        post_raw(
            "a body over the limit",
            Some(scoped),
            padded.into_bytes(),
            false,
        ),
        chunked,
        form,
        in_url,
        get("GET of an allowed query", scoped, ALLOWED, true),
        get("GET of a project outside the token", scoped, SECRET, false),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_is_decided_on_the_body_the_upstream_gets() {
    let dir = std::env::temp_dir().join(format!("patrol-graphql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = format!("sqlite://{}", dir.join("patrol.db").display());
    let first = start_patrol(&database_url, Kind::Nginx).await;
    let (tokens, _, key) = seed_world(first.address).await;
    let expires =
        patrol::clock::format_date(patrol::clock::date_of(patrol::clock::now() + 30 * 86_400));
    // bob's token for acme/app alone: its project and its issues.
    let made = call(
        first.address,
        Method::POST,
        "/v1/users/2/tokens",
        json!({"name": "graphql", "expires_at": expires, "granular_scopes": [
            {"access": "selected_memberships", "project_ids": [42],
             "permissions": ["read_project", "read_issue"]}]}),
    )
    .await;
    let scoped = made["token"].as_str().unwrap().to_owned();
    let scoped_id = made["id"].as_u64().unwrap().to_string();
    let cases = cases(&scoped, &tokens.wide);
    let (upstream, log) = upstream::start().await;
    let mut patrols = vec![(Kind::Nginx, first)];
    for kind in [Kind::Traefik, Kind::Envoy, Kind::EnvoyGrpc] {
        patrols.push((kind, start_patrol(&database_url, kind).await));
    }

    let mut failures = Vec::new();
    for (kind, patrol) in &patrols {
        let kind = *kind;
        let address = patrol.grpc.unwrap_or(patrol.address);
        let gateway =
            tokio::task::block_in_place(|| gateways::start(kind, address, upstream, &key));
        ready(gateway.address).await;
        log.lock().unwrap().clear();
        let mut statuses = Vec::new();
        for (seq, case) in cases.iter().enumerate() {
            statuses.push(send(gateway.address, &case.bytes(seq)).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let arrived: Vec<Seen> = log.lock().unwrap().clone();
        for (seq, (case, status)) in cases.iter().zip(&statuses).enumerate() {
            let seen: Vec<&Seen> = arrived
                .iter()
                .filter(|s| s.header_text("x-test-seq").as_deref() == Some(&seq.to_string()))
                .collect();
            let fail = |why: String| {
                format!(
                    "{}: {}: {why} (client got {status:?})",
                    kind.name(),
                    case.name
                )
            };
            match (case.reaches_through(kind), seen.as_slice()) {
                (false, []) => {}
                (false, [_, ..]) => failures.push(fail("reached the upstream".to_owned())),
                (true, []) => failures.push(fail("did not reach the upstream".to_owned())),
                (true, [one]) => {
                    if one.body != case.body {
                        failures.push(fail("the upstream got another body".to_owned()));
                    }
                    if one.header_text("x-patrol-token-id").as_deref() != Some(scoped_id.as_str()) {
                        failures.push(fail(format!(
                            "patrol decided on token {:?}",
                            one.header_text("x-patrol-token-id")
                        )));
                    }
                    let route = format!("{} /api/graphql", case.method);
                    if one.header_text("x-patrol-route").as_deref() != Some(route.as_str()) {
                        failures.push(fail(format!(
                            "decided as {:?}",
                            one.header_text("x-patrol-route")
                        )));
                    }
                }
                (true, _) => failures.push(fail("reached the upstream twice".to_owned())),
            }
        }
        println!(
            "{}: {:?}",
            kind.name(),
            cases
                .iter()
                .zip(&statuses)
                .map(|(c, s)| format!("{} -> {s:?}", c.name))
                .collect::<Vec<_>>()
        );
        drop(gateway);
    }
    for (_, patrol) in patrols {
        let _ = patrol.stop.send(());
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}
