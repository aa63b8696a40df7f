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
//!
//! # Safety against planted files
//!
//! The walk never follows a link: the entries directory and each fan-out directory (only names of two lowercase
//! hex digits) are opened with `O_NOFOLLOW` and must be directories owned by the current user; a link or a foreign
//! directory is reported as an `Err` item (and logged at `warn`) and not entered. Each [`ScannedFile`] keeps the
//! handle of the directory it was found in: [`ScannedFile::inspect`], [`ScannedFile::read`] and
//! [`ScannedFile::remove`] act on that handle, never on a path resolved again, so a directory swapped for a link
//! after the listing cannot redirect them. Reads open with `O_NOFOLLOW | O_NONBLOCK`, accept regular files only,
//! and are bounded ([`ScannedFile::read`] takes the largest size to read, see
//! [`DEFAULT_MAX_ENTRY_BYTES`], and refuses sparse files).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::dirfd::{self, Dir};
use crate::entry::{self, Corrupt, EntryHeader};
use crate::error::{Error, Result};
use crate::key::KeyHash;
use crate::store::{self, ENTRIES_DIR};

pub use crate::prune::TEMP_MAX_AGE;
pub use crate::store::DEFAULT_MAX_ENTRY_BYTES;

/// The entries directory of the bucket in `bucket_dir` (`<bucket_dir>/entries-v2`).
pub fn entries_dir(bucket_dir: &Path) -> PathBuf {
    bucket_dir.join(ENTRIES_DIR)
}

/// What a file's name says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Named by a key hash (64 lowercase hex digits): an entry file (which may still be corrupt).
    Entry(KeyHash),
    /// A temporary file (`.tmp-<pid>-<random>`, exactly): a write in progress, or the leftover of a crashed one.
    Temp,
    /// Anything else; the library never reads, writes or removes such files.
    Other,
}

/// One file found by [`walk`], with the handle of the directory it was found in.
#[derive(Debug, Clone)]
pub struct ScannedFile {
    /// The file's path (for display: the methods below never resolve it again).
    pub path: PathBuf,
    /// The file's name (lossily converted when it is not UTF-8, which makes it [`FileKind::Other`]).
    pub name: String,
    /// What its name says it is.
    pub kind: FileKind,
    dir: Arc<Dir>,
}

impl ScannedFile {
    /// The file's length as `lstat` gives it (a link's own length; 0 when it vanished).
    pub fn len(&self) -> u64 {
        self.dir.stat(&self.name).map(|i| i.len).unwrap_or(0)
    }

    /// Whether [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the header of this entry file, expected to hold `key` (see [`inspect`]).
    ///
    /// # Errors
    /// The I/O error when the file cannot be opened or read: it vanished, it is a link, a directory, a FIFO or
    /// another non-regular file, or no permission.
    pub fn inspect(&self, key: &KeyHash) -> io::Result<Inspected> {
        let (mut file, info) = self.dir.open_read(&self.name)?;
        inspected(&mut file, info.len, key)
    }

    /// Reads the whole file, for checking its checksum. Only a regular file is read, never through a link, never
    /// blocking; a file longer than `max_bytes` or sparse (most of its length not on disk) is refused with an
    /// error of kind [`io::ErrorKind::InvalidData`] before anything is allocated for it.
    ///
    /// # Errors
    /// As [`inspect`](Self::inspect), plus the refusals above.
    pub fn read(&self, max_bytes: u64) -> io::Result<Vec<u8>> {
        let (mut file, info) = self.dir.open_read(&self.name)?;
        if let Some(why) = store::refuse_reason(&info, max_bytes) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}` not read: {why}", self.path.display()),
            ));
        }
        store::read_bounded(&mut file, &info)
    }

    /// Whether this temporary file may be removed (see [`temp_is_stale`]).
    pub fn is_stale_temp(&self) -> bool {
        self.kind == FileKind::Temp
            && store::temp_is_stale(self.dir.stat(&self.name).ok().as_ref(), &self.name, TEMP_MAX_AGE)
    }

    /// Removes the file, through the handle of the directory it was found in (a link is removed itself, never its
    /// target). `Ok(false)` when it was already gone.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] for a file whose name is not one the bucket writes ([`FileKind::Other`]):
    /// those are never removed; otherwise the I/O error of the removal.
    pub fn remove(&self) -> io::Result<bool> {
        if self.kind == FileKind::Other {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` is not a file the bucket writes; not removed", self.path.display()),
            ));
        }
        match self.dir.remove(&self.name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// An iterator over the files of an entries directory; see [`walk`].
#[derive(Debug)]
pub struct Walk {
    entries: Arc<Dir>,
    dirs: Vec<String>,
    next_dir: usize,
    current: Option<(Arc<Dir>, std::vec::IntoIter<std::ffi::OsString>)>,
}

/// Lists every file in the fan-out directories of `entries` (the `entries-v2` directory, see [`entries_dir`]).
///
/// Items are `Err` when a fan-out directory cannot be listed, is a link or belongs to another user (it is then
/// not entered); the walk goes on with the next one.
///
/// # Errors
/// [`Error::Io`] when `entries` itself cannot be listed: missing, not a directory, a link (never followed), owned
/// by another user, no permission.
pub fn walk(entries: &Path) -> Result<Walk> {
    let dir = Dir::open(entries).map_err(|e| Error::io("list", entries, e))?;
    walk_dir(Arc::new(dir))
}

/// As [`walk`], over the one fan-out directory `fan` (two lowercase hex digits) of `entries`.
///
/// # Errors
/// As [`walk`]; and [`Error::Config`] for a `fan` that is not a fan-out name.
pub fn walk_fan_out(entries: &Path, fan: &str) -> Result<Walk> {
    if !store::is_fan_out_name(fan) {
        return Err(Error::config(format!(
            "`{fan}` is not a fan-out directory name (two lowercase hex digits)"
        )));
    }
    let dir = Dir::open(entries).map_err(|e| Error::io("list", entries, e))?;
    Ok(Walk {
        entries: Arc::new(dir),
        dirs: vec![fan.to_owned()],
        next_dir: 0,
        current: None,
    })
}

/// Walks the entries directory of an open bucket.
pub(crate) fn walk_dir(entries: Arc<Dir>) -> Result<Walk> {
    let names = entries.list().map_err(|e| Error::io("list", entries.path(), e))?;
    let mut dirs: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| store::is_fan_out_name(n))
        .collect();
    dirs.sort();
    Ok(Walk {
        entries,
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
            if let Some((dir, names)) = &mut self.current {
                match names.next() {
                    Some(os_name) => {
                        // Everything is reported, sub-directories included: one named like an entry is then an
                        // entry that cannot be read, which a tool should say.
                        let name = os_name.to_string_lossy().into_owned();
                        let kind = match os_name.to_str() {
                            Some(n) => classify_name(n),
                            None => FileKind::Other,
                        };
                        return Some(Ok(ScannedFile {
                            path: dir.path().join(&os_name),
                            name,
                            kind,
                            dir: Arc::clone(dir),
                        }));
                    }
                    None => self.current = None,
                }
                continue;
            }
            let name = self.dirs.get(self.next_dir)?.clone();
            self.next_dir += 1;
            let path = self.entries.path().join(&name);
            match self.entries.sub(&name).and_then(|d| d.list().map(|names| (d, names))) {
                Ok((dir, mut names)) => {
                    names.sort();
                    self.current = Some((Arc::new(dir), names.into_iter()));
                }
                // Removed meanwhile: nothing to report.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    if self.entries.stat(&name).is_ok_and(|i| i.is_symlink) {
                        warn!(target: "bucketcache", path = %path.display(), "a link where a fan-out directory should be: not followed");
                    }
                    return Some(Err(Error::io("list", path, e)));
                }
            }
        }
    }
}

