-- The PostgreSQL read model: the same tables, keys, defaults, indexes and counters as
-- applying every SQLite migration (migrations/sqlite) up to 20261208000001, in one file
-- for a database that starts empty. Later changes come as new files in both folders.
--
-- What differs from SQLite, and why:
-- * INTEGER is BIGINT (sqlx decodes i64 only from INT8), except the flags the code reads
--   as bool, which are BOOLEAN (users.disabled, ended_counts.with_sla).
-- * SQLite's rowid ids are identity columns (never reused, as AUTOINCREMENT's).
-- * workflows has a real `rowid` column, which the writer fills (above the highest one
--   stored, so the newest run has the highest), and the generated `search_text` that
--   the trigram index covers, instead of the FTS5 tables `workflows_text` and
--   `workflows_words` and their triggers.
-- * Each trigger is a PL/pgSQL function with a row trigger per event.
-- * users.login's NOCASE is an ICU collation of that name that ignores case; the audit
--   log's index by actor is on lower(actor).

-- Trigram GIN indexes (pg_trgm is a trusted extension: the database's owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- SQLite's NOCASE: strings equal but for case are equal (for every script, where SQLite
-- folds only ASCII). Nondeterministic, so that `=`, UNIQUE, ON CONFLICT and an index all
-- ignore case; named `nocase` so that a query's `COLLATE NOCASE` names it (identifiers
-- fold to lower case). PostgreSQL 15 refuses LIKE on such a column.
CREATE COLLATION IF NOT EXISTS nocase (
    provider = icu, locale = 'und-u-ks-level2', deterministic = false
);

-- The read model: one row per workflow run, one per step, and the steps' log lines.
-- Instants are milliseconds since the Unix epoch; JSON is stored as text.

CREATE TABLE workflows (
    id                 TEXT PRIMARY KEY NOT NULL,
    engine             TEXT NOT NULL,
    workflow_type      TEXT NOT NULL,
    status             TEXT NOT NULL,
    status_reason      TEXT,
    definition_name    TEXT,
    definition_version TEXT,
    declared_steps     BIGINT,
    completed_steps    BIGINT NOT NULL DEFAULT 0,
    total_steps        BIGINT NOT NULL DEFAULT 0,
    sla_target_seconds BIGINT,
    sla_status         TEXT NOT NULL,
    triggered_by       TEXT,
    trigger_type       TEXT,
    priority           TEXT NOT NULL,
    tags               TEXT NOT NULL DEFAULT '[]',
    input              TEXT,
    capabilities       TEXT NOT NULL,
    created_ms         BIGINT NOT NULL,
    started_ms         BIGINT,
    completed_ms       BIGINT,
    updated_ms         BIGINT NOT NULL,
    engine_ref         TEXT,
    -- SQLite's implicit rowid, made a column: given by the writer (max(rowid) + n, the
    -- first row of a statement the highest), kept by the upsert of a stored run. The
    -- search reads the newest matches first by it.
    rowid              BIGINT NOT NULL,
    -- What the search looks at (the fields SQLite's text indexes covered: id, type,
    -- trigger, tags, the engine's own id), separated by U+001F so that no match spans two
    -- fields, in lower case: a search asks `search_text LIKE lower('%text%')`, folded by
    -- the same lower() (the database's locale; C folds only ASCII letters, as SQLite's
    -- LIKE does). concat_ws is not immutable, hence ||.
    search_text        TEXT GENERATED ALWAYS AS (lower(
        id || chr(31) || workflow_type || chr(31) || coalesce(triggered_by, '') || chr(31)
        || tags || chr(31) || coalesce(engine_ref, ''))) STORED
);

