//! Limits on what one request or one caller may take: per-caller rate limits (tower
//! governor's GCRA) on the management, admin and token-holder routes, the size of a
//! request's head (431), and JSON bodies for the answers the limit layers make
//! themselves (408, 413, 429). The deadline for a request's head is the connection
//! loop's (`server`).
//!
//! Decisions (`/v1/authorize`, `/v1/gateway/check`) are not rate limited here: a gateway
//! is one caller carrying every end user's traffic, and it is where end users are limited
//! (nginx `limit_req`, Envoy's rate limit filter); patrol's capacity for decisions is
//! measured instead (docs/performance.md).

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

use super::ErrorBody;
use crate::config::RateLimit;

/// One caller, as far as rate limits go: the credential it presents (a service key or a
/// token, hashed with this process's random key, so keys cannot be made to collide), or
/// its address when it presents none. Credentials are not verified here: a made-up one
/// gets a bucket of its own, and is then refused by authentication, cheaply.
#[derive(Debug, Clone, Copy)]
pub struct CallerKey;

static HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

const CREDENTIAL_HEADERS: [&str; 4] = [
    "x-patrol-key",
    "private-token",
    "job-token",
    "authorization",
];

impl KeyExtractor for CallerKey {
    type Key = u64;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<u64, GovernorError> {
        let headers = request.headers();
        if let Some(credential) = CREDENTIAL_HEADERS
            .iter()
            .find_map(|name| headers.get(*name))
        {
            return Ok(HASHER.hash_one(credential.as_bytes()));
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| HASHER.hash_one(address.ip()))
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

pub type Limiter = Arc<GovernorConfig<CallerKey, governor::middleware::NoOpMiddleware>>;

/// The limiter's configuration, or `None` when the limit's numbers are out of range.
pub fn limiter(limit: RateLimit) -> Option<Limiter> {
    let period = Duration::from_secs(1).checked_div(limit.per_second.max(1))?;
    GovernorConfigBuilder::default()
        .key_extractor(CallerKey)
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(limit.burst.max(1))
        .finish()
        .map(Arc::new)
}

/// Forgets callers idle long enough to be full again, every minute.
pub async fn forget_idle_callers(limiter: Limiter) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        limiter.limiter().retain_recent();
    }
}

/// The 429 a limited caller gets, with `Retry-After`.
pub fn too_many(error: GovernorError) -> Response {
    let (retry_after, message) = match error {
        GovernorError::TooManyRequests { wait_time, .. } => (
            Some(wait_time.max(1)),
            format!(
                "too many requests from this caller; retry in {} s",
                wait_time.max(1)
            ),
        ),
        GovernorError::UnableToExtractKey | GovernorError::Other { .. } => {
            (None, "too many requests".to_owned())
        }
    };
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, message);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn json(status: StatusCode, error: String) -> Response {
    (status, axum::Json(ErrorBody { error, field: None })).into_response()
}

/// One middleware for what the limits answer themselves, so that a request pays for one
/// and not two: it refuses a request whose request line and headers together are over
/// `head_limit` bytes (431; counted as sent, `name: value` and the line ends; heads far
/// over it never get here, hyper refuses them first with a bare 431, see
/// `server::HeadLimits`), and gives the timeout (408) and body-limit (413) layers'
/// answers, empty or plain text, the JSON body every other error has.
pub async fn guard(State(head_limit): State<usize>, request: Request, next: Next) -> Response {
    if head_size(&request) > head_limit {
        return json(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request line and headers are over {head_limit} bytes"),
        );
    }
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let message = match response.status() {
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        _ => return response,
    };
    json(response.status(), message.to_owned())
}

/// The request line and headers as they were sent, in bytes.
fn head_size(request: &Request) -> usize {
    let uri = request.uri();
    let line = request.method().as_str().len()
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len())
        + "  HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    line + headers
}
