//! Cross-process single-flight: when several processes (or threads) need the same cold key, one computes it and
//! the others wait for its entry instead of computing it again.
//!
//! # Protocol
//!
//! On Linux, each key's lock is one byte of the bucket's shared `<bucket dir>/locks-v1/ranges.lock` (mode 0600),
//! at an offset taken from the key's hash, held with an open-file-description lock (`F_OFD_SETLK`, polled): no
//! file is created or removed per key, the lock dies with its holder's file or process, and a holder that locks,
//! looks the key up again and misses computes (steps 1, 2, 4 and 5 below, without the files). Elsewhere, or where
//! the kernel or file system refuses byte-range locks, each key has its own lock file:
//!
//! Each key has an advisory lock file, `<bucket dir>/locks-v1/<2 hex>/<64 hex>.lock` (mode 0600 on Unix, in
//! directories of mode 0700), locked with [`File::try_lock`] (`flock` on Unix, `LockFileEx` on Windows):
//!
//! 1. Look the key up; a hit ends the flight ([`CrossFlight::Hit`]).
//! 2. Open (creating it) the key's lock file and poll `try_lock` until it is ours or the wait limit passes.
//! 3. Once locked, check that the file we hold is still the one at the lock path (a finishing leader removes the
//!    path before it unlocks, so a lock on a removed file proves nothing): if not, look the key up again and go
//!    back to 2.
//! 4. Holding a current lock, look the key up again (the previous leader may have just written it): a hit ends
//!    the flight, a miss makes this caller the leader ([`CrossFlight::Compute`] with [`FlightRole::Leader`]).
//! 5. The leader computes, stores the entry, then drops its [`CrossFlightGuard`], which removes the lock file and
//!    unlocks it. Waiters' next poll finds the entry.
//!
//! A leader that crashes (even by `SIGKILL`) loses its lock with its process: the operating system releases it,
//! a waiter takes it at its next poll, finds no entry, and computes. A leader that is alive but slower than the
//! wait limit does not block anyone forever either: a waiter whose limit passes computes without the lock
//! ([`FlightRole::TimedOut`]), and both writes are atomic, so readers see one whole value or the other. When the
//! lock cannot be used at all (a read-only directory, a file system without locks), the caller computes
//! ([`FlightRole::Unlocked`]): single-flight is an optimization, never a reason to fail a call.
//!
//! Locks are per open file, so threads of one process coordinate through them too. A cache hit never touches a lock.
//!
//! # Use from `#[bucket_cache]`
//!
//! An expansion that already looked the key up (and missed) calls [`Bucket::begin_cross_process_flight`] for its return type:
//! a [`CrossFlight::Hit`] is served like any hit (`on_cached` included); on [`CrossFlight::Compute`] it runs the body, stores
//! a cacheable result with [`Bucket::insert_typed`] (logging a failure, never returning it), and only then drops
//! the guard. A `nocache` call skips the flight (it must compute), and an uncacheable result (`Err`, `None`) is
//! simply not stored: the next waiter then computes in turn.
//!
//! ```text
//! match bucket.begin_cross_process_flight::<R>(&hash, wait_limit) {
//!     CrossFlight::Hit(hit) => { on_cached(&info(hit)); hit.value }
//!     CrossFlight::Compute(_guard) => { let r = body(); if cacheable(&r) { let _ = bucket.insert_typed(&hash, &r, path, lifetime); } r }
//! }
//! ```

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, warn};

use crate::backend::Backend;
use crate::bucket::{Bucket, Hit};
use crate::error::Error;
use crate::key::{KeyHash, KeyMaker};
use crate::prune::PrunedFilesInfo;
use crate::store;

/// Name of the directory holding the per-key lock files, under the bucket directory.
pub const LOCKS_DIR: &str = "locks-v1";

/// How long a waiter waits for another process's computation before computing anyway, when the caller has no
/// better figure: two minutes. A crashed computer releases its lock at once; this bounds the wait on a live one
/// that is slow or stuck.
pub const DEFAULT_FLIGHT_WAIT_LIMIT: Duration = Duration::from_secs(120);

