//! What a GraphQL request needs: every (permission, boundary) its operation touches,
//! worked out from the query alone (DESIGN.md section 11).
//!
//! The document is parsed and validated against the catalog's schema by apollo-compiler;
//! fragments are expanded where they are spread, aliases name the path of each check,
//! variables are coerced to their declared types and read where an argument names a
//! boundary, and `@skip` / `@include` are ignored: a field that might be skipped is
//! still checked.
//!
//! Where the boundary comes from: an argument (a full path, a numeric id or a global id
//! `gid://gitlab/Project/42`), the token's user or the instance, or the object the field
//! is selected on. An object lies in the boundary of the nearest object above it that
//! the catalog places: a field with an argument entry places what it returns, a field
//! whose entry takes its parent's boundary keeps that boundary for what it returns (the
//! catalog says the object lies inside it), and any other field that returns a project,
//! a group or a namespace starts an unplaced object, under which every check of a
//! project or group is `boundary_unresolved`. A user object (`currentUser`, an issue's
//! `author`) is placed at the token's user, so nothing under it is decided on the
//! project above it.

use std::fmt;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::Name;
use apollo_compiler::ast::Value;
use apollo_compiler::executable::{Field, Selection, SelectionSet};
use apollo_compiler::parser::Parser;
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::{ExtendedType, Schema};
use apollo_compiler::validation::Valid;
use rustc_hash::{FxHashMap, FxHashSet};

use super::{GraphqlBoundary, GraphqlTarget};
use crate::domain::BoundaryKind;
use crate::{Catalog, Permission, PermissionId};

/// The checks one field may need on average: its own entries and those of the type it
/// returns; a list argument names a boundary per element.
const CHECKS_PER_FIELD: usize = 4;

/// Bounds on the work one request may ask for; over any of them is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The query text, in bytes.
    pub max_bytes: usize,
    /// Fields nested in fields, counted through fragments.
    pub max_depth: usize,
    /// Field selections once every fragment is expanded where it is spread; the checks
    /// they need (list arguments expanded) may be four times as many.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 15,
            max_fields: 1000,
        }
    }
}

/// Where one check is needed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Boundary {
    ProjectId(u64),
    ProjectPath(String),
    GroupId(u64),
    GroupPath(String),
    /// The token's user.
    User,
    Instance,
    /// A permission is needed but the query does not say where; the text says why.
    Unresolved(String),
}

impl Boundary {
    fn kind(&self) -> Option<BoundaryKind> {
        Some(match self {
            Self::ProjectId(_) | Self::ProjectPath(_) => BoundaryKind::Project,
            Self::GroupId(_) | Self::GroupPath(_) => BoundaryKind::Group,
            Self::User => BoundaryKind::User,
            Self::Instance => BoundaryKind::Instance,
            Self::Unresolved(_) => return None,
        })
    }
}

/// One (permission, boundary) the operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The response path of the field that needs it, aliases as written
    /// (`project.open: issues` is `project.open`).
    pub path: String,
    /// `None` for a root field no permission of the catalog covers (and none skips).
    pub permission: Option<PermissionId>,
    /// `Query.project`, `Project.issues` or `Issue`: the catalog entry that asked.
    pub element: String,
    pub boundary: Boundary,
}

/// Why a request is not one patrol decides; each names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The catalog ships no schema.
    NoSchema,
    /// `query`: over `max_bytes`, a syntax error, or a document the schema rejects.
    Query(String),
    /// `operationName`: absent with several operations, or naming none of them.
    OperationName(String),
    /// `variables`: a value of the wrong type, or a required one missing.
    Variables(String),
}

impl PlanError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NoSchema | Self::Query(_) => "query",
            Self::OperationName(_) => "operationName",
            Self::Variables(_) => "variables",
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSchema => f.write_str("the catalog ships no GraphQL schema"),
            Self::Query(m) | Self::OperationName(m) | Self::Variables(m) => f.write_str(m),
        }
    }
}

