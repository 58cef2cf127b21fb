//! Who may call what (DESIGN.md section 6): every protected endpoint, every role.

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, spawn};

on_both_backends!(
    every_endpoint_wants_a_key_of_its_role,
    service_keys_are_created_listed_and_revoked,
    only_admins_manage_service_keys
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Authorize,
    Manage,
    Admin,
}

/// Every endpoint behind a service key, with the least role that may call it.
const ENDPOINTS: &[(&str, &str, Role)] = &[
    ("POST", "/v1/authorize", Role::Authorize),
    ("POST", "/v1/authorize/batch", Role::Authorize),
    ("POST", "/v1/authorize/graphql", Role::Authorize),
    ("GET", "/v1/gateway/check", Role::Authorize),
    ("PUT", "/v1/directory/users/1", Role::Manage),
    ("DELETE", "/v1/directory/users/1", Role::Manage),
    ("PUT", "/v1/directory/groups/1", Role::Manage),
    ("DELETE", "/v1/directory/groups/1", Role::Manage),
    ("PUT", "/v1/directory/projects/1", Role::Manage),
    ("DELETE", "/v1/directory/projects/1", Role::Manage),
    ("PUT", "/v1/directory/groups/1/members/1", Role::Manage),
    ("DELETE", "/v1/directory/groups/1/members/1", Role::Manage),
    ("PUT", "/v1/directory/projects/1/members/1", Role::Manage),
    ("DELETE", "/v1/directory/projects/1/members/1", Role::Manage),
    ("POST", "/v1/directory/batch", Role::Manage),
    ("POST", "/v1/users/1/tokens", Role::Manage),
    ("GET", "/v1/tokens", Role::Manage),
    ("GET", "/v1/tokens/1", Role::Manage),
    ("DELETE", "/v1/tokens/1", Role::Manage),
    ("PATCH", "/v1/tokens/1", Role::Manage),
    ("POST", "/v1/tokens/1/rotate", Role::Manage),
    ("POST", "/v1/tokens/1/duplicate", Role::Manage),
    ("POST", "/v1/tokens/revoke-by-value", Role::Manage),
    ("POST", "/v1/jobs", Role::Manage),
    ("DELETE", "/v1/jobs/1", Role::Manage),
    ("GET", "/v1/projects/1/job-token-scope", Role::Manage),
    ("PATCH", "/v1/projects/1/job-token-scope", Role::Manage),
    (
        "GET",
        "/v1/projects/1/job-token-scope/allowlist",
        Role::Manage,
    ),
    (
        "POST",
        "/v1/projects/1/job-token-scope/allowlist",
        Role::Manage,
    ),
    (
        "DELETE",
        "/v1/projects/1/job-token-scope/allowlist/projects/2",
        Role::Manage,
    ),
    (
        "DELETE",
        "/v1/projects/1/job-token-scope/allowlist/groups/2",
        Role::Manage,
    ),
    ("GET", "/v1/settings", Role::Admin),
    ("PUT", "/v1/settings", Role::Admin),
    ("PUT", "/v1/groups/1/token-policy", Role::Admin),
    ("GET", "/v1/service-keys", Role::Admin),
    ("POST", "/v1/service-keys", Role::Admin),
    ("DELETE", "/v1/service-keys/999", Role::Admin),
    ("GET", "/v1/audit-events", Role::Admin),
];

async fn key(app: &TestApp, role: &str) -> String {
    let answer = app
        .post("/v1/service-keys", json!({"name": role, "role": role}))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.body["key"].as_str().unwrap().to_owned()
}

