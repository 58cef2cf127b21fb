-- CI/CD job tokens (DESIGN.md section 8) and the audit trail.
--
-- A job token is a row of `tokens` of kind `job`, tied to its project and job. It stops
-- working at `expires_unix` (an instant, not a date) or when its job ends (revoked).

ALTER TABLE tokens ADD COLUMN project_id BIGINT;
ALTER TABLE tokens ADD COLUMN job_id BIGINT;
ALTER TABLE tokens ADD COLUMN expires_unix BIGINT;
CREATE UNIQUE INDEX tokens_job_id ON tokens (job_id);

-- A project's inbound job token settings; a project without a row has the defaults
-- (inbound on, fine-grained off).
CREATE TABLE job_token_scopes (
    project_id            BIGINT  PRIMARY KEY,
    inbound_enabled       BOOLEAN NOT NULL,
    fine_grained_enabled  BOOLEAN NOT NULL
);

-- Which projects and groups' job tokens may reach a project, with their policies.
CREATE TABLE job_token_allowlist (
    project_id           BIGINT  NOT NULL,
    source_kind          TEXT    NOT NULL,
    source_id            BIGINT  NOT NULL,
    default_permissions  BOOLEAN NOT NULL,
    policies             TEXT    NOT NULL,
    created_at           BIGINT  NOT NULL,
    PRIMARY KEY (project_id, source_kind, source_id)
);

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   BIGINT NOT NULL,
    actor        TEXT   NOT NULL,
    action       TEXT   NOT NULL,
    target_type  TEXT   NOT NULL,
    target_id    BIGINT NOT NULL,
    source_ip    TEXT,
    details      TEXT   NOT NULL
);
CREATE INDEX audit_events_target ON audit_events (target_type, target_id);
