//! Known-answer tests of hal's AES engines and CENC schemes, on every engine the image can run
//! (`armce` and `portable` on aarch64 built with `+aes`; `portable` on Cortex-M).
//!
//! The expected values are not produced by hal: they are the repository's own test data,
//! embedded at build time —
//!
//! - FIPS-197 Appendices B and C.1 and NIST SP 800-38A F.2 (CBC) and F.5 (CTR) from
//!   `cdm-testkit/data/nist_sp800_38a.txt`, and SP 800-38A F.1 (ECB) from
//!   `data/sp800_38a_ecb.txt`, all transcribed from the standards;
//! - the ISO/IEC 23001-7 corner cases of `hal/tests/data/cenc_cases.txt` (made by a Python
//!   model on the `cryptography` package, cross-checked against OpenSSL and RustCrypto), and
//!   its malformed descriptions, which must be refused with the expected error and leave the
//!   buffer untouched.
//!
//! hal is linked without its `encrypt` feature, as a secure world links it, so encryption
//! vectors run through the forward block cipher (`encrypt_block`, CTR) only.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hal::aes::{Aes128, Engine};
use hal::cenc::{decrypt_sample, CencError, Pattern, Scheme, Subsample};

use core::fmt::Write;

use crate::say;
use crate::vectors::{records, DataError, Record};

/// FIPS-197 and SP 800-38A CBC/CTR vectors (shared with the host conformance suite).
const NIST: &str = include_str!("../../../cdm-testkit/data/nist_sp800_38a.txt");
/// SP 800-38A ECB vectors.
const ECB: &str = include_str!("../data/sp800_38a_ecb.txt");
/// CENC corner cases (shared with hal's host tests).
const CENC: &str = include_str!("../../../hal/tests/data/cenc_cases.txt");

/// Records each file must hold: a file that lost some would otherwise pass quietly.
const EXPECTED: [(&str, &str, usize); 4] = [
    ("nist_sp800_38a.txt", "vector", 8),
    ("sp800_38a_ecb.txt", "vector", 2),
    ("cenc_cases.txt", "case", 28),
    ("cenc_cases.txt", "error", 20),
];

/// Passed and failed test counts; failures are printed as they happen.
#[derive(Debug, Default)]
pub struct Tally {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
}

impl Tally {
    /// Counts one test, printing it to `out` if it failed.
    fn record(&mut self, out: &mut dyn Write, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed = self.passed.saturating_add(1),
            Err(why) => {
                self.failed = self.failed.saturating_add(1);
                say!(out, "FAIL {name}: {why}");
            }
        }
    }
}

/// Runs every known-answer test on every available engine.
pub(crate) fn run(out: &mut dyn Write) -> Tally {
    let mut tally = Tally::default();
    for (file, text) in [
        ("nist_sp800_38a.txt", NIST),
        ("sp800_38a_ecb.txt", ECB),
        ("cenc_cases.txt", CENC),
    ] {
        for (f, kind, want) in EXPECTED {
            if f != file {
                continue;
            }
            let got = records(text).filter(|r| r.kind == kind).count();
            if got != want {
                // Counted as a failure only: a complete file is not a test of hal.
                tally.record(
                    out,
                    &format!("data file {file}"),
                    Err(format!("{got} `{kind}` records, expected {want}")),
                );
            }
        }
    }
    for engine in Engine::available() {
        for r in records(NIST).chain(records(ECB)) {
            let name = format!("{} on {}", r.name(), engine.name());
            tally.record(
                out,
                &name,
                aes_vector(engine, &r).map_err(|e| format!("{e}")),
            );
        }
        for r in records(CENC) {
            let name = format!("{} on {}", r.name(), engine.name());
            let result = match r.kind {
                "case" => cenc_case(engine, &r),
                "error" => cenc_error(engine, &r),
                other => Err(DataError(format!("unknown record kind `{other}`"))),
            };
            tally.record(out, &name, result.map_err(|e| format!("{e}")));
        }
    }
    tally
}

/// `Ok` when `got == want`, else an error naming `what` and both values in hex.
fn same(what: &str, got: &[u8], want: &[u8]) -> Result<(), DataError> {
    if got == want {
        Ok(())
    } else {
        Err(DataError(format!(
            "{what}: got {}, want {}",
            hex::encode(got),
            hex::encode(want)
        )))
    }
}

/// Expands `key` for `engine`.
fn schedule(engine: Engine, key: &[u8; 16]) -> Result<Aes128, DataError> {
    engine
        .try_key(key)
        .map_err(|e| DataError(format!("key schedule: {e}")))
}

