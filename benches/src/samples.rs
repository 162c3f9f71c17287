//! What every bench decrypts: the sizes, the key and IVs, and one sample description per
//! ISO/IEC 23001-7 scheme ([`BenchSample`]), decrypted either through the real API
//! ([`hal::cenc::decrypt_sample`], validation included) or through the raw [`Aes128`]
//! primitives ([`raw_cenc`], [`raw_cbcs`], [`raw_cens`], [`raw_cbc1`]).

use cdm_core::EncryptionScheme;
use hal::aes::Aes128;
use hal::cenc::{decrypt_sample, Pattern, Scheme, Subsample};

use crate::BenchError;

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

    /// The criterion group name: `cenc`, `cbcs-1-9`, `cens-1-9`, `cbc1`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cenc => "cenc",
            Self::Cbcs19 => "cbcs-1-9",
            Self::Cens19 => "cens-1-9",
            Self::Cbc1 => "cbc1",
        }
    }

    /// The ISO/IEC 23001-7 scheme, as `hal::cenc` takes it.
    pub const fn scheme(self) -> Scheme {
        match self {
            Self::Cenc => Scheme::Cenc,
            Self::Cbcs19 => Scheme::Cbcs,
            Self::Cens19 => Scheme::Cens,
            Self::Cbc1 => Scheme::Cbc1,
        }
    }

    /// The same scheme as EME and the ABI name it (what the reference decryptor takes).
    pub const fn encryption_scheme(self) -> EncryptionScheme {
        match self {
            Self::Cenc => EncryptionScheme::Cenc,
            Self::Cbcs19 => EncryptionScheme::Cbcs,
            Self::Cens19 => EncryptionScheme::Cens,
            Self::Cbc1 => EncryptionScheme::Cbc1,
        }
    }

    /// Whether the scheme is CTR based (compared with a CTR peer) or CBC based.
    pub const fn is_ctr(self) -> bool {
        matches!(self, Self::Cenc | Self::Cens19)
    }
}

/// The description of one bench sample: scheme, IV, pattern and subsample map for a sample of
/// a given length (the sample bytes themselves are separate, see [`crate::test_data`]).
#[derive(Clone, Debug)]
pub struct BenchSample {
    kind: BenchScheme,
    len: usize,
    subsamples: Vec<Subsample>,
}

impl BenchSample {
    /// The description for `kind` at `len` bytes. `cenc` and `cbc1` are full-sample (empty
    /// subsample map); `cbcs-1-9` and `cens-1-9` get one video-like subsample:
    /// [`VIDEO_CLEAR_HEADER`] clear bytes, the rest protected under [`VIDEO_PATTERN`].
    ///
    /// [`BenchError::SampleTooLong`] if `len` does not fit a subsample entry (`u32`).
    pub fn new(kind: BenchScheme, len: usize) -> Result<BenchSample, BenchError> {
        let too_long = |_| BenchError::SampleTooLong(len);
        let subsamples = match kind {
            BenchScheme::Cenc | BenchScheme::Cbc1 => Vec::new(),
            BenchScheme::Cbcs19 | BenchScheme::Cens19 => {
                let clear = len.min(VIDEO_CLEAR_HEADER);
                vec![Subsample {
                    clear: u32::try_from(clear).map_err(too_long)?,
                    protected: u32::try_from(len - clear).map_err(too_long)?,
                }]
            }
        };
        Ok(BenchSample {
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

    /// The pattern: [`VIDEO_PATTERN`] for `cbcs-1-9` and `cens-1-9`, none (0:0) otherwise.
    pub fn pattern(&self) -> Pattern {
        match self.kind {
            BenchScheme::Cbcs19 | BenchScheme::Cens19 => VIDEO_PATTERN,
            BenchScheme::Cenc | BenchScheme::Cbc1 => Pattern::default(),
        }
    }

    /// `Ok` if `data` has the sample's length, else [`BenchError::Length`].
    pub fn check_len(&self, data: &[u8]) -> Result<(), BenchError> {
        if data.len() == self.len {
            Ok(())
        } else {
            Err(BenchError::Length {
                expected: self.len,
                got: data.len(),
            })
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
    /// validation: the lower bound for what `decrypt_sample` can cost.
    pub fn decrypt_raw(&self, key: &Aes128, data: &mut [u8]) -> Result<(), BenchError> {
        self.check_len(data)?;
        match self.kind {
            BenchScheme::Cenc => raw_cenc(key, data),
            BenchScheme::Cbc1 => raw_cbc1(key, data),
            BenchScheme::Cbcs19 => raw_cbcs(
                key,
                data.get_mut(VIDEO_CLEAR_HEADER.min(self.len)..)
                    .unwrap_or_default(),
            ),
            BenchScheme::Cens19 => raw_cens(
                key,
                data.get_mut(VIDEO_CLEAR_HEADER.min(self.len)..)
                    .unwrap_or_default(),
            ),
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

/// Raw `cens` 1:9 decryption of one protected range: the CTR keystream from [`CTR_IV`], block
/// counter 0, over every tenth block, trailing partial block clear (ISO/IEC 23001-7 §10.3).
pub fn raw_cens(key: &Aes128, protected: &mut [u8]) {
    let mut ctr = 0u64;
    key.ctr64_xor_pattern(
        &CTR_IV,
        &mut ctr,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{reference_decrypt, test_data};
    use hal::aes::Engine;

    #[test]
    fn sizes_and_labels() {
        let labels: Vec<String> = SIZES.iter().map(|&s| size_label(s)).collect();
        assert_eq!(labels, ["1KiB", "16KiB", "64KiB", "1MiB"]);
        assert_eq!(size_label(100), "100B");
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

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn samples_longer_than_u32_are_refused() {
        let len = 2 * usize::try_from(u32::MAX).unwrap();
        assert!(matches!(
            BenchSample::new(BenchScheme::Cbcs19, len),
            Err(BenchError::SampleTooLong(l)) if l == len
        ));
    }

    /// The API path (`hal::cenc::decrypt_sample`) and the raw path decrypt every scheme like
    /// the reference decryptor (itself checked against OpenSSL and RustCrypto in
    /// `checks`), on every engine, including a length with a trailing partial block.
    #[test]
    fn api_and_raw_paths_match_the_reference_on_every_engine() {
        for len in [KIB, 16 * KIB + 7, 64 * KIB] {
            let data = test_data(len);
            for kind in BenchScheme::ALL {
                let s = BenchSample::new(kind, len).unwrap();
                let expected = reference_decrypt(&s, &data).unwrap();
                assert_ne!(expected, data, "{} len {len}", kind.name());
                for engine in Engine::available() {
                    let key = engine.key(&KEY);
                    let what = format!("{} engine {} len {len}", kind.name(), engine.name());
                    let mut api = data.clone();
                    s.decrypt(&key, &mut api).unwrap();
                    assert_eq!(api, expected, "api {what}");
                    let mut raw = data.clone();
                    s.decrypt_raw(&key, &mut raw).unwrap();
                    assert_eq!(raw, expected, "raw {what}");
                }
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
}
