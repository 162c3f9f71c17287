//! # cdm-core — the shared vocabulary of tee-cdm
//!
//! Types both sides of the trust boundary agree on. (Being written: the message ABI, EME
//! types, init data parsing and Clear Key formats land here.)
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
