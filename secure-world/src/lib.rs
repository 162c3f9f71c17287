//! # secure-world — the tee-cdm trusted application
//!
//! Not functional yet: sessions, key slots, license processing and decrypt dispatch land here
//! (one entry point, bytes in, bytes out).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
