//! Helpers shared by hal's integration tests: the vector-file line format and an independent
//! reference model of the ISO/IEC 23001-7 schemes.
//!
//! The reference is deliberately written differently from `hal::cenc`: it gathers the bytes a
//! scheme encrypts into one buffer, runs a textbook mode over it with RustCrypto (`aes` block
//! cipher, `ctr::Ctr64BE` keystream), and scatters the result back. It shares no code with the
//! crate under test.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use ctr::cipher::{KeyIvInit, StreamCipher};
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

/// Byte ranges `[start, end)` of the protected parts of a sample of `len` bytes.
fn protected_ranges(map: &[Subsample], len: usize) -> Vec<(usize, usize)> {
    if map.is_empty() {
        return vec![(0, len)];
    }
    let mut pos = 0usize;
    let mut out = Vec::new();
    for s in map {
        pos += s.clear as usize;
        out.push((pos, pos + s.protected as usize));
        pos += s.protected as usize;
    }
    assert_eq!(pos, len, "reference model needs a valid map");
    out
}

/// Offsets of the whole blocks of `[start, end)` that a `crypt:skip` pattern encrypts
/// (0:0 and n:0 mean every whole block; a trailing partial block is never included).
fn pattern_blocks(start: usize, end: usize, crypt: u8, skip: u8) -> Vec<usize> {
    let n = (end - start) / 16;
    let (c, k) = (crypt as usize, skip as usize);
    (0..n)
        .filter(|i| c == 0 || k == 0 || i % (c + k) < c)
        .map(|i| start + 16 * i)
        .collect()
}

/// Every byte offset a scheme runs through its cipher, in cipher order, grouped by CBC chain
/// (CTR schemes: one group, since the keystream runs across the sample).
fn cipher_groups(
    scheme: Scheme,
    crypt: u8,
    skip: u8,
    map: &[Subsample],
    len: usize,
) -> Vec<Vec<usize>> {
    let ranges = protected_ranges(map, len);
    let blocks = |s, e, c, k| -> Vec<usize> {
        pattern_blocks(s, e, c, k)
            .into_iter()
            .flat_map(|b| b..b + 16)
            .collect()
    };
    match scheme {
        Scheme::Cenc => vec![ranges.iter().flat_map(|&(s, e)| s..e).collect()],
        Scheme::Cens => vec![ranges
            .iter()
            .flat_map(|&(s, e)| blocks(s, e, crypt, skip))
            .collect()],
        Scheme::Cbc1 => vec![ranges
            .iter()
            .flat_map(|&(s, e)| blocks(s, e, 0, 0))
            .collect()],
        Scheme::Cbcs => ranges
            .iter()
            .map(|&(s, e)| blocks(s, e, crypt, skip))
            .collect(),
    }
}

/// Reference encryption (`decrypt == false`) or decryption of one sample, in place.
/// The description must be valid.
pub(crate) fn reference(
    decrypt: bool,
    scheme: Scheme,
    key: &[u8; 16],
    iv: &[u8],
    pat: hal::cenc::Pattern,
    map: &[Subsample],
    data: &mut [u8],
) {
    let aes = aes::Aes128::new(GenericArray::from_slice(key));
    for group in cipher_groups(scheme, pat.crypt, pat.skip, map, data.len()) {
        let mut buf: Vec<u8> = group.iter().map(|&i| data[i]).collect();
        match scheme {
            Scheme::Cenc | Scheme::Cens => {
                let mut block = [0u8; 16];
                block[..iv.len()].copy_from_slice(iv);
                let mut c = ctr::Ctr64BE::<aes::Aes128>::new(key.into(), &block.into());
                c.apply_keystream(&mut buf);
            }
            Scheme::Cbc1 | Scheme::Cbcs => {
                let mut prev: [u8; 16] = iv.try_into().expect("16-byte IV");
                for chunk in buf.chunks_exact_mut(16) {
                    let mut b = GenericArray::clone_from_slice(chunk);
                    if decrypt {
                        let c: [u8; 16] = chunk.try_into().unwrap();
                        aes.decrypt_block(&mut b);
                        for (o, (x, p)) in chunk.iter_mut().zip(b.iter().zip(prev)) {
                            *o = x ^ p;
                        }
                        prev = c;
                    } else {
                        for (x, p) in b.iter_mut().zip(prev) {
                            *x ^= p;
                        }
                        aes.encrypt_block(&mut b);
                        chunk.copy_from_slice(&b);
                        prev = b.into();
                    }
                }
            }
        }
        for (&i, v) in group.iter().zip(buf) {
            data[i] = v;
        }
    }
}