/// The catalog's GraphQL entries by the schema element they name.
#[derive(Debug, Default)]
pub struct Index {
    fields: FxHashMap<(String, String), Vec<(PermissionId, GraphqlBoundary)>>,
    types: FxHashMap<String, Vec<(PermissionId, GraphqlBoundary)>>,
    /// `Query.echo`: root fields that need no permission.
    skipped: FxHashSet<String>,
    /// The object types an interface or a union may be.
    possible: FxHashMap<String, Vec<String>>,
    /// The interfaces an object type implements.
    interfaces: FxHashMap<String, Vec<String>>,
}

impl Index {
    pub fn new(
        permissions: &[Permission],
        skipped: &[super::SkippedGraphql],
        schema: Option<&Schema>,
    ) -> Self {
        let mut index = Self::default();
        for p in permissions {
            for e in &p.graphql {
                let entry = (p.id, e.boundary.clone());
                match &e.target {
                    GraphqlTarget::Field { parent, field } => index
                        .fields
                        .entry((parent.clone(), field.clone()))
                        .or_default()
                        .push(entry),
                    GraphqlTarget::Type(name) => {
                        index.types.entry(name.clone()).or_default().push(entry)
                    }
                }
            }
        }
        index.skipped = skipped.iter().map(|s| s.element.clone()).collect();
        if let Some(schema) = schema {
            for (name, ty) in &schema.types {
                match ty {
                    ExtendedType::Object(object) => {
                        for interface in &object.implements_interfaces {
                            index
                                .possible
                                .entry(interface.name.to_string())
                                .or_default()
                                .push(name.to_string());
                        }
                        index.interfaces.insert(
                            name.to_string(),
                            object
                                .implements_interfaces
                                .iter()
                                .map(|i| i.name.to_string())
                                .collect(),
                        );
                    }
                    ExtendedType::Union(union) => {
                        index.possible.insert(
                            name.to_string(),
                            union.members.iter().map(|m| m.name.to_string()).collect(),
                        );
                    }
                    _ => {}
                }
            }
            for types in index.possible.values_mut() {
                types.sort_unstable();
            }
        }
        index
    }

    /// `ty`, and the types whose entries reach it: for an interface or a union, every
    /// object type it may be; for an object type, the interfaces it implements.
    fn related<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let possible = self.possible.get(ty).into_iter().flatten();
        let interfaces = self.interfaces.get(ty).into_iter().flatten();
        std::iter::once(ty).chain(possible.chain(interfaces).map(String::as_str))
    }
}

/// The operation `operation_name` of `query` (the only one when `None`), with
/// `variables`, and every check it needs in the order its fields are written.
pub fn plan(
    catalog: &Catalog,
    limits: Limits,
    query: &str,
    operation_name: Option<&str>,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Need>, PlanError> {
    let schema = catalog.graphql_schema.as_ref().ok_or(PlanError::NoSchema)?;
    if query.len() > limits.max_bytes {
        return Err(PlanError::Query(format!(
            "is {} bytes; at most {} are decided",
            query.len(),
            limits.max_bytes
        )));
    }
    let document = parse(schema, query, limits)?;
    let operation = document
        .operations
        .get(operation_name)
        .map_err(|e| PlanError::OperationName(e.message().to_string()))?;
    let values: JsonMap = variables
        .iter()
        .map(|(k, v)| (k.as_str().into(), JsonValue::from(v.clone())))
        .collect();
    let variables = apollo_compiler::request::coerce_variable_values(schema, operation, &values)
        .map_err(|e| PlanError::Variables(e.message().to_string()))?;
    let mut walk = Walk {
        catalog,
        document: &document,
        variables: &variables,
        limits,
        fields: 0,
        needs: Vec::new(),
    };
    walk.selections(&operation.selection_set, &Place::Root, "", 0)?;
    Ok(walk.needs)
}

fn parse(
    schema: &Valid<Schema>,
    query: &str,
    limits: Limits,
) -> Result<Valid<ExecutableDocument>, PlanError> {
    // The parser's own bounds keep a hostile document from costing more than a
    // legitimate one before the walk's limits are even reached.
    let document = Parser::new()
        .recursion_limit(limits.max_depth * 4 + 16)
        .token_limit(limits.max_bytes / 2 + 64)
        .parse_executable(schema, query, "query.graphql")
        .map_err(|e| PlanError::Query(brief(e.errors.to_string())))?;
    document
        .validate(schema)
        .map_err(|e| PlanError::Query(brief(e.errors.to_string())))
}

/// Diagnostics, cut to a size an error body can carry.
fn brief(mut text: String) -> String {
    const MAX: usize = 2000;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …");
    }
    text.trim_end().to_owned()
}

