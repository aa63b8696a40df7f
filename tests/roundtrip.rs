//! Values survive a write and a read, per backend, and across `Bucket` instances on one directory.

use std::collections::{BTreeMap, HashMap};

use bucketcache::{Backend, BincodeBackend, Bucket, JsonBackend, MessagePackBackend, MessagePackConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    name: String,
    values: Vec<u64>,
    nested: Option<Box<Report>>,
    tags: BTreeMap<String, i32>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Weighted(f64),
    Named { label: String },
}

fn sample() -> Report {
    Report {
        name: "r".into(),
        values: (0..100).collect(),
        nested: Some(Box::new(Report {
            name: "inner ü".into(),
            values: vec![],
            nested: None,
            tags: BTreeMap::new(),
            kind: Kind::Weighted(0.25),
        })),
        tags: [("a".to_string(), -1), ("b".to_string(), 2)].into_iter().collect(),
        kind: Kind::Named { label: "x".into() },
    }
}

fn round_trip<B: Backend + Clone>(backend: B) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).backend(backend).build().expect("bucket");
    bucket.insert("report", &sample()).expect("insert");
    bucket.insert(&42u32, &"answer").expect("insert");
    bucket.insert(&(1u8, "x"), &vec![1.5f64, -0.0]).expect("insert");
    bucket.insert("unit", &()).expect("insert");
    let map: HashMap<String, u32> = (0..50).map(|i| (i.to_string(), i)).collect();
    bucket.insert("map", &map).expect("insert");

    for pass in ["memory", "disk"] {
        assert_eq!(bucket.get::<Report>("report").expect("get"), Some(sample()), "{pass}");
        assert_eq!(
            bucket.get::<String>(&42u32).expect("get").as_deref(),
            Some("answer"),
            "{pass}"
        );
        assert_eq!(
            bucket.get::<Vec<f64>>(&(1u8, "x")).expect("get"),
            Some(vec![1.5, -0.0]),
            "{pass}"
        );
        assert_eq!(bucket.get::<()>("unit").expect("get"), Some(()), "{pass}");
        assert_eq!(
            bucket.get::<HashMap<String, u32>>("map").expect("get"),
            Some(map.clone()),
            "{pass}"
        );
        assert_eq!(bucket.get::<Report>("absent").expect("get"), None, "{pass}");
        bucket.unload_all();
    }

    // A second bucket on the same directory (as another run would open it) reads the same entries.
    let again = Bucket::builder(dir.path())
        .backend(bucket_backend_clone(&bucket))
        .build()
        .expect("bucket");
    assert_eq!(again.get::<Report>("report").expect("get"), Some(sample()));
    assert!(again.contains_key("map").expect("contains"));
}

fn bucket_backend_clone<B: Backend + Clone, K: bucketcache::KeyMaker>(b: &Bucket<B, K>) -> B {
    b.backend().clone()
}

#[test]
fn bincode_round_trip() {
    round_trip(BincodeBackend::new());
}

#[test]
fn bincode_fixint_round_trip() {
    round_trip(BincodeBackend::with_config(
        bucketcache::BincodeConfig::new().fixed_int_encoding(true),
    ));
}

#[test]
fn json_round_trip() {
    round_trip(JsonBackend::new());
}

#[test]
fn msgpack_round_trip() {
    round_trip(MessagePackBackend::new());
    round_trip(MessagePackBackend::with_config(
        MessagePackConfig::new().struct_map(false),
    ));
}

#[test]
fn overwrite_replaces_and_remove_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("k", &1u32).expect("insert");
    bucket.insert("k", &2u32).expect("insert");
    assert_eq!(bucket.get::<u32>("k").expect("get"), Some(2));
    let other = Bucket::new(dir.path()).expect("bucket");
    assert_eq!(other.get::<u32>("k").expect("get"), Some(2));
    assert!(bucket.remove("k").expect("remove"));
    assert!(!bucket.remove("k").expect("remove"));
    assert_eq!(bucket.get::<u32>("k").expect("get"), None);
    assert!(!bucket.entry_path(&bucket.key_hash("k").expect("hash")).exists());
}

#[test]
fn bucket_is_usable_from_a_static() {
    use std::sync::LazyLock;
    static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
    static SHARED: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    SHARED.insert(&(t, i), &(t * 1000 + i)).expect("insert");
                    assert_eq!(SHARED.get::<u32>(&(t, i)).expect("get"), Some(t * 1000 + i));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
}

#[test]
fn new_creates_missing_parents_and_reports_a_file_in_the_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deep = dir.path().join("a/b/c");
    let bucket = Bucket::new(&deep).expect("bucket");
    assert_eq!(bucket.path(), deep);
    assert!(deep.join("entries-v2").is_dir());

    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let err = Bucket::new(&file).expect_err("a file is in the way");
    assert!(matches!(err, bucketcache::Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("create bucket directory"), "{err}");
}

#[cfg(unix)]
#[test]
fn directories_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("cache");
    let bucket = Bucket::new(&root).expect("bucket");
    bucket.insert("k", &1u8).expect("insert");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&root.join("entries-v2")), 0o700);
    assert_eq!(mode(path.parent().expect("fan-out dir")), 0o700);
    assert_eq!(mode(&path), 0o600);
}
