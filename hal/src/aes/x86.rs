//! x86_64 engines: AES-NI (128-bit, 8 blocks in flight) and VAES on AVX2 (256-bit, two blocks
//! per instruction, 16 blocks in flight).
//!
//! Both share the AES-NI key schedule (FIPS-197 §5.2 via `aeskeygenassist`; decryption uses the
//! equivalent inverse cipher of FIPS-197 §5.3.5, so its round keys pass through `aesimc`). A
//! value of [`RoundKeys`] or [`VaesKeys`] exists only after run-time detection found the
//! instructions, which is what makes the `unsafe` calls in the [`Backend`] impls sound.
//!
//! CTR (NIST SP 800-38A §6.5, with the ISO/IEC 23001-7 `cenc` 64-bit counter) keeps the counter
//! blocks in SIMD registers in their byte-swapped form: while the low byte of the counter does
//! not carry inside a batch, block `i` is the batch's first counter block plus `i` in its last
//! byte, a single vector add. A batch in which the low byte carries (at most one in 16 batches,
//! none for counters aligned to the batch) is built block by block with scalar arithmetic,
//! which also makes the 2^64 wrap exact.
//!
//! Pattern CBC (`cbcs`, ISO/IEC 23001-7 §10.4) decrypts the encrypted blocks of many pattern
//! periods together: they form one CBC chain whose links depend only on the ciphertext, so a
//! 1:`skip` pattern runs a strided kernel directly on the sample and other patterns gather the
//! encrypted blocks into a buffer for the contiguous kernel.
//!
//! The 256-bit AES intrinsics (`_mm256_aesenc_epi128`, …) and the `vaes` target feature are
//! stable since Rust 1.89, the workspace MSRV. Since Rust 1.87 the value-only intrinsics are
//! safe functions inside a function compiled with their target features; `unsafe` remains for
//! loads and stores through raw pointers and for calls into `#[target_feature]` functions from
//! code without those features.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi64, _mm256_aesdec_epi128, _mm256_aesdeclast_epi128,
    _mm256_aesenc_epi128, _mm256_aesenclast_epi128, _mm256_broadcastsi128_si256,
    _mm256_castsi128_si256, _mm256_castsi256_si128, _mm256_extracti128_si256,
    _mm256_inserti128_si256, _mm256_loadu2_m128i, _mm256_loadu_si256, _mm256_permute2x128_si256,
    _mm256_set_epi64x, _mm256_setzero_si256, _mm256_storeu2_m128i, _mm256_storeu_si256,
    _mm256_xor_si256, _mm_add_epi64, _mm_aesdec_si128, _mm_aesdeclast_si128, _mm_aesenc_si128,
    _mm_aesenclast_si128, _mm_aesimc_si128, _mm_aeskeygenassist_si128, _mm_loadu_si128,
    _mm_set_epi64x, _mm_setzero_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128,
    _mm_xor_si128,
};
use core::sync::atomic::{compiler_fence, AtomicU8, Ordering};

use zeroize::Zeroize;

use super::{Backend, BLOCK};

cpufeatures::new!(cpuid_aesni, "aes", "sse2");
// `cpufeatures` (0.2 and 0.3) ties "vaes" to the AVX-512 register state, which AVX2-only VAES
// CPUs (AMD Zen 3/4 clients, Intel Alder Lake) do not enable. Detect AVX2 + AES (with the OS's
// YMM state) through it and read the VAES bit ourselves.
cpufeatures::new!(cpuid_avx2_aes, "avx2", "aes");

/// Blocks per AES-NI batch.
const NI_LANES: usize = 8;
/// Bytes per AES-NI batch.
const NI_BATCH: usize = NI_LANES * BLOCK;
/// 256-bit registers per VAES batch (two blocks each).
const VAES_REGS: usize = 8;
/// Bytes per VAES batch (16 blocks).
const VAES_BATCH: usize = VAES_REGS * 2 * BLOCK;
/// Encrypted blocks collected across pattern periods before one CBC pass over them.
const GATHER: usize = 32;

/// Whether the CPU has AES-NI (and SSE2, always true on x86_64).
pub(crate) fn aesni_available() -> bool {
    cpuid_aesni::get()
}

/// Whether the CPU has VAES with AVX2 (and AES-NI), and the OS saves the YMM registers.
pub(crate) fn vaes_available() -> bool {
    cpuid_avx2_aes::get() && vaes_bit()
}

