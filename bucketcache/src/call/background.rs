//! `refresh = "background"`: a stale (or early-refreshed) entry is returned at once to every caller, the first
//! one included, while its recompute runs on a thread of its own. A child module of `__private.rs`; the expansion
//! uses it only for functions with that argument.
//!
//! - **One refresh per key**: the decision is [`Call::begin_fresh`]'s (the in-process flight joined without
//!   waiting, then the key's cross-process lock tried without waiting); the caller that wins hands both guards to
//!   the refresh thread, which drops them after storing. Callers arriving meanwhile get the entry's value (the
//!   caller's own thread included: the flight names the refresh thread as its leader, so the caller's thread is
//!   a follower like any other, served while the entry is stale and waiting, bounded, when it must not be served,
//!   e.g. `max_age`; it never runs the body beside the refresh, whose older value would then overwrite).
//! - **A bounded number of threads**: at most [`MAX_BACKGROUND_REFRESHES`] refreshes run at once in a process
//!   (one thread each, spawned per refresh, detached). When that many are running, a caller that would start
//!   another serves the entry's value without refreshing it; the next caller after a refresh lands starts it.
//!   No queue: a queued refresh would be stale work by the time it ran, and the entry is still served meanwhile.
//! - **Never a panic**: the refresh runs under `catch_unwind`; a panicking body is logged at `warn` and stores
//!   nothing, so the entry stays as it was (the next caller retries once the guards are dropped).
//! - **Process exit**: refresh threads are detached. A process that exits while one runs loses it: nothing is
//!   stored, the entry stays stale (a later call refreshes it), and the key's cross-process lock is released with
//!   the process. An entry file is only ever replaced by an atomic rename, so an exit mid-store leaves the old
//!   entry or the new one, never a torn one.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// The most background refreshes (threads) running at once in a process; past it, stale entries are served
/// without starting another (see the module docs).
pub const MAX_BACKGROUND_REFRESHES: usize = 16;

/// Background refreshes running now, in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many background refreshes are running in this process now (for tests and diagnostics).
pub fn background_refreshes_running() -> usize {
    RUNNING.load(Ordering::Acquire)
}

/// One of the [`MAX_BACKGROUND_REFRESHES`] places; released when dropped.
#[must_use]
pub struct Slot(());

impl Slot {
    /// A place, or `None` when [`MAX_BACKGROUND_REFRESHES`] refreshes are running.
    fn take() -> Option<Slot> {
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_BACKGROUND_REFRESHES).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The right to refresh a key in the background: the flight's guards and a place among the running refreshes.
#[must_use]
pub struct Refresh {
    guard: RunGuard,
    slot: Slot,
}

/// What [`Call::begin_background`] decided.
pub enum BackgroundStep<R> {
    /// A value to return: fresh, or stale while a refresh runs (or while too many are running to start one).
    Hit(Hit<R>),
    /// Return this (stale or early-refreshed) value, and refresh the key with [`Call::refresh_in_background`].
    Spawn(Refresh, Hit<R>),
    /// A miss (or `nocache`, or no bucket): run the body on this thread and store its value, as any call does.
    Run(RunGuard),
}

impl<R> BackgroundStep<R> {
    /// The value this step returns from the cache, if any (for `on_cached`).
    #[inline]
    pub fn served(&self) -> Option<&Hit<R>> {
        match self {
            BackgroundStep::Hit(hit) | BackgroundStep::Spawn(_, hit) => Some(hit),
            BackgroundStep::Run(_) => None,
        }
    }

    /// Whether the body runs (here or on a refresh thread): the miss is then counted by [`Call::run_begins`].
    #[inline]
    pub fn runs(&self) -> bool {
        !matches!(self, BackgroundStep::Hit(_))
    }
}

/// The text of a panic's payload, for the log.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(not a string)"
    }
}

impl<T: CallTarget> Call<'_, T> {
    /// [`Call::begin_fresh`] for a function with `refresh = "background"`: a refresh becomes
    /// [`BackgroundStep::Spawn`] (or, when [`MAX_BACKGROUND_REFRESHES`] are running, a hit on the entry's value).
    pub fn begin_background<R, S: Shape<R>>(&self, shape: S, nocache: bool, opts: &FreshOpts) -> BackgroundStep<R> {
        match self.begin_fresh::<R, S>(shape, nocache, opts) {
            FreshStep::Hit(hit) => BackgroundStep::Hit(hit),
            FreshStep::Run(guard) => BackgroundStep::Run(guard),
            FreshStep::Refresh(guard, hit) => match Slot::take() {
                Some(slot) => {
                    // The refresh thread leads from now on: a later call of this key on this thread must not run
                    // the body beside it (re-entrant) and race its store (see `refresh_in_background`).
                    if let Some(local) = &guard._local {
                        local.hand_off();
                    }
                    BackgroundStep::Spawn(Refresh { guard, slot }, hit)
                }
                None => {
                    debug!(target: "bucketcache", function = self.function, limit = MAX_BACKGROUND_REFRESHES, "too many background refreshes running: serving the cached value without refreshing it");
                    drop(guard);
                    // Served, not refreshed: a hit (a refresh is counted as a miss when its body begins).
                    if let Some(target) = self.bucket {
                        self.obs.hit(target.bucket(), &hit);
                    }
                    BackgroundStep::Hit(hit)
                }
            },
        }
    }
}

