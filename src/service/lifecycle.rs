//! A token's life after it is asked for (DESIGN.md section 4): creation, update,
//! duplication, rotation with reuse detection, revocation and revocation by value.
//! Every step writes its audit event in the transaction of the change; no event holds
//! a plaintext.

use serde_json::{Value, json};

use super::changes::Change;
use super::notify::Revocation;
use super::{Actor, Caller, Result, Service, ServiceError, audit_event};
use crate::clock;
use crate::directory::Invalid;
use crate::engine::{self, TokenId, UserId};
use crate::secret::{self, Prefix, SecretDigest};
use crate::store::Tx;
use crate::tokens::{
    self, CreateToken, DuplicateToken, NewTokenRecord, RotateToken, TokenKind, TokenRecord,
    TokenView, UpdateToken, ValidToken,
};

/// Why a token is being issued.
enum Issue<'a> {
    Create,
    Duplicate {
        from: u64,
    },
    /// The old token is revoked in the same transaction; the new one joins its family.
    Rotate {
        from: &'a TokenRecord,
    },
}

/// Rotation's default lifetime, as GitLab's.
const ROTATED_DAYS: i64 = 7;

/// What an audit event says of a token: never its plaintext or hash.
fn summary(record: &TokenRecord) -> Value {
    json!({
        "name": record.name,
        "description": record.description,
        "kind": record.kind.as_str(),
        "user_id": record.user_id,
        "scopes": record.scopes,
        "granular_scopes": record.granular_scopes,
        "allowed_ips": record.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "expires_at": record.expires_at.map(clock::format_date),
    })
}

fn audit(
    actor: &Actor,
    action: &'static str,
    token_id: u64,
    details: Value,
) -> crate::audit::NewAuditEvent {
    audit_event(actor, action, "token", token_id, details)
}

impl Service {
    /// Creates a token for a user; the answer carries the plaintext, once.
    pub async fn create_token(
        &self,
        actor: &Actor,
        user_id: u64,
        request: CreateToken,
    ) -> Result<TokenView> {
        if self.live.read().snapshot.user(UserId(user_id)).is_none() {
            return Err(ServiceError::NotFound(format!(
                "user {user_id} does not exist"
            )));
        }
        let request = request.with_template(&self.catalog)?;
        self.issue(actor, user_id, request, Issue::Create).await
    }

    /// Validates `request`, mints the token and writes it with its audit event in one
    /// transaction (for a rotation, with the old token's revocation).
    async fn issue(
        &self,
        actor: &Actor,
        user_id: u64,
        request: CreateToken,
        how: Issue<'_>,
    ) -> Result<TokenView> {
        let now = clock::now();
        let today = clock::date_of(now);
        let valid = {
            let live = self.live.read();
            request.validate(
                UserId(user_id),
                &self.catalog,
                &live.snapshot,
                &self.settings(),
                today,
            )?
        };
        if let Caller::Token(holder) = actor.caller {
            self.within_holder(holder, &valid, matches!(how, Issue::Rotate { .. }))?;
        }
        let minted = secret::generate(&self.prefixes, Prefix::Personal)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret_hash = Self::digest(&minted.secret)?;
        let row = NewTokenRecord {
            user_id,
            kind: valid.kind,
            name: valid.name,
            description: valid.description,
            lookup_id: minted.lookup_id.clone(),
            secret_hash,
            scopes: valid.scopes,
            granular_scopes: valid.granular_scopes,
            allowed_ips: valid.allowed_ips,
            created_at: now,
            expires_at: valid.expires_at,
            job: None,
            family_id: match &how {
                Issue::Rotate { from } => Some(from.family_id),
                _ => None,
            },
        };
        let mut write = self.write().await?;
        if let Issue::Rotate { from } = &how
            && !write.tx.revoke_token(from.id, now).await?
        {
            // Revoked since it was read: that is reuse too, and the caller may retry.
            return Err(ServiceError::Conflict(format!(
                "token {} was revoked meanwhile",
                from.id
            )));
        }
        let id = self.write_new_token(&mut write.tx, &row).await?;
        let record = row.into_record(id);
        let event = match &how {
            Issue::Create => audit(actor, "token_created", id, summary(&record)),
            Issue::Duplicate { from } => audit(
                actor,
                "token_duplicated",
                id,
                json!({"from": from, "token": summary(&record)}),
            ),
            Issue::Rotate { from } => audit(
                actor,
                "token_rotated",
                from.id,
                json!({
                    "to": id,
                    "family_id": from.family_id,
                    "expires_at": record.expires_at.map(clock::format_date),
                }),
            ),
        };
        write.tx.record_event(&event, now).await?;
        match &how {
            Issue::Create => self.notify_created(&mut write.tx, &record, None).await?,
            Issue::Duplicate { from } => {
                self.notify_created(&mut write.tx, &record, Some(*from))
                    .await?;
            }
            Issue::Rotate { from } => {
                self.notify_rotated(&mut write.tx, from, id).await?;
                write
                    .announce(&Change::TokenRevoked { id: from.id })
                    .await?;
            }
        }
        write.commit().await?;
        self.outbox_written();
        if let Issue::Rotate { from } = &how {
            self.forget_revoked(&[from.id]);
        }
        self.remember_new_token(&record, &minted.secret);
        let mut view = TokenView::of(&record, today);
        view.token = Some(minted.plaintext);
        Ok(view)
    }

