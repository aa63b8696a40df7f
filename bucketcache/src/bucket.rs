//! The `Bucket`: a directory of entries with an in-memory tier in front.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, warn};

use crate::backend::{Backend, BincodeBackend};
use crate::bound::{Bound, BoundConfig};
use crate::builder::BucketBuilder;
use crate::clock::{ms_to_date, Clock};
use crate::entry::{self, NewEntry};
use crate::error::{BoxError, Error, Result};
use crate::key::{DefaultKeyMaker, KeyHash, KeyMaker};
use crate::memory::{AnyValue, MemEntry, MemoryTier};
use crate::store::{self, Durability};
use crate::tier::{Count, Guarded, SharedStats};

/// `lifetime_ms` value meaning "no lifetime".
const NO_LIFETIME: u64 = u64::MAX;

/// A persistent key/value store in a directory: one checksummed file per entry, an in-memory tier in front.
///
/// See the [crate docs](crate) for the on-disk layout, the expiry rules and the failure policy.
///
/// `Bucket` is `Send + Sync`; share it with `&`, an `Arc`, or a `static` `LazyLock`.
pub struct Bucket<B: Backend = BincodeBackend, K: KeyMaker = DefaultKeyMaker> {
    pub(crate) root: PathBuf,
    pub(crate) entries: store::Entries,
    pub(crate) backend: B,
    pub(crate) keymaker: K,
    lifetime_ms: AtomicU64,
    pub(crate) memory: MemoryTier,
    pub(crate) durability: Durability,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) log_full_keys: bool,
    /// The size bound and its index (bound.rs); inert when none was configured.
    pub(crate) bound: Bound,
    /// The shared tier behind the directory, with its failure policy (tier/).
    pub(crate) shared: Option<Guarded>,
    /// zstd compression of large payloads (`BucketBuilder::compression`, feature `zstd`).
    pub(crate) compression: Option<store::Compression>,
    /// The attribute's counters for calls through this bucket (stats.rs).
    pub(crate) counters: crate::stats::Counters,
}

/// Where a hit was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HitSource {
    /// The in-memory tier: no file was touched.
    Memory,
    /// The entry file.
    Disk,
    /// The shared tier (another machine computed it); the entry was copied into the local tiers.
    Shared,
}

/// A value found in a bucket, with its entry's dates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Hit<V> {
    /// The value.
    pub value: V,
    /// When the entry was written.
    pub written: DateTime<Utc>,
    /// When the entry expires; `None` for never.
    pub expires: Option<DateTime<Utc>>,
    /// Where it came from.
    pub source: HitSource,
    /// How long the value took to compute, when its writer measured it (the attribute does).
    pub cost: Option<Duration>,
}

impl<V> Hit<V> {
    /// The same hit with its value transformed (the dates and source stay).
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> Hit<W> {
        Hit {
            value: f(self.value),
            written: self.written,
            expires: self.expires,
            source: self.source,
            cost: self.cost,
        }
    }
}

/// What a write stored.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Stored {
    /// The entry's key hash.
    pub key: KeyHash,
    /// When it was written.
    pub written: DateTime<Utc>,
    /// When it expires; `None` for never.
    pub expires: Option<DateTime<Utc>>,
    /// The entry file's size in bytes.
    pub file_len: u64,
}

/// A bucket's counters: see [`Bucket::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketStats {
    /// The shared tier's counters, when one is attached.
    pub shared: Option<SharedStats>,
    /// What the `#[bucket_cache]` functions using this bucket did: hits by tier, misses by reason, stores, bytes
    /// written, time saved (direct `get`/`insert` calls are not counted).
    pub calls: crate::stats::CacheStats,
}

/// How to write one entry, beyond its key and value: see [`Bucket::insert_with`].
///
/// Every field is optional; [`WriteOptions::default()`] writes as [`Bucket::insert`] does.
///
/// ```
/// # fn main() -> bucketcache::Result<()> {
/// use std::time::Duration;
/// use bucketcache::{Bucket, WriteOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let bucket = Bucket::new(dir.path())?;
/// let key = bucket.key_hash("report")?;
/// let opts = WriteOptions::default().lifetime(Duration::from_secs(60)).cost(Duration::from_millis(1500));
/// bucket.insert_with(&key, &vec![1u32, 2], &opts)?;
/// let hit = bucket.lookup::<Vec<u32>>(&key)?.expect("stored");
/// assert_eq!(hit.cost, Some(Duration::from_millis(1500)));
/// assert!(hit.expires.is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct WriteOptions<'a> {
    /// The function path recorded in the header (the attribute records the cached function's).
    pub function: Option<&'a str>,
    /// This entry's lifetime; `None`: the bucket's.
    pub lifetime: Option<Duration>,
    /// How long the value took to compute, recorded in the header.
    pub cost: Option<Duration>,
    /// A code-independent hash of the call, recorded in the header (the attribute's: function path and arguments).
    pub call: Option<KeyHash>,
    /// The code version that computed the value (the first 16 bytes of its digest), recorded in the header.
    pub code: Option<[u8; 16]>,
}

impl<'a> WriteOptions<'a> {
    /// Records `function` as the writer's path.
    pub fn function(mut self, function: &'a str) -> Self {
        self.function = Some(function);
        self
    }

    /// Gives the entry its own lifetime instead of the bucket's.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Records how long the value took to compute.
    pub fn cost(mut self, cost: Duration) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Records a code-independent hash of the call.
    pub fn call(mut self, call: KeyHash) -> Self {
        self.call = Some(call);
        self
    }

    /// Records the code version.
    pub fn code(mut self, code: [u8; 16]) -> Self {
        self.code = Some(code);
        self
    }
}

fn cost_us(cost: Option<Duration>) -> Option<u64> {
    cost.map(|c| u64::try_from(c.as_micros()).unwrap_or(u64::MAX))
}

