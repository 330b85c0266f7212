//! Typed configuration, read once at start-up from the environment (and a
//! `.env` file, loaded by the binary). Every variable is listed, with its
//! default, in `.env.example`.

use std::{
    net::{IpAddr, SocketAddr},
    ops::RangeInclusive,
    path::PathBuf,
    time::Duration,
};

use tandem_core::SecretString;
use tandem_turn::server::policy::Cidr;

mod realtime;
pub use realtime::RealtimeGuards;

/// Everything Tandem can be told. Secrets are [`SecretString`]s: `Debug`
/// prints `[REDACTED]`, so logging the config never leaks them.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TANDEM_ADDR`: where `serve` listens.
    pub addr: SocketAddr,
    /// `TANDEM_DATA_DIR`: the embedded mode's files (SQLite database, archives).
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `postgres://…` for PostgreSQL; unset → SQLite in the data dir.
    pub database_url: Option<SecretString>,
    /// `DATABASE_READ_REPLICA_URL`: comma-separated `postgres://` URLs of
    /// streaming replicas (with a PostgreSQL `DATABASE_URL`).
    pub database_read_replica_urls: Vec<SecretString>,
    /// `TANDEM_REPLICA_MAX_LAG`: a replica further behind (while behind) serves no reads.
    pub replica_max_lag: Duration,
    /// `TANDEM_REPLICA_MAX_LAG_BYTES`: a replica this many WAL bytes behind serves no reads.
    pub replica_max_lag_bytes: u64,
    /// `DATABASE_MAX_CONNECTIONS`: pool size per instance.
    pub database_max_connections: u32,
    /// `TANDEM_AUTO_MIGRATE`: apply migrations when `serve` starts.
    pub auto_migrate: bool,
    /// `REDIS_URL`: enables the distributed mode (sessions, rate limits in Redis).
    pub redis_url: Option<SecretString>,
    /// `TANDEM_REDIS_PREFIX`: prefix of every Redis key, so deployments can share a Redis.
    pub redis_prefix: String,
    /// `TANDEM_CACHE_REDIS_URL`: a separate Redis for the query cache (defaults to `REDIS_URL`).
    pub cache_redis_url: Option<SecretString>,
    /// `TANDEM_CACHE_L1_TTL`: longest life of an in-process copy in the distributed mode.
    pub cache_l1_ttl: Duration,
    /// `TANDEM_CACHE_L1_MAX_MB`: memory budget of the in-process cache.
    pub cache_l1_max_mb: u32,
    /// `TANDEM_REALTIME_SECRET`: signs realtime access tokens; set the same
    /// value on every instance (unset: a random key per process).
    pub realtime_secret: Option<SecretString>,
    /// `TANDEM_REALTIME_MESSAGES_PER_SECOND`: per-connection realtime message budget.
    pub realtime_messages_per_second: u32,
    /// `TANDEM_REALTIME_CHANNEL_MESSAGES_PER_SECOND`: client broadcasts one
    /// channel lets through per second, on each instance.
    pub realtime_channel_messages_per_second: u32,
    /// `TANDEM_REALTIME_BATCH_MS`: chat messages of a room within this many
    /// milliseconds are pushed as one broadcast (0 turns batching off).
    pub realtime_batch_window: Duration,
    /// The realtime endpoint's bounds against hostile clients (`TANDEM_ALLOWED_ORIGINS`, `TANDEM_REALTIME_*`).
    pub realtime_guards: RealtimeGuards,
    /// `TANDEM_COOKIE_SECURE`: mark the session cookie `Secure` (turn off only for plain http).
    pub cookie_secure: bool,
    /// `TANDEM_SESSION_IDLE_TIMEOUT`: a session unused this long ends.
    pub session_idle_timeout: Duration,
    /// `TANDEM_SESSION_ABSOLUTE_TIMEOUT`: a session ends this long after login.
    pub session_absolute_timeout: Duration,
    /// `TANDEM_TRUST_PROXY`: take the client IP from `X-Forwarded-For` (right-most entry).
    pub trust_proxy: bool,
    /// `TANDEM_LOGIN_MAX_PER_ACCOUNT`: failed logins per account per 15 minutes.
    pub login_max_per_account: u32,
    /// `TANDEM_LOGIN_MAX_PER_IP`: login attempts per client IP per 15 minutes.
    pub login_max_per_ip: u32,
    /// `TANDEM_REGISTER_MAX_PER_IP`: sign-ups per client IP per hour.
    pub register_max_per_ip: u32,
    /// `TANDEM_API_MAX_PER_MINUTE`: API requests per client IP per minute, per instance.
    pub api_max_per_minute: u32,
    /// `TANDEM_METRICS_ADDR`: where Prometheus `/metrics` is served, on a
    /// listener of its own (unset: not served; never on the public port).
    pub metrics_addr: Option<SocketAddr>,
    /// `TANDEM_MAX_CONNECTIONS`, `TANDEM_MAX_CONNECTIONS_PER_IP`,
    /// `TANDEM_HTTP_HEADER_TIMEOUT`: bounds of the HTTP listener.
    pub connections: crate::connections::ConnectionLimits,
    /// `ASSET_PREFIX`: origin (and path) the page loads its assets from, e.g.
    /// a CDN in front of this server (`https://cdn.example.org`); empty: same origin.
    pub asset_prefix: String,
    /// `UPLOADS_BUCKET`: S3 bucket for uploads and image variants (unset: a
    /// folder under the data dir).
    pub uploads_bucket: Option<String>,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_ENDPOINT_URL` (S3-compatible stores): how to reach the buckets.
    pub aws: AwsConfig,
    /// `ARCHIVE_BUCKET`: S3 bucket for analytics archives (unset: the
    /// `archive` folder under the data dir).
    pub archive_bucket: Option<String>,
    /// `ARCHIVE_AFTER_DAYS`: analytics older than this are archived.
    pub archive_after_days: u32,
    /// `ARCHIVE_SCHEDULE`: when the built-in scheduler archives (a cron
    /// expression in UTC, default Sundays 03:00; `off`: never).
    pub archive_schedule: Option<tandem_archive::Schedule>,
    /// `CRON_SECRET`: bearer token of `GET /api/cron/archive-analytics`
    /// (unset: the endpoint is off).
    pub cron_secret: Option<SecretString>,
    /// `TANDEM_UPLOAD_MAX_BYTES`: largest image upload (avatars).
    pub upload_max_bytes: usize,
    /// `TANDEM_IMAGE_SIZES`: widths and heights `/cdn-cgi/image/` accepts.
    pub image_sizes: Vec<u32>,
    /// `TANDEM_IMAGE_QUALITIES`: qualities `/cdn-cgi/image/` accepts.
    pub image_qualities: Vec<u8>,
    /// `TANDEM_IMAGE_CACHE_MB`: memory for resized variants (0: no cache
    /// and no coalescing; for benchmarks).
    pub image_cache_mb: u64,
    /// `TANDEM_IMAGE_MAX_PIXELS`: largest image `/cdn-cgi/image/` makes
    /// (8,192 px a side at most; AVIF 1 megapixel).
    pub image_max_pixels: u64,
    /// `TANDEM_IMAGE_VARIANT_BUDGET_MB`: object-store space for resized
    /// variants; past it the least recently used are deleted.
    pub image_variant_budget_mb: u64,
    /// `TANDEM_IMAGE_MEMORY_MB`: pixel memory image jobs (variants and
    /// uploads) may hold at once.
    pub image_memory_mb: u32,
    /// `TANDEM_IMAGE_QUEUE`: image jobs waiting or running before requests
    /// get 503.
    pub image_queue: u32,
    /// `TANDEM_IMAGE_CREATE_PER_MINUTE`: new variants one client IP may
    /// have made per minute (cached ones are free).
    pub image_create_per_minute: u32,
    /// `TANDEM_MAX_BODY_BYTES`: largest accepted request body.
    pub max_body_bytes: usize,
    /// `TANDEM_LOG_FORMAT`: `pretty` or `json`.
    pub log_json: bool,
    /// `TANDEM_QUEUE_WORKERS`: whether `serve` also runs the job workers.
    pub queue_workers: bool,
    /// `TANDEM_QUEUE_PREFIX`: BullMQ key prefix on Redis (BullMQ's default `bull`).
    pub queue_prefix: String,
    /// `TANDEM_QUEUE_STALLED_INTERVAL`: a job whose worker stopped renewing
    /// its lease this long ago runs again.
    pub queue_stalled_interval: Duration,
    /// `AI_BASE_URL`: an OpenAI-compatible API (`https://api.openai.com/v1`,
    /// Ollama's `http://127.0.0.1:11434/v1`, vLLM, llama.cpp). Unset: no provider.
    pub ai_base_url: Option<String>,
    /// `AI_MODEL`: the model to ask.
    pub ai_model: String,
    /// `AI_API_KEY` (or `OPENAI_API_KEY`): bearer key, if the provider needs one.
    pub ai_api_key: Option<SecretString>,
    /// `AI_TIMEOUT`: longest wait for one answer.
    pub ai_timeout: Duration,
    /// `STUN_SERVER_URLS`: comma-separated `stun:` URLs handed to browsers.
    pub stun_urls: Vec<String>,
    /// `TURN_SERVER_URL`: comma-separated `turn:`/`turns:` URLs of external TURN servers.
    pub turn_urls: Vec<String>,
    /// `TURN_SECRET`: coturn's `static-auth-secret`; browsers get short-lived
    /// credentials derived from it (the TURN REST API scheme).
    pub turn_secret: Option<SecretString>,
    /// `TURN_USERNAME` / `TURN_PASSWORD`: fixed credentials, only for managed
    /// providers that cannot verify ephemeral ones (never the default).
    pub turn_static: Option<(String, SecretString)>,
    /// `TURN_CREDENTIAL_TTL`: lifetime of ephemeral TURN credentials.
    pub turn_credential_ttl: Duration,
    /// `TANDEM_TURN_LISTEN`: UDP and TCP address of the embedded TURN server,
    /// which `serve` starts when `TURN_SERVER_URL` is unset (`off`: none).
    pub turn_listen: Option<SocketAddr>,
    /// `TANDEM_TURN_HOST`: host name put in the embedded server's `turn:`
    /// URLs (unset: the host the browser reached Tandem at).
    pub turn_host: Option<String>,
    /// `TANDEM_TURN_RELAY_IP`: address relays bind to and advertise
    /// (unset: the listen address, or the machine's outbound interface).
    pub turn_relay_ip: Option<IpAddr>,
    /// `TANDEM_TURN_RELAY_PORTS`: relay port range, `low-high`.
    pub turn_relay_ports: RangeInclusive<u16>,
    /// `TANDEM_TURN_ALLOW_PEERS`: comma-separated networks relays may reach
    /// although they are private, loopback, link-local or otherwise special.
    pub turn_allow_peers: Vec<Cidr>,
    /// `TANDEM_TURN_REALM`: the long-term credential realm.
    pub turn_realm: String,
    /// `TANDEM_TURN_USER_QUOTA`: allocations (and EVEN-PORT reservations)
    /// one user may hold (0: no cap; default sized for a full call, see
    /// [`crate::turn::DEFAULT_USER_QUOTA`]).
    pub turn_user_quota: u32,
    /// `TANDEM_TURN_TOTAL_QUOTA`: allocations the server holds at most (0: no cap).
    pub turn_total_quota: u32,
    /// `TANDEM_TURN_TCP_AUTH_TIMEOUT`: a TCP client that has not
    /// authenticated this long after connecting is disconnected.
    pub turn_tcp_auth_timeout: Duration,
    /// `TANDEM_TURN_TCP_IDLE_TIMEOUT`: a TCP connection without an
    /// allocation is closed after this long without a complete message.
    pub turn_tcp_idle_timeout: Duration,
    /// `TANDEM_TURN_TCP_MAX_PER_IP`: TCP connections one client IP may hold (0: no cap).
    pub turn_tcp_max_per_ip: u32,
    /// `TANDEM_TURN_TCP_MAX_CONNECTIONS`: TCP connections the TURN server holds at most.
    pub turn_tcp_max_connections: u32,
    /// `TANDEM_TURN_MAX_BYTES_PER_SEC`: relay bandwidth of one allocation
    /// (0: unlimited).
    pub turn_bytes_per_sec: u64,
}

