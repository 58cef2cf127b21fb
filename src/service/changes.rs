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
use crate::directory::{self, Invalid, MemberOf, Membership};
use crate::domain::AccessLevel;
use crate::engine::{GroupId, JobTokenScope, ProjectId, Snapshot, SnapshotError, TokenId, UserId};
use crate::jobs;
use crate::jobs::{AllowlistRecord, JobTokenScopeRecord, SourceKind};
use crate::settings::InstanceSettings;
use crate::store::{Heard, MAX_NOTIFICATION, Tx};

/// One committed change, in the directory's and the tokens' own terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// `user: None`: removed.
    User {
        id: u64,
        user: Option<directory::User>,
    },
    Group {
        id: u64,
        group: Option<directory::Group>,
    },
    Project {
        id: u64,
        project: Option<directory::Project>,
    },
    /// `access_level: None`: the membership was removed.
    Member {
        of: MemberOf,
        namespace_id: u64,
        user_id: u64,
        access_level: Option<AccessLevel>,
    },
    TokenPolicy {
        group_id: u64,
        policy: directory::TokenPolicy,
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

/// The version of [`Message`]: a replica hearing another version rebuilds from the
/// store rather than guess what it means. Bumped whenever `Change` changes shape.
const MESSAGE_VERSION: u16 = 2;

/// What travels between replicas: a change, which replica made it, and the version of
/// the message's shape.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    v: u16,
    origin: String,
    change: Change,
}

/// Why a change does not apply to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotApplied {
    /// It would break the snapshot's rules (a cycle, a path taken, ...).
    #[error(transparent)]
    Refused(#[from] SnapshotError),
    /// It was made under another catalog: a project feature this one does not know.
    #[error(transparent)]
    Catalog(#[from] Invalid),
}

/// Applies a directory, policy or job token scope change to a snapshot. Other kinds do
/// not touch the snapshot.
pub(super) fn apply(
    snapshot: &mut Snapshot,
    catalog: &Catalog,
    change: &Change,
) -> std::result::Result<(), NotApplied> {
    match change {
        Change::User {
            id,
            user: Some(user),
        } => snapshot.upsert_user(UserId(*id), user.to_engine())?,
        Change::User { id, user: None } => snapshot.remove_user(UserId(*id))?,
        Change::Group {
            id,
            group: Some(group),
        } => snapshot.upsert_group(GroupId(*id), group.to_spec())?,
        Change::Group { id, group: None } => snapshot.remove_group(GroupId(*id))?,
        Change::Project {
            id,
            project: Some(project),
        } => snapshot.upsert_project(ProjectId(*id), project.to_spec(catalog)?)?,
        Change::Project { id, project: None } => snapshot.remove_project(ProjectId(*id))?,
        Change::Member {
            of,
            namespace_id,
            user_id,
            access_level,
        } => match of {
            MemberOf::Group => {
                snapshot.set_group_member(
                    GroupId(*namespace_id),
                    UserId(*user_id),
                    *access_level,
                )?;
            }
            MemberOf::Project => snapshot.set_project_member(
                ProjectId(*namespace_id),
                UserId(*user_id),
                *access_level,
            )?,
        },
        Change::TokenPolicy { group_id, policy } => {
            snapshot.set_token_policy(GroupId(*group_id), Some(policy.to_engine()))?;
        }
        Change::TokenRevoked { id } => {
            snapshot.revoke_token(TokenId(*id));
        }
        Change::JobTokenScope { scope } => change_scope(snapshot, scope.project_id, |s| {
            s.inbound_enabled = scope.inbound_enabled;
            s.fine_grained_enabled = scope.fine_grained_enabled;
        })?,
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
            })?
        }
        Change::Settings { .. }
        | Change::TokenCreated { .. }
        | Change::TokenUpdated { .. }
        | Change::KeyRevoked { .. }
        | Change::Resync => {}
    }
    Ok(())
}

