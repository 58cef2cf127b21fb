//! Each section of the catalog, checked and built: roles, features, job token policies,
//! routes, legacy scopes and templates.

use super::*;

impl Builder {
    pub(super) fn roles(&mut self, sources: &[source::RoleSource]) -> Vec<Role> {
        if sources.is_empty() {
            // Without roles.yml the built-in roles apply.
            let mut roles: Vec<Role> = AccessLevel::ALL
                .into_iter()
                .map(|l| Role {
                    name: l.role_name().to_owned(),
                    role: MinRole::Level(l),
                    description: String::new(),
                })
                .collect();
            roles.push(Role {
                name: "admin".to_owned(),
                role: MinRole::Admin,
                description: String::new(),
            });
            return roles;
        }
        let mut roles = Vec::new();
        for r in sources {
            let role = match (MinRole::from_name(&r.name), &r.level) {
                (Some(MinRole::Admin), None) => Some(MinRole::Admin),
                (Some(MinRole::Level(level)), Some(n)) if u64::from(level.number()) == **n => {
                    Some(MinRole::Level(level))
                }
                _ => None,
            };
            match role {
                Some(role) => roles.push(Role {
                    name: r.name.to_string(),
                    role,
                    description: r.description.to_string(),
                }),
                None => {
                    let message = format!(
                        "unknown role `{}`{}; roles are GitLab's access levels (none 0 ... owner 50) and admin",
                        *r.name,
                        r.level
                            .as_ref()
                            .map(|l| format!(" with level {}", **l))
                            .unwrap_or_default()
                    );
                    self.report(r.name.span(), V::UnknownRole, message);
                }
            }
        }
        roles
    }

    pub(super) fn features(
        &mut self,
        sources: &[source::NamedSource],
    ) -> (Vec<Feature>, FxHashMap<String, FeatureId>) {
        let mut features = Vec::new();
        let mut by_name = FxHashMap::default();
        for f in sources {
            if by_name.contains_key(f.name.as_str()) {
                self.report(
                    f.name.span(),
                    V::InvalidName,
                    format!("feature `{}` is defined twice", *f.name),
                );
                continue;
            }
            let id = FeatureId(u16::try_from(features.len()).unwrap_or(u16::MAX));
            by_name.insert(f.name.to_string(), id);
            features.push(Feature {
                id,
                name: f.name.to_string(),
                description: f.description.to_string(),
            });
        }
        (features, by_name)
    }

    pub(super) fn policies(
        &mut self,
        sources: &[source::PolicySource],
    ) -> (Vec<JobTokenPolicy>, FxHashMap<String, PolicyId>) {
        let mut by_name = FxHashMap::default();
        for p in sources {
            if by_name.contains_key(p.name.as_str()) || by_name.len() >= 64 {
                self.report(
                    p.name.span(),
                    V::InvalidName,
                    format!(
                        "job token policy `{}` is defined twice or past the 64th",
                        *p.name
                    ),
                );
                continue;
            }
            by_name.insert(
                p.name.to_string(),
                PolicyId(u8::try_from(by_name.len()).unwrap_or(u8::MAX)),
            );
        }
        let mut direct: Vec<Vec<usize>> = vec![Vec::new(); by_name.len()];
        let mut policies = Vec::new();
        for p in sources {
            let Some(&id) = by_name.get(p.name.as_str()) else {
                continue;
            };
            if policies.iter().any(|q: &JobTokenPolicy| q.id == id) {
                continue;
            }
            for implied in &p.implies {
                match by_name.get(implied.as_str()) {
                    Some(&j) => direct[usize::from(id.0)].push(usize::from(j.0)),
                    None => self.report(
                        implied.span(),
                        V::UnknownJobTokenPolicy,
                        format!("unknown job token policy `{}`", **implied),
                    ),
                }
            }
            policies.push(JobTokenPolicy {
                id,
                name: p.name.to_string(),
                description: p.description.to_string(),
                implied: PolicySet::default(),
            });
        }
        for policy in &mut policies {
            let mut set = PolicySet::default();
            let mut stack = vec![usize::from(policy.id.0)];
            while let Some(i) = stack.pop() {
                let id = PolicyId(u8::try_from(i).unwrap_or(u8::MAX));
                if !set.contains(id) {
                    set.insert(id);
                    stack.extend(direct.get(i).into_iter().flatten().copied());
                }
            }
            policy.implied = set;
        }
        (policies, by_name)
    }

