//! GraphQL decisions over HTTP (DESIGN.md section 11): `POST /v1/authorize/graphql`
//! answers every check an operation needs and the whole, on the seeded directory; what
//! patrol cannot decide is a 400 naming the field.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, in_days, spawn};

on_both_backends!(
    operations_are_decided_check_by_check,
    boundaries_come_from_arguments_variables_and_global_ids,
    nothing_hides_a_field_from_its_check,
    what_patrol_cannot_decide_is_a_400,
);

impl TestApp {
    /// `/v1/authorize/graphql`; returns the decision body.
    async fn graphql(&self, token: &str, query: &str, variables: Value) -> Value {
        let answer = self
            .post(
                "/v1/authorize/graphql",
                json!({"token": token, "query": query, "variables": variables}),
            )
            .await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        answer.body
    }

    async fn fine(&self, scope: Value) -> String {
        self.token(
            1,
            json!({"name": "graphql", "expires_at": in_days(30), "granular_scopes": [scope]}),
        )
        .await
        .1
    }
}

/// Each check as `path permission reason`, in order.
fn checks(decision: &Value) -> Vec<String> {
    decision["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["path"].as_str().unwrap(),
                c["permission"].as_str().unwrap_or("-"),
                c["reason"].as_str().unwrap()
            )
        })
        .collect()
}

const ISSUES_AND_NOTES: &str = r#"query { project(fullPath: "acme/app") {
    name issues { nodes { title notes { nodes { body } } } } } }"#;

async fn operations_are_decided_check_by_check(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let all = app
        .fine(json!({"access": "all_memberships",
                     "permissions": ["read_project", "read_issue", "read_note", "update_issue"]}))
        .await;
    let no_notes = app
        .fine(json!({"access": "all_memberships", "permissions": ["read_project", "read_issue"]}))
        .await;

    let allowed = app.graphql(&all, ISSUES_AND_NOTES, json!({})).await;
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert_eq!(allowed["reason"], "granted");
    assert_eq!(allowed["user_id"], 1);
    assert_eq!(
        allowed["required_permissions"],
        json!(["read_project", "read_issue", "read_note"])
    );
    assert_eq!(
        allowed["checks"][0],
        json!({"path": "project", "element": "Query.project", "permission": "read_project",
               "boundary": {"type": "project", "path": "acme/app"},
               "allowed": true, "reason": "granted", "message": "granted"})
    );
    assert_eq!(
        checks(&allowed),
        [
            "project read_project granted",
            "project.issues read_issue granted",
            "project.issues.nodes read_issue granted",
            "project.issues.nodes.notes.nodes read_note granted",
        ]
    );

    // One check denied denies the operation, for that check's reason.
    let denied = app.graphql(&no_notes, ISSUES_AND_NOTES, json!({})).await;
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["reason"], "permission_not_granted");
    assert!(
        denied["message"].as_str().unwrap().contains("read_note"),
        "{denied}"
    );
    assert_eq!(
        checks(&denied)[3],
        "project.issues.nodes.notes.nodes read_note permission_not_granted"
    );

    // A mutation by the project's path.
    let update = r#"mutation { updateIssue(input: {projectPath: "acme/app", iid: "1", title: "t"}) {
        issue { title } errors } }"#;
    let d = app.graphql(&all, update, json!({})).await;
    assert_eq!(
        checks(&d),
        [
            "updateIssue update_issue granted",
            "updateIssue.issue read_issue granted"
        ]
    );
    assert_eq!(d["allowed"], true);
    let d = app.graphql(&no_notes, update, json!({})).await;
    assert_eq!(d["reason"], "permission_not_granted");
    assert_eq!(
        checks(&d)[0],
        "updateIssue update_issue permission_not_granted"
    );

    // Only introspection and `__typename`: any valid token, no checks.
    let d = app
        .graphql(
            &no_notes,
            "{ __typename __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["checks"], json!([]));
    for token in ["garbage", "glpat-nothing-like-a-token"] {
        let d = app.graphql(token, "{ __typename }", json!({})).await;
        assert_eq!(d["reason"], "token_invalid");
        assert_eq!(d["allowed"], false);
        let d = app.graphql(token, ISSUES_AND_NOTES, json!({})).await;
        assert_eq!(d["reason"], "token_invalid", "the token comes first");
    }

    // A mutation no permission covers is an unknown route, after the token's checks.
    let alert = r#"mutation { alertSetAssignees(input: {projectPath: "acme/app", iid: "1",
        assigneeUsernames: ["bob"]}) { errors } }"#;
    let d = app.graphql(&all, alert, json!({})).await;
    assert_eq!(d["reason"], "unknown_route", "{d}");
    assert_eq!(
        d["checks"][0],
        json!({"path": "alertSetAssignees", "element": "Mutation.alertSetAssignees",
               "permission": null, "boundary": null, "allowed": false, "reason": "unknown_route",
               "message": "no permission of the catalog covers `Mutation.alertSetAssignees`"})
    );
    app.finish().await;
}

