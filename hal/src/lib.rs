//! # hal — the secure world's hardware abstraction
//!
//! Everything the trusted application needs from the platform, behind small types and traits:
//!
//! - [`aes`]: AES-128 engines (VAES, AES-NI, ARMv8 Crypto Extensions, portable) chosen once at
//!   run time and reported by name.
//! - [`cenc`]: the ISO/IEC 23001-7 protection schemes (`cenc`, `cbcs`, `cens`, `cbc1`) applied
//!   in place to one sample with its subsample map.
//!
//! The crate is `no_std` at its core; the `std` feature adds the environment-variable engine
//! override and host platform services, the `encrypt` feature the encryption paths that only
//! tests and tooling need (`cenc::encrypt_sample`, `Aes128::cbc_encrypt`). All `unsafe` code of the project lives in the
//! intrinsics modules under `aes/` (`x86/aesni.rs`, `x86/vaes.rs`, `x86/mod.rs` for CPUID,
//! `arm.rs`); the rest of the crate denies it.
#![no_std]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// no_std discipline, checked by the compiler: reach for `core` and `alloc` first.
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
// "Never panics on input": checked arithmetic and fallible access on every path that can see
// outside bytes. Unit tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(feature = "std")]
extern crate std;

extern crate alloc;

pub mod aes;
pub mod cenc;
pub mod platform;
