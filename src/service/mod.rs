//! The service: the store, the in-memory snapshot decisions are made from, and the
//! verified-token cache, kept in step.
//!
//! Every change goes through one writer at a time: it is written in a store transaction,
//! applied to the snapshot (which refuses what would break its invariants, and then the
//! transaction rolls back), and committed. Should the commit fail after the snapshot
//! took the change, the snapshot is marked stale: decisions answer 503 until it has
//! been rebuilt from the store. Decisions only read.

mod callers;
mod changes;
mod decisions;
mod directory;
mod error;
mod graphql;
mod guard;
mod jobs;
mod keys;
mod lifecycle;
mod notify;
mod settings;
mod snapshot;
mod tokens;
mod usage;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::engine::{self, Snapshot, TokenId, UserId};
use crate::keys::KeyRole;
use crate::metrics::Metrics;
use crate::secret::{Argon2Params, Prefixes, SecretDigest};
use crate::settings::InstanceSettings;
use crate::store::Store;

pub use callers::{Actor, Caller, KeyVerdict};
pub use decisions::{Check, CheckAction, CheckBoundary, Outcome, decide};
pub use error::{Result, ServiceError};
use error::{refused, refused_at};
pub use graphql::{GraphqlCheck, GraphqlChecks, GraphqlOutcome};
pub use notify::install_crypto_provider;
pub use tokens::Lister;

/// Service keys look like tokens with their own prefix.
const KEY_PREFIX: &str = "ptk-";

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

#[derive(Debug)]
pub struct Service {
    catalog: Arc<Catalog>,
    store: Store,
    live: RwLock<Live>,
    settings: RwLock<InstanceSettings>,
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
    /// Lookup ids whose presented secret was wrong, with what it was checked against.
    failed: guard::Recent<guard::Failed>,
    /// Whether changes enqueue notifications (a webhook is configured).
    notifications: bool,
    /// Wakes the delivery worker when the outbox was written.
    outbox_ready: tokio::sync::Notify,
    usage: usage::Usage,
    graphql_limits: crate::catalog::graphql::plan::Limits,
    pub metrics: Metrics,
}

/// How many lookup ids each guard remembers at most.
const GUARD_CAPACITY: usize = 100_000;

impl Service {
    /// Builds the snapshot from the store.
    pub async fn start(catalog: Arc<Catalog>, store: Store, config: &Settings) -> Result<Self> {
        // Listen before reading, so that no change commits unheard in between.
        let listener = store.listen().await?;
        let snapshot = snapshot::load_snapshot(&catalog, &store).await?;
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
            graphql_limits: config.graphql,
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
}

/// An audit event of `actor` about `target_type` `target_id`.
fn audit_event(
    actor: &Actor,
    action: &'static str,
    target_type: &'static str,
    target_id: u64,
    details: serde_json::Value,
) -> crate::audit::NewAuditEvent {
    crate::audit::NewAuditEvent {
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