/// First and longest pause between two attempts to take a busy lock.
const POLL_FIRST: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// What [`Bucket::begin_cross_process_flight`] found.
#[derive(Debug)]
#[must_use = "a Compute flight holds a lock until the guard is dropped"]
pub enum CrossFlight<V> {
    /// The entry exists (it was there, or another process computed it while this one waited).
    Hit(Hit<V>),
    /// The caller must compute the value, store it, then drop the guard.
    Compute(CrossFlightGuard),
}

/// Why a caller computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlightRole {
    /// It holds the key's lock: others wait for its entry.
    Leader,
    /// Another caller held the lock for longer than the wait limit: this one computes without it.
    TimedOut,
    /// The lock file could not be created or locked (logged at `warn`): this one computes without it.
    Unlocked,
}

/// The right (and duty) to compute a key: store the entry before dropping it.
///
/// Dropping the guard (also during a panic's unwinding) removes the lock file and releases the lock, waking the
/// waiters; if no entry was stored, one of them computes next.
#[derive(Debug)]
pub struct CrossFlightGuard {
    lock: Option<Held>,
    role: FlightRole,
    waited: Duration,
}

/// A lock a leader holds.
#[derive(Debug)]
enum Held {
    /// The key's own lock file, removed before it is unlocked.
    File(File, PathBuf),
    /// The key's byte in the bucket's shared lock file (Linux): closing the file releases it.
    #[cfg(target_os = "linux")]
    Range(File),
}

impl CrossFlightGuard {
    /// Why this caller computes.
    pub fn role(&self) -> FlightRole {
        self.role
    }

    /// Whether this caller holds the key's lock.
    pub fn is_leader(&self) -> bool {
        self.role == FlightRole::Leader
    }

    /// How long this caller waited for the lock.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for CrossFlightGuard {
    fn drop(&mut self) {
        match self.lock.take() {
            Some(Held::File(file, path)) => {
                // Remove the path while still holding the lock: a waiter that then locks this (removed) file sees
                // that it is no longer the lock file and starts over, so two leaders never overlap.
                if let Err(e) = fs::remove_file(&path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        debug!(target: "bucketcache", path = %path.display(), error = %e, "could not remove lock file");
                    }
                }
                drop(file);
            }
            #[cfg(target_os = "linux")]
            Some(Held::Range(file)) => drop(file),
            None => {}
        }
    }
}

/// The path of the lock file for `key` under the bucket directory `root`.
pub fn lock_path(root: &Path, key: &KeyHash) -> PathBuf {
    let hex = key.to_hex();
    let mut p = root.join(LOCKS_DIR);
    p.push(&hex[..2]);
    p.push(format!("{hex}.lock"));
    p
}

fn open_lock(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                store::create_dir_private(dir)?;
            }
            opts.open(path)
        }
        other => other,
    }
}

