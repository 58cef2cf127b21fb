//! The world a decision is made in: users, groups, projects, memberships, tokens, group
//! token policies and job token scopes, indexed for the decision path. It is updated in
//! place, one change at a time, and refuses changes that would break its invariants
//! (unknown parents, cycles, a child more visible than its parent).

use std::sync::Arc;

use rustc_hash::FxHashMap;
use thiserror::Error;

use patrol_catalog::domain::{AccessLevel, FeatureAccess, Plan, Visibility};
use patrol_catalog::{Catalog, FeatureId};

use crate::spec::{GroupSpec, JobTokenScope, Owner, ProjectSpec, TokenPolicy, User};
use crate::token::Token;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);
    };
}

id_type!(
    /// A user of the main application.
    UserId
);
id_type!(
    /// A group; group ids and project ids are separate spaces.
    GroupId
);
id_type!(
    /// A project.
    ProjectId
);
id_type!(
    /// A token (any kind).
    TokenId
);

/// Index of a namespace (group, project or personal namespace) in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsIdx(u32);

impl NsIdx {
    const NONE: u32 = u32::MAX;

    fn at(self) -> usize {
        self.0 as usize
    }
}

/// A namespace's place in the tree, kept apart from its record: the walks up the tree on
/// the decision path read eight bytes per ancestor, and the top-level group is known
/// without a walk. Kept current by `set_parent`, the only place a parent changes.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// `NsIdx::NONE` at the top.
    parent: u32,
    top: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsKind {
    Group(GroupId),
    Project(ProjectId),
    /// A user's personal namespace: its projects are the user's personal projects.
    User(UserId),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    #[error("user {0} does not exist")]
    UnknownUser(u64),
    #[error("group {0} does not exist")]
    UnknownGroup(u64),
    #[error("project {0} does not exist")]
    UnknownProject(u64),
    #[error("group {0} cannot be its own ancestor")]
    Cycle(u64),
    #[error("`{child}` cannot be more visible than its parent `{parent}`")]
    MoreVisibleThanParent { child: String, parent: String },
    #[error("the full path `{0}` is taken")]
    PathTaken(String),
    #[error("group {0} still has subgroups or projects")]
    NotEmpty(u64),
    #[error("user {0} still has personal projects")]
    UserHasProjects(u64),
    #[error("group {0} is not a top-level group")]
    NotTopLevel(u64),
}

#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub kind: NsKind,
    pub children: Vec<NsIdx>,
    pub path: String,
    pub full_path: String,
    pub visibility: Visibility,
    pub plan: Plan,
    /// Per catalog feature; empty means every feature is `enabled`.
    pub features: Vec<FeatureAccess>,
    pub alive: bool,
}

/// What a namespace index the snapshot never gave out reads as: removed, private, with
/// no parent, so every decision on it denies.
static GONE: Namespace = Namespace {
    kind: NsKind::Group(GroupId(0)),
    children: Vec::new(),
    path: String::new(),
    full_path: String::new(),
    visibility: Visibility::Private,
    plan: Plan::Free,
    features: Vec::new(),
    alive: false,
};

impl Namespace {
    pub fn feature(&self, id: FeatureId) -> FeatureAccess {
        self.features.get(id.index()).copied().unwrap_or_default()
    }
}

/// Namespaces by full path. GitLab's paths are unique and found whatever their case
/// (`ACME/App` is `acme/app`), so the index is keyed by the path in lower case.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathIndex(FxHashMap<String, NsIdx>);

impl PathIndex {
    fn key(path: &str) -> std::borrow::Cow<'_, str> {
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(path.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(path)
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<NsIdx> {
        self.0.get(Self::key(path).as_ref()).copied()
    }

    fn insert(&mut self, path: &str, idx: NsIdx) {
        self.0.insert(Self::key(path).into_owned(), idx);
    }

    fn remove(&mut self, path: &str) {
        self.0.remove(Self::key(path).as_ref());
    }
}

/// A user with what a decision needs of them in one place: one lookup gives the
/// `blocked` and `admin` flags, the personal namespace and every direct membership.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub user: User,
    pub personal: NsIdx,
    /// Direct memberships, sorted by namespace (a user has tens, not thousands).
    memberships: Vec<(NsIdx, AccessLevel)>,
}

