-- The alerts' outbox: one row per alert, channel and news (fired or resolved), written in
-- the transaction that fired or resolved the alert, and kept until the channel took it
-- (alone, or within a digest when a storm overran the channel's rate) or the alert was
-- muted meanwhile. Delivered at least once, by whichever instance holds the
-- `alerts:deliver` lease, under the row's id as the idempotency key.
CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    -- fired | resolved
    news            TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    -- due → sent | digested | muted
    state           TEXT NOT NULL DEFAULT 'due',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    -- Why the last try failed.
    last_error      TEXT,
    sent_ms         INTEGER
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_ms, id) WHERE state = 'due';
CREATE INDEX alert_deliveries_of_alert ON alert_deliveries (alert_id);
