//! The directory mirror at rest: users, groups, projects, memberships and top-level group
//! token policies, kept exactly as pushed so a restart rebuilds the same snapshot.

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::{
    Result, SourceKind, Store, StoreError, Tx, db_id, from_db_id, from_json, on_pool, on_tx,
    to_json,
};
use crate::directory::{
    GroupBody, MemberOf, Membership, NamespaceKind, NamespaceRef, ProjectBody, UserBody, UserState,
};
use crate::domain::{AccessLevel, FeatureAccess, Plan, Visibility};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: u64,
    pub body: UserBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: u64,
    pub body: GroupBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: u64,
    pub body: ProjectBody,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenPolicyRecord {
    pub group_id: u64,
    pub enforce_fine_grained: bool,
    /// `YYYY-MM-DD`.
    pub enforced_after: Option<String>,
}

/// Everything the directory holds, read in one go at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryDump {
    pub users: Vec<UserRecord>,
    /// Parents before their children.
    pub groups: Vec<GroupRecord>,
    pub projects: Vec<ProjectRecord>,
    pub memberships: Vec<Membership>,
    pub token_policies: Vec<TokenPolicyRecord>,
}

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    blocked: bool,
    admin: bool,
}

#[derive(FromRow)]
struct GroupRow {
    id: i64,
    parent_id: Option<i64>,
    path: String,
    name: String,
    visibility: String,
    plan: Option<String>,
}

#[derive(FromRow)]
struct ProjectRow {
    id: i64,
    namespace_kind: String,
    namespace_id: i64,
    path: String,
    name: String,
    visibility: String,
    features: String,
}

#[derive(FromRow)]
struct MemberRow {
    namespace_id: i64,
    user_id: i64,
    access_level: i32,
}

#[derive(FromRow)]
struct PolicyRow {
    group_id: i64,
    enforce_fine_grained: bool,
    enforced_after: Option<String>,
}

/// A snake_case enum as its serde name, and back.
fn name_of<T: serde::Serialize>(value: &T) -> String {
    to_json(value).trim_matches('"').to_owned()
}

fn parse_name<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    from_json(&format!("\"{text}\""))
}

