-- What needs an operator: an alert per firing of a condition (a run failed, will miss or
-- missed its SLA, ...), at most one holding per run (or source) and condition; it is
-- resolved when the condition clears, and a condition that holds again is a new alert.
CREATE TABLE alerts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The run's id, or `source:<engine>` for an alert about no run.
    subject         TEXT NOT NULL,
    -- forecast_breach, sla_warning, sla_breached, failed, compensation_failed.
    condition       TEXT NOT NULL,
    engine          TEXT NOT NULL,
    workflow_id     TEXT REFERENCES workflows (id) ON DELETE CASCADE,
    workflow_type   TEXT,
    summary         TEXT NOT NULL,
    fired_ms        BIGINT NOT NULL,
    resolved_ms     BIGINT,
    acknowledged_by TEXT,
    acknowledged_ms BIGINT
);
-- One holding alert per subject and condition: a condition fires once.
CREATE UNIQUE INDEX alerts_holding ON alerts (subject, condition) WHERE resolved_ms IS NULL;
-- The badge counts these; the inbox's first tab lists them.
CREATE INDEX alerts_open ON alerts (id) WHERE resolved_ms IS NULL AND acknowledged_ms IS NULL;
CREATE INDEX alerts_by_run ON alerts (workflow_id, id);

-- Conditions operators muted for a workflow type (or, for alerts about no run, an engine:
-- `engine:<id>`) until a time: such alerts are still kept, but neither counted nor sent.
CREATE TABLE alert_mutes (
    scope     TEXT NOT NULL,
    condition TEXT NOT NULL,
    until_ms  BIGINT NOT NULL,
    muted_by  TEXT NOT NULL,
    PRIMARY KEY (scope, condition)
);
