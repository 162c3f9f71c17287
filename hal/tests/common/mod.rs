//! Helpers shared by hal's integration tests: the vector-file line format and an adapter to the
//! test kit's independent reference model of the ISO/IEC 23001-7 schemes
//! (`cdm_testkit::cenc`, which shares no code with the crate under test).
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;

use cdm_core::EncryptionScheme;
use cdm_testkit::cenc;
use hal::cenc::{Scheme, Subsample};

/// The signature shared by `decrypt_sample` and `encrypt_sample`.
pub(crate) type SampleFn = fn(
    &hal::aes::Aes128,
    Scheme,
    &[u8],
    hal::cenc::Pattern,
    &[Subsample],
    &mut [u8],
) -> Result<(), hal::cenc::CencError>;

/// One `kind key=value key=value ...` line of a vector file, or `None` for comments/blanks.
pub(crate) fn parse_line(line: &str) -> Option<(&str, HashMap<&str, &str>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let fields = words
        .map(|w| {
            w.split_once('=')
                .unwrap_or_else(|| panic!("field without '=': {w}"))
        })
        .collect();
    Some((kind, fields))
}

/// The field `name` of a parsed line; panics (test-data error) if it is missing.
pub(crate) fn field<'a>(fields: &HashMap<&str, &'a str>, name: &str) -> &'a str {
    fields
        .get(name)
        .unwrap_or_else(|| panic!("missing field {name}"))
}

/// Hex, with `-` for the empty string.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        Vec::new()
    } else {
        hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
    }
}

/// A 16-byte key from hex.
pub(crate) fn key16(s: &str) -> [u8; 16] {
    unhex(s).try_into().expect("16-byte key")
}

/// `cenc`, `cens`, `cbc1`, `cbcs`.
pub(crate) fn scheme(s: &str) -> Scheme {
    match s {
        "cenc" => Scheme::Cenc,
        "cens" => Scheme::Cens,
        "cbc1" => Scheme::Cbc1,
        "cbcs" => Scheme::Cbcs,
        _ => panic!("unknown scheme {s}"),
    }
}

/// `crypt:skip`.
pub(crate) fn pattern(s: &str) -> hal::cenc::Pattern {
    let (c, k) = s.split_once(':').expect("crypt:skip");
    hal::cenc::Pattern {
        crypt: c.parse().expect("crypt"),
        skip: k.parse().expect("skip"),
    }
}

/// `-` or `clear/protected,clear/protected,...`.
pub(crate) fn subsamples(s: &str) -> Vec<Subsample> {
    if s == "-" {
        return Vec::new();
    }
    s.split(',')
        .map(|e| {
            let (c, p) = e.split_once('/').expect("clear/protected");
            Subsample {
                clear: c.parse().expect("clear"),
                protected: p.parse().expect("protected"),
            }
        })
        .collect()
}

/// `seq:N`: byte i is i mod 256.
pub(crate) fn plaintext(s: &str) -> Vec<u8> {
    let n: usize = s.strip_prefix("seq:").expect("seq:N").parse().expect("N");
    (0..n).map(|i| i.to_le_bytes()[0]).collect()
}

/// Reference encryption (`decrypt == false`) or decryption of one sample, in place: the test
/// kit's independent model of ISO/IEC 23001-7 (RustCrypto, no code shared with hal). The
/// description must be valid.
pub(crate) fn reference(
    decrypt: bool,
    scheme: Scheme,
    key: &[u8; 16],
    iv: &[u8],
    pat: hal::cenc::Pattern,
    map: &[Subsample],
    data: &mut [u8],
) {
    let scheme = match scheme {
        Scheme::Cenc => EncryptionScheme::Cenc,
        Scheme::Cens => EncryptionScheme::Cens,
        Scheme::Cbc1 => EncryptionScheme::Cbc1,
        Scheme::Cbcs => EncryptionScheme::Cbcs,
    };
    let pairs: Vec<(u32, u32)> = map.iter().map(|s| (s.clear, s.protected)).collect();
    let run = if decrypt {
        cenc::decrypt
    } else {
        cenc::encrypt
    };
    run(scheme, key, iv, (pat.crypt, pat.skip), &pairs, data);
}
