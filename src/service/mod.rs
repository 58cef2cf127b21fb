//! The service: the store, the in-memory snapshot decisions are made from, and the
//! verified-token cache, kept in step.
//!
//! Every change goes through one writer at a time: it is written in a store transaction,
//! applied to the snapshot (which refuses what would break its invariants, and then the
//! transaction rolls back), and committed. Should the commit fail after the snapshot
//! took the change, the snapshot is marked stale: decisions answer 503 until it has
//! been rebuilt from the store. Decisions only read.

mod changes;
mod guard;
mod jobs;
mod lifecycle;
mod notify;
mod usage;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::catalog::{Catalog, RoutePath};
use crate::clock;
use crate::config::Settings;
use crate::directory::{Batch, GroupBody, Invalid, MemberOf, Membership, ProjectBody, UserBody};
use crate::engine::{
    self, Credential, GroupId, ProjectId, Reason, Request, Snapshot, SnapshotError, TokenId,
    TokenPolicy, UserId,
};
use crate::metrics::{CacheResult, Metrics};
use crate::store::{
    DirectoryDump, InstanceSettings, KeyRole, NewServiceKey, NewTokenRow, ServiceKeyRecord, Store,
    StoreError, TokenFilter, TokenPolicyRecord, TokenRecord, Tx,
};
use crate::token::{self, Argon2Params, Prefixes, SecretDigest, TokenKind};
use crate::tokens::{self, TokenView};
use changes::Change;
pub use notify::install_crypto_provider;

/// Service keys look like tokens with their own prefix.
const KEY_PREFIX: &str = "ptk-";

#[derive(Debug, Error)]
pub enum ServiceError {
    /// Input that breaks a rule: 422 naming the field.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The store cannot answer, or the snapshot is being rebuilt: 503.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// A token verified once: later presentations compare a digest, not argon2.
#[derive(Debug, Clone, Copy)]
struct Verified {
    token_id: TokenId,
    digest: SecretDigest,
}

#[derive(Debug, Clone, Copy)]
struct VerifiedKey {
    id: u64,
    role: KeyRole,
    digest: SecretDigest,
}

/// What decisions read: the snapshot and the verified-token cache, under one lock.
#[derive(Debug)]
struct Live {
    snapshot: Snapshot,
    /// By lookup id.
    tokens: FxHashMap<String, Verified>,
    /// Service keys by lookup id.
    keys: FxHashMap<String, VerifiedKey>,
    /// Counts revocations, so that a token verified across one learns of it.
    revocations: u64,
    /// While a rebuild reads the store: the changes heard meanwhile, to replay onto it.
    replay: Option<Vec<changes::Change>>,
}

/// A caller, as identified by its `X-Patrol-Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    Valid { role: KeyRole, caller: Caller },
    Invalid,
}

/// Which key a caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The bootstrap `PATROL_ADMIN_KEY`.
    AdminKey,
    ServiceKey(u64),
    /// An operator at the command line (`patrol service-key create`).
    CommandLine,
    /// A token acting on itself (`/v1/tokens/self`).
    Token(u64),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AdminKey => f.write_str("admin_key"),
            Self::ServiceKey(id) => write!(f, "service_key:{id}"),
            Self::CommandLine => f.write_str("command_line"),
            Self::Token(id) => write!(f, "token:{id}"),
        }
    }
}

/// Who asks for a change, as the audit trail names them (`service_key:<id>` or
/// `admin_key`), and where from. Copy: made for every request, used by few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub caller: Caller,
    pub ip: Option<std::net::IpAddr>,
}

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

#[derive(Debug)]
pub struct Service {
    catalog: Arc<Catalog>,
    store: Store,
    live: RwLock<Live>,
    settings: RwLock<InstanceSettings>,
    writer: tokio::sync::Mutex<()>,
    stale: AtomicBool,
    /// Counts reasons to rebuild, so that one arriving during a rebuild is not lost.
    stale_marks: AtomicU64,
    /// Not listening to the other replicas (connection lost): no rebuild can be trusted
    /// until listening again.
    deaf: AtomicBool,
    /// This replica's name on the changes channel.
    origin: String,
    /// What other replicas say, until `listen_forever` takes it (Postgres only).
    listener: parking_lot::Mutex<Option<crate::store::Listener>>,
    argon2: Argon2Params,
    prefixes: Prefixes,
    key_prefixes: Prefixes,
    admin_key: Option<SecretDigest>,
    /// Lookup ids the store did not know.
    unknown: guard::Recent,
    /// Lookup ids whose presented secret failed argon2.
    failed: guard::Recent,
    /// Whether changes enqueue notifications (a webhook is configured).
    notifications: bool,
    /// Wakes the delivery worker when the outbox was written.
    outbox_ready: tokio::sync::Notify,
    usage: usage::Usage,
    pub metrics: Metrics,
}

