//! Reads the catalog's YAML files, checks everything `patrol catalog check` promises, and
//! builds the indexed `Catalog`. It reports every violation it finds, not just the
//! first, and builds nothing when there is one.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use marked_yaml::{LoaderOptions, Node, Span};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::DeserializeOwned;
use thiserror::Error;

use apollo_compiler::Schema;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;

use super::check::{Violation, ViolationKind as V, cycles};
use super::graphql::{self, GRAPHQL_SKIP_REASONS, SkippedGraphql};
use super::routes::{RouteConflict, RouteEntry, RouteKind, params};
use super::source::{self, Text};
use super::{
    Catalog, Feature, FeatureId, JobTokenPolicy, LegacyScope, Origin, Permission, PermissionId,
    PolicyId, PolicySet, Role, RouteBoundary, RouteTable, SKIP_REASONS, SkippedRoute, Template,
    split_route,
};
use crate::PermSet;
use crate::domain::{AccessKind, AccessLevel, BoundaryKind, MinRole, Plan};

mod sections;

/// The catalog shipped inside the binary.
pub static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../permissions");

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read the catalog at `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the catalog has {} violation(s)", .0.len())]
    Invalid(Vec<Violation>),
}

/// Loads the catalog embedded in the binary.
pub fn load_embedded() -> Result<Catalog, LoadError> {
    let mut files = Vec::new();
    collect_embedded(&EMBEDDED, &mut files);
    load_files(Path::new("permissions"), files)
}

fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<(PathBuf, String)>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            out.push((file.path().to_owned(), text.to_owned()));
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

/// Loads a catalog directory (every `.yml`/`.yaml` below it, and its GraphQL schema).
pub fn load_dir(dir: &Path) -> Result<Catalog, LoadError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| LoadError::Io {
            path: current.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| LoadError::Io {
                    path: current.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
                    path: path.clone(),
                    source,
                })?;
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_owned();
                files.push((relative, text));
            }
        }
    }
    load_files(dir, files)
}

/// Builds a catalog from files given by their path relative to the catalog root `base`
/// (used only to name files in violations). Files that are neither YAML nor the GraphQL
/// schema (`.graphql`) are ignored.
pub fn load_files(base: &Path, mut files: Vec<(PathBuf, String)>) -> Result<Catalog, LoadError> {
    let mut schemas: Vec<(PathBuf, String)> = Vec::new();
    files.retain(|(path, text)| {
        if path.extension().and_then(|e| e.to_str()) == Some("graphql") {
            schemas.push((path.clone(), text.clone()));
            return false;
        }
        matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        )
    });
    files.sort();
    let mut builder = Builder {
        names: files.iter().map(|(p, _)| base.join(p)).collect(),
        texts: files.iter().map(|(_, t)| t.clone()).collect(),
        violations: Vec::new(),
    };
    let mut parsed = builder.parse(&files);
    parsed.schema = builder.schema(base, schemas);
    let catalog = builder.build(parsed);
    let mut violations = builder.violations;
    if violations.is_empty() {
        Ok(catalog)
    } else {
        violations.sort();
        violations.dedup();
        Err(LoadError::Invalid(violations))
    }
}

/// The files of a catalog, parsed but not yet checked.
#[derive(Default)]
struct Parsed {
    roles: Vec<source::RoleSource>,
    features: Vec<source::NamedSource>,
    scopes: Vec<source::ScopeSource>,
    policies: Vec<source::PolicySource>,
    templates: Vec<source::TemplateSource>,
    skipped: Vec<source::SkippedRouteSource>,
    skipped_graphql: Vec<source::SkippedGraphqlSource>,
    schema: Option<Valid<Schema>>,
    /// (category, file) per resource file.
    resources: Vec<(String, source::ResourceFile)>,
}

struct Builder {
    /// File names by marked-yaml source id.
    names: Vec<PathBuf>,
    /// File texts by marked-yaml source id, to place errors that carry no position.
    texts: Vec<String>,
    violations: Vec<Violation>,
}

impl Builder {
    fn origin(&self, span: &Span) -> Origin {
        let (file, line) = span
            .start()
            .map(|m| (m.source(), m.line()))
            .unwrap_or((0, 1));
        Origin {
            file: self.names.get(file).cloned().unwrap_or_default(),
            line,
        }
    }

    fn report(&mut self, at: &Span, kind: V, message: String) {
        let origin = self.origin(at);
        self.violations.push(Violation {
            origin,
            kind,
            message,
        });
    }

    fn parse(&mut self, files: &[(PathBuf, String)]) -> Parsed {
        let mut parsed = Parsed::default();
        for (source, (path, text)) in files.iter().enumerate() {
            let Some(node) = self.parse_yaml(source, text) else {
                continue;
            };
            let mut components = path.components();
            let first = components
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let nested = components.next().is_some();
            let file_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            if nested {
                if let (Some(category), Some(file)) = (first, self.deserialize(&node, source)) {
                    parsed.resources.push((category, file));
                }
                continue;
            }
            match file_name.as_deref() {
                Some("roles") => parsed.roles.extend(
                    self.deserialize::<source::RolesFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.roles),
                ),
                Some("features") => parsed.features.extend(
                    self.deserialize::<source::FeaturesFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.features),
                ),
                Some("scopes") => parsed.scopes.extend(
                    self.deserialize::<source::ScopesFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.scopes),
                ),
                Some("job_token_policies") => parsed.policies.extend(
                    self.deserialize::<source::JobTokenPoliciesFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.policies),
                ),
                Some("templates") => parsed.templates.extend(
                    self.deserialize::<source::TemplatesFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.templates),
                ),
                Some("skipped_routes") => parsed.skipped.extend(
                    self.deserialize::<source::SkippedRoutesFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.skipped_routes),
                ),
                Some("skipped_graphql") => parsed.skipped_graphql.extend(
                    self.deserialize::<source::SkippedGraphqlFile>(&node, source)
                        .into_iter()
                        .flat_map(|f| f.skipped_graphql),
                ),
                _ => self.violations.push(Violation {
                    origin: Origin {
                        file: self.names[source].clone(),
                        line: 1,
                    },
                    kind: V::UnknownFile,
                    message: "a top-level catalog file must be one of roles, features, scopes, \
                              job_token_policies, templates, skipped_routes or skipped_graphql; \
                              resources go in a category folder"
                        .to_owned(),
                }),
            }
        }
        parsed
    }

    fn parse_yaml(&mut self, source: usize, text: &str) -> Option<Node> {
        let options = LoaderOptions::default().error_on_duplicate_keys(true);
        match marked_yaml::parse_yaml_with_options(source, text, options) {
            Ok(node) => Some(node),
            Err(e) => {
                use marked_yaml::LoadError as E;
                let line = match &e {
                    E::TopLevelMustBeMapping(m)
                    | E::TopLevelMustBeSequence(m)
                    | E::UnexpectedAnchor(m)
                    | E::MappingKeyMustBeScalar(m)
                    | E::UnexpectedTag(m)
                    | E::ScanError(m, _) => m.line(),
                    E::DuplicateKey(inner) => inner.key.span().start().map_or(1, |m| m.line()),
                };
                let message = e.to_string();
                // marked-yaml prefixes positions itself; keep only its words.
                let message = message
                    .rsplit_once(": ")
                    .map_or(message.as_str(), |(_, m)| m);
                self.violations.push(Violation {
                    origin: Origin {
                        file: self.names[source].clone(),
                        line,
                    },
                    kind: V::Syntax,
                    message: message.to_lowercase(),
                });
                None
            }
        }
    }

    fn deserialize<T: DeserializeOwned>(&mut self, node: &Node, source: usize) -> Option<T> {
        match marked_yaml::from_node::<T>(node) {
            Ok(value) => Some(value),
            Err(e) => {
                let message = e.to_string();
                let line = e
                    .start_mark()
                    .map(|m| m.line())
                    .or_else(|| self.line_of_field(source, &message))
                    .unwrap_or(1);
                self.violations.push(Violation {
                    origin: Origin {
                        file: self.names[source].clone(),
                        line,
                    },
                    kind: V::Syntax,
                    message: lowercase_first(&message),
                });
                None
            }
        }
    }

    /// An unknown field comes without a position: find the first line that sets it.
    fn line_of_field(&self, source: usize, message: &str) -> Option<usize> {
        let field = message.split('`').nth(1)?;
        let key = format!("{field}:");
        let text = self.texts.get(source)?;
        text.lines()
            .position(|line| line.trim_start().trim_start_matches("- ").starts_with(&key))
            .map(|i| i + 1)
    }

    /// The GraphQL schema the catalog ships, `graphql/schema.graphql`; any other
    /// `.graphql` file is a mistake.
    fn schema(&mut self, base: &Path, schemas: Vec<(PathBuf, String)>) -> Option<Valid<Schema>> {
        let mut found = None;
        for (path, text) in schemas {
            let origin = Origin {
                file: base.join(&path),
                line: 1,
            };
            if path != Path::new("graphql/schema.graphql") {
                self.violations.push(Violation {
                    origin,
                    kind: V::UnknownFile,
                    message: "the catalog's GraphQL schema is graphql/schema.graphql".to_owned(),
                });
                continue;
            }
            match graphql::parse_schema(&text, &path) {
                Ok(schema) => found = Some(schema),
                Err(message) => self.violations.push(Violation {
                    origin,
                    kind: V::InvalidGraphql,
                    message: format!("the GraphQL schema is not valid: {message}"),
                }),
            }
        }
        found
    }

    /// Each permission's GraphQL entries and the skipped elements, checked against the
    /// schema when the catalog has one.
    fn graphql(
        &mut self,
        schema: Option<&Schema>,
        sources: &[(&str, &source::ResourceFile, &source::PermissionSource)],
        permissions: &mut [Permission],
        skips: &[source::SkippedGraphqlSource],
    ) -> Vec<SkippedGraphql> {
        let mut named = FxHashSet::default();
        for (i, &(_, _, p)) in sources.iter().enumerate() {
            for g in &p.graphql {
                let at = g
                    .field
                    .as_ref()
                    .or(g.object.as_ref())
                    .map_or(p.name.span(), |t| t.span());
                let boundary = g
                    .boundary
                    .as_ref()
                    .map(|b| (b.kind.as_str(), b.argument.as_ref().map(|a| a.as_str())));
                match graphql::entry(
                    schema,
                    &permissions[i],
                    g.field.as_ref().map(|f| f.as_str()),
                    g.object.as_ref().map(|o| o.as_str()),
                    boundary,
                ) {
                    Ok(entry) => {
                        named.insert(entry.target.to_string());
                        permissions[i].graphql.push(entry);
                    }
                    Err(message) => self.report(at, V::InvalidGraphql, message),
                }
            }
        }
        let mut skipped = Vec::new();
        for s in skips {
            if !GRAPHQL_SKIP_REASONS.contains(&s.reason.as_str()) {
                let message = format!(
                    "unknown skip reason `{}`; use one of {}",
                    *s.reason,
                    GRAPHQL_SKIP_REASONS.join(", ")
                );
                self.report(s.reason.span(), V::UnknownSkipReason, message);
                continue;
            }
            let element = s.element.as_str();
            let known = schema.is_none_or(|schema| match element.split_once('.') {
                Some((parent, field)) => matches!(
                    schema.types.get(parent),
                    Some(ExtendedType::Object(o)) if o.fields.contains_key(field)
                ),
                None => matches!(schema.types.get(element), Some(ExtendedType::Object(_))),
            });
            if !known {
                let message = format!("the GraphQL schema has no `{element}`");
                self.report(s.element.span(), V::InvalidGraphql, message);
                continue;
            }
            if named.contains(element) {
                let message = format!("`{element}` is skipped and also needs a permission");
                self.report(s.element.span(), V::InvalidGraphql, message);
                continue;
            }
            skipped.push(SkippedGraphql {
                element: element.to_owned(),
                reason: s.reason.to_string(),
                note: s.note.as_ref().map(|n| n.to_string()),
            });
        }
        skipped
    }

    fn build(&mut self, mut parsed: Parsed) -> Catalog {
        let schema = parsed.schema.take();
        let roles = self.roles(&parsed.roles);
        let (features, feature_by_name) = self.features(&parsed.features);
        let (policies, policy_by_name) = self.policies(&parsed.policies);

        // Names first, so that references can point forwards.
        let mut permission_by_name: FxHashMap<String, PermissionId> = FxHashMap::default();
        let mut first_definition: FxHashMap<String, Origin> = FxHashMap::default();
        let mut sources = Vec::new();
        for (category, file) in &parsed.resources {
            for p in &file.permissions {
                if let Some(first) = first_definition.get(p.name.as_str()) {
                    let message = format!("permission `{}` is already defined at {first}", *p.name);
                    self.report(p.name.span(), V::InvalidName, message);
                    continue;
                }
                let Ok(id) = u16::try_from(sources.len()).map(PermissionId) else {
                    self.report(
                        p.name.span(),
                        V::InvalidName,
                        "too many permissions".to_owned(),
                    );
                    continue;
                };
                first_definition.insert(p.name.to_string(), self.origin(p.name.span()));
                permission_by_name.insert(p.name.to_string(), id);
                sources.push((category.as_str(), file, p));
            }
        }
        // Aliases after every name: an alias may not be any permission's name or alias.
        for (_, _, p) in &sources {
            let id = permission_by_name[p.name.as_str()];
            for alias in &p.aliases {
                if let Some(first) = first_definition.get(alias.as_str()) {
                    let message = format!("`{}` is already a name or an alias at {first}", **alias);
                    self.report(alias.span(), V::InvalidName, message);
                    continue;
                }
                first_definition.insert(alias.to_string(), self.origin(alias.span()));
                permission_by_name.insert(alias.to_string(), id);
            }
        }
        let role_of = |name: &str| roles.iter().find(|r| r.name == name).map(|r| r.role);

        let mut permissions = Vec::with_capacity(sources.len());
        for (i, &(category, file, p)) in sources.iter().enumerate() {
            let id = PermissionId(u16::try_from(i).unwrap_or(u16::MAX));
            let resource = file.resource.to_string();
            let action = match (&p.action, p.name.strip_suffix(&format!("_{resource}"))) {
                (Some(action), _) => action.to_string(),
                (None, Some(action)) if !action.is_empty() => action.to_owned(),
                (None, _) => {
                    let message = format!(
                        "permission `{}` is not named `<action>_{resource}`; name it so or give its `action`",
                        *p.name
                    );
                    self.report(p.name.span(), V::InvalidName, message);
                    String::new()
                }
            };
            let mut boundaries = [None; 4];
            let b = &p.boundaries;
            for (kind, role) in [
                (BoundaryKind::Project, &b.project),
                (BoundaryKind::Group, &b.group),
                (BoundaryKind::User, &b.user),
                (BoundaryKind::Instance, &b.instance),
            ] {
                let Some(role) = role else { continue };
                match role_of(role) {
                    Some(min) => boundaries[kind.index()] = Some(min),
                    None => self.report(
                        role.span(),
                        V::UnknownRole,
                        format!("unknown role `{}`", **role),
                    ),
                }
            }
            if [&b.project, &b.group, &b.user, &b.instance]
                .iter()
                .all(|r| r.is_none())
            {
                let message = format!("permission `{}` has no boundaries", *p.name);
                self.report(p.name.span(), V::MissingBoundary, message);
            }
            let implies = self.resolve_all(&p.implies, &permission_by_name, "implies");
            let requires = self.resolve_all(&p.requires, &permission_by_name, "requires");
            let feature = p
                .feature
                .as_ref()
                .and_then(|f| match feature_by_name.get(f.as_str()) {
                    Some(&id) => Some(id),
                    None => {
                        self.report(
                            f.span(),
                            V::UnknownFeature,
                            format!("unknown feature `{}`", **f),
                        );
                        None
                    }
                });
            let min_plan = p.min_plan.as_ref().and_then(|plan| match plan.as_str() {
                "free" => Some(Plan::Free),
                "premium" => Some(Plan::Premium),
                "ultimate" => Some(Plan::Ultimate),
                other => {
                    let message =
                        format!("unknown plan `{other}`; plans are free, premium and ultimate");
                    self.report(plan.span(), V::UnknownPlan, message);
                    None
                }
            });
            let job_token_policy =
                p.job_token_policy.as_ref().and_then(|name| {
                    match policy_by_name.get(name.as_str()) {
                        Some(&id) => Some(id),
                        None => {
                            let message = format!("unknown job token policy `{}`", **name);
                            self.report(name.span(), V::UnknownJobTokenPolicy, message);
                            None
                        }
                    }
                });
            permissions.push(Permission {
                id,
                name: p.name.to_string(),
                action,
                resource,
                category: category.to_owned(),
                description: p.description.to_string(),
                boundaries,
                implies,
                requires,
                implied: PermSet::default(),
                required: Vec::new(),
                feature,
                public: p.public.as_ref().is_some_and(|p| **p),
                min_plan,
                job_token_policy,
                routes: Vec::new(),
                graphql: Vec::new(),
                aliases: p.aliases.iter().map(|a| a.as_str().to_owned()).collect(),
                origin: self.origin(p.name.span()),
            });
        }

        // implies/requires must not loop, and their closures are precomputed.
        let edges: Vec<Vec<usize>> = permissions
            .iter()
            .map(|p| {
                p.implies
                    .iter()
                    .chain(&p.requires)
                    .map(|id| id.index())
                    .collect()
            })
            .collect();
        for cycle in cycles(&edges) {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| permissions[i].name.as_str())
                .collect();
            let (_, _, first) = sources[cycle[0]];
            let message = format!("implies/requires cycle: {}", names.join(" -> "));
            self.report(first.name.span(), V::Cycle, message);
        }
        let n = permissions.len();
        for i in 0..n {
            let implied = closure(i, n, |j| &permissions[j].implies);
            let mut required = vec![PermissionId(u16::try_from(i).unwrap_or(u16::MAX))];
            required.extend(
                closure(i, n, |j| &permissions[j].requires)
                    .iter()
                    .filter(|id| id.index() != i),
            );
            permissions[i].implied = implied;
            permissions[i].required = required;
        }

        // Routes, and which permissions something refers to.
        let mut referenced: FxHashSet<PermissionId> = FxHashSet::default();
        for p in &permissions {
            referenced.extend(p.implies.iter().chain(&p.requires).copied());
        }
        let mut routes = RouteTable::default();
        for (i, &(_, _, p)) in sources.iter().enumerate() {
            for route in &p.routes {
                let Some(entry) = self.route(
                    route,
                    PermissionId(u16::try_from(i).unwrap_or(u16::MAX)),
                    &permissions,
                    &permission_by_name,
                ) else {
                    continue;
                };
                if let RouteKind::Protected { required, .. } = &entry.kind {
                    referenced.extend(required.iter().skip(1).copied());
                }
                let pair = (entry.method.clone(), entry.path.clone());
                if self.add_route(&mut routes, entry, route.route.span()) {
                    permissions[i].routes.push(pair);
                }
            }
        }
        let mut skipped_routes = Vec::new();
        for s in &parsed.skipped {
            let Some((method, path)) = self.split(&s.route) else {
                continue;
            };
            let Some(reason) = SKIP_REASONS.iter().find(|r| **r == s.reason.as_str()) else {
                let message = format!(
                    "unknown skip reason `{}`; use one of {}",
                    *s.reason,
                    SKIP_REASONS.join(", ")
                );
                self.report(s.reason.span(), V::UnknownSkipReason, message);
                continue;
            };
            let entry = RouteEntry {
                method: method.clone(),
                path: path.clone(),
                kind: RouteKind::Skipped { reason },
                origin: self.origin(s.route.span()),
            };
            if self.add_route(&mut routes, entry, s.route.span()) {
                skipped_routes.push(SkippedRoute {
                    method,
                    path,
                    reason: (*reason).to_owned(),
                    note: s.note.as_ref().map(|n| n.to_string()),
                });
            }
        }

        let skipped_graphql = self.graphql(
            schema.as_deref(),
            &sources,
            &mut permissions,
            &parsed.skipped_graphql,
        );

        for (i, p) in permissions.iter().enumerate() {
            let used = !p.routes.is_empty()
                || !p.graphql.is_empty()
                || referenced.contains(&PermissionId(u16::try_from(i).unwrap_or(u16::MAX)));
            if !used {
                let (_, _, source) = sources[i];
                let message = format!(
                    "permission `{}` is unused: no route or GraphQL field needs it and no other permission implies or requires it",
                    p.name
                );
                self.report(source.name.span(), V::UnusedPermission, message);
            }
        }

        let scopes = self.scopes(&parsed.scopes, &permissions, &permission_by_name);
        let templates = self.templates(&parsed.templates, &permissions, &permission_by_name);
        let admin_mode = permission_by_name.get("admin_mode").copied();
        let graphql_index =
            graphql::plan::Index::new(&permissions, &skipped_graphql, schema.as_deref());
        Catalog {
            graphql_index,
            permissions,
            features,
            roles,
            scopes,
            job_token_policies: policies,
            templates,
            skipped_routes,
            skipped_graphql,
            graphql_schema: schema,
            routes,
            scope_by_name: FxHashMap::default(),
            permission_by_name,
            feature_by_name,
            policy_by_name,
            admin_mode,
        }
        .indexed()
    }
}

