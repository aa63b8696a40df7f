//! [`TreeHasher`]: blake3 of a stream, its subtrees hashed on the caller's thread and on helper threads at once.
//!
//! blake3 is a tree: the bytes split into 1 KiB chunks, and an aligned run of 2^k chunks is a subtree whose chaining
//! value can be computed on its own (`blake3::hazmat`). So the stream is cut into units: [`UNIT`] bytes, or a larger
//! aligned power of two for a big borrowed slice (hashed across cores with `update_rayon`). A unit is hashed where a
//! core is free: on a helper when one has room, otherwise on the caller's thread, so the producer never waits for a
//! helper. The chaining values are merged in stream order exactly as blake3's own incremental hasher merges them, so
//! the result is blake3 of the same bytes (the tests compare it with `blake3::hash` and `blake3::keyed_hash`).
//!
//! Why not one helper doing all the hashing ([`crate::block_hash::BlockHasher`])? A producer that only copies bytes
//! (a big `Vec<u8>` or `Vec<f64>` key) then waits on that one helper: the stream costs one core's hashing time. Here
//! it costs about the copying plus the hashing split across the cores.
//!
//! Memory: the unit being filled and at most two per helper in flight (buffers come back for reuse, so no more are
//! ever allocated): with the key sink's own block, at most six 128 KiB buffers, under 1 MiB.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use blake3::hazmat::{self, ChainingValue, HasherExt, Mode};

/// The bytes of one ordinary unit: a power of two of blake3 chunks, large enough for blake3's SIMD and for a
/// hand-off to a helper to cost little beside hashing it, small enough to stay in the cache.
pub(crate) const UNIT: usize = 128 * 1024;

/// A borrowed slice at least this big is hashed with `update_rayon` (the same hash; idle cores help).
pub(crate) const PARALLEL_FROM: usize = 1 << 20;

/// Most helper threads started for one stream (beside the caller's own thread).
const MAX_HELPERS: usize = 2;

/// Spare buffers kept for reuse.
const MAX_SPARE: usize = 4;

/// Which blake3 function the tree computes.
#[derive(Clone, Copy)]
pub(crate) enum TreeMode {
    /// `blake3::hash` (the payload checksum).
    Hash,
    /// `blake3::keyed_hash` with this key.
    Keyed(&'static [u8; 32]),
}

impl TreeMode {
    /// A hasher for the subtree starting at `offset` (a multiple of its length, rounded up to a power of two).
    pub(crate) fn hasher_at(self, offset: u64) -> blake3::Hasher {
        let mut h = match self {
            TreeMode::Hash => blake3::Hasher::new(),
            TreeMode::Keyed(key) => blake3::Hasher::new_keyed(key),
        };
        if offset != 0 {
            // Left at zero otherwise: a hasher whose offset was set cannot compute a root hash.
            h.set_input_offset(offset);
        }
        h
    }

    fn hazmat(self) -> Mode<'static> {
        match self {
            TreeMode::Hash => Mode::Hash,
            TreeMode::Keyed(key) => Mode::KeyedHash(key),
        }
    }

    /// The chaining value of the subtree `bytes` starting at `offset`.
    fn subtree(self, offset: u64, bytes: &[u8]) -> ChainingValue {
        let mut h = self.hasher_at(offset);
        h.update(bytes);
        h.finalize_non_root()
    }
}

/// How the bytes of the open unit are kept.
enum Unit {
    /// Hashed on this thread as they come (none copied).
    Local(Box<blake3::Hasher>),
    /// Gathered into a buffer, for a helper when one has room at the unit's end.
    Gather(Vec<u8>),
}

/// The unit being filled: it is closed when the next byte arrives (or at the end), so that a stream of one unit is
/// hashed as the root.
struct Open {
    offset: u64,
    len: u64,
    cap: u64,
    unit: Unit,
}

/// A closed unit whose chaining value is not on the stack yet (an earlier one is still on a helper).
enum Slot {
    Done(ChainingValue, u64),
    /// On a helper; its chunk count.
    Waiting(u64),
}

/// A unit sent to a helper.
struct Job {
    id: u64,
    offset: u64,
    bytes: Vec<u8>,
}

/// A helper's answer: the unit's id, its chaining value and its emptied buffer.
struct Done {
    id: u64,
    cv: ChainingValue,
    bytes: Vec<u8>,
}

/// Helper threads, each with its own queue of one unit.
struct Helpers {
    queues: Vec<SyncSender<Job>>,
    results: Receiver<Done>,
    handles: Vec<JoinHandle<()>>,
    /// Where the next unit is offered first (round robin).
    next: usize,
}

