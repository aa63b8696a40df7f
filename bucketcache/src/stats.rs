//! In-process counters of what the cache did: per cached function ([`stats`]) and per bucket
//! ([`Bucket::stats`](crate::Bucket::stats)): hits by tier, misses by reason, stores, store failures, bytes
//! written and the time hits saved (the recorded cost of each hit's entry).
//!
//! One type counts ([`Counters`], relaxed atomics, after moka's `stats_counter.rs`): each `#[bucket_cache]`
//! function's expansion defines a `static` of its own ([`FnStats`]), registered in a process-wide list at its
//! first call, and each bucket holds one. A hit adds to two or three atomics of each; no lock is taken after the
//! first call. A memory hit of the attribute's fast path is counted instead in a per-thread cell registered with
//! both (`stats/cells.rs`: no atomic read-modify-write; snapshots stay exact). A disabled call
//! ([`crate::disable`]) counts nothing.
//!
//! With the feature `metrics`, each function's counts also go to the `metrics` facade (`stats/metrics.rs`; the
//! metric names and labels are in the crate docs, "Statistics").

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::bucket::HitSource;

/// Feature `metrics`: the functions' counts, exported through the `metrics` facade.
#[cfg(feature = "metrics")]
mod metrics;

/// Per-thread cells for the fast path's memory hits.
pub(crate) mod cells;

/// Why a cached function's call missed (each is logged at `debug` with the function and key, and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissReason {
    /// No entry for these arguments, under any code version this process knows of.
    NewArguments,
    /// The entry for these arguments had expired.
    Expired,
    /// An entry for these same arguments exists, written by another code version (the function, a dependency or
    /// `version = "..."` changed since).
    CodeChanged,
    /// The entry was damaged (a checksum, length or header failed) or could not be read.
    Corrupt,
    /// The entry holds a value that does not decode as the function's stored type.
    OtherType,
    /// The `nocache` flag was set: the cache was not read.
    NoCache,
}

impl MissReason {
    /// Every reason, in the order of [`MissCounts`] and of the table.
    pub const ALL: [MissReason; 6] = [
        MissReason::NewArguments,
        MissReason::Expired,
        MissReason::CodeChanged,
        MissReason::Corrupt,
        MissReason::OtherType,
        MissReason::NoCache,
    ];

    /// A short name (`new arguments`, `expired`, `code changed`, `corrupt`, `other type`, `nocache`).
    pub fn name(self) -> &'static str {
        match self {
            MissReason::NewArguments => "new arguments",
            MissReason::Expired => "expired",
            MissReason::CodeChanged => "code changed",
            MissReason::Corrupt => "corrupt",
            MissReason::OtherType => "other type",
            MissReason::NoCache => "nocache",
        }
    }

    fn index(self) -> usize {
        match self {
            MissReason::NewArguments => 0,
            MissReason::Expired => 1,
            MissReason::CodeChanged => 2,
            MissReason::Corrupt => 3,
            MissReason::OtherType => 4,
            MissReason::NoCache => 5,
        }
    }
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Live counters: relaxed atomics, added to by the attribute's calls. Read them with [`Counters::snapshot`].
#[derive(Debug, Default)]
pub struct Counters {
    hits: [AtomicU64; 3],
    misses: [AtomicU64; 6],
    stores: AtomicU64,
    store_failures: AtomicU64,
    bytes_written: AtomicU64,
    saved_us: AtomicU64,
    /// The per-thread cells counting this one's fast memory hits (`stats/cells.rs`); made at the first.
    cells: OnceLock<Arc<cells::CellRegistry>>,
    /// Feature `metrics`: the function's handles (set at registration; buckets' counters have none).
    #[cfg(feature = "metrics")]
    sink: OnceLock<Box<metrics::FnMetrics>>,
}

/// A cost in whole microseconds (0 when unknown).
#[inline]
pub(crate) fn micros(cost: Option<Duration>) -> u64 {
    cost.map_or(0, |c| {
        c.as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(c.subsec_micros()))
    })
}

fn source_index(source: HitSource) -> usize {
    match source {
        HitSource::Memory => 0,
        HitSource::Disk => 1,
        HitSource::Shared => 2,
    }
}

impl Counters {
    /// Zeroed counters (for a `static`).
    pub const fn new() -> Counters {
        Counters {
            hits: [const { AtomicU64::new(0) }; 3],
            misses: [const { AtomicU64::new(0) }; 6],
            stores: AtomicU64::new(0),
            store_failures: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            saved_us: AtomicU64::new(0),
            cells: OnceLock::new(),
            #[cfg(feature = "metrics")]
            sink: OnceLock::new(),
        }
    }

    /// Counts a hit from `source` that saved `cost` (the entry's recorded cost, when it has one).
    #[inline]
    pub fn hit(&self, source: HitSource, cost: Option<Duration>) {
        self.hits[source_index(source)].fetch_add(1, Ordering::Relaxed);
        let us = micros(cost);
        // Adding zero changes nothing; a body under a microsecond (the common memoized case) skips the atomic
        // add, which costs more than the rest of the counting on a memory hit.
        if us > 0 {
            self.saved_us.fetch_add(us, Ordering::Relaxed);
        }
        self.hit_metrics(source, cost.map(|_| us));
    }

