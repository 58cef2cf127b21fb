//! The generated artifacts stay true to their sources, and the shipped catalog keeps the
//! promises of the design contract (DESIGN.md section 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod adding_permissions;
mod design_contract;
mod gateway_docs;
mod gitlab_vocabulary;
mod openapi_document;
mod permissions_page;

use std::sync::OnceLock;

use patrol::catalog::{Catalog, LoadError};

/// The shipped catalog, loaded once for the whole suite.
fn shipped() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| match patrol::catalog::load_embedded() {
        Ok(catalog) => catalog,
        Err(LoadError::Invalid(violations)) => {
            let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
            panic!("the shipped catalog has violations:\n{}", listed.join("\n"))
        }
        Err(e) => panic!("the shipped catalog does not load: {e}"),
    })
}
