//! `BucketBuilder`: every setting of a bucket, with documented defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, BincodeBackend, MAX_BACKEND_ID_LEN};
use crate::bound::BoundConfig;
use crate::bucket::{Bucket, Parts};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::key::{DefaultKeyMaker, KeyMaker};
use crate::store::{self, Durability};
use crate::tier::{Guarded, SharedTier, DEFAULT_COOL_OFF};

use tracing::warn;

/// Default bound of the memory tier: 64 MiB.
pub const DEFAULT_MEMORY_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Configures and opens a [`Bucket`].
///
/// Defaults: no lifetime (entries never expire), [`BincodeBackend`], [`DefaultKeyMaker`], a memory tier of
/// [`DEFAULT_MEMORY_MAX_BYTES`], [`Durability::Atomic`] (no fsync), the system clock, abbreviated key logging, no
/// size or entry-count bound (see [`max_size`](Self::max_size)).
///
/// ```
/// use std::time::Duration;
/// # fn main() -> bucketcache::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let bucket = bucketcache::Bucket::builder(dir.path()).hours(1).minutes(30).build()?;
/// assert_eq!(bucket.lifetime(), Some(Duration::from_secs(90 * 60)));
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Debug)]
pub struct BucketBuilder<B: Backend = BincodeBackend, K: KeyMaker = DefaultKeyMaker> {
    path: PathBuf,
    lifetime: Option<Duration>,
    shortcuts: Option<u128>,
    backend: B,
    keymaker: K,
    memory_max_bytes: u64,
    durability: Durability,
    clock: Arc<dyn Clock>,
    log_full_keys: bool,
    /// `max_size` / `max_entries` (bound.rs).
    bound: BoundConfig,
    /// The shared tier (tier/), with its cool-off.
    shared: Option<Box<dyn SharedTier>>,
    cool_off: Duration,
    /// The largest entry file read (store.rs).
    max_entry_bytes: u64,
    /// Refuse a bucket directory writable by group or others.
    refuse_insecure_dir: bool,
    /// zstd compression of large payloads (feature `zstd`).
    compression: Option<store::Compression>,
}

impl BucketBuilder {
    pub(crate) fn new(path: PathBuf) -> Self {
        BucketBuilder {
            path,
            lifetime: None,
            shortcuts: None,
            backend: BincodeBackend::default(),
            keymaker: DefaultKeyMaker,
            memory_max_bytes: DEFAULT_MEMORY_MAX_BYTES,
            durability: Durability::default(),
            clock: Arc::new(SystemClock),
            log_full_keys: false,
            bound: BoundConfig::default(),
            shared: None,
            cool_off: DEFAULT_COOL_OFF,
            max_entry_bytes: store::DEFAULT_MAX_ENTRY_BYTES,
            refuse_insecure_dir: false,
            compression: None,
        }
    }
}

