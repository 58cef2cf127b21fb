//! The OpenAPI document, generated from the handlers' annotations. Committed as
//! `openapi/openapi.json`; `tests/artifacts` fails when it drifts.

use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{RefOr, Required};
use utoipa::{Modify, OpenApi};

use super::{admin, authorize, catalog, directory, gateway, gitlab, graphql, health, jobs, tokens};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "patrol",
        description = "A policy decision point for fine-grained and legacy personal access tokens and CI/CD job tokens. Service endpoints take a service key in `X-Patrol-Key`."
    ),
    paths(
        health::health, health::ready, health::metrics, health::openapi,
        catalog::list_permissions, catalog::show_permission, catalog::scopes,
        catalog::job_token_policies, catalog::templates, catalog::page,
        authorize::authorize, authorize::batch, graphql::authorize_graphql, gateway::check,
        directory::put_user, directory::delete_user, directory::put_group, directory::delete_group,
        directory::put_project, directory::delete_project,
        directory::put_group_member, directory::delete_group_member,
        directory::put_project_member, directory::delete_project_member, directory::batch,
        tokens::create, tokens::list, tokens::show, tokens::revoke, tokens::update,
        tokens::rotate, tokens::duplicate, tokens::revoke_by_value,
        tokens::show_self, tokens::rotate_self, tokens::revoke_self,
        gitlab::current_user, gitlab::list, gitlab::show, gitlab::revoke, gitlab::rotate,
        gitlab::create_for_self, gitlab::create_for_user,
        admin::show_settings, admin::put_settings, admin::put_token_policy,
        admin::create_key, admin::list_keys, admin::revoke_key, admin::audit_events,
        jobs::create_job, jobs::finish_job, jobs::show_scope, jobs::update_scope,
        jobs::list_allowlist, jobs::put_allowlist_entry, jobs::remove_project_entry,
        jobs::remove_group_entry,
    ),
    // Only named by the query parameters' `IntoParams`, which do not register schemas.
    components(schemas(crate::tokens::TokenState)),
    modifiers(&ServiceKey, &OptionalBodies, &RateLimited),
    tags(
        (name = "decisions", description = "May this token do this? (`authorize` keys and above)"),
        (name = "directory", description = "The directory mirror, pushed by the main application (`manage` keys and above)"),
        (name = "tokens", description = "Tokens on behalf of users (`manage` keys and above)"),
        (name = "jobs", description = "CI/CD job tokens and project job token scopes (`manage` keys and above)"),
        (name = "admin", description = "Settings, group token policies, service keys and the audit trail (`admin` keys)"),
        (name = "gitlab", description = "GitLab's personal access token API, with the token itself (`PRIVATE-TOKEN` or `Authorization: Bearer`)"),
        (name = "catalog", description = "The permission catalog (public)"),
        (name = "operations", description = "Health, readiness, metrics (public)"),
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct ServiceKey;

impl Modify for ServiceKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "service_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Patrol-Key"))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("PRIVATE-TOKEN"))),
        );
    }
}

/// A body that may be left out (`request_body = Option<T>`) is written by utoipa as
/// required-or-`null`; patrol takes no body, never a `null` one, so its schema is `T`.
#[derive(Debug)]
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let is_null = |schema: &RefOr<Schema>| {
            matches!(schema, RefOr::T(Schema::Object(object))
                if object.schema_type == SchemaType::Type(Type::Null))
        };
        for operation in operations(openapi) {
            let Some(body) = operation.request_body.as_mut() else {
                continue;
            };
            if matches!(body.required, Some(Required::True)) {
                continue;
            }
            for content in body.content.values_mut() {
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                    continue;
                };
                let mut kept = one_of.items.iter().filter(|s| !is_null(s));
                if let (Some(only), None) = (kept.next(), kept.next()) {
                    content.schema = Some(only.clone());
                }
            }
        }
    }
}

/// The routes behind the per-caller rate limit (`src/http/limits.rs`) may answer 429.
#[derive(Debug)]
struct RateLimited;

/// Tags of the rate-limited routes: everything but decisions, the catalog and operations.
/// `limits::the_document_names_429_on_exactly_the_limited_operations` calls every
/// operation to keep this and `router`'s `limited(...)` in step.
const RATE_LIMITED_TAGS: [&str; 5] = ["directory", "tokens", "jobs", "admin", "gitlab"];

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, HeaderBuilder, ResponseBuilder};
        let too_many = ResponseBuilder::new()
            .description("Too many requests from this caller; retry after `Retry-After` seconds")
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("Seconds to wait"))
                    .build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for operation in operations(openapi) {
            let limited = operation
                .tags
                .iter()
                .flatten()
                .any(|tag| RATE_LIMITED_TAGS.contains(&tag.as_str()));
            if limited {
                operation
                    .responses
                    .responses
                    .insert("429".to_owned(), RefOr::T(too_many.clone()));
            }
        }
    }
}

/// Every operation of the document.
fn operations(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

/// The document as pretty JSON, newline-terminated.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    json.push('\n');
    json
}
