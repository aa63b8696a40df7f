//! Walking a bucket: every file under `entries-v2/`, classified.
//!
//! Built on the runtime's [`bucketcache::scan`]. Each file is one of: a live entry, an expired entry, a corrupt
//! file (named like an entry, but its header, length, key or, with [`Depth::Checksums`], checksum is wrong), a
//! temporary file (stale when its writer is gone or it is over an hour old), an unreadable file, or another file
//! (left alone by every command).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use bucketcache::entry::{self, Corrupt, EntryHeader};
use bucketcache::scan::{self, FileKind, ScannedFile, Walk};
use bucketcache::store::ENTRIES_DIR;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{CliError, CliResult};

/// What a file is.
#[derive(Debug)]
pub enum Class {
    /// A valid entry, not expired.
    Live(EntryHeader),
    /// A valid entry whose expiry has passed (it reads as missing).
    Expired(EntryHeader),
    /// Named like an entry, but not a valid one.
    Corrupt(Corrupt),
    /// A temporary file of a write; `stale` when its writer is gone (or it is over an hour old).
    Temp { stale: bool },
    /// Could not be read.
    Unreadable(std::io::Error),
    /// Not a name the library uses.
    Other,
}

/// One file of the bucket.
#[derive(Debug)]
pub struct Item {
    pub path: PathBuf,
    /// The walked file: reads and removals go through the handle of the directory it was found in, never through
    /// `path` again (a directory swapped for a link meanwhile cannot redirect them).
    pub file: ScannedFile,
    /// The file's length (0 when it could not be read).
    pub len: u64,
    pub class: Class,
}

/// How much of each entry file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The header only: cheap, catches truncation and foreign files, not bit rot in the payload.
    Headers,
    /// Every byte, checking the payload checksum.
    Checksums,
}

/// The `entries-v2` directory of the bucket in `dir`, or a usage error saying why `dir` is not a bucket.
pub fn entries_dir(dir: &Path) -> CliResult<PathBuf> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError::usage(format!("`{shown}` does not exist")),
        _ => CliError::usage(format!("cannot read `{shown}`: {e}")),
    })?;
    if !meta.is_dir() {
        return Err(CliError::usage(format!("`{shown}` is not a directory")));
    }
    let entries = scan::entries_dir(dir);
    if std::fs::symlink_metadata(&entries).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(CliError::failed(format!(
            "`{}` is a symbolic link where the bucket's entries directory should be: it is not followed (it may \
             point outside the bucket); remove it",
            entries.display()
        )));
    }
    if entries.is_dir() {
        return Ok(entries);
    }
    let hint = if dir.file_name().is_some_and(|n| n == ENTRIES_DIR) {
        format!(
            " (give its parent directory, `{}`)",
            dir.parent().unwrap_or(dir).display()
        )
    } else {
        String::new()
    };
    Err(CliError::usage(format!(
        "`{shown}` is not a bucketcache bucket: it has no `{ENTRIES_DIR}/` directory{hint}"
    )))
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A progress bar over the walk's fan-out directories, drawn on stderr only when stderr is a terminal.
fn progress(walk: &Walk, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(walk.dirs_total() as u64);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} directories ({elapsed})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Counts of what a walk could not do (listing errors are reported on stderr as they happen).
#[derive(Debug, Default, Clone, Copy)]
pub struct WalkErrors {
    pub unlistable_dirs: u64,
}

/// Walks the bucket in `dir` (whose entries directory `entries_dir` returned), calling `f` for every file.
pub fn walk(entries: &Path, depth: Depth, what: &str, mut f: impl FnMut(Item)) -> CliResult<WalkErrors> {
    let now = now_ms();
    let mut walk = scan::walk(entries)?;
    let bar = progress(&walk, what);
    let mut errors = WalkErrors::default();
    while let Some(file) = walk.next() {
        bar.set_position(walk.dirs_done() as u64);
        match file {
            Ok(file) => f(classify(file, depth, now)),
            Err(e) => {
                bar.suspend(|| eprintln!("bucketcache: warning: {}", CliError::from(e)));
                errors.unlistable_dirs += 1;
            }
        }
    }
    bar.finish_and_clear();
    Ok(errors)
}

fn classify(file: ScannedFile, depth: Depth, now: i64) -> Item {
    match file.kind {
        FileKind::Other => Item {
            len: file.len(),
            path: file.path.clone(),
            class: Class::Other,
            file,
        },
        FileKind::Temp => Item {
            len: file.len(),
            class: Class::Temp {
                stale: file.is_stale_temp(),
            },
            path: file.path.clone(),
            file,
        },
        FileKind::Entry(key) => {
            // Through the library's regular-file, non-blocking, bounded open: a FIFO, a device, a link, a file
            // over the size bound or a sparse file is unreadable, never a hang or a huge allocation.
            let read =
                match depth {
                    Depth::Headers => file.inspect(&key).map(|i| (i.len, i.header)),
                    Depth::Checksums => file.read(scan::DEFAULT_MAX_ENTRY_BYTES).map(|bytes| {
                        let header = entry::verify(&bytes).and_then(|(h, _)| {
                            if h.key == key {
                                Ok(h)
                            } else {
                                Err(Corrupt::KeyMismatch)
                            }
                        });
                        (bytes.len() as u64, header)
                    }),
                };
            let (len, class) = match read {
                Ok((len, Ok(h))) if h.is_expired_at(now) => (len, Class::Expired(h)),
                Ok((len, Ok(h))) => (len, Class::Live(h)),
                Ok((len, Err(c))) => (len, Class::Corrupt(c)),
                Err(e) => (0, Class::Unreadable(e)),
            };
            Item {
                path: file.path.clone(),
                file,
                len,
                class,
            }
        }
    }
}

/// Whether `prune` (like the runtime's `prune_directory`) removes a corrupt file: an invalid header, length or
/// key means the file can never be read; a file of another format version is left for the build that reads it.
pub fn prunable(c: &Corrupt) -> bool {
    !matches!(c, Corrupt::UnsupportedVersion { .. })
}
