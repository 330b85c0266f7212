//! The real PostgreSQL and Redis the distributed tests run against.

use std::time::Duration;

use tandem_core::SecretString;
use tandem_server::Config;

/// Base URL of the test PostgreSQL server (`TEST_POSTGRES_URL` overrides).
pub fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// URL of the test Redis (`TEST_REDIS_URL` overrides).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The database the distributed tests share; tests isolate by unique data.
pub const TEST_DATABASE: &str = "tandem_test";

/// Which engines a test app runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite in a temp dir; sessions in the database; in-process limits.
    Embedded,
    /// PostgreSQL + Redis, with a key prefix of its own.
    Distributed {
        database_url: String,
        redis_url: String,
    },
}

impl Backend {
    /// The distributed backend if PostgreSQL and Redis answer. Under `CI=true`
    /// their absence fails the test; otherwise it is skipped with a message.
    pub async fn distributed() -> Option<Self> {
        match prepare().await {
            Ok(backend) => Some(backend),
            Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but the distributed backends are unavailable: {why}")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: PostgreSQL/Redis unavailable ({why}); set CI=true to fail instead"
                );
                None
            }
        }
    }

    /// Points `config` at this backend.
    pub fn apply(&self, config: &mut Config) {
        if let Self::Distributed {
            database_url,
            redis_url,
        } = self
        {
            config.database.url = Some(SecretString::from(database_url.clone()));
            config.redis.url = Some(SecretString::from(redis_url.clone()));
            config.cache.redis_url = Some(SecretString::from(redis_url.clone()));
            let run = uuid::Uuid::new_v4().simple();
            config.redis.prefix = format!("tandem-test:{run}:");
            config.queue.prefix = format!("tandem-test-{run}");
        }
    }
}

async fn prepare() -> Result<Backend, String> {
    let server = postgres_server();
    ensure_database(&server).await?;
    let redis = redis_url();
    let client = redis::Client::open(redis.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("redis: {e}"))?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map_err(|e| format!("redis: {e}"))?;
    Ok(Backend::Distributed {
        database_url: format!("{server}/{TEST_DATABASE}"),
        redis_url: redis,
    })
}

/// Creates the shared test database once; concurrent creators are fine.
async fn ensure_database(server: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .map_err(|e| format!("postgres: {e}"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(TEST_DATABASE)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| format!("postgres: {e}"))?;
    if !exists
        && let Err(e) = sqlx::query(&format!("CREATE DATABASE {TEST_DATABASE}"))
            .execute(&mut conn)
            .await
    {
        // Another test process may have created it a moment ago.
        let raced = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "42P04" || c == "23505");
        if !raced {
            return Err(format!("postgres: {e}"));
        }
    }
    Ok(())
}

/// A database of its own, for tests that own global state (the archive's
/// partitions and lease); dropped with the value.
pub struct FreshDatabase {
    /// Its URL.
    pub url: String,
    name: String,
}

/// A fresh, empty PostgreSQL database; `None` (skip) when PostgreSQL is not
/// running, a failure under `CI=true`.
pub async fn fresh_postgres() -> Option<FreshDatabase> {
    use sqlx::Connection;
    let server = postgres_server();
    let name = format!("tandem_t_{}", uuid::Uuid::new_v4().simple());
    let created = async {
        let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
    }
    .await;
    match created {
        Ok(_) => Some(FreshDatabase {
            url: format!("{server}/{name}"),
            name,
        }),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but PostgreSQL is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: PostgreSQL unavailable ({e}); set CI=true to fail instead");
            None
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (server, name) = (postgres_server(), self.name.clone());
        // Drop runs outside any runtime's async context: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// A loopback port nobody listens on (for a Redis of the test's own), from
/// 30000-32767: below Linux's ephemeral range, so while the test has its
/// server stopped no other socket is handed the port automatically.
pub fn free_port() -> u16 {
    loop {
        let port = 30_000 + rand::random::<u16>() % 2_768;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A Redis server of the test's own (no persistence), to stop and start.
pub struct OwnRedis {
    port: u16,
    child: tokio::process::Child,
}

impl OwnRedis {
    pub async fn start(port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str()).expect("url");
        for _ in 0..200 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Self { port, child };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not answer within 5 s");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn stop(mut self) {
        self.child.kill().await.expect("kill redis");
    }
}
