//! `patrol catalog coverage`: how much of a protected application's OpenAPI spec the
//! catalog covers. Each operation is covered (a route requires a permission), skipped
//! (a skipped route, with its reason) or missing.
//!
//! Operations are matched to catalog routes by shape: the spec's `/projects/{project_id}`
//! is the catalog's `/projects/:id`, whatever the parameters are called.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};
use thiserror::Error;

use super::{Catalog, Origin, RouteKind};

#[derive(Debug, Error)]
pub enum CoverageError {
    /// The file cannot be read at all.
    #[error("cannot read `{path}`: {message}")]
    Read { path: String, message: String },
    /// The file is not well-formed JSON or YAML.
    #[error("`{path}` is not valid {format}: {message}")]
    Parse {
        path: String,
        format: &'static str,
        message: String,
    },
    /// Well-formed, but not an OpenAPI 2 or 3 document.
    #[error("`{path}` is not an OpenAPI 2 or 3 document: {message}")]
    Spec { path: String, message: String },
}

/// What the catalog says about one operation of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Covered by a catalog route that requires these permissions: the one it is listed
    /// under first, then what it also requires.
    Covered {
        permissions: Vec<String>,
    },
    /// A skipped route, with its reason.
    Skipped {
        reason: String,
    },
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Upper case: `GET`.
    pub method: String,
    /// The base path and the spec's path template: `/api/v4/projects/{id}/issues`.
    pub path: String,
    pub status: Status,
    /// Where the catalog route that covers or skips the operation is written.
    pub route: Option<Origin>,
}

/// How many operations have each status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub total: usize,
    pub covered: usize,
    pub skipped: usize,
    pub missing: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Sorted by path, then method.
    pub operations: Vec<Operation>,
}

impl Report {
    /// Covered or skipped, as a percentage of all operations (100 for an empty spec).
    pub fn percent(&self) -> f64 {
        let summary = self.summary();
        if summary.total == 0 {
            return 100.0;
        }
        (summary.covered + summary.skipped) as f64 * 100.0 / summary.total as f64
    }

    pub fn missing(&self) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .filter(|o| o.status == Status::Missing)
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            total: self.operations.len(),
            ..Summary::default()
        };
        for o in &self.operations {
            match o.status {
                Status::Covered { .. } => summary.covered += 1,
                Status::Skipped { .. } => summary.skipped += 1,
                Status::Missing => summary.missing += 1,
            }
        }
        summary
    }

    /// The operation with this method and path as the report writes them.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|o| o.method.eq_ignore_ascii_case(method) && o.path == path)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.operations {
            match &o.status {
                Status::Covered { permissions } => writeln!(
                    f,
                    "covered  {} {}  {}",
                    o.method,
                    o.path,
                    permissions.join(", ")
                )?,
                Status::Skipped { reason } => {
                    writeln!(f, "skipped  {} {}  ({reason})", o.method, o.path)?;
                }
                Status::Missing => writeln!(f, "missing  {} {}", o.method, o.path)?,
            }
        }
        let s = self.summary();
        writeln!(
            f,
            "{} operations: {} covered, {} skipped, {} missing ({:.1}% covered or skipped)",
            s.total,
            s.covered,
            s.skipped,
            s.missing,
            self.percent()
        )
    }
}

/// The operations of a path item; anything else in it (`parameters`, `summary`,
/// `servers`, `x-...`) is not an operation.
const METHODS: [&str; 6] = ["get", "put", "post", "delete", "patch", "head"];

