//! The directory layout and the file operations on it: atomic writes, reads, temporary files.
//!
//! ```text
//! <bucket dir>/
//!   entries-v2/            one directory per entry format version
//!     3f/                  fan-out: the first two hex digits of the key hash (256 directories)
//!       3fa2…e1            one file per entry, named by the key hash's 64 hex digits
//!       .tmp-4711-Xq3a9    a write in progress (or left by a crash): `.tmp-<pid>-<random>`
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::key::KeyHash;

/// Name of the directory holding version-2 entries, under the bucket directory.
pub const ENTRIES_DIR: &str = "entries-v2";
/// Prefix of temporary files.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Whether writes are flushed to stable storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Write to a temporary file and rename it into place (the default). Readers never see a torn entry, and a
    /// crash of the process loses nothing; an operating-system crash or power loss may lose recent writes.
    #[default]
    Atomic,
    /// As `Atomic`, plus `fsync` of the file before the rename and of its directory after: a write that returned
    /// survives power loss. Several times slower per write.
    Fsync,
}

/// The path of the entry for `key` under `entries`.
pub fn entry_path(entries: &Path, key: &KeyHash) -> PathBuf {
    let hex = key.to_hex();
    let mut p = PathBuf::with_capacity(entries.as_os_str().len() + 68);
    p.push(entries);
    p.push(&hex[..2]);
    p.push(hex);
    p
}

/// Creates a directory and its parents, private to the user on Unix (0700).
pub(crate) fn create_dir_private(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Writes `bytes` as `path` atomically: a temporary file in the same directory, renamed into place.
/// Creates the fan-out directory when it is missing.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::config("entry path has no parent directory"))?;
    let mut tmp = match temp_file_in(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_private(dir).map_err(|e| Error::io("create directory", dir, e))?;
            temp_file_in(dir).map_err(|e| Error::io("create temporary file in", dir, e))?
        }
        Err(e) => return Err(Error::io("create temporary file in", dir, e)),
    };
    fault::check(dir).map_err(|e| Error::io("write", tmp.path(), e))?;
    tmp.write_all(bytes).map_err(|e| Error::io("write", tmp.path(), e))?;
    if durability == Durability::Fsync {
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io("fsync", tmp.path(), e))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    if durability == Durability::Fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Fault injection at the write seam, for tests of disk-full and I/O-error handling. Inert unless armed: an unarmed
/// write pays one relaxed atomic load.
#[doc(hidden)]
pub mod fault {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    static ARMED: AtomicBool = AtomicBool::new(false);
    static FAULTS: Mutex<Vec<(PathBuf, i32)>> = Mutex::new(Vec::new());

    /// Makes every entry write under `dir` fail with the OS error `errno` (e.g. 28, `ENOSPC`) after its temporary
    /// file is created, as a full disk would; `None` clears it. Applies to every bucket in the process.
    pub fn set_write_error(dir: &Path, errno: Option<i32>) {
        let mut faults = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        faults.retain(|(d, _)| d != dir);
        if let Some(errno) = errno {
            faults.push((dir.to_path_buf(), errno));
        }
        ARMED.store(!faults.is_empty(), Ordering::Release);
    }

    pub(crate) fn check(dir: &Path) -> io::Result<()> {
        if !ARMED.load(Ordering::Acquire) {
            return Ok(());
        }
        let faults = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        match faults.iter().find(|(d, _)| dir.starts_with(d)) {
            Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }
}

fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    // tempfile opens with O_EXCL and mode 0600; the pid in the name lets prune tell a live writer's file apart.
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .rand_bytes(8)
        .tempfile_in(dir)
}

/// Flushes a directory's entries (a rename) to stable storage.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Bytes read by the first `read` of an entry file: most entries fit, so a hit costs open, one read, close.
const FIRST_READ: usize = 8 * 1024;

/// Opens a file only if it is a regular file (following symlinks): opening a FIFO would block until a writer
/// comes, and a device such as `/dev/zero` never ends, so neither may stand in for an entry.
pub(crate) fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let not_regular = || io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
    if !fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    // Non-blocking, in case a FIFO replaced the file between the check and the open; `fstat` then rejects it.
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok((file, meta.len()))
}

/// Reads a whole entry file; `Ok(None)` when there is none.
///
/// The header says how long the file should be, so no `fstat` is needed and no extra `read` to find the end: when
/// the first read returns exactly the declared length, the file is complete (a longer file is caught by reading on
/// only when the first read filled its buffer). Memory is bounded by the file's real size, never by a header's
/// claim; a file whose header is invalid is not read past its first chunk.
pub(crate) fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    read_entry(path).or_else(|e| match e.kind() {
        io::ErrorKind::NotFound => Ok(None),
        _ => Err(Error::io("read entry", path, e)),
    })
}

fn read_entry(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    // Non-blocking, so a FIFO under an entry's name reads as empty instead of blocking the open until a writer
    // comes; regular files ignore the flag.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut opts, libc::O_NONBLOCK);
    let mut file = opts.open(path)?;
    let mut buf = vec![0u8; FIRST_READ];
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // A short read of a regular file means end of file unless the header says more is to come.
        if got < buf.len() {
            match crate::entry::parse_header(&buf[..got]) {
                Ok(h) if h.file_len() == got as u64 => {
                    buf.truncate(got);
                    return Ok(Some(buf));
                }
                Ok(_) => {}
                Err(_) if got >= crate::entry::HEADER_LEN => {
                    // Not an entry: what was read is enough to say so.
                    buf.truncate(got);
                    return Ok(Some(buf));
                }
                Err(_) => {}
            }
        }
    }
    buf.truncate(got);
    if got == FIRST_READ {
        // Read on only as far as the header says (and a byte more, to see a longer file): a device such as
        // `/dev/zero` linked under an entry's name never ends, and anything without a valid header is not an entry.
        if let Ok(h) = crate::entry::parse_header(&buf) {
            let rest = h.file_len().saturating_sub(got as u64).saturating_add(1);
            file.take(rest).read_to_end(&mut buf)?;
        }
    }
    Ok(Some(buf))
}

/// Removes a file; `Ok(false)` when it was not there.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove entry", path, e)),
    }
}

/// The pid a temporary file's name carries, if it is one of ours.
pub fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

/// Whether a temporary file may be removed: its writer is gone, or it is older than `max_age`.
pub(crate) fn temp_is_stale(path: &Path, name: &str, max_age: std::time::Duration) -> bool {
    let old = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= max_age);
    old || temp_file_pid(name).is_some_and(|pid| !process_alive(pid))
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // Without a cheap liveness check, only age makes a temporary file stale.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_pid() {
        assert_eq!(temp_file_pid(".tmp-4711-abcdEFGH"), Some(4711));
        assert_eq!(temp_file_pid("3fa2"), None);
        assert_eq!(temp_file_pid(".tmp-x-y"), None);
    }

    #[test]
    fn entry_paths_fan_out_by_the_first_byte() {
        let k = KeyHash([0xab; 32]);
        let p = entry_path(Path::new("/c/entries-v2"), &k);
        assert_eq!(p, Path::new("/c/entries-v2/ab").join("ab".repeat(32)));
    }
}
