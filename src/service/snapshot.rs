//! The snapshot decisions are made from: built from the store, and rebuilt when a write
//! failed after the snapshot took its change or other replicas may have gone unheard.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Result, Service, ServiceError, changes, jobs};
use crate::catalog::Catalog;
use crate::clock;
use crate::directory::{MemberOf, Membership};
use crate::engine::{GroupId, ProjectId, Snapshot, SnapshotError, TokenPolicy, UserId};
use crate::store::{DirectoryDump, Store};

impl Service {
    /// Rebuilds the snapshot, the caches and the settings from the store when a commit
    /// failed after the snapshot took its change, or changes from other replicas may
    /// have been missed. Runs until it succeeds. Changes heard while the store is read
    /// are replayed onto the result.
    pub async fn heal(&self) {
        while self.stale.load(Ordering::Acquire) {
            if self.deaf.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let marks = self.stale_marks.load(Ordering::Acquire);
            let _writer = self.store.lock_writes().await;
            self.live.write().replay = Some(Vec::new());
            let loaded = async {
                let snapshot = load_snapshot(&self.catalog, &self.store).await?;
                let settings = self.store.settings().await?;
                Ok::<_, ServiceError>((snapshot, settings))
            };
            match loaded.await {
                Ok((mut snapshot, settings)) => {
                    let mut live = self.live.write();
                    for change in live.replay.take().unwrap_or_default() {
                        // Already in what was read, or made moot by a later change.
                        let _ = changes::apply(&mut snapshot, &self.catalog, &change);
                    }
                    live.snapshot = snapshot;
                    live.tokens.clear();
                    live.keys.clear();
                    live.revocations += 1;
                    *self.settings.write() = settings;
                    self.unknown.clear();
                    if self.stale_marks.load(Ordering::Acquire) == marks {
                        self.stale.store(false, Ordering::Release);
                        tracing::info!("snapshot rebuilt from the store");
                        return;
                    }
                }
                Err(e) => {
                    self.live.write().replay = None;
                    tracing::warn!(error = %e, "cannot rebuild the snapshot yet");
                }
            }
            drop(_writer);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn apply_member(snapshot: &mut Snapshot, m: &Membership) -> Result<(), SnapshotError> {
    apply_member_level(snapshot, m, Some(m.access_level))
}

fn apply_member_level(
    snapshot: &mut Snapshot,
    m: &Membership,
    level: Option<crate::domain::AccessLevel>,
) -> Result<(), SnapshotError> {
    match m.of {
        MemberOf::Group => {
            snapshot.set_group_member(GroupId(m.namespace_id), UserId(m.user_id), level)
        }
        MemberOf::Project => {
            snapshot.set_project_member(ProjectId(m.namespace_id), UserId(m.user_id), level)
        }
    }
}

/// Reads the directory and policies from the store into a fresh snapshot.
pub(super) async fn load_snapshot(catalog: &Arc<Catalog>, store: &Store) -> Result<Snapshot> {
    let dump = store.load_directory().await?;
    let mut snapshot = build_snapshot(catalog, dump)?;
    let scopes = store.job_token_scopes().await?;
    let entries = store.allowlist(None).await?;
    jobs::load_scopes(&mut snapshot, catalog, scopes, &entries)?;
    Ok(snapshot)
}

fn build_snapshot(catalog: &Arc<Catalog>, dump: DirectoryDump) -> Result<Snapshot> {
    let corrupt = |what: String| ServiceError::Internal(format!("the stored directory {what}"));
    let mut snapshot = Snapshot::new(Arc::clone(catalog));
    for record in dump.users {
        let user = record.body.to_user().map_err(|e| corrupt(e.to_string()))?;
        snapshot
            .upsert_user(UserId(record.id), user)
            .map_err(|e| corrupt(e.to_string()))?;
    }
    for record in dump.groups {
        let spec = record.body.to_spec().map_err(|e| corrupt(e.to_string()))?;
        snapshot
            .upsert_group(GroupId(record.id), spec)
            .map_err(|e| corrupt(e.to_string()))?;
    }
    for record in dump.projects {
        let spec = record
            .body
            .to_spec(catalog)
            .map_err(|e| corrupt(e.to_string()))?;
        snapshot
            .upsert_project(ProjectId(record.id), spec)
            .map_err(|e| corrupt(e.to_string()))?;
    }
    for membership in dump.memberships {
        apply_member(&mut snapshot, &membership).map_err(|e| corrupt(e.to_string()))?;
    }
    for policy in dump.token_policies {
        let enforced_after = policy
            .enforced_after
            .as_deref()
            .and_then(clock::parse_date)
            .map(clock::midnight);
        snapshot
            .set_token_policy(
                GroupId(policy.group_id),
                Some(TokenPolicy {
                    enforce_fine_grained: policy.enforce_fine_grained,
                    enforced_after,
                }),
            )
            .map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(snapshot)
}