/// Whether `file` is (still) the file at `path`.
fn is_current(file: &File, path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let held = file.metadata()?;
        match fs::metadata(path) {
            Ok(now) => Ok(held.dev() == now.dev() && held.ino() == now.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        // An open file cannot be removed on Windows, so the path still names the file we hold.
        let _ = (file, path);
        Ok(true)
    }
}

enum Attempt {
    Locked(File),
    /// The file we locked had been removed by a finishing leader: look again.
    Stale,
    TimedOut,
}

/// Polls `try_lock` on the lock file until it is ours or `deadline` passes.
fn lock_until(path: &Path, deadline: Instant) -> io::Result<Attempt> {
    let file = open_lock(path)?;
    let mut pause = POLL_FIRST;
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(if is_current(&file, path)? {
                    Attempt::Locked(file)
                } else {
                    Attempt::Stale
                });
            }
            Err(TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Attempt::TimedOut);
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(POLL_MAX);
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Name of the shared lock file, under [`LOCKS_DIR`], whose bytes are the per-key locks on Linux.
pub const RANGES_FILE: &str = "ranges.lock";

/// Per-key locks without a file per key (Linux): each key locks one byte of a shared file, at an offset taken
/// from its hash, with an open-file-description lock (`F_OFD_SETLK`). Such a lock belongs to the open file: two
/// opens conflict (threads of one process included), closing the file releases it, and so does the process's
/// death. No lock file is created or removed per key, which on a file system slow to create files saves more than
/// the write itself costs. Where the kernel or file system refuses these locks, the per-key files are used.
#[cfg(target_os = "linux")]
mod ranges {
    use std::fs::File;
    use std::io;

    use nix::errno::Errno;
    use nix::fcntl::{fcntl, FcntlArg};

    use crate::key::KeyHash;

    /// The key's byte: 62 bits of its hash, so the offset is a valid positive `off_t`.
    pub fn offset(key: &KeyHash) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&key.0[..8]);
        (u64::from_le_bytes(b) >> 2) as i64
    }

    /// Tries to lock the key's byte: `Ok(true)` when taken, `Ok(false)` when another open file holds it.
    pub fn try_lock(file: &File, offset: i64) -> io::Result<bool> {
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: offset,
            l_len: 1,
            l_pid: 0,
        };
        match fcntl(file, FcntlArg::F_OFD_SETLK(&lock)) {
            Ok(_) => Ok(true),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

/// What waiting for a key's byte gave.
#[cfg(target_os = "linux")]
enum RangeAttempt {
    Locked(File),
    TimedOut,
}

/// Polls the key's byte lock in the shared lock file until it is ours or `deadline` passes.
#[cfg(target_os = "linux")]
fn lock_range_until(path: &Path, key: &KeyHash, deadline: Instant) -> io::Result<RangeAttempt> {
    let file = open_lock(path)?;
    let offset = ranges::offset(key);
    let mut pause = POLL_FIRST;
    loop {
        if ranges::try_lock(&file, offset)? {
            return Ok(RangeAttempt::Locked(file));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(RangeAttempt::TimedOut);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(POLL_MAX);
    }
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    /// The path of the lock file [`begin_cross_process_flight`](Self::begin_cross_process_flight) locks for `key`:
    /// on Linux the bucket's shared `locks-v1/ranges.lock` (one byte per key), elsewhere the key's own lock file.
    pub fn lock_path(&self, key: &KeyHash) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            let _ = key;
            self.root.join(LOCKS_DIR).join(RANGES_FILE)
        }
        #[cfg(not(target_os = "linux"))]
        {
            lock_path(&self.root, key)
        }
    }

    /// After waiting `wait_limit` for another computer: its entry if it landed meanwhile, else the right to compute
    /// without the lock.
    fn after_timeout<V>(&self, key: &KeyHash, wait_limit: Duration, start: Instant) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if let Some(hit) = self.lookup_or_miss::<V>(key) {
            return CrossFlight::Hit(hit);
        }
        warn!(
            target: "bucketcache",
            hash = %key,
            ?wait_limit,
            "single flight: another caller is still computing this key; computing it here too"
        );
        CrossFlight::Compute(CrossFlightGuard {
            lock: None,
            role: FlightRole::TimedOut,
            waited: start.elapsed(),
        })
    }

    /// Looks `key` up, treating every failure as a miss (logged): a flight must always end with a value.
    fn lookup_or_miss<V>(&self, key: &KeyHash) -> Option<Hit<V>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        match self.lookup::<V>(key) {
            Ok(hit) => hit,
            Err(e) => {
                debug!(target: "bucketcache", hash = %key, error = %e, "entry unusable; computing it again");
                None
            }
        }
    }

    /// Starts a cross-process single flight for `key` (see the [module docs](crate::lock)): returns the entry if
    /// it exists or appears within `wait_limit` while another process (or thread) computes it, otherwise a
    /// [`CrossFlightGuard`] telling the caller to compute the value, [`insert`](Self::insert_typed) it, then drop the
    /// guard.
    ///
    /// A read error or an entry that does not decode as `V` counts as a miss (logged at `warn`), and the lock
    /// cannot make this fail: at worst the caller computes without it. `wait_limit` bounds the time spent waiting
    /// for a live computer ([`DEFAULT_FLIGHT_WAIT_LIMIT`] is a reasonable choice); `Duration::ZERO` never waits.
    ///
    /// ```
    /// use bucketcache::{Bucket, CrossFlight};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let bucket = Bucket::new(dir.path())?;
    /// let key = bucket.key_hash(&("report", 2026))?;
    /// let value: String = match bucket.begin_cross_process_flight::<String>(&key, bucketcache::DEFAULT_FLIGHT_WAIT_LIMIT) {
    ///     CrossFlight::Hit(hit) => hit.value,
    ///     CrossFlight::Compute(guard) => {
    ///         let value = "expensive".to_string();
    ///         bucket.insert_typed(&key, &value, None, None)?; // store before the guard drops
    ///         drop(guard);
    ///         value
    ///     }
    /// };
    /// assert_eq!(value, "expensive");
    /// # Ok::<(), bucketcache::Error>(())
    /// ```
    pub fn begin_cross_process_flight<V>(&self, key: &KeyHash, wait_limit: Duration) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if let Some(hit) = self.lookup_or_miss::<V>(key) {
            return CrossFlight::Hit(hit);
        }
        self.begin_cross_process_flight_after_miss(key, wait_limit)
    }

    /// [`begin_cross_process_flight`](Self::begin_cross_process_flight) for a caller that has just looked `key`
    /// up and missed: no second read before taking the lock (the read after taking it stays).
    pub(crate) fn begin_cross_process_flight_after_miss<V>(&self, key: &KeyHash, wait_limit: Duration) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let start = Instant::now();
        let deadline = start
            .checked_add(wait_limit)
            .unwrap_or_else(|| start + DEFAULT_FLIGHT_WAIT_LIMIT);
        #[cfg(target_os = "linux")]
        {
            let shared = self.root.join(LOCKS_DIR).join(RANGES_FILE);
            match lock_range_until(&shared, key, deadline) {
                Ok(RangeAttempt::Locked(file)) => {
                    // The previous holder may have written the entry just before unlocking.
                    if let Some(hit) = self.lookup_or_miss::<V>(key) {
                        return CrossFlight::Hit(hit);
                    }
                    debug!(target: "bucketcache", hash = %key, waited = ?start.elapsed(), "single flight: computing");
                    return CrossFlight::Compute(CrossFlightGuard {
                        lock: Some(Held::Range(file)),
                        role: FlightRole::Leader,
                        waited: start.elapsed(),
                    });
                }
                Ok(RangeAttempt::TimedOut) => return self.after_timeout(key, wait_limit, start),
                // Byte-range locks refused (an old kernel, a file system without them): per-key files below.
                Err(e) => {
                    debug!(target: "bucketcache", error = %e, "byte-range locks unavailable; using per-key lock files")
                }
            }
        }
        let path = lock_path(&self.root, key);
        let guard = |lock: Option<Held>, role| {
            CrossFlight::Compute(CrossFlightGuard {
                lock,
                role,
                waited: start.elapsed(),
            })
        };
        loop {
            match lock_until(&path, deadline) {
                Ok(Attempt::Locked(file)) => {
                    // The previous holder may have written the entry just before unlocking.
                    if let Some(hit) = self.lookup_or_miss::<V>(key) {
                        drop(CrossFlightGuard {
                            lock: Some(Held::File(file, path)),
                            role: FlightRole::Leader,
                            waited: start.elapsed(),
                        });
                        return CrossFlight::Hit(hit);
                    }
                    debug!(target: "bucketcache", hash = %key, waited = ?start.elapsed(), "single flight: computing");
                    return guard(Some(Held::File(file, path)), FlightRole::Leader);
                }
                Ok(Attempt::Stale) => {
                    if let Some(hit) = self.lookup_or_miss::<V>(key) {
                        return CrossFlight::Hit(hit);
                    }
                    if Instant::now() >= deadline {
                        return guard(None, FlightRole::TimedOut);
                    }
                }
                Ok(Attempt::TimedOut) => return self.after_timeout(key, wait_limit, start),
                Err(e) => {
                    let e = Error::io("lock", &path, e);
                    warn!(target: "bucketcache", hash = %key, error = %e, "single flight unavailable; computing");
                    return guard(None, FlightRole::Unlocked);
                }
            }
        }
    }

    /// The value stored under `key`, or `compute()`'s, computed once across processes: while one caller computes,
    /// the others (in any process using this directory) wait up to `wait_limit` for its entry. See
    /// [`begin_cross_process_flight`](Self::begin_cross_process_flight) and the [module docs](crate::lock).
    ///
    /// Never fails: an unreadable or undecodable entry is recomputed, and a value that cannot be stored (disk
    /// full, unwritable directory, a value the backend cannot encode) is logged at `warn` and returned all the same.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let bucket = bucketcache::Bucket::new(dir.path())?;
    /// let key = bucket.key_hash("answer")?;
    /// let wait = std::time::Duration::from_secs(30);
    /// assert_eq!(bucket.get_or_compute_cross_process(&key, wait, || 42u64), 42);
    /// assert_eq!(bucket.get_or_compute_cross_process(&key, wait, || -> u64 { unreachable!() }), 42);
    /// # Ok::<(), bucketcache::Error>(())
    /// ```
    pub fn get_or_compute_cross_process<V>(&self, key: &KeyHash, wait_limit: Duration, compute: impl FnOnce() -> V) -> V
    where
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        match self.begin_cross_process_flight::<V>(key, wait_limit) {
            CrossFlight::Hit(hit) => hit.value,
            CrossFlight::Compute(guard) => {
                let value = compute();
                // Failures are logged by the write path.
                let _ = self.insert_typed(key, &value, None, None);
                drop(guard);
                value
            }
        }
    }

    /// Removes lock files nobody holds (left by crashed computers); part of [`prune_directory`](Self::prune_directory).
    pub(crate) fn prune_locks(&self) -> PrunedFilesInfo {
        let mut info = PrunedFilesInfo::default();
        let Ok(fans) = fs::read_dir(self.root.join(LOCKS_DIR)) else {
            return info;
        };
        for fan in fans.flatten() {
            let Ok(files) = fs::read_dir(fan.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_none_or(|e| e != "lock") {
                    continue;
                }
                // Same discipline as a leader: remove only a file we hold the lock on and that is still current.
                let Ok(f) = File::open(&path) else { continue };
                if f.try_lock().is_ok() && is_current(&f, &path).unwrap_or(false) && fs::remove_file(&path).is_ok() {
                    info.num += 1;
                }
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_fan_out_and_stay_in_the_bucket() {
        let k = KeyHash([0xab; 32]);
        let p = lock_path(Path::new("/c"), &k);
        assert_eq!(p, Path::new("/c/locks-v1/ab").join(format!("{}.lock", "ab".repeat(32))));
    }

    #[test]
    fn a_second_guard_waits_then_times_out_while_the_first_is_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = Bucket::new(dir.path()).expect("bucket");
        let key = KeyHash([1; 32]);
        let CrossFlight::Compute(first) = bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO) else {
            panic!("cold key")
        };
        assert!(first.is_leader());
        let CrossFlight::Compute(second) = bucket.begin_cross_process_flight::<u32>(&key, Duration::from_millis(30))
        else {
            panic!("cold key")
        };
        assert_eq!(second.role(), FlightRole::TimedOut);
        assert!(second.waited() >= Duration::from_millis(30));
        drop(second);
        bucket.insert_typed(&key, &7u32, None, None).expect("insert");
        drop(first);
        assert!(!lock_path(dir.path(), &key).exists(), "no per-key lock file is left");
        assert!(
            matches!(bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO), CrossFlight::Hit(h) if h.value == 7)
        );
    }

    #[test]
    fn prune_removes_only_unheld_lock_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = Bucket::new(dir.path()).expect("bucket");
        let held = KeyHash([2; 32]);
        let left = KeyHash([3; 32]);
        let CrossFlight::Compute(guard) = bucket.begin_cross_process_flight::<u32>(&held, Duration::ZERO) else {
            panic!("cold key")
        };
        // A per-key lock file left by a crashed computer (the protocol where byte-range locks are unavailable).
        drop(open_lock(&lock_path(dir.path(), &left)).expect("create"));
        assert_eq!(bucket.prune_locks().num, 1);
        assert!(bucket.lock_path(&held).exists(), "the held lock's file stays");
        assert!(!lock_path(dir.path(), &left).exists());
        drop(guard);
    }
}
