//! In-process single-flight for `#[bucket_cache]`: concurrent callers of one cold key wait for the first caller.
//!
//! The first caller of a missing key becomes its *leader* and runs the function; callers of the same key (same
//! bucket object, same key hash) that arrive meanwhile are *followers*: they wait until the leader's
//! [`FlightGuard`] is dropped (value stored, not cacheable, panic or cancellation alike) and then read the bucket
//! again. If the leader stored nothing (an `Err` result, a failed write), one follower becomes the next leader.
//! Different keys never wait on each other. Sync callers block on a condition variable; async callers await a
//! future that registers a waker, so no executor thread is blocked.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::key::KeyHash;

/// A flight is named by the bucket's address and the key hash.
type FlightKey = (usize, KeyHash);

static FLIGHTS: LazyLock<Mutex<HashMap<FlightKey, Arc<Flight>>>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves consistent data (a map, a flag, a list of wakers).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One key being computed.
pub struct Flight {
    state: Mutex<FlightState>,
    landed: Condvar,
    /// The leader's thread: a call from that thread for the same key is re-entrant (the function calling itself,
    /// e.g. a retry with an ignored counter) and must not wait for itself. `None` while the guard is on its way
    /// to another thread ([`FlightGuard::hand_off`]).
    leader: Mutex<Option<std::thread::ThreadId>>,
}

#[derive(Default)]
struct FlightState {
    landed: bool,
    wakers: Vec<Waker>,
}

/// The outcome of [`join`].
pub enum Join {
    /// No one is computing this key: the caller computes it and holds the guard until its value is stored.
    Leader(FlightGuard),
    /// Someone is: wait for it, then read the bucket again.
    Follower(Arc<Flight>),
    /// This thread is: the function called itself with the same key. The caller runs without waiting.
    Reentrant,
}

/// Joins the flight for `key` in the bucket at address `bucket`. `sync` callers from the leader's own thread are
/// re-entrant; async callers are not judged by thread (many tasks share one thread, and they can wait).
pub fn join(bucket: usize, key: KeyHash, sync: bool) -> Join {
    let mut map = lock(&FLIGHTS);
    match map.entry((bucket, key)) {
        std::collections::hash_map::Entry::Occupied(e)
            if sync && *lock(&e.get().leader) == Some(std::thread::current().id()) =>
        {
            Join::Reentrant
        }
        std::collections::hash_map::Entry::Occupied(e) => Join::Follower(Arc::clone(e.get())),
        std::collections::hash_map::Entry::Vacant(v) => {
            let flight = Arc::new(Flight {
                state: Mutex::default(),
                landed: Condvar::new(),
                leader: Mutex::new(Some(std::thread::current().id())),
            });
            v.insert(Arc::clone(&flight));
            Join::Leader(FlightGuard {
                key: (bucket, key),
                flight,
            })
        }
    }
}

/// Held by a flight's leader; dropping it releases the followers.
#[must_use]
pub struct FlightGuard {
    key: FlightKey,
    flight: Arc<Flight>,
}

impl FlightGuard {
    /// The guard is about to move to another thread (a background refresh): this thread is no longer the leader,
    /// so its later calls of the key are followers (served or waiting), never re-entrant runs beside the refresh.
    pub(crate) fn hand_off(&self) {
        *lock(&self.flight.leader) = None;
    }

    /// The guard has arrived on this thread: calls of the key from here are re-entrant.
    pub(crate) fn adopt(&self) {
        *lock(&self.flight.leader) = Some(std::thread::current().id());
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        {
            let mut map = lock(&FLIGHTS);
            if map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                map.remove(&self.key);
            }
        }
        let wakers = {
            let mut st = lock(&self.flight.state);
            st.landed = true;
            std::mem::take(&mut st.wakers)
        };
        self.flight.landed.notify_all();
        for w in wakers {
            w.wake();
        }
    }
}

impl Flight {
    /// Blocks until the leader's guard is dropped, or `limit` has passed; `true` when it landed.
    pub fn wait(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now().checked_add(limit);
        let mut st = lock(&self.state);
        while !st.landed {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => std::time::Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            st = self
                .landed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Waits, without blocking the thread, until the leader's guard is dropped or `limit` has passed; resolves to
    /// `true` when it landed. (The limit is kept by a sleeping helper thread that wakes the waiter, started on the
    /// first wait only: no executor timer is needed.)
    pub fn landed(self: Arc<Self>, limit: std::time::Duration) -> Landed {
        Landed {
            deadline: std::time::Instant::now().checked_add(limit),
            limit,
            flight: self,
            timer: false,
        }
    }
}

/// The future returned by [`Flight::landed`].
pub struct Landed {
    flight: Arc<Flight>,
    deadline: Option<std::time::Instant>,
    limit: std::time::Duration,
    timer: bool,
}

impl Future for Landed {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        {
            let mut st = lock(&self.flight.state);
            if st.landed {
                return Poll::Ready(true);
            }
            if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Poll::Ready(false);
            }
            if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                st.wakers.push(cx.waker().clone());
            }
        }
        if !self.timer && self.deadline.is_some() {
            self.timer = true;
            let (waker, limit) = (cx.waker().clone(), self.limit);
            // Wakes this waiter once its limit has passed; if the flight landed first, the extra wake is harmless.
            let spawned = std::thread::Builder::new()
                .name("bucketcache-flight-timer".into())
                .spawn(move || {
                    std::thread::sleep(limit);
                    waker.wake();
                });
            if spawned.is_err() {
                // No thread for the timer: give up waiting at once rather than risk waiting forever.
                return Poll::Ready(false);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_leaders_own_thread_is_reentrant_and_a_wait_has_a_limit() {
        let key = KeyHash([9; 32]);
        let Join::Leader(guard) = join(2, key, true) else {
            panic!("first caller leads")
        };
        assert!(
            matches!(join(2, key, true), Join::Reentrant),
            "the same thread never waits for itself"
        );
        let waited = std::thread::spawn(move || match join(2, key, true) {
            Join::Follower(f) => f.wait(std::time::Duration::from_millis(50)),
            _ => panic!("another thread follows"),
        })
        .join()
        .expect("thread");
        assert!(!waited, "the wait gives up at its limit while the leader still runs");
        drop(guard);
    }

    #[test]
    fn followers_wait_for_the_leader() {
        let key = KeyHash([7; 32]);
        let Join::Leader(guard) = join(1, key, true) else {
            panic!("first caller leads")
        };
        let released = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let released = Arc::clone(&released);
                std::thread::spawn(move || match join(1, key, true) {
                    Join::Follower(f) => {
                        assert!(f.wait(std::time::Duration::from_secs(60)));
                        released.fetch_add(1, Ordering::SeqCst);
                    }
                    Join::Leader(_) | Join::Reentrant => panic!("another thread must follow"),
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(released.load(Ordering::SeqCst), 0);
        drop(guard);
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(released.load(Ordering::SeqCst), 4);
        assert!(
            matches!(join(1, key, true), Join::Leader(_)),
            "the flight is gone once landed"
        );
    }

    #[test]
    fn different_keys_do_not_wait() {
        let _a = join(2, KeyHash([1; 32]), true);
        assert!(matches!(join(2, KeyHash([2; 32]), true), Join::Leader(_)));
        assert!(matches!(join(3, KeyHash([1; 32]), true), Join::Leader(_)));
    }
}
