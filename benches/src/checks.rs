//! The checks every bench and the report run before anything is timed: a bench of a wrong
//! result is worthless.
//!
//! - [`verify_api_paths`]: the API path of every engine must decrypt every scheme to the
//!   bytes of the shared reference decryptor ([`reference_decrypt`], i.e.
//!   `cdm_testkit::cenc::decrypt`), and for the whole-sample schemes the reference must agree
//!   with OpenSSL ([`openssl_decrypt`]);
//! - [`check_path`]: an ABI or EME path must turn a known `cenc` ciphertext, made with the
//!   reference encryptor ([`known_sample`]), back into its plaintext.
//!
//! A wrong output is a [`BenchError::Mismatch`]; callers abort on it (the criterion benches
//! with [`or_exit`], the report by failing `main`).

use hal::aes::{Aes128, Engine, BLOCK};

use crate::{
    size_label, test_data, BenchError, BenchSample, BenchScheme, OpensslCbc, OpensslCtr, CBC_IV,
    CTR_COUNTER_BLOCK, CTR_IV, KEY,
};

/// The expected plaintext of `data` decrypted as `sample` under [`KEY`], computed by the
/// shared reference decryptor, `cdm_testkit::cenc::decrypt` (a textbook model of
/// ISO/IEC 23001-7 §10 on RustCrypto that shares no code with `hal`).
pub fn reference_decrypt(sample: &BenchSample, data: &[u8]) -> Result<Vec<u8>, BenchError> {
    sample.check_len(data)?;
    let pattern = sample.pattern();
    let map: Vec<(u32, u32)> = sample
        .subsamples()
        .iter()
        .map(|s| (s.clear, s.protected))
        .collect();
    let mut out = data.to_vec();
    cdm_testkit::cenc::decrypt(
        sample.kind().encryption_scheme(),
        &KEY,
        sample.iv(),
        (pattern.crypt, pattern.skip),
        &map,
        &mut out,
    );
    Ok(out)
}

/// The expected plaintext of a whole-sample scheme computed by OpenSSL (an implementation of
/// NIST SP 800-38A CTR and CBC independent of both `hal` and RustCrypto): `cenc` is the whole
/// sample XORed with the CTR keystream from [`CTR_COUNTER_BLOCK`]; `cbc1` the whole blocks
/// CBC-decrypted from [`CBC_IV`], a trailing partial block clear. `None` for the pattern
/// schemes, which OpenSSL has no mode for.
pub fn openssl_decrypt(sample: &BenchSample, data: &[u8]) -> Result<Option<Vec<u8>>, BenchError> {
    sample.check_len(data)?;
    match sample.kind() {
        BenchScheme::Cenc => {
            let mut out = data.to_vec();
            OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)?.apply(&mut out)?;
            Ok(Some(out))
        }
        BenchScheme::Cbc1 => {
            let (blocks, tail) = data.split_at(data.len() - data.len() % BLOCK);
            let mut out = OpensslCbc::new(&KEY, &CBC_IV)?.decrypt_to_vec(blocks)?;
            out.extend_from_slice(tail);
            Ok(Some(out))
        }
        BenchScheme::Cbcs19 | BenchScheme::Cens19 => Ok(None),
    }
}

