//! A per-thread memo of recent key hashes: canonical bytes → blake3 hash.
//!
//! Hashing a small key with blake3 costs more than the rest of a memory-tier hit together, and a memoized function
//! is called with the same arguments again and again. Hashing is a pure function of the canonical bytes, so the
//! memo can never be stale: a slot is used only when its stored bytes equal the key's bytes exactly. It is
//! direct-mapped (a new key evicts whatever shared its slot), per thread (no locks), and only holds keys of at most
//! [`MAX_MEMO_KEY`] bytes, so it stays under about 150 KiB per thread.

use std::cell::RefCell;

const SLOTS: usize = 512;
/// Longest canonical key the memo keeps.
pub(crate) const MAX_MEMO_KEY: usize = 256;

struct Slot {
    bytes: Box<[u8]>,
    hash: [u8; 32],
}

thread_local! {
    static MEMO: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

/// Chooses a slot from the length and the first and last 16 bytes: constant time whatever the key's size. Keys
/// alike at both ends share a slot and only evict each other (the full comparison keeps the memo exact).
#[inline]
fn slot_of(bytes: &[u8]) -> usize {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut mix = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    match (bytes.first_chunk::<16>(), bytes.last_chunk::<16>()) {
        (Some(first), Some(last)) => {
            for chunk in [first, last] {
                let (a, b) = chunk.split_at(8);
                mix(u64::from_le_bytes(a.try_into().unwrap_or_default()));
                mix(u64::from_le_bytes(b.try_into().unwrap_or_default()));
            }
        }
        _ => bytes.iter().for_each(|&b| mix(u64::from(b))),
    }
    (h >> 32) as usize % SLOTS
}

/// The hash of `bytes`, from the memo or computed by `hash` (and remembered).
pub(crate) fn hash_memoized(bytes: &[u8], hash: impl FnOnce(&[u8]) -> [u8; 32]) -> [u8; 32] {
    if bytes.len() > MAX_MEMO_KEY {
        return hash(bytes);
    }
    let slot = slot_of(bytes);
    // `try_with`/`try_borrow`: during thread teardown, or re-entered, the memo is skipped, never a panic.
    let found = MEMO
        .try_with(|m| match m.try_borrow().ok()?.get(slot) {
            Some(Some(s)) if *s.bytes == *bytes => Some(s.hash),
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(h) = found {
        return h;
    }
    let h = hash(bytes);
    let _ = MEMO.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            if m.is_empty() {
                m.resize_with(SLOTS, || None);
            }
            m[slot] = Some(Slot {
                bytes: bytes.into(),
                hash: h,
            });
        }
    });
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_returns_what_the_hash_would() {
        let calls = std::cell::Cell::new(0);
        let h = |b: &[u8]| {
            calls.set(calls.get() + 1);
            *blake3::hash(b).as_bytes()
        };
        let a = hash_memoized(b"key one", h);
        let b = hash_memoized(b"key one", h);
        assert_eq!(a, b);
        assert_eq!(a, *blake3::hash(b"key one").as_bytes());
        assert_eq!(calls.get(), 1, "second call served from the memo");
        // Many distinct keys: every answer is still right, whatever got evicted.
        for i in 0..5_000u32 {
            let k = format!("key {i}");
            assert_eq!(hash_memoized(k.as_bytes(), h), *blake3::hash(k.as_bytes()).as_bytes());
        }
        let big = vec![1u8; MAX_MEMO_KEY + 1];
        assert_eq!(hash_memoized(&big, h), *blake3::hash(&big).as_bytes());
    }
}
