//! Walking a bucket's directory: every file under `entries-v2/`, what its name says it is, and its header.
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
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::entry::{self, Corrupt, EntryHeader};
use crate::error::{Error, Result};
use crate::key::KeyHash;
use crate::store::{self, ENTRIES_DIR, TEMP_PREFIX};

pub use crate::prune::TEMP_MAX_AGE;

/// The entries directory of the bucket in `bucket_dir` (`<bucket_dir>/entries-v2`).
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

/// Lists every file in the fan-out directories of `entries` (the `entries-v2` directory, see [`entries_dir`]).
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

/// Reads the header of the entry file at `path`, expected to hold `key`. Reads the header only
/// (usually a few hundred bytes; at most [`entry::MAX_HEADER_LEN`]).
///
/// # Errors
/// The I/O error when the file cannot be opened or read (it vanished, it is a directory, no permission).
pub fn inspect(path: &Path, key: &KeyHash) -> io::Result<Inspected> {
    let (prefix, len) = read_header_bytes(path)?;
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

/// Bytes read first: the fixed header, a backend id and a function path of usual length.
const FIRST_READ: u64 = entry::HEADER_LEN as u64 + 512;

/// The first bytes of a file, enough for its header, and the file's length. Reads [`FIRST_READ`] bytes, and more
/// (up to [`entry::MAX_HEADER_LEN`]) only when the header's function path is longer, so walking a cache of large
/// entries reads little of each.
pub(crate) fn read_header_bytes(path: &Path) -> io::Result<(Vec<u8>, u64)> {
    // Regular files only: opening a FIFO under an entry's name would block.
    let (mut file, len) = store::open_regular(path)?;
    let mut buf = Vec::with_capacity(FIRST_READ as usize);
    (&mut file).take(FIRST_READ).read_to_end(&mut buf)?;
    if matches!(entry::parse_header(&buf), Err(Corrupt::TooShort { .. })) && (buf.len() as u64) < len {
        let rest = entry::MAX_HEADER_LEN as u64 - buf.len() as u64;
        file.take(rest).read_to_end(&mut buf)?;
    }
    Ok((buf, len))
}

/// Whether a temporary file may be removed: the process that is writing it is gone (judged by the pid in its name,
/// on Linux), or it is older than [`TEMP_MAX_AGE`]. This is the rule
/// [`Bucket::prune_directory`](crate::Bucket::prune_directory) applies.
pub fn temp_is_stale(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    store::temp_is_stale(path, name, TEMP_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_classify() {
        assert_eq!(classify_name(".tmp-1-abc"), FileKind::Temp);
        assert_eq!(classify_name(&"0f".repeat(32)), FileKind::Entry(KeyHash([0x0f; 32])));
        assert_eq!(classify_name("README"), FileKind::Other);
    }

    #[test]
    fn long_function_paths_are_read_in_full() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "", e))?;
        let bucket = crate::Bucket::new(dir.path())?;
        let key = bucket.key_hash("k")?;
        let function = "a::".repeat(400);
        bucket.insert_hashed(&key, &vec![7u8; 100_000], Some(&function))?;
        let inspected = inspect(&bucket.entry_path(&key), &key).map_err(|e| Error::io("inspect", "", e))?;
        let header = inspected.header.map_err(|c| Error::config(c.to_string()))?;
        assert_eq!(header.function.as_deref(), Some(function.as_str()));
        assert_eq!(inspected.len, header.file_len());
        let wrong = inspect(&bucket.entry_path(&key), &KeyHash([1; 32])).map_err(|e| Error::io("inspect", "", e))?;
        assert_eq!(wrong.header.err(), Some(Corrupt::KeyMismatch));
        Ok(())
    }

    #[test]
    fn the_walk_reports_every_file_and_counts_directories() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", "", e))?;
        let bucket = crate::Bucket::new(dir.path())?;
        for i in 0..20u32 {
            bucket.insert(&i, &i)?;
        }
        let entries = entries_dir(dir.path());
        fs::write(entries.join("stray-top-level-file"), b"x").map_err(|e| Error::io("write", "", e))?;
        let mut walk = walk(&entries)?;
        let total = walk.dirs_total();
        let files: Vec<ScannedFile> = walk.by_ref().collect::<Result<_>>()?;
        assert_eq!(files.len(), 20, "top-level files are not walked");
        assert!(files.iter().all(|f| matches!(f.kind, FileKind::Entry(_))));
        assert_eq!(walk.dirs_done(), total);
        Ok(())
    }
}
