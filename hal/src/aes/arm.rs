//! aarch64 engine: ARMv8 Cryptography Extensions.
//!
//! `AESE k` is AddRoundKey(k) → ShiftRows → SubBytes and `AESMC` is MixColumns, so a FIPS-197
//! §5.1 encryption is `AESE k0; AESMC … AESE k8; AESMC; AESE k9; EOR k10`. Decryption uses the
//! equivalent inverse cipher (FIPS-197 §5.3.5): `AESD`/`AESIMC` with round keys 1..=9 passed
//! through InvMixColumns once, at key expansion.
//!
//! `AESE`/`AESD` have a latency of several cycles but pipeline, so CTR and CBC decryption work
//! on [`LANES`] independent blocks per round. CBC decryption is parallel because every
//! plaintext block needs only its own and the previous ciphertext block (NIST SP 800-38A §6.2);
//! for `cbcs` patterns the encrypted blocks of several pattern periods are gathered into one
//! batch.
//!
//! Every `unsafe fn` here needs the `aes` and `neon` target features; a [`RoundKeys`] value is
//! only ever built after [`available`] confirmed them, which is what the `// SAFETY:` comments
//! rely on.
#![allow(unsafe_code)]

use core::arch::aarch64::{
    uint8x16_t, uint8x8_t, vaesdq_u8, vaeseq_u8, vaesimcq_u8, vaesmcq_u8, vcombine_u8, vcreate_u8,
    vdupq_n_u8, veorq_u8, vld1_u8, vld1q_u8, vrev64_u8, vst1q_u8,
};

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{Backend, BLOCK};

/// AES-128 rounds (FIPS-197 §5, Nr = 10); the schedule has `ROUNDS + 1` round keys.
const ROUNDS: usize = 10;

/// Blocks kept in flight by the CTR and CBC-decrypt loops.
const LANES: usize = 8;

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

/// The AES-128 encryption schedule and the equivalent-inverse-cipher decryption schedule.
/// Both are wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct RoundKeys {
    enc: [[u8; BLOCK]; ROUNDS + 1],
    dec: [[u8; BLOCK]; ROUNDS + 1],
}

impl RoundKeys {
    /// An all-zero schedule, to be expanded in place by [`RoundKeys::expand`]; `None` when
    /// the CPU lacks the AES instructions. This is the only constructor, so holding a
    /// `RoundKeys` proves that `available()` returned true.
    pub(crate) fn zeroed() -> Option<RoundKeys> {
        if !available() {
            return None;
        }
        Some(RoundKeys {
            enc: [[0; BLOCK]; ROUNDS + 1],
            dec: [[0; BLOCK]; ROUNDS + 1],
        })
    }

    /// Expands `key` into `self`, in place, so the schedule is never moved or copied.
    pub(crate) fn expand(&mut self, key: &[u8; 16]) {
        // SAFETY: (1) `self` exists, so `available()` confirmed the `aes` and `neon` features.
        unsafe { expand_key(key, &mut self.enc, &mut self.dec) };
    }
}

impl Backend for RoundKeys {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after `available()` returned true.
        unsafe { encrypt_one(&self.enc, block) }
    }

    fn decrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after `available()` returned true.
        unsafe { decrypt_one(&self.dec, block) }
    }

    fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after `available()` returned true.
        unsafe { ctr64_xor(&self.enc, iv_hi, ctr, data) }
    }

    fn cbc_decrypt_blocks(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after `available()` returned true.
        unsafe { cbc_decrypt(&self.dec, iv, data) }
    }

    fn cbc_decrypt_pattern_blocks(
        &self,
        iv: &mut [u8; 16],
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after `available()` returned true.
        unsafe { cbc_decrypt_pattern(&self.dec, iv, data, crypt, skip) }
    }
}

// ---------------------------------------------------------------------------------------------
// Safe helpers usable only from code compiled with the same target features.

