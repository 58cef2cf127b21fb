//! The gateway check (DESIGN.md section 5) for nginx `auth_request`, Traefik
//! ForwardAuth and Envoy ext_authz (HTTP service): the original request's token, method
//! and URI in, a status a proxy acts on out.
//!
//! | decision | status |
//! |---|---|
//! | allowed, or a route the catalog skips (except `deprecated`) | 200, `X-Patrol-User-Id`, `X-Patrol-Token-Id` |
//! | no token, `token_invalid`, `token_revoked`, `token_expired` | 401, `WWW-Authenticate` |
//! | `boundary_not_found`, or a boundary the user may not see, or a removed route | 404 |
//! | any other denial | 403, `X-Accepted-Permissions` |
//!
//! Every answer carries `X-Patrol-Reason`. A store that cannot answer is a 503, which a
//! proxy treats as an error and denies.

use std::net::IpAddr;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::catalog::RouteKind;
use crate::engine::Reason;
use crate::service::{Check, CheckAction, Outcome};

/// Where Envoy's ext_authz `path_prefix` points: the original path follows it.
pub const PREFIX: &str = "/v1/gateway/check";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PREFIX, any(check))
        .route("/v1/gateway/check/{*original}", any(check))
}

/// The body of every gateway answer; proxies act on the status and headers alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayAnswer {
    pub allowed: bool,
    /// `granted`, `skipped_route`, or the reason of the denial (DESIGN.md section 5).
    pub reason: String,
    pub message: String,
}

/// A 401 from the gateway check: the decision on the end user's token (with
/// `WWW-Authenticate`), or the service-key check in front of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "only describes a 401's two bodies in the OpenAPI document"
)]
pub enum GatewayUnauthorized {
    /// No token, or one that is invalid, revoked or expired.
    Decision(GatewayAnswer),
    /// No valid `X-Patrol-Key`.
    ServiceKey(super::ErrorBody),
}

/// Decides on the original request a proxy forwards. The token comes from
/// `PRIVATE-TOKEN`, `JOB-TOKEN`, `Authorization: Bearer`, or the `private_token` or
/// `job_token` query parameter of the original URI; the method and URI from
/// `X-Original-Method`/`X-Original-URI` (nginx), `X-Forwarded-Method`/`X-Forwarded-Uri`
/// (Traefik), or this request's own method and the path after `/v1/gateway/check`
/// (Envoy); the client address from `X-Real-IP` or the first `X-Forwarded-For`.
#[utoipa::path(get, path = "/v1/gateway/check", tag = "decisions",
    params(
        ("X-Original-Method" = Option<String>, Header), ("X-Original-URI" = Option<String>, Header),
        ("X-Forwarded-Method" = Option<String>, Header), ("X-Forwarded-Uri" = Option<String>, Header),
        ("PRIVATE-TOKEN" = Option<String>, Header), ("JOB-TOKEN" = Option<String>, Header),
    ),
    responses(
        (status = 200, body = GatewayAnswer, headers(("X-Patrol-User-Id" = u64), ("X-Patrol-Token-Id" = u64))),
        (status = 400, body = super::ErrorBody),
        (status = 401, body = GatewayUnauthorized, headers(("WWW-Authenticate" = String))),
        (status = 403, body = GatewayAnswer, headers(("X-Accepted-Permissions" = String))),
        (status = 404, body = GatewayAnswer),
        (status = 503, body = super::ErrorBody)),
    security(("service_key" = [])))]
pub async fn check(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let own = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let (method, target) = original_request(&method, own, &headers)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));

    // Routes the catalog skips need no token: the upstream authenticates them itself,
    // or they are public. Removed ones answer as GitLab does: 404.
    if let Some(found) = state.service.catalog().routes.resolve(&method, path)
        && let RouteKind::Skipped { reason } = found.entry.kind
    {
        return Ok(if reason == "deprecated" {
            answer(
                StatusCode::NOT_FOUND,
                "unknown_route",
                "the route was removed from the API",
            )
        } else {
            answer(StatusCode::OK, "skipped_route", reason)
        });
    }

    let Some(token) = presented_token(&headers, query) else {
        let mut response = answer(
            StatusCode::UNAUTHORIZED,
            Reason::TokenInvalid.as_str(),
            "a token is required",
        );
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"patrol\""),
        );
        return Ok(response);
    };
    let check = Check {
        token,
        action: CheckAction::Route {
            method,
            path: path.to_owned(),
        },
        boundary: None,
        confidential: false,
        author_id: None,
        assignee_ids: Vec::new(),
        client_ip: client_ip(&headers),
    };
    let outcome = state
        .service
        .authorize(std::slice::from_ref(&check))
        .await?
        .pop()
        .ok_or(ApiError::Internal)?;
    Ok(respond(outcome))
}

fn respond(outcome: Outcome) -> Response {
    let reason = outcome.reason.as_str();
    if outcome.allowed {
        let mut response = answer(StatusCode::OK, reason, &outcome.message);
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-patrol-user-id", outcome.user_id),
            ("x-patrol-token-id", outcome.token_id),
        ] {
            if let Some(value) = value {
                headers.insert(name, HeaderValue::from(value));
            }
        }
        return response;
    }
    match outcome.reason {
        Reason::TokenInvalid | Reason::TokenRevoked | Reason::TokenExpired => {
            let mut response = answer(StatusCode::UNAUTHORIZED, reason, &outcome.message);
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static(
                    "Bearer realm=\"patrol\", error=\"invalid_token\", error_description=\"Token is expired, revoked or invalid\"",
                ),
            );
            response
        }
        _ if outcome.hidden => answer(StatusCode::NOT_FOUND, reason, "not found"),
        _ => {
            let mut response = answer(StatusCode::FORBIDDEN, reason, &outcome.message);
            if let Ok(value) = HeaderValue::from_str(&outcome.required_permissions.join(", ")) {
                response
                    .headers_mut()
                    .insert("x-accepted-permissions", value);
            }
            response
        }
    }
}

