//! The engine conformance suite of `cdm-testkit` on every engine this CPU offers: on x86_64
//! `vaes`, `aesni` and `portable` as available, on aarch64 `armce` (unless hidden) and
//! `portable`. One test per group, so groups run in parallel and fail separately.

use cdm_testkit::conformance;
use hal::aes::Engine;

fn for_every_engine(group: fn(Engine)) {
    let engines: Vec<Engine> = Engine::available().collect();
    assert!(engines.iter().any(|e| e.name() == "portable"));
    engines.into_iter().for_each(group);
}

#[test]
fn known_answers() {
    for_every_engine(conformance::known_answers);
}

#[test]
fn ctr() {
    for_every_engine(conformance::ctr);
}

#[test]
fn cbc() {
    for_every_engine(conformance::cbc);
}

#[test]
fn cbc_patterns() {
    for_every_engine(conformance::cbc_patterns);
}

#[test]
fn ctr_patterns() {
    for_every_engine(conformance::ctr_patterns);
}

#[test]
fn round_trips() {
    for_every_engine(conformance::round_trips);
}