/// Checks, before anything is timed, that the API path ([`BenchSample::decrypt`], i.e.
/// `hal::cenc::decrypt_sample`) of every engine in `engines` decrypts every scheme in
/// [`BenchScheme::ALL`] at every length in `lens` to the bytes of [`reference_decrypt`], and
/// that the reference agrees with [`openssl_decrypt`] where OpenSSL has the mode. The first
/// difference is a [`BenchError::Mismatch`].
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
            let sample = BenchSample::new(kind, len)?;
            let at = format!("{} at {}", kind.name(), size_label(len));
            let expected = reference_decrypt(&sample, &data)?;
            if openssl_decrypt(&sample, &data)?.is_some_and(|ossl| ossl != expected) {
                return Err(BenchError::Mismatch(format!(
                    "reference decryptor, {at}: output differs from OpenSSL"
                )));
            }
            for engine in engines {
                let mut buf = data.clone();
                decrypt(&sample, &engine.key(&KEY), &mut buf)?;
                if buf != expected {
                    return Err(BenchError::Mismatch(format!(
                        "hal::cenc::decrypt_sample, engine {}, {at}: output differs from the \
                         reference decryptor",
                        engine.name(),
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `len` bytes of known plaintext and its `cenc` ciphertext (whole sample, [`KEY`],
/// [`CTR_IV`]), made with the reference encryptor `cdm_testkit::cenc::encrypt_cenc`,
/// independent of the paths under test: `(plaintext, ciphertext)`.
pub fn known_sample(len: usize) -> (Vec<u8>, Vec<u8>) {
    let plain = test_data(len);
    let mut cipher = plain.clone();
    cdm_testkit::cenc::encrypt_cenc(&KEY, &CTR_IV, &mut cipher, &[]);
    (plain, cipher)
}

/// Checks that `decrypt` turns a known `len`-byte `cenc` ciphertext ([`known_sample`]) into
/// its plaintext; `what` names the path in the [`BenchError::Mismatch`].
pub fn check_path(
    len: usize,
    what: &str,
    mut decrypt: impl FnMut(&mut [u8]) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let (plain, mut buf) = known_sample(len);
    decrypt(&mut buf)?;
    if buf == plain {
        Ok(())
    } else {
        Err(BenchError::Mismatch(format!(
            "{what}: {len}-byte sample decrypted wrong"
        )))
    }
}

/// The value of `result`, or, on an error, a message naming `what` on stderr and exit code 1:
/// a bench that silently measured a failing call would report nonsense. For the criterion
/// benches, which cannot return an error from a timed closure.
pub fn or_exit<T>(result: Result<T, BenchError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench `{what}` failed: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RustCryptoCtr, KIB, VIDEO_CLEAR_HEADER, VIDEO_PATTERN};

    fn engines() -> Vec<Engine> {
        Engine::available().collect()
    }

    #[test]
    fn known_sample_is_sp800_38a_ctr() {
        // The keystream for KEY and counter block CTR_IV||0, from OpenSSL (an independent
        // implementation of NIST SP 800-38A CTR).
        let (plain, cipher) = known_sample(64);
        let mut ks = vec![0u8; 64];
        OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)
            .unwrap()
            .apply(&mut ks)
            .unwrap();
        let xored: Vec<u8> = plain.iter().zip(&ks).map(|(p, k)| p ^ k).collect();
        assert_eq!(xored, cipher);
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
        let chain: Vec<u8> = starts
            .iter()
            .flat_map(|&s| data[s..s + BLOCK].iter().copied())
            .collect();
        let chain = OpensslCbc::new(&KEY, &CBC_IV)
            .unwrap()
            .decrypt_to_vec(&chain)
            .unwrap();
        let mut out = data.to_vec();
        for (block, &s) in chain.chunks_exact(BLOCK).zip(&starts) {
            out[s..s + BLOCK].copy_from_slice(block);
        }
        out
    }

    /// The expected `cens` 1:9 output computed independently: every tenth block of the
    /// protected range XORed with consecutive blocks of the SP 800-38A CTR keystream from
    /// `CTR_IV || 0`; every other byte stays as it was.
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

    /// `reference_decrypt` (the test kit's decryptor fed the bench descriptions) agrees with
    /// computations that share no code with it: OpenSSL and RustCrypto over the whole sample
    /// for `cenc`, OpenSSL CBC over the whole blocks with the tail clear for `cbc1`, the
    /// per-block constructions above for `cbcs` and `cens`.
    #[test]
    fn reference_decrypt_matches_independent_computations() {
        assert_eq!((VIDEO_PATTERN.crypt, VIDEO_PATTERN.skip), (1, 9));
        for len in [KIB, 16 * KIB + 7] {
            let data = test_data(len);
            let sample = |kind| BenchSample::new(kind, len).unwrap();

            let s = sample(BenchScheme::Cenc);
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
            assert_eq!(openssl_decrypt(&s, &data).unwrap(), Some(expected));

            let s = sample(BenchScheme::Cbc1);
            let expected = openssl_decrypt(&s, &data).unwrap().unwrap();
            let whole = len / BLOCK * BLOCK;
            assert_eq!(expected[whole..], data[whole..], "cbc1 {len}: tail clear");
            assert_ne!(expected[..whole], data[..whole]);
            assert_eq!(
                reference_decrypt(&s, &data).unwrap(),
                expected,
                "cbc1 {len}"
            );

            let s = sample(BenchScheme::Cbcs19);
            assert_eq!(openssl_decrypt(&s, &data).unwrap(), None);
            assert_eq!(
                reference_decrypt(&s, &data).unwrap(),
                cbcs_reference(&data),
                "cbcs {len}"
            );

            let s = sample(BenchScheme::Cens19);
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
            assert!(matches!(
                openssl_decrypt(&s, &data[1..]),
                Err(BenchError::Length { .. })
            ));
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
            verify_with(&engines, &[KIB], |_, _, _| Err(BenchError::Unexpected(
                "x".into()
            ))),
            Err(BenchError::Unexpected(_))
        ));
        // And the real path passes the same check.
        verify_with(&engines, &[KIB], |s, k, d| s.decrypt(k, d)).unwrap();
    }

    #[test]
    fn check_path_rejects_a_wrong_path() {
        assert!(matches!(
            check_path(KIB, "identity", |_| Ok(())),
            Err(BenchError::Mismatch(_))
        ));
        let (plain, _) = known_sample(KIB);
        assert!(matches!(
            check_path(KIB, "plaintext", |b| {
                b.copy_from_slice(&plain);
                b[0] ^= 1;
                Ok(())
            }),
            Err(BenchError::Mismatch(_))
        ));
    }
}
