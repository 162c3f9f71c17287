//! # firmware-selftest — what the tee-cdm firmware images check, written once
//!
//! The bare-metal images (`firmware/qemu-virt` for aarch64, `firmware/mps2-an386` for
//! Cortex-M4F) bring their own runtime and platform services and call into this crate:
//!
//! - [`known_answer_tests`]: hal's AES engines and CENC schemes against FIPS-197, NIST SP
//!   800-38A and ISO/IEC 23001-7 data from the repository's test-data files, on every engine;
//! - [`clear_key_session`]: a whole Clear Key session through `SecureWorld::process` with
//!   ABI-encoded requests, `cenc` and `cbcs` samples from an independent encryptor, and the
//!   checks that the keys are gone after close;
//! - [`heap::ScanningHeap`]: the global allocator both images use, which the wiping checks
//!   read;
//! - [`DigestSink`], the secure output sink of both images, and [`check_rng`] /
//!   [`check_sink`] for the images' platform checks;
//! - [`Verdict`]: the stack and heap use, and the summary line CI looks for.
//!
//! `no_std` + `alloc`; `unsafe` only in [`heap`] (the allocator and its memory scans).
#![no_std]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]

extern crate alloc;

pub mod heap;
mod kat;
mod platform;
mod reference;
mod session;
mod vectors;

use core::fmt::Write;

use alloc::string::String;
use hal::aes::{Engine, EngineKind};
use hal::platform::{Clock, Platform, SecureOutputSink, SecureRandom};
use secure_world::{Config, SecureWorld};

pub use kat::Tally;
pub use platform::{check_rng, check_sink, DigestSink};
pub use session::SessionReport;

/// Writes one line to a console (the images' consoles cannot fail, so errors are dropped).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}
pub(crate) use say;

/// Runs every known-answer test on every engine this build can run; failures are printed.
pub fn known_answer_tests(out: &mut dyn Write) -> Tally {
    let tally = kat::run(out);
    say!(
        out,
        "known-answer tests: {} passed, {} failed (FIPS-197, SP 800-38A ECB/CBC/CTR, CENC cases)",
        tally.passed,
        tally.failed
    );
    tally
}

/// Runs the Clear Key session against `world`, using `heap` (the image's global allocator) for
/// the wiping checks. `Err` names the first check that failed.
pub fn clear_key_session<R: SecureRandom, C: Clock, S: SecureOutputSink>(
    world: &mut SecureWorld<R, C, S>,
    heap: &heap::ScanningHeap,
) -> Result<SessionReport, String> {
    session::run(world, heap)
}

/// The outcome of an image's checks, and the line that sums it up.
#[derive(Debug)]
pub struct Verdict {
    /// Known-answer tests that passed.
    pub passed: usize,
    /// Known-answer tests that failed.
    pub failed: usize,
    /// Whether the Clear Key session passed (`None`: it did not run).
    pub session: Option<bool>,
    /// The engine the secure world reported (or the one detected, if it never answered).
    pub engine: String,
    /// Whether everything else the image checked passed too.
    pub other_checks: bool,
}

impl Verdict {
    /// Whether everything passed: the exit status is 0 exactly then.
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.passed > 0 && self.session == Some(true) && self.other_checks
    }

    /// Prints the stack's high-water mark and the heap's peak; a stack used down to its last
    /// word fails the run (it may have overflowed: nothing guards it).
    pub fn check_memory(
        &mut self,
        out: &mut dyn Write,
        stack_used: usize,
        stack_size: usize,
        heap: &heap::ScanningHeap,
    ) {
        say!(
            out,
            "memory: stack {} of {} KiB used, heap peak {} of {} KiB",
            stack_used / 1024,
            stack_size / 1024,
            heap.peak() / 1024,
            heap.size() / 1024
        );
        if stack_used >= stack_size {
            say!(
                out,
                "FAIL stack: the whole stack was used (it may have overflowed)"
            );
            self.other_checks = false;
        }
    }

    /// Prints the summary line, e.g. `tee-cdm firmware: 104 known-answer tests passed, Clear
    /// Key session ok (cenc, cbcs), engine armce`. CI matches it (and the exit status).
    pub fn summarize(&self, out: &mut dyn Write) {
        let session = match self.session {
            Some(true) => "Clear Key session ok (cenc, cbcs)",
            Some(false) => "Clear Key session FAILED",
            None => "Clear Key session not run",
        };
        let others = if self.other_checks {
            ""
        } else {
            ", other checks FAILED"
        };
        let engine = &self.engine;
        if self.failed == 0 {
            say!(
                out,
                "tee-cdm firmware: {} known-answer tests passed, {session}, engine {engine}{others}",
                self.passed
            );
        } else {
            say!(
                out,
                "tee-cdm firmware: {} of {} known-answer tests FAILED, {session}, engine {engine}{others}",
                self.failed,
                self.passed.saturating_add(self.failed)
            );
        }
    }
}

/// The common run of both images: reports the engine (failing unless it is `required`), runs
/// the known-answer tests, builds the secure world on `platform` with the default
/// configuration and runs the Clear Key session. `other_checks` carries the image's own
/// results so far; the image may add more before it prints [`Verdict::summarize`].
pub fn run<R: SecureRandom, C: Clock, S: SecureOutputSink>(
    out: &mut dyn Write,
    heap: &heap::ScanningHeap,
    required: EngineKind,
    platform: Platform<R, C, S>,
    other_checks: bool,
) -> Verdict {
    let mut other_checks = other_checks;
    let engine = platform.engine;
    let available: alloc::vec::Vec<&str> = Engine::available().map(Engine::name).collect();
    say!(
        out,
        "engine: {} (available: {})",
        engine.name(),
        available.join(", ")
    );
    if engine.kind() != required {
        say!(
            out,
            "FAIL engine: {} selected, {} required",
            engine.name(),
            required.name()
        );
        other_checks = false;
    }

    let tally = known_answer_tests(out);

    let mut reported = String::from(engine.name());
    let session = match SecureWorld::new(platform, Config::default()) {
        Ok(mut world) => match clear_key_session(&mut world, heap) {
            Ok(report) => {
                say!(
                    out,
                    "clear key session: cenc and cbcs samples decrypted; keys gone after close ({} freed heap blocks, {} bytes scanned, no key bytes)",
                    report.scan.blocks,
                    report.scan.bytes
                );
                if report.engine != required.name() {
                    say!(
                        out,
                        "FAIL capabilities: the secure world reports engine {}",
                        report.engine
                    );
                    other_checks = false;
                }
                reported = report.engine;
                true
            }
            Err(why) => {
                say!(out, "FAIL clear key session: {why}");
                false
            }
        },
        Err(e) => {
            say!(out, "FAIL secure world refused its configuration: {e}");
            false
        }
    };

    Verdict {
        passed: tally.passed,
        failed: tally.failed,
        session: Some(session),
        engine: reported,
        other_checks,
    }
}
