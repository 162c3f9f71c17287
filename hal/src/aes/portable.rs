//! The portable engine: RustCrypto `aes`.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

use super::{counter_block, Backend, BLOCK};

/// Blocks processed per batch, so the underlying implementation can work on several at once
/// (the bitsliced software path handles 8 blocks per call on 64-bit targets).
const BATCH: usize = 8;

/// RustCrypto's key schedule; built with its `zeroize` feature, it wipes itself on drop.
pub(crate) struct Keys(aes::Aes128);

impl Keys {
    pub(crate) fn new(key: &[u8; 16]) -> Keys {
        Keys(aes::Aes128::new(GenericArray::from_slice(key)))
    }
}

impl Backend for Keys {
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.0.encrypt_block(GenericArray::from_mut_slice(block));
    }

    fn decrypt_block(&self, block: &mut [u8; 16]) {
        self.0.decrypt_block(GenericArray::from_mut_slice(block));
    }

    fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        let mut ks = [GenericArray::<u8, aes::cipher::consts::U16>::default(); BATCH];
        for chunk in data.chunks_mut(BATCH * BLOCK) {
            let n = chunk.len() / BLOCK;
            let Some(ks) = ks.get_mut(..n) else { return };
            for k in ks.iter_mut() {
                k.copy_from_slice(&counter_block(iv_hi, *ctr));
                *ctr = ctr.wrapping_add(1);
            }
            self.0.encrypt_blocks(ks);
            for (d, s) in chunk.chunks_exact_mut(BLOCK).zip(ks.iter()) {
                xor_block(d, s);
            }
        }
        for k in ks.iter_mut() {
            zeroize::Zeroize::zeroize(k.as_mut_slice());
        }
    }

    fn cbc_decrypt_blocks(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        let mut buf = [GenericArray::<u8, aes::cipher::consts::U16>::default(); BATCH];
        for chunk in data.chunks_mut(BATCH * BLOCK) {
            let n = chunk.len() / BLOCK;
            let Some(buf) = buf.get_mut(..n) else { return };
            for (b, c) in buf.iter_mut().zip(chunk.chunks_exact(BLOCK)) {
                b.copy_from_slice(c);
            }
            self.0.decrypt_blocks(buf);
            for (b, c) in buf.iter_mut().zip(chunk.chunks_exact_mut(BLOCK)) {
                // plaintext = D(c_i) ^ c_{i-1}; remember c_i before overwriting it.
                let mut next = [0u8; 16];
                next.copy_from_slice(c);
                c.copy_from_slice(b);
                xor_block(c, iv);
                *iv = next;
            }
        }
    }
}

/// `dst ^= src` on one 16-byte block, as one 128-bit operation.
#[inline(always)]
fn xor_block(dst: &mut [u8], src: &[u8]) {
    if let (Ok(d), Ok(s)) = (<&mut [u8; 16]>::try_from(dst), <&[u8; 16]>::try_from(src)) {
        *d = (u128::from_ne_bytes(*d) ^ u128::from_ne_bytes(*s)).to_ne_bytes();
    }
}
