//! What a GraphQL operation needs (DESIGN.md section 11), worked out from the query on
//! the shipped catalog and its GitLab schema: every check with its path, the catalog
//! entry that asked, the permission and the boundary.

use patrol::catalog::graphql::plan::{Boundary, Limits, Need, PlanError, plan};
use patrol::catalog::{Catalog, load_embedded};
use serde_json::{Value, json};

fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| load_embedded().unwrap())
}

fn needs_with(query: &str, variables: Value) -> Result<Vec<Need>, PlanError> {
    let Value::Object(variables) = variables else {
        panic!("variables are an object")
    };
    plan(catalog(), Limits::default(), query, None, &variables)
}

/// Each need as `path element permission @ boundary`.
fn shown(query: &str, variables: Value) -> Vec<String> {
    let c = catalog();
    needs_with(query, variables)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .into_iter()
        .map(|n| {
            let permission = n
                .permission
                .map_or("-", |id| c.permission(id).name.as_str());
            let at = match &n.boundary {
                Boundary::ProjectId(id) => format!("project {id}"),
                Boundary::ProjectPath(p) => format!("project {p}"),
                Boundary::GroupId(id) => format!("group {id}"),
                Boundary::GroupPath(p) => format!("group {p}"),
                Boundary::User => "user".to_owned(),
                Boundary::Instance => "instance".to_owned(),
                Boundary::Unresolved(why) => format!("unresolved ({why})"),
            };
            format!("{} {} {permission} @ {at}", n.path, n.element)
        })
        .collect()
}

/// Asserts the needs of `query`, one line each.
#[track_caller]
fn expect(query: &str, variables: Value, lines: &[&str]) {
    assert_eq!(shown(query, variables), lines, "{query}");
}

/// The 400 a request gets: the field at fault and a part of the message.
#[track_caller]
fn refused(query: &str, operation: Option<&str>, variables: Value, field: &str, says: &str) {
    let Value::Object(variables) = variables else {
        panic!("variables are an object")
    };
    let err = plan(catalog(), Limits::default(), query, operation, &variables).expect_err(query);
    assert_eq!(err.field(), field, "{query}: {err}");
    assert!(err.to_string().contains(says), "{query}: {err}");
}

#[test]
fn nested_resources_take_the_boundary_of_the_object_above_them() {
    expect(
        r#"query { project(fullPath: "acme/app") { name issues { nodes { title author { username } notes { nodes { body } } } } } }"#,
        json!({}),
        &[
            "project Query.project read_project @ project acme/app",
            "project.issues Project.issues read_issue @ project acme/app",
            "project.issues.nodes Issue read_issue @ project acme/app",
            "project.issues.nodes.notes.nodes Note read_note @ project acme/app",
        ],
    );
    // A group's projects lie in the group: what is read under them is decided there.
    expect(
        r#"{ group(fullPath: "acme") { projects { nodes { issues { nodes { title } } } } } }"#,
        json!({}),
        &[
            "group Query.group read_group @ group acme",
            "group.projects Group.projects read_group @ group acme",
            "group.projects.nodes.issues Project.issues read_issue @ group acme",
            "group.projects.nodes.issues.nodes Issue read_issue @ group acme",
        ],
    );
}

