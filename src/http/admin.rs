//! What only `admin` keys may call: instance settings, top-level group token policies
//! and service keys (DESIGN.md sections 6 and 7).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, put};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{ApiError, AppState, page, path_id};
use crate::audit::AuditEvent;
use crate::clock;
use crate::directory::{Invalid, TokenPolicy};
use crate::keys::{KeyRole, ServiceKeyRecord};
use crate::service::Actor;
use crate::settings::InstanceSettings;
use crate::store::AuditFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/settings", get(show_settings).put(put_settings))
        .route("/v1/groups/{id}/token-policy", put(put_token_policy))
        .route("/v1/service-keys", get(list_keys).post(create_key))
        .route("/v1/service-keys/{id}", delete(revoke_key))
        .route("/v1/audit-events", get(audit_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `job_token_allowlist_added`, ...
    action: Option<String>,
    /// `project`, ...
    target_type: Option<String>,
    #[param(maximum = 9223372036854775807_i64)]
    target_id: Option<u64>,
    /// From 1 (default 1).
    #[param(minimum = 1, maximum = 4294967295_i64, format = Int64)]
    page: Option<u32>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// The audit trail in the order it happened, with GitLab's pagination headers.
#[utoipa::path(get, path = "/v1/audit-events", tag = "admin",
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditEvent>,
        headers(("X-Total" = u64), ("X-Page" = u32), ("X-Per-Page" = u32), ("X-Next-Page" = String),
            ("X-Prev-Page" = String), ("X-Total-Pages" = u64), ("Link" = String))),
        (status = 400, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn audit_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<(HeaderMap, Json<Vec<AuditEvent>>), ApiError> {
    let (page, per_page) = page::checked(query.page, query.per_page)?;
    let filter = AuditFilter {
        action: query.action.filter(|s| !s.is_empty()),
        target_type: query.target_type.filter(|s| !s.is_empty()),
        target_id: page::id_filter("target_id", query.target_id)?,
        page,
        per_page,
    };
    let (events, total) = state.service.audit_events(&filter).await?;
    let mut params = Vec::new();
    if let Some(action) = &filter.action {
        params.push(format!("action={}", page::encode(action)));
    }
    if let Some(target_type) = &filter.target_type {
        params.push(format!("target_type={}", page::encode(target_type)));
    }
    if let Some(target_id) = filter.target_id {
        params.push(format!("target_id={target_id}"));
    }
    let headers = page::headers("/v1/audit-events", &params, page, per_page, total);
    Ok((headers, Json(events)))
}

/// The instance settings: the token rules set at runtime, and what configuration fixes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    pub max_lifetime_days: u32,
    pub require_expiry: bool,
    pub allow_legacy_token_creation: bool,
    /// Set in configuration (`personal_token_prefix`).
    pub personal_token_prefix: String,
    /// Set in configuration (`job_token_prefix`).
    pub job_token_prefix: String,
    /// Set in configuration (`PATROL_ARGON2`).
    pub argon2: String,
}

fn settings_view(state: &AppState, s: InstanceSettings) -> SettingsView {
    SettingsView {
        max_lifetime_days: s.max_lifetime_days,
        require_expiry: s.require_expiry,
        allow_legacy_token_creation: s.allow_legacy_token_creation,
        personal_token_prefix: state.service.prefixes().personal.clone(),
        job_token_prefix: state.service.prefixes().job.clone(),
        argon2: state.service.argon2().to_string(),
    }
}

#[utoipa::path(get, path = "/v1/settings", tag = "admin",
    responses((status = 200, body = SettingsView), (status = 401), (status = 403)),
    security(("service_key" = [])))]
pub async fn show_settings(State(state): State<AppState>) -> Json<SettingsView> {
    let settings = state.service.settings();
    Json(settings_view(&state, settings))
}

/// Replaces the runtime token rules. Prefixes and argon2 costs are configuration.
#[utoipa::path(put, path = "/v1/settings", tag = "admin",
    request_body = InstanceSettings,
    responses((status = 200, body = SettingsView), (status = 400, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_settings(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<InstanceSettings>,
) -> Result<Json<SettingsView>, ApiError> {
    let settings = state.service.put_settings(&actor, body).await?;
    Ok(Json(settings_view(&state, settings)))
}

/// A top-level group's rule for legacy tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicyBody {
    pub enforce_fine_grained: bool,
    /// `YYYY-MM-DD`: enforcement starts at 00:00 UTC that day; `null` at once.
    #[serde(default)]
    pub enforced_after: Option<String>,
}

impl TryFrom<&TokenPolicyBody> for TokenPolicy {
    type Error = Invalid;

    fn try_from(body: &TokenPolicyBody) -> Result<Self, Invalid> {
        let enforced_after = body
            .enforced_after
            .as_deref()
            .map(|text| {
                clock::parse_date(text).ok_or_else(|| {
                    Invalid::new(
                        "enforced_after",
                        format!("must be a date YYYY-MM-DD, not `{text}`"),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            enforce_fine_grained: body.enforce_fine_grained,
            enforced_after,
        })
    }
}

/// Sets whether a top-level group denies legacy tokens everywhere in its hierarchy.
#[utoipa::path(put, path = "/v1/groups/{id}/token-policy", tag = "admin",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    request_body = TokenPolicyBody,
    responses((status = 200, body = TokenPolicyBody), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn put_token_policy(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<TokenPolicyBody>,
) -> Result<Json<TokenPolicyBody>, ApiError> {
    let id = path_id(id)?;
    let policy = TokenPolicy::try_from(&body)?;
    state.service.put_token_policy(&actor, id, policy).await?;
    Ok(Json(body))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Trimmed; 1 to 255 bytes.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    pub role: KeyRole,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub id: u64,
    pub name: String,
    pub role: KeyRole,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The plaintext key: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn key_view(record: &ServiceKeyRecord) -> KeyView {
    KeyView {
        id: record.id,
        name: record.name.clone(),
        role: record.role,
        created_at: clock::rfc3339(record.created_at),
        revoked_at: record.revoked_at.map(clock::rfc3339),
        key: None,
    }
}

/// Creates a service key; the plaintext `key` is shown once.
#[utoipa::path(post, path = "/v1/service-keys", tag = "admin",
    request_body = CreateKey,
    responses((status = 201, body = KeyView), (status = 400, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let (record, plaintext) = state
        .service
        .create_key(&actor, &body.name, body.role)
        .await?;
    let mut view = key_view(&record);
    view.key = Some(plaintext);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/v1/service-keys", tag = "admin",
    responses((status = 200, body = Vec<KeyView>), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn list_keys(State(state): State<AppState>) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = state.service.service_keys().await?;
    Ok(Json(keys.iter().map(key_view).collect()))
}

/// Revokes a service key at once.
#[utoipa::path(delete, path = "/v1/service-keys/{id}", tag = "admin",
    params(("id" = u64, Path, maximum = 9223372036854775807_i64)),
    responses((status = 204),
        (status = 400, description = "A malformed id", body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 401), (status = 403), (status = 503)),
    security(("service_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_key(&actor, path_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
