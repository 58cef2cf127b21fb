//! Tokens on behalf of users (DESIGN.md section 4), for `manage` and `admin` keys.

use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiJson, ApiJsonOrEmpty, ApiPath, ApiQuery};
use super::{ApiError, AppState, page, path_id};
use crate::clock;
use crate::domain::AccessKind;
use crate::engine::Reason;
use crate::service::{Actor, Caller, Check, CheckAction, CheckBoundary, Lister};
use crate::store::TokenFilter;
use crate::tokens::{
    CreateToken, DuplicateToken, RevokeByValue, RotateToken, TokenKind, TokenState, TokenView,
    UpdateToken,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{user_id}/tokens", post(create))
        .route("/v1/tokens", get(list))
        .route("/v1/tokens/{id}", get(show).patch(update).delete(revoke))
        .route("/v1/tokens/{id}/rotate", post(rotate))
        .route("/v1/tokens/{id}/duplicate", post(duplicate))
        .route("/v1/tokens/revoke-by-value", post(revoke_by_value))
}

/// Creates a legacy (`scopes`) or fine-grained (`granular_scopes`) token. The answer
/// carries the plaintext `token`, the only time it is ever shown.
#[utoipa::path(post, path = "/v1/users/{user_id}/tokens", tag = "tokens",
    params(("user_id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = CreateToken,
    responses((status = 201, body = TokenView), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(user_id): ApiPath<u64>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let view = state
        .service
        .create_token(&actor, path_id(user_id)?, body)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(maximum = 9223372036854775807_i64)]
    user_id: Option<u64>,
    kind: Option<TokenKind>,
    state: Option<TokenState>,
    /// Case-insensitive part of the name.
    search: Option<String>,
    /// Fine-grained tokens with a granular scope of this access kind.
    access: Option<AccessKind>,
    /// Tokens that hold this permission (through a legacy scope or a granular scope,
    /// `implies` included).
    permission: Option<String>,
    /// `YYYY-MM-DD`: last used on or after that day.
    #[param(format = Date)]
    last_used_after: Option<String>,
    /// `YYYY-MM-DD`: last used before that day.
    #[param(format = Date)]
    last_used_before: Option<String>,
    /// `YYYY-MM-DD`: expiring on or after that day.
    #[param(format = Date)]
    expires_after: Option<String>,
    /// `YYYY-MM-DD`: expiring before that day.
    #[param(format = Date)]
    expires_before: Option<String>,
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4294967295_i64, format = Int64)]
    page: Option<u32>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// Lists tokens, newest first, with GitLab's pagination headers.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    params(ListQuery),
    responses((status = 200, body = Vec<TokenView>,
        headers(("X-Total" = u64), ("X-Page" = u32), ("X-Per-Page" = u32), ("X-Next-Page" = String),
            ("X-Prev-Page" = String), ("X-Total-Pages" = u64), ("Link" = String))),
        (status = 400, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<(HeaderMap, Json<Vec<TokenView>>), ApiError> {
    let (page, per_page) = page::checked(query.page, query.per_page)?;
    let date = |field: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|text| {
                clock::parse_date(text)
                    .ok_or_else(|| ApiError::bad_request(field, "must be a date YYYY-MM-DD"))
            })
            .transpose()
    };
    let holding = query
        .permission
        .as_deref()
        .map(|name| {
            state.service.catalog().permission_id(name).ok_or_else(|| {
                ApiError::bad_request("permission", format!("`{name}` is not a permission"))
            })
        })
        .transpose()?;
    let filter = TokenFilter {
        user_id: page::id_filter("user_id", query.user_id)?,
        kind: query.kind,
        state: query.state,
        search: query.search.clone().filter(|s| !s.is_empty()),
        access: query.access,
        last_used_after: date("last_used_after", &query.last_used_after)?,
        last_used_before: date("last_used_before", &query.last_used_before)?,
        expires_after: date("expires_after", &query.expires_after)?,
        expires_before: date("expires_before", &query.expires_before)?,
        page,
        per_page,
        ..TokenFilter::default()
    };
    let (tokens, total) = state
        .service
        .list_tokens(Lister::Key, filter.clone(), holding)
        .await?;
    // The filters again, for the `Link` header's URLs.
    let text = |v: &Option<String>| v.clone();
    let pairs = [
        ("user_id", query.user_id.map(|id| id.to_string())),
        ("kind", query.kind.map(|k| k.as_str().to_owned())),
        ("state", query.state.map(|s| s.as_str().to_owned())),
        ("search", filter.search.clone()),
        ("access", query.access.map(|a| a.as_str().to_owned())),
        ("permission", text(&query.permission)),
        ("last_used_after", text(&query.last_used_after)),
        ("last_used_before", text(&query.last_used_before)),
        ("expires_after", text(&query.expires_after)),
        ("expires_before", text(&query.expires_before)),
    ];
    let query: Vec<String> = pairs
        .into_iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", page::encode(&value?))))
        .collect();
    let headers = page::headers("/v1/tokens", &query, filter.page, filter.per_page, total);
    Ok((headers, Json(tokens)))
}

/// Shows one token (never its plaintext).
#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 200, body = TokenView),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(state.service.token(path_id(id)?).await?))
}

