//! normal-world's persistent-license tests, compiled here so that their socket cases spawn
//! this crate's `secure-world-host` binary with `--storage` (a real process per `MediaKeys`,
//! so a "restart" is a new process).

#[path = "../../normal-world/tests/persistent.rs"]
mod persistent;
