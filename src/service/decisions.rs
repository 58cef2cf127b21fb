//! Decisions: the checks of `/v1/authorize`, the gateway and the GitLab API, the
//! credential each presents (verified once, then compared by digest), and the engine's
//! answer as an owned `Outcome`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::guard::Failed;
use super::{Result, Service, ServiceError, Verified};
use crate::catalog::RoutePath;
use crate::clock;
use crate::engine::{self, Credential, GroupId, ProjectId, Reason, Request, Snapshot, UserId};
use crate::metrics::CacheResult;
use crate::secret::{self, HashKind, Prefix, SecretDigest};
use crate::tokens;

/// One check of `/v1/authorize`, parsed.
#[derive(Debug, Clone)]
pub struct Check {
    pub token: String,
    pub action: CheckAction,
    pub boundary: Option<CheckBoundary>,
    pub confidential: bool,
    pub author_id: Option<u64>,
    pub assignee_ids: Vec<u64>,
    pub client_ip: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone)]
pub enum CheckAction {
    Permission(String),
    /// A valid token is enough.
    Authenticate,
    /// The method in upper case, as GitLab reads it.
    Route {
        method: String,
        path: RoutePath,
    },
}

#[derive(Debug, Clone)]
pub enum CheckBoundary {
    ProjectId(u64),
    ProjectPath(String),
    GroupId(u64),
    GroupPath(String),
    User,
    Instance,
    /// The request does not say where the permission is needed.
    Unresolved,
}

/// A decision, owned, ready to serialise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub reason: Reason,
    pub required_permissions: Vec<String>,
    pub token_id: Option<u64>,
    pub user_id: Option<u64>,
    pub message: String,
    /// A denial about a boundary the token's user may not know exists (unknown, or
    /// private to them): a gateway answers it with 404, not 403.
    pub hidden: bool,
    /// Where the decision was made, once the boundary was found: `project 42`,
    /// `group 7`, `user` or `instance`.
    pub boundary: Option<String>,
}

impl Service {
    // ---- decisions ----

    /// Answers checks in order. A store that cannot answer for a token not verified
    /// before fails the whole call (503), never an allow.
    pub async fn authorize(&self, checks: &[Check]) -> Result<Vec<Outcome>> {
        if self.stale.load(Ordering::Acquire) {
            return Err(ServiceError::Unavailable(
                "the snapshot is being rebuilt from the store".to_owned(),
            ));
        }
        let started = Instant::now();
        let mut credentials = Vec::with_capacity(checks.len());
        for check in checks {
            credentials.push(self.credential(&check.token).await?);
        }
        let now = clock::now();
        let live = self.live.read();
        let outcomes: Vec<Outcome> = checks
            .iter()
            .zip(credentials)
            .map(|(check, credential)| decide(&live.snapshot, check, credential, now))
            .collect();
        drop(live);
        self.usage.note(
            outcomes
                .iter()
                .zip(checks.iter().map(|check| check.client_ip)),
            now,
        );
        let per_check = started.elapsed().as_secs_f64() / outcomes.len().max(1) as f64;
        for outcome in &outcomes {
            self.metrics.decision(outcome.reason, per_check);
        }
        Ok(outcomes)
    }

