-- Rotation families: a rotated token's successor carries the id of the family's first
-- token. NULL means the token starts its own family. Rotating a token that is already
-- revoked revokes every active token of its family (reuse detection).
ALTER TABLE tokens ADD COLUMN family_id BIGINT;
CREATE INDEX tokens_family_id ON tokens (family_id);
