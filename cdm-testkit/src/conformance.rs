//! The engine conformance suite: what every AES engine of `hal` must do, written once against
//! [`hal::aes::Engine`] and run for every engine the CPU offers (`hal/tests/conformance.rs`).
//!
//! | group | checks |
//! |---|---|
//! | [`known_answers`] | FIPS-197 C.1 and B (the cipher over the A.1 key expansion); NIST SP 800-38A F.2.1/F.2.2 (CBC) and F.5.1/F.5.2 (CTR), through `Aes128` and through the CENC entry points |
//! | [`ctr()`] | CTR on 0..=300 bytes and large sizes at every offset of a block, counters around every batch boundary and the 2^64 wrap |
//! | [`cbc()`] | CBC decryption on the same lengths; the chain continues across calls |
//! | [`cbc_patterns`] | CBC under every `crypt:skip` pattern (0:0, 1:9, 5:5, 10:0, …) on lengths across the strided and gathered batches, partial final blocks clear |
//! | [`round_trips`] | encryption then decryption, block and sample level; every scheme's samples equal the portable engine's |
//! | [`key_schedule_wiped`] | the zeroize check hook (needs the [`ScanningAllocator`]; not in [`run_all`]) |
//!
//! The expected values come from a textbook model written here on RustCrypto's `aes` block
//! cipher, independent of `hal`: a bug in code all engines share would escape a comparison
//! with the portable engine alone. Every failure panics with the engine's name and the case.
//! Test data comes from [`TestRng`] with fixed seeds.

use std::fmt::{Debug, Display};
use std::hint::black_box;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use hal::aes::{Aes128, Engine, EngineKind, BLOCK};
use hal::cenc::{decrypt_sample, encrypt_sample, Pattern, Scheme, Subsample};

use crate::alloc_scan::ScanningAllocator;
use crate::rng::TestRng;

/// FIPS-197 Appendix A.1 cipher key (also the key of NIST SP 800-38A's AES-128 examples).
const A1_KEY: [u8; 16] = [
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
];
/// FIPS-197 Appendix A.1, round key 10 (w[40..44]) of [`A1_KEY`].
const A1_ROUND_KEY_10: [u8; 16] = [
    0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63, 0x0c, 0xa6,
];
/// FIPS-197 and NIST SP 800-38A vectors, one per line (format in the file's header).
const VECTORS: &str = include_str!("../data/nist_sp800_38a.txt");
/// Byte lengths beyond 0..=300: several batches, and a 64 KiB sample.
const LARGE: [usize; 3] = [1024 + 7, 4096, 65536 + 13];

/// Every group of the suite except the zeroize hook, on `engine`.
pub fn run_all(engine: Engine) {
    known_answers(engine);
    ctr(engine);
    cbc(engine);
    cbc_patterns(engine);
    round_trips(engine);
}

/// Fails the suite for `engine` with the case's name and both values.
#[track_caller]
fn same<T: PartialEq + Debug>(engine: Engine, case: impl Display, got: T, want: T) {
    assert!(
        got == want,
        "engine `{}` fails {case}\n   got: {got:?}\n  want: {want:?}",
        engine.name()
    );
}

/// Fails the suite for `engine` with the case's name unless `ok`.
#[track_caller]
fn ensure(engine: Engine, case: impl Display, ok: bool) {
    assert!(ok, "engine `{}` fails {case}", engine.name());
}

/// [`same`] for byte strings: reports the first differing block instead of everything.
#[track_caller]
fn same_bytes(engine: Engine, case: impl Display, got: &[u8], want: &[u8]) {
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        let at = i - i % BLOCK;
        let block = |b: &[u8]| hex::encode(&b[at..b.len().min(at + BLOCK)]);
        same(
            engine,
            format_args!("{case} (at byte {i})"),
            block(got),
            block(want),
        );
    }
    same(
        engine,
        format_args!("{case} (length)"),
        got.len(),
        want.len(),
    );
}