async fn boundaries_come_from_arguments_variables_and_global_ids(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let token = app
        .fine(json!({"access": "all_memberships",
                     "permissions": ["read_project", "read_issue", "update_issue", "read_vulnerability"]}))
        .await;
    let by_variable =
        "query Issues($path: ID!) { project(fullPath: $path) { issues { nodes { title } } } }";
    // acme/web/site: alice is a developer through acme.
    let d = app
        .graphql(&token, by_variable, json!({"path": "acme/web/site"}))
        .await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(
        d["checks"][1]["boundary"],
        json!({"type": "project", "path": "acme/web/site"})
    );
    let d = app
        .graphql(&token, by_variable, json!({"path": "acme/nope"}))
        .await;
    assert_eq!(d["reason"], "boundary_not_found");
    // A variable holding the whole input object.
    let d = app
        .graphql(
            &token,
            "mutation U($input: UpdateIssueInput!) { updateIssue(input: $input) { errors } }",
            json!({"input": {"projectPath": "acme/app", "iid": "3", "title": "t"}}),
        )
        .await;
    assert_eq!(checks(&d), ["updateIssue update_issue granted"]);

    // A project's global id names it by id; acme has no plan, so the boundary was found
    // and the decision went on to the permission's plan.
    let d = app
        .graphql(
            &token,
            r#"mutation { addProjectToSecurityDashboard(input: {id: "gid://gitlab/Project/42"}) { errors } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        d["checks"][0]["boundary"],
        json!({"type": "project", "id": 42})
    );
    assert_eq!(d["reason"], "plan_required", "{d}");

    // The global id of a note names no project: unresolved, never decided elsewhere.
    let d = app
        .graphql(
            &token,
            r#"mutation { updateNote(input: {id: "gid://gitlab/Note/5", body: "x"}) { errors } }"#,
            json!({}),
        )
        .await;
    assert_eq!(d["reason"], "boundary_unresolved", "{d}");
    assert_eq!(d["checks"][0]["boundary"], Value::Null);
    assert!(
        d["checks"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`Note` 5"),
        "{d}"
    );
    // An object the catalog does not place: a merge request's source project.
    let d = app
        .graphql(
            &token,
            r#"{ project(fullPath: "acme/app") { mergeRequest(iid: "1") {
                 sourceProject { issues { nodes { title } } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(d["allowed"], false);
    assert!(
        checks(&d).contains(
            &"project.mergeRequest.sourceProject.issues read_issue boundary_unresolved".to_owned()
        ),
        "{d}"
    );
    app.finish().await;
}

async fn nothing_hides_a_field_from_its_check(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    // Only acme/app (42).
    let token = app
        .fine(
            json!({"access": "selected_memberships", "project_ids": [42],
                     "permissions": ["read_project", "read_issue"]}),
        )
        .await;
    let mine = r#"{ project(fullPath: "acme/app") { issues { nodes { title } } } }"#;
    assert_eq!(app.graphql(&token, mine, json!({})).await["allowed"], true);
    // The private acme/web/site is outside the token, however the field is dressed:
    // an alias, a fragment, an inline fragment, `@skip` or `@include`.
    for query in [
        r#"{ a: project(fullPath: "acme/app") { id } b: project(fullPath: "acme/web/site") { id } }"#,
        r#"{ project(fullPath: "acme/app") { id } other: project(fullPath: "acme/web/site") @skip(if: true) { issues { nodes { title } } } }"#,
        r#"query($no: Boolean = false) { other: project(fullPath: "acme/web/site") @include(if: $no) { id } }"#,
        r#"{ ...Q } fragment Q on Query { project(fullPath: "acme/web/site") { ... on Project { id } } }"#,
    ] {
        let d = app.graphql(&token, query, json!({})).await;
        assert_eq!(d["allowed"], false, "{query}: {d}");
        assert_eq!(d["reason"], "outside_token_boundary", "{query}: {d}");
    }
    app.finish().await;
}

async fn what_patrol_cannot_decide_is_a_400(backend: Backend) {
    let app = spawn(backend).await;
    app.seed().await;
    let token = app
        .fine(json!({"access": "all_memberships", "permissions": ["read_group"]}))
        .await;
    let deep = format!(
        "{{ group(fullPath: \"acme\") {{ {}id{} }} }}",
        "parent { ".repeat(20),
        " }".repeat(20)
    );
    for (body, field) in [
        (
            json!({"token": token, "query": "{ project(fullPath: \"acme/app\") { id }"}),
            "query",
        ),
        (
            json!({"token": token, "query": "{ project(fullPath: \"acme/app\") { nope } }"}),
            "query",
        ),
        (json!({"token": token, "query": deep}), "query"),
        (
            json!({"token": token, "query": "query A { __typename } query B { __typename }"}),
            "operationName",
        ),
        (
            json!({"token": token, "query": "query A { __typename }", "operationName": "B"}),
            "operationName",
        ),
        (
            json!({"token": token, "query": "query($p: ID!) { project(fullPath: $p) { id } }"}),
            "variables",
        ),
        (
            json!({"token": token, "query": "query($p: ID!) { project(fullPath: $p) { id } }",
                "variables": {"p": [1, 2]}}),
            "variables",
        ),
        (
            json!({"token": token, "query": "{ __typename }", "client_ip": "nope"}),
            "client_ip",
        ),
    ] {
        let answer = app.post("/v1/authorize/graphql", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.field(), field, "{body}: {}", answer.text);
    }
    for body in [
        json!({"token": token}),
        json!({"token": token, "query": "{ __typename }", "extra": 1}),
        json!({"token": token, "query": "{ __typename }", "variables": [1]}),
    ] {
        let answer = app.post("/v1/authorize/graphql", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
    }
    app.finish().await;
}
