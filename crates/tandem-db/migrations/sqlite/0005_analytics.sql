-- Analytics events and their archiving (SQLite). One table per kind of
-- event; archiving a week streams its rows out in key-range batches and then
-- deletes them in short batches, one transaction each, so the writer is
-- never blocked for long.

-- 0001 created placeholders that nothing ever wrote to; they are replaced.
DROP TABLE page_views;
DROP TABLE user_activities;
DROP TABLE user_sessions;

CREATE TABLE page_views (
    id          INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    visitor_id  BLOB NOT NULL,
    user_id     BLOB,
    path        TEXT NOT NULL,
    referrer    TEXT
);
CREATE INDEX page_views_occurred_at ON page_views (occurred_at, id);

CREATE TABLE user_activity (
    id          INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    visitor_id  BLOB NOT NULL,
    user_id     BLOB,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX user_activity_occurred_at ON user_activity (occurred_at, id);

-- Time a user spent in a study room (occurred_at = when they left).
CREATE TABLE user_sessions (
    id               INTEGER PRIMARY KEY,
    occurred_at      TEXT NOT NULL,
    user_id          BLOB NOT NULL,
    study_session_id BLOB,
    started_at       TEXT NOT NULL
);
CREATE INDEX user_sessions_occurred_at ON user_sessions (occurred_at, id);

CREATE TABLE archive_runs (
    id          BLOB PRIMARY KEY NOT NULL,
    trigger     TEXT NOT NULL,
    slot        TEXT UNIQUE,
    dry_run     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    objects     INTEGER NOT NULL DEFAULT 0,
    rows        INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX archive_runs_started_at ON archive_runs (started_at);

CREATE TABLE archive_objects (
    table_name TEXT NOT NULL,
    period     TEXT NOT NULL,
    state      TEXT NOT NULL,
    key        TEXT NOT NULL,
    rows       INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    sha256     TEXT NOT NULL DEFAULT '',
    run_id     BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (table_name, period)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
