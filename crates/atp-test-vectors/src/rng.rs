//! A small deterministic pseudo-random generator for tests that spread
//! inputs, so a failure reproduces from its seed.

/// xorshift64*: not for cryptography, only to vary test inputs from a fixed
/// seed.
///
/// ```
/// use atp_test_vectors::TestRng;
/// let mut a = TestRng::new(7);
/// let mut b = TestRng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator starting from `seed` (which must not be zero: zero
    /// stays zero).
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` must not be zero).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
