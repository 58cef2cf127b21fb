//! The store: embedded SQLite (the zero-setup default) or Postgres (production), through
//! sqlx. One `Store` type over both backends: every statement is written once, in SQL
//! both accept (`$n` parameters, `RETURNING`, `ON CONFLICT`), and run on whichever pool
//! the URL chose. Errors are backend-neutral (`StoreError`); the conformance suite in
//! `tests/api/store.rs` runs every method on both.
//!
//! Reads are methods of `Store`; writes are methods of `Tx`, so that a caller can apply a
//! change to the in-memory snapshot between writing and committing it, and roll back
//! when the snapshot refuses it. One writer at a time: a `Tx` begins only under the
//! store's [`WriteLock`], so that a write without the lock does not compile.

mod audit;
mod directory;
mod jobs;
mod keys;
mod outbox;
mod settings;
mod tokens;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use thiserror::Error;

pub use audit::AuditFilter;
pub use outbox::{ExpiryEvent, NewNotification, Notification};
pub use tokens::{Holds, LAST_USED_IPS, TokenFilter, TokenUse};

/// Runs `$body` with `$pool` bound to whichever backend `$store` holds. The body is
/// compiled once per backend, so it must be valid SQL for both.
macro_rules! on_pool {
    ($pool_enum:expr, $pool:ident => $body:expr) => {
        match $pool_enum {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The same for an open transaction.
macro_rules! on_tx {
    ($tx_enum:expr, $tx:ident => $body:expr) => {
        match $tx_enum {
            $crate::store::TxInner::Sqlite($tx) => $body,
            $crate::store::TxInner::Postgres($tx) => $body,
        }
    };
}
pub(crate) use on_tx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// The one-writer rule, shared by every clone of the store.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// The store's writer lock, held: what a transaction begins under.
#[derive(Debug)]
pub struct WriteLock {
    _held: tokio::sync::OwnedMutexGuard<()>,
}

#[derive(Debug)]
pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open transaction, under the writer lock. Dropped without `commit`, it rolls back.
#[derive(Debug)]
pub struct Tx {
    pub(crate) inner: TxInner,
    _lock: WriteLock,
}

#[derive(Debug, Error)]
pub enum StoreError {
    /// The store cannot answer now (down, timed out, pool exhausted): a 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken (a name or id already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row that patrol wrote no longer reads back as patrol wrote it.
    #[error("the store holds a value patrol cannot read: {0}")]
    Corrupt(String),
    #[error("bad database URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(conflict(db.as_ref()).to_owned())
            }
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. } => Self::Corrupt(e.to_string()),
            _ => Self::Unavailable(e.to_string()),
        }
    }
}

/// What a broken uniqueness rule means to a caller, whichever backend's words said it
/// (Postgres names the constraint, `users_username_key`; SQLite the column,
/// `UNIQUE constraint failed: users.username`).
fn conflict(db: &dyn sqlx::error::DatabaseError) -> &'static str {
    let rule = db.constraint().unwrap_or_else(|| db.message());
    if rule.contains("username") {
        "`username` is taken by another user"
    } else if rule.contains("job_id") {
        "this job already has a token"
    } else {
        // Lookup ids and idempotency keys: drawn at random or derived, never the caller's.
        "the change collides with a row the store holds; try again"
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long a request waits for a connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl Store {
    /// Connects to `sqlite://path` (the file is created when missing, in WAL mode) or
    /// `postgres://...`. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let bad_url = |message: String| StoreError::Url {
            url: url.to_owned(),
            message,
        };
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| bad_url(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Self::over(Pool::Sqlite(pool)))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(|e| bad_url(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Self::over(Pool::Postgres(pool)))
        } else {
            Err(bad_url(
                "must start with `sqlite:` or `postgres:`".to_owned(),
            ))
        }
    }

    fn over(pool: Pool) -> Self {
        Self {
            pool,
            writer: Arc::default(),
        }
    }

    /// Waits for the writer lock, for reads that must see no write meanwhile (a rebuild);
    /// every transaction holds it too.
    pub async fn lock_writes(&self) -> WriteLock {
        WriteLock {
            _held: Arc::clone(&self.writer).lock_owned().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        let run = match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        run.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Whether the store answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(&self.pool, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Waits for the writer lock and begins a transaction, which holds the lock until it
    /// commits or rolls back.
    pub async fn begin(&self) -> Result<Tx> {
        let lock = self.lock_writes().await;
        let inner = match &self.pool {
            Pool::Sqlite(pool) => TxInner::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner, _lock: lock })
    }

    /// Closes every connection (tests, shutdown). Waits at most a few seconds for
    /// connections still in use: shutting down must not hang on one.
    pub async fn close(&self) {
        let closed = async {
            on_pool!(&self.pool, pool => pool.close().await);
        };
        if tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .is_err()
        {
            tracing::warn!("store connections still in use at close; leaving them");
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        on_tx!(self.inner, tx => tx.commit().await?);
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        on_tx!(self.inner, tx => tx.rollback().await?);
        Ok(())
    }
}

/// A u64 id as the store keeps it (BIGINT). Ids above `i64::MAX` are refused at the
/// API, so this never wraps.
pub(crate) fn db_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

pub(crate) fn from_db_id(id: i64) -> Result<u64> {
    u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("negative id {id}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The channel replicas sharing one Postgres tell each other about changes on.
pub const CHANGES_CHANNEL: &str = "patrol_changes";

/// Postgres caps a notification's payload below 8000 bytes.
pub const MAX_NOTIFICATION: usize = 7900;

impl Tx {
    /// Tells the other replicas about this transaction's change, when it commits
    /// (Postgres `NOTIFY`). SQLite has one process: nothing to tell.
    pub async fn notify(&mut self, payload: &str) -> Result<()> {
        if let TxInner::Postgres(tx) = &mut self.inner {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(payload)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// What a listener hears next.
#[derive(Debug)]
pub enum Heard {
    Payload(String),
    /// The connection was lost and is back: what was said meanwhile is gone.
    Reconnected,
}

/// Listens to `CHANGES_CHANNEL` (Postgres only).
#[derive(Debug)]
pub struct Listener(sqlx::postgres::PgListener);

impl Store {
    /// A listener on the changes channel; `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<Listener>> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(Listener(listener)))
    }
}

impl Listener {
    /// Waits for the next notification. A lost connection is re-established here and
    /// reported once as `Reconnected`; an error means it could not be re-established yet.
    pub async fn next(&mut self) -> Result<Heard> {
        match self.0.try_recv().await? {
            Some(notification) => Ok(Heard::Payload(notification.payload().to_owned())),
            None => Ok(Heard::Reconnected),
        }
    }
}
