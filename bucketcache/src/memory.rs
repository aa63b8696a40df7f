//! The in-memory tier: recently used entries, so a repeated hit touches no file.
//!
//! A bounded, concurrent S3-FIFO cache (`quick_cache`) from key hash to entry. Each entry keeps the decoded value
//! (so a hit is a hash lookup, a downcast and a `clone`), or the file's bytes when it was inserted from a value that
//! is not `Clone`. The weight of an entry is its file size plus a fixed overhead.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, Utc};
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::key::KeyHash;

/// A decoded value, shared between the memory tier and callers.
pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// Bookkeeping bytes counted for each entry beside its file bytes.
const ENTRY_OVERHEAD: u64 = 160;

/// An entry larger than this fraction of the tier's capacity is not kept in it (see [`MemoryTier::admits`]).
pub(crate) const MAX_SHARE: u64 = 8;

/// One cached entry.
pub(crate) struct MemEntry {
    /// The entry file (header + payload), kept only while no typed value is known, so the value can still be decoded
    /// without touching the disk. `None` once a typed value was given.
    pub file: Option<Vec<u8>>,
    /// Where the payload starts in `file`.
    pub payload_at: usize,
    /// The entry file's size (for a compressed entry read from disk, its encoding's length when larger), the basis of
    /// its weight.
    pub file_len: u64,
    pub expires_ms: Option<i64>,
    /// The write time and `expires_ms` as dates, computed once so a hit need not convert them.
    pub written: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    /// How long the value took to compute, when recorded.
    pub cost: Option<std::time::Duration>,
    /// The value decoded as the type it was last read or written as.
    pub typed: OnceLock<AnyValue>,
}

impl MemEntry {
    pub fn payload(&self) -> Option<&[u8]> {
        self.file.as_ref().map(|f| &f[self.payload_at..])
    }

    pub fn is_expired_at(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|e| e <= now_ms)
    }

    /// The typed value, if it was stored as a `V`.
    pub fn typed<V: Clone + 'static>(&self) -> Option<V> {
        self.typed.get()?.downcast_ref::<V>().cloned()
    }
}

/// Key hashes are already uniformly distributed: the table hashes them by taking their first eight bytes.
#[derive(Clone, Copy, Default)]
struct KeyHashBuild;

#[derive(Default)]
struct KeyHashHasher(u64);

impl std::hash::BuildHasher for KeyHashBuild {
    type Hasher = KeyHashHasher;
    fn build_hasher(&self) -> KeyHashHasher {
        KeyHashHasher(0)
    }
}

