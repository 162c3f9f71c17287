//! The reference CENC encryptor (and decryptor): ISO/IEC 23001-7 §10 written as a textbook
//! model on RustCrypto, sharing no code with `hal::cenc`.
//!
//! It gathers the bytes a scheme runs through its cipher into one buffer per chain (CTR
//! schemes: one keystream across the whole sample; `cbcs`: one CBC chain per subsample from
//! the constant IV), runs the plain mode over it (`ctr::Ctr64BE`, or CBC on the `aes` block
//! cipher) and scatters the result back. Descriptions must be valid; a bad one panics (test
//! data error).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use cdm_core::EncryptionScheme;

/// Byte ranges `[start, end)` of the protected parts of a sample of `len` bytes.
fn protected_ranges(map: &[(u32, u32)], len: usize) -> Vec<(usize, usize)> {
    if map.is_empty() {
        return vec![(0, len)];
    }
    let mut pos = 0usize;
    let mut out = Vec::new();
    for &(clear, protected) in map {
        pos += clear as usize;
        out.push((pos, pos + protected as usize));
        pos += protected as usize;
    }
    assert_eq!(
        pos, len,
        "reference model needs a map that covers the sample"
    );
    out
}

/// Offsets of the whole blocks of `[start, end)` a `crypt:skip` pattern encrypts (0:0 and
/// n:0 mean every whole block; a trailing partial block is never included).
fn pattern_blocks(start: usize, end: usize, (crypt, skip): (u8, u8)) -> Vec<usize> {
    let n = (end - start) / 16;
    let (c, k) = (usize::from(crypt), usize::from(skip));
    (0..n)
        .filter(|i| c == 0 || k == 0 || i % (c + k) < c)
        .map(|i| start + 16 * i)
        .collect()
}

/// Every byte offset a scheme runs through its cipher, in cipher order, grouped by chain.
fn cipher_groups(
    scheme: EncryptionScheme,
    pattern: (u8, u8),
    map: &[(u32, u32)],
    len: usize,
) -> Vec<Vec<usize>> {
    let ranges = protected_ranges(map, len);
    let blocks = |s, e, p| -> Vec<usize> {
        pattern_blocks(s, e, p)
            .into_iter()
            .flat_map(|b| b..b + 16)
            .collect()
    };
    match scheme {
        EncryptionScheme::Cenc => vec![ranges.iter().flat_map(|&(s, e)| s..e).collect()],
        EncryptionScheme::Cens => {
            vec![ranges
                .iter()
                .flat_map(|&(s, e)| blocks(s, e, pattern))
                .collect()]
        }
        EncryptionScheme::Cbc1 => {
            vec![ranges
                .iter()
                .flat_map(|&(s, e)| blocks(s, e, (0, 0)))
                .collect()]
        }
        EncryptionScheme::Cbcs => ranges.iter().map(|&(s, e)| blocks(s, e, pattern)).collect(),
    }
}

fn run(
    decrypt: bool,
    scheme: EncryptionScheme,
    key: &[u8; 16],
    iv: &[u8],
    pattern: (u8, u8),
    subsamples: &[(u32, u32)],
    data: &mut [u8],
) {
    let aes = aes::Aes128::new(GenericArray::from_slice(key));
    for group in cipher_groups(scheme, pattern, subsamples, data.len()) {
        let mut buf: Vec<u8> = group.iter().map(|&i| data[i]).collect();
        match scheme {
            EncryptionScheme::Cenc | EncryptionScheme::Cens => {
                // An 8-byte IV is the high half of the counter block (§9.2).
                let mut block = [0u8; 16];
                block[..iv.len()].copy_from_slice(iv);
                let mut c = ctr::Ctr64BE::<aes::Aes128>::new(key.into(), &block.into());
                c.apply_keystream(&mut buf);
            }
            EncryptionScheme::Cbc1 | EncryptionScheme::Cbcs => {
                let mut prev: [u8; 16] = iv.try_into().expect("CBC schemes take a 16-byte IV");
                for chunk in buf.chunks_exact_mut(16) {
                    let mut b = GenericArray::clone_from_slice(chunk);
                    if decrypt {
                        let c: [u8; 16] = chunk.try_into().expect("16-byte chunk");
                        aes.decrypt_block(&mut b);
                        for (o, (x, p)) in chunk.iter_mut().zip(b.iter().zip(prev)) {
                            *o = x ^ p;
                        }
                        prev = c;
                    } else {
                        for (x, p) in b.iter_mut().zip(prev) {
                            *x ^= p;
                        }
                        aes.encrypt_block(&mut b);
                        chunk.copy_from_slice(&b);
                        prev = b.into();
                    }
                }
            }
        }
        for (&i, v) in group.iter().zip(buf) {
            data[i] = v;
        }
    }
}

