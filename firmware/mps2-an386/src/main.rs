//! # firmware-mps2-an386 — the tee-cdm secure world on a Cortex-M4F
//!
//! A self-checking firmware image for QEMU's `mps2-an386` board (`thumbv7em-none-eabihf`): the
//! secure world (`secure-world`, `hal`, `cdm-core`) linked as a TEE integrator would link it
//! on a 32-bit microcontroller, where hal has only its `portable` engine (RustCrypto's
//! constant-time software AES). On cortex-m-rt, with the UART console and platform services of
//! this crate, it runs the checks of `firmware-selftest` — hal's known-answer tests and a whole
//! Clear Key session through `SecureWorld::process`, with the key-wiping checks — then prints
//! one summary line and ends the run through semihosting: status 0 if everything passed, 1
//! otherwise (a fault or a panic included).
//!
//! The board model has no entropy source: this image's random generator is a **test-only**
//! deterministic one (`platform::TestOnlyRng`).
//!
//! `unsafe` lives only in `rt` (entry, heap set-up, stack, handlers) and `uart`, each block
//! with a `// SAFETY:` comment; the heap set-up, the stack scan and the console are the
//! aarch64 image's too (`firmware/common`, included by those modules).
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

mod platform;
mod rt;
mod uart;

use firmware_selftest::DigestSink;
use hal::aes::{Engine, EngineKind};
use hal::platform::Platform;
use uart::{println, Uart};

/// The engine this image must run on: the only one a Cortex-M has.
const REQUIRED_ENGINE: EngineKind = EngineKind::Portable;

/// Everything the image checks; `true` when all of it passed.
fn run() -> bool {
    println!("tee-cdm firmware: booted on qemu mps2-an386 (Cortex-M4F, thumbv7em)");
    let rng = platform::TestOnlyRng::new_test_only();
    let mut sink = DigestSink::default();
    let platform_ok = match firmware_selftest::check_rng(&rng)
        .and_then(|()| firmware_selftest::check_sink(&mut sink))
    {
        Ok(()) => {
            println!("platform: rng TEST-ONLY deterministic (no TRNG), no clock, sink sha-256");
            true
        }
        Err(why) => {
            println!("FAIL platform: {why}");
            false
        }
    };

    let platform = Platform::new(rng, platform::NoClock, sink, Engine::detect());
    let mut verdict =
        firmware_selftest::run(&mut Uart, &rt::HEAP, REQUIRED_ENGINE, platform, platform_ok);

    verdict.check_memory(
        &mut Uart,
        rt::stack_high_water(),
        rt::stack_size(),
        &rt::HEAP,
    );
    verdict.summarize(&mut Uart);
    verdict.passed()
}
