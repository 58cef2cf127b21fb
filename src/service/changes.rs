//! Changes, as the replica that makes one applies it and as the others hear of it.
//!
//! Every write describes itself as a [`Change`]. The writing replica applies it to its
//! snapshot and, on Postgres, sends it with `NOTIFY` inside the same transaction, so
//! the others hear of it exactly when it commits. They apply the same change to their
//! own snapshots: no reload per change. A change too large for a notification, a
//! payload that does not parse, or a lost listening connection makes a replica rebuild
//! its snapshot from the store instead.

use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

use super::{Result, Service, ServiceError};
use crate::catalog::Catalog;
use crate::clock;
use crate::directory::{GroupBody, MemberOf, Membership, ProjectBody, UserBody};
use crate::domain::AccessLevel;
use crate::engine::{
    GroupId, JobTokenScope, ProjectId, Snapshot, SnapshotError, TokenId, TokenPolicy, UserId,
};
use crate::jobs;
use crate::store::{
    AllowlistRecord, Heard, InstanceSettings, JobTokenScopeRecord, MAX_NOTIFICATION, SourceKind,
    TokenPolicyRecord, Tx,
};

/// One committed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// `body: None`: removed.
    User {
        id: u64,
        body: Option<UserBody>,
    },
    Group {
        id: u64,
        body: Option<GroupBody>,
    },
    Project {
        id: u64,
        body: Option<ProjectBody>,
    },
    /// `access_level: None`: the membership was removed.
    Member {
        of: MemberOf,
        namespace_id: u64,
        user_id: u64,
        access_level: Option<AccessLevel>,
    },
    TokenPolicy {
        policy: TokenPolicyRecord,
    },
    Settings {
        settings: InstanceSettings,
    },
    TokenCreated {
        lookup_id: String,
    },
    TokenRevoked {
        id: u64,
    },
    /// Its grant changed: other replicas verify it afresh on next use.
    TokenUpdated {
        id: u64,
        lookup_id: String,
    },
    KeyRevoked {
        lookup_id: String,
    },
    JobTokenScope {
        scope: JobTokenScopeRecord,
    },
    /// `entry: None`: removed.
    Allowlist {
        project_id: u64,
        source: SourceKind,
        source_id: u64,
        entry: Option<AllowlistRecord>,
    },
    /// Too much to describe: rebuild from the store.
    Resync,
}

/// What travels on the channel: the change and which replica made it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: String,
    change: Change,
}

/// Applies a directory, policy or job token scope change to a snapshot. Other kinds do
/// not touch the snapshot.
pub(super) fn apply(
    snapshot: &mut Snapshot,
    catalog: &Catalog,
    change: &Change,
) -> std::result::Result<(), SnapshotError> {
    match change {
        Change::User {
            id,
            body: Some(body),
        } => match body.to_user() {
            Ok(user) => snapshot.upsert_user(UserId(*id), user),
            Err(_) => Ok(()),
        },
        Change::User { id, body: None } => snapshot.remove_user(UserId(*id)),
        Change::Group {
            id,
            body: Some(body),
        } => match body.to_spec() {
            Ok(spec) => snapshot.upsert_group(GroupId(*id), spec),
            Err(_) => Ok(()),
        },
        Change::Group { id, body: None } => snapshot.remove_group(GroupId(*id)),
        Change::Project {
            id,
            body: Some(body),
        } => match body.to_spec(catalog) {
            Ok(spec) => snapshot.upsert_project(ProjectId(*id), spec),
            Err(_) => Ok(()),
        },
        Change::Project { id, body: None } => snapshot.remove_project(ProjectId(*id)),
        Change::Member {
            of,
            namespace_id,
            user_id,
            access_level,
        } => match of {
            MemberOf::Group => {
                snapshot.set_group_member(GroupId(*namespace_id), UserId(*user_id), *access_level)
            }
            MemberOf::Project => snapshot.set_project_member(
                ProjectId(*namespace_id),
                UserId(*user_id),
                *access_level,
            ),
        },
        Change::TokenPolicy { policy } => snapshot.set_token_policy(
            GroupId(policy.group_id),
            Some(TokenPolicy {
                enforce_fine_grained: policy.enforce_fine_grained,
                enforced_after: policy
                    .enforced_after
                    .as_deref()
                    .and_then(clock::parse_date)
                    .map(clock::midnight),
            }),
        ),
        Change::TokenRevoked { id } => {
            snapshot.revoke_token(TokenId(*id));
            Ok(())
        }
        Change::JobTokenScope { scope } => change_scope(snapshot, scope.project_id, |s| {
            s.inbound_enabled = scope.inbound_enabled;
            s.fine_grained_enabled = scope.fine_grained_enabled;
        }),
        Change::Allowlist {
            project_id,
            source,
            source_id,
            entry,
        } => {
            let link = entry.as_ref().map(|e| jobs::link(e, catalog));
            change_scope(snapshot, *project_id, |s| match (source, link) {
                (SourceKind::Project, Some(link)) => {
                    s.projects.insert(ProjectId(*source_id), link);
                }
                (SourceKind::Group, Some(link)) => {
                    s.groups.insert(GroupId(*source_id), link);
                }
                (SourceKind::Project, None) => {
                    s.projects.remove(&ProjectId(*source_id));
                }
                (SourceKind::Group, None) => {
                    s.groups.remove(&GroupId(*source_id));
                }
            })
        }
        Change::Settings { .. }
        | Change::TokenCreated { .. }
        | Change::TokenUpdated { .. }
        | Change::KeyRevoked { .. }
        | Change::Resync => Ok(()),
    }
}

