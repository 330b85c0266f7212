//! Liveness, readiness, metrics.

use std::time::Duration;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tandem_queue::QueueBackend;

use crate::{Accounts, Data, config::Deployment};

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
pub async fn readyz(
    State(data): State<Data>,
    State(accounts): State<Accounts>,
    State(deployment): State<Deployment>,
) -> impl IntoResponse {
    let mut checks = vec![Check {
        name: "database",
        backend: data.db.backend(),
        status: outcome(data.db.ping().await),
    }];
    // Distributed, sessions live in Redis: without it nobody is signed in.
    if deployment == Deployment::Distributed {
        checks.push(Check {
            name: "sessions",
            backend: accounts.sessions.store().backend(),
            status: outcome(accounts.sessions.store().ping().await),
        });
    }
    let ready = checks.iter().all(|c| c.status == "ok");
    // The cache is never required: when its Redis fails, reads go to the database.
    checks.push(Check {
        name: "cache",
        backend: data.cache.backend(),
        status: if data.cache.degraded() {
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
pub async fn metrics(
    State(queue): State<Arc<dyn QueueBackend>>,
    State(metrics): State<PrometheusHandle>,
) -> impl IntoResponse {
    for name in crate::jobs::QUEUES {
        let counts = tokio::time::timeout(Duration::from_secs(1), queue.counts(name)).await;
        let Ok(Ok(c)) = counts else { continue };
        for (state, n) in [
            ("waiting", c.waiting),
            ("active", c.active),
            ("delayed", c.delayed),
            ("completed", c.completed),
            ("failed", c.failed),
        ] {
            metrics::gauge!("tandem_queue_jobs", "queue" => name, "state" => state).set(n as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
