-- The runs that ended each day are counted per engine too, so that someone who may read
-- only some engines gets today's completed, failed and SLA figures for those engines.
-- Same triggers as before (20261203000001), with the engine in the key.

DROP TRIGGER workflows_ended_on_insert;
DROP TRIGGER workflows_ended_on_update;
DROP TRIGGER workflows_ended_on_delete;
DROP TABLE ended_counts;

CREATE TABLE ended_counts (
    day        INTEGER NOT NULL,
    engine     TEXT NOT NULL,
    status     TEXT NOT NULL,
    sla_status TEXT NOT NULL,
    with_sla   INTEGER NOT NULL,
    runs       INTEGER NOT NULL,
    PRIMARY KEY (day, engine, status, sla_status, with_sla)
) WITHOUT ROWID;

INSERT INTO ended_counts (day, engine, status, sla_status, with_sla, runs)
SELECT completed_ms / 86400000, engine, status, sla_status, sla_target_seconds IS NOT NULL,
       COUNT(*)
FROM workflows WHERE completed_ms IS NOT NULL
GROUP BY completed_ms / 86400000, engine, status, sla_status, sla_target_seconds IS NOT NULL;

CREATE TRIGGER workflows_ended_on_insert AFTER INSERT ON workflows
WHEN new.completed_ms IS NOT NULL BEGIN
    INSERT INTO ended_counts (day, engine, status, sla_status, with_sla, runs)
    VALUES (new.completed_ms / 86400000, new.engine, new.status, new.sla_status,
            new.sla_target_seconds IS NOT NULL, 1)
    ON CONFLICT (day, engine, status, sla_status, with_sla) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER workflows_ended_on_update
AFTER UPDATE OF completed_ms, engine, status, sla_status, sla_target_seconds ON workflows
WHEN old.completed_ms IS NOT new.completed_ms OR old.engine IS NOT new.engine
  OR old.status IS NOT new.status OR old.sla_status IS NOT new.sla_status
  OR (old.sla_target_seconds IS NULL) IS NOT (new.sla_target_seconds IS NULL) BEGIN
    UPDATE ended_counts SET runs = runs - 1
    WHERE old.completed_ms IS NOT NULL AND day = old.completed_ms / 86400000
      AND engine = old.engine AND status = old.status AND sla_status = old.sla_status
      AND with_sla = (old.sla_target_seconds IS NOT NULL);
    INSERT INTO ended_counts (day, engine, status, sla_status, with_sla, runs)
    SELECT new.completed_ms / 86400000, new.engine, new.status, new.sla_status,
           new.sla_target_seconds IS NOT NULL, 1
    WHERE new.completed_ms IS NOT NULL
    ON CONFLICT (day, engine, status, sla_status, with_sla) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER workflows_ended_on_delete AFTER DELETE ON workflows
WHEN old.completed_ms IS NOT NULL BEGIN
    UPDATE ended_counts SET runs = runs - 1
    WHERE day = old.completed_ms / 86400000 AND engine = old.engine AND status = old.status
      AND sla_status = old.sla_status AND with_sla = (old.sla_target_seconds IS NOT NULL);
END;
