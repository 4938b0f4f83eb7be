-- Who may see and do what: accounts (local, with a password hash, or from a sign-in
-- provider), their role bindings, server-side sessions that can be revoked, API tokens
-- for machines, and the append-only audit log. Secrets are never stored: a session's
-- and a token's value are kept as their SHA-256, a password as its Argon2id hash.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT,
    -- Argon2id in PHC form; NULL for an account that signs in only through a provider.
    password_hash TEXT,
    -- 'local', or the name of the sign-in provider the account came from.
    provider      TEXT NOT NULL DEFAULT 'local',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);

-- A role, on every engine ('*') or on the engines a pattern names ('temporal:prod:*').
CREATE TABLE role_bindings (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    engines TEXT NOT NULL DEFAULT '*',
    PRIMARY KEY (user_id, role, engines)
) WITHOUT ROWID;

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- How the session was opened: 'password' or 'oidc:<provider>'.
    via          TEXT NOT NULL,
    -- The bindings a provider's claims gave at sign-in (JSON), on top of the account's.
    granted      TEXT NOT NULL DEFAULT '[]',
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    -- JSON array: "read", "operate", "ingest:<source>".
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER,
    last_used_ms INTEGER,
    revoked_ms   INTEGER
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    -- Who: an account's login, or 'token:<name>'; how: 'session', 'token', 'system'.
    actor       TEXT NOT NULL,
    via         TEXT NOT NULL,
    action      TEXT NOT NULL,
    workflow_id TEXT,
    reason      TEXT,
    -- 'ok', 'refused' or 'failed', with what was said.
    outcome     TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX audit_by_run ON audit_log (workflow_id, id) WHERE workflow_id IS NOT NULL;
CREATE INDEX audit_by_actor ON audit_log (actor COLLATE NOCASE, id);
CREATE INDEX audit_by_action ON audit_log (action, id);

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
