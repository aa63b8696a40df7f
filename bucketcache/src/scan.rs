//! Walking a bucket's directory: every file under `entries-v1/`, what its name says it is, and its header.
//!
//! This is the read-only half of pruning, public so tools (the `bucketcache` command-line tool, a size bound, your
//! own scripts) can inspect a cache without opening a [`Bucket`](crate::Bucket):
//!
//! ```
//! # fn main() -> bucketcache::Result<()> {
//! use bucketcache::scan::{self, FileKind};
//! let dir = tempfile::tempdir().unwrap();
//! let bucket = bucketcache::Bucket::new(dir.path())?;
//! bucket.insert("a", &1u32)?;
//!
//! let mut walk = scan::walk(&scan::entries_dir(dir.path()))?;
//! let mut entries = 0;
//! for file in &mut walk {
//!     let file = file?;
//!     if let FileKind::Entry(key) = file.kind {
//!         let inspected = scan::inspect(&file.path, &key).expect("readable");
//!         assert!(inspected.header.is_ok());
//!         entries += 1;
//!     }
//! }
//! assert_eq!(entries, 1);
//! # Ok(()) }
//! ```
//!
//! The walk lists the fan-out directories first (at most 256, sorted) and then reads one directory at a time, so
//! memory stays small whatever the number of entries, and [`Walk::dirs_done`] / [`Walk::dirs_total`] give a
//! progress measure. Files that vanish during the walk (a concurrent prune or write) are simply not reported.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::entry::{self, Corrupt, EntryHeader};
use crate::error::{Error, Result};
use crate::key::KeyHash;
use crate::store::{self, ENTRIES_DIR, TEMP_PREFIX};

pub use crate::prune::TEMP_MAX_AGE;

/// The entries directory of the bucket in `bucket_dir` (`<bucket_dir>/entries-v1`).
pub fn entries_dir(bucket_dir: &Path) -> PathBuf {
    bucket_dir.join(ENTRIES_DIR)
}

/// What a file's name says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Named by a key hash: an entry file (which may still be corrupt).
    Entry(KeyHash),
    /// A temporary file (`.tmp-<pid>-<random>`): a write in progress, or the leftover of a crashed one.
    Temp,
    /// Anything else; the library never reads, writes or removes such files.
    Other,
}

/// One file found by [`walk`].
#[derive(Debug, Clone)]
pub struct ScannedFile {
    /// The file's path.
    pub path: PathBuf,
    /// The file's name (lossily converted when it is not UTF-8, which makes it [`FileKind::Other`]).
    pub name: String,
    /// What its name says it is.
    pub kind: FileKind,
}

/// An iterator over the files of an entries directory; see [`walk`].
#[derive(Debug)]
pub struct Walk {
    dirs: Vec<PathBuf>,
    next_dir: usize,
    current: Option<fs::ReadDir>,
}

/// Lists every file in the fan-out directories of `entries` (the `entries-v1` directory, see [`entries_dir`]).
///
/// Items are `Err` when a fan-out directory cannot be listed; the walk then goes on with the next one.
///
/// # Errors
/// [`Error::Io`] when `entries` itself cannot be listed (missing, not a directory, no permission).
pub fn walk(entries: &Path) -> Result<Walk> {
    let mut dirs = Vec::new();
    for item in fs::read_dir(entries).map_err(|e| Error::io("list", entries, e))? {
        let item = item.map_err(|e| Error::io("list", entries, e))?;
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(item.path());
        }
    }
    dirs.sort();
    Ok(Walk {
        dirs,
        next_dir: 0,
        current: None,
    })
}

impl Walk {
    /// Number of fan-out directories to walk.
    pub fn dirs_total(&self) -> usize {
        self.dirs.len()
    }

    /// Number of fan-out directories fully or partly walked so far.
    pub fn dirs_done(&self) -> usize {
        self.next_dir
    }
}

impl Iterator for Walk {
    type Item = Result<ScannedFile>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(files) = &mut self.current {
                match files.next() {
                    Some(Ok(file)) => {
                        // Everything is reported, sub-directories included: one named like an entry is then an
                        // entry that cannot be read, which a tool should say.
                        let os_name = file.file_name();
                        let name = os_name.to_string_lossy().into_owned();
                        let kind = match os_name.to_str() {
                            Some(n) => classify_name(n),
                            None => FileKind::Other,
                        };
                        return Some(Ok(ScannedFile {
                            path: file.path(),
                            name,
                            kind,
                        }));
                    }
                    Some(Err(e)) => {
                        let dir = self.dirs[self.next_dir - 1].clone();
                        self.current = None;
                        return Some(Err(Error::io("list", dir, e)));
                    }
                    None => self.current = None,
                }
                continue;
            }
            let dir = self.dirs.get(self.next_dir)?.clone();
            self.next_dir += 1;
            match fs::read_dir(&dir) {
                Ok(files) => self.current = Some(files),
                // Removed meanwhile: nothing to report.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Some(Err(Error::io("list", dir, e))),
            }
        }
    }
}

/// What a file name says a file is.
pub fn classify_name(name: &str) -> FileKind {
    if name.starts_with(TEMP_PREFIX) {
        FileKind::Temp
    } else if let Some(key) = KeyHash::from_hex(name) {
        FileKind::Entry(key)
    } else {
        FileKind::Other
    }
}

/// An entry file's header, read without its payload.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The file's length in bytes.
    pub len: u64,
    /// The header, or why the file is not a valid entry: a bad header, a length that disagrees with the header,
    /// or a header that names another key than the file. The checksum is *not* checked (that needs every byte:
    /// see [`entry::verify`]).
    pub header: std::result::Result<EntryHeader, Corrupt>,
}

/// Reads the header of the entry file at `path`, expected to hold `key`. Reads at most
/// [`entry::MAX_HEADER_LEN`] bytes.
///
/// # Errors
/// The I/O error when the file cannot be opened or read (it vanished, it is a directory, no permission).
pub fn inspect(path: &Path, key: &KeyHash) -> io::Result<Inspected> {
    let (prefix, len) = crate::prune::read_prefix(path)?;
    let header = entry::parse_header(&prefix).and_then(|h| {
        if h.file_len() != len {
            Err(Corrupt::LengthMismatch {
                expected: h.file_len(),
                actual: len,
            })
        } else if h.key != *key {
            Err(Corrupt::KeyMismatch)
        } else {
            Ok(h)
        }
    });
    Ok(Inspected { len, header })
}

/// Whether a temporary file may be removed: the process that is writing it is gone (judged by the pid in its name,
/// on Linux), or it is older than [`TEMP_MAX_AGE`]. This is the rule
/// [`Bucket::prune_directory`](crate::Bucket::prune_directory) applies.
pub fn temp_is_stale(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    store::temp_is_stale(path, name, TEMP_MAX_AGE)
}
