//! `patrol catalog coverage`: how much of a protected application's OpenAPI spec the
//! catalog covers. Each operation is covered (a route requires a permission), skipped
//! (a skipped route, with its reason) or missing.

use std::fmt;
use std::path::Path;

use thiserror::Error;

use serde_json::Value;

use super::{Catalog, RouteKind};

#[derive(Debug, Error)]
pub enum CoverageError {
    #[error("cannot read `{path}`: {message}")]
    Read { path: String, message: String },
    #[error("`{path}` is not an OpenAPI 2 or 3 document: {message}")]
    Spec { path: String, message: String },
}

/// What the catalog says about one operation of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Covered by the catalog route of these permissions.
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
    pub method: String,
    /// The full path as the catalog would write it (`/api/v4/projects/:id`).
    pub path: String,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub operations: Vec<Operation>,
}

impl Report {
    /// Covered or skipped, as a percentage of all operations (100 for an empty spec).
    pub fn percent(&self) -> f64 {
        if self.operations.is_empty() {
            return 100.0;
        }
        let done = self
            .operations
            .iter()
            .filter(|o| o.status != Status::Missing)
            .count();
        done as f64 * 100.0 / self.operations.len() as f64
    }

    pub fn missing(&self) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .filter(|o| o.status == Status::Missing)
    }

    fn count(&self, f: impl Fn(&Status) -> bool) -> usize {
        self.operations.iter().filter(|o| f(&o.status)).count()
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
                    writeln!(f, "skipped  {} {}  ({reason})", o.method, o.path)?
                }
                Status::Missing => writeln!(f, "missing  {} {}", o.method, o.path)?,
            }
        }
        writeln!(
            f,
            "{} operations: {} covered, {} skipped, {} missing ({:.1}% covered or skipped)",
            self.operations.len(),
            self.count(|s| matches!(s, Status::Covered { .. })),
            self.count(|s| matches!(s, Status::Skipped { .. })),
            self.count(|s| *s == Status::Missing),
            self.percent()
        )
    }
}

const METHODS: [&str; 6] = ["get", "put", "post", "delete", "patch", "head"];

/// Reads an OpenAPI 2 or 3 document (JSON or YAML) and checks each operation.
pub fn report(catalog: &Catalog, path: &Path) -> Result<Report, CoverageError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CoverageError::Read {
        path: name.clone(),
        message: e.to_string(),
    })?;
    let spec = parse(&text).map_err(|message| CoverageError::Spec {
        path: name.clone(),
        message,
    })?;
    report_for(catalog, &spec).map_err(|message| CoverageError::Spec {
        path: name,
        message,
    })
}

/// JSON when it parses as JSON, YAML otherwise.
fn parse(text: &str) -> Result<Value, String> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    let node =
        marked_yaml::parse_yaml(0, text).map_err(|e| format!("neither JSON nor YAML: {e}"))?;
    Ok(yaml_to_json(&node))
}

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

/// The path prefix every operation sits under: `basePath` (2) or the path of the
/// first server's URL (3).
fn base_path(spec: &Value) -> Result<String, String> {
    let base = if spec.get("swagger").is_some() {
        spec.get("basePath")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    } else if spec.get("openapi").is_some() {
        let url = spec
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .unwrap_or("");
        match url.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map_or(String::new(), |i| rest[i..].to_owned()),
            None => url.to_owned(),
        }
    } else {
        return Err("it has neither `swagger` nor `openapi`".to_owned());
    };
    Ok(base.trim_end_matches('/').to_owned())
}

fn report_for(catalog: &Catalog, spec: &Value) -> Result<Report, String> {
    let base = base_path(spec)?;
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| "it has no `paths`".to_owned())?;
    let mut operations = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in METHODS.iter().filter(|m| item.contains_key(**m)) {
            let method = method.to_ascii_uppercase();
            let full = format!("{base}{path}");
            let status = match catalog.routes.by_template(&method, &full).map(|e| &e.kind) {
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
            operations.push(Operation {
                method,
                path: full,
                status,
            });
        }
    }
    operations.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(Report { operations })
}
