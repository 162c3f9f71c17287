//! Platform pieces both images share: the secure output sink (no hardware behind it) and the
//! checks every image runs on its own services before building the secure world.

use alloc::format;
use alloc::string::String;

use hal::platform::{OutputError, SecureOutputSink, SecureRandom, DIGEST_LEN};
use sha2::{Digest, Sha256};

/// The stand-in for the secure video path (`HW_SECURE_DECODE` output): answers the SHA-256 of
/// each frame it is given and keeps nothing of it, as hal's host `DigestSink` does.
#[derive(Debug, Default)]
pub struct DigestSink {
    frames: u64,
}

impl DigestSink {
    /// Frames rendered so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl SecureOutputSink for DigestSink {
    fn render(&mut self, frame: &[u8]) -> Result<[u8; DIGEST_LEN], OutputError> {
        let digest: [u8; DIGEST_LEN] = Sha256::digest(frame).into();
        self.frames = self.frames.saturating_add(1);
        Ok(digest)
    }
}

/// The random source gives bytes that are neither all zero nor the same twice running.
pub fn check_rng(rng: &impl SecureRandom) -> Result<(), String> {
    let (mut a, mut b) = ([0u8; 37], [0u8; 37]);
    rng.fill(&mut a).map_err(|e| format!("rng: {e}"))?;
    rng.fill(&mut b).map_err(|e| format!("rng: {e}"))?;
    if a == b || a.iter().all(|&x| x == 0) {
        return Err("the random source repeats itself or gives zeros".into());
    }
    Ok(())
}

/// The sink answers FIPS 180-2 B.1's SHA-256 of `"abc"`.
pub fn check_sink(sink: &mut impl SecureOutputSink) -> Result<(), String> {
    let digest = sink.render(b"abc").map_err(|e| format!("sink: {e}"))?;
    let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    if hex::encode(digest) != want {
        return Err("the sink's SHA-256 of \"abc\" is wrong".into());
    }
    Ok(())
}
