-- Leases: which instance of Stepline does a job only one may do at a time (follow one
-- Temporal namespace or Airflow source, drive the built-in engine's runs). The holder
-- renews its lease before `expires_ms`; once it has passed, another instance may take it.
-- Taken, renewed and checked under the write lock, so a holder's batch and a takeover
-- never interleave.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    -- When the current holder took it (a renewal keeps it).
    taken_ms   INTEGER NOT NULL
) WITHOUT ROWID;

-- Requests to an engine that runs on another instance (the built-in engine runs on the
-- one that holds its lease): written by the instance an operator asked, taken, done and
-- answered by the holder, whose answer the asking instance waits for.
CREATE TABLE engine_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    engine       TEXT NOT NULL,
    -- What is asked, as JSON (a start, or a command on a run).
    request      TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    taken_by     TEXT,
    taken_ms     INTEGER,
    -- The outcome, as JSON.
    answer       TEXT,
    answered_ms  INTEGER
);
CREATE INDEX engine_requests_waiting ON engine_requests (engine, id) WHERE taken_ms IS NULL;
CREATE INDEX engine_requests_unanswered ON engine_requests (engine, id)
    WHERE taken_ms IS NOT NULL AND answer IS NULL;
CREATE INDEX engine_requests_answered ON engine_requests (answered_ms) WHERE answer IS NOT NULL;