impl std::hash::Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // A key hash is 32 uniformly random bytes: eight of them are as good a table hash as any.
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 ^= u64::from_le_bytes(*first);
        } else {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct FileWeight;

impl Weighter<KeyHash, Arc<MemEntry>> for FileWeight {
    fn weight(&self, _key: &KeyHash, entry: &Arc<MemEntry>) -> u64 {
        entry.file_len + ENTRY_OVERHEAD
    }
}

/// The memory tier, or nothing when its capacity is zero.
///
/// In front of the shared table each thread keeps a few recently hit entries (the "L0"): a repeated hit then takes
/// no lock and touches no reference count. An L0 entry is used only while the tier's `generation` is the one it was
/// read under; every insert, removal or clear bumps the generation, so no thread can serve a value that was
/// replaced or removed before its read began.
pub(crate) struct MemoryTier {
    cache: Option<Cache<KeyHash, Arc<MemEntry>, FileWeight, KeyHashBuild>>,
    max_bytes: u64,
    /// Tells this tier's L0 entries from other tiers' (each bucket has its own tier).
    id: u64,
    generation: AtomicU64,
    /// Per-stripe change counters, changed under their lock together with the table. A read from disk notes its
    /// key's counter before reading the file and fills the table only if no write or removal of a key of that
    /// stripe happened meanwhile, so a slow read can never put back a value that was just replaced or removed.
    stripes: Box<[Mutex<u64>]>,
}

const STRIPES: usize = 64;

fn lock_stripe(m: &Mutex<u64>) -> MutexGuard<'_, u64> {
    // The guarded counter is a plain number: a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const L0_SLOTS: usize = 64;
/// Entries larger than this are not kept in the L0, so what the L0s hold beyond the tier's bound stays small: at
/// most `L0_SLOTS` entries of up to 16 KiB per thread (1 MiB), released as their slots are reused.
const L0_MAX_FILE: u64 = 16 * 1024;

struct L0Entry {
    tier: u64,
    generation: u64,
    key: KeyHash,
    entry: Arc<MemEntry>,
}

thread_local! {
    static L0: RefCell<Vec<Option<L0Entry>>> = const { RefCell::new(Vec::new()) };
}

static NEXT_TIER_ID: AtomicU64 = AtomicU64::new(1);

fn l0_slot(key: &KeyHash) -> usize {
    usize::from(key.0[0]) % L0_SLOTS
}

impl MemoryTier {
    pub fn new(max_bytes: u64) -> Self {
        let cache = (max_bytes > 0).then(|| {
            // quick_cache sizes its tables from an item estimate; assume small entries.
            let estimate = (max_bytes / 1024).clamp(16, 1 << 20) as usize;
            Cache::with(estimate, max_bytes, FileWeight, KeyHashBuild, Default::default())
        });
        MemoryTier {
            cache,
            max_bytes,
            id: NEXT_TIER_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
        }
    }

    /// The tier's process-unique number (never reused; also names its bucket: `Bucket::instance`).
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    fn stripe(&self, key: &KeyHash) -> &Mutex<u64> {
        &self.stripes[usize::from(key.0[1]) % STRIPES]
    }

    /// The change counter of `key`'s stripe: take it before reading `key`'s file, give it to
    /// [`MemoryTier::insert_if_unchanged`].
    pub fn stamp(&self, key: &KeyHash) -> u64 {
        *lock_stripe(self.stripe(key))
    }

    /// Inserts an entry read from disk, unless a write or removal in its stripe happened since `stamp`.
    pub fn insert_if_unchanged(&self, key: KeyHash, stamp: u64, entry: Arc<MemEntry>) {
        if let Some(c) = &self.cache {
            let guard = lock_stripe(self.stripe(&key));
            if *guard == stamp {
                c.insert(key, entry);
                self.changed();
            }
        }
    }

    /// Runs `f` on the entry for `key`, if the tier holds one: from this thread's L0 when it is current, else from
    /// the shared table (and then remembered in the L0).
    #[inline]
    pub fn with<R>(&self, key: &KeyHash, f: impl FnOnce(&MemEntry) -> R) -> Option<R> {
        let cache = self.cache.as_ref()?;
        // Read before the table: an entry found after a concurrent change is then already out of date in the L0.
        let generation = self.generation.load(Ordering::Acquire);
        let slot = l0_slot(key);
        let mut f = Some(f);
        let from_l0 = L0
            .try_with(|l0| {
                let l0 = l0.try_borrow().ok()?;
                match l0.get(slot) {
                    Some(Some(e)) if e.tier == self.id && e.generation == generation && e.key == *key => {
                        f.take().map(|f| f(&e.entry))
                    }
                    _ => None,
                }
            })
            .ok()
            .flatten();
        if from_l0.is_some() {
            return from_l0;
        }
        let entry = cache.get(key)?;
        let r = f.take().map(|f| f(&entry));
        if entry.file_len <= L0_MAX_FILE {
            let _ = L0.try_with(|l0| {
                if let Ok(mut l0) = l0.try_borrow_mut() {
                    if l0.is_empty() {
                        l0.resize_with(L0_SLOTS, || None);
                    }
                    l0[slot] = Some(L0Entry {
                        tier: self.id,
                        generation,
                        key: *key,
                        entry,
                    });
                }
            });
        }
        r
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether an entry of `file_len` bytes is kept in this tier: at most [`MAX_SHARE`]th of its capacity, so one
    /// large value neither evicts everything else nor costs a second copy of itself.
    pub fn admits(&self, file_len: u64) -> bool {
        self.cache.is_some() && file_len.saturating_add(ENTRY_OVERHEAD) <= self.max_bytes / MAX_SHARE
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    #[inline]
    pub fn get(&self, key: &KeyHash) -> Option<Arc<MemEntry>> {
        self.cache.as_ref()?.get(key)
    }

    /// Inserts the entry of a write (always: it is the newest value).
    pub fn insert(&self, key: KeyHash, entry: Arc<MemEntry>) {
        let mut guard = lock_stripe(self.stripe(&key));
        *guard += 1;
        if let Some(c) = &self.cache {
            c.insert(key, entry);
        }
        self.changed();
    }

    pub fn remove(&self, key: &KeyHash) -> bool {
        let mut guard = lock_stripe(self.stripe(key));
        *guard += 1;
        let removed = self.cache.as_ref().and_then(|c| c.remove(key)).is_some();
        // Bumped even when the table had no entry: an L0 may still hold one the table evicted.
        self.changed();
        removed
    }

    /// Total weight held, in bytes.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    pub fn clear(&self) {
        let mut guards: Vec<_> = self.stripes.iter().map(lock_stripe).collect();
        for g in &mut guards {
            **g += 1;
        }
        if let Some(c) = &self.cache {
            c.clear();
        }
        self.changed();
    }
}
