//! EME enumerations: strings as EME spells them, stable wire values.

use cdm_core::eme::*;

/// (wire, EME string) pairs, written out from the EME specification so that a change of a
/// wire value or a string fails here.
#[test]
fn session_type_table() {
    let t: Vec<(u8, &str)> = SessionType::ALL
        .iter()
        .map(|v| (v.to_wire(), v.as_str()))
        .collect();
    assert_eq!(t, [(1, "temporary"), (2, "persistent-license")]);
}

#[test]
fn key_status_table() {
    let t: Vec<(u8, &str)> = KeyStatus::ALL
        .iter()
        .map(|v| (v.to_wire(), v.as_str()))
        .collect();
    assert_eq!(
        t,
        [
            (1, "usable"),
            (2, "expired"),
            (3, "released"),
            (4, "output-restricted"),
            (5, "output-downscaled"),
            (6, "usable-in-future"),
            (7, "status-pending"),
            (8, "internal-error"),
        ]
    );
}

#[test]
fn other_tables() {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let names = |it: Vec<&'static str>| it.into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        names(MessageType::ALL.iter().map(|v| v.as_str()).collect()),
        s(&[
            "license-request",
            "license-renewal",
            "license-release",
            "individualization-request"
        ])
    );
    assert_eq!(
        names(InitDataType::ALL.iter().map(|v| v.as_str()).collect()),
        s(&["cenc", "keyids", "webm"])
    );
    assert_eq!(
        names(Robustness::ALL.iter().map(|v| v.as_str()).collect()),
        s(&["", "SW_SECURE_CRYPTO", "HW_SECURE_DECODE"])
    );
    assert_eq!(
        names(EncryptionScheme::ALL.iter().map(|v| v.as_str()).collect()),
        s(&["cenc", "cbcs", "cens", "cbc1"])
    );
    assert_eq!(
        names(ClosedReason::ALL.iter().map(|v| v.as_str()).collect()),
        s(&[
            "closed-by-application",
            "release-acknowledged",
            "hardware-context-reset",
            "resource-evicted",
            "internal-error"
        ])
    );
    assert_eq!(KeySystem::ClearKey.as_str(), "org.w3.clearkey");
}

macro_rules! round_trips {
    ($($t:ty),+) => {$(
        for (i, v) in <$t>::ALL.iter().enumerate() {
            assert_eq!(usize::from(v.to_wire()), i + 1);
            assert_eq!(<$t>::from_wire(v.to_wire()), Some(*v));
            assert_eq!(v.as_str().parse::<$t>(), Ok(*v));
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!(<$t>::from_wire(0), None);
        let past = u8::try_from(<$t>::ALL.len() + 1).unwrap();
        assert_eq!(<$t>::from_wire(past), None);
        assert_eq!(<$t>::from_wire(255), None);
    )+};
}

#[test]
fn wire_and_string_round_trip() {
    round_trips!(
        SessionType,
        KeyStatus,
        MessageType,
        InitDataType,
        Robustness,
        EncryptionScheme,
        ClosedReason,
        KeySystem
    );
}

#[test]
fn strings_are_case_sensitive_and_exact() {
    assert!("Temporary".parse::<SessionType>().is_err());
    assert!("temporary ".parse::<SessionType>().is_err());
    assert!("persistent-usage-record".parse::<SessionType>().is_err());
    assert!("sw_secure_crypto".parse::<Robustness>().is_err());
    assert_eq!("".parse::<Robustness>(), Ok(Robustness::Empty));
    assert!("org.w3.clearkey.".parse::<KeySystem>().is_err());
    assert!("cbcs-1-9".parse::<EncryptionScheme>().is_err());
}

#[test]
fn eme_encryption_scheme_strings() {
    use EncryptionScheme as E;
    assert_eq!(E::from_eme_encryption_scheme("cenc"), Some(E::Cenc));
    assert_eq!(E::from_eme_encryption_scheme("cbcs"), Some(E::Cbcs));
    assert_eq!(E::from_eme_encryption_scheme("cbcs-1-9"), Some(E::Cbcs));
    assert_eq!(E::from_eme_encryption_scheme("cens"), None);
    assert_eq!(E::from_eme_encryption_scheme("CENC"), None);
}