/// One FIPS-197 / SP 800-38A vector: `block`/`ecb` (block by block), `cbc` or `ctr`.
fn aes_vector(engine: Engine, r: &Record<'_>) -> Result<(), DataError> {
    let key = schedule(engine, &r.hex16("key")?)?;
    let input = r.hex("in")?;
    let want = r.hex("out")?;
    let encrypt = match r.get("dir")? {
        "encrypt" => true,
        "decrypt" => false,
        d => return Err(DataError(format!("unknown dir `{d}`"))),
    };
    let (blocks, tail) = input.as_chunks::<16>();
    if !tail.is_empty() {
        return Err(DataError("input is not whole blocks".into()));
    }
    match r.get("mode")? {
        "block" | "ecb" => {
            let mut out = Vec::new();
            for b in blocks {
                let mut b = *b;
                if encrypt {
                    key.encrypt_block(&mut b);
                } else {
                    key.decrypt_block(&mut b);
                }
                out.extend_from_slice(&b);
            }
            same("blocks", &out, &want)
        }
        "cbc" => {
            let iv = r.hex16("iv")?;
            if encrypt {
                // CBC encryption as SP 800-38A §6.2 defines it, on hal's forward cipher.
                let mut chain = iv;
                let mut out = Vec::new();
                for b in blocks {
                    chain.iter_mut().zip(b).for_each(|(c, p)| *c ^= p);
                    key.encrypt_block(&mut chain);
                    out.extend_from_slice(&chain);
                }
                same("cbc (encrypt_block chain)", &out, &want)
            } else {
                let mut chain = iv;
                let mut out = input.clone();
                key.cbc_decrypt(&mut chain, &mut out);
                same("cbc_decrypt", &out, &want)?;
                same(
                    "cbc_decrypt chaining value",
                    &chain,
                    blocks.last().unwrap_or(&iv),
                )?;
                // The same vector as a `cbc1` sample with no subsample map (ISO/IEC 23001-7
                // §10.2: plain CBC over the whole blocks).
                let mut out = input.clone();
                decrypt_sample(&key, Scheme::Cbc1, &iv, Pattern::default(), &[], &mut out)
                    .map_err(|e| DataError(format!("cbc1 sample: {e}")))?;
                same("cbc1 sample", &out, &want)
            }
        }
        "ctr" => {
            // SP 800-38A's initial counter block: its high half is the CENC IV, its low half
            // the 64-bit counter (no wrap within these four blocks).
            let iv = r.hex16("iv")?;
            let (hi, lo) = iv.split_at(8);
            let hi: [u8; 8] = hi.try_into().map_err(|_| DataError("iv".into()))?;
            let lo: [u8; 8] = lo.try_into().map_err(|_| DataError("iv".into()))?;
            let mut ctr = u64::from_be_bytes(lo);
            let mut out = input.clone();
            key.ctr64_xor(&hi, &mut ctr, &mut out);
            same("ctr64_xor", &out, &want)?;
            let blocks = u64::try_from(blocks.len()).map_err(|_| DataError("len".into()))?;
            if ctr != u64::from_be_bytes(lo).wrapping_add(blocks) {
                return Err(DataError("ctr64_xor did not advance the counter".into()));
            }
            // The same vector as a `cenc` sample with a 16-byte IV (§10.1).
            let mut out = input.clone();
            decrypt_sample(&key, Scheme::Cenc, &iv, Pattern::default(), &[], &mut out)
                .map_err(|e| DataError(format!("cenc sample: {e}")))?;
            same("cenc sample", &out, &want)
        }
        m => Err(DataError(format!("unknown mode `{m}`"))),
    }
}

/// One CENC corner case: decrypting `ct` gives `pt`.
fn cenc_case(engine: Engine, r: &Record<'_>) -> Result<(), DataError> {
    let key = schedule(engine, &r.hex16("key")?)?;
    let pt = r.seq("pt")?;
    let mut buf = r.hex("ct")?;
    decrypt_sample(
        &key,
        r.scheme()?,
        &r.hex("iv")?,
        r.pattern()?,
        &r.map()?,
        &mut buf,
    )
    .map_err(|e| DataError(format!("refused: {e}")))?;
    same("decrypted", &buf, &pt)
}

/// One malformed description: refused with the expected error, buffer unchanged.
fn cenc_error(engine: Engine, r: &Record<'_>) -> Result<(), DataError> {
    let key = schedule(engine, &[0x42; 16])?;
    let iv = r.hex("iv")?;
    let pattern = r.pattern()?;
    let map: Vec<Subsample> = r.map()?;
    let len = r.number("len")?;
    let expected = match r.get("expect")? {
        "BadIvLength" => CencError::BadIvLength { len: iv.len() },
        "BadPattern" => CencError::BadPattern {
            crypt: pattern.crypt,
            skip: pattern.skip,
        },
        "SubsampleMismatch" => {
            // Summed in u128: the expectation cannot overflow, whatever the map says.
            let covered: u128 = map
                .iter()
                .map(|s| u128::from(s.clear).saturating_add(u128::from(s.protected)))
                .fold(0, u128::saturating_add);
            CencError::SubsampleMismatch {
                covered: u64::try_from(covered).ok(),
                len,
            }
        }
        e => return Err(DataError(format!("unknown error `{e}`"))),
    };
    let original: Vec<u8> = (0..len).map(|i| (i * 37 + 11).to_le_bytes()[0]).collect();
    let mut buf = original.clone();
    match decrypt_sample(&key, r.scheme()?, &iv, pattern, &map, &mut buf) {
        Err(e) if e == expected => same("buffer after refusal", &buf, &original),
        other => Err(DataError(format!("got {other:?}, want Err({expected:?})"))),
    }
}
