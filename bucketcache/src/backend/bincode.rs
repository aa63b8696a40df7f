//! The default backend: bincode 2 through serde.

use std::io::{BufReader, Read, Write};

use bincode::config::{self, Config, Configuration, Limit};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::bounded::{with_payload_len, Bounded};
use super::Backend;
use crate::error::BoxError;

/// Tuning for [`BincodeBackend`]. The default is bincode's standard configuration (little endian, variable-length
/// integers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BincodeConfig {
    /// Encode integers at their full width instead of as varints (larger files, slightly faster to decode).
    pub fixed_int_encoding: bool,
}

impl BincodeConfig {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`BincodeConfig::fixed_int_encoding`].
    #[must_use]
    pub fn fixed_int_encoding(mut self, yes: bool) -> Self {
        self.fixed_int_encoding = yes;
        self
    }
}

/// A compact binary backend (bincode 2). Fast and small, but not self-describing: types that need
/// `deserialize_any` (`serde_json::Value`, `#[serde(flatten)]`, untagged enums) need [`JsonBackend`](crate::JsonBackend)
/// or [`MessagePackBackend`](crate::MessagePackBackend).
///
/// Decoding is bounded: bincode's byte-claim limit is set from the payload size (64 times it, at least 1 MiB), so a
/// crafted length prefix fails instead of allocating; declared lengths cannot make serde preallocate more elements
/// than the payload has bytes, and nesting is limited to [`MAX_DEPTH`](crate::MAX_DEPTH) levels.
#[derive(Debug, Clone, Copy, Default)]
pub struct BincodeBackend {
    config: BincodeConfig,
}

impl BincodeBackend {
    /// The backend with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend with `config`.
    pub fn with_config(config: BincodeConfig) -> Self {
        BincodeBackend { config }
    }

    /// This backend's configuration.
    pub fn config(&self) -> BincodeConfig {
        self.config
    }
}

/// How much memory a payload may claim while decoding, relative to its size.
const CLAIM_FACTOR: usize = 64;

/// Where a payload is decoded from: a slice, or a buffered reader (a large entry's file).
trait Source {
    fn len(&self) -> usize;
    fn decode<V: DeserializeOwned, C: Config>(self, cfg: C) -> Result<V, BoxError>;
}

impl Source for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn decode<V: DeserializeOwned, C: Config>(self, cfg: C) -> Result<V, BoxError> {
        let (Bounded(value), used) = with_payload_len(self.len(), || {
            bincode::serde::decode_from_slice::<Bounded<V>, C>(self, cfg)
        })?;
        if used != self.len() {
            return Err(format!("{} trailing bytes after the value", self.len() - used).into());
        }
        Ok(value)
    }
}

/// A reader over a payload of a known length; the caller checks that the decode used all of it.
struct Stream<'a, R>(&'a mut BufReader<R>, usize);

impl<R: Read> Source for Stream<'_, R> {
    fn len(&self) -> usize {
        self.1
    }

    fn decode<V: DeserializeOwned, C: Config>(self, cfg: C) -> Result<V, BoxError> {
        let Stream(reader, len) = self;
        let Bounded(value) = with_payload_len(len, || {
            bincode::serde::decode_from_reader::<Bounded<V>, _, C>(FastRead(reader), cfg)
        })?;
        Ok(value)
    }
}

/// bincode's reader over a `BufReader`, with the common case inlined: bincode reads a few bytes per value (eight
/// per `f64`), and its own `BufReader` reader makes a call to `read_exact` for each, which made decoding a big
/// `Vec<f64>` cost three times reading it.
struct FastRead<'a, R>(&'a mut BufReader<R>);

impl<R: Read> bincode::de::read::Reader for FastRead<'_, R> {
    #[inline]
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        if let Some(src) = self.0.buffer().get(..bytes.len()) {
            bytes.copy_from_slice(src);
            std::io::BufRead::consume(self.0, bytes.len());
            return Ok(());
        }
        self.read_slow(bytes)
    }

    #[inline]
    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.buffer().get(..n)
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        std::io::BufRead::consume(self.0, n);
    }
}