#[test]
fn an_object_the_catalog_does_not_place_is_unresolved_below() {
    // A merge request's source project may be a fork anywhere: nothing under it is
    // decided on the project above.
    expect(
        r#"{ project(fullPath: "acme/app") { mergeRequest(iid: "1") { sourceProject { issues { nodes { title } } } } } }"#,
        json!({}),
        &[
            "project Query.project read_project @ project acme/app",
            "project.mergeRequest Project.mergeRequest read_merge_request @ project acme/app",
            "project.mergeRequest MergeRequest read_merge_request @ project acme/app",
            "project.mergeRequest.sourceProject.issues Project.issues read_issue @ unresolved (`MergeRequest.sourceProject` returns a `Project` the catalog does not place)",
            "project.mergeRequest.sourceProject.issues.nodes Issue read_issue @ unresolved (`MergeRequest.sourceProject` returns a `Project` the catalog does not place)",
        ],
    );
    // Every project the user can see: no one boundary.
    expect(
        "{ projects { nodes { issues { nodes { title } } } } }",
        json!({}),
        &[
            "projects Query.projects read_user_project @ user",
            "projects.nodes.issues Project.issues read_issue @ unresolved (`Query.projects` is not placed in a project or a group)",
            "projects.nodes.issues.nodes Issue read_issue @ unresolved (`Query.projects` is not placed in a project or a group)",
        ],
    );
    // The user's own merge requests are in many projects.
    expect(
        "{ currentUser { username todos { nodes { id } } authoredMergeRequests { nodes { title } } } }",
        json!({}),
        &[
            "currentUser Query.currentUser read_user @ user",
            "currentUser.todos User.todos read_todo @ user",
            "currentUser.todos.nodes Todo read_todo @ user",
            "currentUser.authoredMergeRequests User.authoredMergeRequests read_user_merge_request @ user",
            "currentUser.authoredMergeRequests.nodes MergeRequest read_merge_request @ unresolved (`MergeRequest` needs `read_merge_request` on a project or group, and the object above it is a user)",
        ],
    );
    // An issue's author is a user, not the project: the project's boundary stops there.
    expect(
        r#"{ project(fullPath: "acme/app") { issue(iid: "1") { author { authoredMergeRequests { nodes { title } } } } } }"#,
        json!({}),
        &[
            "project Query.project read_project @ project acme/app",
            "project.issue Project.issue read_issue @ project acme/app",
            "project.issue Issue read_issue @ project acme/app",
            "project.issue.author.authoredMergeRequests User.authoredMergeRequests read_user_merge_request @ user",
            "project.issue.author.authoredMergeRequests.nodes MergeRequest read_merge_request @ unresolved (`MergeRequest` needs `read_merge_request` on a project or group, and the object above it is a user)",
        ],
    );
}

#[test]
fn mutations_by_path_and_by_global_id() {
    expect(
        r#"mutation { updateIssue(input: {projectPath: "acme/app", iid: "1", title: "x"}) { issue { title } errors } }"#,
        json!({}),
        &[
            "updateIssue Mutation.updateIssue update_issue @ project acme/app",
            "updateIssue.issue Issue read_issue @ project acme/app",
        ],
    );
    expect(
        r#"mutation { mergeRequestCreate(input: {projectPath: "acme/app", title: "t", sourceBranch: "a", targetBranch: "main"}) { errors } }"#,
        json!({}),
        &["mergeRequestCreate Mutation.mergeRequestCreate create_merge_request @ project acme/app"],
    );
    // A global id of a project or a group names its boundary; of anything else, none.
    expect(
        r#"mutation { createAnnotation(input: {environmentId: "gid://gitlab/Environment/3", dashboardPath: "d", startingAt: "2020-01-01T00:00:00Z", description: "d"}) { errors } }"#,
        json!({}),
        &[
            "createAnnotation Mutation.createAnnotation update_environment @ unresolved (`input.environmentId` is the global id of `Environment` 3, not of a project)",
        ],
    );
    expect(
        r#"mutation { updateNote(input: {id: "gid://gitlab/Note/5", body: "x"}) { note { body } errors } }"#,
        json!({}),
        &[
            "updateNote Mutation.updateNote update_note @ unresolved (`input.id` is the global id of `Note` 5, not of a project)",
            "updateNote.note Note read_note @ unresolved (`Mutation.updateNote` is not placed in a project or a group)",
        ],
    );
}

