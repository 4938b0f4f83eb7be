-- What a step waits for, as its engine last told (JSON: reason, since, until, detail).
ALTER TABLE steps ADD COLUMN waiting TEXT;
