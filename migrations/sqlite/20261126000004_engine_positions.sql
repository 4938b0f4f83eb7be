-- Where each engine adapter got to in its source (e.g. the last Temporal history event
-- mapped for a run), written in the same transaction as the events it led to.
CREATE TABLE engine_positions (
    engine   TEXT NOT NULL,
    key      TEXT NOT NULL,
    position TEXT NOT NULL,
    PRIMARY KEY (engine, key)
) WITHOUT ROWID;
