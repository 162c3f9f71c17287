//! Shared helpers for the tee-cdm benchmarks.
//!
//! The criterion benches (`benches/cenc.rs`) and the side-by-side `report` binary use the same
//! inputs and the same peers, defined here once:
//!
//! - sample sizes ([`SIZES`]) and deterministic test data ([`test_data`]);
//! - bench samples for each ISO/IEC 23001-7 scheme ([`BenchSample`]): key, IV, pattern and a
//!   video-like subsample map, decrypted either through the real API
//!   ([`hal::cenc::decrypt_sample`], validation included) or through the raw [`Aes128`]
//!   primitives ([`raw_cenc`], [`raw_cbcs`], [`raw_cbc1`]);
//! - the peers measured in the same run: OpenSSL's EVP AES-128-CTR and AES-128-CBC
//!   ([`OpensslCtr`], [`OpensslCbc`]) and RustCrypto `ctr::Ctr64BE<aes::Aes128>`
//!   ([`RustCryptoCtr`]);
//! - the check every bench and the report run before timing: the API path of every engine
//!   must decrypt every scheme to the bytes OpenSSL computes ([`reference_decrypt`],
//!   [`verify_api_paths`]); a mismatch is a hard error.
//!
//! The ABI and EME paths (the secure world called directly, `MediaKeys` in and out of process,
//! whole license sessions) are in [`eme`], used by `benches/abi.rs` and the report.
//!
//! Fairness rules the peers follow: every peer is constructed once per key (key schedule
//! outside the timed loop), each timed call only resets the IV/counter and then transforms the
//! buffer in place, exactly like the engine paths do. Nothing is allocated inside a timed call.
#![forbid(unsafe_code)]

pub mod eme;

use core::fmt;

use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherError, StreamCipherSeek};
use hal::aes::{Aes128, Engine, BLOCK};
use hal::cenc::{decrypt_sample, CencError, Pattern, Scheme, Subsample};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::error::ErrorStack;

/// One KiB.
pub const KIB: usize = 1024;

/// The sample sizes every scheme is measured at: a small audio frame (1 KiB), typical video
/// slices (16 KiB, 64 KiB) and a large key frame (1 MiB).
pub const SIZES: [usize; 4] = [KIB, 16 * KIB, 64 * KIB, 1024 * KIB];

/// The content key of every bench: the AES-128 key of NIST SP 800-38A, appendix F.
pub const KEY: [u8; 16] = [
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
];

/// The 8-byte IV of the CTR schemes (`cenc`, `cens`): the high half of the counter block, the
/// 64-bit block counter starting at 0 (ISO/IEC 23001-7 §9.2).
pub const CTR_IV: [u8; 8] = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7];

/// The 16-byte IV of the CBC schemes (`cbcs` constant IV, `cbc1` per-sample IV).
pub const CBC_IV: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];

/// The full 16-byte counter block a 128-bit-counter CTR peer starts from: [`CTR_IV`] followed
/// by a zero 64-bit block counter. The bench samples are far too short for the low half to
/// wrap, so a 128-bit counter (OpenSSL) and the 64-bit `cenc` counter produce the same
/// keystream here.
pub const CTR_COUNTER_BLOCK: [u8; 16] = [
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The clear prefix of the video-like subsample map: about a NAL unit header plus a short
/// slice header, which packagers leave in the clear (ISO/IEC 23001-7 §10.6 for the pattern
/// schemes on video).
pub const VIDEO_CLEAR_HEADER: usize = 32;

/// The `cbcs`/`cens` pattern used for video: 1 encrypted block, 9 clear blocks
/// (ISO/IEC 23001-7 §10.4 and §10.5 recommend 1:9).
pub const VIDEO_PATTERN: Pattern = Pattern { crypt: 1, skip: 9 };

/// A short label for a size: `1KiB`, `16KiB`, `64KiB`, `1MiB`, or the byte count otherwise.
pub fn size_label(len: usize) -> String {
    const MIB: usize = 1024 * KIB;
    if len >= MIB && len.is_multiple_of(MIB) {
        format!("{}MiB", len / MIB)
    } else if len >= KIB && len.is_multiple_of(KIB) {
        format!("{}KiB", len / KIB)
    } else {
        format!("{len}B")
    }
}

/// `len` bytes of deterministic pseudo-random data (SplitMix64 from a fixed seed), so every
/// run and every case starts from the same bytes.
pub fn test_data(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x007e_ecd3_0000_0001;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(z.to_le_bytes().get(..take).unwrap_or_default());
    }
    out
}

