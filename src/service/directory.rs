//! The directory mirror's writes (DESIGN.md section 2) and top-level group token
//! policies: each written, announced and applied to the snapshot in one write.

use super::changes::{self, Change};
use super::{Actor, Result, Service, ServiceError, audit_event, refused, refused_at};
use crate::clock;
use crate::directory::{Batch, GroupBody, Invalid, MemberOf, Membership, ProjectBody, UserBody};
use crate::engine::SnapshotError;
use crate::store::TokenPolicyRecord;

impl Service {
    // ---- directory ----

    pub async fn put_user(&self, id: u64, body: UserBody) -> Result<()> {
        body.to_user()?;
        let mut write = self.write().await?;
        write.tx.put_user(id, &body).await?;
        let change = Change::User {
            id,
            body: Some(body),
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
            .publish(Change::User { id, body: None }, refused)
            .await?;
        write.commit().await
    }

    pub async fn put_group(&self, id: u64, body: GroupBody) -> Result<()> {
        body.to_spec()?;
        let mut write = self.write().await?;
        write.tx.put_group(id, &body).await?;
        let change = Change::Group {
            id,
            body: Some(body),
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
            .publish(Change::Group { id, body: None }, refused)
            .await?;
        write.commit().await
    }

    pub async fn put_project(&self, id: u64, body: ProjectBody) -> Result<()> {
        body.to_spec(&self.catalog)?;
        let mut write = self.write().await?;
        write.tx.put_project(id, &body).await?;
        let change = Change::Project {
            id,
            body: Some(body),
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
            .publish(Change::Project { id, body: None }, refused)
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
        let mut next = self.live.read().snapshot.clone();
        // Applied in order to the copy, each refusal naming its item.
        let mut changes = Vec::with_capacity(count);
        for (i, item) in users.into_iter().enumerate() {
            let (id, body) = item.split();
            body.to_user()
                .map_err(|e| e.within(&format!("users[{i}]")))?;
            write.tx.put_user(id, &body).await?;
            changes.push((
                format!("users[{i}]"),
                Change::User {
                    id,
                    body: Some(body),
                },
            ));
        }
        for (i, item) in groups.into_iter().enumerate() {
            let (id, body) = item.split();
            body.to_spec()
                .map_err(|e| e.within(&format!("groups[{i}]")))?;
            write.tx.put_group(id, &body).await?;
            changes.push((
                format!("groups[{i}]"),
                Change::Group {
                    id,
                    body: Some(body),
                },
            ));
        }
        for (i, item) in projects.into_iter().enumerate() {
            let field = format!("projects[{i}]");
            let (id, body) = item.split();
            body.to_spec(&self.catalog).map_err(|e| e.within(&field))?;
            write.tx.put_project(id, &body).await?;
            changes.push((
                field,
                Change::Project {
                    id,
                    body: Some(body),
                },
            ));
        }
        for (i, item) in memberships.into_iter().enumerate() {
            let field = format!("memberships[{i}]");
            let membership = item.membership().map_err(|e| e.within(&field))?;
            write.tx.put_member(&membership).await?;
            changes.push((field, membership.change()));
        }
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
        policy: TokenPolicyRecord,
    ) -> Result<()> {
        if let Some(text) = &policy.enforced_after
            && clock::parse_date(text).is_none()
        {
            return Err(Invalid::new(
                "enforced_after",
                format!("must be a date YYYY-MM-DD, not `{text}`"),
            )
            .into());
        }
        let mut write = self.write().await?;
        let policy = TokenPolicyRecord { group_id, ..policy };
        write.tx.put_token_policy(&policy).await?;
        let event = audit_event(
            actor,
            "group_token_policy_updated",
            "group",
            group_id,
            serde_json::json!({"enforce_fine_grained": policy.enforce_fine_grained,
                               "enforced_after": policy.enforced_after}),
        );
        write.tx.record_event(&event, clock::now()).await?;
        let refuse = |e| match e {
            SnapshotError::UnknownGroup(id) => {
                ServiceError::NotFound(format!("group {id} does not exist"))
            }
            other => refused(other),
        };
        write
            .publish(Change::TokenPolicy { policy }, refuse)
            .await?;
        write.commit().await
    }
}
