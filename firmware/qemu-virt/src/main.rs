//! # firmware-qemu-virt — the tee-cdm secure world, bare metal, on QEMU's `virt` board
//!
//! A self-checking firmware image for `qemu-system-aarch64 -M virt -cpu max`: no operating
//! system, no `std`; the secure world (`secure-world`, `hal`, `cdm-core`) linked as a TEE
//! integrator would link it, with the image's own platform services (`platform`): `RNDR`
//! randomness, a PL031 + generic-timer clock and a SHA-256 digest sink. It
//!
//! 1. checks those platform services;
//! 2. runs hal's known-answer tests (FIPS-197, NIST SP 800-38A ECB/CBC/CTR, ISO/IEC 23001-7
//!    corner cases and refusals) on every AES engine it has (`kat`);
//! 3. runs a whole Clear Key session through `SecureWorld::process` with ABI-encoded requests,
//!    decrypting a `cenc` and a `cbcs` sample made by an independent encryptor, and checks
//!    that the keys are gone after close (`session`);
//! 4. requires the ARMv8 Crypto Extensions engine (`armce`);
//!
//! then prints one summary line on the PL011 UART and exits through semihosting: status 0 if
//! everything passed, 1 otherwise (3 after a CPU exception, 101 after a panic).
//!
//! `unsafe` lives only in the runtime modules — `entry` (reset, vectors, stack), `heap`
//! (allocator, critical section, heap scans), `uart`, `semihosting` and `platform` (system
//! and device registers) — each block with a `// SAFETY:` comment.
#![no_std]
#![no_main]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]

extern crate alloc;

mod entry;
mod heap;
mod kat;
mod platform;
mod reference;
mod semihosting;
mod session;
mod uart;
mod vectors;

use alloc::string::String;

use hal::aes::{Engine, EngineKind};
use hal::platform::{Clock, Platform, SecureOutputSink, SecureRandom};
use secure_world::{Config, SecureWorld};
use uart::println;

/// The engine this image must run on (built with `+aes` for `-cpu max`).
const REQUIRED_ENGINE: EngineKind = EngineKind::ArmCe;

/// Entered from `entry` with a stack and zeroed `.bss`; ends the emulation.
fn main() -> ! {
    heap::init();
    println!("tee-cdm firmware: booted on qemu virt (aarch64, EL1, MMU off)");
    let passed = run();
    semihosting::exit(if passed { 0 } else { 1 })
}

/// Everything the image checks; `true` when all of it passed.
fn run() -> bool {
    let mut ok = true;

    let engine = Engine::detect();
    println!(
        "engine: {} (available: {})",
        engine.name(),
        Engine::available()
            .map(Engine::name)
            .collect::<alloc::vec::Vec<_>>()
            .join(", ")
    );
    if engine.kind() != REQUIRED_ENGINE {
        println!(
            "FAIL engine: {} selected, {} required (build with -C target-feature=+aes)",
            engine.name(),
            REQUIRED_ENGINE.name()
        );
        ok = false;
    }

    let Some(rng) = platform::Rndr::new() else {
        println!("FAIL platform: the CPU has no RNDR (FEAT_RNG); run with -cpu max");
        summary(0, 1, None, engine.name());
        return false;
    };
    let clock = platform::BoardClock::new();
    let mut sink = platform::DigestSink::default();
    if let Err(why) = platform_checks(&rng, &clock, &mut sink) {
        println!("FAIL platform: {why}");
        ok = false;
    }

    let tally = kat::run();
    println!(
        "known-answer tests: {} passed, {} failed (FIPS-197, SP 800-38A ECB/CBC/CTR, CENC cases)",
        tally.passed, tally.failed
    );
    ok &= tally.failed == 0 && tally.passed > 0;

    let platform = Platform::new(rng, clock, sink, engine);
    let session = match SecureWorld::new(platform, Config::default()) {
        Ok(mut world) => {
            let report = session::run(&mut world);
            println!(
                "platform: rng rndr, clock pl031 + cntvct at {} Hz, sink sha-256",
                world.platform().clock.frequency()
            );
            report
        }
        Err(e) => Err(alloc::format!(
            "secure world refused its configuration: {e}"
        )),
    };
    let session_ok = match &session {
        Ok(report) => {
            println!(
                "clear key session: cenc and cbcs samples decrypted; keys gone after close ({} freed heap blocks, {} bytes scanned, no key bytes)",
                report.scan.blocks, report.scan.bytes
            );
            if report.engine != REQUIRED_ENGINE.name() {
                println!(
                    "FAIL capabilities: the secure world reports engine {}",
                    report.engine
                );
                ok = false;
            }
            true
        }
        Err(why) => {
            println!("FAIL clear key session: {why}");
            false
        }
    };
    ok &= session_ok;

    let stack_used = entry::stack_high_water();
    println!(
        "memory: stack {} of {} KiB used, heap peak {} of {} KiB",
        stack_used / 1024,
        entry::stack_size() / 1024,
        heap::peak() / 1024,
        heap::size() / 1024
    );
    if stack_used >= entry::stack_size() {
        println!("FAIL stack: the whole stack was used (it may have overflowed)");
        ok = false;
    }

    let reported = session
        .as_ref()
        .map_or(engine.name(), |r| r.engine.as_str());
    summary(tally.passed, tally.failed, Some(session_ok), reported);
    ok
}

/// The one line CI looks for. `engine` is the one the secure world reported (or, if the
/// session never got that far, the one detected).
fn summary(passed: usize, failed: usize, session: Option<bool>, engine: &str) {
    let session = match session {
        Some(true) => "Clear Key session ok (cenc, cbcs)",
        Some(false) => "Clear Key session FAILED",
        None => "Clear Key session not run",
    };
    if failed == 0 {
        println!(
            "tee-cdm firmware: {passed} known-answer tests passed, {session}, engine {engine}"
        );
    } else {
        println!(
            "tee-cdm firmware: {failed} of {} known-answer tests FAILED, {session}, engine {engine}",
            passed.saturating_add(failed)
        );
    }
}

/// The image's platform services answer sensibly: random bytes vary, the clock is past 2020
/// and moves forward, the sink hashes correctly (FIPS 180-2 B.1, SHA-256 of "abc").
fn platform_checks(
    rng: &platform::Rndr,
    clock: &platform::BoardClock,
    sink: &mut platform::DigestSink,
) -> Result<(), String> {
    let (mut a, mut b) = ([0u8; 37], [0u8; 37]);
    rng.fill(&mut a).map_err(|e| alloc::format!("rng: {e}"))?;
    rng.fill(&mut b).map_err(|e| alloc::format!("rng: {e}"))?;
    if a == b || a.iter().all(|&x| x == 0) {
        return Err("RNDR returned repeating or zero bytes".into());
    }
    // 2020-01-01T00:00:00Z in ms: QEMU starts the PL031 from the host's clock.
    let t0 = clock
        .now_ms()
        .ok_or("the clock has no time (PL031 at 0?)")?;
    if t0 <= 1_577_836_800_000 || clock.frequency() == 0 {
        return Err(alloc::format!(
            "clock: {t0} ms, counter at {} Hz",
            clock.frequency()
        ));
    }
    let t1 = clock.now_ms().ok_or("the clock lost its time")?;
    if t1 < t0 {
        return Err("the clock went backwards".into());
    }
    let digest = sink
        .render(b"abc")
        .map_err(|e| alloc::format!("sink: {e}"))?;
    let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    if hex::encode(digest) != want {
        return Err("the sink's SHA-256 of \"abc\" is wrong".into());
    }
    Ok(())
}
