//! Tokens as the service reads and remembers them: a new token is written, announced and
//! cached as verified; reads come from the store.

use super::changes::Change;
use super::write::Write;
use super::{Result, Service, ServiceError, Verified};
use crate::catalog::PermissionId;
use crate::clock;
use crate::engine::TokenId;
use crate::secret::SecretDigest;
use crate::store::{Holds, TokenFilter, Tx};
use crate::tokens::{self, NewTokenRecord, TokenRecord, TokenView};

impl Service {
    // ---- tokens ----

    /// In `write`: writes a new token, announces it, commits, and caches it as verified:
    /// its plaintext was just made here.
    pub(super) async fn insert_new_token(
        &self,
        mut write: Write<'_>,
        row: NewTokenRecord,
        secret: &str,
    ) -> Result<TokenRecord> {
        let id = self.write_new_token(&mut write.tx, &row).await?;
        write.commit().await?;
        let record = row.into_record(id);
        self.remember_new_token(&record, secret);
        Ok(record)
    }

    /// In `tx`: writes a new token and announces it. Returns its id.
    pub(super) async fn write_new_token(&self, tx: &mut Tx, row: &NewTokenRecord) -> Result<u64> {
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

    /// A token hash written as argon2id, whose secret was just verified, is written again
    /// as a digest, in the background: the decision does not wait for it, and a failure
    /// leaves the argon2id hash, which still verifies, for the next verification to
    /// replace. Only the hash that was verified is replaced.
    pub(super) fn rehash_token(&self, id: u64, verified: &str, secret: &str) {
        let Ok(digest) = Self::digest(secret) else {
            return;
        };
        let (store, verified) = (self.store.clone(), verified.to_owned());
        tokio::spawn(async move {
            match store.replace_token_hash(id, &verified, &digest).await {
                Ok(replaced) => tracing::debug!(
                    token_id = id,
                    replaced,
                    "argon2id hash rewritten as a digest"
                ),
                Err(error) => {
                    tracing::warn!(token_id = id, %error, "could not rewrite an argon2id hash; it still verifies")
                }
            }
        });
    }

    pub async fn token(&self, id: u64) -> Result<TokenView> {
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("token {id} does not exist")))?;
        Ok(TokenView::of(&record, clock::date_of(clock::now())))
    }

    /// One page of the tokens `lister` may see that match `filter` and, with `holding`,
    /// grant that permission (through a legacy scope or a granular scope, `implies`
    /// included); and how many match in all.
    pub async fn list_tokens(
        &self,
        lister: Lister,
        mut filter: TokenFilter,
        holding: Option<PermissionId>,
    ) -> Result<(Vec<TokenView>, u64)> {
        if let Lister::User { id, admin } = lister {
            match filter.user_id {
                Some(other) if other != id && !admin => {
                    return Err(ServiceError::Forbidden(
                        "only an administrator lists another user's tokens".to_owned(),
                    ));
                }
                None if !admin => filter.user_id = Some(id),
                _ => {}
            }
        }
        filter.holds = holding.map(|id| Holds {
            scopes: self
                .catalog
                .scopes_granting(id)
                .map(|s| s.name.clone())
                .collect(),
            permissions: self
                .catalog
                .permissions_granting(id)
                .map(|p| p.name.clone())
                .collect(),
        });
        let today = clock::date_of(clock::now());
        let (records, total) = self.store.list_tokens(&filter, today).await?;
        Ok((
            records.iter().map(|r| TokenView::of(r, today)).collect(),
            total,
        ))
    }
}

/// Whose tokens a list may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lister {
    /// A `manage` or `admin` key: anyone's.
    Key,
    /// A token's user: their own; an administrator's token: anyone's.
    User { id: u64, admin: bool },
}
