//! The catalog beside GitLab's own vocabulary: the granular permissions GitLab defines
//! (`config/authz/permissions/**`, `config/authz/permission_groups/assignable_permissions/**`)
//! and the permission and boundary it declares on each REST route
//! (`route_setting :authorization` in `lib/api/**`), read into a facts file
//! (`tests/fixtures/gitlab/authz.yml`: names, boundaries and paths, no prose).
//!
//! `patrol catalog gitlab FACTS` writes the comparison (`docs/gitlab-vocabulary.md`):
//! each route GitLab declares, agreeing (the permission by its name or an alias, on the
//! same boundary), differing (and how), or GitLab-only; each name GitLab defines, in the
//! catalog by name or alias or GitLab-only; the catalog's names GitLab does not use.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::coverage::CoverageError;
use crate::domain::BoundaryKind;
use crate::routes::RoutePath;
use crate::{Catalog, PermissionId, RouteKind};

/// The facts file.
#[derive(Debug, Clone, Deserialize)]
pub struct Facts {
    pub coverage: FactsCoverage,
    #[serde(default)]
    pub assignable: Vec<Named>,
    #[serde(default)]
    pub permissions: Vec<Named>,
    #[serde(default)]
    pub routes: Vec<DeclaredRoute>,
}

/// How much of GitLab's source the facts were read from.
#[derive(Debug, Clone, Deserialize)]
pub struct FactsCoverage {
    pub assignable_listed: String,
    pub assignable_read: String,
    pub route_files_read: String,
    #[serde(default)]
    pub route_files_not_read: Vec<String>,
}

/// A permission GitLab defines.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub name: String,
    #[serde(default)]
    pub boundaries: Option<Vec<String>>,
}

/// A REST route with the permission GitLab declares for it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeclaredRoute {
    pub method: String,
    /// Under `/api/v4`, Grape's parameters as `:name`.
    pub path: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub boundary_type: Option<String>,
    #[serde(default)]
    pub unsure: Option<String>,
}

/// Reads a facts file (YAML).
pub fn read_facts(path: &Path) -> Result<Facts, CoverageError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CoverageError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let value = crate::coverage::parse_yaml(&text).map_err(|message| CoverageError::Parse {
        path: shown.clone(),
        format: "YAML",
        message,
    })?;
    serde_json::from_value(value).map_err(|e| CoverageError::Parse {
        path: shown,
        format: "GitLab facts",
        message: e.to_string(),
    })
}

/// How one route GitLab declares compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteVerdict {
    /// The same permission (by name or alias) on the same boundary.
    Agrees,
    /// Another permission, or another boundary: the text says how.
    Differs(String),
    /// A route of a file the facts read that the catalog does not have.
    GitlabOnly,
}

#[derive(Debug, Clone)]
pub struct RouteLine {
    pub route: String,
    pub gitlab: String,
    pub patrol: String,
    pub verdict: RouteVerdict,
}

/// The comparison, ready to print.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub routes: Vec<RouteLine>,
    /// GitLab's names the catalog has by name, by alias (`alias -> name`), and not.
    pub same_names: Vec<String>,
    pub aliased: Vec<(String, String)>,
    pub gitlab_only_names: Vec<String>,
    /// Catalog names (and aliases) GitLab's facts do not name.
    pub patrol_only_names: Vec<String>,
    pub coverage: FactsCoverage,
}

