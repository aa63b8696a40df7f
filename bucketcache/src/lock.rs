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
//! directories of mode 0700), locked with [`File::try_lock`] (`flock` on Unix, `LockFileEx` on Windows). Tests force
//! this protocol on Linux too (a hidden hook, `force_lock_files`, or `BUCKETCACHE_FORCE_LOCK_FILES=1`):
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
//! # Security
//!
//! Lock files are reached through the bucket directory's handle: `locks-v1` and its fan-outs are opened with
//! `O_DIRECTORY | O_NOFOLLOW` and must be directories of the current user, and each lock file is opened read-write
//! with `O_NOFOLLOW` (created with mode 0600), must be a regular file owned by the current user, and has a looser
//! mode tightened to 0600. A link (dangling or not) or another user's file where a lock file should be is refused:
//! the caller computes without the lock ([`FlightRole::Unlocked`], logged at `warn`), and nothing is created or
//! removed at the link's target. Pruning removes only names of the shape `<64 hex>.lock` in two-hex fan-outs.
//!
//! The threat left: a process that can open a lock file can hold its lock forever. Only write locks are taken
//! (a byte-range lock on `ranges.lock` needs a descriptor open for writing), and the files are private to their
//! owner, so another user cannot block the bucket's flights unless the directory was made writable or readable to
//! them; a process of the same user can (as it could delete the cache). Even then every wait stays bounded by the
//! call's wait limit ([`DEFAULT_FLIGHT_WAIT_LIMIT`] by default), after which the caller computes without the lock.
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

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, warn};

