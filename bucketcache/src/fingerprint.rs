//! Dependency fingerprints: the graph `#[bucketcache::fingerprint]` and `deps(...)` build, walked once per call
//! site into the cached function's code version.
//!
//! Each fingerprinted item has a hidden function beside it (`__add_bucketcache_fingerprint_to_<name>`, written by
//! `bucketcache-macros/src/fingerprint.rs`) holding a `static` [`FpNode`] (the item's name, the hash of its tokens
//! and its data files) and calling the fingerprint functions of its `deps`. [`FpWalk::enter`] admits each node
//! once (by the address of its `static`), so a cycle ends and a shared dependency is visited once. The nodes
//! reached are hashed in a canonical order (sorted), so the digest does not depend on where a cycle was entered.
//!
//! A `#[bucket_cache]` function with `deps` computes its code version once per process, at its first call
//! ([`DepsCode`]): `<code version without deps>:deps:<32 hex digits>`. A function without `deps` keeps the literal
//! code version it always had. Data files are read once per process (a process-wide table keyed by path, shared
//! by every site naming the file); a file that cannot be read is logged at `error` with the function and the path,
//! and every call of that function runs uncached for the life of the process (never a wrong hit).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use tracing::{debug, error};

/// A fingerprinted item: what its hidden fingerprint function's `static` holds.
#[derive(Debug)]
pub struct FpNode {
    /// The item's name as written (`helper`, `Config`, `impl_Config`).
    pub name: &'static str,
    /// 32 hex digits of the blake3 hash of the item's canonical tokens (doc comments left out); for a cached
    /// function, its code version without dependencies; empty for a call site's root.
    pub own: &'static str,
    /// The data files it names (`deps(file = "...")`).
    pub files: &'static [DepFile],
}

/// A `deps(file = "...")` entry.
#[derive(Debug)]
pub struct DepFile {
    /// The path as written, relative to the crate's directory: this, not the absolute path, joins the digest (so a
    /// bucket stays portable between checkouts).
    pub declared: &'static str,
    /// The absolute path, resolved against `CARGO_MANIFEST_DIR` at compile time, read at run time.
    pub path: &'static str,
}

/// A walk over the fingerprint graph: the nodes reached, each once.
#[derive(Default)]
pub struct FpWalk {
    seen: HashSet<usize>,
    nodes: Vec<&'static FpNode>,
    /// The node whose dependency is being visited, and that dependency's path as written there.
    via: Option<(&'static FpNode, &'static str)>,
    /// Each dependency as written, with the nodes at both ends: the wiring, so two same-named items that swap
    /// their bodies change the digest (the set of nodes alone would not).
    edges: BTreeSet<String>,
}

impl FpWalk {
    /// Notes that `parent` is about to visit the dependency it writes as `path` (the next [`enter`](Self::enter)).
    pub fn via(&mut self, parent: &'static FpNode, path: &'static str) {
        self.via = Some((parent, path));
    }

    /// Admits `node`: `true` the first time (the caller then visits its dependencies), `false` after.
    pub fn enter(&mut self, node: &'static FpNode) -> bool {
        if let Some((parent, path)) = self.via.take() {
            self.edges.insert(format!(
                "edge {} {} {path} {} {}",
                parent.name, parent.own, node.name, node.own
            ));
        }
        let fresh = self.seen.insert(std::ptr::from_ref(node) as usize);
        if fresh {
            self.nodes.push(node);
        }
        fresh
    }

