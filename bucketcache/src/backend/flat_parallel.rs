//! A big flat vector (`flat.rs`) loaded by every core at once. The vector is allocated zeroed at its final length;
//! its bytes (little-endian elements are their own bytes) are cut into pieces of [`PIECE`] payload bytes, the pieces
//! of the entry's checksum (the piecewise xxh3 sum, `entry::FLAG_XXH3`; or, for an entry written before it, each an
//! aligned subtree of blake3's tree), and each core takes pieces in turn: it reads its piece with positioned reads
//! straight into the piece's place in the vector, checksumming each block while it is in the cache. The pieces'
//! digests are then combined in order into the payload checksum, which the caller compares as for any entry: a
//! corrupt entry is still a miss, the value dropped.
//!
//! Why: one thread loading a 256 MiB `Vec<f64>` spends most of its time on the first touch of the vector's pages
//! (the kernel zeroes each 4 KiB page) and on copying from the page cache, with the checksum on a helper beside it.
//! Split across cores, each of those costs a share, and nothing is copied twice.
//!
//! The first piece reads the length prefix again and checks it is the one the vector was sized by: a file that
//! changed while it was read is a miss, never a vector of the old length.
//!
//! Memory: the vector alone.

use std::fs::File;
use std::io;
use std::sync::Mutex;

use blake3::hazmat::{ChainingValue, HasherExt};

use super::flat::{declared_count, into_v, prefix_len, Elem};
use super::BincodeBackend;
use crate::error::BoxError;
use crate::tree_hash::{CvStack, TreeMode};

/// Payload bytes from which a flat vector is loaded in parallel.
const PARALLEL_FROM: u64 = 16 << 20;

/// Bytes of one piece: the xxh3 sum's piece, and a power of two of blake3 chunks (so an aligned subtree); small
/// enough that the cores finish together.
const PIECE: u64 = crate::entry::SUM_PIECE;
const _: () = assert!(PIECE.is_power_of_two() && PIECE.is_multiple_of(blake3::CHUNK_LEN as u64));

/// Bytes read (and then hashed, while they are in the cache) at once within a piece.
const BLOCK: usize = 256 << 10;

/// Most threads loading one entry (the caller's among them).
const MAX_THREADS: usize = 8;

/// What a parallel load found.
pub(crate) struct Loaded<V> {
    /// The value, or why the bytes are not one.
    pub(crate) decoded: Result<V, BoxError>,
    /// The payload checksum of the bytes read (`None` when a piece came up short: then `read` says so).
    pub(crate) sum: Option<[u8; 32]>,
    /// Payload bytes read.
    pub(crate) read: u64,
    /// Whether the file holds bytes past the payload (it grew while it was read).
    pub(crate) grew: bool,
}

/// Loads the `len`-byte payload at `payload_at` of `file` as a `V` for which `flat::bincode_for` said yes, across
/// cores; `None` when that does not pay (a small payload, one core) or the declared length is not the payload's
/// (the sequential path then reads it and says why).
pub(crate) fn load<V: 'static>(
    backend: &BincodeBackend,
    file: &File,
    payload_at: u64,
    len: u64,
    flags: u8,
) -> io::Result<Option<Loaded<V>>> {
    let xxh3 = flags & crate::entry::FLAG_XXH3 != 0;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    // Big-endian targets would need every element converted: they read sequentially.
    if len < PARALLEL_FROM || threads < 2 || !cfg!(unix) || cfg!(target_endian = "big") {
        return Ok(None);
    }
    macro_rules! dispatch {
        ($($e:ty),*) => {$(
            if std::any::TypeId::of::<V>() == std::any::TypeId::of::<Vec<$e>>() {
                let Some(loaded) = load_vec::<$e>(backend, file, payload_at, len, threads, xxh3)? else {
                    return Ok(None);
                };
                return Ok(Some(Loaded {
                    decoded: loaded.decoded.and_then(into_v::<V, Vec<$e>>),
                    sum: loaded.sum,
                    read: loaded.read,
                    grew: loaded.grew,
                }));
            }
        )*};
    }
    dispatch!(f64, f32, u8, i8, u16, i16, u32, i32, u64, i64);
    Ok(None)
}

/// One piece: its bytes `start..end` of the payload, and where they go in the vector's bytes (all of them but the
/// length prefix, which only the first piece holds).
struct Piece<'a> {
    index: usize,
    start: u64,
    end: u64,
    out: &'a mut [u8],
}

