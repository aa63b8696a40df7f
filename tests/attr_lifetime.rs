//! `lifetime = "..."`: each entry expires that long after it is written (on the bucket's clock), whatever the
//! bucket's own lifetime, so functions with different lifetimes share one bucket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket, ManualClock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
/// The bucket's own lifetime is a day; the attribute's wins for its entries.
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .days(1)
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});

static SHORT: AtomicUsize = AtomicUsize::new(0);
static LONG: AtomicUsize = AtomicUsize::new(0);
static DEFAULT: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET, lifetime = "1m 30s")]
fn short(x: u8) -> u8 {
    SHORT.fetch_add(1, Ordering::SeqCst);
    x
}

#[bucket_cache(bucket = BUCKET, lifetime = "2h")]
fn long(x: u8) -> u8 {
    LONG.fetch_add(1, Ordering::SeqCst);
    x
}

#[bucket_cache(bucket = BUCKET)]
fn bucket_default(x: u8) -> u8 {
    DEFAULT.fetch_add(1, Ordering::SeqCst);
    x
}

#[test]
fn per_function_lifetimes_in_one_bucket() {
    let all = || (short(1), long(1), bucket_default(1));
    let counts = || {
        (
            SHORT.load(Ordering::SeqCst),
            LONG.load(Ordering::SeqCst),
            DEFAULT.load(Ordering::SeqCst),
        )
    };
    all();
    all();
    assert_eq!(counts(), (1, 1, 1));

    CLOCK.advance(Duration::from_secs(89));
    all();
    assert_eq!(counts(), (1, 1, 1), "89 s: all alive");

    CLOCK.advance(Duration::from_secs(1));
    all();
    assert_eq!(counts(), (2, 1, 1), "90 s: the 1m 30s entry expired and was rewritten");

    CLOCK.advance(Duration::from_secs(2 * 3600));
    all();
    assert_eq!(
        counts(),
        (3, 2, 1),
        "2 h later: the 2h entry expired too, the bucket's 1 day not yet"
    );

    CLOCK.advance(Duration::from_secs(86_400));
    all();
    assert_eq!(counts(), (4, 3, 2));
}