/// Revokes a token: this replica denies it from the moment the answer is sent.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_token(&actor, path_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a token's name, description or permissions (`scopes` of a legacy token,
/// `granular_scopes` of a fine-grained one), under the rules of creation; audited with
/// a before and after.
#[utoipa::path(patch, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = UpdateToken,
    responses((status = 200, body = TokenView), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<UpdateToken>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(
        state
            .service
            .update_token(&actor, path_id(id)?, body)
            .await?,
    ))
}

/// Revokes the token and answers its successor, with the same attributes and a new
/// expiry (default: a week). Rotating a token already revoked revokes its whole
/// rotation family (reuse detection) and answers 409.
#[utoipa::path(post, path = "/v1/tokens/{id}/rotate", tag = "tokens",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = Option<RotateToken>,
    responses((status = 200, body = TokenView), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<RotateToken>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(
        state
            .service
            .rotate_token(&actor, path_id(id)?, body)
            .await?,
    ))
}

/// A new token prefilled from this one (which stays as it is).
#[utoipa::path(post, path = "/v1/tokens/{id}/duplicate", tag = "tokens",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = Option<DuplicateToken>,
    responses((status = 201, body = TokenView), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn duplicate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<DuplicateToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let view = state
        .service
        .duplicate_token(&actor, path_id(id)?, body)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Revokes a leaked token by its value. 204 when it is revoked (now or before); 404
/// when the value is not a token.
#[utoipa::path(post, path = "/v1/tokens/revoke-by-value", tag = "tokens",
    request_body = RevokeByValue,
    responses((status = 204), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn revoke_by_value(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<RevokeByValue>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_by_value(&actor, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a token may do to itself, called with the token (`PRIVATE-TOKEN`,
/// `Authorization: Bearer`, `JOB-TOKEN`) and no service key.
pub fn self_router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens/self", get(show_self).delete(revoke_self))
        .route("/v1/tokens/self/rotate", post(rotate_self))
}

/// The calling token, when it holds `permission` on its own user: 401 (with
/// `WWW-Authenticate`) when it is not a valid token, 403 naming the reason when it does
/// not hold the permission.
async fn calling_token(
    state: &AppState,
    headers: &HeaderMap,
    address: std::net::SocketAddr,
    permission: &str,
) -> Result<(u64, Actor), Response> {
    let unauthorized = |reason: &str| {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "a valid token is required", "reason": reason})),
        )
            .into_response();
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"patrol\", error=\"invalid_token\""),
        );
        response
    };
    let Ok(Some(token)) =
        super::gateway::read::credential(&[], headers, &state.service.prefixes().job)
    else {
        return Err(unauthorized("token_invalid"));
    };
    let token = token.to_owned();
    let ip = Some(address.ip());
    let check = Check {
        token,
        action: CheckAction::Permission(permission.to_owned()),
        boundary: Some(CheckBoundary::User),
        confidential: false,
        author_id: None,
        assignee_ids: Vec::new(),
        client_ip: ip,
    };
    let outcome = state
        .service
        .authorize(std::slice::from_ref(&check))
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .pop()
        .ok_or_else(|| ApiError::Internal.into_response())?;
    match (outcome.allowed, outcome.reason, outcome.token_id) {
        (true, _, Some(id)) => Ok((
            id,
            Actor {
                caller: Caller::Token(id),
                ip,
            },
        )),
        (_, Reason::TokenInvalid | Reason::TokenRevoked | Reason::TokenExpired, _) => {
            Err(unauthorized(outcome.reason.as_str()))
        }
        _ => Err((
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"error": outcome.message, "reason": outcome.reason.as_str()})),
        )
            .into_response()),
    }
}

/// The calling token (`read_personal_access_token`).
#[utoipa::path(get, path = "/v1/tokens/self", tag = "tokens",
    responses((status = 200, body = TokenView), (status = 401), (status = 403), (status = 503)),
    security(("token" = [])))]
pub async fn show_self(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<TokenView>, Response> {
    let (id, _) = calling_token(&state, &headers, address, "read_personal_access_token").await?;
    let view = state
        .service
        .token(id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Json(view))
}

/// Rotates the calling token (`rotate_personal_access_token`, which a legacy
/// `self_rotate` scope grants): the answer is its successor, the caller is revoked.
#[utoipa::path(post, path = "/v1/tokens/self/rotate", tag = "tokens",
    request_body = Option<RotateToken>,
    responses((status = 200, body = TokenView), (status = 400, body = super::ErrorBody),
        (status = 401),
        (status = 403), (status = 422, body = super::ErrorBody), (status = 503)),
    security(("token" = [])))]
pub async fn rotate_self(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<RotateToken>,
) -> Result<Json<TokenView>, Response> {
    let (id, actor) =
        calling_token(&state, &headers, address, "rotate_personal_access_token").await?;
    let view = state
        .service
        .rotate_token(&actor, id, body)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Json(view))
}

/// Revokes the calling token (`revoke_personal_access_token`).
#[utoipa::path(delete, path = "/v1/tokens/self", tag = "tokens",
    responses((status = 204), (status = 401), (status = 403), (status = 503)),
    security(("token" = [])))]
pub async fn revoke_self(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<StatusCode, Response> {
    let (id, actor) =
        calling_token(&state, &headers, address, "revoke_personal_access_token").await?;
    state
        .service
        .revoke_token(&actor, id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(StatusCode::NO_CONTENT)
}
