//! What one attribute call observes: the reason of a miss, the counters, and what a store records beyond the
//! value (its cost, the code-independent call hash and the code version).
//!
//! **Hit path**: one or two relaxed `fetch_add`s on the function's counters and as many on the bucket's; nothing
//! else. Everything below runs on the miss path only.
//!
//! **Miss reasons.** The bucket notes, per thread, why a lookup of a key found nothing usable ([`note`]: expired,
//! corrupt or unreadable; a decode failure is "other type"); the call takes the note for its own key. When
//! nothing was noted (no entry), the miss is "new arguments" unless it is "code changed": each bucket keeps, per
//! function, a small record of the code versions that stored entries (`functions-v1/<32 hex of the function
//! path's blake3>`, one full code version string per line, rewritten through a temporary file and a rename when
//! this process first stores under a version the record does not list). On a miss with no entry, the call
//! computes the key its arguments would have under each other recorded version (the site digest with that code
//! string, the same argument values) and asks whether an entry exists: if one does, the code changed. The record
//! is read once per process, bucket and function, and only on a miss. Two processes adding versions at once may
//! lose one of them: a later miss then says "new arguments" where "code changed" was true; nothing else depends on
//! the record.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::ser::{Serialize, SerializeTuple, Serializer};
use tracing::debug;

use crate::stats::{Counters, MissReason};
use crate::{Backend, Bucket, Hit, KeyHash, KeyMaker};

/// The directory of the per-function code-version records.
pub(crate) const FUNCTIONS_DIR: &str = "functions-v1";
/// The largest record read (a record past this is ignored: "code changed" is then not detected).
const MAX_RECORD_BYTES: u64 = 256 * 1024;

thread_local! {
    static NOTED: Cell<Option<(KeyHash, MissReason)>> = const { Cell::new(None) };
}

/// Notes why a lookup of `key` on this thread found nothing usable (called by the bucket on its miss paths).
pub(crate) fn note(key: &KeyHash, reason: MissReason) {
    let _ = NOTED.try_with(|n| n.set(Some((*key, reason))));
}

/// The reason noted for `key` on this thread, if any (cleared).
pub(crate) fn take_noted(key: &KeyHash) -> Option<MissReason> {
    NOTED
        .try_with(|n| match n.take() {
            Some((k, r)) if k == *key => Some(r),
            _ => None,
        })
        .ok()
        .flatten()
}

/// The first 16 bytes of the code version string's blake3: what an entry header records.
pub(crate) fn code_digest(code: &str) -> [u8; 16] {
    let h = blake3::hash(code.as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&h.as_bytes()[..16]);
    out
}

/// Serializes as a byte string.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// The attribute key of a call under another code version: as `CallKey`, with the site digest computed from
/// `code`.
pub(crate) struct KeyUnder<'a, A> {
    pub(crate) version: u32,
    pub(crate) site: [u8; 32],
    pub(crate) args: &'a A,
}

impl<A: Serialize> Serialize for KeyUnder<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.version)?;
        t.serialize_element(&Bytes(&self.site))?;
        t.serialize_element(self.args)?;
        t.end()
    }
}

/// What the code-independent call hash is made of: the function's path, its type arguments' names and the
/// argument values (no code version, no return shape).
pub(crate) struct CallIdentity<'a, A> {
    pub(crate) function: &'a str,
    pub(crate) types: &'a [&'static str],
    pub(crate) args: &'a A,
}

impl<A: Serialize> Serialize for CallIdentity<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(4)?;
        t.serialize_element("bucketcache call v1")?;
        t.serialize_element(self.function)?;
        t.serialize_element(self.types)?;
        t.serialize_element(self.args)?;
        t.end()
    }
}

/// A call's observations, kept in `Call`: small, since every call (a hit too) builds and moves one.
#[derive(Debug, Default)]
pub struct Observe {
    /// The function's counters (`None` before the attribute sets them).
    pub(crate) counters: Option<&'static Counters>,
    /// The code version string.
    pub(crate) code: Option<&'static str>,
    /// The reason of this call's first miss: 0 none, else [`MissReason::ALL`]'s index + 1.
    reason: AtomicU8,
    /// Set when the body begins to run (miss path only).
    pub(crate) run: OnceLock<Box<RunStart>>,
}

/// What a call knows when its body begins to run.
#[derive(Debug)]
pub(crate) struct RunStart {
    /// The code-independent call hash (`None` when the arguments could not be hashed).
    pub(crate) call_hash: Option<KeyHash>,
}

impl Observe {
    /// Counts a hit for the function and the bucket.
    #[inline]
    pub(crate) fn hit<B: Backend, K: KeyMaker, V>(&self, bucket: &Bucket<B, K>, hit: &Hit<V>) {
        if let Some(c) = self.counters {
            c.hit(hit.source, hit.cost);
        }
        bucket.counters.hit(hit.source, hit.cost);
    }

