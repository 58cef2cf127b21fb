//! `RoutePath::parse` and `RouteTable::resolve(method, path)` on the embedded catalog's
//! routes.
//!
//! Input: UTF-8 text `<method> <path>` (split at the first space; no space: the whole
//! input is the path and the method is `GET`).
//!
//! Properties:
//! - neither panics;
//! - a path that reads is read the same again (when it is still visible ASCII);
//! - a match is for the method asked, exactly (or `GET` for `HEAD`);
//! - every path parameter of the matched route is present and is a slice of the read
//!   path itself (not a copy), without `/`;
//! - substituting the parameters into the route's template gives back the read path, or
//!   the read path without its format suffix (`.json`);
//! - resolving again gives the same route.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use patrol::catalog::{Catalog, RoutePath, load_embedded};

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| match load_embedded() {
    Ok(catalog) => catalog,
    Err(e) => panic!("the embedded catalog does not load: {e}"),
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, raw) = text.split_once(' ').unwrap_or(("GET", text));
    let Ok(path) = RoutePath::parse(raw) else {
        return;
    };
    let read = path.as_str();
    if read.bytes().all(|b| b.is_ascii_graphic()) {
        assert_eq!(
            RoutePath::parse(read).as_ref(),
            Ok(&path),
            "{raw:?} reads as {read:?}, which reads otherwise"
        );
    }
    let routes = &CATALOG.routes;
    let Some(found) = routes.resolve(method, &path) else {
        return;
    };
    let entry = found.entry;
    assert!(
        entry.method == method || (method == "HEAD" && entry.method == "GET"),
        "matched a route of another method"
    );

    let span = read.as_ptr() as usize..read.as_ptr() as usize + read.len();
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
            "parameter `{name}` = {value:?} is not a slice of the path {read:?}"
        );
        assert!(
            !value.contains('/'),
            "parameter `{name}` = {value:?} spans segments"
        );
        rebuilt.push(value.to_owned());
    }
    let rebuilt = rebuilt.join("/");
    let bare = read.rsplit_once('.').map(|(bare, _)| bare);
    assert!(
        rebuilt == read || Some(rebuilt.as_str()) == bare,
        "route `{} {}` matched {read:?}, which it does not describe ({rebuilt:?})",
        entry.method,
        entry.path
    );

    // Boundaries name parameters of the route: their values come from the path too.
    for (_, value) in found.boundaries() {
        if let Some(value) = value {
            assert!(read.contains(value));
        }
    }

    let again = routes
        .resolve(method, &path)
        .unwrap_or_else(|| panic!("{read:?} resolves once only"));
    assert!(std::ptr::eq(again.entry, entry), "{read:?} resolves to two routes");
});
