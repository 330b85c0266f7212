//! Argon2id password hashing on a bounded blocking pool.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords with argon2id (19 MiB, 2 passes: the OWASP
/// baseline). Each call runs on the blocking pool, and at most one hash per
/// core runs at once, so a burst of logins queues instead of starving the
/// async threads or exhausting memory.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

/// Verified against when an account does not exist, so a login for an
/// unknown e-mail takes as long as one with a wrong password. Computed on
/// first use, on the blocking pool.
fn dummy_hash() -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_blocking("tandem-dummy-password").unwrap_or_default())
        .clone()
}

impl Passwords {
    /// A hasher sized to the machine.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run("hash", move || hash_blocking(&password)).await?
    }

    /// Whether `password` matches `hash`; with no hash, burns the same time and says no.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let exists = hash.is_some();
        let matches = self
            .run("verify", move || {
                let hash = hash.unwrap_or_else(dummy_hash);
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(exists && matches)
    }

    /// Runs `work` on the blocking pool once a permit is free, timing the
    /// wait and the work (`tandem_password_seconds{op, stage}`).
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let queued = Instant::now();
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(work)
            .await
            .context("password task failed")?;
        let seconds = |stage: &'static str, took: Duration| {
            metrics::histogram!("tandem_password_seconds", "op" => op, "stage" => stage)
                .record(took.as_secs_f64());
        };
        seconds("queued", started - queued);
        seconds("hashing", started.elapsed());
        Ok(output)
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}