/// What a file name says a file is: only the exact shapes the bucket writes are entries or temporary files.
pub fn classify_name(name: &str) -> FileKind {
    if store::is_temp_name(name) {
        FileKind::Temp
    } else if store::is_entry_name(name) {
        KeyHash::from_hex(name).map_or(FileKind::Other, FileKind::Entry)
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
/// (usually a few hundred bytes; at most [`entry::MAX_HEADER_LEN`]). The file itself is opened with `O_NOFOLLOW`
/// and must be a regular file; links in the directories of `path` are followed, so prefer
/// [`ScannedFile::inspect`] on a walked file.
///
/// # Errors
/// The I/O error when the file cannot be opened or read (it vanished, it is a link or a directory, no
/// permission).
pub fn inspect(path: &Path, key: &KeyHash) -> io::Result<Inspected> {
    let (mut file, info) = dirfd::open_read_path(path)?;
    inspected(&mut file, info.len, key)
}

fn inspected(file: &mut File, len: u64, key: &KeyHash) -> io::Result<Inspected> {
    let prefix = read_header_from(file, len)?;
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

/// The first bytes of an open file of `len` bytes, enough for its header. Reads [`FIRST_READ`] bytes, and more
/// (up to [`entry::MAX_HEADER_LEN`]) only when the header's function path is longer, so walking a cache of large
/// entries reads little of each.
pub(crate) fn read_header_from(file: &mut File, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(FIRST_READ as usize);
    (&mut *file).take(FIRST_READ).read_to_end(&mut buf)?;
    if matches!(entry::parse_header(&buf), Err(Corrupt::TooShort { .. })) && (buf.len() as u64) < len {
        let rest = (entry::MAX_HEADER_LEN as u64).saturating_sub(buf.len() as u64);
        file.take(rest).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// Whether a temporary file may be removed: the process that is writing it is gone (judged by the pid in its name,
/// on Linux), or it is older than [`TEMP_MAX_AGE`]. This is the rule
/// [`Bucket::prune_directory`](crate::Bucket::prune_directory) applies.
pub fn temp_is_stale(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let old = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= TEMP_MAX_AGE);
    old || store::temp_is_stale(None, name, TEMP_MAX_AGE)
}

/// Why the bucket directory `dir` is unsafe to keep a cache in, if it is: writable by its group or by every user
/// without the sticky bit (another local user could then plant links or files in it). The message names the risk
/// and the fix (`chmod 700`). [`BucketBuilder::build`](crate::BucketBuilder::build) logs it at `warn` (or refuses
/// the directory, with [`refuse_insecure_dir`](crate::BucketBuilder::refuse_insecure_dir)). Always `None` outside
/// Unix.
pub fn insecure_dir_warning(dir: &Path) -> Option<String> {
    dirfd::insecure_dir(dir)
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
        std::fs::write(entries.join("stray-top-level-file"), b"x").map_err(|e| Error::io("write", "", e))?;
        let mut walk = walk(&entries)?;
        let total = walk.dirs_total();
        let files: Vec<ScannedFile> = walk.by_ref().collect::<Result<_>>()?;
        assert_eq!(files.len(), 20, "top-level files are not walked");
        assert!(files.iter().all(|f| matches!(f.kind, FileKind::Entry(_))));
        assert_eq!(walk.dirs_done(), total);
        Ok(())
    }
}
