//! Keys: complex keys work, distinct keys stay distinct, equal maps agree, and the encoding is stable (goldens).

use std::collections::{BTreeMap, HashMap};

use bucketcache::{default_key_hash, Bucket, DefaultKeyMaker, KeyMaker, StreamingDefaultKeyMaker};
use serde::Serialize;

fn hex<T: Serialize + ?Sized>(k: &T) -> String {
    default_key_hash(k).expect("hash").to_hex()
}

#[derive(Serialize)]
struct Query {
    table: String,
    filters: HashMap<String, Vec<i32>>,
    limit: Option<u32>,
}

#[test]
fn structs_with_hash_maps_are_keys_and_equal_maps_give_one_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let mut a = HashMap::new();
    let mut b = HashMap::new();
    for i in 0..200 {
        a.insert(format!("col{i}"), vec![i, -i]);
    }
    for i in (0..200).rev() {
        b.insert(format!("col{i}"), vec![i, -i]);
    }
    let qa = Query {
        table: "t".into(),
        filters: a,
        limit: Some(10),
    };
    let qb = Query {
        table: "t".into(),
        filters: b,
        limit: Some(10),
    };
    bucket.insert(&qa, &"rows").expect("insert");
    assert_eq!(bucket.get::<String>(&qb).expect("get").as_deref(), Some("rows"));
    let qc = Query { limit: None, ..qb };
    assert_eq!(bucket.get::<String>(&qc).expect("get"), None);
}

#[test]
fn keys_that_the_ancestor_confused_are_distinct() {
    let pairs: Vec<(String, String, &str)> = vec![
        (hex(&(1u32, 2u32)), hex(&vec![1u32, 2u32]), "tuple vs list"),
        (hex(&vec![1u32, 2u32]), hex("[1, 2]"), "list vs its repr"),
        (hex(&b"abc".to_vec()), hex("[97, 98, 99]"), "bytes vs their repr"),
        (hex(&b"abc".to_vec()), hex("abc"), "bytes vs str"),
        (
            hex(&serde_bytes::ByteBuf::from(b"abc".to_vec())),
            hex("abc"),
            "serde bytes vs str",
        ),
        (hex(&1u8), hex(&1u64), "u8 vs u64"),
        (hex(&1i64), hex(&1u64), "signed vs unsigned"),
        (hex(&1.0f64), hex(&1u64), "float vs int"),
        (hex(&Some(1u8)), hex(&1u8), "Some vs bare"),
        (hex(&None::<u8>), hex(&()), "None vs unit"),
        (hex(&("a", "bc")), hex(&("ab", "c")), "string boundaries"),
        (
            hex(&vec![vec![1u8], vec![2u8]]),
            hex(&vec![vec![1u8, 2u8]]),
            "nested byte vectors",
        ),
    ];
    for (a, b, what) in pairs {
        assert_ne!(a, b, "{what}");
    }
}

#[test]
fn a_hash_map_and_a_btree_map_with_equal_entries_give_one_key() {
    let h: HashMap<u32, &str> = [(1, "a"), (2, "b"), (3, "c")].into_iter().collect();
    let b: BTreeMap<u32, &str> = h.clone().into_iter().collect();
    assert_eq!(hex(&h), hex(&b));
}

#[test]
fn both_key_makers_give_the_same_hash() {
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut map = HashMap::new();
    map.insert("big".to_string(), big.clone());
    assert_eq!(
        DefaultKeyMaker.make_key(&(&big, "x", 3u16)).expect("hash"),
        StreamingDefaultKeyMaker.make_key(&(&big, "x", 3u16)).expect("hash")
    );
    assert_eq!(
        DefaultKeyMaker.make_key(&map).expect("hash"),
        StreamingDefaultKeyMaker.make_key(&map).expect("hash")
    );
    let bytes = serde_bytes::ByteBuf::from(big);
    assert_eq!(
        DefaultKeyMaker.make_key(&bytes).expect("hash"),
        StreamingDefaultKeyMaker.make_key(&bytes).expect("hash")
    );
}

/// Golden hashes: if one of these changes, every persisted entry becomes unreachable. Change them only with a
/// bump of `KEY_FORMAT_VERSION` (and say so in the release notes).
#[test]
fn key_hashes_are_stable() {
    #[derive(Serialize)]
    struct Point {
        x: i32,
        y: i32,
    }
    #[derive(Serialize)]
    enum Shape {
        Circle { r: f64 },
        Empty,
    }
    let map: BTreeMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    let goldens: Vec<(String, &str)> = vec![
        (
            hex("hello"),
            "821ab49383f0a7f924fa7d3fba0ae28e127dc5f20f2cc36c4ff45f8b72de7164",
        ),
        (
            hex(&42u64),
            "df79974313604fc13fcb19a49b6a9962c31fbfc862a67cbba004089000879f50",
        ),
        (
            hex(&(1u32, "two", 3.5f64)),
            "ade1bba89f9306518933e00897c5e0ae35cd5cc5cbaa89a758291b5248aecc11",
        ),
        (
            hex(&vec![1u8, 2, 3]),
            "ac32b61c635dac7e9e3cbc9a6870f7949f2ed5e2eca56e4aef6dca6281f3ea45",
        ),
        (
            hex(&Point { x: -1, y: 2 }),
            "2058204f45b09fd78d652d6c1d0191fb67d59b3c4643a403f07fa451426b36bb",
        ),
        (
            hex(&Shape::Circle { r: 1.0 }),
            "caa484079c69d5e4aacad0af9ebbba66b10ece8a1e664b7655175d424d4ec57f",
        ),
        (
            hex(&Shape::Empty),
            "5fccb03644ed9e150c7de02496ee2d777db983efc82342c38efcaac6e6b269ce",
        ),
        (
            hex(&map),
            "57dabcdf7d97ffbbb951df7ee5238681a391b2354d05785551920c7a11dcf9e1",
        ),
        (
            hex(&Some("x")),
            "05bc33f9b32ff80c6b69735a272bbd5134041617ef0bda1071b19057ed64192a",
        ),
    ];
    let mut failures = Vec::new();
    for (got, want) in &goldens {
        if got != want {
            failures.push(format!("{want}: got {got}"));
        }
    }
    assert!(failures.is_empty(), "key encoding changed:\n{}", failures.join("\n"));
}
