//! Issue 18: Tandem under a mixed denial-of-service attack, with honest
//! clients measured throughout.
//!
//! Starts the release `tandem serve` (embedded mode, default limits unless
//! `--server-env` says otherwise) and, for `--seconds`, keeps up at once:
//! slow-header connections (a header line every few seconds, slowloris),
//! idle kept-alive connections, a flood of requests with made-up methods,
//! and anonymous `/cdn-cgi/image/` requests for ever new variants of an
//! avatar, from many loopback addresses (`127.0.x.y`), each reopening what
//! the server closes. From `127.0.0.1`, `/healthz` is probed every 100 ms
//! and a student signs in and reads `/api/users/me` every second. Reports
//! the probes' latency and failures, the server's peak RSS and how much its
//! data directory grew, and checks them against the targets.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rand::Rng;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpSocket, TcpStream},
    process::Command,
};

/// `tandem-bench hostile` options.
#[derive(clap::Args)]
pub struct Args {
    /// The `tandem` binary to attack.
    #[arg(long)]
    bin: PathBuf,
    /// How long the attack lasts.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Slow-header connections kept open.
    #[arg(long, default_value_t = 500)]
    slow: usize,
    /// Idle kept-alive connections kept open.
    #[arg(long, default_value_t = 500)]
    idle: usize,
    /// Requests per second with made-up methods.
    #[arg(long, default_value_t = 1000)]
    flood_rate: u64,
    /// New-variant image requests per second.
    #[arg(long, default_value_t = 50)]
    variant_rate: u64,
    /// Loopback addresses the attack comes from.
    #[arg(long, default_value_t = 16)]
    attacker_ips: u8,
    /// Extra `KEY=VALUE` environment for the server (repeatable).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    /// The variant storage budget given to the server
    /// (`TANDEM_IMAGE_VARIANT_BUDGET_MB`), in MiB: the data directory must
    /// grow by less.
    #[arg(long, default_value_t = 256)]
    variant_budget_mb: u64,
}

/// Counters shared by the attack tasks.
#[derive(Default)]
struct Tally {
    opened: AtomicU64,
    refused: AtomicU64,
    flood: AtomicU64,
    variants_ok: AtomicU64,
    variants_refused: AtomicU64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let (mut child, server) = start(&args, data.path()).await?;
    let pid = child.id().context("server pid")?;
    let honest = reqwest::Client::builder().cookie_store(true).build()?;
    let avatar = sign_up_with_avatar(&honest, server).await?;
    let size_before = dir_size(data.path());
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks = attack(&args, server, avatar, &stop, &tally);
    let started = Instant::now();
    let mut health = Vec::new();
    let (mut health_failed, mut me_ok, mut me_failed, mut peak_rss) = (0u64, 0u64, 0u64, 0u64);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        every.tick().await;
        tick += 1;
        let probe = Instant::now();
        let ok = honest
            .get(format!("http://{server}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        health.push(probe.elapsed());
        health_failed += u64::from(!ok);
        if tick.is_multiple_of(10) {
            let fresh = reqwest::Client::builder().cookie_store(true).build()?;
            match student_round(&fresh, server).await {
                Ok(()) => me_ok += 1,
                Err(e) => {
                    me_failed += 1;
                    eprintln!("honest student failed: {e:#}");
                }
            }
            peak_rss = peak_rss.max(rss_kib(pid));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let grown = dir_size(data.path()).saturating_sub(size_before);
    let _ = child.start_kill();
    report(
        &args,
        &tally,
        health,
        health_failed,
        (me_ok, me_failed),
        peak_rss,
        grown,
    )
}

/// Starts the attackers: slow and idle connections from `attacker_ips`
/// addresses, the anonymous request flood and the image variant flood.
fn attack(
    args: &Args,
    server: SocketAddr,
    avatar: String,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let attacker = |i: usize| {
        IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            1,
            1 + (i % usize::from(args.attacker_ips)) as u8,
        ))
    };
    let mut tasks = Vec::new();
    for i in 0..args.slow {
        let (stop, tally) = (stop.clone(), tally.clone());
        tasks.push(tokio::spawn(hold(attacker(i), server, true, stop, tally)));
    }
    for i in 0..args.idle {
        let (stop, tally) = (stop.clone(), tally.clone());
        tasks.push(tokio::spawn(hold(
            attacker(i + 7),
            server,
            false,
            stop,
            tally,
        )));
    }
    tasks.push(tokio::spawn(flood(
        args.flood_rate,
        server,
        stop.clone(),
        tally.clone(),
    )));
    tasks.push(tokio::spawn(variants(
        args.variant_rate,
        server,
        avatar,
        stop.clone(),
        tally.clone(),
    )));
    tasks
}

async fn start(args: &Args, data: &Path) -> anyhow::Result<(tokio::process::Child, SocketAddr)> {
    let mut command = Command::new(&args.bin);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .envs([
            ("TANDEM_TURN_LISTEN", "off"),
            ("TANDEM_COOKIE_SECURE", "false"),
            ("RUST_LOG", "error"),
        ])
        .env(
            "TANDEM_IMAGE_VARIANT_BUDGET_MB",
            args.variant_budget_mb.to_string(),
        )
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    for pair in &args.server_env {
        let (key, value) = pair.split_once('=').context("--server-env KEY=VALUE")?;
        command.env(key, value);
    }
    let mut child = command.spawn().context("starting tandem")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(at) = line.find("http://") {
            let addr = line[at + 7..].trim().trim_end_matches('/').parse()?;
            return Ok((child, addr));
        }
    }
    bail!("tandem exited before serving")
}

