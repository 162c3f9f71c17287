//! The engine conformance suite: what every AES engine of `hal` must do, written once against
//! [`hal::aes::Engine`] and run for every engine the CPU offers (`hal/tests/conformance.rs`).
//!
//! | group | checks |
//! |---|---|
//! | [`known_answers`] | FIPS-197 C.1 and B (the cipher over the A.1 key expansion); NIST SP 800-38A F.2.1/F.2.2 (CBC) and F.5.1/F.5.2 (CTR), through `Aes128` and through the CENC entry points |
//! | [`ctr()`] | CTR on 0..=300 bytes and large sizes at every offset of a block, counters around every batch boundary and the 2^64 wrap, runs split across calls |
//! | [`cbc()`] | CBC decryption on the same lengths, in one call, split, and block by block |
//! | [`cbc_patterns`] | CBC under every `crypt:skip` pattern (0:0, 1:9, 5:5, 10:0, …) on lengths across the strided and gathered batches, partial final blocks clear |
//! | [`ctr_patterns`] | CTR under every `crypt:skip` pattern and some beyond the `cens` range, on lengths whose encrypted blocks fill the keystream buffer several times, counters across the 2^64 wrap, runs split across calls, partial final blocks clear |
//! | [`round_trips`] | encryption then decryption, block and sample level; every scheme's samples equal the portable engine's |
//! | [`key_schedule_wiped`] | the zeroize check hook (needs the [`ScanningAllocator`]; not in [`run_all`]) |
//!
//! The expected values come from a textbook model written here on RustCrypto's `aes` block
//! cipher, independent of `hal`: a bug in code all engines share would escape a comparison
//! with the portable engine alone. Every failure panics with the engine's name and the case.
//! Test data comes from [`TestRng`] with fixed seeds.

use std::collections::HashMap;
use std::fmt::{Debug, Display};

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use hal::aes::{Aes128, Engine, EngineKind, BLOCK};
use hal::cenc::{decrypt_sample, encrypt_sample, Pattern, Scheme, Subsample};

use crate::alloc_scan::ScanningAllocator;
use crate::rng::TestRng;

/// FIPS-197 Appendix A.1 cipher key (also the key of NIST SP 800-38A's AES-128 examples).
const A1_KEY: [u8; 16] = *b"\x2b\x7e\x15\x16\x28\xae\xd2\xa6\xab\xf7\x15\x88\x09\xcf\x4f\x3c";
/// FIPS-197 Appendix A.1, round key 10 (w[40..44]) of [`A1_KEY`].
const A1_ROUND_KEY_10: [u8; 16] =
    *b"\xd0\x14\xf9\xa8\xc9\xee\x25\x89\xe1\x3f\x0c\xc8\xb6\x63\x0c\xa6";
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
    ctr_patterns(engine);
    round_trips(engine);
}

/// Fails the suite for `engine`, naming the case, unless `got == want`.
#[track_caller]
fn same<T: PartialEq + Debug>(engine: Engine, case: impl Display, got: T, want: T) {
    let name = engine.name();
    assert!(
        got == want,
        "engine `{name}` fails {case}\n   got: {got:?}\n  want: {want:?}"
    );
}

/// [`same`] for a run's output bytes (reporting the first differing block, not everything)
/// and the chaining value or counter it ends with.
#[track_caller]
fn same_run<S: PartialEq + Debug>(
    engine: Engine,
    case: impl Display,
    got: (&[u8], S),
    want: (&[u8], S),
) {
    if let Some(i) = got.0.iter().zip(want.0).position(|(g, w)| g != w) {
        let block = |b: &[u8]| hex::encode(&b[i - i % BLOCK..b.len().min(i - i % BLOCK + BLOCK)]);
        same(
            engine,
            format_args!("{case} (at byte {i})"),
            block(got.0),
            block(want.0),
        );
    }
    same(
        engine,
        format_args!("{case} (length)"),
        got.0.len(),
        want.0.len(),
    );
    same(engine, format_args!("{case} (state after)"), got.1, want.1);
}

