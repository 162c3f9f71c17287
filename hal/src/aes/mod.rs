//! AES-128 engines with run-time dispatch.
//!
//! An [`Engine`] is a value that proves CPU feature detection ran and found the engine usable;
//! [`Engine::key`] expands a content key into an [`Aes128`] key schedule bound to that engine.
//! The schedule offers exactly the primitives the CENC schemes need (CTR with a 64-bit
//! wrapping counter, CBC decryption, and the pattern variants), so the hot loops stay inside the
//! engine and can keep many blocks in flight.
//!
//! | engine | where | how |
//! |---|---|---|
//! | [`EngineKind::Vaes`] | x86_64 with VAES + AVX2 | 256-bit `vaesenc`/`vaesdec`, two blocks per instruction, 16 in flight |
//! | [`EngineKind::AesNi`] | x86_64 with AES-NI | `aesenc`/`aesdec`, 8 blocks in flight |
//! | [`EngineKind::ArmCe`] | aarch64 with the `aes` extension | `vaeseq_u8`/`vaesmcq_u8`, 8 blocks in flight |
//! | [`EngineKind::Portable`] | everywhere | RustCrypto `aes` (see below) |
//!
//! `Portable` is RustCrypto's `aes` crate. On aarch64 (built without `--cfg aes_armv8`) and on
//! bare-metal targets that is its constant-time bitsliced software implementation; on x86_64 the
//! crate itself detects AES-NI unless built with `--cfg aes_force_soft`.
//!
//! Selection happens once ([`Engine::detect`]); tests and benches force an engine with
//! [`Engine::new`] or, in `std` builds, the `TEE_CDM_AES_ENGINE` environment variable
//! (`vaes`, `aesni`, `armce`, `portable`).

// The intrinsics modules are exempt from the crate's "never panics on input" lints: they only
// ever see engine-internal lengths (whole blocks, counters, key-schedule indices) that the
// callers in this module and in `cenc` have already validated, and their hot loops index
// fixed-size block arrays by construction.
#[cfg(target_arch = "aarch64")]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod arm;
mod portable;
// See `arm` above: engine-internal, caller-validated lengths only.
#[cfg(target_arch = "x86_64")]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod x86;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

/// Name of the environment variable that forces an engine in `std` builds.
pub const ENGINE_ENV_VAR: &str = "TEE_CDM_AES_ENGINE";

/// AES block size in bytes.
pub const BLOCK: usize = 16;

/// The AES implementations this crate can dispatch to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// x86_64 VAES with AVX2 (256-bit vectors, two AES blocks per instruction).
    Vaes,
    /// x86_64 AES-NI (128-bit, one block per instruction, 8 blocks interleaved).
    AesNi,
    /// ARMv8 Cryptography Extensions.
    ArmCe,
    /// RustCrypto `aes` (portable; constant-time software where the CPU has no AES).
    Portable,
}

impl EngineKind {
    /// Every engine kind, fastest first: the order [`Engine::detect`] tries them in.
    pub const ALL: [EngineKind; 4] = [Self::Vaes, Self::AesNi, Self::ArmCe, Self::Portable];

    /// Stable lower-case name, as used in capabilities, logs, benches and [`ENGINE_ENV_VAR`].
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vaes => "vaes",
            Self::AesNi => "aesni",
            Self::ArmCe => "armce",
            Self::Portable => "portable",
        }
    }

    /// Parses a name produced by [`EngineKind::name`] (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU (as detected at run time, or fixed at build time on bare metal) can
    /// run the engine.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Vaes => x86::vaes_available(),
            #[cfg(target_arch = "x86_64")]
            Self::AesNi => x86::aesni_available(),
            #[cfg(target_arch = "aarch64")]
            Self::ArmCe => arm::available(),
            Self::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The requested engine cannot run on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("AES engine `{0}` is not available on this CPU")]
pub struct EngineUnavailable(pub EngineKind);

/// A usable AES engine: holding one proves that feature detection found it available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    kind: EngineKind,
}

