//! The Redis shared tier (feature `redis`).
//!
//! Keys, all under the namespace (default `bucketcache`), so `SCAN MATCH <namespace>:*` lists, measures or clears
//! everything the tier wrote:
//!
//! ```text
//! <namespace>:e:<64 hex of the key hash>    an entry's bytes (the same bytes as the local file), PX = remaining lifetime
//! <namespace>:l:<64 hex of the key hash>    a computing caller's lease: a random token, PX = the lease duration
//! ```
//!
//! Connections are synchronous, with a connect timeout (default 250 ms) and an operation timeout (default 1 s) on
//! every read and write; a small pool keeps them open between calls. No probe at start-up: a server that is down
//! when the program starts is simply skipped (for a cool-off) until it is back.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::key::KeyHash;
use crate::tier::{LeaseToken, SharedTier, TierError};

/// Default namespace: every key the tier writes starts with `bucketcache:`.
pub const DEFAULT_NAMESPACE: &str = "bucketcache";
/// Default connect timeout: 250 ms.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Default operation timeout: 1 s.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(1);
/// Default lease of a computing caller: 10 s (renewed while it computes).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Default largest entry uploaded: 16 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: u64 = 16 * 1024 * 1024;

/// Environment variable with the Redis URL ([`RedisTier::from_env`]; also attaches the tier to the buckets the
/// attribute opens itself).
pub const REDIS_URL_VAR: &str = "BUCKETCACHE_REDIS_URL";
/// Environment variable with the namespace (default `bucketcache`).
pub const REDIS_NAMESPACE_VAR: &str = "BUCKETCACHE_REDIS_NAMESPACE";
/// Environment variable with the lease duration (a duration such as `10s`).
pub const REDIS_LEASE_VAR: &str = "BUCKETCACHE_REDIS_LEASE";
/// Environment variable that makes the tier read-only when `1` (or `true`).
pub const REDIS_READ_ONLY_VAR: &str = "BUCKETCACHE_REDIS_READ_ONLY";

const POOL_MAX: usize = 8;

const RENEW: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// A shared tier on Redis: see the [module docs](self) and the crate docs' "Shared tier" section.
///
/// ```no_run
/// # fn main() -> bucketcache::Result<()> {
/// use bucketcache::{Bucket, RedisTier};
/// let tier = RedisTier::builder("redis://127.0.0.1:6379/0").namespace("myapp").build()?;
/// let bucket = Bucket::builder("cache").shared(tier).build()?;
/// # Ok(()) }
/// ```
pub struct RedisTier {
    client: redis::Client,
    shown_url: String,
    namespace: String,
    read_only: bool,
    connect_timeout: Duration,
    op_timeout: Duration,
    lease: Duration,
    max_value_bytes: u64,
    pool: Mutex<Vec<redis::Connection>>,
    renew: redis::Script,
    release: redis::Script,
}

