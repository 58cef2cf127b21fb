//! GraphQL decisions (DESIGN.md section 11): every (permission, boundary) an operation
//! needs, decided together; the operation is allowed only when each of them is.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{Check, CheckAction, CheckBoundary, Outcome, Result, Service};
use crate::catalog::graphql::plan::{self, Boundary, Need, PlanError};
use crate::catalog::{Catalog, PermissionId};
use crate::engine::Reason;

/// One need of the operation, decided.
#[derive(Debug, Clone)]
pub struct GraphqlCheck {
    pub need: Need,
    /// The permission's name; `None` for a root field the catalog does not cover.
    pub permission: Option<String>,
    pub outcome: Outcome,
}

/// The whole operation's answer: allowed only when every check is, and then for the
/// reason of the first check (in the order the fields are written) that is not.
#[derive(Debug, Clone)]
pub struct GraphqlOutcome {
    pub outcome: Outcome,
    pub checks: Vec<GraphqlCheck>,
}

impl Service {
    /// The needs of a GraphQL request, or why it is not one patrol decides (a 400).
    pub fn graphql_needs(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Need>, PlanError> {
        plan::plan(
            &self.catalog,
            self.graphql_limits,
            query,
            operation_name,
            variables,
        )
    }

    /// Decides every need with the token. Each distinct (permission, boundary) is
    /// decided once; an operation that needs none (only `__typename` or introspection)
    /// is allowed for any valid token.
    pub async fn authorize_graphql(
        &self,
        token: String,
        client_ip: Option<IpAddr>,
        needs: Vec<Need>,
    ) -> Result<GraphqlOutcome> {
        let checks = GraphqlChecks::new(&self.catalog, &token, client_ip, &needs);
        let outcomes = self.authorize(&checks.checks).await?;
        Ok(checks.outcome(&self.catalog, needs, outcomes))
    }
}

/// The checks an operation's needs come to, each distinct (permission, boundary) once.
#[derive(Debug, Clone)]
pub struct GraphqlChecks {
    /// In the order they are first needed; one `Authenticate` when nothing is.
    pub checks: Vec<Check>,
    /// The check each need is decided by.
    of_need: Vec<usize>,
    /// Per check: whether it is a root field no permission covers, and why its
    /// boundary is unresolved, if it is.
    uncovered: Vec<bool>,
    unresolved: Vec<Option<String>>,
}

impl GraphqlChecks {
    pub fn new(catalog: &Catalog, token: &str, client_ip: Option<IpAddr>, needs: &[Need]) -> Self {
        let mut distinct: Vec<(Option<PermissionId>, &Boundary)> = Vec::new();
        let mut index: FxHashMap<(Option<PermissionId>, &Boundary), usize> = FxHashMap::default();
        let mut of_need = Vec::with_capacity(needs.len());
        for need in needs {
            let key = (need.permission, &need.boundary);
            let at = *index.entry(key).or_insert_with(|| {
                distinct.push(key);
                distinct.len() - 1
            });
            of_need.push(at);
        }
        let check = |action, boundary| Check {
            token: token.to_owned(),
            action,
            boundary: Some(boundary),
            confidential: false,
            author_id: None,
            assignee_ids: Vec::new(),
            client_ip,
        };
        let checks = if distinct.is_empty() {
            vec![check(CheckAction::Authenticate, CheckBoundary::User)]
        } else {
            distinct
                .iter()
                .map(|(permission, boundary)| {
                    // A root field no permission covers is decided as a permission no
                    // catalog has: the token's own reasons come first, then this one.
                    let name = permission
                        .map(|id| catalog.permission(id).name.clone())
                        .unwrap_or_default();
                    check(CheckAction::Permission(name), check_boundary(boundary))
                })
                .collect()
        };
        Self {
            checks,
            of_need,
            uncovered: distinct.iter().map(|(p, _)| p.is_none()).collect(),
            unresolved: distinct
                .iter()
                .map(|(_, b)| match b {
                    Boundary::Unresolved(why) => Some(why.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The operation's answer from the outcome of each check, in order: allowed only
    /// when every check is, else for the reason of the first need denied.
    pub fn outcome(
        self,
        catalog: &Catalog,
        needs: Vec<Need>,
        mut outcomes: Vec<Outcome>,
    ) -> GraphqlOutcome {
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            if self.uncovered.get(i) == Some(&true) && outcome.reason == Reason::UnknownPermission {
                outcome.reason = Reason::UnknownRoute;
                outcome.required_permissions.clear();
            }
            if let (Some(Some(why)), Reason::BoundaryUnresolved | Reason::UnknownRoute) =
                (self.unresolved.get(i), outcome.reason)
            {
                outcome.message.clone_from(why);
            }
        }
        let checks: Vec<GraphqlCheck> = needs
            .into_iter()
            .zip(self.of_need)
            .filter_map(|(need, at)| {
                Some(GraphqlCheck {
                    permission: need
                        .permission
                        .map(|id| catalog.permission(id).name.clone()),
                    outcome: outcomes.get(at)?.clone(),
                    need,
                })
            })
            .collect();
        let mut outcome = checks
            .iter()
            .map(|c| &c.outcome)
            .find(|o| !o.allowed)
            .or_else(|| outcomes.first())
            .cloned()
            .unwrap_or_else(|| Outcome {
                allowed: false,
                reason: Reason::TokenInvalid,
                required_permissions: Vec::new(),
                token_id: None,
                user_id: None,
                message: "no decision".to_owned(),
                hidden: false,
                boundary: None,
            });
        outcome.required_permissions = Vec::new();
        for c in &checks {
            if let Some(name) = &c.permission
                && !outcome.required_permissions.contains(name)
            {
                outcome.required_permissions.push(name.clone());
            }
        }
        GraphqlOutcome { outcome, checks }
    }
}

fn check_boundary(boundary: &Boundary) -> CheckBoundary {
    match boundary {
        Boundary::ProjectId(id) => CheckBoundary::ProjectId(*id),
        Boundary::ProjectPath(path) => CheckBoundary::ProjectPath(path.clone()),
        Boundary::GroupId(id) => CheckBoundary::GroupId(*id),
        Boundary::GroupPath(path) => CheckBoundary::GroupPath(path.clone()),
        Boundary::User => CheckBoundary::User,
        Boundary::Instance => CheckBoundary::Instance,
        Boundary::Unresolved(_) => CheckBoundary::Unresolved,
    }
}
