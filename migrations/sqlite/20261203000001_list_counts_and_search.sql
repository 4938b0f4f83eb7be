-- What the list reads instead of every run it ever stored. The runs per engine, type,
-- status and SLA state, kept exact by triggers inside the transaction of each change
-- (the tabs, the stats line and the list's total add these up); the runs that ended
-- per UTC day, by status and SLA state (the stats line's "today"); a trigram full-text
-- index over what the search looks at (id, type, trigger, tags, the engine's own id),
-- which matches any substring of three characters or more, as the LIKE scan did; and an
-- index for the engine filter.
--
-- The text index keys its rows by the run's rowid and also keeps the id: a search joins
-- on the id, so a VACUUM that renumbered rowids could leave stale text rows (which match
-- nothing) but never wrong answers, and a run stored under a rowid a stale row still has
-- replaces it rather than failing.

CREATE TABLE workflow_counts (
    engine        TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    status        TEXT NOT NULL,
    sla_status    TEXT NOT NULL,
    runs          INTEGER NOT NULL,
    PRIMARY KEY (engine, workflow_type, status, sla_status)
) WITHOUT ROWID;

INSERT INTO workflow_counts (engine, workflow_type, status, sla_status, runs)
SELECT engine, workflow_type, status, sla_status, COUNT(*) FROM workflows
WHERE true GROUP BY engine, workflow_type, status, sla_status;

CREATE TRIGGER workflows_counted_on_insert AFTER INSERT ON workflows BEGIN
    INSERT INTO workflow_counts (engine, workflow_type, status, sla_status, runs)
    VALUES (new.engine, new.workflow_type, new.status, new.sla_status, 1)
    ON CONFLICT (engine, workflow_type, status, sla_status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER workflows_counted_on_update AFTER UPDATE OF status, sla_status ON workflows
WHEN old.status IS NOT new.status OR old.sla_status IS NOT new.sla_status BEGIN
    UPDATE workflow_counts SET runs = runs - 1
    WHERE engine = old.engine AND workflow_type = old.workflow_type
      AND status = old.status AND sla_status = old.sla_status;
    INSERT INTO workflow_counts (engine, workflow_type, status, sla_status, runs)
    VALUES (new.engine, new.workflow_type, new.status, new.sla_status, 1)
    ON CONFLICT (engine, workflow_type, status, sla_status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER workflows_counted_on_delete AFTER DELETE ON workflows BEGIN
    UPDATE workflow_counts SET runs = runs - 1
    WHERE engine = old.engine AND workflow_type = old.workflow_type
      AND status = old.status AND sla_status = old.sla_status;
END;

-- `day` is the end time's UTC day (milliseconds / 86,400,000); `with_sla` whether the run
-- had an SLA target. Reading today is one short range however many runs ended today.
CREATE TABLE ended_counts (
    day        INTEGER NOT NULL,
    status     TEXT NOT NULL,
    sla_status TEXT NOT NULL,
    with_sla   INTEGER NOT NULL,
    runs       INTEGER NOT NULL,
    PRIMARY KEY (day, status, sla_status, with_sla)
) WITHOUT ROWID;

INSERT INTO ended_counts (day, status, sla_status, with_sla, runs)
SELECT completed_ms / 86400000, status, sla_status, sla_target_seconds IS NOT NULL, COUNT(*)
FROM workflows WHERE completed_ms IS NOT NULL
GROUP BY completed_ms / 86400000, status, sla_status, sla_target_seconds IS NOT NULL;

CREATE TRIGGER workflows_ended_on_insert AFTER INSERT ON workflows
WHEN new.completed_ms IS NOT NULL BEGIN
    INSERT INTO ended_counts (day, status, sla_status, with_sla, runs)
    VALUES (new.completed_ms / 86400000, new.status, new.sla_status,
            new.sla_target_seconds IS NOT NULL, 1)
    ON CONFLICT (day, status, sla_status, with_sla) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER workflows_ended_on_update
AFTER UPDATE OF completed_ms, status, sla_status, sla_target_seconds ON workflows
WHEN old.completed_ms IS NOT new.completed_ms OR old.status IS NOT new.status
  OR old.sla_status IS NOT new.sla_status
  OR (old.sla_target_seconds IS NULL) IS NOT (new.sla_target_seconds IS NULL) BEGIN
    UPDATE ended_counts SET runs = runs - 1
    WHERE old.completed_ms IS NOT NULL AND day = old.completed_ms / 86400000
      AND status = old.status AND sla_status = old.sla_status
      AND with_sla = (old.sla_target_seconds IS NOT NULL);
    INSERT INTO ended_counts (day, status, sla_status, with_sla, runs)
    SELECT new.completed_ms / 86400000, new.status, new.sla_status,
           new.sla_target_seconds IS NOT NULL, 1
    WHERE new.completed_ms IS NOT NULL
    ON CONFLICT (day, status, sla_status, with_sla) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER workflows_ended_on_delete AFTER DELETE ON workflows
WHEN old.completed_ms IS NOT NULL BEGIN
    UPDATE ended_counts SET runs = runs - 1
    WHERE day = old.completed_ms / 86400000 AND status = old.status
      AND sla_status = old.sla_status AND with_sla = (old.sla_target_seconds IS NOT NULL);
END;

CREATE VIRTUAL TABLE workflows_text USING fts5 (
    id, workflow_type, triggered_by, tags, engine_ref, tokenize = 'trigram'
);

INSERT INTO workflows_text (rowid, id, workflow_type, triggered_by, tags, engine_ref)
SELECT rowid, id, workflow_type, triggered_by, tags, engine_ref FROM workflows;

CREATE TRIGGER workflows_text_on_insert AFTER INSERT ON workflows BEGIN
    INSERT OR REPLACE INTO workflows_text (rowid, id, workflow_type, triggered_by, tags, engine_ref)
    VALUES (new.rowid, new.id, new.workflow_type, new.triggered_by, new.tags, new.engine_ref);
END;

CREATE TRIGGER workflows_text_on_update
AFTER UPDATE OF id, workflow_type, triggered_by, tags, engine_ref ON workflows BEGIN
    DELETE FROM workflows_text WHERE rowid = old.rowid AND id = old.id;
    INSERT OR REPLACE INTO workflows_text (rowid, id, workflow_type, triggered_by, tags, engine_ref)
    VALUES (new.rowid, new.id, new.workflow_type, new.triggered_by, new.tags, new.engine_ref);
END;

CREATE TRIGGER workflows_text_on_delete AFTER DELETE ON workflows BEGIN
    DELETE FROM workflows_text WHERE rowid = old.rowid AND id = old.id;
END;

CREATE INDEX workflows_by_engine ON workflows (engine, created_ms DESC, id DESC);
