//! Deferred writes: changes held in memory until `sync()`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, warn};

use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, BincodeBackend};
use crate::bucket::{Bucket, Hit, HitSource, PendingMeta};
use crate::clock::ms_to_date;
use crate::error::Result;
use crate::key::{DefaultKeyMaker, KeyHash, KeyMaker};
use crate::memory::AnyValue;

enum Pending {
    /// An encoded entry file waiting to be written, with the typed value when it was inserted as one.
    Write {
        file: Vec<u8>,
        meta: PendingMeta,
        typed: Option<AnyValue>,
    },
    Remove,
}

/// A view of a [`Bucket`] whose writes and removals stay in memory until [`sync`](Self::sync).
///
/// Reads see the pending changes first, then the bucket. Only keys changed through this view are written by
/// `sync` (one file each, atomically, in one batch grouped by fan-out directory). Each entry's write time and
/// expiry are those of its `insert` call.
///
/// **Dropped with pending changes**: a view dropped normally writes them (as `sync` would) and logs failures at
/// `warn`; a view dropped while its thread panics discards them, logged at `warn`. Use
/// [`discard`](Self::discard) to drop them yourself, or [`deferred_write`] for all-or-nothing use.
///
/// **With the attribute**: `#[bucket_cache(bucket = D)]` accepts a deferred bucket (or anything that derefs to
/// one, e.g. `static D: LazyLock<DeferredWriteBucket<'static>> = LazyLock::new(|| B.deferred())`). A call reads the
/// pending values first, then the bucket's memory tier and files; a miss runs the function and keeps its value
/// pending until `sync`. `on_cached`, `nocache`, `lifetime` (stamped when the value is computed) and single
/// flight among this process's threads work as on a plain bucket; a pending hit reports
/// [`HitSource::Memory`]. Other processes cannot see pending values: the cross-process lock is held while the
/// function runs, then released when its value is pending, so another process that waited for it finds no entry
/// and computes the key itself.
pub struct DeferredWriteBucket<'a, B: Backend = BincodeBackend, K: KeyMaker = DefaultKeyMaker> {
    bucket: &'a Bucket<B, K>,
    pending: Mutex<HashMap<KeyHash, Pending>>,
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    /// A deferred-write view of this bucket.
    ///
    /// ```
    /// # fn main() -> bucketcache::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let bucket = bucketcache::Bucket::new(dir.path())?;
    /// let deferred = bucket.deferred();
    /// deferred.insert("a", &1u32)?;
    /// assert_eq!(deferred.get::<u32>("a")?, Some(1));
    /// assert_eq!(bucket.get::<u32>("a")?, None); // not written yet
    /// deferred.sync()?;
    /// assert_eq!(bucket.get::<u32>("a")?, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn deferred(&self) -> DeferredWriteBucket<'_, B, K> {
        DeferredWriteBucket {
            bucket: self,
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<'a, B: Backend, K: KeyMaker> DeferredWriteBucket<'a, B, K> {
    /// Whether a pending write's own expiry (stamped at its `insert`) has passed.
    fn expired(&self, meta: &PendingMeta) -> bool {
        meta.expires_ms.is_some_and(|e| e <= self.bucket.now_ms())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<KeyHash, Pending>> {
        // A panic while holding the lock leaves the map consistent (each operation is one insert/remove).
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bucket this view writes to.
    pub fn bucket(&self) -> &'a Bucket<B, K> {
        self.bucket
    }

    /// Number of keys with unsynced changes.
    pub fn pending_len(&self) -> usize {
        self.pending().len()
    }

    /// Holds `value` for `key` until `sync`. The value is encoded now, so encoding errors surface here.
    ///
    /// # Errors
    /// [`Error::Key`](crate::Error::Key) or [`Error::Encode`](crate::Error::Encode).
    pub fn insert<Q, V>(&self, key: &Q, value: &V) -> Result<()>
    where
        Q: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let hash = self.bucket.key_hash(key)?;
        let (file, meta) = self
            .bucket
            .encode_entry(&hash, value, &crate::bucket::WriteOptions::default())?;
        self.pending().insert(
            hash,
            Pending::Write {
                file,
                meta,
                typed: None,
            },
        );
        Ok(())
    }

    /// Holds a value computed for a key hash until `sync`, with a clone kept so a pending hit needs no decode;
    /// `lifetime` overrides the bucket's for this entry (as [`Bucket::insert_typed`]).
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode).
    pub fn insert_typed<V>(
        &self,
        key: &KeyHash,
        value: &V,
        function: Option<&str>,
        lifetime: Option<Duration>,
    ) -> Result<()>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        let opts = crate::bucket::WriteOptions {
            function,
            lifetime,
            ..crate::bucket::WriteOptions::default()
        };
        self.insert_with(key, value, &opts)
    }

    /// Stores a value under a key hash with [`WriteOptions`](crate::WriteOptions) (pending until
    /// [`sync`](Self::sync)), keeping a clone of it for reads.
    ///
    /// # Errors
    /// As [`Bucket::insert_with`].
    pub fn insert_with<V>(&self, key: &KeyHash, value: &V, opts: &crate::bucket::WriteOptions<'_>) -> Result<()>
    where
        V: Serialize + Clone + Send + Sync + 'static,
    {
        let (file, meta) = self.bucket.encode_entry(key, value, opts)?;
        let typed: AnyValue = Arc::new(value.clone());
        self.pending().insert(
            *key,
            Pending::Write {
                file,
                meta,
                typed: Some(typed),
            },
        );
        Ok(())
    }

    /// Reads the entry for a key hash, with its dates: a pending change if there is one (a pending value reports
    /// [`HitSource::Memory`]), else the bucket ([`Bucket::lookup`]).
    ///
    /// # Errors
    /// As [`Bucket::lookup`].
    pub fn lookup<V>(&self, key: &KeyHash) -> Result<Option<Hit<V>>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let found = match self.pending().get(key) {
            None => None,
            Some(Pending::Remove) => return Ok(None),
            Some(Pending::Write { meta, .. }) if self.expired(meta) => return Ok(None),
            Some(Pending::Write { file, meta, typed }) => {
                let hit = Hit {
                    value: (),
                    written: ms_to_date(meta.written_ms),
                    expires: meta.expires_ms.map(ms_to_date),
                    source: HitSource::Memory,
                    cost: meta.cost_us.map(Duration::from_micros),
                };
                if let Some(v) = typed.as_ref().and_then(|t| t.downcast_ref::<V>()) {
                    return Ok(Some(hit.map(|()| v.clone())));
                }
                Some((file[meta.payload_at..].to_vec(), hit))
            }
        };
        match found {
            Some((payload, hit)) => {
                let value = self.bucket.decode::<V>(&payload, key)?;
                Ok(Some(hit.map(|()| value)))
            }
            None => self.bucket.lookup::<V>(key),
        }
    }

    /// Reads `key`: a pending change if there is one, else the bucket.
    ///
    /// # Errors
    /// As [`Bucket::get`].
    pub fn get<V>(&self, key: &(impl Serialize + ?Sized)) -> Result<Option<V>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let hash = self.bucket.key_hash(key)?;
        let payload = match self.pending().get(&hash) {
            Some(Pending::Remove) => return Ok(None),
            Some(Pending::Write { meta, .. }) if self.expired(meta) => return Ok(None),
            Some(Pending::Write { typed, file, meta }) => {
                if let Some(v) = typed.as_ref().and_then(|t| t.downcast_ref::<V>()) {
                    return Ok(Some(v.clone()));
                }
                Some(file[meta.payload_at..].to_vec())
            }
            None => None,
        };
        match payload {
            Some(payload) => self.bucket.decode::<V>(&payload, &hash).map(Some),
            None => Ok(self.bucket.lookup::<V>(&hash)?.map(|h| h.value)),
        }
    }

    /// Whether `key` has a live value, pending or stored.
    ///
    /// # Errors
    /// As [`Bucket::contains_key`].
    pub fn contains_key<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool> {
        let hash = self.bucket.key_hash(key)?;
        match self.pending().get(&hash) {
            Some(Pending::Remove) => return Ok(false),
            Some(Pending::Write { meta, .. }) => return Ok(!self.expired(meta)),
            None => {}
        }
        self.bucket.contains_hash(&hash)
    }

    /// Marks `key` for removal at `sync`; `true` when it had a pending or stored value.
    ///
    /// # Errors
    /// As [`Bucket::contains_key`].
    pub fn remove<Q: Serialize + ?Sized>(&self, key: &Q) -> Result<bool> {
        let hash = self.bucket.key_hash(key)?;
        let had = match self.pending().insert(hash, Pending::Remove) {
            Some(Pending::Write { .. }) => true,
            Some(Pending::Remove) => false,
            None => self.bucket.contains_hash(&hash)?,
        };
        Ok(had)
    }

    /// Writes `key`'s pending change now (as the Python ancestor did), then drops it from the memory tier. Like
    /// [`Bucket::unload_key`] it returns nothing: a failed write is logged at `warn` and stays pending, so the next
    /// [`sync`](Self::sync) reports it.
    pub fn unload_key<Q: Serialize + ?Sized>(&self, key: &Q) {
        let hash = match self.bucket.key_hash(key) {
            Ok(h) => h,
            Err(e) => {
                warn!(target: "bucketcache", error = %e, "unload_key: key cannot be hashed");
                return;
            }
        };
        let change = self.pending().remove(&hash);
        if let Some(change) = change {
            if let Err(e) = self.apply(hash, change) {
                warn!(target: "bucketcache", hash = %hash, error = %e, "unload_key: the pending write failed; it stays pending");
            }
        }
        self.bucket.unload_hash(&hash);
    }

    fn apply(&self, hash: KeyHash, change: Pending) -> Result<()> {
        let result = match &change {
            Pending::Write { file, meta, typed } => {
                self.bucket.write_file(file.clone(), *meta, typed.clone()).map(drop)
            }
            Pending::Remove => self.bucket.remove_hash(&hash).map(drop),
        };
        if result.is_err() {
            // Keep the change so a later sync can retry, unless a newer one arrived meanwhile.
            self.pending().entry(hash).or_insert(change);
        }
        result
    }

    /// Writes every pending change. All are attempted; failed ones stay pending and the first error is returned.
    ///
    /// The writes go out as one batch: grouped by fan-out directory, each directory opened once, and with
    /// [`Durability::Fsync`](crate::Durability::Fsync) each directory synced once for its group rather than once
    /// per file. Each file is still written atomically (a temporary file renamed into place).
    ///
    /// # Errors
    /// The first [`Error`](crate::Error) a write or removal returned.
    pub fn sync(&self) -> Result<()> {
        let changes: Vec<(KeyHash, Pending)> = self.pending().drain().collect();
        let mut first_error = None;
        let mut writes = Vec::with_capacity(changes.len());
        for (hash, change) in changes {
            match change {
                Pending::Write { file, meta, typed } => writes.push((file, meta, typed)),
                Pending::Remove => {
                    if let Err(e) = self.apply(hash, Pending::Remove) {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if let Err(e) = self.write_batch(writes) {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes built entries as one batch (`store::write_batch`), then updates the memory tier, the size bound and
    /// the shared tier for each written one; a failed one is logged at `warn` and stays pending (unless a newer
    /// change of its key arrived meanwhile).
    fn write_batch(&self, writes: Vec<(Vec<u8>, PendingMeta, Option<AnyValue>)>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let items: Vec<(KeyHash, &[u8])> = writes
            .iter()
            .map(|(file, meta, _)| (meta.key, file.as_slice()))
            .collect();
        self.bucket.bound.prepare_batch(&self.bucket.entries);
        let results = crate::store::write_batch(&self.bucket.entries, &items, self.bucket.durability);
        drop(items);
        let mut first_error = None;
        for ((file, meta, typed), result) in writes.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    debug!(target: "bucketcache", hash = %meta.key, bytes = file.len(), "wrote entry (batch)");
                    self.bucket
                        .after_write(file, meta, typed, |f| self.bucket.upload(f, &meta));
                }
                Err(e) => {
                    warn!(target: "bucketcache", hash = %meta.key, error = %e, "write failed");
                    self.pending()
                        .entry(meta.key)
                        .or_insert(Pending::Write { file, meta, typed });
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops every pending change without writing it.
    pub fn discard(&self) {
        self.pending().clear();
    }
}

impl<B: Backend, K: KeyMaker> Drop for DeferredWriteBucket<'_, B, K> {
    fn drop(&mut self) {
        if self.pending().is_empty() {
            return;
        }
        if std::thread::panicking() {
            // Dropped by a panic: the work that made these changes did not finish, so they are not committed.
            warn!(target: "bucketcache", pending = self.pending().len(), "DeferredWriteBucket dropped during a panic: pending changes discarded");
            self.discard();
            return;
        }
        if let Err(e) = self.sync() {
            warn!(target: "bucketcache", error = %e, "deferred writes failed when the DeferredWriteBucket was dropped");
        }
    }
}

/// Runs `f` with a deferred view of `bucket`, then syncs if it returned `Ok`. On `Err` (or a panic) nothing is
/// written and the bucket (files and memory tier) is unchanged.
///
/// ```
/// # fn main() -> bucketcache::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let bucket = bucketcache::Bucket::new(dir.path())?;
/// bucketcache::deferred_write(&bucket, |d| {
///     for i in 0..10u32 {
///         d.insert(&i, &(i * i))?;
///     }
///     Ok(())
/// })?;
/// assert_eq!(bucket.get::<u32>(&3u32)?, Some(9));
/// # Ok(()) }
/// ```
///
/// # Errors
/// `f`'s error, or the first error of the sync (then nothing more is retried).
pub fn deferred_write<B, K, T, F>(bucket: &Bucket<B, K>, f: F) -> Result<T>
where
    B: Backend,
    K: KeyMaker,
    F: FnOnce(&DeferredWriteBucket<'_, B, K>) -> Result<T>,
{
    let deferred = bucket.deferred();
    match f(&deferred) {
        Ok(value) => match deferred.sync() {
            Ok(()) => Ok(value),
            Err(e) => {
                // What failed stays failed; the drop must not retry it behind the caller's back.
                deferred.discard();
                Err(e)
            }
        },
        Err(e) => {
            deferred.discard();
            Err(e)
        }
    }
}
