//! The fast key of `#[bucket_cache]` (`call/fast.rs`): a function whose hashed arguments are all `ExactKey` (or
//! `&str`, `&[T]`) finds a repeated call's key by the argument values. These tests check that it finds the same
//! key the encoding gives (another bucket, another process), that it never applies to a type whose `PartialEq` is
//! looser than its serialization, and that expiry, `nocache`, removals, `disable` and the counters behave as on
//! the encoding path.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bucketcache::{bucket_cache, Bucket, CachedCallInfo, ExactKey, KeyHash, ManualClock};
use serde::Serialize;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static A: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});
/// A second bucket on the same directory: its own memory tier, its own fast-key slots.
static B: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});
static USE_B: AtomicBool = AtomicBool::new(false);

/// The bucket of `switched`: `A`, or `B` while `USE_B` is set; in the child process, a bucket on the parent's
/// directory.
fn pick() -> &'static Bucket {
    static CHILD: LazyLock<Option<Bucket>> = LazyLock::new(|| {
        std::env::var_os(CHILD_DIR_VAR).map(|d| Bucket::new(std::path::PathBuf::from(d)).expect("child bucket"))
    });
    if let Some(b) = CHILD.as_ref() {
        return b;
    }
    if USE_B.load(Ordering::SeqCst) {
        &B
    } else {
        &A
    }
}

/// Tests share the clock and the switch: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

static RUNS: AtomicU64 = AtomicU64::new(0);

fn runs() -> u64 {
    RUNS.load(Ordering::SeqCst)
}

// ---- a loose `PartialEq` never takes the fast path ----

/// Equal when the ids are equal, whatever the label: `PartialEq` looser than `Serialize`.
#[derive(Clone, Debug, Serialize)]
struct Loose {
    id: u32,
    label: String,
}

impl PartialEq for Loose {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Loose {}
impl Hash for Loose {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id.hash(h);
    }
}

#[bucket_cache(bucket = A)]
fn label_of(x: Loose, n: u8) -> String {
    format!("{}:{n}", x.label)
}

#[test]
fn a_loose_partial_eq_gets_one_value_per_serialization() {
    let _s = serial();
    let a = Loose {
        id: 1,
        label: "a".into(),
    };
    let b = Loose {
        id: 1,
        label: "b".into(),
    };
    assert_eq!(a, b, "the type under test calls these equal");
    for _ in 0..3 {
        assert_eq!(label_of(a.clone(), 7), "a:7");
        assert_eq!(label_of(b.clone(), 7), "b:7");
    }
}

// ---- an opted-in user type ----

#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
struct Point {
    x: i64,
    y: i64,
}
impl ExactKey for Point {}

static SEEN: Mutex<Vec<KeyHash>> = Mutex::new(Vec::new());

fn note_key<R>(info: &CachedCallInfo<'_, R>) {
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push(info.key_hash);
}

#[bucket_cache(bucket = pick(), on_cached = note_key)]
fn norm(p: Point, tag: &str, weights: &[u8]) -> i64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    (p.x.abs() + p.y.abs()) * i64::from(weights.iter().map(|&w| u32::from(w)).sum::<u32>()) + tag.len() as i64
}

#[test]
fn an_exact_key_type_is_served_with_the_key_the_encoding_gives() {
    let _s = serial();
    USE_B.store(false, Ordering::SeqCst);
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let p = Point { x: 3, y: -4 };
    let before = runs();
    assert_eq!(norm(p.clone(), "ab", &[1, 2]), 23);
    assert_eq!(norm(p.clone(), "ab", &[1, 2]), 23);
    assert_eq!(norm(Point { x: 3, y: 4 }, "ab", &[1, 2]), 23);
    assert_eq!(norm(p.clone(), "abc", &[1, 2]), 24);
    assert_eq!(norm(p.clone(), "ab", &[1, 3]), 30);
    assert_eq!(runs() - before, 4, "one run per distinct argument list");
    let fast_key = *SEEN.lock().unwrap_or_else(|e| e.into_inner()).first().expect("a hit");
    // The key of a fast hit names the entry's file, and another bucket (which has never seen these arguments, so
    // encodes them) finds that entry under the same key.
    assert!(A.contains_hash(&fast_key).expect("contains"));
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).clear();
    USE_B.store(true, Ordering::SeqCst);
    assert_eq!(norm(p.clone(), "ab", &[1, 2]), 23);
    USE_B.store(false, Ordering::SeqCst);
    assert_eq!(runs() - before, 4, "bucket B hit A's entry");
    let encoded_key = *SEEN.lock().unwrap_or_else(|e| e.into_inner()).first().expect("a hit");
    assert_eq!(fast_key, encoded_key);
}

// ---- another writer, another process ----

const CHILD_DIR_VAR: &str = "BUCKETCACHE_FAST_HIT_CHILD_DIR";
static WHO: LazyLock<&'static str> = LazyLock::new(|| {
    if std::env::var_os(CHILD_DIR_VAR).is_some() {
        "child"
    } else {
        "parent"
    }
});
static ROUND: AtomicU64 = AtomicU64::new(0);

#[bucket_cache(bucket = pick(), nocache = "refresh", on_cached = note_key)]
fn who(a: u64, b: String, refresh: bool) -> String {
    format!("{}:{}:{a}:{b}", *WHO, ROUND.load(Ordering::SeqCst))
}

