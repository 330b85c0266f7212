//! Handing freed memory back to the operating system after a burst of
//! large allocations (an image job frees tens of MB at once). How to do
//! that belongs to the allocator, which the binary chooses: it registers
//! the way once with [`on_release`]; libraries call [`release_freed`].

use std::sync::OnceLock;

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Registers how the process's allocator returns freed memory (first call wins).
pub fn on_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Returns memory this thread freed to the OS now, rather than when the
/// allocator next gets round to it (a thread of a blocking pool may sit
/// idle for seconds holding it). Without a registered allocator: nothing.
pub fn release_freed() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}
