//! The entry file format (version 3; version 2 is read too): a fixed header, two short strings, the payload.
//!
//! ```text
//! offset size  field
//!  0      8    magic            b"BKTCACHE"
//!  8      2    format version   u16 LE (= 3; a version-2 entry, written before the xxh3 checksum, is read too)
//! 10      1    flags            bit 0 (FLAG_ZSTD): the payload is a zstd frame followed by the value's
//!                               encoded length (u64 LE); bit 1 (FLAG_XXH3): the payload checksum is the
//!                               piecewise xxh3 sum, not blake3; other bits 0
//! 11      1    backend id len   u8 (1..=32)
//! 12      2    function len     u16 LE (0 when the entry did not come from #[bucket_cache])
//! 14      2    reserved         0
//! 16      8    written at       i64 LE, milliseconds since the Unix epoch (UTC)
//! 24      8    expires at       i64 LE, milliseconds since the Unix epoch; i64::MAX = never
//! 32      8    payload len      u64 LE, the payload's length as stored
//! 40      8    cost             u64 LE, microseconds the value took to compute; u64::MAX = unknown
//! 48     32    key hash         the entry's KeyHash (also its file name)
//! 80     32    call hash        a code-independent hash of the call (function path and argument values, without
//!                               the code version), relating entries of one call across code versions; 0 = none
//! 112    16    code version     the first 16 bytes of the digest of the code that wrote it; 0 = none
//! 128    32    payload checksum of the payload bytes as stored: blake3, or with FLAG_XXH3 the piecewise xxh3 sum
//!                               (16 bytes, then 16 zero bytes; see [`PieceSum`])
//! 160    16    header checksum  the first 16 bytes of blake3 of bytes 0..160 and of the variable part
//! 176     -    backend id, function path (UTF-8), payload
//! ```
//!
//! The header checks itself: [`parse_header`] rejects a header whose checksum fails, so a tool that reads only
//! headers (the CLI's `ls` and `stats`, prune) never reports a damaged field as a fact. [`verify`] checks the whole
//! file: header, exact length (`176 + backend len + function len + payload len`) and the payload checksum. Anything
//! else (a truncated or extended file, a wrong magic, another version, a checksum mismatch) makes the file
//! [`Corrupt`], which readers treat as a miss.
//!
//! The payload checksum guards against accidental damage (bit rot, torn or truncated files), not an adversary:
//! anyone who can write the directory can recompute any checksum. So new entries (version 3) carry the piecewise
//! xxh3 sum (FLAG_XXH3), several times faster to compute than blake3 and computed piece by piece on every core for a
//! big load; version-2 entries (blake3, flag clear) are still read, so upgrading recomputes nothing. A build of
//! version 2 reads a version-3 entry as another version: a miss, the file kept (never pruned as damaged), and its
//! own write replaces it. Keys and header checksums stay blake3.
//!
//! Version 1 (104-byte header, one checksum over the file) lived in `entries-v1/`; this build reads and writes
//! `entries-v2/` only, so an old build never sees a version-2 file and this build ignores version-1 files (they
//! stay until the `entries-v1` directory is removed by hand).

use std::fmt;

use crate::key::KeyHash;

/// The first eight bytes of every entry file.
pub const MAGIC: [u8; 8] = *b"BKTCACHE";
/// The entry format version this crate writes. Version 3 is version 2 with the xxh3 payload checksum
/// ([`FLAG_XXH3`], set on every version-3 entry): the number changed so that a build of version 2, which refuses other
/// versions but would treat an unknown flag as damage (and prune such files), keeps and ignores the new entries.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest entry format version this crate reads (the layout is the same; the flags say the checksum).
pub const OLDEST_READ_VERSION: u16 = 2;
/// Size of the fixed part of the header.
pub const HEADER_LEN: usize = 176;
/// `expires at` value meaning "never".
pub const NEVER: i64 = i64::MAX;
/// `cost` value meaning "unknown".
const COST_UNKNOWN: u64 = u64::MAX;