impl Helpers {
    /// Starts up to [`MAX_HELPERS`] (one fewer than the cores; more would pass the memory bound); `None` when there is no other core or no thread
    /// could be started (hashing then stays on the caller's thread).
    fn start(mode: TreeMode) -> Option<Helpers> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let want = cores.saturating_sub(1).min(MAX_HELPERS);
        let (done, results) = mpsc::channel::<Done>();
        let mut queues = Vec::with_capacity(want);
        let mut handles = Vec::with_capacity(want);
        for _ in 0..want {
            let (queue, jobs) = mpsc::sync_channel::<Job>(1);
            let done = done.clone();
            let spawned = std::thread::Builder::new()
                .name("bucketcache-hash".into())
                .spawn(move || {
                    for mut job in jobs {
                        let cv = mode.subtree(job.offset, &job.bytes);
                        job.bytes.clear();
                        if done
                            .send(Done {
                                id: job.id,
                                cv,
                                bytes: job.bytes,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            match spawned {
                Ok(handle) => {
                    queues.push(queue);
                    handles.push(handle);
                }
                Err(_) => break,
            }
        }
        if queues.is_empty() {
            return None;
        }
        Some(Helpers {
            queues,
            results,
            handles,
            next: 0,
        })
    }

    /// Offers `job` to each helper in turn; gives it back when every queue is full.
    fn offer(&mut self, mut job: Job) -> Result<(), Job> {
        for _ in 0..self.queues.len() {
            let i = self.next % self.queues.len();
            self.next = self.next.wrapping_add(1);
            match self.queues[i].try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => job = j,
            }
        }
        Err(job)
    }
}

/// blake3 of a stream, hashed in subtrees across cores (see the module docs).
pub(crate) struct TreeHasher {
    mode: TreeMode,
    /// Bytes fed so far.
    fed: u64,
    open: Option<Open>,
    /// Units closed so far (the id of the next one).
    closed: u64,
    /// Closed units not on the stack yet, in order; the first is unit `first_slot`.
    slots: VecDeque<Slot>,
    first_slot: u64,
    /// Units on helpers.
    waiting: usize,
    /// The chaining values of the units before the first slot.
    stack: CvStack,
    helpers: Option<Helpers>,
    /// Bytes after which helpers are started (`u64::MAX`: never).
    helpers_after: u64,
    spare: Vec<Vec<u8>>,
    /// Set when a helper went away with a unit (it cannot, short of a panic in blake3): the result is then `None`,
    /// never a hash of part of the bytes.
    broken: bool,
}

impl TreeHasher {
    /// A hasher computing `mode`, starting helpers once `helpers_after` bytes were fed (starting a thread costs about
    /// what hashing 100 KiB does).
    pub(crate) fn new(mode: TreeMode, helpers_after: u64) -> Self {
        TreeHasher {
            mode,
            fed: 0,
            open: None,
            closed: 0,
            slots: VecDeque::new(),
            first_slot: 0,
            waiting: 0,
            stack: CvStack::new(mode),
            helpers: None,
            helpers_after,
            spare: Vec::new(),
            broken: false,
        }
    }

    /// Hashes borrowed bytes: on this thread straight from `bytes`, or copied for a helper that has room.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let open = match self.open.take() {
                Some(open) if open.len < open.cap => open,
                full => {
                    if let Some(full) = full {
                        self.close(full);
                    }
                    self.start_unit(bytes.len())
                }
            };
            let mut open = open;
            let n = ((open.cap - open.len) as usize).min(bytes.len());
            let (now, later) = bytes.split_at(n);
            match &mut open.unit {
                Unit::Local(h) if now.len() >= PARALLEL_FROM => {
                    h.update_rayon(now);
                }
                Unit::Local(h) => {
                    h.update(now);
                }
                Unit::Gather(buf) => buf.extend_from_slice(now),
            }
            open.len += n as u64;
            self.fed += n as u64;
            self.open = Some(open);
            bytes = later;
        }
    }

    /// Hashes an owned block; gives back an empty buffer to fill next. A block of exactly [`UNIT`] bytes starting
    /// on a unit boundary (as a sink filling whole units sends them) becomes a unit without a copy.
    pub(crate) fn update_owned(&mut self, mut block: Vec<u8>) -> Vec<u8> {
        let at_boundary = self.open.as_ref().is_none_or(|o| o.len == o.cap);
        if block.len() != UNIT || !at_boundary {
            self.update(&block);
            block.clear();
            return block;
        }
        if let Some(full) = self.open.take() {
            self.close(full);
        }
        self.open = Some(Open {
            offset: self.fed,
            len: UNIT as u64,
            cap: UNIT as u64,
            unit: Unit::Gather(block),
        });
        self.fed += UNIT as u64;
        self.spare.pop().unwrap_or_default()
    }

