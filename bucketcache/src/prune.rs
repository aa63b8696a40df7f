//! `prune_directory`: removing what can never be read again.

use std::time::Duration;

use tracing::{debug, warn};

use crate::backend::Backend;
use crate::bucket::Bucket;
use crate::entry::Corrupt;
use crate::error::Result;
use crate::key::{KeyHash, KeyMaker};
use crate::scan::{FileKind, ScannedFile};

/// A temporary file older than this is stale even if the process that made it still runs.
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// What [`Bucket::prune_directory`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunedFilesInfo {
    /// Bytes removed.
    pub size: u64,
    /// Files removed.
    pub num: u64,
}

/// What one file in the entries directory is, as far as pruning is concerned.
enum Verdict {
    Keep,
    Remove(&'static str),
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    /// Removes, from the bucket's directory, every file that can never be read again:
    ///
    /// - entries whose stamped expiry has passed (each entry's expiry is fixed when it is written, from the lifetime
    ///   of the bucket that wrote it, so entries written without a lifetime, or by another bucket sharing the
    ///   directory with a longer lifetime, are kept while they are valid for their writer);
    /// - entry files whose header or length is invalid (a crash of another tool, a foreign file, a truncation);
    /// - temporary files whose writing process is gone (or that are over an hour old);
    /// - single-flight lock files nobody holds (left by a computation that crashed; see [`crate::lock`]).
    ///
    /// Checksums are not verified here (that needs every byte; the `bucketcache verify` command does it), and files
    /// whose names are not entry or temporary names are left alone.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the directory cannot be listed. Files that vanish meanwhile are skipped; files that cannot
    /// be removed are logged and skipped.
    pub fn prune_directory(&self) -> Result<PrunedFilesInfo> {
        let now = self.now_ms();
        let mut info = PrunedFilesInfo::default();
        // The directory may have been removed or replaced since the bucket was opened: open it again (with every
        // check) if so.
        self.entries.refresh(false)?;
        // Walks the entries directory through the handle opened (and checked) when the bucket was built: each
        // fan-out is opened without following links, and each file is judged and removed through its fan-out's
        // handle (scan.rs), so nothing outside the bucket can be reached.
        for file in crate::scan::walk_dir(self.entries.dir())? {
            let file = match file {
                Ok(f) => f,
                Err(e) => {
                    warn!(target: "bucketcache", error = %e, "prune: cannot list a directory");
                    continue;
                }
            };
            let verdict = match file.kind {
                FileKind::Temp if file.is_stale_temp() => Verdict::Remove("stale temporary file"),
                FileKind::Entry(key) => judge_entry(&file, &key, now),
                FileKind::Temp | FileKind::Other => Verdict::Keep,
            };
            let Verdict::Remove(why) = verdict else {
                continue;
            };
            let size = file.len();
            match file.remove() {
                Ok(true) => {
                    debug!(target: "bucketcache", path = %file.path.display(), why, "pruned");
                    info.num += 1;
                    info.size += size;
                    if let FileKind::Entry(key) = file.kind {
                        self.memory.remove(&key);
                        self.bound.forget(&key);
                    }
                }
                Ok(false) => {}
                Err(e) => warn!(target: "bucketcache", path = %file.path.display(), error = %e, "prune: cannot remove"),
            }
        }
        info.num += self.prune_locks().num;
        debug!(target: "bucketcache", num = info.num, size = info.size, "prune_directory done");
        Ok(info)
    }
}

fn judge_entry(file: &ScannedFile, key: &KeyHash, now: i64) -> Verdict {
    let inspected = match file.inspect(key) {
        Ok(i) => i,
        // Vanished, unreadable, a link or not a regular file: not ours to judge.
        Err(_) => return Verdict::Keep,
    };
    match inspected.header {
        Ok(h) if h.is_expired_at(now) => Verdict::Remove("expired entry"),
        Ok(_) => Verdict::Keep,
        Err(Corrupt::LengthMismatch { .. }) => Verdict::Remove("entry length disagrees with its header"),
        Err(Corrupt::KeyMismatch) => Verdict::Remove("entry header names another key"),
        Err(Corrupt::TooShort { .. } | Corrupt::BadMagic | Corrupt::BadHeader { .. }) => {
            Verdict::Remove("invalid entry header")
        }
        Err(_) => Verdict::Keep,
    }
}