#[test]
fn fragments_aliases_and_directives_never_hide_a_field() {
    // Two aliases of one field are two checks, each at its own path and boundary; a
    // named fragment, an inline one and `@skip` / `@include` change nothing.
    expect(
        r#"query Two($skip: Boolean = true) {
             mine: project(fullPath: "acme/app") { ...Issues }
             theirs: project(fullPath: "oss/lib") @skip(if: $skip) { ... on Project { labels { nodes { title } } } }
             hidden: group(fullPath: "acme") @include(if: false) { name }
           }
           fragment Issues on Project { open: issues(state: opened) { nodes { title } } }"#,
        json!({}),
        &[
            "mine Query.project read_project @ project acme/app",
            "mine.open Project.issues read_issue @ project acme/app",
            "mine.open.nodes Issue read_issue @ project acme/app",
            "theirs Query.project read_project @ project oss/lib",
            "theirs.labels Project.labels read_label @ project oss/lib",
            "theirs.labels.nodes Label read_label @ project oss/lib",
            "hidden Query.group read_group @ group acme",
        ],
    );
}

#[test]
fn variables_name_boundaries() {
    let query =
        r#"mutation Update($input: UpdateIssueInput!) { updateIssue(input: $input) { errors } }"#;
    expect(
        query,
        json!({"input": {"projectPath": "acme/web/site", "iid": "3"}}),
        &["updateIssue Mutation.updateIssue update_issue @ project acme/web/site"],
    );
    let query = r#"query P($path: ID!) { project(fullPath: $path) { id } }"#;
    expect(
        query,
        json!({"path": "acme/app"}),
        &["project Query.project read_project @ project acme/app"],
    );
    // A variable inside an input object written in the query.
    expect(
        r#"mutation ($p: ID!) { updateIssue(input: {projectPath: $p, iid: "1"}) { errors } }"#,
        json!({"p": "oss/lib"}),
        &["updateIssue Mutation.updateIssue update_issue @ project oss/lib"],
    );
    // A variable of the wrong type, or a required one missing, is the request's fault.
    refused(query, None, json!({"path": {"a": 1}}), "variables", "");
    refused(query, None, json!({}), "variables", "");
}

