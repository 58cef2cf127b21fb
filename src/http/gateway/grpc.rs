//! Envoy's gRPC ext_authz (DESIGN.md section 5): `envoy.service.auth.v3.Authorization/Check`
//! on `PATROL_GRPC_LISTEN`. A `CheckRequest` is read as the HTTP gateway check reads an
//! Envoy check request (its method, its path, its headers), decided by the same code,
//! and the answer goes back with the same status, headers and body:
//!
//! - allowed: `OK`, and the identity headers set on the upstream request, overwriting
//!   any a client sent; those the answer does not carry are removed from it;
//! - denied: a denial with the HTTP check's status (401, 403, 404, 400 or 503), its
//!   headers (`WWW-Authenticate`, `X-Accepted-Permissions`, `X-Patrol-Reason`) and body,
//!   and the gRPC code that says the same (`UNAUTHENTICATED`, `PERMISSION_DENIED`,
//!   `INVALID_ARGUMENT`, `UNAVAILABLE`).
//!
//! The caller is Envoy, with a service key in the `x-patrol-key` metadata
//! (`initial_metadata` of its gRPC service); without a valid one the answer is the HTTP
//! check's 401. An error of patrol is a denial, never an allow, and patrol down is
//! Envoy's own `failure_mode_allow: false`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::envoy::config::core::v3::HeaderValue as EnvoyHeader;
use envoy_types::pb::google::rpc;

use super::read::PREFIX;
use super::{AppState, decide_original};
use crate::config::Gateway;
use crate::http::ApiError;
use crate::service::KeyVerdict;

pub use envoy_types::ext_authz::v3::pb::AuthorizationServer;

/// The headers an allowed request reaches the upstream with, as the HTTP check's
/// documented Envoy configuration forwards them.
const IDENTITY: [&str; 4] = [
    "x-patrol-user-id",
    "x-patrol-token-id",
    "x-patrol-route",
    "x-patrol-boundary",
];

/// Where nginx and Traefik put the original request. Envoy over gRPC gives it in fields
/// of its own, so these are only a client's headers, which GitLab never reads: the HTTP
/// check never sees them from Envoy either (its `allowed_headers` leave them out).
const OTHER_CONVENTIONS: [&str; 4] = [
    "x-original-method",
    "x-original-uri",
    "x-forwarded-method",
    "x-forwarded-uri",
];

/// The largest answer body read back from the gateway check (its JSON is a few hundred
/// bytes).
const MAX_BODY: usize = 64 * 1024;

/// The `Authorization` service, over the application's state.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    state: AppState,
}

impl ExtAuthz {
    pub fn new(state: AppState) -> AuthorizationServer<Self> {
        AuthorizationServer::new(Self { state })
    }

    /// The HTTP check's answer to this `CheckRequest` and its `x-patrol-key`.
    async fn answer(&self, key: Option<&str>, request: &CheckRequest) -> Response {
        self.decide(key, request)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    }