/// The scheme configurations the benches measure, with their group names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BenchScheme {
    /// `cenc`: AES-128-CTR over the whole sample (no subsample map, as for audio or
    /// full-sample encryption) — directly comparable with a plain CTR peer.
    Cenc,
    /// `cbcs` with the 1:9 pattern and the video-like subsample map.
    Cbcs19,
    /// `cens` with the 1:9 pattern and the video-like subsample map.
    Cens19,
    /// `cbc1`: AES-128-CBC over the whole sample (no subsample map) — directly comparable with
    /// a plain CBC peer.
    Cbc1,
}

impl BenchScheme {
    /// Every configuration, in the order the benches run them.
    pub const ALL: [BenchScheme; 4] = [Self::Cenc, Self::Cbcs19, Self::Cens19, Self::Cbc1];

    /// The criterion group name: `cenc`, `cbcs-1-9`, `cens`, `cbc1`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cenc => "cenc",
            Self::Cbcs19 => "cbcs-1-9",
            Self::Cens19 => "cens",
            Self::Cbc1 => "cbc1",
        }
    }

    /// The ISO/IEC 23001-7 scheme.
    pub const fn scheme(self) -> Scheme {
        match self {
            Self::Cenc => Scheme::Cenc,
            Self::Cbcs19 => Scheme::Cbcs,
            Self::Cens19 => Scheme::Cens,
            Self::Cbc1 => Scheme::Cbc1,
        }
    }

    /// Whether the scheme is CTR based (compared with a CTR peer) or CBC based.
    pub const fn is_ctr(self) -> bool {
        matches!(self, Self::Cenc | Self::Cens19)
    }
}

/// Why a bench helper could not run.
#[derive(Debug)]
pub enum BenchError {
    /// The sample description was refused by `hal::cenc`.
    Cenc(CencError),
    /// OpenSSL reported an error.
    Openssl(ErrorStack),
    /// The RustCrypto stream cipher refused to seek.
    RustCrypto(StreamCipherError),
    /// A buffer has the wrong length for the operation.
    Length {
        /// What the operation needs.
        expected: usize,
        /// What it got.
        got: usize,
    },
    /// An EME call (`MediaKeys`, `MediaKeySession`) failed.
    Eme(normal_world::EmeError),
    /// Setting up or running an ABI path failed (secure world, license, transport).
    Setup(String),
    /// A path decrypted a known sample to the wrong bytes.
    Mismatch(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cenc(e) => write!(f, "hal::cenc refused the sample: {e}"),
            Self::Openssl(e) => write!(f, "OpenSSL error: {e}"),
            Self::RustCrypto(e) => write!(f, "RustCrypto error: {e}"),
            Self::Length { expected, got } => {
                write!(f, "buffer of {got} bytes, the operation needs {expected}")
            }
            Self::Eme(e) => write!(f, "EME error: {e}"),
            Self::Setup(what) => write!(f, "ABI path: {what}"),
            Self::Mismatch(what) => write!(f, "wrong output: {what}"),
        }
    }
}

impl core::error::Error for BenchError {}

impl From<CencError> for BenchError {
    fn from(e: CencError) -> Self {
        Self::Cenc(e)
    }
}

impl From<normal_world::EmeError> for BenchError {
    fn from(e: normal_world::EmeError) -> Self {
        Self::Eme(e)
    }
}

impl From<ErrorStack> for BenchError {
    fn from(e: ErrorStack) -> Self {
        Self::Openssl(e)
    }
}

impl From<StreamCipherError> for BenchError {
    fn from(e: StreamCipherError) -> Self {
        Self::RustCrypto(e)
    }
}

/// The description of one bench sample: scheme, IV, pattern and subsample map for a sample of
/// a given length (the sample bytes themselves are separate, see [`test_data`]).
#[derive(Clone, Debug)]
pub struct BenchSample {
    kind: BenchScheme,
    len: usize,
    subsamples: Vec<Subsample>,
}

impl BenchSample {
    /// The description for `kind` at `len` bytes. `cenc` and `cbc1` are full-sample (empty
    /// subsample map); `cbcs-1-9` and `cens` get one video-like subsample:
    /// [`VIDEO_CLEAR_HEADER`] clear bytes, the rest protected under [`VIDEO_PATTERN`].
    ///
    /// `None` if `len` does not fit a subsample entry (`u32`).
    pub fn new(kind: BenchScheme, len: usize) -> Option<BenchSample> {
        let subsamples = match kind {
            BenchScheme::Cenc | BenchScheme::Cbc1 => Vec::new(),
            BenchScheme::Cbcs19 | BenchScheme::Cens19 => {
                let clear = len.min(VIDEO_CLEAR_HEADER);
                vec![Subsample {
                    clear: u32::try_from(clear).ok()?,
                    protected: u32::try_from(len.checked_sub(clear)?).ok()?,
                }]
            }
        };
        Some(BenchSample {
            kind,
            len,
            subsamples,
        })
    }

