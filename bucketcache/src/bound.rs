//! Size-bounded buckets: [`BucketBuilder::max_size`](crate::BucketBuilder::max_size) and
//! [`BucketBuilder::max_entries`](crate::BucketBuilder::max_entries).
//!
//! The policy, the mechanism and their limits are documented on [`Bucket::enforce_bound`], where users see them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use tracing::{debug, warn};

use crate::backend::Backend;
use crate::bucket::Bucket;
use crate::error::{Error, Result};
use crate::key::{KeyHash, KeyMaker};
use crate::memory::MemoryTier;
use crate::prune::PrunedFilesInfo;
use crate::scan::{self, FileKind};
use crate::store::{self, Entries};

/// A bounded bucket rescans its directory after at least this many writes (or as many as its last scan found
/// entries, if more), to see entries written by other processes.
pub const RESCAN_MIN_WRITES: u64 = 1024;

/// The bounds a builder was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BoundConfig {
    pub max_bytes: Option<u64>,
    pub max_entries: Option<u64>,
}

impl BoundConfig {
    pub fn validate(&self) -> Result<()> {
        if self.max_bytes == Some(0) {
            return Err(Error::config("`max_size(0)` would keep nothing; give at least 1 byte"));
        }
        if self.max_entries == Some(0) {
            return Err(Error::config("`max_entries(0)` would keep nothing; give at least 1"));
        }
        Ok(())
    }
}

/// Where an entry sits in the index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    written_ms: i64,
    seq: u64,
    len: u64,
}

/// Every known entry, ordered by write time (then by the order this process learned of them).
#[derive(Debug, Default)]
struct Index {
    slots: HashMap<KeyHash, Slot>,
    order: BTreeSet<(i64, u64, KeyHash)>,
    bytes: u64,
    next_seq: u64,
    writes_since_scan: u64,
    rescan_after: u64,
}

impl Index {
    fn load(entries: &Entries) -> Index {
        let mut index = Index::default();
        match scan::walk_dir(entries.dir()) {
            Ok(walk) => {
                for file in walk.flatten() {
                    let FileKind::Entry(key) = file.kind else { continue };
                    if let Ok(scan::Inspected { header: Ok(h), len }) = file.inspect(&key) {
                        index.upsert(key, h.written_ms, len);
                    }
                }
            }
            // A missing directory is an empty bucket; anything else is logged and the index starts empty.
            Err(e) => warn!(target: "bucketcache", error = %e, "size bound: cannot scan the bucket directory"),
        }
        index.rescan_after = (index.slots.len() as u64).max(RESCAN_MIN_WRITES);
        debug!(target: "bucketcache", entries = index.slots.len(), bytes = index.bytes, "size bound: indexed directory");
        index
    }

    fn upsert(&mut self, key: KeyHash, written_ms: i64, len: u64) {
        self.forget(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.slots.insert(key, Slot { written_ms, seq, len });
        self.order.insert((written_ms, seq, key));
        self.bytes += len;
    }

    fn forget(&mut self, key: &KeyHash) -> Option<Slot> {
        let old = self.slots.remove(key)?;
        self.order.remove(&(old.written_ms, old.seq, *key));
        self.bytes -= old.len;
        Some(old)
    }

    fn over(&self, config: &BoundConfig) -> bool {
        config.max_bytes.is_some_and(|m| self.bytes > m)
            || config.max_entries.is_some_and(|m| self.slots.len() as u64 > m)
    }

    /// Removes the oldest entries (never `keep`) until the bound holds. Returns the keys removed and what they
    /// weighed.
    fn evict(
        &mut self,
        entries: &Entries,
        config: &BoundConfig,
        keep: Option<&KeyHash>,
    ) -> (Vec<KeyHash>, PrunedFilesInfo) {
        let mut evicted = Vec::new();
        let mut info = PrunedFilesInfo::default();
        while self.over(config) {
            let Some(&(written_ms, _, key)) = self.order.iter().find(|(_, _, k)| Some(k) != keep) else {
                break;
            };
            // Look again before removing: another process may have rewritten the entry since it was indexed.
            let again =
                store::read_header_bytes(entries, &key).map(|(prefix, len)| (crate::entry::parse_header(&prefix), len));
            match again {
                Ok((Ok(h), len)) if h.written_ms > written_ms && h.file_len() == len => {
                    self.upsert(key, h.written_ms, len);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.forget(&key);
                    continue;
                }
                _ => {}
            }
            let slot = self.forget(&key);
            match store::remove_file(entries, &key) {
                Ok(true) => {
                    debug!(target: "bucketcache", hash = %key, "size bound: evicted the least recently written entry");
                    info.num += 1;
                    info.size += slot.map_or(0, |s| s.len);
                    evicted.push(key);
                }
                Ok(false) => {}
                // Dropped from the index all the same, so one stuck file cannot stop eviction.
                Err(e) => warn!(target: "bucketcache", error = %e, "size bound: cannot evict entry"),
            }
        }
        (evicted, info)
    }
}

/// A bucket's size bound and its index; does nothing when no bound was configured.
#[derive(Debug, Default)]
pub(crate) struct Bound {
    config: BoundConfig,
    index: Mutex<Option<Index>>,
}

impl Bound {
    pub fn new(config: BoundConfig) -> Self {
        Bound {
            config,
            index: Mutex::new(None),
        }
    }