impl fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("url", &self.shown_url)
            .field("namespace", &self.namespace)
            .field("read_only", &self.read_only)
            .field("connect_timeout", &self.connect_timeout)
            .field("op_timeout", &self.op_timeout)
            .field("lease", &self.lease)
            .field("max_value_bytes", &self.max_value_bytes)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisTier`]; see [`RedisTier::builder`] for the defaults.
#[must_use]
#[derive(Debug, Clone)]
pub struct RedisTierBuilder {
    url: String,
    namespace: String,
    read_only: bool,
    connect_timeout: Duration,
    op_timeout: Duration,
    lease: Duration,
    max_value_bytes: u64,
}

impl RedisTier {
    /// A builder for a tier on the server at `url`: `redis://[user:password@]host[:port][/db]`, `rediss://...`
    /// (TLS, feature `redis-tls`) or `redis+unix:///path/to/socket[?db=N]`.
    ///
    /// Defaults: namespace [`DEFAULT_NAMESPACE`], read-write, connect timeout [`DEFAULT_CONNECT_TIMEOUT`],
    /// operation timeout [`DEFAULT_OP_TIMEOUT`], lease [`DEFAULT_LEASE`], entries up to
    /// [`DEFAULT_MAX_VALUE_BYTES`] uploaded.
    pub fn builder(url: impl Into<String>) -> RedisTierBuilder {
        RedisTierBuilder {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            read_only: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            op_timeout: DEFAULT_OP_TIMEOUT,
            lease: DEFAULT_LEASE,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }

    /// The tier configured by the environment: `None` when [`REDIS_URL_VAR`] is unset or empty; otherwise the URL,
    /// with [`REDIS_NAMESPACE_VAR`], [`REDIS_LEASE_VAR`] and [`REDIS_READ_ONLY_VAR`] applied.
    ///
    /// # Errors
    /// [`Error::Config`] when a variable is invalid (the message names it and shows a valid value).
    pub fn from_env() -> Result<Option<RedisTier>> {
        let url = match std::env::var(REDIS_URL_VAR) {
            Ok(u) if !u.trim().is_empty() => u,
            _ => return Ok(None),
        };
        let mut b = RedisTier::builder(url.trim());
        if let Ok(ns) = std::env::var(REDIS_NAMESPACE_VAR) {
            if !ns.is_empty() {
                b = b.namespace(ns);
            }
        }
        if let Ok(lease) = std::env::var(REDIS_LEASE_VAR) {
            let d = humantime::parse_duration(lease.trim()).map_err(|e| {
                Error::config(format!(
                    "{REDIS_LEASE_VAR}={lease:?} is not a duration ({e}); write it like `10s` or `1m 30s`"
                ))
            })?;
            b = b.lease(d);
        }
        if let Ok(ro) = std::env::var(REDIS_READ_ONLY_VAR) {
            b = b.read_only(match ro.trim() {
                "1" | "true" | "yes" => true,
                "" | "0" | "false" | "no" => false,
                other => {
                    return Err(Error::config(format!(
                        "{REDIS_READ_ONLY_VAR}={other:?} is not a boolean; use 1 or 0"
                    )))
                }
            });
        }
        b.build().map(Some)
    }

    /// The namespace every key starts with.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Redis key of `key`'s entry.
    pub fn entry_key(&self, key: &KeyHash) -> String {
        format!("{}:e:{}", self.namespace, key.to_hex())
    }

    /// The Redis key of `key`'s lease.
    pub fn lease_key(&self, key: &KeyHash) -> String {
        format!("{}:l:{}", self.namespace, key.to_hex())
    }

    fn connection(&self) -> std::result::Result<redis::Connection, TierError> {
        if let Some(c) = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let con = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(classify)?;
        con.set_read_timeout(Some(self.op_timeout)).map_err(classify)?;
        con.set_write_timeout(Some(self.op_timeout)).map_err(classify)?;
        Ok(con)
    }

    /// Runs `op` on a pooled connection; a connection that failed is dropped, not returned to the pool.
    fn with<T>(
        &self,
        op: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> std::result::Result<T, TierError> {
        let mut con = self.connection()?;
        match op(&mut con) {
            Ok(v) => {
                let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
                if pool.len() < POOL_MAX {
                    pool.push(con);
                }
                Ok(v)
            }
            Err(e) => {
                let e = classify(e);
                if let TierError::Refused(_) = e {
                    let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
                    if pool.len() < POOL_MAX {
                        pool.push(con);
                    }
                }
                Err(e)
            }
        }
    }

    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

/// A timeout, a refused write (a server error reply such as `OOM`), or any other failure.
fn classify(e: redis::RedisError) -> TierError {
    if e.is_timeout() {
        TierError::Timeout(e.to_string())
    } else if !e.is_io_error() && !e.is_connection_refusal() && !e.is_connection_dropped() && e.code().is_some() {
        TierError::Refused(e.to_string())
    } else {
        TierError::Failure(e.to_string())
    }
}

impl RedisTierBuilder {
    /// The namespace every key starts with (`<namespace>:`); default `bucketcache`. Letters, digits, `_`, `-`,
    /// `.` and `/` only, so `SCAN MATCH <namespace>:*` matches exactly this namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Read only: serve hits, write no entry, take no lease.
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// How long to wait for a connection (default 250 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for each reply (default 1 s).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// How long a computing caller's lease lasts unless renewed (default 10 s; renewed at a third of it while the
    /// body runs). A waiter on another machine takes over within one lease after the holder dies.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Entries larger than this are not uploaded (default 16 MiB).
    pub fn max_value_bytes(mut self, bytes: u64) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Checks the settings and parses the URL. Does not connect.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid URL (or `rediss://` without the `redis-tls` feature), an invalid
    /// namespace, or a zero timeout or lease.
    pub fn build(self) -> Result<RedisTier> {
        let shown_url = crate::tier::redact_url(&self.url);
        let client = redis::Client::open(self.url.as_str()).map_err(|e| {
            Error::config(format!(
                "invalid Redis URL `{shown_url}`: {e}; expected redis://[user:password@]host[:port][/db], \
                 rediss://... (feature `redis-tls`) or redis+unix:///path/to/socket"
            ))
        })?;
        let ns_ok = !self.namespace.is_empty()
            && self
                .namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
        if !ns_ok {
            return Err(Error::config(format!(
                "invalid Redis namespace {:?}: use letters, digits, `_`, `-`, `.` or `/` (no `:`, `*`, `?` or `[`)",
                self.namespace
            )));
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("op_timeout", self.op_timeout),
            ("lease", self.lease),
        ] {
            if d.is_zero() {
                return Err(Error::config(format!("the Redis tier's `{name}` must be positive")));
            }
        }
        Ok(RedisTier {
            client,
            shown_url,
            namespace: self.namespace,
            read_only: self.read_only,
            connect_timeout: self.connect_timeout,
            op_timeout: self.op_timeout,
            lease: self.lease,
            max_value_bytes: self.max_value_bytes,
            pool: Mutex::new(Vec::new()),
            renew: redis::Script::new(RENEW),
            release: redis::Script::new(RELEASE),
        })
    }
}

fn random_token() -> LeaseToken {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: a token unique enough among this machine's processes and threads.
        let seed = format!(
            "{:?}{:?}{}",
            std::time::SystemTime::now(),
            std::thread::current().id(),
            std::process::id()
        );
        b.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
    }
    LeaseToken(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl SharedTier for RedisTier {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn max_value_bytes(&self) -> u64 {
        self.max_value_bytes
    }

    fn lease_duration(&self) -> Duration {
        self.lease
    }

    fn get(&self, key: &KeyHash) -> std::result::Result<Option<Vec<u8>>, TierError> {
        let k = self.entry_key(key);
        self.with(|c| redis::cmd("GET").arg(&k).query::<Option<Vec<u8>>>(c))
    }

    fn put(&self, key: &KeyHash, entry: &[u8], ttl: Option<Duration>) -> std::result::Result<(), TierError> {
        let k = self.entry_key(key);
        self.with(|c| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&k).arg(entry);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(RedisTier::ms(ttl));
            }
            cmd.query::<()>(c)
        })
    }

    fn remove(&self, key: &KeyHash) -> std::result::Result<bool, TierError> {
        let k = self.entry_key(key);
        self.with(|c| redis::cmd("DEL").arg(&k).query::<i64>(c)).map(|n| n > 0)
    }

    fn try_lease(&self, key: &KeyHash) -> std::result::Result<Option<LeaseToken>, TierError> {
        let k = self.lease_key(key);
        let token = random_token();
        let ms = RedisTier::ms(self.lease);
        let set = self.with(|c| {
            redis::cmd("SET")
                .arg(&k)
                .arg(&token.0)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query::<Option<String>>(c)
        })?;
        Ok(set.map(|_| token))
    }

    fn renew_lease(&self, key: &KeyHash, token: &LeaseToken) -> std::result::Result<bool, TierError> {
        let k = self.lease_key(key);
        let ms = RedisTier::ms(self.lease);
        self.with(|c| self.renew.key(&k).arg(&token.0).arg(ms).invoke::<i64>(c))
            .map(|n| n > 0)
    }

    fn release_lease(&self, key: &KeyHash, token: &LeaseToken) -> std::result::Result<bool, TierError> {
        let k = self.lease_key(key);
        self.with(|c| self.release.key(&k).arg(&token.0).invoke::<i64>(c))
            .map(|n| n > 0)
    }

    fn lease_held(&self, key: &KeyHash) -> std::result::Result<bool, TierError> {
        let k = self.lease_key(key);
        self.with(|c| redis::cmd("EXISTS").arg(&k).query::<i64>(c))
            .map(|n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            crate::tier::redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(crate::tier::redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(crate::tier::redact_url("redis://host:6379"), "redis://host:6379");
        let tier = RedisTier::builder("redis://u:hunter2@127.0.0.1:1/0")
            .build()
            .expect("valid");
        assert!(!format!("{tier:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let e = RedisTier::builder("http://x").build().expect_err("not redis");
        assert!(e.to_string().contains("redis://"), "{e}");
        let e = RedisTier::builder("redis://127.0.0.1")
            .namespace("a:b")
            .build()
            .expect_err("colon");
        assert!(e.to_string().contains("namespace"), "{e}");
        let e = RedisTier::builder("redis://127.0.0.1")
            .lease(Duration::ZERO)
            .build()
            .expect_err("zero");
        assert!(e.to_string().contains("lease"), "{e}");
    }

    #[test]
    fn every_key_is_in_the_namespace() {
        let tier = RedisTier::builder("redis://127.0.0.1")
            .namespace("ns1")
            .build()
            .expect("valid");
        let k = KeyHash([0xab; 32]);
        assert!(tier.entry_key(&k).starts_with("ns1:"));
        assert!(tier.lease_key(&k).starts_with("ns1:"));
        assert_ne!(tier.entry_key(&k), tier.lease_key(&k));
    }
}
