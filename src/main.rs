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

/// mimalloc's `purge_delay` option (its v2 numbering, checked by a test).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Hands what this thread freed back to the OS now. mimalloc purges freed
/// pages 10 ms later, but only when the thread that owns them allocates or
/// frees again: a blocking-pool thread that ran an image job and then sits
/// idle kept its tens of MB (BENCHMARKS.md, "Hostile input").
#[allow(unsafe_code)]
fn release_freed_memory() {
    // SAFETY: mi_collect takes no pointers and may be called from any
    // thread at any time; it only walks the allocator's own structures.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Freed pages go back to the OS at once rather than 10 ms later, when the
/// owning thread may have gone idle and will not purge them (unless the
/// operator chose a delay with `MIMALLOC_PURGE_DELAY`). With the collect
/// after image jobs: 90 MB less peak RSS under the hostile benchmark, for
/// `GET /api/users/me` 5 % slower on average, within that host's ±15 %
/// noise (BENCHMARKS.md).
#[allow(unsafe_code)]
fn purge_freed_pages_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store into mimalloc's option
        // table, valid at any time; purge_delay is read on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

/// Transparent huge pages round memory up to 2 MiB blocks: mimalloc asks
/// for them on its segments, and a mostly freed segment then stays resident
/// whole. Off for this process, RSS under the hostile benchmark fell by
/// 70 MB (BENCHMARKS.md).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: could not turn transparent huge pages off: {e}");
    }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    purge_freed_pages_at_once();
    tandem_core::memory::on_release(release_freed_memory);
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

#[cfg(test)]
mod tests {
    /// The option number is mimalloc v2's `mi_option_purge_delay`: its
    /// default is 10 (ms), and it reads back what is set.
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading and writing an option of the allocator.
        let (before, after) = unsafe {
            let before = libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY);
            libmimalloc_sys::mi_option_set(super::MI_OPTION_PURGE_DELAY, 0);
            let after = libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY);
            libmimalloc_sys::mi_option_set(super::MI_OPTION_PURGE_DELAY, before);
            (before, after)
        };
        assert_eq!((before, after), (10, 0));
    }
}
