//! The portable engine: RustCrypto `aes`, fed [`LANES`] blocks per call so the underlying
//! implementation can work on several at once (the bitsliced software path handles 8 blocks
//! per call on 64-bit targets).

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use zeroize::Zeroize;

use super::batch::Kernels;
use super::{counter_block, Block};

/// Blocks per batch.
pub(crate) const LANES: usize = 8;

/// RustCrypto's key schedule; built with its `zeroize` feature, it wipes itself on drop.
pub(crate) struct Keys(aes::Aes128);

impl Keys {
    pub(crate) fn new(key: &[u8; 16]) -> Keys {
        Keys(aes::Aes128::new(GenericArray::from_slice(key)))
    }
}

impl Kernels<LANES> for Keys {
    fn encrypt_block(&self, block: &mut Block) {
        self.0.encrypt_block(GenericArray::from_mut_slice(block));
    }

    fn decrypt_block(&self, block: &mut Block) {
        self.0.decrypt_block(GenericArray::from_mut_slice(block));
    }

    fn ctr(&self, iv_hi: &[u8; 8], ctr: u64, batch: &mut [Block; LANES]) {
        let mut ks = [aes::Block::default(); LANES];
        for (k, i) in ks.iter_mut().zip(0u64..) {
            *k = counter_block(iv_hi, ctr.wrapping_add(i)).into();
        }
        self.0.encrypt_blocks(&mut ks);
        for (d, k) in batch.iter_mut().zip(ks.iter_mut()) {
            *d = xor(d, k);
            k.as_mut_slice().zeroize();
        }
    }

    fn cbc(&self, iv: &mut Block, batch: &mut [Block; LANES]) {
        let mut buf = batch.map(aes::Block::from);
        self.0.decrypt_blocks(&mut buf);
        // plaintext = D(c_i) ^ c_{i-1}; remember c_i before overwriting it.
        for (c, d) in batch.iter_mut().zip(buf.iter()) {
            let next = *c;
            *c = xor(d, iv);
            *iv = next;
        }
    }
}

/// `a ^ b` on one block, as one 128-bit operation.
#[inline(always)]
fn xor(a: &[u8], b: &[u8]) -> Block {
    let word = |x: &[u8]| u128::from_ne_bytes(x.try_into().unwrap_or_default());
    (word(a) ^ word(b)).to_ne_bytes()
}
