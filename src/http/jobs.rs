//! CI/CD job tokens and project job token scopes (DESIGN.md section 8), for `manage`
//! and `admin` keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};

use super::extract::{ApiJson, ApiPath};
use super::{ApiError, AppState, path_id};
use crate::jobs::{AllowlistBody, AllowlistView, JobView, NewJob, ScopePatch};
use crate::jobs::{JobTokenScopeRecord, SourceKind};
use crate::service::Actor;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(create_job))
        .route("/v1/jobs/{job_id}", delete(finish_job))
        .route(
            "/v1/projects/{id}/job-token-scope",
            get(show_scope).patch(update_scope),
        )
        .route(
            "/v1/projects/{id}/job-token-scope/allowlist",
            get(list_allowlist).post(put_allowlist_entry),
        )
        .route(
            "/v1/projects/{id}/job-token-scope/allowlist/projects/{source_id}",
            delete(remove_project_entry),
        )
        .route(
            "/v1/projects/{id}/job-token-scope/allowlist/groups/{source_id}",
            delete(remove_group_entry),
        )
}

/// Mints the token of a CI/CD job. The answer carries the plaintext `token`, the only
/// time it is shown.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body = NewJob,
    responses((status = 201, body = JobView), (status = 400, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn create_job(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewJob>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let view = state.service.create_job(body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The job ended: its token is denied from the moment the answer is sent.
#[utoipa::path(delete, path = "/v1/jobs/{job_id}", tag = "jobs",
    params(("job_id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn finish_job(
    State(state): State<AppState>,
    ApiPath(job_id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state.service.finish_job(path_id(job_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's inbound job token settings (defaults: inbound on, fine-grained off).
#[utoipa::path(get, path = "/v1/projects/{id}/job-token-scope", tag = "jobs",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 200, body = JobTokenScopeRecord),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
        (status = 401), (status = 403)),
    security(("service_key" = [])))]
pub async fn show_scope(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<JobTokenScopeRecord>, ApiError> {
    Ok(Json(state.service.job_token_scope(path_id(id)?)?))
}

/// Changes a project's inbound job token settings; audited.
#[utoipa::path(patch, path = "/v1/projects/{id}/job-token-scope", tag = "jobs",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = ScopePatch,
    responses((status = 200, body = JobTokenScopeRecord), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn update_scope(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(patch): ApiJson<ScopePatch>,
) -> Result<Json<JobTokenScopeRecord>, ApiError> {
    let scope = state
        .service
        .update_job_token_scope(&actor, path_id(id)?, patch)
        .await?;
    Ok(Json(scope))
}

/// The projects and groups whose job tokens may reach this project.
#[utoipa::path(get, path = "/v1/projects/{id}/job-token-scope/allowlist", tag = "jobs",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 200, body = Vec<AllowlistView>),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn list_allowlist(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<Vec<AllowlistView>>, ApiError> {
    Ok(Json(state.service.allowlist(path_id(id)?).await?))
}

/// Adds a project or group to the allowlist (201), or replaces its policies (200);
/// audited as `job_token_allowlist_added` or `job_token_policies_updated`.
#[utoipa::path(post, path = "/v1/projects/{id}/job-token-scope/allowlist", tag = "jobs",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = AllowlistBody,
    responses((status = 201, body = AllowlistView), (status = 200, body = AllowlistView),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_allowlist_entry(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<AllowlistBody>,
) -> Result<(StatusCode, Json<AllowlistView>), ApiError> {
    let (view, created) = state
        .service
        .put_allowlist_entry(&actor, path_id(id)?, body)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Removes a project from the allowlist; audited as `job_token_allowlist_removed`.
#[utoipa::path(delete, path = "/v1/projects/{id}/job-token-scope/allowlist/projects/{source_id}", tag = "jobs",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64),
        ("source_id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn remove_project_entry(
    state: State<AppState>,
    actor: Extension<Actor>,
    ApiPath((id, source_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    remove(state, actor, id, SourceKind::Project, source_id).await
}

/// Removes a group from the allowlist; audited as `job_token_allowlist_removed`.
#[utoipa::path(delete, path = "/v1/projects/{id}/job-token-scope/allowlist/groups/{source_id}", tag = "jobs",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64),
        ("source_id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn remove_group_entry(
    state: State<AppState>,
    actor: Extension<Actor>,
    ApiPath((id, source_id)): ApiPath<(u64, u64)>,
) -> Result<StatusCode, ApiError> {
    remove(state, actor, id, SourceKind::Group, source_id).await
}

async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    id: u64,
    source: SourceKind,
    source_id: u64,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .delete_allowlist_entry(&actor, path_id(id)?, source, path_id(source_id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