/// The textbook model every engine is checked against: RustCrypto's block cipher and the
/// modes written out from NIST SP 800-38A and ISO/IEC 23001-7. Blocks go to the cipher in one
/// call (RustCrypto's software AES, used under qemu, is much faster on many at once).
struct Textbook(aes::Aes128);

impl Textbook {
    fn new(key: &[u8; 16]) -> Self {
        Textbook(aes::Aes128::new(GenericArray::from_slice(key)))
    }

    /// CTR with counter blocks `iv_hi || (ctr + i) mod 2^64`; a partial last block uses the
    /// first bytes of its keystream block and counts as one.
    fn ctr(&self, iv_hi: &[u8; 8], ctr: u64, data: &mut [u8]) -> u64 {
        let n = data.len().div_ceil(BLOCK) as u64;
        let counter_block = |i| [*iv_hi, ctr.wrapping_add(i).to_be_bytes()].concat();
        let mut ks: Vec<_> = (0..n)
            .map(|i| aes::Block::clone_from_slice(&counter_block(i)))
            .collect();
        self.0.encrypt_blocks(&mut ks);
        data.iter_mut()
            .zip(ks.iter().flatten())
            .for_each(|(d, k)| *d ^= k);
        ctr.wrapping_add(n)
    }

    /// CTR under a `crypt:skip` pattern (0:0 or n:0: every block): the encrypted whole
    /// blocks, in order, take the keystream of [`Textbook::ctr`] from `ctr`; skipped blocks and
    /// a partial last block are untouched. Returns the next counter.
    fn ctr_pattern(
        &self,
        iv_hi: &[u8; 8],
        ctr: u64,
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) -> u64 {
        let mut blocks = pattern_blocks(data, crypt, skip);
        let mut ks = vec![0u8; blocks.len() * BLOCK];
        let next = self.ctr(iv_hi, ctr, &mut ks);
        for (block, k) in blocks.iter_mut().zip(ks.chunks_exact(BLOCK)) {
            block.iter_mut().zip(k).for_each(|(b, k)| *b ^= k);
        }
        next
    }

    /// CBC decryption of the whole blocks under a `crypt:skip` pattern (0:0 or n:0: every
    /// block), one chain from `iv` through the encrypted blocks; returns the chain's end.
    fn cbc(&self, iv: [u8; 16], data: &mut [u8], crypt: usize, skip: usize) -> [u8; 16] {
        let mut blocks = pattern_blocks(data, crypt, skip);
        let mut chain = vec![aes::Block::from(iv)];
        chain.extend(blocks.iter().map(|b| aes::Block::clone_from_slice(b)));
        let mut pt = chain[1..].to_vec();
        self.0.decrypt_blocks(&mut pt);
        for ((block, p), c) in blocks.iter_mut().zip(&pt).zip(&chain) {
            block
                .iter_mut()
                .zip(p.iter().zip(c))
                .for_each(|(b, (p, c))| *b = p ^ c);
        }
        (*chain.last().unwrap()).into()
    }
}

/// The whole blocks of `data` a `crypt:skip` pattern encrypts, in order (0:0 and n:0: every
/// block); a partial last block is never one of them.
fn pattern_blocks(data: &mut [u8], crypt: usize, skip: usize) -> Vec<&mut [u8]> {
    // In u128, so that a `skip` near `usize::MAX` cannot overflow the period.
    let period = crypt as u128 + skip as u128;
    data.chunks_exact_mut(BLOCK)
        .enumerate()
        .filter(|(i, _)| crypt == 0 || skip == 0 || (*i as u128) % period < crypt as u128)
        .map(|(_, b)| b)
        .collect()
}

