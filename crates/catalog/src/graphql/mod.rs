//! GraphQL in the catalog, in the model of GitLab's `authorize_granular_token`
//! directive: a field (a query field, a mutation, a field of an object type) or an object
//! type carries a permission, a boundary type, and where the boundary comes from (an
//! argument holding a full path, an id or a global id, or the object the field is
//! selected on). The catalog ships the schema it is written against
//! (`permissions/graphql/schema.graphql`), and every entry is checked against it.
//!
//! `patrol catalog coverage --graphql SCHEMA` reports a schema's query fields, mutations
//! and object types as covered, skipped (with a reason) or missing.

pub mod plan;

use std::fmt;
use std::path::Path;

use apollo_compiler::Schema;
use apollo_compiler::schema::{ExtendedType, FieldDefinition};
use apollo_compiler::validation::Valid;
use rustc_hash::FxHashMap;

use crate::coverage::{CoverageError, Summary};
use crate::domain::BoundaryKind;
use crate::routes::SKIP_REASONS;
use crate::{Catalog, Permission};

/// Why a schema element needs no permission: the REST reasons, and `structural` for an
/// object type that only carries others (a connection, an edge, a mutation's payload).
pub const GRAPHQL_SKIP_REASONS: [&str; 6] = [
    SKIP_REASONS[0],
    SKIP_REASONS[1],
    SKIP_REASONS[2],
    SKIP_REASONS[3],
    SKIP_REASONS[4],
    "structural",
];

/// What a GraphQL entry of a permission names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GraphqlTarget {
    /// `Type.field`; the roots are `Query` and `Mutation`.
    Field { parent: String, field: String },
    /// An object type, wherever it is selected.
    Type(String),
}

impl fmt::Display for GraphqlTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field { parent, field } => write!(f, "{parent}.{field}"),
            Self::Type(name) => f.write_str(name),
        }
    }
}

/// Where the boundary of a GraphQL entry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphqlBoundary {
    /// The boundary of the object the field is selected on, of the kind given if one is.
    Parent(Option<BoundaryKind>),
    /// An argument of the field holding a full path, a numeric id or a global id
    /// (`gid://gitlab/Project/42`); more than one name reaches into input objects
    /// (`input`, `projectPath`).
    Argument {
        kind: BoundaryKind,
        path: Vec<String>,
    },
    /// The token's user, or the instance.
    Fixed(BoundaryKind),
}

impl fmt::Display for GraphqlBoundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parent(None) => f.write_str("the parent object's boundary"),
            Self::Parent(Some(kind)) => write!(f, "the parent object's {kind}"),
            Self::Argument { kind, path } => write!(f, "{kind} from `{}`", path.join(".")),
            Self::Fixed(kind) => write!(f, "the {kind}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlEntry {
    pub target: GraphqlTarget,
    pub boundary: GraphqlBoundary,
}

/// A schema element that needs no permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedGraphql {
    /// `Query.field`, `Mutation.field` or an object type.
    pub element: String,
    pub reason: String,
    pub note: Option<String>,
}

/// Parses and validates an SDL document; the error holds the diagnostics.
pub fn parse_schema(text: &str, path: &Path) -> Result<Valid<Schema>, String> {
    Schema::parse_and_validate(text, path).map_err(|e| e.errors.to_string())
}

