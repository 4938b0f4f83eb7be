-- An index of whole words beside the trigram index, for the searches a trigram index
-- answers slowly as history grows: a pasted id. The trigram index can only be asked for
-- pieces of a text, and the rarest piece of `bench-wf-00004242` (`04242`) is in 1 run at
-- 10,000 runs and in 120 at 1,000,000, each then read and checked. Here the words of each
-- run's searched fields are kept whole, so the same search asks for the runs having a word
-- that starts with `00004242`: one. Contentless (the trigram index holds the text) and
-- without positions (a search asks for one word), it costs a few bytes per word; keyed,
-- like the trigram index, by the run's rowid negated so it reads newest first.

CREATE VIRTUAL TABLE workflows_words USING fts5 (
    words, content = '', contentless_delete = 1, detail = none
);

INSERT INTO workflows_words (rowid, words)
SELECT -rowid, concat_ws(' ', id, workflow_type, triggered_by, tags, engine_ref) FROM workflows;

CREATE TRIGGER workflows_words_on_insert AFTER INSERT ON workflows BEGIN
    INSERT OR REPLACE INTO workflows_words (rowid, words)
    VALUES (-new.rowid,
            concat_ws(' ', new.id, new.workflow_type, new.triggered_by, new.tags, new.engine_ref));
END;

CREATE TRIGGER workflows_words_on_update
AFTER UPDATE OF id, workflow_type, triggered_by, tags, engine_ref ON workflows BEGIN
    INSERT OR REPLACE INTO workflows_words (rowid, words)
    VALUES (-new.rowid,
            concat_ws(' ', new.id, new.workflow_type, new.triggered_by, new.tags, new.engine_ref));
END;

CREATE TRIGGER workflows_words_on_delete AFTER DELETE ON workflows BEGIN
    DELETE FROM workflows_words WHERE rowid = -old.rowid;
END;