/// CPUID.(EAX=7,ECX=0):ECX bit 9 (VAES), cached: CPUID traps to the hypervisor in VMs.
fn vaes_bit() -> bool {
    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;
    static CACHE: AtomicU8 = AtomicU8::new(UNKNOWN);
    match CACHE.load(Ordering::Relaxed) {
        ABSENT => false,
        PRESENT => true,
        _ => {
            let found = cpuid_vaes();
            CACHE.store(if found { PRESENT } else { ABSENT }, Ordering::Relaxed);
            found
        }
    }
}

#[cfg(not(target_env = "sgx"))]
fn cpuid_vaes() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // `__cpuid*` are still `unsafe fn`s at the MSRV (1.89) and safe in later releases: keep
    // the block, and allow it being unused on newer compilers.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU (outside SGX enclaves, excluded above); leaf 7
    // is queried only when leaf 0 reports it as supported.
    unsafe {
        __cpuid(0).eax >= 7 && (__cpuid_count(7, 0).ecx >> 9) & 1 == 1
    }
}

/// CPUID is not available inside SGX enclaves.
#[cfg(target_env = "sgx")]
fn cpuid_vaes() -> bool {
    false
}

/// Runs the ten AES-128 rounds over every element of an array of blocks in registers:
/// whitening XOR with `rk[0]`, nine `$round`s with `rk[1..10]`, and `$last` with `rk[10]`.
/// Must be expanded inside a function compiled with the target features of the intrinsics.
macro_rules! aes_rounds {
    ($rk:expr, $b:ident, $xor:path, $round:path, $last:path) => {{
        let rk = $rk;
        for x in $b.iter_mut() {
            *x = $xor(*x, rk[0]);
        }
        for k in &rk[1..10] {
            for x in $b.iter_mut() {
                *x = $round(*x, *k);
            }
        }
        for x in $b.iter_mut() {
            *x = $last(*x, rk[10]);
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// AES-NI
// ---------------------------------------------------------------------------------------------

/// AES-128 key schedule for AES-NI: encryption round keys and the decryption round keys of the
/// equivalent inverse cipher. Wiped on drop; no `Debug`, `Clone` or `PartialEq`.
pub(crate) struct RoundKeys {
    enc: [__m128i; 11],
    dec: [__m128i; 11],
}

impl RoundKeys {
    /// An all-zero schedule, to be expanded in place by [`RoundKeys::expand`]; `None` when
    /// the CPU has no AES-NI. This is the only constructor, so holding a `RoundKeys` proves
    /// that detection found AES-NI and SSE2.
    pub(crate) fn zeroed() -> Option<RoundKeys> {
        if !aesni_available() {
            return None;
        }
        // SAFETY: `__m128i` is plain data; the all-zero bit pattern is a valid value.
        let z = unsafe { core::mem::zeroed::<__m128i>() };
        Some(RoundKeys {
            enc: [z; 11],
            dec: [z; 11],
        })
    }

    /// Expands `key` into `self`, in place, so the schedule is never moved or copied.
    pub(crate) fn expand(&mut self, key: &[u8; 16]) {
        // SAFETY: (1) `self` exists, so `zeroed` found AES-NI and SSE2.
        unsafe { expand_key(key, self) };
    }

    /// Overwrites every round key with zeros (volatile writes the optimiser cannot drop).
    fn wipe(&mut self) {
        for k in self.enc.iter_mut().chain(self.dec.iter_mut()) {
            k.zeroize();
        }
        compiler_fence(Ordering::SeqCst);
    }
}

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl zeroize::ZeroizeOnDrop for RoundKeys {}

/// AES-128 key expansion (FIPS-197 §5.2) and the decryption schedule of the equivalent inverse
/// cipher (FIPS-197 §5.3.5: decryption round keys 1..=9 pass through InvMixColumns).
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand_key(key: &[u8; 16], keys: &mut RoundKeys) {
    // One expansion step: words w[i..i+4] from w[i-4..i]. `aeskeygenassist` puts
    // RotWord(SubWord(w[i-1])) ^ Rcon in its dword 3; broadcast that and XOR it into the prefix
    // XOR of the previous round key (lane j = w[i-4] ^ … ^ w[i-4+j]).
    macro_rules! step {
        ($prev:expr, $rcon:literal) => {{
            let prev = $prev;
            let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(prev));
            let k = _mm_xor_si128(prev, _mm_slli_si128::<4>(prev));
            let k = _mm_xor_si128(k, _mm_slli_si128::<8>(k));
            _mm_xor_si128(k, t)
        }};
    }
    // SAFETY: (1) by the caller; the only memory access reads the 16 bytes of `key`.
    unsafe {
        let e = &mut keys.enc;
        e[0] = _mm_loadu_si128(key.as_ptr().cast());
        e[1] = step!(e[0], 0x01);
        e[2] = step!(e[1], 0x02);
        e[3] = step!(e[2], 0x04);
        e[4] = step!(e[3], 0x08);
        e[5] = step!(e[4], 0x10);
        e[6] = step!(e[5], 0x20);
        e[7] = step!(e[6], 0x40);
        e[8] = step!(e[7], 0x80);
        e[9] = step!(e[8], 0x1b);
        e[10] = step!(e[9], 0x36);
        keys.dec[0] = keys.enc[10];
        for (d, e) in keys.dec[1..10].iter_mut().zip(keys.enc[1..10].iter().rev()) {
            *d = _mm_aesimc_si128(*e);
        }
        keys.dec[10] = keys.enc[0];
    }
}

/// Encrypts one block.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn encrypt1(rk: &[__m128i; 11], block: &mut [u8; 16]) {
    // SAFETY: (1) by the caller; the load and store touch exactly the 16 bytes of `block`.
    unsafe {
        let p = block.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm_loadu_si128(p)];
        aes_rounds!(rk, b, _mm_xor_si128, _mm_aesenc_si128, _mm_aesenclast_si128);
        _mm_storeu_si128(p, b[0]);
    }
}

/// Decrypts one block with the equivalent-inverse-cipher schedule `dk`.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn decrypt1(dk: &[__m128i; 11], block: &mut [u8; 16]) {
    // SAFETY: (1) by the caller; the load and store touch exactly the 16 bytes of `block`.
    unsafe {
        let p = block.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm_loadu_si128(p)];
        aes_rounds!(dk, b, _mm_xor_si128, _mm_aesdec_si128, _mm_aesdeclast_si128);
        _mm_storeu_si128(p, b[0]);
    }
}

