//! The one shape of every write: the store's writer lock and a transaction, with the
//! changes the write makes announced to the other replicas inside it and applied to
//! this replica's snapshot before it commits. A write that took a change into the
//! snapshot and then does not commit (a failed commit, an error after) leaves the
//! snapshot stale: decisions answer 503 until it is rebuilt from the store.

use super::changes::{self, Change, NotApplied};
use super::{Result, Service, ServiceError};
use crate::engine::SnapshotError;
use crate::store::Tx;

/// One write in progress. Dropped without `commit`, it rolls back.
#[derive(Debug)]
pub(super) struct Write<'s> {
    service: &'s Service,
    /// Holds the store's writer lock.
    pub(super) tx: Tx,
    /// Set once a change is in the snapshot and not yet in the store.
    applied: Applied<'s>,
}

/// Marks the snapshot stale if a write that changed it ends without committing.
#[derive(Debug)]
struct Applied<'s> {
    service: &'s Service,
    pending: bool,
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        if self.pending {
            self.service
                .mark_stale("a write ended without committing after the snapshot changed");
        }
    }
}

impl Service {
    /// Waits for the writer lock and begins a transaction under it.
    pub(super) async fn write(&self) -> Result<Write<'_>> {
        let tx = self.store.begin().await?;
        Ok(Write {
            service: self,
            tx,
            applied: Applied {
                service: self,
                pending: false,
            },
        })
    }

    /// Asks for a rebuild from the store: decisions answer 503 until it is done.
    pub(super) fn mark_stale(&self, why: &str) {
        tracing::warn!(why, "the snapshot will be rebuilt from the store");
        self.stale_marks
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.stale.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Write<'_> {
    /// Tells the other replicas of `change` when the write commits.
    pub(super) async fn announce(&mut self, change: &Change) -> Result<()> {
        self.service.announce(&mut self.tx, change).await
    }

    /// Announces `change` and applies it to the snapshot, which may refuse it (`refuse`
    /// says how): then nothing is written.
    pub(super) async fn publish(
        &mut self,
        change: Change,
        refuse: impl FnOnce(SnapshotError) -> ServiceError,
    ) -> Result<()> {
        self.announce(&change).await?;
        let service = self.service;
        changes::apply(
            &mut service.live.write().snapshot,
            &service.catalog,
            &change,
        )
        .map_err(|e| match e {
            NotApplied::Refused(e) => refuse(e),
            NotApplied::Catalog(invalid) => invalid.into(),
        })?;
        self.applied.pending = true;
        Ok(())
    }

    pub(super) async fn commit(self) -> Result<()> {
        let Write {
            tx, mut applied, ..
        } = self;
        let committed = tx.commit().await;
        if let Err(e) = &committed
            && applied.pending
        {
            tracing::error!(error = %e, "commit failed after the snapshot changed");
        }
        // Committed: nothing is pending; failed: `applied` marks the snapshot stale.
        applied.pending &= committed.is_err();
        committed.map_err(Into::into)
    }
}
