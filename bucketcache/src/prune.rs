//! `prune_directory`: removing what can never be read again.

use std::fs;
use std::path::Path;
use std::time::Duration;

use tracing::{debug, warn};

use crate::backend::Backend;
use crate::bucket::Bucket;
use crate::entry::{self, Corrupt};
use crate::error::Result;
use crate::key::{KeyHash, KeyMaker};
use crate::scan::FileKind;
use crate::store;

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
        for file in crate::scan::walk(&self.entries)? {
            let file = match file {
                Ok(f) => f,
                Err(e) => {
                    warn!(target: "bucketcache", error = %e, "prune: cannot list a directory");
                    continue;
                }
            };
            let verdict = match file.kind {
                FileKind::Temp if store::temp_is_stale(&file.path, &file.name, TEMP_MAX_AGE) => {
                    Verdict::Remove("stale temporary file")
                }
                FileKind::Entry(key) => self.judge_entry(&file.path, &key, now),
                FileKind::Temp | FileKind::Other => Verdict::Keep,
            };
            let Verdict::Remove(why) = verdict else {
                continue;
            };
            let size = fs::symlink_metadata(&file.path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&file.path) {
                Ok(()) => {
                    debug!(target: "bucketcache", path = %file.path.display(), why, "pruned");
                    info.num += 1;
                    info.size += size;
                    if let FileKind::Entry(key) = file.kind {
                        self.memory.remove(&key);
                        self.bound.forget(&key);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!(target: "bucketcache", path = %file.path.display(), error = %e, "prune: cannot remove"),
            }
        }
        info.num += self.prune_locks().num;
        debug!(target: "bucketcache", num = info.num, size = info.size, "prune_directory done");
        Ok(info)
    }

    fn judge_entry(&self, path: &Path, key: &KeyHash, now: i64) -> Verdict {
        let (prefix, len) = match read_prefix(path) {
            Ok(p) => p,
            // Vanished or unreadable: not ours to judge.
            Err(_) => return Verdict::Keep,
        };
        match entry::parse_header(&prefix) {
            Ok(h) if h.file_len() != len => Verdict::Remove("entry length disagrees with its header"),
            Ok(h) if h.key != *key => Verdict::Remove("entry header names another key"),
            Ok(h) if h.is_expired_at(now) => Verdict::Remove("expired entry"),
            Ok(_) => Verdict::Keep,
            Err(Corrupt::TooShort { .. } | Corrupt::BadMagic | Corrupt::BadHeader { .. }) => {
                Verdict::Remove("invalid entry header")
            }
            Err(_) => Verdict::Keep,
        }
    }
}

/// The first bytes of a file (enough for its header) and the file's length: see `scan::read_header_bytes`, which
/// reads a few hundred bytes rather than up to 64 KiB of each file.
fn read_prefix(path: &Path) -> std::io::Result<(Vec<u8>, u64)> {
    crate::scan::read_header_bytes(path)
}
