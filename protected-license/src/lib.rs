//! # protected-license — the `org.teecdm.protected` key system's protocol
//!
//! An open, documented protocol (byte by byte in `docs/protected-license.md`) for a key system
//! whose content keys never exist in clear outside the device's secure world:
//!
//! - a pinned **root** key certifies a **provisioning** key and **license server** keys
//!   ([`cert`]); the provisioning key certifies **device** keys after a self-signed
//!   provisioning request (EME `individualization-request`);
//! - the device sends **license requests** signed by its device key, bound to a fresh nonce,
//!   optionally HPKE-encrypted to the license server's certificate;
//! - the server answers with a **license** it signs, whose content keys are HPKE-sealed to the
//!   device's encryption key, and whose [`Policy`] the secure world enforces;
//! - **renewal** and **release** exchanges, signed both ways, nonce-bound;
//! - **entitlement keys** in a license unwrap content keys delivered in-band
//!   ([`messages::RotationRecord`], the data of a `pssh` box of [`SYSTEM_ID`]).
//!
//! Both roles are here: [`device`] (what the secure world runs) and [`server`] (the root, the
//! provisioning service and the license server). The crate is `no_std` + `alloc`; randomness
//! and time come in as parameters (an RNG implementing `rand_core`'s `CryptoRng + RngCore`, and
//! seconds since the Unix epoch), never from the OS.
//!
//! Cryptography (see [`crypto`]): ECDSA P-256 with SHA-256 (RFC 6979 deterministic nonces) for
//! every signature; HPKE ([`hpke`], RFC 9180, base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256,
//! AES-128-GCM) for content keys and for the encrypted license request; HKDF-SHA256 and AES key
//! wrap (RFC 3394) for in-band keys under an entitlement key.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
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

extern crate alloc;

pub mod cert;
pub mod crypto;
pub mod device;
mod error;
pub mod hpke;
pub mod messages;
pub mod policy;
pub mod server;

pub use error::Error;
pub use policy::Policy;

/// The key system string (EME `keySystem`).
pub const KEY_SYSTEM: &str = "org.teecdm.protected";

/// The protection system ID of `pssh` boxes carrying [`messages::RotationRecord`]s
/// (UUID `6b3d1f0e-52a9-4c57-9a8e-2d7c41f0b3a5`, chosen for this key system).
pub const SYSTEM_ID: [u8; 16] = [
    0x6b, 0x3d, 0x1f, 0x0e, 0x52, 0xa9, 0x4c, 0x57, 0x9a, 0x8e, 0x2d, 0x7c, 0x41, 0xf0, 0xb3, 0xa5,
];
