//! Single flight across machines: a lease in the shared tier.
//!
//! A caller that missed every tier (after the in-process flight and the cross-process lock) takes the key's lease
//! (`SET <lease key> <random token> NX PX <lease>` on Redis), renews it at a third of its duration while it
//! computes, and releases it by compare-and-delete after storing the value. Callers on other machines find the
//! lease held and wait for the entry (polling the shared tier with backoff), up to their wait limit; when the holder
//! dies, its lease expires within one lease duration and a waiter takes it over and computes.
//!
//! The lease is an optimization, never a reason to fail: a tier that is down, read-only or cooling off gives no
//! lease, and the caller computes.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tracing::debug;

use crate::backend::Backend;
use crate::bucket::{Bucket, Hit};
use crate::key::{KeyHash, KeyMaker};
use crate::tier::{Count, Guarded, LeaseToken};

const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(100);

/// What [`Bucket::begin_shared_flight`] found.
#[derive(Debug)]
#[must_use = "a Compute flight may hold a lease until the guard is dropped"]
pub enum SharedFlight<V> {
    /// Another machine stored the entry (it was there, or landed while this caller waited).
    Hit(Hit<V>),
    /// Compute the value, store it, then drop the guard. `None` inside: no lease is held (no shared tier, read-only,
    /// unavailable, or the wait limit passed).
    Compute(Option<LeaseGuard>),
}

/// A held lease: renewed on a helper thread until dropped, then released (compare-and-delete).
#[derive(Debug)]
pub struct LeaseGuard {
    shared: Guarded,
    key: KeyHash,
    token: LeaseToken,
    stop: Option<mpsc::Sender<()>>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // Stops the renewer (its `recv_timeout` sees the sender gone), then releases; a renewal racing the release
        // compares tokens and finds nothing.
        drop(self.stop.take());
        let (key, token) = (self.key, self.token.clone());
        let _ = self.shared.call("release lease", |t| t.release_lease(&key, &token));
    }
}

fn spawn_renewer(shared: Guarded, key: KeyHash, token: LeaseToken) -> Option<mpsc::Sender<()>> {
    let (tx, rx) = mpsc::channel::<()>();
    let every = shared.tier().lease_duration() / 3;
    let spawned = std::thread::Builder::new()
        .name("bucketcache-lease".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                match shared.call("renew lease", |t| t.renew_lease(&key, &token)) {
                    Some(true) => {}
                    // Lost (expired after a stall) or the tier is failing: stop renewing; the value is still stored.
                    _ => break,
                }
            }
        });
    spawned.ok().map(|_| tx)
}

impl<B: Backend, K: KeyMaker> Bucket<B, K> {
    /// Starts a single flight across machines for `key`, which the caller has just missed in every tier: the entry
    /// if another machine stores it within `wait_limit` while holding the key's lease, otherwise the right to compute
    /// (with the lease when one could be taken). `Duration::ZERO` never waits (async callers pass it, so they never
    /// block their thread on another machine).
    ///
    /// Without a shared tier (or with a read-only or unavailable one) this returns `Compute(None)` at once.
    pub fn begin_shared_flight<V>(&self, key: &KeyHash, wait_limit: Duration) -> SharedFlight<V>
    where
        V: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let Some(shared) = self.shared.as_ref() else {
            return SharedFlight::Compute(None);
        };
        if shared.tier().read_only() || !shared.available() {
            return SharedFlight::Compute(None);
        }
        let start = Instant::now();
        let deadline = start.checked_add(wait_limit).unwrap_or(start);
        let mut pause = POLL_FIRST;
        let mut waited = false;
        loop {
            match shared.call("take lease", |t| t.try_lease(key)) {
                None => return SharedFlight::Compute(None),
                Some(Some(token)) => {
                    if waited {
                        // The holder stopped renewing (or finished without storing): this caller takes over.
                        shared.count(Count::Takeover);
                        debug!(target: "bucketcache", hash = %key, waited = ?start.elapsed(), "shared lease taken over");
                    }
                    // The previous holder may have stored the entry just before releasing.
                    if waited {
                        if let Ok(Some(hit)) = self.lookup_shared_only::<V>(key) {
                            let _ = shared.call("release lease", |t| t.release_lease(key, &token));
                            return SharedFlight::Hit(hit);
                        }
                    }
                    let stop = spawn_renewer(shared.clone(), *key, token.clone());
                    return SharedFlight::Compute(Some(LeaseGuard {
                        shared: shared.clone(),
                        key: *key,
                        token,
                        stop,
                    }));
                }
                Some(None) => {
                    if !waited {
                        waited = true;
                        shared.count(Count::LeaseWait);
                        debug!(target: "bucketcache", hash = %key, "another machine is computing this key; waiting");
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return SharedFlight::Compute(None);
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(POLL_MAX);
                    if let Ok(Some(hit)) = self.lookup_shared_only::<V>(key) {
                        return SharedFlight::Hit(hit);
                    }
                }
            }
        }
    }

    /// The value stored under `key` in any tier, or `compute()`'s, computed once across processes on this machine
    /// (the directory's lock) and across machines (the shared tier's lease): see
    /// [`get_or_compute_cross_process`](Self::get_or_compute_cross_process), which this extends to the shared tier.
    ///
    /// Never fails: an unusable entry is recomputed, and a value that cannot be stored is logged and returned.
    pub fn get_or_compute_shared<V>(&self, key: &KeyHash, wait_limit: Duration, compute: impl FnOnce() -> V) -> V
    where
        V: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        match self.begin_cross_process_flight::<V>(key, wait_limit) {
            crate::lock::CrossFlight::Hit(hit) => hit.value,
            crate::lock::CrossFlight::Compute(local) => match self.begin_shared_flight::<V>(key, wait_limit) {
                SharedFlight::Hit(hit) => hit.value,
                SharedFlight::Compute(lease) => {
                    let value = compute();
                    // Failures are logged by the write path; the locks go after the value is stored.
                    let _ = self.insert_typed(key, &value, None, None);
                    drop(lease);
                    drop(local);
                    value
                }
            },
        }
    }
}