/// How many lookup ids each guard remembers at most.
const GUARD_CAPACITY: usize = 100_000;

impl Service {
    /// Builds the snapshot from the store.
    pub async fn start(catalog: Arc<Catalog>, store: Store, config: &Settings) -> Result<Self> {
        // Listen before reading, so that no change commits unheard in between.
        let listener = store.listen().await?;
        let snapshot = load_snapshot(&catalog, &store).await?;
        let settings = store.settings().await?;
        Ok(Self {
            live: RwLock::new(Live {
                snapshot,
                tokens: FxHashMap::default(),
                keys: FxHashMap::default(),
                revocations: 0,
                replay: None,
            }),
            settings: RwLock::new(settings),
            writer: tokio::sync::Mutex::new(()),
            stale: AtomicBool::new(false),
            stale_marks: AtomicU64::new(0),
            deaf: AtomicBool::new(false),
            origin: random_name(),
            listener: parking_lot::Mutex::new(listener),
            argon2: config.argon2,
            prefixes: config.prefixes.clone(),
            key_prefixes: Prefixes {
                personal: KEY_PREFIX.to_owned(),
                job: String::new(),
            },
            admin_key: config
                .admin_key
                .as_ref()
                .map(|key| SecretDigest::of(&key.0)),
            unknown: guard::Recent::new(config.unknown_token_ttl, GUARD_CAPACITY),
            failed: guard::Recent::new(config.failed_secret_window, GUARD_CAPACITY),
            notifications: config.webhook.is_some(),
            outbox_ready: tokio::sync::Notify::new(),
            usage: usage::Usage::new(config.track_usage),
            metrics: Metrics::default(),
            catalog,
            store,
        })
    }

    /// A user of the directory, as the snapshot holds them.
    pub fn user(&self, id: u64) -> Option<engine::User> {
        self.live.read().snapshot.user(UserId(id)).cloned()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn prefixes(&self) -> &Prefixes {
        &self.prefixes
    }

    pub fn argon2(&self) -> Argon2Params {
        self.argon2
    }

    /// Ready when the snapshot is current and the store answers.
    pub async fn ready(&self) -> Result<()> {
        if self.stale.load(Ordering::Acquire) {
            return Err(ServiceError::Unavailable(
                "the snapshot is being rebuilt from the store".to_owned(),
            ));
        }
        self.store.ping().await?;
        Ok(())
    }

    /// Asks for a rebuild from the store: decisions answer 503 until it is done.
    fn mark_stale(&self, why: &str) {
        tracing::warn!(why, "the snapshot will be rebuilt from the store");
        self.stale_marks.fetch_add(1, Ordering::AcqRel);
        self.stale.store(true, Ordering::Release);
    }

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
            let _writer = self.writer.lock().await;
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

    /// Commits a transaction whose change the snapshot already holds.
    async fn commit_applied(&self, tx: Tx) -> Result<()> {
        if let Err(e) = tx.commit().await {
            tracing::error!(error = %e, "commit failed after the snapshot changed");
            self.mark_stale("a commit failed after the snapshot changed");
            return Err(e.into());
        }
        Ok(())
    }

    /// Announces `change`, applies it to the snapshot (which may refuse it), and
    /// commits: the shape of every directory, policy and scope write.
    async fn publish(
        &self,
        mut tx: Tx,
        change: changes::Change,
        refuse: impl FnOnce(SnapshotError) -> ServiceError,
    ) -> Result<()> {
        self.announce(&mut tx, &change).await?;
        changes::apply(&mut self.live.write().snapshot, &self.catalog, &change).map_err(refuse)?;
        self.commit_applied(tx).await
    }

    // ---- directory ----

    pub async fn put_user(&self, id: u64, body: UserBody) -> Result<()> {
        body.to_user()?;
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        tx.put_user(id, &body).await?;
        let change = Change::User {
            id,
            body: Some(body),
        };
        self.publish(tx, change, refused).await
    }

    pub async fn delete_user(&self, id: u64) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        if !tx.delete_user(id).await? {
            return Err(ServiceError::NotFound(format!("user {id} does not exist")));
        }
        self.publish(tx, Change::User { id, body: None }, refused)
            .await
    }

