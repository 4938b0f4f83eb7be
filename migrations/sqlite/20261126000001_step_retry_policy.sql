-- How each step is retried, as its engine declares it (JSON: max_attempts, delays).
ALTER TABLE steps ADD COLUMN retry_policy TEXT;
