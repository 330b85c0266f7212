-- Foundation schema (SQLite). Ids are UUIDs stored as 16-byte BLOBs,
-- timestamps RFC 3339 UTC text (lexically ordered), JSON as TEXT.

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE profiles (
    user_id      BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subjects     TEXT NOT NULL DEFAULT '[]',
    level        TEXT,
    goals        TEXT NOT NULL DEFAULT '',
    study_style  TEXT,
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    availability TEXT NOT NULL DEFAULT '[]',
    bio          TEXT NOT NULL DEFAULT '',
    avatar_url   TEXT,
    updated_at   TEXT NOT NULL
);

-- Login sessions when no Redis is configured. `id` is the SHA-256 of the
-- cookie token: a leaked table does not leak usable cookies.
CREATE TABLE auth_sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires_at ON auth_sessions (expires_at);

-- Study sessions are the rooms students meet in.
CREATE TABLE study_sessions (
    id          BLOB PRIMARY KEY NOT NULL,
    owner_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    capacity    INTEGER NOT NULL CHECK (capacity BETWEEN 2 AND 100),
    status      TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX study_sessions_starts_at ON study_sessions (starts_at);
CREATE INDEX study_sessions_owner_id ON study_sessions (owner_id);

CREATE TABLE study_session_members (
    session_id BLOB NOT NULL REFERENCES study_sessions (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at  TEXT NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX study_session_members_user_id ON study_session_members (user_id);

CREATE TABLE chat_messages (
    id         BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES study_sessions (id) ON DELETE CASCADE,
    user_id    BLOB REFERENCES users (id) ON DELETE SET NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX chat_messages_session_created ON chat_messages (session_id, created_at);

CREATE TABLE achievements (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    icon        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE user_achievements (
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id TEXT NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    earned_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, achievement_id)
);

-- Analytics (archived to cold storage after a retention window). No foreign
-- keys: these tables are append-heavy and outlive the rows they mention.
CREATE TABLE page_views (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BLOB,
    path        TEXT NOT NULL,
    referrer    TEXT,
    user_agent  TEXT,
    occurred_at TEXT NOT NULL
);
CREATE INDEX page_views_occurred_at ON page_views (occurred_at);

CREATE TABLE user_activities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BLOB NOT NULL,
    kind        TEXT NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}',
    occurred_at TEXT NOT NULL
);
CREATE INDEX user_activities_occurred_at ON user_activities (occurred_at);
CREATE INDEX user_activities_user_occurred ON user_activities (user_id, occurred_at);

CREATE TABLE user_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BLOB NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    user_agent TEXT
);
CREATE INDEX user_sessions_started_at ON user_sessions (started_at);
CREATE INDEX user_sessions_user_started ON user_sessions (user_id, started_at);
