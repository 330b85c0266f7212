//! Health, readiness, metrics and the OpenAPI document.

use reqwest::{Method, StatusCode, header};

use crate::helpers::{Backend, TestApp, assert_problem};

crate::on_both_backends!(probes_metrics_and_openapi_answer);

async fn probes_metrics_and_openapi_answer(backend: Backend) {
    let distributed = matches!(backend, Backend::Distributed { .. });
    let app = TestApp::spawn(backend).await;
    let (client, _) = app.signed_up().await;

    assert_eq!(client.get("/healthz").await.body["status"], "ok");
    let ready = client.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let backends: Vec<&str> = ready.body["checks"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["backend"].as_str()).collect())
        .unwrap_or_default();
    let expected: &[&str] = if distributed {
        &["postgres", "redis", "memory+redis"]
    } else {
        &["sqlite", "memory"]
    };
    assert_eq!(backends, expected);

    // Metrics are on their own listener, not on the public port.
    assert_problem(
        &client.raw(Method::GET, "/metrics", None).await,
        StatusCode::NOT_FOUND,
    );
    let text = app.metrics().await;
    let text = text.as_str();
    assert!(
        text.contains(
            r#"http_requests_total{method="POST",route="/api/auth/register",status="201"}"#
        ),
        "request metrics missing:\n{text}"
    );
    assert!(
        text.contains(r#"tandem_cache_requests_total{family="user",result="miss"}"#),
        "cache metrics missing:\n{text}"
    );
    assert!(
        text.contains(r#"tandem_password_seconds_count{op="hash",stage="hashing"} "#),
        "password hashing metrics missing:\n{text}"
    );

    let doc = client.get("/api/openapi.json").await.body;
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/password",
        "/api/auth/sessions",
        "/api/auth/sessions/{id}",
        "/api/users/me",
        "/api/users/{id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(doc["paths"]["/api/users/me"].get("patch").is_some());

    let page = client.raw(Method::GET, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers.get(header::CONTENT_SECURITY_POLICY);
    assert!(csp.is_some(), "web app served without a CSP");
    assert!(
        page.body
            .as_str()
            .is_some_and(|html| html.contains("/assets/app."))
    );
    assert_eq!(
        client.raw(Method::GET, "/assets/app.js", None).await.status,
        StatusCode::OK
    );
}

/// `docs/architecture.md` lists every API route, as the OpenAPI document
/// has them; `UPDATE_DOCS=1` rewrites the list.
#[tokio::test]
async fn the_architecture_doc_lists_every_route() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let doc = app.client().get("/api/openapi.json").await.body;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            // The doc comment's first sentence (utoipa splits it into a
            // one-line summary and the rest).
            let text = format!(
                "{} {}",
                operation["summary"].as_str().unwrap_or_default(),
                operation["description"].as_str().unwrap_or_default()
            );
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let summary = text.find(". ").map_or(text.as_str(), |end| &text[..=end]);
            let method = method.to_ascii_uppercase();
            routes.push(format!("| `{method} {path}` | {summary} |"));
        }
    }
    routes.sort();
    let table = format!(
        "<!-- routes:begin -->\n| Route | What it does |\n|---|---|\n{}\n<!-- routes:end -->",
        routes.join("\n")
    );
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md");
    let text = std::fs::read_to_string(file).expect("docs/architecture.md");
    let (start, end) = (
        text.find("<!-- routes:begin -->").expect("begin marker"),
        text.find("<!-- routes:end -->").expect("end marker") + "<!-- routes:end -->".len(),
    );
    if std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{table}{}", &text[..start], &text[end..]);
        std::fs::write(file, updated).expect("rewrite the doc");
        return;
    }
    assert_eq!(
        &text[start..end],
        table,
        "the route list in docs/architecture.md is stale: rerun with UPDATE_DOCS=1"
    );
}

/// The served OpenAPI document is the committed `docs/openapi.json`: any
/// change to the public API (a field renamed in a row type, a new endpoint)
/// shows in review as a diff of that file (`UPDATE_DOCS=1` rewrites it).
#[tokio::test]
async fn the_api_is_the_committed_openapi_document() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let served = app.client().get("/api/openapi.json").await.body;
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    if std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&served).expect("json") + "\n";
        std::fs::write(file, text).expect("rewrite docs/openapi.json");
        return;
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("docs/openapi.json"))
            .expect("docs/openapi.json is JSON");
    assert!(
        served == committed,
        "the API differs from docs/openapi.json: review the change, then rerun with UPDATE_DOCS=1"
    );
}
