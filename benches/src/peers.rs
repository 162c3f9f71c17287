//! The peers measured in the same run as the engines: OpenSSL's EVP AES-128-CTR and
//! AES-128-CBC ([`OpensslCtr`], [`OpensslCbc`]) and RustCrypto `ctr::Ctr64BE<aes::Aes128>`
//! ([`RustCryptoCtr`]).
//!
//! Fairness rules every peer follows: it is constructed once per key (key schedule outside the
//! timed loop), each timed call only resets the IV/counter and then transforms the buffer in
//! place, exactly like the engine paths do. Nothing is allocated inside a timed call.

use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hal::aes::BLOCK;
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;

use crate::BenchError;

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

    /// CBC-decrypts `blocks` (whole blocks) into a new buffer of the same length: the
    /// [`OpensslCbc::apply`] call with the slack added and dropped again. For checks, not for
    /// timed loops (it allocates).
    pub fn decrypt_to_vec(&mut self, blocks: &[u8]) -> Result<Vec<u8>, BenchError> {
        let len = blocks.len();
        let mut buf = Vec::with_capacity(len.saturating_add(Self::SLACK));
        buf.extend_from_slice(blocks);
        buf.resize(len.saturating_add(Self::SLACK), 0);
        self.apply(&mut buf, len)?;
        buf.truncate(len);
        Ok(buf)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{test_data, CBC_IV, CTR_COUNTER_BLOCK, KEY, KIB};

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
        assert_eq!(ossl.decrypt_to_vec(&ct).unwrap(), pt);
        let mut short = [0u8; 32];
        assert!(matches!(
            ossl.apply(&mut short, 32),
            Err(BenchError::Length { .. })
        ));
        assert!(matches!(
            ossl.apply(&mut [0u8; 40], 24),
            Err(BenchError::Length { .. })
        ));
        assert!(matches!(
            ossl.decrypt_to_vec(&[0u8; 24]),
            Err(BenchError::Length { .. })
        ));
    }
}
