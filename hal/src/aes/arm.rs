//! aarch64 engine: ARMv8 Cryptography Extensions.
//!
//! `AESE k` is AddRoundKey(k) → ShiftRows → SubBytes and `AESMC` is MixColumns, so a FIPS-197
//! §5.1 encryption is `AESE k0; AESMC … AESE k8; AESMC; AESE k9; EOR k10`. Decryption uses the
//! equivalent inverse cipher (FIPS-197 §5.3.5): `AESD`/`AESIMC` with round keys 1..=9 passed
//! through InvMixColumns once, at key expansion.
//!
//! `AESE`/`AESD` have a latency of several cycles but pipeline, so the kernels work on
//! [`LANES`] independent blocks per round (CBC decryption is parallel because every plaintext
//! block needs only its own and the previous ciphertext block, NIST SP 800-38A §6.2).
//!
//! Every kernel needs the `aes` and `neon` target features; a [`RoundKeys`] value is only ever
//! built after [`available`] confirmed them, which is what the `// SAFETY:` comments rely on.
#![allow(unsafe_code)]
// Exempt from the crate's "never panics on input" lints: kernels only ever see engine-internal
// lengths (whole blocks, strides, key-schedule indices) that the batch driver has validated,
// and index fixed-size arrays by construction.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use core::arch::aarch64::{
    uint8x16_t, uint8x8_t, vaesdq_u8, vaeseq_u8, vaesimcq_u8, vaesmcq_u8, vcombine_u8, vcreate_u8,
    vdupq_n_u8, veorq_u8, vld1_u8, vld1q_u8, vrev64_u8, vst1q_u8,
};

use zeroize::Zeroize;

use super::batch::schedule_kernels;
use super::{Block, Schedule};

/// AES-128 rounds (FIPS-197 §5, Nr = 10); the schedule has `ROUNDS + 1` round keys.
const ROUNDS: usize = 10;

/// Blocks per batch.
pub(crate) const LANES: usize = 8;

/// Round constants of the AES-128 key expansion (FIPS-197 §5.2, `Rcon[i]` first bytes).
const RCON: [u8; ROUNDS] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

#[cfg(not(target_os = "none"))]
cpufeatures::new!(aes_detect, "aes");

/// Whether the ARMv8 AES instructions may be used.
///
/// With an operating system, `cpufeatures` asks it (`AT_HWCAP` on Linux). On bare metal
/// (`target_os = "none"`) there is nobody to ask, so the choice is made at build time: an
/// integrator whose CPU has the extension builds with `-C target-feature=+aes`.
pub(crate) fn available() -> bool {
    #[cfg(not(target_os = "none"))]
    {
        cfg!(target_feature = "neon") && aes_detect::get()
    }
    #[cfg(target_os = "none")]
    {
        cfg!(all(target_feature = "aes", target_feature = "neon"))
    }
}

/// The schedule in memory byte order (loaded into registers per batch); holding one proves
/// that `available()` returned true.
pub(crate) type RoundKeys = Schedule<Block>;

impl RoundKeys {
    /// An all-zero schedule, to be expanded in place by [`RoundKeys::expand`]; `None` when
    /// the CPU lacks the AES instructions.
    pub(crate) fn zeroed() -> Option<RoundKeys> {
        available().then(|| Schedule::filled([0; 16]))
    }

    /// Expands `key` into `self`, in place, so the schedule is never moved or copied.
    pub(crate) fn expand(&mut self, key: &[u8; 16]) {
        // SAFETY: (1): `self` exists, so `available()` confirmed `aes` and `neon`.
        unsafe { expand_key(key, &mut self.enc, &mut self.dec) };
    }
}

schedule_kernels! {
    // SAFETY: (1) of every kernel: a `RoundKeys` exists only after `available()` confirmed
    // `aes` and `neon`.
    unsafe impl Kernels<LANES> for RoundKeys {
        scope: with_armce,
        block: block1,
        ctr: ctr8,
        cbc: |dk, iv, batch| cbc8_strided(dk, iv, batch, 1),
        cbc_strided: cbc8_strided,
    }
}