/// A sample description for `encrypt_sample` / `decrypt_sample`.
#[derive(Debug)]
struct Sample {
    scheme: Scheme,
    iv: Vec<u8>,
    pattern: Pattern,
    map: Vec<Subsample>,
}

impl Sample {
    /// Encrypts or decrypts a copy of `data`; the description must be valid.
    fn run(&self, encrypt: bool, key: &Aes128, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        let f = if encrypt {
            encrypt_sample
        } else {
            decrypt_sample
        };
        f(
            key,
            self.scheme,
            &self.iv,
            self.pattern,
            &self.map,
            &mut out,
        )
        .unwrap_or_else(|e| panic!("valid sample refused: {e}: {self:?}"));
        out
    }
}

fn sub(clear: u32, protected: u32) -> Subsample {
    Subsample { clear, protected }
}

/// FIPS-197 C.1 and B, NIST SP 800-38A F.2.1/F.2.2 (CBC) and F.5.1/F.5.2 (CTR).
///
/// CBC runs split in two calls (the chaining value carries on), and as `cbc1` samples (with
/// and without a subsample split) and `cbcs` 0:0; CTR runs as `ctr64_xor` (the counter
/// advances by 4) and as `cenc` samples with the 16-byte initial counter block as IV, once
/// with subsamples that split blocks (7 + 20 + 37 bytes: the keystream runs on).
pub fn known_answers(engine: Engine) {
    let mut count = 0;
    for line in VECTORS.lines().filter(|l| l.starts_with("vector ")) {
        count += 1;
        let f: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let hex = |k: &str| hex::decode(f[k].trim_start_matches('-')).unwrap();
        let (name, enc, key) = (
            f["name"],
            f["dir"] == "encrypt",
            engine.key(&hex("key").try_into().unwrap()),
        );
        let (iv, input, output) = (hex("iv"), hex("in"), hex("out"));
        let samples: Vec<(Scheme, Vec<Subsample>)> = match f["mode"] {
            "block" => {
                let mut b = input.clone().try_into().unwrap();
                if enc {
                    key.encrypt_block(&mut b);
                } else {
                    key.decrypt_block(&mut b);
                }
                same(engine, format_args!("{name} block"), &b[..], &output);
                vec![]
            }
            "cbc" => {
                let (mut data, mut chain) = (input.clone(), iv.clone().try_into().unwrap());
                let (a, b) = data.split_at_mut(if enc { 16 } else { 32 });
                for part in [a, b] {
                    if enc {
                        key.cbc_encrypt(&mut chain, part);
                    } else {
                        key.cbc_decrypt(&mut chain, part);
                    }
                }
                let last = if enc { &output[48..] } else { &input[48..] };
                same_run(
                    engine,
                    format_args!("{name} in two calls"),
                    (&data, &chain[..]),
                    (&output, last),
                );
                vec![
                    (Scheme::Cbc1, vec![]),
                    (Scheme::Cbc1, vec![sub(0, 32); 2]),
                    (Scheme::Cbcs, vec![]),
                ]
            }
            "ctr" => {
                let (iv_hi, lo) = iv.split_at(8);
                let lo = u64::from_be_bytes(lo.try_into().unwrap());
                let (mut data, mut ctr) = (input.clone(), lo);
                key.ctr64_xor(iv_hi.try_into().unwrap(), &mut ctr, &mut data);
                same_run(
                    engine,
                    format_args!("{name} ctr64_xor"),
                    (&data, ctr),
                    (&output, lo.wrapping_add(4)),
                );
                vec![
                    (Scheme::Cenc, vec![]),
                    (Scheme::Cenc, vec![sub(0, 7), sub(0, 20), sub(0, 37)]),
                ]
            }
            mode => panic!("vector file: unknown mode {mode}"),
        };
        for (scheme, map) in samples {
            let s = Sample {
                scheme,
                iv: iv.clone(),
                pattern: Pattern::default(),
                map,
            };
            same_run(
                engine,
                format_args!("{name} as {s:?}"),
                (&s.run(enc, &key, &input), ()),
                (&output, ()),
            );
        }
    }
    assert_eq!(count, 8, "vector file lost lines");
}

