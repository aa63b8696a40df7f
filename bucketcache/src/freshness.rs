//! Freshness: one pure function from an entry's dates, the time and a call's options to [`Freshness`], and the
//! read of an entry with its staleness ([`Bucket::lookup_stale`], [`Bucket::lookup_with_policy`]).
//!
//! The `#[bucket_cache]` attribute's `stale`, `early_refresh` and `max_age` arguments decide through [`judge`];
//! an application using a [`Bucket`] directly can build the same policy from [`Bucket::lookup_with_policy`].
//!
//! A stale window is a **read-time grace**: an entry stays readable (and its file is kept) for that long after its
//! expiry, by readers that ask for the window. A read without a window treats an expired entry as today: a miss,
//! and its file is removed. [`Bucket::prune_directory`] removes every expired entry, those within any reader's
//! stale window included: prune a bucket used with a stale window less often than the window, or accept that a
//! pruned entry is a plain miss.
//!
//! ```
//! # fn main() -> bucketcache::Result<()> {
//! use std::time::Duration;
//! use bucketcache::{Bucket, Freshness, ManualClock, WriteOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let clock = ManualClock::starting_now();
//! let bucket = Bucket::builder(dir.path()).clock(clock.clone()).build()?;
//! let key = bucket.key_hash("quote")?;
//! bucket.insert_with(&key, &42u32, &WriteOptions::default().lifetime(Duration::from_secs(60)))?;
//! let window = Some(Duration::from_secs(600));
//! assert_eq!(bucket.lookup_stale::<u32>(&key, window)?.map(|(_, f)| f), Some(Freshness::Fresh));
//! clock.advance(Duration::from_secs(120)); // expired, within the window
//! let (hit, freshness) = bucket.lookup_stale::<u32>(&key, window)?.expect("kept");
//! assert_eq!((hit.value, freshness), (42, Freshness::Stale));
//! clock.advance(Duration::from_secs(600)); // beyond the window: a miss
//! assert!(bucket.lookup_stale::<u32>(&key, window)?.is_none());
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::backend::Backend;
use crate::bucket::{Bucket, Hit};
use crate::error::Result;
use crate::key::{KeyHash, KeyMaker};

/// How fresh an entry is, for one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// Before its expiry: serve it.
    Fresh,
    /// Before its expiry, but this caller drew an early refresh (XFetch): recompute now, while the others keep
    /// getting the fresh value.
    EarlyRefresh,
    /// Expired, within the stale window: serve it while one caller recomputes.
    Stale,
    /// Expired beyond the stale window, or older than the call's `max_age`: a miss.
    Expired,
}

impl Freshness {
    /// A word for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::EarlyRefresh => "early refresh",
            Freshness::Stale => "stale",
            Freshness::Expired => "expired",
        }
    }
}

/// An entry's dates, as its header records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dates {
    /// When it was written (ms since the epoch).
    pub written_ms: i64,
    /// When it expires (ms since the epoch); `None`: never.
    pub expires_ms: Option<i64>,
    /// How long its value took to compute; `None`: unknown.
    pub cost: Option<Duration>,
}

impl Dates {
    /// The dates of a hit.
    pub fn of<V>(hit: &Hit<V>) -> Dates {
        Dates {
            written_ms: hit.written.timestamp_millis(),
            expires_ms: hit.expires.map(|e| e.timestamp_millis()),
            cost: hit.cost,
        }
    }
}

/// What one call asks of an entry's freshness.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// How long after its expiry an entry may still be served (stale-while-revalidate); `None`: not at all.
    pub stale_window: Option<Duration>,
    /// The β of probabilistic early refresh (Vattani et al., VLDB 2015); `None`: no early refresh. `1.0` is the
    /// paper's default; larger refreshes earlier.
    pub early_refresh: Option<f64>,
    /// An entry older than this is [`Freshness::Expired`] for this call; `None`: no limit.
    pub max_age: Option<Duration>,
}

impl Policy {
    /// Serves expired entries for up to `window` after their expiry.
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.stale_window = Some(window);
        self
    }

    /// Refreshes early with the given β.
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.early_refresh = Some(beta);
        self
    }

    /// Treats entries older than `max_age` as expired.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The freshness of an entry with `dates` at `now_ms` for a call asking `policy`. `draw` is a uniform random