/// The entry a permission's YAML describes, or why it is not one. With a schema, every
/// name must be in it: the type, the field, the argument and the input fields it
/// reaches through.
pub fn entry(
    schema: Option<&Schema>,
    permission: &Permission,
    field: Option<&str>,
    object: Option<&str>,
    boundary: Option<(&str, Option<&str>)>,
) -> Result<GraphqlEntry, String> {
    let target = match (field, object) {
        (Some(field), None) => {
            let Some((parent, name)) = field
                .split_once('.')
                .filter(|(p, f)| !p.is_empty() && !f.is_empty() && !f.contains('.'))
            else {
                return Err(format!(
                    "`{field}` is not `Type.field` (a path like `Query.project.issues` is \
                     written as the field of the type it is on: `Project.issues`)"
                ));
            };
            GraphqlTarget::Field {
                parent: parent.to_owned(),
                field: name.to_owned(),
            }
        }
        (None, Some(object)) => GraphqlTarget::Type(object.to_owned()),
        _ => return Err("give exactly one of `field` and `type`".to_owned()),
    };
    let definition = match (&target, schema) {
        (GraphqlTarget::Field { parent, field }, Some(schema)) => {
            Some(field_definition(schema, parent, field)?)
        }
        (GraphqlTarget::Type(name), Some(schema)) => {
            if !matches!(
                schema.types.get(name.as_str()),
                Some(ExtendedType::Object(_) | ExtendedType::Interface(_))
            ) {
                return Err(format!("the schema has no object type `{name}`"));
            }
            None
        }
        (_, None) => None,
    };
    let boundary = match boundary {
        None => GraphqlBoundary::Parent(None),
        Some((kind, argument)) => {
            let kind: BoundaryKind = kind.parse().map_err(|()| {
                format!("`{kind}` is not a boundary type: project, group, user or instance")
            })?;
            if permission.min_role(kind).is_none() {
                return Err(format!(
                    "boundary `{kind}` is not one of `{}`'s boundaries",
                    permission.name
                ));
            }
            match (kind, argument) {
                (BoundaryKind::User | BoundaryKind::Instance, None) => GraphqlBoundary::Fixed(kind),
                (BoundaryKind::User | BoundaryKind::Instance, Some(_)) => {
                    return Err(format!("a `{kind}` boundary takes no `argument`"));
                }
                (_, None) => GraphqlBoundary::Parent(Some(kind)),
                (_, Some(argument)) => {
                    let path: Vec<String> = argument.split('.').map(str::to_owned).collect();
                    if matches!(target, GraphqlTarget::Type(_)) {
                        return Err("an object type has no arguments: give a `field`".to_owned());
                    }
                    if let (Some(schema), Some(definition)) = (schema, definition) {
                        argument_reaches(schema, definition, &path)?;
                    }
                    GraphqlBoundary::Argument { kind, path }
                }
            }
        }
    };
    Ok(GraphqlEntry { target, boundary })
}

fn field_definition<'s>(
    schema: &'s Schema,
    parent: &str,
    field: &str,
) -> Result<&'s FieldDefinition, String> {
    let fields = match schema.types.get(parent) {
        Some(ExtendedType::Object(object)) => &object.fields,
        Some(ExtendedType::Interface(interface)) => &interface.fields,
        _ => return Err(format!("the schema has no object type `{parent}`")),
    };
    fields
        .get(field)
        .map(|f| &***f)
        .ok_or_else(|| format!("`{parent}` has no field `{field}`"))
}

/// `path` names an argument of `definition`, then fields of input objects below it.
fn argument_reaches(
    schema: &Schema,
    definition: &FieldDefinition,
    path: &[String],
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("`argument` is empty".to_owned());
    };
    let Some(argument) = definition.argument_by_name(first) else {
        return Err(format!(
            "`{}` has no argument `{first}`",
            definition.name.as_str()
        ));
    };
    let mut ty = argument.ty.inner_named_type().clone();
    for (i, name) in rest.iter().enumerate() {
        let Some(ExtendedType::InputObject(input)) = schema.types.get(&ty) else {
            return Err(format!(
                "`{}` is a `{ty}`, not an input object with a field `{name}`",
                path[..=i].join(".")
            ));
        };
        let Some(field) = input.fields.get(name.as_str()) else {
            return Err(format!("input `{ty}` has no field `{name}`"));
        };
        ty = field.ty.inner_named_type().clone();
    }
    Ok(())
}

