//! Property tests: round trips per backend, key determinism, and key sensitivity.

use std::collections::{BTreeMap, HashMap};

use bucketcache::{default_key_hash, Backend, BincodeBackend, Bucket, DefaultKeyMaker, JsonBackend, KeyMaker};
use bucketcache::{MessagePackBackend, StreamingDefaultKeyMaker};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

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
        round_trips(&Bucket::builder(dir.path().join("b")).backend(BincodeBackend::new()).build().expect("bucket"), &key, &value)?;
        round_trips(&Bucket::builder(dir.path().join("j")).backend(JsonBackend::new()).build().expect("bucket"), &key, &value)?;
        round_trips(&Bucket::builder(dir.path().join("m")).backend(MessagePackBackend::new()).build().expect("bucket"), &key, &value)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn equal_values_give_equal_keys_with_both_key_makers(value in record()) {
        let copy = value.clone();
        let a = DefaultKeyMaker.make_key(&value).expect("hash");
        prop_assert_eq!(a, DefaultKeyMaker.make_key(&copy).expect("hash"));
        prop_assert_eq!(a, StreamingDefaultKeyMaker.make_key(&copy).expect("hash"));
    }

    #[test]
    fn map_insertion_order_never_changes_the_key(entries in prop::collection::vec((".{0,6}", any::<i64>()), 0..30)) {
        let forward: HashMap<String, i64> = entries.iter().cloned().collect();
        let backward: HashMap<String, i64> = entries.iter().rev().cloned().collect::<BTreeMap<_, _>>().into_iter().collect();
        // Same final contents (later duplicates win in both), different insertion histories.
        let canonical: BTreeMap<String, i64> = forward.clone().into_iter().collect();
        let rebuilt: HashMap<String, i64> = canonical.clone().into_iter().rev().collect();
        prop_assert_eq!(default_key_hash(&forward).expect("hash"), default_key_hash(&rebuilt).expect("hash"));
        prop_assert_eq!(default_key_hash(&forward).expect("hash"), default_key_hash(&canonical).expect("hash"));
        drop(backward);
    }

    #[test]
    fn changing_any_field_changes_the_key(value in record(), delta in 1u64..u64::MAX, extra in any::<u8>()) {
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
        let mut v = value;
        v.note = match v.note { Some(_) => None, None => Some(String::new()) };
        prop_assert_ne!(base, default_key_hash(&v).expect("hash"));
    }
}