/// XORs the keystream of the 8 counter blocks `iv_hi || (c + i) mod 2^64` into `chunk`.
/// `iv_lo` is `iv_hi` read as the low 64-bit lane (little-endian).
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
#[inline]
unsafe fn ctr8(rk: &[__m128i; 11], iv_lo: i64, c: u64, chunk: &mut [u8; NI_BATCH]) {
    // SAFETY: (1) by the caller; loads and stores touch the 8 blocks of `chunk` only.
    unsafe {
        let mut b = [_mm_setzero_si128(); NI_LANES];
        // The high lane holds the big-endian counter, i.e. its last byte is the lane's top byte.
        if c & 0xff <= 0x100 - NI_LANES as u64 {
            // No carry out of the last byte in this batch: add i to that byte.
            let first = _mm_set_epi64x(c.swap_bytes() as i64, iv_lo);
            for (x, i) in b.iter_mut().zip(0i64..) {
                *x = _mm_add_epi64(first, _mm_set_epi64x(i << 56, 0));
            }
        } else {
            for (x, i) in b.iter_mut().zip(0u64..) {
                *x = _mm_set_epi64x(c.wrapping_add(i).swap_bytes() as i64, iv_lo);
            }
        }
        aes_rounds!(rk, b, _mm_xor_si128, _mm_aesenc_si128, _mm_aesenclast_si128);
        let p = chunk.as_mut_ptr().cast::<__m128i>();
        for (i, k) in b.iter().enumerate() {
            let q = p.add(i);
            _mm_storeu_si128(q, _mm_xor_si128(_mm_loadu_si128(q), *k));
        }
    }
}

/// CBC-decrypts the 8 blocks of `chunk` in place (NIST SP 800-38A §6.2); `iv` becomes the
/// last ciphertext block.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
#[inline]
unsafe fn cbc8(dk: &[__m128i; 11], iv: &mut [u8; 16], chunk: &mut [u8; NI_BATCH]) {
    // SAFETY: (1) by the caller; loads and stores touch `iv` and the 8 blocks of `chunk` only;
    // every ciphertext block is loaded before any plaintext is stored over it.
    unsafe {
        let p = chunk.as_mut_ptr().cast::<__m128i>();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        let mut c = [_mm_setzero_si128(); NI_LANES];
        for (i, x) in c.iter_mut().enumerate() {
            *x = _mm_loadu_si128(p.add(i));
        }
        let mut b = c;
        aes_rounds!(dk, b, _mm_xor_si128, _mm_aesdec_si128, _mm_aesdeclast_si128);
        let mut prev = _mm_loadu_si128(ivp);
        for (i, (x, ct)) in b.iter().zip(c.iter()).enumerate() {
            _mm_storeu_si128(p.add(i), _mm_xor_si128(*x, prev));
            prev = *ct;
        }
        _mm_storeu_si128(ivp, prev);
    }
}