/// Flag bit: the payload is zstd-compressed: one zstd frame, then the length of the encoding it holds (u64 LE). The
/// payload checksum covers the stored bytes. Written and read with the crate feature `zstd`; a build without it
/// reads such an entry as a miss.
pub const FLAG_ZSTD: u8 = 1;
/// Flag bit: the payload checksum is the piecewise xxh3 sum ([`PieceSum`]) instead of blake3. Set on every entry this
/// build writes; an entry without it is checked with blake3.
pub const FLAG_XXH3: u8 = 2;
const KNOWN_FLAGS: u8 = FLAG_ZSTD | FLAG_XXH3;

/// Payload bytes of one piece of the xxh3 sum (the last piece may be shorter).
pub const SUM_PIECE: u64 = 4 << 20;
/// The seed of the xxh3 over the pieces' digests.
const DIGESTS_SEED: u64 = 0x6275_636b_6574_7333;

const PAYLOAD_LEN_AT: usize = 32;
const PAYLOAD_SUM_AT: usize = 128;
const HEADER_SUM_AT: usize = 160;
const HEADER_SUM_LEN: usize = 16;

/// Everything an entry file says about itself, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryHeader {
    /// The format version (from [`OLDEST_READ_VERSION`] to [`FORMAT_VERSION`] for a parsed header).
    pub format_version: u16,
    /// Flag bits (see [`FLAG_ZSTD`], [`FLAG_XXH3`]).
    pub flags: u8,
    /// The backend that encoded the payload ([`Backend::id`](crate::Backend::id)).
    pub backend: String,
    /// The function path the `#[bucket_cache]` attribute recorded, if any.
    pub function: Option<String>,
    /// When the entry was written, in milliseconds since the Unix epoch.
    pub written_ms: i64,
    /// When the entry expires, in milliseconds since the Unix epoch; `None` for never.
    pub expires_ms: Option<i64>,
    /// The payload's length in bytes, as stored.
    pub payload_len: u64,
    /// How long the value took to compute, in microseconds, when the writer measured it.
    pub cost_us: Option<u64>,
    /// The entry's key hash.
    pub key: KeyHash,
    /// The code-independent hash of the call that wrote it, when the writer gave one.
    pub call: Option<KeyHash>,
    /// The code version that wrote it (first 16 bytes of its digest), when the writer gave one.
    pub code: Option<[u8; 16]>,
    /// The payload checksum of the bytes as stored ([`payload_checksum`] with this header's flags).
    pub payload_checksum: [u8; 32],
}

impl EntryHeader {
    /// Whether the entry has expired at `now_ms` (an entry expires at the instant its expiry is reached).
    pub fn is_expired_at(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|e| e <= now_ms)
    }

    /// Length of the header, variable part included: the payload's offset in the file.
    pub fn header_len(&self) -> u64 {
        let fn_len = self.function.as_ref().map_or(0, |f| f.len());
        (HEADER_LEN + self.backend.len() + fn_len) as u64
    }

    /// Total file length this header implies.
    pub fn file_len(&self) -> u64 {
        self.header_len().saturating_add(self.payload_len)
    }

    /// The code version as 32 hex digits, when the entry records one.
    pub fn code_hex(&self) -> Option<String> {
        self.code.map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Why a file is not a valid entry. Corrupt files read as misses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corrupt {
    /// Shorter than its header.
    TooShort {
        /// The file's length.
        len: u64,
    },
    /// Does not start with [`MAGIC`].
    BadMagic,
    /// Written by another version of the entry format.
    UnsupportedVersion {
        /// The version in the file.
        version: u16,
    },
    /// A header field is out of range.
    BadHeader {
        /// Which field.
        field: &'static str,
    },
    /// The header's own checksum does not match: some header field is damaged, so none is trusted.
    HeaderChecksumMismatch,
    /// The file's length disagrees with its header (truncated or extended).
    LengthMismatch {
        /// The length the header implies.
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// The payload checksum does not match the payload (bit rot, a torn or tampered file).
    ChecksumMismatch,
    /// The header names another key than the file's name.
    KeyMismatch,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corrupt::TooShort { len } => write!(f, "file of {len} bytes is shorter than an entry header"),
            Corrupt::BadMagic => f.write_str("not a bucketcache entry (bad magic)"),
            Corrupt::UnsupportedVersion { version } => {
                write!(
                    f,
                    "entry format version {version} (this build reads versions {OLDEST_READ_VERSION} to {FORMAT_VERSION})"
                )
            }
            Corrupt::BadHeader { field } => write!(f, "invalid header field `{field}`"),
            Corrupt::HeaderChecksumMismatch => f.write_str("header checksum mismatch (a damaged header)"),
            Corrupt::LengthMismatch { expected, actual } => {
                write!(
                    f,
                    "file is {actual} bytes but its header implies {expected} (truncated or extended)"
                )
            }
            Corrupt::ChecksumMismatch => f.write_str("payload checksum mismatch"),
            Corrupt::KeyMismatch => f.write_str("header names another key than the file name"),
        }
    }
}

