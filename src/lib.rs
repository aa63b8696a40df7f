//! Support code shared by the workspace's integration tests, examples and benchmarks (not published).

/// The value types the integration tests store, shared so child processes and the parent agree on them.
pub mod fixtures {
    use serde::{Deserialize, Serialize};

    /// A value that carries a checksum of its own contents, so a reader can tell a whole value from a torn one.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Checked {
        /// The payload.
        pub data: Vec<u8>,
        /// A checksum of `data` (FNV-1a, 64 bit).
        pub sum: u64,
    }

    impl Checked {
        /// A value with `len` bytes derived from `seed`.
        pub fn new(seed: u64, len: usize) -> Checked {
            let data: Vec<u8> = (0..len)
                .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8)
                .collect();
            let sum = fnv1a(&data);
            Checked { data, sum }
        }

        /// Whether `sum` matches `data`.
        pub fn is_intact(&self) -> bool {
            fnv1a(&self.data) == self.sum
        }
    }

    /// FNV-1a over `data`.
    pub fn fnv1a(data: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}
