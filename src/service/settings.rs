//! Instance settings (DESIGN.md section 7), read from memory, written through the store;
//! and the audit trail every write leaves.

use super::changes::Change;
use super::{Actor, Result, Service, audit_event};
use crate::audit::AuditEvent;
use crate::clock;
use crate::directory::Invalid;
use crate::settings::InstanceSettings;
use crate::store::AuditFilter;

impl Service {
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
        let mut write = self.write().await?;
        write.tx.put_settings(&settings).await?;
        let event = audit_event(
            actor,
            "settings_updated",
            "instance",
            0,
            serde_json::json!({"before": self.settings(), "after": settings}),
        );
        write.tx.record_event(&event, clock::now()).await?;
        write.announce(&Change::Settings { settings }).await?;
        write.commit().await?;
        *self.settings.write() = settings;
        Ok(settings)
    }

    /// One page of audit events, newest first, and how many match in all.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<(Vec<AuditEvent>, u64)> {
        Ok(self.store.audit_events(filter).await?)
    }
}