#[test]
fn introspection_and_typename_need_nothing() {
    expect("{ __typename }", json!({}), &[]);
    expect(
        "{ __schema { queryType { name } types { name fields { name } } } __type(name: \"Project\") { name } }",
        json!({}),
        &[],
    );
    // `echo` is skipped in the catalog: a valid token is enough.
    expect(r#"{ echo(text: "hi") }"#, json!({}), &[]);
}

#[test]
fn a_root_field_no_permission_covers_is_denied() {
    // The fixture catalog covers `Project.issues` only: its root fields are uncovered.
    let fixture = patrol::catalog::load_dir(&crate::fixture("catalog/valid")).unwrap();
    let needs = plan(
        &fixture,
        Limits::default(),
        r#"{ echo(text: "a") project(fullPath: "acme/app") { issues { nodes { title } } } }"#,
        None,
        &serde_json::Map::new(),
    )
    .unwrap();
    let lines: Vec<String> = needs
        .iter()
        .map(|n| {
            let permission = n
                .permission
                .map_or("-", |id| fixture.permission(id).name.as_str());
            format!("{} {} {permission} {:?}", n.path, n.element, n.boundary)
        })
        .collect();
    assert_eq!(
        lines,
        [
            "echo Query.echo - Unresolved(\"no permission of the catalog covers `Query.echo`\")",
            "project Query.project - Unresolved(\"no permission of the catalog covers `Query.project`\")",
            "project.issues Project.issues read_issue Unresolved(\"`Query.project` returns a `Project` the catalog does not place\")",
        ]
    );
}

/// An entry on an interface reaches every object type that implements it, and one on
/// an object type reaches a field selected through an interface it implements.
#[test]
fn entries_on_interfaces_reach_their_object_types() {
    let root = crate::fixture("catalog/valid");
    let mut files = crate::fixture_files(&root);
    for (path, text) in &mut files {
        if path.ends_with("graphql/schema.graphql") {
            *text = text
                .replace(
                    "type Issue {",
                    "interface Titled {\n  title: String!\n}\n\ntype Issue implements Titled {",
                )
                .replace(
                    "  issues: IssueConnection\n",
                    "  issues: IssueConnection\n  titled: [Titled]\n",
                );
        }
        if path.ends_with("planning/issue.yml") {
            *text = text.replace(
                "      - field: Project.issues\n",
                "      - field: Project.issues\n      - type: Titled\n",
            );
        }
    }
    let catalog = patrol::catalog::load_files(&root, files).unwrap();
    let shown = |query: &str| -> Vec<String> {
        plan(
            &catalog,
            Limits::default(),
            query,
            None,
            &serde_json::Map::new(),
        )
        .unwrap()
        .iter()
        .filter_map(|n| {
            n.permission
                .map(|id| format!("{} {} {}", n.path, n.element, catalog.permission(id).name))
        })
        .collect()
    };
    assert_eq!(
        shown(r#"{ project(fullPath: "a") { issues { nodes { title } } } }"#),
        [
            "project.issues Project.issues read_issue",
            "project.issues.nodes Titled read_issue"
        ]
    );
    // Through the interface: the entry on `Titled`, and through a fragment on `Issue`.
    assert_eq!(
        shown(r#"{ project(fullPath: "a") { titled { title ... on Issue { iid } } } }"#),
        ["project.titled Titled read_issue"]
    );
}

#[test]
fn what_is_not_decided_is_a_400_naming_the_problem() {
    refused(
        "{ project(fullPath: \"a\") { id }",
        None,
        json!({}),
        "query",
        "",
    );
    refused(
        "{ project(fullPath: \"a\") { nope } }",
        None,
        json!({}),
        "query",
        "nope",
    );
    refused("{ nothing }", None, json!({}), "query", "nothing");
    refused(
        "query A { __typename } query B { __typename }",
        None,
        json!({}),
        "operationName",
        "",
    );
    refused(
        "query A { __typename }",
        Some("B"),
        json!({}),
        "operationName",
        "B",
    );
    refused(
        &format!("{{ echo(text: \"{}\") }}", "x".repeat(70_000)),
        None,
        json!({}),
        "query",
        "bytes",
    );
    // Twenty-one levels of fields.
    let deep = format!(
        "{{ group(fullPath: \"a\") {{ {}id{} }} }}",
        "parent { ".repeat(19),
        " }".repeat(19)
    );
    refused(&deep, None, json!({}), "query", "deep");
    // Fifteen levels are the limit: the root field, thirteen parents and `id`.
    let fifteen = format!(
        "{{ group(fullPath: \"a\") {{ {}id{} }} }}",
        "parent { ".repeat(13),
        " }".repeat(13)
    );
    assert!(needs_with(&fifteen, json!({})).is_ok());
    // A fragment spread three times at each of eight levels: 3^8 copies of its fields.
    let mut bomb = String::from("fragment F0 on Project { id name fullPath }\n");
    for i in 1..=8 {
        bomb.push_str(&format!(
            "fragment F{i} on Project {{ ...F{p} ... on Project {{ ...F{p} }} ... on Project {{ ...F{p} }} }}\n",
            p = i - 1
        ));
    }
    bomb.push_str("{ project(fullPath: \"a\") { ...F8 } }");
    refused(&bomb, None, json!({}), "query", "fields");
    // A list of 700 ids under 768 copies of one field: 537,600 checks, refused at 4,000.
    let f0: Vec<String> = (0..3)
        .map(|i| format!("a{i}: vulnerabilities(projectId: $p) {{ __typename }}"))
        .collect();
    let mut fanout = format!(
        "query($p: [ID!]) {{ ...F4 }}\nfragment F0 on Query {{ {} }}\n",
        f0.join(" ")
    );
    for level in 1..=4 {
        fanout.push_str(&format!(
            "fragment F{level} on Query {{ {}}}\n",
            format!("...F{} ", level - 1).repeat(4)
        ));
    }
    let ids: Vec<u64> = (0..700).collect();
    refused(&fanout, None, json!({"p": ids}), "query", "checks");
    // A fragment that spreads itself never validates.
    refused(
        "fragment A on Project { ...B } fragment B on Project { ...A } { project(fullPath: \"a\") { ...A } }",
        None,
        json!({}),
        "query",
        "",
    );
}
