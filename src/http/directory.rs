//! The directory mirror API (DESIGN.md section 2), for the main application: the
//! request bodies, parsed here into the directory's own types, once.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, put};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath};
use super::{ApiError, AppState, path_id};
use crate::catalog::Catalog;
use crate::directory::{
    self, DisplayName, Invalid, MemberOf, Membership, PathSegment, ProjectOwner, stored_id,
};
use crate::domain::{AccessLevel, FeatureAccess, Plan, Visibility};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    #[default]
    Active,
    Blocked,
}

/// `PUT /v1/directory/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub username: String,
    #[serde(default)]
    pub state: UserState,
    #[serde(default)]
    pub admin: bool,
}

impl TryFrom<UserBody> for directory::User {
    type Error = Invalid;

    fn try_from(body: UserBody) -> Result<Self, Invalid> {
        Ok(Self {
            username: PathSegment::parse(&body.username, "username")?,
            blocked: body.state == UserState::Blocked,
            admin: body.admin,
        })
    }
}

/// `PUT /v1/directory/groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    #[serde(default)]
    pub parent_id: Option<u64>,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    /// Top-level groups only; default `free`.
    #[serde(default)]
    pub plan: Option<Plan>,
}

impl TryFrom<GroupBody> for directory::Group {
    type Error = Invalid;

    fn try_from(body: GroupBody) -> Result<Self, Invalid> {
        Self::new(
            body.parent_id,
            PathSegment::parse(&body.path, "path")?,
            DisplayName::parse(&body.name)?,
            body.visibility,
            body.plan,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceKind {
    Group,
    User,
}

/// Where a project lives: a group, or a user's personal namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRef {
    pub kind: NamespaceKind,
    pub id: u64,
}

/// `PUT /v1/directory/projects/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBody {
    pub namespace: NamespaceRef,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    /// Project features by catalog name; absent ones are `enabled`.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureAccess>,
}

impl ProjectBody {
    fn parse(self, catalog: &Catalog) -> Result<directory::Project, Invalid> {
        let path = PathSegment::parse(&self.path, "path")?;
        let name = DisplayName::parse(&self.name)?;
        let owner = match self.namespace.kind {
            NamespaceKind::Group => ProjectOwner::Group(self.namespace.id),
            NamespaceKind::User => ProjectOwner::User(self.namespace.id),
        };
        directory::Project::new(owner, path, name, self.visibility, self.features, catalog)
    }
}

/// `PUT /v1/directory/{groups|projects}/{id}/members/{user_id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// 0, 5, 10, 15, 20, 30, 40 or 50.
    #[schema(value_type = u8)]
    pub access_level: AccessLevel,
}

/// A user in a batch: `id` plus the fields of `UserBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserItem {
    pub id: u64,
    pub username: String,
    #[serde(default)]
    pub state: UserState,
    #[serde(default)]
    pub admin: bool,
}

/// A group in a batch: `id` plus the fields of `GroupBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupItem {
    pub id: u64,
    #[serde(default)]
    pub parent_id: Option<u64>,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    #[serde(default)]
    pub plan: Option<Plan>,
}

/// A project in a batch: `id` plus the fields of `ProjectBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectItem {
    pub id: u64,
    pub namespace: NamespaceRef,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    #[serde(default)]
    pub features: BTreeMap<String, FeatureAccess>,
}

/// A membership in a batch: exactly one of `group_id` and `project_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipItem {
    #[serde(default)]
    pub group_id: Option<u64>,
    #[serde(default)]
    pub project_id: Option<u64>,
    pub user_id: u64,
    #[schema(value_type = u8)]
    pub access_level: AccessLevel,
}

