//! CI/CD job tokens and project job token scopes (DESIGN.md section 8).

use serde_json::json;

use super::changes::Change;
use super::{Actor, Result, Service, ServiceError};
use crate::audit::NewAuditEvent;
use crate::clock;
use crate::engine::{ProjectId, Snapshot};
use crate::jobs::{AllowlistBody, AllowlistView, JobView, NewJob, ScopePatch};
use crate::jobs::{AllowlistRecord, JobTokenScopeRecord, SourceKind};
use crate::secret::{self, Prefix};
use crate::tokens::{JobRef, NewTokenRecord, TokenKind};

impl Service {
    /// Mints the token of a CI/CD job; the answer carries the plaintext, once.
    pub async fn create_job(&self, job: NewJob) -> Result<JobView> {
        let now = clock::now();
        let valid = job.validate(&self.live.read().snapshot, &self.settings(), now)?;
        let minted = secret::generate(&self.prefixes, Prefix::Job)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret_hash = Self::digest(&minted.secret)?;
        let job_ref = JobRef {
            project_id: valid.project_id,
            job_id: valid.job_id,
            expires_unix: valid.expires_unix,
        };
        let row = NewTokenRecord {
            user_id: valid.user_id,
            kind: TokenKind::Job,
            name: format!("job {}", valid.job_id),
            description: String::new(),
            lookup_id: minted.lookup_id.clone(),
            secret_hash,
            scopes: Vec::new(),
            granular_scopes: Vec::new(),
            allowed_ips: Vec::new(),
            created_at: now,
            // Lists work by day: a job token lists as active through the day it expires.
            expires_at: Some(clock::date_at_or_after(valid.expires_unix)),
            job: Some(job_ref),
            family_id: None,
        };
        let write = self.write().await?;
        if self.store.token_by_job(valid.job_id).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "job {} already has a token",
                valid.job_id
            )));
        }
        let record = self.insert_new_token(write, row, &minted.secret).await?;
        Ok(JobView {
            id: record.id,
            job_id: valid.job_id,
            project_id: valid.project_id,
            user_id: valid.user_id,
            expires_at: clock::rfc3339(valid.expires_unix),
            token: minted.plaintext,
        })
    }

    /// The job ended: its token is dead from the moment this returns.
    pub async fn finish_job(&self, job_id: u64) -> Result<()> {
        let mut write = self.write().await?;
        let Some(record) = self.store.token_by_job(job_id).await? else {
            return Err(ServiceError::NotFound(format!("job {job_id} has no token")));
        };
        if !write.tx.revoke_token(record.id, clock::now()).await? {
            return Err(ServiceError::Conflict(format!(
                "job {job_id} has already finished"
            )));
        }
        write
            .announce(&Change::TokenRevoked { id: record.id })
            .await?;
        write.commit().await?;
        self.forget_revoked(&[record.id]);
        Ok(())
    }

    /// A project's inbound job token settings.
    pub fn job_token_scope(&self, project_id: u64) -> Result<JobTokenScopeRecord> {
        let live = self.live.read();
        require_project(&live.snapshot, project_id)?;
        Ok(match live.snapshot.job_token_scope(ProjectId(project_id)) {
            Some(scope) => JobTokenScopeRecord {
                project_id,
                inbound_enabled: scope.inbound_enabled,
                fine_grained_enabled: scope.fine_grained_enabled,
            },
            None => JobTokenScopeRecord::default_for(project_id),
        })
    }

    pub async fn update_job_token_scope(
        &self,
        actor: &Actor,
        project_id: u64,
        patch: ScopePatch,
    ) -> Result<JobTokenScopeRecord> {
        let mut write = self.write().await?;
        let before = self.job_token_scope(project_id)?;
        let after = patch.apply(before);
        write.tx.put_job_token_scope(&after).await?;
        let event = audit(
            actor,
            "job_token_scope_updated",
            project_id,
            json!({"before": settings_json(before), "after": settings_json(after)}),
        );
        write.tx.record_event(&event, clock::now()).await?;
        write
            .publish(Change::JobTokenScope { scope: after }, super::refused)
            .await?;
        write.commit().await?;
        Ok(after)
    }

    pub async fn allowlist(&self, project_id: u64) -> Result<Vec<AllowlistView>> {
        require_project(&self.live.read().snapshot, project_id)?;
        let entries = self.store.allowlist(Some(project_id)).await?;
        let live = self.live.read();
        Ok(entries
            .iter()
            .map(|e| AllowlistView::of(e, &live.snapshot))
            .collect())
    }

    /// Adds a source to a project's allowlist, or replaces its policies. Returns the
    /// entry and whether it is new.
    pub async fn put_allowlist_entry(
        &self,
        actor: &Actor,
        project_id: u64,
        body: AllowlistBody,
    ) -> Result<(AllowlistView, bool)> {
        let now = clock::now();
        let mut write = self.write().await?;
        let mut entry = {
            let live = self.live.read();
            require_project(&live.snapshot, project_id)?;
            body.validate(project_id, &self.catalog, &live.snapshot, now)?
        };
        let existing = write
            .tx
            .allowlist_entry(project_id, entry.source, entry.source_id)
            .await?;
        let source = json!({"source_type": entry.source.as_str(), "source_id": entry.source_id});
        let event = match &existing {
            None => audit(
                actor,
                "job_token_allowlist_added",
                project_id,
                merge(source, policies_json(&entry)),
            ),
            Some(old) => {
                entry.created_at = old.created_at;
                audit(
                    actor,
                    "job_token_policies_updated",
                    project_id,
                    merge(
                        source,
                        json!({"before": policies_json(old), "after": policies_json(&entry)}),
                    ),
                )
            }
        };
        write.tx.put_allowlist_entry(&entry).await?;
        write.tx.record_event(&event, now).await?;
        let change = Change::Allowlist {
            project_id,
            source: entry.source,
            source_id: entry.source_id,
            entry: Some(entry.clone()),
        };
        write.publish(change, super::refused).await?;
        write.commit().await?;
        let view = AllowlistView::of(&entry, &self.live.read().snapshot);
        Ok((view, existing.is_none()))
    }

    pub async fn delete_allowlist_entry(
        &self,
        actor: &Actor,
        project_id: u64,
        source: SourceKind,
        source_id: u64,
    ) -> Result<()> {
        let mut write = self.write().await?;
        require_project(&self.live.read().snapshot, project_id)?;
        if !write
            .tx
            .delete_allowlist_entry(project_id, source, source_id)
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "the allowlist of project {project_id} has no {} {source_id}",
                source.as_str()
            )));
        }
        let event = audit(
            actor,
            "job_token_allowlist_removed",
            project_id,
            json!({"source_type": source.as_str(), "source_id": source_id}),
        );
        write.tx.record_event(&event, clock::now()).await?;
        let change = Change::Allowlist {
            project_id,
            source,
            source_id,
            entry: None,
        };
        write.publish(change, super::refused).await?;
        write.commit().await
    }
}

fn require_project(snapshot: &Snapshot, project_id: u64) -> Result<()> {
    match snapshot.project_path(ProjectId(project_id)) {
        Some(_) => Ok(()),
        None => Err(ServiceError::NotFound(format!(
            "project {project_id} does not exist"
        ))),
    }
}

fn audit(
    actor: &Actor,
    action: &'static str,
    project_id: u64,
    details: serde_json::Value,
) -> NewAuditEvent {
    super::audit_event(actor, action, "project", project_id, details)
}

fn settings_json(scope: JobTokenScopeRecord) -> serde_json::Value {
    json!({"inbound_enabled": scope.inbound_enabled, "fine_grained_enabled": scope.fine_grained_enabled})
}

fn policies_json(entry: &AllowlistRecord) -> serde_json::Value {
    json!({"policies": entry.policies, "default_permissions": entry.default_permissions})
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}
