//! Per-thread hit cells: memory hits of the fast path (`__private::fast_hit`) counted without an atomic
//! read-modify-write.
//!
//! A memory hit is a few dozen nanoseconds, and the two `lock`-prefixed adds of [`Counters::hit`] (the function's
//! and the bucket's) were about six of them (measured, `examples/hot_hit.rs`). A [`HitCell`] belongs to one thread,
//! one function and one bucket: only that thread writes it, with a plain load and store, and anyone reads it. The
//! cell is registered with both counters ([`CellRegistry`]), whose snapshot adds the live cells to what cells of
//! threads that have exited left behind (`retired`), so the counts stay exact:
//! - a thread keeps its cells in a thread-local list ([`LOCAL`]), found by (function, bucket) when the fast-key
//!   memo fills a slot (the cold path) and then held by that slot, so a hit reaches its cell without a lookup;
//! - when the thread exits, its list is dropped: each cell's counts move to `retired` and the cell leaves the
//!   registry, both under the registry's lock, which a snapshot also takes (a count is never seen twice or lost);
//! - a bucket dropped meanwhile has dropped its registry: the list holds it weakly, and forgets such entries.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::Counters;

/// One thread's memory hits for one function and one bucket. Written only by its thread.
#[derive(Debug, Default)]
pub(crate) struct HitCell {
    hits: AtomicU64,
    saved_us: AtomicU64,
    /// Set when its thread's list is dropped (the counts moved to `retired`): a cached call made later in that
    /// thread's teardown counts through [`Counters::hit`] instead.
    retired: AtomicBool,
}

impl HitCell {
    /// Whether its thread's list was dropped (see `retired`).
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// Counts a memory hit that saved `saved_us` microseconds. Only the owning thread calls this (the cell is
    /// reachable for writing only through that thread's memo), so a load and a store lose nothing.
    #[inline]
    pub(crate) fn hit(&self, saved_us: u64) {
        self.hits
            .store(self.hits.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        if saved_us > 0 {
            self.saved_us.store(
                self.saved_us.load(Ordering::Relaxed).saturating_add(saved_us),
                Ordering::Relaxed,
            );
        }
    }
}

/// The cells counting for one [`Counters`], and what exited threads' cells counted.
#[derive(Debug, Default)]
pub(crate) struct CellRegistry {
    inner: Mutex<Cells>,
}

#[derive(Debug, Default)]
struct Cells {
    live: Vec<Arc<HitCell>>,
    retired_hits: u64,
    retired_saved_us: u64,
}

impl CellRegistry {
    /// Memory hits and microseconds saved, over every cell, live or retired.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let cells = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        cells
            .live
            .iter()
            .fold((cells.retired_hits, cells.retired_saved_us), |(h, s), c| {
                (
                    h.wrapping_add(c.hits.load(Ordering::Relaxed)),
                    s.saturating_add(c.saved_us.load(Ordering::Relaxed)),
                )
            })
    }

    /// How many cells are live (for tests: the registry must not grow with dropped buckets).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).live.len()
    }

    fn add(&self, cell: &Arc<HitCell>) {
        let mut cells = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        cells.live.push(Arc::clone(cell));
    }

    /// Moves `cell`'s counts to `retired` and forgets it (its thread is exiting).
    fn retire(&self, cell: &Arc<HitCell>) {
        let mut cells = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = cells.live.iter().position(|c| Arc::ptr_eq(c, cell)) {
            cells.live.swap_remove(at);
            cells.retired_hits = cells.retired_hits.wrapping_add(cell.hits.load(Ordering::Relaxed));
            cells.retired_saved_us = cells
                .retired_saved_us
                .saturating_add(cell.saved_us.load(Ordering::Relaxed));
        }
    }
}

/// A cell of this thread, with the registries it counts for.
struct LocalCell {
    function: usize,
    bucket: u64,
    cell: Arc<HitCell>,
    registries: [Weak<CellRegistry>; 2],
}

impl LocalCell {
    /// Moves the cell's counts into every registry still alive and takes it out of them (its thread is exiting,
    /// or its bucket was dropped); a hit the slot's memo still routes to it counts through [`Counters::hit`].
    fn retire(&self) {
        self.cell.retired.store(true, Ordering::Relaxed);
        for registry in &self.registries {
            if let Some(r) = registry.upgrade() {
                r.retire(&self.cell);
            }
        }
    }
}

/// This thread's cells. Dropped at thread exit: see the module docs.
struct LocalCells(Vec<LocalCell>);

impl Drop for LocalCells {
    fn drop(&mut self) {
        for local in &self.0 {
            local.retire();
        }
    }
}

thread_local! {
    static LOCAL: RefCell<LocalCells> = const { RefCell::new(LocalCells(Vec::new())) };
}

/// This thread's cell for the function counted by `function` (its `static` counters) in the bucket counted by
/// `bucket` (`bucket_id`: its process-unique instance number); made and registered with both at first use.
/// `None` during thread teardown or when re-entered: the hit is then counted by [`Counters::hit`].
pub(crate) fn cell_for(function: &'static Counters, bucket: &Counters, bucket_id: u64) -> Option<Arc<HitCell>> {
    let function_id = function as *const Counters as usize;
    LOCAL
        .try_with(|local| {
            let mut local = local.try_borrow_mut().ok()?;
            if let Some(l) = local
                .0
                .iter()
                .find(|l| l.function == function_id && l.bucket == bucket_id)
            {
                return Some(Arc::clone(&l.cell));
            }
            // Entries of dropped buckets go first, retired (their counts stay with the function's registry, which
            // forgets them): this list and every registry stay as long as this thread's live (function, bucket)
            // pairs.
            local.0.retain(|l| {
                let alive = l.registries.iter().all(|r| r.strong_count() > 0);
                if !alive {
                    l.retire();
                }
                alive
            });
            let cell = Arc::new(HitCell::default());
            let registries = [function.cells(), bucket.cells()];
            for r in &registries {
                r.add(&cell);
            }
            local.0.push(LocalCell {
                function: function_id,
                bucket: bucket_id,
                cell: Arc::clone(&cell),
                registries: registries.map(|r| Arc::downgrade(&r)),
            });
            Some(cell)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    static FUNCTION: Counters = Counters::new();

    #[test]
    fn cells_of_dropped_buckets_are_retired_and_their_counts_kept() {
        let mut hits = 0;
        for id in 0..50u64 {
            let bucket = Counters::new();
            let cell = cell_for(&FUNCTION, &bucket, 1_000 + id).expect("a cell");
            cell.hit(3);
            cell.hit(0);
            hits += 2;
            // The same pair gets the same cell.
            let again = cell_for(&FUNCTION, &bucket, 1_000 + id).expect("a cell");
            assert!(Arc::ptr_eq(&cell, &again));
            assert_eq!(bucket.cells().totals(), (2, 3));
            drop(bucket);
        }
        // One more pair, so the last dropped bucket's entry is swept too.
        let bucket = Counters::new();
        let _cell = cell_for(&FUNCTION, &bucket, 999).expect("a cell");
        let registry = FUNCTION.cells();
        assert_eq!(registry.live(), 1, "only the live pair's cell stays registered");
        assert_eq!(
            registry.totals(),
            (hits, 3 * 50),
            "the dropped buckets' counts are kept"
        );
    }
}