    /// A token may make tokens only within what it holds itself: no permission where it
    /// lacks it, no address outside its own `allowed_ips`, and (but for a rotation, which
    /// exists to extend a token's life) no expiry after its own.
    fn within_holder(&self, holder: u64, valid: &ValidToken, rotating: bool) -> Result<()> {
        let live = self.live.read();
        let holder = live
            .snapshot
            .token(TokenId(holder))
            .ok_or_else(|| ServiceError::Unavailable(format!("token {holder} is not loaded")))?;
        let grant = tokens::personal_grant(
            valid.kind,
            &valid.scopes,
            &valid.granular_scopes,
            &self.catalog,
        )
        .ok_or_else(|| ServiceError::Internal("a validated token has unknown scopes".to_owned()))?;
        if let Some(excess) = engine::exceeds(&live.snapshot, holder, &grant) {
            let field = match valid.kind {
                TokenKind::FineGrained => "granular_scopes",
                _ => "scopes",
            };
            return Err(Invalid::new(
                field,
                format!(
                    "would grant `{}` on {}, which the calling token does not hold there",
                    excess.permission, excess.at
                ),
            )
            .into());
        }
        if !holder.allowed_ips.is_empty()
            && (valid.allowed_ips.is_empty()
                || !valid
                    .allowed_ips
                    .iter()
                    .all(|net| holder.allowed_ips.iter().any(|own| own.contains(net))))
        {
            return Err(Invalid::new(
                "allowed_ips",
                "must lie within the calling token's own `allowed_ips`",
            )
            .into());
        }
        if let Some(own) = holder.expires_at
            && !rotating
            && valid
                .expires_at
                .is_none_or(|date| clock::midnight(date) > own)
        {
            return Err(Invalid::new(
                "expires_at",
                format!(
                    "must be no later than the calling token's own expiry, {}",
                    clock::format_date(clock::date_of(own))
                ),
            )
            .into());
        }
        Ok(())
    }

