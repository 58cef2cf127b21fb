//! Service keys: checked (once by argon2, then by digest), made and revoked, each step
//! audited; and argon2 itself, off the runtime.

use super::changes::Change;
use super::{Actor, Caller, KeyVerdict, Result, Service, ServiceError, VerifiedKey, audit_event};
use crate::clock;
use crate::directory::Invalid;
use crate::keys::{KeyRole, NewServiceKey, ServiceKeyRecord};
use crate::secret::{self, HashKind, Prefix, SecretDigest};

impl Service {
    // ---- service keys ----

    /// Identifies a caller by its service key.
    pub async fn verify_key(&self, presented: &str) -> Result<KeyVerdict> {
        if let Some(admin) = &self.admin_key {
            if admin.matches(&SecretDigest::of(presented)) {
                return Ok(KeyVerdict::Valid {
                    role: KeyRole::Admin,
                    caller: Caller::AdminKey,
                });
            }
        }
        let Ok(parsed) = secret::parse(&self.key_prefixes, presented) else {
            return Ok(KeyVerdict::Invalid);
        };
        let digest = SecretDigest::of(parsed.secret);
        if let Some(known) = self.live.read().keys.get(parsed.lookup_id).copied() {
            return Ok(if known.digest.matches(&digest) {
                KeyVerdict::Valid {
                    role: known.role,
                    caller: Caller::ServiceKey(known.id),
                }
            } else {
                KeyVerdict::Invalid
            });
        }
        let Some(record) = self.store.service_key_by_lookup(parsed.lookup_id).await? else {
            return Ok(KeyVerdict::Invalid);
        };
        if record.revoked_at.is_some()
            || !self
                .verify(record.secret_hash.clone(), parsed.secret)
                .await?
        {
            return Ok(KeyVerdict::Invalid);
        }
        self.live.write().keys.insert(
            record.lookup_id,
            VerifiedKey {
                id: record.id,
                role: record.role,
                digest,
            },
        );
        Ok(KeyVerdict::Valid {
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
        let minted = secret::generate(&self.key_prefixes, Prefix::Personal)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret_hash = self.hash_key(minted.secret.clone()).await?;
        let new = NewServiceKey {
            name: name.to_owned(),
            role,
            lookup_id: minted.lookup_id.clone(),
            secret_hash,
            created_at: clock::now(),
        };
        let mut write = self.write().await?;
        let id = write.tx.insert_service_key(&new).await?;
        let event = audit_event(
            actor,
            "service_key_created",
            "service_key",
            id,
            serde_json::json!({"name": new.name, "role": role.as_str()}),
        );
        write.tx.record_event(&event, new.created_at).await?;
        write.commit().await?;
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

    /// Every service key, revoked ones too (never a secret).
    pub async fn service_keys(&self) -> Result<Vec<ServiceKeyRecord>> {
        Ok(self.store.service_keys().await?)
    }

    pub async fn revoke_key(&self, actor: &Actor, id: u64) -> Result<()> {
        let mut write = self.write().await?;
        let now = clock::now();
        let Some(lookup_id) = write.tx.revoke_service_key(id, now).await? else {
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
        write.tx.record_event(&event, now).await?;
        let change = Change::KeyRevoked {
            lookup_id: lookup_id.clone(),
        };
        write.announce(&change).await?;
        write.commit().await?;
        self.live.write().keys.remove(&lookup_id);
        Ok(())
    }

    // ---- hashing ----

    /// A token's secret as stored: the salted digest (cheap, on the runtime).
    pub(super) fn digest(secret: &str) -> Result<String> {
        secret::digest_secret(secret).map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// A service key's secret as stored: argon2id at the configured cost, off the runtime.
    pub(super) async fn hash_key(&self, secret: String) -> Result<String> {
        let params = self.argon2;
        tokio::task::spawn_blocking(move || secret::hash_secret(params, &secret))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Whether `secret` matches a stored hash: a digest at once, argon2id off the runtime.
    pub(super) async fn verify(&self, hash: String, secret: &str) -> Result<bool> {
        if HashKind::of(&hash) == HashKind::Digest {
            return Ok(secret::verify_secret(&hash, secret));
        }
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || secret::verify_secret(&hash, &secret))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}
