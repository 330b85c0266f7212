//! `tandem`: one binary, several roles. See `tandem --help`.

mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: faster than the system allocator for many small, short-lived
/// allocations across threads (every request). Its v2 line returns freed
/// memory to the OS 10 ms after it is freed, where v3 waits a second: under
/// a stream of image jobs (tens of MB each, on blocking threads) that second
/// held about 300 MB more RSS (BENCHMARKS.md, "Hostile input").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("warning: ignoring .env: {e}");
    }
    let cli = commands::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