impl<R: Read> FastRead<'_, R> {
    /// The read that crosses the end of the buffer (or the payload).
    #[cold]
    #[inline(never)]
    fn read_slow(&mut self, bytes: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        self.0
            .read_exact(bytes)
            .map_err(|inner| bincode::error::DecodeError::Io {
                inner,
                additional: bytes.len(),
            })
    }
}

/// Picks the smallest compiled-in claim limit that covers `CLAIM_FACTOR` times the payload.
fn decode_limited<V: DeserializeOwned, E, I>(src: impl Source, cfg: Configuration<E, I>) -> Result<V, BoxError>
where
    Configuration<E, I, Limit<{ 1 << 20 }>>: Config,
    Configuration<E, I, Limit<{ 1 << 24 }>>: Config,
    Configuration<E, I, Limit<{ 1 << 28 }>>: Config,
    Configuration<E, I, Limit<{ 1 << 32 }>>: Config,
    Configuration<E, I, Limit<{ 1 << 38 }>>: Config,
{
    let need = src.len().saturating_mul(CLAIM_FACTOR);
    if need <= 1 << 20 {
        src.decode(cfg.with_limit::<{ 1 << 20 }>())
    } else if need <= 1 << 24 {
        src.decode(cfg.with_limit::<{ 1 << 24 }>())
    } else if need <= 1 << 28 {
        src.decode(cfg.with_limit::<{ 1 << 28 }>())
    } else if need <= 1 << 32 {
        src.decode(cfg.with_limit::<{ 1 << 32 }>())
    } else {
        src.decode(cfg.with_limit::<{ 1 << 38 }>())
    }
}

impl Backend for BincodeBackend {
    fn id(&self) -> &'static str {
        if self.config.fixed_int_encoding {
            "bincode2-fixint"
        } else {
            "bincode2"
        }
    }

    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), BoxError> {
        let r = if self.config.fixed_int_encoding {
            bincode::serde::encode_into_std_write(value, out, config::standard().with_fixed_int_encoding())
        } else {
            bincode::serde::encode_into_std_write(value, out, config::standard())
        };
        r.map(drop).map_err(Into::into)
    }

    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, BoxError> {
        if self.config.fixed_int_encoding {
            decode_limited(bytes, config::standard().with_fixed_int_encoding())
        } else {
            decode_limited(bytes, config::standard())
        }
    }

    fn encode_to<V: Serialize + ?Sized, W: Write>(&self, value: &V, out: &mut W) -> Result<(), BoxError> {
        let r = if self.config.fixed_int_encoding {
            bincode::serde::encode_into_std_write(value, out, config::standard().with_fixed_int_encoding())
        } else {
            bincode::serde::encode_into_std_write(value, out, config::standard())
        };
        r.map(drop).map_err(Into::into)
    }

    fn decode_from<V: DeserializeOwned, R: Read>(&self, reader: &mut BufReader<R>, len: u64) -> Result<V, BoxError> {
        let src = Stream(reader, usize::try_from(len)?);
        if self.config.fixed_int_encoding {
            decode_limited(src, config::standard().with_fixed_int_encoding())
        } else {
            decode_limited(src, config::standard())
        }
    }

    fn hint(&self, error: &BoxError) -> &'static str {
        use bincode::error::{DecodeError, EncodeError};
        let not_self_describing = match error.downcast_ref::<DecodeError>() {
            Some(DecodeError::Serde(e)) => matches!(
                e,
                bincode::serde::DecodeError::AnyNotSupported
                    | bincode::serde::DecodeError::IgnoredAnyNotSupported
                    | bincode::serde::DecodeError::IdentifierNotSupported
            ),
            _ => false,
        } || matches!(
            error.downcast_ref::<EncodeError>(),
            Some(EncodeError::Serde(bincode::serde::EncodeError::SequenceMustHaveLength))
        );
        if not_self_describing {
            "; bincode is not self-describing and cannot store this type (e.g. serde_json::Value, \
             #[serde(flatten)], untagged enums, iterators of unknown length): use JsonBackend or MessagePackBackend"
        } else {
            ""
        }
    }
}