/// A uniform value below `n` as the type a case needs (every `n` here fits it).
fn below<T: TryFrom<u64, Error: Debug>>(rng: &mut TestRng, n: u64) -> T {
    T::try_from(rng.below(n)).unwrap()
}

/// Lengths 0..=300 bytes (every batch boundary of every engine, and every partial block)
/// and [`LARGE`], each with a random offset into its buffer (unaligned loads and stores).
fn lengths(rng: &mut TestRng) -> Vec<(usize, usize)> {
    (0..=300)
        .chain(LARGE)
        .map(|len| (len, below(rng, 16)))
        .collect()
}

/// CTR: every length with a random counter, then counters at and across the batch boundaries
/// and the 2^64 wrap (which must not carry into the IV) for 0..=40 blocks; runs split at
/// block boundaries continue the keystream.
pub fn ctr(engine: Engine) {
    let mut rng = TestRng::new(0xc7e_0001);
    let key = rng.array::<16>();
    let (k, model) = (engine.key(&key), Textbook::new(&key));
    let mut runs: Vec<(u64, usize, usize)> = lengths(&mut rng)
        .into_iter()
        .map(|(len, off)| (rng.next_u64(), off, len))
        .collect();
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
    runs.extend(
        starts
            .iter()
            .flat_map(|&s| (0..=40).map(move |b| (s, b % 3, b * BLOCK))),
    );
    for (start, offset, len) in runs {
        let iv_hi = rng.array::<8>();
        let mut got = rng.bytes(offset + len + 5);
        let mut want = got.clone();
        let mut ctr = start;
        k.ctr64_xor(&iv_hi, &mut ctr, &mut got[offset..][..len]);
        let want_ctr = model.ctr(&iv_hi, start, &mut want[offset..][..len]);
        let case = format_args!("ctr: {len} bytes at offset {offset} from counter {start:#x}");
        same_run(engine, case, (&got, ctr), (&want, want_ctr));
    }

    // Independent statement of the `cenc` rule: after counter 2^64 - 1 comes 0 with the same
    // IV half, so block 1 of a run from u64::MAX is block 0 of a run from 0.
    let iv_hi = [0xa5; 8];
    let (mut across, mut at_zero) = ([0u8; 2 * BLOCK], [0u8; BLOCK]);
    let mut ctr = u64::MAX;
    k.ctr64_xor(&iv_hi, &mut ctr, &mut across);
    k.ctr64_xor(&iv_hi, &mut 0, &mut at_zero);
    same_run(
        engine,
        "ctr wrap without carry into the IV",
        (&across[BLOCK..], ctr),
        (&at_zero, 1),
    );

    // Calls split at block boundaries are one keystream.
    let data = rng.bytes(37 * BLOCK + 3);
    let mut one = data.clone();
    let one_ctr = model.ctr(&iv_hi, u64::MAX - 9, &mut one);
    for piece in [BLOCK, 3 * BLOCK, 19 * BLOCK] {
        let (mut pieces, mut ctr) = (data.clone(), u64::MAX - 9);
        pieces
            .chunks_mut(piece)
            .for_each(|p| k.ctr64_xor(&iv_hi, &mut ctr, p));
        same_run(
            engine,
            format_args!("ctr in calls of {piece} bytes"),
            (&pieces, ctr),
            (&one, one_ctr),
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
        let mut want = ct.clone();
        let want_iv = model.cbc(iv0, &mut want[offset..][..len], 0, 0);
        let split = BLOCK * (1 + below::<usize>(&mut rng, len as u64 / 16 + 1));
        let pieces: &[usize] = if len <= 300 {
            &[len, split, BLOCK]
        } else {
            &[len]
        };
        for &piece in pieces {
            let (mut got, mut iv) = (ct.clone(), iv0);
            got[offset..][..len]
                .chunks_mut(piece.max(1))
                .for_each(|p| k.cbc_decrypt(&mut iv, p));
            let case = format_args!("cbc: {len} bytes at offset {offset} in calls of {piece}");
            same_run(engine, case, (&got, iv), (&want, want_iv));
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
            let p = crypt + skip;
            let batches = [
                8 * p + crypt.saturating_sub(1),
                16 * p,
                16 * p + 1,
                (17 * p).saturating_sub(1),
            ];
            let strided = 33 * p * usize::from(crypt == 1);
            for n in [0, 1, 2, 17, 40, 161, crypt, p, 2 * p + 1, strided]
                .into_iter()
                .chain(batches)
            {
                let len = n * BLOCK + below::<usize>(&mut rng, 16);
                let iv0 = rng.array::<16>();
                let mut got = rng.bytes(len);
                let mut want = got.clone();
                let mut iv = iv0;
                k.cbc_decrypt_pattern(&mut iv, &mut got, crypt, skip);
                let want_iv = model.cbc(iv0, &mut want, crypt, skip);
                let case = format_args!("cbc pattern {crypt}:{skip} on {len} bytes");
                same_run(engine, case, (&got, iv), (&want, want_iv));
            }
        }
    }

    // Independent of the model: with 1:9 only blocks 0, 10 and 20 change, block 10 is
    // decrypted with block 0's ciphertext as chaining value, and the chain ends at block 20.
    let data = rng.bytes(25 * BLOCK);
    let (mut got, mut iv) = (data.clone(), [0x11; 16]);
    k.cbc_decrypt_pattern(&mut iv, &mut got, 1, 9);
    let changed: Vec<bool> = got
        .chunks(BLOCK)
        .zip(data.chunks(BLOCK))
        .map(|(g, d)| g != d)
        .collect();
    same(
        engine,
        "cbc pattern 1:9: changed blocks",
        changed,
        (0..25).map(|i| i % 10 == 0).collect(),
    );
    let mut b10 = data[10 * BLOCK..11 * BLOCK].to_vec();
    model
        .0
        .decrypt_block(GenericArray::from_mut_slice(&mut b10));
    b10.iter_mut()
        .zip(&data[..BLOCK])
        .for_each(|(p, c)| *p ^= c);
    let (got10, want_iv) = (&got[10 * BLOCK..11 * BLOCK], &data[20 * BLOCK..21 * BLOCK]);
    same_run(
        engine,
        "cbc pattern 1:9: block 10",
        (got10, &iv[..]),
        (&b10, want_iv),
    );
}

/// CTR under every `crypt:skip` pattern with values 0..=15 (the `cens` range; 0:0 and n:0
/// mean every block) and a few beyond it (runs longer than the keystream buffer, a skip that
/// saturates the period), on lengths holding 0..=2, `crypt`, 33, 63..=65 and 129 encrypted
/// blocks (around the drivers' 32- and 64-block buffers and batches), half of them with a few
/// more blocks, each with a random partial final block that must stay clear; counters often just
/// below the 2^64 wrap, so that it falls inside a batch; each run also split into two calls
/// at a random block (the second call restarts the pattern, the counter runs on). Then a
/// direct check that 1:9 takes consecutive counter blocks for blocks 0, 10 and 20.
pub fn ctr_patterns(engine: Engine) {
    let mut rng = TestRng::new(0xc7e_0002);
    let key = rng.array::<16>();
    let (k, model) = (engine.key(&key), Textbook::new(&key));
    let mut patterns: Vec<(usize, usize)> = (0..=15)
        .flat_map(|crypt| (0..=15).map(move |skip| (crypt, skip)))
        .collect();
    patterns.extend([
        (64, 1),
        (65, 2),
        (100, 3),
        (1, usize::MAX),
        (3, usize::MAX - 1),
    ]);
    for (crypt, skip) in patterns {
        let period = crypt.saturating_add(skip);
        // Whole blocks holding `m` encrypted blocks (the last period cut short after them).
        let holding = |m: usize| match (crypt, skip) {
            (0, _) | (_, 0) => m,
            _ => (m / crypt).saturating_mul(period).saturating_add(m % crypt),
        };
        let mut counts = vec![0, 1, 2, 33, 63, 64, 65, 129];
        counts.push(crypt);
        for n in counts.into_iter().map(holding).filter(|&n| n <= 4096) {
            // Half of the lengths get up to 15 more blocks, so that samples also end inside
            // or after the skipped blocks of a period.
            let n = n + usize::from(rng.below(2) == 0) * skip.min(15);
            let len = n * BLOCK + below::<usize>(&mut rng, 16);
            let iv_hi = rng.array::<8>();
            let start = match rng.below(3) {
                0 => rng.next_u64(),
                _ => u64::MAX - rng.below(80),
            };
            let data = rng.bytes(len);
            let mut want = data.clone();
            let want_ctr = model.ctr_pattern(&iv_hi, start, &mut want, crypt, skip);
            let (mut got, mut ctr) = (data.clone(), start);
            k.ctr64_xor_pattern(&iv_hi, &mut ctr, &mut got, crypt, skip);
            let case = format_args!("ctr pattern {crypt}:{skip} on {len} bytes from {start:#x}");
            same_run(engine, case, (&got, ctr), (&want, want_ctr));

            let split = BLOCK * below::<usize>(&mut rng, n as u64 + 1);
            let (mut want, mut got) = (data.clone(), data);
            let (w1, w2) = want.split_at_mut(split);
            let mid = model.ctr_pattern(&iv_hi, start, w1, crypt, skip);
            let want_ctr = model.ctr_pattern(&iv_hi, mid, w2, crypt, skip);
            let (g1, g2) = got.split_at_mut(split);
            let mut ctr = start;
            k.ctr64_xor_pattern(&iv_hi, &mut ctr, g1, crypt, skip);
            k.ctr64_xor_pattern(&iv_hi, &mut ctr, g2, crypt, skip);
            let case = format_args!(
                "ctr pattern {crypt}:{skip} on {len} bytes from {start:#x}, split at {split}"
            );
            same_run(engine, case, (&got, ctr), (&want, want_ctr));
        }
    }

    // Independent of the model: with 1:9 on zeros, only blocks 0, 10 and 20 change, and they
    // become the encryptions of the counter blocks ctr, ctr + 1 (the 2^64 wrap: 0, no carry
    // into the IV half) and ctr + 2; the counter advances by 3.
    let iv_hi = [0x5a; 8];
    let mut got = vec![0u8; 25 * BLOCK + 7];
    let mut ctr = u64::MAX;
    k.ctr64_xor_pattern(&iv_hi, &mut ctr, &mut got, 1, 9);
    let mut want = vec![0u8; got.len()];
    for (i, c) in [(0, u64::MAX), (10, 0), (20, 1)] {
        let mut b = GenericArray::clone_from_slice(&[iv_hi, c.to_be_bytes()].concat());
        model.0.encrypt_block(&mut b);
        want[i * BLOCK..][..BLOCK].copy_from_slice(&b);
    }
    same_run(engine, "ctr pattern 1:9 on zeros", (&got, ctr), (&want, 2));
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
        let (mut data, mut enc_iv, mut dec_iv) = (plain.clone(), iv0, iv0);
        k.cbc_encrypt(&mut enc_iv, &mut data[offset..]);
        k.cbc_decrypt(&mut dec_iv, &mut data[offset..]);
        let case = format_args!("cbc encrypt then decrypt: {len} bytes at offset {offset}");
        same_run(engine, case, (&data, dec_iv), (&plain, enc_iv));
    }

    let portable = Engine::new(EngineKind::Portable).unwrap().key(&key);
    for i in 0..200 {
        let (s, plain) = random_sample(&mut rng);
        let ct = s.run(true, &k, &plain);
        let pairs = [
            (
                "encrypt vs portable",
                ct.clone(),
                s.run(true, &portable, &plain),
            ),
            (
                "decrypt vs portable",
                s.run(false, &k, &plain),
                s.run(false, &portable, &plain),
            ),
            ("round trip", s.run(false, &k, &ct), plain),
        ];
        for (what, got, want) in pairs {
            same_run(
                engine,
                format_args!("sample {i}, {what}: {s:?}"),
                (&got, ()),
                (&want, ()),
            );
        }
    }
}

