//! # cdm-testkit — what tee-cdm's tests, benches and examples share
//!
//! Not published, never linked into a shipped binary. One home for the helpers that used to
//! exist once per test directory:
//!
//! - [`rng`]: one deterministic PRNG for test data (never for keys of a real deployment);
//! - [`cenc`]: the reference CENC encryptor, written independently of `hal::cenc` on
//!   RustCrypto, so tests can make content the code under test has never touched;
//! - [`clearkey`]: the Clear Key license builder and a minimal license server function;
//! - [`alloc_scan`]: a global allocator that scans freed and moved heap blocks for key
//!   material;
//! - [`temp`]: temporary directories (on `/dev/shm` where it exists), their listings and
//!   directory copies, for storage and rollback tests;
//! - [`conformance`]: the engine conformance suite (FIPS-197, NIST SP 800-38A, equality with
//!   the portable engine, pattern cases) run for every AES engine.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]

pub mod alloc_scan;
pub mod cenc;
pub mod clearkey;
pub mod conformance;
pub mod rng;
pub mod temp;