/// The changes that make a snapshot of what the store holds: the directory (parents
/// before children), the group policies, then each project's job token scope and its
/// allowlist. Folding them with [`apply`] is the one way into a snapshot: at start, on a
/// rebuild, and on every replica that hears them.
pub(super) fn of_store(
    dump: directory::Dump,
    scopes: Vec<JobTokenScopeRecord>,
    allowlist: Vec<AllowlistRecord>,
) -> impl Iterator<Item = Change> {
    let users = dump.users.into_iter().map(|(id, user)| Change::User {
        id,
        user: Some(user),
    });
    let groups = dump.groups.into_iter().map(|(id, group)| Change::Group {
        id,
        group: Some(group),
    });
    let projects = dump
        .projects
        .into_iter()
        .map(|(id, project)| Change::Project {
            id,
            project: Some(project),
        });
    let members = dump.memberships.into_iter().map(|m| m.change());
    let policies = dump
        .token_policies
        .into_iter()
        .map(|(group_id, policy)| Change::TokenPolicy { group_id, policy });
    let scopes = scopes
        .into_iter()
        .map(|scope| Change::JobTokenScope { scope });
    let entries = allowlist.into_iter().map(|entry| Change::Allowlist {
        project_id: entry.project_id,
        source: entry.source,
        source_id: entry.source_id,
        entry: Some(entry),
    });
    users
        .chain(groups)
        .chain(projects)
        .chain(members)
        .chain(policies)
        .chain(scopes)
        .chain(entries)
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
        let message = |change: Change| {
            serde_json::to_string(&Message {
                v: MESSAGE_VERSION,
                origin: self.origin.clone(),
                change,
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))
        };
        let mut payload = message(change.clone())?;
        if payload.len() > MAX_NOTIFICATION {
            payload = message(Change::Resync)?;
        }
        Ok(tx.notify(&payload).await?)
    }

    /// Applies what another replica announced.
    fn hear(&self, payload: &str) {
        let change = match serde_json::from_str::<Message>(payload) {
            Ok(message) if message.origin == self.origin => return,
            Ok(message) if message.v == MESSAGE_VERSION => message.change,
            Ok(message) => {
                tracing::warn!(
                    version = message.v,
                    "an announcement of another version; rebuilding"
                );
                Change::Resync
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{DisplayName, Group, PathSegment, ProjectOwner, TokenPolicy, User};
    use crate::domain::{FeatureAccess, Visibility};
    use time::macros::date;

    /// What one replica sends, another reads back as the same change: the message is
    /// an internally tagged enum, where a `null` reads differently than at the top.
    #[test]
    fn every_directory_change_reads_back_as_sent() {
        let path = |p: &str| PathSegment::parse(p, "path").unwrap();
        let name = |n: &str| DisplayName::parse(n).unwrap();
        let group =
            Group::new(Some(7), path("sub"), name("Sub"), Visibility::Private, None).unwrap();
        let project = directory::Project::restore(
            ProjectOwner::User(1),
            path("dotfiles"),
            name("Dotfiles"),
            Visibility::Public,
            [("issues".to_owned(), FeatureAccess::Private)].into(),
        );
        let changes = [
            Change::User {
                id: 1,
                user: Some(User {
                    username: path("alice"),
                    blocked: false,
                    admin: true,
                }),
            },
            Change::User { id: 1, user: None },
            Change::Group {
                id: 8,
                group: Some(group),
            },
            Change::Project {
                id: 42,
                project: Some(project),
            },
            Change::Member {
                of: MemberOf::Group,
                namespace_id: 7,
                user_id: 1,
                access_level: None,
            },
            Change::TokenPolicy {
                group_id: 7,
                policy: TokenPolicy {
                    enforce_fine_grained: true,
                    enforced_after: None,
                },
            },
            Change::TokenPolicy {
                group_id: 7,
                policy: TokenPolicy {
                    enforce_fine_grained: true,
                    enforced_after: Some(date!(2027 - 03 - 01)),
                },
            },
        ];
        for change in changes {
            let sent = serde_json::to_string(&Message {
                v: MESSAGE_VERSION,
                origin: "a".to_owned(),
                change: change.clone(),
            })
            .unwrap();
            let heard: Message =
                serde_json::from_str(&sent).unwrap_or_else(|e| panic!("{e}: {sent}"));
            assert_eq!(heard.change, change, "{sent}");
        }
    }
}