impl std::error::Error for Corrupt {}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// The header checksum of a header whose variable part ends at `var_end`.
fn header_checksum(prefix: &[u8], var_end: usize) -> [u8; HEADER_SUM_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(&prefix[..HEADER_SUM_AT]);
    h.update(&prefix[HEADER_LEN..var_end]);
    let mut out = [0u8; HEADER_SUM_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..HEADER_SUM_LEN]);
    out
}

/// Whether this build reads entries of format `version`.
fn readable_version(version: u16) -> bool {
    (OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version)
}

/// Parses and checks the header at the start of a file (`prefix` may be the whole file or only its first bytes, as
/// long as it holds the variable part). Checks magic, version, field ranges and the header checksum, not the
/// file's length or the payload: see [`verify`].
///
/// # Errors
/// The reason the prefix is not an entry header.
pub fn parse_header(prefix: &[u8]) -> Result<EntryHeader, Corrupt> {
    if prefix.len() < HEADER_LEN {
        // Short, but say "another version" when it is one: a useful message for a v1 file.
        if prefix.len() >= 10 && prefix[..8] == MAGIC && !readable_version(u16_at(prefix, 8)) {
            return Err(Corrupt::UnsupportedVersion {
                version: u16_at(prefix, 8),
            });
        }
        return Err(Corrupt::TooShort {
            len: prefix.len() as u64,
        });
    }
    if prefix[..8] != MAGIC {
        return Err(Corrupt::BadMagic);
    }
    let version = u16_at(prefix, 8);
    if !readable_version(version) {
        return Err(Corrupt::UnsupportedVersion { version });
    }
    let backend_len = prefix[11] as usize;
    let fn_len = u16_at(prefix, 12) as usize;
    if backend_len == 0 || backend_len > crate::backend::MAX_BACKEND_ID_LEN {
        return Err(Corrupt::BadHeader {
            field: "backend id len",
        });
    }
    let var_end = HEADER_LEN + backend_len + fn_len;
    if prefix.len() < var_end {
        return Err(Corrupt::TooShort {
            len: prefix.len() as u64,
        });
    }
    if prefix[HEADER_SUM_AT..HEADER_SUM_AT + HEADER_SUM_LEN] != header_checksum(prefix, var_end) {
        return Err(Corrupt::HeaderChecksumMismatch);
    }
    let flags = prefix[10];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Corrupt::BadHeader { field: "flags" });
    }
    let backend = std::str::from_utf8(&prefix[HEADER_LEN..HEADER_LEN + backend_len])
        .map_err(|_| Corrupt::BadHeader { field: "backend id" })?
        .to_owned();
    let function = if fn_len == 0 {
        None
    } else {
        Some(
            std::str::from_utf8(&prefix[HEADER_LEN + backend_len..var_end])
                .map_err(|_| Corrupt::BadHeader { field: "function" })?
                .to_owned(),
        )
    };
    let expires_raw = u64_at(prefix, 24) as i64;
    let cost = u64_at(prefix, 40);
    let call: [u8; 32] = array_at(prefix, 80);
    let code: [u8; 16] = array_at(prefix, 112);
    Ok(EntryHeader {
        format_version: version,
        flags,
        backend,
        function,
        written_ms: u64_at(prefix, 16) as i64,
        expires_ms: (expires_raw != NEVER).then_some(expires_raw),
        payload_len: u64_at(prefix, PAYLOAD_LEN_AT),
        cost_us: (cost != COST_UNKNOWN).then_some(cost),
        key: KeyHash(array_at(prefix, 48)),
        call: (call != [0; 32]).then_some(KeyHash(call)),
        code: (code != [0; 16]).then_some(code),
        payload_checksum: array_at(prefix, PAYLOAD_SUM_AT),
    })
}