/// CTR over whole blocks with AES-NI, 8 blocks per batch.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn ctr_ni(rk: &[__m128i; 11], iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
    let iv_lo = i64::from_le_bytes(*iv_hi);
    let mut chunks = data.chunks_exact_mut(NI_BATCH);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [u8; NI_BATCH]>::try_from(chunk) {
            // SAFETY: (1) by the caller.
            unsafe { ctr8(rk, iv_lo, *ctr, chunk) };
            *ctr = ctr.wrapping_add(NI_LANES as u64);
        }
    }
    let rest = chunks.into_remainder();
    let n = (rest.len() / BLOCK) as u64;
    // SAFETY: (1) by the caller.
    with_padded(rest, |buf| unsafe { ctr8(rk, iv_lo, *ctr, buf) });
    *ctr = ctr.wrapping_add(n);
}

/// CBC decryption of whole blocks with AES-NI, 8 blocks per batch.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn cbc_ni(dk: &[__m128i; 11], iv: &mut [u8; 16], data: &mut [u8]) {
    let (data, _) = super::split_blocks(data);
    let mut chunks = data.chunks_exact_mut(NI_BATCH);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [u8; NI_BATCH]>::try_from(chunk) {
            // SAFETY: (1) by the caller.
            unsafe { cbc8(dk, iv, chunk) };
        }
    }
    let rest = chunks.into_remainder();
    let Some(last) = last_block(rest) else { return };
    // SAFETY: (1) by the caller.
    with_padded(rest, |buf| unsafe { cbc8(dk, iv, buf) });
    // The padding blocks are not part of the chain: continue from the last real ciphertext.
    *iv = last;
}

/// `cbcs`-style 1:`skip` pattern: CBC-decrypts the 8 blocks at `chunk[i * stride..][..16]`,
/// `i < 8`, as consecutive links of one chain (`iv` becomes the last of them). Does nothing
/// when `chunk` is shorter than `7 * stride + 16` or `stride < 16`.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn cbc8_strided(dk: &[__m128i; 11], iv: &mut [u8; 16], chunk: &mut [u8], stride: usize) {
    let fits = stride
        .checked_mul(NI_LANES - 1)
        .and_then(|s| s.checked_add(BLOCK));
    if stride < BLOCK || fits.is_none_or(|need| chunk.len() < need) {
        return;
    }
    // SAFETY: (1) by the caller; every access is 16 bytes at `i * stride <= 7 * stride`, and
    // `7 * stride + 16 <= chunk.len()` was checked above; with `stride >= 16` the blocks are
    // disjoint, and each is loaded before any store.
    unsafe {
        let p = chunk.as_mut_ptr();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        let mut c = [_mm_setzero_si128(); NI_LANES];
        for (i, x) in c.iter_mut().enumerate() {
            *x = _mm_loadu_si128(p.add(i * stride).cast());
        }
        let mut b = c;
        aes_rounds!(dk, b, _mm_xor_si128, _mm_aesdec_si128, _mm_aesdeclast_si128);
        let mut prev = _mm_loadu_si128(ivp);
        for (i, (x, ct)) in b.iter().zip(c.iter()).enumerate() {
            _mm_storeu_si128(p.add(i * stride).cast(), _mm_xor_si128(*x, prev));
            prev = *ct;
        }
        _mm_storeu_si128(ivp, prev);
    }
}

// ---------------------------------------------------------------------------------------------
// VAES (AVX2, 256-bit)
// ---------------------------------------------------------------------------------------------

/// AES-128 key schedule for VAES: the AES-NI schedule with every round key broadcast to both
/// 128-bit lanes (single blocks run in the low lane). Wiped on drop; no `Debug`, `Clone` or
/// `PartialEq`.
pub(crate) struct VaesKeys {
    enc: [__m256i; 11],
    dec: [__m256i; 11],
}

impl VaesKeys {
    /// An all-zero schedule, to be expanded in place by [`VaesKeys::expand`]; `None` when
    /// the CPU lacks VAES, AVX2 or AES-NI. This is the only constructor, so holding a
    /// `VaesKeys` proves that detection found them.
    pub(crate) fn zeroed() -> Option<VaesKeys> {
        if !vaes_available() {
            return None;
        }
        // SAFETY: `__m256i` is plain data; the all-zero bit pattern is a valid value.
        let z = unsafe { core::mem::zeroed::<__m256i>() };
        Some(VaesKeys {
            enc: [z; 11],
            dec: [z; 11],
        })
    }

