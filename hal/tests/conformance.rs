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

/// One test per group of the suite, named after it.
macro_rules! groups {
    ($($group:ident),+ $(,)?) => {$(
        #[test]
        fn $group() {
            for_every_engine(conformance::$group);
        }
    )+};
}

groups!(
    known_answers,
    ctr,
    cbc,
    cbc_patterns,
    ctr_patterns,
    round_trips
);
