//! Serialization backends: how a value becomes an entry's payload and back.
//!
//! Three are provided: [`BincodeBackend`] (the default: compact, fast, not self-describing), [`JsonBackend`]
//! (feature `json`) and [`MessagePackBackend`] (feature `msgpack`). Implement [`Backend`] for your own.

mod bincode;
mod bounded;
pub(crate) mod flat;
pub(crate) mod flat_parallel;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "msgpack")]
mod msgpack;

pub use self::bincode::{BincodeBackend, BincodeConfig};
pub use self::bounded::MAX_DEPTH;
#[cfg(feature = "json")]
pub use self::json::{JsonBackend, JsonConfig};
#[cfg(feature = "msgpack")]
pub use self::msgpack::{MessagePackBackend, MessagePackConfig};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::BoxError;

/// Longest backend id an entry header can hold.
pub const MAX_BACKEND_ID_LEN: usize = 32;

/// A serialization format for entry payloads.
///
/// The payload handed to [`Backend::decode`] has passed the entry's checksum, but may still have been crafted by
/// someone with write access to the cache directory: a decoder must not allocate far beyond the payload's size.
pub trait Backend: Send + Sync + 'static {
    /// A stable identifier stored in every entry header (ASCII, at most [`MAX_BACKEND_ID_LEN`] bytes). An entry
    /// written by a backend with another id reads as a miss, so never reuse an id for an incompatible format.
    fn id(&self) -> &'static str;

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    /// When the value cannot be represented in this format.
    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), BoxError>;

    /// Decodes a whole payload. Trailing bytes must be an error.
    ///
    /// # Errors
    /// When the bytes are not an encoding of a `V`.
    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, BoxError>;

    /// Writes the encoding of `value` to `out` (a buffered writer), for a large entry streamed into its file. The
    /// default encodes into a buffer with [`Backend::encode`] and writes it; override it to encode without one.
    ///
    /// # Errors
    /// When the value cannot be represented in this format, or `out` fails.
    fn encode_to<V: Serialize + ?Sized, W: std::io::Write>(&self, value: &V, out: &mut W) -> Result<(), BoxError> {
        let mut buf = Vec::new();
        self.encode(value, &mut buf)?;
        out.write_all(&buf)?;
        Ok(())
    }

    /// Decodes a whole payload of `len` bytes read from `reader`, for a large entry read from its file. It may stop
    /// before the end of the payload: the caller treats unread bytes as trailing bytes (an error). The default reads
    /// the `len` bytes into one buffer and calls [`Backend::decode`]; override it to decode without the buffer.
    ///
    /// # Errors
    /// When the bytes are not an encoding of a `V`, or `reader` fails.
    fn decode_from<V: DeserializeOwned, R: std::io::Read>(
        &self,
        reader: &mut std::io::BufReader<R>,
        len: u64,
    ) -> Result<V, BoxError> {
        use std::io::Read as _;
        let mut buf = Vec::with_capacity(usize::try_from(len)?);
        reader.take(len).read_to_end(&mut buf)?;
        self.decode(&buf)
    }

    /// A suggestion to append to an encode or decode error (starting with "; "), or "" for none.
    fn hint(&self, _error: &BoxError) -> &'static str {
        ""
    }

    /// Whether a payload can be rendered without knowing its type (used by tools such as the CLI's `show`).
    fn is_self_describing(&self) -> bool {
        false
    }
}
