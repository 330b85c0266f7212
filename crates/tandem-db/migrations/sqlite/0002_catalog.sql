-- Public app configuration (served at /api/config/{key}) and the
-- achievement catalog.

CREATE TABLE app_config (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

INSERT INTO app_config (key, value, updated_at) VALUES
    ('subjects', '["Mathematics","Physics","Chemistry","Biology","Computer Science","Economics","History","Literature","Languages","Law","Medicine","Music"]', '2026-11-25T00:00:00Z'),
    ('levels', '["beginner","intermediate","advanced"]', '2026-11-25T00:00:00Z'),
    ('study-styles', '["quiet","discussion","mixed"]', '2026-11-25T00:00:00Z'),
    ('limits', '{"study_session_capacity_min":2,"study_session_capacity_max":50,"study_session_max_hours":12,"subjects_max":20}', '2026-11-25T00:00:00Z');

INSERT INTO achievements (id, name, description, icon) VALUES
    ('first-session', 'First session', 'Joined your first study session.', '🎯'),
    ('first-partner', 'Study buddy', 'Shared a study session with another student.', '🤝'),
    ('host', 'Host', 'Scheduled a study session for others.', '📅'),
    ('hours-10', '10 hours', 'Studied for 10 hours in Tandem sessions.', '⏱️'),
    ('hours-50', '50 hours', 'Studied for 50 hours in Tandem sessions.', '🏆'),
    ('streak-3', '3-day streak', 'Studied on 3 days in a row.', '🔥'),
    ('streak-7', '7-day streak', 'Studied on 7 days in a row.', '🌟');
