//! `RouteTable::resolve(method, path)` on the embedded catalog's routes.
//!
//! Input: UTF-8 text `<method> <path>` (split at the first space; no space: the whole
//! input is the path and the method is `GET`).
//!
//! Properties:
//! - `resolve` never panics;
//! - a match is for the method asked (case-insensitively);
//! - every path parameter of the matched route is present and is a slice of the
//!   request path itself (not a copy, not decoded), without `/`;
//! - substituting the parameters into the route's template gives back the request path
//!   as `resolve` normalises it (query string cut, one trailing slash dropped);
//! - the query string plays no part: the normalised path resolves to the same route.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use patrol::catalog::{Catalog, load_embedded};

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| match load_embedded() {
    Ok(catalog) => catalog,
    Err(e) => panic!("the embedded catalog does not load: {e}"),
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, path) = text.split_once(' ').unwrap_or(("GET", text));
    let routes = &CATALOG.routes;
    let Some(found) = routes.resolve(method, path) else {
        return;
    };
    let entry = found.entry;
    assert_eq!(
        entry.method,
        method.to_ascii_uppercase(),
        "matched a route of another method"
    );

    // What resolve matches against.
    let normalised = path.split_once('?').map_or(path, |(p, _)| p);
    let normalised = match normalised.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => normalised,
    };

    let span = path.as_ptr() as usize..path.as_ptr() as usize + path.len();
    let mut rebuilt = Vec::new();
    for segment in entry.path.split('/') {
        let name = segment
            .strip_prefix(':')
            .or_else(|| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
        let Some(name) = name else {
            rebuilt.push(segment.to_owned());
            continue;
        };
        let value = found
            .param(name)
            .unwrap_or_else(|| panic!("route `{}` matched without `{name}`", entry.path));
        let start = value.as_ptr() as usize;
        assert!(
            span.contains(&start) && start + value.len() <= span.end || value.is_empty(),
            "parameter `{name}` = {value:?} is not a slice of the path {path:?}"
        );
        assert!(
            path.contains(value),
            "parameter `{name}` = {value:?} is not a substring of the path {path:?}"
        );
        assert!(
            !value.contains('/'),
            "parameter `{name}` = {value:?} spans segments"
        );
        rebuilt.push(value.to_owned());
    }
    assert_eq!(
        rebuilt.join("/"),
        normalised,
        "route `{} {}` matched a path it does not describe",
        entry.method,
        entry.path
    );

    // Boundaries name parameters of the route: their values come from the path too.
    for (_, value) in found.boundaries() {
        if let Some(value) = value {
            assert!(path.contains(value));
        }
    }

    let again = routes
        .resolve(method, normalised)
        .unwrap_or_else(|| panic!("{normalised:?} does not resolve but {path:?} does"));
    assert!(
        std::ptr::eq(again.entry, entry),
        "{normalised:?} and {path:?} resolve to different routes"
    );
});
