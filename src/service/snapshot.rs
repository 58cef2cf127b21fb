//! The snapshot decisions are made from: built from the store, and rebuilt when a write
//! failed after the snapshot took its change or other replicas may have gone unheard.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Result, Service, ServiceError, changes};
use crate::catalog::Catalog;
use crate::engine::Snapshot;
use crate::store::Store;

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

/// Reads the directory, the policies and the job token scopes from the store into a
/// fresh snapshot, by folding the changes that make them.
pub(super) async fn load_snapshot(catalog: &Arc<Catalog>, store: &Store) -> Result<Snapshot> {
    let dump = store.load_directory().await?;
    let scopes = store.job_token_scopes().await?;
    let entries = store.allowlist(None).await?;
    let mut snapshot = Snapshot::new(Arc::clone(catalog));
    for change in changes::of_store(dump, scopes, entries) {
        changes::apply(&mut snapshot, catalog, &change).map_err(|e| {
            ServiceError::Internal(format!("the store holds what a snapshot refuses: {e}"))
        })?;
    }
    Ok(snapshot)
}
