//! Support code shared by the workspace's integration tests, examples and benchmarks (not published).

/// The value types the integration tests store, shared so child processes and the parent agree on them.
pub mod fixtures {
    use serde::{Deserialize, Serialize};

    /// A value that carries a checksum of its own contents, so a reader can tell a whole value from a torn one.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Checked {
        /// The payload (as bytes, not a sequence of numbers: the format's fast path, and readable in a hex dump).
        #[serde(with = "serde_bytes")]
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

    /// What the crash test's child writes: a value fully determined by its key and generation, so a reader can
    /// tell whether what it reads is exactly a value that was written.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Generation {
        /// The key it was written under.
        pub key: u64,
        /// How many times the writer had rewritten that key before.
        pub generation: u64,
        /// Data whose size varies with the generation (up to 256 KiB).
        pub body: Checked,
    }

    impl Generation {
        /// The value written under `key` at `generation`.
        pub fn new(key: u64, generation: u64) -> Generation {
            let mix = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ generation.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            // Mostly small, sometimes large: a kill lands inside big writes often enough.
            let len = if mix.is_multiple_of(8) {
                (mix >> 8) % (256 * 1024)
            } else {
                (mix >> 8) % 2048
            };
            Generation {
                key,
                generation,
                body: Checked::new(mix, len as usize),
            }
        }

        /// Whether this is exactly the value [`Generation::new`] gives for its key and generation.
        pub fn is_exact(&self) -> bool {
            *self == Generation::new(self.key, self.generation)
        }
    }
}

/// Entry files built by hand from the documented format (`bucketcache::entry`), independently of the crate's own
/// writer: valid checksums over any payload, for hostile-file and fuzz tests.
pub mod forge {
    /// Size of the fixed header.
    pub const HEADER_LEN: usize = 176;
    /// The format version of a blake3-checksummed entry (format 2, which this build still reads).
    pub const FORMAT_VERSION: u16 = 2;
    /// The format version this build writes: format 2's layout with the piecewise xxh3 payload checksum.
    pub const FORMAT_VERSION_XXH3: u16 = 3;
    /// The flag bit of the xxh3 payload checksum.
    pub const FLAG_XXH3: u8 = 2;
    /// Bytes of one piece of the xxh3 sum.
    const SUM_PIECE: usize = 4 << 20;
    /// The seed of the xxh3 over the pieces' digests.
    const DIGESTS_SEED: u64 = 0x6275_636b_6574_7333;

    /// The piecewise xxh3 sum of `payload` as the format documents it (`bucketcache::entry::PieceSum`): xxh3-128 of
    /// each 4 MiB piece seeded with its index, then xxh3-128 (seeded) of the digests, little-endian, and the
    /// payload's length as u64 LE; 16 bytes LE, then 16 zero bytes. Written here from the description, not with
    /// the crate's code, so a test of the crate against it checks both.
    pub fn xxh3_sum(payload: &[u8]) -> [u8; 32] {
        let mut list = Vec::new();
        for (i, piece) in payload.chunks(SUM_PIECE).enumerate() {
            list.extend_from_slice(&xxhash_rust::xxh3::xxh3_128_with_seed(piece, i as u64).to_le_bytes());
        }
        list.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&xxhash_rust::xxh3::xxh3_128_with_seed(&list, DIGESTS_SEED).to_le_bytes());
        out
    }

    /// A format-3 entry file (the xxh3 payload checksum, as this build writes) for `key` whose payload is
    /// `payload`.
    pub fn entry_xxh3(key: &[u8; 32], backend: &str, payload: &[u8]) -> Vec<u8> {
        let mut file = entry(FORMAT_VERSION_XXH3, key, backend, payload);
        file[10] |= FLAG_XXH3;
        seal(&mut file);
        file
    }

    /// An entry file (format version `version`) for `key` whose payload is `payload`, with valid checksums.
    pub fn entry(version: u16, key: &[u8; 32], backend: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + backend.len() + payload.len());
        out.extend_from_slice(b"BKTCACHE");
        out.extend_from_slice(&version.to_le_bytes());
        out.push(0);
        out.push(backend.len() as u8);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
        out.extend_from_slice(&i64::MAX.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&u64::MAX.to_le_bytes()); // cost unknown
        out.extend_from_slice(key);
        out.extend_from_slice(&[0u8; 32 + 16 + 32 + 16]); // call hash, code, payload and header checksums
        out.extend_from_slice(backend.as_bytes());
        out.extend_from_slice(payload);
        seal(&mut out);
        out
    }

    /// Recomputes both checksums of a file of at least [`HEADER_LEN`] bytes, as its header's lengths say (the
    /// payload checksum over what follows the variable part, the header checksum over the rest of the header).
    pub fn seal(file: &mut [u8]) {
        let var_end =
            (HEADER_LEN + file[11] as usize + u16::from_le_bytes([file[12], file[13]]) as usize).min(file.len());
        // The checksum the header's flags name: the xxh3 sum, or blake3 (format 2).
        let payload_sum = if file[10] & FLAG_XXH3 != 0 {
            xxh3_sum(&file[var_end..])
        } else {
            *blake3::hash(&file[var_end..]).as_bytes()
        };
        file[128..160].copy_from_slice(&payload_sum);
        let mut h = blake3::Hasher::new();
        h.update(&file[..160]);
        h.update(&file[HEADER_LEN..var_end]);
        let header_sum = *h.finalize().as_bytes();
        file[160..176].copy_from_slice(&header_sum[..16]);
    }
}

