//! Tokens as the service reads and remembers them: a new token is written, announced and
//! cached as verified; reads come from the store.

use super::changes::Change;
use super::write::Write;
use super::{Result, Service, ServiceError, Verified};
use crate::clock;
use crate::engine::TokenId;
use crate::secret::SecretDigest;
use crate::store::{NewTokenRow, TokenFilter, TokenRecord, Tx};
use crate::tokens::{self, TokenView};

impl Service {
    // ---- tokens ----

    /// In `write`: writes a new token, announces it, commits, and caches it as verified:
    /// its plaintext was just made here.
    pub(super) async fn insert_new_token(
        &self,
        mut write: Write<'_>,
        row: NewTokenRow,
        secret: &str,
    ) -> Result<TokenRecord> {
        let id = self.write_new_token(&mut write.tx, &row).await?;
        write.commit().await?;
        let record = row.into_record(id);
        self.remember_new_token(&record, secret);
        Ok(record)
    }

    /// In `tx`: writes a new token and announces it. Returns its id.
    pub(super) async fn write_new_token(&self, tx: &mut Tx, row: &NewTokenRow) -> Result<u64> {
        let id = tx.insert_token(row).await?;
        let created = Change::TokenCreated {
            lookup_id: row.lookup_id.clone(),
        };
        self.announce(tx, &created).await?;
        Ok(id)
    }

    /// After the commit: a token made here is known, and verified.
    pub(super) fn remember_new_token(&self, record: &TokenRecord, secret: &str) {
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
}
