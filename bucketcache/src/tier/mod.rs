//! Wider tiers behind the local directory: where entry bytes live beyond this machine.
//!
//! A cached call looks in the memory tier, then the local directory, then an optional shared tier, and stops at the
//! first verified entry. A shared tier is a type that implements [`SharedTier`]: it moves entry bytes (the same
//! self-verifying bytes the local directory stores), never decodes them, and is never trusted: the bucket verifies
//! every entry it returns (checksums, key hash, backend) before using it.
//!
//! The bucket wraps the tier in a [`Guarded`] slot that owns the failure policy, so a tier implementation only says
//! what happened ([`TierError::Timeout`] or [`TierError::Failure`]):
//!
//! - an unreachable or stalled tier is skipped for a cool-off after a failure (one timeout per cool-off, not per
//!   call), and the failure is logged once per cool-off at `warn`;
//! - every failure is a miss or a skipped write, never an error of the call and never a panic;
//! - everything is counted ([`SharedStats`], read with [`Bucket::stats`](crate::Bucket::stats)).
//!
//! A new tier (S3, HTTP, ...) implements [`SharedTier`] in a file of its own beside `redis.rs` and is attached with
//! [`BucketBuilder::shared`](crate::BucketBuilder::shared); nothing in the bucket changes.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::key::KeyHash;

pub mod lease;
#[cfg(feature = "redis")]
pub mod redis;

/// How a shared tier failed. The bucket counts the two kinds apart and treats both as a miss or a skipped write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TierError {
    /// The tier did not answer within its timeout (connect or operation).
    Timeout(String),
    /// The tier answered with an error, or the connection failed.
    Failure(String),
    /// The tier answered, but refused this one operation (e.g. Redis `OOM` under `noeviction`): counted, the write is
    /// skipped, and the tier stays in use.
    Refused(String),
}

impl fmt::Display for TierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TierError::Timeout(m) => write!(f, "timeout: {m}"),
            TierError::Failure(m) => write!(f, "failure: {m}"),
            TierError::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

impl std::error::Error for TierError {}

/// A tier URL with its password replaced by `***`, for logs and tools (`redis://user:secret@host` →
/// `redis://user:***@host`).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let user = url[s + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A random token proving who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseToken(pub String);

/// A shared tier: get, put with a time-to-live, remove, and a lease for single flight across machines.
///
/// Implementations must bound every operation by a timeout and must not retry on their own: the bucket's
/// [`Guarded`] slot decides when to try again.
pub trait SharedTier: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and statistics ("redis").
    fn name(&self) -> &'static str;

    /// Whether the tier only serves reads (writes no entry and takes no lease).
    fn read_only(&self) -> bool;

    /// Entries larger than this are not uploaded.
    fn max_value_bytes(&self) -> u64;

    /// How long a lease lasts unless renewed.
    fn lease_duration(&self) -> Duration;

    /// The entry bytes stored for `key`, if any.
    ///
    /// # Errors
    /// A [`TierError`] when the tier cannot answer.
    fn get(&self, key: &KeyHash) -> Result<Option<Vec<u8>>, TierError>;

    /// Stores entry bytes for `key`, expiring after `ttl` (`None`: never).
    ///
    /// # Errors
    /// A [`TierError`] when the write did not happen.
    fn put(&self, key: &KeyHash, entry: &[u8], ttl: Option<Duration>) -> Result<(), TierError>;

    /// Removes `key`'s entry; `true` when there was one.
    ///
    /// # Errors
    /// A [`TierError`] when the tier cannot answer.
    fn remove(&self, key: &KeyHash) -> Result<bool, TierError>;

    /// Tries to take `key`'s lease for [`lease_duration`](Self::lease_duration): `Some(token)` when taken, `None`
    /// when another holder has it.
    ///
    /// # Errors
    /// A [`TierError`] when the tier cannot answer.
    fn try_lease(&self, key: &KeyHash) -> Result<Option<LeaseToken>, TierError>;

    /// Extends a held lease by [`lease_duration`](Self::lease_duration); `false` when it is no longer ours.
    ///
    /// # Errors
    /// A [`TierError`] when the tier cannot answer.
    fn renew_lease(&self, key: &KeyHash, token: &LeaseToken) -> Result<bool, TierError>;

    /// Releases a held lease (compare-and-delete: never another holder's); `false` when it was no longer ours.
    ///
    /// # Errors
    /// A [`TierError`] when the tier cannot answer.
    fn release_lease(&self, key: &KeyHash, token: &LeaseToken) -> Result<bool, TierError>;

    /// Whether someone holds `key`'s lease.
    ///
    /// # Errors
    /// A [`TierError`] when the tier cannot answer.
    fn lease_held(&self, key: &KeyHash) -> Result<bool, TierError>;
}