/// Compares the catalog with the facts.
pub fn compare(catalog: &Catalog, facts: &Facts) -> Comparison {
    let name_of = |id: PermissionId| catalog.permission(id).name.as_str();
    let mut routes: Vec<RouteLine> = facts
        .routes
        .iter()
        .map(|declared| {
            let route = format!("{} /api/v4{}", declared.method, declared.path);
            let gitlab = format!(
                "{} on {}",
                declared.permissions.join(", "),
                declared.boundary_type.as_deref().unwrap_or("(computed)")
            );
            let filled: String = declared
                .path
                .split('/')
                .map(|s| if s.starts_with(':') { "1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let found = RoutePath::parse(&format!("/api/v4{filled}"))
                .ok()
                .and_then(|p| {
                    catalog.routes.resolve(&declared.method, &p).map(|m| {
                        let boundaries: Vec<BoundaryKind> =
                            m.boundaries().map(|(k, _)| k).collect();
                        let skipped = match &m.entry.kind {
                            RouteKind::Skipped { reason } => Some(*reason),
                            RouteKind::Protected { .. } => None,
                        };
                        (skipped, m.required.to_vec(), boundaries)
                    })
                });
            let Some((skipped, required, boundaries)) = found else {
                return RouteLine {
                    route,
                    gitlab,
                    patrol: "-".to_owned(),
                    verdict: RouteVerdict::GitlabOnly,
                };
            };
            if let Some(reason) = skipped {
                return RouteLine {
                    route,
                    gitlab,
                    patrol: format!("skipped ({reason})"),
                    verdict: RouteVerdict::Differs(format!(
                        "patrol needs no permission here (`{reason}`)"
                    )),
                };
            }
            let names: Vec<&str> = required.iter().map(|&id| name_of(id)).collect();
            let patrol = format!(
                "{} on {}",
                names.join(", "),
                boundaries
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
            let missing: Vec<&str> = declared
                .permissions
                .iter()
                .map(String::as_str)
                .filter(|p| {
                    catalog
                        .permission_id(p)
                        .is_none_or(|id| !required.contains(&id))
                })
                .collect();
            let boundary_agrees = declared
                .boundary_type
                .as_deref()
                .is_none_or(|b| boundaries.first().is_some_and(|first| first.as_str() == b));
            let verdict = match (missing.is_empty(), boundary_agrees) {
                (true, true) => RouteVerdict::Agrees,
                (true, false) => RouteVerdict::Differs(format!(
                    "patrol decides it on the {}",
                    boundaries.first().map_or("-", |b| b.as_str())
                )),
                (false, _) => RouteVerdict::Differs(format!(
                    "patrol requires {} where GitLab names {}",
                    names.first().copied().unwrap_or("-"),
                    missing.join(", ")
                )),
            };
            RouteLine {
                route,
                gitlab,
                patrol,
                verdict,
            }
        })
        .collect();
    routes.sort_by(|a, b| a.route.cmp(&b.route));

    let gitlab_names: BTreeSet<&str> = facts
        .assignable
        .iter()
        .chain(&facts.permissions)
        .map(|n| n.name.as_str())
        .chain(
            facts
                .routes
                .iter()
                .flat_map(|r| r.permissions.iter().map(String::as_str)),
        )
        .collect();
    let mut same_names = Vec::new();
    let mut aliased = Vec::new();
    let mut gitlab_only_names = Vec::new();
    for name in &gitlab_names {
        match catalog.permission_by_name(name) {
            Some(p) if p.name == *name => same_names.push((*name).to_owned()),
            Some(p) => aliased.push(((*name).to_owned(), p.name.clone())),
            None => gitlab_only_names.push((*name).to_owned()),
        }
    }
    let patrol_only_names = catalog
        .permissions
        .iter()
        .filter(|p| {
            !gitlab_names.contains(p.name.as_str())
                && !p.aliases.iter().any(|a| gitlab_names.contains(a.as_str()))
        })
        .map(|p| p.name.clone())
        .collect();
    Comparison {
        routes,
        same_names,
        aliased,
        gitlab_only_names,
        patrol_only_names,
        coverage: facts.coverage.clone(),
    }
}

impl Comparison {
    fn count(&self, f: impl Fn(&RouteVerdict) -> bool) -> usize {
        self.routes.iter().filter(|r| f(&r.verdict)).count()
    }

    /// The Markdown page.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let agree = self.count(|v| *v == RouteVerdict::Agrees);
        let differ = self.count(|v| matches!(v, RouteVerdict::Differs(_)));
        let only = self.count(|v| *v == RouteVerdict::GitlabOnly);
        let _ = writeln!(
            s,
            "# patrol's catalog beside GitLab's permissions\n\n\
             Generated by `patrol catalog gitlab tests/fixtures/gitlab/authz.yml --out docs/gitlab-vocabulary.md`\n\
             from the facts file, which holds GitLab's permission names, boundaries and route declarations\n\
             as read from gitlabhq/gitlabhq (`config/authz/**`, `route_setting :authorization` in `lib/api/**`).\n\
             `tests/artifacts` fails when this page drifts from the catalog or the facts.\n\n\
             The facts are partial: {} assignable permission files listed ({} read for their boundaries),\n\
             {} route files read; not read: {}.\n",
            self.coverage.assignable_listed,
            self.coverage.assignable_read,
            self.coverage.route_files_read,
            if self.coverage.route_files_not_read.is_empty() {
                "none".to_owned()
            } else {
                format!("`{}`", self.coverage.route_files_not_read.join("`, `"))
            }
        );
        let _ = writeln!(
            s,
            "## Summary\n\n\
             | | count |\n|---|---|\n\
             | routes GitLab declares | {} |\n\
             | agreeing: the same permission (by name or alias) on the same boundary | {agree} |\n\
             | differing | {differ} |\n\
             | GitLab-only routes | {only} |\n\
             | GitLab permission names the catalog has by name | {} |\n\
             | GitLab permission names the catalog has as an alias | {} |\n\
             | GitLab-only permission names | {} |\n\
             | patrol-only permission names | {} |\n",
            self.routes.len(),
            self.same_names.len(),
            self.aliased.len(),
            self.gitlab_only_names.len(),
            self.patrol_only_names.len()
        );
        let _ = writeln!(
            s,
            "## Routes\n\n| route | GitLab | patrol | verdict |\n|---|---|---|---|"
        );
        for r in &self.routes {
            let verdict = match &r.verdict {
                RouteVerdict::Agrees => "agrees".to_owned(),
                RouteVerdict::Differs(how) => format!("differs: {how}"),
                RouteVerdict::GitlabOnly => "GitLab only".to_owned(),
            };
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {verdict} |",
                r.route, r.gitlab, r.patrol
            );
        }
        let list = |s: &mut String, title: &str, names: &[String]| {
            let _ = writeln!(s, "\n## {title} ({})\n", names.len());
            if names.is_empty() {
                let _ = writeln!(s, "None.");
            } else {
                let _ = writeln!(
                    s,
                    "{}",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        };
        let _ = writeln!(
            s,
            "\n## GitLab's names the catalog has as aliases ({})\n\n| GitLab | patrol |\n|---|---|",
            self.aliased.len()
        );
        for (alias, name) in &self.aliased {
            let _ = writeln!(s, "| `{alias}` | `{name}` |");
        }
        list(
            &mut s,
            "GitLab's names the catalog has by name",
            &self.same_names,
        );
        list(&mut s, "GitLab-only names", &self.gitlab_only_names);
        list(&mut s, "patrol-only names", &self.patrol_only_names);
        s
    }
}
