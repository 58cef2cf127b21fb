//! The decision engine against docs/decisions.md: a table of hand-written cases, and a
//! differential property test against a naive reference model on random worlds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod mint;
mod model;
mod props;
mod table;
mod world;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use patrol::catalog::{Catalog, RoutePath};
use patrol::engine::{
    Action, BoundaryRef, Credential, Decision, GroupId, ProjectId, Request, Resource, Snapshot,
    TokenId, UserId, decide,
};

use world::{WAction, WBoundary, WRequest};

/// The small catalog of `tests/fixtures/engine_catalog`.
pub fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine_catalog");
            Arc::new(patrol::catalog::load_dir(&dir).unwrap())
        })
        .clone()
}

/// A request path of the tests (possibly with a query string) as the gateway would hand
/// it to the engine.
pub fn routed(path: &str) -> RoutePath {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    RoutePath::parse(path).unwrap()
}

/// Asks the engine a plain request.
pub fn engine<'s>(snapshot: &'s Snapshot, r: &WRequest) -> Decision<'s> {
    let route;
    let action = match &r.action {
        WAction::Permission(name) => Action::Permission(name),
        WAction::Route(method, path) => {
            route = routed(path);
            Action::Route {
                method,
                path: &route,
            }
        }
    };
    let assignees: Vec<UserId> = r.assignees.iter().map(|&u| UserId(u)).collect();
    let boundary = r.boundary.as_ref().map(|b| match b {
        WBoundary::ProjectId(id) => BoundaryRef::ProjectId(ProjectId(*id)),
        WBoundary::ProjectPath(p) => BoundaryRef::ProjectPath(p),
        WBoundary::GroupId(id) => BoundaryRef::GroupId(GroupId(*id)),
        WBoundary::GroupPath(p) => BoundaryRef::GroupPath(p),
        WBoundary::User => BoundaryRef::User,
        WBoundary::Instance => BoundaryRef::Instance,
        WBoundary::Unresolved => BoundaryRef::Unresolved,
    });
    let request = Request {
        credential: r
            .token
            .map_or(Credential::Invalid, |id| Credential::Token(TokenId(id))),
        action,
        boundary,
        resource: Resource {
            confidential: r.confidential,
            author_id: r.author.map(UserId),
            assignee_ids: &assignees,
        },
        client_ip: r.ip,
        now: r.now,
    };
    decide(snapshot, &request)
}
