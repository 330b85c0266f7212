-- Foundation schema (PostgreSQL).

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE profiles (
    user_id      UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    subjects     JSONB NOT NULL DEFAULT '[]',
    level        TEXT,
    goals        TEXT NOT NULL DEFAULT '',
    study_style  TEXT,
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    availability JSONB NOT NULL DEFAULT '[]',
    bio          TEXT NOT NULL DEFAULT '',
    avatar_url   TEXT,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Login sessions when no Redis is configured. `id` is the SHA-256 of the
-- cookie token: a leaked table does not leak usable cookies.
CREATE TABLE auth_sessions (
    id           TEXT PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires_at ON auth_sessions (expires_at);

-- Study sessions are the rooms students meet in.
CREATE TABLE study_sessions (
    id          UUID PRIMARY KEY,
    owner_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    capacity    INTEGER NOT NULL CHECK (capacity BETWEEN 2 AND 100),
    status      TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX study_sessions_starts_at ON study_sessions (starts_at);
CREATE INDEX study_sessions_owner_id ON study_sessions (owner_id);

CREATE TABLE study_session_members (
    session_id UUID NOT NULL REFERENCES study_sessions (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX study_session_members_user_id ON study_session_members (user_id);

CREATE TABLE chat_messages (
    id         UUID PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES study_sessions (id) ON DELETE CASCADE,
    user_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX chat_messages_session_created ON chat_messages (session_id, created_at);

CREATE TABLE achievements (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    icon        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE user_achievements (
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id TEXT NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    earned_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, achievement_id)
);

-- Analytics (archived to cold storage after a retention window). No foreign
-- keys: these tables are append-heavy and outlive the rows they mention.
-- BRIN indexes fit append-only time columns at a fraction of a B-tree's size.
CREATE TABLE page_views (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     UUID,
    path        TEXT NOT NULL,
    referrer    TEXT,
    user_agent  TEXT,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX page_views_occurred_at ON page_views USING BRIN (occurred_at);

CREATE TABLE user_activities (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     UUID NOT NULL,
    kind        TEXT NOT NULL,
    metadata    JSONB NOT NULL DEFAULT '{}',
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_activities_occurred_at ON user_activities USING BRIN (occurred_at);
CREATE INDEX user_activities_user_occurred ON user_activities (user_id, occurred_at);

CREATE TABLE user_sessions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    UUID NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,
    user_agent TEXT
);
CREATE INDEX user_sessions_started_at ON user_sessions USING BRIN (started_at);
CREATE INDEX user_sessions_user_started ON user_sessions (user_id, started_at);
