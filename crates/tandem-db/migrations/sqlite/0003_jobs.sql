-- The embedded job queue: one row per job, claimed with a lease.
-- Times are milliseconds since the Unix epoch. A waiting job whose run_at is
-- in the future is "delayed"; an active job whose lease_until has passed has
-- stalled (its worker died) and goes back to waiting.

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY,
    queue            TEXT NOT NULL,
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    data             TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    run_at           INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    backoff_ms       INTEGER NOT NULL,
    attempts_made    INTEGER NOT NULL DEFAULT 0,
    attempts_started INTEGER NOT NULL DEFAULT 0,
    stalled_count    INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT,
    lease_until      INTEGER,
    progress         TEXT,
    result           TEXT,
    failed_reason    TEXT,
    created_at       INTEGER NOT NULL,
    processed_on     INTEGER,
    finished_on      INTEGER,
    UNIQUE (queue, id)
);

CREATE INDEX jobs_ready ON jobs (queue, state, priority, run_at, seq);
CREATE INDEX jobs_finished ON jobs (queue, state, finished_on);
