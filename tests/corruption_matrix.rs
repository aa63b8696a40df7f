//! The corruption matrix: for each backend, small and large (1 MiB) entries, damaged in every way a disk, a crash
//! or another program can damage them. Every read is a miss or a clean `Error` (I/O or decode), never a panic and
//! never a wrong value; `contains_key` and `prune_directory` cope too. (`corruption.rs` covers every bit flip and
//! truncation of a small entry; this adds large entries, byte replacements, forged other versions and backends
//! with valid checksums, extensions, and special files in the entry's place.)

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bucketcache::{Backend, BincodeBackend, Bucket, Error, JsonBackend, MessagePackBackend};
use bucketcache_suite::fixtures::Checked;
use bucketcache_suite::forge;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Small {
    id: u32,
    name: String,
    values: Vec<i64>,
}

fn small() -> Small {
    Small {
        id: 7,
        name: "seven".into(),
        values: vec![1, -2, 3],
    }
}

fn large() -> Checked {
    Checked::new(9, 1 << 20)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Matrix<'a, B: Backend, T> {
    bucket: &'a Bucket<B>,
    path: PathBuf,
    good: Vec<u8>,
    value: T,
    cases: usize,
    errors: usize,
}

impl<'a, B: Backend, T> Matrix<'a, B, T>
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static,
{
    fn new(bucket: &'a Bucket<B>, value: T) -> Self {
        bucket.insert("k", &value).expect("insert");
        let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
        let good = std::fs::read(&path).expect("read");
        Matrix {
            bucket,
            path,
            good,
            value,
            cases: 0,
            errors: 0,
        }
    }

    /// Reads the entry (from its file) after the test put something in its place: a miss or a clean error.
    fn check(&mut self, what: &str) {
        self.bucket.unload_all();
        match self.bucket.get::<T>("k") {
            Ok(None) => {}
            Ok(Some(v)) => panic!(
                "{what}: served a value from a damaged file (intact: {})",
                v == self.value
            ),
            Err(Error::Io { .. } | Error::Decode { .. }) => self.errors += 1,
            Err(e) => panic!("{what}: unexpected error kind: {e}"),
        }
        self.bucket.unload_all();
        match self.bucket.contains_key("k") {
            Ok(false) | Err(Error::Io { .. }) => {}
            other => panic!("{what}: contains_key gave {other:?}"),
        }
        self.cases += 1;
    }

    fn file(&mut self, bytes: &[u8], what: &str) {
        std::fs::write(&self.path, bytes).expect("write");
        self.check(what);
    }

    fn intact(&mut self) {
        std::fs::write(&self.path, &self.good).expect("write");
        self.bucket.unload_all();
        assert_eq!(self.bucket.get::<T>("k").expect("get"), Some(self.value.clone()));
    }
}

/// The forged file `forge::entry` builds for this entry's key and payload, with another version or backend id.
fn reforge(good: &[u8], version: u16, backend: &str) -> Vec<u8> {
    let header = bucketcache::entry::parse_header(good).expect("header");
    let payload = &good[good.len() - header.payload_len as usize..];
    forge::entry(version, header.key.as_bytes(), backend, payload)
}

fn matrix<B: Backend, T>(bucket: &Bucket<B>, value: T, exhaustive: bool, rng: &mut Rng) -> (usize, usize)
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static,
{
    let mut m = Matrix::new(bucket, value);
    m.intact();
    let good = m.good.clone();
    let n = good.len();
    let id = bucket.backend().id();

    // Truncations: every length, or the header's edges, the payload's start and a sample.
    let lengths: Vec<usize> = if exhaustive {
        (0..n).collect()
    } else {
        let hdr = forge::HEADER_LEN + 8;
        let mut l: Vec<usize> = (0..=hdr).chain([n / 2, n - 2, n - 1]).collect();
        l.extend((0..48).map(|_| rng.below(n)));
        l
    };
    for len in lengths {
        m.file(&good[..len], &format!("{id}: truncated to {len} of {n}"));
    }
    // Byte replacements: every byte by two other values, or every header byte and a sample of the payload's.
    let positions: Vec<usize> = if exhaustive {
        (0..n).collect()
    } else {
        let hdr = forge::HEADER_LEN + 8;
        let mut p: Vec<usize> = (0..hdr).chain([n - 1]).collect();
        p.extend((0..48).map(|_| hdr + rng.below(n - hdr)));
        p
    };
    for at in positions {
        let mut bad = good.clone();
        for replacement in [good[at].wrapping_add(1), good[at] ^ 0xFF] {
            bad[at] = replacement;
            m.file(&bad, &format!("{id}: byte {at} set to {replacement:#04x}"));
        }
    }
    // Extensions, empty, garbage.
    m.file(&[&good[..], b"\0"].concat(), &format!("{id}: one byte appended"));
    m.file(&[&good[..], &good[..]].concat(), &format!("{id}: doubled"));
    m.file(b"", &format!("{id}: empty"));
    let garbage: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    m.file(&garbage, &format!("{id}: {n} bytes of garbage"));
    let mut magic_then_garbage = garbage.clone();
    magic_then_garbage[..10].copy_from_slice(&good[..10]);
    m.file(
        &magic_then_garbage,
        &format!("{id}: a valid magic and version, then garbage"),
    );
    // Forged files with valid checksums: other format versions, other backends' ids on this payload.
    for version in [0u16, 1, 4, 0x0100, u16::MAX] {
        m.file(&reforge(&good, version, id), &format!("{id}: format version {version}"));
    }
    for other in ["bincode2", "bincode2-fixint", "json", "msgpack", "x"] {
        if other != id {
            m.file(
                &reforge(&good, forge::FORMAT_VERSION, other),
                &format!("{id}: marked as written by {other}"),
            );
        }
    }
    m.intact();
    (m.cases, m.errors)
}