    async fn decide(
        &self,
        key: Option<&str>,
        request: &CheckRequest,
    ) -> Result<Response, ApiError> {
        let key = key.ok_or(ApiError::Unauthorized)?;
        // Every role may ask for decisions.
        if self.state.service.verify_key(key).await? == KeyVerdict::Invalid {
            return Err(ApiError::Unauthorized);
        }
        let (method, uri, headers) = original(request)?;
        // The body, when Envoy forwards it (`with_request_body`): raw when packed as bytes.
        let body = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .map_or(&[][..], |http| {
                if http.raw_body.is_empty() {
                    http.body.as_bytes()
                } else {
                    http.raw_body.as_slice()
                }
            });
        decide_original(&self.state, Gateway::Envoy, &method, &uri, &headers, body).await
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let key = request
            .metadata()
            .get("x-patrol-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = self.answer(key.as_deref(), request.get_ref()).await;
        Ok(tonic::Response::new(check_response(answer).await))
    }
}

/// The request Envoy asks about, in the shape of the HTTP check Envoy would have sent:
/// its own method, the original path after the check prefix, and the client's headers
/// (raw when Envoy is configured with `encode_raw_headers`, so that a header sent twice
/// stays two headers). Pseudo-headers are not headers, and other proxies' conventions
/// are not Envoy's: the method and path come from their own fields.
fn original(request: &CheckRequest) -> Result<(Method, Uri, HeaderMap), ApiError> {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .ok_or_else(|| ApiError::bad_request("attributes", "carries no HTTP request"))?;
    let method = Method::from_bytes(http.method.as_bytes())
        .map_err(|_| ApiError::bad_request("method", "is not an HTTP method"))?;
    if !http.path.starts_with('/') {
        return Err(ApiError::bad_request(
            "path",
            "must be an absolute path (origin-form)",
        ));
    }
    let uri: Uri = format!("{PREFIX}{}", http.path).parse().map_err(|_| {
        ApiError::bad_request(
            "path",
            "is not a request target (an absolute path, visible ASCII)",
        )
    })?;
    let raw = http.header_map.as_ref().map(|m| m.headers.as_slice());
    let pairs: Vec<(&str, &[u8])> = match raw {
        Some(raw) if !raw.is_empty() => raw
            .iter()
            .map(|h| {
                let value = if h.raw_value.is_empty() {
                    h.value.as_bytes()
                } else {
                    h.raw_value.as_slice()
                };
                (h.key.as_str(), value)
            })
            .collect(),
        _ => http
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect(),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if name.starts_with(':') || OTHER_CONVENTIONS.contains(&name.to_ascii_lowercase().as_str())
        {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::bad_request("headers", "holds a header name that is not one"))?;
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            ApiError::bad_request(
                "headers",
                format!("`{name}` holds bytes no header may hold"),
            )
        })?;
        headers.append(name, value);
    }
    Ok((method, uri, headers))
}

/// The gateway check's answer as a `CheckResponse`.
async fn check_response(answer: Response) -> CheckResponse {
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = axum::body::to_bytes(answer.into_body(), MAX_BODY)
        .await
        .unwrap_or_default();
    if status == StatusCode::OK {
        let set = IDENTITY
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some(HeaderValueOption {
                    header: Some(envoy_header(name, value)),
                    append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                    ..HeaderValueOption::default()
                })
            })
            .collect();
        let absent = IDENTITY
            .iter()
            .filter(|name| !headers.contains_key(**name))
            .map(|name| (*name).to_owned())
            .collect();
        return CheckResponse {
            status: Some(rpc::Status {
                code: tonic::Code::Ok as i32,
                ..rpc::Status::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: set,
                headers_to_remove: absent,
                ..OkHttpResponse::default()
            })),
            ..CheckResponse::default()
        };
    }
    let code = match status {
        StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
        StatusCode::BAD_REQUEST => tonic::Code::InvalidArgument,
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        StatusCode::INTERNAL_SERVER_ERROR => tonic::Code::Internal,
        _ => tonic::Code::PermissionDenied,
    };
    let reason = headers
        .get("x-patrol-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    CheckResponse {
        status: Some(rpc::Status {
            code: code as i32,
            message: reason,
            ..rpc::Status::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers: headers
                .iter()
                .filter(|(name, _)| *name != axum::http::header::CONTENT_LENGTH)
                .filter_map(|(name, value)| {
                    Some(HeaderValueOption {
                        header: Some(envoy_header(name.as_str(), value.to_str().ok()?)),
                        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                        ..HeaderValueOption::default()
                    })
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        })),
        ..CheckResponse::default()
    }
}

