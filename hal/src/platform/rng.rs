//! Cryptographically secure random bytes.

/// The platform could not produce random bytes. Carries no detail on purpose: callers treat
/// it as fatal for the operation that needed randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("random number generator failed")]
pub struct RngError;

/// A source of cryptographically secure random bytes (session handles, secure-buffer handles
/// and session ids must be unguessable).
pub trait SecureRandom {
    /// Fills `out` entirely with random bytes, or fails without a partial result being
    /// meaningful (callers discard `out` on error).
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError>;
}

/// The operating system's CSPRNG through `ring` (`getrandom` on Linux).
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

#[cfg(feature = "std")]
impl SystemRandom {
    /// The OS random source.
    pub fn new() -> Self {
        SystemRandom(ring::rand::SystemRandom::new())
    }
}

#[cfg(feature = "std")]
impl Default for SystemRandom {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl SecureRandom for SystemRandom {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        ring::rand::SecureRandom::fill(&self.0, out).map_err(|_| RngError)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn fills_the_whole_buffer() {
        // 64 zero bytes surviving a fill has probability 2^-512.
        let mut buf = [0u8; 64];
        SystemRandom::new().fill(&mut buf).unwrap();
        assert!(buf.iter().any(|&b| b != 0));
        let mut other = [0u8; 64];
        SystemRandom::new().fill(&mut other).unwrap();
        assert_ne!(buf, other);
    }
}
