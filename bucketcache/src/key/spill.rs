//! [`SpillSink`]: the sink of the default key maker. A key's canonical bytes gather in a buffer; past a limit (a key
//! holding a big argument) they stream into the blake3 hasher in blocks of [`BLOCK`] bytes, each a subtree of
//! blake3's tree ([`TreeHasher`]): past [`HELPERS_AFTER`] bytes, helper threads hash some blocks while the encoder
//! fills and hashes others, so a big argument costs about its encoding plus its hashing split across the cores. The
//! hash is blake3 of the same bytes either way. A big borrowed slice (a `serde_bytes` argument) is hashed straight
//! from the caller's memory, across cores.
//!
//! Memory: the buffer (`limit` bytes, then [`BLOCK`]) plus the open unit and the blocks in flight to the helpers (two
//! each, two helpers at most; buffers are reused): under 1 MiB whatever the key's size.

use super::encoder::{KeyEncodeError, Sink};
use crate::tree_hash::{TreeHasher, TreeMode, UNIT};

/// The unit of hashing once the bytes spilled: one subtree of the hasher (whole units are handed over without a
/// copy).
pub(crate) const BLOCK: usize = UNIT;

/// Spilled bytes after which helper threads share the hashing (starting a thread costs tens of microseconds: about
/// the time to hash 100 KiB).
pub(crate) const HELPERS_AFTER: u64 = 1 << 20;

/// A buffer that turns into a blockwise hasher once it holds more than `limit` bytes: a small key keeps its bytes
/// (for the memo), a large one streams into the hasher in bounded memory.
pub(crate) struct SpillSink {
    /// The bytes so far (unspilled), or the block being filled (spilled).
    pub(crate) buf: Vec<u8>,
    /// The fast path's bound on `buf`: the spill limit, then [`BLOCK`].
    limit: usize,
    /// The hash the spilled bytes get (the hasher is built only when they spill).
    mode: TreeMode,
    /// Boxed: the sink stays a few words on the hit path.
    spilled: Option<Box<TreeHasher>>,
}

impl SpillSink {
    /// A sink over `buf` (emptied), spilling into a `mode` hasher past `limit` bytes.
    pub(crate) fn new(mut buf: Vec<u8>, limit: usize, mode: TreeMode) -> Self {
        buf.clear();
        SpillSink {
            buf,
            limit,
            mode,
            spilled: None,
        }
    }

    /// The hash, when the bytes spilled into the hasher; `None` when they are all in `buf`. Leaves `buf` empty.
    pub(crate) fn spilled_hash(&mut self) -> Option<Result<[u8; 32], KeyEncodeError>> {
        let mut h = self.spilled.take()?;
        let rest = std::mem::take(&mut self.buf);
        self.buf = h.update_owned(rest);
        Some(
            h.finalize()
                .ok_or_else(|| KeyEncodeError("the key's hashing thread stopped before the end of the key".into())),
        )
    }

    /// The slow path of [`Sink::put`]: the buffer is full (or about to spill).
    #[cold]
    #[inline(never)]
    fn put_slow(&mut self, mut bytes: &[u8]) {
        if self.spilled.is_none() {
            self.spilled = Some(Box::new(TreeHasher::new(self.mode, HELPERS_AFTER)));
            self.limit = BLOCK;
            self.buf.reserve(BLOCK.saturating_sub(self.buf.len()));
        }
        let Some(h) = self.spilled.as_deref_mut() else {
            return;
        };
        while !bytes.is_empty() {
            if self.buf.is_empty() && bytes.len() >= BLOCK {
                // A large slice: hashed from where it is, no copy.
                h.update(bytes);
                return;
            }
            let room = BLOCK.saturating_sub(self.buf.len()).max(1);
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = later;
            if self.buf.len() >= BLOCK {
                let full = std::mem::take(&mut self.buf);
                self.buf = h.update_owned(full);
                self.buf.reserve(BLOCK);
            }
        }
    }
}

impl Sink for SpillSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() <= self.limit {
            self.buf.extend_from_slice(bytes);
            return;
        }
        self.put_slow(bytes);
    }

    #[inline]
    fn put_tagged(&mut self, tag: u8, word: [u8; 8]) {
        if self.buf.len() + 9 <= self.limit {
            self.buf.push(tag);
            self.buf.extend_from_slice(&word);
            return;
        }
        self.put_slow(&[tag]);
        self.put(&word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_all(data: &[u8]) -> [u8; 32] {
        *blake3::hash(data).as_bytes()
    }

    /// Feeds `data` in pieces of `piece` bytes; returns the spilled hash, or blake3 of the buffer when unspilled.
    fn through(data: &[u8], piece: usize, limit: usize) -> [u8; 32] {
        let mut s = SpillSink::new(Vec::new(), limit, TreeMode::Hash);
        for chunk in data.chunks(piece.max(1)) {
            s.put(chunk);
        }
        match s.spilled_hash() {
            Some(h) => h.expect("hashed"),
            None => hash_all(&s.buf),
        }
    }

    #[test]
    fn every_path_hashes_the_same_bytes() {
        let data: Vec<u8> = (0..3 * HELPERS_AFTER as u32 + 12345)
            .map(|i| (i * 31 + i / 7) as u8)
            .collect();
        for len in [
            0,
            1,
            100,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            HELPERS_AFTER as usize,
            data.len(),
        ] {
            let d = &data[..len];
            for piece in [1, 9, 4099, BLOCK, BLOCK + 3, 3 * BLOCK, usize::MAX] {
                for limit in [0, 64, 64 * 1024] {
                    assert_eq!(
                        through(d, piece.min(d.len().max(1)), limit),
                        hash_all(d),
                        "len {len}, piece {piece}, limit {limit}"
                    );
                }
            }
        }
    }
}