/// number in `(0, 1]`, used only for early refresh (see [`random_draw`]).
///
/// In order: an entry at least `max_age` old is `Expired`; an entry that never expires is `Fresh`; before its
/// expiry, with `early_refresh = β` and a known cost, it is `EarlyRefresh` when
/// `now - cost · β · ln(draw) >= expiry` (XFetch), else `Fresh`; after its expiry, `Stale` within the window,
/// else `Expired`. An expiry equal to `now` is past.
pub fn judge(dates: &Dates, now_ms: i64, policy: &Policy, draw: f64) -> Freshness {
    if let Some(max_age) = policy.max_age {
        if now_ms.saturating_sub(dates.written_ms) >= ms(max_age) {
            return Freshness::Expired;
        }
    }
    let Some(expires) = dates.expires_ms else {
        return Freshness::Fresh;
    };
    if now_ms < expires {
        if let (Some(beta), Some(cost)) = (policy.early_refresh, dates.cost) {
            // The gap before expiry at which this caller refreshes: -cost · β · ln(draw), in ms (≥ 0).
            let draw = if draw > 0.0 && draw <= 1.0 { draw } else { 1.0 };
            let gap = -(cost.as_secs_f64() * 1000.0) * beta * draw.ln();
            if gap.is_finite() && (now_ms as f64) + gap >= expires as f64 {
                return Freshness::EarlyRefresh;
            }
        }
        return Freshness::Fresh;
    }
    match policy.stale_window {
        Some(window) if now_ms < expires.saturating_add(ms(window)) => Freshness::Stale,
        _ => Freshness::Expired,
    }
}

thread_local! {
    static RANDOM: Cell<u64> = Cell::new(initial_seed());
}

fn initial_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // `RandomState` is seeded per process from the OS; mixed with the thread and the time, per thread.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    std::hash::Hash::hash(&std::thread::current().id(), &mut h);
    h.finish()
}

/// A uniform random number in `(0, 1]` from this thread's generator (splitmix64): the draw early refresh uses.
pub fn random_draw() -> f64 {
    RANDOM.with(|state| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits, shifted into (0, 1].
        ((z >> 11) + 1) as f64 / (1u64 << 53) as f64
    })
}