    /// Expands `key` into `self`, in place.
    pub(crate) fn expand(&mut self, key: &[u8; 16]) {
        // The temporary AES-NI schedule lives on the stack only for this call and is wiped
        // when it drops at the end of this function. VAES detection includes AES-NI, so it
        // exists whenever `self` does.
        if let Some(mut ni) = RoundKeys::zeroed() {
            ni.expand(key);
            // SAFETY: (1) `self` exists, so `zeroed` found AVX2 (and VAES).
            unsafe { broadcast_keys(&ni, self) };
        }
    }

    /// Overwrites every round key with zeros (volatile writes the optimiser cannot drop).
    fn wipe(&mut self) {
        for k in self.enc.iter_mut().chain(self.dec.iter_mut()) {
            k.zeroize();
        }
        compiler_fence(Ordering::SeqCst);
    }
}

impl Drop for VaesKeys {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl zeroize::ZeroizeOnDrop for VaesKeys {}

/// Builds the 256-bit schedule from the AES-NI one.
///
/// # Safety
/// 1. The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn broadcast_keys(ni: &RoundKeys, keys: &mut VaesKeys) {
    for (w, n) in keys.enc.iter_mut().zip(ni.enc.iter()) {
        *w = _mm256_broadcastsi128_si256(*n);
    }
    for (w, n) in keys.dec.iter_mut().zip(ni.dec.iter()) {
        *w = _mm256_broadcastsi128_si256(*n);
    }
}

/// XORs the keystream of the 16 counter blocks `iv_hi || (c + i) mod 2^64` into `chunk`;
/// register `j` holds blocks `2j` (low lane) and `2j + 1` (high lane).
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn ctr16(rk: &[__m256i; 11], iv_lo: i64, c: u64, chunk: &mut [u8; VAES_BATCH]) {
    // SAFETY: (1) by the caller; loads and stores touch the 16 blocks of `chunk` only.
    unsafe {
        let mut b = [_mm256_setzero_si256(); VAES_REGS];
        if c & 0xff <= 0x100 - 2 * VAES_REGS as u64 {
            // No carry out of the counter's last byte in this batch (see `ctr8`).
            let s = c.swap_bytes() as i64;
            let first = _mm256_set_epi64x(s, iv_lo, s, iv_lo);
            for (x, j) in b.iter_mut().zip(0i64..) {
                let step = _mm256_set_epi64x((2 * j + 1) << 56, 0, (2 * j) << 56, 0);
                *x = _mm256_add_epi64(first, step);
            }
        } else {
            for (x, j) in b.iter_mut().zip(0u64..) {
                let lo = c.wrapping_add(2 * j).swap_bytes() as i64;
                let hi = c.wrapping_add(2 * j + 1).swap_bytes() as i64;
                *x = _mm256_set_epi64x(hi, iv_lo, lo, iv_lo);
            }
        }
        for x in b.iter_mut() {
            *x = _mm256_xor_si256(*x, rk[0]);
        }
        for k in &rk[1..10] {
            for x in b.iter_mut() {
                *x = _mm256_aesenc_epi128(*x, *k);
            }
        }
        // The last round ends with AddRoundKey (FIPS-197 §5.1.4), so running it with
        // `rk[10] ^ data` yields `keystream ^ data` directly.
        let p = chunk.as_mut_ptr().cast::<__m256i>();
        for (j, x) in b.iter().enumerate() {
            let q = p.add(j);
            let last = _mm256_xor_si256(rk[10], _mm256_loadu_si256(q));
            _mm256_storeu_si256(q, _mm256_aesenclast_epi128(*x, last));
        }
    }
}

/// CBC-decrypts the 16 blocks of `chunk` in place; `iv` becomes the last ciphertext block.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn cbc16(dk: &[__m256i; 11], iv: &mut [u8; 16], chunk: &mut [u8; VAES_BATCH]) {
    // SAFETY: (1) by the caller; loads and stores touch `iv` and the 16 blocks of `chunk`
    // only (the unaligned loads at `32 j - 16` for j >= 1 stay inside `chunk`); all
    // ciphertext is loaded before the first store.
    unsafe {
        let p = chunk.as_mut_ptr();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm256_setzero_si256(); VAES_REGS];
        for (j, x) in b.iter_mut().enumerate() {
            *x = _mm256_loadu_si256(p.add(32 * j).cast());
        }
        let last = _mm256_extracti128_si256::<1>(b[VAES_REGS - 1]);
        aes_rounds!(
            dk,
            b,
            _mm256_xor_si256,
            _mm256_aesdec_epi128,
            _mm256_aesdeclast_epi128
        );
        // Chaining values: the ciphertext shifted by one block, the IV first.
        let mut prev = [_mm256_setzero_si256(); VAES_REGS];
        prev[0] = _mm256_inserti128_si256::<1>(
            _mm256_castsi128_si256(_mm_loadu_si128(ivp)),
            _mm_loadu_si128(p.cast()),
        );
        for (j, x) in prev.iter_mut().enumerate().skip(1) {
            *x = _mm256_loadu_si256(p.add(32 * j - 16).cast());
        }
        for (j, (x, v)) in b.iter().zip(prev.iter()).enumerate() {
            _mm256_storeu_si256(p.add(32 * j).cast(), _mm256_xor_si256(*x, *v));
        }
        _mm_storeu_si128(ivp, last);
    }
}

