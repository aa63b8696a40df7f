//! Items the `#[bucket_cache]` expansion uses. Not public API: no stability promise.
#![doc(hidden)]

pub use serde;
