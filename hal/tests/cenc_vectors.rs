//! Table-driven ISO/IEC 23001-7 corner cases from `data/cenc_cases.txt`, on every engine.
//!
//! The expected ciphertexts were produced by `data/gen_cenc_cases.py` (Python `cryptography`
//! AES block cipher plus the scheme rules written out from the spec; two of them re-checked
//! with `openssl enc`, and every `cens` case by `openssl enc -aes-128-ctr` over its gathered
//! encrypted blocks, the keystream split at the 2^64 wrap of the counter half), and are
//! cross-checked here against a second independent model
//! (RustCrypto `aes` + `ctr`, in `common/`). Error records check that every refused
//! description leaves the buffer untouched.

mod common;

use common::{
    field, key16, parse_line, pattern, plaintext, reference, scheme, subsamples, unhex, SampleFn,
};
use hal::aes::Engine;
use hal::cenc::{decrypt_sample, encrypt_sample, CencError};

const CASES: &str = include_str!("data/cenc_cases.txt");

#[test]
fn corner_cases_on_every_engine() {
    let mut count = 0;
    for (kind, f) in CASES.lines().filter_map(parse_line) {
        if kind != "case" {
            continue;
        }
        count += 1;
        let name = field(&f, "name");
        let scheme = scheme(field(&f, "scheme"));
        let key = key16(field(&f, "key"));
        let iv = unhex(field(&f, "iv"));
        let pat = pattern(field(&f, "pattern"));
        let map = subsamples(field(&f, "map"));
        let pt = plaintext(field(&f, "pt"));
        let ct = unhex(field(&f, "ct"));
        assert_eq!(pt.len(), ct.len(), "{name}: data file");

        // The two independent oracles agree.
        let mut r = pt.clone();
        reference(false, scheme, &key, &iv, pat, &map, &mut r);
        assert_eq!(
            hex::encode(&r),
            hex::encode(&ct),
            "{name}: reference model vs data file"
        );

        for engine in Engine::available() {
            let ctx = format!("{name} on {}", engine.name());
            let k = engine.key(&key);
            let mut buf = ct.clone();
            decrypt_sample(&k, scheme, &iv, pat, &map, &mut buf)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(hex::encode(&buf), hex::encode(&pt), "{ctx}: decrypt");
            let mut buf = pt.clone();
            encrypt_sample(&k, scheme, &iv, pat, &map, &mut buf)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(hex::encode(&buf), hex::encode(&ct), "{ctx}: encrypt");
        }
    }
    assert_eq!(count, 28, "data file lost cases");
}

/// Structural facts of a few cases, checked on the data itself so that the generator's reading
/// of the spec is pinned, not just its output.
#[test]
fn data_file_shows_the_rules() {
    let get = |n: &str| {
        let (_, f) = CASES
            .lines()
            .filter_map(parse_line)
            .find(|(_, f)| f.get("name") == Some(&n))
            .unwrap_or_else(|| panic!("no case {n}"));
        (plaintext(field(&f, "pt")), unhex(field(&f, "ct")))
    };
    // An 8-byte IV is a 16-byte IV with a zero low half.
    assert_eq!(
        get("cenc_iv8_full_sample_partial_tail").1,
        get("cenc_iv16_equals_iv8_with_zero_low_half").1
    );
    // cbcs 1:9: in the 250-byte range at offset 16, blocks 1..=9 and the 10-byte tail are clear.
    let (pt, ct) = get("cbcs_1_9_iv_restart_partial_clear");
    assert_ne!(ct[16..32], pt[16..32]);
    assert_eq!(ct[32..176], pt[32..176]);
    assert_ne!(ct[176..192], pt[176..192]);
    assert_eq!(ct[256..266], pt[256..266]);
    // cens 9:1, first range (77 blocks and 5 bytes at offset 3): block 9 is skipped, the short
    // last run (blocks 70..=76, fewer than 9) is encrypted, the 5-byte tail is clear.
    let (pt, ct) = get("cens_9_1_ranges_not_whole_periods_iv8");
    let block = |b: usize| 3 + 16 * b..3 + 16 * (b + 1);
    assert_ne!(ct[block(8)], pt[block(8)]);
    assert_eq!(ct[block(9)], pt[block(9)]);
    assert_ne!(ct[block(10)], pt[block(10)]);
    assert_eq!(ct[block(69)], pt[block(69)]);
    assert_ne!(ct[block(70)], pt[block(70)]);
    assert_ne!(ct[block(76)], pt[block(76)]);
    assert_eq!(ct[3 + 16 * 77..][..5], pt[3 + 16 * 77..][..5]);
    // cens 0:0 over 140 blocks and 4 bytes: every whole block encrypted, the tail clear.
    let (pt, ct) = get("cens_0_0_140_blocks_wrap_iv16");
    assert!(ct[..16 * 140]
        .chunks(16)
        .zip(pt.chunks(16))
        .all(|(c, p)| c != p));
    assert_eq!(ct[16 * 140..], pt[16 * 140..]);
    // The all-clear map and the empty sample change nothing.
    let (pt, ct) = get("cenc_all_clear_map");
    assert_eq!(pt, ct);
    // cbc1: the partial block of the middle range (21 = 16 + 5) is clear.
    let (pt, ct) = get("cbc1_chain_across_subsamples");
    assert_eq!(ct[35..39], pt[35..39]);
    assert_eq!(ct[55..60], pt[55..60]);
}

#[test]
fn refused_descriptions_change_nothing() {
    let mut count = 0;
    for (kind, f) in CASES.lines().filter_map(parse_line) {
        if kind != "error" {
            continue;
        }
        count += 1;
        let name = field(&f, "name");
        let scheme = scheme(field(&f, "scheme"));
        let iv = unhex(field(&f, "iv"));
        let pat = pattern(field(&f, "pattern"));
        let map = subsamples(field(&f, "map"));
        let len: usize = field(&f, "len").parse().unwrap();
        let expected = match field(&f, "expect") {
            "BadIvLength" => CencError::BadIvLength { len: iv.len() },
            "BadPattern" => CencError::BadPattern {
                crypt: pat.crypt,
                skip: pat.skip,
            },
            "SubsampleMismatch" => {
                // Summed here in u128, so the expectation cannot overflow either.
                let covered: u128 = map
                    .iter()
                    .map(|s| u128::from(s.clear) + u128::from(s.protected))
                    .sum();
                CencError::SubsampleMismatch {
                    covered: Some(covered.try_into().unwrap()),
                    len,
                }
            }
            e => panic!("{name}: unknown error {e}"),
        };
        let original: Vec<u8> = (0..len).map(|i| (i * 37 + 11).to_le_bytes()[0]).collect();
        for engine in Engine::available() {
            let k = engine.key(&[0x42; 16]);
            for (dir, f) in [
                ("decrypt", decrypt_sample as SampleFn),
                ("encrypt", encrypt_sample),
            ] {
                let mut buf = original.clone();
                assert_eq!(
                    f(&k, scheme, &iv, pat, &map, &mut buf),
                    Err(expected),
                    "{name} {dir} on {}",
                    engine.name()
                );
                assert_eq!(
                    buf,
                    original,
                    "{name} {dir} on {}: buffer changed",
                    engine.name()
                );
            }
        }
    }
    assert_eq!(count, 20, "data file lost error cases");
}
