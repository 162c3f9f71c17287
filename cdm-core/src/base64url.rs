//! Strict base64url without padding (RFC 4648 §5), as EME Clear Key uses it.
//!
//! EME §9.1.7 ("Using base64url") refers to RFC 7515 Appendix C: no `=` padding, and `-` / `_`
//! instead of `+` / `/`. Only the canonical encoding is accepted: no padding, no whitespace, no
//! characters of the standard alphabet, no length of the form `4n + 1`, and no set bits in the
//! unused low bits of the last character (so every byte string has exactly one accepted
//! encoding).
//!
//! Encoding and decoding are RustCrypto's `base64ct`, which runs in constant time: the time
//! taken does not depend on the bytes, so decoding a content key leaks nothing about it. For
//! the same reason a malformed input is reported as [`Base64UrlError::InvalidEncoding`]
//! without saying which character was wrong. The decoder writes into a caller-provided buffer
//! ([`decode_to_slice`]) so that key material can be decoded straight into its zeroizing
//! home without an intermediate heap copy.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};

/// Why a base64url string was rejected. Only lengths are reported (they are public); where
/// the content is wrong is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64UrlError {
    /// The length is `4n + 1`, which no byte string encodes to.
    #[error("base64url: impossible length {len}")]
    InvalidLength {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A character outside the alphabet `A-Z a-z 0-9 - _` (padding included), or set bits
    /// beyond the encoded bytes in the last character (a non-canonical encoding).
    #[error("base64url: invalid encoding")]
    InvalidEncoding,
    /// The decoded length differs from the length the caller required.
    #[error("base64url: decodes to {actual} bytes, expected {expected}")]
    LengthMismatch {
        /// Length the caller required.
        expected: usize,
        /// Length the input decodes to.
        actual: usize,
    },
    /// Memory for the decoded bytes could not be allocated.
    #[error("base64url: out of memory")]
    OutOfMemory,
}

/// Length of the unpadded encoding of `n` bytes.
///
/// Saturates at `usize::MAX` for `n` above about `usize::MAX / 4 * 3`, which no slice reaches
/// (a slice holds at most `isize::MAX` bytes).
pub const fn encoded_len(n: usize) -> usize {
    // 4 characters per full 3-byte group, plus 2 or 3 for a 1- or 2-byte tail.
    let tail = match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    (n / 3).saturating_mul(4).saturating_add(tail)
}

/// Number of bytes an input of `len` characters decodes to, or `None` for the impossible
/// length `4n + 1`.
pub const fn decoded_len(len: usize) -> Option<usize> {
    // 3 bytes per full 4-symbol group, plus 1 or 2 for a 2- or 3-symbol tail.
    let tail = match len % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return None,
    };
    // `len / 4 * 3 + 2` is below `len` for every `len`, so these never fail; checked forms
    // keep the function free of overflow paths.
    match (len / 4).checked_mul(3) {
        Some(full) => full.checked_add(tail),
        None => None,
    }
}

/// Appends the base64url (no padding) encoding of `bytes` to `out`, in constant time.
///
/// Reserve [`encoded_len`] beforehand when `out` will hold secrets, so that it never
/// reallocates (a reallocation would leave a copy behind in freed memory).
pub fn encode_to(bytes: &[u8], out: &mut String) {
    // Through a stack buffer a group at a time, so no heap copy of the text is made.
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(48) {
        if let Ok(text) = Base64UrlUnpadded::encode(chunk, &mut buf) {
            out.push_str(text);
        }
    }
    zeroize::Zeroize::zeroize(&mut buf);
}

/// The base64url (no padding) encoding of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(encoded_len(bytes.len()));
    encode_to(bytes, &mut s);
    s
}

/// Decodes `input` into `out`, which must be exactly [`decoded_len`]`(input.len())` long, in
/// constant time.
///
/// On error `out` may hold partially decoded bytes; callers that decode secrets decode into
/// zeroizing storage, which they drop on error.
pub fn decode_to_slice(input: &str, out: &mut [u8]) -> Result<(), Base64UrlError> {
    let expected =
        decoded_len(input.len()).ok_or(Base64UrlError::InvalidLength { len: input.len() })?;
    if expected != out.len() {
        return Err(Base64UrlError::LengthMismatch {
            expected: out.len(),
            actual: expected,
        });
    }
    match Base64UrlUnpadded::decode(input, out) {
        Ok(decoded) if decoded.len() == expected => Ok(()),
        _ => Err(Base64UrlError::InvalidEncoding),
    }
}

/// Decodes `input` into a new vector (allocated fallibly).
pub fn decode(input: &str) -> Result<Vec<u8>, Base64UrlError> {
    let len = decoded_len(input.len()).ok_or(Base64UrlError::InvalidLength { len: input.len() })?;
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| Base64UrlError::OutOfMemory)?;
    out.resize(len, 0);
    decode_to_slice(input, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent formulas, in `u128` so they cannot overflow: RFC 4648 §5 without padding
    /// encodes `n` bytes in `ceil(4n / 3)` symbols; `len` symbols decode to `floor(3 len / 4)`.
    fn enc_ref(n: usize) -> u128 {
        (u128::try_from(n).unwrap() * 4).div_ceil(3)
    }
    fn dec_ref(len: usize) -> u128 {
        u128::try_from(len).unwrap() * 3 / 4
    }

    #[test]
    fn lengths_match_the_formulas_up_to_usize_max() {
        let max = usize::MAX;
        for len in (0..64).chain(max - 64..=max) {
            let got = decoded_len(len).map(|d| u128::try_from(d).unwrap());
            let want = (len % 4 != 1).then(|| dec_ref(len));
            assert_eq!(got, want, "decoded_len({len})");
        }
        for n in (0..64).chain((max / 4 * 3 - 64)..=(max / 4 * 3)) {
            assert_eq!(u128::try_from(encoded_len(n)).unwrap(), enc_ref(n), "{n}");
        }
        // Past the representable range the encoded length saturates instead of wrapping.
        assert_eq!(encoded_len(max), max);
        assert_eq!(encoded_len(max / 4 * 3 + 3), max);
    }
}