/// The textbook model every engine is checked against: RustCrypto's block cipher and the
/// modes written out from NIST SP 800-38A and ISO/IEC 23001-7.
struct Textbook(aes::Aes128);

impl Textbook {
    fn new(key: &[u8; 16]) -> Self {
        Textbook(aes::Aes128::new(GenericArray::from_slice(key)))
    }

    fn decrypt(&self, block: &mut [u8]) {
        self.0.decrypt_block(GenericArray::from_mut_slice(block));
    }

    /// CTR with counter blocks `iv_hi || (ctr + i) mod 2^64`; a partial last block uses the
    /// first bytes of its keystream block and counts as one. (Blocks go to the cipher in one
    /// call: RustCrypto's software AES, used under qemu, is much faster on many at once.)
    fn ctr(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        let mut counter_block = || {
            let b = aes::Block::clone_from_slice(&[*iv_hi, ctr.to_be_bytes()].concat());
            *ctr = ctr.wrapping_add(1);
            b
        };
        let mut ks: Vec<aes::Block> = data.chunks(BLOCK).map(|_| counter_block()).collect();
        self.0.encrypt_blocks(&mut ks);
        data.iter_mut()
            .zip(ks.iter().flatten())
            .for_each(|(d, k)| *d ^= k);
    }

    /// CBC decryption of the whole blocks under a `crypt:skip` pattern (0:0 or n:0: every
    /// block), one chain through the encrypted blocks; `iv` ends as the last ciphertext.
    fn cbc(&self, iv: &mut [u8; 16], data: &mut [u8], crypt: usize, skip: usize) {
        let encrypted =
            |&(i, _): &(usize, _)| crypt == 0 || skip == 0 || i % (crypt + skip) < crypt;
        let mut blocks: Vec<&mut [u8]> = data
            .chunks_exact_mut(BLOCK)
            .enumerate()
            .filter(encrypted)
            .map(|(_, b)| b)
            .collect();
        let ct: Vec<aes::Block> = blocks
            .iter()
            .map(|b| aes::Block::clone_from_slice(b))
            .collect();
        let mut pt = ct.clone();
        self.0.decrypt_blocks(&mut pt);
        let first = aes::Block::from(*iv);
        let chain = std::iter::once(&first).chain(&ct);
        for ((block, p), c) in blocks.iter_mut().zip(&pt).zip(chain) {
            block
                .iter_mut()
                .zip(p.iter().zip(c))
                .for_each(|(b, (p, c))| *b = p ^ c);
        }
        if let Some(last) = ct.last() {
            *iv = (*last).into();
        }
    }
}

/// One vector of [`VECTORS`].
struct Vector {
    name: String,
    mode: String,
    encrypt: bool,
    key: [u8; 16],
    iv: Vec<u8>,
    input: Vec<u8>,
    output: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let unhex = |s: &str| {
        if s == "-" {
            Vec::new()
        } else {
            hex::decode(s).unwrap()
        }
    };
    let v: Vec<Vector> = VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut fields = line.split_whitespace();
            assert_eq!(fields.next(), Some("vector"), "vector file: {line}");
            let map: std::collections::HashMap<&str, &str> =
                fields.filter_map(|f| f.split_once('=')).collect();
            let field = |k: &str| *map.get(k).unwrap_or_else(|| panic!("no {k} in {line}"));
            Vector {
                name: field("name").to_owned(),
                mode: field("mode").to_owned(),
                encrypt: field("dir") == "encrypt",
                key: unhex(field("key")).try_into().unwrap(),
                iv: unhex(field("iv")),
                input: unhex(field("in")),
                output: unhex(field("out")),
            }
        })
        .collect();
    assert_eq!(v.len(), 8, "vector file lost lines");
    v
}