impl Store {
    pub async fn load_directory(&self) -> Result<DirectoryDump> {
        let (users, groups, projects, group_members, project_members, policies) = on_pool!(&self.pool, pool => {
            let users: Vec<UserRow> =
                sqlx::query_as("SELECT id, username, blocked, admin FROM users ORDER BY id")
                    .fetch_all(pool)
                    .await?;
            let groups: Vec<GroupRow> = sqlx::query_as(
                "SELECT id, parent_id, path, name, visibility, plan FROM groups ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            let projects: Vec<ProjectRow> = sqlx::query_as(
                "SELECT id, namespace_kind, namespace_id, path, name, visibility, features
                 FROM projects ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            let group_members: Vec<MemberRow> = sqlx::query_as(
                "SELECT group_id AS namespace_id, user_id, access_level FROM group_members
                 ORDER BY group_id, user_id",
            )
            .fetch_all(pool)
            .await?;
            let project_members: Vec<MemberRow> = sqlx::query_as(
                "SELECT project_id AS namespace_id, user_id, access_level FROM project_members
                 ORDER BY project_id, user_id",
            )
            .fetch_all(pool)
            .await?;
            let policies: Vec<PolicyRow> = sqlx::query_as(
                "SELECT group_id, enforce_fine_grained, enforced_after
                 FROM group_token_policies ORDER BY group_id",
            )
            .fetch_all(pool)
            .await?;
            (users, groups, projects, group_members, project_members, policies)
        });
        let mut dump = DirectoryDump::default();
        for row in users {
            dump.users.push(UserRecord {
                id: from_db_id(row.id)?,
                body: UserBody {
                    username: row.username,
                    state: if row.blocked {
                        UserState::Blocked
                    } else {
                        UserState::Active
                    },
                    admin: row.admin,
                },
            });
        }
        let mut groups = groups
            .into_iter()
            .map(|row| {
                Ok(GroupRecord {
                    id: from_db_id(row.id)?,
                    body: GroupBody {
                        parent_id: row.parent_id.map(from_db_id).transpose()?,
                        path: row.path,
                        name: row.name,
                        visibility: parse_name::<Visibility>(&row.visibility)?,
                        plan: row.plan.as_deref().map(parse_name::<Plan>).transpose()?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        dump.groups = parents_first(&mut groups)?;
        for row in projects {
            let kind = parse_name::<NamespaceKind>(&row.namespace_kind)?;
            dump.projects.push(ProjectRecord {
                id: from_db_id(row.id)?,
                body: ProjectBody {
                    namespace: NamespaceRef {
                        kind,
                        id: from_db_id(row.namespace_id)?,
                    },
                    path: row.path,
                    name: row.name,
                    visibility: parse_name::<Visibility>(&row.visibility)?,
                    features: from_json::<BTreeMap<String, FeatureAccess>>(&row.features)?,
                },
            });
        }
        for (of, rows) in [
            (MemberOf::Group, group_members),
            (MemberOf::Project, project_members),
        ] {
            for row in rows {
                let level = u64::try_from(row.access_level)
                    .ok()
                    .and_then(AccessLevel::from_number)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("access level {}", row.access_level))
                    })?;
                dump.memberships.push(Membership {
                    of,
                    namespace_id: from_db_id(row.namespace_id)?,
                    user_id: from_db_id(row.user_id)?,
                    access_level: level,
                });
            }
        }
        for row in policies {
            dump.token_policies.push(TokenPolicyRecord {
                group_id: from_db_id(row.group_id)?,
                enforce_fine_grained: row.enforce_fine_grained,
                enforced_after: row.enforced_after,
            });
        }
        Ok(dump)
    }
}

/// Orders groups so that every parent comes before its children.
fn parents_first(groups: &mut Vec<GroupRecord>) -> Result<Vec<GroupRecord>> {
    let mut placed = std::collections::HashSet::new();
    let mut ordered = Vec::with_capacity(groups.len());
    while !groups.is_empty() {
        let before = groups.len();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(groups)
            .into_iter()
            .partition(|g| g.body.parent_id.is_none_or(|p| placed.contains(&p)));
        for group in ready {
            placed.insert(group.id);
            ordered.push(group);
        }
        *groups = waiting;
        if groups.len() == before {
            return Err(StoreError::Corrupt(format!(
                "groups {:?} have missing or cyclic parents",
                groups.iter().map(|g| g.id).collect::<Vec<_>>()
            )));
        }
    }
    Ok(ordered)
}

impl Tx {
    pub async fn put_user(&mut self, id: u64, user: &UserBody) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO users (id, username, blocked, admin) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE
                 SET username = excluded.username, blocked = excluded.blocked, admin = excluded.admin",
            )
            .bind(db_id(id))
            .bind(&user.username)
            .bind(user.state == UserState::Blocked)
            .bind(user.admin)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// Deletes a user and their memberships. Returns whether the user existed.
    pub async fn delete_user(&mut self, id: u64) -> Result<bool> {
        let deleted = on_tx!(&mut self.inner, tx => {
            sqlx::query("DELETE FROM group_members WHERE user_id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM project_members WHERE user_id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    pub async fn put_group(&mut self, id: u64, group: &GroupBody) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO groups (id, parent_id, path, name, visibility, plan)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE
                 SET parent_id = excluded.parent_id, path = excluded.path, name = excluded.name,
                     visibility = excluded.visibility, plan = excluded.plan",
            )
            .bind(db_id(id))
            .bind(group.parent_id.map(db_id))
            .bind(&group.path)
            .bind(&group.name)
            .bind(name_of(&group.visibility))
            .bind(group.plan.as_ref().map(name_of))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// Deletes a group, its memberships, its token policy and the job token allowlist
    /// entries naming it.
    pub async fn delete_group(&mut self, id: u64) -> Result<bool> {
        self.forget_job_token_links(SourceKind::Group, id).await?;
        let deleted = on_tx!(&mut self.inner, tx => {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM group_token_policies WHERE group_id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM groups WHERE id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    pub async fn put_project(&mut self, id: u64, project: &ProjectBody) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO projects (id, namespace_kind, namespace_id, path, name, visibility, features)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE
                 SET namespace_kind = excluded.namespace_kind, namespace_id = excluded.namespace_id,
                     path = excluded.path, name = excluded.name, visibility = excluded.visibility,
                     features = excluded.features",
            )
            .bind(db_id(id))
            .bind(name_of(&project.namespace.kind))
            .bind(db_id(project.namespace.id))
            .bind(&project.path)
            .bind(&project.name)
            .bind(name_of(&project.visibility))
            .bind(to_json(&project.features))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }

    /// Deletes a project, its memberships, its job token scope and allowlist, and the
    /// allowlist entries naming it.
    pub async fn delete_project(&mut self, id: u64) -> Result<bool> {
        self.forget_job_token_links(SourceKind::Project, id).await?;
        let deleted = on_tx!(&mut self.inner, tx => {
            sqlx::query("DELETE FROM project_members WHERE project_id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM projects WHERE id = $1")
                .bind(db_id(id))
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    pub async fn put_member(&mut self, m: &Membership) -> Result<()> {
        let sql = match m.of {
            MemberOf::Group => {
                "INSERT INTO group_members (group_id, user_id, access_level) VALUES ($1, $2, $3)
                 ON CONFLICT (group_id, user_id) DO UPDATE SET access_level = excluded.access_level"
            }
            MemberOf::Project => {
                "INSERT INTO project_members (project_id, user_id, access_level) VALUES ($1, $2, $3)
                 ON CONFLICT (project_id, user_id) DO UPDATE SET access_level = excluded.access_level"
            }
        };
        on_tx!(&mut self.inner, tx => {
            sqlx::query(sql)
                .bind(db_id(m.namespace_id))
                .bind(db_id(m.user_id))
                .bind(i32::from(m.access_level.number()))
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    pub async fn delete_member(
        &mut self,
        of: MemberOf,
        namespace_id: u64,
        user_id: u64,
    ) -> Result<bool> {
        let sql = match of {
            MemberOf::Group => "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
            MemberOf::Project => {
                "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2"
            }
        };
        let deleted = on_tx!(&mut self.inner, tx => {
            sqlx::query(sql)
                .bind(db_id(namespace_id))
                .bind(db_id(user_id))
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    pub async fn put_token_policy(&mut self, policy: &TokenPolicyRecord) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO group_token_policies (group_id, enforce_fine_grained, enforced_after)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (group_id) DO UPDATE
                 SET enforce_fine_grained = excluded.enforce_fine_grained,
                     enforced_after = excluded.enforced_after",
            )
            .bind(db_id(policy.group_id))
            .bind(policy.enforce_fine_grained)
            .bind(&policy.enforced_after)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }
}