/// What kind of schema element a coverage line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ElementKind {
    QueryField,
    Mutation,
    ObjectType,
}

impl ElementKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::QueryField => "query field",
            Self::Mutation => "mutation",
            Self::ObjectType => "object type",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub kind: ElementKind,
    /// `Query.project`, `Mutation.createIssue` or `Issue`.
    pub name: String,
    pub status: crate::coverage::Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphqlReport {
    /// Query fields, then mutations, then object types, each sorted by name.
    pub elements: Vec<Element>,
}

impl GraphqlReport {
    pub fn summary(&self, kind: ElementKind) -> Summary {
        summarize(self.elements.iter().filter(|e| e.kind == kind))
    }

    /// Query fields and mutations together: what the percentage is of.
    pub fn operations(&self) -> Summary {
        summarize(
            self.elements
                .iter()
                .filter(|e| e.kind != ElementKind::ObjectType),
        )
    }

    /// Query fields and mutations covered or skipped, in percent (100 when there are none).
    pub fn percent(&self) -> f64 {
        let s = self.operations();
        if s.total == 0 {
            return 100.0;
        }
        (s.covered + s.skipped) as f64 * 100.0 / s.total as f64
    }

    /// Query fields and mutations without a permission or a skip.
    pub fn missing(&self) -> impl Iterator<Item = &Element> {
        self.elements.iter().filter(|e| {
            e.kind != ElementKind::ObjectType && e.status == crate::coverage::Status::Missing
        })
    }

    pub fn element(&self, name: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.name == name)
    }
}

fn summarize<'a>(elements: impl Iterator<Item = &'a Element>) -> Summary {
    use crate::coverage::Status;
    let mut s = Summary::default();
    for e in elements {
        s.total += 1;
        match e.status {
            Status::Covered { .. } => s.covered += 1,
            Status::Skipped { .. } => s.skipped += 1,
            Status::Missing => s.missing += 1,
        }
    }
    s
}

impl fmt::Display for GraphqlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::coverage::Status;
        for e in &self.elements {
            let kind = e.kind.as_str();
            match &e.status {
                Status::Covered { permissions } => {
                    writeln!(f, "covered  {kind}  {}  {}", e.name, permissions.join(", "))?
                }
                Status::Skipped { reason } => {
                    writeln!(f, "skipped  {kind}  {}  ({reason})", e.name)?;
                }
                Status::Missing => writeln!(f, "missing  {kind}  {}", e.name)?,
            }
        }
        for (kind, plural) in [
            (ElementKind::QueryField, "query fields"),
            (ElementKind::Mutation, "mutations"),
            (ElementKind::ObjectType, "object types"),
        ] {
            let s = self.summary(kind);
            writeln!(
                f,
                "{} {plural}: {} covered, {} skipped, {} missing",
                s.total, s.covered, s.skipped, s.missing
            )?;
        }
        let s = self.operations();
        writeln!(
            f,
            "{} query fields and mutations: {} covered, {} skipped, {} missing ({:.1}% covered or skipped)",
            s.total,
            s.covered,
            s.skipped,
            s.missing,
            self.percent()
        )
    }
}

/// Reads an SDL file and reports it against the catalog.
pub fn report_file(catalog: &Catalog, path: &Path) -> Result<GraphqlReport, CoverageError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CoverageError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let schema = parse_schema(&text, path).map_err(|message| CoverageError::Parse {
        path: shown,
        format: "GraphQL SDL",
        message,
    })?;
    Ok(report(catalog, &schema))
}

