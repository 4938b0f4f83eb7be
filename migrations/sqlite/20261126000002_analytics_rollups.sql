-- Analytics rollups: runs that ended, per five-minute bucket and type, and their steps
-- per bucket, type and step name. Written by the projector when a run ends; histograms
-- are JSON maps of log-bucket index to count (for percentiles).
CREATE TABLE analytics_runs (
    bucket_ms     INTEGER NOT NULL,
    workflow_type TEXT NOT NULL,
    ended         INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    with_target   INTEGER NOT NULL,
    breached      INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    histogram     TEXT NOT NULL,
    PRIMARY KEY (bucket_ms, workflow_type)
) WITHOUT ROWID;

CREATE TABLE analytics_steps (
    bucket_ms     INTEGER NOT NULL,
    workflow_type TEXT NOT NULL,
    step_name     TEXT NOT NULL,
    occurrences   INTEGER NOT NULL,
    retried       INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    histogram     TEXT NOT NULL,
    PRIMARY KEY (bucket_ms, workflow_type, step_name)
) WITHOUT ROWID;