/// A piece's part of the payload checksum.
enum Digest {
    /// Its xxh3 digest.
    Xxh3(u128),
    /// Its chaining value as a blake3 subtree.
    Blake3(ChainingValue),
}

/// What reading one piece found.
enum PieceRead {
    /// Its digest.
    Hashed(Digest),
    /// The file ends inside it.
    Short,
    /// The length prefix is not the one the vector was sized by: the file changed while it was read.
    Changed,
}

fn load_vec<T: Elem>(
    backend: &BincodeBackend,
    file: &File,
    payload_at: u64,
    len: u64,
    threads: usize,
    xxh3: bool,
) -> io::Result<Option<Loaded<Vec<T>>>> {
    let fixint = backend.config().fixed_int_encoding;
    let mut prefix = [0u8; 17];
    // A file too short for its prefix is left to the sequential path, which says so.
    if short_or(read_exact_at(file, &mut prefix[..1], payload_at))?.is_none() {
        return Ok(None);
    }
    let p = prefix_len(fixint, prefix[0]);
    if short_or(read_exact_at(file, &mut prefix[1..p], payload_at + 1))?.is_none() {
        return Ok(None);
    }
    let Ok(count) = declared_count(fixint, &prefix[..p]) else {
        return Ok(None);
    };
    if count.checked_mul(T::SIZE as u64) != Some(len - p as u64) {
        return Ok(None);
    }
    let Ok(count) = usize::try_from(count) else {
        return Ok(None);
    };
    // The length matches the file's (checked against it before this call), so this allocates what is on disk.
    let mut probe: Vec<T> = Vec::new();
    if probe.try_reserve_exact(count).is_err() {
        return Ok(None);
    }
    drop(probe);
    let mut out = vec![T::ZERO; count];
    // Allocated zeroed and not yet touched: the pages can still be huge ones.
    crate::huge_pages::advise(&mut out);

    // Each piece's bytes go to their place in the vector (little-endian elements are their own bytes).
    let mut pieces = Vec::new();
    let mut rest: &mut [u8] = bytemuck::cast_slice_mut(&mut out[..]);
    let mut start = 0u64;
    while start < len {
        let end = (start + PIECE).min(len);
        let (mine, after) = std::mem::take(&mut rest).split_at_mut((end - start.max(p as u64)) as usize);
        rest = after;
        pieces.push(Piece {
            index: pieces.len(),
            start,
            end,
            out: mine,
        });
        start = end;
    }
    let n_pieces = pieces.len();
    pieces.reverse(); // popped from the end: the first piece first
    let queue = Mutex::new(pieces);
    let work = || -> Vec<(usize, io::Result<PieceRead>)> {
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(piece) = next else { break };
            let index = piece.index;
            done.push((index, load_piece(file, payload_at, &prefix[..p], piece, xxh3)));
        }
        done
    };
    let results: io::Result<Vec<(usize, io::Result<PieceRead>)>> = std::thread::scope(|s| {
        // A thread the system refuses is not an error: the caller's thread takes the pieces left.
        let helpers: Vec<_> = (1..threads.min(n_pieces))
            .map_while(|_| {
                std::thread::Builder::new()
                    .name("bucketcache-load".into())
                    .spawn_scoped(s, work)
                    .ok()
            })
            .collect();
        let mut all = work();
        for h in helpers {
            let mut d = h
                .join()
                .map_err(|_| io::Error::other("a thread loading the entry panicked"))?;
            all.append(&mut d);
        }
        Ok(all)
    });
    let mut results = results?;
    results.sort_by_key(|(i, _)| *i);

    let grew = read_at(file, &mut [0u8; 1], payload_at + len)? > 0;
    let mut stack = CvStack::new(TreeMode::Hash);
    let mut digests = Vec::with_capacity(if xxh3 { n_pieces } else { 0 });
    for (i, r) in results {
        let piece_len = PIECE.min(len - i as u64 * PIECE);
        match r? {
            PieceRead::Hashed(Digest::Xxh3(d)) => digests.push(d),
            PieceRead::Hashed(Digest::Blake3(cv)) => stack.push(cv, piece_len.div_ceil(blake3::CHUNK_LEN as u64)),
            PieceRead::Short => {
                // The file is shorter than its header says: a length mismatch for the caller, with what it holds.
                let holds = file.metadata()?.len().saturating_sub(payload_at);
                return Ok(Some(Loaded {
                    decoded: Err("the payload ends early".into()),
                    sum: None,
                    read: holds.min(len - 1),
                    grew,
                }));
            }
            PieceRead::Changed => {
                // Not the bytes the checksum was taken of: a checksum mismatch for the caller.
                return Ok(Some(Loaded {
                    decoded: Err("the entry changed while it was read".into()),
                    sum: None,
                    read: len,
                    grew,
                }));
            }
        }
    }
    let sum = if xxh3 {
        (digests.len() == n_pieces).then(|| crate::entry::combine_pieces(len, digests))
    } else {
        stack.root()
    };
    Ok(Some(Loaded {
        decoded: Ok(out),
        sum,
        read: len,
        grew,
    }))
}