async fn every_endpoint_wants_a_key_of_its_role(backend: Backend) {
    let app = spawn(backend).await;
    let keys = [
        (Role::Authorize, key(&app, "authorize").await),
        (Role::Manage, key(&app, "manage").await),
        (Role::Admin, key(&app, "admin").await),
    ];
    let revoked = key(&app, "admin").await;
    let listed = app.get("/v1/service-keys").await.body;
    let revoked_id = listed.as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        app.delete(&format!("/v1/service-keys/{revoked_id}"))
            .await
            .status,
        204
    );
    // A well-formed key (checksum right) of a real lookup id, with the wrong secret.
    let forged = patrol::secret::assemble("ptk-", &keys[2].1[4..16], &"A".repeat(30));

    for &(method, path, least) in ENDPOINTS {
        let method: Method = method.parse().unwrap();
        for (label, presented) in [
            ("no key", None),
            ("garbage", Some("not-a-key")),
            ("forged", Some(forged.as_str())),
            ("revoked", Some(revoked.as_str())),
        ] {
            let answer = app
                .call_as(presented, method.clone(), path, Some(json!({})))
                .await;
            assert_eq!(
                answer.status, 401,
                "{method} {path} with {label}: {}",
                answer.text
            );
            assert!(
                answer.body["error"]
                    .as_str()
                    .unwrap()
                    .contains("X-Patrol-Key")
            );
        }
        for (role, key) in &keys {
            let answer = app
                .call_as(Some(key), method.clone(), path, Some(json!({})))
                .await;
            if *role < least {
                assert_eq!(
                    answer.status, 403,
                    "{method} {path} as {role:?}: {}",
                    answer.text
                );
            } else {
                assert!(
                    ![401, 403].contains(&answer.status.as_u16()),
                    "{method} {path} as {role:?}: {} {}",
                    answer.status,
                    answer.text
                );
            }
        }
    }
    app.finish().await;
}

async fn service_keys_are_created_listed_and_revoked(backend: Backend) {
    let app = spawn(backend).await;
    let created = app
        .post(
            "/v1/service-keys",
            json!({"name": "gateway", "role": "authorize"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let plaintext = created.body["key"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("ptk-"));
    let id = created.body["id"].as_u64().unwrap();

    let listed = app.get("/v1/service-keys").await;
    assert_eq!(listed.status, 200);
    let entry = &listed.body.as_array().unwrap()[0];
    assert_eq!(entry["name"], "gateway");
    assert_eq!(entry["role"], "authorize");
    assert!(entry.get("key").is_none(), "the plaintext is shown once");
    assert!(!listed.text.contains(&plaintext[4..]));

    let check = json!({"token": "x", "permission": "read_issue", "boundary": {"type": "instance"}});
    let before = app
        .call_as(
            Some(&plaintext),
            Method::POST,
            "/v1/authorize",
            Some(check.clone()),
        )
        .await;
    assert_eq!(before.status, 200, "{}", before.text);

    assert_eq!(
        app.delete(&format!("/v1/service-keys/{id}")).await.status,
        204
    );
    assert_eq!(
        app.delete(&format!("/v1/service-keys/{id}")).await.status,
        404
    );
    let after = app
        .call_as(Some(&plaintext), Method::POST, "/v1/authorize", Some(check))
        .await;
    assert_eq!(after.status, 401, "revocation takes effect at once");
    assert!(app.get("/v1/service-keys").await.body[0]["revoked_at"].is_string());

    for (body, field) in [
        (json!({"name": "x", "role": "root"}), "role"),
        (json!({"role": "admin"}), "name"),
    ] {
        let answer = app.post("/v1/service-keys", body).await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.field(), field);
    }
    let answer = app
        .post("/v1/service-keys", json!({"name": " ", "role": "admin"}))
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.field(), "name");
    app.finish().await;
}

async fn only_admins_manage_service_keys(backend: Backend) {
    let app = spawn(backend).await;
    let manage = key(&app, "manage").await;
    let answer = app
        .call_as(
            Some(&manage),
            Method::POST,
            "/v1/service-keys",
            Some(json!({"name": "escalate", "role": "admin"})),
        )
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        app.get("/v1/service-keys")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.finish().await;
}

/// The table above is complete: every operation the OpenAPI document marks as needing a
/// service key is in it, and nothing else. (`/v1/tokens/self` takes the token itself:
/// `tests/api/lifecycle.rs`.)
#[test]
fn the_table_lists_every_protected_operation() {
    let spec: serde_json::Value = serde_json::from_str(&patrol::http::openapi::document()).unwrap();
    let shape = |path: &str| -> String {
        path.split('/')
            .map(|segment| {
                if segment.starts_with('{') || segment.parse::<u64>().is_ok() {
                    "*"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let wants_key = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("service_key").is_some()));
            if wants_key {
                documented.push(format!("{} {}", method.to_uppercase(), shape(path)));
            }
        }
    }
    let mut listed: Vec<String> = ENDPOINTS
        .iter()
        .map(|(method, path, _)| format!("{method} {}", shape(path)))
        .collect();
    documented.sort();
    listed.sort();
    assert_eq!(listed, documented);
}