/// Counters of a bucket's shared tier, read with [`Bucket::stats`](crate::Bucket::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Verified entries served by the shared tier (and copied into the local tier).
    pub hits: u64,
    /// Lookups the shared tier answered with nothing usable (absent or expired).
    pub misses: u64,
    /// Entries the shared tier answered with that failed verification (garbage, another format or key, another
    /// backend): counted as misses too.
    pub rejected: u64,
    /// Entries written to the shared tier.
    pub writes: u64,
    /// Writes skipped: read-only tier, entry larger than the limit, already expired, or refused by the server.
    pub writes_skipped: u64,
    /// Operations that failed (connection refused, an error reply, a refused write).
    pub errors: u64,
    /// Operations that timed out.
    pub timeouts: u64,
    /// Operations not attempted because the tier was cooling off after a failure.
    pub cooling_off: u64,
    /// Times a caller waited for another machine's lease.
    pub lease_waits: u64,
    /// Times a waiter took over a lease whose holder stopped renewing it (died).
    pub takeovers: u64,
}

/// Default cool-off after a shared-tier failure: 30 s.
pub const DEFAULT_COOL_OFF: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
    writes: AtomicU64,
    writes_skipped: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    cooling_off: AtomicU64,
    lease_waits: AtomicU64,
    takeovers: AtomicU64,
}

/// What one counter counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Hit,
    Miss,
    Rejected,
    Write,
    WriteSkipped,
    LeaseWait,
    Takeover,
}

/// A shared tier with the failure policy around it: cool-off, one `warn` per cool-off, counters.
#[derive(Debug, Clone)]
pub struct Guarded {
    inner: Arc<GuardedInner>,
}

#[derive(Debug)]
struct GuardedInner {
    tier: Box<dyn SharedTier>,
    cool_off: Duration,
    start: Instant,
    /// Nanoseconds since `start` until which the tier is skipped; 0 when in use.
    down_until: AtomicU64,
    /// Whether the current cool-off was already logged.
    logged: AtomicBool,
    counters: Counters,
}

impl Guarded {
    /// Wraps a tier with a cool-off of `cool_off` after each failure.
    pub fn new(tier: impl SharedTier, cool_off: Duration) -> Self {
        Guarded::from_box(Box::new(tier), cool_off)
    }

    pub(crate) fn from_box(tier: Box<dyn SharedTier>, cool_off: Duration) -> Self {
        Guarded {
            inner: Arc::new(GuardedInner {
                tier,
                cool_off,
                start: Instant::now(),
                down_until: AtomicU64::new(0),
                logged: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        }
    }

    /// The tier.
    pub fn tier(&self) -> &dyn SharedTier {
        &*self.inner.tier
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.inner.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the tier is in use now (not cooling off).
    pub fn available(&self) -> bool {
        let until = self.inner.down_until.load(Ordering::Relaxed);
        until == 0 || self.now_ns() >= until
    }

    pub(crate) fn count(&self, what: Count) {
        let c = &self.inner.counters;
        let counter = match what {
            Count::Hit => &c.hits,
            Count::Miss => &c.misses,
            Count::Rejected => &c.rejected,
            Count::Write => &c.writes,
            Count::WriteSkipped => &c.writes_skipped,
            Count::LeaseWait => &c.lease_waits,
            Count::Takeover => &c.takeovers,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `op` on the tier unless it is cooling off; a failure starts a cool-off (logged once) and is counted.
    /// `None`: skipped or failed.
    pub(crate) fn call<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(&dyn SharedTier) -> Result<T, TierError>,
    ) -> Option<T> {
        let c = &self.inner.counters;
        if !self.available() {
            c.cooling_off.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match op(self.tier()) {
            Ok(v) => {
                if self.inner.down_until.load(Ordering::Relaxed) != 0 {
                    self.inner.down_until.store(0, Ordering::Relaxed);
                    self.inner.logged.store(false, Ordering::Relaxed);
                    debug!(target: "bucketcache", tier = self.tier().name(), "shared tier back in use");
                }
                Some(v)
            }
            Err(TierError::Refused(m)) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                c.writes_skipped.fetch_add(1, Ordering::Relaxed);
                debug!(target: "bucketcache", tier = self.tier().name(), op = what, reason = %m, "shared tier refused the operation");
                None
            }
            Err(e) => {
                match e {
                    TierError::Timeout(_) => c.timeouts.fetch_add(1, Ordering::Relaxed),
                    _ => c.errors.fetch_add(1, Ordering::Relaxed),
                };
                let until = self
                    .now_ns()
                    .saturating_add(u64::try_from(self.inner.cool_off.as_nanos()).unwrap_or(u64::MAX));
                self.inner.down_until.store(until.max(1), Ordering::Relaxed);
                if !self.inner.logged.swap(true, Ordering::Relaxed) {
                    warn!(
                        target: "bucketcache",
                        tier = self.tier().name(),
                        op = what,
                        error = %e,
                        cool_off = ?self.inner.cool_off,
                        "shared tier unavailable; skipping it for the cool-off (calls run against the local tiers)"
                    );
                }
                None
            }
        }
    }

    /// The counters now.
    pub fn stats(&self) -> SharedStats {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SharedStats {
            hits: l(&c.hits),
            misses: l(&c.misses),
            rejected: l(&c.rejected),
            writes: l(&c.writes),
            writes_skipped: l(&c.writes_skipped),
            errors: l(&c.errors),
            timeouts: l(&c.timeouts),
            cooling_off: l(&c.cooling_off),
            lease_waits: l(&c.lease_waits),
            takeovers: l(&c.takeovers),
        }
    }
}
