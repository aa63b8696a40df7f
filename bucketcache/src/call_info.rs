//! [`CachedCallInfo`]: what an `on_cached` callback learns about a cache hit.

use chrono::{DateTime, Utc};

use crate::arg_value::ArgValue;
use crate::bucket::HitSource;
use crate::key::KeyHash;

/// One argument of a cached call: its name and its value as rendered by its `Serialize` implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct CallArg {
    /// The parameter's name (`self` for a receiver that is part of the key).
    pub name: &'static str,
    /// Its value; [`ArgValue::Ignored`] for an argument left out of the key with `ignore(...)`.
    pub value: ArgValue,
}

/// What an `on_cached` callback receives on a cache hit (memory or disk), before the cached value is returned.
///
/// `return_value` and `expiration_date` keep the Python ancestor's names. The arguments are rendered through
/// their `Serialize` implementations into [`ArgValue`]s (they need not be `Debug`), so `{:?}` prints them all
/// (`[CallArg { name: "a", value: 1 }, CallArg { name: "c", value: <ignored> }]`), and [`CachedCallInfo::arg`]
/// reads one by name. They are rendered only when a callback is set, and only on a hit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CachedCallInfo<'a, R> {
    /// The function's path (`my_crate::module::function`, `my_crate::Type::method`,
    /// `<my_crate::Type as my_crate::Trait>::method`), as recorded in the entry header.
    pub function: &'static str,
    /// Every parameter in declaration order, with the receiver first when it is part of the key.
    pub args: Vec<CallArg>,
    /// The cached value about to be returned.
    pub return_value: &'a R,
    /// When the entry expires; `None` when it never does.
    pub expiration_date: Option<DateTime<Utc>>,
    /// When the entry was written.
    pub written: DateTime<Utc>,
    /// The entry's key hash (its file name in the bucket).
    pub key_hash: KeyHash,
    /// Whether the value came from the memory tier or the entry file.
    pub source: HitSource,
    /// The code version the entry was written by: the function's code version string (a hit's key holds it, so
    /// the entry's version is the caller's; its first 16 bytes of blake3 are the header's `code` field, which
    /// `bucketcache ls` shows).
    pub code_version: Option<&'static str>,
    /// How long the value took to compute (the body's wall time, recorded by the attribute); `None` for entries
    /// written without it (older entries, `Bucket::insert`).
    pub cost: Option<std::time::Duration>,
}

impl<R> CachedCallInfo<'_, R> {
    /// The value of the argument named `name`, if the function has such a parameter.
    ///
    /// ```
    /// # use bucketcache::{ArgValue, CachedCallInfo};
    /// fn on_hit(info: &CachedCallInfo<'_, u64>) {
    ///     assert_eq!(info.arg("n").and_then(ArgValue::as_u64), Some(10));
    /// }
    /// # let _ = on_hit;
    /// ```
    pub fn arg(&self, name: &str) -> Option<&ArgValue> {
        self.args.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// The parameter names, in order.
    pub fn arg_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.args.iter().map(|a| a.name)
    }
}
