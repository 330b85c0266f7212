//! Realtime load (issue 4): N WebSocket clients spread over M channels, one
//! publisher per channel, broadcasts at a total rate R; every client measures
//! end-to-end latency from the send time in the payload. The same scenario
//! runs, one after the other in one run, against each target:
//!
//! - `tandem`: the release `tandem serve`, embedded mode (in-process fan-out);
//! - `tandem-redis`: the same with `REDIS_URL` (fan-out through Redis);
//! - `socketio`: Socket.IO 4 with `@socket.io/redis-adapter` (Node, one
//!   process), from `bench/node-socketio`.
//!
//! Prints, per target, connections held, deliveries/s, p50/p99 latency,
//! server RSS per connection and the CPU used by server and generator, then
//! Tandem's ratios to Socket.IO.

mod measure;
mod peer;
mod wire;

use std::{
    process::Stdio,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use measure::{Histogram, Window, now_micros};
use peer::{Event, Proto};
use wire::{TEXT, Ws};

/// Options of `realtime-load`.
#[derive(clap::Args)]
pub struct Args {
    /// Targets, in order: tandem, tandem-redis, socketio.
    #[arg(long, value_delimiter = ',', default_value = "tandem,socketio")]
    targets: Vec<String>,
    /// The `tandem` binary to run.
    #[arg(long, default_value = "target/release/tandem")]
    bin: String,
    /// The Socket.IO peer (run with `node`; `npm ci` in its folder first).
    #[arg(long, default_value = "bench/node-socketio/server.mjs")]
    socketio_server: String,
    /// Redis for `tandem-redis` and `socketio`.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// WebSocket clients.
    #[arg(long, default_value_t = 10_000)]
    connections: u64,
    /// Channels (clients are spread evenly).
    #[arg(long, default_value_t = 100)]
    channels: u64,
    /// Broadcasts per second, over all channels.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Measured seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Run the server under `taskset -c CPUS` (e.g. `0`; run the generator
    /// itself under `taskset -c 1` to keep the two apart).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

/// What one target achieved.
struct Outcome {
    target: String,
    held: u64,
    join_secs: f64,
    per_second: f64,
    /// Deliveries/s the broadcasts sent in the window asked for.
    sent_per_second: f64,
    p50: f64,
    p99: f64,
    max: f64,
    rss_idle_kib: u64,
    rss_loaded_kib: u64,
    rss_busy_kib: u64,
    server_cores: f64,
    client_cores: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "scenario: {} connections in {} channels, {} broadcasts/s ({} deliveries/s offered), {} s measured",
        args.connections,
        args.channels,
        args.rate,
        offered(&args),
        args.seconds
    );
    let mut outcomes = Vec::new();
    for target in &args.targets {
        println!("--- {target}");
        let outcome = run_target(&args, target)
            .await
            .with_context(|| format!("target {target}"))?;
        report(&outcome);
        outcomes.push(outcome);
    }
    if let Some(peer) = outcomes.iter().find(|o| o.target == "socketio") {
        for o in outcomes.iter().filter(|o| o.target != "socketio") {
            let cpu_per_delivery = |o: &Outcome| o.server_cores / o.per_second;
            println!(
                "ratio {} / socketio: deliveries/s {}, p99 latency {} lower, RSS per connection {} lower, server CPU per delivery {} lower",
                o.target,
                ratio(o.per_second, peer.per_second),
                ratio(peer.p99, o.p99),
                ratio(per_conn(peer), per_conn(o)),
                ratio(cpu_per_delivery(peer), cpu_per_delivery(o)),
            );
        }
    }
    for o in &outcomes {
        if o.held < args.connections {
            bail!(
                "{}: only {} of {} connections were held",
                o.target,
                o.held,
                args.connections
            );
        }
    }
    Ok(())
}

fn offered(args: &Args) -> u64 {
    // Each broadcast reaches every other client of its channel.
    args.rate * members(args)
}

/// Clients per channel.
fn members(args: &Args) -> u64 {
    args.connections / args.channels.max(1)
}

/// `a / b` as `1.23x`, or `n/a` when either side was not measured (zero,
/// e.g. RSS that fell below its idle reading).
fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "n/a".to_owned()
    }
}

/// Server memory per connection under load (socket buffers in use).
fn per_conn(o: &Outcome) -> f64 {
    o.rss_busy_kib.saturating_sub(o.rss_idle_kib) as f64 / o.held.max(1) as f64
}