/// The decoder fuzz target, shared by `tests/fuzz_decoder.rs` (proptest, in CI) and `fuzz/` (cargo-fuzz).
pub mod fuzz {
    use std::collections::{BTreeMap, HashMap};

    use bucketcache::{Backend, BincodeBackend, BincodeConfig, JsonBackend, MessagePackBackend};
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    /// A recursive type with most serde shapes: the worst case for a decoder fed hostile bytes.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Shape {
        /// A leaf.
        Unit,
        /// Numbers.
        Num(i64, u8, f64),
        /// A string and bytes.
        Text(String, #[serde(with = "serde_bytes")] Vec<u8>),
        /// Nesting.
        List(Vec<Shape>),
        /// A map.
        Map(BTreeMap<String, Shape>),
        /// An option and a struct variant.
        Node {
            /// A child.
            child: Option<Box<Shape>>,
            /// A tag.
            tag: char,
        },
    }

    fn decode_as<B: Backend, T: DeserializeOwned>(backend: &B, payload: &[u8]) -> bool {
        backend.decode::<T>(payload).is_ok()
    }

    fn decode_types<B: Backend>(backend: &B, payload: &[u8]) -> usize {
        [
            decode_as::<B, Shape>(backend, payload),
            decode_as::<B, String>(backend, payload),
            decode_as::<B, Vec<u64>>(backend, payload),
            decode_as::<B, HashMap<String, Vec<u8>>>(backend, payload),
            decode_as::<B, (u8, Option<String>, Vec<Vec<i32>>)>(backend, payload),
            decode_as::<B, super::fixtures::Checked>(backend, payload),
        ]
        .iter()
        .filter(|ok| **ok)
        .count()
    }

    /// Feeds `data` to the entry parser and, as a payload, to every backend's decoder as several types. Returns
    /// how many decodes succeeded. Must never panic, hang or allocate without bound.
    pub fn decode_everything(data: &[u8]) -> usize {
        let mut ok = 0;
        // As a whole entry file: the header parser and checksum, then its payload, if any.
        let payload = match bucketcache::entry::verify(data) {
            Ok((_, at)) => {
                ok += 1;
                &data[at..]
            }
            Err(_) => data,
        };
        let _ = bucketcache::entry::parse_header(data);
        ok += decode_types(&BincodeBackend::new(), payload);
        ok += decode_types(
            &BincodeBackend::with_config(BincodeConfig::new().fixed_int_encoding(true)),
            payload,
        );
        ok += decode_types(&JsonBackend::new(), payload);
        ok += decode_types(&MessagePackBackend::new(), payload);
        ok
    }
}

#[cfg(feature = "redis")]
pub mod redis_server;

/// Child processes of the cross-process tests.
pub mod child {
    /// Waits for a child spawned with piped output; panics (with its status, stdout and stderr) unless it
    /// succeeded; returns its stdout.
    pub fn success_output(child: std::process::Child) -> String {
        let out = child.wait_with_output().expect("wait for the child process");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: {text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

/// Visible skips: a test that cannot run a check here says why on stderr and counts it, and in CI a skip of a check
/// CI is set up to run is a failure.
///
/// - `BUCKETCACHE_SKIP_LOG=FILE`: each skip appends one line `check: reason` to FILE (`.ci/run` sets it and lists
///   the skipped checks at the end of its log).
/// - `CI=true` and `BUCKETCACHE_REQUIRE_ALL=1` (both set when `.ci/run` runs in CI): a skip with
///   [`Needs::Tools`] panics instead, since CI installs what those checks need.
pub mod skip {
    use std::io::Write;

    /// The variable naming the file skips are appended to.
    pub const LOG_ENV: &str = "BUCKETCACHE_SKIP_LOG";
    /// The variable that, with `CI=true`, turns a skip of a check CI can run into a failure.
    pub const REQUIRE_ALL_ENV: &str = "BUCKETCACHE_REQUIRE_ALL";

    /// What a skipped check lacked.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Needs {
        /// Something `.ci/run` provides on a clean machine (a tool it installs, root or a normal user's rights):
        /// in CI with `BUCKETCACHE_REQUIRE_ALL=1` the skip fails the test.
        Tools,
        /// Something the kernel or container decides (user namespaces, mount rights): a skip, visible, never a
        /// failure.
        Environment,
    }

    /// Whether a skip of a check that needs `needs` must fail here (CI with every check required).
    pub fn must_run(needs: Needs) -> bool {
        needs == Needs::Tools
            && std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
            && std::env::var(REQUIRE_ALL_ENV).is_ok_and(|v| v == "1")
    }

    /// Records that `check` did not run because of `reason`: prints it on stderr, appends it to the skip log if
    /// one is set, and panics instead when [`must_run`] says the check had to run.
    pub fn skip(check: &str, needs: Needs, reason: &str) {
        let reason = reason.replace('\n', " ");
        if must_run(needs) {
            panic!("{check}: skipped in CI, where it must run ({REQUIRE_ALL_ENV}=1): {reason}");
        }
        // Written to the process's stderr directly, not through `eprintln!`, which the test harness captures.
        let _ = writeln!(std::io::stderr(), "SKIPPED {check}: {reason}");
        if let Some(path) = std::env::var_os(LOG_ENV) {
            let line = format!("{check}: {reason}\n");
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = written {
                panic!(
                    "{check}: skipped, and the skip log {} cannot be written: {e}",
                    path.to_string_lossy()
                );
            }
        }
    }
}
