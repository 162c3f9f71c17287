//! ISO/IEC 23001-7 (Common Encryption) protection schemes, applied in place to one sample.
//!
//! (Interface fixed; implementation being written.)

use crate::aes::Aes128;

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
/// is changed.
pub fn decrypt_sample(
    _key: &Aes128,
    _scheme: Scheme,
    _iv: &[u8],
    _pattern: Pattern,
    _subsamples: &[Subsample],
    _data: &mut [u8],
) -> Result<(), CencError> {
    unimplemented!("being written")
}