    /// A token, to change: 404 when it does not exist, 409 when it cannot change.
    async fn changeable(&self, id: u64) -> Result<TokenRecord> {
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("token {id} does not exist")))?;
        if record.kind == TokenKind::Job {
            return Err(ServiceError::Conflict(format!(
                "token {id} is a job token: it lives and ends with its job"
            )));
        }
        Ok(record)
    }

    /// Changes a token's name, description or permissions; audited with a before and
    /// after. The same rules as creation apply, and nothing is written on error.
    pub async fn update_token(
        &self,
        actor: &Actor,
        id: u64,
        patch: UpdateToken,
    ) -> Result<TokenView> {
        let now = clock::now();
        let today = clock::date_of(now);
        let mut write = self.write().await?;
        let before = self.changeable(id).await?;
        if before.revoked {
            return Err(ServiceError::Conflict(format!("token {id} is revoked")));
        }
        let fine = before.kind == TokenKind::FineGrained;
        if fine && patch.scopes.is_some() {
            return Err(Invalid::new(
                "scopes",
                "belong to legacy tokens; this one is fine-grained (`granular_scopes`)",
            )
            .into());
        }
        if !fine && patch.granular_scopes.is_some() {
            return Err(Invalid::new(
                "granular_scopes",
                "belong to fine-grained tokens; this one is legacy (`scopes`)",
            )
            .into());
        }
        let mut request = CreateToken::like(&before);
        if let Some(name) = patch.name {
            request.name = Some(name);
        }
        if let Some(description) = patch.description {
            request.description = Some(description);
        }
        if patch.scopes.is_some() {
            request.scopes = patch.scopes;
        }
        if patch.granular_scopes.is_some() {
            request.granular_scopes = patch.granular_scopes;
        }
        let valid = {
            let live = self.live.read();
            request.validate(
                UserId(before.user_id),
                &self.catalog,
                &live.snapshot,
                &self.settings(),
                today,
            )?
        };
        let after = TokenRecord {
            name: valid.name,
            description: valid.description,
            scopes: valid.scopes,
            granular_scopes: valid.granular_scopes,
            ..before.clone()
        };
        write.tx.update_token(&after).await?;
        let event = audit(
            actor,
            "token_updated",
            id,
            json!({"before": summary(&before), "after": summary(&after)}),
        );
        write.tx.record_event(&event, now).await?;
        let change = Change::TokenUpdated {
            id,
            lookup_id: after.lookup_id.clone(),
        };
        write.announce(&change).await?;
        write.commit().await?;
        // The secret is unchanged: a cached verification stays, with the new grant.
        if let Some(token) = tokens::engine_token(&after, &self.catalog) {
            let mut live = self.live.write();
            if live.snapshot.token(TokenId(id)).is_some() {
                live.snapshot.insert_token(token);
            }
        }
        Ok(TokenView::of(&after, today))
    }

    /// A new token prefilled from an existing one, which stays as it is.
    pub async fn duplicate_token(
        &self,
        actor: &Actor,
        id: u64,
        body: DuplicateToken,
    ) -> Result<TokenView> {
        let original = self.changeable(id).await?;
        let mut request = CreateToken::like(&original);
        if let Some(name) = body.name {
            request.name = Some(name);
        }
        if let Some(expires_at) = body.expires_at {
            request.expires_at = Some(expires_at);
        }
        self.issue(
            actor,
            original.user_id,
            request,
            Issue::Duplicate { from: id },
        )
        .await
    }

    /// Revokes a token and issues its successor with the same attributes, in one
    /// transaction. Rotating a token that is already revoked means its value was
    /// used again after it was replaced: every active token of its rotation family is
    /// revoked, the reuse is recorded, and the answer is 409.
    pub async fn rotate_token(
        &self,
        actor: &Actor,
        id: u64,
        body: RotateToken,
    ) -> Result<TokenView> {
        let old = self.changeable(id).await?;
        if old.revoked {
            self.reuse_detected(actor, &old).await?;
            return Err(ServiceError::Conflict(format!(
                "token {id} was already revoked: its reuse revoked every active token of its rotation family"
            )));
        }
        let mut request = CreateToken::like(&old);
        request.expires_at = Some(match body.expires_at {
            Some(date) => date,
            None => {
                let days = ROTATED_DAYS.min(i64::from(self.settings().max_lifetime_days));
                let today = clock::date_of(clock::now());
                clock::format_date(today + time::Duration::days(days))
            }
        });
        self.issue(actor, old.user_id, request, Issue::Rotate { from: &old })
            .await
    }

    async fn reuse_detected(&self, actor: &Actor, old: &TokenRecord) -> Result<()> {
        let now = clock::now();
        let mut write = self.write().await?;
        let revoked = write.tx.revoke_family(old.family_id, now).await?;
        let ids: Vec<u64> = revoked.iter().map(|record| record.id).collect();
        let event = audit(
            actor,
            "token_reuse_detected",
            old.id,
            json!({"family_id": old.family_id, "revoked": ids}),
        );
        write.tx.record_event(&event, now).await?;
        for id in &ids {
            write.announce(&Change::TokenRevoked { id: *id }).await?;
        }
        self.notify_revoked(&mut write.tx, &revoked, Revocation::ReuseDetected)
            .await?;
        write.commit().await?;
        self.outbox_written();
        self.forget_revoked(&ids);
        Ok(())
    }

    /// Revokes a token; it is denied by this replica from the moment this returns.
    pub async fn revoke_token(&self, actor: &Actor, id: u64) -> Result<()> {
        let mut write = self.write().await?;
        let now = clock::now();
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("token {id} does not exist")))?;
        if !write.tx.revoke_token(id, now).await? {
            return Err(ServiceError::Conflict(format!(
                "token {id} is already revoked"
            )));
        }
        self.revoked_in(&mut write.tx, actor, &record, Revocation::Revoked, now)
            .await?;
        write.commit().await?;
        self.outbox_written();
        self.forget_revoked(&[id]);
        Ok(())
    }

    /// Revokes a leaked token by its value (a secret scanner's report). The value must
    /// be a real token: its secret is verified. Already revoked is fine (204 again).
    pub async fn revoke_by_value(&self, actor: &Actor, presented: &str) -> Result<()> {
        let not_found = || ServiceError::NotFound("no such token".to_owned());
        let parsed = secret::parse(&self.prefixes, presented).map_err(|_| not_found())?;
        let record = self
            .store
            .token_by_lookup(parsed.lookup_id)
            .await?
            .ok_or_else(not_found)?;
        let known = self.live.read().tokens.get(parsed.lookup_id).copied();
        let genuine = match known {
            Some(verified) => verified.digest.matches(&SecretDigest::of(parsed.secret)),
            None => {
                self.verify(record.secret_hash.clone(), parsed.secret)
                    .await?
            }
        };
        if !genuine {
            return Err(not_found());
        }
        let mut write = self.write().await?;
        let now = clock::now();
        if !write.tx.revoke_token(record.id, now).await? {
            return Ok(());
        }
        self.revoked_in(&mut write.tx, actor, &record, Revocation::ByValue, now)
            .await?;
        write.commit().await?;
        self.outbox_written();
        self.forget_revoked(&[record.id]);
        Ok(())
    }

    /// In `tx`: the audit event, the notification and the announcement of a revocation.
    async fn revoked_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        record: &TokenRecord,
        why: Revocation,
        now: i64,
    ) -> Result<()> {
        let action = match why {
            Revocation::ByValue => "token_revoked_by_value",
            Revocation::Revoked | Revocation::ReuseDetected => "token_revoked",
        };
        tx.record_event(&audit(actor, action, record.id, json!({})), now)
            .await?;
        self.notify_revoked(tx, std::slice::from_ref(record), why)
            .await?;
        self.announce(tx, &Change::TokenRevoked { id: record.id })
            .await
    }

    /// After a revocation commits: this replica denies the tokens at once.
    pub(super) fn forget_revoked(&self, ids: &[u64]) {
        let mut live = self.live.write();
        for id in ids {
            live.snapshot.revoke_token(TokenId(*id));
        }
        live.revocations += 1;
    }
}
