use reqwest::Method;

use crate::on_both_backends;
use crate::support::{Backend, spawn};

on_both_backends!(
    health_readiness_and_metrics_answer,
    the_store_going_away_makes_readiness_fail
);

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let app = spawn(backend).await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let answer = app.call_as(None, Method::GET, path, None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert!(answer.headers.contains_key("x-request-id"), "{path}");
    }
    let metrics = app.call_as(None, Method::GET, "/metrics", None).await.text;
    assert!(
        metrics.contains("patrol_decision_duration_seconds"),
        "{metrics}"
    );
    let spec = app.call_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(spec.body["openapi"], "3.1.0");
    app.finish().await;
}

async fn the_store_going_away_makes_readiness_fail(backend: Backend) {
    let app = spawn(backend).await;
    app.service.store().close().await;
    let answer = app.call_as(None, Method::GET, "/readyz", None).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    app.finish().await;
}

#[tokio::test]
async fn unknown_endpoints_are_json_404s() {
    let app = spawn(Backend::Sqlite).await;
    let answer = app.call_as(None, Method::GET, "/v1/nothing", None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"], "no such endpoint");
    app.finish().await;
}

/// Every operation in the served OpenAPI document is routed: none answers "no such
/// endpoint" or 405. (`tests/artifacts` checks the committed copy is the served one.)
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn(Backend::Sqlite).await;
    let spec = app
        .call_as(None, Method::GET, "/openapi.json", None)
        .await
        .body;
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{name}", "read_issue")
            .replace("{id}", "1")
            .replace("{user_id}", "1");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = app.call(method.clone(), &concrete, None).await;
            assert_ne!(answer.status, 405, "{method} {path}");
            assert_ne!(answer.body["error"], "no such endpoint", "{method} {path}");
            operations += 1;
        }
    }
    assert!(operations >= 30, "only {operations} operations documented");
    app.finish().await;
}