/// FIPS-197 C.1 and B, NIST SP 800-38A F.2.1/F.2.2 (CBC) and F.5.1/F.5.2 (CTR).
///
/// CBC runs in one call and split in two (the chaining value carries on), and as `cbc1`
/// samples (with and without a subsample split) and `cbcs` 0:0; CTR runs as `ctr64_xor` (the
/// counter advances by 4) and as `cenc` samples with the 16-byte initial counter block as IV,
/// once with subsamples that split blocks (7 + 20 + 37 bytes: the keystream runs on).
pub fn known_answers(engine: Engine) {
    for v in vectors() {
        let key = engine.key(&v.key);
        let case = |what: &str| format!("{} {what}", v.name);
        match (v.mode.as_str(), v.encrypt) {
            ("block", enc) => {
                let mut b: [u8; 16] = v.input.clone().try_into().unwrap();
                if enc {
                    key.encrypt_block(&mut b);
                } else {
                    key.decrypt_block(&mut b);
                }
                same_bytes(engine, case("block"), &b, &v.output);
            }
            ("cbc", enc) => {
                let last: &[u8] = if enc { &v.output } else { &v.input };
                let mut data = v.input.clone();
                let mut chain: [u8; 16] = v.iv.clone().try_into().unwrap();
                let (a, b) = data.split_at_mut(if enc { 16 } else { 32 });
                if enc {
                    key.cbc_encrypt(&mut chain, a);
                    key.cbc_encrypt(&mut chain, b);
                } else {
                    key.cbc_decrypt(&mut chain, a);
                    key.cbc_decrypt(&mut chain, b);
                }
                same_bytes(engine, case("in two calls"), &data, &v.output);
                same_bytes(engine, case("chaining value"), &chain, &last[48..]);
                let split = [sub(0, 32), sub(0, 32)];
                for (scheme, map) in [
                    (Scheme::Cbc1, &[][..]),
                    (Scheme::Cbc1, &split),
                    (Scheme::Cbcs, &[]),
                ] {
                    let got = sample(enc, &key, scheme, &v.iv, Pattern::default(), map, &v.input);
                    same_bytes(
                        engine,
                        case(&format!("{scheme:?} map {map:?}")),
                        &got,
                        &v.output,
                    );
                }
            }
            ("ctr", enc) => {
                let (iv_hi, lo) = v.iv.split_at(8);
                let lo = u64::from_be_bytes(lo.try_into().unwrap());
                let mut data = v.input.clone();
                let mut ctr = lo;
                key.ctr64_xor(iv_hi.try_into().unwrap(), &mut ctr, &mut data);
                same_bytes(engine, case("ctr64_xor"), &data, &v.output);
                same(
                    engine,
                    case("counter after 4 blocks"),
                    ctr,
                    lo.wrapping_add(4),
                );
                let split = [sub(0, 7), sub(0, 20), sub(0, 37)];
                for map in [&[][..], &split] {
                    let got = sample(
                        enc,
                        &key,
                        Scheme::Cenc,
                        &v.iv,
                        Pattern::default(),
                        map,
                        &v.input,
                    );
                    same_bytes(engine, case(&format!("cenc map {map:?}")), &got, &v.output);
                }
            }
            (mode, _) => panic!("vector file: unknown mode {mode}"),
        }
    }
}

fn sub(clear: u32, protected: u32) -> Subsample {
    Subsample { clear, protected }
}

/// `encrypt_sample` or `decrypt_sample` on a copy of `data`; the description must be valid.
fn sample(
    encrypt: bool,
    key: &Aes128,
    scheme: Scheme,
    iv: &[u8],
    pattern: Pattern,
    map: &[Subsample],
    data: &[u8],
) -> Vec<u8> {
    let mut out = data.to_vec();
    let f = if encrypt {
        encrypt_sample
    } else {
        decrypt_sample
    };
    f(key, scheme, iv, pattern, map, &mut out)
        .unwrap_or_else(|e| panic!("valid sample refused: {e}"));
    out
}

/// A uniform value below `n` as the type a case needs (every `n` here fits it).
fn below<T: TryFrom<u64, Error: Debug>>(rng: &mut TestRng, n: u64) -> T {
    T::try_from(rng.below(n)).unwrap()
}

