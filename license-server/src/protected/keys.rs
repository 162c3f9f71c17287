//! Protected keys as the store holds them, the policy of a license made of several of them, and
//! the import syntax.
//!
//! A protected key is a 16-byte key ID, a 16-byte AES key, its kind (content key or
//! entitlement key), the robustness and the minimum HDCP version the secure world must apply to
//! it, and a [`Policy`]. A license's policy is [`combine_policies`] over the keys it grants.
//!
//! Import syntax (`license-server import --protected-key`, and `protected` lines of a key
//! file): a key ID and a key in hex, then options:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `robustness=sw` / `robustness=hw` | required robustness: `SW_SECURE_CRYPTO` / `HW_SECURE_DECODE` (the full names are accepted too) | `sw` |
//! | `hdcp=none`, `hdcp=1.0` … `hdcp=1.4`, `hdcp=2.0` … `hdcp=2.3` | minimum HDCP version on the output | `none` |
//! | `license=SECS` | license duration, seconds (0 = unlimited) | 0 |
//! | `playback=SECS` | playback duration from the first decrypt, seconds (0 = unlimited) | 0 |
//! | `renewal=SECS` | renewal interval, seconds (0 = no renewal: renewals are refused) | 0 |
//! | `persist` | may be stored by a `persistent-license` session | not allowed |
//! | `entitlement` | an entitlement key (unwraps the keys of rotation records) instead of a content key | content key |
//!
//! On the command line the fields are separated by `:`
//! (`KID:KEY:robustness=hw:hdcp=2.2:renewal=600`), in a key file by white space
//! (`protected KID KEY robustness=hw hdcp=2.2 renewal=600`). Each option at most once.

use std::fmt;

use protected_license::cert::{Hdcp, Robustness};
use protected_license::crypto::ContentKey;
use protected_license::messages::{KeyId, KeyKind};
use protected_license::Policy;

use crate::cli::{decode_key, decode_key_id, KeySpecError};

/// One protected key and its restrictions and policy, as the store holds it.
#[derive(Clone)]
pub struct ProtectedKey {
    /// The key ID (public).
    pub kid: KeyId,
    /// The key (secret; wiped on drop, never printed). For an entitlement key too.
    pub key: ContentKey,
    /// Content key or entitlement key.
    pub kind: KeyKind,
    /// The robustness the secure world must apply: exactly one of `SW_SECURE_CRYPTO` and
    /// `HW_SECURE_DECODE`.
    pub robustness: Robustness,
    /// The minimum HDCP version on the output ([`Hdcp::NONE`]: none required).
    pub min_hdcp: Hdcp,
    /// Durations, renewal and persistence of licenses that grant this key.
    pub policy: Policy,
}

impl fmt::Debug for ProtectedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is left out by name.
        f.debug_struct("ProtectedKey")
            .field("kid", &hex::encode(self.kid))
            .field("kind", &self.kind)
            .field("robustness", &self.robustness)
            .field("min_hdcp", &self.min_hdcp)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The policy of a license granting keys with `policies`: each duration and the renewal
/// interval is the smallest non-zero value (0, unlimited, only if every key says 0);
/// `can_persist` only if every key allows it. `None` for no keys (a license grants at least
/// one).
pub fn combine_policies<'a, I>(policies: I) -> Option<Policy>
where
    I: IntoIterator<Item = &'a Policy>,
{
    let mut policies = policies.into_iter();
    let first = *policies.next()?;
    Some(policies.fold(first, |acc, p| Policy {
        license_duration: min_nonzero(acc.license_duration, p.license_duration),
        playback_duration: min_nonzero(acc.playback_duration, p.playback_duration),
        renewal_interval: min_nonzero(acc.renewal_interval, p.renewal_interval),
        can_persist: acc.can_persist && p.can_persist,
    }))
}

/// The smaller of two limits where 0 means "no limit".
fn min_nonzero(a: u32, b: u32) -> u32 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// Parses a command-line protected key: `KID_HEX:KEY_HEX[:OPTION]...` (options in the module
/// documentation). `persist` forces persistence on (the `--persistent` flag of `import`).
pub fn parse_protected_key_arg(arg: &str, persist: bool) -> Result<ProtectedKey, KeySpecError> {
    let mut fields = arg.split(':');
    let kid = fields.next().unwrap_or_default();
    let key = fields.next().ok_or(KeySpecError::MissingColon)?;
    parse_protected_fields(kid, key, fields, persist)
}

