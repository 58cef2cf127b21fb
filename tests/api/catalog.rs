use serde_json::Value;

use crate::support::{Backend, spawn};

#[tokio::test]
async fn a_permission_is_shown_with_its_roles_routes_and_scopes() {
    let app = spawn(Backend::Sqlite).await;
    let response = app.get("/v1/catalog/permissions/read_issue").await;
    assert_eq!(response.status, 200);
    let p = &response.body;
    assert_eq!(p["boundaries"]["project"], "guest");
    assert_eq!(p["boundaries"]["group"], "guest");
    assert_eq!(p["feature"], "issues");
    assert_eq!(p["public"], true);
    assert_eq!(p["job_token_policy"], "read_work_items");
    let scopes: Vec<&str> = p["legacy_scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(scopes.contains(&"api") && scopes.contains(&"read_api"));
    assert!(
        p["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "GET" && r["path"] == "/api/v4/projects/:id/issues")
    );
    app.finish().await;
}

#[tokio::test]
async fn an_unknown_permission_is_a_404_that_names_it() {
    let app = spawn(Backend::Sqlite).await;
    let response = app.get("/v1/catalog/permissions/raed_issue").await;
    assert_eq!(response.status, 404);
    assert!(
        response.body["error"]
            .as_str()
            .unwrap()
            .contains("`raed_issue`")
    );
    app.finish().await;
}

#[tokio::test]
async fn lists_cover_the_whole_catalog() {
    let app = spawn(Backend::Sqlite).await;
    let catalog = patrol::catalog::load_embedded().unwrap();
    let cases = [
        ("/v1/catalog/permissions", catalog.permissions.len()),
        ("/v1/catalog/scopes", catalog.scopes.len()),
        (
            "/v1/catalog/job-token-policies",
            catalog.job_token_policies.len(),
        ),
        ("/v1/catalog/templates", catalog.templates.len()),
    ];
    for (path, expected) in cases {
        let body = app.get(path).await.body;
        assert_eq!(body.as_array().map(Vec::len), Some(expected), "{path}");
    }
    let policies = app.get("/v1/catalog/job-token-policies").await.body;
    let admin = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "admin_packages")
        .unwrap();
    assert_eq!(admin["implies"], serde_json::json!(["read_packages"]));
    app.finish().await;
}

#[tokio::test]
async fn the_permissions_page_is_served_as_html() {
    let app = spawn(Backend::Sqlite).await;
    let response = app.get("/docs/permissions").await;
    assert_eq!(response.status, 200);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text.contains("<code>read_issue</code>"));
    app.finish().await;
}