/// Runs only as the child of `writes_by_another_bucket_and_another_process_are_seen`: recomputes one key.
#[test]
fn child_writer() {
    if std::env::var_os(CHILD_DIR_VAR).is_none() {
        return;
    }
    assert_eq!(who(1, "x".into(), true), "child:0:1:x");
}

#[test]
fn writes_by_another_bucket_and_another_process_are_seen() {
    let _s = serial();
    USE_B.store(false, Ordering::SeqCst);
    ROUND.store(1, Ordering::SeqCst);
    assert_eq!(who(1, "x".into(), false), "parent:1:1:x");
    ROUND.store(2, Ordering::SeqCst);
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).clear();
    assert_eq!(who(1, "x".into(), false), "parent:1:1:x", "a hit");
    let key = *SEEN.lock().unwrap_or_else(|e| e.into_inner()).first().expect("a hit");
    // Bucket B (same directory) recomputes and writes the entry; A's memory still holds the old value until it
    // is dropped, then A reads B's file under the key its fast path found.
    USE_B.store(true, Ordering::SeqCst);
    assert_eq!(who(1, "x".into(), true), "parent:2:1:x");
    USE_B.store(false, Ordering::SeqCst);
    A.unload_all();
    assert_eq!(who(1, "x".into(), false), "parent:2:1:x");
    // A removal through A (the memory generation changes): recomputed.
    ROUND.store(3, Ordering::SeqCst);
    assert!(A.remove_hash(&key).expect("remove"));
    assert_eq!(who(1, "x".into(), false), "parent:3:1:x");
    // Another process writes the key (it encodes the arguments: a new process has no fast-key slots).
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_writer", "--test-threads=1"])
        .env(CHILD_DIR_VAR, DIR.path())
        .output()
        .expect("child");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    A.unload_all();
    assert_eq!(who(1, "x".into(), false), "child:0:1:x");
}

// ---- expiry, nocache, disable, counters ----

#[bucket_cache(bucket = A, lifetime = "1m", nocache = "refresh")]
fn timed(a: u64, b: &str, refresh: bool) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    a + b.len() as u64
}

#[test]
fn expiry_nocache_and_disable_apply_to_fast_hits() {
    let _s = serial();
    let before = runs();
    assert_eq!(timed(5, "xy", false), 7);
    assert_eq!(timed(5, "xy", false), 7);
    assert_eq!(runs() - before, 1, "a hit");
    CLOCK.advance(Duration::from_secs(61));
    assert_eq!(timed(5, "xy", false), 7);
    assert_eq!(runs() - before, 2, "expired: ran again");
    assert_eq!(timed(5, "xy", false), 7);
    assert_eq!(runs() - before, 2);
    assert_eq!(timed(5, "xy", true), 7);
    assert_eq!(runs() - before, 3, "nocache runs");
    bucketcache::disabled(|| {
        assert_eq!(timed(5, "xy", false), 7);
        assert_eq!(runs() - before, 4, "disabled: runs");
    });
    let hits = |f: &str| bucketcache::stats().function(f).map_or(0, |s| s.stats.hits());
    let h = hits("timed");
    assert_eq!(timed(5, "xy", false), 7);
    assert_eq!(runs() - before, 4, "enabled again: a hit");
    assert_eq!(hits("timed"), h + 1, "the hit is counted");
}

// ---- two functions, same argument types ----

#[bucket_cache(bucket = A)]
fn plus_one(a: u64, b: String) -> u64 {
    a + 1 + b.len() as u64
}

#[bucket_cache(bucket = A)]
fn plus_two(a: u64, b: String) -> u64 {
    a + 2 + b.len() as u64
}

#[test]
fn two_functions_with_the_same_arguments_never_share() {
    let _s = serial();
    for _ in 0..3 {
        assert_eq!(plus_one(1, "x".into()), 3);
        assert_eq!(plus_two(1, "x".into()), 4);
    }
}

// ---- the fast path is taken: a repeated call does not serialize its arguments ----

static SERIALIZED: AtomicU64 = AtomicU64::new(0);

/// Counts its serializations.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Counted(u32);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        s.serialize_u32(self.0)
    }
}
impl ExactKey for Counted {}

/// The same, not opted in.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CountedPlain(u32);

impl Serialize for CountedPlain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        s.serialize_u32(self.0)
    }
}

#[bucket_cache(bucket = A)]
fn counted(x: Counted, y: &str) -> u32 {
    x.0 + y.len() as u32
}

#[bucket_cache(bucket = A)]
fn counted_plain(x: CountedPlain, y: &str) -> u32 {
    x.0 + y.len() as u32
}

#[test]
fn a_repeated_call_of_exact_arguments_is_not_encoded_and_others_are() {
    let _s = serial();
    assert_eq!(counted(Counted(4), "ab"), 6);
    let after_first = SERIALIZED.load(Ordering::SeqCst);
    assert!(after_first > 0, "the first call encodes its key");
    for _ in 0..3 {
        assert_eq!(counted(Counted(4), "ab"), 6);
    }
    assert_eq!(SERIALIZED.load(Ordering::SeqCst), after_first, "hits found by value");
    assert_eq!(counted_plain(CountedPlain(4), "ab"), 6);
    let before = SERIALIZED.load(Ordering::SeqCst);
    assert_eq!(counted_plain(CountedPlain(4), "ab"), 6);
    assert!(
        SERIALIZED.load(Ordering::SeqCst) > before,
        "not `ExactKey`: encoded on every call"
    );
}
