//! Decrypt dispatch: from an ABI sample description to hal's CENC primitives.

use alloc::vec::Vec;

use cdm_core::abi::limits::MAX_SUBSAMPLES;
use cdm_core::abi::{DecryptRequest, Subsamples};
use cdm_core::EncryptionScheme;
use hal::aes::Aes128;
use hal::cenc::{self, Pattern, Scheme, Subsample};

use crate::error::Error;

/// Reusable scratch for the subsample map, allocated once so the decrypt path never
/// allocates.
#[derive(Debug)]
pub(crate) struct Scratch {
    subsamples: Vec<Subsample>,
}

impl Scratch {
    /// Reserves room for [`MAX_SUBSAMPLES`] entries.
    pub(crate) fn new() -> Result<Self, Error> {
        let mut subsamples = Vec::new();
        subsamples.try_reserve_exact(MAX_SUBSAMPLES)?;
        Ok(Scratch { subsamples })
    }

    fn load(&mut self, map: &Subsamples<'_>) -> Result<&[Subsample], Error> {
        self.subsamples.clear();
        if map.len() > self.subsamples.capacity() {
            // The decoder caps maps at MAX_SUBSAMPLES; refuse rather than grow.
            return Err(Error::DecryptFailed);
        }
        self.subsamples.extend(
            map.iter()
                .map(|(clear, protected)| Subsample { clear, protected }),
        );
        Ok(&self.subsamples)
    }
}

/// The hal scheme of an ISO/IEC 23001-7 scheme type (§10).
pub(crate) fn scheme(s: EncryptionScheme) -> Scheme {
    match s {
        EncryptionScheme::Cenc => Scheme::Cenc,
        EncryptionScheme::Cbcs => Scheme::Cbcs,
        EncryptionScheme::Cens => Scheme::Cens,
        EncryptionScheme::Cbc1 => Scheme::Cbc1,
    }
}

/// Decrypts `data` (the sample, in the shared buffer or a secure buffer) in place as `req`
/// describes. hal validates the whole description before touching `data`, so on error
/// `data` is unchanged. Every failure is the opaque [`Error::DecryptFailed`].
pub(crate) fn decrypt_in_place(
    key: &Aes128,
    req: &DecryptRequest<'_>,
    scratch: &mut Scratch,
    data: &mut [u8],
) -> Result<(), Error> {
    let subsamples = scratch.load(&req.subsamples)?;
    let pattern = Pattern {
        crypt: req.pattern.0,
        skip: req.pattern.1,
    };
    cenc::decrypt_sample(key, scheme(req.scheme), req.iv, pattern, subsamples, data)
        .map_err(|_| Error::DecryptFailed)
}
