-- Operators' commands to the in-house engines that push their runs: written when asked,
-- kept until the engine has answered, delivered at least once (by webhook or pulled by
-- the engine) under an idempotency key that stays the same across deliveries.
CREATE TABLE engine_commands (
    id              INTEGER PRIMARY KEY,
    -- The pushing source (`billing`), whose engine is `custom:<source>`.
    source          TEXT NOT NULL,
    workflow_id     TEXT NOT NULL,
    -- pause, resume, cancel, retry, clone, terminate.
    action          TEXT NOT NULL,
    from_step       INTEGER,
    reason          TEXT,
    requested_by    TEXT NOT NULL,
    requested_ms    INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    -- requested → delivered → accepted | refused.
    state           TEXT NOT NULL DEFAULT 'requested',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    -- Why the last delivery failed, or the engine's words when it refused.
    said            TEXT,
    delivered_ms    INTEGER,
    answered_ms     INTEGER
);
CREATE INDEX engine_commands_due ON engine_commands (source, state, next_attempt_ms);
CREATE INDEX engine_commands_by_run ON engine_commands (workflow_id, id);
