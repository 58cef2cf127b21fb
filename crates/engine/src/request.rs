//! A question to the engine: who asks, to do what, where, on what.

use std::net::IpAddr;

use patrol_catalog::RoutePath;

use crate::{GroupId, ProjectId, TokenId, UserId};

/// Who is asking: a token the caller verified (format, checksum, secret), or nothing valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Malformed, bad checksum, unknown lookup id or wrong secret: never says which.
    Invalid,
    Token(TokenId),
}

/// What is being done: a catalog permission, or a REST route resolved through the
/// catalog (the method as GitLab reads it: upper case; the path read as GitLab's router
/// reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Permission(&'a str),
    /// Nothing but a valid token: a GraphQL operation that needs no permission
    /// (introspection, `__typename`).
    Authenticate,
    Route {
        method: &'a str,
        path: &'a RoutePath,
    },
}

/// Where it is being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryRef<'a> {
    ProjectId(ProjectId),
    ProjectPath(&'a str),
    GroupId(GroupId),
    GroupPath(&'a str),
    /// The token's own user.
    User,
    Instance,
    /// A permission is needed, but the request does not say where (a GraphQL field
    /// whose boundary argument is absent, or an object the catalog cannot place).
    Unresolved,
}

/// Attributes of the resource acted on, when the caller knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resource<'a> {
    pub confidential: bool,
    pub author_id: Option<UserId>,
    pub assignee_ids: &'a [UserId],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub credential: Credential,
    pub action: Action<'a>,
    /// Required with `Action::Permission`; with a route, the route names the boundary.
    pub boundary: Option<BoundaryRef<'a>>,
    pub resource: Resource<'a>,
    pub client_ip: Option<IpAddr>,
    /// Unix seconds.
    pub now: i64,
}
