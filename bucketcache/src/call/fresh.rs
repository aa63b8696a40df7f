//! The freshness path of a cached call (`stale`, `stale_if_error`, `early_refresh`, `max_age`): the expansion uses
//! it only for functions with one of these arguments, so other functions' hits run none of it.
//!
//! One decision per call, from [`Bucket::lookup_with_policy`] and [`crate::freshness::judge`]:
//! - fresh: the value;
//! - stale within the window, or an early refresh drawn: this caller refreshes if it becomes the key's only
//!   refresher (the in-process flight joined without waiting, then the cross-process lock tried without waiting);
//!   every other caller gets the entry's value at once, never waiting;
//! - expired beyond the window, older than `max_age`, or missing: a normal miss (single flight, waits bounded).
//!
//! Each decision is logged at `debug` with its reason. Counted as [`Call::begin`] counts: a value returned from
//! the cache (fresh, or stale while another caller refreshes) is a hit; a refresh (stale or early) is a miss of
//! reason "expired", as is an entry older than `max_age`.

use std::time::Duration;

use super::*;
use crate::freshness::{Freshness, Policy};

/// What a function's freshness arguments ask.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreshOpts {
    /// The stale window, early refresh β and this call's `max_age`.
    pub policy: Policy,
    /// `stale_if_error`: a failed refresh returns the entry's value.
    pub stale_if_error: bool,
}

impl FreshOpts {
    /// The options of a function: `stale` window, `early_refresh` β, `stale_if_error`.
    pub fn new(stale: Option<Duration>, early_refresh: Option<f64>, stale_if_error: bool) -> Self {
        FreshOpts {
            policy: Policy {
                stale_window: stale,
                early_refresh,
                max_age: None,
            },
            stale_if_error,
        }
    }

    /// With this call's `max_age` (a `Duration` or `Option<Duration>` parameter).
    #[must_use]
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        self.policy.max_age = max_age;
        self
    }
}

/// A `max_age` parameter: `Duration` or `Option<Duration>` (or a reference to one).
#[diagnostic::on_unimplemented(
    message = "`max_age` names a parameter of type `{Self}`, but it must be a `Duration` or an `Option<Duration>`",
    label = "`max_age = \"...\"` reads this parameter as the call's maximum age",
    note = "use `std::time::Duration` (or `Option<Duration>`, `None` for no limit)"
)]
pub trait MaxAge {
    /// The limit.
    fn max_age(&self) -> Option<Duration>;
}

impl MaxAge for Duration {
    #[inline]
    fn max_age(&self) -> Option<Duration> {
        Some(*self)
    }
}

impl MaxAge for Option<Duration> {
    #[inline]
    fn max_age(&self) -> Option<Duration> {
        *self
    }
}

impl<T: MaxAge + ?Sized> MaxAge for &T {
    #[inline]
    fn max_age(&self) -> Option<Duration> {
        (**self).max_age()
    }
}

/// The `max_age` parameter's value.
#[inline]
pub fn max_age<T: MaxAge>(value: &T) -> Option<Duration> {
    value.max_age()
}

/// What [`Call::begin_fresh`] decided.
pub enum FreshStep<R> {
    /// A value to return (fresh, or stale/early while another caller refreshes).
    Hit(Hit<R>),
    /// A miss: run the body, store its value.
    Run(RunGuard),
    /// Refresh: run the body and store its value; `Hit` is the entry's value, returned instead when the body
    /// fails and the function has `stale_if_error`.
    Refresh(RunGuard, Hit<R>),
}

impl<R> FreshStep<R> {
    /// `Ok(hit)` to return, or `Err((guard, stale))` to run the body (`stale`: the value for `stale_if_error`).
    #[inline]
    #[allow(clippy::result_large_err)] // matched at once by the expansion, never propagated
    pub fn split(self) -> Result<Hit<R>, (RunGuard, Option<Hit<R>>)> {
        match self {
            FreshStep::Hit(hit) => Ok(hit),
            FreshStep::Run(guard) => Err((guard, None)),
            FreshStep::Refresh(guard, stale) => Err((guard, Some(stale))),
        }
    }
}

/// Whether a return value is a failure (`Err`, `None`), by autoref specialization like [`Probe`]:
/// `(&Probe::<R>::new()).failed_fn()`.
pub trait FailErr<R> {
    /// The test.
    #[inline]
    fn failed_fn(&self) -> fn(&R) -> bool {
        |_| false
    }
}
impl<R> FailErr<R> for &Probe<R> {}

/// See [`FailErr`].
pub trait FailResult<T, E> {
    /// The test.
    #[inline]
    fn failed_fn(&self) -> fn(&Result<T, E>) -> bool {
        Result::is_err
    }
}
impl<T, E> FailResult<T, E> for Probe<Result<T, E>> {}

/// See [`FailErr`].
pub trait FailOption<T> {
    /// The test.
    #[inline]
    fn failed_fn(&self) -> fn(&Option<T>) -> bool {
        Option::is_none
    }
}
impl<T> FailOption<T> for Probe<Option<T>> {}

