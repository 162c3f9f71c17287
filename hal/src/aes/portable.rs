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

    fn ctr(&self, iv_hi: &[u8; 8], mut ctr: u64, batch: &mut [Block; LANES]) {
        self.ctr_blocks(iv_hi, &mut ctr, batch);
    }

    fn cbc(&self, iv: &mut Block, batch: &mut [Block; LANES]) {
        self.cbc_blocks(iv, batch);
    }

    // RustCrypto takes any number of blocks: no padded batches, and one keystream buffer per
    // call, wiped once.
    fn ctr_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, blocks: &mut [Block]) {
        let mut ks = [aes::Block::default(); LANES];
        for chunk in blocks.chunks_mut(LANES) {
            let ks = ks.get_mut(..chunk.len()).unwrap_or_default();
            for k in ks.iter_mut() {
                *k = counter_block(iv_hi, *ctr).into();
                *ctr = ctr.wrapping_add(1);
            }
            self.0.encrypt_blocks(ks);
            for (d, k) in chunk.iter_mut().zip(ks.iter()) {
                *d = xor(d, k);
            }
        }
        ks.iter_mut().for_each(|k| k.as_mut_slice().zeroize());
    }

    fn cbc_blocks(&self, iv: &mut Block, blocks: &mut [Block]) {
        let mut buf = [aes::Block::default(); LANES];
        for chunk in blocks.chunks_mut(LANES) {
            let buf = buf.get_mut(..chunk.len()).unwrap_or_default();
            for (b, c) in buf.iter_mut().zip(chunk.iter()) {
                *b = (*c).into();
            }
            self.0.decrypt_blocks(buf);
            // plaintext = D(c_i) ^ c_{i-1}; remember c_i before overwriting it.
            for (c, d) in chunk.iter_mut().zip(buf.iter()) {
                let next = *c;
                *c = xor(d, iv);
                *iv = next;
            }
        }
    }
}

/// `a ^ b` on one block, as one 128-bit operation.
#[inline(always)]
fn xor(a: &[u8], b: &[u8]) -> Block {
    let word = |x: &[u8]| u128::from_ne_bytes(x.try_into().unwrap_or_default());
    (word(a) ^ word(b)).to_ne_bytes()
}