    pub(super) fn resolve_all(
        &mut self,
        names: &[Text],
        by_name: &FxHashMap<String, PermissionId>,
        field: &str,
    ) -> Vec<PermissionId> {
        names
            .iter()
            .filter_map(|name| match by_name.get(name.as_str()) {
                Some(&id) => Some(id),
                None => {
                    let message = format!("`{field}` names undefined permission `{}`", **name);
                    self.report(name.span(), V::UndefinedPermission, message);
                    None
                }
            })
            .collect()
    }

    pub(super) fn split(&mut self, route: &Text) -> Option<(String, String)> {
        let split = split_route(route);
        if split.is_none() {
            let message = format!(
                "route `{}` is not `METHOD /path` (a path without a query string, fragment or trailing slash)",
                **route
            );
            self.report(route.span(), V::InvalidRoute, message);
        }
        split
    }

    pub(super) fn route(
        &mut self,
        route: &source::RouteSource,
        permission: PermissionId,
        permissions: &[Permission],
        by_name: &FxHashMap<String, PermissionId>,
    ) -> Option<RouteEntry> {
        let (method, path) = self.split(&route.route)?;
        let path_params: Vec<&str> = params(&path).collect();
        let mut boundaries = Vec::new();
        let explicit = route.boundary.iter().chain(&route.alternative_boundaries);
        if route.boundary.is_none() {
            boundaries.push(infer_boundary(&path));
        }
        for b in explicit {
            let Ok(kind) = b.kind.parse::<BoundaryKind>() else {
                let message = format!("unknown boundary type `{}`", *b.kind);
                self.report(b.kind.span(), V::InvalidRoute, message);
                return None;
            };
            let param = match (&b.param, kind) {
                (Some(param), _) => Some(param.to_string()),
                (None, BoundaryKind::Project | BoundaryKind::Group) => Some("id".to_owned()),
                (None, _) => None,
            };
            if let Some(param) = &param
                && matches!(kind, BoundaryKind::Project | BoundaryKind::Group)
                && !path_params.contains(&param.as_str())
            {
                let message = format!(
                    "route `{}` has no path parameter `:{param}` for its {kind} boundary",
                    *route.route
                );
                self.report(b.kind.span(), V::InvalidRoute, message);
                return None;
            }
            boundaries.push(RouteBoundary { kind, param });
        }
        let also = self.resolve_all(&route.also_requires, by_name, "also_requires");
        let mut required: Vec<PermissionId> = Vec::new();
        for id in std::iter::once(permission).chain(also) {
            for &r in &permissions[id.index()].required {
                if !required.contains(&r) {
                    required.push(r);
                }
            }
        }
        for b in &boundaries {
            for &id in &required {
                let p = &permissions[id.index()];
                if p.min_role(b.kind).is_none() {
                    let applies: Vec<&str> = p.boundary_kinds().map(BoundaryKind::as_str).collect();
                    let message = format!(
                        "route `{}` acts on a {} boundary but `{}` applies to {}",
                        *route.route,
                        b.kind,
                        p.name,
                        if applies.is_empty() {
                            "no boundary".to_owned()
                        } else {
                            applies.join(", ")
                        }
                    );
                    self.report(route.route.span(), V::BoundaryMismatch, message);
                }
            }
        }
        Some(RouteEntry {
            method,
            path,
            kind: RouteKind::Protected {
                permission,
                required,
                boundaries,
            },
            origin: self.origin(route.route.span()),
        })
    }

    pub(super) fn add_route(
        &mut self,
        routes: &mut RouteTable,
        entry: RouteEntry,
        at: &Span,
    ) -> bool {
        let route = format!("{} {}", entry.method, entry.path);
        match routes.insert(entry) {
            Ok(()) => true,
            Err(RouteConflict::Duplicate(first)) => {
                self.report(
                    at,
                    V::DuplicateRoute,
                    format!("route `{route}` is already defined at {first}"),
                );
                false
            }
            Err(RouteConflict::Conflict(why)) => {
                self.report(
                    at,
                    V::DuplicateRoute,
                    format!(
                        "route `{route}` overlaps another route: {}",
                        lowercase_first(&why)
                    ),
                );
                false
            }
        }
    }