/// Encrypts (`encrypt`) or decrypts one block in the low lane of the 256-bit instructions
/// (single blocks are rare: a trailing partial CTR block, CBC encryption for tooling).
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
unsafe fn block_vaes(keys: &[__m256i; 11], block: &mut [u8; 16], encrypt: bool) {
    // SAFETY: (1) by the caller; the load and store touch exactly the 16 bytes of `block`.
    unsafe {
        let p = block.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm256_castsi128_si256(_mm_loadu_si128(p))];
        if encrypt {
            aes_rounds!(
                keys,
                b,
                _mm256_xor_si256,
                _mm256_aesenc_epi128,
                _mm256_aesenclast_epi128
            );
        } else {
            aes_rounds!(
                keys,
                b,
                _mm256_xor_si256,
                _mm256_aesdec_epi128,
                _mm256_aesdeclast_epi128
            );
        }
        _mm_storeu_si128(p, _mm256_castsi256_si128(b[0]));
    }
}

/// CTR over whole blocks with VAES, 16 blocks per batch.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
unsafe fn ctr_vaes(rk: &[__m256i; 11], iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
    let iv_lo = i64::from_le_bytes(*iv_hi);
    let mut chunks = data.chunks_exact_mut(VAES_BATCH);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [u8; VAES_BATCH]>::try_from(chunk) {
            // SAFETY: (1) by the caller.
            unsafe { ctr16(rk, iv_lo, *ctr, chunk) };
            *ctr = ctr.wrapping_add(2 * VAES_REGS as u64);
        }
    }
    let rest = chunks.into_remainder();
    let n = (rest.len() / BLOCK) as u64;
    // SAFETY: (1) by the caller.
    with_padded(rest, |buf| unsafe { ctr16(rk, iv_lo, *ctr, buf) });
    *ctr = ctr.wrapping_add(n);
}

/// CBC decryption of whole blocks with VAES, 16 blocks per batch.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
unsafe fn cbc_vaes(dk: &[__m256i; 11], iv: &mut [u8; 16], data: &mut [u8]) {
    let (data, _) = super::split_blocks(data);
    let mut chunks = data.chunks_exact_mut(VAES_BATCH);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [u8; VAES_BATCH]>::try_from(chunk) {
            // SAFETY: (1) by the caller.
            unsafe { cbc16(dk, iv, chunk) };
        }
    }
    let rest = chunks.into_remainder();
    let Some(last) = last_block(rest) else { return };
    // SAFETY: (1) by the caller.
    with_padded(rest, |buf| unsafe { cbc16(dk, iv, buf) });
    *iv = last;
}