impl Account {
    fn direct(&self, idx: NsIdx) -> Option<AccessLevel> {
        self.memberships
            .binary_search_by_key(&idx, |&(ns, _)| ns)
            .ok()
            .and_then(|at| self.memberships.get(at))
            .map(|&(_, level)| level)
    }

    fn set(&mut self, idx: NsIdx, level: Option<AccessLevel>) {
        match (
            self.memberships.binary_search_by_key(&idx, |&(ns, _)| ns),
            level,
        ) {
            (Ok(at), Some(level)) => {
                if let Some(entry) = self.memberships.get_mut(at) {
                    entry.1 = level;
                }
            }
            (Ok(at), None) => {
                self.memberships.remove(at);
            }
            (Err(at), Some(level)) => self.memberships.insert(at, (idx, level)),
            (Err(_), None) => {}
        }
    }
}

/// Everything `decide` reads. Cheap to read concurrently; mutate through `&mut`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) users: FxHashMap<UserId, Account>,
    pub(crate) namespaces: Vec<Namespace>,
    links: Vec<Link>,
    pub(crate) groups: FxHashMap<GroupId, NsIdx>,
    pub(crate) projects: FxHashMap<ProjectId, NsIdx>,
    pub(crate) paths: PathIndex,
    /// By top-level group; few groups have one, so the map stays in cache.
    pub(crate) token_policies: FxHashMap<NsIdx, TokenPolicy>,
    pub(crate) tokens: FxHashMap<TokenId, Token>,
    pub(crate) job_token_scopes: FxHashMap<NsIdx, JobTokenScope>,
}

