//! The entry file format (version 1): a fixed header, two short strings, the payload.
//!
//! ```text
//! offset size  field
//!  0      8    magic            b"BKTCACHE"
//!  8      2    format version   u16 LE (= 1)
//! 10      1    flags            reserved, 0
//! 11      1    backend id len   u8 (<= 32)
//! 12      2    function len     u16 LE (0 when the entry did not come from #[bucket_cache])
//! 14      2    reserved         0
//! 16      8    written at       i64 LE, milliseconds since the Unix epoch (UTC)
//! 24      8    expires at       i64 LE, milliseconds since the Unix epoch; i64::MAX = never
//! 32      8    payload len      u64 LE
//! 40     32    key hash         the entry's KeyHash (also its file name)
//! 72     32    checksum         blake3 of every byte of the file except these 32
//! 104     -    backend id, function path (UTF-8), payload
//! ```
//!
//! The file's length must be exactly `104 + backend len + function len + payload len`; anything else (a truncated
//! or extended file), a wrong magic, another version or a checksum mismatch makes the file [`Corrupt`].

use std::fmt;

use crate::key::KeyHash;

/// The first eight bytes of every entry file.
pub const MAGIC: [u8; 8] = *b"BKTCACHE";
/// The entry format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the fixed part of the header.
pub const HEADER_LEN: usize = 104;
/// `expires at` value meaning "never".
pub const NEVER: i64 = i64::MAX;

const CHECKSUM_AT: usize = 72;

/// Everything an entry file says about itself, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// The format version (always [`FORMAT_VERSION`] for a parsed header).
    pub format_version: u16,
    /// The backend that encoded the payload ([`Backend::id`](crate::Backend::id)).
    pub backend: String,
    /// The function path the `#[bucket_cache]` attribute recorded, if any.
    pub function: Option<String>,
    /// When the entry was written, in milliseconds since the Unix epoch.
    pub written_ms: i64,
    /// When the entry expires, in milliseconds since the Unix epoch; `None` for never.
    pub expires_ms: Option<i64>,
    /// The payload's length in bytes.
    pub payload_len: u64,
    /// The entry's key hash.
    pub key: KeyHash,
}

impl EntryHeader {
    /// Whether the entry has expired at `now_ms` (an entry expires at the instant its expiry is reached).
    pub fn is_expired_at(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|e| e <= now_ms)
    }

    /// Total file length this header implies.
    pub fn file_len(&self) -> u64 {
        let fn_len = self.function.as_ref().map_or(0, |f| f.len());
        ((HEADER_LEN + self.backend.len() + fn_len) as u64).saturating_add(self.payload_len)
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
    /// The file's length disagrees with its header (truncated or extended).
    LengthMismatch {
        /// The length the header implies.
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// The checksum does not match the contents (bit rot, a torn or tampered file).
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
                    "entry format version {version} (this build reads version {FORMAT_VERSION})"
                )
            }
            Corrupt::BadHeader { field } => write!(f, "invalid header field `{field}`"),
            Corrupt::LengthMismatch { expected, actual } => {
                write!(
                    f,
                    "file is {actual} bytes but its header implies {expected} (truncated or extended)"
                )
            }
            Corrupt::ChecksumMismatch => f.write_str("checksum mismatch"),
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

/// Parses the header from the start of a file (`prefix` may be the whole file or only its first bytes).
/// Checks magic, version and field ranges, not the length or checksum: see [`verify`].
///
/// # Errors
/// The reason the prefix is not an entry header.
pub fn parse_header(prefix: &[u8]) -> Result<EntryHeader, Corrupt> {
    if prefix.len() < HEADER_LEN {
        return Err(Corrupt::TooShort {
            len: prefix.len() as u64,
        });
    }
    if prefix[..8] != MAGIC {
        return Err(Corrupt::BadMagic);
    }
    let version = u16_at(prefix, 8);
    if version != FORMAT_VERSION {
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
    let written_ms = u64_at(prefix, 16) as i64;
    let expires_raw = u64_at(prefix, 24) as i64;
    let mut key = [0u8; 32];
    key.copy_from_slice(&prefix[40..72]);
    Ok(EntryHeader {
        format_version: version,
        backend,
        function,
        written_ms,
        expires_ms: (expires_raw != NEVER).then_some(expires_raw),
        payload_len: u64_at(prefix, 32),
        key: KeyHash(key),
    })
}

/// Bytes of the header's variable part (backend id and function path) a reader needs beyond [`HEADER_LEN`] to
/// parse the header: at most this many.
pub const MAX_HEADER_LEN: usize = HEADER_LEN + crate::backend::MAX_BACKEND_ID_LEN + u16::MAX as usize;

fn checksum(file: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&file[..CHECKSUM_AT]);
    h.update(&file[CHECKSUM_AT + 32..]);
    *h.finalize().as_bytes()
}

/// Checks a whole file: header, exact length and checksum. Returns the header and the payload's offset.
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
    if file[CHECKSUM_AT..CHECKSUM_AT + 32] != checksum(file) {
        return Err(Corrupt::ChecksumMismatch);
    }
    let payload_at = file.len() - header.payload_len as usize;
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
}

/// Builds an entry file in one buffer: the header, then the payload `encode` appends, then the length and
/// checksum are filled in. Returns the file bytes and the payload offset.
pub(crate) fn build<E>(
    meta: NewEntry<'_>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(Vec<u8>, usize), E> {
    let function = meta.function.unwrap_or("");
    // Ids and paths are clipped, never rejected: a header field must not make a write fail.
    let backend = &meta.backend.as_bytes()[..meta.backend.len().min(crate::backend::MAX_BACKEND_ID_LEN)];
    let function = &function.as_bytes()[..function.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(HEADER_LEN + backend.len() + function.len() + 64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(0);
    out.push(backend.len() as u8);
    out.extend_from_slice(&(function.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&meta.written_ms.to_le_bytes());
    out.extend_from_slice(&meta.expires_ms.unwrap_or(NEVER).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // payload length, filled in below
    out.extend_from_slice(meta.key.as_bytes());
    out.extend_from_slice(&[0u8; 32]); // checksum, filled in below
    out.extend_from_slice(backend);
    out.extend_from_slice(function);
    let payload_at = out.len();
    encode(&mut out)?;
    let payload_len = (out.len() - payload_at) as u64;
    out[32..40].copy_from_slice(&payload_len.to_le_bytes());
    let sum = checksum(&out);
    out[CHECKSUM_AT..CHECKSUM_AT + 32].copy_from_slice(&sum);
    Ok((out, payload_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(function: Option<&str>) -> Vec<u8> {
        let meta = NewEntry {
            key: KeyHash([7; 32]),
            backend: "json",
            function,
            written_ms: 1_700_000_000_000,
            expires_ms: Some(1_700_000_360_000),
        };
        build::<()>(meta, |out| {
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
        assert!(h.is_expired_at(1_700_000_360_000));
        assert!(!h.is_expired_at(1_700_000_359_999));
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
}
