// Baseline for bench/users-me-vs-node.sh: the Node stack the roadmap
// describes, written the way a Node team would: Express 5, express-session
// with a connect-redis RedisStore on ioredis, a pg Pool, and a cache-aside
// profile cache in the same Redis.
//
//   POST /bench/login {"user_id": "<uuid>"}  -> 204 + session cookie (bench-only
//        login: the password check is not what is measured)
//   GET  /api/users/me                       -> 200 {id, email, display_name,
//        created_at, profile: {...}} (the shape Tandem returns), 401 without a session
//
// One process, no cluster: the roadmap's stack runs one such process per
// instance. Env: PORT (0 = any free port), HOST (127.0.0.1), DATABASE_URL,
// REDIS_URL, REDIS_PREFIX (node-bench:, put before every key this server
// writes), SESSION_SECRET. Prints "Express baseline is serving
// http://HOST:PORT" on stdout once it listens.
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { Redis } from "ioredis";
import pg from "pg";

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? "127.0.0.1";
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/tandem_bench";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const REDIS_PREFIX = process.env.REDIS_PREFIX ?? "node-bench:";
const SESSION_SECRET = process.env.SESSION_SECRET;
if (!SESSION_SECRET) {
  console.error("SESSION_SECRET is not set");
  process.exit(1);
}

const CACHE_TTL_SECONDS = 300;

const redis = new Redis(REDIS_URL);
redis.on("error", (err) => console.error("redis:", err.message));
const pool = new pg.Pool({ connectionString: DATABASE_URL });
pool.on("error", (err) => console.error("pg pool:", err.message));

// Cache-aside on top of Redis: JSON values under `${REDIS_PREFIX}cache:${key}`.
const queryCache = {
  async get(key) {
    const raw = await redis.get(`${REDIS_PREFIX}cache:${key}`);
    return raw === null ? null : JSON.parse(raw);
  },
  async set(key, value, ttlSeconds) {
    await redis.setex(`${REDIS_PREFIX}cache:${key}`, ttlSeconds, JSON.stringify(value));
  },
};

const ME_SQL = `
  SELECT u.id, u.email, u.display_name, u.created_at,
         p.subjects, p.level, p.goals, p.study_style, p.timezone,
         p.availability, p.bio, p.avatar_url, p.updated_at AS profile_updated_at
    FROM users u
    JOIN profiles p ON p.user_id = u.id
   WHERE u.id = $1`;

async function loadMe(userId) {
  const { rows } = await pool.query(ME_SQL, [userId]);
  if (rows.length === 0) return null;
  const r = rows[0];
  return {
    id: r.id,
    email: r.email,
    display_name: r.display_name,
    created_at: r.created_at,
    profile: {
      subjects: r.subjects,
      level: r.level,
      goals: r.goals,
      study_style: r.study_style,
      timezone: r.timezone,
      availability: r.availability,
      bio: r.bio,
      avatar_url: r.avatar_url,
      updated_at: r.profile_updated_at,
    },
  };
}

const app = express();
app.disable("x-powered-by");
app.use(express.json());
app.use(
  session({
    store: new RedisStore({ client: redis, prefix: `${REDIS_PREFIX}sess:` }),
    secret: SESSION_SECRET,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: false, sameSite: "lax" },
  }),
);

function requireSession(req, res, next) {
  if (!req.session.userId) {
    res.status(401).json({ error: "unauthenticated" });
    return;
  }
  next();
}

app.post("/bench/login", (req, res, next) => {
  const userId = req.body?.user_id;
  if (typeof userId !== "string" || userId.length === 0) {
    res.status(400).json({ error: "user_id required" });
    return;
  }
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.userId = userId;
    res.sendStatus(204);
  });
});

app.get("/api/users/me", requireSession, async (req, res) => {
  const userId = req.session.userId;
  let me = await queryCache.get(`user:${userId}`);
  if (me === null) {
    me = await loadMe(userId);
    if (me === null) {
      res.status(401).json({ error: "unauthenticated" });
      return;
    }
    await queryCache.set(`user:${userId}`, me, CACHE_TTL_SECONDS);
  }
  res.json(me);
});

app.use((err, req, res, _next) => {
  console.error(err);
  res.status(500).json({ error: "internal" });
});

// Fail fast (before announcing the URL) when Redis or Postgres is unreachable.
await redis.ping();
await pool.query("SELECT 1");

const server = app.listen(PORT, HOST, (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  const { address, port } = server.address();
  console.log(`Express baseline is serving http://${address}:${port}`);
});

function shutdown() {
  server.close(async () => {
    await Promise.allSettled([redis.quit(), pool.end()]);
    process.exit(0);
  });
  server.closeAllConnections?.();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
