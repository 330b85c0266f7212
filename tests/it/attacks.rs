//! Attacks on the HTTP surface, performed against a real server: each test
//! does what an attacker would and asserts the defended behaviour (issue 18).
//! Realtime, image and TURN attacks sit beside their features' tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tandem_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(made_up_methods_and_ids_add_no_metric_series);

/// 300 requests with made-up methods and 61 rate-limited requests by one
/// user leave the metric labels a closed set: no method name, path or user
/// id a client chose appears in `/metrics`.
async fn made_up_methods_and_ids_add_no_metric_series(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, _) = app.signed_up().await;
    let me = client.get("/api/users/me").await.body;
    let id = me["id"].as_str().expect("user id").to_owned();
    let before = app.metrics().await.len();
    let http = reqwest::Client::new();
    for i in 0..300 {
        let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).expect("method");
        let res = http
            .request(method, format!("{}/nowhere-{i}", app.url))
            .send()
            .await
            .expect("request");
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let mut limited = false;
    for _ in 0..61 {
        limited |=
            client.get("/api/webrtc/ice-servers").await.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the ICE limit (60 a minute) was reached");
    let text = app.metrics().await;
    for forbidden in ["MADEUP", "nowhere-", id.as_str()] {
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} became a metric label"
        );
    }
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(text.contains(r#"tandem_rate_limited_total{limit="ice"}"#));
    // Two new label sets at most (method "other" on "unmatched"), whatever
    // the 300 requests were called.
    assert!(
        text.len() < before + 100 * 1024,
        "metrics grew from {before} to {} bytes",
        text.len()
    );
}

fn limited(config: &mut Config) {
    config.http.connections.header_timeout = Duration::from_secs(1);
    config.http.connections.per_ip = Some(20);
}

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: [u8; 4], server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(server).await
}

/// Sends a whole `GET path` and reads until the server closes; the bytes
/// read (empty when the connection was refused).
async fn request_on(mut tcp: TcpStream, path: &str) -> Vec<u8> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return Vec::new();
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer and no close within 10 s");
    answer
}

/// Waits until the server closes `tcp` (EOF or reset); panics after 10 s.
async fn closed_by_server(tcp: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }
}

fn server_addr(app: &TestApp) -> SocketAddr {
    app.url
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

/// Slowloris from one address: its connections beyond the per-IP cap are
/// refused at once, the ones it holds are cut off at the header deadline,
/// and other clients are served throughout.
#[tokio::test]
async fn slow_headers_are_capped_per_ip_and_cut_off() {
    let app = TestApp::spawn_with(Backend::Embedded, limited).await;
    let server = server_addr(&app);
    let attacker = [127, 0, 0, 2];
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut tcp = connect_from(attacker, server).await.expect("connect");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            .await
            .expect("partial head");
        slow.push(tcp);
    }
    // The 21st connection from the same address gets no answer.
    let extra = connect_from(attacker, server).await.expect("connect");
    assert!(
        request_on(extra, "/healthz").await.is_empty(),
        "a connection over the per-IP cap was served"
    );
    // Anyone else is served while the attacker holds its 20.
    let honest = connect_from([127, 0, 0, 1], server).await.expect("connect");
    let answer = request_on(honest, "/healthz").await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    // The deadline (1 s) closes every half-sent request.
    for tcp in &mut slow {
        closed_by_server(tcp).await;
    }
    drop(slow);
    // Their places are given back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tcp = connect_from(attacker, server).await.expect("connect");
        if request_on(tcp, "/healthz")
            .await
            .starts_with(b"HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "per-IP places were not freed");
        tokio::task::yield_now().await;
    }
}

/// A kept-alive connection that sends nothing more is closed after the
/// header deadline instead of holding a descriptor forever.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::spawn_with(Backend::Embedded, limited).await;
    let mut tcp = TcpStream::connect(server_addr(&app))
        .await
        .expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 1024];
    let n = tcp.read(&mut buf).await.expect("response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle = closed_by_server(&mut tcp).await;
    assert!(idle < Duration::from_secs(5), "closed after {idle:?}");
}
