//! The directory mirror's writes (DESIGN.md section 2) and top-level group token
//! policies: each written, announced and applied to the snapshot in one write.

use super::changes::{self, Change};
use super::{Actor, Result, Service, ServiceError, audit_event, refused, refused_at};
use crate::clock;
use crate::directory::{Batch, Group, MemberOf, Membership, Project, TokenPolicy, User};
use crate::engine::SnapshotError;

impl Service {
    // ---- directory ----

    pub async fn put_user(&self, id: u64, user: User) -> Result<()> {
        let mut write = self.write().await?;
        write.tx.put_user(id, &user).await?;
        let change = Change::User {
            id,
            user: Some(user),
        };
        write.publish(change, refused).await?;
        write.commit().await
    }

    pub async fn delete_user(&self, id: u64) -> Result<()> {
        let mut write = self.write().await?;
        if !write.tx.delete_user(id).await? {
            return Err(ServiceError::NotFound(format!("user {id} does not exist")));
        }
        write
            .publish(Change::User { id, user: None }, refused)
            .await?;
        write.commit().await
    }

    pub async fn put_group(&self, id: u64, group: Group) -> Result<()> {
        let mut write = self.write().await?;
        write.tx.put_group(id, &group).await?;
        let change = Change::Group {
            id,
            group: Some(group),
        };
        write.publish(change, refused).await?;
        write.commit().await
    }

    pub async fn delete_group(&self, id: u64) -> Result<()> {
        let mut write = self.write().await?;
        if !write.tx.delete_group(id).await? {
            return Err(ServiceError::NotFound(format!("group {id} does not exist")));
        }
        write
            .publish(Change::Group { id, group: None }, refused)
            .await?;
        write.commit().await
    }

    pub async fn put_project(&self, id: u64, project: Project) -> Result<()> {
        let mut write = self.write().await?;
        write.tx.put_project(id, &project).await?;
        let change = Change::Project {
            id,
            project: Some(project),
        };
        write.publish(change, refused).await?;
        write.commit().await
    }

    pub async fn delete_project(&self, id: u64) -> Result<()> {
        let mut write = self.write().await?;
        if !write.tx.delete_project(id).await? {
            return Err(ServiceError::NotFound(format!(
                "project {id} does not exist"
            )));
        }
        write
            .publish(Change::Project { id, project: None }, refused)
            .await?;
        write.commit().await
    }

    pub async fn put_member(&self, membership: Membership) -> Result<()> {
        let mut write = self.write().await?;
        write.tx.put_member(&membership).await?;
        write.publish(membership.change(), refused).await?;
        write.commit().await
    }

    pub async fn delete_member(&self, of: MemberOf, namespace_id: u64, user_id: u64) -> Result<()> {
        let mut write = self.write().await?;
        if !write.tx.delete_member(of, namespace_id, user_id).await? {
            return Err(ServiceError::NotFound(format!(
                "user {user_id} is not a direct member of that {}",
                match of {
                    MemberOf::Group => "group",
                    MemberOf::Project => "project",
                }
            )));
        }
        let change = Change::Member {
            of,
            namespace_id,
            user_id,
            access_level: None,
        };
        write.publish(change, refused).await?;
        write.commit().await
    }

    /// Applies a whole batch, or nothing: the items are applied in order to a copy of
    /// the snapshot, and the copy replaces it only once the store has committed.
    pub async fn apply_batch(&self, batch: Batch) -> Result<usize> {
        let count = batch.len();
        let Batch {
            users,
            groups,
            projects,
            memberships,
        } = batch;
        let mut write = self.write().await?;
        // Each change with the name of its item, for the refusals.
        let mut changes = Vec::with_capacity(count);
        for (i, (id, user)) in users.into_iter().enumerate() {
            write.tx.put_user(id, &user).await?;
            changes.push((
                format!("users[{i}]"),
                Change::User {
                    id,
                    user: Some(user),
                },
            ));
        }
        for (i, (id, group)) in groups.into_iter().enumerate() {
            write.tx.put_group(id, &group).await?;
            let change = Change::Group {
                id,
                group: Some(group),
            };
            changes.push((format!("groups[{i}]"), change));
        }
        for (i, (id, project)) in projects.into_iter().enumerate() {
            write.tx.put_project(id, &project).await?;
            let change = Change::Project {
                id,
                project: Some(project),
            };
            changes.push((format!("projects[{i}]"), change));
        }
        for (i, membership) in memberships.into_iter().enumerate() {
            write.tx.put_member(&membership).await?;
            changes.push((format!("memberships[{i}]"), membership.change()));
        }
        let mut next = self.live.read().snapshot.clone();
        for (field, change) in &changes {
            changes::apply(&mut next, &self.catalog, change).map_err(|e| refused_at(field, e))?;
            write.announce(change).await?;
        }
        write.commit().await?;
        self.live.write().snapshot = next;
        Ok(count)
    }

    pub async fn put_token_policy(
        &self,
        actor: &Actor,
        group_id: u64,
        policy: TokenPolicy,
    ) -> Result<()> {
        let mut write = self.write().await?;
        write.tx.put_token_policy(group_id, &policy).await?;
        let event = audit_event(
            actor,
            "group_token_policy_updated",
            "group",
            group_id,
            serde_json::json!({"enforce_fine_grained": policy.enforce_fine_grained,
                               "enforced_after": policy.enforced_after.map(clock::format_date)}),
        );
        write.tx.record_event(&event, clock::now()).await?;
        let refuse = |e| match e {
            SnapshotError::UnknownGroup(id) => {
                ServiceError::NotFound(format!("group {id} does not exist"))
            }
            other => refused(other),
        };
        write
            .publish(Change::TokenPolicy { group_id, policy }, refuse)
            .await?;
        write.commit().await
    }
}