    pub async fn put_group(&self, id: u64, body: GroupBody) -> Result<()> {
        body.to_spec()?;
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        tx.put_group(id, &body).await?;
        let change = Change::Group {
            id,
            body: Some(body),
        };
        self.publish(tx, change, refused).await
    }

    pub async fn delete_group(&self, id: u64) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        if !tx.delete_group(id).await? {
            return Err(ServiceError::NotFound(format!("group {id} does not exist")));
        }
        self.publish(tx, Change::Group { id, body: None }, refused)
            .await
    }

    pub async fn put_project(&self, id: u64, body: ProjectBody) -> Result<()> {
        body.to_spec(&self.catalog)?;
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        tx.put_project(id, &body).await?;
        let change = Change::Project {
            id,
            body: Some(body),
        };
        self.publish(tx, change, refused).await
    }

    pub async fn delete_project(&self, id: u64) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        if !tx.delete_project(id).await? {
            return Err(ServiceError::NotFound(format!(
                "project {id} does not exist"
            )));
        }
        self.publish(tx, Change::Project { id, body: None }, refused)
            .await
    }

    pub async fn put_member(&self, membership: Membership) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        tx.put_member(&membership).await?;
        self.publish(tx, membership.change(), refused).await
    }

    pub async fn delete_member(&self, of: MemberOf, namespace_id: u64, user_id: u64) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        if !tx.delete_member(of, namespace_id, user_id).await? {
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
        self.publish(tx, change, refused).await
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
        let _writer = self.writer.lock().await;
        let mut next = self.live.read().snapshot.clone();
        let mut tx = self.store.begin().await?;
        // Applied in order to the copy, each refusal naming its item.
        let mut changes = Vec::with_capacity(count);
        for (i, item) in users.into_iter().enumerate() {
            let (id, body) = item.split();
            body.to_user()
                .map_err(|e| e.within(&format!("users[{i}]")))?;
            tx.put_user(id, &body).await?;
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
            tx.put_group(id, &body).await?;
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
            tx.put_project(id, &body).await?;
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
            tx.put_member(&membership).await?;
            changes.push((field, membership.change()));
        }
        for (field, change) in &changes {
            changes::apply(&mut next, &self.catalog, change).map_err(|e| refused_at(field, e))?;
            self.announce(&mut tx, change).await?;
        }
        tx.commit().await?;
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
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        let policy = TokenPolicyRecord { group_id, ..policy };
        tx.put_token_policy(&policy).await?;
        let event = audit_event(
            actor,
            "group_token_policy_updated",
            "group",
            group_id,
            serde_json::json!({"enforce_fine_grained": policy.enforce_fine_grained,
                               "enforced_after": policy.enforced_after}),
        );
        tx.record_event(&event, clock::now()).await?;
        let refuse = |e| match e {
            SnapshotError::UnknownGroup(id) => {
                ServiceError::NotFound(format!("group {id} does not exist"))
            }
            other => refused(other),
        };
        self.publish(tx, Change::TokenPolicy { policy }, refuse)
            .await
    }

    // ---- settings ----

    pub fn settings(&self) -> InstanceSettings {
        *self.settings.read()
    }

    pub async fn put_settings(
        &self,
        actor: &Actor,
        settings: InstanceSettings,
    ) -> Result<InstanceSettings> {
        if !(1..=3650).contains(&settings.max_lifetime_days) {
            return Err(Invalid::new("max_lifetime_days", "must be between 1 and 3650").into());
        }
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        tx.put_settings(&settings).await?;
        let event = audit_event(
            actor,
            "settings_updated",
            "instance",
            0,
            serde_json::json!({"before": self.settings(), "after": settings}),
        );
        tx.record_event(&event, clock::now()).await?;
        self.announce(&mut tx, &Change::Settings { settings })
            .await?;
        tx.commit().await?;
        *self.settings.write() = settings;
        Ok(settings)
    }

    // ---- tokens ----

    /// Writes a new token, announces it, and caches it as verified: its plaintext was
    /// just made here. The caller holds the writer lock.
    async fn insert_new_token(&self, row: NewTokenRow, secret: &str) -> Result<TokenRecord> {
        let mut tx = self.store.begin().await?;
        let id = self.write_new_token(&mut tx, &row).await?;
        tx.commit().await?;
        let record = row.into_record(id);
        self.remember_new_token(&record, secret);
        Ok(record)
    }

    /// In `tx`: writes a new token and announces it. Returns its id.
    async fn write_new_token(&self, tx: &mut Tx, row: &NewTokenRow) -> Result<u64> {
        let id = tx.insert_token(row).await?;
        let created = Change::TokenCreated {
            lookup_id: row.lookup_id.clone(),
        };
        self.announce(tx, &created).await?;
        Ok(id)
    }

    /// After the commit: a token made here is known, and verified.
    fn remember_new_token(&self, record: &TokenRecord, secret: &str) {
        self.unknown.forget(&record.lookup_id);
        if let Some(token) = tokens::engine_token(record, &self.catalog) {
            let mut live = self.live.write();
            live.snapshot.insert_token(token);
            live.tokens.insert(
                record.lookup_id.clone(),
                Verified {
                    token_id: TokenId(record.id),
                    digest: SecretDigest::of(secret),
                },
            );
        }
    }

    pub async fn token(&self, id: u64) -> Result<TokenView> {
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("token {id} does not exist")))?;
        Ok(TokenView::of(&record, clock::date_of(clock::now())))
    }

    pub async fn list_tokens(&self, filter: &TokenFilter) -> Result<(Vec<TokenView>, u64)> {
        let today = clock::date_of(clock::now());
        let (records, total) = self.store.list_tokens(filter).await?;
        Ok((
            records.iter().map(|r| TokenView::of(r, today)).collect(),
            total,
        ))
    }

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
        let Ok(parsed) = token::parse(&self.prefixes, presented) else {
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
        if self.failed.contains(parsed.lookup_id, started) {
            self.metrics.token_cache(CacheResult::Throttled);
            return Ok(Credential::Invalid);
        }
        self.metrics.token_cache(CacheResult::Miss);
        let revocations = self.live.read().revocations;
        let Some(mut record) = self.store.token_by_lookup(parsed.lookup_id).await? else {
            self.unknown.note(parsed.lookup_id, started);
            return Ok(Credential::Invalid);
        };
        let kind_matches = match parsed.kind {
            TokenKind::Personal => record.kind != crate::store::TokenKindName::Job,
            TokenKind::Job => record.kind == crate::store::TokenKindName::Job,
        };
        if !kind_matches
            || !self
                .verify(record.secret_hash.clone(), parsed.secret)
                .await?
        {
            self.failed.note(parsed.lookup_id, Instant::now());
            return Ok(Credential::Invalid);
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

    // ---- service keys ----

    /// Identifies a caller by its service key.
    pub async fn check_key(&self, presented: &str) -> Result<KeyCheck> {
        if let Some(admin) = &self.admin_key {
            if admin.matches(&SecretDigest::of(presented)) {
                return Ok(KeyCheck::Valid {
                    role: KeyRole::Admin,
                    caller: Caller::AdminKey,
                });
            }
        }
        let Ok(parsed) = token::parse(&self.key_prefixes, presented) else {
            return Ok(KeyCheck::Invalid);
        };
        let digest = SecretDigest::of(parsed.secret);
        if let Some(known) = self.live.read().keys.get(parsed.lookup_id).copied() {
            return Ok(if known.digest.matches(&digest) {
                KeyCheck::Valid {
                    role: known.role,
                    caller: Caller::ServiceKey(known.id),
                }
            } else {
                KeyCheck::Invalid
            });
        }
        let Some(record) = self.store.service_key_by_lookup(parsed.lookup_id).await? else {
            return Ok(KeyCheck::Invalid);
        };
        if record.revoked_at.is_some()
            || !self
                .verify(record.secret_hash.clone(), parsed.secret)
                .await?
        {
            return Ok(KeyCheck::Invalid);
        }
        self.live.write().keys.insert(
            record.lookup_id,
            VerifiedKey {
                id: record.id,
                role: record.role,
                digest,
            },
        );
        Ok(KeyCheck::Valid {
            role: record.role,
            caller: Caller::ServiceKey(record.id),
        })
    }

    /// Creates a service key; the answer carries the plaintext key, once.
    pub async fn create_key(
        &self,
        actor: &Actor,
        name: &str,
        role: KeyRole,
    ) -> Result<(ServiceKeyRecord, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 255 {
            return Err(Invalid::new("name", "must be 1 to 255 characters").into());
        }
        let minted = token::generate(&self.key_prefixes, TokenKind::Personal)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret_hash = self.hash(minted.secret.clone()).await?;
        let new = NewServiceKey {
            name: name.to_owned(),
            role,
            lookup_id: minted.lookup_id.clone(),
            secret_hash,
            created_at: clock::now(),
        };
        let _writer = self.writer.lock().await;
        let mut tx = self.store.begin().await?;
        let id = tx.insert_service_key(&new).await?;
        let event = audit_event(
            actor,
            "service_key_created",
            "service_key",
            id,
            serde_json::json!({"name": new.name, "role": role.as_str()}),
        );
        tx.record_event(&event, new.created_at).await?;
        tx.commit().await?;
        let record = ServiceKeyRecord {
            id,
            name: new.name,
            role,
            lookup_id: new.lookup_id,
            secret_hash: new.secret_hash,
            created_at: new.created_at,
            revoked_at: None,
        };
        Ok((record, minted.plaintext))
    }

    pub async fn revoke_key(&self, actor: &Actor, id: u64) -> Result<()> {
        let _writer = self.writer.lock().await;
        let now = clock::now();
        let mut tx = self.store.begin().await?;
        let Some(lookup_id) = tx.revoke_service_key(id, now).await? else {
            return Err(ServiceError::NotFound(format!(
                "service key {id} does not exist or is already revoked"
            )));
        };
        let event = audit_event(
            actor,
            "service_key_revoked",
            "service_key",
            id,
            serde_json::json!({}),
        );
        tx.record_event(&event, now).await?;
        let change = Change::KeyRevoked {
            lookup_id: lookup_id.clone(),
        };
        self.announce(&mut tx, &change).await?;
        tx.commit().await?;
        self.live.write().keys.remove(&lookup_id);
        Ok(())
    }

    // ---- hashing, off the runtime ----

    async fn hash(&self, secret: String) -> Result<String> {
        let params = self.argon2;
        tokio::task::spawn_blocking(move || token::hash_secret(params, &secret))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    async fn verify(&self, hash: String, secret: &str) -> Result<bool> {
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || token::verify_secret(&hash, &secret))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

pub fn decide(snapshot: &Snapshot, check: &Check, credential: Credential, now: i64) -> Outcome {
    let action = match &check.action {
        CheckAction::Permission(name) => engine::Action::Permission(name),
        CheckAction::Route { method, path } => engine::Action::Route { method, path },
    };
    let boundary = check.boundary.as_ref().map(|b| match b {
        CheckBoundary::ProjectId(id) => engine::BoundaryRef::ProjectId(ProjectId(*id)),
        CheckBoundary::ProjectPath(path) => engine::BoundaryRef::ProjectPath(path),
        CheckBoundary::GroupId(id) => engine::BoundaryRef::GroupId(GroupId(*id)),
        CheckBoundary::GroupPath(path) => engine::BoundaryRef::GroupPath(path),
        CheckBoundary::User => engine::BoundaryRef::User,
        CheckBoundary::Instance => engine::BoundaryRef::Instance,
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

/// A change the snapshot refused, as the 422 it is.
fn refused(e: SnapshotError) -> ServiceError {
    let field = match &e {
        SnapshotError::UnknownUser(_) => "user_id",
        SnapshotError::UnknownGroup(_) | SnapshotError::Cycle(_) => "parent_id",
        SnapshotError::UnknownProject(_) => "project_id",
        SnapshotError::MoreVisibleThanParent { .. } => "visibility",
        SnapshotError::PathTaken(_) => "path",
        SnapshotError::NotEmpty(_) | SnapshotError::UserHasProjects(_) => "id",
        SnapshotError::NotTopLevel(_) => "group_id",
    };
    Invalid::new(field, e.to_string()).into()
}

fn refused_at(prefix: &str, e: SnapshotError) -> ServiceError {
    match refused(e) {
        ServiceError::Invalid(invalid) => invalid.within(prefix).into(),
        other => other,
    }
}

/// Reads the directory and policies from the store into a fresh snapshot.
async fn load_snapshot(catalog: &Arc<Catalog>, store: &Store) -> Result<Snapshot> {
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

/// An audit event of `actor` about `target_type` `target_id`.
fn audit_event(
    actor: &Actor,
    action: &'static str,
    target_type: &'static str,
    target_id: u64,
    details: serde_json::Value,
) -> crate::store::NewAuditEvent {
    crate::store::NewAuditEvent {
        actor: actor.caller.to_string(),
        action,
        target_type,
        target_id,
        source_ip: actor.ip.map(|ip| ip.to_string()),
        details,
    }
}

/// A random name for this replica on the changes channel.
fn random_name() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness, fall back to the process id: names only need to differ.
    if getrandom::fill(&mut bytes).is_err() {
        return format!("pid-{}", std::process::id());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
