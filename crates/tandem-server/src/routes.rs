//! The HTTP surface: every route, and the layers around them.

pub mod admin;
pub mod ai;
pub mod analytics;
pub mod auth;
pub mod catalog;
pub mod chat;
pub mod images;
pub mod jobs;
mod openapi;
pub mod partners;
pub mod realtime;
pub mod rooms;
pub mod sessions;
pub mod system;
pub mod uploads;
pub mod users;
pub mod web;
pub mod webrtc;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tandem_ratelimit::{Decision, Limit};
use tower_http::{
    catch_panic::CatchPanicLayer,
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, TraceLayer},
};
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use crate::{ApiError, AppState, Config, Limits, extract::client_ip, telemetry};

/// The OpenAPI document's fixed parts; paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tandem API", description = "Study partners, rooms, chat and video: the Tandem server."),
    tags((name = "auth", description = "Accounts and sessions"),
         (name = "users", description = "Profiles"),
         (name = "study-sessions", description = "Study rooms"),
         (name = "achievements", description = "Achievements"),
         (name = "config", description = "Public app configuration"),
         (name = "realtime", description = "Realtime access"),
         (name = "jobs", description = "Background jobs"),
         (name = "partners", description = "Study partners"),
         (name = "ai", description = "AI study coach"),
         (name = "admin", description = "Operators"),
         (name = "analytics", description = "Page views, activity and their archive"),
         (name = "webrtc", description = "Video calls"),
         (name = "system", description = "Health"))
)]
struct ApiDoc;

/// Scripts, styles and API calls only from our own origin; never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' https: data:; \
    connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The page's policy: [`CONTENT_SECURITY_POLICY`], with the asset origin
/// allowed for scripts, styles and images when `ASSET_PREFIX` is set.
pub fn page_security_policy(asset_prefix: &str) -> String {
    let origin = asset_prefix
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)));
    match origin {
        Some(origin) => format!(
            "default-src 'self'; script-src 'self' {origin}; style-src 'self' {origin}; \
             img-src 'self' {origin} https: data:; connect-src 'self' ws: wss:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ),
        None => CONTENT_SECURITY_POLICY.to_owned(),
    }
}

/// The JSON API and its OpenAPI document (with the shared error answers).
fn api_router(upload_max: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::change_password))
        .routes(routes!(sessions::list, sessions::revoke_others))
        .routes(routes!(sessions::revoke))
        .routes(routes!(users::me, users::update_me, users::delete_me))
        .routes(routes!(users::public_profile))
        .routes(routes!(uploads::upload_avatar).layer(DefaultBodyLimit::max(upload_max)))
        .routes(routes!(rooms::create, rooms::upcoming))
        .routes(routes!(rooms::mine))
        .routes(routes!(rooms::detail))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::leave))
        .routes(routes!(rooms::cancel))
        .routes(routes!(catalog::achievements))
        .routes(routes!(catalog::config))
        .routes(routes!(realtime::token))
        .routes(routes!(chat::send, chat::history))
        .routes(routes!(jobs::status))
        .routes(routes!(partners::matching))
        .routes(routes!(partners::add))
        .routes(routes!(partners::block))
        .routes(routes!(ai::queue_task))
        .routes(routes!(admin::queues))
        .routes(routes!(admin::archive_runs))
        .routes(routes!(analytics::ingest).layer(DefaultBodyLimit::max(32 * 1024)))
        .routes(routes!(analytics::cron_archive))
        .routes(routes!(webrtc::ice_servers))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .split_for_parts();
    openapi::document_errors(&mut openapi);
    (api, openapi)
}

/// Builds the full application router.
pub fn router(app: AppState) -> Router {
    let (api, openapi) = api_router(app.config.images.upload_max_bytes);
    let openapi = Arc::new(openapi);
    let max_body = app.config.http.max_body_bytes;
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            get(move || async move { axum::Json(openapi.as_ref().clone()) }),
        )
        .route("/cdn-cgi/image/{options}/{*source}", get(images::image))
        .route("/uploads/{*key}", get(uploads::original))
        .route("/realtime/v1/websocket", get(realtime::websocket))
        .route("/realtime/v1/api/broadcast", post(realtime::rest_broadcast))
        .merge(web::router())
        .fallback(|| async { ApiError::NotFound("endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            crate::replicas::track_writes,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), api_rate_limit))
        .layer(middleware::from_fn(same_origin_writes))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(telemetry::track_http))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Internal errors log themselves with context (ApiError); a refusal
        // under load (503) is not worth an error line per request, which an
        // attacker could turn into a log flood.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .with_state(app)
}

/// The metrics listener's router: `/metrics` alone, kept off the public port.
pub fn metrics_router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(system::metrics))
        .with_state(app)
}

/// Refuses state-changing requests a browser sent from another site: their
/// `Origin` must name the host they were sent to. (SameSite=Lax cookies and
/// JSON bodies already stop most; this closes the rest.) Clients that send
/// no `Origin` (curl, servers) are not browsers and carry no ambient cookie risk.
async fn same_origin_writes(request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method && let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, host)| host);
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        if origin_host.is_none() || origin_host != host {
            return ApiError::Forbidden("Cross-site request refused.").into_response();
        }
    }
    next.run(request).await
}

/// Per-IP request budget for `/api`, counted in this instance.
async fn api_rate_limit(
    State(config): State<Arc<Config>>,
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/api/") {
        let (parts, body) = request.into_parts();
        let ip = client_ip(&parts, config.http.trust_proxy);
        let limit = Limit {
            max: config.http.api_max_per_minute,
            window: Duration::from_secs(60),
        };
        if let Decision::Limited { retry_after } = limits.local.hit_now(&ip.to_string(), limit) {
            return ApiError::RateLimited(retry_after).into_response();
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    next.run(request).await
}
