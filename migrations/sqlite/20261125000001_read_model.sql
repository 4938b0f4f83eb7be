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
    declared_steps     INTEGER,
    completed_steps    INTEGER NOT NULL DEFAULT 0,
    total_steps        INTEGER NOT NULL DEFAULT 0,
    sla_target_seconds INTEGER,
    sla_status         TEXT NOT NULL,
    triggered_by       TEXT,
    trigger_type       TEXT,
    priority           TEXT NOT NULL,
    tags               TEXT NOT NULL DEFAULT '[]',
    input              TEXT,
    capabilities       TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    started_ms         INTEGER,
    completed_ms       INTEGER,
    updated_ms         INTEGER NOT NULL
);

-- The list's stable order (newest first, ties by id), overall and per filter.
CREATE INDEX workflows_by_created ON workflows (created_ms DESC, id DESC);
CREATE INDEX workflows_by_status ON workflows (status, created_ms DESC, id DESC);
CREATE INDEX workflows_by_type ON workflows (workflow_type, created_ms DESC, id DESC);
-- "Completed/failed today" and time-window analytics.
CREATE INDEX workflows_by_completed ON workflows (completed_ms) WHERE completed_ms IS NOT NULL;

CREATE TABLE steps (
    workflow_id  TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    step_number  INTEGER NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    branch       TEXT,
    compensates  INTEGER,
    started_ms   INTEGER,
    completed_ms INTEGER,
    input        TEXT,
    output       TEXT,
    error        TEXT,
    retry_count  INTEGER NOT NULL DEFAULT 0,
    attempts     TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (workflow_id, step_number)
) WITHOUT ROWID;

CREATE TABLE step_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    step_number INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    line        TEXT NOT NULL
);

CREATE INDEX step_logs_by_step ON step_logs (workflow_id, step_number, id);
