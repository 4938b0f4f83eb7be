-- Each step's stored log lines are capped in bytes: what they weigh now, and how many
-- of the oldest lines were dropped to stay under the cap (the detail says so).
ALTER TABLE steps ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN logs_dropped INTEGER NOT NULL DEFAULT 0;

UPDATE steps SET log_bytes = (
    SELECT SUM(length(CAST(line AS BLOB))) FROM step_logs
    WHERE step_logs.workflow_id = steps.workflow_id
      AND step_logs.step_number = steps.step_number
)
WHERE EXISTS (
    SELECT 1 FROM step_logs
    WHERE step_logs.workflow_id = steps.workflow_id
      AND step_logs.step_number = steps.step_number
);