/// Lengths 0..=300 bytes (every batch boundary of every engine, and every partial block)
/// and [`LARGE`], each with a random offset into its buffer (unaligned loads and stores).
fn lengths(rng: &mut TestRng) -> Vec<(usize, usize)> {
    let offset = |rng: &mut TestRng| below::<usize>(rng, 16);
    (0..=300)
        .chain(LARGE)
        .map(|len| (len, offset(rng)))
        .collect()
}

/// CTR: every length with a random counter, then counters at and across the batch boundaries
/// and the 2^64 wrap (which must not carry into the IV) for 0..=40 blocks; a run split at a
/// block boundary continues the keystream.
pub fn ctr(engine: Engine) {
    let mut rng = TestRng::new(0xc7e_0001);
    let key = rng.array::<16>();
    let (k, model) = (engine.key(&key), Textbook::new(&key));
    let run = |case: &str, start: u64, offset: usize, len: usize, rng: &mut TestRng| {
        let iv_hi = rng.array::<8>();
        let mut got = rng.bytes(offset + len + 5);
        let mut want = got.clone();
        let (mut got_ctr, mut want_ctr) = (start, start);
        k.ctr64_xor(&iv_hi, &mut got_ctr, &mut got[offset..][..len]);
        model.ctr(&iv_hi, &mut want_ctr, &mut want[offset..][..len]);
        let case = format!("ctr {case}: {len} bytes at offset {offset}, counter {start:#x}");
        same_bytes(engine, &case, &got, &want);
        same(
            engine,
            format_args!("{case}, counter after"),
            got_ctr,
            want_ctr,
        );
    };
    for (len, offset) in lengths(&mut rng) {
        let start = rng.next_u64();
        run("lengths", start, offset, len, &mut rng);
    }
    let mut starts: Vec<u64> = (0..=40).map(|k| u64::MAX - k).collect();
    starts.extend([
        0,
        1,
        0xf0,
        0xf7,
        0xf8,
        0xf9,
        0xff,
        0x1ff,
        0xffff_ffff,
        rng.next_u64(),
    ]);
    for start in starts {
        for blocks in 0..=40 {
            run("counters", start, blocks % 3, blocks * BLOCK, &mut rng);
        }
    }

    // Independent statement of the `cenc` rule: after counter 2^64 - 1 comes 0 with the same
    // IV half, so block 1 of a run from u64::MAX is block 0 of a run from 0.
    let iv_hi = [0xa5; 8];
    let mut across = [0u8; 2 * BLOCK];
    let mut ctr = u64::MAX;
    k.ctr64_xor(&iv_hi, &mut ctr, &mut across);
    same(
        engine,
        "ctr wrap: counter after u64::MAX + 2 blocks",
        ctr,
        1,
    );
    let mut at_zero = [0u8; BLOCK];
    k.ctr64_xor(&iv_hi, &mut 0, &mut at_zero);
    same_bytes(
        engine,
        "ctr wrap: no carry into the IV",
        &across[BLOCK..],
        &at_zero,
    );

    // Calls split at block boundaries are one keystream.
    let data = rng.bytes(37 * BLOCK + 3);
    let mut one = data.clone();
    let mut c1 = u64::MAX - 9;
    k.ctr64_xor(&iv_hi, &mut c1, &mut one);
    for piece in [BLOCK, 3 * BLOCK, 19 * BLOCK] {
        let (mut pieces, mut c) = (data.clone(), u64::MAX - 9);
        for p in pieces.chunks_mut(piece) {
            k.ctr64_xor(&iv_hi, &mut c, p);
        }
        same_bytes(
            engine,
            format_args!("ctr in calls of {piece} bytes"),
            &pieces,
            &one,
        );
        same(
            engine,
            format_args!("ctr in calls of {piece} bytes, counter after"),
            c,
            c1,
        );
    }
}

