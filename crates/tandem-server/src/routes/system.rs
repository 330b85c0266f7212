//! Liveness, readiness, metrics.

use std::time::Duration;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// Health of the process or its dependencies.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Per-dependency result (`/readyz` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

/// One dependency's state.
#[derive(Serialize, ToSchema)]
pub struct Check {
    /// Dependency name.
    pub name: &'static str,
    /// Which engine serves it.
    pub backend: &'static str,
    /// `ok` or an error summary.
    pub status: String,
}

/// The process is up (no dependency checks).
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        checks: Vec::new(),
    })
}

/// The database (and Redis, if configured) answer: ready for traffic.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let mut checks = vec![Check {
        name: "database",
        backend: app.db.backend(),
        status: outcome(app.db.ping().await),
    }];
    // Distributed, sessions live in Redis: without it nobody is signed in.
    if app.deployment == crate::config::Deployment::Distributed {
        checks.push(Check {
            name: "sessions",
            backend: app.sessions.store().backend(),
            status: outcome(app.sessions.store().ping().await),
        });
    }
    let ready = checks.iter().all(|c| c.status == "ok");
    // The cache is never required: when its Redis fails, reads go to the database.
    checks.push(Check {
        name: "cache",
        backend: app.cache.backend(),
        status: if app.cache.degraded() {
            "degraded"
        } else {
            "ok"
        }
        .into(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if ready { "ok" } else { "unavailable" },
        checks,
    };
    (status, axum::Json(body))
}

fn outcome<E: std::fmt::Display>(result: Result<(), E>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            "unavailable".into()
        }
    }
}

/// Prometheus text exposition. Queue sizes are read at scrape time, so
/// they are current whichever instance or worker changed them.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    for queue in crate::jobs::QUEUES {
        let counts = tokio::time::timeout(Duration::from_secs(1), app.queue.counts(queue)).await;
        let Ok(Ok(c)) = counts else { continue };
        for (state, n) in [
            ("waiting", c.waiting),
            ("active", c.active),
            ("delayed", c.delayed),
            ("completed", c.completed),
            ("failed", c.failed),
        ] {
            metrics::gauge!("tandem_queue_jobs", "queue" => queue, "state" => state).set(n as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