    /// The scheme configuration.
    pub fn kind(&self) -> BenchScheme {
        self.kind
    }

    /// The sample length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the sample is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The subsample map passed to `decrypt_sample` (empty: the whole sample is protected).
    pub fn subsamples(&self) -> &[Subsample] {
        &self.subsamples
    }

    /// The IV for the scheme: [`CTR_IV`] (8 bytes) for the CTR schemes, [`CBC_IV`] for CBC.
    pub fn iv(&self) -> &'static [u8] {
        if self.kind.is_ctr() {
            &CTR_IV
        } else {
            &CBC_IV
        }
    }

    /// The pattern: [`VIDEO_PATTERN`] for `cbcs-1-9` and `cens`, none (0:0) otherwise.
    pub fn pattern(&self) -> Pattern {
        match self.kind {
            BenchScheme::Cbcs19 | BenchScheme::Cens19 => VIDEO_PATTERN,
            BenchScheme::Cenc | BenchScheme::Cbc1 => Pattern::default(),
        }
    }

    /// Decrypts `data` in place through the real API, [`hal::cenc::decrypt_sample`]
    /// (validation of IV, pattern and subsample map included).
    pub fn decrypt(&self, key: &Aes128, data: &mut [u8]) -> Result<(), BenchError> {
        decrypt_sample(
            key,
            self.kind.scheme(),
            self.iv(),
            self.pattern(),
            &self.subsamples,
            data,
        )?;
        Ok(())
    }

    /// Decrypts `data` in place through the raw [`Aes128`] primitives, without the API's
    /// validation: the lower bound for what `decrypt_sample` can cost. `cens` has no raw
    /// path (there is no CTR-pattern primitive); it returns the API path's result instead.
    pub fn decrypt_raw(&self, key: &Aes128, data: &mut [u8]) -> Result<(), BenchError> {
        if data.len() != self.len {
            return Err(BenchError::Length {
                expected: self.len,
                got: data.len(),
            });
        }
        match self.kind {
            BenchScheme::Cenc => raw_cenc(key, data),
            BenchScheme::Cbc1 => raw_cbc1(key, data),
            BenchScheme::Cbcs19 => raw_cbcs(
                key,
                data.get_mut(VIDEO_CLEAR_HEADER.min(self.len)..)
                    .unwrap_or_default(),
            ),
            BenchScheme::Cens19 => return self.decrypt(key, data),
        }
        Ok(())
    }
}

/// Raw `cenc` full-sample decryption: the CTR keystream from [`CTR_IV`], block counter 0.
pub fn raw_cenc(key: &Aes128, data: &mut [u8]) {
    let mut ctr = 0u64;
    key.ctr64_xor(&CTR_IV, &mut ctr, data);
}

/// Raw `cbcs` 1:9 decryption of one protected range: CBC from the constant [`CBC_IV`] over
/// every tenth block, trailing partial block clear (ISO/IEC 23001-7 §10.4.2).
pub fn raw_cbcs(key: &Aes128, protected: &mut [u8]) {
    let mut iv = CBC_IV;
    key.cbc_decrypt_pattern(
        &mut iv,
        protected,
        usize::from(VIDEO_PATTERN.crypt),
        usize::from(VIDEO_PATTERN.skip),
    );
}

/// Raw `cbc1` full-sample decryption: CBC from [`CBC_IV`] over the whole blocks.
pub fn raw_cbc1(key: &Aes128, data: &mut [u8]) {
    let mut iv = CBC_IV;
    key.cbc_decrypt(&mut iv, data);
}

