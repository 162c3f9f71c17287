//! The benches' deterministic test data, from the test kit's one PRNG.

/// The seed every call to [`test_data`] starts from.
const SEED: u64 = 0x007e_ecd3_0000_0001;

/// `len` bytes of deterministic pseudo-random data (`cdm_testkit::rng::TestRng`, SplitMix64,
/// from a fixed seed), so every run and every case starts from the same bytes.
pub fn test_data(len: usize) -> Vec<u8> {
    cdm_testkit::rng::TestRng::new(SEED).bytes(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_data_is_deterministic_and_not_constant() {
        let a = test_data(1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, test_data(1000));
        assert_eq!(a.get(..999), test_data(999).get(..));
        // The first two SplitMix64 outputs for the seed, little-endian, computed outside this
        // crate: a change of the generator changes every measured buffer.
        assert_eq!(
            a.get(..16),
            Some(
                &[
                    0xb2, 0x60, 0x40, 0xe7, 0xb6, 0x74, 0x0c, 0x03, 0xc9, 0x6d, 0x88, 0x4f, 0xc2,
                    0x6a, 0x19, 0x7f,
                ][..]
            )
        );
        assert!(a.iter().any(|&b| b != a[0]));
    }
}