/// Reads an OpenAPI 2 or 3 document (JSON or YAML) and checks each operation against
/// the catalog.
pub fn report(catalog: &Catalog, path: &Path) -> Result<Report, CoverageError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CoverageError::Read {
        path: name.clone(),
        message: e.to_string(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let spec = parse(path, text).map_err(|(format, message)| CoverageError::Parse {
        path: name.clone(),
        format,
        message,
    })?;
    let operations = operations(&spec).map_err(|message| CoverageError::Spec {
        path: name,
        message,
    })?;
    Ok(classify(catalog, operations))
}

/// Checks operations given as (method, full path) against the catalog.
pub fn classify(
    catalog: &Catalog,
    operations: impl IntoIterator<Item = (String, String)>,
) -> Report {
    let mut operations: Vec<Operation> = operations
        .into_iter()
        .map(|(method, path)| {
            let method = method.to_ascii_uppercase();
            let entry = catalog.routes.by_template(&method, &path);
            let status = match entry.map(|e| &e.kind) {
                Some(RouteKind::Protected { required, .. }) => Status::Covered {
                    permissions: required
                        .iter()
                        .map(|&id| catalog.permission(id).name.clone())
                        .collect(),
                },
                Some(RouteKind::Skipped { reason }) => Status::Skipped {
                    reason: (*reason).to_owned(),
                },
                None => Status::Missing,
            };
            Operation {
                method,
                path,
                status,
                route: entry.map(|e| e.origin.clone()),
            }
        })
        .collect();
    operations.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.method.cmp(&b.method)));
    Report { operations }
}

/// By extension: `.json` is JSON, `.yaml`/`.yml` YAML; otherwise JSON when the text
/// starts like a JSON object, else YAML. The error names the format that was tried.
fn parse(path: &Path, text: &str) -> Result<Value, (&'static str, String)> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match extension.as_deref() {
        Some("json") => true,
        Some("yaml" | "yml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    if json {
        serde_json::from_str(text).map_err(|e| ("JSON", e.to_string()))
    } else {
        parse_yaml(text).map_err(|e| ("YAML", e))
    }
}

/// A YAML document as JSON, every scalar a string.
pub(crate) fn parse_yaml(text: &str) -> Result<Value, String> {
    let node = marked_yaml::parse_yaml(0, text).map_err(|e| yaml_error(&e))?;
    Ok(yaml_to_json(&node))
}

/// marked-yaml writes `line:column: Message`; say which is which and keep its words
/// lower case.
fn yaml_error(e: &marked_yaml::LoadError) -> String {
    let message = e.to_string();
    let mut parts = message.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(line), Some(column), Some(rest))
            if line.parse::<usize>().is_ok() && column.parse::<usize>().is_ok() =>
        {
            format!(
                "line {line} column {column}: {}",
                lowercase_first(rest.trim())
            )
        }
        _ => lowercase_first(&message),
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// Every YAML scalar becomes a JSON string: only keys and a few strings matter here.
fn yaml_to_json(node: &marked_yaml::Node) -> Value {
    match node {
        marked_yaml::Node::Scalar(s) => Value::String(s.as_str().to_owned()),
        marked_yaml::Node::Sequence(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect())
        }
        marked_yaml::Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_owned(), yaml_to_json(v)))
                .collect(),
        ),
    }
}

/// A version written as a string or (JSON) a number.
fn version(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

/// The operations of a spec as (method, base path + path template).
fn operations(spec: &Value) -> Result<Vec<(String, String)>, String> {
    let doc = spec
        .as_object()
        .ok_or_else(|| "its top level is not a mapping".to_owned())?;
    let base = if let Some(v) = doc.get("openapi") {
        let v = version(v);
        if !v.starts_with("3.") {
            return Err(format!(
                "`openapi` is `{v}`; only OpenAPI 3.x and Swagger 2.0 are supported"
            ));
        }
        server_path(doc)?
    } else if let Some(v) = doc.get("swagger") {
        let v = version(v);
        if v != "2.0" && v != "2" {
            return Err(format!(
                "`swagger` is `{v}`; only Swagger 2.0 and OpenAPI 3.x are supported"
            ));
        }
        match doc.get("basePath") {
            None => String::new(),
            Some(Value::String(base)) => normalize_base(base),
            Some(_) => return Err("`basePath` is not a string".to_owned()),
        }
    } else {
        return Err("it has neither `swagger` nor `openapi`".to_owned());
    };
    let paths = match doc.get("paths") {
        Some(Value::Object(paths)) => paths,
        Some(_) => return Err("`paths` is not a mapping".to_owned()),
        None => return Err("it has no `paths`".to_owned()),
    };
    let mut operations = Vec::new();
    for (path, item) in paths {
        if path.starts_with("x-") {
            continue;
        }
        let item = path_item(spec, path, item)?;
        let full = if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        };
        for method in METHODS {
            if item.iter().any(|i| i.contains_key(method)) {
                operations.push((method.to_ascii_uppercase(), full.clone()));
            }
        }
    }
    Ok(operations)
}