impl MembershipItem {
    fn membership(&self) -> Result<Membership, Invalid> {
        let (of, namespace_id) = match (self.group_id, self.project_id) {
            (Some(id), None) => (MemberOf::Group, stored_id(id, "group_id")?),
            (None, Some(id)) => (MemberOf::Project, stored_id(id, "project_id")?),
            _ => {
                return Err(Invalid::new(
                    "group_id",
                    "exactly one of `group_id` and `project_id` must be given",
                ));
            }
        };
        Ok(Membership {
            of,
            namespace_id,
            user_id: stored_id(self.user_id, "user_id")?,
            access_level: self.access_level,
        })
    }
}

/// `POST /v1/directory/batch`: applied in order (users, groups, projects, memberships),
/// all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[serde(default)]
    pub users: Vec<UserItem>,
    #[serde(default)]
    pub groups: Vec<GroupItem>,
    #[serde(default)]
    pub projects: Vec<ProjectItem>,
    #[serde(default)]
    pub memberships: Vec<MembershipItem>,
}

impl Batch {
    /// Every item parsed in order, each error naming its place (`users[3].username`);
    /// every id fits the store's signed 64-bit columns.
    fn parse(self, catalog: &Catalog) -> Result<directory::Batch, Invalid> {
        let at = |list: &'static str, i: usize| move |e: Invalid| e.within(&format!("{list}[{i}]"));
        let mut batch = directory::Batch::default();
        for (i, u) in self.users.into_iter().enumerate() {
            let id = stored_id(u.id, "id").map_err(at("users", i))?;
            let body = UserBody {
                username: u.username,
                state: u.state,
                admin: u.admin,
            };
            batch
                .users
                .push((id, body.try_into().map_err(at("users", i))?));
        }
        for (i, g) in self.groups.into_iter().enumerate() {
            let id = stored_id(g.id, "id").map_err(at("groups", i))?;
            let body = GroupBody {
                parent_id: g.parent_id,
                path: g.path,
                name: g.name,
                visibility: g.visibility,
                plan: g.plan,
            };
            batch
                .groups
                .push((id, body.try_into().map_err(at("groups", i))?));
        }
        for (i, p) in self.projects.into_iter().enumerate() {
            let id = stored_id(p.id, "id").map_err(at("projects", i))?;
            let body = ProjectBody {
                namespace: p.namespace,
                path: p.path,
                name: p.name,
                visibility: p.visibility,
                features: p.features,
            };
            batch
                .projects
                .push((id, body.parse(catalog).map_err(at("projects", i))?));
        }
        for (i, m) in self.memberships.iter().enumerate() {
            batch
                .memberships
                .push(m.membership().map_err(at("memberships", i))?);
        }
        Ok(batch)
    }
}

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
    let id = path_id(id)?;
    state.service.put_user(id, body.try_into()?).await?;
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
    state.service.delete_user(path_id(id)?).await?;
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
    let id = path_id(id)?;
    state.service.put_group(id, body.try_into()?).await?;
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
    state.service.delete_group(path_id(id)?).await?;
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
    let id = path_id(id)?;
    let project = body.parse(&state.catalog)?;
    state.service.put_project(id, project).await?;
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
    state.service.delete_project(path_id(id)?).await?;
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
            namespace_id: path_id(id)?,
            user_id: path_id(user_id)?,
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
        .delete_member(MemberOf::Group, path_id(id)?, path_id(user_id)?)
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
        .delete_member(MemberOf::Project, path_id(id)?, path_id(user_id)?)
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
    let applied = state
        .service
        .apply_batch(batch.parse(&state.catalog)?)
        .await?;
    Ok(axum::Json(BatchApplied { applied }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_membership_names_exactly_one_namespace() {
        let item = |group_id, project_id| MembershipItem {
            group_id,
            project_id,
            user_id: 1,
            access_level: AccessLevel::GUEST,
        };
        assert!(item(Some(1), None).membership().is_ok());
        assert!(item(None, Some(1)).membership().is_ok());
        assert!(item(None, None).membership().is_err());
        assert!(item(Some(1), Some(1)).membership().is_err());
    }
}