    /// Notes the reason of a miss. The first one noted is kept: the call's first lookup saw the entry as it was
    /// (a lookup that finds an expired entry removes it, so the next lookup of the same call finds none).
    pub(crate) fn note(&self, reason: MissReason) {
        let code = MissReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| i as u8 + 1);
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The noted reason.
    pub(crate) fn reason(&self) -> Option<MissReason> {
        match self.reason.load(Ordering::Relaxed) {
            0 => None,
            n => MissReason::ALL.get(usize::from(n) - 1).copied(),
        }
    }

    /// Counts a miss for the function and the bucket.
    pub(crate) fn count_miss<B: Backend, K: KeyMaker>(&self, bucket: &Bucket<B, K>, reason: MissReason) {
        if let Some(c) = self.counters {
            c.miss(reason);
        }
        bucket.counters.miss(reason);
    }

    /// Counts a store of `bytes` or a failed one.
    pub(crate) fn count_store<B: Backend, K: KeyMaker>(&self, bucket: &Bucket<B, K>, bytes: Option<u64>) {
        match bytes {
            Some(b) => {
                if let Some(c) = self.counters {
                    c.stored(b);
                }
                bucket.counters.stored(b);
            }
            None => {
                if let Some(c) = self.counters {
                    c.store_failed();
                }
                bucket.counters.store_failed();
            }
        }
    }
}

/// The code versions recorded per (bucket directory, function): `None` until read.
type Records = HashMap<(PathBuf, &'static str), HashSet<String>>;

static RECORDS: Mutex<Option<Records>> = Mutex::new(None);

fn record_name(function: &str) -> String {
    let h = blake3::hash(function.as_bytes());
    KeyHash(*h.as_bytes()).to_hex()[..32].to_owned()
}

/// Reads the record of `function` in `bucket` (an absent or unreadable record is empty).
fn read_record<B: Backend, K: KeyMaker>(bucket: &Bucket<B, K>, function: &str) -> HashSet<String> {
    let read = || -> std::io::Result<String> {
        let dir = bucket.entries.root().sub(FUNCTIONS_DIR)?;
        let (file, info) = dir.open_read(&record_name(function))?;
        if info.len > MAX_RECORD_BYTES {
            return Err(std::io::Error::other("record too large"));
        }
        let mut text = String::new();
        file.take(MAX_RECORD_BYTES).read_to_string(&mut text)?;
        Ok(text)
    };
    match read() {
        Ok(text) => text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        Err(_) => HashSet::new(),
    }
}

/// Writes the record of `function` (through a temporary file and a rename in `functions-v1/`).
fn write_record<B: Backend, K: KeyMaker>(
    bucket: &Bucket<B, K>,
    function: &str,
    versions: &HashSet<String>,
) -> std::io::Result<()> {
    let dir = bucket.entries.root().sub_or_create(FUNCTIONS_DIR)?;
    let name = record_name(function);
    let tmp = format!(".tmp-{}-{name}", std::process::id());
    let mut sorted: Vec<&String> = versions.iter().collect();
    sorted.sort();
    let mut text = String::new();
    for v in sorted {
        text.push_str(v);
        text.push('\n');
    }
    let _ = dir.remove(&tmp);
    let mut f = dir.create_new(&tmp)?;
    let written = f.write_all(text.as_bytes());
    drop(f);
    match written.and_then(|()| dir.rename(&tmp, &name)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = dir.remove(&tmp);
            Err(e)
        }
    }
}

/// The code versions other than `code` recorded for `function` in `bucket`, and whether `code` is recorded.
pub(crate) fn other_versions<B: Backend, K: KeyMaker>(
    bucket: &Bucket<B, K>,
    function: &'static str,
    code: &str,
) -> (Vec<String>, bool) {
    let Ok(mut guard) = RECORDS.lock() else {
        return (Vec::new(), true);
    };
    let records = guard.get_or_insert_with(HashMap::new);
    let set = records
        .entry((bucket.root.clone(), function))
        .or_insert_with(|| read_record(bucket, function));
    let others = set.iter().filter(|v| v.as_str() != code).cloned().collect();
    (others, set.contains(code))
}

/// Adds `code` to the record of `function` in `bucket` (a failure is logged at `debug`: only miss reasons depend
/// on it).
pub(crate) fn record_version<B: Backend, K: KeyMaker>(bucket: &Bucket<B, K>, function: &'static str, code: &str) {
    if code.contains('\n') {
        return;
    }
    let Ok(mut guard) = RECORDS.lock() else {
        return;
    };
    let records = guard.get_or_insert_with(HashMap::new);
    let set = records
        .entry((bucket.root.clone(), function))
        .or_insert_with(|| read_record(bucket, function));
    if set.contains(code) {
        return;
    }
    // Another process may have added versions since this one read the record.
    set.extend(read_record(bucket, function));
    set.insert(code.to_owned());
    if let Err(e) = write_record(bucket, function, set) {
        debug!(target: "bucketcache", function, error = %e, "cannot record the code version (miss reasons only)");
    }
}