/// Bytes of the header's variable part (backend id and function path) a reader needs beyond [`HEADER_LEN`] to
/// parse the header: at most this many.
pub const MAX_HEADER_LEN: usize = HEADER_LEN + crate::backend::MAX_BACKEND_ID_LEN + u16::MAX as usize;

/// The payload checksum of `payload` in an entry with `flags`: the piecewise xxh3 sum with [`FLAG_XXH3`], else
/// blake3.
pub fn payload_checksum(flags: u8, payload: &[u8]) -> [u8; 32] {
    if flags & FLAG_XXH3 == 0 {
        return *blake3::hash(payload).as_bytes();
    }
    // One shot: no streaming state to allocate (the sum is the same, see `PieceSum`).
    combine_pieces(
        payload.len() as u64,
        payload
            .chunks(SUM_PIECE as usize)
            .enumerate()
            .map(|(i, piece)| piece_digest(i as u64, piece)),
    )
}

/// The piecewise xxh3 sum, fed in any number of slices: the payload is cut into pieces of [`SUM_PIECE`] bytes (the
/// last may be shorter); piece `i` has the digest xxh3-128 with seed `i`; the sum is xxh3-128 (seeded) of the
/// digests in order (16 bytes little-endian each) followed by the payload's length (u64 LE), stored as 16 bytes
/// little-endian then 16 zero bytes. The pieces are independent, so a big payload is summed on several cores at
/// once ([`piece_digest`], [`combine_pieces`]); the position of each piece and the length are bound in.
pub struct PieceSum {
    piece: Box<xxhash_rust::xxh3::Xxh3>,
    in_piece: u64,
    index: u64,
    digests: Box<xxhash_rust::xxh3::Xxh3>,
    len: u64,
}

impl Default for PieceSum {
    fn default() -> Self {
        Self::new()
    }
}

impl PieceSum {
    /// An empty sum.
    pub fn new() -> Self {
        PieceSum {
            piece: Box::new(xxhash_rust::xxh3::Xxh3::with_seed(0)),
            in_piece: 0,
            index: 0,
            digests: Box::new(xxhash_rust::xxh3::Xxh3::with_seed(DIGESTS_SEED)),
            len: 0,
        }
    }

    /// Adds the next payload bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = (SUM_PIECE - self.in_piece).min(bytes.len() as u64) as usize;
            let (now, later) = bytes.split_at(room);
            self.piece.update(now);
            self.in_piece += room as u64;
            self.len += room as u64;
            bytes = later;
            if self.in_piece == SUM_PIECE {
                self.end_piece();
            }
        }
    }

    fn end_piece(&mut self) {
        self.digests.update(&self.piece.digest128().to_le_bytes());
        self.index += 1;
        *self.piece = xxhash_rust::xxh3::Xxh3::with_seed(self.index);
        self.in_piece = 0;
    }

    /// The sum of every byte added.
    pub fn finish(mut self) -> [u8; 32] {
        if self.in_piece > 0 {
            self.end_piece();
        }
        self.digests.update(&self.len.to_le_bytes());
        stored(self.digests.digest128())
    }
}

/// The digest of piece `index` (its bytes: all [`SUM_PIECE`] of them, or the payload's rest for the last).
pub fn piece_digest(index: u64, piece: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(piece, index)
}