/// Registers the honest student with an avatar; the avatar's path.
async fn sign_up_with_avatar(http: &reqwest::Client, server: SocketAddr) -> anyhow::Result<String> {
    let res = http
        .post(format!("http://{server}/api/auth/register"))
        .json(&serde_json::json!({
            "email": "honest@example.com",
            "password": PASSWORD,
            "display_name": "Honest Student",
        }))
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "sign-up: {}", res.status());
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(crate::images::photo(1024, 1024)).write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )?;
    let res = http
        .put(format!("http://{server}/api/users/me/avatar"))
        .header("content-type", "image/jpeg")
        .body(jpeg)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "avatar: {}", res.status());
    let body: serde_json::Value = res.json().await?;
    Ok(body["avatar_url"]
        .as_str()
        .context("avatar_url")?
        .to_owned())
}

const PASSWORD: &str = "correct horse battery staple";

/// One honest round: sign in, read `/api/users/me`.
async fn student_round(http: &reqwest::Client, server: SocketAddr) -> anyhow::Result<()> {
    let limit = Duration::from_secs(5);
    let res = http
        .post(format!("http://{server}/api/auth/login"))
        .json(&serde_json::json!({"email": "honest@example.com", "password": PASSWORD}))
        .timeout(limit)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "sign-in: {}", res.status());
    let res = http
        .get(format!("http://{server}/api/users/me"))
        .timeout(limit)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "/api/users/me: {}", res.status());
    Ok(())
}

async fn connect_from(ip: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(server).await
}

/// Keeps one attacking connection open, reopening it when the server
/// closes it: half a request head (a header line every 5 s) when `slow`,
/// else one request and then silence.
async fn hold(
    ip: IpAddr,
    server: SocketAddr,
    slow: bool,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut tcp) = connect_from(ip, server).await else {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        tally.opened.fetch_add(1, Ordering::Relaxed);
        let first: &[u8] = if slow {
            b"GET / HTTP/1.1\r\nHost: x\r\n"
        } else {
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        };
        if tcp.write_all(first).await.is_err() {
            continue;
        }
        loop {
            tokio::select! {
                read = tcp.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_secs(5)), if slow => {
                    if tcp.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        break;
                    }
                }
            }
        }
        // Closed at once: the server refused it (a cap); wait a little.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests with made-up methods and paths, at `rate` per second.