impl Engine {
    /// The engine the secure world uses: in `std` builds the one named by
    /// [`ENGINE_ENV_VAR`] if set and available, otherwise [`Engine::best`].
    ///
    /// An unknown or unavailable name in the variable is ignored (the best engine is used),
    /// so a stale setting cannot disable decryption.
    pub fn detect() -> Engine {
        #[cfg(feature = "std")]
        {
            if let Some(kind) = std::env::var(ENGINE_ENV_VAR)
                .ok()
                .and_then(|v| EngineKind::from_name(&v))
            {
                if let Ok(engine) = Engine::new(kind) {
                    return engine;
                }
            }
        }
        Engine::best()
    }

    /// The fastest engine this CPU supports, ignoring any override.
    pub fn best() -> Engine {
        EngineKind::ALL
            .into_iter()
            .find(|k| k.is_available())
            .map(|kind| Engine { kind })
            .unwrap_or(Engine {
                kind: EngineKind::Portable,
            })
    }

    /// Forces an engine (tests, benches, integrator configuration).
    pub fn new(kind: EngineKind) -> Result<Engine, EngineUnavailable> {
        if kind.is_available() {
            Ok(Engine { kind })
        } else {
            Err(EngineUnavailable(kind))
        }
    }

    /// Every engine available on this CPU, fastest first.
    pub fn available() -> impl Iterator<Item = Engine> {
        EngineKind::ALL
            .into_iter()
            .filter(|k| k.is_available())
            .map(|kind| Engine { kind })
    }

    /// Which engine this is.
    pub const fn kind(self) -> EngineKind {
        self.kind
    }

    /// The engine's stable name.
    pub const fn name(self) -> &'static str {
        self.kind.name()
    }

    /// Expands an AES-128 key for this engine. The schedule is wiped when dropped.
    ///
    /// Aborts the process if the schedule cannot be allocated, like any infallible
    /// allocation; the secure world uses [`Engine::try_key`].
    pub fn key(self, key: &[u8; 16]) -> Aes128 {
        match self.try_key(key) {
            Ok(k) => k,
            Err(KeyAllocError) => {
                alloc::alloc::handle_alloc_error(core::alloc::Layout::new::<Inner>())
            }
        }
    }

    /// Expands an AES-128 key for this engine, failing (instead of aborting) when the
    /// schedule cannot be allocated.
    ///
    /// The schedule lives on the heap and the hardware engines expand it in place, so moving
    /// an [`Aes128`] (into a key slot, a growing table) moves a pointer and never leaves a
    /// stale copy of round keys behind. The portable engine's schedule is built by RustCrypto
    /// and moved once into its heap slot; that one stack temporary is not wiped.
    pub fn try_key(self, key: &[u8; 16]) -> Result<Aes128, KeyAllocError> {
        let inner = match self.kind {
            #[cfg(target_arch = "x86_64")]
            EngineKind::Vaes => match x86::VaesKeys::zeroed() {
                Some(zeroed) => {
                    let mut k = Heap::try_new(zeroed)?;
                    k.get_mut().expand(key);
                    Inner::Vaes(k)
                }
                None => Inner::Portable(Heap::try_new(portable::Keys::new(key))?),
            },
            #[cfg(target_arch = "x86_64")]
            EngineKind::AesNi => match x86::RoundKeys::zeroed() {
                Some(zeroed) => {
                    let mut k = Heap::try_new(zeroed)?;
                    k.get_mut().expand(key);
                    Inner::AesNi(k)
                }
                None => Inner::Portable(Heap::try_new(portable::Keys::new(key))?),
            },
            #[cfg(target_arch = "aarch64")]
            EngineKind::ArmCe => match arm::RoundKeys::zeroed() {
                Some(zeroed) => {
                    let mut k = Heap::try_new(zeroed)?;
                    k.get_mut().expand(key);
                    Inner::ArmCe(k)
                }
                None => Inner::Portable(Heap::try_new(portable::Keys::new(key))?),
            },
            _ => Inner::Portable(Heap::try_new(portable::Keys::new(key))?),
        };
        Ok(Aes128 {
            engine: self,
            inner,
        })
    }
}