/// Reads one piece into its place and hashes it, block by block while the block is in the cache. The first piece
/// reads the length prefix again and checks it is the one the vector was sized by.
fn load_piece(file: &File, payload_at: u64, prefix: &[u8], piece: Piece<'_>, xxh3: bool) -> io::Result<PieceRead> {
    let mut h = if xxh3 {
        PieceHash::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::with_seed(piece.start / PIECE)))
    } else {
        PieceHash::Blake3(Box::new(TreeMode::Hash.hasher_at(piece.start)))
    };
    let mut at = piece.start;
    if piece.start == 0 {
        let mut again = [0u8; 17];
        let again = &mut again[..prefix.len()];
        if short_or(read_exact_at(file, again, payload_at))?.is_none() {
            return Ok(PieceRead::Short);
        }
        if again != prefix {
            return Ok(PieceRead::Changed);
        }
        h.update(again);
        at = prefix.len() as u64;
    }
    for block in piece.out.chunks_mut(BLOCK) {
        if short_or(read_exact_at(file, block, payload_at + at))?.is_none() {
            return Ok(PieceRead::Short);
        }
        h.update(block);
        at += block.len() as u64;
    }
    debug_assert_eq!(at, piece.end);
    Ok(PieceRead::Hashed(match h {
        PieceHash::Xxh3(x) => Digest::Xxh3(x.digest128()),
        PieceHash::Blake3(b) => Digest::Blake3(b.finalize_non_root()),
    }))
}

/// A piece's checksum while it is read.
enum PieceHash {
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>),
    Blake3(Box<blake3::Hasher>),
}

impl PieceHash {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            PieceHash::Xxh3(x) => x.update(bytes),
            PieceHash::Blake3(b) => {
                b.update(bytes);
            }
        }
    }
}