/// A future that turns a panic while polling `F` into `Err` (for `stale_if_error` on an `async fn`).
pub struct CatchUnwind<F>(pub F);

impl<F: core::future::Future + Unpin> core::future::Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut core::task::Context<'_>) -> core::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core::pin::Pin::new(inner).poll(cx))) {
            Ok(core::task::Poll::Pending) => core::task::Poll::Pending,
            Ok(core::task::Poll::Ready(v)) => core::task::Poll::Ready(Ok(v)),
            Err(panic) => core::task::Poll::Ready(Err(panic)),
        }
    }
}

/// Runs a body, catching a panic (for `stale_if_error` on a sync function).
#[inline]
pub fn catch<R>(body: impl FnOnce() -> R) -> std::thread::Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
}

/// The bucket underneath a call target.
type UnderBucket<T> = Bucket<<T as CallTarget>::Backend, <T as CallTarget>::KeyMaker>;

impl<T: CallTarget> Call<'_, T> {
    /// The entry judged by `policy`; an unusable entry is a miss (logged once per call, as [`Call::begin`] does).
    fn judged<R, S: Shape<R>>(
        &self,
        bucket: &Bucket<T::Backend, T::KeyMaker>,
        key: &KeyHash,
        policy: &Policy,
        reported: &mut bool,
    ) -> Option<(Hit<R>, Freshness)> {
        match bucket.lookup_with_policy::<S::Stored>(key, policy) {
            Ok(found) => found.map(|(hit, f)| (hit.map(S::restore), f)),
            Err(e) if *reported => {
                debug!(target: "bucketcache", function = self.function, error = %e, "cached entry still unusable");
                None
            }
            Err(e) => {
                *reported = true;
                warn!(target: "bucketcache", function = self.function, error = %e, "cached entry unusable; the function runs and replaces it");
                None
            }
        }
    }

    /// One round of the decision: a step, or a flight to wait for (a miss while another caller computes).
    fn fresh_round<R, S: Shape<R>>(
        &self,
        bucket: &Bucket<T::Backend, T::KeyMaker>,
        key: &KeyHash,
        opts: &FreshOpts,
        wait: bool,
        reported: &mut bool,
    ) -> Result<FreshStep<R>, Arc<Flight>> {
        let function = self.function;
        // After taking the flight or the lock, only a fresh entry (written meanwhile) ends the decision. The read
        // keeps the stale window: it must not remove the entry the other callers are being served.
        let strict = Policy {
            stale_window: opts.policy.stale_window,
            max_age: opts.policy.max_age,
            early_refresh: None,
        };
        let flight_id = bucket as *const Bucket<T::Backend, T::KeyMaker> as *const () as usize;
        match self.judged::<R, S>(bucket, key, &opts.policy, reported) {
            Some((hit, Freshness::Fresh)) => {
                debug!(target: "bucketcache", function, hash = %key, source = ?hit.source, "cache hit (fresh)");
                Ok(FreshStep::Hit(hit))
            }
            Some((hit, why @ (Freshness::Stale | Freshness::EarlyRefresh))) => {
                let reason = why.as_str();
                let local = match flight::join(flight_id, *key, wait) {
                    Join::Leader(local) => local,
                    Join::Follower(_) | Join::Reentrant => {
                        debug!(target: "bucketcache", function, hash = %key, reason, "serving the cached value: another caller refreshes it");
                        return Ok(FreshStep::Hit(hit));
                    }
                };
                let cross = match self.cross_wait {
                    None => None,
                    Some(_) => match bucket.try_key_lock(key) {
                        Some(cross) => Some(cross),
                        None => {
                            debug!(target: "bucketcache", function, hash = %key, reason, "serving the cached value: another process refreshes it");
                            return Ok(FreshStep::Hit(hit));
                        }
                    },
                };
                // Another process may have refreshed it between our read and our lock.
                if let Some((fresh, Freshness::Fresh)) = self.judged::<R, S>(bucket, key, &strict, reported) {
                    if fresh.written > hit.written {
                        debug!(target: "bucketcache", function, hash = %key, "cache hit (refreshed by another caller)");
                        return Ok(FreshStep::Hit(fresh));
                    }
                }
                debug!(target: "bucketcache", function, hash = %key, reason, expires = ?hit.expires, cost = ?hit.cost, "refreshing");
                // The refresh runs the body: a miss, counted by `run_begins` as "expired" (an early refresh too).
                self.obs.note(MissReason::Expired);
                Ok(FreshStep::Refresh(
                    RunGuard {
                        _local: Some(local),
                        _cross: cross,
                        _shared: None,
                    },
                    hit,
                ))
            }
            found => {
                let reason = match &found {
                    Some(_) => "older than max_age",
                    None => "no usable entry, or expired beyond the stale window",
                };
                // The miss's reason: the bucket's note for a missing entry (expired, corrupt), else `run_begins`
                // decides (new arguments, code changed); an entry older than `max_age` counts as expired.
                match &found {
                    Some(_) => self.obs.note(MissReason::Expired),
                    None => {
                        if let Some(noted) = crate::call::observe::take_noted(key) {
                            self.obs.note(noted);
                        }
                    }
                }
                match flight::join(flight_id, *key, wait) {
                    Join::Leader(local) => {
                        if let Some((hit, Freshness::Fresh)) = self.judged::<R, S>(bucket, key, &strict, reported) {
                            debug!(target: "bucketcache", function, hash = %key, "cache hit (computed by another caller)");
                            return Ok(FreshStep::Hit(hit));
                        }
                        debug!(target: "bucketcache", function, hash = %key, reason, "cache miss: calling");
                        let Some(limit) = self.cross_wait else {
                            return Ok(FreshStep::Run(RunGuard {
                                _local: Some(local),
                                _cross: None,
                                _shared: None,
                            }));
                        };
                        let limit = if wait { limit } else { Duration::ZERO };
                        let read = || match bucket.lookup_with_policy::<S::Stored>(key, &strict) {
                            Ok(Some((hit, Freshness::Fresh))) => Some(hit),
                            _ => None,
                        };
                        Ok(match bucket.cross_flight_reading::<S::Stored>(key, limit, &read) {
                            CrossFlight::Hit(hit) => {
                                debug!(target: "bucketcache", function, hash = %key, "computed by another process");
                                FreshStep::Hit(hit.map(S::restore))
                            }
                            CrossFlight::Compute(cross) => FreshStep::Run(RunGuard {
                                _local: Some(local),
                                _cross: Some(cross),
                                _shared: None,
                            }),
                        })
                    }
                    Join::Follower(flight) => Err(flight),
                    Join::Reentrant => {
                        debug!(target: "bucketcache", function, hash = %key, "re-entrant call of a key being computed: running");
                        Ok(FreshStep::Run(RunGuard::default()))
                    }
                }
            }
        }
    }

    /// The bucket and key a freshness decision reads, or `None` when the body just runs (no bucket, a key that
    /// could not be hashed, or `nocache`). Freshness reads and locks go to the bucket underneath (a deferred
    /// target's pending values are fresh by construction: they were just computed).
    fn fresh_target(&self, nocache: bool) -> Option<(&UnderBucket<T>, KeyHash)> {
        let (Some(target), Some(key)) = (self.bucket, self.key) else {
            return None;
        };
        if nocache {
            debug!(target: "bucketcache", function = self.function, "nocache: running");
            return None;
        }
        Some((target.bucket(), key))
    }

    /// Counts a step that returns a cached value (fresh, or stale while another caller refreshes) as a hit, as
    /// [`Call::begin`] counts its hits. A refresh is counted as a miss when its body begins (`run_begins`).
    #[inline]
    fn counted<R>(&self, bucket: &UnderBucket<T>, step: FreshStep<R>) -> FreshStep<R> {
        if let FreshStep::Hit(hit) = &step {
            self.obs.hit(bucket, hit);
        }
        step
    }

    /// [`Call::begin`] for a function with freshness arguments.
    pub fn begin_fresh<R, S: Shape<R>>(&self, _shape: S, nocache: bool, opts: &FreshOpts) -> FreshStep<R> {
        let Some((bucket, key)) = self.fresh_target(nocache) else {
            return FreshStep::Run(RunGuard::default());
        };
        let mut reported = false;
        loop {
            match self.fresh_round::<R, S>(bucket, &key, opts, true, &mut reported) {
                Ok(step) => return self.counted(bucket, step),
                Err(flight) => {
                    let limit = self.cross_wait.unwrap_or(crate::DEFAULT_FLIGHT_WAIT_LIMIT);
                    if !flight.wait(limit) {
                        warn!(target: "bucketcache", function = self.function, hash = %key, ?limit, "waited too long for another caller of this key: running");
                        return FreshStep::Run(RunGuard::default());
                    }
                }
            }
        }
    }

    /// [`Call::begin_fresh`] for `async fn`s: waiting for another caller's value does not block the thread.
    pub async fn begin_fresh_async<R, S: Shape<R>>(&self, _shape: S, nocache: bool, opts: &FreshOpts) -> FreshStep<R> {
        let Some((bucket, key)) = self.fresh_target(nocache) else {
            return FreshStep::Run(RunGuard::default());
        };
        let mut reported = false;
        loop {
            match self.fresh_round::<R, S>(bucket, &key, opts, false, &mut reported) {
                Ok(step) => return self.counted(bucket, step),
                Err(flight) => {
                    let limit = self.cross_wait.unwrap_or(crate::DEFAULT_FLIGHT_WAIT_LIMIT);
                    if !flight.landed(limit).await {
                        warn!(target: "bucketcache", function = self.function, hash = %key, ?limit, "waited too long for another caller of this key: running");
                        return FreshStep::Run(RunGuard::default());
                    }
                }
            }
        }
    }

    /// After a refresh whose body failed (`Err`, `None` or a panic) with `stale_if_error`: logs that the entry's
    /// value is returned (the entry is kept, so the next call retries).
    pub fn serving_stale_after_error(&self, what: &str) {
        debug!(target: "bucketcache", function = self.function, failure = what, "refresh failed: serving the cached value (stale_if_error); the next call retries");
    }
}
