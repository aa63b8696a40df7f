//! Every miss has a reason, counted per function (`bucketcache::stats()`) and per bucket (`Bucket::stats()`):
//! each reason is produced here on purpose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bucketcache::__private::{self as p, Arg, Args, Call, CallKey, FnStats, ProbeAll as _, Step};
use bucketcache::{bucket_cache, Bucket, CachedCallInfo, KeyHash, ManualClock, MissCounts, MissReason};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});
static CALLS: AtomicU64 = AtomicU64::new(0);
/// The key hash of the last hit (from `on_cached`).
static LAST_KEY: Mutex<Option<KeyHash>> = Mutex::new(None);
/// The tests share the clock and `unload_all`: they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn remember<R>(info: &CachedCallInfo<'_, R>) {
    *LAST_KEY.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.key_hash);
}

fn last_key() -> KeyHash {
    LAST_KEY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .expect("a hit was seen")
}

#[bucket_cache(bucket = BUCKET, lifetime = "1h", nocache = "refresh", on_cached = remember)]
fn numbers(n: u64, refresh: bool) -> Vec<u64> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    vec![n; 4]
}

fn misses(function: &str) -> MissCounts {
    bucketcache::stats()
        .function(function)
        .map(|f| f.stats.misses)
        .unwrap_or_default()
}

/// The one miss reason counted for `numbers` while `f` runs (and that exactly one miss happened).
fn reason_of(f: impl FnOnce()) -> MissReason {
    let before = misses("numbers");
    let bucket_before = BUCKET.stats().calls.misses;
    f();
    let after = misses("numbers");
    let bucket_after = BUCKET.stats().calls.misses;
    assert_eq!(after.total(), before.total() + 1, "one miss");
    assert_eq!(
        bucket_after.total(),
        bucket_before.total() + 1,
        "one miss in the bucket's counters too"
    );
    let reason = MissReason::ALL
        .into_iter()
        .find(|r| after.get(*r) > before.get(*r))
        .expect("a reason counted");
    assert_eq!(bucket_after.get(reason), bucket_before.get(reason) + 1);
    reason
}

fn entry_file(key: &KeyHash) -> std::path::PathBuf {
    let hex = key.to_hex();
    DIR.path().join("entries-v2").join(&hex[..2]).join(&hex)
}

#[test]
fn new_arguments_expired_nocache_corrupt_and_other_type() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(reason_of(|| drop(numbers(1, false))), MissReason::NewArguments);
    let hits = bucketcache::stats().function("numbers").expect("row").stats.hits();
    assert_eq!(numbers(1, false), vec![1; 4]);
    assert_eq!(
        bucketcache::stats().function("numbers").expect("row").stats.hits(),
        hits + 1
    );
    let key = last_key();

    assert_eq!(reason_of(|| drop(numbers(1, true))), MissReason::NoCache);

    CLOCK.advance(Duration::from_secs(2 * 3600));
    assert_eq!(reason_of(|| drop(numbers(1, false))), MissReason::Expired);

    // Damage the entry's payload (the file's last byte), from a cold memory tier.
    BUCKET.unload_all();
    let path = entry_file(&key);
    let mut bytes = std::fs::read(&path).expect("entry file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("damage");
    assert_eq!(reason_of(|| drop(numbers(1, false))), MissReason::Corrupt);

    // A valid entry of another type under the key (a `bool` where a `Vec<u64>` is expected).
    BUCKET.insert_hashed(&key, &true, None).expect("insert");
    BUCKET.unload_all();
    assert_eq!(reason_of(|| drop(numbers(1, false))), MissReason::OtherType);
    assert_eq!(numbers(1, false), vec![1; 4], "replaced: a hit again");
}

/// The function `code_changes` below as an older build (code version `OLD`) would have called and stored it: the
/// same path, return shape and argument, through the attribute's own machinery.
const OLD: &str = "000000000000:version:old";

fn call_as_old_build(n: u64) {
    static OLD_STATS: FnStats = FnStats::new();
    let function = concat!(module_path!(), "::code_changes");
    let shape = (&p::Probe::<u64>::new()).shape();
    let key = CallKey {
        function,
        code: OLD,
        mode: p::mode_of::<u64, _>(&shape),
        shape: p::shape_of::<u64, _>(&shape),
        types: &[],
        args: Args(Arg {
            value: p::key_arg(&n),
            next: p::End,
        }),
    };
    let call = Call::new(Some(&*BUCKET), function, None, &key).observe(&OLD_STATS, OLD);
    match call.begin::<u64, _>(shape, false) {
        Step::Hit(_) => panic!("the old build's entry should not exist yet"),
        Step::Run(guard) => {
            call.run_begins(&key);
            call.store::<u64, _>(shape, &(n + 1000));
            drop(guard);
        }
    }
}

#[bucket_cache(bucket = BUCKET, version = "new")]
fn code_changes(n: u64) -> u64 {
    n + 1
}

#[test]
fn an_entry_of_an_older_code_version_for_the_same_arguments_is_code_changed() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    call_as_old_build(5);
    // (The old build's calls registered counters under the same path: the bucket's counters are read here.)
    let miss = |n: u64| {
        let before = BUCKET.stats().calls.misses;
        assert_eq!(code_changes(n), n + 1, "never the old build's value");
        let after = BUCKET.stats().calls.misses;
        assert_eq!(after.total(), before.total() + 1);
        MissReason::ALL
            .into_iter()
            .find(|r| after.get(*r) > before.get(*r))
            .expect("a reason")
    };
    assert_eq!(miss(5), MissReason::CodeChanged, "the old build stored these arguments");
    assert_eq!(miss(6), MissReason::NewArguments, "the old build never saw these");
}
