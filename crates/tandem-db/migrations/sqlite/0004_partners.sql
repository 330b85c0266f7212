-- Study partners: who partnered with whom (one row per direction) and who
-- blocked whom. Matching leaves out both.

CREATE TABLE partnerships (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    partner_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, partner_id)
);

CREATE TABLE partner_blocks (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);
CREATE INDEX partner_blocks_blocked ON partner_blocks (blocked_id);