/// A path item and, when it has a `$ref` to another part of the document, the item
/// that refers to. References to other files cannot be followed.
fn path_item<'a>(
    spec: &'a Value,
    path: &str,
    item: &'a Value,
) -> Result<Vec<&'a Map<String, Value>>, String> {
    let Some(item) = item.as_object() else {
        return Err(format!("path `{path}` is not a mapping"));
    };
    let mut items = vec![item];
    if let Some(reference) = item.get("$ref") {
        let target = reference
            .as_str()
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| spec.pointer(pointer))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                format!(
                    "path `{path}` refers to `{}`, which is not a path item of this document",
                    version(reference)
                )
            })?;
        items.push(target);
    }
    Ok(items)
}

/// OpenAPI 3: the path of the first server's URL, its variables replaced by their
/// defaults (`https://{host}/api/v4` is `/api/v4`). No servers means `/`.
fn server_path(doc: &Map<String, Value>) -> Result<String, String> {
    let Some(server) = doc.get("servers").and_then(|s| s.get(0)) else {
        return Ok(String::new());
    };
    let Some(url) = server.get("url").and_then(Value::as_str) else {
        return Err("`servers[0]` has no `url`".to_owned());
    };
    let mut url = url.to_owned();
    if let Some(variables) = server.get("variables").and_then(Value::as_object) {
        for (name, variable) in variables {
            if let Some(default) = variable.get("default") {
                let default = match default {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                url = url.replace(&format!("{{{name}}}"), &default);
            }
        }
    }
    // Drop the scheme and authority: `https://host`, `//host`.
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => match url.strip_prefix("//") {
            Some(rest) => rest.find('/').map_or("", |i| &rest[i..]),
            None => url.as_str(),
        },
    };
    Ok(normalize_base(path))
}

