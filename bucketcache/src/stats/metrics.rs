//! Feature `metrics`: each cached function's counters also go to the [`metrics`](https://docs.rs/metrics) facade,
//! so the exporter an application installs (Prometheus, StatsD, ...) picks them up.
//!
//! | metric (counter) | labels | what it counts |
//! |---|---|---|
//! | `bucketcache_hits_total` | `function`, `tier` = `memory` / `disk` / `shared` | hits, by the tier that served them |
//! | `bucketcache_misses_total` | `function`, `reason` = `new_arguments` / `expired` / `code_changed` / `corrupt` / `other_type` / `nocache` | misses, by reason |
//! | `bucketcache_stores_total` | `function` | values stored |
//! | `bucketcache_store_failures_total` | `function` | values that could not be stored (returned uncached) |
//! | `bucketcache_bytes_written_total` | `function` | bytes of entry files written |
//! | `bucketcache_time_saved_microseconds_total` | `function` | the recorded cost of each hit's entry: the time hits saved |
//!
//! `function` is the function's path as entry headers record it (`my_app::reports::load`). The handles are
//! registered with the recorder once per function, at its first call, and kept in the function's `static`
//! ([`super::FnStats`]): a counted event is one `OnceLock` read and the handle's increment, with no string
//! formatting, lookup or allocation. So install the recorder before the first cached call (at the start of
//! `main`, as the `metrics` crate advises): a function first called before it keeps counting in
//! [`crate::stats()`] only. Buckets' own counters ([`crate::Bucket::stats`]) are not exported.

use metrics::{describe_counter, Counter, Unit};

#[cfg(test)]
use crate::bucket::HitSource;
use crate::stats::MissReason;

/// The metric names.
const HITS: &str = "bucketcache_hits_total";
const MISSES: &str = "bucketcache_misses_total";
const STORES: &str = "bucketcache_stores_total";
const STORE_FAILURES: &str = "bucketcache_store_failures_total";
const BYTES_WRITTEN: &str = "bucketcache_bytes_written_total";
const TIME_SAVED: &str = "bucketcache_time_saved_microseconds_total";

/// The `tier` label of each hit source, in [`super::source_index`] order.
const TIERS: [&str; 3] = ["memory", "disk", "shared"];

/// The `reason` label of a miss reason.
pub(crate) fn reason_label(reason: MissReason) -> &'static str {
    match reason {
        MissReason::NewArguments => "new_arguments",
        MissReason::Expired => "expired",
        MissReason::CodeChanged => "code_changed",
        MissReason::Corrupt => "corrupt",
        MissReason::OtherType => "other_type",
        MissReason::NoCache => "nocache",
    }
}

/// One function's handles.
#[derive(Debug)]
pub(crate) struct FnMetrics {
    hits: [Counter; 3],
    misses: [Counter; 6],
    stores: Counter,
    store_failures: Counter,
    bytes_written: Counter,
    saved_us: Counter,
}

impl FnMetrics {
    /// Registers `function`'s handles with the current recorder (the metrics' descriptions too, each time: a
    /// recorder keeps the last).
    pub(crate) fn register(function: &'static str) -> FnMetrics {
        describe_counter!(HITS, Unit::Count, "Cached calls answered from the cache, by tier.");
        describe_counter!(MISSES, Unit::Count, "Cached calls that ran the function, by reason.");
        describe_counter!(STORES, Unit::Count, "Results stored in the cache.");
        describe_counter!(
            STORE_FAILURES,
            Unit::Count,
            "Results that could not be stored (returned uncached)."
        );
        describe_counter!(BYTES_WRITTEN, Unit::Bytes, "Bytes of cache entries written.");
        describe_counter!(
            TIME_SAVED,
            Unit::Microseconds,
            "The recorded computation time of the entries hit: time the cache saved."
        );
        let hit = |tier: &'static str| metrics::counter!(HITS, "function" => function, "tier" => tier);
        let miss =
            |reason: MissReason| metrics::counter!(MISSES, "function" => function, "reason" => reason_label(reason));
        FnMetrics {
            hits: TIERS.map(hit),
            misses: MissReason::ALL.map(miss),
            stores: metrics::counter!(STORES, "function" => function),
            store_failures: metrics::counter!(STORE_FAILURES, "function" => function),
            bytes_written: metrics::counter!(BYTES_WRITTEN, "function" => function),
            saved_us: metrics::counter!(TIME_SAVED, "function" => function),
        }
    }

    /// A hit from the tier at `source` (as [`super::source_index`]).
    #[inline]
    pub(crate) fn hit(&self, source: usize) {
        if let Some(c) = self.hits.get(source) {
            c.increment(1);
        }
    }

    /// Time a hit saved, in µs.
    #[inline]
    pub(crate) fn saved(&self, us: u64) {
        self.saved_us.increment(us);
    }

    /// A miss, by its index in [`MissReason::ALL`].
    #[inline]
    pub(crate) fn miss(&self, reason: usize) {
        if let Some(c) = self.misses.get(reason) {
            c.increment(1);
        }
    }

    /// A stored value of `bytes` bytes.
    #[inline]
    pub(crate) fn stored(&self, bytes: u64) {
        self.stores.increment(1);
        self.bytes_written.increment(bytes);
    }

    /// A store that failed.
    #[inline]
    pub(crate) fn store_failed(&self) {
        self.store_failures.increment(1);
    }
}

/// The `tier` label of a hit source.
#[cfg(test)]
fn tier_label(source: HitSource) -> &'static str {
    TIERS[super::source_index(source)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_counters_order() {
        for (i, r) in MissReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "MissReason::ALL is in index order");
            assert_eq!(reason_label(*r), r.name().replace(' ', "_"));
        }
        assert_eq!(tier_label(HitSource::Memory), "memory");
        assert_eq!(tier_label(HitSource::Disk), "disk");
        assert_eq!(tier_label(HitSource::Shared), "shared");
    }
}
