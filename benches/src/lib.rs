//! Shared helpers for the tee-cdm benchmarks.
//!
//! The criterion benches (`benches/cenc.rs`, `benches/abi.rs`) and the side-by-side `report`
//! binary use the same inputs, peers and checks, defined here once, one concept per module:
//!
//! - [`samples`]: sizes, key and IVs, and the bench sample of each ISO/IEC 23001-7 scheme
//!   ([`BenchSample`]), decrypted through the real API or the raw `Aes128` primitives;
//! - [`rng`]: the deterministic test data every case decrypts ([`test_data`]);
//! - [`peers`]: OpenSSL and RustCrypto, measured in the same run ([`OpensslCtr`],
//!   [`OpensslCbc`], [`RustCryptoCtr`]);
//! - [`checks`]: what runs before anything is timed — every engine's API path against the
//!   shared reference decryptor and OpenSSL ([`verify_api_paths`]), every ABI path on a known
//!   ciphertext ([`check_path`]); a mismatch is a hard error;
//! - [`eme`]: the ABI and EME paths (the secure world called directly, `MediaKeys` in and out
//!   of process, whole license sessions), and [`host`]: finding the `secure-world-host` binary
//!   the out-of-process paths spawn;
//! - [`error`]: why a helper could not run, [`BenchError`].
//!
//! References (the CENC encryptor/decryptor, the `pssh` builder, the Clear Key license
//! server) come from the shared test kit, `cdm-testkit`, never from the code under test.
#![forbid(unsafe_code)]

pub mod checks;
pub mod eme;
pub mod error;
pub mod host;
pub mod peers;
pub mod protected;
pub mod rng;
pub mod samples;

pub use checks::{
    check_path, known_sample, openssl_decrypt, or_exit, reference_decrypt, verify_api_paths,
};
pub use error::BenchError;
pub use peers::{OpensslCbc, OpensslCtr, RustCryptoCtr};
pub use rng::test_data;
pub use samples::{
    raw_cbc1, raw_cbcs, raw_cenc, raw_cens, size_label, BenchSample, BenchScheme, CBC_IV,
    CTR_COUNTER_BLOCK, CTR_IV, KEY, KIB, SIZES, VIDEO_CLEAR_HEADER, VIDEO_PATTERN,
};
