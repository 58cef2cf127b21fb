//! What a request needs, worked out: a GraphQL operation planned from its text (parse,
//! validate against the shipped schema, walk) beside a REST route resolved through the
//! catalog, in one run. `cargo bench -p patrol-benches --bench graphql`; the figures are
//! in docs/performance.md.
#![allow(clippy::unwrap_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use patrol::catalog::RoutePath;
use patrol::catalog::graphql::plan::{Limits, plan};

/// A project's issues with their notes: what an issue board asks for.
const ISSUES: &str = r#"query Issues($path: ID!) {
  project(fullPath: $path) {
    name
    issues(state: opened) { nodes { iid title author { username } notes { nodes { body } } } }
  }
}"#;

const MUTATION: &str = r#"mutation { updateIssue(input: {projectPath: "acme/app", iid: "1", title: "t"}) {
  issue { title } errors } }"#;

fn bench(c: &mut Criterion) {
    let catalog = patrol::catalog::load_embedded().unwrap();
    let mut variables = serde_json::Map::new();
    variables.insert("path".to_owned(), "acme/app".into());
    let none = serde_json::Map::new();
    let needs = plan(&catalog, Limits::default(), ISSUES, None, &variables).unwrap();
    assert_eq!(needs.len(), 4, "{needs:?}");
    assert_eq!(
        plan(&catalog, Limits::default(), MUTATION, None, &none)
            .unwrap()
            .len(),
        2
    );
    let path = RoutePath::parse("/api/v4/projects/acme%2Fapp/issues").unwrap();
    assert!(catalog.routes.resolve("GET", &path).is_some());

    let mut group = c.benchmark_group("needs");
    group.bench_function("rest/route", |b| {
        b.iter(|| catalog.routes.resolve("GET", black_box(&path)).is_some());
    });
    group.bench_function("graphql/query", |b| {
        b.iter(|| {
            plan(
                &catalog,
                Limits::default(),
                black_box(ISSUES),
                None,
                &variables,
            )
            .map(|n| n.len())
        });
    });
    group.bench_function("graphql/mutation", |b| {
        b.iter(|| {
            plan(
                &catalog,
                Limits::default(),
                black_box(MUTATION),
                None,
                &none,
            )
            .map(|n| n.len())
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
