//! The `hal::platform` services of this image. The MPS2 AN386 model has neither a random
//! number generator nor a real-time clock, so:
//!
//! | service | here | on a device |
//! |---|---|---|
//! | [`TestOnlyRng`] | **TEST ONLY**: a fixed AES-128-CTR keystream, the same every boot | the SoC's TRNG |
//! | [`NoClock`] | no time (`None`): the secure world refuses keys that carry an expiry | a secure RTC or trusted time |
//! | `firmware_selftest::DigestSink` | SHA-256 of every frame | the secure video path |

use core::cell::RefCell;

use aes::cipher::{KeyIvInit, StreamCipher};
use hal::platform::{Clock, RngError, SecureRandom};

/// **TEST ONLY — predictable, never use outside this emulated self-test.** A deterministic
/// generator: the AES-128-CTR keystream under a fixed key, identical on every boot. It exists
/// because the emulated board has no entropy source; with it, session handles and ids are
/// guessable, which defeats their purpose on a device.
pub(crate) struct TestOnlyRng(RefCell<ctr::Ctr64BE<aes::Aes128>>);

impl TestOnlyRng {
    /// The fixed key (ASCII), so no one mistakes the stream for randomness.
    const KEY: [u8; 16] = *b"TEST ONLY NO RNG";

    /// The generator; the name says what it is for.
    pub(crate) fn new_test_only() -> Self {
        TestOnlyRng(RefCell::new(ctr::Ctr64BE::new(
            &Self::KEY.into(),
            &[0u8; 16].into(),
        )))
    }
}

impl SecureRandom for TestOnlyRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        out.fill(0);
        let mut stream = self.0.try_borrow_mut().map_err(|_| RngError)?;
        stream.try_apply_keystream(out).map_err(|_| RngError)
    }
}

/// A board without trustworthy time.
#[derive(Debug, Default)]
pub(crate) struct NoClock;

impl Clock for NoClock {
    fn now_ms(&self) -> Option<i64> {
        None
    }
}
