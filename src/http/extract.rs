//! Extractors that turn bad input into a 400 naming the field, and the service-key
//! check in front of every `/v1` endpoint that is not public.

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};
use crate::keys::KeyRole;
use crate::service::{Actor, KeyVerdict};

/// A JSON body; a body that does not parse is a 400 naming the field at fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request("body", e.body_text()))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request("body", e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(ApiJsonOrEmpty)
    }
}

/// Parses JSON, naming the field at fault on error. Well-formed bodies take the plain
/// parser; only a body that fails is parsed again to find the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object. serde would also take a struct written as the array of its
    // fields in order (`[null, null]`), which no client means (found by schemathesis).
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::bad_request(
            "body",
            "must be a JSON object, not an array",
        ));
    }
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // A missing field is reported at its container; name the field itself.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let at_root = path == "." || path.is_empty();
        let field = match (missing, at_root) {
            (Some(name), true) => name.to_owned(),
            (Some(name), false) => format!("{path}.{name}"),
            // `unknown field `x``: the field is in the message.
            (None, true) => message
                .split('`')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_else(|| "body".to_owned()),
            (None, false) => path,
        };
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {message}")
        } else {
            format!("`{field}`: {message}")
        };
        ApiError::BadRequest {
            field: Some(field),
            message,
        }
    })
}

/// Query parameters; a bad one is a 400 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request("query", e.body_text()))
    }
}

/// Path parameters; an id that is not a number is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("path", e.body_text()))?;
        Ok(ApiPath(value))
    }
}

pub const AUTHORIZE: u8 = 0;
pub const MANAGE: u8 = 1;
pub const ADMIN: u8 = 2;

fn role(level: u8) -> KeyRole {
    match level {
        AUTHORIZE => KeyRole::Authorize,
        MANAGE => KeyRole::Manage,
        _ => KeyRole::Admin,
    }
}

/// Lets a request through only with an `X-Patrol-Key` of at least role `ROLE`: no key
/// or a wrong one is 401, a key of a lesser role 403.
///
/// The handler finds the caller as an [`Actor`] in the request's extensions.
pub async fn require<const ROLE: u8>(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = request
        .headers()
        .get("x-patrol-key")
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    match state.service.verify_key(key).await? {
        KeyVerdict::Valid { role: held, caller } if held >= role(ROLE) => {
            let ip = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip());
            request.extensions_mut().insert(Actor { caller, ip });
            Ok(next.run(request).await)
        }
        KeyVerdict::Valid { .. } => Err(ApiError::Forbidden),
        KeyVerdict::Invalid => Err(ApiError::Unauthorized),
    }
}