/// Encrypts one sample in place as `scheme` with `key`, `iv` (8 or 16 bytes for the CTR
/// schemes, 16 for the CBC ones), `crypt:skip` pattern and `(clear, protected)` subsample map
/// (empty: the whole sample is protected).
pub fn encrypt(
    scheme: EncryptionScheme,
    key: &[u8; 16],
    iv: &[u8],
    pattern: (u8, u8),
    subsamples: &[(u32, u32)],
    data: &mut [u8],
) {
    run(false, scheme, key, iv, pattern, subsamples, data);
}

/// Decrypts one sample in place; the inverse of [`encrypt`].
pub fn decrypt(
    scheme: EncryptionScheme,
    key: &[u8; 16],
    iv: &[u8],
    pattern: (u8, u8),
    subsamples: &[(u32, u32)],
    data: &mut [u8],
) {
    run(true, scheme, key, iv, pattern, subsamples, data);
}

/// `cenc` (§10.1) with an 8-byte IV: AES-128-CTR, one keystream across the protected ranges.
pub fn encrypt_cenc(key: &[u8; 16], iv8: &[u8; 8], data: &mut [u8], subsamples: &[(u32, u32)]) {
    encrypt(EncryptionScheme::Cenc, key, iv8, (0, 0), subsamples, data);
}

/// `cbcs` (§10.4): CBC over the `crypt` blocks of each `crypt + skip` group, the constant IV
/// restarted for every subsample, partial blocks clear.
pub fn encrypt_cbcs(
    key: &[u8; 16],
    iv: &[u8; 16],
    data: &mut [u8],
    subsamples: &[(u32, u32)],
    pattern: (u8, u8),
) {
    encrypt(EncryptionScheme::Cbcs, key, iv, pattern, subsamples, data);
}

/// A version 1 `pssh` box of the Common SystemID listing `kids` (ISO/IEC 23001-7 §8.1.1,
/// "cenc" init data format §4.1), written out byte by byte (not with cdm-core's builder).
pub fn pssh_v1(kids: &[&[u8; 16]]) -> Vec<u8> {
    let size = u32::try_from(32 + 16 * kids.len() + 4).expect("pssh size");
    let mut b = Vec::new();
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&hex::decode("1077efecc0b24d02ace33c1e52e2fb4b").expect("system id"));
    b.extend_from_slice(&u32::try_from(kids.len()).expect("count").to_be_bytes());
    for k in kids {
        b.extend_from_slice(*k);
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

/// A test sample: `len` bytes of a fixed pattern (`(7 i + 3) mod 251`).
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + 3) % 251).expect("below 251"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST SP 800-38A F.5.1 (CTR-AES128): the reference's keystream is the standard's.
    #[test]
    fn ctr_matches_sp800_38a() {
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let iv = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").unwrap();
        let mut data = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        encrypt(EncryptionScheme::Cenc, &key, &iv, (0, 0), &[], &mut data);
        assert_eq!(hex::encode(&data), "874d6191b620e3261bef6864990db6ce");
    }

    /// NIST SP 800-38A F.2.1 (CBC-AES128) through `cbc1`.
    #[test]
    fn cbc_matches_sp800_38a() {
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let iv = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let mut data =
            hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
                .unwrap();
        encrypt(EncryptionScheme::Cbc1, &key, &iv, (0, 0), &[], &mut data);
        assert_eq!(
            hex::encode(&data),
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
        );
        decrypt(EncryptionScheme::Cbc1, &key, &iv, (0, 0), &[], &mut data);
        assert_eq!(hex::encode(&data[..16]), "6bc1bee22e409f96e93d7e117393172a");
    }

    /// `cbcs` 1:9 leaves the skipped blocks, the clear bytes and the partial block alone.
    #[test]
    fn cbcs_pattern_touches_only_crypt_blocks() {
        let plain = plaintext(16 * 21 + 5 + 7);
        let mut data = plain.clone();
        encrypt_cbcs(&[9; 16], &[1; 16], &mut data, &[(5, 16 * 21 + 7)], (1, 9));
        assert_eq!(data[..5], plain[..5]);
        for block in 0..21 {
            let at = 5 + 16 * block;
            let same = data[at..at + 16] == plain[at..at + 16];
            assert_eq!(same, block % 10 != 0, "block {block}");
        }
        assert_eq!(data[5 + 16 * 21..], plain[5 + 16 * 21..]);
    }
}
