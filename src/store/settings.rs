//! Instance settings: one row.

use sqlx::FromRow;

use super::{Result, Store, StoreError, Tx, on_pool, on_tx};
use crate::settings::InstanceSettings;

#[derive(FromRow)]
struct SettingsRow {
    max_lifetime_days: i32,
    require_expiry: bool,
    allow_legacy_token_creation: bool,
}

impl Store {
    pub async fn settings(&self) -> Result<InstanceSettings> {
        let row: SettingsRow = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT max_lifetime_days, require_expiry, allow_legacy_token_creation
                 FROM settings WHERE id = 1",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(InstanceSettings {
            max_lifetime_days: u32::try_from(row.max_lifetime_days)
                .map_err(|_| StoreError::Corrupt("max_lifetime_days".to_owned()))?,
            require_expiry: row.require_expiry,
            allow_legacy_token_creation: row.allow_legacy_token_creation,
        })
    }
}

impl Tx {
    pub async fn put_settings(&mut self, settings: &InstanceSettings) -> Result<()> {
        on_tx!(&mut self.inner, tx => {
            sqlx::query(
                "UPDATE settings SET max_lifetime_days = $1, require_expiry = $2,
                     allow_legacy_token_creation = $3 WHERE id = 1",
            )
            .bind(i32::try_from(settings.max_lifetime_days).unwrap_or(i32::MAX))
            .bind(settings.require_expiry)
            .bind(settings.allow_legacy_token_creation)
            .execute(&mut **tx)
            .await?;
        });
        Ok(())
    }
}