impl Bucket {
    /// Opens (creating it and its parents if missing) a bucket in `path` with the defaults: bincode, no lifetime,
    /// a 64 MiB memory tier, atomic writes without fsync.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created.
    pub fn new(path: impl AsRef<Path>) -> Result<Bucket> {
        Bucket::builder(path).build()
    }

    /// A builder for a bucket in `path`.
    pub fn builder(path: impl AsRef<Path>) -> BucketBuilder {
        BucketBuilder::new(path.as_ref().to_path_buf())
    }
}

impl<B: Backend, K: KeyMaker> fmt::Debug for Bucket<B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket")
            .field("path", &self.root)
            .field("backend", &self.backend.id())
            .field("lifetime", &self.lifetime())
            .field("memory_max_bytes", &self.memory.max_bytes())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Parts<B, K> {
    pub root: PathBuf,
    pub entries: store::Entries,
    pub backend: B,
    pub keymaker: K,
    pub lifetime: Option<Duration>,
    pub memory_max_bytes: u64,
    pub durability: Durability,
    pub clock: Arc<dyn Clock>,
    pub log_full_keys: bool,
    pub bound: BoundConfig,
    pub shared: Option<Guarded>,
    pub compression: Option<store::Compression>,
}

fn lifetime_to_ms(lifetime: Option<Duration>) -> u64 {
    match lifetime {
        // Saturate below the sentinel: a lifetime of centuries is still a lifetime.
        Some(d) => u64::try_from(d.as_millis())
            .unwrap_or(NO_LIFETIME - 1)
            .min(NO_LIFETIME - 1),
        None => NO_LIFETIME,
    }
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    pub(crate) fn from_parts(p: Parts<B, K>) -> Self {
        Bucket {
            root: p.root,
            entries: p.entries,
            backend: p.backend,
            keymaker: p.keymaker,
            lifetime_ms: AtomicU64::new(lifetime_to_ms(p.lifetime)),
            memory: MemoryTier::new(p.memory_max_bytes),
            durability: p.durability,
            clock: p.clock,
            log_full_keys: p.log_full_keys,
            bound: Bound::new(p.bound),
            counters: crate::stats::Counters::new(),
            shared: p.shared,
            compression: p.compression,
        }
    }

    /// The bucket's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The lifetime given to entries written from now on; `None` when they never expire.
    pub fn lifetime(&self) -> Option<Duration> {
        match self.lifetime_ms.load(Ordering::Relaxed) {
            NO_LIFETIME => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Sets the lifetime of entries written from now on (millisecond resolution).
    ///
    /// Entries already written keep the expiry stamped in them when they were written: this does not shorten or
    /// extend them. (The Python ancestor re-judged old entries by the current lifetime, so a bucket sharing a
    /// directory could expire another's entries.)
    pub fn set_lifetime(&self, lifetime: Option<Duration>) {
        self.lifetime_ms.store(lifetime_to_ms(lifetime), Ordering::Relaxed);
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The durability setting.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The memory tier's current size: entries and bytes (file sizes plus a fixed overhead each).
    pub fn memory_usage(&self) -> (usize, u64) {
        (self.memory.len(), self.memory.weight())
    }

    /// A number naming this bucket in this process, never reused by another bucket (the attribute's fast key,
    /// `call/fast.rs`, keeps key hashes per bucket: another bucket may have another key maker).
    #[inline]
    pub(crate) fn instance(&self) -> u64 {
        self.memory.id()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The path of the file that holds (or would hold) the entry for `key`.
    pub fn entry_path(&self, key: &KeyHash) -> PathBuf {
        store::entry_path(&self.entries, key)
    }

    /// Hashes a key with the bucket's key maker, logging it at `debug` (abbreviated, or in full when
    /// [`BucketBuilder::log_full_keys`] is on).
    ///
    /// # Errors
    /// [`Error::Key`] when the key's `Serialize` implementation fails.
    pub fn key_hash<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<KeyHash> {
        if !tracing::enabled!(target: "bucketcache", tracing::Level::DEBUG) {
            return self.keymaker.make_key(key);
        }
        let (hash, bytes) = self.keymaker.make_key_with_bytes(key)?;
        match bytes {
            Some(bytes) => {
                let shown = if self.log_full_keys {
                    bytes.len()
                } else {
                    bytes.len().min(48)
                };
                let more = if shown < bytes.len() { "…" } else { "" };
                debug!(
                    target: "bucketcache",
                    hash = %hash,
                    key_len = bytes.len(),
                    "hashed key b\"{}\"{more}",
                    bytes[..shown].escape_ascii()
                );
            }
            None => debug!(target: "bucketcache", hash = %hash, "hashed key"),
        }
        Ok(hash)
    }

    /// Reads the value stored under `key`: `Ok(None)` when there is none, it expired, or its file is corrupt
    /// (logged at `warn`).
    ///
    /// ```
    /// # fn main() -> bucketcache::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let bucket = bucketcache::Bucket::new(dir.path())?;
    /// bucket.insert("primes", &vec![2u32, 3, 5])?;
    /// assert_eq!(bucket.get::<Vec<u32>>("primes")?, Some(vec![2, 3, 5]));
    /// assert_eq!(bucket.get::<Vec<u32>>("evens")?, None);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Key`] for a key that cannot be serialized; [`Error::Decode`] when the stored value is not a `V`;
    /// [`Error::Io`] when the file exists but cannot be read.
    pub fn get<V>(&self, key: &(impl Serialize + ?Sized)) -> Result<Option<V>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let hash = self.key_hash(key)?;
        Ok(self.lookup::<V>(&hash)?.map(|h| h.value))
    }

    /// Reads the entry for a key hash, with its dates and where it was found.
    ///
    /// # Errors
    /// As [`Bucket::get`].
    pub fn lookup<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.lookup_within(key, 0)
    }

    /// The memory tier's typed value for `key`, when it holds one that has not expired; `None` for anything else
    /// (absent, expired, known only as bytes or as another type), which [`Bucket::lookup`] then decides. The
    /// attribute's first probe on a hit (`Call::begin`): the same check and the same value as `lookup`'s memory
    /// branch, without its error and file paths.
    #[inline]
    pub(crate) fn memory_hit<V: Clone + 'static>(&self, key: &KeyHash) -> Option<Hit<V>> {
        // Written in place (not returned through `with`'s `Option<R>`): the hit is a large value, and each
        // `Option` layer it crossed was a copy, a measurable share of a memory hit.
        let mut found = None;
        self.memory.with(key, |entry| {
            // The clock is read only for an entry that can expire (as in `lookup_within`).
            if entry.expires_ms.is_some() && entry.is_expired_at(self.now_ms()) {
                return;
            }
            if let Some(value) = entry.typed::<V>() {
                found = Some(Hit {
                    value,
                    written: entry.written,
                    expires: entry.expires,
                    source: HitSource::Memory,
                    cost: entry.cost,
                });
            }
        });
        found
    }

    /// [`Bucket::memory_hit`]'s value and recorded cost alone (a fast hit, `__private::fast_hit`, needs no dates):
    /// the same check, and a smaller result to carry back.
    #[inline]
    pub(crate) fn memory_value<V: Clone + 'static>(&self, key: &KeyHash) -> Option<(V, Option<Duration>)> {
        let mut found = None;
        self.memory.with(key, |entry| {
            if entry.expires_ms.is_some() && entry.is_expired_at(self.now_ms()) {
                return;
            }
            if let Some(value) = entry.typed::<V>() {
                found = Some((value, entry.cost));
            }
        });
        found
    }

    /// [`Bucket::lookup`] that keeps serving (and keeps the file of) an entry expired less than `grace_ms` ago:
    /// the stale window (`freshness.rs`). `grace_ms = 0` is [`Bucket::lookup`].
    #[inline]
    pub(crate) fn lookup_within<V>(&self, key: &KeyHash, grace_ms: i64) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let from_memory = self.memory.with(key, |entry| -> Result<MemoryRead<V>> {
            if entry.expires_ms.is_some() && entry.is_expired_at(self.now_ms().saturating_sub(grace_ms)) {
                return Ok(MemoryRead::Expired);
            }
            let value = match entry.typed::<V>() {
                Some(v) => v,
                None => match entry.payload() {
                    Some(payload) => {
                        let v: V = self.decode(payload, key)?;
                        let _ = entry.typed.set(Arc::new(v.clone()));
                        v
                    }
                    // Known only as another type: the file decides.
                    None => return Ok(MemoryRead::Unknown),
                },
            };
            Ok(MemoryRead::Hit(Hit {
                value,
                written: entry.written,
                expires: entry.expires,
                source: HitSource::Memory,
                cost: entry.cost,
            }))
        });
        match from_memory.transpose()? {
            Some(MemoryRead::Hit(hit)) => return Ok(Some(hit)),
            // The memory copy expired; the file may have been rewritten by another writer: it decides.
            Some(MemoryRead::Expired) => {
                self.memory.remove(key);
            }
            Some(MemoryRead::Unknown) | None => {}
        }
        self.load::<V>(key, grace_ms)
    }

    /// Reads, checks and decodes the entry file, and puts the value in the memory tier (unless it is too large for
    /// it); an entry expired at least `grace_ms` ago is removed and missed. A small file is read whole with one
    /// call; a large one is decoded as it is read and hashed (see [`Bucket::load_streamed`]), so a load holds the
    /// value and buffers of a few MiB, never the file's bytes too.
    fn load<V>(&self, key: &KeyHash, grace_ms: i64) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let path = self.entry_path(key);
        // Noted before the read: if the key is written or removed meanwhile, what we read must not go to memory.
        let stamp = self.memory.stamp(key);
        let Some((mut file, info)) = store::open_file(&self.entries, key)? else {
            return self.load_shared(key, stamp);
        };
        // What the value weighs for the memory tier: its file, or for a compressed entry the encoding's length
        // (a 64 MiB value compressed into a few KiB is not small enough to clone into memory).
        let (header, value, weigh) = if info.len <= (store::STREAM_AT + entry::MAX_HEADER_LEN) as u64 {
            let bytes = store::read_bounded(&mut file, &info).map_err(|e| Error::io("read entry", &path, e))?;
            let Some((header, payload_at)) = self.check_file(&path.display(), key, &bytes) else {
                crate::call::observe::note(key, crate::stats::MissReason::Corrupt);
                return Ok(None);
            };
            if header.is_expired_at(self.now_ms().saturating_sub(grace_ms)) {
                crate::call::observe::note(key, crate::stats::MissReason::Expired);
                self.expire(key);
                return Ok(None);
            }
            let value: V = self.decode_payload(&header, &bytes[payload_at..], key)?;
            let raw_len = (header.flags & entry::FLAG_ZSTD != 0)
                .then(|| bytes.last_chunk::<8>().map(|b| u64::from_le_bytes(*b)))
                .flatten();
            (header, value, raw_len)
        } else {
            match self.load_streamed::<V>(key, &path, &mut file, &info, grace_ms)? {
                Some(loaded) => loaded,
                None => return Ok(None),
            }
        };
        let weigh = weigh.map_or(info.len, |raw| raw.saturating_add(header.header_len()).max(info.len));
        debug!(target: "bucketcache", hash = %key, bytes = info.len, "loaded entry from file");
        let cost = header.cost_us.map(Duration::from_micros);
        if self.memory.admits(weigh) {
            self.memory.insert_if_unchanged(
                *key,
                stamp,
                Arc::new(MemEntry {
                    file: None,
                    payload_at: header.header_len() as usize,
                    file_len: weigh,
                    expires_ms: header.expires_ms,
                    written: ms_to_date(header.written_ms),
                    expires: header.expires_ms.map(ms_to_date),
                    cost,
                    typed: OnceLock::from(Arc::new(value.clone()) as AnyValue),
                }),
            );
        }
        Ok(Some(Hit {
            value,
            written: ms_to_date(header.written_ms),
            expires: header.expires_ms.map(ms_to_date),
            source: HitSource::Disk,
            cost,
        }))
    }

    /// Reads a large entry file: its header is checked first (key, backend, length, expiry), then the payload is
    /// decoded while it is read through a buffer and hashed. The value is dropped, and the entry read as a miss,
    /// when the payload checksum or the length fails at the end: a corrupt entry never yields a value. `None` for a
    /// miss (corrupt or expired).
    fn load_streamed<V: DeserializeOwned + 'static>(
        &self,
        key: &KeyHash,
        path: &Path,
        file: &mut std::fs::File,
        info: &crate::dirfd::FileInfo,
        grace_ms: i64,
    ) -> Result<Option<(entry::EntryHeader, V, Option<u64>)>> {
        use std::io::Read;
        let origin = path.display();
        let io_err = |e| Error::io("read entry", path, e);
        let head = crate::scan::read_header_from(file, info.len).map_err(io_err)?;
        let header = match entry::parse_header(&head) {
            Ok(h) if h.file_len() != info.len => Err(entry::Corrupt::LengthMismatch {
                expected: h.file_len(),
                actual: info.len,
            }),
            other => other,
        };
        let header = match header {
            Ok(h) => h,
            Err(reason) => {
                warn_corrupt(&origin, &reason);
                return Ok(None);
            }
        };
        if !self.check_header(&origin, key, &header) {
            return Ok(None);
        }
        if header.is_expired_at(self.now_ms().saturating_sub(grace_ms)) {
            self.expire(key);
            return Ok(None);
        }
        let head_payload = head.get(header.header_len() as usize..).unwrap_or(&[]);
        let rest = header.payload_len.saturating_sub(head_payload.len() as u64);
        let raw_len = if header.flags & entry::FLAG_ZSTD != 0 {
            match read_trailer(file, info.len, header.payload_len).map_err(io_err)? {
                Some(raw) => Some(raw),
                None => {
                    warn_corrupt(&origin, &entry::Corrupt::BadHeader { field: "payload len" });
                    return Ok(None);
                }
            }
        } else {
            None
        };
        // A flat vector of numbers stored by bincode is read in blocks straight into the value (`backend/flat.rs`),
        // a big one by every core at once (`backend/flat_parallel.rs`).
        let flat = raw_len
            .is_none()
            .then(|| crate::backend::flat::bincode_for::<V, B>(&self.backend))
            .flatten();
        let parallel = match flat {
            Some(bincode) => crate::backend::flat_parallel::load::<V>(
                bincode,
                file,
                header.header_len(),
                header.payload_len,
                header.flags,
            )
            .map_err(io_err)?,
            None => None,
        };
        let (decoded, unread, drained, count, sum, grew) = match parallel {
            Some(l) => (l.decoded, 0, 0, l.read, l.sum, l.grew),
            None => {
                let mut hashing = store::HashingReader::new(head_payload.chain((&mut *file).take(rest)), header.flags);
                let decoded = match flat {
                    Some(bincode) => {
                        crate::backend::flat::decode::<V, _>(bincode, &mut hashing, header.payload_len).map(|d| (d, 0))
                    }
                    None => self.decode_reader::<V, _>(&mut hashing, raw_len, header.payload_len),
                };
                let (decoded, unread) = match decoded {
                    Ok(d) => d,
                    Err(e) => (Err(e.into()), 0),
                };
                let drained = hashing.drain();
                let (count, sum, io_error) = hashing.finish();
                if let Some(kind) = io_error {
                    return Err(io_err(std::io::Error::from(kind)));
                }
                let drained = drained.map_err(io_err)?;
                // A byte past the declared end: the file grew while it was read.
                let grew = file.read(&mut [0u8; 1]).map_err(io_err)? > 0;
                (decoded, unread, drained, count, sum, grew)
            }
        };
        if count != header.payload_len || grew {
            let actual = header.header_len() + count + u64::from(grew);
            warn_corrupt(
                &origin,
                &entry::Corrupt::LengthMismatch {
                    expected: header.file_len(),
                    actual,
                },
            );
            return Ok(None);
        }
        if sum != Some(header.payload_checksum) {
            drop(decoded);
            warn_corrupt(&origin, &entry::Corrupt::ChecksumMismatch);
            return Ok(None);
        }
        let value = decoded.map_err(|source| self.decode_error::<V>(key, source))?;
        // A plain payload must end with the value (a compressed one ends with its frame and the length, which
        // the checksum covered).
        let left = if raw_len.is_some() { unread } else { unread + drained };
        if left > 0 {
            let source = format!("{left} trailing bytes after the value").into();
            return Err(self.decode_error::<V>(key, source));
        }
        Ok(Some((header, value, raw_len)))
    }

    /// Reads `key` from the shared tier after a local miss: a verified, unexpired entry is copied into the
    /// directory (its original stamps kept: the bytes are the same) and memory. Every shared failure is a miss.
    fn load_shared<V>(&self, key: &KeyHash, stamp: u64) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let Some(shared) = self.shared.as_ref() else {
            return Ok(None);
        };
        let Some(Some(file)) = shared.call("get", |t| t.get(key)) else {
            if shared.available() {
                shared.count(Count::Miss);
            }
            return Ok(None);
        };
        let origin = format_args!("{} tier, key {key}", shared.tier().name());
        let Some((header, payload_at)) = self.check_file(&origin, key, &file) else {
            shared.count(Count::Rejected);
            shared.count(Count::Miss);
            return Ok(None);
        };
        if header.is_expired_at(self.now_ms()) {
            shared.count(Count::Miss);
            return Ok(None);
        }
        let value: V = self.decode_payload(&header, &file[payload_at..], key)?;
        shared.count(Count::Hit);
        debug!(target: "bucketcache", hash = %key, bytes = file.len(), tier = shared.tier().name(), "loaded entry from the shared tier");
        let meta = PendingMeta {
            key: *key,
            payload_at,
            written_ms: header.written_ms,
            expires_ms: header.expires_ms,
            cost_us: header.cost_us,
            flags: header.flags,
        };
        // Into the local tiers, unless the key was written or removed meanwhile (then that write wins).
        if self.memory.stamp(key) == stamp {
            if let Err(e) = self.write_local(file, meta, Some(Arc::new(value.clone())), |_| {}) {
                debug!(target: "bucketcache", hash = %key, error = %e, "could not copy the shared entry locally");
            }
        }
        Ok(Some(Hit {
            value,
            written: ms_to_date(header.written_ms),
            expires: header.expires_ms.map(ms_to_date),
            source: HitSource::Shared,
            cost: header.cost_us.map(Duration::from_micros),
        }))
    }

    /// The entry for `key` from the shared tier only (the local tiers are filled on a hit): for waiters on another
    /// machine's lease.
    pub(crate) fn lookup_shared_only<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let stamp = self.memory.stamp(key);
        self.load_shared(key, stamp)
    }

    /// Writes a built entry to the shared tier, unless it is read-only, the entry is over its size limit, or the
    /// entry has already expired. The time-to-live is the entry's remaining lifetime.
    pub(crate) fn upload(&self, file: &[u8], meta: &PendingMeta) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let tier = shared.tier();
        if tier.read_only() || file.len() as u64 > tier.max_value_bytes() {
            shared.count(Count::WriteSkipped);
            return;
        }
        let ttl = match meta.expires_ms {
            None => None,
            Some(expires) => match u64::try_from(expires.saturating_sub(self.now_ms())) {
                Ok(left) if left > 0 => Some(Duration::from_millis(left)),
                _ => {
                    shared.count(Count::WriteSkipped);
                    return;
                }
            },
        };
        if shared.call("put", |t| t.put(&meta.key, file, ttl)).is_some() {
            shared.count(Count::Write);
        }
    }

    /// Removes `key`'s entry from the shared tier (local tiers untouched): `Ok(true)` when there was one, `Ok(false)`
    /// when there was none, no shared tier is attached, or the tier is unavailable (see [`Bucket::stats`]).
    ///
    /// # Errors
    /// [`Error::Key`] for a key that cannot be serialized.
    pub fn remove_shared<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool> {
        let hash = self.key_hash(key)?;
        Ok(self
            .shared
            .as_ref()
            .and_then(|s| s.call("remove", |t| t.remove(&hash)))
            .unwrap_or(false))
    }

    /// The bucket's counters.
    pub fn stats(&self) -> BucketStats {
        BucketStats {
            shared: self.shared.as_ref().map(Guarded::stats),
            calls: self.counters.snapshot(),
        }
    }

    /// Verifies a file read for `key`; `None` (and a `warn`) when it cannot be used.
    fn check_file(
        &self,
        origin: &dyn std::fmt::Display,
        key: &KeyHash,
        file: &[u8],
    ) -> Option<(entry::EntryHeader, usize)> {
        match entry::verify(file) {
            Err(reason) => {
                warn_corrupt(origin, &reason);
                None
            }
            Ok((header, at)) => self.check_header(origin, key, &header).then_some((header, at)),
        }
    }

    /// Whether a valid header is `key`'s and this backend's (a `warn` when not).
    fn check_header(&self, origin: &dyn std::fmt::Display, key: &KeyHash, header: &entry::EntryHeader) -> bool {
        if header.key != *key {
            warn_corrupt(origin, &entry::Corrupt::KeyMismatch);
            false
        } else if header.flags & entry::FLAG_ZSTD != 0 && !cfg!(feature = "zstd") {
            warn!(
                target: "bucketcache",
                path = %origin,
                "zstd-compressed entry read as a miss: this build lacks the feature `zstd`; the next write replaces it"
            );
            false
        } else if header.backend != self.backend.id() {
            warn!(
                target: "bucketcache",
                path = %origin,
                found = %header.backend,
                expected = self.backend.id(),
                "entry written by another backend read as a miss; the next write replaces it"
            );
            false
        } else {
            true
        }
    }

    pub(crate) fn decode<V: DeserializeOwned>(&self, payload: &[u8], key: &KeyHash) -> Result<V> {
        self.backend
            .decode::<V>(payload)
            .map_err(|source| self.decode_error::<V>(key, source))
    }

    /// Decodes a verified payload held in memory, decompressing it when its header says so.
    fn decode_payload<V: DeserializeOwned>(
        &self,
        header: &entry::EntryHeader,
        payload: &[u8],
        key: &KeyHash,
    ) -> Result<V> {
        if header.flags & entry::FLAG_ZSTD == 0 {
            return self.decode(payload, key);
        }
        let Some((frame, raw_len)) = split_zstd(payload) else {
            return Err(self.decode_error::<V>(key, "a compressed payload without its length".into()));
        };
        let (decoded, unread) = self
            .decode_reader::<V, _>(frame, Some(raw_len), payload.len() as u64)
            .map_err(|e| self.decode_error::<V>(key, e.into()))?;
        let value = decoded.map_err(|source| self.decode_error::<V>(key, source))?;
        if unread > 0 {
            let source = format!("{unread} trailing bytes after the value").into();
            return Err(self.decode_error::<V>(key, source));
        }
        Ok(value)
    }

    /// Decodes a payload of `len` stored bytes from `src`: plain, or (with `raw_len`, the encoding's length) a zstd
    /// frame. Returns the value or the decoder's error, and how many bytes of the encoding the decoder left (read
    /// from `src` and counted). For a compressed payload, bytes after the frame are left in `src`.
    fn decode_reader<V: DeserializeOwned, R: std::io::Read>(
        &self,
        src: R,
        raw_len: Option<u64>,
        len: u64,
    ) -> std::io::Result<(std::result::Result<V, BoxError>, u64)> {
        let Some(raw_len) = raw_len else {
            let mut reader = store::stream_reader(src);
            let decoded = self.backend.decode_from::<V, _>(&mut reader, len);
            let unread = std::io::copy(&mut reader, &mut std::io::sink())?;
            return Ok((decoded, unread));
        };
        #[cfg(feature = "zstd")]
        {
            use std::io::Read;
            let mut decoder = zstd::stream::read::Decoder::new(src)?.single_frame();
            let mut reader = store::stream_reader((&mut decoder).take(raw_len));
            let decoded = self.backend.decode_from::<V, _>(&mut reader, raw_len);
            let mut unread = std::io::copy(&mut reader, &mut std::io::sink())?;
            drop(reader);
            // More than the recorded length: trailing bytes too.
            unread += std::io::copy(&mut decoder.take(1), &mut std::io::sink())?;
            Ok((decoded, unread))
        }
        #[cfg(not(feature = "zstd"))]
        {
            let _ = (src, raw_len);
            Ok((
                Err("a zstd-compressed payload: this build lacks the feature `zstd`".into()),
                0,
            ))
        }
    }

    fn decode_error<V>(&self, key: &KeyHash, source: BoxError) -> Error {
        Error::Decode {
            backend: self.backend.id(),
            type_name: std::any::type_name::<V>(),
            path: self.entry_path(key),
            hint: decode_hint(&self.backend, &source),
            source,
        }
    }

    /// Removes the file of an entry found expired, unless it was rewritten since (by another process or another
    /// `Bucket` on this directory): the header is read again just before the removal, so only a file that is
    /// itself expired goes. The file goes before the memory entry, so no concurrent read can put it back.
    fn expire(&self, key: &KeyHash) {
        let now = self.now_ms();
        let still_expired = match store::read_header_bytes(&self.entries, key) {
            Ok((prefix, _)) => entry::parse_header(&prefix).is_ok_and(|h| h.is_expired_at(now)),
            Err(_) => false,
        };
        if still_expired {
            match store::remove_file(&self.entries, key) {
                Ok(_) => {
                    self.bound.forget(key); // size bound: no longer counted
                    debug!(target: "bucketcache", hash = %key, "entry expired; removed")
                }
                Err(e) => warn!(target: "bucketcache", error = %e, "could not remove expired entry"),
            }
        }
        self.memory.remove(key);
    }

    /// Whether a live (unexpired, intact) entry exists for `key`.
    ///
    /// # Errors
    /// [`Error::Key`] for a key that cannot be serialized; [`Error::Io`] when the file exists but cannot be read.
    pub fn contains_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool> {
        let hash = self.key_hash(key)?;
        self.contains_hash(&hash)
    }

    /// Whether a live entry exists for a key hash.
    ///
    /// # Errors
    /// As [`Bucket::contains_key`].
    pub fn contains_hash(&self, key: &KeyHash) -> Result<bool> {
        let now = self.now_ms();
        if let Some(entry) = self.memory.get(key) {
            if !entry.is_expired_at(now) {
                return Ok(true);
            }
            // Expired in memory: the file decides (another writer may have refreshed it).
            self.memory.remove(key);
        }
        let path = self.entry_path(key);
        let Some(file) = store::read_file(&self.entries, key)? else {
            return Ok(false);
        };
        match self.check_file(&path.display(), key, &file) {
            Some((header, _)) if header.is_expired_at(now) => {
                self.expire(key);
                Ok(false)
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// Stores `value` under `key`, replacing any entry, with the bucket's current lifetime counted from now.
    ///
    /// # Errors
    /// [`Error::Key`] for a key that cannot be serialized, [`Error::Encode`] for a value the backend cannot
    /// represent, [`Error::Io`] when the file cannot be written (the previous entry, if any, is then unchanged).
    pub fn insert<Q, V>(&self, key: &Q, value: &V) -> Result<()>
    where
        Q: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let hash = self.key_hash(key)?;
        self.insert_hashed(&hash, value, None).map(drop)
    }

    /// Stores `value` under a key hash, recording `function` (the caller's path) in the header.
    ///
    /// # Errors
    /// As [`Bucket::insert`].
    pub fn insert_hashed<V: Serialize + ?Sized>(
        &self,
        key: &KeyHash,
        value: &V,
        function: Option<&str>,
    ) -> Result<Stored> {
        let opts = WriteOptions {
            function,
            ..WriteOptions::default()
        };
        self.store_entry(key, value, &opts, || None)
    }

    /// Stores a value under a key hash and keeps a clone of it in the memory tier, so the next hit needs no decode.
    ///
    /// `lifetime` overrides the bucket's lifetime for this entry (`None`: the bucket's), so functions with different
    /// lifetimes can share one bucket.
    ///
    /// # Errors
    /// As [`Bucket::insert`].
    pub fn insert_typed<V>(
        &self,
        key: &KeyHash,
        value: &V,
        function: Option<&str>,
        lifetime: Option<Duration>,
    ) -> Result<Stored>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        let opts = WriteOptions {
            function,
            lifetime,
            ..WriteOptions::default()
        };
        self.insert_with(key, value, &opts)
    }

    /// Stores a value under a key hash with [`WriteOptions`] (its own lifetime, the function path, cost, call hash
    /// and code version recorded in the header), and keeps a clone of it in the memory tier.
    ///
    /// # Errors
    /// As [`Bucket::insert`].
    pub fn insert_with<V>(&self, key: &KeyHash, value: &V, opts: &WriteOptions<'_>) -> Result<Stored>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        self.store_entry(key, value, opts, || Some(Arc::new(value.clone()) as AnyValue))
    }

    /// The header fields of a new entry, stamped with the current time and the options' lifetime (else the
    /// bucket's).
    fn new_entry<'o>(&self, key: &KeyHash, opts: &WriteOptions<'o>) -> (NewEntry<'o>, PendingMeta) {
        let lifetime_ms = opts
            .lifetime
            .map_or_else(|| self.lifetime_ms.load(Ordering::Relaxed), |l| lifetime_to_ms(Some(l)));
        let written_ms = self.now_ms();
        let expires_ms = match lifetime_ms {
            NO_LIFETIME => None,
            ms => Some(written_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))),
        };
        let cost_us = cost_us(opts.cost);
        let new = NewEntry {
            key: *key,
            backend: self.backend.id(),
            function: opts.function,
            written_ms,
            expires_ms,
            cost_us,
            call: opts.call,
            code: opts.code,
        };
        let pending = PendingMeta {
            key: *key,
            payload_at: 0,
            written_ms,
            expires_ms,
            cost_us,
            flags: 0,
        };
        (new, pending)
    }

    fn encode_error(&self, key: &KeyHash, source: BoxError) -> Error {
        let e = Error::Encode {
            backend: self.backend.id(),
            hint: encode_hint(&self.backend, &source),
            source,
        };
        warn!(target: "bucketcache", hash = %key, error = %e, "value not stored");
        e
    }

    /// Encodes and writes an entry: a small one is built in memory and written with one call, a large one is
    /// streamed into its file as it is encoded (`store::EntryWriter`), so a write holds buffers of a few MiB beside
    /// the value, never a copy of it. `typed` gives the value to keep in the memory tier when the entry is small
    /// enough for it ([`MemoryTier::admits`]); otherwise no clone is made.
    fn store_entry<V: Serialize + ?Sized>(
        &self,
        key: &KeyHash,
        value: &V,
        opts: &WriteOptions<'_>,
        typed: impl FnOnce() -> Option<AnyValue>,
    ) -> Result<Stored> {
        let (new, mut meta) = self.new_entry(key, opts);
        let prefix = entry::prefix(new, 64);
        meta.payload_at = prefix.len();
        let out = store::PayloadWriter::new(store::EntryWriter::new(&self.entries, key, prefix), self.compression);
        // A small buffer in front: encoders write a few bytes at a time (bincode, eight per `f64`), and a buffered
        // writer's inlined copy is much cheaper than a call through the payload and entry writers per write.
        let mut buffered = std::io::BufWriter::with_capacity(store::ENCODE_BUF, out);
        let encoded = self.backend.encode_to(value, &mut buffered);
        let (mut out, flushed) = match buffered.into_inner() {
            Ok(out) => (out, Ok(())),
            Err(e) => {
                let (e, w) = e.into_parts();
                (w.into_parts().0, Err(e))
            }
        };
        if let Err(source) = encoded.and(flushed.map_err(Into::into)) {
            return Err(match out.take_error() {
                Some(e) => {
                    warn!(target: "bucketcache", hash = %key, error = %e, "write failed");
                    e
                }
                None => self.encode_error(key, source),
            });
        }
        match out.finish(self.durability) {
            Err(e) => {
                warn!(target: "bucketcache", hash = %key, error = %e, "write failed");
                Err(e)
            }
            Ok(store::Written::Bytes(file)) => {
                meta.flags = file.get(10).copied().unwrap_or(0);
                let typed = if self.memory.admits(file.len() as u64) {
                    typed()
                } else {
                    None
                };
                self.write_file(file, meta, typed)
            }
            Ok(store::Written::InPlace(file_len)) => {
                debug!(target: "bucketcache", hash = %key, bytes = file_len, "wrote entry (streamed)");
                if file_len > self.entries.max_entry_bytes() {
                    warn!(
                        target: "bucketcache",
                        hash = %key,
                        bytes = file_len,
                        max_entry_bytes = self.entries.max_entry_bytes(),
                        "wrote an entry larger than the largest entry this bucket reads: it will read as a miss; \
                         raise BucketBuilder::max_entry_bytes"
                    );
                }
                self.upload_streamed(&meta, file_len);
                let typed = if self.memory.admits(file_len) { typed() } else { None };
                Ok(self.settle(meta, file_len, None, typed))
            }
        }
    }

    /// Writes a streamed entry to the shared tier: its bytes are read back from its file (they were never held),
    /// when the tier takes an entry of its size.
    fn upload_streamed(&self, meta: &PendingMeta, file_len: u64) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let tier = shared.tier();
        if tier.read_only() || file_len > tier.max_value_bytes() {
            shared.count(Count::WriteSkipped);
            return;
        }
        match store::read_file(&self.entries, &meta.key) {
            // Still the file this write put there (not one another writer replaced it with meanwhile).
            Ok(Some(file))
                if entry::parse_header(&file)
                    .is_ok_and(|h| h.written_ms == meta.written_ms && h.file_len() == file.len() as u64) =>
            {
                self.upload(&file, meta)
            }
            _ => shared.count(Count::WriteSkipped),
        }
    }

    /// Builds the entry file for a value in memory (for writes that keep the bytes, as deferred buckets do), stamped
    /// with the current time and the options' lifetime (else the bucket's).
    pub(crate) fn encode_entry<V: Serialize + ?Sized>(
        &self,
        key: &KeyHash,
        value: &V,
        opts: &WriteOptions<'_>,
    ) -> Result<(Vec<u8>, PendingMeta)> {
        let (meta, pending) = self.new_entry(key, opts);
        let (file, payload_at) = entry::build(meta, |out| self.backend.encode(value, out))
            .map_err(|source| self.encode_error(key, source))?;
        Ok((file, PendingMeta { payload_at, ..pending }))
    }

    /// Writes a built entry file into place, updates the memory tier, and writes it through to the shared tier.
    pub(crate) fn write_file(&self, file: Vec<u8>, meta: PendingMeta, typed: Option<AnyValue>) -> Result<Stored> {
        self.write_local(file, meta, typed, |file| self.upload(file, &meta))
    }

    /// Writes a built entry file into place, runs `after_disk` on its bytes (the write-through), and updates the
    /// memory tier.
    fn write_local(
        &self,
        file: Vec<u8>,
        meta: PendingMeta,
        typed: Option<AnyValue>,
        after_disk: impl FnOnce(&[u8]),
    ) -> Result<Stored> {
        if let Err(e) = store::write_atomic(&self.entries, &meta.key, &file, self.durability) {
            warn!(target: "bucketcache", hash = %meta.key, error = %e, "write failed");
            return Err(e);
        }
        debug!(target: "bucketcache", hash = %meta.key, bytes = file.len(), "wrote entry");
        Ok(self.after_write(file, meta, typed, after_disk))
    }

    /// What follows an entry file's write into place: `after_disk` on its bytes (the write-through), the memory
    /// tier, the size bound. Shared by [`write_local`](Self::write_local) and the batch write (`deferred.rs`).
    pub(crate) fn after_write(
        &self,
        file: Vec<u8>,
        meta: PendingMeta,
        typed: Option<AnyValue>,
        after_disk: impl FnOnce(&[u8]),
    ) -> Stored {
        after_disk(&file);
        let file_len = file.len() as u64;
        self.settle(meta, file_len, Some(file), typed)
    }

    /// After an entry reached its file: the memory tier keeps the typed value (else the file's bytes, when given),
    /// unless the entry is too large for it (then an older value there is dropped), and the size bound counts it.
    fn settle(&self, meta: PendingMeta, file_len: u64, file: Option<Vec<u8>>, typed: Option<AnyValue>) -> Stored {
        let file = if typed.is_some() || meta.flags & entry::FLAG_ZSTD != 0 {
            None
        } else {
            file
        };
        if self.memory.admits(file_len) && (typed.is_some() || file.is_some()) {
            let entry = MemEntry {
                file_len,
                payload_at: meta.payload_at,
                file,
                expires_ms: meta.expires_ms,
                written: ms_to_date(meta.written_ms),
                expires: meta.expires_ms.map(ms_to_date),
                cost: meta.cost_us.map(Duration::from_micros),
                typed: typed.map(OnceLock::from).unwrap_or_default(),
            };
            self.memory.insert(meta.key, Arc::new(entry));
        } else {
            self.memory.remove(&meta.key);
        }
        // Size bound (bound.rs): count the new file and evict the least recently written entries past the bound.
        self.bound
            .after_write(&self.entries, &self.memory, meta.key, meta.written_ms, file_len);
        Stored {
            key: meta.key,
            written: ms_to_date(meta.written_ms),
            expires: meta.expires_ms.map(ms_to_date),
            file_len,
        }
    }

    /// Removes the entry for `key` from memory and disk; `true` when there was one.
    ///
    /// # Errors
    /// [`Error::Key`] for a key that cannot be serialized; [`Error::Io`] when the file cannot be removed.
    pub fn remove<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool> {
        let hash = self.key_hash(key)?;
        self.remove_hash(&hash)
    }

    /// Removes the entry for a key hash from memory and disk; `true` when there was one.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be removed.
    pub fn remove_hash(&self, key: &KeyHash) -> Result<bool> {
        // The file goes first: a read that began before it cannot then put the value back into memory.
        let on_disk = store::remove_file(&self.entries, key)?;
        let in_memory = self.memory.remove(key);
        self.bound.forget(key); // size bound: no longer counted
        Ok(in_memory || on_disk)
    }

    /// Drops `key` from the memory tier only; its file stays, and the next read loads it again.
    pub fn unload_key<Q: Serialize + ?Sized>(&self, key: &Q) {
        match self.key_hash(key) {
            Ok(hash) => {
                self.memory.remove(&hash);
            }
            Err(e) => warn!(target: "bucketcache", error = %e, "unload_key: key cannot be hashed"),
        }
    }

    /// Drops a key hash from the memory tier only.
    pub fn unload_hash(&self, key: &KeyHash) {
        self.memory.remove(key);
    }

    /// Empties the memory tier (files stay).
    pub fn unload_all(&self) {
        self.memory.clear();
    }
}

