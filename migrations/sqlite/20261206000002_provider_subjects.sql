-- An account from a sign-in provider is that provider's person, known by the provider's
-- own stable id for them (the ID token's `sub`), not by a login that could be reused.
ALTER TABLE users ADD COLUMN subject TEXT;
CREATE UNIQUE INDEX users_by_provider_subject ON users (provider, subject)
    WHERE subject IS NOT NULL;