/// A random valid sample description and its data: 8- or 16-byte CTR IVs (often just below
/// the counter wrap), patterns 1:9, 0:0 or random, and either no subsample map (0..3000
/// bytes) or 1..8 entries of up to 200 clear and 700 protected bytes.
fn random_sample(rng: &mut TestRng) -> (Sample, Vec<u8>) {
    let scheme = [Scheme::Cenc, Scheme::Cens, Scheme::Cbc1, Scheme::Cbcs][below::<usize>(rng, 4)];
    let ctr = matches!(scheme, Scheme::Cenc | Scheme::Cens);
    let iv = match rng.below(3) {
        0 if ctr => rng.bytes(8),
        1 if ctr => [
            rng.bytes(8),
            (u64::MAX - rng.below(300)).to_be_bytes().to_vec(),
        ]
        .concat(),
        _ => rng.bytes(16),
    };
    let pattern = match rng.below(3) {
        _ if matches!(scheme, Scheme::Cenc | Scheme::Cbc1) => Pattern::default(),
        0 => Pattern::default(),
        1 => Pattern { crypt: 1, skip: 9 },
        _ => Pattern {
            crypt: 1 + below::<u8>(rng, 15),
            skip: below(rng, 16),
        },
    };
    let entries = if rng.below(2) == 0 {
        0
    } else {
        1 + rng.below(7)
    };
    let map: Vec<Subsample> = (0..entries)
        .map(|_| sub(below(rng, 200), below(rng, 700)))
        .collect();
    let len = match map
        .iter()
        .map(|s| u64::from(s.clear + s.protected))
        .sum::<u64>()
    {
        0 if map.is_empty() => rng.below(3000),
        n => n,
    };
    let data = rng.bytes(usize::try_from(len).unwrap());
    (
        Sample {
            scheme,
            iv,
            pattern,
            map,
        },
        data,
    )
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
    std::hint::black_box(&mut [0u8; 64 * 1024]);
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
        hex::encode(block),
        "3ad77bb40d7a3660a89ecaf32466ef97".into(),
    );
    let freed = |boxed: Box<dyn std::any::Any>| {
        scanner.arm(&[&A1_KEY, &A1_ROUND_KEY_10]);
        drop(boxed);
        let r = scanner.disarm();
        same(
            engine,
            "zeroize check: the scan saw the free (is it the global allocator?)",
            r.scanned > 0,
            true,
        );
        (r.hits[..2].to_vec(), r.max_nonzero > TOLERATED)
    };
    let what = "(blocks with the key, with round key 10; more than 16 bytes non-zero in one)";
    // The real check: a normal drop wipes the schedule.
    let r = freed(Box::new(key));
    same(
        engine,
        format_args!("zeroize check {what} after drop"),
        r,
        (vec![0, 0], false),
    );
    // Control: a block that still holds round keys when freed is seen by the scan.
    let mut unwiped = [0u8; 64];
    unwiped[8..24].copy_from_slice(&A1_KEY);
    unwiped[40..56].copy_from_slice(&A1_ROUND_KEY_10);
    let r = freed(Box::new(unwiped));
    same(
        engine,
        format_args!("zeroize check control {what}"),
        r,
        (vec![1, 1], true),
    );
}