/// The same value written by another backend under this entry's name: a miss.
fn foreign<B: Backend, O: Backend, T>(bucket: &Bucket<B>, other: &Bucket<O>, value: &T) -> usize
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static,
{
    other.insert("k", value).expect("insert");
    let key = other.key_hash("k").expect("hash");
    let theirs = std::fs::read(other.entry_path(&key)).expect("read");
    let mut m = Matrix::new(bucket, value.clone());
    m.file(
        &theirs,
        &format!("{} file read by {}", other.backend().id(), bucket.backend().id()),
    );
    m.cases
}

fn buckets(root: &Path) -> (Bucket, Bucket<JsonBackend>, Bucket<MessagePackBackend>) {
    (
        Bucket::builder(root.join("bincode"))
            .backend(BincodeBackend::new())
            .memory_max_bytes(0)
            .build()
            .expect("bucket"),
        Bucket::builder(root.join("json"))
            .backend(JsonBackend::new())
            .memory_max_bytes(0)
            .build()
            .expect("bucket"),
        Bucket::builder(root.join("msgpack"))
            .backend(MessagePackBackend::new())
            .memory_max_bytes(0)
            .build()
            .expect("bucket"),
    )
}

#[test]
fn every_damage_to_small_and_large_entries_is_a_miss_or_a_clean_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bincode, json, msgpack) = buckets(dir.path());
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut total = 0;
    let mut row = |name: &str, (cases, errors): (usize, usize)| {
        println!("corruption matrix: {name:<22} {cases:>6} cases ({errors} clean errors, the rest misses)");
        total += cases;
    };
    row("bincode small", matrix(&bincode, small(), true, &mut rng));
    row("json small", matrix(&json, small(), true, &mut rng));
    row("msgpack small", matrix(&msgpack, small(), true, &mut rng));
    row("bincode 1 MiB", matrix(&bincode, large(), false, &mut rng));
    row("json 1 MiB", matrix(&json, large(), false, &mut rng));
    row("msgpack 1 MiB", matrix(&msgpack, large(), false, &mut rng));
    let crossed = foreign(&bincode, &json, &large())
        + foreign(&bincode, &msgpack, &large())
        + foreign(&json, &bincode, &large())
        + foreign(&json, &msgpack, &large())
        + foreign(&msgpack, &bincode, &large())
        + foreign(&msgpack, &json, &large());
    row("1 MiB, other backends", (crossed, 0));
    println!("corruption matrix: {total} damaged files read, no panic, no wrong value");
}

/// Runs `f` on a thread and fails if it does not finish in time (a blocked open or an endless read).
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: did not finish in 20 s"))
}

#[test]
fn special_files_in_the_entrys_place_are_misses_or_clean_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let bucket = Bucket::builder(&root).memory_max_bytes(0).build().expect("bucket");
    bucket.insert("other", &small()).expect("insert");
    let other = bucket.entry_path(&bucket.key_hash("other").expect("hash"));
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");

    let probe = |what: &'static str| {
        let root = root.clone();
        within(what, move || {
            let bucket = Bucket::builder(&root).memory_max_bytes(0).build().expect("bucket");
            let got = bucket.get::<Small>("k");
            assert!(
                matches!(got, Ok(None) | Err(Error::Io { .. })),
                "{what}: get gave {got:?}"
            );
            let has = bucket.contains_key("k");
            assert!(
                matches!(has, Ok(false) | Err(Error::Io { .. })),
                "{what}: contains_key gave {has:?}"
            );
            bucket.prune_directory().expect("prune");
        });
        println!("corruption matrix: {what}: a miss or a clean error");
    };

    // A directory: reads fail cleanly, a write cannot replace it, removing it heals the bucket.
    std::fs::create_dir(&path).expect("mkdir");
    probe("a directory where the entry should be");
    assert!(matches!(bucket.insert("k", &small()), Err(Error::Io { .. })));
    assert!(matches!(bucket.remove("k"), Ok(_) | Err(Error::Io { .. })));
    std::fs::remove_dir_all(&path).ok();
    bucket
        .insert("k", &small())
        .expect("insert after the directory is gone");
    assert_eq!(bucket.get::<Small>("k").expect("get"), Some(small()));
    std::fs::remove_file(&path).expect("rm");

    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        // Another key's (valid) entry, linked under this name: its header names the other key.
        symlink(&other, &path).expect("symlink");
        probe("a symlink to another entry");
        let _ = std::fs::remove_file(&path); // prune may have removed it already
                                             // A device that never ends, and a FIFO whose open would block until a writer came.
        symlink("/dev/zero", &path).expect("symlink");
        probe("a symlink to /dev/zero");
        let _ = std::fs::remove_file(&path); // prune may have removed it already
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if made.is_ok_and(|s| s.success()) {
            probe("a FIFO");
            let _ = std::fs::remove_file(&path); // prune may have removed it already
        } else {
            println!("corruption matrix: mkfifo unavailable, FIFO case skipped");
        }
        // A dangling symlink.
        symlink(root.join("nowhere"), &path).expect("symlink");
        probe("a dangling symlink");
        // The next write replaces the link itself.
        bucket.insert("k", &small()).expect("insert over a symlink");
        assert_eq!(bucket.get::<Small>("k").expect("get"), Some(small()));
        assert!(!std::fs::symlink_metadata(&path).expect("stat").file_type().is_symlink());
    }
}