fn report(o: &Outcome) {
    println!(
        "{}: held {} connections (joined in {:.1} s); {:.0} deliveries/s of {:.0} sent ({:.2}% delivered); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        o.target,
        o.held,
        o.join_secs,
        o.per_second,
        o.sent_per_second,
        100.0 * o.per_second / o.sent_per_second.max(1.0),
        o.p50,
        o.p99,
        o.max
    );
    println!(
        "{}: server RSS idle {} MiB, connected {} MiB, under load {} MiB ({:.1} KiB per connection); CPU: server {:.2} cores, generator {:.2} cores",
        o.target,
        o.rss_idle_kib / 1024,
        o.rss_loaded_kib / 1024,
        o.rss_busy_kib / 1024,
        per_conn(o),
        o.server_cores,
        o.client_cores
    );
}

/// A started server: the process and its address.
struct Server {
    child: Child,
    pid: u32,
    addr: String,
}

async fn start(args: &Args, target: &str) -> anyhow::Result<(Server, Proto)> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let (program, mut argv, env): (&str, Vec<String>, Vec<(&str, String)>) = match target {
        "tandem" | "tandem-redis" => {
            let dir = std::env::temp_dir().join(format!("tandem-rt-bench-{unique}"));
            std::fs::create_dir_all(&dir)?;
            let mut env = vec![
                ("TANDEM_COOKIE_SECURE", "false".to_owned()),
                ("TANDEM_API_MAX_PER_MINUTE", "100000000".to_owned()),
                ("TANDEM_REALTIME_MESSAGES_PER_SECOND", "100000".to_owned()),
                ("TANDEM_TURN_LISTEN", "off".to_owned()),
                // Every simulated client comes from 127.0.0.1.
                ("TANDEM_MAX_CONNECTIONS", "1000000".to_owned()),
                ("TANDEM_MAX_CONNECTIONS_PER_IP", "0".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ];
            if target == "tandem-redis" {
                env.push(("REDIS_URL", args.redis_url.clone()));
                env.push(("TANDEM_REDIS_PREFIX", format!("rtbench-{unique}:")));
                env.push(("TANDEM_REALTIME_SECRET", unique.clone()));
            }
            let argv = vec![
                "serve".to_owned(),
                "--addr".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--data-dir".to_owned(),
                dir.to_string_lossy().into_owned(),
            ];
            (args.bin.as_str(), argv, env)
        }
        "socketio" => (
            "node",
            vec![args.socketio_server.clone()],
            vec![
                ("PORT", "0".to_owned()),
                ("REDIS_URL", args.redis_url.clone()),
                ("SOCKETIO_KEY", format!("rtbench-sio-{unique}")),
            ],
        ),
        other => bail!("unknown target {other} (tandem, tandem-redis, socketio)"),
    };
    let mut command = match &args.server_cpus {
        Some(cpus) => {
            argv.insert(0, program.to_owned());
            argv.insert(0, cpus.clone());
            argv.insert(0, "-c".to_owned());
            Command::new("taskset")
        }
        None => Command::new(program),
    };
    command
        .args(&argv)
        .envs(env)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let pid = child.id().context("server pid")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await?
            .context("server exited before printing its address")?;
        if let Some(at) = line.find("http://") {
            break line[at..].trim().trim_end_matches('/').to_owned();
        }
    };
    let addr = base.trim_start_matches("http://").to_owned();
    let proto = if target == "socketio" {
        Proto::SocketIo
    } else {
        Proto::Supabase {
            token: token(&base).await?,
        }
    };
    Ok((Server { child, pid, addr }, proto))
}