    /// Opens the unit at `self.fed` for a slice of `len` bytes: a big slice gets the largest aligned power of two it
    /// fills (hashed here, across cores), anything else one [`UNIT`], gathered for a helper when one has room.
    fn start_unit(&mut self, len: usize) -> Open {
        let offset = self.fed;
        let unit = UNIT as u64;
        let fill = len as u64;
        if fill >= 2 * unit {
            let most = hazmat::max_subtree_len(offset).unwrap_or(u64::MAX);
            let cap = (1u64 << (63 - fill.leading_zeros())).min(most).max(unit);
            return Open {
                offset,
                len: 0,
                cap,
                unit: Unit::Local(Box::new(self.mode.hasher_at(offset))),
            };
        }
        let helper_room = self.helpers.as_ref().is_some_and(|h| self.waiting < 2 * h.queues.len());
        let unit_kind = if helper_room {
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            buf.reserve(UNIT);
            Unit::Gather(buf)
        } else {
            Unit::Local(Box::new(self.mode.hasher_at(offset)))
        };
        Open {
            offset,
            len: 0,
            cap: unit,
            unit: unit_kind,
        }
    }

    /// Closes a unit that more bytes follow (or the last of several): its chaining value now, or a helper's later.
    fn close(&mut self, open: Open) {
        let chunks = open.len.div_ceil(blake3::CHUNK_LEN as u64);
        let id = self.closed;
        self.closed += 1;
        if self.helpers.is_none() && self.fed >= self.helpers_after {
            self.helpers = Helpers::start(self.mode);
            if self.helpers.is_none() {
                self.helpers_after = u64::MAX;
            }
        }
        let slot = match open.unit {
            Unit::Local(h) => Slot::Done(h.finalize_non_root(), chunks),
            Unit::Gather(bytes) => {
                let job = Job {
                    id,
                    offset: open.offset,
                    bytes,
                };
                let refused = match self.helpers.as_mut() {
                    Some(helpers) => helpers.offer(job).err(),
                    None => Some(job),
                };
                match refused {
                    None => {
                        self.waiting += 1;
                        Slot::Waiting(chunks)
                    }
                    Some(job) => {
                        let cv = self.mode.subtree(job.offset, &job.bytes);
                        self.recycle(job.bytes);
                        Slot::Done(cv, chunks)
                    }
                }
            }
        };
        self.slots.push_back(slot);
        self.collect(false);
    }

    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// Takes the helpers' answers (waiting for all of them when `wait`), then moves finished units at the front onto
    /// the stack.
    fn collect(&mut self, wait: bool) {
        while self.waiting > 0 {
            let Some(helpers) = self.helpers.as_ref() else {
                self.broken = true;
                break;
            };
            let done = if wait {
                helpers.results.recv().ok()
            } else {
                helpers.results.try_recv().ok()
            };
            let Some(done) = done else {
                if wait {
                    // Every helper is gone and a unit never came back.
                    self.broken = true;
                }
                break;
            };
            self.waiting -= 1;
            let at = done.id.wrapping_sub(self.first_slot) as usize;
            match self.slots.get_mut(at) {
                Some(slot) => match *slot {
                    Slot::Waiting(chunks) => *slot = Slot::Done(done.cv, chunks),
                    Slot::Done(..) => self.broken = true,
                },
                None => self.broken = true,
            }
            self.recycle(done.bytes);
        }
        while let Some(Slot::Done(cv, chunks)) = self.slots.front() {
            let (cv, chunks) = (*cv, *chunks);
            self.slots.pop_front();
            self.first_slot += 1;
            self.stack.push(cv, chunks);
        }
    }

    /// The hash of every byte fed, or `None` when a helper failed.
    pub(crate) fn finalize(mut self) -> Option<[u8; 32]> {
        if self.closed == 0 {
            // One unit at most: it is the root.
            let hash = match self.open.take() {
                None => self.mode.hasher_at(0).finalize(),
                Some(Open {
                    unit: Unit::Local(h), ..
                }) => h.finalize(),
                Some(Open {
                    unit: Unit::Gather(bytes),
                    ..
                }) => {
                    let mut h = self.mode.hasher_at(0);
                    h.update(&bytes);
                    h.finalize()
                }
            };
            return Some(*hash.as_bytes());
        }
        if let Some(last) = self.open.take() {
            self.close(last);
        }
        if let Some(helpers) = self.helpers.as_mut() {
            // Helpers finish what they hold and stop.
            helpers.queues.clear();
        }
        self.collect(true);
        if let Some(helpers) = self.helpers.take() {
            for handle in helpers.handles {
                let _ = handle.join();
            }
        }
        if self.broken || !self.slots.is_empty() {
            return None;
        }
        self.stack.root()
    }
}

