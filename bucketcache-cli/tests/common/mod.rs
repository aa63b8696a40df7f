//! A cache made through the library, and the binary to run on it.
#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use bucketcache::{BincodeBackend, Bucket, JsonBackend, KeyHash, ManualClock, MessagePackBackend};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The function paths the fixture records, as the attribute would.
pub const F: &str = "my_crate::f";
pub const G: &str = "my_crate::Service::g";

/// A value with named fields, so rendering shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub name: String,
    pub values: Vec<u32>,
    pub note: Option<String>,
}

pub fn report(i: u32) -> Report {
    Report {
        name: format!("report {i}"),
        values: (0..i).collect(),
        note: None,
    }
}

/// The `bucketcache` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bucketcache"))
}

/// Runs the binary with `args` and `--json`, expects `code`, and parses stdout.
pub fn json(args: &[&str], code: i32) -> Value {
    let out = bin()
        .args(args)
        .arg("--json")
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out)))
}

/// A bucket directory with entries from all three backends.
pub struct Cache {
    pub dir: tempfile::TempDir,
    /// JSON entries of `F`: `report(0..3)`.
    pub json: Vec<KeyHash>,
    /// MessagePack entries of `G`: `report(10..12)`.
    pub msgpack: Vec<KeyHash>,
    /// A bincode entry without a function path: `vec![1u64, 2, 3]`.
    pub bincode: KeyHash,
}

impl Cache {
    /// Bytes of the six entry files on disk.
    #[allow(dead_code)] // not every test binary uses it
    pub fn entry_bytes(&self) -> u64 {
        self.json
            .iter()
            .chain(&self.msgpack)
            .chain([&self.bincode])
            .map(|k| std::fs::metadata(self.entry_path(k)).expect("stat").len())
            .sum()
    }

    pub fn new() -> Cache {
        let dir = tempfile::tempdir().expect("tempdir");
        let json_bucket = Bucket::builder(dir.path())
            .backend(JsonBackend::default())
            .build()
            .expect("bucket");
        let json = (0..3u32)
            .map(|i| {
                let key = json_bucket.key_hash(&("f", i)).expect("key");
                json_bucket.insert_hashed(&key, &report(i), Some(F)).expect("insert");
                key
            })
            .collect();
        let mp = Bucket::builder(dir.path())
            .backend(MessagePackBackend::default())
            .build()
            .expect("bucket");
        let msgpack = (10..12u32)
            .map(|i| {
                let key = mp.key_hash(&("g", i)).expect("key");
                mp.insert_hashed(&key, &report(i), Some(G)).expect("insert");
                key
            })
            .collect();
        let bc = Bucket::builder(dir.path())
            .backend(BincodeBackend::default())
            .build()
            .expect("bucket");
        let bincode = bc.key_hash("plain").expect("key");
        bc.insert_hashed(&bincode, &vec![1u64, 2, 3], None).expect("insert");
        Cache {
            dir,
            json,
            msgpack,
            bincode,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    pub fn entry_path(&self, key: &KeyHash) -> PathBuf {
        bucketcache::store::entry_path(&bucketcache::scan::entries_dir(self.path()), key)
    }

    /// Writes `n` JSON entries stamped `ago` in the past with `lifetime` (none: never expire).
    pub fn add_written_ago(&self, tag: &str, n: u32, ago: Duration, lifetime: Option<Duration>) -> Vec<KeyHash> {
        let clock = ManualClock::new(chrono::Utc::now() - chrono::Duration::from_std(ago).expect("duration"));
        let mut builder = Bucket::builder(self.path()).clock(clock);
        if let Some(l) = lifetime {
            builder = builder.lifetime(l);
        }
        let bucket = builder.backend(JsonBackend::default()).build().expect("bucket");
        (0..n)
            .map(|i| {
                let key = bucket.key_hash(&(tag, i)).expect("key");
                bucket.insert_hashed(&key, &i, Some(F)).expect("insert");
                key
            })
            .collect()
    }

    /// Writes `n` entries that expired a minute ago.
    pub fn add_expired(&self, n: u32) -> Vec<KeyHash> {
        self.add_written_ago("expired", n, Duration::from_secs(3600), Some(Duration::from_secs(3540)))
    }

    /// A temporary file left by a dead writer (or, with `live`, one of this test process, which is alive).
    pub fn add_temp(&self, live: bool) -> PathBuf {
        let pid = if live { std::process::id() } else { 999_999_999 };
        let fan = bucketcache::scan::entries_dir(self.path()).join("00");
        std::fs::create_dir_all(&fan).expect("fan dir");
        let path = fan.join(format!(".tmp-{pid}-abcdEFGH"));
        std::fs::write(&path, b"half-written").expect("temp file");
        path
    }

    /// Flips a payload bit: only a checksum check finds it.
    pub fn flip_payload(&self, key: &KeyHash) {
        let path = self.entry_path(key);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&path, bytes).expect("write");
    }

    /// Cuts the file short: a header check finds it.
    pub fn truncate(&self, key: &KeyHash) {
        let path = self.entry_path(key);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("write");
    }

    /// A file named like an entry that holds garbage.
    pub fn add_garbage(&self) -> PathBuf {
        let hex = "ab".repeat(32);
        let fan = bucketcache::scan::entries_dir(self.path()).join("ab");
        std::fs::create_dir_all(&fan).expect("fan dir");
        let path = fan.join(hex);
        std::fs::write(&path, b"not an entry at all").expect("garbage");
        path
    }

    /// Entry files on disk.
    pub fn count_entries(&self) -> usize {
        bucketcache::scan::walk(&bucketcache::scan::entries_dir(self.path()))
            .expect("walk")
            .filter_map(Result::ok)
            .filter(|f| matches!(f.kind, bucketcache::scan::FileKind::Entry(_)))
            .count()
    }
}
