//! Tandem's TURN against coturn's own tools (Debian's `coturn`): the
//! embedded TURN server passes `turnutils_uclient` (10 clients × 1,000
//! messages over UDP and over TCP to a `turnutils_peer`, no loss) with
//! credentials from `GET /api/webrtc/ice-servers`; a real coturn configured
//! with `use-auth-secret` and the same secret accepts the same credentials;
//! both refuse them once tampered with or expired.

use std::{
    net::UdpSocket,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tandem_core::SecretString;
use tandem_turn::stun::{Class, Message, MessageBuilder, Method};

use crate::helpers::{Backend, TestApp};

const SECRET: &str = "correct-horse-turn-secret";
/// Where `turnutils_peer` listens: not the relay address (127.0.0.1), which
/// Tandem's relays reach only on relay ports, whatever the allow list says.
pub(crate) const PEER_IP: &str = "127.0.0.2";

/// Child processes killed when the test ends, however it ends.
pub(crate) struct Processes(pub(crate) Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether coturn's binaries are here; under `CI=true` they must be.
pub(crate) fn coturn_installed() -> bool {
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

/// A free UDP port on `ip` whose next port is free too (`turnutils_peer` uses
/// both), below the kernel's ephemeral range and every relay range (49152
/// and up): no relay allocation or outgoing socket of a test running
/// alongside can take it between this check and its use.
pub(crate) fn free_udp_port(ip: &str) -> u16 {
    loop {
        let port = 20_000 + (rand::random::<u16>() % 5_000) * 2;
        let pair = (UdpSocket::bind((ip, port)), UdpSocket::bind((ip, port + 1)));
        if let (Ok(_), Ok(_)) = pair {
            return port;
        }
    }
}

/// Sends `request` to `ip`:`port` until something answers (the process is up).
pub(crate) fn wait_for_udp(ip: &str, port: u16, request: &[u8], what: &str) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1500];
    loop {
        socket.send_to(request, (ip, port)).expect("send");
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

/// Starts `turnutils_peer` (an echo on `port` and `port + 1`) and waits
/// until it answers.
pub(crate) fn start_peer(port: u16) -> Child {
    let child = Command::new("turnutils_peer")
        .args(["-L", PEER_IP, "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turnutils_peer");
    wait_for_udp(PEER_IP, port, b"ping", "turnutils_peer");
    child
}

/// How much `turnutils_uclient` sends: `clients` × `messages` of 100 bytes.
#[derive(Clone, Copy)]
pub(crate) struct Load {
    pub(crate) clients: u32,
    pub(crate) messages: u32,
}

/// Runs coturn's client through the relay to the peer; returns (exit
/// success, its report). It exits 0 even when packets were lost, so callers
/// check the report's "Total lost packets" line.
pub(crate) async fn uclient(
    port: u16,
    peer: u16,
    username: &str,
    password: &str,
    tcp: bool,
    load: Load,
) -> (bool, String) {
    // Async, so an embedded server in this process keeps running meanwhile.
    let mut cmd = tokio::process::Command::new("turnutils_uclient");
    cmd.args(["-u", username, "-w", password, "-p", &port.to_string()])
        .args([
            "-e",
            PEER_IP,
            "-r",
            &peer.to_string(),
            "-m",
            &load.clients.to_string(),
            "-n",
            &load.messages.to_string(),
            "-l",
            "100",
        ]);
    if tcp {
        cmd.arg("-t");
    }
    let out = cmd
        .arg("127.0.0.1")
        .output()
        .await
        .expect("run turnutils_uclient");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_turn_and_coturn_relay_for_tandem_credentials_until_tampered_or_expired() {
    if !coturn_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let coturn = free_udp_port("127.0.0.1");
    let peer = std::iter::repeat_with(|| free_udp_port(PEER_IP))
        .find(|p| p.abs_diff(coturn) > 1)
        .expect("a port");
    let mut processes = Processes(vec![start_coturn(dir.path(), coturn)]);
    let binding = MessageBuilder::new(Method::Binding, Class::Request, [7; 12])
        .build(None, true)
        .expect("binding request");
    let answer = wait_for_udp("127.0.0.1", coturn, &binding, "coturn");
    let answer = Message::decode(&answer).expect("coturn answers STUN");
    assert_eq!(
        (answer.method, answer.class),
        (Method::Binding, Class::Success)
    );
    processes.0.push(start_peer(peer));

    let app = TestApp::spawn_with(Backend::Embedded, |c| {
        c.ice.turn_secret = Some(SecretString::from(SECRET.to_owned()));
        c.turn.listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.turn.relay_ip = Some("127.0.0.1".parse().expect("ip"));
        c.turn.allow_peers = vec![format!("{PEER_IP}/32").parse().expect("cidr")];
        // turnutils_uclient holds 1.5 allocations per client, and its UDP
        // probe allocations are never released.
        c.turn.user_quota = 64;
    })
    .await;
    let embedded = app
        .state
        .turn
        .as_ref()
        .expect("embedded TURN started")
        .server
        .udp_addr()
        .port();
    let (student, _) = app.signed_up().await;
    let credentials = |ice: &serde_json::Value| {
        let turn = &ice["iceServers"][1];
        (
            turn["username"].as_str().expect("username").to_owned(),
            turn["credential"].as_str().expect("password").to_owned(),
        )
    };
    let ice = student.get("/api/webrtc/ice-servers").await.body;
    assert_eq!(
        ice["iceServers"][1]["urls"],
        serde_json::json!([
            format!("turn:127.0.0.1:{embedded}?transport=udp"),
            format!("turn:127.0.0.1:{embedded}?transport=tcp"),
        ]),
        "{ice}"
    );
    let (username, password) = credentials(&ice);

    // The issue's load against the embedded server, UDP and TCP at once.
    let full = Load {
        clients: 10,
        messages: 1000,
    };
    let (udp, tcp) = tokio::join!(
        uclient(embedded, peer, &username, &password, false, full),
        uclient(embedded, peer, &username, &password, true, full),
    );
    for (tcp, (ok, report)) in [(false, udp), (true, tcp)] {
        assert!(ok, "embedded tcp={tcp}: {report}");
        assert!(
            report.contains("Total lost packets 0 (0.000000%)"),
            "embedded tcp={tcp}: {report}"
        );
        assert!(
            report.contains("tot_recv_msgs=10000"),
            "embedded tcp={tcp}: {report}"
        );
    }
    // The same credentials at coturn.
    let small = Load {
        clients: 2,
        messages: 20,
    };
    for tcp in [false, true] {
        let (ok, report) = uclient(coturn, peer, &username, &password, tcp, small).await;
        assert!(ok, "coturn tcp={tcp}: {report}");
        assert!(
            report.contains("Total lost packets 0 (0.000000%)"),
            "coturn tcp={tcp}: {report}"
        );
        assert!(
            report.contains("tot_recv_msgs=40"),
            "coturn tcp={tcp}: {report}"
        );
    }

    // Tampered (a later expiry) and expired credentials: both servers refuse.
    let tampered = username.replacen(':', "0:", 1);
    // Minted five hours ago: coturn checks them against the wall clock, the
    // embedded server against Tandem's clock, which is back at now.
    app.clock.advance(chrono::Duration::hours(-5));
    let (expired, expired_password) =
        credentials(&student.get("/api/webrtc/ice-servers").await.body);
    app.clock.advance(chrono::Duration::hours(5));
    for (name, user, pass) in [
        ("tampered", &tampered, &password),
        ("expired", &expired, &expired_password),
    ] {
        for (server, port) in [("embedded", embedded), ("coturn", coturn)] {
            let (ok, report) = uclient(port, peer, user, pass, false, small).await;
            assert!(
                !ok && report.contains("Cannot complete Allocation"),
                "{name} at {server}: {report}"
            );
        }
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"tandem_turn_auth_failures_total{reason="expired"}"#)
            && metrics.contains(r#"tandem_turn_auth_failures_total{reason="bad_integrity"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("tandem_turn_relayed_bytes_total"),
        "{metrics}"
    );
}