    /// The digest of the nodes reached: 32 hex digits of a blake3 hash over their names, own fingerprints and
    /// the contents of their files, then the edges (each dependency as written, with both ends), sorted and
    /// deduplicated.
    ///
    /// # Errors
    /// A data file that cannot be read: a message naming it.
    pub fn digest(&self) -> Result<String, String> {
        let mut parts = BTreeSet::new();
        for node in &self.nodes {
            parts.insert(format!("item {} {}", node.name, node.own));
            for file in node.files {
                let content = file_hash(file)?;
                parts.insert(format!("file {} {content}", file.declared));
            }
        }
        let mut h = blake3::Hasher::new_derive_key("bucketcache 2026-11 dependency fingerprints v1");
        for part in parts.iter().chain(&self.edges) {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Ok(hex(&h.finalize().as_bytes()[..16]))
    }

    /// How many nodes were reached.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// The digest of the fingerprint graph reached from `root` (a hidden fingerprint function): equal for equal
/// tokens and files, different when any item or file reached changes. For tests and debugging.
///
/// # Errors
/// A data file that cannot be read.
pub fn fingerprint_digest(root: fn(&mut FpWalk)) -> Result<String, String> {
    let mut walk = FpWalk::default();
    root(&mut walk);
    walk.digest()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Content hashes of data files, read once per process; redirections set by [`redirect_dep_file`].
struct Files {
    hashes: HashMap<&'static str, Result<String, String>>,
    redirects: HashMap<String, std::path::PathBuf>,
}

static FILES: Mutex<Option<Files>> = Mutex::new(None);

/// Test hook (hidden, no stability promise): read `to` wherever a dependency file resolving to `from` (the absolute
/// path the attribute resolved) is read in this process. Call it before the first call of the functions naming
/// the file: hashes are read once per process. The test suite's child processes use it to edit a data file
/// without touching the checked-in fixture.
pub fn redirect_dep_file(from: impl Into<String>, to: impl Into<std::path::PathBuf>) {
    let mut files = FILES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let files = files.get_or_insert_with(|| Files {
        hashes: HashMap::new(),
        redirects: HashMap::new(),
    });
    files.redirects.insert(from.into(), to.into());
}

fn file_hash(file: &DepFile) -> Result<String, String> {
    let mut files = FILES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let files = files.get_or_insert_with(|| Files {
        hashes: HashMap::new(),
        redirects: HashMap::new(),
    });
    if let Some(known) = files.hashes.get(file.path) {
        return known.clone();
    }
    let read_from = files
        .redirects
        .get(file.path)
        .cloned()
        .unwrap_or_else(|| std::path::PathBuf::from(file.path));
    let result = hash_file(&read_from).map_err(|e| {
        format!(
            "cannot read the dependency file `{}` ({}): {e}",
            file.declared,
            read_from.display()
        )
    });
    files.hashes.insert(file.path, result.clone());
    result
}

/// blake3 of a file's bytes, read through a buffer (a large data file is not held in memory).
fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    // Checked before opening too: opening a FIFO put in the file's place would block (under the files' lock).
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().to_hex().to_string())
}

/// A cached function's code version with its dependencies, computed at its first call (a `static` per site).
pub struct DepsCode {
    /// `Some(code)` (leaked once per site: it lives as long as the `static`), or `None` with the reason a data
    /// file could not be read.
    code: OnceLock<Result<&'static str, String>>,
}

impl Default for DepsCode {
    fn default() -> Self {
        Self::new()
    }
}

impl DepsCode {
    /// Not computed yet.
    #[must_use]
    pub const fn new() -> Self {
        DepsCode { code: OnceLock::new() }
    }

    /// The code version: `<base>:deps:<digest of the graph reached from root>`, computed once; `None` when a data
    /// file cannot be read (logged at `error` the first time, at `debug` on each later call): the call runs
    /// uncached.
    #[inline]
    pub fn get(&self, function: &'static str, base: &'static str, root: fn(&mut FpWalk)) -> Option<&'static str> {
        // The hit path: one check of the initialized state, then the string.
        if let Some(Ok(code)) = self.code.get() {
            return Some(code);
        }
        self.first_or_failed(function, base, root)
    }

    #[cold]
    #[inline(never)]
    fn first_or_failed(
        &self,
        function: &'static str,
        base: &'static str,
        root: fn(&mut FpWalk),
    ) -> Option<&'static str> {
        match self.code.get_or_init(|| compute(function, base, root)) {
            Ok(code) => Some(code),
            Err(e) => {
                debug!(target: "bucketcache", function, error = %e, "dependency file unreadable: running uncached");
                None
            }
        }
    }
}

fn compute(function: &'static str, base: &'static str, root: fn(&mut FpWalk)) -> Result<&'static str, String> {
    let mut walk = FpWalk::default();
    root(&mut walk);
    match walk.digest() {
        Ok(digest) => {
            // Once per call site and process, for a `&'static str` the key and the site digest cache can hold.
            let code: &'static str = Box::leak(format!("{base}:deps:{digest}").into_boxed_str());
            debug!(target: "bucketcache", function, code, items = walk.len(), "dependency fingerprints");
            Ok(code)
        }
        Err(e) => {
            error!(target: "bucketcache", function, error = %e, "a dependency file cannot be read; the function runs uncached in this process");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: FpNode = FpNode {
        name: "a",
        own: "1",
        files: &[],
    };
    static B: FpNode = FpNode {
        name: "b",
        own: "2",
        files: &[],
    };
    static B2: FpNode = FpNode {
        name: "b",
        own: "3",
        files: &[],
    };

    fn a(w: &mut FpWalk) {
        if w.enter(&A) {
            b(w);
        }
    }
    fn b(w: &mut FpWalk) {
        if w.enter(&B) {
            a(w);
        }
    }
    fn a2(w: &mut FpWalk) {
        if w.enter(&A) {
            b2(w);
        }
    }
    fn b2(w: &mut FpWalk) {
        if w.enter(&B2) {
            a2(w);
        }
    }

    #[test]
    fn cycles_end_and_the_order_does_not_count() {
        let from_a = fingerprint_digest(a);
        let from_b = fingerprint_digest(b);
        assert!(from_a.is_ok());
        assert_eq!(from_a, from_b, "the same nodes, entered elsewhere");
        assert_ne!(from_a, fingerprint_digest(a2), "an edit of b");
    }

    static MISSING: FpNode = FpNode {
        name: "m",
        own: "",
        files: &[DepFile {
            declared: "no/such.csv",
            path: "/nonexistent/bucketcache/no/such.csv",
        }],
    };

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        fn m(w: &mut FpWalk) {
            w.enter(&MISSING);
        }
        let e = fingerprint_digest(m).err().unwrap_or_default();
        assert!(e.contains("no/such.csv"), "{e}");
    }
}