/// `/api/v4/` and `api/v4` are `/api/v4`; `/` is empty. Query and fragment are dropped.
fn normalize_base(base: &str) -> String {
    let base = base.split(['?', '#']).next().unwrap_or_default();
    let base = base.trim().trim_end_matches('/');
    if base.is_empty() || base == "." {
        String::new()
    } else if base.starts_with('/') {
        base.to_owned()
    } else {
        format!("/{base}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(spec: Value) -> Result<Vec<(String, String)>, String> {
        operations(&spec)
    }

    fn op(method: &str, path: &str) -> (String, String) {
        (method.to_owned(), path.to_owned())
    }

    #[test]
    fn base_paths_come_from_base_path_or_the_first_server() {
        let base = |spec: Value| server_path(spec.as_object().unwrap()).unwrap();
        assert_eq!(
            base(json!({"servers": [{"url": "https://gitlab.example.com/api/v4"}]})),
            "/api/v4"
        );
        assert_eq!(
            base(
                json!({"servers": [{"url": "https://gitlab.example.com/api/v4/"}, {"url": "/x"}]})
            ),
            "/api/v4"
        );
        assert_eq!(base(json!({"servers": [{"url": "/api/v4"}]})), "/api/v4");
        assert_eq!(
            base(json!({"servers": [{"url": "//gitlab.example.com/api/v4?x=1"}]})),
            "/api/v4"
        );
        assert_eq!(
            base(json!({"servers": [{"url": "https://gitlab.example.com"}]})),
            ""
        );
        assert_eq!(base(json!({"servers": [{"url": "/"}]})), "");
        assert_eq!(base(json!({})), "");
        assert_eq!(
            base(json!({"servers": [{
                "url": "{scheme}://{host}/api/{version}",
                "variables": {
                    "scheme": {"default": "https"},
                    "host": {"default": "gitlab.com"},
                    "version": {"default": "v4", "enum": ["v4"]}
                }
            }]})),
            "/api/v4"
        );
        assert_eq!(normalize_base("api/v4/"), "/api/v4");
    }

    #[test]
    fn operations_are_methods_of_path_items_under_the_base() {
        let found = ops(json!({
            "swagger": "2.0",
            "basePath": "/api",
            "paths": {
                "/v4/user": {"get": {}, "parameters": [], "x-internal": {"get": {}}, "options": {}},
                "x-extension": {"get": {}},
                "/v4/projects/{id}": {"get": {}, "put": {}, "delete": {}, "head": {}, "patch": {}, "post": {}}
            }
        }))
        .unwrap();
        assert_eq!(found.len(), 7);
        assert!(found.contains(&op("GET", "/api/v4/user")));
        assert!(found.contains(&op("HEAD", "/api/v4/projects/{id}")));
        assert!(!found.iter().any(|(_, p)| p.contains("x-")));
    }

    #[test]
    fn local_path_item_references_are_followed() {
        let found = ops(json!({
            "openapi": "3.1.0",
            "paths": {"/user": {"$ref": "#/components/pathItems/user"}},
            "components": {"pathItems": {"user": {"get": {}, "patch": {}}}}
        }))
        .unwrap();
        assert_eq!(found, [op("GET", "/user"), op("PATCH", "/user")]);
        let err = ops(json!({
            "openapi": "3.1.0",
            "paths": {"/user": {"$ref": "other.yaml#/user"}}
        }))
        .unwrap_err();
        assert!(err.contains("`other.yaml#/user`"), "{err}");
    }

    #[test]
    fn other_documents_are_refused_with_what_is_wrong() {
        let err = |spec: Value| ops(spec).unwrap_err();
        assert!(err(json!({"paths": {}})).contains("neither `swagger` nor `openapi`"));
        assert!(err(json!({"swagger": "1.2", "paths": {}})).contains("`swagger` is `1.2`"));
        assert!(err(json!({"openapi": "2.0", "paths": {}})).contains("`openapi` is `2.0`"));
        assert!(err(json!({"openapi": "3.0.0"})).contains("no `paths`"));
        assert!(err(json!({"openapi": "3.0.0", "paths": []})).contains("`paths` is not a mapping"));
        assert!(err(json!(["openapi"])).contains("top level"));
        assert!(
            ops(json!({"swagger": 2.0, "paths": {}}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn yaml_and_json_are_told_apart() {
        let yaml = "openapi: 3.0.3\npaths:\n  /user:\n    get: {}\n";
        let spec = parse(Path::new("spec.yaml"), yaml).unwrap();
        assert_eq!(ops(spec).unwrap(), [op("GET", "/user")]);
        let spec = parse(Path::new("spec"), r#"{"swagger": "2.0", "paths": {}}"#).unwrap();
        assert_eq!(spec["swagger"], "2.0");
        let (format, message) = parse(Path::new("spec.json"), "{\"swagger\": ").unwrap_err();
        assert_eq!(format, "JSON");
        assert!(message.contains("line 1"), "{message}");
        let (format, message) = parse(Path::new("spec.yml"), "paths: [\n").unwrap_err();
        assert_eq!(format, "YAML");
        assert!(message.starts_with("line "), "{message}");
    }

    #[test]
    fn an_empty_report_is_complete() {
        let report = Report {
            operations: Vec::new(),
        };
        assert_eq!(report.percent(), 100.0);
        assert_eq!(
            report.to_string(),
            "0 operations: 0 covered, 0 skipped, 0 missing (100.0% covered or skipped)\n"
        );
    }
}
