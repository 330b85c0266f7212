//! Tandem's TURN credentials against a real coturn (Debian's `coturn`):
//! coturn, configured with `use-auth-secret` and the same secret, relays for
//! credentials from `GET /api/webrtc/ice-servers` (checked with coturn's own
//! client, `turnutils_uclient`, to a `turnutils_peer`), and refuses them once
//! tampered with or expired.

use std::{
    net::UdpSocket,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tandem_core::SecretString;
use tandem_turn::stun::{Class, Message, MessageBuilder, Method};

use crate::helpers::{Backend, TestApp};

const SECRET: &str = "correct-horse-turn-secret";

/// Child processes killed when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether coturn's binaries are here; under `CI=true` they must be.
fn coturn_installed() -> bool {
    let found = ["turnserver", "turnutils_uclient", "turnutils_peer"]
        .iter()
        .all(|b| {
            Command::new("sh")
                .args(["-c", &format!("command -v {b}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but coturn is not installed (apt-get install coturn)");
    }
    if !found {
        eprintln!(
            "SKIPPED: coturn not installed (apt-get install coturn); set CI=true to fail instead"
        );
    }
    found
}

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

/// Sends `request` to `port` until something answers (the process is up).
fn wait_for_udp(port: u16, request: &[u8], what: &str) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1500];
    loop {
        socket.send_to(request, ("127.0.0.1", port)).expect("send");
        if let Ok(n) = socket.recv(&mut buf) {
            return buf[..n].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer on UDP {port}"
        );
    }
}

fn start_coturn(dir: &std::path::Path, port: u16) -> Child {
    let config = format!(
        "listening-port={port}\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n\
         min-port=49160\nmax-port=49999\nuse-auth-secret\nstatic-auth-secret={SECRET}\n\
         realm=tandem.test\nfingerprint\nallow-loopback-peers\nno-tls\nno-dtls\nno-cli\n"
    );
    let path = dir.join("turnserver.conf");
    std::fs::write(&path, config).expect("write config");
    Command::new("turnserver")
        .arg("-c")
        .arg(&path)
        .args(["--log-file", "stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turnserver")
}

/// Runs coturn's client: 2 clients × 20 messages through the relay to the
/// peer; returns (exit success, its report).
fn uclient(port: u16, peer: u16, username: &str, password: &str, tcp: bool) -> (bool, String) {
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args(["-u", username, "-w", password, "-p", &port.to_string()])
        .args([
            "-e",
            "127.0.0.1",
            "-r",
            &peer.to_string(),
            "-m",
            "2",
            "-n",
            "20",
            "-l",
            "100",
        ]);
    if tcp {
        cmd.arg("-t");
    }
    let out = cmd
        .arg("127.0.0.1")
        .output()
        .expect("run turnutils_uclient");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), report)
}

#[tokio::test]
async fn coturn_relays_for_tandem_credentials_until_tampered_or_expired() {
    if !coturn_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (port, peer) = (free_udp_port(), free_udp_port());
    let mut processes = Processes(vec![start_coturn(dir.path(), port)]);
    processes.0.push(
        Command::new("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &peer.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnutils_peer"),
    );
    let binding = MessageBuilder::new(Method::Binding, Class::Request, [7; 12])
        .build(None, true)
        .expect("binding request");
    let answer = wait_for_udp(port, &binding, "coturn");
    let answer = Message::decode(&answer).expect("coturn answers STUN");
    assert_eq!(
        (answer.method, answer.class),
        (Method::Binding, Class::Success)
    );
    wait_for_udp(peer, b"ping", "turnutils_peer");

    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.turn_urls = vec![format!("turn:127.0.0.1:{port}")];
        c.turn_secret = Some(SecretString::from(SECRET.to_owned()));
    })
    .await;
    let (student, _) = app.signed_up().await;
    let ice = student.get("/api/webrtc/ice-servers").await.body;
    let username = ice["iceServers"][0]["username"]
        .as_str()
        .expect("username")
        .to_owned();
    let password = ice["iceServers"][0]["credential"]
        .as_str()
        .expect("password")
        .to_owned();

    for tcp in [false, true] {
        let (ok, report) = uclient(port, peer, &username, &password, tcp);
        assert!(ok, "tcp={tcp}: {report}");
        assert!(
            report.contains("Total lost packets 0 (0.000000%)"),
            "tcp={tcp}: {report}"
        );
        assert!(report.contains("tot_recv_msgs=40"), "tcp={tcp}: {report}");
    }
    let tampered = username.replacen(':', "0:", 1);
    let (ok, report) = uclient(port, peer, &tampered, &password, false);
    assert!(
        !ok && report.contains("Cannot complete Allocation"),
        "tampered: {report}"
    );

    // Credentials minted five hours ago expired an hour ago (TTL 4 h).
    app.clock.advance(chrono::Duration::hours(-5));
    let ice = student.get("/api/webrtc/ice-servers").await.body;
    let expired = ice["iceServers"][0]["username"]
        .as_str()
        .expect("username")
        .to_owned();
    let expired_password = ice["iceServers"][0]["credential"]
        .as_str()
        .expect("password")
        .to_owned();
    let (ok, report) = uclient(port, peer, &expired, &expired_password, false);
    assert!(
        !ok && report.contains("Cannot complete Allocation"),
        "expired: {report}"
    );
}
