use serde_json::Value;

use crate::spawn_app;

#[tokio::test]
async fn a_permission_is_shown_with_its_roles_routes_and_scopes() {
    let app = spawn_app().await;
    let response = app.get("/v1/catalog/permissions/read_issue").await;
    assert_eq!(response.status(), 200);
    let p: Value = response.json().await.unwrap();
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
}

#[tokio::test]
async fn an_unknown_permission_is_a_404_that_names_it() {
    let app = spawn_app().await;
    let response = app.get("/v1/catalog/permissions/raed_issue").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("`raed_issue`"));
}

#[tokio::test]
async fn lists_cover_the_whole_catalog() {
    let app = spawn_app().await;
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
        let body: Value = app.get(path).await.json().await.unwrap();
        assert_eq!(body.as_array().map(Vec::len), Some(expected), "{path}");
    }
    let policies: Value = app
        .get("/v1/catalog/job-token-policies")
        .await
        .json()
        .await
        .unwrap();
    let admin = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "admin_packages")
        .unwrap();
    assert_eq!(admin["implies"], serde_json::json!(["read_packages"]));
}

#[tokio::test]
async fn the_permissions_page_is_served_as_html() {
    let app = spawn_app().await;
    let response = app.get("/docs/permissions").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<code>read_issue</code>"));
}
