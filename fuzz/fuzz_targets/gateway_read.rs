//! The gateway's reading of a request (`patrol::http::gateway::read`): the original URI
//! and headers to the methods, route and credential patrol decides on, against an
//! independent reading of the same bytes as GitLab behind the proxy would see them
//! (`tests/gateway/oracle.rs`, the differential suite's oracle).
//!
//! Input: the original request as nginx forwards it to the upstream, as lines: the
//! method, the request target, then `name: value` header lines, then an empty line and
//! the body. patrol gets it as nginx's `auth_request` sends it (`X-Original-Method`,
//! `X-Original-URI` and the client's headers).
//!
//! Properties: nothing panics; whenever patrol reads the request (no 400, no 401) and
//! GitLab would act on it, patrol's methods resolve to the route GitLab routes to, and
//! the credential patrol read is the token GitLab authenticates.
#![no_main]

#[path = "../../tests/gateway/oracle.rs"]
#[allow(dead_code, reason = "the oracle is shared with the differential suite")]
mod oracle;

use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use patrol::catalog::{Catalog, RouteKind, load_embedded};
use patrol::config::Gateway;
use patrol::http::gateway::read;

use oracle::{Reading, Wire, World};

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| match load_embedded() {
    Ok(catalog) => catalog,
    Err(e) => panic!("the embedded catalog does not load: {e}"),
});

/// The fixture world: GitLab knows these namespaces and tokens.
static WORLD: LazyLock<World> = LazyLock::new(|| World {
    projects: vec![(42, "acme/app".into()), (44, "oss/lib".into())],
    groups: vec![(7, "acme".into()), (9, "oss".into())],
    users: vec![(1, "alice".into()), (2, "bob".into())],
    tokens: vec![
        ("glpat-aaaa".into(), 1, 1, false),
        ("glpat-bbbb".into(), 2, 2, false),
        ("glcbt-jjjj".into(), 3, 1, true),
    ],
});

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b""[..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let (Some(method), Some(target)) = (lines.next(), lines.next()) else {
        return;
    };
    let Ok(method) = std::str::from_utf8(method) else {
        return;
    };
    let mut client: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), value) = (std::str::from_utf8(&line[..colon]), &line[colon + 1..]) else {
            continue;
        };
        // A proxy forwards only what is a header at all; nginx drops `_` names.
        if HeaderName::from_bytes(name.as_bytes()).is_err()
            || HeaderValue::from_bytes(value).is_err()
            || name.contains('_')
            || name.to_ascii_lowercase().starts_with("x-original-")
        {
            continue;
        }
        client.push((name.to_owned(), value.trim_ascii().to_vec()));
    }

    // What nginx sends patrol: the client's headers and the two it sets itself.
    let mut headers = HeaderMap::new();
    for (name, value) in &client {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let (Ok(original_method), Ok(original_uri)) = (
        HeaderValue::from_bytes(method.as_bytes()),
        HeaderValue::from_bytes(target),
    ) else {
        return;
    };
    headers.insert("x-original-method", original_method);
    headers.insert("x-original-uri", original_uri);
    let own: Uri = Uri::from_static(read::PREFIX);
    let Ok(original) = read::original(Gateway::Nginx, &Method::GET, &own, &headers) else {
        return;
    };
    let routes: Vec<(String, bool)> = original
        .methods
        .iter()
        .filter_map(|m| CATALOG.routes.resolve(m, &original.path))
        .map(|found| {
            let protected = matches!(found.entry.kind, RouteKind::Protected { .. });
            (format!("{} {}", found.entry.method, found.entry.path), protected)
        })
        .collect();
    let credential = read::credential(&original.params, &headers, "glcbt-");

    let wire = Wire {
        method,
        target,
        headers: &client,
        body,
    };
    let Reading::Acts { route, token, .. } = oracle::gitlab_reads(&wire, &CATALOG, &WORLD) else {
        return;
    };
    // No route at all: patrol decides `unknown_route`, a denial.
    if routes.is_empty() {
        return;
    }
    assert!(
        routes.iter().any(|(r, _)| *r == route),
        "GitLab routes {method} {:?} to `{route}`, patrol to {routes:?}",
        String::from_utf8_lossy(target)
    );
    // Routes the catalog skips need no credential; a refused one is a 401.
    let (Some(id), Ok(Some(read_token))) = (token, credential) else {
        return;
    };
    let plaintext = WORLD
        .tokens
        .iter()
        .find(|t| t.1 == id)
        .map(|t| t.0.as_str());
    assert_eq!(
        plaintext,
        Some(read_token),
        "GitLab authenticates token {id}, patrol read {read_token:?}: {:?}",
        String::from_utf8_lossy(data)
    );
});