-- The list's stable order (newest first, ties by id), overall and per filter.
CREATE INDEX workflows_by_created ON workflows (created_ms DESC, id DESC);
CREATE INDEX workflows_by_status ON workflows (status, created_ms DESC, id DESC);
CREATE INDEX workflows_by_type ON workflows (workflow_type, created_ms DESC, id DESC);
CREATE INDEX workflows_by_engine ON workflows (engine, created_ms DESC, id DESC);
-- "Completed/failed today", time-window analytics and retention.
CREATE INDEX workflows_by_completed ON workflows (completed_ms) WHERE completed_ms IS NOT NULL;
-- A run by its rowid, the highest rowid, and a search's matches newest first.
CREATE UNIQUE INDEX workflows_by_rowid ON workflows (rowid);
-- Any substring of three characters or more, as the FTS5 trigram index answered.
CREATE INDEX workflows_by_text ON workflows USING gin (search_text gin_trgm_ops);

CREATE TABLE steps (
    workflow_id  TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    step_number  BIGINT NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    branch       TEXT,
    compensates  BIGINT,
    started_ms   BIGINT,
    completed_ms BIGINT,
    input        TEXT,
    output       TEXT,
    error        TEXT,
    retry_count  BIGINT NOT NULL DEFAULT 0,
    attempts     TEXT NOT NULL DEFAULT '[]',
    -- How the step is retried, as its engine declares it (JSON: max_attempts, delays).
    retry_policy TEXT,
    -- The step's stored log lines are capped in bytes: what they weigh now, and how many
    -- of the oldest lines were dropped to stay under the cap.
    log_bytes    BIGINT NOT NULL DEFAULT 0,
    logs_dropped BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, step_number)
);

CREATE TABLE step_logs (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    step_number BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    line        TEXT NOT NULL
);

CREATE INDEX step_logs_by_step ON step_logs (workflow_id, step_number, id);

-- Analytics rollups: runs that ended, per five-minute bucket and type, and their steps
-- per bucket, type and step name. Written by the projector when a run ends; histograms
-- are JSON maps of log-bucket index to count (for percentiles).
CREATE TABLE analytics_runs (
    bucket_ms     BIGINT NOT NULL,
    workflow_type TEXT NOT NULL,
    ended         BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    with_target   BIGINT NOT NULL,
    breached      BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    histogram     TEXT NOT NULL,
    PRIMARY KEY (bucket_ms, workflow_type)
);

CREATE TABLE analytics_steps (
    bucket_ms     BIGINT NOT NULL,
    workflow_type TEXT NOT NULL,
    step_name     TEXT NOT NULL,
    occurrences   BIGINT NOT NULL,
    retried       BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    histogram     TEXT NOT NULL,
    PRIMARY KEY (bucket_ms, workflow_type, step_name)
);

-- The Gantt chart reads one type's step rollups over the last week ("usual" durations).
CREATE INDEX analytics_steps_by_type ON analytics_steps (workflow_type, bucket_ms);

-- Where each engine adapter got to in its source (e.g. the last Temporal history event
-- mapped for a run), written in the same transaction as the events it led to.
CREATE TABLE engine_positions (
    engine   TEXT NOT NULL,
    key      TEXT NOT NULL,
    position TEXT NOT NULL,
    PRIMARY KEY (engine, key)
);

-- The runs per engine, type, status and SLA state, kept exact by triggers inside the
-- transaction of each change (the tabs, the stats line and the list's total add these
-- up). A count that falls to 0 keeps its row (the retention drops those).
CREATE TABLE workflow_counts (
    engine        TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    status        TEXT NOT NULL,
    sla_status    TEXT NOT NULL,
    runs          BIGINT NOT NULL,
    PRIMARY KEY (engine, workflow_type, status, sla_status)
);

