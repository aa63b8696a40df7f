//! The switch that turns every cached function into a plain call: `BUCKETCACHE_DISABLE=1`, [`disable`] /
//! [`enable`] for the process, and [`disabled`] / [`DisabledGuard`] for the current thread.
//!
//! One word holds the whole state, so the hit path pays one relaxed atomic load: zero means "enabled, the
//! environment already read, no thread has a guard". Anything else takes the slow path: read the environment
//! once (bit [`ENV_UNREAD`]), the process switch (bit [`PROCESS_OFF`]), and, when some thread holds a guard
//! (the count above bit 2), this thread's guard depth.
//!
//! Disabled, a cached function opens no bucket (the default bucket's directory is not even created), reads
//! nothing, writes nothing and counts nothing: it runs its body.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable: `1` (or `true`, `yes`, `on`) disables every cached function of the process.
pub const BUCKETCACHE_DISABLE_VAR: &str = "BUCKETCACHE_DISABLE";

/// The environment has not been read yet.
const ENV_UNREAD: usize = 1;
/// The process is disabled ([`disable`], or the environment).
const PROCESS_OFF: usize = 2;
/// One thread guard (the count of live guards of all threads, from bit 2).
const GUARD: usize = 4;

static STATE: AtomicUsize = AtomicUsize::new(ENV_UNREAD);

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether cached functions run uncached here and now (the attribute's one check per call).
#[inline]
pub fn is_disabled() -> bool {
    let state = STATE.load(Ordering::Relaxed);
    state != 0 && slow(state)
}

#[cold]
fn slow(mut state: usize) -> bool {
    if state & ENV_UNREAD != 0 {
        reread_env();
        state = STATE.load(Ordering::Relaxed);
    }
    if state & PROCESS_OFF != 0 {
        return true;
    }
    state >= GUARD && DEPTH.try_with(|d| d.get() > 0).unwrap_or(false)
}

fn env_says_off() -> bool {
    match std::env::var(BUCKETCACHE_DISABLE_VAR) {
        Ok(v) => matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"),
        Err(_) => false,
    }
}

/// Reads `BUCKETCACHE_DISABLE` again (it is read once, at the first cached call; a test that sets the variable
/// afterwards calls this): set to `1`, `true`, `yes` or `on`, it disables the process as [`disable`] does;
/// otherwise the process is enabled as by [`enable`].
pub fn reread_env() {
    let off = env_says_off();
    let _ = STATE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
        let s = s & !ENV_UNREAD;
        Some(if off { s | PROCESS_OFF } else { s & !PROCESS_OFF })
    });
}

/// Disables caching for the whole process: every cached function runs its body, nothing is read or written.
///
/// ```
/// bucketcache::disable();
/// assert!(bucketcache::is_disabled());
/// bucketcache::enable();
/// assert!(!bucketcache::is_disabled());
/// ```
pub fn disable() {
    STATE.fetch_and(!ENV_UNREAD, Ordering::Relaxed);
    STATE.fetch_or(PROCESS_OFF, Ordering::Relaxed);
}

/// Enables caching for the process again (after [`disable`] or `BUCKETCACHE_DISABLE=1`). Threads inside
/// [`disabled`] stay disabled until their guards end.
pub fn enable() {
    STATE.fetch_and(!(ENV_UNREAD | PROCESS_OFF), Ordering::Relaxed);
}

/// Disables caching on the current thread while it lives: see [`disabled`]. Not `Send`: it belongs to its
/// thread.
#[must_use = "caching is disabled only while the guard lives"]
#[derive(Debug)]
pub struct DisabledGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl DisabledGuard {
    /// Disables caching on this thread until the guard is dropped (guards nest).
    pub fn new() -> DisabledGuard {
        let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
        STATE.fetch_add(GUARD, Ordering::Relaxed);
        DisabledGuard {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Default for DisabledGuard {
    fn default() -> Self {
        DisabledGuard::new()
    }
}

impl Drop for DisabledGuard {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        STATE.fetch_sub(GUARD, Ordering::Relaxed);
    }
}

/// Runs `f` with caching disabled on the current thread: the cached functions it calls (on this thread) run
/// their bodies and touch no cache. Other threads are unaffected.
///
/// ```
/// # use bucketcache::disabled;
/// let real = disabled(|| 2 + 2); // cached functions called here run for real
/// assert_eq!(real, 4);
/// ```
pub fn disabled<T>(f: impl FnOnce() -> T) -> T {
    let _guard = DisabledGuard::new();
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_disables_its_thread_only_and_nests() {
        // (The process switch is left alone: other unit tests run in this process.)
        assert_eq!(DEPTH.with(Cell::get), 0);
        let outer = DisabledGuard::new();
        assert!(is_disabled());
        disabled(|| assert!(is_disabled()));
        assert!(is_disabled(), "the inner guard's end leaves the outer one");
        let other = std::thread::spawn(|| DEPTH.with(Cell::get)).join().expect("thread");
        assert_eq!(other, 0, "another thread is not disabled");
        drop(outer);
        assert_eq!(DEPTH.with(Cell::get), 0);
    }
}
