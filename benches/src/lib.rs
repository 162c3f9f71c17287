//! Shared helpers for the tee-cdm benchmarks. (Being written.)
#![forbid(unsafe_code)]
