//! The JSON backend (feature `json`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Backend;
use crate::error::BoxError;

/// Tuning for [`JsonBackend`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonConfig {
    /// Write indented JSON (readable with a text editor; larger).
    pub pretty: bool,
}

impl JsonConfig {
    /// The default configuration (compact output).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`JsonConfig::pretty`].
    #[must_use]
    pub fn pretty(mut self, yes: bool) -> Self {
        self.pretty = yes;
        self
    }
}

/// A JSON backend (serde_json). Self-describing: stores `serde_json::Value` and other `deserialize_any` types.
/// Decoding allocates in proportion to the payload (strings cannot claim more than they contain), and nesting is
/// limited to serde_json's recursion limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBackend {
    config: JsonConfig,
}

impl JsonBackend {
    /// The backend with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend with `config`.
    pub fn with_config(config: JsonConfig) -> Self {
        JsonBackend { config }
    }
}

impl Backend for JsonBackend {
    fn id(&self) -> &'static str {
        "json"
    }

    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), BoxError> {
        if self.config.pretty {
            serde_json::to_writer_pretty(out, value)?;
        } else {
            serde_json::to_writer(out, value)?;
        }
        Ok(())
    }

    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    fn encode_to<V: Serialize + ?Sized, W: std::io::Write>(&self, value: &V, out: &mut W) -> Result<(), BoxError> {
        if self.config.pretty {
            serde_json::to_writer_pretty(out, value)?;
        } else {
            serde_json::to_writer(out, value)?;
        }
        Ok(())
    }

    fn hint(&self, error: &BoxError) -> &'static str {
        match error.downcast_ref::<serde_json::Error>() {
            Some(e) if e.to_string().contains("key must be a string") => {
                "; JSON object keys must be strings: use MessagePackBackend or BincodeBackend for maps with other keys"
            }
            _ => "",
        }
    }

    fn is_self_describing(&self) -> bool {
        true
    }
}