impl Snapshot {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            users: FxHashMap::default(),
            namespaces: Vec::new(),
            links: Vec::new(),
            groups: FxHashMap::default(),
            projects: FxHashMap::default(),
            paths: PathIndex::default(),
            token_policies: FxHashMap::default(),
            tokens: FxHashMap::default(),
            job_token_scopes: FxHashMap::default(),
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id).map(|a| &a.user)
    }

    pub(crate) fn account(&self, id: UserId) -> Option<&Account> {
        self.users.get(&id)
    }

    pub fn token(&self, id: TokenId) -> Option<&Token> {
        self.tokens.get(&id)
    }

    /// A namespace by its index; an index this snapshot never gave out reads as a
    /// removed namespace, so a foreign id denies instead of panicking.
    pub(crate) fn ns(&self, idx: NsIdx) -> &Namespace {
        self.namespaces.get(idx.at()).unwrap_or(&GONE)
    }

    fn ns_mut(&mut self, idx: NsIdx) -> Option<&mut Namespace> {
        self.namespaces.get_mut(idx.at())
    }

    pub(crate) fn parent(&self, idx: NsIdx) -> Option<NsIdx> {
        self.links
            .get(idx.at())
            .filter(|link| link.parent != NsIdx::NONE)
            .map(|link| NsIdx(link.parent))
    }

    /// The namespace's top-level ancestor (itself when it has no parent), without a walk.
    pub(crate) fn top_level(&self, idx: NsIdx) -> &Namespace {
        self.ns(self.top_index(idx))
    }

    /// The token policy of the namespace's top-level group.
    pub(crate) fn token_policy(&self, idx: NsIdx) -> Option<&TokenPolicy> {
        self.token_policies.get(&self.top_index(idx))
    }

    /// The namespace and its ancestors' indexes, nearest first.
    fn up(&self, idx: NsIdx) -> impl Iterator<Item = NsIdx> + '_ {
        std::iter::successors(Some(idx), |&i| self.parent(i))
    }

    /// The namespace and its ancestors, nearest first.
    pub(crate) fn ancestry(&self, idx: NsIdx) -> impl Iterator<Item = (NsIdx, &Namespace)> {
        self.up(idx).map(|i| (i, self.ns(i)))
    }

    /// The id of a namespace: its project's, group's or (personal namespaces) user's.
    pub fn namespace_id(&self, idx: NsIdx) -> u64 {
        match self.ns(idx).kind {
            NsKind::Project(id) => id.0,
            NsKind::Group(id) => id.0,
            NsKind::User(id) => id.0,
        }
    }

    /// The full path (`acme/web/app`) of a group or project.
    pub fn group_path(&self, id: GroupId) -> Option<&str> {
        self.groups.get(&id).map(|&i| self.ns(i).full_path.as_str())
    }

    pub fn project_path(&self, id: ProjectId) -> Option<&str> {
        self.projects
            .get(&id)
            .map(|&i| self.ns(i).full_path.as_str())
    }

    /// The direct and inherited access level of `user` on a namespace (owner of their
    /// own personal namespace).
    pub(crate) fn member_level(&self, user: UserId, idx: NsIdx) -> AccessLevel {
        self.account(user)
            .map_or(AccessLevel::NONE, |account| self.level_of(account, idx))
    }

    /// `member_level` for a user already looked up: one walk up the tree, stopping at
    /// owner, which nothing above can raise.
    pub(crate) fn level_of(&self, account: &Account, idx: NsIdx) -> AccessLevel {
        let mut best = AccessLevel::NONE;
        for i in self.up(idx) {
            if i == account.personal {
                return AccessLevel::OWNER;
            }
            if let Some(level) = account.direct(i) {
                best = best.max(level);
                if best == AccessLevel::OWNER {
                    break;
                }
            }
        }
        best
    }

    /// Whether the user may know the namespace exists: it is public or internal, the user
    /// is a member of it or of a group above it, or an admin. Where not, GitLab answers
    /// 404 rather than 403, so that a denial says nothing about what exists.
    pub fn visible_to(&self, user: UserId, idx: NsIdx) -> bool {
        self.ns(idx).visibility != Visibility::Private
            || self.user(user).is_some_and(|u| u.admin)
            || self.member_level(user, idx) > AccessLevel::NONE
    }

    /// The user's effective level on a project, or `None` when the project does not exist.
    pub fn project_member_level(&self, user: UserId, id: ProjectId) -> Option<AccessLevel> {
        let idx = *self.projects.get(&id)?;
        Some(self.member_level(user, idx))
    }

    /// The user's effective level on a group, or `None` when the group does not exist.
    pub fn group_member_level(&self, user: UserId, id: GroupId) -> Option<AccessLevel> {
        let idx = *self.groups.get(&id)?;
        Some(self.member_level(user, idx))
    }

    // ---- users ----

    pub fn upsert_user(&mut self, id: UserId, user: User) -> Result<(), SnapshotError> {
        match self.users.get(&id).map(|a| a.personal) {
            Some(idx) => {
                if self.ns(idx).path != user.username {
                    self.rename(idx, user.username.clone())?;
                }
                if let Some(account) = self.users.get_mut(&id) {
                    account.user = user;
                }
            }
            None => {
                self.claim_path(&user.username, None)?;
                let idx = self.push(
                    Namespace {
                        kind: NsKind::User(id),
                        children: Vec::new(),
                        path: user.username.clone(),
                        full_path: user.username.clone(),
                        visibility: Visibility::Public,
                        plan: Plan::Free,
                        features: Vec::new(),
                        alive: true,
                    },
                    None,
                );
                self.paths.insert(&user.username, idx);
                let account = Account {
                    user,
                    personal: idx,
                    memberships: Vec::new(),
                };
                self.users.insert(id, account);
            }
        }
        Ok(())
    }

    /// Removes a user without personal projects, with their memberships.
    pub fn remove_user(&mut self, id: UserId) -> Result<(), SnapshotError> {
        let idx = self
            .users
            .get(&id)
            .ok_or(SnapshotError::UnknownUser(id.0))?
            .personal;
        if !self.ns(idx).children.is_empty() {
            return Err(SnapshotError::UserHasProjects(id.0));
        }
        self.users.remove(&id);
        self.bury(idx);
        Ok(())
    }

    // ---- groups ----

    pub fn upsert_group(&mut self, id: GroupId, spec: GroupSpec) -> Result<(), SnapshotError> {
        let parent = match spec.parent {
            Some(p) => Some(
                *self
                    .groups
                    .get(&p)
                    .ok_or(SnapshotError::UnknownGroup(p.0))?,
            ),
            None => None,
        };
        let existing = self.groups.get(&id).copied();
        if let (Some(me), Some(parent)) = (existing, parent) {
            if self.ancestry(parent).any(|(i, _)| i == me) {
                return Err(SnapshotError::Cycle(id.0));
            }
        }
        self.check_visibility(&spec.path, spec.visibility, parent)?;
        if let Some(me) = existing {
            // Children may not end up more visible than their new parent.
            for &child in &self.ns(me).children {
                let c = self.ns(child);
                if c.visibility > spec.visibility {
                    return Err(SnapshotError::MoreVisibleThanParent {
                        child: c.full_path.clone(),
                        parent: spec.path.clone(),
                    });
                }
            }
        }
        let idx = self.place(existing, NsKind::Group(id), parent, &spec.path)?;
        if let Some(ns) = self.ns_mut(idx) {
            ns.visibility = spec.visibility;
            ns.plan = spec.plan;
        }
        self.groups.insert(id, idx);
        Ok(())
    }

    pub fn remove_group(&mut self, id: GroupId) -> Result<(), SnapshotError> {
        let idx = *self
            .groups
            .get(&id)
            .ok_or(SnapshotError::UnknownGroup(id.0))?;
        if !self.ns(idx).children.is_empty() {
            return Err(SnapshotError::NotEmpty(id.0));
        }
        self.groups.remove(&id);
        self.token_policies.remove(&idx);
        for scope in self.job_token_scopes.values_mut() {
            scope.groups.remove(&id);
        }
        self.bury(idx);
        Ok(())
    }

    pub fn set_token_policy(
        &mut self,
        id: GroupId,
        policy: Option<TokenPolicy>,
    ) -> Result<(), SnapshotError> {
        let idx = *self
            .groups
            .get(&id)
            .ok_or(SnapshotError::UnknownGroup(id.0))?;
        if self.parent(idx).is_some() {
            return Err(SnapshotError::NotTopLevel(id.0));
        }
        match policy {
            Some(policy) => self.token_policies.insert(idx, policy),
            None => self.token_policies.remove(&idx),
        };
        Ok(())
    }

    // ---- projects ----

    pub fn upsert_project(
        &mut self,
        id: ProjectId,
        spec: ProjectSpec,
    ) -> Result<(), SnapshotError> {
        let parent = match spec.namespace {
            Owner::Group(g) => *self
                .groups
                .get(&g)
                .ok_or(SnapshotError::UnknownGroup(g.0))?,
            Owner::User(u) => {
                self.users
                    .get(&u)
                    .ok_or(SnapshotError::UnknownUser(u.0))?
                    .personal
            }
        };
        self.check_visibility(&spec.path, spec.visibility, Some(parent))?;
        let existing = self.projects.get(&id).copied();
        let idx = self.place(existing, NsKind::Project(id), Some(parent), &spec.path)?;
        let mut features = vec![FeatureAccess::Enabled; self.catalog.features.len()];
        for (feature, access) in &spec.features {
            if let Some(slot) = features.get_mut(feature.index()) {
                *slot = *access;
            }
        }
        if features.iter().all(|&f| f == FeatureAccess::Enabled) {
            // Most projects: nothing to read on the decision path.
            features = Vec::new();
        }
        if let Some(ns) = self.ns_mut(idx) {
            ns.visibility = spec.visibility;
            ns.features = features;
        }
        self.projects.insert(id, idx);
        Ok(())
    }

    pub fn remove_project(&mut self, id: ProjectId) -> Result<(), SnapshotError> {
        let idx = self
            .projects
            .remove(&id)
            .ok_or(SnapshotError::UnknownProject(id.0))?;
        self.job_token_scopes.remove(&idx);
        for scope in self.job_token_scopes.values_mut() {
            scope.projects.remove(&id);
        }
        self.bury(idx);
        Ok(())
    }

    /// A project's job token scope; `None` when it has the defaults.
    pub fn job_token_scope(&self, project: ProjectId) -> Option<&JobTokenScope> {
        self.job_token_scopes.get(self.projects.get(&project)?)
    }

    pub fn set_job_token_scope(
        &mut self,
        project: ProjectId,
        scope: JobTokenScope,
    ) -> Result<(), SnapshotError> {
        let idx = *self
            .projects
            .get(&project)
            .ok_or(SnapshotError::UnknownProject(project.0))?;
        self.job_token_scopes.insert(idx, scope);
        Ok(())
    }

    // ---- memberships ----

    pub fn set_group_member(
        &mut self,
        group: GroupId,
        user: UserId,
        level: Option<AccessLevel>,
    ) -> Result<(), SnapshotError> {
        let idx = *self
            .groups
            .get(&group)
            .ok_or(SnapshotError::UnknownGroup(group.0))?;
        self.set_member(idx, user, level)
    }

    pub fn set_project_member(
        &mut self,
        project: ProjectId,
        user: UserId,
        level: Option<AccessLevel>,
    ) -> Result<(), SnapshotError> {
        let idx = *self
            .projects
            .get(&project)
            .ok_or(SnapshotError::UnknownProject(project.0))?;
        self.set_member(idx, user, level)
    }

    fn set_member(
        &mut self,
        idx: NsIdx,
        user: UserId,
        level: Option<AccessLevel>,
    ) -> Result<(), SnapshotError> {
        let account = self
            .users
            .get_mut(&user)
            .ok_or(SnapshotError::UnknownUser(user.0))?;
        account.set(idx, level);
        Ok(())
    }

    // ---- tokens ----

    pub fn insert_token(&mut self, token: Token) {
        self.tokens.insert(token.id, token);
    }

    pub fn remove_token(&mut self, id: TokenId) -> Option<Token> {
        self.tokens.remove(&id)
    }

    pub fn revoke_token(&mut self, id: TokenId) -> bool {
        self.tokens.get_mut(&id).map(|t| t.revoked = true).is_some()
    }

    // ---- internals ----

    fn push(&mut self, ns: Namespace, parent: Option<NsIdx>) -> NsIdx {
        let idx = NsIdx(u32::try_from(self.namespaces.len()).unwrap_or(NsIdx::NONE));
        self.namespaces.push(ns);
        self.links.push(Link {
            parent: NsIdx::NONE,
            top: idx.0,
        });
        self.set_parent(idx, parent);
        idx
    }

    /// Gives a namespace its parent, and its subtree their top-level group.
    fn set_parent(&mut self, idx: NsIdx, parent: Option<NsIdx>) {
        let top = parent.map_or(idx, |p| self.top_index(p));
        if let Some(link) = self.links.get_mut(idx.at()) {
            link.parent = parent.map_or(NsIdx::NONE, |p| p.0);
        }
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            if let Some(link) = self.links.get_mut(i.at()) {
                link.top = top.0;
            }
            stack.extend(self.ns(i).children.iter().copied());
        }
    }

    fn top_index(&self, idx: NsIdx) -> NsIdx {
        self.links.get(idx.at()).map_or(idx, |link| NsIdx(link.top))
    }

    fn check_visibility(
        &self,
        path: &str,
        visibility: Visibility,
        parent: Option<NsIdx>,
    ) -> Result<(), SnapshotError> {
        match parent.map(|p| self.ns(p)) {
            Some(p) if visibility > p.visibility => Err(SnapshotError::MoreVisibleThanParent {
                child: path.to_owned(),
                parent: p.full_path.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn full_path_under(&self, parent: Option<NsIdx>, path: &str) -> String {
        match parent {
            Some(p) => format!("{}/{}", self.ns(p).full_path, path),
            None => path.to_owned(),
        }
    }

    fn claim_path(&self, full_path: &str, me: Option<NsIdx>) -> Result<(), SnapshotError> {
        match self.paths.get(full_path) {
            Some(other) if Some(other) != me => Err(SnapshotError::PathTaken(full_path.to_owned())),
            _ => Ok(()),
        }
    }

    /// Creates the namespace, or moves/renames it, keeping paths and children in step.
    fn place(
        &mut self,
        existing: Option<NsIdx>,
        kind: NsKind,
        parent: Option<NsIdx>,
        path: &str,
    ) -> Result<NsIdx, SnapshotError> {
        let full_path = self.full_path_under(parent, path);
        self.claim_path(&full_path, existing)?;
        let Some(idx) = existing else {
            let idx = self.push(
                Namespace {
                    kind,
                    children: Vec::new(),
                    path: path.to_owned(),
                    full_path: full_path.clone(),
                    visibility: Visibility::Private,
                    plan: Plan::Free,
                    features: Vec::new(),
                    alive: true,
                },
                parent,
            );
            if let Some(p) = parent.and_then(|p| self.ns_mut(p)) {
                p.children.push(idx);
            }
            self.paths.insert(&full_path, idx);
            return Ok(idx);
        };
        let old_parent = self.parent(idx);
        if old_parent != parent {
            if let Some(p) = old_parent.and_then(|p| self.ns_mut(p)) {
                p.children.retain(|&c| c != idx);
            }
            if let Some(p) = parent.and_then(|p| self.ns_mut(p)) {
                p.children.push(idx);
            }
            self.set_parent(idx, parent);
        }
        if self.ns(idx).full_path != full_path {
            self.rename(idx, path.to_owned())?;
        }
        Ok(idx)
    }

    /// Gives a namespace a new last path segment and recomputes its subtree's paths.
    fn rename(&mut self, idx: NsIdx, path: String) -> Result<(), SnapshotError> {
        let full_path = self.full_path_under(self.parent(idx), &path);
        self.claim_path(&full_path, Some(idx))?;
        if let Some(ns) = self.ns_mut(idx) {
            ns.path = path;
        }
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            let new_path = self.full_path_under(self.parent(i), &self.ns(i).path);
            let old_path = self
                .ns_mut(i)
                .map(|ns| std::mem::replace(&mut ns.full_path, new_path.clone()))
                .unwrap_or_default();
            if self.paths.get(&old_path) == Some(i) {
                self.paths.remove(&old_path);
            }
            self.paths.insert(&new_path, i);
            stack.extend(self.ns(i).children.iter().copied());
        }
        Ok(())
    }

    fn bury(&mut self, idx: NsIdx) {
        let (parent, full_path) = (self.parent(idx), self.ns(idx).full_path.clone());
        if let Some(p) = parent.and_then(|p| self.ns_mut(p)) {
            p.children.retain(|&c| c != idx);
        }
        if self.paths.get(&full_path) == Some(idx) {
            self.paths.remove(&full_path);
        }
        for account in self.users.values_mut() {
            account.set(idx, None);
        }
        if let Some(ns) = self.ns_mut(idx) {
            ns.alive = false;
        }
        self.set_parent(idx, None);
    }
}