-- The runs that ended, per UTC day of the end (`completed_ms / 86400000`, truncated as
-- SQLite's integer division), engine, status, SLA state and whether the run had an SLA
-- target: the stats line's "today" is one short range however many runs ended today.
CREATE TABLE ended_counts (
    day        BIGINT NOT NULL,
    engine     TEXT NOT NULL,
    status     TEXT NOT NULL,
    sla_status TEXT NOT NULL,
    with_sla   BOOLEAN NOT NULL,
    runs       BIGINT NOT NULL,
    PRIMARY KEY (day, engine, status, sla_status, with_sla)
);

-- The old row leaves its count, the new one joins its own (one function for the three
-- events). SQLite's update trigger watched status and sla_status only; engine and
-- workflow_type are part of the key too, so they are watched here as well (the writer
-- never changes them, so this only makes the counts exact in more cases).
CREATE FUNCTION workflows_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE workflow_counts SET runs = runs - 1
        WHERE engine = OLD.engine AND workflow_type = OLD.workflow_type
          AND status = OLD.status AND sla_status = OLD.sla_status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO workflow_counts (engine, workflow_type, status, sla_status, runs)
        VALUES (NEW.engine, NEW.workflow_type, NEW.status, NEW.sla_status, 1)
        ON CONFLICT (engine, workflow_type, status, sla_status)
        DO UPDATE SET runs = workflow_counts.runs + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflows_counted_on_insert AFTER INSERT ON workflows
FOR EACH ROW EXECUTE FUNCTION workflows_counted();

CREATE TRIGGER workflows_counted_on_update
AFTER UPDATE OF engine, workflow_type, status, sla_status ON workflows
FOR EACH ROW WHEN (OLD.engine IS DISTINCT FROM NEW.engine
    OR OLD.workflow_type IS DISTINCT FROM NEW.workflow_type
    OR OLD.status IS DISTINCT FROM NEW.status
    OR OLD.sla_status IS DISTINCT FROM NEW.sla_status)
EXECUTE FUNCTION workflows_counted();

CREATE TRIGGER workflows_counted_on_delete AFTER DELETE ON workflows
FOR EACH ROW EXECUTE FUNCTION workflows_counted();

-- Same for the runs that ended: only a row with an end counts.
CREATE FUNCTION workflows_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.completed_ms IS NOT NULL THEN
        UPDATE ended_counts SET runs = runs - 1
        WHERE day = OLD.completed_ms / 86400000 AND engine = OLD.engine
          AND status = OLD.status AND sla_status = OLD.sla_status
          AND with_sla = (OLD.sla_target_seconds IS NOT NULL);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.completed_ms IS NOT NULL THEN
        INSERT INTO ended_counts (day, engine, status, sla_status, with_sla, runs)
        VALUES (NEW.completed_ms / 86400000, NEW.engine, NEW.status, NEW.sla_status,
                NEW.sla_target_seconds IS NOT NULL, 1)
        ON CONFLICT (day, engine, status, sla_status, with_sla)
        DO UPDATE SET runs = ended_counts.runs + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflows_ended_on_insert AFTER INSERT ON workflows
FOR EACH ROW WHEN (NEW.completed_ms IS NOT NULL)
EXECUTE FUNCTION workflows_ended();

CREATE TRIGGER workflows_ended_on_update
AFTER UPDATE OF completed_ms, engine, status, sla_status, sla_target_seconds ON workflows
FOR EACH ROW WHEN (OLD.completed_ms IS DISTINCT FROM NEW.completed_ms
    OR OLD.engine IS DISTINCT FROM NEW.engine
    OR OLD.status IS DISTINCT FROM NEW.status
    OR OLD.sla_status IS DISTINCT FROM NEW.sla_status
    OR (OLD.sla_target_seconds IS NULL) IS DISTINCT FROM (NEW.sla_target_seconds IS NULL))
EXECUTE FUNCTION workflows_ended();

CREATE TRIGGER workflows_ended_on_delete AFTER DELETE ON workflows
FOR EACH ROW WHEN (OLD.completed_ms IS NOT NULL)
EXECUTE FUNCTION workflows_ended();

-- TRUNCATE (which SQLite does not have) skips row triggers: with every run gone, so are
-- the counts.
CREATE FUNCTION workflows_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM workflow_counts;
    DELETE FROM ended_counts;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflows_counted_on_truncate AFTER TRUNCATE ON workflows
FOR EACH STATEMENT EXECUTE FUNCTION workflows_truncated();

-- Who may see and do what: accounts (local, with a password hash, or from a sign-in
-- provider), their role bindings, server-side sessions that can be revoked, API tokens
-- for machines, and the append-only audit log. Secrets are never stored: a session's
-- and a token's value are kept as their SHA-256, a password as its Argon2id hash.

CREATE TABLE users (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    -- Unique and compared case aside (`ON CONFLICT (login)` and `login = $1` as in SQLite).
    login         TEXT COLLATE nocase NOT NULL UNIQUE,
    display_name  TEXT,
    -- Argon2id in PHC form; NULL for an account that signs in only through a provider.
    password_hash TEXT,
    -- 'local', or the name of the sign-in provider the account came from.
    provider      TEXT NOT NULL DEFAULT 'local',
    disabled      BOOLEAN NOT NULL DEFAULT false,
    created_ms    BIGINT NOT NULL,
    -- An account from a sign-in provider is that provider's person, known by the
    -- provider's own stable id for them (the ID token's `sub`).
    subject       TEXT
);
CREATE UNIQUE INDEX users_by_provider_subject ON users (provider, subject)
    WHERE subject IS NOT NULL;