/// `cbcs`-style 1:`skip` pattern: CBC-decrypts the 16 blocks at `chunk[i * stride..][..16]`,
/// `i < 16`, as consecutive links of one chain (`iv` becomes the last of them). Does nothing
/// when `chunk` is shorter than `15 * stride + 16` or `stride < 16`.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
unsafe fn cbc16_strided(dk: &[__m256i; 11], iv: &mut [u8; 16], chunk: &mut [u8], stride: usize) {
    let fits = stride
        .checked_mul(2 * VAES_REGS - 1)
        .and_then(|s| s.checked_add(BLOCK));
    if stride < BLOCK || fits.is_none_or(|need| chunk.len() < need) {
        return;
    }
    // SAFETY: (1) by the caller; every access is 16 bytes at `i * stride <= 15 * stride`, and
    // `15 * stride + 16 <= chunk.len()` was checked above; with `stride >= 16` the blocks are
    // disjoint, and each is loaded before any store.
    unsafe {
        let p = chunk.as_mut_ptr();
        let at = |i: usize| p.add(i * stride).cast::<__m128i>();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        // Register j: blocks 2j (low lane) and 2j + 1 (high lane).
        let mut c = [_mm256_setzero_si256(); VAES_REGS];
        for (j, x) in c.iter_mut().enumerate() {
            *x = _mm256_loadu2_m128i(at(2 * j + 1), at(2 * j));
        }
        let mut b = c;
        aes_rounds!(
            dk,
            b,
            _mm256_xor_si256,
            _mm256_aesdec_epi128,
            _mm256_aesdeclast_epi128
        );
        // Chaining values of register j: blocks 2j - 1 and 2j (the IV before block 0). `prev`
        // carries the previous register (the IV, in both lanes, at first); the lane shuffle
        // takes its high lane and the current register's low lane.
        let mut prev = _mm256_castsi128_si256(_mm_loadu_si128(ivp));
        prev = _mm256_permute2x128_si256::<0x00>(prev, prev);
        for (j, (x, ct)) in b.iter().zip(c.iter()).enumerate() {
            let chain = _mm256_permute2x128_si256::<0x21>(prev, *ct);
            _mm256_storeu2_m128i(at(2 * j + 1), at(2 * j), _mm256_xor_si256(*x, chain));
            prev = *ct;
        }
        _mm_storeu_si128(ivp, _mm256_extracti128_si256::<1>(prev));
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Runs a batch kernel over `rest` (shorter than a batch) by way of a zero-padded copy, then
/// copies the first `rest.len()` bytes back. The copy is wiped: its padding holds keystream or
/// decryptions of zeros.
fn with_padded<const N: usize>(rest: &mut [u8], kernel: impl FnOnce(&mut [u8; N])) {
    if rest.is_empty() {
        return;
    }
    let mut buf = [0u8; N];
    if let Some(part) = buf.get_mut(..rest.len()) {
        part.copy_from_slice(rest);
        kernel(&mut buf);
        if let Some(part) = buf.get(..rest.len()) {
            rest.copy_from_slice(part);
        }
    }
    buf.zeroize();
}

/// 1:`skip` pattern decryption (`cbcs` 1:9 in practice) by a strided kernel that decrypts
/// `lanes` periods' encrypted blocks at once, straight from `data`; what is left after the
/// last whole batch of periods goes through [`cbc_pattern_gathered`].
fn cbc_pattern_one(
    iv: &mut [u8; 16],
    data: &mut [u8],
    skip: usize,
    lanes: usize,
    mut strided: impl FnMut(&mut [u8; 16], &mut [u8], usize),
    cbc: impl FnMut(&mut [u8; 16], &mut [u8]),
) {
    let stride = skip.saturating_add(1).saturating_mul(BLOCK);
    let span = stride.saturating_mul(lanes);
    let need = stride
        .saturating_mul(lanes.saturating_sub(1))
        .saturating_add(BLOCK);
    let mut done = 0;
    while let Some(chunk) = data.get_mut(done..) {
        if chunk.len() < need {
            break;
        }
        strided(iv, chunk, stride);
        done = done.saturating_add(span);
    }
    // A batch may end inside its last period's skipped blocks: then nothing is left.
    if let Some(rest) = data.get_mut(done..) {
        cbc_pattern_gathered(iv, rest, 1, skip, cbc);
    }
}

/// The last whole block of `data`, if any.
fn last_block(data: &[u8]) -> Option<[u8; 16]> {
    data.chunks_exact(BLOCK)
        .last()
        .and_then(|b| b.try_into().ok())
}

/// Pattern CBC decryption (ISO/IEC 23001-7 §10.4.2 `cbcs`/`cens`-style `crypt:skip` over whole
/// blocks) with the same result as [`Backend::cbc_decrypt_pattern_blocks`]'s default.
///
/// The encrypted blocks of all periods form one CBC chain, and CBC decryption of a block
/// depends only on it and its predecessor in the chain, so the encrypted blocks are gathered
/// into a contiguous buffer, decrypted there as one chain by the wide `cbc` kernel, and
/// scattered back. With the common 1:9 pattern this keeps 8/16 blocks in flight instead of 1.
fn cbc_pattern_gathered(
    iv: &mut [u8; 16],
    data: &mut [u8],
    crypt: usize,
    skip: usize,
    mut cbc: impl FnMut(&mut [u8; 16], &mut [u8]),
) {
    let crypt_bytes = crypt.saturating_mul(BLOCK);
    let period_bytes = crypt.saturating_add(skip).saturating_mul(BLOCK);
    if crypt_bytes == 0 || period_bytes == 0 {
        return;
    }
    let mut buf = [[0u8; BLOCK]; GATHER];
    let mut slots: [Option<&mut [u8; BLOCK]>; GATHER] = core::array::from_fn(|_| None);
    let mut n = 0;
    for period in data.chunks_mut(period_bytes) {
        let run_len = period.len().min(crypt_bytes);
        let Some(run) = period.get_mut(..run_len) else {
            continue;
        };
        for block in run.chunks_exact_mut(BLOCK) {
            let (Ok(block), Some(slot)) = (<&mut [u8; BLOCK]>::try_from(block), slots.get_mut(n))
            else {
                continue;
            };
            *slot = Some(block);
            n += 1;
            if n == GATHER {
                decrypt_gathered(iv, &mut buf, &mut slots, &mut cbc);
                n = 0;
            }
        }
    }
    decrypt_gathered(iv, &mut buf, &mut slots, &mut cbc);
    buf.as_flattened_mut().zeroize();
}

/// Copies the filled `slots` (a prefix) into `buf`, CBC-decrypts them as one chain, writes the
/// plaintext back and empties the slots.
fn decrypt_gathered(
    iv: &mut [u8; 16],
    buf: &mut [[u8; BLOCK]; GATHER],
    slots: &mut [Option<&mut [u8; BLOCK]>; GATHER],
    cbc: &mut impl FnMut(&mut [u8; 16], &mut [u8]),
) {
    let mut n = 0;
    for (dst, slot) in buf.iter_mut().zip(slots.iter()) {
        let Some(src) = slot else { break };
        *dst = **src;
        n += 1;
    }
    if let Some(run) = buf.get_mut(..n) {
        cbc(iv, run.as_flattened_mut());
    }
    for (src, slot) in buf.iter().zip(slots.iter_mut()) {
        let Some(dst) = slot.take() else { break };
        *dst = *src;
    }
}

// ---------------------------------------------------------------------------------------------
// Backend impls
// ---------------------------------------------------------------------------------------------

impl Backend for RoundKeys {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after AES-NI was detected.
        unsafe { encrypt1(&self.enc, block) }
    }

    fn decrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after AES-NI was detected.
        unsafe { decrypt1(&self.dec, block) }
    }

    fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after AES-NI was detected.
        unsafe { ctr_ni(&self.enc, iv_hi, ctr, data) }
    }

    fn cbc_decrypt_blocks(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after AES-NI was detected.
        unsafe { cbc_ni(&self.dec, iv, data) }
    }

    fn cbc_decrypt_pattern_blocks(
        &self,
        iv: &mut [u8; 16],
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        let cbc = |iv: &mut [u8; 16], run: &mut [u8]| self.cbc_decrypt_blocks(iv, run);
        if crypt != 1 {
            return cbc_pattern_gathered(iv, data, crypt, skip, cbc);
        }
        // SAFETY: (1) a `RoundKeys` is only built by `zeroed`, after AES-NI was detected.
        let strided = |iv: &mut [u8; 16], chunk: &mut [u8], stride| unsafe {
            cbc8_strided(&self.dec, iv, chunk, stride)
        };
        cbc_pattern_one(iv, data, skip, NI_LANES, strided, cbc);
    }
}