impl Catalog {
    fn indexed(mut self) -> Self {
        self.scope_by_name = self
            .scopes
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        self
    }
}

/// `/projects/:id/...` is a project, `/groups/:id/...` a group, `/user` and
/// `/users/...` the user, and anything else the instance.
fn infer_boundary(path: &str) -> RouteBoundary {
    let rest = path.strip_prefix("/api/v4").unwrap_or(path);
    let mut segments = rest.split('/').filter(|s| !s.is_empty());
    let first = segments.next().unwrap_or_default();
    let second = segments.next();
    let param = second.and_then(|s| params(&format!("/{s}")).next().map(str::to_owned));
    match (first, param) {
        ("projects", Some(param)) => RouteBoundary {
            kind: BoundaryKind::Project,
            param: Some(param),
        },
        ("groups", Some(param)) => RouteBoundary {
            kind: BoundaryKind::Group,
            param: Some(param),
        },
        ("user" | "users", _) => RouteBoundary {
            kind: BoundaryKind::User,
            param: None,
        },
        _ => RouteBoundary {
            kind: BoundaryKind::Instance,
            param: None,
        },
    }
}

/// Everything reachable from `start` through `next`, `start` included.
fn closure<'a>(start: usize, n: usize, next: impl Fn(usize) -> &'a Vec<PermissionId>) -> PermSet {
    let mut set = PermSet::with_capacity(n);
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        let id = PermissionId(u16::try_from(i).unwrap_or(u16::MAX));
        if !set.contains(id) {
            set.insert(id);
            stack.extend(next(i).iter().map(|p| p.index()));
        }
    }
    set
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_inferred_from_the_path() {
        let b = infer_boundary("/api/v4/projects/:id/issues");
        assert_eq!(
            (b.kind, b.param.as_deref()),
            (BoundaryKind::Project, Some("id"))
        );
        assert_eq!(
            infer_boundary("/api/v4/groups/:group_id").kind,
            BoundaryKind::Group
        );
        assert_eq!(infer_boundary("/api/v4/user").kind, BoundaryKind::User);
        assert_eq!(
            infer_boundary("/api/v4/users/:id/projects").kind,
            BoundaryKind::User
        );
        assert_eq!(
            infer_boundary("/api/v4/projects").kind,
            BoundaryKind::Instance
        );
        assert_eq!(
            infer_boundary("/api/v4/audit_events").kind,
            BoundaryKind::Instance
        );
    }
}
