//! Property tests: round trips per backend, key determinism, and key sensitivity.
//!
//! Every case is measured: its peak heap use (a counting global allocator) must stay within
//! max(64 x the value's JSON size, 1 MiB) + 64 KiB (as one read in `tests/hostile_files.rs`), and it must finish
//! within [`CASE_TIME_LIMIT`] (generous: a hang, not a slow machine, fails it). Cases per property: 64 round
//! trips (three backends each), 256 for each key property.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bucketcache::{default_key_hash, Backend, BincodeBackend, Bucket, DefaultKeyMaker, JsonBackend, KeyMaker};
use bucketcache::{MessagePackBackend, StreamingDefaultKeyMaker};
use peak_alloc::PeakAlloc;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The allocator's counters are process-wide: measured work runs one case at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The longest one case may take (debug build, three backends, real files).
const CASE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most one case may allocate for a value of `len` bytes (its JSON encoding, the largest of the backends').
fn alloc_bound(len: usize) -> usize {
    (64 * len).max(1 << 20) + (64 << 10)
}

/// Runs `work` alone and checks its peak heap use and time against the bounds for a `value`.
fn measured(value: &impl Serialize, work: impl FnOnce() -> Result<(), TestCaseError>) -> Result<(), TestCaseError> {
    let len = serde_json::to_vec(value).expect("json").len();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let started = Instant::now();
    let result = work();
    let elapsed = started.elapsed();
    let peak = ALLOC.peak_usage().saturating_sub(before);
    result?;
    prop_assert!(
        peak <= alloc_bound(len),
        "a case on a {len}-byte value allocated {peak} bytes (bound {})",
        alloc_bound(len)
    );
    prop_assert!(
        elapsed <= CASE_TIME_LIMIT,
        "a case on a {len}-byte value took {elapsed:?}"
    );
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    scores: Vec<i32>,
    tags: BTreeMap<String, u16>,
    note: Option<String>,
    bytes: Vec<u8>,
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        ".{0,40}",
        prop::collection::vec(any::<i32>(), 0..40),
        prop::collection::btree_map(".{0,8}", any::<u16>(), 0..8),
        prop::option::of(".{0,20}"),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(id, name, scores, tags, note, bytes)| Record {
            id,
            name,
            scores,
            tags,
            note,
            bytes,
        })
}

fn round_trips<B: Backend>(bucket: &Bucket<B>, key: &(u64, String), value: &Record) -> Result<(), TestCaseError> {
    bucket
        .insert(key, value)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let from_memory = bucket
        .get::<Record>(key)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(from_memory.as_ref(), Some(value));
    bucket.unload_key(key);
    let from_disk = bucket
        .get::<Record>(key)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(from_disk.as_ref(), Some(value));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn values_round_trip_in_every_backend(key in (any::<u64>(), ".{0,16}"), value in record()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let bincode = Bucket::builder(dir.path().join("b")).backend(BincodeBackend::new()).build().expect("bucket");
        let json = Bucket::builder(dir.path().join("j")).backend(JsonBackend::new()).build().expect("bucket");
        let msgpack = Bucket::builder(dir.path().join("m")).backend(MessagePackBackend::new()).build().expect("bucket");
        measured(&value, || {
            round_trips(&bincode, &key, &value)?;
            round_trips(&json, &key, &value)?;
            round_trips(&msgpack, &key, &value)
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn equal_values_give_equal_keys_with_both_key_makers(value in record()) {
        let copy = value.clone();
        measured(&value, || {
            let a = DefaultKeyMaker.make_key(&value).expect("hash");
            prop_assert_eq!(a, DefaultKeyMaker.make_key(&copy).expect("hash"));
            prop_assert_eq!(a, StreamingDefaultKeyMaker.make_key(&copy).expect("hash"));
            Ok(())
        })?;
    }

    #[test]
    fn map_insertion_order_never_changes_the_key(entries in prop::collection::vec((".{0,6}", any::<i64>()), 0..30)) {
        let forward: HashMap<String, i64> = entries.iter().cloned().collect();
        let backward: HashMap<String, i64> = entries.iter().rev().cloned().collect::<BTreeMap<_, _>>().into_iter().collect();
        // Same final contents (later duplicates win in both), different insertion histories.
        let canonical: BTreeMap<String, i64> = forward.clone().into_iter().collect();
        let rebuilt: HashMap<String, i64> = canonical.clone().into_iter().rev().collect();
        measured(&forward, || {
            prop_assert_eq!(default_key_hash(&forward).expect("hash"), default_key_hash(&rebuilt).expect("hash"));
            prop_assert_eq!(default_key_hash(&forward).expect("hash"), default_key_hash(&canonical).expect("hash"));
            Ok(())
        })?;
        drop(backward);
    }

    #[test]
    fn changing_any_field_changes_the_key(value in record(), delta in 1u64..u64::MAX, extra in any::<u8>()) {
        measured(&value, || {
            let base = default_key_hash(&value).expect("hash");
            let mut v = value.clone();
            v.id = v.id.wrapping_add(delta);
            prop_assert_ne!(base, default_key_hash(&v).expect("hash"));
            let mut v = value.clone();
            v.bytes.push(extra);
            prop_assert_ne!(base, default_key_hash(&v).expect("hash"));
            let mut v = value.clone();
            v.name.push('x');
            prop_assert_ne!(base, default_key_hash(&v).expect("hash"));
            let mut v = value.clone();
            v.note = match v.note { Some(_) => None, None => Some(String::new()) };
            prop_assert_ne!(base, default_key_hash(&v).expect("hash"));
            Ok(())
        })?;
    }
}