/// Every query field, mutation and object type of `schema` and what the catalog says
/// about it. An object type is covered when a permission names it, or when a field that
/// needs a permission returns it; a connection, an edge or a mutation's payload
/// (`…Connection`, `…Edge`, `…Payload`, `PageInfo`) is `structural` unless the catalog
/// names it.
pub fn report(catalog: &Catalog, schema: &Schema) -> GraphqlReport {
    use crate::coverage::Status;
    let mut needs: FxHashMap<String, Vec<String>> = FxHashMap::default();
    let mut returned: FxHashMap<String, Vec<String>> = FxHashMap::default();
    for p in &catalog.permissions {
        for e in &p.graphql {
            let name = e.target.to_string();
            push_once(needs.entry(name).or_default(), &p.name);
            if let GraphqlTarget::Field { parent, field } = &e.target {
                if let Ok(definition) = field_definition(schema, parent, field) {
                    let ty = definition.ty.inner_named_type().as_str();
                    reach(schema, ty, &p.name, &mut returned, &mut Vec::new());
                }
            }
        }
    }
    let skipped: FxHashMap<&str, &str> = catalog
        .skipped_graphql
        .iter()
        .map(|s| (s.element.as_str(), s.reason.as_str()))
        .collect();
    let status = |name: &str, structural: bool| {
        if let Some(permissions) = needs.get(name) {
            Status::Covered {
                permissions: permissions.clone(),
            }
        } else if let Some(reason) = skipped.get(name) {
            Status::Skipped {
                reason: (*reason).to_owned(),
            }
        } else if let Some(permissions) = returned.get(name).filter(|_| !structural) {
            Status::Covered {
                permissions: permissions.clone(),
            }
        } else if structural {
            Status::Skipped {
                reason: "structural".to_owned(),
            }
        } else {
            Status::Missing
        }
    };
    let mut elements = Vec::new();
    let roots = [
        (
            schema.schema_definition.query.as_ref(),
            ElementKind::QueryField,
        ),
        (
            schema.schema_definition.mutation.as_ref(),
            ElementKind::Mutation,
        ),
    ];
    let mut root_names = Vec::new();
    for (root, kind) in roots {
        let Some(root) = root else { continue };
        root_names.push(root.name.to_string());
        if let Some(ExtendedType::Object(object)) = schema.types.get(&root.name) {
            let mut names: Vec<String> = object
                .fields
                .keys()
                .map(|field| format!("{}.{field}", root.name))
                .collect();
            names.sort();
            elements.extend(names.into_iter().map(|name| Element {
                kind,
                status: status(&name, false),
                name,
            }));
        }
    }
    if let Some(subscription) = &schema.schema_definition.subscription {
        root_names.push(subscription.name.to_string());
    }
    let mut types: Vec<&str> = schema
        .types
        .iter()
        .filter(|(name, ty)| {
            matches!(ty, ExtendedType::Object(_))
                && !name.starts_with("__")
                && !root_names.iter().any(|r| r == name.as_str())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    types.sort_unstable();
    elements.extend(types.into_iter().map(|name| Element {
        kind: ElementKind::ObjectType,
        status: status(name, structural(name)),
        name: name.to_owned(),
    }));
    GraphqlReport { elements }
}

/// A connection, an edge, a mutation's payload or `PageInfo`: a type that only carries
/// others.
pub(crate) fn structural(name: &str) -> bool {
    name == "PageInfo"
        || ["Connection", "Edge", "Payload"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// `ty` is returned by a field that needs `permission`; through a structural type, so
/// are the types it carries (`IssueConnection.nodes`, `IssueEdge.node`).
fn reach(
    schema: &Schema,
    ty: &str,
    permission: &str,
    returned: &mut FxHashMap<String, Vec<String>>,
    seen: &mut Vec<String>,
) {
    if seen.iter().any(|s| s == ty) {
        return;
    }
    seen.push(ty.to_owned());
    push_once(returned.entry(ty.to_owned()).or_default(), permission);
    if !structural(ty) {
        return;
    }
    if let Some(ExtendedType::Object(object)) = schema.types.get(ty) {
        for field in object.fields.values() {
            reach(
                schema,
                field.ty.inner_named_type().as_str(),
                permission,
                returned,
                seen,
            );
        }
    }
}

fn push_once(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}
