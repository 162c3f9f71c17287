//! Checks that run-time detection picked the engine the test environment promises.
//!
//! `scripts/test-all.sh` runs the aarch64 suite under QEMU twice: once as is (QEMU's CPU has
//! the ARMv8 crypto extensions, so `armce` is expected) and once with the crypto bits of
//! `AT_HWCAP` masked by an `LD_PRELOAD` library (`portable` expected). It announces the
//! expectation in `TEE_CDM_EXPECT_ENGINE`. Without that variable the expectation comes from the
//! standard library's own CPU feature detection (`is_x86_feature_detected!`,
//! `is_aarch64_feature_detected!`), independent of the `cpufeatures`/CPUID code under test.

use hal::aes::{Engine, EngineKind};

/// Environment variable naming the engine [`Engine::best`] must select.
const EXPECT_VAR: &str = "TEE_CDM_EXPECT_ENGINE";

#[test]
fn best_engine_is_the_expected_one() {
    let best = Engine::best();
    // Self-consistency: the best engine is available and is the first available one.
    assert!(best.kind().is_available());
    assert_eq!(Engine::available().next(), Some(best));

    let kind = match std::env::var(EXPECT_VAR) {
        Ok(expected) => EngineKind::from_name(&expected)
            .unwrap_or_else(|| panic!("{EXPECT_VAR}={expected:?} is not an engine name")),
        Err(_) => std_expectation(),
    };
    assert_eq!(
        best.kind(),
        kind,
        "detected `{}`, expected `{}`",
        best.name(),
        kind.name()
    );
    assert_eq!(Engine::new(kind).map(Engine::kind), Ok(kind));
}

/// The engine the standard library's feature detection says should win.
fn std_expectation() -> EngineKind {
    #[cfg(target_arch = "x86_64")]
    {
        let aes = std::is_x86_feature_detected!("aes");
        if aes && std::is_x86_feature_detected!("vaes") && std::is_x86_feature_detected!("avx2") {
            return EngineKind::Vaes;
        }
        if aes {
            return EngineKind::AesNi;
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("aes") {
            return EngineKind::ArmCe;
        }
    }
    EngineKind::Portable
}

#[test]
fn every_engine_reports_availability_consistently() {
    let expected = match std::env::var(EXPECT_VAR) {
        Ok(e) => EngineKind::from_name(&e).expect("engine name"),
        Err(_) => std_expectation(),
    };
    // Engines of another architecture are never available; the expected one always is;
    // `Portable` always is.
    for kind in EngineKind::ALL {
        let foreign = match kind {
            EngineKind::Vaes | EngineKind::AesNi => !cfg!(target_arch = "x86_64"),
            EngineKind::ArmCe => !cfg!(target_arch = "aarch64"),
            EngineKind::Portable => false,
        };
        if foreign {
            assert!(
                !kind.is_available(),
                "{kind} available on a foreign architecture"
            );
            assert_eq!(Engine::new(kind), Err(hal::aes::EngineUnavailable(kind)));
        }
        assert_eq!(Engine::new(kind).is_ok(), kind.is_available(), "{kind}");
    }
    assert!(expected.is_available());
    assert!(EngineKind::Portable.is_available());
    // The VAES engine expands its schedule with AES-NI instructions.
    if EngineKind::Vaes.is_available() {
        assert!(EngineKind::AesNi.is_available());
    }
    if cfg!(target_arch = "aarch64") {
        assert_eq!(
            EngineKind::ArmCe.is_available(),
            expected == EngineKind::ArmCe
        );
    }
}