#[target_feature(enable = "neon")]
#[inline]
fn load(block: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `block` is 16 readable bytes; `vld1q_u8` has no alignment requirement.
    unsafe { vld1q_u8(block.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn load8(half: &[u8; 8]) -> uint8x8_t {
    // SAFETY: `half` is 8 readable bytes; `vld1_u8` has no alignment requirement.
    unsafe { vld1_u8(half.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn store(block: &mut [u8; 16], v: uint8x16_t) {
    // SAFETY: `block` is 16 writable bytes, borrowed exclusively; no alignment requirement.
    unsafe { vst1q_u8(block.as_mut_ptr(), v) }
}

#[target_feature(enable = "neon")]
#[inline]
fn load_keys(keys: &[[u8; BLOCK]; ROUNDS + 1]) -> [uint8x16_t; ROUNDS + 1] {
    let mut rk = [vdupq_n_u8(0); ROUNDS + 1];
    for (r, k) in rk.iter_mut().zip(keys.iter()) {
        *r = load(k);
    }
    rk
}

/// The whole 16-byte blocks of `data` as arrays (a trailing partial block is not yielded).
fn blocks(data: &[u8]) -> impl Iterator<Item = &[u8; 16]> {
    data.chunks_exact(BLOCK).filter_map(|c| c.try_into().ok())
}

/// Mutable variant of [`blocks`].
fn blocks_mut(data: &mut [u8]) -> impl Iterator<Item = &mut [u8; 16]> {
    data.chunks_exact_mut(BLOCK)
        .filter_map(|c| c.try_into().ok())
}

/// Block number `index` of `data`, if it lies wholly inside.
fn block_at(data: &[u8], index: usize) -> Option<&[u8; 16]> {
    let start = index.checked_mul(BLOCK)?;
    data.get(start..start.checked_add(BLOCK)?)?.try_into().ok()
}

/// Mutable variant of [`block_at`].
fn block_at_mut(data: &mut [u8], index: usize) -> Option<&mut [u8; 16]> {
    let start = index.checked_mul(BLOCK)?;
    data.get_mut(start..start.checked_add(BLOCK)?)?
        .try_into()
        .ok()
}

/// Counter block `iv_hi || big-endian(ctr)` (ISO/IEC 23001-7 §10.1).
#[target_feature(enable = "neon")]
#[inline]
fn counter_block(iv_hi: uint8x8_t, ctr: u64) -> uint8x16_t {
    // `vcreate_u8` puts the least significant byte in lane 0; reversing the lanes gives the
    // big-endian byte order of the counter half.
    vcombine_u8(iv_hi, vrev64_u8(vcreate_u8(ctr)))
}

#[target_feature(enable = "aes,neon")]
#[inline]
fn encrypt1(rk: &[uint8x16_t; ROUNDS + 1], b: uint8x16_t) -> uint8x16_t {
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10] = *rk;
    let mut s = b;
    for k in [k0, k1, k2, k3, k4, k5, k6, k7, k8] {
        s = vaesmcq_u8(vaeseq_u8(s, k));
    }
    veorq_u8(vaeseq_u8(s, k9), k10)
}

#[target_feature(enable = "aes,neon")]
#[inline]
fn decrypt1(dk: &[uint8x16_t; ROUNDS + 1], b: uint8x16_t) -> uint8x16_t {
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10] = *dk;
    let mut s = b;
    for k in [k0, k1, k2, k3, k4, k5, k6, k7, k8] {
        s = vaesimcq_u8(vaesdq_u8(s, k));
    }
    veorq_u8(vaesdq_u8(s, k9), k10)
}

/// Encrypts [`LANES`] independent blocks, round by round so the pipeline stays full.
#[target_feature(enable = "aes,neon")]
#[inline]
fn encrypt8(rk: &[uint8x16_t; ROUNDS + 1], b: &mut [uint8x16_t; LANES]) {
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10] = *rk;
    for k in [k0, k1, k2, k3, k4, k5, k6, k7, k8] {
        for s in b.iter_mut() {
            *s = vaesmcq_u8(vaeseq_u8(*s, k));
        }
    }
    for s in b.iter_mut() {
        *s = veorq_u8(vaeseq_u8(*s, k9), k10);
    }
}

/// Decrypts [`LANES`] independent blocks (equivalent inverse cipher).
#[target_feature(enable = "aes,neon")]
#[inline]
fn decrypt8(dk: &[uint8x16_t; ROUNDS + 1], b: &mut [uint8x16_t; LANES]) {
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10] = *dk;
    for k in [k0, k1, k2, k3, k4, k5, k6, k7, k8] {
        for s in b.iter_mut() {
            *s = vaesimcq_u8(vaesdq_u8(*s, k));
        }
    }
    for s in b.iter_mut() {
        *s = veorq_u8(vaesdq_u8(*s, k9), k10);
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
fn next_round_key(prev: &[u8; 16], rcon: u8) -> [u8; 16] {
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
// Kernels entered from the `Backend` impl.

/// Expands `key` into the encryption schedule and the decryption schedule of the equivalent
/// inverse cipher (round keys in reverse order, keys 1..=9 through InvMixColumns).
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn expand_key(
    key: &[u8; 16],
    enc: &mut [[u8; BLOCK]; ROUNDS + 1],
    dec: &mut [[u8; BLOCK]; ROUNDS + 1],
) {
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

/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn encrypt_one(enc: &[[u8; BLOCK]; ROUNDS + 1], block: &mut [u8; 16]) {
    let rk = load_keys(enc);
    store(block, encrypt1(&rk, load(block)));
}

/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn decrypt_one(dec: &[[u8; BLOCK]; ROUNDS + 1], block: &mut [u8; 16]) {
    let dk = load_keys(dec);
    store(block, decrypt1(&dk, load(block)));
}

/// CTR with a 64-bit big-endian block counter that wraps without carrying into `iv_hi`.
/// Works on whole blocks; a trailing partial block of `data` is ignored.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn ctr64_xor(
    enc: &[[u8; BLOCK]; ROUNDS + 1],
    iv_hi: &[u8; 8],
    ctr: &mut u64,
    data: &mut [u8],
) {
    let rk = load_keys(enc);
    let hi = load8(iv_hi);
    for chunk in data.chunks_mut(LANES * BLOCK) {
        // A short last chunk still computes LANES keystream blocks; only the used ones count.
        let mut ks = [vdupq_n_u8(0); LANES];
        let mut c = *ctr;
        for k in ks.iter_mut() {
            *k = counter_block(hi, c);
            c = c.wrapping_add(1);
        }
        encrypt8(&rk, &mut ks);
        for (block, k) in blocks_mut(chunk).zip(ks.iter()) {
            store(block, veorq_u8(load(block), *k));
            *ctr = ctr.wrapping_add(1);
        }
    }
}

/// CBC decryption of the whole blocks of `data` (NIST SP 800-38A §6.2), [`LANES`] at a time.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn cbc_decrypt(dec: &[[u8; BLOCK]; ROUNDS + 1], iv: &mut [u8; 16], data: &mut [u8]) {
    let dk = load_keys(dec);
    let mut prev = load(iv);
    for chunk in data.chunks_mut(LANES * BLOCK) {
        let mut ct = [vdupq_n_u8(0); LANES];
        for (c, block) in ct.iter_mut().zip(blocks(chunk)) {
            *c = load(block);
        }
        let mut pt = ct;
        decrypt8(&dk, &mut pt);
        for ((block, p), c) in blocks_mut(chunk).zip(pt.iter()).zip(ct.iter()) {
            store(block, veorq_u8(*p, prev));
            prev = *c;
        }
    }
    store(iv, prev);
}

/// CBC decryption under a `crypt:skip` block pattern (ISO/IEC 23001-7 §10.4.2): the encrypted
/// blocks form one chain across periods, so they are gathered [`LANES`] at a time (a `cbcs`
/// 1:9 pattern gathers from eight periods) and decrypted together.
///
/// # Safety
///
/// 1. The CPU must support the `aes` and `neon` target features.
#[target_feature(enable = "aes,neon")]
unsafe fn cbc_decrypt_pattern(
    dec: &[[u8; BLOCK]; ROUNDS + 1],
    iv: &mut [u8; 16],
    data: &mut [u8],
    crypt: usize,
    skip: usize,
) {
    let dk = load_keys(dec);
    let mut prev = load(iv);
    let total = data.len() / BLOCK;
    let period = crypt.saturating_add(skip).max(1);
    let mut batch = [0usize; LANES];
    let mut used = 0usize;
    let mut start = 0usize;
    while start < total {
        // The last period may hold fewer than `crypt` whole blocks: all of them are encrypted.
        let end = start.saturating_add(crypt).min(total);
        for index in start..end {
            if let Some(slot) = batch.get_mut(used) {
                *slot = index;
                used += 1;
            }
            if used == LANES {
                prev = cbc_decrypt_gathered(&dk, data, &batch, prev);
                used = 0;
            }
        }
        start = start.saturating_add(period);
    }
    if let Some(rest) = batch.get(..used) {
        if !rest.is_empty() {
            prev = cbc_decrypt_gathered(&dk, data, rest, prev);
        }
    }
    store(iv, prev);
}

/// Decrypts the blocks numbered `indices` (at most [`LANES`], in chain order) as one stretch of
/// a CBC chain that so far ended with ciphertext `prev`; returns the new chain end.
#[target_feature(enable = "aes,neon")]
#[inline]
fn cbc_decrypt_gathered(
    dk: &[uint8x16_t; ROUNDS + 1],
    data: &mut [u8],
    indices: &[usize],
    mut prev: uint8x16_t,
) -> uint8x16_t {
    let mut ct = [vdupq_n_u8(0); LANES];
    for (c, &index) in ct.iter_mut().zip(indices) {
        if let Some(block) = block_at(data, index) {
            *c = load(block);
        }
    }
    let mut pt = ct;
    decrypt8(dk, &mut pt);
    for ((&index, p), c) in indices.iter().zip(pt.iter()).zip(ct.iter()) {
        if let Some(block) = block_at_mut(data, index) {
            store(block, veorq_u8(*p, prev));
            prev = *c;
        }
    }
    prev
}
