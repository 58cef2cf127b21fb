//! The GitLab-compatible subset of the personal access token API (DESIGN.md section 6),
//! so that existing clients (python-gitlab, the `glab` CLI, scripts) work unchanged:
//! GitLab's paths, field names, status codes and pagination headers, and the token in
//! `PRIVATE-TOKEN` or `Authorization: Bearer`.
//!
//! Each request is first decided as the route it is, through the catalog (so a token
//! needs `read_personal_access_token` to list, `rotate_personal_access_token` to
//! rotate, and `create_personal_access_token` with `admin_mode` on the instance to
//! create for a user), then scoped: a token sees and changes the tokens of its own user
//! only, unless it acts as an administrator (an admin user's token with `admin_mode`).

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJsonOrEmpty, ApiPath, ApiQuery};
use super::gateway::read;
use super::{ApiError, AppState, page};
use crate::catalog::RoutePath;
use crate::engine::Reason;
use crate::service::{Actor, Caller, Check, CheckAction, CheckBoundary, Lister, ServiceError};
use crate::store::TokenFilter;
use crate::tokens::{
    CreateToken, GranularScopeBody, RotateToken, TokenKind, TokenState, TokenView,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v4/user", get(current_user))
        .route("/api/v4/personal_access_tokens", get(list))
        .route(
            "/api/v4/personal_access_tokens/{id}",
            get(show).delete(revoke),
        )
        .route("/api/v4/personal_access_tokens/{id}/rotate", post(rotate))
        .route("/api/v4/user/personal_access_tokens", post(create_for_self))
        .route(
            "/api/v4/users/{user_id}/personal_access_tokens",
            post(create_for_user),
        )
}

/// GitLab's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitlabError {
    pub message: String,
}

fn error(status: StatusCode, message: &str) -> Response {
    let mut response = (
        status,
        Json(GitlabError {
            message: message.to_owned(),
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"patrol\", error=\"invalid_token\""),
        );
    }
    response
}

/// Malformed input (a query, a path or a body that does not parse), in GitLab's shape.
fn malformed(e: ApiError) -> Response {
    error(StatusCode::BAD_REQUEST, &e.to_string())
}

fn failed(e: ServiceError) -> Response {
    match e {
        ServiceError::Forbidden(_) => error(StatusCode::FORBIDDEN, "403 Forbidden"),
        ServiceError::NotFound(_) => error(StatusCode::NOT_FOUND, "404 Not Found"),
        ServiceError::Invalid(invalid) => error(StatusCode::BAD_REQUEST, &invalid.to_string()),
        ServiceError::Conflict(m) => error(StatusCode::BAD_REQUEST, &m),
        other => ApiError::from(other).into_response(),
    }
}

/// Who is calling: the token, its user, and whether it acts as an administrator. As an
/// extractor, it decides the request as the route it is first.
#[derive(Debug, Clone, Copy)]
pub struct Requester {
    token_id: u64,
    user_id: u64,
    admin: bool,
    actor: Actor,
}

/// Decides the request as the route it is; 401 for a missing or dead token, 403 when
/// the token may not call the route.
async fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    address: Option<std::net::SocketAddr>,
) -> Result<Requester, Response> {
    let Ok(Some(token)) = read::presented(uri, headers, &state.service.prefixes().job) else {
        return Err(error(StatusCode::UNAUTHORIZED, "401 Unauthorized"));
    };
    // A path patrol cannot read (a control character, bytes that are not UTF-8) names
    // nothing it serves: GitLab's 404, as for any id that is no token's.
    let path =
        RoutePath::parse(uri.path()).map_err(|_| error(StatusCode::NOT_FOUND, "404 Not Found"))?;
    let ip = address.map(|a| a.ip());
    let check = |action: CheckAction, boundary: Option<CheckBoundary>| Check {
        token: token.clone(),
        action,
        boundary,
        confidential: false,
        author_id: None,
        assignee_ids: Vec::new(),
        client_ip: ip,
    };
    let checks = [
        check(
            CheckAction::Route {
                method: method.as_str().to_owned(),
                path,
            },
            None,
        ),
        check(
            CheckAction::Permission("admin_mode".to_owned()),
            Some(CheckBoundary::Instance),
        ),
    ];
    let outcomes = state
        .service
        .authorize(&checks)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let (route, admin) = (&outcomes[0], &outcomes[1]);
    match (route.allowed, route.reason, route.token_id, route.user_id) {
        (true, _, Some(token_id), Some(user_id)) => Ok(Requester {
            token_id,
            user_id,
            admin: admin.allowed,
            actor: Actor {
                caller: Caller::Token(token_id),
                ip,
            },
        }),
        (_, Reason::TokenInvalid | Reason::TokenRevoked | Reason::TokenExpired, _, _) => {
            Err(error(StatusCode::UNAUTHORIZED, "401 Unauthorized"))
        }
        _ => Err(error(StatusCode::FORBIDDEN, "403 Forbidden")),
    }
}

