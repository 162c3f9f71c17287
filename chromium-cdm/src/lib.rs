//! # chromium-cdm — tee-cdm as a Chromium library CDM
//!
//! A shared library (`libtee_cdm_chromium.so`) that Chromium loads as the CDM of its testing
//! key system `org.chromium.externalclearkey`:
//!
//! ```sh
//! chromium --enable-features=ExternalClearKeyForTesting \
//!     --clear-key-cdm-path-for-testing=$PWD/target/release/libtee_cdm_chromium.so
//! ```
//!
//! - [`abi`]: the module entry points (`InitializeCdmModule_4`, `CreateCdmInstance`, …) and
//!   Chromium's `ContentDecryptionModule_10` / `Host_10` interfaces in the Itanium C++ ABI,
//!   the crate's only `unsafe`;
//! - [`cdm`]: the CDM itself in safe Rust, over `normal-world`'s `MediaKeys` and sessions;
//! - [`backend`]: where the secure world runs (a `secure-world-host` process with shared
//!   memory by default, or in process);
//! - [`stats`]: counters a test reads (`TEE_CDM_STATS`).
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod abi;
pub mod backend;
pub mod cdm;
pub mod stats;

use std::sync::{Mutex, PoisonError};

/// The CDM interface versions `CreateCdmInstance` was asked for, in order.
static VERSIONS_ASKED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn record_version_asked(version: i32) {
    let mut v = VERSIONS_ASKED
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if v.len() < 16 {
        v.push(version);
    }
}

/// The CDM interface versions the browser asked for, space-separated (e.g. `"11 10"`).
pub fn versions_asked() -> String {
    let v = VERSIONS_ASKED
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(" ")
}