use crate::backend::Backend;
use crate::bucket::{Bucket, Hit};
use crate::dirfd::Dir;
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
    /// The key's own lock file (its fan-out directory's handle and its name), removed before it is unlocked.
    File(Box<(File, Dir, String)>),
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
            Some(Held::File(held)) => {
                let (file, fan, name) = *held;
                // Remove the name while still holding the lock: a waiter that then locks this (removed) file sees
                // that it is no longer the lock file and starts over, so two leaders never overlap.
                if let Err(e) = fan.remove(&name) {
                    if e.kind() != io::ErrorKind::NotFound {
                        debug!(target: "bucketcache", path = %fan.path().join(&name).display(), error = %e, "could not remove lock file");
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

/// Whether the per-key lock files are forced (a hidden test hook): 0 = not decided yet, 1 = no, 2 = yes.
static FORCE_LOCK_FILES: AtomicU8 = AtomicU8::new(0);

/// Environment variable that, set to `1` when a process first takes a cross-process lock, makes it use the per-key
/// lock files instead of the Linux byte-range locks (for tests of the fallback protocol in child processes).
#[doc(hidden)]
pub const FORCE_LOCK_FILES_VAR: &str = "BUCKETCACHE_FORCE_LOCK_FILES";

/// Test hook: use the per-key lock files (the protocol of platforms without byte-range locks) even on Linux,
/// for every bucket of this process. No stability promise.
#[doc(hidden)]
pub fn force_lock_files(yes: bool) {
    FORCE_LOCK_FILES.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
}

#[cfg(test)]
thread_local! {
    /// Per-thread override of the protocol, so unit tests running in parallel can each run both.
    static TEST_LOCK_FILES: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether the per-key lock files are forced ([`force_lock_files`], else [`FORCE_LOCK_FILES_VAR`], read once).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn lock_files_forced() -> bool {
    #[cfg(test)]
    if let Some(yes) = TEST_LOCK_FILES.with(|c| c.get()) {
        return yes;
    }
    match FORCE_LOCK_FILES.load(Ordering::Relaxed) {
        0 => {
            let yes = std::env::var_os(FORCE_LOCK_FILES_VAR).is_some_and(|v| v == "1");
            let _ = FORCE_LOCK_FILES.compare_exchange(0, if yes { 2 } else { 1 }, Ordering::Relaxed, Ordering::Relaxed);
            FORCE_LOCK_FILES.load(Ordering::Relaxed) == 2
        }
        v => v == 2,
    }
}

/// The bucket's lock directory (created, mode 0700, if missing), opened without following a link and checked to
/// be ours.
fn locks_dir(root: &Dir) -> io::Result<Dir> {
    root.sub_or_create(LOCKS_DIR)
}

/// Whether `file` is (still) the file `name` in `dir`.
fn is_current(file: &File, dir: &Dir, name: &str) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let held = file.metadata()?;
        match dir.stat(name) {
            Ok(now) => Ok((held.dev(), held.ino()) == now.id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        // An open file cannot be removed on Windows, so the name still names the file we hold.
        let _ = (file, dir, name);
        Ok(true)
    }
}

enum Attempt {
    Locked(File),
    /// The file we locked had been removed by a finishing leader: look again.
    Stale,
    TimedOut,
}

/// Polls `try_lock` on the lock file `name` in `fan` until it is ours or `deadline` passes.
fn lock_until(fan: &Dir, name: &str, deadline: Instant) -> io::Result<Attempt> {
    let file = fan.open_lock(name, true)?;
    let mut pause = POLL_FIRST;
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(if is_current(&file, fan, name)? {
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

/// Polls the key's byte lock in the shared lock file `file` until it is ours or `deadline` passes; an error
/// means byte-range locks are unavailable here.
#[cfg(target_os = "linux")]
fn lock_range_until(file: File, key: &KeyHash, deadline: Instant) -> io::Result<RangeAttempt> {
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
        if !lock_files_forced() {
            return self.root.join(LOCKS_DIR).join(RANGES_FILE);
        }
        lock_path(&self.root, key)
    }

    /// After waiting `wait_limit` for another computer: its entry if it landed meanwhile, else the right to compute
    /// without the lock.
    fn after_timeout<V>(
        &self,
        key: &KeyHash,
        wait_limit: Duration,
        start: Instant,
        read: &dyn Fn() -> Option<Hit<V>>,
    ) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if let Some(hit) = read() {
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
        self.cross_flight_reading(key, wait_limit, &|| self.lookup_or_miss::<V>(key))
    }

    /// [`begin_cross_process_flight_after_miss`](Self::begin_cross_process_flight_after_miss) with its own read of
    /// the entry after taking (or waiting for) the lock: the freshness path counts only a fresh entry as a hit.
    pub(crate) fn cross_flight_reading<V>(
        &self,
        key: &KeyHash,
        wait_limit: Duration,
        read: &dyn Fn() -> Option<Hit<V>>,
    ) -> CrossFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let start = Instant::now();
        let deadline = start
            .checked_add(wait_limit)
            .unwrap_or_else(|| start + DEFAULT_FLIGHT_WAIT_LIMIT);
        let guard = |lock: Option<Held>, role| {
            CrossFlight::Compute(CrossFlightGuard {
                lock,
                role,
                waited: start.elapsed(),
            })
        };
        // Every lock file is reached through the bucket directory's handle, without following links, and must be
        // a regular file of ours (dirfd.rs): a planted link or a foreign file is refused, and the caller computes
        // without the lock.
        let unlocked = |e: io::Error| {
            warn!(target: "bucketcache", hash = %key, error = %e, "single flight unavailable (lock refused or failed); computing without it");
            guard(None, FlightRole::Unlocked)
        };
        let locks = match locks_dir(&self.entries.root()) {
            Ok(d) => d,
            Err(e) => return unlocked(e),
        };
        #[cfg(target_os = "linux")]
        if !lock_files_forced() {
            let shared = match locks.open_lock(RANGES_FILE, true) {
                Ok(f) => f,
                Err(e) => return unlocked(e),
            };
            match lock_range_until(shared, key, deadline) {
                Ok(RangeAttempt::Locked(file)) => {
                    // The previous holder may have written the entry just before unlocking.
                    if let Some(hit) = read() {
                        return CrossFlight::Hit(hit);
                    }
                    debug!(target: "bucketcache", hash = %key, waited = ?start.elapsed(), "single flight: computing");
                    return CrossFlight::Compute(CrossFlightGuard {
                        lock: Some(Held::Range(file)),
                        role: FlightRole::Leader,
                        waited: start.elapsed(),
                    });
                }
                Ok(RangeAttempt::TimedOut) => return self.after_timeout(key, wait_limit, start, read),
                // Byte-range locks refused (an old kernel, a file system without them): per-key files below.
                Err(e) => {
                    debug!(target: "bucketcache", error = %e, "byte-range locks unavailable; using per-key lock files")
                }
            }
        }
        let hex = key.to_hex();
        let name = format!("{hex}.lock");
        let fan = match locks.sub_or_create(&hex[..2]) {
            Ok(d) => d,
            Err(e) => return unlocked(e),
        };
        loop {
            match lock_until(&fan, &name, deadline) {
                Ok(Attempt::Locked(file)) => {
                    // The previous holder may have written the entry just before unlocking.
                    if let Some(hit) = read() {
                        drop(CrossFlightGuard {
                            lock: Some(Held::File(Box::new((file, fan, name)))),
                            role: FlightRole::Leader,
                            waited: start.elapsed(),
                        });
                        return CrossFlight::Hit(hit);
                    }
                    debug!(target: "bucketcache", hash = %key, waited = ?start.elapsed(), "single flight: computing");
                    return guard(Some(Held::File(Box::new((file, fan, name)))), FlightRole::Leader);
                }
                Ok(Attempt::Stale) => {
                    if let Some(hit) = read() {
                        return CrossFlight::Hit(hit);
                    }
                    if Instant::now() >= deadline {
                        return guard(None, FlightRole::TimedOut);
                    }
                }
                Ok(Attempt::TimedOut) => return self.after_timeout(key, wait_limit, start, read),
                Err(e) => return unlocked(io::Error::new(e.kind(), Error::io("lock", fan.path().join(&name), e))),
            }
        }
    }

    /// Takes `key`'s cross-process lock if nobody holds it, without waiting and without reading the entry (the
    /// refresher of a stale entry): `Some` guard holding the lock (or, when locks are unavailable, logged, one
    /// without it: compute anyway), `None` when another caller holds it.
    pub(crate) fn try_key_lock(&self, key: &KeyHash) -> Option<CrossFlightGuard> {
        let now = Instant::now();
        let held = |lock: Held| {
            Some(CrossFlightGuard {
                lock: Some(lock),
                role: FlightRole::Leader,
                waited: Duration::ZERO,
            })
        };
        let unlocked = |e: io::Error| {
            warn!(target: "bucketcache", hash = %key, error = %e, "single flight unavailable (lock refused or failed); refreshing without it");
            Some(CrossFlightGuard {
                lock: None,
                role: FlightRole::Unlocked,
                waited: Duration::ZERO,
            })
        };
        let locks = match locks_dir(&self.entries.root()) {
            Ok(d) => d,
            Err(e) => return unlocked(e),
        };
        #[cfg(target_os = "linux")]
        if !lock_files_forced() {
            let shared = match locks.open_lock(RANGES_FILE, true) {
                Ok(f) => f,
                Err(e) => return unlocked(e),
            };
            match lock_range_until(shared, key, now) {
                Ok(RangeAttempt::Locked(file)) => return held(Held::Range(file)),
                Ok(RangeAttempt::TimedOut) => return None,
                Err(e) => {
                    debug!(target: "bucketcache", error = %e, "byte-range locks unavailable; using per-key lock files")
                }
            }
        }
        let hex = key.to_hex();
        let name = format!("{hex}.lock");
        let fan = match locks.sub_or_create(&hex[..2]) {
            Ok(d) => d,
            Err(e) => return unlocked(e),
        };
        // A lock file replaced under us (its holder finished) is tried again, a few times.
        for _ in 0..4 {
            match lock_until(&fan, &name, now) {
                Ok(Attempt::Locked(file)) => return held(Held::File(Box::new((file, fan, name)))),
                Ok(Attempt::Stale) => continue,
                Ok(Attempt::TimedOut) => return None,
                Err(e) => return unlocked(io::Error::new(e.kind(), Error::io("lock", fan.path().join(&name), e))),
            }
        }
        None
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
        // Through handles, never following a link (a planted `locks-v1` or fan-out link is logged and skipped),
        // and only names of the exact shape `<64 hex>.lock` in two-hex fan-outs are candidates.
        let locks = match self.entries.root().sub(LOCKS_DIR) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return info,
            Err(e) => {
                warn!(target: "bucketcache", error = %e, "prune: lock directory not used");
                return info;
            }
        };
        let Ok(fans) = locks.list() else { return info };
        for fan_name in fans.iter().filter_map(|n| n.to_str()) {
            if !store::is_fan_out_name(fan_name) {
                continue;
            }
            let fan = match locks.sub(fan_name) {
                Ok(d) => d,
                Err(e) => {
                    warn!(target: "bucketcache", error = %e, "prune: lock directory not used");
                    continue;
                }
            };
            let Ok(files) = fan.list() else { continue };
            for name in files.iter().filter_map(|n| n.to_str()) {
                if !name.strip_suffix(".lock").is_some_and(store::is_entry_name) {
                    continue;
                }
                // Same discipline as a leader: remove only a file we hold the lock on and that is still current.
                let Ok(f) = fan.open_lock(name, false) else { continue };
                if f.try_lock().is_ok() && is_current(&f, &fan, name).unwrap_or(false) && fan.remove(name).is_ok() {
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

    /// Runs `f` once with each protocol: the byte-range locks (Linux) and the per-key lock files.
    fn both_protocols(f: impl Fn(bool)) {
        for files in [false, true] {
            TEST_LOCK_FILES.with(|c| c.set(Some(files)));
            f(files);
            TEST_LOCK_FILES.with(|c| c.set(None));
        }
    }

    /// The `.lock` files left in the per-key fan-outs under `root`.
    fn lock_files_left(root: &Path) -> usize {
        let Ok(fans) = std::fs::read_dir(root.join(LOCKS_DIR)) else {
            return 0;
        };
        fans.flatten()
            .filter(|f| f.path().is_dir())
            .map(|f| std::fs::read_dir(f.path()).map(|d| d.count()).unwrap_or(0))
            .sum()
    }

    #[test]
    fn lock_paths_fan_out_and_stay_in_the_bucket() {
        let k = KeyHash([0xab; 32]);
        let p = lock_path(Path::new("/c"), &k);
        assert_eq!(p, Path::new("/c/locks-v1/ab").join(format!("{}.lock", "ab".repeat(32))));
    }

    #[test]
    fn a_second_guard_waits_then_times_out_while_the_first_is_held() {
        both_protocols(|files| {
            let dir = tempfile::tempdir().expect("tempdir");
            let bucket = Bucket::new(dir.path()).expect("bucket");
            let key = KeyHash([1; 32]);
            let CrossFlight::Compute(first) = bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO) else {
                panic!("cold key")
            };
            assert!(first.is_leader(), "files: {files}");
            if files {
                assert!(lock_path(dir.path(), &key).exists(), "the per-key protocol ran");
            }
            let CrossFlight::Compute(second) =
                bucket.begin_cross_process_flight::<u32>(&key, Duration::from_millis(30))
            else {
                panic!("cold key")
            };
            assert_eq!(second.role(), FlightRole::TimedOut, "files: {files}");
            assert!(second.waited() >= Duration::from_millis(30));
            drop(second);
            bucket.insert_typed(&key, &7u32, None, None).expect("insert");
            drop(first);
            assert_eq!(
                lock_files_left(dir.path()),
                0,
                "no per-key lock file is left (files: {files})"
            );
            assert!(
                matches!(bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO), CrossFlight::Hit(h) if h.value == 7)
            );
        });
    }

    #[test]
    fn prune_removes_only_unheld_lock_files() {
        both_protocols(|files| {
            let dir = tempfile::tempdir().expect("tempdir");
            let bucket = Bucket::new(dir.path()).expect("bucket");
            let held = KeyHash([2; 32]);
            let left = KeyHash([3; 32]);
            let CrossFlight::Compute(guard) = bucket.begin_cross_process_flight::<u32>(&held, Duration::ZERO) else {
                panic!("cold key")
            };
            // A per-key lock file left by a crashed computer, and a file of another shape (never a candidate).
            let left_path = lock_path(dir.path(), &left);
            std::fs::create_dir_all(left_path.parent().expect("fan")).expect("mkdir");
            std::fs::write(&left_path, b"").expect("create");
            let foreign = left_path.with_file_name("Cargo.lock");
            std::fs::write(&foreign, b"x").expect("create");
            assert_eq!(bucket.prune_locks().num, 1, "files: {files}");
            assert!(bucket.lock_path(&held).exists(), "the held lock's file stays");
            assert!(!left_path.exists());
            assert!(foreign.exists(), "a name of another shape is never removed");
            drop(guard);
        });
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_or_foreign_lock_file_is_refused_and_the_caller_computes() {
        both_protocols(|files| {
            let dir = tempfile::tempdir().expect("tempdir");
            let outside = tempfile::tempdir().expect("tempdir");
            let bucket = Bucket::new(dir.path().join("b")).expect("bucket");
            let key = KeyHash([4; 32]);
            let target = outside.path().join("created-by-the-cache");
            let link_at = bucket.lock_path(&key);
            std::fs::create_dir_all(link_at.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(&target, &link_at).expect("symlink");
            let CrossFlight::Compute(g) = bucket.begin_cross_process_flight::<u32>(&key, Duration::from_secs(5)) else {
                panic!("cold key")
            };
            assert_eq!(g.role(), FlightRole::Unlocked, "files: {files}");
            assert!(
                !target.exists(),
                "a dangling link's target is never created (files: {files})"
            );
        });
    }
}