/// CBC decryption on every length (a trailing partial block stays as it is); up to 300 bytes
/// also in calls split at a random block and block by block (the chain continues).
pub fn cbc(engine: Engine) {
    let mut rng = TestRng::new(0xcbc_0001);
    let key = rng.array::<16>();
    let (k, model) = (engine.key(&key), Textbook::new(&key));
    for (len, offset) in lengths(&mut rng) {
        let iv0 = rng.array::<16>();
        let ct = rng.bytes(offset + len + 5);
        let (mut want, mut want_iv) = (ct.clone(), iv0);
        model.cbc(&mut want_iv, &mut want[offset..][..len], 0, 0);
        let split = BLOCK * (1 + below::<usize>(&mut rng, len as u64 / 16 + 1));
        let pieces: &[usize] = if len <= 300 {
            &[len, split, BLOCK]
        } else {
            &[len]
        };
        for &piece in pieces {
            let (mut got, mut iv) = (ct.clone(), iv0);
            for p in got[offset..][..len].chunks_mut(piece.max(1)) {
                k.cbc_decrypt(&mut iv, p);
            }
            let case = format!("cbc: {len} bytes at offset {offset} in calls of {piece}");
            same_bytes(engine, &case, &got, &want);
            same(engine, format_args!("{case}, chaining value"), iv, want_iv);
        }
    }
}

/// CBC decryption under every `crypt:skip` pattern with values 0..=15 (0:0 and n:0 mean
/// every block) on lengths around multiples of the period and of every engine's batch of
/// periods (a strided 1:9 batch covers 8 or 16 periods), each with a random partial final
/// block that must stay clear; then a direct check that 1:9 leaves skipped blocks alone.
pub fn cbc_patterns(engine: Engine) {
    let mut rng = TestRng::new(0x9a7_0001);
    let key = rng.array::<16>();
    let (k, model) = (engine.key(&key), Textbook::new(&key));
    for crypt in 0..=15usize {
        for skip in 0..=15 {
            let period = crypt + skip;
            let mut blocks = vec![0, 1, 2, 17, 40, 161, crypt, period, 2 * period + 1];
            blocks.extend([
                8 * period + crypt.saturating_sub(1),
                16 * period,
                16 * period + 1,
            ]);
            blocks.extend([
                (17 * period).saturating_sub(1),
                33 * period * usize::from(crypt == 1),
            ]);
            for n in blocks {
                let len = n * BLOCK + below::<usize>(&mut rng, 16);
                let iv0 = rng.array::<16>();
                let mut got = rng.bytes(len);
                let mut want = got.clone();
                let (mut got_iv, mut want_iv) = (iv0, iv0);
                k.cbc_decrypt_pattern(&mut got_iv, &mut got, crypt, skip);
                model.cbc(&mut want_iv, &mut want, crypt, skip);
                let case = format!("cbc pattern {crypt}:{skip} on {len} bytes");
                same_bytes(engine, &case, &got, &want);
                same(
                    engine,
                    format_args!("{case}, chaining value"),
                    got_iv,
                    want_iv,
                );
            }
        }
    }

    // Independent of the model: with 1:9 only blocks 0, 10 and 20 change, block 10 is
    // decrypted with block 0's ciphertext as chaining value, and the chain ends at block 20.
    let data = rng.bytes(25 * BLOCK);
    let mut got = data.clone();
    let mut iv = [0x11; 16];
    k.cbc_decrypt_pattern(&mut iv, &mut got, 1, 9);
    for (i, (g, d)) in got.chunks(BLOCK).zip(data.chunks(BLOCK)).enumerate() {
        same(
            engine,
            format_args!("cbc pattern 1:9: block {i} changed"),
            g != d,
            i % 10 == 0,
        );
    }
    let mut b10 = data[10 * BLOCK..11 * BLOCK].to_vec();
    model.decrypt(&mut b10);
    b10.iter_mut()
        .zip(&data[..BLOCK])
        .for_each(|(p, c)| *p ^= c);
    same_bytes(
        engine,
        "cbc pattern 1:9: block 10",
        &got[10 * BLOCK..11 * BLOCK],
        &b10,
    );
    same_bytes(
        engine,
        "cbc pattern 1:9: chaining value",
        &iv,
        &data[20 * BLOCK..21 * BLOCK],
    );
}

