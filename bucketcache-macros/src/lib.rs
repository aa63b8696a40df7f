//! The `#[bucket_cache]` attribute for [`bucketcache`](https://docs.rs/bucketcache).
//!
//! Use it through its re-export, `bucketcache::bucket_cache`, which documents every argument.

use proc_macro::TokenStream;

/// Caches a function's results in a `bucketcache::Bucket`. See `bucketcache::bucket_cache`.
#[proc_macro_attribute]
pub fn bucket_cache(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
