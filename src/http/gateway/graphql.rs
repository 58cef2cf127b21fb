//! GitLab's GraphQL endpoint at the gateway (DESIGN.md section 11): `POST /api/graphql`
//! is decided from the body the proxy forwards (Envoy `with_request_body`, Traefik
//! `forwardBody`), read as GitLab's Rails stack reads it, and `GET /api/graphql` from
//! its query string. Each operation is decided as `/v1/authorize/graphql` decides it.
//!
//! Rails merges a JSON body's top-level keys into the request's parameters: a
//! credential there (`private_token`, `access_token`, ...) is one GitLab would use, so
//! it joins the query's parameters before the credential is read, and a GraphQL
//! parameter given both in the query string and in the body is refused. What cannot be
//! read as GitLab reads it is a 400, and a proxy denies that: a body that may be a form
//! (patrol cannot see which fields a multipart body holds), no body at all (nginx's
//! `auth_request` forwards none), a body the proxy cut short, a batch too large.

use axum::http::{HeaderMap, Method};
use serde_json::{Map, Value};

use super::read::{Original, Unreadable};

/// The path GitLab serves GraphQL at.
pub const PATH: &str = "/api/graphql";

/// The most operations one multiplexed request may carry (GitLab's own limit).
const MAX_BATCH: usize = 10;

/// The parameters GitLab's `GraphqlController` reads an operation from.
const OPERATION_PARAMS: [&str; 4] = ["query", "variables", "operationName", "_json"];

/// One operation of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
}

/// What the request asks GitLab to run, and the parameters of its body a credential
/// may be read from (`name`, `value`; a value that is not a string is named
/// `name[]`, which the credential reader refuses as not plain).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub operations: Vec<Operation>,
    pub body_params: Vec<(String, String)>,
}

fn unreadable(field: &'static str, message: impl Into<String>) -> Unreadable {
    Unreadable {
        field,
        message: message.into(),
    }
}

/// Reads the operations of a request to `PATH`.
pub fn read(
    method: &Method,
    original: &Original,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Request, Unreadable> {
    let url: Vec<&(String, String)> = original
        .params
        .iter()
        .filter(|(name, _)| OPERATION_PARAMS.contains(&base(name)))
        .collect();
    if *method == Method::GET || *method == Method::HEAD {
        // Rails reads a body of any method; a proxy may not have shown it.
        if !body.is_empty() || headers.contains_key("content-type") {
            return Err(unreadable(
                "body",
                "a GET to /api/graphql with a body is not decided",
            ));
        }
        let mut object = Map::new();
        for (name, value) in url {
            if name != base(name) || object.contains_key(name.as_str()) {
                return Err(unreadable(
                    "uri",
                    format!(
                        "its query gives `{}` more than once, or as a list",
                        base(name)
                    ),
                ));
            }
            object.insert(name.clone(), Value::String(value.clone()));
        }
        return Ok(Request {
            operations: vec![operation(&object)?],
            body_params: Vec::new(),
        });
    }
    if *method != Method::POST {
        return Err(unreadable(
            "method",
            "GitLab's GraphQL endpoint takes GET and POST only",
        ));
    }
    if !url.is_empty() {
        return Err(unreadable(
            "uri",
            "a POST to /api/graphql carries its operation in the body, not the query string",
        ));
    }
    if headers
        .get("x-envoy-auth-partial-body")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        return Err(unreadable(
            "body",
            "the proxy forwarded only a part of the body",
        ));
    }
    let mut types = headers.get_all("content-type").iter();
    let json = match (types.next(), types.next()) {
        (Some(one), None) => one.to_str().is_ok_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        }),
        _ => false,
    };
    if !json {
        return Err(unreadable(
            "content-type",
            "a GraphQL request is decided from a JSON body (`Content-Type: application/json`) only",
        ));
    }
    if body.is_empty() {
        return Err(unreadable(
            "body",
            "is empty: the proxy must forward the body (Envoy `with_request_body`, Traefik `forwardBody`)",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| unreadable("body", format!("is not JSON: {e}")))?;
    if let Value::Object(object) = &value {
        // Parsers differ on a key given twice; which one GitLab takes is not guessed.
        let keys: TopLevelKeys = serde_json::from_slice(body)
            .map_err(|e| unreadable("body", format!("is not JSON: {e}")))?;
        if keys.0 != object.len() {
            return Err(unreadable("body", "gives a key more than once"));
        }
    }
    match value {
        Value::Object(object) => {
            let body_params = object
                .iter()
                .filter(|(name, _)| !OPERATION_PARAMS.contains(&name.as_str()))
                .map(|(name, value)| match value {
                    Value::String(s) => (name.clone(), s.clone()),
                    _ => (format!("{name}[]"), String::new()),
                })
                .collect();
            let operations = match object.get("_json") {
                Some(batch) => batch_of(batch)?,
                None => vec![operation(&object)?],
            };
            Ok(Request {
                operations,
                body_params,
            })
        }
        // Rails keeps a JSON array as `_json`: GitLab's multiplexed queries.
        batch @ Value::Array(_) => Ok(Request {
            operations: batch_of(&batch)?,
            body_params: Vec::new(),
        }),
        _ => Err(unreadable(
            "body",
            "must be a JSON object or an array of them",
        )),
    }
}

/// How many keys a JSON object's text holds, repeats counted.
struct TopLevelKeys(usize);

impl<'de> serde::Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> serde::de::Visitor<'de> for Count {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopLevelKeys, A::Error> {
                let mut n = 0;
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {
                    n += 1;
                }
                Ok(TopLevelKeys(n))
            }
        }
        deserializer.deserialize_map(Count)
    }
}

/// `[query]` and `query[]` are `query` to Rack.
fn base(name: &str) -> &str {
    super::read::rack_name(name).0
}

fn batch_of(batch: &Value) -> Result<Vec<Operation>, Unreadable> {
    let Value::Array(items) = batch else {
        return Err(unreadable("body", "`_json` must be an array of operations"));
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(unreadable(
            "body",
            format!(
                "holds {} operations; from 1 to {MAX_BATCH} are decided",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(object) => operation(object),
            _ => Err(unreadable("body", "each operation of a batch is an object")),
        })
        .collect()
}

/// An operation from GitLab's parameters: `query` a string, `operationName` a string or
/// absent, `variables` an object, a string of JSON holding one, or absent.
fn operation(params: &Map<String, Value>) -> Result<Operation, Unreadable> {
    let query = match params.get("query") {
        Some(Value::String(q)) if !q.trim().is_empty() => q.clone(),
        _ => return Err(unreadable("query", "must be a GraphQL document")),
    };
    let operation_name = match params.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.is_empty() => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(unreadable("operationName", "must be a string")),
    };
    let variables = match params.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::String(text)) if text.trim().is_empty() => Map::new(),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            _ => {
                return Err(unreadable(
                    "variables",
                    "must be a JSON object, or a string of one",
                ));
            }
        },
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(unreadable(
                "variables",
                "must be a JSON object, or a string of one",
            ));
        }
    };
    Ok(Operation {
        query,
        operation_name,
        variables,
    })
}