/// The boundary the objects of a selection set lie in.
#[derive(Debug, Clone)]
enum Place {
    /// The operation's root: no object yet.
    Root,
    Known(Boundary),
    /// An object the catalog does not place; the text says which.
    Unplaced(String),
}

struct Walk<'a> {
    catalog: &'a Catalog,
    document: &'a ExecutableDocument,
    variables: &'a JsonMap,
    limits: Limits,
    fields: usize,
    needs: Vec<Need>,
}

impl Walk<'_> {
    fn index(&self) -> &Index {
        &self.catalog.graphql_index
    }

    fn selections(
        &mut self,
        set: &SelectionSet,
        place: &Place,
        path: &str,
        depth: usize,
    ) -> Result<(), PlanError> {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => self.field(&set.ty, field, place, path, depth)?,
                Selection::InlineFragment(inline) => {
                    self.selections(&inline.selection_set, place, path, depth)?;
                }
                Selection::FragmentSpread(spread) => {
                    // Validation has refused unknown fragments and cycles.
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        self.selections(&fragment.selection_set, place, path, depth)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn field(
        &mut self,
        parent: &Name,
        field: &Field,
        place: &Place,
        path: &str,
        depth: usize,
    ) -> Result<(), PlanError> {
        if field.name.starts_with("__") {
            // `__typename`, `__schema` and `__type` describe the schema, not its data.
            return Ok(());
        }
        self.fields += 1;
        if self.fields > self.limits.max_fields {
            return Err(PlanError::Query(format!(
                "selects more than {} fields once fragments are expanded",
                self.limits.max_fields
            )));
        }
        if depth >= self.limits.max_depth {
            return Err(PlanError::Query(format!(
                "nests fields more than {} deep",
                self.limits.max_depth
            )));
        }
        let key = field.response_key();
        let path = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let index = &self.catalog.graphql_index;
        let entries: Vec<(PermissionId, GraphqlBoundary, String)> = index
            .related(parent)
            .flat_map(|ty| {
                index
                    .fields
                    .get(&(ty.to_owned(), field.name.to_string()))
                    .into_iter()
                    .flatten()
                    .map(move |(p, b)| (*p, b.clone(), format!("{ty}.{}", field.name)))
            })
            .collect();
        let element = format!("{parent}.{}", field.name);
        if depth == 0 && entries.is_empty() && !index.skipped.contains(&element) {
            self.push(Need {
                path: path.clone(),
                permission: None,
                element,
                boundary: Boundary::Unresolved(format!(
                    "no permission of the catalog covers `{parent}.{}`",
                    field.name
                )),
            })?;
        }
        // The first project or group an entry of this field names places what it returns.
        let mut placed = None;
        for (permission, boundary, element) in entries {
            for b in self.boundaries(field, &boundary, place, &element, permission) {
                if placed.is_none()
                    && !matches!(boundary, GraphqlBoundary::Fixed(_))
                    && matches!(b.kind(), Some(BoundaryKind::Project | BoundaryKind::Group))
                {
                    placed = Some(b.clone());
                }
                self.push(Need {
                    path: path.clone(),
                    permission: Some(permission),
                    element: element.clone(),
                    boundary: b,
                })?;
            }
        }
        let returned = field.definition.ty.inner_named_type();
        let inner = match places(returned) {
            // A connection's nodes and edges are the objects the field above it placed.
            _ if placed.is_none() && super::structural(parent) => place.clone(),
            Some(BoundaryKind::User) => Place::Known(Boundary::User),
            Some(_) => placed.map_or_else(
                || {
                    Place::Unplaced(format!(
                        "`{parent}.{}` returns a `{returned}` the catalog does not place",
                        field.name
                    ))
                },
                Place::Known,
            ),
            None => match (placed, place) {
                (Some(b), _) => Place::Known(b),
                (None, Place::Root) => Place::Unplaced(format!(
                    "`{parent}.{}` is not placed in a project or a group",
                    field.name
                )),
                (None, other) => other.clone(),
            },
        };
        let index = self.index();
        let typed: Vec<(PermissionId, GraphqlBoundary, String)> = index
            .related(returned)
            .flat_map(|ty| {
                index
                    .types
                    .get(ty)
                    .into_iter()
                    .flatten()
                    .map(move |(p, b)| (*p, b.clone(), ty.to_owned()))
            })
            .collect();
        for (permission, boundary, element) in typed {
            for b in self.boundaries(field, &boundary, &inner, &element, permission) {
                self.push(Need {
                    path: path.clone(),
                    permission: Some(permission),
                    element: element.clone(),
                    boundary: b,
                })?;
            }
        }
        self.selections(&field.selection_set, &inner, &path, depth + 1)
    }

    /// One more check; a list argument of many ids, under fragments spread many times,
    /// would otherwise need more checks than any operation is worth deciding.
    fn push(&mut self, need: Need) -> Result<(), PlanError> {
        let most = self.limits.max_fields.saturating_mul(CHECKS_PER_FIELD);
        if self.needs.len() >= most {
            return Err(PlanError::Query(format!(
                "needs more than {most} checks once fragments and lists are expanded"
            )));
        }
        self.needs.push(need);
        Ok(())
    }

    /// Where an entry of `element` needs its permission.
    fn boundaries(
        &self,
        field: &Field,
        boundary: &GraphqlBoundary,
        place: &Place,
        element: &str,
        permission: PermissionId,
    ) -> Vec<Boundary> {
        match boundary {
            GraphqlBoundary::Fixed(BoundaryKind::User) => vec![Boundary::User],
            GraphqlBoundary::Fixed(_) => vec![Boundary::Instance],
            GraphqlBoundary::Argument { kind, path } => self.argument(field, *kind, path),
            GraphqlBoundary::Parent(kind) => vec![match place {
                Place::Root => Boundary::Unresolved(format!(
                    "`{element}` takes its boundary from the object above it, and a root field has none"
                )),
                Place::Unplaced(why) => Boundary::Unresolved(why.clone()),
                Place::Known(b) => {
                    let p = self.catalog.permission(permission);
                    match b.kind() {
                        Some(have)
                            if kind.is_some_and(|want| want != have)
                                || p.min_role(have).is_none() =>
                        {
                            let wanted: Vec<&str> = match kind {
                                Some(want) => vec![want.as_str()],
                                None => p.boundary_kinds().map(BoundaryKind::as_str).collect(),
                            };
                            Boundary::Unresolved(format!(
                                "`{element}` needs `{}` on a {}, and the object above it is {}",
                                p.name,
                                wanted.join(" or "),
                                match have {
                                    BoundaryKind::User => "a user".to_owned(),
                                    BoundaryKind::Instance => "the instance".to_owned(),
                                    other => format!("in a {other}"),
                                }
                            ))
                        }
                        _ => b.clone(),
                    }
                }
            }],
        }
    }

    /// The boundaries an argument entry names: one, or one per element of a list.
    fn argument(&self, field: &Field, kind: BoundaryKind, path: &[String]) -> Vec<Boundary> {
        let shown = path.join(".");
        let unresolved = |why: String| vec![Boundary::Unresolved(why)];
        let Some((first, rest)) = path.split_first() else {
            return unresolved("the catalog names no argument".to_owned());
        };
        let Ok(value) = field.argument_by_name(first) else {
            return unresolved(format!("`{shown}` is not given"));
        };
        let mut value = Arg::Ast(value);
        for name in rest {
            match value.get(name, self.variables) {
                Some(inner) => value = inner,
                None => return unresolved(format!("`{shown}` is not given")),
            }
        }
        let mut leaves = Vec::new();
        value.leaves(self.variables, &mut leaves);
        if leaves.is_empty() {
            return unresolved(format!("`{shown}` is not given"));
        }
        leaves
            .into_iter()
            .map(|leaf| boundary_of(kind, &shown, leaf))
            .collect()
    }
}

/// The kind of boundary an object type is, for the types that are one.
fn places(ty: &str) -> Option<BoundaryKind> {
    match ty {
        "Project" => Some(BoundaryKind::Project),
        "Group" | "Namespace" => Some(BoundaryKind::Group),
        "User" | "UserCore" => Some(BoundaryKind::User),
        _ => None,
    }
}

/// An argument value, written in the document or given as a variable.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Ast(&'a Value),
    Json(&'a JsonValue),
}

/// A scalar an argument ends in.
enum Leaf<'a> {
    Str(&'a str),
    Int(i64),
    Other,
}

impl<'a> Arg<'a> {
    /// A variable, read; `None` when it has no value.
    fn deref(self, variables: &'a JsonMap) -> Option<Self> {
        match self {
            Self::Ast(Value::Variable(name)) => variables.get(name.as_str()).map(Self::Json),
            Self::Ast(Value::Null) | Self::Json(JsonValue::Null) => None,
            other => Some(other),
        }
    }

    fn get(self, name: &str, variables: &'a JsonMap) -> Option<Self> {
        match self.deref(variables)? {
            Self::Ast(Value::Object(fields)) => fields
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| Self::Ast(v)),
            Self::Json(JsonValue::Object(map)) => map.get(name).map(Self::Json),
            _ => None,
        }
        .and_then(|v| v.deref(variables))
    }

    fn leaves(self, variables: &'a JsonMap, out: &mut Vec<Leaf<'a>>) {
        let Some(value) = self.deref(variables) else {
            return;
        };
        match value {
            Self::Ast(Value::List(items)) => {
                for item in items {
                    Self::Ast(item).leaves(variables, out);
                }
            }
            Self::Json(JsonValue::Array(items)) => {
                for item in items {
                    Self::Json(item).leaves(variables, out);
                }
            }
            Self::Ast(Value::String(s)) => out.push(Leaf::Str(s)),
            Self::Json(JsonValue::String(s)) => out.push(Leaf::Str(s.as_str())),
            Self::Ast(Value::Int(i)) => out.push(i.as_str().parse().map_or(Leaf::Other, Leaf::Int)),
            Self::Json(JsonValue::Number(n)) => out.push(n.as_i64().map_or(Leaf::Other, Leaf::Int)),
            _ => out.push(Leaf::Other),
        }
    }
}

