-- Operators: granted to an existing account by `tandem admin grant EMAIL`,
-- never by signing up with a listed address.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT false;