-- A role, on every engine ('*') or on the engines a pattern names ('temporal:prod:*').
CREATE TABLE role_bindings (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,
    engines TEXT NOT NULL DEFAULT '*',
    PRIMARY KEY (user_id, role, engines)
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- How the session was opened: 'password' or 'oidc:<provider>'.
    via          TEXT NOT NULL,
    -- The bindings a provider's claims gave at sign-in (JSON), on top of the account's.
    granted      TEXT NOT NULL DEFAULT '[]',
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    revoked_ms   BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    -- JSON array: "read", "operate", "ingest:<source>".
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT,
    last_used_ms BIGINT,
    revoked_ms   BIGINT
);

CREATE TABLE audit_log (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
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
-- The actor case aside: serves `lower(actor) = lower($1)` (SQLite's `actor COLLATE NOCASE`).
CREATE INDEX audit_by_actor ON audit_log (lower(actor), id);
CREATE INDEX audit_by_action ON audit_log (action, id);

-- SQLite's RAISE(ABORT) fails the statement with a constraint error: so does this
-- (SQLSTATE 23000). TRUNCATE, which skips row triggers, is refused too.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_is_append_only_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Operators' commands to the in-house engines that push their runs: written when asked,
-- kept until the engine has answered, delivered at least once (by webhook or pulled by
-- the engine) under an idempotency key that stays the same across deliveries.
CREATE TABLE engine_commands (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    -- The pushing source (`billing`), whose engine is `custom:<source>`.
    source          TEXT NOT NULL,
    workflow_id     TEXT NOT NULL,
    -- pause, resume, cancel, retry, clone, terminate.
    action          TEXT NOT NULL,
    from_step       BIGINT,
    reason          TEXT,
    requested_by    TEXT NOT NULL,
    requested_ms    BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    -- requested → delivered → accepted | refused.
    state           TEXT NOT NULL DEFAULT 'requested',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    -- Why the last delivery failed, or the engine's words when it refused.
    said            TEXT,
    delivered_ms    BIGINT,
    answered_ms     BIGINT
);
CREATE INDEX engine_commands_due ON engine_commands (source, state, next_attempt_ms);
CREATE INDEX engine_commands_by_run ON engine_commands (workflow_id, id);

-- Pushing sources declared by admins through the API (those of the --push-sources file
-- are not stored): the declaration as given, secrets only by the name of the environment
-- variable that holds them, and who declared it when.
CREATE TABLE push_sources (
    name        TEXT PRIMARY KEY,
    declaration TEXT NOT NULL,
    declared_by TEXT NOT NULL,
    declared_ms BIGINT NOT NULL
);