/// What the memory tier says about a key.
enum MemoryRead<V> {
    Hit(Hit<V>),
    Expired,
    /// Held, but only as another type and without its bytes.
    Unknown,
}

/// What [`Bucket::write_file`] needs besides the file bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingMeta {
    pub key: KeyHash,
    pub payload_at: usize,
    pub written_ms: i64,
    pub expires_ms: Option<i64>,
    pub cost_us: Option<u64>,
    /// The header's flags: a compressed payload is not kept as bytes in the memory tier.
    pub flags: u8,
}

/// A compressed payload's zstd frame and the encoding's length after it.
fn split_zstd(payload: &[u8]) -> Option<(&[u8], u64)> {
    let (frame, len) = payload.split_last_chunk::<8>()?;
    Some((frame, u64::from_le_bytes(*len)))
}

/// The encoding's length recorded at the end of a compressed payload of `payload_len` bytes ending the file (of
/// `file_len` bytes); the file's position is kept. `None` when the payload is too short to hold it.
fn read_trailer(file: &mut std::fs::File, file_len: u64, payload_len: u64) -> std::io::Result<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    if payload_len < 8 {
        return Ok(None);
    }
    let pos = file.stream_position()?;
    file.seek(SeekFrom::Start(file_len - 8))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    file.seek(SeekFrom::Start(pos))?;
    Ok(Some(u64::from_le_bytes(len)))
}

fn warn_corrupt(origin: &dyn std::fmt::Display, reason: &entry::Corrupt) {
    warn!(target: "bucketcache", path = %origin, %reason, "corrupt entry read as a miss; the next write replaces it");
}

fn encode_hint<B: Backend>(backend: &B, e: &BoxError) -> &'static str {
    backend.hint(e)
}

fn decode_hint<B: Backend>(backend: &B, e: &BoxError) -> &'static str {
    match backend.hint(e) {
        "" => "; if the function or type changed, the entry is stale: it is replaced by the next write",
        h => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Bucket>();
    }
}