impl<B: Backend, K: KeyMaker> BucketBuilder<B, K> {
    /// Entries written by the bucket expire this long after each write. Cannot be combined with the shortcuts
    /// ([`days`](Self::days), [`hours`](Self::hours), ...).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    fn add_ms(mut self, n: u64, unit_ms: u128) -> Self {
        let add = u128::from(n).saturating_mul(unit_ms);
        self.shortcuts = Some(self.shortcuts.unwrap_or(0).saturating_add(add));
        self
    }

    /// Adds `n` days to the lifetime (the shortcuts add up).
    pub fn days(self, n: u64) -> Self {
        self.add_ms(n, 86_400_000)
    }

    /// Adds `n` hours to the lifetime.
    pub fn hours(self, n: u64) -> Self {
        self.add_ms(n, 3_600_000)
    }

    /// Adds `n` minutes to the lifetime.
    pub fn minutes(self, n: u64) -> Self {
        self.add_ms(n, 60_000)
    }

    /// Adds `n` seconds to the lifetime.
    pub fn seconds(self, n: u64) -> Self {
        self.add_ms(n, 1_000)
    }

    /// Adds `n` milliseconds to the lifetime.
    pub fn milliseconds(self, n: u64) -> Self {
        self.add_ms(n, 1)
    }

    /// The serialization backend (default [`BincodeBackend`]).
    pub fn backend<B2: Backend>(self, backend: B2) -> BucketBuilder<B2, K> {
        BucketBuilder {
            path: self.path,
            lifetime: self.lifetime,
            shortcuts: self.shortcuts,
            backend,
            keymaker: self.keymaker,
            memory_max_bytes: self.memory_max_bytes,
            durability: self.durability,
            clock: self.clock,
            log_full_keys: self.log_full_keys,
            bound: self.bound,
            shared: self.shared,
            cool_off: self.cool_off,
            max_entry_bytes: self.max_entry_bytes,
            refuse_insecure_dir: self.refuse_insecure_dir,
            compression: self.compression,
        }
    }

    /// The key maker (default [`DefaultKeyMaker`]).
    pub fn keymaker<K2: KeyMaker>(self, keymaker: K2) -> BucketBuilder<B, K2> {
        BucketBuilder {
            path: self.path,
            lifetime: self.lifetime,
            shortcuts: self.shortcuts,
            backend: self.backend,
            keymaker,
            memory_max_bytes: self.memory_max_bytes,
            durability: self.durability,
            clock: self.clock,
            log_full_keys: self.log_full_keys,
            bound: self.bound,
            shared: self.shared,
            cool_off: self.cool_off,
            max_entry_bytes: self.max_entry_bytes,
            refuse_insecure_dir: self.refuse_insecure_dir,
            compression: self.compression,
        }
    }

    /// Bound of the in-memory tier, in bytes (entry file sizes plus a small overhead each); least recently used
    /// entries are evicted past it. `0` disables the tier: every read goes to the file. Default 64 MiB. An entry
    /// larger than an eighth of the bound is not kept in the tier (no clone of a large value is made); its reads go
    /// to its file.
    pub fn memory_max_bytes(mut self, bytes: u64) -> Self {
        self.memory_max_bytes = bytes;
        self
    }

    /// Compresses payloads whose encoding reaches `min_bytes` with zstd at `level` (1 to 22; 1 to 3 are fast;
    /// clamped into zstd's range), recorded in the entry header (feature `zstd`; off by default). `min_bytes` is
    /// clamped to at most 16 MiB: the encoding below it is held in memory until the choice is made. A build
    /// without the feature reads compressed entries as misses.
    ///
    /// Compression pays for values that compress well and are read from a slow disk; for numeric data it mostly
    /// costs time (see the crate docs, Large values).
    #[cfg(feature = "zstd")]
    pub fn compression(mut self, level: i32, min_bytes: u64) -> Self {
        let range = zstd::compression_level_range();
        self.compression = Some(store::Compression {
            level: level.clamp(*range.start(), *range.end()),
            min_bytes: usize::try_from(min_bytes.min(16 << 20)).unwrap_or(16 << 20),
        });
        self
    }

    /// Whether writes are fsynced (default [`Durability::Atomic`]: atomic rename, no fsync).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The clock used for write times and expiry (default: the system clock). Tests use a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Log keys in full at `debug` instead of abbreviated (default off). Keys hold argument values, which may be
    /// secrets: switch this on only where logs are private.
    pub fn log_full_keys(mut self, yes: bool) -> Self {
        self.log_full_keys = yes;
        self
    }

    /// Keeps the bucket's directory under `bytes` (entry file sizes) by removing the least recently *written*
    /// entries as it writes. Default: no bound. Combines with [`max_entries`](Self::max_entries): either bound
    /// triggers eviction.
    ///
    /// The first write walks the directory once to index it; later writes evict from that index without walking
    /// it. Reads do not refresh an entry; rewriting it does. See [`Bucket::enforce_bound`] for the limits (entries
    /// written by other processes are seen by a periodic rescan).
    ///
    /// ```
    /// # fn main() -> bucketcache::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let bucket = bucketcache::Bucket::builder(dir.path()).max_size(64 * 1024).build()?;
    /// for i in 0..100u32 {
    ///     bucket.insert(&i, &vec![0u8; 2048])?;
    /// }
    /// let (bytes, entries) = bucket.bounded_usage().expect("bounded");
    /// assert!(bytes <= 64 * 1024 && entries < 100);
    /// assert!(bucket.contains_key(&99u32)?);
    /// # Ok(()) }
    /// ```
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.bound.max_bytes = Some(bytes);
        self
    }

    /// Keeps at most `n` entries in the bucket's directory, removing the least recently written ones as it writes.
    /// Default: no bound. See [`max_size`](Self::max_size).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.bound.max_entries = Some(n);
        self
    }

    /// A shared tier behind the directory (default: none), e.g. a `RedisTier` (feature `redis`): a local miss
    /// reads it (a verified hit is copied into the directory and memory with its original stamps), and every write
    /// goes through to it. Its failures are misses or skipped writes, never errors: see [`crate::tier`].
    pub fn shared(mut self, tier: impl SharedTier) -> Self {
        self.shared = Some(Box::new(tier));
        self
    }

    /// How long the shared tier is skipped after a failure (default [`DEFAULT_COOL_OFF`], 30 s), so a dead server
    /// costs one timeout per cool-off, not one per call.
    pub fn shared_cool_off(mut self, cool_off: Duration) -> Self {
        self.cool_off = cool_off;
        self
    }

    /// The largest entry file the bucket reads, in bytes (default
    /// [`DEFAULT_MAX_ENTRY_BYTES`](crate::store::DEFAULT_MAX_ENTRY_BYTES), 1 GiB). A larger file under an entry's
    /// name is corrupt: it reads as a miss (logged at `warn`) without being read, and the next write replaces it.
    /// So is a sparse file (at least 16 MiB long with less than a sixteenth of it on disk), whatever this bound.
    /// Raise it only if you store values whose encoding is larger; writes are not limited by it.
    ///
    /// ```
    /// # fn main() -> bucketcache::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let bucket = bucketcache::Bucket::builder(dir.path()).max_entry_bytes(1024).build()?;
    /// bucket.insert("big", &vec![0u8; 4096])?;
    /// assert_eq!(bucket.get::<Vec<u8>>("big")?, Some(vec![0u8; 4096]), "the memory tier still has it");
    /// bucket.unload_all();
    /// assert_eq!(bucket.get::<Vec<u8>>("big")?, None, "the file is over the bound: a miss");
    /// # Ok(()) }
    /// ```
    pub fn max_entry_bytes(mut self, bytes: u64) -> Self {
        self.max_entry_bytes = bytes;
        self
    }

    /// Refuse (with [`Error::Config`]) a bucket directory that is writable by its group or by every user without
    /// the sticky bit, instead of the default `warn`. In such a directory another local user can plant links and
    /// files, or replace the bucket's own directories; the bucket never follows a link and never touches a file
    /// outside itself, but it cannot keep such a user from deleting or corrupting its entries. Fix with
    /// `chmod 700 <dir>`.
    pub fn refuse_insecure_dir(mut self, yes: bool) -> Self {
        self.refuse_insecure_dir = yes;
        self
    }

    /// Opens the bucket, creating its directory (and parents) if missing, with mode 0700 on Unix.
    ///
    /// The path is made absolute here (relative to the current directory at this call), so a later `chdir` of the
    /// process does not move the bucket. The entries directory is opened once, without following a link, and kept
    /// open: every later read, write and removal happens relative to it (see the crate docs' Security section).
    /// A bucket directory writable by group or others is logged at `warn` (see
    /// [`refuse_insecure_dir`](Self::refuse_insecure_dir)).
    ///
    /// # Errors
    /// [`Error::Config`] when both a lifetime and shortcuts were given, the lifetime is under a millisecond, the
    /// backend id is invalid, a bound is zero, or the directory is insecure and
    /// [`refuse_insecure_dir`](Self::refuse_insecure_dir) is on;
    /// [`Error::Io`] when the directory cannot be created (for example, a file is in the way), or its entries
    /// directory is a symbolic link or belongs to another user (never followed, never used).
    pub fn build(self) -> Result<Bucket<B, K>> {
        let lifetime =
            match (self.lifetime, self.shortcuts) {
                (Some(_), Some(_)) => return Err(Error::config(
                    "both `lifetime(..)` and a shortcut (`days`, `hours`, `minutes`, `seconds`, `milliseconds`) were \
                     given; use one or the other",
                )),
                (Some(l), None) => Some(l),
                (None, Some(ms)) => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))),
                (None, None) => None,
            };
        if lifetime.is_some_and(|l| l.as_millis() == 0) {
            return Err(Error::config(
                "a lifetime under one millisecond would expire every entry as it is written; give a positive \
                 lifetime, or none for entries that never expire",
            ));
        }
        let id = self.backend.id();
        if id.is_empty() || id.len() > MAX_BACKEND_ID_LEN || !id.is_ascii() {
            return Err(Error::config(format!(
                "backend id {id:?} must be 1 to {MAX_BACKEND_ID_LEN} ASCII characters"
            )));
        }
        self.bound.validate()?;
        if self.max_entry_bytes == 0 {
            return Err(Error::config(
                "`max_entry_bytes(0)` would read no entry; give a size above the largest entry you store",
            ));
        }
        let root = std::path::absolute(&self.path).map_err(|e| Error::io("make absolute", &self.path, e))?;
        store::create_dir_private(&root).map_err(|e| Error::io("create bucket directory", &root, e))?;
        if let Some(risk) = crate::scan::insecure_dir_warning(&root) {
            if self.refuse_insecure_dir {
                return Err(Error::config(risk));
            }
            warn!(target: "bucketcache", "{risk}");
        }
        let entries = store::Entries::open(&root, self.max_entry_bytes)?;
        Ok(Bucket::from_parts(Parts {
            root,
            entries,
            backend: self.backend,
            keymaker: self.keymaker,
            lifetime,
            memory_max_bytes: self.memory_max_bytes,
            durability: self.durability,
            clock: self.clock,
            log_full_keys: self.log_full_keys,
            bound: self.bound,
            shared: self.shared.map(|t| Guarded::from_box(t, self.cool_off)),
            compression: self.compression,
        }))
    }
}
