-- The run's own reference in its engine (e.g. a Temporal workflow id and run id), for
-- engines whose ids Stepline's id cannot carry whole: shown in the detail and searched.
ALTER TABLE workflows ADD COLUMN engine_ref TEXT;
