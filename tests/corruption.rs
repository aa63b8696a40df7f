//! Corrupt entry files read as misses (never a panic, never a wrong value) and are replaced by the next write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bucketcache::{Backend, BincodeBackend, Bucket, JsonBackend, MessagePackBackend};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Small {
    id: u32,
    name: String,
    values: Vec<i64>,
}

fn value() -> Small {
    Small {
        id: 7,
        name: "seven".into(),
        values: vec![1, -2, 3],
    }
}

struct Fixture<B: Backend> {
    _dir: tempfile::TempDir,
    bucket: Bucket<B>,
    path: PathBuf,
    good: Vec<u8>,
}

fn fixture<B: Backend>(backend: B) -> Fixture<B> {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).backend(backend).build().expect("bucket");
    bucket.insert("k", &value()).expect("insert");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    let good = std::fs::read(&path).expect("read");
    Fixture {
        _dir: dir,
        bucket,
        path,
        good,
    }
}

impl<B: Backend> Fixture<B> {
    /// Writes `bytes` as the entry file and reads it back from disk: it must be a miss (or the exact value).
    fn read_with(&self, bytes: &[u8], what: &str) -> Option<Small> {
        std::fs::write(&self.path, bytes).expect("write");
        self.bucket.unload_all();
        let got = self
            .bucket
            .get::<Small>("k")
            .unwrap_or_else(|e| panic!("{what}: error {e}"));
        if let Some(v) = &got {
            assert_eq!(v, &value(), "{what}: a wrong value was served");
        }
        got
    }
}

fn every_corruption_is_a_miss<B: Backend>(backend: B) {
    let f = fixture(backend);
    assert_eq!(f.read_with(&f.good.clone(), "intact"), Some(value()));
    for len in 0..f.good.len() {
        assert_eq!(f.read_with(&f.good[..len], &format!("truncated to {len}")), None);
    }
    for i in 0..f.good.len() {
        for bit in 0..8 {
            let mut bad = f.good.clone();
            bad[i] ^= 1 << bit;
            assert_eq!(f.read_with(&bad, &format!("byte {i} bit {bit} flipped")), None);
        }
    }
    let mut longer = f.good.clone();
    longer.extend_from_slice(b"tail");
    assert_eq!(f.read_with(&longer, "extended"), None);
    assert_eq!(f.read_with(b"", "empty"), None);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(f.read_with(&garbage, "garbage"), None);
    let mut other_version = f.good.clone();
    other_version[8] = 4;
    assert_eq!(f.read_with(&other_version, "format version 4"), None);

    // The next write replaces the corrupt file.
    std::fs::write(&f.path, b"junk").expect("write");
    f.bucket.unload_all();
    assert!(!f.bucket.contains_key("k").expect("contains"));
    f.bucket.insert("k", &value()).expect("insert");
    f.bucket.unload_all();
    assert_eq!(f.bucket.get::<Small>("k").expect("get"), Some(value()));
}

#[test]
fn bincode_corruptions_are_misses() {
    every_corruption_is_a_miss(BincodeBackend::new());
}

#[test]
fn json_corruptions_are_misses() {
    every_corruption_is_a_miss(JsonBackend::new());
}

#[test]
fn msgpack_corruptions_are_misses() {
    every_corruption_is_a_miss(MessagePackBackend::new());
}

#[test]
fn an_entry_of_another_backend_is_a_miss_for_each_pair() {
    let json = fixture(JsonBackend::new());
    let msgpack = fixture(MessagePackBackend::new());
    let bincode = fixture(BincodeBackend::new());
    // Same key, same directory layout: each file under the others' names.
    assert_eq!(bincode.read_with(&json.good, "json file read by bincode"), None);
    assert_eq!(bincode.read_with(&msgpack.good, "msgpack file read by bincode"), None);
    assert_eq!(json.read_with(&bincode.good, "bincode file read by json"), None);
    assert_eq!(json.read_with(&msgpack.good, "msgpack file read by json"), None);
    assert_eq!(msgpack.read_with(&bincode.good, "bincode file read by msgpack"), None);
    assert_eq!(msgpack.read_with(&json.good, "json file read by msgpack"), None);
}

#[test]
fn an_entry_renamed_to_another_key_is_a_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("a", &1u32).expect("insert");
    let a = bucket.entry_path(&bucket.key_hash("a").expect("hash"));
    let b = bucket.entry_path(&bucket.key_hash("b").expect("hash"));
    std::fs::create_dir_all(b.parent().expect("parent")).expect("mkdir");
    std::fs::copy(&a, &b).expect("copy");
    assert_eq!(
        bucket.get::<u32>("b").expect("get"),
        None,
        "a valid file under the wrong name is not served"
    );
}

#[test]
fn a_directory_where_the_entry_should_be_is_a_clean_error_or_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    std::fs::create_dir_all(&path).expect("mkdir");
    match bucket.get::<u32>("k") {
        Ok(None) => {}
        Ok(Some(v)) => panic!("served {v} from a directory"),
        Err(e) => assert!(matches!(e, bucketcache::Error::Io { .. }), "{e}"),
    }
    let err = bucket.insert("k", &1u32).expect_err("cannot rename over a directory");
    assert!(err.to_string().contains("rename into place"), "{err}");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_corrupt_entry_is_logged_at_warn() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let f = fixture(BincodeBackend::new());
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(f.read_with(&f.good[..f.good.len() - 3], "truncated"), None);
    });
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert!(log.contains("WARN") && log.contains("corrupt entry"), "{log}");
    assert!(log.contains("truncated or extended"), "{log}");
}