    /// Who a presented token string is. Malformed tokens and wrong secrets for tokens
    /// verified before are refused without store or argon2 work.
    async fn credential(&self, presented: &str) -> Result<Credential> {
        let Ok(parsed) = secret::parse(&self.prefixes, presented) else {
            self.metrics.token_cache(CacheResult::Rejected);
            return Ok(Credential::Invalid);
        };
        let digest = SecretDigest::of(parsed.secret);
        if let Some(known) = self.live.read().tokens.get(parsed.lookup_id).copied() {
            return Ok(if known.digest.matches(&digest) {
                self.metrics.token_cache(CacheResult::Hit);
                Credential::Token(known.token_id)
            } else {
                // The right secret was verified before; this one is not it.
                self.metrics.token_cache(CacheResult::Rejected);
                Credential::Invalid
            });
        }
        let started = Instant::now();
        if self.unknown.contains(parsed.lookup_id, started) {
            self.metrics.token_cache(CacheResult::Unknown);
            return Ok(Credential::Invalid);
        }
        match self.failed.get(parsed.lookup_id, started) {
            Some(Failed::Argon2) => {
                self.metrics.token_cache(CacheResult::Throttled);
                return Ok(Credential::Invalid);
            }
            // Wrong again: refused without a store read. The right secret goes on.
            Some(Failed::Digest(hash)) if !secret::verify_secret(&hash, parsed.secret) => {
                self.metrics.token_cache(CacheResult::Rejected);
                return Ok(Credential::Invalid);
            }
            _ => {}
        }
        self.metrics.token_cache(CacheResult::Miss);
        let revocations = self.live.read().revocations;
        let Some(mut record) = self.store.token_by_lookup(parsed.lookup_id).await? else {
            self.unknown.note(parsed.lookup_id, started);
            return Ok(Credential::Invalid);
        };
        let kind_matches = match parsed.prefix {
            Prefix::Personal => record.kind != crate::tokens::TokenKind::Job,
            Prefix::Job => record.kind == crate::tokens::TokenKind::Job,
        };
        let hash_kind = HashKind::of(&record.secret_hash);
        if !kind_matches
            || !self
                .verify(record.secret_hash.clone(), parsed.secret)
                .await?
        {
            let failed = match hash_kind {
                HashKind::Digest => Failed::Digest(record.secret_hash.clone()),
                HashKind::Argon2 => Failed::Argon2,
            };
            self.failed
                .note_with(parsed.lookup_id, failed, Instant::now());
            return Ok(Credential::Invalid);
        }
        self.failed.forget(parsed.lookup_id);
        if hash_kind == HashKind::Argon2 {
            self.rehash_token(record.id, &record.secret_hash, parsed.secret);
        }
        // A revocation that landed while this token was being read or verified stands:
        // the token goes into the snapshot only under the lock revocations take, and
        // only if none happened since it was read; otherwise it is read again (rare).
        let mut seen = revocations;
        loop {
            let Some(mut token) = tokens::engine_token(&record, &self.catalog) else {
                return Ok(Credential::Invalid);
            };
            let inserted = {
                let mut live = self.live.write();
                if live.revocations == seen {
                    if live.snapshot.token(token.id).is_some_and(|t| t.revoked) {
                        token.revoked = true;
                    }
                    let id = token.id;
                    live.snapshot.insert_token(token);
                    live.tokens.insert(
                        record.lookup_id.clone(),
                        Verified {
                            token_id: id,
                            digest,
                        },
                    );
                    Some(id)
                } else {
                    seen = live.revocations;
                    None
                }
            };
            if let Some(id) = inserted {
                return Ok(Credential::Token(id));
            }
            match self.store.token(record.id).await? {
                Some(again) => record.revoked = again.revoked,
                None => return Ok(Credential::Invalid),
            }
        }
    }
}

pub fn decide(snapshot: &Snapshot, check: &Check, credential: Credential, now: i64) -> Outcome {
    let action = match &check.action {
        CheckAction::Permission(name) => engine::Action::Permission(name),
        CheckAction::Authenticate => engine::Action::Authenticate,
        CheckAction::Route { method, path } => engine::Action::Route { method, path },
    };
    let boundary = check.boundary.as_ref().map(|b| match b {
        CheckBoundary::ProjectId(id) => engine::BoundaryRef::ProjectId(ProjectId(*id)),
        CheckBoundary::ProjectPath(path) => engine::BoundaryRef::ProjectPath(path),
        CheckBoundary::GroupId(id) => engine::BoundaryRef::GroupId(GroupId(*id)),
        CheckBoundary::GroupPath(path) => engine::BoundaryRef::GroupPath(path),
        CheckBoundary::User => engine::BoundaryRef::User,
        CheckBoundary::Instance => engine::BoundaryRef::Instance,
        CheckBoundary::Unresolved => engine::BoundaryRef::Unresolved,
    });
    let assignees: Vec<UserId> = check.assignee_ids.iter().copied().map(UserId).collect();
    let request = Request {
        credential,
        action,
        boundary,
        resource: engine::Resource {
            confidential: check.confidential,
            author_id: check.author_id.map(UserId),
            assignee_ids: &assignees,
        },
        client_ip: check.client_ip,
        now,
    };
    let decision = engine::decide(snapshot, &request);
    let catalog = snapshot.catalog();
    let hidden = !decision.allowed
        && (decision.reason == Reason::BoundaryNotFound
            || decision
                .namespace
                .zip(decision.user_id)
                .is_some_and(|(idx, user)| !snapshot.visible_to(user, idx)));
    Outcome {
        allowed: decision.allowed,
        reason: decision.reason,
        required_permissions: decision
            .required_names(catalog)
            .map(str::to_owned)
            .collect(),
        token_id: decision.token_id.map(|t| t.0),
        user_id: decision.user_id.map(|u| u.0),
        message: decision.message(catalog),
        hidden,
        boundary: decision.boundary.map(|kind| match decision.namespace {
            Some(idx) => format!("{kind} {}", snapshot.namespace_id(idx)),
            None => kind.to_string(),
        }),
    }
}