impl Backend for VaesKeys {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: (1) a `VaesKeys` is only built by `zeroed`, after VAES and AVX2 were detected.
        unsafe { block_vaes(&self.enc, block, true) }
    }

    fn decrypt_block(&self, block: &mut [u8; 16]) {
        // SAFETY: (1) a `VaesKeys` is only built by `zeroed`, after VAES and AVX2 were detected.
        unsafe { block_vaes(&self.dec, block, false) }
    }

    fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        // SAFETY: (1) a `VaesKeys` is only built by `zeroed`, after VAES and AVX2 were detected.
        unsafe { ctr_vaes(&self.enc, iv_hi, ctr, data) }
    }

    fn cbc_decrypt_blocks(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        // SAFETY: (1) a `VaesKeys` is only built by `zeroed`, after VAES and AVX2 were detected.
        unsafe { cbc_vaes(&self.dec, iv, data) }
    }

    fn cbc_decrypt_pattern_blocks(
        &self,
        iv: &mut [u8; 16],
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        let cbc = |iv: &mut [u8; 16], run: &mut [u8]| self.cbc_decrypt_blocks(iv, run);
        if crypt != 1 {
            return cbc_pattern_gathered(iv, data, crypt, skip, cbc);
        }
        // SAFETY: (1) a `VaesKeys` is only built by `zeroed`, after VAES and AVX2 were detected.
        let strided = |iv: &mut [u8; 16], chunk: &mut [u8], stride| unsafe {
            cbc16_strided(&self.dec, iv, chunk, stride)
        };
        cbc_pattern_one(iv, data, skip, 2 * VAES_REGS, strided, cbc);
    }
}