async fn run_target(args: &Args, target: &str) -> anyhow::Result<Outcome> {
    let (mut server, proto) = start(args, target).await?;
    let proto = Arc::new(proto);
    let rss_idle_kib = rss_kib(server.pid);
    let latencies = Arc::new(Histogram::default());
    let window = Arc::new(Window::default());

    let started = Instant::now();
    let clients = subscribe(args, target, &server.addr, &proto, &latencies, &window).await;
    let held = clients.len() as u64;
    let join_secs = started.elapsed().as_secs_f64();
    let rss_loaded_kib = rss_kib(server.pid);

    let per_channel = (args.rate as f64 / args.channels as f64).max(0.001);
    let mut publishers = Vec::new();
    for c in 0..args.channels {
        let ws = tokio::time::timeout(
            JOIN_TIMEOUT,
            proto.join(&server.addr, &format!("bench-{c}")),
        )
        .await
        .with_context(|| format!("publisher {c} did not join within {JOIN_TIMEOUT:?}"))??;
        publishers.push(tokio::spawn(client(
            ws,
            proto.clone(),
            latencies.clone(),
            window.clone(),
            Some((format!("bench-{c}"), per_channel)),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up, not measured
    let cpu_before = (cpu_ticks("self"), cpu_ticks(&server.pid.to_string()));
    window.open();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let elapsed = window.close();
    let cpu_after = (cpu_ticks("self"), cpu_ticks(&server.pid.to_string()));
    let cores = |before: u64, after: u64| after.saturating_sub(before) as f64 / 100.0 / elapsed;
    // Broadcasts sent near the end of the window are still on their way.
    tokio::time::sleep(STRAGGLERS).await;
    let outcome = Outcome {
        target: target.to_owned(),
        held,
        join_secs,
        per_second: latencies.count() as f64 / elapsed,
        sent_per_second: window.sent.load(Ordering::Relaxed) as f64 * members(args) as f64
            / elapsed,
        p50: latencies.quantile(0.50),
        p99: latencies.quantile(0.99),
        max: latencies.quantile(1.0),
        rss_idle_kib,
        rss_loaded_kib,
        rss_busy_kib: rss_kib(server.pid),
        server_cores: cores(cpu_before.1, cpu_after.1),
        client_cores: cores(cpu_before.0, cpu_after.0),
    };
    for task in publishers.into_iter().chain(clients) {
        task.abort();
    }
    let _ = server.child.kill().await;
    Ok(outcome)
}

/// Opens `args.connections` subscribers, 500 at a time, each joined to one
/// of the channels; reports progress and failures.
async fn subscribe(
    args: &Args,
    target: &str,
    addr: &str,
    proto: &Arc<Proto>,
    latencies: &Arc<Histogram>,
    window: &Arc<Window>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut clients = Vec::new();
    let mut failed = Vec::new();
    for batch in (0..args.connections).collect::<Vec<_>>().chunks(500) {
        let opened = futures_util::future::join_all(batch.iter().map(|i| {
            let channel = format!("bench-{}", i % args.channels);
            let (proto, addr) = (proto.clone(), addr.to_owned());
            async move {
                tokio::time::timeout(JOIN_TIMEOUT, proto.join(&addr, &channel))
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
            }
        }))
        .await;
        for ws in opened {
            match ws {
                Ok(ws) => clients.push(tokio::spawn(client(
                    ws,
                    proto.clone(),
                    latencies.clone(),
                    window.clone(),
                    None,
                ))),
                Err(e) => failed.push(e.to_string()),
            }
        }
        eprint!(
            "\r{target}: {} connections joined, {} failed",
            clients.len(),
            failed.len()
        );
    }
    eprintln!();
    if let Some(first) = failed.first() {
        eprintln!(
            "{target}: {} connections failed, e.g. {first}",
            failed.len()
        );
    }
    clients
}

/// How long deliveries of broadcasts sent in the window are still awaited
/// after it closes.
const STRAGGLERS: Duration = Duration::from_secs(3);

/// Longest a connection may take to open and join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection until it ends: times deliveries of broadcasts sent in the
/// `window` into `latencies`, answers pings, sends heartbeats, and for a
/// publisher (`publish` = channel, broadcasts per second) broadcasts on its
/// channel, catching up after a stall so the offered rate holds; with
/// broadcasts to self off, a publisher receives only pings.
async fn client(
    mut ws: Ws,
    proto: Arc<Proto>,
    latencies: Arc<Histogram>,
    window: Arc<Window>,
    publish: Option<(String, f64)>,
) {
    let mut heartbeat = tokio::time::interval(Duration::from_secs(25));
    heartbeat.tick().await;
    let rate = publish.as_ref().map_or(1.0, |(_, rate)| *rate);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    loop {
        let frame: Option<std::borrow::Cow<'static, [u8]>> = tokio::select! {
            frame = ws.next() => match frame {
                Ok((opcode, bytes)) => match proto.on_frame(opcode, bytes) {
                    Event::Delivery(at) => {
                        if window.contains(at) {
                            latencies.record(now_micros().saturating_sub(at));
                        }
                        None
                    }
                    Event::Answer(answer) => Some(answer.into()),
                    Event::Other => None,
                },
                Err(_) => return,
            },
            _ = tick.tick(), if publish.is_some() => publish.as_ref().map(|(channel, _)| {
                sent += 1;
                let now = now_micros();
                if window.contains(now) {
                    window.sent.fetch_add(1, Ordering::Relaxed);
                }
                proto.publish(channel, sent, now).into()
            }),
            _ = heartbeat.tick() => proto.heartbeat().map(Into::into),
        };
        if let Some(frame) = frame
            && ws.send(TEXT, &frame).await.is_err()
        {
            return;
        }
    }
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

/// User + system CPU time of a process, in clock ticks (1/100 s on Linux).
pub(crate) fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name in parentheses: state is the 3rd
    // field of the line; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
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
