//! The secure output sink: the emulated secure decoder/renderer of `HW_SECURE_DECODE`.

/// Length of the digest a sink reports (SHA-256).
pub const DIGEST_LEN: usize = 32;

/// The sink refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The frame is larger than the sink accepts.
    #[error("frame too large for the output sink")]
    TooLarge,
    /// The output path is not available (e.g. the display link lost protection).
    #[error("secure output unavailable")]
    Unavailable,
}

/// Where decrypted `HW_SECURE_DECODE` samples go: a decoder/renderer inside the trust
/// boundary. Clear samples reach it and nothing else.
///
/// The only thing it reports back is the SHA-256 of what it received, so tests can check the
/// secure path end to end without the plaintext ever crossing to the normal world.
pub trait SecureOutputSink {
    /// Consumes one decrypted frame and answers the SHA-256 of its bytes.
    fn render(&mut self, frame: &[u8]) -> Result<[u8; DIGEST_LEN], OutputError>;
}

/// A host sink that hashes each frame with SHA-256 (`ring::digest`) and counts frames and
/// bytes. It keeps no copy of any frame.
#[cfg(feature = "std")]
#[derive(Clone, Debug, Default)]
pub struct DigestSink {
    frames: u64,
    bytes: u64,
}

#[cfg(feature = "std")]
impl DigestSink {
    /// A sink that has rendered nothing yet.
    pub fn new() -> Self {
        DigestSink::default()
    }

    /// Frames rendered so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes rendered so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(feature = "std")]
impl SecureOutputSink for DigestSink {
    fn render(&mut self, frame: &[u8]) -> Result<[u8; DIGEST_LEN], OutputError> {
        let len = u64::try_from(frame.len()).map_err(|_| OutputError::TooLarge)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, frame);
        let mut out = [0u8; DIGEST_LEN];
        out.copy_from_slice(digest.as_ref());
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(len);
        Ok(out)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn digest_sink_reports_sha256_and_counts() {
        let mut sink = DigestSink::new();
        // FIPS 180-2 appendix B.1: SHA-256("abc").
        let d = sink.render(b"abc").unwrap();
        assert_eq!(
            hex::encode(d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        sink.render(&[0u8; 10]).unwrap();
        assert_eq!((sink.frames(), sink.bytes()), (2, 13));
    }
}