    /// Feature `metrics`: a hit, and the microseconds it saved when its cost is known.
    #[inline]
    pub(crate) fn hit_metrics(&self, source: HitSource, saved_us: Option<u64>) {
        #[cfg(feature = "metrics")]
        if let Some(m) = self.sink.get() {
            if let Some(us) = saved_us {
                m.saved(us);
            }
            m.hit(source_index(source));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (source, saved_us);
    }

    /// The registry of the per-thread cells counting for these counters.
    pub(crate) fn cells(&self) -> Arc<cells::CellRegistry> {
        Arc::clone(self.cells.get_or_init(Arc::default))
    }

    /// Counts a miss.
    #[inline]
    pub fn miss(&self, reason: MissReason) {
        self.misses[reason.index()].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = self.sink.get() {
            m.miss(reason.index());
        }
    }

    /// Counts a stored value of `bytes` bytes (the entry file's size).
    #[inline]
    pub fn stored(&self, bytes: u64) {
        self.stores.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = self.sink.get() {
            m.stored(bytes);
        }
    }

    /// Counts a store that failed (the value was returned uncached).
    #[inline]
    pub fn store_failed(&self) {
        self.store_failures.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = self.sink.get() {
            m.store_failed();
        }
    }

    /// The counts now (each counter read once; a snapshot taken during calls may be mid-update between two of
    /// them).
    pub fn snapshot(&self) -> CacheStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let m = |r: MissReason| get(&self.misses[r.index()]);
        // The fast path's memory hits, counted per thread (`stats/cells.rs`).
        let (cell_hits, cell_saved_us) = self.cells.get().map_or((0, 0), |c| c.totals());
        CacheStats {
            hits_memory: get(&self.hits[0]).wrapping_add(cell_hits),
            hits_disk: get(&self.hits[1]),
            hits_shared: get(&self.hits[2]),
            misses: MissCounts {
                new_arguments: m(MissReason::NewArguments),
                expired: m(MissReason::Expired),
                code_changed: m(MissReason::CodeChanged),
                corrupt: m(MissReason::Corrupt),
                other_type: m(MissReason::OtherType),
                nocache: m(MissReason::NoCache),
            },
            stores: get(&self.stores),
            store_failures: get(&self.store_failures),
            bytes_written: get(&self.bytes_written),
            time_saved: Duration::from_micros(get(&self.saved_us).saturating_add(cell_saved_us)),
        }
    }
}

/// Misses by reason: see [`MissReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissCounts {
    /// [`MissReason::NewArguments`].
    pub new_arguments: u64,
    /// [`MissReason::Expired`].
    pub expired: u64,
    /// [`MissReason::CodeChanged`].
    pub code_changed: u64,
    /// [`MissReason::Corrupt`].
    pub corrupt: u64,
    /// [`MissReason::OtherType`].
    pub other_type: u64,
    /// [`MissReason::NoCache`].
    pub nocache: u64,
}

impl MissCounts {
    /// The count for one reason.
    pub fn get(&self, reason: MissReason) -> u64 {
        match reason {
            MissReason::NewArguments => self.new_arguments,
            MissReason::Expired => self.expired,
            MissReason::CodeChanged => self.code_changed,
            MissReason::Corrupt => self.corrupt,
            MissReason::OtherType => self.other_type,
            MissReason::NoCache => self.nocache,
        }
    }

    /// All misses.
    pub fn total(&self) -> u64 {
        MissReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// What the cache did for a function or a bucket, counted since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Hits served from the memory tier.
    pub hits_memory: u64,
    /// Hits served from the entry file.
    pub hits_disk: u64,
    /// Hits served from the shared tier.
    pub hits_shared: u64,
    /// Misses, by reason.
    pub misses: MissCounts,
    /// Values stored.
    pub stores: u64,
    /// Values that could not be stored (returned uncached).
    pub store_failures: u64,
    /// Bytes of entry files written.
    pub bytes_written: u64,
    /// The sum of the recorded costs of the entries hit: the time the hits saved.
    pub time_saved: Duration,
}

impl CacheStats {
    /// Hits from every tier.
    pub fn hits(&self) -> u64 {
        self.hits_memory + self.hits_disk + self.hits_shared
    }

    /// Hits and misses.
    pub fn calls(&self) -> u64 {
        self.hits() + self.misses.total()
    }

    fn row(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.misses;
        writeln!(
            f,
            "{name:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            self.hits_memory,
            self.hits_disk,
            self.hits_shared,
            m.new_arguments,
            m.expired,
            m.code_changed,
            m.corrupt,
            m.other_type,
            m.nocache,
            self.stores,
            self.store_failures,
            self.bytes_written,
            format!("{:.3}s", self.time_saved.as_secs_f64()),
        )
    }

    fn header(f: &mut fmt::Formatter<'_>, first: &str) -> fmt::Result {
        writeln!(
            f,
            "{first:<40} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "hit mem",
            "hit disk",
            "hit shrd",
            "miss new",
            "expired",
            "code chg",
            "corrupt",
            "oth type",
            "nocache",
            "stores",
            "failed",
            "bytes",
            "saved"
        )
    }
}

/// A table of one row.
impl fmt::Display for CacheStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        CacheStats::header(f, "")?;
        self.row("", f)
    }
}