/// A protected key from its key ID, key and option fields.
pub(crate) fn parse_protected_fields<'a, I>(
    kid: &str,
    key: &str,
    options: I,
    persist: bool,
) -> Result<ProtectedKey, KeySpecError>
where
    I: IntoIterator<Item = &'a str>,
{
    let kid = decode_key_id(kid)?;
    let key_bytes = decode_key(key)?;
    let mut spec = OptionSet::default();
    for option in options {
        spec.apply(option)?;
    }
    Ok(ProtectedKey {
        kid,
        // From the zeroizing buffer; `new` takes the array by value, as the crate's own
        // decoders do.
        key: ContentKey::new(*key_bytes),
        kind: if spec.entitlement.unwrap_or(false) {
            KeyKind::Entitlement
        } else {
            KeyKind::Content
        },
        robustness: spec.robustness.unwrap_or(Robustness::SW_SECURE_CRYPTO),
        min_hdcp: spec.hdcp.unwrap_or(Hdcp::NONE),
        policy: Policy {
            license_duration: spec.license.unwrap_or(0),
            playback_duration: spec.playback.unwrap_or(0),
            renewal_interval: spec.renewal.unwrap_or(0),
            can_persist: persist || spec.persist.unwrap_or(false),
        },
    })
}

/// The options seen so far; `Some` = given (each at most once).
#[derive(Default)]
struct OptionSet {
    robustness: Option<Robustness>,
    hdcp: Option<Hdcp>,
    license: Option<u32>,
    playback: Option<u32>,
    renewal: Option<u32>,
    persist: Option<bool>,
    entitlement: Option<bool>,
}

impl OptionSet {
    fn apply(&mut self, option: &str) -> Result<(), KeySpecError> {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        match (name, value) {
            ("robustness", Some(v)) => {
                set(&mut self.robustness, "robustness", parse_robustness(v)?)
            }
            ("hdcp", Some(v)) => set(&mut self.hdcp, "hdcp", parse_hdcp(v)?),
            ("license", Some(v)) => set(&mut self.license, "license", parse_seconds("license", v)?),
            ("playback", Some(v)) => set(
                &mut self.playback,
                "playback",
                parse_seconds("playback", v)?,
            ),
            ("renewal", Some(v)) => set(&mut self.renewal, "renewal", parse_seconds("renewal", v)?),
            ("persist", None) => set(&mut self.persist, "persist", true),
            ("entitlement", None) => set(&mut self.entitlement, "entitlement", true),
            _ => Err(KeySpecError::UnknownOption(shown(option))),
        }
    }
}

fn set<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), KeySpecError> {
    if slot.is_some() {
        return Err(KeySpecError::DuplicateOption(name));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_robustness(v: &str) -> Result<Robustness, KeySpecError> {
    if v.eq_ignore_ascii_case("sw") || v == "SW_SECURE_CRYPTO" {
        Ok(Robustness::SW_SECURE_CRYPTO)
    } else if v.eq_ignore_ascii_case("hw") || v == "HW_SECURE_DECODE" {
        Ok(Robustness::HW_SECURE_DECODE)
    } else {
        Err(KeySpecError::BadOptionValue {
            option: "robustness",
            value: shown(v),
            expected: "sw, hw, SW_SECURE_CRYPTO or HW_SECURE_DECODE",
        })
    }
}

fn parse_hdcp(v: &str) -> Result<Hdcp, KeySpecError> {
    let bad = || KeySpecError::BadOptionValue {
        option: "hdcp",
        value: shown(v),
        expected: "none, 1.0 to 1.4, or 2.0 to 2.3",
    };
    if v.eq_ignore_ascii_case("none") {
        return Ok(Hdcp::NONE);
    }
    // `M.m` with one digit each: the wire byte is `M << 4 | m` (`Hdcp::from_u8` checks the
    // versions that exist).
    let (major, minor) = v.split_once('.').ok_or_else(bad)?;
    let digit = |s: &str| match s.as_bytes() {
        [d @ b'0'..=b'9'] => Some(d.wrapping_sub(b'0')),
        _ => None,
    };
    let (major, minor) = (digit(major).ok_or_else(bad)?, digit(minor).ok_or_else(bad)?);
    let byte = major
        .checked_mul(16)
        .and_then(|m| m.checked_add(minor))
        .ok_or_else(bad)?;
    if byte == 0 {
        return Err(bad());
    }
    Hdcp::from_u8(byte).map_err(|_| bad())
}

fn parse_seconds(option: &'static str, v: &str) -> Result<u32, KeySpecError> {
    // Digits only: `u32::from_str` would also take a leading `+`.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KeySpecError::BadOptionValue {
            option,
            value: shown(v),
            expected: "seconds, 0 to 4294967295",
        });
    }
    v.parse().map_err(|_| KeySpecError::BadOptionValue {
        option,
        value: shown(v),
        expected: "seconds, 0 to 4294967295",
    })
}

