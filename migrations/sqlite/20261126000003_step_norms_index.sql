-- The Gantt chart reads one type's step rollups over the last week ("usual" durations).
CREATE INDEX analytics_steps_by_type ON analytics_steps (workflow_type, bucket_ms);
