//! File-backed memoization: a persistent key/value [`Bucket`] in a directory, and the
//! [`#[bucket_cache]`](macro@bucket_cache) attribute that caches a function's results in one.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! # fn main() -> bucketcache::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let bucket = bucketcache::Bucket::builder(dir.path()).hours(1).build()?;
//! bucket.insert(&("user", 42u32), &vec!["admin".to_string()])?;
//! let roles: Option<Vec<String>> = bucket.get(&("user", 42u32))?;
//! assert_eq!(roles, Some(vec!["admin".to_string()]));
//!
//! // Another Bucket on the same directory (another process, a later run) sees the entry.
//! let again = bucketcache::Bucket::new(dir.path())?;
//! assert!(again.contains_key(&("user", 42u32))?);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `json` | on | [`JsonBackend`] (serde_json) |
//! | `msgpack` | on | [`MessagePackBackend`] (rmp-serde) |
//! | `macros` | on | the [`#[bucket_cache]`](macro@bucket_cache) attribute |
//!
//! | piece | what it does |
//! |---|---|
//! | [`Bucket`] | one file per key, atomic writes, checksummed entries, a bounded in-memory tier |
//! | [`BucketBuilder`] | lifetime (or `days`/`hours`/... shortcuts that add up), backend, key maker, memory bound, durability, clock |
//! | [`DeferredWriteBucket`], [`deferred_write`] | changes held in memory until `sync()` |
//! | [`Bucket::prune_directory`] | removes expired entries, invalid files and stale temporary files |
//! | [`BucketBuilder::max_size`], [`BucketBuilder::max_entries`] | a size-bounded bucket: least recently written entries are evicted as it writes |
//! | [`scan`] | walks a bucket directory and reads entry headers, for tools (the `bucketcache` CLI) |
//! | [`KeyMaker`]: [`DefaultKeyMaker`], [`StreamingDefaultKeyMaker`] | canonical, type-tagged blake3 keys |
//! | [`Backend`]: [`BincodeBackend`], [`JsonBackend`], [`MessagePackBackend`] | how values are encoded |
//!
//! # Keys
//!
//! Any `Serialize` value is a key. Its hash is blake3, keyed by the key format version
//! ([`KEY_FORMAT_VERSION`]), over a canonical encoding in which every value is tagged with its serde type: `(1, 2)`,
//! `[1, 2]` and `"[1, 2]"` are three keys, and so are `1u8` and `1u64` (integer width is part of the type). Map
//! entries are hashed in a canonical order, so two equal `HashMap`s give one key. A `HashSet` serializes as a
//! plain sequence in iteration order, which differs between equal sets: use a `BTreeSet` in keys. Field and
//! variant names are part of the key, so renaming a field starts fresh entries.
//!
//! # On-disk layout
//!
//! ```text
//! <bucket dir>/entries-v1/<first 2 hex digits>/<64 hex digits of the key hash>
//! ```
//!
//! The `entries-v1` directory names the entry format version, so a future format never misreads an old file.
//! Each entry file holds a 104-byte header (magic `BKTCACHE`, format version, backend id, function path, written
//! and expiry times, payload length, key hash, blake3 checksum of the whole file) and the payload; see
//! [`entry`] for the byte layout. Writes go to a temporary file (`.tmp-<pid>-<random>`) in the same directory and
//! are renamed into place, so a reader in any process sees the old entry or the new one, never a torn one.
//! Directories are created with mode 0700 and files with 0600 on Unix: the cache holds your values, in clear.
//!
//! # Expiry
//!
//! - A bucket's lifetime is stamped into each entry when it is written: `expires = written + lifetime`.
//!   Every write of a key resets its expiry. Without a lifetime, entries never expire.
//! - An entry is expired from the instant `now >= expires`. An expired entry reads as missing, and the read
//!   removes its file.
//! - [`Bucket::set_lifetime`] applies to later writes only; existing entries keep their stamp.
//! - [`Bucket::prune_directory`] removes entries by their own stamp, never by the pruning bucket's lifetime, so
//!   pruning never deletes an entry that is still valid for the bucket that wrote it (the Python ancestor did).
//! - Times come from a [`Clock`] ([`SystemClock`] by default), in milliseconds since the Unix epoch.
//!
//! # Failure policy
//!
//! - **Corrupt files** (truncated, bit-flipped, empty, garbage, another backend, another format version): a miss
//!   (`Ok(None)`), logged at `warn`; the next write replaces the file. Never a panic, never a wrong value.
//! - **Type change**: a stored value that does not decode as the requested type is [`Error::Decode`]; the
//!   attribute treats it as a miss and overwrites the entry.
//! - **Disk full, unwritable directory**: `insert` returns [`Error::Io`] and the previous entry, if any, is
//!   intact (the temporary file is removed). The attribute logs it and returns the computed value.
//! - **Hostile files**: decoding is bounded by the payload size (bincode's claim limit is 64x the payload, JSON
//!   and MessagePack cannot claim more than the payload holds), so a small crafted file cannot allocate gigabytes.
//!   Keys are hashes, so no key can name a path outside the bucket.
//!
//! # Memory tier
//!
//! A bounded concurrent cache ([`BucketBuilder::memory_max_bytes`], 64 MiB by default) of the values read or
//! written in this process. A hit from it touches no file. It is per process: a write by another process is seen
//! once the key is not in this process's memory tier (after [`Bucket::unload_key`], eviction or a restart).
//!
//! # Logging
//!
//! Through `tracing`, target `bucketcache`: key hashing, loads, writes and expiries at `debug`; every handled
//! failure (corrupt file, failed write) at `warn`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

mod arg_value;
mod backend;
mod bound;
mod bucket;
mod builder;
mod call_info;
mod clock;
mod default_bucket;
mod deferred;
pub mod entry;
mod error;
mod flight;
mod key;
mod memory;
mod prune;
pub mod scan;
pub mod store;

#[doc(hidden)]
pub mod __private;

pub use arg_value::{ArgValue, Fields};
pub use backend::{Backend, BincodeBackend, BincodeConfig, MAX_BACKEND_ID_LEN};
#[cfg(feature = "json")]
pub use backend::{JsonBackend, JsonConfig};
#[cfg(feature = "msgpack")]
pub use backend::{MessagePackBackend, MessagePackConfig};
pub use bound::RESCAN_MIN_WRITES;
pub use bucket::{Bucket, Hit, HitSource, Stored};
pub use builder::{BucketBuilder, DEFAULT_MEMORY_MAX_BYTES};
pub use call_info::{CachedCallInfo, CallArg};
pub use clock::{Clock, ManualClock, SystemClock};
pub use default_bucket::{default_cache_dir, BUCKETCACHE_DIR_VAR};
pub use deferred::{deferred_write, DeferredWriteBucket};
pub use error::{BoxError, Error, Result};
pub use key::{
    canonical_key_bytes, default_key_hash, DefaultKeyMaker, KeyHash, KeyMaker, StreamingDefaultKeyMaker,
    KEY_FORMAT_VERSION,
};
pub use prune::PrunedFilesInfo;
pub use store::Durability;

#[cfg(feature = "macros")]
pub use bucketcache_macros::bucket_cache;