/// A full path, a numeric id or a global id, as a boundary of `kind`.
fn boundary_of(kind: BoundaryKind, shown: &str, leaf: Leaf<'_>) -> Boundary {
    let by_id = |id: u64| match kind {
        BoundaryKind::Project => Boundary::ProjectId(id),
        _ => Boundary::GroupId(id),
    };
    match leaf {
        Leaf::Int(id) => u64::try_from(id).map_or_else(
            |_| Boundary::Unresolved(format!("`{shown}` is not an id")),
            by_id,
        ),
        Leaf::Str(text) => match text.strip_prefix("gid://gitlab/") {
            Some(gid) => {
                let (model, id) = gid.split_once('/').unwrap_or((gid, ""));
                let id = id.parse::<u64>().ok();
                let names = match model {
                    "Project" => Some(BoundaryKind::Project),
                    "Group" | "Namespace" => Some(BoundaryKind::Group),
                    _ => None,
                };
                match (names, id) {
                    (Some(named), Some(id)) if named == kind => by_id(id),
                    (_, None) => Boundary::Unresolved(format!(
                        "`{shown}` is not a global id like `gid://gitlab/Project/42`"
                    )),
                    _ => Boundary::Unresolved(format!(
                        "`{shown}` is the global id of `{model}` {}, not of a {kind}",
                        id.unwrap_or_default()
                    )),
                }
            }
            None => match kind {
                BoundaryKind::Project => Boundary::ProjectPath(text.to_owned()),
                _ => Boundary::GroupPath(text.to_owned()),
            },
        },
        Leaf::Other => Boundary::Unresolved(format!("`{shown}` is neither a path nor an id")),
    }
}
