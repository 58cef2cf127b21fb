//! The directory mirror API (DESIGN.md section 2), for the main application.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, put};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath};
use super::{ApiError, AppState, check_id};
use crate::directory::{Batch, GroupBody, MemberBody, MemberOf, Membership, ProjectBody, UserBody};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/directory/users/{id}",
            put(put_user).delete(delete_user),
        )
        .route(
            "/v1/directory/groups/{id}",
            put(put_group).delete(delete_group),
        )
        .route(
            "/v1/directory/projects/{id}",
            put(put_project).delete(delete_project),
        )
        .route(
            "/v1/directory/groups/{id}/members/{user_id}",
            put(put_group_member).delete(delete_group_member),
        )
        .route(
            "/v1/directory/projects/{id}/members/{user_id}",
            put(put_project_member).delete(delete_project_member),
        )
        .route("/v1/directory/batch", post(batch))
}

/// Creates or replaces a user.
#[utoipa::path(put, path = "/v1/directory/users/{id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64,
        description = "The user's id in the main application")),
    request_body = UserBody,
    responses((status = 204, description = "Stored"), (status = 400, body = super::ErrorBody),
        (status = 409, description = "Another user has this username", body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<UserBody>,
) -> Result<StatusCode, ApiError> {
    state.service.put_user(check_id(id)?, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user without personal projects, with their memberships.
#[utoipa::path(delete, path = "/v1/directory/users/{id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_user(check_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates, moves or replaces a group.
#[utoipa::path(put, path = "/v1/directory/groups/{id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = GroupBody,
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_group(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Result<StatusCode, ApiError> {
    state.service.put_group(check_id(id)?, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a group without subgroups or projects.
#[utoipa::path(delete, path = "/v1/directory/groups/{id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn delete_group(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_group(check_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates, moves or replaces a project.
#[utoipa::path(put, path = "/v1/directory/projects/{id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = ProjectBody,
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<ProjectBody>,
) -> Result<StatusCode, ApiError> {
    state.service.put_project(check_id(id)?, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/directory/projects/{id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn delete_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_project(check_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn put_member(
    state: &AppState,
    of: MemberOf,
    (id, user_id): (u64, u64),
    body: MemberBody,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .put_member(Membership {
            of,
            namespace_id: check_id(id)?,
            user_id: check_id(user_id)?,
            access_level: body.access_level,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's direct access level on a group.
#[utoipa::path(put, path = "/v1/directory/groups/{id}/members/{user_id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64),
        ("user_id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = MemberBody,
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_group_member(
    State(state): State<AppState>,
    ApiPath(ids): ApiPath<(u64, u64)>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<StatusCode, ApiError> {
    put_member(&state, MemberOf::Group, ids, body).await
}

/// Sets a user's direct access level on a project.
#[utoipa::path(put, path = "/v1/directory/projects/{id}/members/{user_id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64),
        ("user_id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = MemberBody,
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_project_member(
    State(state): State<AppState>,
    ApiPath(ids): ApiPath<(u64, u64)>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<StatusCode, ApiError> {
    put_member(&state, MemberOf::Project, ids, body).await
}

#[utoipa::path(delete, path = "/v1/directory/groups/{id}/members/{user_id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64),
        ("user_id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn delete_group_member(
    State(state): State<AppState>,
    ApiPath((id, user_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .delete_member(MemberOf::Group, check_id(id)?, check_id(user_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/directory/projects/{id}/members/{user_id}", tag = "directory",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64),
        ("user_id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn delete_project_member(
    State(state): State<AppState>,
    ApiPath((id, user_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .delete_member(MemberOf::Project, check_id(id)?, check_id(user_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchApplied {
    /// How many items were applied.
    pub applied: usize,
}

/// Upserts users, groups, projects and memberships in that order, all or nothing.
#[utoipa::path(post, path = "/v1/directory/batch", tag = "directory",
    request_body = Batch,
    responses((status = 200, body = BatchApplied), (status = 400, body = super::ErrorBody),
        (status = 409, description = "A username is another user's", body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    ApiJson(batch): ApiJson<Batch>,
) -> Result<axum::Json<BatchApplied>, ApiError> {
    batch.check_ids().map_err(ApiError::Invalid)?;
    let applied = state.service.apply_batch(batch).await?;
    Ok(axum::Json(BatchApplied { applied }))
}
