-- Pushing sources declared by admins through the API (those of the --push-sources file
-- are not stored): the declaration as given, secrets only by the name of the environment
-- variable that holds them, and who declared it when. Read at start; the engine of each
-- is commanded as if it had been in the file.
CREATE TABLE push_sources (
    name        TEXT PRIMARY KEY,
    declaration TEXT NOT NULL,
    declared_by TEXT NOT NULL,
    declared_ms INTEGER NOT NULL
) WITHOUT ROWID;
