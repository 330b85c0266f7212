//! Benchmark A: how many database queries the cache saves.
//!
//! Seeds N users straight into PostgreSQL, starts Tandem in the distributed
//! mode in this process, logs one user in, then reads `GET /api/users/{id}`
//! with ids drawn from Zipf(s) over the N users (a few users are read very
//! often, most rarely: what profile pages see). Without a cache every
//! request is one profile query; Tandem's own counters say how many queries
//! actually ran (`tandem_cache_loads_total{family="user"}`).

use std::{sync::Arc, time::Instant};

use anyhow::{Context, bail};
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Zipf};
use tandem_core::{SecretString, Shutdown, SystemClock};
use tandem_server::{Config, Server};
use uuid::Uuid;

/// Options of `cache-load`.
#[derive(clap::Args)]
pub struct Args {
    /// PostgreSQL server (a database `tandem_bench` is created on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Number of users.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Zipf exponent.
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Requests to send.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
    /// Passes over the workload: the first starts from an empty cache
    /// (cold), later ones show the steady state of a running server.
    #[arg(long, default_value_t = 2)]
    passes: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let database = format!("{}/tandem_bench", args.postgres);
    ensure_database(&args.postgres).await?;
    let prefix = format!("tandem-bench:{}:", Uuid::new_v4().simple());
    let mut config = Config::from_lookup(|_| None)?;
    config.http.addr = "127.0.0.1:0".parse()?;
    config.database.url = Some(SecretString::from(database.clone()));
    config.redis.url = Some(SecretString::from(args.redis.clone()));
    config.cache.redis_url = config.redis.url.clone();
    config.redis.prefix = prefix.clone();
    config.accounts.cookie_secure = false;
    config.http.api_max_per_minute = u32::MAX;
    config.telemetry.metrics_addr = Some("127.0.0.1:0".parse()?);
    let shutdown = Shutdown::new();
    let server = Server::bind(config, Arc::new(SystemClock), shutdown.clone()).await?;
    let base = format!("http://{}", server.local_addr());
    let metrics = format!(
        "http://{}/metrics",
        server.metrics_addr().context("metrics listener")?
    );
    let running = tokio::spawn(server.run());

    let ids = Arc::new(seed_users(&database, args.users).await?);
    let cookie = log_in(&base).await?;
    println!(
        "{} users, Zipf({}) ids, {} requests per pass, {} clients → {base}",
        ids.len(),
        args.zipf,
        args.requests,
        args.concurrency
    );
    let mut failures = 0;
    for pass in 0..args.passes {
        let before = counters(&metrics).await?;
        let started = Instant::now();
        failures += drive(&base, &cookie, ids.clone(), &args, pass).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let d = counters(&metrics).await?.minus(&before);
        let hits = d.l1_hits + d.l2_hits;
        let ratio = |part: u64| 100.0 * part as f64 / d.requests.max(1) as f64;
        println!(
            "pass {} ({}): {} requests in {elapsed:.1} s ({:.0}/s); hit ratio {:.2} % (L1 {}, L2 {}, miss {}); \
             profile queries {} instead of {}: {:.2} % avoided",
            pass + 1,
            if pass == 0 {
                "cold cache"
            } else {
                "warm cache"
            },
            d.requests,
            d.requests as f64 / elapsed,
            ratio(hits),
            d.l1_hits,
            d.l2_hits,
            d.misses,
            d.loads,
            d.requests,
            100.0 - ratio(d.loads),
        );
    }
    println!("roadmap's claim: 60-80 % avoided; target: >= 95 %");
    shutdown.trigger();
    running.await??;
    if failures > 0 {
        bail!("{failures} requests failed");
    }
    Ok(())
}

async fn ensure_database(server: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'tandem_bench')",
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        sqlx::query("CREATE DATABASE tandem_bench")
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Inserts `n` bench users (once) and returns their ids in a stable order.
async fn seed_users(database: &str, n: u64) -> anyhow::Result<Vec<Uuid>> {
    let pool = sqlx::PgPool::connect(database).await?;
    let have: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email LIKE 'zipf-%@bench.invalid'")
            .fetch_one(&pool)
            .await?;
    let n = i64::try_from(n)?;
    if have < n {
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at) \
             SELECT gen_random_uuid(), 'zipf-' || i || '@bench.invalid', '!', 'Student ' || i, now(), now() \
             FROM generate_series($1 + 1, $2) AS i",
        )
        .bind(have)
        .bind(n)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO profiles (user_id, subjects, bio, updated_at) \
             SELECT id, '[\"Mathematics\",\"Physics\"]', 'Seeded for the cache benchmark.', now() \
             FROM users u WHERE email LIKE 'zipf-%@bench.invalid' \
             AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.user_id = u.id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        println!(
            "seeded {} users in {:.1} s",
            n - have,
            started.elapsed().as_secs_f64()
        );
    }
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE email LIKE 'zipf-%@bench.invalid' ORDER BY email LIMIT $1",
    )
    .bind(n)
    .fetch_all(&pool)
    .await?;
    Ok(ids)
}

async fn log_in(base: &str) -> anyhow::Result<String> {
    let email = format!("reader-{}@bench.invalid", Uuid::new_v4().simple());
    let res = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"email": email, "password": "correct horse battery staple", "display_name": "Reader"}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("registering the reader failed: {}", res.status());
    }
    let cookie = res
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?;
    Ok(cookie.to_owned())
}

/// Sends the requests from `concurrency` clients; returns how many failed.
async fn drive(
    base: &str,
    cookie: &str,
    ids: Arc<Vec<Uuid>>,
    args: &Args,
    pass: u64,
) -> anyhow::Result<u64> {
    let zipf = Zipf::new(ids.len() as f64, args.zipf).context("Zipf parameters")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency as usize)
        .build()?;
    let per_client = args.requests / args.concurrency;
    let mut tasks = Vec::new();
    for client in 0..args.concurrency {
        let (http, ids, base, cookie) = (
            http.clone(),
            ids.clone(),
            base.to_owned(),
            cookie.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(pass * 1_000_003 + client);
            let mut failed = 0u64;
            for _ in 0..per_client {
                let rank = zipf.sample(&mut rng) as usize;
                let id = ids[rank.clamp(1, ids.len()) - 1];
                let ok = http
                    .get(format!("{base}/api/users/{id}"))
                    .header(reqwest::header::COOKIE, &cookie)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                failed += u64::from(!ok);
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    Ok(failed)
}

/// The cache counters of the `user` family.
struct Counters {
    requests: u64,
    l1_hits: u64,
    l2_hits: u64,
    misses: u64,
    loads: u64,
}

impl Counters {
    fn minus(&self, before: &Self) -> Self {
        Self {
            requests: self.requests - before.requests,
            l1_hits: self.l1_hits - before.l1_hits,
            l2_hits: self.l2_hits - before.l2_hits,
            misses: self.misses - before.misses,
            loads: self.loads - before.loads,
        }
    }
}

async fn counters(metrics: &str) -> anyhow::Result<Counters> {
    let text = reqwest::get(metrics).await?.text().await?;
    let value = |needle: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    let requests =
        value(r#"http_requests_total{method="GET",route="/api/users/{id}",status="200"}"#);
    Ok(Counters {
        requests,
        l1_hits: value(r#"tandem_cache_requests_total{family="user",result="l1_hit"}"#),
        l2_hits: value(r#"tandem_cache_requests_total{family="user",result="l2_hit"}"#),
        misses: value(r#"tandem_cache_requests_total{family="user",result="miss"}"#),
        loads: value(r#"tandem_cache_loads_total{family="user",outcome="ok"}"#),
    })
}
