//! Checks that run-time detection picked the engine the test environment promises.
//!
//! `scripts/test-all.sh` runs the aarch64 suite under QEMU twice: once as is (QEMU's CPU has
//! the ARMv8 crypto extensions, so `armce` is expected) and once with the crypto bits of
//! `AT_HWCAP` masked by an `LD_PRELOAD` library (`portable` expected). It announces the
//! expectation in `TEE_CDM_EXPECT_ENGINE`; without that variable there is nothing to compare
//! against and the test only checks that detection is self-consistent.

use hal::aes::{Engine, EngineKind};

/// Environment variable naming the engine [`Engine::best`] must select.
const EXPECT_VAR: &str = "TEE_CDM_EXPECT_ENGINE";

#[test]
fn best_engine_is_the_expected_one() {
    let best = Engine::best();
    // Self-consistency: the best engine is available and is the first available one.
    assert!(best.kind().is_available());
    assert_eq!(Engine::available().next(), Some(best));

    let Ok(expected) = std::env::var(EXPECT_VAR) else {
        eprintln!("{EXPECT_VAR} not set; best engine is `{}`", best.name());
        return;
    };
    let kind = EngineKind::from_name(&expected)
        .unwrap_or_else(|| panic!("{EXPECT_VAR}={expected:?} is not an engine name"));
    assert_eq!(
        best.kind(),
        kind,
        "detected `{}`, expected `{}`",
        best.name(),
        kind.name()
    );
    assert_eq!(Engine::new(kind).map(Engine::kind), Ok(kind));
}

#[test]
fn armce_availability_matches_expectation() {
    let Ok(expected) = std::env::var(EXPECT_VAR) else {
        return;
    };
    if !cfg!(target_arch = "aarch64") {
        return;
    }
    let want = expected.trim().eq_ignore_ascii_case("armce");
    assert_eq!(EngineKind::ArmCe.is_available(), want);
    assert_eq!(Engine::new(EngineKind::ArmCe).is_ok(), want);
}