/// A key schedule could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("out of memory for an AES key schedule")]
pub struct KeyAllocError;

/// One value on the heap, allocated fallibly (`Box::try_new` is not stable yet).
struct Heap<T>(Box<[T; 1]>);

impl<T> Heap<T> {
    fn try_new(value: T) -> Result<Self, KeyAllocError> {
        let mut v = Vec::new();
        v.try_reserve_exact(1).map_err(|_| KeyAllocError)?;
        v.push(value);
        // Length equals capacity, so this neither reallocates nor copies.
        let slice: Box<[T]> = v.into_boxed_slice();
        slice.try_into().map(Heap).map_err(|_| KeyAllocError)
    }

    fn get(&self) -> &T {
        let [v] = &*self.0;
        v
    }

    fn get_mut(&mut self) -> &mut T {
        let [v] = &mut *self.0;
        v
    }
}

enum Inner {
    #[cfg(target_arch = "x86_64")]
    Vaes(Heap<x86::VaesKeys>),
    #[cfg(target_arch = "x86_64")]
    AesNi(Heap<x86::RoundKeys>),
    #[cfg(target_arch = "aarch64")]
    ArmCe(Heap<arm::RoundKeys>),
    Portable(Heap<portable::Keys>),
}

/// An expanded AES-128 key bound to one engine.
///
/// The round keys are zeroized when the value is dropped. There is deliberately no `Debug`,
/// `Clone` or `PartialEq`.
pub struct Aes128 {
    engine: Engine,
    inner: Inner,
}

impl fmt::Debug for Aes128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aes128")
            .field("engine", &self.engine.name())
            .finish_non_exhaustive()
    }
}

macro_rules! dispatch {
    ($self:ident, $k:ident => $e:expr) => {
        match &$self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Vaes(h) => {
                let $k = h.get();
                $e
            }
            #[cfg(target_arch = "x86_64")]
            Inner::AesNi(h) => {
                let $k = h.get();
                $e
            }
            #[cfg(target_arch = "aarch64")]
            Inner::ArmCe(h) => {
                let $k = h.get();
                $e
            }
            Inner::Portable(h) => {
                let $k = h.get();
                $e
            }
        }
    };
}

impl Aes128 {
    /// The engine this schedule runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Encrypts one block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        dispatch!(self, k => k.encrypt_block(block))
    }

    /// Decrypts one block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        dispatch!(self, k => k.decrypt_block(block))
    }

    /// XORs the CTR keystream into `data`, in place.
    ///
    /// Counter block `i` is `iv_hi || (ctr + i) mod 2^64` (both halves big-endian): the low
    /// 64 bits wrap without carrying into `iv_hi`, as ISO/IEC 23001-7 `cenc` requires.
    /// A trailing partial block uses the first bytes of its keystream block. On return `ctr`
    /// has advanced by the number of blocks touched (a partial block counts as one).
    pub fn ctr64_xor(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        let (whole, tail) = split_blocks(data);
        dispatch!(self, k => k.ctr64_xor_blocks(iv_hi, ctr, whole));
        if !tail.is_empty() {
            let mut ks = counter_block(iv_hi, *ctr);
            self.encrypt_block(&mut ks);
            for (d, s) in tail.iter_mut().zip(ks.iter()) {
                *d ^= s;
            }
            zeroize::Zeroize::zeroize(&mut ks);
            *ctr = ctr.wrapping_add(1);
        }
    }

    /// CBC-decrypts the whole blocks of `data` in place; a trailing partial block is left as
    /// it is. `iv` is updated to the last ciphertext block processed, so consecutive calls
    /// continue one chain.
    pub fn cbc_decrypt(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        let (whole, _tail) = split_blocks(data);
        dispatch!(self, k => k.cbc_decrypt_blocks(iv, whole))
    }

    /// CBC-encrypts the whole blocks of `data` in place (test content and license tooling;
    /// CBC encryption is serial, so engines do not interleave it). A trailing partial block
    /// is left as it is; `iv` is updated to the last ciphertext block.
    #[cfg(feature = "encrypt")]
    pub fn cbc_encrypt(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        let (whole, _tail) = split_blocks(data);
        for block in whole.chunks_exact_mut(BLOCK) {
            for (b, v) in block.iter_mut().zip(iv.iter()) {
                *b ^= v;
            }
            let mut tmp = [0u8; 16];
            tmp.copy_from_slice(block);
            self.encrypt_block(&mut tmp);
            block.copy_from_slice(&tmp);
            *iv = tmp;
        }
    }

    /// CBC-decrypts `data` under a `crypt:skip` block pattern, in place: starting at the
    /// first byte, `crypt` whole blocks are decrypted (one CBC chain across all the
    /// encrypted blocks, starting from `iv`), then `skip` blocks are left clear, and so on.
    /// When fewer than `crypt` whole blocks remain, those remaining whole blocks are
    /// decrypted; a trailing partial block is always clear (ISO/IEC 23001-7 §10.4.2).
    /// `crypt == 0` is treated as "no pattern" (every block); callers validate patterns.
    pub fn cbc_decrypt_pattern(
        &self,
        iv: &mut [u8; 16],
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        let (whole, _tail) = split_blocks(data);
        if crypt == 0 || skip == 0 {
            return dispatch!(self, k => k.cbc_decrypt_blocks(iv, whole));
        }
        dispatch!(self, k => k.cbc_decrypt_pattern_blocks(iv, whole, crypt, skip))
    }
}