/// One cached function's counters: see [`stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionStats {
    /// The function's path, as recorded in entry headers.
    pub function: &'static str,
    /// Its counts (every bucket it used).
    pub stats: CacheStats,
}

/// Every cached function's counters, in the order of their first calls: see [`stats`]. `Display` renders a
/// table, one row per function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// One row per cached function called at least once in this process.
    pub functions: Vec<FunctionStats>,
}

impl Stats {
    /// The counters of the function whose path is `function` or ends with `::function`.
    pub fn function(&self, function: &str) -> Option<&FunctionStats> {
        self.functions.iter().find(|f| {
            f.function == function
                || f.function
                    .strip_suffix(function)
                    .is_some_and(|head| head.ends_with("::"))
        })
    }

    /// The sum over every function.
    pub fn total(&self) -> CacheStats {
        let mut t = CacheStats::default();
        for f in &self.functions {
            let s = &f.stats;
            t.hits_memory += s.hits_memory;
            t.hits_disk += s.hits_disk;
            t.hits_shared += s.hits_shared;
            t.misses.new_arguments += s.misses.new_arguments;
            t.misses.expired += s.misses.expired;
            t.misses.code_changed += s.misses.code_changed;
            t.misses.corrupt += s.misses.corrupt;
            t.misses.other_type += s.misses.other_type;
            t.misses.nocache += s.misses.nocache;
            t.stores += s.stores;
            t.store_failures += s.store_failures;
            t.bytes_written += s.bytes_written;
            t.time_saved += s.time_saved;
        }
        t
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        CacheStats::header(f, "function")?;
        for row in &self.functions {
            row.stats.row(row.function, f)?;
        }
        Ok(())
    }
}

/// A cached function's counters: the `static` each `#[bucket_cache]` expansion defines. Hidden: the attribute
/// uses it.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct FnStats {
    counters: Counters,
    registered: AtomicBool,
    function: OnceLock<&'static str>,
}

static REGISTRY: Mutex<Vec<&'static FnStats>> = Mutex::new(Vec::new());

impl FnStats {
    /// Zeroed and unregistered.
    pub const fn new() -> FnStats {
        FnStats {
            counters: Counters::new(),
            registered: AtomicBool::new(false),
            function: OnceLock::new(),
        }
    }

    /// The counters, registering them (under `function`) at the first call.
    #[inline]
    pub fn counters(&'static self, function: &'static str) -> &'static Counters {
        if !self.registered.load(Ordering::Relaxed) {
            self.register(function);
        }
        &self.counters
    }

    /// The counters once registered ([`FnStats::counters`] has been called); `None` before.
    #[inline]
    pub(crate) fn registered_counters(&'static self) -> Option<&'static Counters> {
        self.registered.load(Ordering::Relaxed).then_some(&self.counters)
    }

    #[cold]
    fn register(&'static self, function: &'static str) {
        if self.registered.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = self.function.set(function);
        #[cfg(feature = "metrics")]
        let _ = self.counters.sink.set(Box::new(metrics::FnMetrics::register(function)));
        match REGISTRY.lock() {
            Ok(mut r) => r.push(self),
            Err(poisoned) => poisoned.into_inner().push(self),
        }
    }
}

/// Every cached function's counters since the process started (functions never called are not listed).
///
/// ```
/// let stats = bucketcache::stats();
/// println!("{stats}"); // a table: one row per function
/// let all = stats.total();
/// assert_eq!(all.calls(), all.hits() + all.misses.total());
/// ```
pub fn stats() -> Stats {
    let registry = match REGISTRY.lock() {
        Ok(r) => r.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    Stats {
        functions: registry
            .into_iter()
            .map(|s| FunctionStats {
                function: s.function.get().copied().unwrap_or("?"),
                stats: s.counters.snapshot(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_snapshot_and_the_table() {
        static S: FnStats = FnStats::new();
        let c = S.counters("m::unit_test_fn");
        c.hit(HitSource::Memory, Some(Duration::from_millis(3)));
        c.hit(HitSource::Disk, None);
        c.miss(MissReason::CodeChanged);
        c.stored(100);
        c.store_failed();
        let all = stats();
        let row = all.function("unit_test_fn").expect("registered");
        assert_eq!(row.stats.hits_memory, 1);
        assert_eq!(row.stats.hits_disk, 1);
        assert_eq!(row.stats.misses.code_changed, 1);
        assert_eq!(row.stats.misses.total(), 1);
        assert_eq!(row.stats.bytes_written, 100);
        assert_eq!(row.stats.store_failures, 1);
        assert_eq!(row.stats.time_saved, Duration::from_millis(3));
        let table = all.to_string();
        assert!(table.contains("m::unit_test_fn"), "{table}");
        assert!(table.contains("code chg"), "{table}");
        assert!(
            all.function("test_fn").is_none(),
            "a suffix must end at a path separator"
        );
    }
}
