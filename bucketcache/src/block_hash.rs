//! [`BlockHasher`]: blake3 over a stream of owned blocks, hashed on a helper thread once the stream is long enough
//! for that to pay, so the producer (an encoder filling the next block, a decoder reading it) and the hashing run side
//! by side: a streamed store or a streamed load costs about the slower of the two, not their sum. The hash is blake3
//! of the same bytes in the same order whichever thread computed it. (A big key, whose producer only copies, shares
//! its hashing across cores instead: [`crate::tree_hash`].)
//!
//! Memory: the blocks in flight (one queued, one being hashed, two coming back for reuse) beside the producer's.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// A blake3 hash fed with owned blocks.
pub(crate) struct BlockHasher {
    /// The hasher, while blocks are hashed on this thread.
    hasher: Option<blake3::Hasher>,
    /// The helper, once started.
    worker: Option<Worker>,
    /// Bytes fed so far.
    fed: u64,
    /// Bytes after which a helper is started (`u64::MAX`: never).
    worker_after: u64,
    /// Set when the helper went away (it cannot, short of a panic in blake3): the result is then `None`, never a
    /// hash of part of the bytes.
    broken: bool,
}

/// A helper thread hashing the blocks it is sent and sending the emptied buffers back for reuse.
struct Worker {
    blocks: SyncSender<Vec<u8>>,
    empties: Receiver<Vec<u8>>,
    handle: JoinHandle<blake3::Hasher>,
}

impl Worker {
    /// Starts a helper hashing into a copy of `hasher`; `None` when no thread can be started (hashing then stays on
    /// the caller's thread).
    fn start(hasher: &blake3::Hasher) -> Option<Worker> {
        let (blocks, incoming) = mpsc::sync_channel::<Vec<u8>>(1);
        let (give_back, empties) = mpsc::sync_channel::<Vec<u8>>(2);
        let mut h = hasher.clone();
        let handle = std::thread::Builder::new()
            .name("bucketcache-hash".into())
            .spawn(move || {
                for block in incoming {
                    h.update(&block);
                    // Returned with its length (the producer clears it, or refills it without zeroing it again).
                    // A full return queue (or a producer gone) just drops the buffer.
                    let _ = give_back.try_send(block);
                }
                h
            })
            .ok()?;
        Some(Worker {
            blocks,
            empties,
            handle,
        })
    }
}

// A slice at least PARALLEL_FROM bytes, hashed on the caller's thread, is split across idle cores (blake3's
// `update_rayon`: the same hash), as in `tree_hash.rs`. Blocks of a stream stay below it: split per 128-512 KiB
// block, the joins cost what they saved.
use crate::tree_hash::PARALLEL_FROM;

/// `h.update(bytes)`, in parallel for a big `bytes`.
#[inline]
fn hash_on_this_thread(h: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_FROM {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
}

impl BlockHasher {
    /// Hashes into `hasher`, moving to a helper thread once `worker_after` bytes were fed (`u64::MAX`: never).
    pub(crate) fn new(hasher: blake3::Hasher, worker_after: u64) -> Self {
        BlockHasher {
            hasher: Some(hasher),
            worker: None,
            fed: 0,
            worker_after,
            broken: false,
        }
    }

    /// Whether the next block goes to a helper (so an owned block saves a copy).
    pub(crate) fn on_helper(&self) -> bool {
        self.worker.is_some() || self.fed >= self.worker_after
    }

    /// Hashes `block` (taken: the caller gets back an empty buffer to fill next, with some capacity when one came
    /// back from the helper).
    pub(crate) fn update_owned(&mut self, block: Vec<u8>) -> Vec<u8> {
        let mut next = self.update_owned_keep(block);
        next.clear();
        next
    }

    /// [`BlockHasher::update_owned`], but the buffer given back keeps its length (its bytes are old data): a reader
    /// that fills whole blocks reuses it without zeroing it first.
    pub(crate) fn update_owned_keep(&mut self, block: Vec<u8>) -> Vec<u8> {
        if block.is_empty() {
            return block;
        }
        self.fed += block.len() as u64;
        if self.worker.is_none() && self.fed >= self.worker_after {
            // From here on the helper hashes, starting with this block.
            if let Some(w) = self.hasher.as_ref().and_then(Worker::start) {
                self.worker = Some(w);
                self.hasher = None;
            } else {
                self.worker_after = u64::MAX;
            }
        }
        if let Some(h) = self.hasher.as_mut() {
            hash_on_this_thread(h, &block);
            return block;
        }
        let Some(w) = self.worker.as_ref() else {
            self.broken = true;
            return Vec::new();
        };
        let next = w.empties.try_recv().unwrap_or_default();
        if w.blocks.send(block).is_err() {
            self.broken = true;
        }
        next
    }

    /// Hashes a borrowed slice: directly on this thread, or copied into a block for the helper.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if !self.on_helper() {
            self.fed += bytes.len() as u64;
            if let Some(h) = self.hasher.as_mut() {
                hash_on_this_thread(h, bytes);
            }
            return;
        }
        let mut block = self
            .worker
            .as_ref()
            .and_then(|w| w.empties.try_recv().ok())
            .unwrap_or_default();
        block.clear();
        block.extend_from_slice(bytes);
        let _ = self.update_owned(block);
    }

    /// The hash of every byte fed, or `None` when the helper failed.
    pub(crate) fn finalize(self) -> Option<[u8; 32]> {
        let hasher = match self.worker {
            Some(w) => {
                drop(w.blocks);
                w.handle.join().ok()
            }
            None => self.hasher,
        };
        hasher.filter(|_| !self.broken).map(|h| *h.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_slice_hashed_across_cores_gives_the_same_hash() {
        let data: Vec<u8> = (0..(3 << 20) + 12_345u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for after in [u64::MAX, 0] {
            let mut h = BlockHasher::new(blake3::Hasher::new(), after);
            h.update(&data[..PARALLEL_FROM + 1]);
            h.update(&data[PARALLEL_FROM + 1..]);
            assert_eq!(
                h.finalize(),
                Some(*blake3::hash(&data).as_bytes()),
                "helper after {after}"
            );
        }
    }

    #[test]
    fn every_path_hashes_the_same_bytes() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let want = *blake3::hash(&data).as_bytes();
        for after in [0, 1, 1 << 20, u64::MAX] {
            for piece in [1000, 128 * 1024, 1 << 20, 3_000_001] {
                let mut owned = BlockHasher::new(blake3::Hasher::new(), after);
                let mut borrowed = BlockHasher::new(blake3::Hasher::new(), after);
                let mut mixed = BlockHasher::new(blake3::Hasher::new(), after);
                for (i, chunk) in data.chunks(piece).enumerate() {
                    let mut b = owned.update_owned(Vec::new());
                    b.extend_from_slice(chunk);
                    let _ = owned.update_owned(b);
                    borrowed.update(chunk);
                    if i % 2 == 0 {
                        mixed.update(chunk);
                    } else {
                        let _ = mixed.update_owned(chunk.to_vec());
                    }
                }
                assert_eq!(owned.finalize(), Some(want), "owned, after {after}, piece {piece}");
                assert_eq!(
                    borrowed.finalize(),
                    Some(want),
                    "borrowed, after {after}, piece {piece}"
                );
                assert_eq!(mixed.finalize(), Some(want), "mixed, after {after}, piece {piece}");
            }
        }
        assert_eq!(
            BlockHasher::new(blake3::Hasher::new(), 0).finalize(),
            Some(*blake3::hash(b"").as_bytes())
        );
    }
}
