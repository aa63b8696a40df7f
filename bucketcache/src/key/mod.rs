//! Key derivation: any `Serialize` key becomes a 32-byte blake3 [`KeyHash`].
//!
//! The hash is blake3, keyed with a domain key derived from the key format version, over the canonical, type-tagged
//! encoding described in `encoder.rs`. [`DefaultKeyMaker`] builds that encoding in memory (so it can be logged);
//! [`StreamingDefaultKeyMaker`] feeds it to the hasher as it is produced, in constant memory. Both give the same hash.

mod encoder;
pub(crate) mod exact;
mod memo;
mod runs;
pub(crate) mod shape;
mod spill;

use std::cell::RefCell;
use std::fmt;
use std::sync::LazyLock;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::tree_hash::TreeMode;
use encoder::{Encoder, HashSink};
use spill::SpillSink;

/// Version of the key encoding. Part of the hash's domain key: changing it changes every key.
///
/// 2: runs of every fixed-width primitive in sequences (version 1 had runs of `u8` only); see `encoder.rs`.
pub const KEY_FORMAT_VERSION: u32 = 2;

static KEY_DOMAIN: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("bucketcache 2026-11 key format v2", &KEY_FORMAT_VERSION.to_le_bytes()));
static MAP_ENTRY_DOMAIN: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("bucketcache 2026-11 map entry v2", &KEY_FORMAT_VERSION.to_le_bytes()));

pub(crate) fn map_entry_key() -> &'static [u8; 32] {
    &MAP_ENTRY_DOMAIN
}

fn key_hasher() -> blake3::Hasher {
    blake3::Hasher::new_keyed(&KEY_DOMAIN)
}

/// The key hash of complete canonical bytes.
fn hash_canonical(bytes: &[u8]) -> [u8; 32] {
    let mut h = key_hasher();
    h.update(bytes);
    *h.finalize().as_bytes()
}