fn envoy_header(key: &str, value: &str) -> EnvoyHeader {
    EnvoyHeader {
        key: key.to_owned(),
        value: value.to_owned(),
        ..EnvoyHeader::default()
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::HeaderMap as EnvoyHeaders;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};

    use super::*;

    fn request(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request {
                    http: Some(http),
                    ..Request::default()
                }),
                ..AttributeContext::default()
            }),
        }
    }

    fn raw(headers: &[(&str, &[u8])]) -> Option<EnvoyHeaders> {
        Some(EnvoyHeaders {
            headers: headers
                .iter()
                .map(|(key, value)| EnvoyHeader {
                    key: (*key).to_owned(),
                    raw_value: value.to_vec(),
                    ..EnvoyHeader::default()
                })
                .collect(),
        })
    }

    fn field(result: Result<(Method, Uri, HeaderMap), ApiError>) -> Option<String> {
        match result {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("a 400 was expected, not {other:?}"),
        }
    }

    #[test]
    fn the_request_is_envoys_method_path_and_raw_headers() {
        let (method, uri, headers) = original(&request(HttpRequest {
            method: "POST".to_owned(),
            path: "/api/v4/projects/42/issues?private_token=x".to_owned(),
            header_map: raw(&[
                (":path", b"/api/v4/elsewhere"),
                (":method", b"GET"),
                ("private-token", b"glpat-one"),
                ("private-token", b"glpat-two"),
                ("x-original-uri", b"/api/v4/projects/1/issues"),
                ("X-Forwarded-Uri", b"/api/v4/projects/1/issues"),
                ("x-forwarded-method", b"GET"),
                ("x-original-method", b"GET"),
                ("x-forwarded-for", b"10.0.0.1"),
            ]),
            // Ignored when the raw headers are there.
            headers: [("authorization".to_owned(), "Bearer glpat-three".to_owned())].into(),
            ..HttpRequest::default()
        }))
        .unwrap();
        assert_eq!(method, Method::POST);
        assert_eq!(
            uri.to_string(),
            "/v1/gateway/check/api/v4/projects/42/issues?private_token=x"
        );
        let tokens: Vec<_> = headers.get_all("private-token").iter().collect();
        assert_eq!(
            tokens,
            ["glpat-one", "glpat-two"],
            "a header sent twice stays two"
        );
        for gone in [
            "x-original-uri",
            "x-original-method",
            "x-forwarded-uri",
            "x-forwarded-method",
            "authorization",
        ] {
            assert!(!headers.contains_key(gone), "{gone}");
        }
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn without_raw_headers_the_joined_map_is_read() {
        let (_, _, headers) = original(&request(HttpRequest {
            method: "GET".to_owned(),
            path: "/api/v4/user".to_owned(),
            headers: [
                ("private-token".to_owned(), "glpat-one,glpat-two".to_owned()),
                (":authority".to_owned(), "gitlab.example".to_owned()),
            ]
            .into(),
            ..HttpRequest::default()
        }))
        .unwrap();
        // Joined as Envoy joins them: the credential reader refuses such a value.
        assert_eq!(headers["private-token"], "glpat-one,glpat-two");
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn a_request_that_cannot_be_read_is_a_400_naming_its_field() {
        let http = |method: &str, path: &str| HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            ..HttpRequest::default()
        };
        assert_eq!(
            field(original(&CheckRequest::default())).as_deref(),
            Some("attributes")
        );
        assert_eq!(
            field(original(&request(http("G ET", "/api/v4/user")))).as_deref(),
            Some("method")
        );
        for path in ["", "*", "http://gitlab.example/api/v4/user", "api/v4/user"] {
            assert_eq!(
                field(original(&request(http("GET", path)))).as_deref(),
                Some("path"),
                "{path}"
            );
        }
        // A path Envoy's fields hold but a request line may not: read, then refused by
        // the HTTP check's own reader, as the same path after /v1/gateway/check is.
        let (method, uri, headers) = original(&request(http("GET", "/api/v4/\u{e9}"))).unwrap();
        let refused = super::super::read::original(Gateway::Envoy, &method, &uri, &headers);
        assert_eq!(refused.map_err(|e| e.field), Err("path"));
        let bad_value = HttpRequest {
            header_map: raw(&[("private-token", b"glpat-\n-x")]),
            ..http("GET", "/api/v4/user")
        };
        assert_eq!(
            field(original(&request(bad_value))).as_deref(),
            Some("headers")
        );
        let bad_name = HttpRequest {
            header_map: raw(&[("private token", b"glpat-x")]),
            ..http("GET", "/api/v4/user")
        };
        assert_eq!(
            field(original(&request(bad_name))).as_deref(),
            Some("headers")
        );
    }
}