impl FromRequestParts<AppState> for Requester {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let address = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(a)| *a);
        authenticate(state, &parts.method, &parts.uri, &parts.headers, address).await
    }
}

/// `self`, or a token id; anything else is a 404.
fn token_id(caller: &Requester, id: &str) -> Result<u64, Box<Response>> {
    if id == "self" {
        return Ok(caller.token_id);
    }
    id.parse()
        .map_err(|_| Box::new(error(StatusCode::NOT_FOUND, "404 Not Found")))
}

/// A token the caller may see: its own user's, or any as an administrator. Others are
/// 404, so that their existence is not told.
async fn visible_token(
    state: &AppState,
    caller: &Requester,
    id: u64,
) -> Result<TokenView, Response> {
    let view = state.service.token(id).await.map_err(failed)?;
    if view.user_id != caller.user_id && !caller.admin {
        return Err(error(StatusCode::NOT_FOUND, "404 Not Found"));
    }
    if view.kind == TokenKind::Job {
        return Err(error(StatusCode::NOT_FOUND, "404 Not Found"));
    }
    Ok(view)
}

/// The calling token's user, as GitLab's `GET /user` shows it.
#[utoipa::path(get, path = "/api/v4/user", tag = "gitlab",
    responses((status = 200, body = Object), (status = 401, body = GitlabError),
        (status = 403, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn current_user(
    State(state): State<AppState>,
    caller: Requester,
) -> Result<Json<serde_json::Value>, Response> {
    // Removed from the directory since the token's check: as the check would now say,
    // the token's user cannot act (403).
    let user = state
        .service
        .user(caller.user_id)
        .ok_or_else(|| error(StatusCode::FORBIDDEN, "403 Forbidden"))?;
    Ok(Json(serde_json::json!({
        "id": caller.user_id,
        "username": user.username,
        "name": user.username,
        "state": if user.blocked { "blocked" } else { "active" },
        "is_admin": user.admin,
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// An administrator may list another user's tokens.
    #[param(maximum = 9223372036854775807_i64)]
    user_id: Option<u64>,
    /// `active` or `inactive`.
    state: Option<TokenState>,
    revoked: Option<bool>,
    search: Option<String>,
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4294967295_i64, format = Int64)]
    page: Option<u32>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// The caller's tokens (an administrator: anyone's, or `user_id`'s), newest first, with
/// GitLab's pagination headers.
#[utoipa::path(get, path = "/api/v4/personal_access_tokens", tag = "gitlab",
    params(ListQuery),
    responses((status = 200, body = Vec<TokenView>,
        headers(("X-Total" = u64), ("X-Page" = u32), ("X-Per-Page" = u32), ("X-Next-Page" = String),
            ("X-Prev-Page" = String), ("X-Total-Pages" = u64), ("Link" = String))),
        (status = 400, body = GitlabError), (status = 401, body = GitlabError),
        (status = 403, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Requester,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Result<(HeaderMap, Json<Vec<TokenView>>), Response> {
    let ApiQuery(query) = query.map_err(malformed)?;
    let (page, per_page) = page::checked(query.page, query.per_page).map_err(malformed)?;
    let filter = TokenFilter {
        user_id: page::id_filter("user_id", query.user_id).map_err(malformed)?,
        state: query.state,
        search: query.search.filter(|s| !s.is_empty()),
        revoked: query.revoked,
        personal: true,
        page,
        per_page,
        ..TokenFilter::default()
    };
    let lister = Lister::User {
        id: caller.user_id,
        admin: caller.admin,
    };
    let (tokens, total) = state
        .service
        .list_tokens(lister, filter.clone(), None)
        .await
        .map_err(failed)?;
    let mut params = Vec::new();
    if let Some(id) = query.user_id {
        params.push(format!("user_id={id}"));
    }
    if let Some(state) = query.state {
        params.push(format!("state={}", state.as_str()));
    }
    if let Some(revoked) = query.revoked {
        params.push(format!("revoked={revoked}"));
    }
    if let Some(search) = &filter.search {
        params.push(format!("search={}", page::encode(search)));
    }
    let headers = page::headers(
        "/api/v4/personal_access_tokens",
        &params,
        page,
        per_page,
        total,
    );
    Ok((headers, Json(tokens)))
}

/// One token, or `self`.
#[utoipa::path(get, path = "/api/v4/personal_access_tokens/{id}", tag = "gitlab",
    params(("id" = String, Path, description = "A token id, or `self`")),
    responses((status = 200, body = TokenView), (status = 401, body = GitlabError),
        (status = 403, body = GitlabError), (status = 404, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<AppState>,
    caller: Requester,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TokenView>, Response> {
    let id = token_id(&caller, &id).map_err(|e| *e)?;
    Ok(Json(visible_token(&state, &caller, id).await?))
}

/// Revokes a token, or `self`: 204.
#[utoipa::path(delete, path = "/api/v4/personal_access_tokens/{id}", tag = "gitlab",
    params(("id" = String, Path, description = "A token id, or `self`")),
    responses((status = 204), (status = 400, body = GitlabError), (status = 401, body = GitlabError),
        (status = 403, body = GitlabError), (status = 404, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Requester,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, Response> {
    let id = token_id(&caller, &id).map_err(|e| *e)?;
    visible_token(&state, &caller, id).await?;
    state
        .service
        .revoke_token(&caller.actor, id)
        .await
        .map_err(failed)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates a token, or `self`: the old one is revoked, the answer carries the new one.
/// A token whose only right here is the `self_rotate` scope rotates only itself.
#[utoipa::path(post, path = "/api/v4/personal_access_tokens/{id}/rotate", tag = "gitlab",
    params(("id" = String, Path, description = "A token id, or `self`")),
    request_body = Option<RotateToken>,
    responses((status = 200, body = TokenView), (status = 400, body = GitlabError),
        (status = 401, body = GitlabError), (status = 403, body = GitlabError),
        (status = 404, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Requester,
    ApiPath(id): ApiPath<String>,
    body: Result<ApiJsonOrEmpty<RotateToken>, ApiError>,
) -> Result<Json<TokenView>, Response> {
    let ApiJsonOrEmpty(body) = body.map_err(malformed)?;
    let id = token_id(&caller, &id).map_err(|e| *e)?;
    if id != caller.token_id {
        let own = state.service.token(caller.token_id).await.map_err(failed)?;
        let only_self_rotate =
            own.kind == TokenKind::Legacy && own.scopes.iter().all(|s| s == "self_rotate");
        if only_self_rotate {
            return Err(error(StatusCode::FORBIDDEN, "403 Forbidden"));
        }
    }
    visible_token(&state, &caller, id).await?;
    let view = state
        .service
        .rotate_token(&caller.actor, id, body)
        .await
        .map_err(failed)?;
    Ok(Json(view))
}

/// GitLab's body for creating a token; `granular_scopes` (instead of `scopes`) and
/// `allowed_ips` are patrol's own, as in `POST /v1/users/{user_id}/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateForUser {
    pub name: String,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub granular_scopes: Option<Vec<GranularScopeBody>>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Creates a token for `user_id` as `caller`. A token makes tokens only within what it
/// holds itself (400 naming the field otherwise, as GitLab answers invalid input).
async fn create(
    state: &AppState,
    caller: &Requester,
    user_id: u64,
    body: &[u8],
) -> Result<(StatusCode, Json<TokenView>), Response> {
    let body: CreateForUser = super::extract::parse_json(body).map_err(malformed)?;
    let request = CreateToken {
        name: Some(body.name),
        description: body.description,
        expires_at: body.expires_at,
        scopes: body.scopes,
        granular_scopes: body.granular_scopes,
        allowed_ips: body.allowed_ips,
        ..CreateToken::default()
    };
    let view = state
        .service
        .create_token(&caller.actor, user_id, request)
        .await
        .map_err(failed)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A token creates a token for its own user, with no more than it holds: 201 with the
/// new token, once.
#[utoipa::path(post, path = "/api/v4/user/personal_access_tokens", tag = "gitlab",
    request_body = CreateForUser,
    responses((status = 201, body = TokenView), (status = 400, body = GitlabError),
        (status = 401, body = GitlabError), (status = 403, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn create_for_self(
    State(state): State<AppState>,
    caller: Requester,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<TokenView>), Response> {
    create(&state, &caller, caller.user_id, &body).await
}

/// An administrator creates a token for a user: 201 with the token, once.
#[utoipa::path(post, path = "/api/v4/users/{user_id}/personal_access_tokens", tag = "gitlab",
    params(("user_id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = CreateForUser,
    responses((status = 201, body = TokenView), (status = 400, body = GitlabError),
        (status = 401, body = GitlabError), (status = 403, body = GitlabError),
        (status = 404, body = GitlabError),
        (status = 503, description = "The store cannot answer now", body = super::ErrorBody)),
    security(("token" = [])))]
pub async fn create_for_user(
    State(state): State<AppState>,
    caller: Requester,
    user_id: Result<ApiPath<u64>, ApiError>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<TokenView>), Response> {
    let ApiPath(user_id) = user_id.map_err(malformed)?;
    if !caller.admin {
        return Err(error(StatusCode::FORBIDDEN, "403 Forbidden"));
    }
    create(&state, &caller, user_id, &body).await
}