/// The chaining values of consecutive subtrees of one stream, merged as blake3's incremental hasher merges them:
/// pushed in stream order, each an aligned power of two of chunks but the last; [`CvStack::root`] gives the hash.
pub(crate) struct CvStack {
    mode: TreeMode,
    stack: Vec<ChainingValue>,
    /// Chunks under the stack.
    chunks: u64,
}

impl CvStack {
    pub(crate) fn new(mode: TreeMode) -> Self {
        CvStack {
            mode,
            stack: Vec::new(),
            chunks: 0,
        }
    }

    /// Pushes the chaining value of the next subtree (`chunks` long), first merging what the chunks so far say is
    /// complete (the last subtrees are merged only at the end, where the top merge is the root).
    pub(crate) fn push(&mut self, cv: ChainingValue, chunks: u64) {
        let keep = self.chunks.count_ones() as usize;
        while self.stack.len() > keep {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                break;
            };
            self.stack
                .push(hazmat::merge_subtrees_non_root(&left, &right, self.mode.hazmat()));
        }
        self.stack.push(cv);
        self.chunks += chunks;
    }

    /// The hash of the whole stream; `None` with fewer than two subtrees (one alone is hashed as the root instead).
    pub(crate) fn root(mut self) -> Option<[u8; 32]> {
        let mode = self.mode.hazmat();
        let mut right = self.stack.pop()?;
        while let Some(left) = self.stack.pop() {
            if self.stack.is_empty() {
                return Some(*hazmat::merge_subtrees_root(&left, &right, mode).as_bytes());
            }
            right = hazmat::merge_subtrees_non_root(&left, &right, mode);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEY: [u8; 32] = [7; 32];

    fn data(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    fn want(mode: TreeMode, bytes: &[u8]) -> [u8; 32] {
        match mode {
            TreeMode::Hash => *blake3::hash(bytes).as_bytes(),
            TreeMode::Keyed(k) => *blake3::keyed_hash(k, bytes).as_bytes(),
        }
    }

    /// Feeds `bytes` in pieces of `piece`: borrowed, owned whole units (as the key sink sends them), or both.
    fn through(mode: TreeMode, bytes: &[u8], piece: usize, helpers_after: u64, how: u8) -> Option<[u8; 32]> {
        let mut h = TreeHasher::new(mode, helpers_after);
        let mut i = 0;
        while i < bytes.len() {
            let n = piece.min(bytes.len() - i);
            let part = &bytes[i..i + n];
            match how {
                0 => h.update(part),
                1 => {
                    let mut b = h.update_owned(Vec::new());
                    b.extend_from_slice(part);
                    let _ = h.update_owned(b);
                }
                _ => {
                    if (i / piece.max(1)).is_multiple_of(2) {
                        h.update(part);
                    } else {
                        let _ = h.update_owned(part.to_vec());
                    }
                }
            }
            i += n;
        }
        h.finalize()
    }

    #[test]
    fn every_way_of_feeding_gives_blake3_of_the_bytes() {
        let all = data((5 << 20) + 12_345);
        for mode in [TreeMode::Hash, TreeMode::Keyed(&KEY)] {
            for len in [
                0,
                1,
                1024,
                UNIT - 1,
                UNIT,
                UNIT + 1,
                2 * UNIT,
                3 * UNIT + 5,
                PARALLEL_FROM + UNIT,
                all.len(),
            ] {
                let bytes = &all[..len];
                for piece in [1000, UNIT, UNIT + 3, 3 * UNIT, PARALLEL_FROM + 7, usize::MAX / 2] {
                    if piece < 4096 && len > (1 << 20) {
                        continue; // slow, and covered by the other piece sizes
                    }
                    for after in [0, 1 << 20, u64::MAX] {
                        for how in 0..3 {
                            assert_eq!(
                                through(mode, bytes, piece, after, how),
                                Some(want(mode, bytes)),
                                "len {len}, piece {piece}, helpers after {after}, feeding {how}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn units_finish_out_of_order_and_still_merge_in_order() {
        // Whole units, many of them, with helpers from the first byte: some come back after later ones.
        let bytes = data(64 * UNIT + 77);
        let mut h = TreeHasher::new(TreeMode::Keyed(&KEY), 0);
        for chunk in bytes.chunks(UNIT) {
            let mut b = h.update_owned(Vec::new());
            b.extend_from_slice(chunk);
            let _ = h.update_owned(b);
        }
        assert_eq!(h.finalize(), Some(want(TreeMode::Keyed(&KEY), &bytes)));
    }
}