/// S3 access shared by every bucket Tandem uses.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `AWS_ACCESS_KEY_ID` (unset: the instance's credentials).
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<SecretString>,
    /// `AWS_ENDPOINT_URL`: an S3-compatible endpoint (MinIO, R2, moto).
    pub endpoint_url: Option<String>,
}

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem} (got {value:?})")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    problem: &'static str,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        if env.get("TANDEM_ADMIN_EMAILS").is_some() {
            // Admin used to go to whoever signed up with a listed address.
            return Err(env.error(
                "TANDEM_ADMIN_EMAILS",
                "(set)",
                "no longer read: grant the admin pages to an existing account with `tandem admin grant EMAIL`",
            ));
        }
        Ok(Self {
            addr: env.parse("TANDEM_ADDR", "127.0.0.1:8080", "expected host:port")?,
            data_dir: env
                .get("TANDEM_DATA_DIR")
                .unwrap_or_else(|| "./data".into())
                .into(),
            database_url: env.get("DATABASE_URL").map(SecretString::from),
            database_read_replica_urls: env
                .get("DATABASE_READ_REPLICA_URL")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
                        Ok(SecretString::from(u.to_owned()))
                    } else {
                        Err(env.error(
                            "DATABASE_READ_REPLICA_URL",
                            "(a URL, not shown)",
                            "expected postgres:// URLs",
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
            replica_max_lag: env.duration("TANDEM_REPLICA_MAX_LAG", "30s")?,
            replica_max_lag_bytes: env.parse(
                "TANDEM_REPLICA_MAX_LAG_BYTES",
                "16777216",
                "expected bytes",
            )?,
            database_max_connections: env.parse(
                "DATABASE_MAX_CONNECTIONS",
                "10",
                "expected a positive number",
            )?,
            auto_migrate: env.flag("TANDEM_AUTO_MIGRATE", true)?,
            redis_url: env.get("REDIS_URL").map(SecretString::from),
            redis_prefix: env
                .get("TANDEM_REDIS_PREFIX")
                .unwrap_or_else(|| "tandem:".into()),
            cache_redis_url: env
                .get("TANDEM_CACHE_REDIS_URL")
                .or_else(|| env.get("REDIS_URL"))
                .map(SecretString::from),
            cache_l1_ttl: env.duration("TANDEM_CACHE_L1_TTL", "5s")?,
            cache_l1_max_mb: env.count("TANDEM_CACHE_L1_MAX_MB", "64")?,
            realtime_secret: env.get("TANDEM_REALTIME_SECRET").map(SecretString::from),
            realtime_messages_per_second: env
                .count("TANDEM_REALTIME_MESSAGES_PER_SECOND", "200")?,
            realtime_channel_messages_per_second: env
                .count("TANDEM_REALTIME_CHANNEL_MESSAGES_PER_SECOND", "1000")?,
            realtime_batch_window: Duration::from_millis(env.parse(
                "TANDEM_REALTIME_BATCH_MS",
                "100",
                "expected milliseconds (0 turns batching off)",
            )?),
            realtime_guards: RealtimeGuards::from_env(&env)?,
            cookie_secure: env.flag("TANDEM_COOKIE_SECURE", true)?,
            session_idle_timeout: env.duration("TANDEM_SESSION_IDLE_TIMEOUT", "14d")?,
            session_absolute_timeout: env.duration("TANDEM_SESSION_ABSOLUTE_TIMEOUT", "30d")?,
            trust_proxy: env.flag("TANDEM_TRUST_PROXY", false)?,
            login_max_per_account: env.count("TANDEM_LOGIN_MAX_PER_ACCOUNT", "10")?,
            login_max_per_ip: env.count("TANDEM_LOGIN_MAX_PER_IP", "100")?,
            register_max_per_ip: env.count("TANDEM_REGISTER_MAX_PER_IP", "20")?,
            api_max_per_minute: env.count("TANDEM_API_MAX_PER_MINUTE", "1200")?,
            metrics_addr: match env.get("TANDEM_METRICS_ADDR") {
                Some(addr) => {
                    Some(env.parse("TANDEM_METRICS_ADDR", &addr, "expected host:port")?)
                }
                None => None,
            },
            connections: crate::connections::ConnectionLimits {
                max: env.count("TANDEM_MAX_CONNECTIONS", "10000")? as usize,
                // Behind a trusted proxy every connection comes from it;
                // the proxy caps clients (nginx `limit_conn`).
                per_ip: match env.parse::<usize>(
                    "TANDEM_MAX_CONNECTIONS_PER_IP",
                    "256",
                    "expected a number (0: no per-IP cap)",
                )? {
                    0 => None,
                    _ if env.flag("TANDEM_TRUST_PROXY", false)? => None,
                    n => Some(n),
                },
                header_timeout: env.duration("TANDEM_HTTP_HEADER_TIMEOUT", "10s")?,
                drain_timeout: Duration::from_secs(10),
            },
            max_body_bytes: env.parse("TANDEM_MAX_BODY_BYTES", "65536", "expected bytes")?,
            uploads_bucket: env.get("UPLOADS_BUCKET"),
            aws: AwsConfig {
                region: env.get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
                access_key_id: env.get("AWS_ACCESS_KEY_ID"),
                secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").map(SecretString::from),
                endpoint_url: env.get("AWS_ENDPOINT_URL"),
            },
            archive_bucket: env.get("ARCHIVE_BUCKET"),
            archive_after_days: env.count("ARCHIVE_AFTER_DAYS", "90")?,
            archive_schedule: match env.get("ARCHIVE_SCHEDULE").as_deref().map(str::trim) {
                Some("off") => None,
                other => {
                    let expression = other.unwrap_or("0 3 * * 0");
                    Some(tandem_archive::Schedule::parse(expression).map_err(|_| {
                        env.error(
                            "ARCHIVE_SCHEDULE",
                            expression,
                            "expected a cron expression like 0 3 * * 0, or off",
                        )
                    })?)
                }
            },
            cron_secret: env.get("CRON_SECRET").map(SecretString::from),
            upload_max_bytes: env.parse("TANDEM_UPLOAD_MAX_BYTES", "5242880", "expected bytes")?,
            image_sizes: env.list(
                "TANDEM_IMAGE_SIZES",
                "16,32,48,64,96,128,256,384,640,720,750,828,1080,1200,1920,2048",
            )?,
            image_qualities: env.list("TANDEM_IMAGE_QUALITIES", "50,60,70,75,80,85,90")?,
            image_cache_mb: env.parse("TANDEM_IMAGE_CACHE_MB", "64", "expected megabytes")?,
            image_max_pixels: u64::from(env.count("TANDEM_IMAGE_MAX_PIXELS", "16777216")?),
            image_variant_budget_mb: u64::from(
                env.count("TANDEM_IMAGE_VARIANT_BUDGET_MB", "1024")?,
            ),
            image_memory_mb: env.count("TANDEM_IMAGE_MEMORY_MB", "512")?,
            image_queue: env.count("TANDEM_IMAGE_QUEUE", "32")?,
            image_create_per_minute: env.count("TANDEM_IMAGE_CREATE_PER_MINUTE", "60")?,
            asset_prefix: match env.get("ASSET_PREFIX") {
                None => String::new(),
                Some(p) => {
                    let p = p.trim().trim_end_matches('/').to_owned();
                    let plain = p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._~:/%".contains(c));
                    let scheme = p.starts_with("https://") || p.starts_with("http://");
                    if !(plain && scheme && p.len() > "https://".len()) {
                        return Err(env.error(
                            "ASSET_PREFIX",
                            &p,
                            "expected an http(s) URL like https://cdn.example.org",
                        ));
                    }
                    p
                }
            },
            log_json: match env.get("TANDEM_LOG_FORMAT").as_deref() {
                None | Some("pretty") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(env.error("TANDEM_LOG_FORMAT", other, "expected pretty or json"));
                }
            },
            queue_workers: env.flag("TANDEM_QUEUE_WORKERS", true)?,
            queue_prefix: env
                .get("TANDEM_QUEUE_PREFIX")
                .unwrap_or_else(|| "bull".into()),
            queue_stalled_interval: env.duration("TANDEM_QUEUE_STALLED_INTERVAL", "30s")?,
            ai_base_url: env.get("AI_BASE_URL"),
            ai_model: env.get("AI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            ai_api_key: env
                .get("AI_API_KEY")
                .or_else(|| env.get("OPENAI_API_KEY"))
                .map(SecretString::from),
            ai_timeout: env.duration("AI_TIMEOUT", "30s")?,
            stun_urls: env.urls("STUN_SERVER_URLS", &["stun:"])?,
            turn_urls: env.urls("TURN_SERVER_URL", &["turn:", "turns:"])?,
            turn_secret: env.get("TURN_SECRET").map(SecretString::from),
            turn_static: env
                .get("TURN_USERNAME")
                .zip(env.get("TURN_PASSWORD"))
                .map(|(u, p)| (u, SecretString::from(p))),
            turn_credential_ttl: env.duration("TURN_CREDENTIAL_TTL", "4h")?,
            turn_listen: match env.get("TANDEM_TURN_LISTEN").as_deref().map(str::trim) {
                Some("off") => None,
                _ => Some(env.parse(
                    "TANDEM_TURN_LISTEN",
                    "0.0.0.0:3478",
                    "expected host:port, or off",
                )?),
            },
            turn_host: env.get("TANDEM_TURN_HOST"),
            turn_relay_ip: match env.get("TANDEM_TURN_RELAY_IP") {
                Some(ip) => {
                    Some(env.parse("TANDEM_TURN_RELAY_IP", &ip, "expected an IP address")?)
                }
                None => None,
            },
            turn_relay_ports: env.port_range("TANDEM_TURN_RELAY_PORTS", "49152-65535")?,
            turn_allow_peers: env
                .get("TANDEM_TURN_ALLOW_PEERS")
                .unwrap_or_default()
                .split(',')
                .filter(|c| !c.trim().is_empty())
                .map(|c| {
                    c.parse().map_err(|_| {
                        env.error(
                            "TANDEM_TURN_ALLOW_PEERS",
                            c,
                            "expected networks like 127.0.0.1/32,10.0.0.0/8",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            turn_realm: env
                .get("TANDEM_TURN_REALM")
                .unwrap_or_else(|| "tandem".into()),
            turn_user_quota: env.parse(
                "TANDEM_TURN_USER_QUOTA",
                &crate::turn::DEFAULT_USER_QUOTA.to_string(),
                "expected a number of allocations (0: no cap)",
            )?,
            turn_total_quota: env.parse(
                "TANDEM_TURN_TOTAL_QUOTA",
                "1000",
                "expected a number of allocations (0: no cap)",
            )?,
            turn_tcp_auth_timeout: env.duration("TANDEM_TURN_TCP_AUTH_TIMEOUT", "10s")?,
            turn_tcp_idle_timeout: env.duration("TANDEM_TURN_TCP_IDLE_TIMEOUT", "30s")?,
            turn_tcp_max_per_ip: env.parse(
                "TANDEM_TURN_TCP_MAX_PER_IP",
                "128",
                "expected a number of connections (0: no cap)",
            )?,
            turn_tcp_max_connections: env.count("TANDEM_TURN_TCP_MAX_CONNECTIONS", "2000")?,
            turn_bytes_per_sec: env.parse(
                "TANDEM_TURN_MAX_BYTES_PER_SEC",
                "1250000",
                "expected bytes per second (0: unlimited)",
            )?,
        })
    }

    /// Whether the distributed engines are configured.
    pub fn is_distributed(&self) -> bool {
        self.redis_url.is_some()
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn error(&self, name: &'static str, value: &str, problem: &'static str) -> ConfigError {
        ConfigError {
            name,
            value: value.to_owned(),
            problem,
        }
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: &str,
        problem: &'static str,
    ) -> Result<T, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        value
            .trim()
            .parse()
            .map_err(|_| self.error(name, &value, problem))
    }

    fn count(&self, name: &'static str, default: &str) -> Result<u32, ConfigError> {
        let n: u32 = self.parse(name, default, "expected a positive number")?;
        if n == 0 {
            return Err(self.error(name, "0", "expected a positive number"));
        }
        Ok(n)
    }

    /// A comma-separated list of URLs, each starting with one of `schemes`.
    fn urls(&self, name: &'static str, schemes: &[&str]) -> Result<Vec<String>, ConfigError> {
        let list = self.get(name).unwrap_or_default();
        let urls: Vec<String> = list
            .split(',')
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        match urls
            .iter()
            .find(|u| !schemes.iter().any(|s| u.starts_with(s)))
        {
            Some(bad) => Err(self.error(
                name,
                bad,
                "expected URLs like stun:host:3478 or turn:host:3478?transport=udp",
            )),
            None => Ok(urls),
        }
    }

    /// A comma-separated list of positive numbers.
    fn list<T: std::str::FromStr + PartialEq + Default>(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<Vec<T>, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        let items: Option<Vec<T>> = value
            .split(',')
            .map(|v| v.trim().parse::<T>().ok().filter(|n| *n != T::default()))
            .collect();
        items
            .filter(|l| !l.is_empty())
            .ok_or_else(|| self.error(name, &value, "expected positive numbers like 640,750,828"))
    }

    /// `low-high`, both ports, low ≤ high.
    fn port_range(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<RangeInclusive<u16>, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        let range = value.split_once('-').and_then(|(low, high)| {
            let (low, high) = (
                low.trim().parse::<u16>().ok()?,
                high.trim().parse::<u16>().ok()?,
            );
            (low > 0 && low <= high).then_some(low..=high)
        });
        range.ok_or_else(|| self.error(name, &value, "expected a port range like 49152-65535"))
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self
            .get(name)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(self.error(name, other, "expected true or false")),
        }
    }

    fn duration(&self, name: &'static str, default: &str) -> Result<Duration, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        parse_duration(&value).ok_or_else(|| {
            self.error(
                name,
                &value,
                "expected a duration like 90s, 15m, 12h or 30d",
            )
        })
    }
}

/// Parses `90s`, `15m`, `12h`, `30d` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tandem_core::ExposeSecret;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_configuration_means_embedded_defaults() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert!(c.database_url.is_none() && !c.is_distributed());
        assert!(c.cookie_secure);
        assert_eq!(c.session_absolute_timeout, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[("REDIS_URL", "redis://:hunter2@host:6379")]).expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.redis_url.as_ref().map(|s| s.expose_secret().to_owned()),
            Some("redis://:hunter2@host:6379".to_owned())
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("TANDEM_COOKIE_SECURE", "maybe")]).expect_err("must fail");
        assert!(err.to_string().contains("TANDEM_COOKIE_SECURE"));
        assert!(config(&[("TANDEM_SESSION_IDLE_TIMEOUT", "soon")]).is_err());
        assert!(config(&[("TANDEM_LOGIN_MAX_PER_IP", "0")]).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5w"), None);
    }

    #[test]
    fn embedded_turn_settings() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.turn_listen, Some("0.0.0.0:3478".parse().expect("addr")));
        assert_eq!(c.turn_relay_ports, 49152..=65535);
        assert!(c.turn_allow_peers.is_empty());
        let c = config(&[
            ("TANDEM_TURN_LISTEN", "off"),
            ("TANDEM_TURN_RELAY_PORTS", "50000-50100"),
            ("TANDEM_TURN_ALLOW_PEERS", "127.0.0.1/32, 10.0.0.0/8"),
            ("TANDEM_TURN_RELAY_IP", "203.0.113.5"),
        ])
        .expect("valid");
        assert_eq!(c.turn_listen, None);
        assert_eq!(c.turn_relay_ports, 50000..=50100);
        assert_eq!(c.turn_allow_peers.len(), 2);
        assert_eq!(c.turn_relay_ip, Some("203.0.113.5".parse().expect("ip")));
        for (name, bad) in [
            ("TANDEM_TURN_LISTEN", "3478"),
            ("TANDEM_TURN_RELAY_PORTS", "60000-50000"),
            ("TANDEM_TURN_RELAY_PORTS", "0-10"),
            ("TANDEM_TURN_ALLOW_PEERS", "10.0.0.0/40"),
            ("TANDEM_TURN_RELAY_IP", "turn.example.org"),
            ("TANDEM_TURN_USER_QUOTA", "-1"),
            ("TANDEM_TURN_TCP_AUTH_TIMEOUT", "0"),
            ("TANDEM_TURN_TCP_MAX_CONNECTIONS", "0"),
        ] {
            let err = config(&[(name, bad)]).expect_err(bad);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn turn_quotas_fit_a_full_call_and_zero_means_no_cap() {
        let c = config(&[]).expect("defaults");
        // Every other seat of the largest room, once per TURN URL.
        assert_eq!(c.turn_user_quota, 2 * (50 - 1));
        assert_eq!(c.turn_tcp_auth_timeout, Duration::from_secs(10));
        assert_eq!(c.turn_tcp_max_per_ip, 128);
        let c = config(&[
            ("TANDEM_TURN_USER_QUOTA", "0"),
            ("TANDEM_TURN_TOTAL_QUOTA", "0"),
            ("TANDEM_TURN_TCP_MAX_PER_IP", "0"),
            ("TANDEM_TURN_TCP_IDLE_TIMEOUT", "2m"),
        ])
        .expect("0 is documented as no cap");
        assert_eq!((c.turn_user_quota, c.turn_total_quota), (0, 0));
        assert_eq!(c.turn_tcp_idle_timeout, Duration::from_secs(120));
    }

    #[test]
    fn replica_settings() {
        let c = config(&[]).expect("defaults");
        assert!(c.database_read_replica_urls.is_empty());
        assert_eq!(c.replica_max_lag, Duration::from_secs(30));
        let c = config(&[(
            "DATABASE_READ_REPLICA_URL",
            "postgres://a@r1:5432/t, postgresql://a@r2/t",
        )])
        .expect("valid");
        assert_eq!(c.database_read_replica_urls.len(), 2);
        let err = config(&[("DATABASE_READ_REPLICA_URL", "mysql://secret@r1/t")])
            .expect_err("not postgres");
        assert!(
            err.to_string().contains("DATABASE_READ_REPLICA_URL"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("secret"),
            "never echo a URL: {err}"
        );
    }
}