/// Seeds this thread's generator for [`random_draw`]: early refreshes become reproducible (for tests).
pub fn seed_thread_random(seed: u64) {
    RANDOM.with(|state| state.set(seed));
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    /// Reads the entry for a key hash with its staleness: `Fresh` before its expiry, `Stale` when expired less
    /// than `window` ago (its file is kept), `Ok(None)` beyond the window (the file is removed, as
    /// [`Bucket::lookup`] does) or when there is no usable entry. `window = None` reads as [`Bucket::lookup`].
    ///
    /// # Errors
    /// As [`Bucket::get`].
    pub fn lookup_stale<V>(&self, key: &KeyHash, window: Option<Duration>) -> Result<Option<(Hit<V>, Freshness)>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let policy = Policy {
            stale_window: window,
            ..Policy::default()
        };
        self.lookup_with_policy(key, &policy)
    }

    /// Reads the entry for a key hash and judges it with `policy` ([`judge`], with a [`random_draw`] when the
    /// policy refreshes early): the hit and its [`Freshness`], which may be `Expired` for an entry older than the
    /// policy's `max_age` (its file is kept: it has not expired). Entries expired beyond the stale window read as
    /// `Ok(None)` and their files are removed.
    ///
    /// # Errors
    /// As [`Bucket::get`].
    pub fn lookup_with_policy<V>(&self, key: &KeyHash, policy: &Policy) -> Result<Option<(Hit<V>, Freshness)>>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let grace = policy.stale_window.map_or(0, ms);
        let Some(hit) = self.lookup_within::<V>(key, grace)? else {
            return Ok(None);
        };
        let draw = if policy.early_refresh.is_some() {
            random_draw()
        } else {
            1.0
        };
        let freshness = judge(&Dates::of(&hit), self.now_ms(), policy, draw);
        Ok(Some((hit, freshness)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000;
    const S: i64 = 1000;

    fn dates(expires_in: Option<i64>, cost_ms: Option<u64>) -> Dates {
        Dates {
            written_ms: T0,
            expires_ms: expires_in.map(|e| T0 + e),
            cost: cost_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn without_options_an_entry_is_fresh_until_its_expiry_then_expired() {
        let d = dates(Some(60 * S), None);
        let p = Policy::default();
        assert_eq!(judge(&d, T0, &p, 0.5), Freshness::Fresh);
        assert_eq!(judge(&d, T0 + 60 * S - 1, &p, 0.5), Freshness::Fresh);
        assert_eq!(judge(&d, T0 + 60 * S, &p, 0.5), Freshness::Expired);
        assert_eq!(judge(&d, T0 + 3600 * S, &p, 0.5), Freshness::Expired);
        let never = dates(None, Some(1000));
        assert_eq!(judge(&never, i64::MAX, &p, 0.5), Freshness::Fresh);
    }

    #[test]
    fn the_stale_window_follows_the_expiry() {
        let d = dates(Some(60 * S), None);
        let p = Policy::default().stale_window(Duration::from_secs(600));
        assert_eq!(judge(&d, T0 + 59 * S, &p, 0.5), Freshness::Fresh);
        assert_eq!(judge(&d, T0 + 60 * S, &p, 0.5), Freshness::Stale);
        assert_eq!(judge(&d, T0 + 660 * S - 1, &p, 0.5), Freshness::Stale);
        assert_eq!(judge(&d, T0 + 660 * S, &p, 0.5), Freshness::Expired);
        // An entry that never expires is never stale.
        assert_eq!(judge(&dates(None, None), T0 + 660 * S, &p, 0.5), Freshness::Fresh);
    }

    #[test]
    fn max_age_overrides_everything() {
        let d = dates(Some(60 * S), Some(100));
        let p = Policy::default()
            .stale_window(Duration::from_secs(600))
            .early_refresh(1.0)
            .max_age(Duration::ZERO);
        for now in [T0, T0 + 30 * S, T0 + 61 * S, T0 + 1000 * S] {
            assert_eq!(judge(&d, now, &p, 1.0), Freshness::Expired, "max_age 0 at {now}");
        }
        let p = Policy::default().max_age(Duration::from_secs(10));
        assert_eq!(judge(&d, T0 + 9 * S, &p, 1.0), Freshness::Fresh);
        assert_eq!(judge(&d, T0 + 10 * S, &p, 1.0), Freshness::Expired);
        assert_eq!(judge(&dates(None, None), T0 + 10 * S, &p, 1.0), Freshness::Expired);
        let p = Policy::default().max_age(Duration::from_secs(3600));
        assert_eq!(
            judge(&d, T0 + 61 * S, &p, 1.0),
            Freshness::Expired,
            "expiry still applies"
        );
    }

    #[test]
    fn early_refresh_is_xfetch() {
        // cost 1s, β 1: refresh when -1000 · ln(draw) >= time left (ms).
        let d = dates(Some(60 * S), Some(1000));
        let p = Policy::default().early_refresh(1.0);
        // draw 1: ln 1 = 0, refresh only at expiry (which is then expired, not early).
        assert_eq!(judge(&d, T0 + 60 * S - 1, &p, 1.0), Freshness::Fresh);
        // draw e^-1: gap 1000 ms.
        let draw = (-1.0f64).exp();
        assert_eq!(judge(&d, T0 + 59 * S - 1, &p, draw), Freshness::Fresh);
        assert_eq!(judge(&d, T0 + 59 * S + 1, &p, draw), Freshness::EarlyRefresh);
        // β 2 doubles the gap.
        let p2 = Policy::default().early_refresh(2.0);
        assert_eq!(judge(&d, T0 + 58 * S + 1, &p2, draw), Freshness::EarlyRefresh);
        assert_eq!(judge(&d, T0 + 58 * S + 1, &p, draw), Freshness::Fresh);
        // Unknown cost: never early.
        assert_eq!(
            judge(&dates(Some(60 * S), None), T0 + 60 * S - 1, &p, 1e-300),
            Freshness::Fresh
        );
        // Out-of-range draws are treated as 1 (no early refresh), never a panic.
        for bad in [0.0, -1.0, f64::NAN, 2.0] {
            assert_eq!(judge(&d, T0 + 30 * S, &p, bad), Freshness::Fresh);
        }
        // After expiry, early refresh does not apply: stale or expired.
        assert_eq!(judge(&d, T0 + 60 * S, &p, draw), Freshness::Expired);
    }

    #[test]
    fn early_refresh_rate_grows_as_expiry_nears() {
        // A fixed seed: the counts are deterministic. Theory: P(refresh with t ms left) = exp(-t / (cost · β)).
        seed_thread_random(12);
        let d = dates(Some(60 * S), Some(1000));
        let p = Policy::default().early_refresh(1.0);
        let n = 10_000;
        let mut rates = Vec::new();
        for left in [4000, 2000, 1000, 500, 100] {
            let hits = (0..n)
                .filter(|_| judge(&d, T0 + 60 * S - left, &p, random_draw()) == Freshness::EarlyRefresh)
                .count();
            let rate = hits as f64 / f64::from(n);
            let theory = (-(left as f64) / 1000.0).exp();
            assert!(
                (rate - theory).abs() < 0.03,
                "{left} ms left: rate {rate}, theory {theory}"
            );
            rates.push(rate);
        }
        assert!(rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");
    }

    #[test]
    fn draws_are_in_range_and_reproducible() {
        seed_thread_random(7);
        let a: Vec<f64> = (0..1000).map(|_| random_draw()).collect();
        seed_thread_random(7);
        let b: Vec<f64> = (0..1000).map(|_| random_draw()).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x > 0.0 && x <= 1.0));
    }
}
