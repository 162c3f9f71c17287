//! Strict base64url without padding (RFC 4648 §5), as EME Clear Key uses it.
//!
//! EME §9.1.7 ("Using base64url") refers to RFC 7515 Appendix C: no `=` padding, and `-` / `_`
//! instead of `+` / `/`. The decoder here accepts exactly the canonical encoding and nothing
//! else: no padding, no whitespace, no characters of the standard alphabet, no length of the
//! form `4n + 1`, and no set bits in the unused low bits of the last character (so every byte
//! string has exactly one accepted encoding).
//!
//! The decoder writes into a caller-provided buffer ([`decode_to_slice`]) so that key material
//! can be decoded straight into its zeroizing home without an intermediate heap copy.

use alloc::string::String;
use alloc::vec::Vec;

/// Why a base64url string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64UrlError {
    /// The length is `4n + 1`, which no byte string encodes to.
    #[error("base64url: impossible length {len}")]
    InvalidLength {
        /// Length of the input in bytes.
        len: usize,
    },
    /// An `=` was found; EME requires base64url without padding.
    #[error("base64url: padding at index {index} (padding is not allowed)")]
    Padding {
        /// Byte offset of the `=`.
        index: usize,
    },
    /// A byte outside the base64url alphabet `A-Z a-z 0-9 - _`.
    #[error("base64url: invalid character at index {index}")]
    InvalidCharacter {
        /// Byte offset of the offending byte (the byte itself is not reported: it may be part
        /// of key material).
        index: usize,
    },
    /// The last character carries set bits beyond the encoded bytes (non-canonical encoding).
    #[error("base64url: non-canonical trailing bits")]
    NonCanonicalTrailingBits,
    /// The decoded length differs from the length the caller required.
    #[error("base64url: decodes to {actual} bytes, expected {expected}")]
    LengthMismatch {
        /// Length the caller required.
        expected: usize,
        /// Length the input decodes to.
        actual: usize,
    },
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

/// Appends the base64url (no padding) encoding of `bytes` to `out`.
///
/// Reserve [`encoded_len`] beforehand when `out` will hold secrets, so that it never
/// reallocates (a reallocation would leave a copy behind in freed memory).
pub fn encode_to(bytes: &[u8], out: &mut String) {
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        if let [a, b, c] = *c {
            out.push(symbol(a >> 2));
            out.push(symbol((a << 4) | (b >> 4)));
            out.push(symbol((b << 2) | (c >> 6)));
            out.push(symbol(c));
        }
    }
    match *chunks.remainder() {
        [a] => {
            out.push(symbol(a >> 2));
            out.push(symbol(a << 4));
        }
        [a, b] => {
            out.push(symbol(a >> 2));
            out.push(symbol((a << 4) | (b >> 4)));
            out.push(symbol(b << 2));
        }
        _ => {}
    }
}

/// The base64url symbol for the low 6 bits of `v`.
// The one indexing of the crate: `v & 0x3f` is below 64 = `ALPHABET.len()` (an array length
// the compiler checks), so the lookup cannot go out of bounds.
#[allow(clippy::indexing_slicing)]
fn symbol(v: u8) -> char {
    char::from(ALPHABET[usize::from(v & 0x3f)])
}

/// The base64url (no padding) encoding of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(encoded_len(bytes.len()));
    encode_to(bytes, &mut s);
    s
}

/// Value of one base64url symbol.
fn value_of(index: usize, byte: u8) -> Result<u32, Base64UrlError> {
    // Each arm's range bounds the offset from its first symbol (below 26, or 10), so the
    // results stay in 0..64 and the wrapping forms never actually wrap.
    let v = match byte {
        b'A'..=b'Z' => byte.wrapping_sub(b'A'),
        b'a'..=b'z' => byte.wrapping_sub(b'a').wrapping_add(26),
        b'0'..=b'9' => byte.wrapping_sub(b'0').wrapping_add(52),
        b'-' => 62,
        b'_' => 63,
        b'=' => return Err(Base64UrlError::Padding { index }),
        _ => return Err(Base64UrlError::InvalidCharacter { index }),
    };
    Ok(u32::from(v))
}

/// Decodes `input` into `out`, which must be exactly [`decoded_len`]`(input.len())` long.
///
/// On error `out` may hold partially decoded bytes; callers that decode secrets decode into
/// zeroizing storage, which they drop on error.
pub fn decode_to_slice(input: &str, out: &mut [u8]) -> Result<(), Base64UrlError> {
    let input = input.as_bytes();
    let expected =
        decoded_len(input.len()).ok_or(Base64UrlError::InvalidLength { len: input.len() })?;
    if expected != out.len() {
        return Err(Base64UrlError::LengthMismatch {
            expected: out.len(),
            actual: expected,
        });
    }
    // `(0..).step_by(4)` numbers the groups by the index of their first symbol, for errors.
    let groups = input.chunks(4).zip(out.chunks_mut(3));
    for ((src, dst), base) in groups.zip((0usize..).step_by(4)) {
        let mut acc = 0u32;
        for (&b, index) in src.iter().zip(base..) {
            acc = (acc << 6) | value_of(index, b)?;
        }
        // Left-align a short final group as if it had 4 symbols; the bits below the last
        // decoded byte must be zero (canonical encoding, RFC 4648 §3.5).
        let (shift, unused_mask) = match src.len() {
            4 => (0, 0),
            3 => (6, 0xff),
            2 => (12, 0xffff),
            _ => return Err(Base64UrlError::InvalidLength { len: input.len() }),
        };
        acc <<= shift;
        if acc & unused_mask != 0 {
            return Err(Base64UrlError::NonCanonicalTrailingBits);
        }
        let [_, b0, b1, b2] = acc.to_be_bytes();
        for (d, s) in dst.iter_mut().zip([b0, b1, b2]) {
            *d = s;
        }
    }
    Ok(())
}

/// Decodes `input` into a new vector.
pub fn decode(input: &str) -> Result<Vec<u8>, Base64UrlError> {
    let len = decoded_len(input.len()).ok_or(Base64UrlError::InvalidLength { len: input.len() })?;
    let mut out = alloc::vec![0u8; len];
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