/// The piecewise xxh3 sum of a `len`-byte payload from its pieces' digests, in order.
pub fn combine_pieces(len: u64, digests: impl IntoIterator<Item = u128>) -> [u8; 32] {
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(DIGESTS_SEED);
    for d in digests {
        h.update(&d.to_le_bytes());
    }
    h.update(&len.to_le_bytes());
    stored(h.digest128())
}

/// A 128-bit sum as the header's 32-byte field holds it.
fn stored(sum: u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Checks a whole file: header (with its checksum), exact length and payload checksum. Returns the header and
/// the payload's offset.
///
/// # Errors
/// The reason the file is not a valid entry.
pub fn verify(file: &[u8]) -> Result<(EntryHeader, usize), Corrupt> {
    let header = parse_header(file)?;
    let expected = header.file_len();
    if expected != file.len() as u64 {
        return Err(Corrupt::LengthMismatch {
            expected,
            actual: file.len() as u64,
        });
    }
    let payload_at = header.header_len() as usize;
    if payload_checksum(header.flags, &file[payload_at..]) != header.payload_checksum {
        return Err(Corrupt::ChecksumMismatch);
    }
    Ok((header, payload_at))
}

/// What to write in a new entry's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEntry<'a> {
    pub key: KeyHash,
    pub backend: &'a str,
    pub function: Option<&'a str>,
    pub written_ms: i64,
    pub expires_ms: Option<i64>,
    pub cost_us: Option<u64>,
    pub call: Option<KeyHash>,
    pub code: Option<[u8; 16]>,
}

