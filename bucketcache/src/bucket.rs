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
            shared: p.shared,
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

    /// Reads, checks and decodes the entry file, and puts the value in the memory tier; an entry expired at least
    /// `grace_ms` ago is removed and missed.
    fn load<V>(&self, key: &KeyHash, grace_ms: i64) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let path = self.entry_path(key);
        // Noted before the read: if the key is written or removed meanwhile, what we read must not go to memory.
        let stamp = self.memory.stamp(key);
        let Some(file) = store::read_file(&self.entries, key)? else {
            return self.load_shared(key, stamp);
        };
        let Some((header, payload_at)) = self.check_file(&path.display(), key, &file) else {
            return Ok(None);
        };
        if header.is_expired_at(self.now_ms().saturating_sub(grace_ms)) {
            self.expire(key);
            return Ok(None);
        }
        let value: V = self.decode(&file[payload_at..], key)?;
        debug!(target: "bucketcache", hash = %key, bytes = file.len(), "loaded entry from file");
        let cost = header.cost_us.map(Duration::from_micros);
        self.memory.insert_if_unchanged(
            *key,
            stamp,
            Arc::new(MemEntry {
                file: None,
                payload_at,
                file_len: file.len() as u64,
                expires_ms: header.expires_ms,
                written: ms_to_date(header.written_ms),
                expires: header.expires_ms.map(ms_to_date),
                cost,
                typed: OnceLock::from(Arc::new(value.clone()) as AnyValue),
            }),
        );
        Ok(Some(Hit {
            value,
            written: ms_to_date(header.written_ms),
            expires: header.expires_ms.map(ms_to_date),
            source: HitSource::Disk,
            cost,
        }))
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
        let value: V = self.decode(&file[payload_at..], key)?;
        shared.count(Count::Hit);
        debug!(target: "bucketcache", hash = %key, bytes = file.len(), tier = shared.tier().name(), "loaded entry from the shared tier");
        let meta = PendingMeta {
            key: *key,
            payload_at,
            written_ms: header.written_ms,
            expires_ms: header.expires_ms,
            cost_us: header.cost_us,
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
    fn upload(&self, file: &[u8], meta: &PendingMeta) {
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
                warn!(target: "bucketcache", path = %origin, %reason, "corrupt entry read as a miss; the next write replaces it");
                None
            }
            Ok((header, _)) if header.key != *key => {
                warn!(target: "bucketcache", path = %origin, reason = %entry::Corrupt::KeyMismatch, "corrupt entry read as a miss; the next write replaces it");
                None
            }
            Ok((header, _)) if header.backend != self.backend.id() => {
                warn!(
                    target: "bucketcache",
                    path = %origin,
                    found = %header.backend,
                    expected = self.backend.id(),
                    "entry written by another backend read as a miss; the next write replaces it"
                );
                None
            }
            Ok(ok) => Some(ok),
        }
    }

    pub(crate) fn decode<V: DeserializeOwned>(&self, payload: &[u8], key: &KeyHash) -> Result<V> {
        self.backend.decode::<V>(payload).map_err(|source| Error::Decode {
            backend: self.backend.id(),
            type_name: std::any::type_name::<V>(),
            path: self.entry_path(key),
            hint: decode_hint(&self.backend, &source),
            source,
        })
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
        let (file, meta) = self.encode_entry(key, value, &opts)?;
        self.write_file(file, meta, None)
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
        let (file, meta) = self.encode_entry(key, value, opts)?;
        self.write_file(file, meta, Some(Arc::new(value.clone())))
    }

    /// Builds the entry file for a value, stamped with the current time and the options' lifetime (else the
    /// bucket's).
    pub(crate) fn encode_entry<V: Serialize + ?Sized>(
        &self,
        key: &KeyHash,
        value: &V,
        opts: &WriteOptions<'_>,
    ) -> Result<(Vec<u8>, PendingMeta)> {
        let lifetime_ms = opts
            .lifetime
            .map_or_else(|| self.lifetime_ms.load(Ordering::Relaxed), |l| lifetime_to_ms(Some(l)));
        let written_ms = self.now_ms();
        let expires_ms = match lifetime_ms {
            NO_LIFETIME => None,
            ms => Some(written_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))),
        };
        let cost_us = cost_us(opts.cost);
        let meta = NewEntry {
            key: *key,
            backend: self.backend.id(),
            function: opts.function,
            written_ms,
            expires_ms,
            cost_us,
            call: opts.call,
            code: opts.code,
        };
        let (file, payload_at) = entry::build(meta, |out| self.backend.encode(value, out)).map_err(|source| {
            let e = Error::Encode {
                backend: self.backend.id(),
                hint: encode_hint(&self.backend, &source),
                source,
            };
            warn!(target: "bucketcache", hash = %key, error = %e, "value not stored");
            e
        })?;
        Ok((
            file,
            PendingMeta {
                key: *key,
                payload_at,
                written_ms,
                expires_ms,
                cost_us,
            },
        ))
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
        after_disk(&file);
        let file_len = file.len() as u64;
        let entry = MemEntry {
            file_len,
            payload_at: meta.payload_at,
            file: if typed.is_some() { None } else { Some(file) },
            expires_ms: meta.expires_ms,
            written: ms_to_date(meta.written_ms),
            expires: meta.expires_ms.map(ms_to_date),
            cost: meta.cost_us.map(Duration::from_micros),
            typed: typed.map(OnceLock::from).unwrap_or_default(),
        };
        self.memory.insert(meta.key, Arc::new(entry));
        // Size bound (bound.rs): count the new file and evict the least recently written entries past the bound.
        self.bound
            .after_write(&self.entries, &self.memory, meta.key, meta.written_ms, file_len);
        Ok(Stored {
            key: meta.key,
            written: ms_to_date(meta.written_ms),
            expires: meta.expires_ms.map(ms_to_date),
            file_len,
        })
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