fn answer(status: StatusCode, reason: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(GatewayAnswer {
            allowed: status == StatusCode::OK,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(reason) {
        response.headers_mut().insert("x-patrol-reason", value);
    }
    response
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(HeaderName::from_bytes(name.as_bytes()).ok()?)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The original method and URI (path and query) a proxy asks about.
fn original_request(
    own_method: &Method,
    own_uri: &str,
    headers: &HeaderMap,
) -> Result<(String, String), ApiError> {
    let pairs = [
        ("x-original-method", "x-original-uri"),
        ("x-forwarded-method", "x-forwarded-uri"),
    ];
    for (method_header, uri_header) in pairs {
        if let Some(uri) = header(headers, uri_header) {
            let method = header(headers, method_header).unwrap_or(own_method.as_str());
            return parse_original(method, uri, uri_header);
        }
    }
    // Envoy: the original path and query follow the check prefix.
    match own_uri.strip_prefix(PREFIX) {
        Some(rest) if rest.starts_with('/') => parse_original(own_method.as_str(), rest, "path"),
        _ => Err(ApiError::bad_request(
            "x-original-uri",
            "is required: send the original request in `X-Original-URI` (nginx), `X-Forwarded-Uri` (Traefik), or after /v1/gateway/check (Envoy)",
        )),
    }
}

fn parse_original(method: &str, uri: &str, field: &str) -> Result<(String, String), ApiError> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ApiError::bad_request("method", "must be an HTTP method"));
    }
    // A full URL (Traefik may send one): keep its path and query.
    let uri = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => uri,
    };
    if !uri.starts_with('/') {
        return Err(ApiError::bad_request(
            field,
            "must be a path starting with `/`",
        ));
    }
    Ok((method.to_ascii_uppercase(), uri.to_owned()))
}

/// The end user's token, from the first place GitLab would look that has one.
pub(super) fn presented_token(headers: &HeaderMap, query: &str) -> Option<String> {
    if let Some(token) = header(headers, "private-token").or_else(|| header(headers, "job-token")) {
        return Some(token.to_owned());
    }
    if let Some(authorization) = header(headers, "authorization") {
        let (scheme, token) = authorization.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        matches!(name, "private_token" | "job_token").then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The end user's address as the proxy saw it.
fn client_ip(headers: &HeaderMap) -> Option<IpAddr> {
    header(headers, "x-real-ip")
        .or_else(|| header(headers, "x-forwarded-for").and_then(|v| v.split(',').next()))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_token_comes_from_the_first_place_that_has_one() {
        type Case<'a> = (&'a [(&'static str, &'a str)], &'a str, Option<&'a str>);
        let cases: &[Case] = &[
            (&[("private-token", "a"), ("job-token", "b")], "", Some("a")),
            (
                &[("job-token", "b"), ("authorization", "Bearer c")],
                "",
                Some("b"),
            ),
            (
                &[("authorization", "bearer  c ")],
                "private_token=d",
                Some("c"),
            ),
            (&[("authorization", "Basic xyz")], "private_token=d", None),
            (&[], "x=1&private_token=d%2Be", Some("d+e")),
            (&[], "job_token=f", Some("f")),
            (&[("private-token", " ")], "", None),
            (&[], "private_tokens=g", None),
        ];
        for (pairs, query, expected) in cases {
            assert_eq!(
                presented_token(&headers(pairs), query).as_deref(),
                *expected,
                "{pairs:?} {query}"
            );
        }
    }

    #[test]
    fn the_original_request_comes_from_nginx_traefik_or_envoy() {
        let get = Method::GET;
        let nginx = headers(&[
            ("x-original-method", "post"),
            ("x-original-uri", "/api/v4/projects/1?a=b"),
        ]);
        assert_eq!(
            original_request(&get, PREFIX, &nginx).unwrap(),
            ("POST".to_owned(), "/api/v4/projects/1?a=b".to_owned())
        );
        let traefik = headers(&[
            ("x-forwarded-method", "DELETE"),
            ("x-forwarded-uri", "https://gitlab.example/api/v4/x"),
        ]);
        assert_eq!(
            original_request(&get, PREFIX, &traefik).unwrap(),
            ("DELETE".to_owned(), "/api/v4/x".to_owned())
        );
        assert_eq!(
            original_request(
                &Method::PUT,
                "/v1/gateway/check/api/v4/y",
                &HeaderMap::new()
            )
            .unwrap(),
            ("PUT".to_owned(), "/api/v4/y".to_owned())
        );
        assert!(original_request(&get, PREFIX, &HeaderMap::new()).is_err());
        let bad = headers(&[("x-original-method", "G ET"), ("x-original-uri", "/x")]);
        assert!(original_request(&get, PREFIX, &bad).is_err());
        let relative = headers(&[("x-original-uri", "api/v4")]);
        assert!(original_request(&get, PREFIX, &relative).is_err());
    }

    #[test]
    fn the_client_address_is_the_first_hop() {
        let h = headers(&[("x-forwarded-for", "203.0.113.7, 10.0.0.1")]);
        assert_eq!(client_ip(&h), Some("203.0.113.7".parse().unwrap()));
        let h = headers(&[
            ("x-real-ip", "198.51.100.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(client_ip(&h), Some("198.51.100.1".parse().unwrap()));
        assert_eq!(client_ip(&headers(&[("x-real-ip", "local")])), None);
    }
}
