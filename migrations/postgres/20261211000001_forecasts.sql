-- Running runs' forecasts, kept by the forecast sweep: how many earlier runs they come from
-- (NULL: not forecast yet), the expected and likely-latest end, and the breach outlook
-- (0 unlikely, 1 possible, 2 likely; set back to 0 when the run stops running).
ALTER TABLE workflows ADD COLUMN forecast_runs BIGINT;
ALTER TABLE workflows ADD COLUMN forecast_p50_ms BIGINT;
ALTER TABLE workflows ADD COLUMN forecast_p90_ms BIGINT;
ALTER TABLE workflows ADD COLUMN forecast_breach BIGINT NOT NULL DEFAULT 0;

-- The list's "will breach" filter reads only the runs it shows.
CREATE INDEX workflows_will_breach ON workflows (created_ms DESC, id DESC)
WHERE forecast_breach = 2;
