//! docs/gateway.md shows the gateway configurations the tests run (docs/gateway/*), as
//! they are: one source for the documentation and the differential suite.

use std::path::Path;

#[test]
fn the_gateway_page_shows_the_tested_configurations_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/gateway.md")).unwrap();
    let mut shown = 0;
    for entry in std::fs::read_dir(root.join("docs/gateway")).unwrap() {
        let path = entry.unwrap().path();
        let file = std::fs::read_to_string(&path).unwrap();
        let language = match path.extension().and_then(|e| e.to_str()) {
            Some("conf") => "nginx",
            _ => "yaml",
        };
        let block = format!("```{language}\n{file}```\n");
        assert!(
            page.contains(&block),
            "docs/gateway.md does not show {} as it is: copy the file into its code block",
            path.display()
        );
        shown += 1;
    }
    assert_eq!(
        shown, 5,
        "nginx, Traefik (two files), Envoy over HTTP and over gRPC"
    );
}