async fn flood(rate: u64, server: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let http = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1)))
        .timeout(Duration::from_secs(5))
        .build();
    let Ok(http) = http else { return };
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let n: u64 = rand::rng().random();
        let Ok(method) = reqwest::Method::from_bytes(format!("M{n:x}").as_bytes()) else {
            continue;
        };
        let request = http.request(method, format!("http://{server}/x/{n}"));
        let tally = tally.clone();
        tokio::spawn(async move {
            if request.send().await.is_ok() {
                tally.flood.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Anonymous requests for ever new variants of `avatar` from many
/// addresses, at `rate` per second.
async fn variants(
    rate: u64,
    server: SocketAddr,
    avatar: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    const SIZES: [u32; 8] = [64, 128, 256, 384, 640, 720, 1080, 2048];
    const FORMATS: [&str; 3] = ["png", "webp", "jpeg"];
    const FITS: [&str; 4] = ["contain", "cover", "pad", "scale-down"];
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut sent = 0u32;
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        sent += 1;
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 3, (sent % 250) as u8 + 1));
        let Ok(http) = reqwest::Client::builder()
            .local_address(ip)
            .timeout(Duration::from_secs(30))
            .build()
        else {
            continue;
        };
        let mut rng = rand::rng();
        let options = format!(
            "width={},height={},fit={},format={},quality={}",
            SIZES[rng.random_range(0..SIZES.len())],
            SIZES[rng.random_range(0..SIZES.len())],
            FITS[rng.random_range(0..FITS.len())],
            FORMATS[rng.random_range(0..FORMATS.len())],
            [50, 60, 70, 75, 80, 85, 90][rng.random_range(0..7)],
        );
        let url = format!("http://{server}/cdn-cgi/image/{options}{avatar}");
        let tally = tally.clone();
        tokio::spawn(async move {
            match http.get(url).send().await {
                Ok(r) if r.status().is_success() => {
                    tally.variants_ok.fetch_add(1, Ordering::Relaxed)
                }
                _ => tally.variants_refused.fetch_add(1, Ordering::Relaxed),
            };
        });
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn report(
    args: &Args,
    tally: &Tally,
    mut health: Vec<Duration>,
    health_failed: u64,
    (me_ok, me_failed): (u64, u64),
    peak_rss_kib: u64,
    grown: u64,
) -> anyhow::Result<()> {
    health.sort();
    let at = |q: f64| health[((health.len() as f64 * q) as usize).min(health.len() - 1)];
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    let rss_mb = peak_rss_kib / 1024;
    let grown_mb = grown as f64 / (1024.0 * 1024.0);
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "attack, {} s: {} slow + {} idle connections held (opened {}, connect failures {}); {} made-up-method requests answered; variants {} served, {} refused",
        args.seconds,
        args.slow,
        args.idle,
        load(&tally.opened),
        load(&tally.refused),
        load(&tally.flood),
        load(&tally.variants_ok),
        load(&tally.variants_refused),
    );
    println!(
        "/healthz: {} probes, {health_failed} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        health.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
    println!("honest student (sign in + /api/users/me): {me_ok} ok, {me_failed} failed");
    println!(
        "server peak RSS {rss_mb} MB; data dir grew {grown_mb:.1} MB (budget {} MB)",
        args.variant_budget_mb
    );
    let checks = [
        (
            "/healthz p99 < 100 ms",
            p99 < Duration::from_millis(100) && health_failed == 0,
        ),
        ("honest student always served", me_failed == 0 && me_ok > 0),
        ("RSS < 300 MB", rss_mb < 300),
        (
            "data dir growth < variant budget",
            grown_mb < args.variant_budget_mb as f64,
        ),
    ];
    for (what, ok) in checks {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
    }
    if checks.iter().all(|(_, ok)| *ok) {
        Ok(())
    } else {
        bail!("the server did not hold under the attack")
    }
}