// ---------------------------------------------------------------------------------------------
// Safe helpers usable only from code compiled with the same target features.

#[target_feature(enable = "neon")]
#[inline]
fn load(block: &Block) -> uint8x16_t {
    // SAFETY: `block` is 16 readable bytes; `vld1q_u8` has no alignment requirement.
    unsafe { vld1q_u8(block.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn store(block: &mut Block, v: uint8x16_t) {
    // SAFETY: `block` is 16 writable bytes, borrowed exclusively; no alignment requirement.
    unsafe { vst1q_u8(block.as_mut_ptr(), v) }
}

#[target_feature(enable = "neon")]
#[inline]
fn load_keys(keys: &[Block; ROUNDS + 1]) -> [uint8x16_t; ROUNDS + 1] {
    let mut rk = [vdupq_n_u8(0); ROUNDS + 1];
    for (r, k) in rk.iter_mut().zip(keys.iter()) {
        *r = load(k);
    }
    rk
}

/// Counter block `iv_hi || big-endian(ctr)` (ISO/IEC 23001-7 §10.1).
#[target_feature(enable = "neon")]
#[inline]
fn counter_block(iv_hi: uint8x8_t, ctr: u64) -> uint8x16_t {
    // `vcreate_u8` puts the least significant byte in lane 0; reversing the lanes gives the
    // big-endian byte order of the counter half.
    vcombine_u8(iv_hi, vrev64_u8(vcreate_u8(ctr)))
}

/// The ten rounds over every block of `b`, round by round so the pipeline stays full:
/// encryption (`AESE`+`AESMC`) with `rk`, or the equivalent inverse cipher (`AESD`+`AESIMC`)
/// with the decryption schedule.
#[target_feature(enable = "aes,neon")]
#[inline]
fn rounds<const L: usize>(rk: &[uint8x16_t; ROUNDS + 1], b: &mut [uint8x16_t; L], encrypt: bool) {
    for k in &rk[..ROUNDS - 1] {
        for s in b.iter_mut() {
            *s = if encrypt {
                vaesmcq_u8(vaeseq_u8(*s, *k))
            } else {
                vaesimcq_u8(vaesdq_u8(*s, *k))
            };
        }
    }
    for s in b.iter_mut() {
        let last = if encrypt {
            vaeseq_u8(*s, rk[ROUNDS - 1])
        } else {
            vaesdq_u8(*s, rk[ROUNDS - 1])
        };
        *s = veorq_u8(last, rk[ROUNDS]);
    }
}

/// SubWord (FIPS-197 §5.2) with the S-box in hardware: the word is repeated in all four
/// columns, so ShiftRows (part of `AESE`) leaves it unchanged and `AESE` with a zero round key
/// is SubBytes alone. Avoids table look-ups indexed by key bytes.
#[target_feature(enable = "aes,neon")]
#[inline]
fn sub_word(word: [u8; 4]) -> [u8; 4] {
    let mut buf = [0u8; 16];
    for col in buf.chunks_exact_mut(4) {
        col.copy_from_slice(&word);
    }
    let v = vaeseq_u8(load(&buf), vdupq_n_u8(0));
    store(&mut buf, v);
    let out = [buf[0], buf[1], buf[2], buf[3]];
    buf.zeroize();
    out
}

/// One step of the AES-128 key expansion (FIPS-197 §5.2): round key `r + 1` from round key
/// `r`, with `rcon = Rcon[r + 1]`.
#[target_feature(enable = "aes,neon")]
#[inline]
fn next_round_key(prev: &Block, rcon: u8) -> Block {
    // temp = SubWord(RotWord(w[i-1])) ^ Rcon, with w[i-1] the last word of `prev`.
    let mut temp = sub_word([prev[13], prev[14], prev[15], prev[12]]);
    temp[0] ^= rcon;
    let mut next = [0u8; 16];
    // w[i] = w[i-4] ^ w[i-1], where the first w[i-1] is `temp`.
    for (i, byte) in next.iter_mut().enumerate() {
        let back = if i < 4 { temp[i] } else { 0 };
        *byte = prev[i] ^ back;
    }
    for i in 4..16 {
        next[i] ^= next[i - 4];
    }
    temp.zeroize();
    next
}

// ---------------------------------------------------------------------------------------------
// Kernels entered from the `Kernels` impl.

/// Runs `f` compiled with `aes` and `neon`, so a batch driver's loop and these kernels inline
/// into one function.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
#[inline]
unsafe fn with_armce(f: impl FnOnce()) {
    f()
}

/// Expands `key` into the encryption schedule and the decryption schedule of the equivalent
/// inverse cipher (round keys in reverse order, keys 1..=9 through InvMixColumns).
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn expand_key(key: &[u8; 16], enc: &mut [Block; ROUNDS + 1], dec: &mut [Block; ROUNDS + 1]) {
    let mut rk = *key;
    enc[0] = rk;
    for (slot, &rcon) in enc.iter_mut().skip(1).zip(RCON.iter()) {
        rk = next_round_key(&rk, rcon);
        *slot = rk;
    }
    rk.zeroize();

    for (d, e) in dec.iter_mut().zip(enc.iter().rev()) {
        *d = *e;
    }
    for d in dec.iter_mut().take(ROUNDS).skip(1) {
        let v = vaesimcq_u8(load(d));
        store(d, v);
    }
}

/// Encrypts (`encrypt`, with the encryption schedule) or decrypts (with the decryption
/// schedule) one block.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
#[inline]
unsafe fn block1(keys: &[Block; ROUNDS + 1], block: &mut Block, encrypt: bool) {
    let mut b = [load(block)];
    rounds(&load_keys(keys), &mut b, encrypt);
    store(block, b[0]);
}

/// XORs the keystream of the [`LANES`] counter blocks `iv_hi || (c + i) mod 2^64` into
/// `batch`.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
#[inline]
unsafe fn ctr8(enc: &[Block; ROUNDS + 1], iv_hi: &[u8; 8], c: u64, batch: &mut [Block; LANES]) {
    // SAFETY: `iv_hi` is 8 readable bytes; `vld1_u8` has no alignment requirement.
    let hi = unsafe { vld1_u8(iv_hi.as_ptr()) };
    let mut ks = [vdupq_n_u8(0); LANES];
    for (k, i) in ks.iter_mut().zip(0u64..) {
        *k = counter_block(hi, c.wrapping_add(i));
    }
    rounds(&load_keys(enc), &mut ks, true);
    for (block, k) in batch.iter_mut().zip(ks) {
        store(block, veorq_u8(load(block), k));
    }
}

/// CBC-decrypts blocks `0, stride, …, (LANES - 1) * stride` of `data` in place as consecutive
/// links of one chain (`iv` becomes the last of them). Stride 1 is a contiguous batch; larger
/// strides serve `cbcs`-style 1:`skip` patterns.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
/// 2. `stride >= 1` and block `(LANES - 1) * stride` is in `data` (indexing panics otherwise).
#[target_feature(enable = "aes,neon")]
#[inline]
unsafe fn cbc8_strided(
    dec: &[Block; ROUNDS + 1],
    iv: &mut Block,
    data: &mut [Block],
    stride: usize,
) {
    let mut ct = [vdupq_n_u8(0); LANES];
    for (i, c) in ct.iter_mut().enumerate() {
        *c = load(&data[i * stride]);
    }
    let mut pt = ct;
    rounds(&load_keys(dec), &mut pt, false);
    let mut prev = load(iv);
    for (i, (p, c)) in pt.iter().zip(ct).enumerate() {
        store(&mut data[i * stride], veorq_u8(*p, prev));
        prev = c;
    }
    store(iv, prev);
}
