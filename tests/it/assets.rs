//! The web app as a CDN origin: hashed immutable assets, ETag/304, brotli and
//! gzip negotiation with `Vary`, no path traversal, and `ASSET_PREFIX`.

use std::io::Read;

use reqwest::{StatusCode, header};

use crate::helpers::{Backend, TestApp};

/// A plain HTTP client: no cookies, no automatic decompression.
fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn page(app: &TestApp) -> (reqwest::header::HeaderMap, String) {
    let res = http()
        .get(format!("{}/", app.url))
        .send()
        .await
        .expect("GET /");
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    (headers, res.text().await.expect("html"))
}

/// The hashed URL of `name` (e.g. `app.js`) as the page references it.
fn asset_url(html: &str, stem: &str, ext: &str) -> String {
    let at = html
        .find(&format!("/assets/{stem}."))
        .expect("asset referenced");
    let start = html[..at].rfind('"').expect("quoted") + 1;
    let end = at + html[at..].find('"').expect("quoted");
    let url = &html[start..end];
    assert!(url.ends_with(ext), "{url}");
    url.to_owned()
}

#[tokio::test]
async fn hashed_assets_are_immutable_compressed_and_revalidated() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let (headers, html) = page(&app).await;
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let page_etag = headers[header::ETAG].clone();
    let again = http()
        .get(format!("{}/", app.url))
        .header(header::IF_NONE_MATCH, page_etag)
        .send()
        .await
        .expect("GET /");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let script = asset_url(&html, "app", ".js");
    let url = format!("{}{script}", app.url);
    let plain = http().get(&url).send().await.expect("asset");
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(plain.headers()[header::VARY], "Accept-Encoding");
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let etag = plain.headers()[header::ETAG].clone();
    let original = plain.bytes().await.expect("body");
    assert!(
        std::str::from_utf8(&original)
            .expect("utf-8")
            .contains("import")
    );

    let br = http()
        .get(&url)
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .expect("asset");
    assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
    let br_etag = br.headers()[header::ETAG].clone();
    let compressed = br.bytes().await.expect("body");
    assert!(compressed.len() < original.len());
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&compressed[..], 4096)
        .read_to_end(&mut decoded)
        .expect("valid brotli");
    assert_eq!(decoded, original);

    let gz = http()
        .get(&url)
        .header(header::ACCEPT_ENCODING, "gzip;q=1, br;q=0")
        .send()
        .await
        .expect("asset");
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    let compressed = gz.bytes().await.expect("body");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut decoded)
        .expect("valid gzip");
    assert_eq!(decoded, original);

    for (tag, encoding) in [(etag, ""), (br_etag, "br")] {
        let cached = http()
            .get(&url)
            .header(header::ACCEPT_ENCODING, encoding)
            .header(header::IF_NONE_MATCH, tag)
            .send()
            .await
            .expect("asset");
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "{encoding}");
        assert_eq!(cached.headers()[header::VARY], "Accept-Encoding");
    }

    // The unhashed name still answers, but is revalidated every time.
    let unhashed = http()
        .get(format!("{}/assets/app.js", app.url))
        .send()
        .await
        .expect("asset");
    assert_eq!(unhashed.status(), StatusCode::OK);
    assert_eq!(unhashed.headers()[header::CACHE_CONTROL], "no-cache");
}

/// The status line's code for a raw request line (no client-side
/// normalisation of `..` or percent-escapes).
async fn raw_status(app: &TestApp, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = vec![0u8; 12];
    stream.read_exact(&mut head).await.expect("status line");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("status code")
}

#[tokio::test]
async fn asset_paths_cannot_leave_the_bundle() {
    let app = TestApp::spawn(Backend::Embedded).await;
    for path in [
        "/assets/../../Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/..%2F..%2F..%2Fetc%2Fpasswd",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/%2e%2e",
        "/assets/app.js%00.png",
        "/assets/APP.JS",
        "/assets//etc/passwd",
    ] {
        let status = raw_status(&app, path).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    assert_eq!(
        raw_status(&app, "/assets/app.js").await,
        200,
        "the probe itself works"
    );
}

#[tokio::test]
async fn the_asset_prefix_points_the_page_at_the_cdn() {
    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.http.asset_prefix = "https://cdn.example.org".into();
    })
    .await;
    let (headers, html) = page(&app).await;
    let script = asset_url(&html, "app", ".js");
    assert!(
        script.starts_with("https://cdn.example.org/assets/app."),
        "{script}"
    );
    assert!(asset_url(&html, "style", ".css").starts_with("https://cdn.example.org/assets/"));
    let csp = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("script-src 'self' https://cdn.example.org"),
        "{csp}"
    );
    // The CDN fetches from this origin by the same path.
    let path = script.trim_start_matches("https://cdn.example.org");
    let res = http()
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .expect("asset");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}