/// Encryption undone by decryption: `cbc_encrypt` then `cbc_decrypt` on every length, and for
/// random samples of every scheme (IVs near the 2^64 counter wrap, patterns, subsample
/// maps), `encrypt_sample` then `decrypt_sample`. Each sample's ciphertext and decryption also
/// equal the portable engine's.
pub fn round_trips(engine: Engine) {
    let mut rng = TestRng::new(0x7e1_0001);
    let key = rng.array::<16>();
    let k = engine.key(&key);
    for (len, offset) in lengths(&mut rng) {
        let iv0 = rng.array::<16>();
        let plain = rng.bytes(offset + len);
        let (mut data, mut iv) = (plain.clone(), iv0);
        k.cbc_encrypt(&mut iv, &mut data[offset..]);
        let ct_iv = iv;
        let mut iv = iv0;
        k.cbc_decrypt(&mut iv, &mut data[offset..]);
        let case = format!("cbc encrypt then decrypt: {len} bytes at offset {offset}");
        same_bytes(engine, &case, &data, &plain);
        same(engine, format_args!("{case}, chaining value"), iv, ct_iv);
    }

    let portable = Engine::new(EngineKind::Portable).unwrap().key(&key);
    for i in 0..200 {
        let (scheme, iv, pattern, map, plain) = random_sample(&mut rng);
        let case = format!(
            "sample {i}: {scheme:?} {pattern:?} iv {} map {map:?}",
            hex::encode(&iv)
        );
        let ct = sample(true, &k, scheme, &iv, pattern, &map, &plain);
        same_bytes(
            engine,
            format_args!("{case}: encrypt vs portable"),
            &ct,
            &sample(true, &portable, scheme, &iv, pattern, &map, &plain),
        );
        same_bytes(
            engine,
            format_args!("{case}: decrypt vs portable"),
            &sample(false, &k, scheme, &iv, pattern, &map, &plain),
            &sample(false, &portable, scheme, &iv, pattern, &map, &plain),
        );
        same_bytes(
            engine,
            format_args!("{case}: round trip"),
            &sample(false, &k, scheme, &iv, pattern, &map, &ct),
            &plain,
        );
    }
}

/// A random valid sample description and its data: 8- or 16-byte CTR IVs (often just below
/// the counter wrap), patterns 1:9, 0:0 or random, and either no subsample map (0..3000
/// bytes) or 1..8 entries of up to 200 clear and 700 protected bytes.
fn random_sample(rng: &mut TestRng) -> (Scheme, Vec<u8>, Pattern, Vec<Subsample>, Vec<u8>) {
    let scheme = [Scheme::Cenc, Scheme::Cens, Scheme::Cbc1, Scheme::Cbcs][below::<usize>(rng, 4)];
    let iv = match (scheme, rng.below(3)) {
        (Scheme::Cenc | Scheme::Cens, 0) => rng.bytes(8),
        (Scheme::Cenc | Scheme::Cens, 1) => [
            rng.bytes(8),
            (u64::MAX - rng.below(300)).to_be_bytes().to_vec(),
        ]
        .concat(),
        _ => rng.bytes(16),
    };
    let pattern = match (scheme, rng.below(3)) {
        (Scheme::Cenc | Scheme::Cbc1, _) | (_, 0) => Pattern::default(),
        (_, 1) => Pattern { crypt: 1, skip: 9 },
        _ => Pattern {
            crypt: 1 + below::<u8>(rng, 15),
            skip: below(rng, 16),
        },
    };
    let map: Vec<Subsample> = if rng.below(2) == 0 {
        Vec::new()
    } else {
        (0..1 + rng.below(7))
            .map(|_| sub(below(rng, 200), below(rng, 700)))
            .collect()
    };
    let len = if map.is_empty() {
        below(rng, 3000)
    } else {
        map.iter()
            .map(|s| usize::try_from(s.clear + s.protected).unwrap())
            .sum()
    };
    (scheme, iv, pattern, map, rng.bytes(len))
}