    fn active(&self) -> bool {
        self.config.max_bytes.is_some() || self.config.max_entries.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Index>> {
        // Every index operation leaves it consistent, so a panic elsewhere does not spoil it.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accounts for an entry file just written, then evicts the oldest entries past the bound (and drops them from
    /// the memory tier). Loads the index on the first call and rescans now and then (see the module docs).
    pub fn after_write(&self, entries: &Entries, memory: &MemoryTier, key: KeyHash, written_ms: i64, len: u64) {
        if !self.active() {
            return;
        }
        let mut guard = self.lock();
        let stale = guard.as_ref().is_none_or(|i| i.writes_since_scan >= i.rescan_after);
        let index = if stale {
            guard.insert(Index::load(entries))
        } else {
            guard.get_or_insert_with(Index::default)
        };
        index.upsert(key, written_ms, len);
        index.writes_since_scan += 1;
        let (evicted, _) = index.evict(entries, &self.config, Some(&key));
        drop(guard);
        for key in &evicted {
            memory.remove(key);
        }
    }

    /// Loads (or rescans) the index now, before a batch of files is written: the batch's `after_write` calls then
    /// count its files one by one, and a scan in the middle of the batch cannot see (and evict) files whose
    /// `after_write` has not come yet.
    pub fn prepare_batch(&self, entries: &Entries) {
        if !self.active() {
            return;
        }
        let mut guard = self.lock();
        if guard.as_ref().is_none_or(|i| i.writes_since_scan >= i.rescan_after) {
            *guard = Some(Index::load(entries));
        }
    }

    /// Accounts for an entry this bucket removed (or found gone).
    pub fn forget(&self, key: &KeyHash) {
        if !self.active() {
            return;
        }
        if let Some(index) = self.lock().as_mut() {
            index.forget(key);
        }
    }

    /// Rescans the directory and evicts down to the bound.
    fn enforce(&self, entries: &Entries, memory: &MemoryTier) -> PrunedFilesInfo {
        if !self.active() {
            return PrunedFilesInfo::default();
        }
        let mut guard = self.lock();
        let index = guard.insert(Index::load(entries));
        let (evicted, info) = index.evict(entries, &self.config, None);
        drop(guard);
        for key in &evicted {
            memory.remove(key);
        }
        info
    }

    /// Bytes and entries the index currently counts (`None` before the first write).
    fn usage(&self) -> Option<(u64, u64)> {
        self.lock().as_ref().map(|i| (i.bytes, i.slots.len() as u64))
    }
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    /// The size bound ([`BucketBuilder::max_size`](crate::BucketBuilder::max_size)), if any.
    pub fn max_size(&self) -> Option<u64> {
        self.bound.config.max_bytes
    }

    /// The entry-count bound ([`BucketBuilder::max_entries`](crate::BucketBuilder::max_entries)), if any.
    pub fn max_entries(&self) -> Option<u64> {
        self.bound.config.max_entries
    }

    /// What the size bound's index counts: `(bytes, entries)` of the entry files in the directory, as this bucket
    /// knows them. `None` for an unbounded bucket, or before its first write loaded the index.
    pub fn bounded_usage(&self) -> Option<(u64, u64)> {
        self.bound.usage()
    }

    /// Rescans the directory now (seeing entries written by other processes) and removes the least recently
    /// written entries until the bucket's bounds hold. Does nothing on an unbounded bucket.
    ///
    /// # Policy: least recently *written* goes first
    ///
    /// When a write takes the directory past a bound, the bucket removes the entries with the oldest write time (the
    /// `written at` stamp in each entry's header) until the bound holds again. Reads do not count as use: tracking them
    /// would turn every hit into a write (an access-time file or a header rewrite), and a hit served from the memory
    /// tier touches no file at all. Rewriting a key (a refreshed result, a `nocache` call) makes it the newest entry.
    /// The entry just written is never evicted by its own write, so a single entry larger than `max_size` still stays
    /// (alone).
    ///
    /// # How: an in-memory index, loaded once
    ///
    /// The first write of a bounded bucket walks the directory once and builds an index of every valid entry:
    /// `(written at, size, key)`, ordered by write time. Each later write and removal by this `Bucket` updates the index in
    /// `O(log n)`, and eviction pops its oldest entries, so no write walks the directory. Before an evicted file is
    /// removed its header is read again: if another process has rewritten that key since it was indexed, the entry is
    /// moved to its new place in the order instead of being removed.
    ///
    /// # Limits
    ///
    /// - Sizes are entry file lengths (header + payload). Directory blocks, temporary files of writes in progress and
    ///   corrupt files are not counted; [`Bucket::prune_directory`](crate::Bucket::prune_directory) removes the last
    ///   two.
    /// - Between a write's rename and its eviction step the directory is over the bound by at most that one entry.
    /// - The index belongs to one `Bucket` value. Entries that other processes (or other `Bucket`s on the same
    ///   directory) write are seen by the next full scan, which happens on the first write, then again once this bucket
    ///   has written as many entries as the last scan found (at least [`RESCAN_MIN_WRITES`]), so the scanning cost
    ///   stays constant per write on average. Until then several writers with the same bound can together overshoot it.
    ///   Files removed by someone else are dropped from the index when eviction reaches them. This method rescans and
    ///   applies the bound at once.
    /// - Two processes evicting at once may both remove an entry; nothing worse happens than a miss.
    ///
    /// # Example
    ///
    /// ```
    /// # fn main() -> bucketcache::Result<()> {
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir().unwrap();
    /// // Another writer fills the directory, one entry a second.
    /// let clock = bucketcache::ManualClock::starting_now();
    /// let unbounded = bucketcache::Bucket::builder(dir.path()).clock(clock.clone()).build()?;
    /// for i in 0..10u32 {
    ///     unbounded.insert(&i, &i)?;
    ///     clock.advance(Duration::from_secs(1));
    /// }
    /// let bounded = bucketcache::Bucket::builder(dir.path()).max_entries(4).build()?;
    /// assert_eq!(bounded.enforce_bound()?.num, 6);
    /// assert_eq!(bounded.get::<u32>(&9u32)?, Some(9)); // the newest entries stay
    /// assert_eq!(bounded.get::<u32>(&0u32)?, None);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// None at present (files that cannot be removed are logged and skipped); the `Result` leaves room for
    /// reporting a directory that cannot be listed.
    pub fn enforce_bound(&self) -> Result<PrunedFilesInfo> {
        Ok(self.bound.enforce(&self.entries, &self.memory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> KeyHash {
        KeyHash([n; 32])
    }

    #[test]
    fn upsert_and_forget_keep_the_totals() {
        let mut i = Index::default();
        i.upsert(key(1), 10, 100);
        i.upsert(key(2), 5, 50);
        i.upsert(key(1), 20, 70);
        assert_eq!((i.bytes, i.slots.len(), i.order.len()), (120, 2, 2));
        assert_eq!(i.order.first().map(|e| e.2), Some(key(2)));
        i.forget(&key(2));
        assert_eq!((i.bytes, i.slots.len(), i.order.len()), (70, 1, 1));
        assert!(i.forget(&key(9)).is_none());
    }

    #[test]
    fn zero_bounds_are_rejected() {
        let c = BoundConfig {
            max_bytes: Some(0),
            max_entries: None,
        };
        assert!(c.validate().is_err());
        assert!(BoundConfig::default().validate().is_ok());
    }

    #[test]
    fn eviction_skips_missing_files_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut i = Index::default();
        i.upsert(key(1), 1, 10); // no file: dropped without counting
        i.upsert(key(2), 2, 10);
        let config = BoundConfig {
            max_bytes: Some(5),
            max_entries: None,
        };
        let entries = Entries::open(dir.path(), store::DEFAULT_MAX_ENTRY_BYTES).expect("open");
        let (evicted, info) = i.evict(&entries, &config, Some(&key(2)));
        assert!(evicted.is_empty());
        assert_eq!(info, PrunedFilesInfo::default());
        assert_eq!(i.slots.len(), 1, "the kept entry stays even over the bound");
    }
}
