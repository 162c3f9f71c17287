//! # firmware-qemu-virt — the tee-cdm secure world, bare metal, on QEMU's `virt` board
//!
//! A self-checking firmware image for `qemu-system-aarch64 -M virt -cpu max`: no operating
//! system, no `std`; the secure world (`secure-world`, `hal`, `cdm-core`) linked as a TEE
//! integrator would link it, with the image's own platform services (`platform`): `RNDR`
//! randomness and a PL031 + generic-timer clock (and the shared SHA-256 digest sink). It
//!
//! 1. checks those platform services;
//! 2. runs the checks of `firmware-selftest`: hal's known-answer tests (FIPS-197, NIST SP
//!    800-38A ECB/CBC/CTR, ISO/IEC 23001-7 corner cases and refusals) on every AES engine it
//!    has, and a whole Clear Key session through `SecureWorld::process` with ABI-encoded
//!    requests, decrypting a `cenc` and a `cbcs` sample made by an independent encryptor, then
//!    checking that the keys are gone after close;
//! 3. requires the ARMv8 Crypto Extensions engine (`armce`) and a stack that did not run out;
//!
//! then prints one summary line on the PL011 UART and exits through semihosting: status 0 if
//! everything passed, 1 otherwise (3 after a CPU exception, 101 after a panic).
//!
//! `unsafe` lives only in the runtime modules — `entry` (reset, vectors, stack), `heap`
//! (allocator set-up, critical section), `uart`, `semihosting` and `platform` (system and
//! device registers) — each block with a `// SAFETY:` comment. The heap set-up, the stack scan
//! and the console are the Cortex-M image's too (`firmware/common`, included by those modules).
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
mod platform;
mod semihosting;
mod uart;

use alloc::string::String;

use firmware_selftest::DigestSink;
use hal::aes::{Engine, EngineKind};
use hal::platform::{Clock, Platform};
use uart::{println, Uart};

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
    let Some(rng) = platform::Rndr::new() else {
        println!("FAIL platform: the CPU has no RNDR (FEAT_RNG); run with -cpu max");
        return false;
    };
    let clock = platform::BoardClock::new();
    let mut sink = DigestSink::default();
    let platform_ok = match platform_checks(&rng, &clock, &mut sink) {
        Ok(()) => {
            println!(
                "platform: rng rndr, clock pl031 + cntvct at {} Hz, sink sha-256",
                clock.frequency()
            );
            true
        }
        Err(why) => {
            println!("FAIL platform: {why}");
            false
        }
    };

    let platform = Platform::new(rng, clock, sink, Engine::detect());
    let mut verdict = firmware_selftest::run(
        &mut Uart,
        &heap::HEAP,
        REQUIRED_ENGINE,
        platform,
        platform_ok,
    );

    verdict.check_memory(
        &mut Uart,
        entry::stack_high_water(),
        entry::stack_size(),
        &heap::HEAP,
    );
    verdict.summarize(&mut Uart);
    verdict.passed()
}

/// The image's platform services answer sensibly: random bytes vary, the clock is past 2020
/// and moves forward, the sink hashes correctly.
fn platform_checks(
    rng: &platform::Rndr,
    clock: &platform::BoardClock,
    sink: &mut DigestSink,
) -> Result<(), String> {
    firmware_selftest::check_rng(rng)?;
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
    firmware_selftest::check_sink(sink)
}