/// The zeroize check hook: proves that dropping an [`hal::aes::Aes128`] of `engine` wipes
/// its key schedule.
///
/// `scanner` must be the test binary's `#[global_allocator]`, and nothing else may run in the
/// binary meanwhile (one `#[test]`): it scans the frees of every thread. A boxed schedule is
/// dropped under the scan; no freed block may hold the FIPS-197 A.1 key or its round key 10,
/// and each may keep at most 16 non-zero bytes (the engine tag, enum discriminants and the
/// CPU-feature token of RustCrypto's autodetecting `Aes128`; a schedule is at least 11 round
/// keys, 176 bytes, and bitsliced schedules have no plain round keys to search for). As a
/// control, a block still holding those round keys is freed under the same scan, which must
/// find them: that shows the check can fail.
pub fn key_schedule_wiped(engine: Engine, scanner: &ScanningAllocator) {
    scrub_stack();
    key_schedule_wiped_in_fresh_frame(engine, scanner);
}

/// Overwrites the next 64 KiB of stack below the caller with zeros.
///
/// Why: stack temporaries of earlier calls (the portable engine's schedule is built on the
/// stack by RustCrypto before it moves to the heap) must not be mistaken for what `Drop` left
/// behind. Scrubbing first and checking in a fresh frame makes the check measure exactly what
/// `Drop` is responsible for.
#[inline(never)]
fn scrub_stack() {
    let mut buf = [0u8; 64 * 1024];
    black_box(&mut buf);
}

#[inline(never)]
fn key_schedule_wiped_in_fresh_frame(engine: Engine, scanner: &ScanningAllocator) {
    const TOLERATED: usize = 16;
    let key = engine.key(&A1_KEY);
    // Sanity: the schedule works (NIST SP 800-38A F.1.1, first block).
    let mut block = *b"\x6b\xc1\xbe\xe2\x2e\x40\x9f\x96\xe9\x3d\x7e\x11\x73\x93\x17\x2a";
    key.encrypt_block(&mut block);
    same(
        engine,
        "zeroize check: encrypt",
        hex::encode(block).as_str(),
        "3ad77bb40d7a3660a89ecaf32466ef97",
    );
    let freed = |boxed: Box<dyn std::any::Any>| {
        scanner.arm(&[&A1_KEY, &A1_ROUND_KEY_10]);
        drop(boxed);
        let report = scanner.disarm();
        ensure(
            engine,
            "zeroize check: the scan saw the free (is it the global allocator?)",
            report.scanned >= 1,
        );
        report
    };

    // The real check: a normal drop wipes the schedule.
    let r = freed(Box::new(key));
    ensure(
        engine,
        format_args!("zeroize check: no round key freed by drop ({r:?})"),
        !r.any_hit(),
    );
    let n = r.max_nonzero;
    ensure(
        engine,
        format_args!("zeroize check: {n} bytes non-zero in a block freed by drop"),
        n <= TOLERATED,
    );

    // Control: a block that still holds round keys when freed is seen by the scan.
    let mut unwiped = [0u8; 64];
    unwiped[8..24].copy_from_slice(&A1_KEY);
    unwiped[40..56].copy_from_slice(&A1_ROUND_KEY_10);
    let r = freed(Box::new(unwiped));
    let seen = r.hits[0] >= 1 && r.hits[1] >= 1 && r.max_nonzero > TOLERATED;
    ensure(
        engine,
        format_args!("zeroize check control: the scan sees unwiped round keys ({r:?})"),
        seen,
    );
}
