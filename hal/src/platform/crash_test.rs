//! A crash-test hook for the host emulations of the persistent services.
//!
//! [`FileStorage`](super::FileStorage) and [`FileCounter`](super::FileCounter) count their
//! durable steps: creating a temporary file, renaming it over the target, `fsync`ing the
//! directory, unlinking a blob, and the end of each of those operations. Once armed with
//! [`kill_at_storage_step`], the process sends itself `SIGKILL` just before step `n` — the
//! same as an outside `kill -9` at that instant, with no destructor, flush or unwinding — so
//! a test can stop a secure world at every point of a store, remove or release sequence and
//! check what a restart finds.
//!
//! Unarmed (the default), the hook costs one atomic load per step. The secure-world host arms
//! it from the `TEE_CDM_KILL_AT_STORAGE_STEP` environment variable; nothing else should.

use core::sync::atomic::{AtomicU64, Ordering};

/// Steps taken so far.
static STEPS: AtomicU64 = AtomicU64::new(0);
/// The step to die at; 0 while unarmed.
static KILL_AT: AtomicU64 = AtomicU64::new(0);

/// Arms the hook: the process kills itself (`SIGKILL`) when it reaches durable step `n`
/// (1-based, counted from process start), before performing it. `0` disarms.
pub fn kill_at_storage_step(n: u64) {
    KILL_AT.store(n, Ordering::SeqCst);
}

/// Durable steps taken so far by this process.
pub fn storage_steps() -> u64 {
    STEPS.load(Ordering::SeqCst)
}

/// Counts one step, and dies here if this is the armed one.
pub(crate) fn step() {
    let taken = STEPS.fetch_add(1, Ordering::SeqCst).saturating_add(1);
    let at = KILL_AT.load(Ordering::SeqCst);
    if at != 0 && taken == at {
        // If the signal cannot be sent, abort: the hook's whole point is not to go on.
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}
