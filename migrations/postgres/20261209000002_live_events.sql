-- The live events every instance of Stepline on this database sends its clients, in one
-- order for all of them: a write transaction appends the live events of what it changed,
-- numbered after the last one under the write lock (so numbers follow commit order, with
-- no gap), and notifies the channel `stepline_live` at commit; each instance reads what is
-- new and sends it on. The newest are kept for clients that reconnect to another instance.
-- (On SQLite there is one instance, whose hub numbers its own: no such table.)
CREATE TABLE live_events (
    seq    BIGINT PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    -- The engine of the run the event is about, when known (clients see only theirs).
    engine TEXT,
    -- The event as JSON (app::model::LiveEvent), without its seq.
    event  TEXT NOT NULL
);
