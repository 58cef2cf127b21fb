//! What `patrol catalog check` reports: every way a catalog can be wrong, each with the
//! file and line it was written at.

use std::fmt;

use super::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// Not valid YAML, or not the shape the file must have.
    Syntax,
    /// A file the catalog does not know what to do with.
    UnknownFile,
    /// A name that is not `<action>_<resource>`, or a permission defined twice.
    InvalidName,
    UndefinedPermission,
    MissingBoundary,
    BoundaryMismatch,
    InvalidRoute,
    DuplicateRoute,
    Cycle,
    UnusedPermission,
    UnknownFeature,
    UnknownRole,
    UnknownPlan,
    UnknownJobTokenPolicy,
    UnknownSkipReason,
    UnknownScopeTarget,
    UnknownAccess,
    /// A GraphQL entry or skip the schema does not have, or that names no boundary the
    /// permission applies to; or a schema that does not parse.
    InvalidGraphql,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "syntax",
            Self::UnknownFile => "unknown_file",
            Self::InvalidName => "invalid_name",
            Self::UndefinedPermission => "undefined_permission",
            Self::MissingBoundary => "missing_boundary",
            Self::BoundaryMismatch => "boundary_mismatch",
            Self::InvalidRoute => "invalid_route",
            Self::DuplicateRoute => "duplicate_route",
            Self::Cycle => "cycle",
            Self::UnusedPermission => "unused_permission",
            Self::UnknownFeature => "unknown_feature",
            Self::UnknownRole => "unknown_role",
            Self::UnknownPlan => "unknown_plan",
            Self::UnknownJobTokenPolicy => "unknown_job_token_policy",
            Self::UnknownSkipReason => "unknown_skip_reason",
            Self::UnknownScopeTarget => "unknown_scope_target",
            Self::UnknownAccess => "unknown_access",
            Self::InvalidGraphql => "invalid_graphql",
        }
    }
}

/// One thing wrong with a catalog, where it was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub origin: Origin,
    pub kind: ViolationKind,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}]",
            self.origin,
            self.message,
            self.kind.as_str()
        )
    }
}

/// Finds one cycle through each strongly tangled part of a directed graph given as
/// adjacency lists; each cycle is returned as the nodes on it, starting and ending
/// with the same node.
pub(crate) fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found = Vec::new();
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match marks.get(to) {
                    Some(Mark::New) => {
                        marks[to] = Mark::Open;
                        stack.push((to, 0));
                    }
                    Some(Mark::Open) => {
                        let from = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|&(n, _)| n).collect();
                        cycle.push(to);
                        found.push(cycle);
                    }
                    _ => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_and_only_cycles() {
        assert!(cycles(&[vec![1], vec![2], vec![]]).is_empty());
        assert_eq!(cycles(&[vec![1], vec![2], vec![0]]), vec![vec![0, 1, 2, 0]]);
        assert_eq!(cycles(&[vec![0]]), vec![vec![0, 0]]);
        // A diamond is not a cycle.
        assert!(cycles(&[vec![1, 2], vec![3], vec![3], vec![]]).is_empty());
    }
}
