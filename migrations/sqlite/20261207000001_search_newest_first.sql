-- The text index in the order a search reads it: newest run first. Each run's text row
-- is keyed by its rowid negated, so the index's own (ascending) order is newest first:
-- a search that wants its 1,000 newest matches reads the first 1,000 it meets and stops,
-- where walking the index backwards cost about half as much again and a text in most runs
-- needed a first look to choose the direction. Rebuilding the index takes about a minute
-- per million stored runs, once.

DROP TRIGGER workflows_text_on_insert;
DROP TRIGGER workflows_text_on_update;
DROP TRIGGER workflows_text_on_delete;
DROP TABLE workflows_text;

CREATE VIRTUAL TABLE workflows_text USING fts5 (
    id, workflow_type, triggered_by, tags, engine_ref, tokenize = 'trigram'
);

INSERT INTO workflows_text (rowid, id, workflow_type, triggered_by, tags, engine_ref)
SELECT -rowid, id, workflow_type, triggered_by, tags, engine_ref FROM workflows;

CREATE TRIGGER workflows_text_on_insert AFTER INSERT ON workflows BEGIN
    INSERT OR REPLACE INTO workflows_text (rowid, id, workflow_type, triggered_by, tags, engine_ref)
    VALUES (-new.rowid, new.id, new.workflow_type, new.triggered_by, new.tags, new.engine_ref);
END;

CREATE TRIGGER workflows_text_on_update
AFTER UPDATE OF id, workflow_type, triggered_by, tags, engine_ref ON workflows BEGIN
    DELETE FROM workflows_text WHERE rowid = -old.rowid AND id = old.id;
    INSERT OR REPLACE INTO workflows_text (rowid, id, workflow_type, triggered_by, tags, engine_ref)
    VALUES (-new.rowid, new.id, new.workflow_type, new.triggered_by, new.tags, new.engine_ref);
END;

CREATE TRIGGER workflows_text_on_delete AFTER DELETE ON workflows BEGIN
    DELETE FROM workflows_text WHERE rowid = -old.rowid AND id = old.id;
END;