/// Splits `data` into its whole blocks and the trailing partial block.
pub(crate) fn split_blocks(data: &mut [u8]) -> (&mut [u8], &mut [u8]) {
    let (blocks, tail) = data.as_chunks_mut::<BLOCK>();
    (blocks.as_flattened_mut(), tail)
}

/// Calls `f` on every encrypted run of a `crypt:skip` block pattern over `whole` (whole blocks):
/// the first `crypt` blocks of each period of `crypt + skip` blocks, or fewer in a short last
/// period (ISO/IEC 23001-7 §9.6.1). `crypt == 0` or `skip == 0` means no pattern: `f` sees all
/// of `whole` at once.
pub(crate) fn for_each_pattern_run(
    whole: &mut [u8],
    crypt: usize,
    skip: usize,
    mut f: impl FnMut(&mut [u8]),
) {
    if crypt == 0 || skip == 0 {
        return f(whole);
    }
    // Saturation is exact here: both values only bound chunk lengths of a slice, and a
    // saturated `usize::MAX` exceeds every slice length (at most `isize::MAX`) just as the
    // true product would. Validated patterns (< 16 each) never come near it. `period` is at
    // least 2 blocks, never 0.
    let enc = crypt.saturating_mul(BLOCK);
    let period = crypt.saturating_add(skip).saturating_mul(BLOCK);
    for chunk in whole.chunks_mut(period) {
        let n = chunk.len().min(enc);
        if let Some(run) = chunk.get_mut(..n) {
            f(run);
        }
    }
}

/// Builds the counter block `iv_hi || ctr` (big-endian halves).
pub(crate) fn counter_block(iv_hi: &[u8; 8], ctr: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(iv_hi);
    b[8..].copy_from_slice(&ctr.to_be_bytes());
    b
}

/// The operations each engine backend implements on whole blocks. Default methods give a
/// correct (not fast) pattern implementation on top of the required ones.
pub(crate) trait Backend {
    fn encrypt_block(&self, block: &mut [u8; 16]);
    fn decrypt_block(&self, block: &mut [u8; 16]);
    /// `data.len()` is a multiple of 16.
    fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]);
    /// `data.len()` is a multiple of 16.
    fn cbc_decrypt_blocks(&self, iv: &mut [u8; 16], data: &mut [u8]);
    /// `data.len()` is a multiple of 16; `crypt >= 1`, `skip >= 1`.
    fn cbc_decrypt_pattern_blocks(
        &self,
        iv: &mut [u8; 16],
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        for_each_pattern_run(data, crypt, skip, |run| self.cbc_decrypt_blocks(iv, run));
    }
}
