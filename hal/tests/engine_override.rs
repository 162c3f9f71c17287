//! The `TEE_CDM_AES_ENGINE` override of [`Engine::detect`]: honoured when it names an
//! available engine, ignored (best engine) when unknown or unavailable. One test in its own
//! binary, because it changes the process environment.

use hal::aes::{Engine, EngineKind, ENGINE_ENV_VAR};

#[test]
fn environment_override_selects_engines() {
    std::env::remove_var(ENGINE_ENV_VAR);
    assert_eq!(Engine::detect(), Engine::best());

    for engine in Engine::available() {
        // Names are matched case-insensitively and trimmed.
        std::env::set_var(
            ENGINE_ENV_VAR,
            format!(" {} ", engine.name().to_uppercase()),
        );
        assert_eq!(Engine::detect(), engine);
    }

    std::env::set_var(ENGINE_ENV_VAR, "no-such-engine");
    assert_eq!(Engine::detect(), Engine::best());

    for kind in EngineKind::ALL.into_iter().filter(|k| !k.is_available()) {
        std::env::set_var(ENGINE_ENV_VAR, kind.name());
        assert_eq!(
            Engine::detect(),
            Engine::best(),
            "unavailable {kind} must not be chosen"
        );
    }

    std::env::set_var(ENGINE_ENV_VAR, "portable");
    assert_eq!(Engine::detect().kind(), EngineKind::Portable);
    std::env::remove_var(ENGINE_ENV_VAR);
}
