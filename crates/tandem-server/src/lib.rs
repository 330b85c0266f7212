//! Tandem's HTTP application.
//!
//! [`Server::bind`] builds the [`App`] (choosing every subsystem's backend
//! from the [`Config`]), binds the listener (and the embedded TURN server's)
//! and [`Server::run`] serves until the shared [`Shutdown`] fires.

pub mod accounts;
mod achievements;
pub mod analytics;
pub mod api;
pub mod assets;
mod backends;
pub mod config;
pub mod connections;
mod cookies;
pub mod error;
pub mod extract;
pub mod images;
pub mod jobs;
pub mod partners;
mod passwords;
pub mod reads;
pub mod replicas;
pub mod rooms;
pub mod routes;
mod state;
pub mod telemetry;
pub mod turn;
mod validate;
mod write_marks;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tandem_core::{Clock, Shutdown};
use tokio::net::TcpListener;

pub use accounts::Accounts;
pub use config::Config;
pub use error::ApiError;
pub use state::{Analytics, App, AppState, Data, Limits, Live, Media, Page, archiver};

/// A bound, ready-to-run Tandem HTTP server.
pub struct Server {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    app: AppState,
}

impl Server {
    /// Connects the backends and binds `config.http.addr` (port 0 picks a free port).
    pub async fn bind(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("binding {}", config.http.addr))?;
        let metrics = match config.telemetry.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding TANDEM_METRICS_ADDR {addr}"))?,
            ),
            None => None,
        };
        let app = AppState(Arc::new(App::build(config, clock, shutdown, true).await?));
        Ok(Self {
            listener,
            metrics,
            app,
        })
    }

    /// The address `/metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.app.config.http.addr)
    }

    /// The application state (for tests).
    pub fn app(&self) -> &AppState {
        &self.app
    }

    /// Serves until the shutdown given to [`Server::bind`] fires, then
    /// drains in-flight requests.
    pub async fn run(self) -> anyhow::Result<()> {
        let shutdown = self.app.shutdown.clone();
        let maintenance = tokio::spawn(run_maintenance(self.app.clone(), shutdown.clone()));
        let workers = self
            .app
            .config
            .queue
            .workers
            .then(|| tokio::spawn(jobs::run_workers(self.app.clone(), shutdown.clone())));
        let schedule = self.app.config.archive.schedule.clone().map(|schedule| {
            tokio::spawn(tandem_archive::run_schedule(
                self.app.analytics.archiver.clone(),
                schedule,
                shutdown.clone(),
            ))
        });
        let app = self.app.clone();
        let mut limits = self.app.config.http.connections.clone();
        limits.max = connections::fit_to_file_limit(limits.max);
        let metrics = self.metrics.map(|listener| {
            let router = routes::metrics_router(self.app.clone());
            let signal = shutdown.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { signal.wait().await })
                    .await
            })
        });
        let router = routes::router(self.app);
        connections::serve(self.listener, router, limits, shutdown.clone()).await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        shutdown.trigger();
        let _ = maintenance.await;
        if let Some(schedule) = schedule {
            let _ = schedule.await;
        }
        app.analytics.sink.drained().await;
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        Ok(())
    }
}

/// Periodic upkeep until `shutdown`: removes expired sessions from stores
/// that do not expire them by themselves, and keeps the analytics
/// partitions of the coming weeks ready. Run by `serve` and by `worker`.
pub async fn run_maintenance(app: AppState, shutdown: Shutdown) {
    let mut every = tokio::time::interval(Duration::from_secs(15 * 60));
    let weeks_ahead = tandem_archive::ArchiveOptions::default().weeks_ahead;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait() => return,
        }
        match app.accounts.sessions.purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        if let Err(e) = app
            .data
            .db
            .prepare_weeks(app.data.clock.now(), weeks_ahead)
            .await
        {
            tracing::warn!(error = %e, "preparing analytics partitions failed");
        }
    }
}
