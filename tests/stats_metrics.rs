//! Feature `metrics`: a known sequence of cached calls, read back from a real recorder (metrics-util's
//! `DebuggingRecorder`, installed as the global recorder before the first call): every counter with its labels.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket, ManualClock};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});

#[bucket_cache(bucket = BUCKET, lifetime = "1m", nocache = "force")]
fn square(x: u64, force: bool) -> u64 {
    std::thread::sleep(Duration::from_millis(2)); // a recorded cost, so hits save time
    x * x
}

#[bucket_cache(bucket = BUCKET)]
fn untouched(x: u64) -> u64 {
    x
}

/// `(metric name, sorted labels)` → counter value, for bucketcache's metrics.
fn counters(snapshot: metrics_util::debugging::Snapshot) -> BTreeMap<(String, Vec<(String, String)>), u64> {
    let mut out = BTreeMap::new();
    for (key, _unit, _description, value) in snapshot.into_vec() {
        let (kind, key) = key.into_parts();
        if !key.name().starts_with("bucketcache_") {
            continue;
        }
        assert_eq!(kind, MetricKind::Counter, "{key:?}");
        let DebugValue::Counter(n) = value else {
            panic!("{key:?} is not a counter")
        };
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        out.insert((key.name().to_owned(), labels), n);
    }
    out
}

#[test]
fn a_known_sequence_of_calls_gives_the_counters_with_their_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test binary");

    assert_eq!(square(3, false), 9); // miss: new arguments; store
    assert_eq!(square(3, false), 9); // hit: memory
    assert_eq!(square(3, false), 9); // hit: memory
    BUCKET.unload_all();
    assert_eq!(square(3, false), 9); // hit: disk
    assert_eq!(square(3, true), 9); // miss: nocache; store
    CLOCK.advance(Duration::from_secs(120));
    assert_eq!(square(3, false), 9); // miss: expired; store

    let got = counters(snapshotter.snapshot());
    let function = bucketcache::stats()
        .function("square")
        .expect("square was called")
        .function;
    assert!(function.ends_with("::square"), "{function}");
    let stats = bucketcache::stats().function("square").expect("square").stats;
    let key = |name: &str, extra: Option<(&str, &str)>| {
        let mut labels = vec![("function".to_owned(), function.to_owned())];
        if let Some((k, v)) = extra {
            labels.push((k.to_owned(), v.to_owned()));
        }
        labels.sort();
        (name.to_owned(), labels)
    };
    let mut expected = BTreeMap::new();
    for (tier, n) in [("memory", 2), ("disk", 1), ("shared", 0)] {
        expected.insert(key("bucketcache_hits_total", Some(("tier", tier))), n);
    }
    for (reason, n) in [
        ("new_arguments", 1),
        ("expired", 1),
        ("code_changed", 0),
        ("corrupt", 0),
        ("other_type", 0),
        ("nocache", 1),
    ] {
        expected.insert(key("bucketcache_misses_total", Some(("reason", reason))), n);
    }
    expected.insert(key("bucketcache_stores_total", None), 3);
    expected.insert(key("bucketcache_store_failures_total", None), 0);
    // Bytes and time saved: the same as the in-process counters (entry sizes and costs vary by machine).
    assert!(
        stats.bytes_written > 0 && stats.time_saved >= Duration::from_millis(6),
        "{stats:?}"
    );
    expected.insert(key("bucketcache_bytes_written_total", None), stats.bytes_written);
    expected.insert(
        key("bucketcache_time_saved_microseconds_total", None),
        u64::try_from(stats.time_saved.as_micros()).expect("fits"),
    );
    assert_eq!(got, expected, "a function never called registers nothing");
    let _ = untouched;
}
