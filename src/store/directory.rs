//! The directory mirror at rest: users, groups, projects, memberships and top-level group
//! token policies, kept exactly as pushed so a restart rebuilds the same snapshot.

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::{Result, Store, StoreError, Tx, db_id, from_db_id, from_json, on_pool, on_tx, to_json};
use crate::clock;
use crate::directory::{
    DisplayName, Dump, Group, Invalid, MemberOf, Membership, PathSegment, Project, ProjectOwner,
    TokenPolicy, User,
};
use crate::domain::{AccessLevel, FeatureAccess, Plan, Visibility};
use crate::jobs::SourceKind;

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
    pub async fn load_directory(&self) -> Result<Dump> {
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
        let mut dump = Dump::default();
        for row in users {
            dump.users.push((
                from_db_id(row.id)?,
                User {
                    username: kept(PathSegment::parse(&row.username, "username"))?,
                    blocked: row.blocked,
                    admin: row.admin,
                },
            ));
        }
        let mut groups = groups
            .into_iter()
            .map(|row| {
                let group = Group {
                    parent_id: row.parent_id.map(from_db_id).transpose()?,
                    path: kept(PathSegment::parse(&row.path, "path"))?,
                    name: kept(DisplayName::parse(&row.name))?,
                    visibility: parse_name::<Visibility>(&row.visibility)?,
                    plan: row
                        .plan
                        .as_deref()
                        .map(parse_name::<Plan>)
                        .transpose()?
                        .unwrap_or_default(),
                };
                Ok((from_db_id(row.id)?, group))
            })
            .collect::<Result<Vec<_>>>()?;
        dump.groups = parents_first(&mut groups)?;
        for row in projects {
            let id = from_db_id(row.namespace_id)?;
            let namespace = match row.namespace_kind.as_str() {
                "group" => ProjectOwner::Group(id),
                "user" => ProjectOwner::User(id),
                other => return Err(StoreError::Corrupt(format!("namespace kind {other}"))),
            };
            dump.projects.push((
                from_db_id(row.id)?,
                Project::restore(
                    namespace,
                    kept(PathSegment::parse(&row.path, "path"))?,
                    kept(DisplayName::parse(&row.name))?,
                    parse_name::<Visibility>(&row.visibility)?,
                    from_json::<BTreeMap<String, FeatureAccess>>(&row.features)?,
                ),
            ));
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
            let enforced_after = row
                .enforced_after
                .as_deref()
                .map(|text| {
                    clock::parse_date(text)
                        .ok_or_else(|| StoreError::Corrupt(format!("policy date {text}")))
                })
                .transpose()?;
            dump.token_policies.push((
                from_db_id(row.group_id)?,
                TokenPolicy {
                    enforce_fine_grained: row.enforce_fine_grained,
                    enforced_after,
                },
            ));
        }
        Ok(dump)
    }
}

/// A value the store holds that no longer parses: the store was written by something
/// other than patrol.
fn kept<T>(parsed: std::result::Result<T, Invalid>) -> Result<T> {
    parsed.map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Orders groups so that every parent comes before its children.
fn parents_first(groups: &mut Vec<(u64, Group)>) -> Result<Vec<(u64, Group)>> {
    let mut placed = std::collections::HashSet::new();
    let mut ordered = Vec::with_capacity(groups.len());
    while !groups.is_empty() {
        let before = groups.len();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(groups)
            .into_iter()
            .partition(|(_, g)| g.parent_id.is_none_or(|p| placed.contains(&p)));
        for (id, group) in ready {
            placed.insert(id);
            ordered.push((id, group));
        }
        *groups = waiting;
        if groups.len() == before {
            return Err(StoreError::Corrupt(format!(
                "groups {:?} have missing or cyclic parents",
                groups.iter().map(|(id, _)| *id).collect::<Vec<_>>()
            )));
        }
    }
    Ok(ordered)
}

impl Tx {
    pub async fn put_user(&mut self, id: u64, user: &User) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO users (id, username, blocked, admin) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE
                 SET username = excluded.username, blocked = excluded.blocked, admin = excluded.admin",
            )
            .bind(db_id(id))
            .bind(user.username.as_str())
            .bind(user.blocked)
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

    pub async fn put_group(&mut self, id: u64, group: &Group) -> Result<()> {
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
            .bind(group.path.as_str())
            .bind(group.name.as_str())
            .bind(name_of(&group.visibility))
            .bind(name_of(&group.plan))
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

    pub async fn put_project(&mut self, id: u64, project: &Project) -> Result<()> {
        let (kind, namespace_id) = match project.namespace {
            ProjectOwner::Group(id) => ("group", id),
            ProjectOwner::User(id) => ("user", id),
        };
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
            .bind(kind)
            .bind(db_id(namespace_id))
            .bind(project.path.as_str())
            .bind(project.name.as_str())
            .bind(name_of(&project.visibility))
            .bind(to_json(project.features()))
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

    pub async fn put_token_policy(&mut self, group_id: u64, policy: &TokenPolicy) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "INSERT INTO group_token_policies (group_id, enforce_fine_grained, enforced_after)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (group_id) DO UPDATE
                 SET enforce_fine_grained = excluded.enforce_fine_grained,
                     enforced_after = excluded.enforced_after",
            )
            .bind(db_id(group_id))
            .bind(policy.enforce_fine_grained)
            .bind(policy.enforced_after.map(clock::format_date))
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }
}
