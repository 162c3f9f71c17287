//! The one deterministic PRNG for test data: SplitMix64 (Steele, Lea, Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014; the `splitmix64.c` reference of Vigna).
//!
//! Reproducible from a seed on every platform (outputs are defined on `u64`, bytes are taken
//! little-endian), so a failing case can be named by its seed. Not for keys of a deployment.

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment, each output a
/// bijective mix of the state.
#[derive(Clone, Debug)]
pub struct TestRng {
    state: u64,
}

impl TestRng {
    /// A generator whose first output is the SplitMix64 output for `seed`.
    pub fn new(seed: u64) -> Self {
        TestRng { state: seed }
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `buf` with output bytes: each output gives 8 bytes, little-endian; a last
    /// partial chunk uses the first bytes of one output.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// `len` output bytes (as [`TestRng::fill`] makes them).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(&mut v);
        v
    }

    /// `N` output bytes (as [`TestRng::fill`] makes them).
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        self.fill(&mut a);
        a
    }

    /// A uniform value in `0..n`, without modulo bias (outputs below `2^64 mod n` are
    /// rejected, so the accepted range is a whole number of periods of `n`).
    ///
    /// # Panics
    /// If `n == 0` (the range is empty).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "TestRng::below(0): empty range");
        let reject_under = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            if x >= reject_under {
                return x % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TestRng;

    #[test]
    fn published_splitmix64_outputs() {
        // Seed 0: the first outputs of the reference `splitmix64.c` with x = 0.
        let mut r = TestRng::new(0);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f]
        );
        // Seed 1234567: the sequence of the Rosetta Code task "Pseudo-random numbers/Splitmix64".
        let mut r = TestRng::new(1234567);
        let got: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        let want = [
            6457827717110365317,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn bytes_are_the_outputs_little_endian() {
        let mut r = TestRng::new(0);
        let b = r.bytes(11);
        assert_eq!(b[..8], 0xe220a8397b1dcdafu64.to_le_bytes());
        assert_eq!(b[8..], 0x6e789e6aa1b965f4u64.to_le_bytes()[..3]);
        let mut r = TestRng::new(0);
        assert_eq!(r.array::<11>()[..], b[..]);
        let mut buf = [0u8; 11];
        TestRng::new(0).fill(&mut buf);
        assert_eq!(buf[..], b[..]);
    }

    #[test]
    fn below_stays_in_range_and_reaches_both_ends() {
        let mut r = TestRng::new(7);
        assert_eq!(r.below(1), 0);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[usize::try_from(v).unwrap()] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert!(r.below(u64::MAX) < u64::MAX);
    }

    #[test]
    #[should_panic(expected = "empty range")]
    fn below_zero_panics() {
        TestRng::new(0).below(0);
    }
}
