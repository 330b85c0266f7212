//! Realtime load: starts the real `tandem serve` (embedded mode), opens N
//! WebSocket clients (Supabase protocol, vsn 2.0.0) spread over M channels,
//! and has one publisher per channel broadcast at a total rate R. Every
//! client measures end-to-end latency from the send time in the payload.
//! Prints connections held, deliveries/s, p50/p99 latency and server RSS per
//! connection.

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
    sync::Mutex,
};
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// Options of `realtime-load`.
#[derive(clap::Args)]
pub struct Args {
    /// The `tandem` binary to run.
    #[arg(long, default_value = "target/release/tandem")]
    bin: String,
    /// WebSocket clients.
    #[arg(long, default_value_t = 10_000)]
    connections: u64,
    /// Channels (clients are spread evenly).
    #[arg(long, default_value_t = 100)]
    channels: u64,
    /// Broadcasts per second, over all channels.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let mut server = Command::new(&args.bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir", &dir])
        .env("TANDEM_COOKIE_SECURE", "false")
        .env("TANDEM_API_MAX_PER_MINUTE", "100000000")
        .env("TANDEM_REALTIME_MESSAGES_PER_SECOND", "100000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.bin))?;
    let pid = server.id().context("server pid")?;
    let mut lines = BufReader::new(server.stdout.take().context("stdout")?).lines();
    let base = loop {
        let line = lines.next_line().await?.context("server exited")?;
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_owned();
        }
    };
    let token = token(&base).await?;
    let ws_url = format!(
        "{}/realtime/v1/websocket?apikey={token}&vsn=2.0.0",
        base.replace("http", "ws")
    );
    let rss_idle = rss_kib(pid);

    let deliveries = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let measuring = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut clients = Vec::new();
    let mut held = 0u64;
    for batch in (0..args.connections).collect::<Vec<_>>().chunks(250) {
        let opened = futures_util::future::join_all(batch.iter().map(|i| {
            let topic = format!("realtime:bench-{}", i % args.channels);
            subscriber(
                ws_url.clone(),
                topic,
                deliveries.clone(),
                latencies.clone(),
                measuring.clone(),
            )
        }))
        .await;
        for client in opened {
            match client {
                Ok(handle) => {
                    held += 1;
                    clients.push(handle);
                }
                Err(e) => eprintln!("connection failed: {e:#}"),
            }
        }
    }
    println!(
        "{held} connections joined in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rss_loaded = rss_kib(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let per_channel = (args.rate as f64 / args.channels as f64).max(0.001);
    let mut publishers = Vec::new();
    for c in 0..args.channels {
        publishers.push(tokio::spawn(publish(
            ws_url.clone(),
            format!("realtime:bench-{c}"),
            per_channel,
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up, not measured
    deliveries.store(0, Ordering::Relaxed);
    latencies.lock().await.clear();
    measuring.store(true, Ordering::Relaxed);
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = window.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(600)).await; // last latency reports
    let delivered = deliveries.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let rss_busy = rss_kib(pid);
    let mut lat = std::mem::take(&mut *latencies.lock().await);
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "held {held} connections in {} channels; {:.0} deliveries/s ({} in {elapsed:.1} s) at {} broadcasts/s",
        args.channels,
        delivered as f64 / elapsed,
        delivered,
        args.rate
    );
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "server RSS: idle {} MiB, {} connections {} MiB ({:.1} KiB per connection), under load {} MiB",
        rss_idle / 1024,
        held,
        rss_loaded / 1024,
        (rss_loaded.saturating_sub(rss_idle)) as f64 / held.max(1) as f64,
        rss_busy / 1024
    );
    for p in publishers {
        p.abort();
    }
    for c in clients {
        c.abort();
    }
    let _ = server.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    if held < args.connections {
        bail!("only {held} of {} connections were held", args.connections);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<String> {
    let dir =
        std::env::temp_dir().join(format!("tandem-rt-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir.to_string_lossy().into_owned())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn token(base: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let email = format!("rt-{}@bench.invalid", uuid::Uuid::new_v4().simple());
    let res = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "password": "correct horse battery staple", "display_name": "Load"}))
        .send()
        .await?;
    let cookie = res
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no cookie")?
        .to_owned();
    let body: Value = http
        .post(format!("{base}/api/realtime/token"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await?
        .json()
        .await?;
    Ok(body["access_token"]
        .as_str()
        .context("no token")?
        .to_owned())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(url: &str, topic: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = connect_async(url).await?;
    ws.send(Message::Text(
        json!(["1", "1", topic, "phx_join", {"config": {"broadcast": {"self": false}}}])
            .to_string()
            .into(),
    ))
    .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("phx_reply") => {
                if t.contains("\"ok\"") {
                    return Ok(ws);
                }
                bail!("join refused: {t}");
            }
            Some(Ok(_)) => continue,
            _ => bail!("closed while joining"),
        }
    }
}

/// Joins and counts deliveries; returns the reader task.
async fn subscriber(
    url: String,
    topic: String,
    deliveries: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<u32>>>,
    measuring: Arc<AtomicBool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut ws = join(&url, &topic).await?;
    Ok(tokio::spawn(async move {
        let mut local = Vec::new();
        let mut heartbeat = tokio::time::interval(Duration::from_secs(25));
        let mut report = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Binary(b))) => {
                        if measuring.load(Ordering::Relaxed) && let Some(sent) = sent_at(&b) {
                            deliveries.fetch_add(1, Ordering::Relaxed);
                            local.push(now_micros().saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                            if local.len() >= 64 {
                                latencies.lock().await.append(&mut local);
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = report.tick() => {
                    if !local.is_empty() {
                        latencies.lock().await.append(&mut local);
                    }
                }
                _ = heartbeat.tick() => {
                    let hb = json!([null, "hb", "phoenix", "heartbeat", {}]).to_string();
                    if ws.send(Message::Text(hb.into())).await.is_err() { break; }
                }
            }
        }
    }))
}

/// The send time in a kind-4 broadcast's payload `{"t":<micros>}` (read
/// without a JSON parser: the load generator must stay cheaper than the server).
fn sent_at(frame: &[u8]) -> Option<u64> {
    let header = frame.get(..5)?;
    let skip = 5 + usize::from(header[1]) + usize::from(header[2]) + usize::from(header[3]);
    let payload = frame.get(skip..)?.strip_prefix(b"{\"t\":")?;
    let digits = payload.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&payload[..digits]).ok()?.parse().ok()
}

/// Broadcasts on `topic` at `rate` per second until stopped. With `self`
/// off and no `ack`, nothing comes back to the publisher.
async fn publish(url: String, topic: String, rate: f64, stop: Arc<AtomicBool>) {
    let Ok(mut ws) = join(&url, &topic).await else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let frame = json!(["1", n.to_string(), topic, "broadcast", {"type": "broadcast", "event": "b", "payload": {"t": now_micros()}}]);
        if ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}
