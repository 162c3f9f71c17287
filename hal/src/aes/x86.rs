//! x86_64 engines: AES-NI and VAES. (Placeholder until the intrinsics land: reports
//! itself unavailable, so dispatch never selects it.)
#![allow(dead_code)]

use super::Backend;

pub(crate) fn aesni_available() -> bool {
    false
}

pub(crate) fn vaes_available() -> bool {
    false
}

pub(crate) struct RoundKeys(super::portable::Keys);
pub(crate) struct VaesKeys(super::portable::Keys);

impl RoundKeys {
    pub(crate) fn new(_key: &[u8; 16]) -> Option<Self> {
        None
    }
}
impl VaesKeys {
    pub(crate) fn new(_key: &[u8; 16]) -> Option<Self> {
        None
    }
}

macro_rules! fwd {
    ($t:ty) => {
        impl Backend for $t {
            fn encrypt_block(&self, block: &mut [u8; 16]) {
                self.0.encrypt_block(block)
            }
            fn decrypt_block(&self, block: &mut [u8; 16]) {
                self.0.decrypt_block(block)
            }
            fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
                self.0.ctr64_xor_blocks(iv_hi, ctr, data)
            }
            fn cbc_decrypt_blocks(&self, iv: &mut [u8; 16], data: &mut [u8]) {
                self.0.cbc_decrypt_blocks(iv, data)
            }
        }
    };
}
fwd!(RoundKeys);
fwd!(VaesKeys);