/// The 32-byte hash that names an entry; its hex form is the entry's file name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-character lower-case hex form.
    pub fn to_hex(&self) -> String {
        // Into a byte array, then one string (a `push` per digit checked the capacity 64 times: a few thousand
        // instructions of every miss, which names its entry file more than once).
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xF)];
        }
        // ASCII digits: valid UTF-8, so this borrows and copies once (collecting `char`s encoded each one).
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Parses the 64-character hex form (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<KeyHash> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(KeyHash(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

/// Turns a key into a [`KeyHash`]. Implement it to change how keys are derived.
///
/// Implementations must be deterministic across processes and platforms: equal keys must give equal hashes
/// forever, or persisted entries become unreachable.
pub trait KeyMaker: Send + Sync + 'static {
    /// Hashes `key`.
    ///
    /// # Errors
    /// [`Error::Key`] when the key's `Serialize` implementation fails.
    fn make_key<T: Serialize + ?Sized>(&self, key: &T) -> Result<KeyHash>;

    /// Hashes `key` and also returns its canonical bytes when the key maker has them at hand (for logging).
    /// The default returns no bytes.
    ///
    /// # Errors
    /// As [`KeyMaker::make_key`].
    fn make_key_with_bytes<T: Serialize + ?Sized>(&self, key: &T) -> Result<(KeyHash, Option<Vec<u8>>)> {
        Ok((self.make_key(key)?, None))
    }
}

fn key_error(e: encoder::KeyEncodeError) -> Error {
    Error::Key { message: e.0 }
}

thread_local! {
    // Reused buffers: a key of a few dozen bytes should not cost an allocation.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Large scratch buffers are not kept around after use.
const SCRATCH_KEEP: usize = 64 * 1024;

fn with_scratch<R>(f: impl FnOnce(Vec<u8>) -> (Vec<u8>, R)) -> R {
    // `try_with`/`try_borrow_mut`: during thread teardown, or re-entered, a fresh buffer is used, never a panic.
    let buf = SCRATCH
        .try_with(|s| {
            s.try_borrow_mut()
                .map(|mut b| std::mem::take(&mut *b))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let (mut buf, r) = f(buf);
    if buf.capacity() <= SCRATCH_KEEP {
        buf.clear();
        let _ = SCRATCH.try_with(|s| {
            if let Ok(mut b) = s.try_borrow_mut() {
                *b = buf;
            }
        });
    }
    r
}

/// The canonical encoding of `key`, as bytes (what [`DefaultKeyMaker`] hashes).
///
/// # Errors
/// [`Error::Key`] when the key's `Serialize` implementation fails.
pub fn canonical_key_bytes<T: Serialize + ?Sized>(key: &T) -> Result<Vec<u8>> {
    let mut enc = Encoder::new(Vec::new());
    enc.encode(key).map_err(key_error)?;
    Ok(enc.into_sink())
}

/// The default key maker: builds the canonical bytes in memory, then hashes them.
///
/// Small keys (up to 256 canonical bytes) are looked up in a per-thread memo of recent hashes first, so calling a
/// memoized function again with the same arguments costs an encoding and a table probe, not a blake3 hash.
///
/// An encoding up to 64 KiB is built in a reused per-thread buffer; a larger one (a key holding a big buffer) streams
/// into the hasher past that point, so memory stays bounded; the hash is the same either way, and the same as
/// [`StreamingDefaultKeyMaker`]'s.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultKeyMaker;

impl DefaultKeyMaker {
    /// A new default key maker.
    pub fn new() -> Self {
        DefaultKeyMaker
    }
}

impl KeyMaker for DefaultKeyMaker {
    fn make_key<T: Serialize + ?Sized>(&self, key: &T) -> Result<KeyHash> {
        with_scratch(|buf| {
            // Past SCRATCH_KEEP bytes the encoding streams into the hasher: a large argument is hashed in constant
            // memory (the same hash: blake3 of the same bytes).
            let mut enc = Encoder::new(SpillSink::new(buf, SCRATCH_KEEP, TreeMode::Keyed(&KEY_DOMAIN)));
            let r = enc.encode(key).map_err(key_error).and_then(|()| {
                Ok(KeyHash(match enc.sink.spilled_hash() {
                    Some(h) => h.map_err(key_error)?,
                    None => memo::hash_memoized(&enc.sink.buf, hash_canonical),
                }))
            });
            (enc.into_sink().buf, r)
        })
    }

    fn make_key_with_bytes<T: Serialize + ?Sized>(&self, key: &T) -> Result<(KeyHash, Option<Vec<u8>>)> {
        let bytes = canonical_key_bytes(key)?;
        let mut h = key_hasher();
        h.update(&bytes);
        Ok((KeyHash(*h.finalize().as_bytes()), Some(bytes)))
    }
}

/// A key maker that streams the canonical encoding into the hasher: constant memory (a 64 KiB buffer) whatever the
/// key's size, and the same hash as [`DefaultKeyMaker`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamingDefaultKeyMaker;

impl StreamingDefaultKeyMaker {
    /// A new streaming key maker.
    pub fn new() -> Self {
        StreamingDefaultKeyMaker
    }
}

impl KeyMaker for StreamingDefaultKeyMaker {
    fn make_key<T: Serialize + ?Sized>(&self, key: &T) -> Result<KeyHash> {
        let mut enc = Encoder::new(HashSink::new(key_hasher()));
        enc.encode(key).map_err(key_error)?;
        Ok(KeyHash(enc.into_sink().finalize()))
    }
}

/// Hashes a key with the default encoding (what both provided key makers compute).
///
/// # Errors
/// [`Error::Key`] when the key's `Serialize` implementation fails.
pub fn default_key_hash<T: Serialize + ?Sized>(key: &T) -> Result<KeyHash> {
    StreamingDefaultKeyMaker.make_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = default_key_hash("abc").expect("hash");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
        assert_eq!(KeyHash::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn both_key_makers_agree() {
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let a = DefaultKeyMaker.make_key(&(1u32, "x", &big)).expect("hash");
        let b = StreamingDefaultKeyMaker.make_key(&(1u32, "x", &big)).expect("hash");
        assert_eq!(a, b);
        let (c, bytes) = DefaultKeyMaker.make_key_with_bytes(&(1u32, "x", &big)).expect("hash");
        assert_eq!(a, c);
        assert!(bytes.is_some());
        // Around the point where the default key maker stops buffering and streams into the hasher.
        for len in (SCRATCH_KEEP - 40..SCRATCH_KEEP + 40).chain([0, 1, 4096, 3 * SCRATCH_KEEP]) {
            let v = vec![7u8; len];
            assert_eq!(
                DefaultKeyMaker.make_key(&v).expect("hash"),
                StreamingDefaultKeyMaker.make_key(&v).expect("hash"),
                "{len} bytes"
            );
            assert_eq!(
                DefaultKeyMaker.make_key(&("s", &v)).expect("hash"),
                KeyHash(hash_canonical(&canonical_key_bytes(&("s", &v)).expect("bytes"))),
                "{len} bytes"
            );
        }
    }

    /// Both key makers, and the hash of the logged bytes, on one key.
    fn agree<T: Serialize + ?Sized>(key: &T, what: &str) -> KeyHash {
        let a = DefaultKeyMaker.make_key(key).expect("hash");
        assert_eq!(a, StreamingDefaultKeyMaker.make_key(key).expect("hash"), "{what}");
        let (c, bytes) = DefaultKeyMaker.make_key_with_bytes(key).expect("hash");
        assert_eq!(a, c, "{what}");
        assert_eq!(
            KeyHash(hash_canonical(&bytes.expect("bytes"))),
            a,
            "{what}: the logged bytes hash to the key"
        );
        a
    }

    #[test]
    fn both_key_makers_agree_on_runs() {
        use std::collections::BTreeMap;
        agree(&Vec::<f64>::new(), "empty");
        agree(&(Vec::<u8>::new(), [0u32; 0]), "empties");
        // Around the spill limit and the run chunk size, for each width.
        for len in [
            1usize, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 8191, 8193, 9000, 70_000,
        ] {
            agree(&vec![1.5f64; len], &format!("f64 x {len}"));
            agree(&vec![3u16; len], &format!("u16 x {len}"));
            agree(&vec![-7i128; len / 8], &format!("i128 x {}", len / 8));
            agree(&("s", vec![true; len], 'c'), &format!("bool x {len}"));
            agree(&(0..len).map(|i| i as u8).collect::<Vec<u8>>(), &format!("u8 x {len}"));
            // A slice, a Vec and a hand-written sequence of the same elements are one key.
            let v: Vec<u32> = (0..len as u32).collect();
            assert_eq!(agree(&v, "vec"), agree(&v[..], "slice"), "{len}");
        }
        // Mixed and nested sequences, sequences of options, NaN, signed zeros.
        let mixed = (
            vec![vec![1u8, 2], vec![], vec![3]],
            vec![Some(1.0f64), None, Some(f64::NAN)],
            [0.0f32, -0.0, f32::NAN],
            vec!['a', 'b'],
            BTreeMap::from([(1u8, vec![2i64; 5000])]),
        );
        agree(&mixed, "mixed");
        assert_eq!(
            agree(&vec![f64::NAN, 1.0], "nan"),
            agree(&vec![-f64::NAN, 1.0], "nan"),
            "all NaNs are one key"
        );
        assert_ne!(
            agree(&vec![0.0f64; 10_000], "zero"),
            agree(&vec![-0.0f64; 10_000], "negative zero"),
            "-0.0 and 0.0 stay distinct"
        );
        assert_ne!(
            agree(&vec![1u16, 2], "u16"),
            agree(&vec![1u32, 2], "u32"),
            "runs of two kinds differ"
        );
        assert_ne!(
            agree(&vec![vec![1u8], vec![2u8]], "split"),
            agree(&vec![vec![1u8, 2u8]], "joined"),
            "nested runs stay apart"
        );
        // Big enough for the default key maker's helper thread (past 1 MiB).
        let big: Vec<f64> = (0..300_000).map(|i| i as f64 * 0.25).collect();
        agree(&(1u32, &big, "tail"), "big f64");
    }
}