impl<T: CallTarget + Sync + 'static> Call<'static, T> {
    /// Runs `job` (the body and the store, written by the expansion) on a thread of its own, holding `refresh`'s
    /// guards until it returns. A panic in `job` is caught and logged; a thread that cannot be spawned is logged
    /// and the refresh is skipped (the entry's value is served meanwhile either way).
    pub fn refresh_in_background<F>(self, refresh: Refresh, job: F)
    where
        F: FnOnce(&Call<'static, T>) + Send + 'static,
    {
        let function = self.function;
        let hash = self.key;
        let run = move || {
            let call = self;
            let Refresh { guard, slot } = refresh;
            if let Some(local) = &guard._local {
                local.adopt();
            }
            debug!(target: "bucketcache", function, hash = ?hash, "background refresh: running");
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&call)));
            // Stored (or not): release the key's other callers, then the place.
            drop(guard);
            drop(slot);
            if let Err(panic) = outcome {
                warn!(target: "bucketcache", function, hash = ?hash, panic = panic_text(&*panic), "background refresh panicked: nothing stored, the entry stays as it was (the next caller retries)");
                // A payload whose drop panics must not unwind out of this thread either.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(panic)));
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("bucketcache-refresh".into())
            .spawn(run)
        {
            warn!(target: "bucketcache", function, error = %e, "cannot start a background refresh thread: serving the cached value without refreshing it");
        }
    }
}

/// Checks, with an error in our words on the parameter's type, that an argument of a `refresh = "background"`
/// function can move to the refresh thread: `(&MoveCheck::of(&arg)).__bucketcache_movable()` is a no-op when
/// its type is `Send + 'static` ([`ViaMovable`]), and one error otherwise ([`ViaNotMovable`]).
pub struct MoveCheck<T: ?Sized>(PhantomData<fn() -> PhantomData<T>>);

impl<T> MoveCheck<T> {
    /// A check for the type of `value`.
    #[inline(always)]
    pub const fn of(_value: &T) -> Self {
        MoveCheck(PhantomData)
    }
}

/// See [`MoveCheck`].
pub trait ViaMovable {
    /// Passes.
    #[inline(always)]
    fn __bucketcache_movable(&self) {}
}

impl<T: Send + 'static> ViaMovable for MoveCheck<T> {}

/// The error for an argument that cannot move to a background refresh.
#[diagnostic::on_unimplemented(
    message = "`{T}` cannot move to a background refresh: with `refresh = \"background\"` every argument must be \
               `Send + 'static`",
    label = "this argument moves to the thread that refreshes the entry",
    note = "take an owned, thread-safe value (`String` for `&str`, `Arc<T>` for `Rc<T>`; for a type parameter, \
            add the bounds `Send + 'static`), or remove `refresh = \"background\"` (the first caller after expiry \
            then refreshes while the others get the stale value at once)"
)]
pub trait ArgIsMovable<T: ?Sized> {}

/// See [`MoveCheck`].
pub trait ViaNotMovable<T: ?Sized> {
    /// The error.
    #[inline(always)]
    fn __bucketcache_movable(&self)
    where
        Self: ArgIsMovable<T>,
    {
    }
}

impl<T: ?Sized> ViaNotMovable<T> for &MoveCheck<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released() {
        // The only test in this crate that takes slots: the count is ours.
        let held: Vec<Slot> = std::iter::from_fn(Slot::take)
            .take(MAX_BACKGROUND_REFRESHES + 5)
            .collect();
        assert_eq!(held.len(), MAX_BACKGROUND_REFRESHES);
        assert_eq!(background_refreshes_running(), MAX_BACKGROUND_REFRESHES);
        assert!(Slot::take().is_none(), "full");
        drop(held);
        assert_eq!(background_refreshes_running(), 0);
        assert!(Slot::take().is_some());
    }
}