/// The expected plaintext of `data` decrypted as `sample`, computed without `hal` by OpenSSL
/// (an independent implementation of NIST SP 800-38A CTR and CBC):
///
/// - `cenc`: the whole sample XORed with the CTR keystream from [`CTR_COUNTER_BLOCK`];
/// - `cbc1`: the whole blocks CBC-decrypted from [`CBC_IV`], a trailing partial block clear;
/// - `cbcs-1-9` / `cens`: the first [`VIDEO_CLEAR_HEADER`] bytes clear; of the protected
///   range's whole blocks, the encrypted ones under [`VIDEO_PATTERN`] (ISO/IEC 23001-7 §9.6.1:
///   `crypt` blocks encrypted, then `skip` clear) are gathered into one buffer, decrypted as
///   one CBC chain from the constant IV (`cbcs`, §10.4) or one CTR keystream (`cens`, §10.3,
///   only encrypted blocks consume keystream) and scattered back; a trailing partial block
///   stays clear.
pub fn reference_decrypt(sample: &BenchSample, data: &[u8]) -> Result<Vec<u8>, BenchError> {
    if data.len() != sample.len() {
        return Err(BenchError::Length {
            expected: sample.len(),
            got: data.len(),
        });
    }
    let mut out = data.to_vec();
    match sample.kind() {
        BenchScheme::Cenc => OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)?.apply(&mut out)?,
        BenchScheme::Cbc1 => {
            let whole = data.len() - data.len() % BLOCK;
            let mut buf = data.get(..whole).unwrap_or_default().to_vec();
            buf.resize(whole.saturating_add(OpensslCbc::SLACK), 0);
            OpensslCbc::new(&KEY, &CBC_IV)?.apply(&mut buf, whole)?;
            if let (Some(dst), Some(src)) = (out.get_mut(..whole), buf.get(..whole)) {
                dst.copy_from_slice(src);
            }
        }
        BenchScheme::Cbcs19 | BenchScheme::Cens19 => {
            let clear = VIDEO_CLEAR_HEADER.min(data.len());
            let period = usize::from(VIDEO_PATTERN.crypt) + usize::from(VIDEO_PATTERN.skip);
            let crypt = usize::from(VIDEO_PATTERN.crypt);
            let blocks = (data.len() - clear) / BLOCK;
            let starts: Vec<usize> = (0..blocks)
                .filter(|b| b % period < crypt)
                .map(|b| clear + b * BLOCK)
                .collect();
            let mut chain: Vec<u8> = starts
                .iter()
                .flat_map(|&s| data.get(s..s + BLOCK).unwrap_or_default().iter().copied())
                .collect();
            let n = chain.len();
            if sample.kind() == BenchScheme::Cbcs19 {
                chain.resize(n.saturating_add(OpensslCbc::SLACK), 0);
                OpensslCbc::new(&KEY, &CBC_IV)?.apply(&mut chain, n)?;
            } else {
                OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)?.apply(&mut chain)?;
            }
            for (block, &s) in chain.chunks_exact(BLOCK).zip(&starts) {
                if let Some(dst) = out.get_mut(s..s + BLOCK) {
                    dst.copy_from_slice(block);
                }
            }
        }
    }
    Ok(out)
}

/// Checks, before anything is timed, that the API path ([`BenchSample::decrypt`], i.e.
/// `hal::cenc::decrypt_sample`) of every engine in `engines` decrypts every scheme in
/// [`BenchScheme::ALL`] at every length in `lens` to the bytes of [`reference_decrypt`].
/// The first difference is a [`BenchError::Mismatch`]: a bench of a wrong result is
/// worthless, so callers abort on it.
pub fn verify_api_paths(engines: &[Engine], lens: &[usize]) -> Result<(), BenchError> {
    verify_with(engines, lens, |sample, key, data| sample.decrypt(key, data))
}

