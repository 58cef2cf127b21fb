use std::path::Path;

/// `openapi/openapi.json` is what the handlers' annotations generate today. Regenerate
/// with `cargo run -- openapi > openapi/openapi.json` (or run the tests with
/// `PATROL_UPDATE_ARTIFACTS=1`).
#[test]
fn committed_openapi_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let generated = patrol::http::openapi::document();
    if std::env::var_os("PATROL_UPDATE_ARTIFACTS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}