/// Text quoted in an error: short texts as they are; anything long enough to be a key (a key
/// typed into the wrong field) only by its length.
fn shown(text: &str) -> String {
    let n = text.chars().count();
    if n <= 24 {
        text.to_owned()
    } else {
        format!("<{n} characters>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "0123456789abcdef0123456789abcdef";
    const KEY: &str = "00112233445566778899aabbccddeeff";

    fn p(license: u32, playback: u32, renewal: u32, can_persist: bool) -> Policy {
        Policy {
            license_duration: license,
            playback_duration: playback,
            renewal_interval: renewal,
            can_persist,
        }
    }

    #[test]
    fn policies_combine_to_the_strictest() {
        assert_eq!(combine_policies(&[]), None);
        assert_eq!(
            combine_policies(&[p(0, 100, 60, true)]),
            Some(p(0, 100, 60, true))
        );
        assert_eq!(
            combine_policies(&[
                p(0, 100, 0, true),
                p(3600, 0, 600, false),
                p(7200, 50, 300, true)
            ]),
            Some(p(3600, 50, 300, false))
        );
        assert_eq!(
            combine_policies(&[p(0, 0, 0, true), p(0, 0, 0, true)]),
            Some(p(0, 0, 0, true))
        );
    }

    #[test]
    fn defaults_and_every_option() {
        let k = parse_protected_key_arg(&format!("{KID}:{KEY}"), false).unwrap();
        assert_eq!(k.kid.to_vec(), hex::decode(KID).unwrap());
        assert_eq!(k.key.expose().to_vec(), hex::decode(KEY).unwrap());
        assert_eq!(k.kind, KeyKind::Content);
        assert_eq!(k.robustness, Robustness::SW_SECURE_CRYPTO);
        assert_eq!(k.min_hdcp, Hdcp::NONE);
        assert_eq!(k.policy, p(0, 0, 0, false));

        let k = parse_protected_key_arg(
            &format!(
                "{KID}:{KEY}:robustness=hw:hdcp=2.2:license=3600:playback=60:renewal=30:persist:entitlement"
            ),
            false,
        )
        .unwrap();
        assert_eq!(k.kind, KeyKind::Entitlement);
        assert_eq!(k.robustness, Robustness::HW_SECURE_DECODE);
        assert_eq!(k.min_hdcp, Hdcp::V2_2);
        assert_eq!(k.policy, p(3600, 60, 30, true));

        // `--persistent` forces persistence.
        assert!(
            parse_protected_key_arg(&format!("{KID}:{KEY}"), true)
                .unwrap()
                .policy
                .can_persist
        );
        for (text, hdcp) in [
            ("1.4", Hdcp::V1_4),
            ("2.3", Hdcp::V2_3),
            ("NONE", Hdcp::NONE),
        ] {
            let k = parse_protected_key_arg(&format!("{KID}:{KEY}:hdcp={text}"), false).unwrap();
            assert_eq!(k.min_hdcp, hdcp, "{text}");
        }
    }

    #[test]
    fn option_errors() {
        let err = |opts: &str| {
            parse_protected_key_arg(&format!("{KID}:{KEY}:{opts}"), false)
                .unwrap_err()
                .to_string()
        };
        assert!(err("robustness=max").contains("robustness=\"max\""));
        for bad in ["3.0", "1.5", "2.4", "0.0", "2", "2.", "22", "2.2.2", "+1.4"] {
            assert!(err(&format!("hdcp={bad}")).contains("hdcp"), "{bad}");
        }
        for bad in ["", "-1", "+5", "4294967296", "1h", "1 "] {
            assert!(
                err(&format!("renewal={bad}")).contains("renewal"),
                "{bad:?}"
            );
        }
        assert!(err("persist:persist").contains("more than once"));
        assert!(err("hdcp=1.4:hdcp=2.2").contains("more than once"));
        assert!(err("forever").contains("unknown option \"forever\""));
        assert!(err("persist=1").contains("unknown option"));
        assert!(err("").contains("unknown option"));
        // A key typed where an option goes is not echoed.
        let e = err(KEY);
        assert!(!e.contains(KEY) && e.contains("32 characters"), "{e}");
        assert_eq!(
            parse_protected_key_arg(KID, false).unwrap_err(),
            KeySpecError::MissingColon
        );
        let e = parse_protected_key_arg(&format!("{KID}:zz{}", &KEY[2..]), false).unwrap_err();
        assert_eq!(e, KeySpecError::BadKey(32));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = parse_protected_key_arg(&format!("{KID}:{}", "ee".repeat(16)), false).unwrap();
        let s = format!("{k:?}");
        assert!(s.contains("0123456789abcdef"), "{s}");
        assert!(!s.contains("ee") && !s.contains("238"), "{s}");
    }
}