/// [`verify_api_paths`] with the decrypt path as a parameter (the tests pass wrong paths).
fn verify_with(
    engines: &[Engine],
    lens: &[usize],
    decrypt: impl Fn(&BenchSample, &Aes128, &mut [u8]) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    for &len in lens {
        let data = test_data(len);
        for kind in BenchScheme::ALL {
            let sample = BenchSample::new(kind, len).ok_or(BenchError::Length {
                expected: u32::MAX as usize,
                got: len,
            })?;
            let expected = reference_decrypt(&sample, &data)?;
            for engine in engines {
                let mut buf = data.clone();
                decrypt(&sample, &engine.key(&KEY), &mut buf)?;
                if buf != expected {
                    return Err(BenchError::Mismatch(format!(
                        "hal::cenc::decrypt_sample, engine {}, {} at {}: output differs from \
                         OpenSSL",
                        engine.name(),
                        kind.name(),
                        size_label(len)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// OpenSSL `EVP_aes_128_ctr` decryption, in place.
///
/// The context is initialised with the key once; [`OpensslCtr::apply`] re-initialises only the
/// IV (`EVP_DecryptInit_ex` with no cipher and no key, which keeps the key schedule) and runs
/// one `EVP_DecryptUpdate` over the buffer.
pub struct OpensslCtr {
    ctx: CipherCtx,
    iv: [u8; 16],
}

impl OpensslCtr {
    /// A context for `key`, restarting from the 16-byte counter block `iv` on every call.
    pub fn new(key: &[u8; 16], iv: &[u8; 16]) -> Result<OpensslCtr, BenchError> {
        let mut ctx = CipherCtx::new()?;
        ctx.decrypt_init(Some(Cipher::aes_128_ctr()), Some(key), Some(iv))?;
        Ok(OpensslCtr { ctx, iv: *iv })
    }

    /// XORs the keystream from the initial counter block into `data`, in place.
    pub fn apply(&mut self, data: &mut [u8]) -> Result<(), BenchError> {
        self.ctx.decrypt_init(None, None, Some(&self.iv))?;
        let out = self.ctx.cipher_update_inplace(data, data.len())?;
        if out != data.len() {
            return Err(BenchError::Length {
                expected: data.len(),
                got: out,
            });
        }
        Ok(())
    }
}

/// OpenSSL `EVP_aes_128_cbc` decryption with padding disabled, in place.
///
/// Like [`OpensslCtr`]: key schedule once, IV re-initialised per call. OpenSSL's in-place
/// update insists on a buffer one block longer than the input (its general output bound), so
/// [`OpensslCbc::apply`] takes the payload length separately; the extra block is never
/// written when padding is off and the input is whole blocks.
pub struct OpensslCbc {
    ctx: CipherCtx,
    iv: [u8; 16],
}

impl OpensslCbc {
    /// The slack OpenSSL's in-place update requires after the payload.
    pub const SLACK: usize = BLOCK;

    /// A context for `key`, restarting from `iv` on every call.
    pub fn new(key: &[u8; 16], iv: &[u8; 16]) -> Result<OpensslCbc, BenchError> {
        let mut ctx = CipherCtx::new()?;
        ctx.decrypt_init(Some(Cipher::aes_128_cbc()), Some(key), Some(iv))?;
        ctx.set_padding(false);
        Ok(OpensslCbc { ctx, iv: *iv })
    }

    /// CBC-decrypts the first `len` bytes of `buf` in place. `len` must be a multiple of 16
    /// and `buf` at least `len + SLACK` bytes long.
    pub fn apply(&mut self, buf: &mut [u8], len: usize) -> Result<(), BenchError> {
        let need = len.saturating_add(Self::SLACK);
        if !len.is_multiple_of(BLOCK) || buf.len() < need {
            return Err(BenchError::Length {
                expected: need,
                got: buf.len(),
            });
        }
        self.ctx.decrypt_init(None, None, Some(&self.iv))?;
        let out = self.ctx.cipher_update_inplace(buf, len)?;
        if out != len {
            return Err(BenchError::Length {
                expected: len,
                got: out,
            });
        }
        Ok(())
    }
}

/// RustCrypto `ctr::Ctr64BE<aes::Aes128>` (the `aes` crate detects AES-NI on x86_64 itself).
///
/// Constructed once per key; [`RustCryptoCtr::apply`] seeks back to the start of the
/// keystream and applies it in place.
pub struct RustCryptoCtr {
    cipher: ctr::Ctr64BE<aes::Aes128>,
}

impl RustCryptoCtr {
    /// A cipher for `key` starting from the 16-byte counter block `iv`.
    pub fn new(key: &[u8; 16], iv: &[u8; 16]) -> Result<RustCryptoCtr, BenchError> {
        Ok(RustCryptoCtr {
            cipher: ctr::Ctr64BE::<aes::Aes128>::new(key.into(), iv.into()),
        })
    }

    /// XORs the keystream from the initial counter block into `data`, in place.
    pub fn apply(&mut self, data: &mut [u8]) -> Result<(), BenchError> {
        self.cipher.try_seek(0u64)?;
        self.cipher.try_apply_keystream(data)?;
        Ok(())
    }
}

/// The CPU model from `/proc/cpuinfo` (`model name`, or `CPU part`/`Processor` elsewhere),
/// or `"unknown"`.
pub fn cpu_model() -> String {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return "unknown".to_owned();
    };
    ["model name", "Processor", "CPU part"]
        .iter()
        .find_map(|field| {
            info.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == *field).then(|| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::aes::Engine;

    fn engines() -> Vec<Engine> {
        Engine::available().collect()
    }

    #[test]
    fn sizes_and_labels() {
        let labels: Vec<String> = SIZES.iter().map(|&s| size_label(s)).collect();
        assert_eq!(labels, ["1KiB", "16KiB", "64KiB", "1MiB"]);
        assert_eq!(size_label(100), "100B");
    }

    #[test]
    fn test_data_is_deterministic_and_not_constant() {
        let a = test_data(1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, test_data(1000));
        assert_eq!(a.get(..999), test_data(999).get(..));
        // SplitMix64 first output for this seed, computed independently of this helper.
        let mut z: u64 = 0x007e_ecd3_0000_0001u64.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        assert_eq!(a.get(..8), Some(&z.to_le_bytes()[..]));
        assert!(a.iter().any(|&b| b != a[0]));
    }

    #[test]
    fn sample_maps_cover_the_sample() {
        for kind in BenchScheme::ALL {
            for len in SIZES {
                let s = BenchSample::new(kind, len).expect("bench sizes fit u32");
                let covered: u64 = s
                    .subsamples()
                    .iter()
                    .map(|e| u64::from(e.clear) + u64::from(e.protected))
                    .sum();
                if s.subsamples().is_empty() {
                    assert!(matches!(kind, BenchScheme::Cenc | BenchScheme::Cbc1));
                } else {
                    assert_eq!(covered, len as u64);
                    assert_eq!(s.subsamples()[0].clear as usize, VIDEO_CLEAR_HEADER);
                }
                assert_eq!(s.iv().len(), if kind.is_ctr() { 8 } else { 16 });
            }
        }
    }

    #[test]
    fn openssl_and_rustcrypto_ctr_agree_and_restart() {
        let data = test_data(64 * KIB + 5);
        let mut a = data.clone();
        let mut b = data.clone();
        let mut ossl = OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK).unwrap();
        let mut rc = RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK).unwrap();
        ossl.apply(&mut a).unwrap();
        rc.apply(&mut b).unwrap();
        assert_ne!(a, data);
        assert_eq!(a, b);
        // Second call restarts the keystream: CTR twice is the identity.
        ossl.apply(&mut a).unwrap();
        rc.apply(&mut b).unwrap();
        assert_eq!(a, data);
        assert_eq!(b, data);
    }

    #[test]
    fn openssl_ctr_matches_sp800_38a_f5_2() {
        // NIST SP 800-38A F.5.2 (CTR-AES128.Decrypt), first block.
        let iv = [
            0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd,
            0xfe, 0xff,
        ];
        let mut block = [
            0x87, 0x4d, 0x61, 0x91, 0xb6, 0x20, 0xe3, 0x26, 0x1b, 0xef, 0x68, 0x64, 0x99, 0x0d,
            0xb6, 0xce,
        ];
        OpensslCtr::new(&KEY, &iv)
            .unwrap()
            .apply(&mut block)
            .unwrap();
        assert_eq!(
            block,
            [
                0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
                0x17, 0x2a
            ]
        );
    }

    #[test]
    fn openssl_cbc_matches_sp800_38a_f2_2_and_restarts() {
        // NIST SP 800-38A F.2.2 (CBC-AES128.Decrypt), first two blocks.
        let ct = [
            0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9,
            0x19, 0x7d, 0x50, 0x86, 0xcb, 0x9b, 0x50, 0x72, 0x19, 0xee, 0x95, 0xdb, 0x11, 0x3a,
            0x91, 0x76, 0x78, 0xb2,
        ];
        let pt = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a, 0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac,
            0x45, 0xaf, 0x8e, 0x51,
        ];
        let mut ossl = OpensslCbc::new(&KEY, &CBC_IV).unwrap();
        for _ in 0..2 {
            let mut buf = [0u8; 48];
            buf[..32].copy_from_slice(&ct);
            ossl.apply(&mut buf, 32).unwrap();
            assert_eq!(buf[..32], pt);
            assert_eq!(buf[32..], [0u8; 16]);
        }
        let mut short = [0u8; 32];
        assert!(matches!(
            ossl.apply(&mut short, 32),
            Err(BenchError::Length { .. })
        ));
        assert!(matches!(
            ossl.apply(&mut [0u8; 40], 24),
            Err(BenchError::Length { .. })
        ));
    }

    #[test]
    fn raw_paths_match_the_peers_on_every_engine() {
        let len = 64 * KIB;
        let data = test_data(len);
        let mut ctr_ref = data.clone();
        RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK)
            .unwrap()
            .apply(&mut ctr_ref)
            .unwrap();
        let mut cbc_ref = data.clone();
        cbc_ref.resize(len + OpensslCbc::SLACK, 0);
        OpensslCbc::new(&KEY, &CBC_IV)
            .unwrap()
            .apply(&mut cbc_ref, len)
            .unwrap();
        cbc_ref.truncate(len);

        for engine in engines() {
            let key = engine.key(&KEY);
            let cenc = BenchSample::new(BenchScheme::Cenc, len).unwrap();
            let mut buf = data.clone();
            cenc.decrypt_raw(&key, &mut buf).unwrap();
            assert_eq!(buf, ctr_ref, "cenc raw, engine {}", engine.name());

            let cbc1 = BenchSample::new(BenchScheme::Cbc1, len).unwrap();
            let mut buf = data.clone();
            cbc1.decrypt_raw(&key, &mut buf).unwrap();
            assert_eq!(buf, cbc_ref, "cbc1 raw, engine {}", engine.name());
        }
    }

    /// The expected `cbcs` 1:9 output computed independently, in the test itself: the
    /// encrypted blocks (every tenth block of the protected range) form one CBC chain from
    /// the constant IV, decrypted by OpenSSL; every other byte stays as it was.
    fn cbcs_reference(data: &[u8]) -> Vec<u8> {
        let protected = &data[VIDEO_CLEAR_HEADER..];
        let starts: Vec<usize> = (0..protected.len() / BLOCK)
            .step_by(10)
            .map(|b| VIDEO_CLEAR_HEADER + b * BLOCK)
            .collect();
        let mut chain: Vec<u8> = starts
            .iter()
            .flat_map(|&s| data[s..s + BLOCK].iter().copied())
            .collect();
        let n = chain.len();
        chain.resize(n + OpensslCbc::SLACK, 0);
        OpensslCbc::new(&KEY, &CBC_IV)
            .unwrap()
            .apply(&mut chain, n)
            .unwrap();
        let mut out = data.to_vec();
        for (i, &s) in starts.iter().enumerate() {
            out[s..s + BLOCK].copy_from_slice(&chain[i * BLOCK..(i + 1) * BLOCK]);
        }
        out
    }

    /// The expected `cens` 1:9 output computed independently: every tenth block of the
    /// protected range XORed with consecutive blocks of the SP 800-38A CTR keystream from
    /// `CTR_IV || 0` (made by RustCrypto, so not by the OpenSSL code of
    /// `reference_decrypt`); every other byte stays as it was.
    fn cens_reference(data: &[u8]) -> Vec<u8> {
        let blocks = (data.len() - VIDEO_CLEAR_HEADER) / BLOCK;
        let encrypted = blocks.div_ceil(10);
        let mut keystream = vec![0u8; encrypted * BLOCK];
        RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK)
            .unwrap()
            .apply(&mut keystream)
            .unwrap();
        let mut out = data.to_vec();
        for (i, ks) in keystream.chunks_exact(BLOCK).enumerate() {
            let s = VIDEO_CLEAR_HEADER + i * 10 * BLOCK;
            for (o, k) in out[s..s + BLOCK].iter_mut().zip(ks) {
                *o ^= k;
            }
        }
        out
    }

    #[test]
    fn raw_cbcs_matches_independent_reference() {
        for len in [KIB, 16 * KIB + 7] {
            let data = test_data(len);
            let expected = cbcs_reference(&data);
            assert_ne!(expected, data);
            for engine in engines() {
                let key = engine.key(&KEY);
                let s = BenchSample::new(BenchScheme::Cbcs19, len).unwrap();
                let mut buf = data.clone();
                s.decrypt_raw(&key, &mut buf).unwrap();
                assert_eq!(
                    buf,
                    expected,
                    "cbcs raw, engine {}, len {len}",
                    engine.name()
                );
            }
        }
    }

    #[test]
    fn raw_path_rejects_wrong_length() {
        let key = Engine::best().key(&KEY);
        let s = BenchSample::new(BenchScheme::Cenc, KIB).unwrap();
        let mut buf = vec![0u8; KIB + 1];
        assert!(matches!(
            s.decrypt_raw(&key, &mut buf),
            Err(BenchError::Length {
                expected: 1024,
                got: 1025
            })
        ));
        assert!(buf.iter().all(|&b| b == 0));
    }

    /// `reference_decrypt` agrees with the independent computations above and with the
    /// peers: `cenc` is RustCrypto CTR over the whole sample, `cbc1` OpenSSL CBC over the whole
    /// blocks with the tail clear, `cbcs`/`cens` the per-block constructions.
    #[test]
    fn reference_decrypt_matches_independent_computations() {
        for len in [KIB, 16 * KIB + 7] {
            let data = test_data(len);

            let s = BenchSample::new(BenchScheme::Cenc, len).unwrap();
            let mut expected = data.clone();
            RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK)
                .unwrap()
                .apply(&mut expected)
                .unwrap();
            assert_eq!(
                reference_decrypt(&s, &data).unwrap(),
                expected,
                "cenc {len}"
            );

            let s = BenchSample::new(BenchScheme::Cbc1, len).unwrap();
            let whole = len / BLOCK * BLOCK;
            let mut expected = data[..whole].to_vec();
            expected.resize(whole + OpensslCbc::SLACK, 0);
            OpensslCbc::new(&KEY, &CBC_IV)
                .unwrap()
                .apply(&mut expected, whole)
                .unwrap();
            expected.truncate(whole);
            expected.extend_from_slice(&data[whole..]);
            assert_eq!(
                reference_decrypt(&s, &data).unwrap(),
                expected,
                "cbc1 {len}"
            );

            let s = BenchSample::new(BenchScheme::Cbcs19, len).unwrap();
            assert_eq!(
                reference_decrypt(&s, &data).unwrap(),
                cbcs_reference(&data),
                "cbcs {len}"
            );

            let s = BenchSample::new(BenchScheme::Cens19, len).unwrap();
            let expected = cens_reference(&data);
            assert_ne!(expected, data);
            assert_eq!(
                reference_decrypt(&s, &data).unwrap(),
                expected,
                "cens {len}"
            );

            assert!(matches!(
                reference_decrypt(&s, &data[1..]),
                Err(BenchError::Length { .. })
            ));
        }
    }

    /// The API path (`hal::cenc::decrypt_sample`) decrypts every scheme like the independent
    /// references, on every engine, and like the raw path where there is one.
    #[test]
    fn api_path_matches_references_on_every_engine() {
        for len in [KIB, 16 * KIB + 7] {
            let data = test_data(len);
            let expected = [
                (BenchScheme::Cenc, {
                    let mut e = data.clone();
                    RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK)
                        .unwrap()
                        .apply(&mut e)
                        .unwrap();
                    e
                }),
                (BenchScheme::Cbcs19, cbcs_reference(&data)),
                (BenchScheme::Cens19, cens_reference(&data)),
                (
                    BenchScheme::Cbc1,
                    reference_decrypt(&BenchSample::new(BenchScheme::Cbc1, len).unwrap(), &data)
                        .unwrap(),
                ),
            ];
            for engine in engines() {
                let key = engine.key(&KEY);
                for (kind, expected) in &expected {
                    let s = BenchSample::new(*kind, len).unwrap();
                    let mut api = data.clone();
                    s.decrypt(&key, &mut api).unwrap();
                    assert_ne!(api, data, "{} engine {}", kind.name(), engine.name());
                    assert_eq!(
                        &api,
                        expected,
                        "{} engine {} len {len}",
                        kind.name(),
                        engine.name()
                    );
                    if *kind != BenchScheme::Cens19 {
                        let mut raw = data.clone();
                        s.decrypt_raw(&key, &mut raw).unwrap();
                        assert_eq!(api, raw, "{} engine {} raw", kind.name(), engine.name());
                    }
                }
            }
        }
    }

    #[test]
    fn verify_api_paths_passes_on_every_engine() {
        verify_api_paths(&engines(), &[KIB, 64 * KIB]).unwrap();
    }

    #[test]
    fn verify_rejects_wrong_paths() {
        let engines = engines();
        // A path that does nothing.
        assert!(matches!(
            verify_with(&engines, &[KIB], |_, _, _| Ok(())),
            Err(BenchError::Mismatch(_))
        ));
        // A path that is right except for one flipped bit in the last byte.
        let err = verify_with(&engines, &[KIB], |s, k, d| {
            s.decrypt(k, d)?;
            if let Some(last) = d.last_mut() {
                *last ^= 1;
            }
            Ok(())
        });
        assert!(matches!(err, Err(BenchError::Mismatch(_))));
        // A path that fails is reported as its own error, not as a pass.
        assert!(matches!(
            verify_with(&engines, &[KIB], |_, _, _| Err(BenchError::Setup(
                "x".into()
            ))),
            Err(BenchError::Setup(_))
        ));
        // And the real path passes the same check.
        verify_with(&engines, &[KIB], |s, k, d| s.decrypt(k, d)).unwrap();
    }
}
