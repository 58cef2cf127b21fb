-- patrol's store on SQLite: the directory mirror, tokens, service keys, settings and
-- group token policies. Times are Unix seconds; token expiry is an ISO date
-- (`YYYY-MM-DD`, which sorts as text); lists are JSON text, read only by patrol.

CREATE TABLE users (
    id        BIGINT PRIMARY KEY,
    username  TEXT    NOT NULL UNIQUE,
    blocked   BOOLEAN NOT NULL,
    admin     BOOLEAN NOT NULL
);

CREATE TABLE groups (
    id          BIGINT PRIMARY KEY,
    parent_id   BIGINT,
    path        TEXT NOT NULL,
    name        TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    plan        TEXT
);

CREATE TABLE projects (
    id              BIGINT PRIMARY KEY,
    namespace_kind  TEXT   NOT NULL,
    namespace_id    BIGINT NOT NULL,
    path            TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    visibility      TEXT   NOT NULL,
    features        TEXT   NOT NULL
);

CREATE TABLE group_members (
    group_id      BIGINT   NOT NULL,
    user_id       BIGINT   NOT NULL,
    access_level  INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE project_members (
    project_id    BIGINT   NOT NULL,
    user_id       BIGINT   NOT NULL,
    access_level  INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE group_token_policies (
    group_id              BIGINT PRIMARY KEY,
    enforce_fine_grained  BOOLEAN NOT NULL,
    enforced_after        TEXT
);

CREATE TABLE settings (
    id                           INTEGER PRIMARY KEY CHECK (id = 1),
    max_lifetime_days            INTEGER NOT NULL,
    require_expiry               BOOLEAN NOT NULL,
    allow_legacy_token_creation  BOOLEAN NOT NULL
);
INSERT INTO settings VALUES (1, 365, 1, 1);

CREATE TABLE tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    lookup_id        TEXT    NOT NULL UNIQUE,
    secret_hash      TEXT    NOT NULL,
    scopes           TEXT    NOT NULL,
    granular_scopes  TEXT    NOT NULL,
    allowed_ips      TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    expires_at       TEXT,
    revoked          BOOLEAN NOT NULL,
    revoked_at       BIGINT,
    last_used_at     BIGINT,
    last_used_ips    TEXT    NOT NULL
);
CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE service_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    lookup_id    TEXT   NOT NULL UNIQUE,
    secret_hash  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