/// The header of a new entry with its length and checksum fields still zero: fill them with [`seal`] once the
/// payload is known. Returns the header bytes (fixed and variable part); the payload follows them.
pub(crate) fn prefix(meta: NewEntry<'_>, extra_capacity: usize) -> Vec<u8> {
    let function = meta.function.unwrap_or("");
    // Ids and paths are clipped, never rejected: a header field must not make a write fail.
    let backend = &meta.backend.as_bytes()[..meta.backend.len().min(crate::backend::MAX_BACKEND_ID_LEN)];
    let function = &function.as_bytes()[..function.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(HEADER_LEN + backend.len() + function.len() + extra_capacity);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(0);
    out.push(backend.len() as u8);
    out.extend_from_slice(&(function.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&meta.written_ms.to_le_bytes());
    out.extend_from_slice(&meta.expires_ms.unwrap_or(NEVER).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // payload length, filled in by `seal`
    out.extend_from_slice(
        &meta
            .cost_us
            .map_or(COST_UNKNOWN, |c| c.min(COST_UNKNOWN - 1))
            .to_le_bytes(),
    );
    out.extend_from_slice(meta.key.as_bytes());
    out.extend_from_slice(&meta.call.map_or([0u8; 32], |c| c.0));
    out.extend_from_slice(&meta.code.unwrap_or([0; 16]));
    out.extend_from_slice(&[0u8; 32]); // payload checksum, filled in by `seal`
    out.extend_from_slice(&[0u8; HEADER_SUM_LEN]); // header checksum, filled in by `seal`
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(backend);
    out.extend_from_slice(function);
    out
}

/// Completes a header made by [`prefix`] (exactly its bytes): the flags, the payload's length and checksum, and
/// the header checksum.
pub(crate) fn seal(header: &mut [u8], flags: u8, payload_len: u64, payload_sum: &[u8; 32]) {
    header[10] = flags;
    header[PAYLOAD_LEN_AT..PAYLOAD_LEN_AT + 8].copy_from_slice(&payload_len.to_le_bytes());
    header[PAYLOAD_SUM_AT..PAYLOAD_SUM_AT + 32].copy_from_slice(payload_sum);
    let hsum = header_checksum(header, header.len());
    header[HEADER_SUM_AT..HEADER_SUM_AT + HEADER_SUM_LEN].copy_from_slice(&hsum);
}

/// Builds an entry file in one buffer: the header, then the payload `encode` appends, then the length and the two
/// checksums are filled in. Returns the file bytes and the payload offset.
pub(crate) fn build<E>(
    meta: NewEntry<'_>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(Vec<u8>, usize), E> {
    let mut out = prefix(meta, 64);
    let payload_at = out.len();
    encode(&mut out)?;
    let payload_len = (out.len() - payload_at) as u64;
    let sum = payload_checksum(FLAG_XXH3, &out[payload_at..]);
    seal(&mut out[..payload_at], FLAG_XXH3, payload_len, &sum);
    Ok((out, payload_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(function: Option<&str>) -> NewEntry<'_> {
        NewEntry {
            key: KeyHash([7; 32]),
            backend: "json",
            function,
            written_ms: 1_700_000_000_000,
            expires_ms: Some(1_700_000_360_000),
            cost_us: Some(1_500_000),
            call: Some(KeyHash([9; 32])),
            code: Some([3; 16]),
        }
    }

    fn sample(function: Option<&str>) -> Vec<u8> {
        build::<()>(meta(function), |out| {
            out.extend_from_slice(b"[1,2,3]");
            Ok(())
        })
        .expect("builds")
        .0
    }

    #[test]
    fn round_trip_header_and_payload() {
        let file = sample(Some("crate::f"));
        let (h, at) = verify(&file).expect("valid");
        assert_eq!(&file[at..], b"[1,2,3]");
        assert_eq!(h.backend, "json");
        assert_eq!(h.function.as_deref(), Some("crate::f"));
        assert_eq!(h.expires_ms, Some(1_700_000_360_000));
        assert_eq!(h.key, KeyHash([7; 32]));
        assert_eq!(h.cost_us, Some(1_500_000));
        assert_eq!(h.call, Some(KeyHash([9; 32])));
        assert_eq!(h.code, Some([3; 16]));
        assert_eq!(h.code_hex().as_deref(), Some("03".repeat(16).as_str()));
        assert!(h.is_expired_at(1_700_000_360_000));
        assert!(!h.is_expired_at(1_700_000_359_999));
    }

    #[test]
    fn unknown_optional_fields_read_as_none() {
        let mut m = meta(None);
        m.cost_us = None;
        m.call = None;
        m.code = None;
        let (file, _) = build::<()>(m, |_| Ok(())).expect("builds");
        let h = parse_header(&file).expect("valid");
        assert_eq!((h.cost_us, h.call, h.code), (None, None, None));
    }

    #[test]
    fn every_truncation_and_flip_is_detected() {
        let file = sample(None);
        for len in 0..file.len() {
            assert!(verify(&file[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..file.len() {
            for bit in 0..8 {
                let mut f = file.clone();
                f[i] ^= 1 << bit;
                assert!(verify(&f).is_err(), "flip byte {i} bit {bit}");
            }
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(verify(&longer), Err(Corrupt::LengthMismatch { .. })));
    }

    #[test]
    fn every_header_flip_fails_the_header_alone() {
        // Header-only readers (CLI `ls`, `stats`, prune) must never see a damaged field as valid.
        let file = sample(Some("client::Client::fetch"));
        let var_end = verify(&file).expect("valid").1;
        for i in 0..var_end {
            for bit in 0..8 {
                let mut f = file.clone();
                f[i] ^= 1 << bit;
                assert!(
                    parse_header(&f[..var_end]).is_err(),
                    "flip byte {i} bit {bit} of the header"
                );
            }
        }
    }

    #[test]
    fn a_version_1_file_is_reported_as_such() {
        let mut v1 = vec![0u8; 104];
        v1[..8].copy_from_slice(&MAGIC);
        v1[8] = 1;
        assert_eq!(parse_header(&v1), Err(Corrupt::UnsupportedVersion { version: 1 }));
    }

    /// The piecewise xxh3 sum is the same fed whole, in pieces of any size or piece by piece on its own cores
    /// ([`piece_digest`] + [`combine_pieces`]), binds every byte, each piece's place and the length, and is not
    /// blake3's.
    #[test]
    fn the_piecewise_sum_is_the_same_however_it_is_fed_and_binds_every_byte() {
        let piece = SUM_PIECE as usize;
        let data: Vec<u8> = (0..2 * piece + 12_345).map(|i| (i * 31 + i / 977) as u8).collect();
        for len in [0, 1, 4095, piece - 1, piece, piece + 1, 2 * piece, data.len()] {
            let bytes = &data[..len];
            let whole = payload_checksum(FLAG_XXH3, bytes);
            assert_eq!(whole[16..], [0u8; 16], "the second half is zero");
            assert_ne!(whole, payload_checksum(0, bytes), "not blake3");
            let by_pieces = combine_pieces(
                len as u64,
                bytes.chunks(piece).enumerate().map(|(i, p)| piece_digest(i as u64, p)),
            );
            assert_eq!(by_pieces, whole, "len {len}: by pieces");
            for step in [1000, 65_536, piece - 7, piece + 3] {
                let mut sum = PieceSum::new();
                for part in bytes.chunks(step) {
                    sum.update(part);
                }
                assert_eq!(sum.finish(), whole, "len {len}: fed in steps of {step}");
            }
        }
        let full = payload_checksum(FLAG_XXH3, &data);
        for at in [0, piece - 1, piece, 2 * piece + 12_344] {
            let mut bad = data.clone();
            bad[at] ^= 1;
            assert_ne!(payload_checksum(FLAG_XXH3, &bad), full, "flip at {at}");
        }
        // Two pieces swapped, or a zero byte appended: another sum.
        let mut swapped = data[piece..2 * piece].to_vec();
        swapped.extend_from_slice(&data[..piece]);
        assert_ne!(
            payload_checksum(FLAG_XXH3, &swapped),
            payload_checksum(FLAG_XXH3, &data[..2 * piece])
        );
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(payload_checksum(FLAG_XXH3, &longer), full);
    }

    /// This build writes version 3 with the xxh3 sum, reads version-2 (blake3) entries too, and still refuses a flag
    /// or a version it does not know.
    #[test]
    fn new_entries_carry_the_xxh3_flag_and_old_blake3_entries_still_verify() {
        let file = sample(Some("f"));
        let (header, payload_at) = verify(&file).expect("valid");
        assert_eq!(header.flags & FLAG_XXH3, FLAG_XXH3);
        assert_eq!(header.format_version, 3);
        // The same entry as an older build wrote it: version 2, flag clear, blake3 of the payload.
        let mut old = file.clone();
        old[8..10].copy_from_slice(&2u16.to_le_bytes());
        let sum = payload_checksum(0, &old[payload_at..]);
        let flags = old[10] & !FLAG_XXH3;
        seal(&mut old[..payload_at], flags, header.payload_len, &sum);
        let (old_header, _) = verify(&old).expect("a blake3 entry is still valid");
        assert_eq!((old_header.format_version, old_header.flags & FLAG_XXH3), (2, 0));
        // A version this build does not know yet: another version, not damage.
        let mut future = file.clone();
        future[8..10].copy_from_slice(&4u16.to_le_bytes());
        let own = payload_checksum(FLAG_XXH3, &future[payload_at..]);
        seal(&mut future[..payload_at], FLAG_XXH3, header.payload_len, &own);
        assert!(matches!(
            verify(&future),
            Err(Corrupt::UnsupportedVersion { version: 4 })
        ));
        // Its blake3 sum under the xxh3 flag (or the reverse) is a mismatch, not a pass.
        let mut mixed = file.clone();
        seal(&mut mixed[..payload_at], FLAG_XXH3, header.payload_len, &sum);
        assert!(matches!(verify(&mixed), Err(Corrupt::ChecksumMismatch)));
        // An unknown flag bit: a damaged header.
        let mut unknown = file.clone();
        let own = payload_checksum(FLAG_XXH3, &unknown[payload_at..]);
        seal(&mut unknown[..payload_at], FLAG_XXH3 | 4, header.payload_len, &own);
        assert!(matches!(verify(&unknown), Err(Corrupt::BadHeader { field: "flags" })));
    }
}
