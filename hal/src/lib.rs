//! # hal — the secure world's hardware abstraction
//!
//! Everything the trusted application needs from the platform, behind small types and traits:
//!
//! - [`aes`]: AES-128 engines (VAES, AES-NI, ARMv8 Crypto Extensions, portable) chosen once at
//!   run time and reported by name.
//! - [`cenc`]: the ISO/IEC 23001-7 protection schemes (`cenc`, `cbcs`, `cens`, `cbc1`) applied
//!   in place to one sample with its subsample map.
//! - [`platform`]: the services the secure world is built with, as small traits an integrator
//!   implements: randomness, trusted time, the secure output sink and, for persistent state,
//!   secure storage, a monotonic counter and the device root key.
//!
//! The crate is `no_std` at its core; the `std` feature adds the environment-variable engine
//! override and host platform services (the persistent ones emulated with files, on Unix), the
//! `encrypt` feature the encryption paths that only tests and tooling need
//! (`cenc::encrypt_sample`, `Aes128::cbc_encrypt`). All `unsafe` code of the crate lives in the
//! intrinsics modules under `aes/` (`x86/aesni.rs`, `x86/vaes.rs`, `x86/mod.rs` for CPUID,
//! `arm.rs`); the rest of the crate denies it.
//!
//! One sample decrypted in place: a `cenc` sample whose first 16 bytes are clear, then one
//! protected block (NIST SP 800-38A F.5.1's CTR vector: the 16-byte IV is the first counter
//! block).
//!
//! ```
//! use hal::aes::Engine;
//! use hal::cenc::{decrypt_sample, Pattern, Scheme, Subsample};
//!
//! let unhex = |s: &str| -> Vec<u8> {
//!     (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
//! };
//! let key: [u8; 16] = unhex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
//! let iv = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
//! let mut sample = vec![0x55; 16];
//! sample.extend(unhex("874d6191b620e3261bef6864990db6ce"));
//!
//! let engine = Engine::detect(); // once; reported by name (vaes, aesni, armce, portable)
//! let key = engine.key(&key); // the expanded schedule, wiped on drop
//! let map = [Subsample { clear: 16, protected: 16 }];
//! decrypt_sample(&key, Scheme::Cenc, &iv, Pattern { crypt: 0, skip: 0 }, &map, &mut sample)
//!     .expect("a valid description");
//! assert_eq!(sample[..16], [0x55; 16]);
//! assert_eq!(sample[16..], unhex("6bc1bee22e409f96e93d7e117393172a")[..]);
//! ```
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
