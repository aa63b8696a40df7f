//! The MessagePack backend (feature `msgpack`).

use serde::de::{Deserialize, DeserializeOwned};
use serde::Serialize;

use super::bounded::{with_payload_len, Bounded};
use super::Backend;
use crate::error::BoxError;

/// Tuning for [`MessagePackBackend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessagePackConfig {
    /// Write structs as maps with field names (the default: robust to field reordering, readable by other
    /// languages) rather than as arrays (smaller).
    pub struct_map: bool,
}

impl Default for MessagePackConfig {
    fn default() -> Self {
        MessagePackConfig { struct_map: true }
    }
}

impl MessagePackConfig {
    /// The default configuration (structs as maps).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`MessagePackConfig::struct_map`].
    #[must_use]
    pub fn struct_map(mut self, yes: bool) -> Self {
        self.struct_map = yes;
        self
    }
}

/// A MessagePack backend (rmp-serde). Self-describing and compact. Decoding reads from the payload slice, so a
/// declared string or binary length beyond the payload fails instead of allocating; declared array and map lengths
/// cannot make serde preallocate more elements than the payload has bytes, and nesting is limited to
/// [`MAX_DEPTH`](crate::MAX_DEPTH) levels.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackBackend {
    config: MessagePackConfig,
}

impl MessagePackBackend {
    /// The backend with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend with `config`.
    pub fn with_config(config: MessagePackConfig) -> Self {
        MessagePackBackend { config }
    }
}

impl Backend for MessagePackBackend {
    fn id(&self) -> &'static str {
        "msgpack"
    }

    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), BoxError> {
        if self.config.struct_map {
            rmp_serde::encode::write_named(out, value)?;
        } else {
            rmp_serde::encode::write(out, value)?;
        }
        Ok(())
    }

    fn encode_to<V: Serialize + ?Sized, W: std::io::Write>(&self, value: &V, out: &mut W) -> Result<(), BoxError> {
        if self.config.struct_map {
            rmp_serde::encode::write_named(out, value)?;
        } else {
            rmp_serde::encode::write(out, value)?;
        }
        Ok(())
    }

    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, BoxError> {
        // Reading from the slice (not an io::Read) keeps declared lengths from allocating past the payload.
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        let Bounded(value) = with_payload_len(bytes.len(), || Bounded::<V>::deserialize(&mut de))?;
        // The reader does not expose its position: a whole payload ends exactly where the value does.
        match serde::de::IgnoredAny::deserialize(&mut de) {
            Err(rmp_serde::decode::Error::InvalidMarkerRead(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Ok(value)
            }
            _ => Err("trailing bytes after the value".into()),
        }
    }

    fn is_self_describing(&self) -> bool {
        true
    }
}