    pub(super) fn scopes(
        &mut self,
        sources: &[source::ScopeSource],
        permissions: &[Permission],
        by_name: &FxHashMap<String, PermissionId>,
    ) -> Vec<LegacyScope> {
        let actions: FxHashSet<&str> = permissions.iter().map(|p| p.action.as_str()).collect();
        let mut scopes: Vec<LegacyScope> = Vec::new();
        for s in sources {
            if scopes.iter().any(|t| t.name == s.name.as_str()) || scopes.len() >= 64 {
                self.report(
                    s.name.span(),
                    V::InvalidName,
                    format!("scope `{}` is defined twice or past the 64th", *s.name),
                );
                continue;
            }
            let mut set = PermSet::with_capacity(permissions.len());
            for b in &s.all_with_boundary {
                match b.parse::<BoundaryKind>() {
                    Ok(kind) => permissions
                        .iter()
                        .filter(|p| p.min_role(kind).is_some())
                        .for_each(|p| set.insert(p.id)),
                    Err(()) => self.report(
                        b.span(),
                        V::UnknownScopeTarget,
                        format!("scope `{}` names unknown boundary `{}`", *s.name, **b),
                    ),
                }
            }
            for a in &s.all_with_action {
                if actions.contains(a.as_str()) {
                    permissions
                        .iter()
                        .filter(|p| p.action == a.as_str())
                        .for_each(|p| set.insert(p.id));
                } else {
                    self.report(
                        a.span(),
                        V::UnknownScopeTarget,
                        format!(
                            "scope `{}` names action `{}` that no permission has",
                            *s.name, **a
                        ),
                    );
                }
            }
            for (names, include) in [(&s.permissions, true), (&s.exclude, false)] {
                for name in names {
                    let Some(&id) = by_name.get(name.as_str()) else {
                        self.report(
                            name.span(),
                            V::UnknownScopeTarget,
                            format!(
                                "scope `{}` names undefined permission `{}`",
                                *s.name, **name
                            ),
                        );
                        continue;
                    };
                    if include {
                        set.insert(id);
                    }
                }
            }
            let mut granted = PermSet::with_capacity(permissions.len());
            for id in set.iter() {
                granted.union_with(&permissions[id.index()].implied);
            }
            for name in &s.exclude {
                if let Some(&id) = by_name.get(name.as_str()) {
                    let mut without = PermSet::with_capacity(permissions.len());
                    granted
                        .iter()
                        .filter(|&g| g != id)
                        .for_each(|g| without.insert(g));
                    granted = without;
                }
            }
            scopes.push(LegacyScope {
                index: u8::try_from(scopes.len()).unwrap_or(u8::MAX),
                name: s.name.to_string(),
                description: s.description.to_string(),
                permissions: granted,
                admin_only: s.admin_only,
            });
        }
        scopes
    }

    pub(super) fn templates(
        &mut self,
        sources: &[source::TemplateSource],
        permissions: &[Permission],
        by_name: &FxHashMap<String, PermissionId>,
    ) -> Vec<Template> {
        let mut templates: Vec<Template> = Vec::new();
        for t in sources {
            let access = match serde_json::from_value::<AccessKind>(serde_json::Value::String(
                t.access.to_string(),
            )) {
                Ok(access) => access,
                Err(_) => {
                    let message =
                        format!("unknown access `{}` in template `{}`", *t.access, *t.name);
                    self.report(t.access.span(), V::UnknownAccess, message);
                    continue;
                }
            };
            if templates.iter().any(|u| u.name == t.name.as_str()) {
                self.report(
                    t.name.span(),
                    V::InvalidName,
                    format!("template `{}` is defined twice", *t.name),
                );
                continue;
            }
            let ids = self.resolve_all(&t.permissions, by_name, "permissions");
            for name in &t.permissions {
                let Some(&id) = by_name.get(name.as_str()) else {
                    continue;
                };
                let p = &permissions[id.index()];
                if !access.boundaries().iter().any(|&b| p.min_role(b).is_some()) {
                    let message = format!(
                        "template `{}` gives `{}` to `{}` access, where it cannot apply",
                        *t.name, p.name, *t.access
                    );
                    self.report(name.span(), V::BoundaryMismatch, message);
                }
            }
            templates.push(Template {
                name: t.name.to_string(),
                description: t.description.to_string(),
                access,
                permissions: ids,
            });
        }
        templates
    }
}