/// `Some(())` when read, `None` for a file that ends early, the error otherwise.
fn short_or(r: io::Result<()>) -> io::Result<Option<()>> {
    match r {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Positioned reads (they leave the file's cursor alone, so every core reads the one file).
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(_: &File, _: &mut [u8], _: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(not(unix))]
fn read_at(_: &File, _: &mut [u8], _: u64) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::backend::{Backend, BincodeConfig};
    use crate::entry::{payload_checksum, FLAG_XXH3};
    use std::io::Write;

    /// A file of `junk` bytes then the payload of `value`; the payload.
    fn entry_file<T: serde::Serialize>(backend: &BincodeBackend, value: &T, junk: usize) -> (File, Vec<u8>) {
        let mut payload = Vec::new();
        backend.encode(value, &mut payload).expect("encodes");
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&vec![0xAB; junk]).expect("write");
        file.write_all(&payload).expect("write");
        (file, payload)
    }

    fn check<T>(backend: BincodeBackend, value: Vec<T>)
    where
        T: Elem + serde::Serialize + PartialEq + std::fmt::Debug,
    {
        // This build's checksum, and blake3 for an entry written before it.
        for flags in [FLAG_XXH3, 0] {
            check_with(backend, &value, flags);
        }
    }

    fn check_with<T>(backend: BincodeBackend, value: &Vec<T>, flags: u8)
    where
        T: Elem + serde::Serialize + PartialEq + std::fmt::Debug,
    {
        let name = format!("{} (flags {flags})", std::any::type_name::<T>());
        let (file, payload) = entry_file(&backend, value, 100);
        let len = payload.len() as u64;
        let want = payload_checksum(flags, &payload);
        let loaded = load::<Vec<T>>(&backend, &file, 100, len, flags)
            .expect("reads")
            .expect("a big flat payload is loaded in parallel");
        let got = loaded.decoded.expect("decodes");
        assert!(got == *value, "{name}: the values");
        assert_eq!(loaded.sum, Some(want), "{name}: the checksum");
        assert_eq!((loaded.read, loaded.grew), (len, false), "{name}");

        // One more byte in the file: it grew.
        let (file, _) = entry_file(&backend, value, 100);
        (&file).write_all(&[1]).expect("write");
        assert!(
            load::<Vec<T>>(&backend, &file, 100, len, flags)
                .expect("reads")
                .expect("loaded")
                .grew
        );

        // A flipped byte at a piece boundary, in an element, at the end: the checksum tells.
        for at in [
            100 + PIECE as usize - 1,
            100 + PIECE as usize,
            100 + 2 * PIECE as usize + 3,
            100 + payload.len() - 1,
        ] {
            let (file, _) = entry_file(&backend, value, 100);
            file.write_all_at(&[payload[at - 100] ^ 0x20], at as u64)
                .expect("write");
            let l = load::<Vec<T>>(&backend, &file, 100, len, flags)
                .expect("reads")
                .expect("loaded");
            assert_ne!(l.sum, Some(want), "{name}: flip at {at}");
        }

        // Cut short inside the last piece: fewer bytes read than the payload.
        let (file, _) = entry_file(&backend, value, 100);
        file.set_len(100 + len - 3).expect("truncate");
        let l = load::<Vec<T>>(&backend, &file, 100, len, flags)
            .expect("reads")
            .expect("loaded");
        assert!(l.read < len && l.sum.is_none(), "{name}: truncated");
    }

    use std::os::unix::fs::FileExt as _;

    #[test]
    fn big_flat_vectors_load_across_cores_with_their_checksum() {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            eprintln!("one core: the parallel load is not taken here");
            return;
        }
        let plain = BincodeBackend::new();
        let fixint = BincodeBackend::with_config(BincodeConfig::new().fixed_int_encoding(true));
        // Counts that make elements straddle piece boundaries (a 5-byte varint length before 8- and 4-byte
        // elements) and ones that do not (an 8-byte fixed length).
        let n = (17 << 20) / 8 + 3;
        check(plain, (0..n).map(|i| i as f64 * -0.75 + 1e-300).collect::<Vec<f64>>());
        check(fixint, (0..n).map(|i| i as f64 * 0.25).collect::<Vec<f64>>());
        check(plain, (0..2 * n).map(|i| i as f32 * 0.5).collect::<Vec<f32>>());
        check(plain, (0..8 * n).map(|i| (i * 31 + i / 977) as u8).collect::<Vec<u8>>());
        check(fixint, (0..4 * n).map(|i| (i * 7) as u16).collect::<Vec<u16>>());
        check(fixint, (0..n as i64).map(|i| i * -0x0123_4567).collect::<Vec<i64>>());
    }

    #[test]
    fn a_length_prefix_that_changed_after_the_vector_was_sized_is_reported_not_decoded() {
        let backend = BincodeBackend::new();
        let (file, payload) = entry_file(&backend, &vec![2.5f64; 3 << 20], 0);
        let p = prefix_len(false, payload[0]);
        let mut out = vec![0u8; PIECE as usize - p];
        let piece = Piece {
            index: 0,
            start: 0,
            end: PIECE,
            out: &mut out,
        };
        // The prefix the vector was sized by, one count off from the file's.
        let mut sized_by = payload[..p].to_vec();
        sized_by[p - 1] ^= 1;
        assert!(matches!(
            load_piece(&file, 0, &sized_by, piece, true).expect("reads"),
            PieceRead::Changed
        ));
    }

    #[test]
    fn small_payloads_and_mismatched_lengths_are_left_to_the_sequential_path() {
        let backend = BincodeBackend::new();
        let (file, payload) = entry_file(&backend, &vec![1.5f64; 1000], 0);
        assert!(load::<Vec<f64>>(&backend, &file, 0, payload.len() as u64, FLAG_XXH3)
            .expect("reads")
            .is_none());
        // A `Vec<u8>` payload read as `Vec<f64>`: its declared count is not the payload's length in f64s.
        let (file, payload) = entry_file(&backend, &vec![7u8; 17 << 20], 0);
        assert!(load::<Vec<f64>>(&backend, &file, 0, payload.len() as u64, FLAG_XXH3)
            .expect("reads")
            .is_none());
    }
}
