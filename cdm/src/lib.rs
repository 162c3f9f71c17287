//! # cdm — the tee-cdm command-line tool
//!
//! A user with an encrypted MP4 file should not need to write a player to see what the CDM
//! does with it. The `cdm` binary has:
//!
//! - `cdm decrypt [--key KID:KEY]... [--license-server URL] INPUT [SEGMENT...] OUTPUT`
//!   ([`decrypt`]): the file decrypted through the EME API and the secure world — in its own
//!   `secure-world-host` process by default, linked in with `--in-process` — into a clear
//!   MP4 file any player decodes ([`clear`] writes it: original sample entries restored,
//!   protection boxes removed, every offset moved to match). Written to a temporary file and
//!   renamed when complete; a progress bar on a terminal; `--json` for a summary.
//! - `cdm inspect FILE [--json]` ([`inspect`]): tracks (ID, handler, original format from
//!   `frma`, codec box), the protection of every sample description (`cenc`, `cens`, `cbcs`,
//!   `cbc1`; default KID, per-sample IV size, constant IV, `crypt:skip` pattern), `pssh`
//!   boxes (system ID, version, key IDs), the fragment count, sample counts (total,
//!   encrypted, clear, clear lead) and whether `senc` or `saiz`/`saio` carry the sample
//!   auxiliary information. Fragmented files (`moov` then `moof`/`mdat` pairs, as Shaka
//!   Packager writes them) and non-fragmented ones with their encryption data in `moov` (as
//!   ffmpeg's `-encryption_scheme cenc-aes-ctr` writes them).
//! - `cdm info [--json]` ([`info`]): builds `MediaKeys` over an in-process secure world and
//!   prints `MediaKeys::capabilities()` (AES engine, robustness levels, schemes, limits, ABI
//!   version) and the `getConfiguration()` answer of `requestMediaKeySystemAccess()` for a
//!   default (or given) configuration.
//!
//! Exit codes ([`error::exit`]): 0 success, 1 the CDM failed or refused, 2 usage error,
//! 3 invalid input (a malformed or unsupported file; the message names the box path and file
//! offset), 4 I/O error. With `--json`, an error is also printed as a JSON object on
//! standard output.
//!
//! ## MP4 parsing
//!
//! [`mp4`] parses the boxes Common Encryption needs. It uses the `mp4-atom` crate for the
//! standard ISO/IEC 14496-12 boxes and hand-writes the box walker and the CENC boxes, which no
//! maintained crate covers; the module documentation gives the evaluation of `mp4-atom`,
//! `mp4parse` and `mp4` and the reasons. Every error names the box (`moof[2]/traf[1]/senc`)
//! and the file offset, and nothing panics on any input (the `mp4_parse` fuzz target in
//! `fuzz/` runs the parser over arbitrary bytes).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A std crate: the no_std discipline lints of the workspace do not apply here.
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
// Every byte of an input file is attacker controlled: checked arithmetic and fallible access
// everywhere outside unit tests.
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

pub mod clear;
pub mod cli;
pub mod decrypt;
pub mod error;
pub mod info;
pub mod inspect;
pub mod mp4;
