//! # normal-world — the tee-cdm host
//!
//! Not functional yet: the EME API and the transports to the secure world land here.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
