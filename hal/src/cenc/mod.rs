//! ISO/IEC 23001-7 (Common Encryption) protection schemes, applied in place to one sample.
//!
//! A sample is described by its scheme, IV, pattern and subsample map (the `tenc`/`senc`
//! fields of §8 and §9). [`decrypt_sample`] checks the whole description first and only then
//! touches the buffer, so a refused description leaves the sample exactly as it was.
//!
//! | scheme | cipher | IV | pattern | partial block at the end of a protected range |
//! |---|---|---|---|---|
//! | `cenc` (§10.1) | AES-128-CTR, keystream across subsamples | 8 or 16 bytes | none (0:0) | encrypted |
//! | `cens` (§10.3) | AES-128-CTR, keystream across subsamples | 8 or 16 bytes | `crypt:skip`, 0:0 = all | clear |
//! | `cbc1` (§10.2) | AES-128-CBC, one chain across subsamples | 16 bytes | none (0:0) | clear |
//! | `cbcs` (§10.4) | AES-128-CBC, chain restarts per range | 16 bytes (constant IV) | `crypt:skip`, 0:0 = all | clear |
//!
//! Resource limits (sample size, number of subsamples) belong to the secure world's ABI; this
//! module only checks that a description is well formed.

mod cbc;
mod ctr;
mod subsample;

use crate::aes::Aes128;
#[cfg(feature = "encrypt")]
use cbc::Direction::Encrypt;
use cbc::Direction::{self, Decrypt};

/// The four protection schemes of ISO/IEC 23001-7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AES-128-CTR, full-sample (or subsample-range) encryption.
    Cenc,
    /// AES-128-CBC with a block pattern and a constant IV.
    Cbcs,
    /// AES-128-CTR with a block pattern.
    Cens,
    /// AES-128-CBC, full-sample encryption.
    Cbc1,
}

/// A `crypt:skip` pattern of 16-byte blocks (each value < 16; 0:0 means every block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pattern {
    /// Encrypted blocks at the start of each pattern period.
    pub crypt: u8,
    /// Clear blocks that follow them.
    pub skip: u8,
}

/// One entry of a subsample map: `clear` bytes followed by `protected` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Subsample {
    /// Bytes left in the clear.
    pub clear: u32,
    /// Bytes under the scheme's protection.
    pub protected: u32,
}

/// Why a sample description was refused. The buffer is untouched whenever one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CencError {
    /// The IV length is not allowed for the scheme.
    #[error("IV of {len} bytes is not valid for this scheme")]
    BadIvLength {
        /// The length given.
        len: usize,
    },
    /// The pattern is not valid for the scheme.
    #[error("invalid encryption pattern {crypt}:{skip}")]
    BadPattern {
        /// Crypt blocks given.
        crypt: u8,
        /// Skip blocks given.
        skip: u8,
    },
    /// The subsample map does not add up to the sample length (or overflows).
    #[error("subsample map covers {covered:?} bytes, sample has {len}")]
    SubsampleMismatch {
        /// Bytes the map covers, `None` if the sum overflowed.
        covered: Option<u64>,
        /// The sample length.
        len: usize,
    },
}

/// Decrypts one sample in place.
///
/// `subsamples` empty means the whole sample is protected. Validation happens before any byte
/// is changed: the IV length for the scheme, the pattern, and that the subsample map covers
/// exactly `data.len()` bytes (see [`CencError`]).
pub fn decrypt_sample(
    key: &Aes128,
    scheme: Scheme,
    iv: &[u8],
    pattern: Pattern,
    subsamples: &[Subsample],
    data: &mut [u8],
) -> Result<(), CencError> {
    apply(key, scheme, iv, pattern, subsamples, data, Decrypt)
}

/// Encrypts one sample in place: the exact inverse of [`decrypt_sample`], with the same
/// arguments and the same validation. Used to produce test content and by the demo tooling
/// (feature `encrypt`, off in the secure world); the CTR schemes are their own inverse, the
/// CBC schemes use CBC encryption.
#[cfg(feature = "encrypt")]
pub fn encrypt_sample(
    key: &Aes128,
    scheme: Scheme,
    iv: &[u8],
    pattern: Pattern,
    subsamples: &[Subsample],
    data: &mut [u8],
) -> Result<(), CencError> {
    apply(key, scheme, iv, pattern, subsamples, data, Encrypt)
}

/// Checks an IV against the scheme.
///
/// `cenc`/`cens` take 8 or 16 bytes (§9.1 `Per_Sample_IV_Size`; an 8-byte IV is the high half
/// of the counter block). `cbc1` needs a 16-byte IV (AES-CBC); `cbcs` a 16-byte constant IV
/// (§10.4.1, `default_constant_IV` of 16 bytes).
fn check_iv(scheme: Scheme, iv: &[u8]) -> Result<(), CencError> {
    let ok = match scheme {
        Scheme::Cenc | Scheme::Cens => matches!(iv.len(), 8 | 16),
        Scheme::Cbc1 | Scheme::Cbcs => iv.len() == 16,
    };
    if ok {
        Ok(())
    } else {
        Err(CencError::BadIvLength { len: iv.len() })
    }
}

/// Checks a pattern against the scheme.
///
/// Both values are 4-bit fields of `tenc` (§8.2), so each is below 16. `cenc` and `cbc1` do
/// not use pattern encryption and must carry 0:0 (§9.1: the fields "shall be zero unless
/// pattern-based encryption is in effect"). For `cens`/`cbcs`, 0:0 means every block is
/// encrypted (as Chromium and Shaka Packager read it); a pattern that encrypts nothing
/// (`crypt == 0`, `skip > 0`) is refused.
fn check_pattern(scheme: Scheme, pattern: Pattern) -> Result<(), CencError> {
    let Pattern { crypt, skip } = pattern;
    let ok = crypt < 16
        && skip < 16
        && match scheme {
            Scheme::Cenc | Scheme::Cbc1 => crypt == 0 && skip == 0,
            Scheme::Cens | Scheme::Cbcs => !(crypt == 0 && skip > 0),
        };
    if ok {
        Ok(())
    } else {
        Err(CencError::BadPattern { crypt, skip })
    }
}

fn apply(
    key: &Aes128,
    scheme: Scheme,
    iv: &[u8],
    pattern: Pattern,
    subsamples: &[Subsample],
    data: &mut [u8],
    dir: Direction,
) -> Result<(), CencError> {
    check_iv(scheme, iv)?;
    check_pattern(scheme, pattern)?;
    subsample::validate(subsamples, data.len())?;

    let (crypt, skip) = (usize::from(pattern.crypt), usize::from(pattern.skip));
    match scheme {
        Scheme::Cenc => ctr::cenc(key, iv, subsamples, data),
        Scheme::Cens => ctr::cens(key, iv, crypt, skip, subsamples, data),
        Scheme::Cbc1 | Scheme::Cbcs => {
            let iv16 =
                <&[u8; 16]>::try_from(iv).map_err(|_| CencError::BadIvLength { len: iv.len() })?;
            if scheme == Scheme::Cbc1 {
                cbc::cbc1(key, iv16, dir, subsamples, data);
            } else {
                cbc::cbcs(key, iv16, crypt, skip, dir, subsamples, data);
            }
        }
    }
    Ok(())
}
