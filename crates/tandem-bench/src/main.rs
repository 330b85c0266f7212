//! `tandem-bench`: load generators for Tandem's benchmarks. Results go to
//! BENCHMARKS.md; see each subcommand's `--help`.

mod cache_load;
mod hostile;
mod images;
mod matching;
mod queue_load;
mod realtime_load;
mod simulate;

use clap::{Parser, Subcommand};

/// Tandem's benchmarks.
#[derive(Parser)]
#[command(name = "tandem-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark A: database load of a Zipf read workload through the HTTP API.
    CacheLoad(cache_load::Args),
    /// Issue 4: N WebSocket clients in M channels, broadcasts at rate R.
    RealtimeLoad(realtime_load::Args),
    /// Issue 5: ranking partners among 100k candidates.
    Matching(matching::Args),
    /// Issue 5: no-op jobs, Tandem's queue vs Node BullMQ on one Redis; SQLite alone; pickup latency.
    #[command(name = "queue-load")]
    Queue(queue_load::Args),
    /// Issue 8: `/cdn-cgi/image/` vs sharp, one photo to 720 px, JPEG and WebP.
    Images(images::Args),
    /// Issue 10: a day of a study community against Tandem URLs; the largest DAU that holds.
    Simulate(simulate::Args),
    /// Issue 18: slowloris, idle connections, a method flood and new image variants at once.
    Hostile(hostile::Args),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    match &command {
        // The generator's share of the machine is a parameter of the run.
        Command::RealtimeLoad(args) => runtime.worker_threads(args.client_threads.max(1)),
        // Like Node's event loop, one thread runs the queue worker.
        Command::Queue(args) => runtime.worker_threads(args.threads.max(1)),
        _ => &mut runtime,
    };
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        match command {
            Command::CacheLoad(args) => cache_load::run(args).await,
            Command::RealtimeLoad(args) => realtime_load::run(args).await,
            Command::Queue(args) => queue_load::run(args).await,
            Command::Matching(args) => matching::run(args),
            Command::Images(args) => images::run(args).await,
            Command::Simulate(args) => simulate::run(args).await,
            Command::Hostile(args) => hostile::run(args).await,
        }
    })
}
