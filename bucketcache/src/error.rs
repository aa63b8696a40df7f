//! The crate's one error type.

use std::path::PathBuf;

/// A `Result` whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The boxed source error a [`Backend`](crate::Backend) returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a bucket.
///
/// A corrupt, truncated or foreign entry file is *not* an error: it reads as a miss and is logged at `warn`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("bucketcache: {action} `{}` failed: {source}", path.display())]
    Io {
        /// What was being done ("create directory", "write entry", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bucket configuration is invalid.
    #[error("bucketcache: invalid configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The key could not be turned into a hash (its `Serialize` implementation failed).
    #[error("bucketcache: cannot hash key: {message}")]
    Key {
        /// The serializer's message.
        message: String,
    },
    /// The backend could not encode the value.
    #[error("bucketcache: the {backend} backend cannot encode this value: {source}{hint}")]
    Encode {
        /// The backend's id.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
        /// A suggestion (possibly empty), starting with "; ".
        hint: &'static str,
    },
    /// A stored value did not decode as the requested type (the type changed, or was never this type).
    #[error(
        "bucketcache: entry `{}` does not decode as `{type_name}` with the {backend} backend: {source}{hint}",
        path.display()
    )]
    Decode {
        /// The backend's id.
        backend: &'static str,
        /// The requested type.
        type_name: &'static str,
        /// The entry file.
        path: PathBuf,
        /// The backend's error.
        #[source]
        source: BoxError,
        /// A suggestion (possibly empty), starting with "; ".
        hint: &'static str,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }
}
