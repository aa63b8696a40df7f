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
/// bump of `KEY_FORMAT_VERSION` (and say so in the release notes). Regenerated for key format 2 (runs of every
/// fixed-width primitive in sequences).
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
            "30fec04ab239ff5d8825891b2051f12427b38212bf3730d6dda98a8a99341d54",
        ),
        (
            hex(&42u64),
            "2f9afa5b1189b0cc270c7d7fd7e27ae0705d098db7e3999a3b66ccda227d1b81",
        ),
        (
            hex(&(1u32, "two", 3.5f64)),
            "7c3735eefb5ca6a9a64ad4692ba20ab51ce5231437e9631f0f2bab8c6ad357cd",
        ),
        (
            hex(&vec![1u8, 2, 3]),
            "a16b9e570edebb863eaf065281bf5a7933a975f793198c567f815fc0807272fd",
        ),
        (
            hex(&Point { x: -1, y: 2 }),
            "34ac64b83d112b325952ddc7eb99a66ff1be0c529776398ad54c8a4abf472023",
        ),
        (
            hex(&Shape::Circle { r: 1.0 }),
            "7697ac2efe34ebdfc8d63a6c0a8bbffca09a4160ac777aebf9b7fa0879729686",
        ),
        (
            hex(&Shape::Empty),
            "4f8fa877bbdfff4c4daa410db139d9aacb84a106ed3a5ac22036aa93f83cf252",
        ),
        (
            hex(&map),
            "dc36657444d6f3432bdb1a0fb9082517502e033b449195e471b213a7fb48ed04",
        ),
        // Key format 2: runs of every primitive kind.
        (
            hex(&vec![1.5f64, -0.0, f64::NAN]),
            "4a1b7a2b4ebff4e148d52faca3ac88dd381c54885ca9975e818ab8ff82d0716a",
        ),
        (
            hex(&vec![1u16, 2, 3]),
            "38435736e16c68b1a8917254ab9de83d2337ea1c7ee0922eac1effde968314c2",
        ),
        (
            hex(&(vec![-1i64, 2], [1u32, 2], vec![true, false], vec!['a', 'é'])),
            "d1f16b798123310a77688bf6d05637dfa317f6d751c7e36711884d0749d280ae",
        ),
        (
            hex(&vec![Some(1u8), None]),
            "4b958a9420d8d7ac1a03c0df8cd0d3fd29efbf151bddff3bce300f31995119a6",
        ),
        (
            hex(&Some("x")),
            "221f39b4bc90a4157cc025a5784b4726c6a8be47ed7b0b1ecf86c6dc046f824c",
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