/// Changes a project's job token scope (a copy of the defaults if it had none).
fn change_scope(
    snapshot: &mut Snapshot,
    project_id: u64,
    change: impl FnOnce(&mut JobTokenScope),
) -> std::result::Result<(), SnapshotError> {
    let mut scope = snapshot
        .job_token_scope(ProjectId(project_id))
        .cloned()
        .unwrap_or_default();
    change(&mut scope);
    snapshot.set_job_token_scope(ProjectId(project_id), scope)
}

impl Membership {
    /// The change this membership being set makes.
    pub(super) fn change(&self) -> Change {
        Change::Member {
            of: self.of,
            namespace_id: self.namespace_id,
            user_id: self.user_id,
            access_level: Some(self.access_level),
        }
    }
}

impl Service {
    /// Sends `change` to the other replicas when `tx` commits.
    pub(super) async fn announce(&self, tx: &mut Tx, change: &Change) -> Result<()> {
        if self.store.backend() != crate::store::Backend::Postgres {
            return Ok(());
        }
        let mut payload = serde_json::to_string(&Envelope {
            origin: self.origin.clone(),
            change: change.clone(),
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if payload.len() > MAX_NOTIFICATION {
            payload = serde_json::to_string(&Envelope {
                origin: self.origin.clone(),
                change: Change::Resync,
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        Ok(tx.notify(&payload).await?)
    }

    /// Applies what another replica announced.
    fn hear(&self, payload: &str) {
        let change = match serde_json::from_str::<Envelope>(payload) {
            Ok(envelope) if envelope.origin == self.origin => return,
            Ok(envelope) => envelope.change,
            Err(e) => {
                tracing::warn!(error = %e, "an announcement that does not parse; rebuilding");
                Change::Resync
            }
        };
        match &change {
            Change::Settings { settings } => *self.settings.write() = *settings,
            Change::TokenCreated { lookup_id } => self.unknown.forget(lookup_id),
            Change::KeyRevoked { lookup_id } => {
                self.live.write().keys.remove(lookup_id);
            }
            Change::TokenUpdated { id, lookup_id } => {
                let mut live = self.live.write();
                live.tokens.remove(lookup_id);
                live.snapshot.remove_token(TokenId(*id));
            }
            Change::Resync => self.mark_stale("another replica asked for a rebuild"),
            _ => {
                let mut live = self.live.write();
                if matches!(change, Change::TokenRevoked { .. }) {
                    live.revocations += 1;
                }
                if let Err(e) = apply(&mut live.snapshot, &self.catalog, &change) {
                    drop(live);
                    tracing::warn!(error = %e, ?change, "an announced change does not apply; rebuilding");
                    self.mark_stale("an announced change did not apply");
                }
            }
        }
    }

    /// Listens to the other replicas until the process ends (Postgres only; the
    /// listener was opened before the snapshot was read). Whenever the connection is
    /// lost, what was said meanwhile is gone: decisions answer 503 from that moment, and
    /// the snapshot is rebuilt from the store once listening again.
    pub async fn listen_forever(&self) {
        let Some(mut listener) = self.listener.lock().take() else {
            return;
        };
        loop {
            match listener.next().await {
                Ok(Heard::Payload(payload)) => self.hear(&payload),
                // Reconnected already: the rebuild reads what was missed.
                Ok(Heard::Reconnected) => self.mark_stale("the listening connection was lost"),
                Err(e) => {
                    tracing::warn!(error = %e, "listening to other replicas failed");
                    self.deaf.store(true, Ordering::Release);
                    self.mark_stale("the listening connection was lost");
                    listener = loop {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        match self.store.listen().await {
                            Ok(Some(listener)) => break listener,
                            Ok(None) => return,
                            Err(e) => tracing::warn!(error = %e, "cannot listen again yet"),
                        }
                    };
                    // Listening again: a rebuild from now on misses nothing.
                    self.deaf.store(false, Ordering::Release);
                    self.mark_stale("listening again after a lost connection");
                }
            }
        }
    }
}
