-- Notifications (DESIGN.md section 7): an outbox written in the transaction of the
-- change it tells of, delivered to the webhook by a background worker, at least once.
--
-- `idempotency_key` names the event (`token_revoked:42`): the receiver sees it as the
-- `Idempotency-Key` header, and its uniqueness makes "once per token" events (expiring,
-- expired) impossible to enqueue twice, whichever replica finds them.
-- A row is due when `delivered_at` is NULL and `next_attempt_ms` (Unix milliseconds) has
-- passed; a worker claims it by moving `next_attempt_ms` past its delivery attempt (a
-- lease), so a worker that dies mid-delivery leaves it to be tried again.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    event            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL,
    delivered_at     BIGINT,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE delivered_at IS NULL;

-- The expiry scan looks for tokens by expiry date.
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE revoked = FALSE;
