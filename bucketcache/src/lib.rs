//! File-backed memoization: a persistent key/value [`Bucket`] in a directory, and the
//! [`#[bucket_cache]`](macro@bucket_cache) attribute that caches a function's results in one.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! # fn main() -> bucketcache::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let bucket = bucketcache::Bucket::builder(dir.path()).hours(1).build()?;
//! bucket.insert(&("user", 42u32), &vec!["admin".to_string()])?;
//! let roles: Option<Vec<String>> = bucket.get(&("user", 42u32))?;
//! assert_eq!(roles, Some(vec!["admin".to_string()]));
//!
//! // Another Bucket on the same directory (another process, a later run) sees the entry.
//! let again = bucketcache::Bucket::new(dir.path())?;
//! assert!(again.contains_key(&("user", 42u32))?);
//! # Ok(()) }
//! ```
//!
//! # The attribute
//!
//! [`#[bucket_cache]`](macro@bucket_cache) caches a function's results in a bucket: `bucket = EXPR` (yours),
//! `path = "dir"`, or the **default directory**, [`default_cache_dir`]: `$BUCKETCACHE_DIR` if set, else
//! `$XDG_CACHE_HOME/bucketcache`, else `$HOME/.cache/bucketcache`, else `%LOCALAPPDATA%\bucketcache`, else
//! `<temp dir>/bucketcache`. The environment is read when a function first needs its bucket, and the bucket is kept
//! for the rest of the process. Its keys hold the function's path, signature, a fingerprint of its body, and the
//! named argument values; a hit calls the optional `on_cached` callback with a [`CachedCallInfo`]. See the
//! attribute's documentation for every argument, the return-type rules, single-flight and the failure policy.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # std::env::set_var("BUCKETCACHE_DIR", dir.path());
//! #[bucketcache::bucket_cache(lifetime = "1h", ignore(verbose))]
//! fn slow_sum(items: Vec<u64>, verbose: bool) -> u64 {
//!     if verbose {
//!         println!("summing {} items", items.len());
//!     }
//!     items.iter().sum()
//! }
//!
//! assert_eq!(slow_sum(vec![1, 2, 3], true), 6);
//! assert_eq!(slow_sum(vec![1, 2, 3], false), 6); // a hit: `verbose` is not part of the key
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `json` | on | [`JsonBackend`] (serde_json) |
//! | `msgpack` | on | [`MessagePackBackend`] (rmp-serde) |
//! | `macros` | on | the [`#[bucket_cache]`](macro@bucket_cache) and [`#[fingerprint]`](macro@fingerprint) attributes (`bucketcache-macros`, pinned to this version) |
//! | `redis` | off | a shared tier on Redis (`RedisTier`, [`BucketBuilder::shared`]): many machines compute each key once (see "Shared tier") |
//! | `redis-tls` | off | `rediss://` URLs for the Redis tier (rustls, the system's root certificates) |
//! | `zstd` | off | zstd compression of large payloads (`BucketBuilder::compression`) |
//! | `metrics` | off | each cached function's counters also go to the [`metrics`](https://docs.rs/metrics) facade (see "Statistics") |
//!
//! | piece | what it does |
//! |---|---|
//! | [`Bucket`] | one file per key, atomic writes, checksummed entries, a bounded in-memory tier |
//! | [`BucketBuilder`] | lifetime (or `days`/`hours`/... shortcuts that add up), backend, key maker, memory bound, durability, clock |
//! | [`DeferredWriteBucket`], [`deferred_write`] | changes held in memory until `sync()` |
//! | [`deferred_calls`], `#[bucket_cache(bucket = D)]` with a [`DeferredWriteBucket`] | cached calls whose results are written in one batch (see "Deferred writes") |
//! | [`Bucket::prune_directory`] | removes expired entries, invalid files, stale temporary files and unheld lock files |
//! | [`BucketBuilder::max_size`], [`BucketBuilder::max_entries`] | a size-bounded bucket: least recently written entries are evicted as it writes |
//! | [`scan`] | walks a bucket directory and reads entry headers, for tools (the `bucketcache` CLI) |
//! | [`Bucket::get_or_compute_cross_process`], [`Bucket::begin_cross_process_flight`] | one computation per cold key across processes |
//! | [`KeyMaker`]: [`DefaultKeyMaker`], [`StreamingDefaultKeyMaker`] | canonical, type-tagged blake3 keys |
//! | [`Backend`]: [`BincodeBackend`], [`JsonBackend`], [`MessagePackBackend`] | how values are encoded |
//!
//! # Keys
//!
//! Any `Serialize` value is a key. Its hash is blake3, keyed by the key format version
//! ([`KEY_FORMAT_VERSION`]), over a canonical encoding in which every value is tagged with its serde type: `(1, 2)`,
//! `[1, 2]` and `"[1, 2]"` are three keys, and so are `1u8` and `1u64` (integer width is part of the type). Map
//! entries are hashed in a canonical order, so two equal `HashMap`s give one key. A `HashSet` serializes as a
//! plain sequence in iteration order, which differs between equal sets: use a `BTreeSet` in keys. Field and
//! variant names are part of the key, so renaming a field starts fresh entries. Sequences of fixed-width primitives
//! (`Vec<f64>`, `&[u8]`, `[u32; 4]`) are encoded as runs of their little-endian words (key format 2), so a big
//! numeric argument costs about a hash of its bytes.
//!
//! # On-disk layout
//!
//! ```text
//! <bucket dir>/entries-v2/<first 2 hex digits>/<64 hex digits of the key hash>
//! <bucket dir>/locks-v1/ranges.lock                                     (Linux: one byte-range lock per key)
//! <bucket dir>/locks-v1/<first 2 hex digits>/<64 hex digits>.lock      (elsewhere: only while a flight computes)
//! <bucket dir>/functions-v1/<32 hex digits of the function path's hash>  (code versions seen: miss reasons)
//! ```
//!
//! The `entries-v2` directory names the entry layout, so a future layout never misreads an old file (entries of
//! format 1, in `entries-v1`, are ignored by this build; formats 2 and 3 share the layout, and this build reads both). Each entry file holds a 176-byte header
//! (magic `BKTCACHE`, format version, backend id, function path, written and expiry times, payload length, the
//! value's computation time, key hash, a code-independent call hash, the code version, a checksum of the payload
//! (piecewise xxh3; blake3 in entries of format 2), and a checksum of the header itself) and the payload; see [`entry`] for the byte layout. Writes go to a temporary file (`.tmp-<pid>-<random>`) in the same directory and
//! are renamed into place, so a reader in any process sees the old entry or the new one, never a torn one.
//! Directories are created with mode 0700 and files with 0600 on Unix: the cache holds your values, in clear.
//!
//! # Expiry
//!
//! - A bucket's lifetime is stamped into each entry when it is written: `expires = written + lifetime`.
//!   Every write of a key resets its expiry. Without a lifetime, entries never expire.
//! - An entry is expired from the instant `now >= expires`. An expired entry reads as missing, and the read
//!   removes its file.
//! - [`Bucket::set_lifetime`] applies to later writes only; existing entries keep their stamp.
//! - [`Bucket::prune_directory`] removes entries by their own stamp, never by the pruning bucket's lifetime, so
//!   pruning never deletes an entry that is still valid for the bucket that wrote it (the Python ancestor did).
//! - Times come from a [`Clock`] ([`SystemClock`] by default), in milliseconds since the Unix epoch.
//! - A stale window ([`Bucket::lookup_stale`], the attribute's `stale = "10m"`) is a read-time grace: a reader that
//!   asks for it still gets (and keeps the file of) an entry expired less than the window ago, judged by one pure
//!   function, [`freshness::judge`]. A reader without a window removes it as above, and so does
//!   [`Bucket::prune_directory`].
//! - Each entry records its cost (the body's wall time, measured by the attribute; [`WriteOptions::cost`]), shown
//!   by [`Hit::cost`], [`CachedCallInfo::cost`] and the CLI's `ls`, `show` and `stats`; early refresh scales by it.
//!
//! # Failure policy
//!
//! - **Corrupt files** (truncated, bit-flipped, empty, garbage, another backend, another format version): a miss
//!   (`Ok(None)`), logged at `warn`; the next write replaces the file. Never a panic, never a wrong value.
//! - **Type change**: a stored value that does not decode as the requested type is [`Error::Decode`]; the
//!   attribute treats it as a miss and overwrites the entry. The attribute's key also holds the serde shape of the
//!   stored type (names, field order, primitive kinds, variants), so a reordered, renamed or retyped field is a new
//!   key, never a wrong value, with every backend. Limits: with [`Bucket::get`] directly (no attribute), bincode is
//!   not self-describing, so a value read as another type of the same layout can decode without error: put a
//!   version in your key, or use a self-describing backend (JSON, MessagePack); and types whose shape cannot be
//!   traced (untagged enums, `flatten`, `deserialize_any`) fall back to the rest of the key (see "Type shapes" on
//!   the attribute).
//! - **Disk full, unwritable directory**: `insert` returns [`Error::Io`] and the previous entry, if any, is
//!   intact (the temporary file is removed). The attribute logs it and returns the computed value.
//! - **Hostile files**: see [Security](#security).
//! - **Special files**: a directory, a FIFO, a device or a dangling symlink under an entry's name is a miss or an
//!   [`Error::Io`], never a blocked or endless read (a FIFO is opened without blocking, and no read goes past the
//!   length the header declares).
//!
//! # Deferred writes
//!
//! A batch job that computes many small results pays one file write per result; deferring them writes all at once.
//! A [`DeferredWriteBucket`] (`bucket.deferred()`) holds inserts and removals in memory until
//! [`sync`](DeferredWriteBucket::sync); reads through it see the pending changes first. `sync` writes them as one
//! batch: grouped by fan-out directory, each directory opened once, and with [`Durability::Fsync`] each directory
//! synced once per batch instead of once per file (each file is still written atomically, and still synced).
//!
//! - **The attribute** takes a deferred bucket: `#[bucket_cache(bucket = D)]` with
//!   `static D: LazyLock<DeferredWriteBucket<'static>> = LazyLock::new(|| B.deferred())`. Hits read the pending
//!   values, then the bucket; misses keep their value pending until `D.sync()`. `on_cached`, `nocache`, `lifetime`
//!   and single flight among this process's threads behave as with a plain bucket.
//! - **The scope form**, for functions on the default or a `path = "..."` bucket: every such cached call made on
//!   this thread inside [`deferred_calls`]`(|| ...)` is written when the closure returns, in one batch per bucket,
//!   and nothing is written if the closure panics (the values computed are then lost; each call still returned its
//!   result). Calls on other threads write at once. See [`deferred_calls`].
//! - **Other processes** cannot see pending values. The cross-process single flight still holds the key's lock
//!   while the function runs, but releases it once the value is pending: a process that waited for it finds no
//!   entry and computes the key itself.
//! - **Dropped with pending changes**, a `DeferredWriteBucket` writes them (failures logged at `warn`), unless it
//!   is dropped by a panic: then they are discarded, logged at `warn`.
//!
//! `cargo bench --bench deferred` measures N = 10,000 small results written immediately and deferred.
//!
//! # Cross-process single flight
//!
//! [`Bucket::begin_cross_process_flight`] and [`Bucket::get_or_compute_cross_process`] make callers in several processes (or
//! threads) that miss the same key compute it once: one takes the key's advisory lock (on Linux a byte of
//! `<bucket dir>/locks-v1/ranges.lock`, elsewhere the file `<bucket dir>/locks-v1/<2 hex>/<64 hex>.lock`), computes
//! and stores; the others wait for its entry, at most a
//! wait limit ([`DEFAULT_FLIGHT_WAIT_LIMIT`]) after which they compute anyway. A computer that crashes loses its
//! lock with its process, so a waiter takes over at once. See [`lock`].
//!
//! # Shared tier (Redis)
//!
//! With the feature `redis`, [`BucketBuilder::shared`] puts a `RedisTier` behind the
//! local directory, so many machines compute each key once and share it. Buckets the attribute opens itself
//! (`path = "..."` and the default) get one from the environment: `BUCKETCACHE_REDIS_URL`
//! (`redis://[user:password@]host[:port][/db]`, `rediss://...` with the feature `redis-tls`,
//! `redis+unix:///path`), `BUCKETCACHE_REDIS_NAMESPACE` (default `bucketcache`), `BUCKETCACHE_REDIS_LEASE` (default
//! `10s`), `BUCKETCACHE_REDIS_READ_ONLY=1`; `shared = false` on a function keeps it local.
//!
//! - **Reads**: memory, the directory, then Redis. A Redis entry holds the same self-verifying bytes as a file; it
//!   is verified (checksums, key hash, backend) and copied into the directory and memory with its original written
//!   and expiry stamps. Anything else at our keys (garbage, another format, another key) is a miss.
//! - **Writes** go to the directory, then to Redis (`SET <namespace>:e:<hash> ... PX <remaining lifetime>`); entries
//!   over `RedisTierBuilder::max_value_bytes` (16 MiB) are not
//!   uploaded. [`Bucket::remove`], `prune_directory` and the CLI's `clear`/`prune` act locally; removing from Redis is
//!   [`Bucket::remove_shared`].
//! - **Single flight across machines**: a caller that missed everywhere (after the in-process flight and the
//!   directory's lock) takes `<namespace>:l:<hash>` (`SET NX PX <lease>` with a random token), renews it at a third
//!   of the lease while the body runs, and releases it by compare-and-delete after storing. Sync callers on other
//!   machines wait for the entry up to their wait limit; when the holder dies its lease lapses and a waiter takes
//!   over within one lease. `async fn`s never wait on another machine: they compute.
//! - **Failures never change a result**: a refused, timed-out or stalled server is a miss or a skipped write, bounded
//!   by a connect timeout (250 ms) and an operation timeout (1 s), then skipped for a cool-off (30 s,
//!   [`BucketBuilder::shared_cool_off`]) and logged once per cool-off at `warn`; an `OOM` refusal skips that write
//!   only. No probe at start-up. Counters: [`Bucket::stats`] ([`SharedStats`]: hits, misses, rejected, writes,
//!   skipped writes, errors, timeouts, calls skipped while cooling off, lease waits, takeovers).
//! - **Security**: the tier stores your values in clear, as the directory does, readable by anyone who can read the
//!   namespace: use a password (`redis://user:password@...`, never logged), TLS across networks (`rediss://`), and a
//!   database or ACL of your own. Every key the tier writes starts with `<namespace>:`; nothing it reads is trusted
//!   before verification, and a forged entry must also forge a valid checksum for the right key and backend (the
//!   same limits as the directory: see [Security](#security)).
//!
//! # Security
//!
//! **Threat model.** Another local user, or a process that can write into the bucket's directory, plants links,
//! special files or forged entries there, or swaps the bucket's directories while it works, to make the cache (or
//! the `bucketcache` tool) delete, create, overwrite or serve a file outside the bucket, hang, or exhaust memory.
//! **Guaranteed** (on Unix): the bucket never deletes, creates, writes or serves a file outside its own directory,
//! never blocks on a planted file, and never allocates more for a read than the bounds below; a planted file is
//! at worst a miss (logged at `warn`), an [`Error::Io`], or a computation without the single-flight lock. **Not
//! guaranteed**: that such a user cannot delete or corrupt the cache's own entries (they can; the bucket then
//! misses and recomputes), nor that a process of your own user cannot hold a lock for a call's full wait limit.
//!
//! - **What the directory holds.** Every value is stored serialized, in clear, beside a header naming its backend
//!   and (for the attribute) the function's path. Directories are created with mode 0700 and entry, temporary and
//!   lock files with 0600 on Unix, so other users cannot read them; a directory that already exists keeps its
//!   mode. On other platforms the directory inherits its parent's access control. Treat the cache as sensitive as
//!   the values you cache.
//! - **A directory others can write to** (group- or world-writable without the sticky bit) is logged at `warn` when
//!   the bucket opens, naming the risk and the fix (`chmod 700`); [`BucketBuilder::refuse_insecure_dir`] makes it an
//!   [`Error::Config`]. The `bucketcache stats` command shows the same warning.
//! - **Links are never followed.** The bucket's path is made absolute when it is opened (a later `chdir` does not
//!   move it). The entries directory is then opened once with `O_DIRECTORY | O_NOFOLLOW` and must be a directory of
//!   the current user (or root); so must every fan-out and lock directory. Entries are read with one `openat2`
//!   beneath it that refuses any link (Linux; elsewhere through the fan-out's verified handle), written as a new
//!   temporary file (`O_CREAT | O_EXCL | O_NOFOLLOW`, 0600) renamed into place within the fan-out's handle, and
//!   removed with `unlinkat` on that handle: a link planted under an entry's name is removed or replaced itself,
//!   never its target, and a fan-out swapped for a link mid-walk cannot redirect a removal. A link where a
//!   directory should be is refused and logged at `warn` (the tool reports it, exit code 1). Pruning (and the tool)
//!   removes only names of the exact shapes the bucket writes (64 hex digits, `.tmp-<pid>-<letters>`,
//!   `<64 hex>.lock`) in two-hex fan-outs. On non-Unix platforms paths are checked with `symlink_metadata` before
//!   use, which narrows but does not close a swap race.
//! - **Keys are hashes.** A file name is the 64 hex digits of a blake3 hash of the key, so no key, however
//!   crafted (`"../../etc/passwd"`), can name a path outside the bucket's `entries-v2/` directory.
//! - **Reads are bounded before they allocate.** Only regular files are read, opened with `O_NONBLOCK` (a FIFO
//!   cannot block, a device is refused). A file larger than [`BucketBuilder::max_entry_bytes`] (1 GiB by default),
//!   or sparse (at least 16 MiB with under a sixteenth of it on disk), is corrupt and not read; a file whose length
//!   disagrees with its header is not read past its header. Measured in `tests/attacks.rs`: a valid 64 MiB entry
//!   stored sparse and a 3 GiB sparse file each read as a miss allocating under 256 KiB.
//! - **Decoding untrusted files is bounded.** A cache file is checked (length, checksum, key, backend) before its
//!   payload is decoded, but someone who can write to the directory can forge a valid checksum. Decoding is bounded
//!   by the payload's size anyway: bincode's byte-claim limit is 64 times the payload (at least 1 MiB); declared
//!   lengths of sequences and maps cannot make serde preallocate more elements, all together, than the payload has
//!   bytes; nesting is limited to [`MAX_DEPTH`] levels (a crafted 5 KB payload of a recursive type would otherwise
//!   overflow the stack and abort the process); JSON and MessagePack cannot claim string bytes the payload does not
//!   hold. Measured: no crafted file (4 GiB strings, vectors, maps, 100,000 nested levels) makes a read allocate
//!   more than max(64 x the file, 1 MiB).
//! - **Locks.** Lock files are opened read-write without following links, must be regular files of the current
//!   user, and are made 0600; only write locks are taken, so read access is not enough to block a flight, and
//!   every wait is bounded by the call's limit. A refused lock means computing without it (see [`lock`]).
//! - **Logs.** Keys are logged at `debug`, abbreviated to their first 48 bytes of canonical encoding. Keys hold the
//!   arguments of cached calls, which may be secrets (tokens, passwords, personal data):
//!   [`BucketBuilder::log_full_keys`] logs them in full and is off by default; switch it on only where logs are
//!   private. Even abbreviated, a key's first bytes may show a short argument: keep `bucketcache=debug` logging out
//!   of shared logs when arguments are secret.
//!
//! # Memory tier
//!
//! A bounded concurrent cache ([`BucketBuilder::memory_max_bytes`], 64 MiB by default) of the values this `Bucket`
//! read or wrote. A hit from it touches no file. It belongs to the `Bucket` value: a write through another
//! process, or through another `Bucket` on the same directory, is seen once the key is not in this bucket's
//! memory tier (after [`Bucket::unload_key`], eviction or a restart); share one `Bucket` (a `static`, an `Arc`)
//! to share its memory. Writes and removals through this `Bucket` are seen at once by all its threads. An entry
//! larger than an eighth of the bound is not kept (no second copy of a large value is made).
//!
//! # Large values
//!
//! A value whose encoding passes 1 MiB is streamed: a write encodes it into its temporary file through a 1 MiB
//! buffer while hashing it, then writes the header (with the checksums) over a placeholder and renames the file
//! into place; a read checks the header, then decodes the payload as it reads and hashes it, and drops the value
//! (a miss) when the checksum fails at the end. Neither holds the file's bytes beside the value: memory beyond the
//! value stays a few MiB (the JSON and MessagePack backends decode from one payload-sized buffer). Past 4 MiB the
//! checksum is computed on a helper thread beside the encoding or decoding. A `Vec` of fixed-width numbers stored
//! by the bincode backend (`Vec<f64>`, `Vec<f32>`, `Vec<u8>`, `Vec<i8>`; with fixed-int encoding also `u16` to
//! `i64`), the shape of a numeric array, is read without serde's element-by-element decoding: allocated once at
//! its length and filled from 1 MiB blocks of the file, each then handed to the checksum (same bytes, same errors;
//! about the speed of a plain `fs::read` of the file, whose cost is mostly the first touch of the new vector's
//! pages). Files over
//! [`BucketBuilder::max_entry_bytes`] (1 GiB by default) are never read: raise it to cache larger values (a write
//! over it logs a warning).
//!
//! A key holding a big argument (a buffer, a vector) is not built in memory: past 64 KiB its canonical encoding
//! streams into the hasher in 128 KiB blocks, on a helper thread past 1 MiB, in under 1 MiB of memory, to the same
//! hash.
//!
//! With the feature `zstd`, `BucketBuilder::compression` compresses payloads from a size on (off by default).
//! Measured on a 64 MiB `Vec<f64>` at level 3 (`cargo bench --features zstd --bench bigvalues -- zstd`): few
//! distinct values compress about 8800 times and noise-like floats 1.07 times, and both stored and loaded more
//! slowly than uncompressed on a local disk; compression pays for repetitive data on slow or small storage.
//!
//! Each thread also keeps its few most recent hits (at most 64 entries of up to 16 KiB, outside the bound) so a
//! repeated hit takes no lock; they are used only while no write or removal happened in the tier since they were
//! read.
//!
//! # Logging
//!
//! Through `tracing`, target `bucketcache`: key hashing, loads, writes and expiries at `debug`; every handled
//! failure (corrupt file, failed write) at `warn`.
//!
//! # Why did this miss?
//!
//! Every miss of a `#[bucket_cache]` function has a [`MissReason`], logged at `debug` (`cache miss`, with the
//! function, the key hash and the reason) and counted ([`stats`]): new arguments, expired, code changed (an entry
//! for these same arguments exists under another code version of the function), corrupt or unreadable,
//! stored as another type, `nocache`.
//!
//! "Code changed" costs the hit path nothing. Each entry's header records a code-independent hash of the call
//! (function path, type arguments, argument values; [`WriteOptions::call`]) and the code version (the first 16
//! bytes of the blake3 of the function's code version string; [`WriteOptions::code`]); each bucket keeps, per
//! function, a small record of the code versions that stored entries (`functions-v1/`, read once per process and
//! only on a miss). On a miss with no entry, the call computes the key its arguments had under each other recorded
//! version and asks whether that entry exists. [`CachedCallInfo::code_version`] tells a callback the version.
//!
//! To find out why calls miss: run with `RUST_LOG=bucketcache=debug` (and a `tracing` subscriber): each miss logs
//! `cache miss` with `function`, `hash` and `reason`, each call site its parts once (`call site`: function, code
//! version, shape), and a function with `deps` its code version at its first call (`dependency fingerprints`).
//! [`stats()`] counts misses by reason per function. On disk, the CLI's `bucketcache stats DIR` counts the entries
//! of superseded code versions (a function whose entries carry more than one code version: all but the most
//! recently written), `bucketcache ls DIR --superseded` lists them and `bucketcache prune DIR --superseded`
//! removes them.
//!
//! A token fingerprint covers the function's own tokens. The code of the helpers it calls, the types and `const`s
//! it uses and the data files it reads join its code version when it names them in `deps(...)` (items marked
//! [`#[bucketcache::fingerprint]`](macro@fingerprint), transitively; files by content): see
//! [`fingerprint`](macro@fingerprint) for the rules and for what a token fingerprint still cannot see (a dependency
//! crate's new version: `deps(file = "Cargo.lock")` or `version = "..."`).
//!
//! # Statistics
//!
//! [`stats()`] returns every cached function's counters since the process started, [`Bucket::stats`] a bucket's
//! ([`BucketStats::calls`]): hits by tier ([`HitSource`]: memory, disk, shared), misses by reason, stores, store
//! failures, bytes written and the time saved (the sum of the recorded cost of each hit's entry: the attribute
//! records the body's measured run time). `Display` renders a table:
//!
//! ```
//! println!("{}", bucketcache::stats());
//! ```
//!
//! The counters are relaxed atomics in a `static` each cached function's expansion defines, registered in a
//! process-wide list at its first call; a hit adds to two or three atomics of the function and as many of the
//! bucket, and takes no lock. A disabled call counts nothing.
//!
//! With the feature `metrics`, each cached function's counts also go to the [`metrics`](https://docs.rs/metrics)
//! facade (0.24), so the exporter the application installs (Prometheus, StatsD, ...) picks them up. All are
//! counters labelled `function` (the function's path, as [`stats()`] shows it):
//!
//! | metric | more labels | counts |
//! |---|---|---|
//! | `bucketcache_hits_total` | `tier`: `memory`, `disk`, `shared` | hits, by the tier that served them |
//! | `bucketcache_misses_total` | `reason`: `new_arguments`, `expired`, `code_changed`, `corrupt`, `other_type`, `nocache` | misses, by reason ([`MissReason`]) |
//! | `bucketcache_stores_total` | | values stored |
//! | `bucketcache_store_failures_total` | | values that could not be stored (returned uncached) |
//! | `bucketcache_bytes_written_total` | | bytes of entry files written |
//! | `bucketcache_time_saved_microseconds_total` | | the recorded cost of each hit's entry, in µs |
//!
//! The handles are registered with the recorder once per function, at its first call, and kept in its `static`:
//! a counted event is one `OnceLock` read and the handle's increment (no string formatting, lookup or
//! allocation); without the feature none of it is compiled. Install the recorder before the first cached call
//! (at the start of `main`): a function first called before that counts in [`stats()`] only. Buckets' own
//! counters ([`Bucket::stats`]) are not exported.
//!
//! # Turning the cache off
//!
//! `BUCKETCACHE_DISABLE=1` ([`BUCKETCACHE_DISABLE_VAR`], read at the first cached call; [`reread_env`] reads it
//! again), [`disable`] / [`enable`] for the process, or [`disabled`] (a closure) or [`DisabledGuard`] (a value)
//! for the current thread: every cached function then runs its body and reads, writes and counts nothing (the
//! default bucket's directory is not even created). The check is one relaxed atomic load per call.
//!
//! # Moving a cache
//!
//! Keys hold no absolute path and nothing machine-specific, and entries do not name their directory: a bucket
//! directory copied or moved to another path, or to another machine running the same build, still hits.

#![warn(missing_docs)]
// The one `unsafe` call (an madvise, `huge_pages.rs`) is behind the `hugepages` feature; without it, none at all.
#![cfg_attr(not(feature = "hugepages"), forbid(unsafe_code))]
#![cfg_attr(feature = "hugepages", deny(unsafe_code))]
#![deny(clippy::unwrap_used)]

mod arg_value;
mod backend;
mod block_hash;
mod bound;
mod bucket;
mod builder;
mod call;
mod call_info;
mod call_target;
mod clock;
mod default_bucket;
mod deferred;
mod dirfd;
mod disable;
pub mod entry;
mod error;
mod fingerprint;
mod flight;
pub mod freshness;
mod huge_pages;
mod key;
pub mod lock;
mod memory;
mod prune;
pub mod scan;
mod site;
mod stats;
pub mod store;
pub mod tier;
mod tree_hash;

#[doc(hidden)]
pub mod __private;

pub use arg_value::{ArgValue, Fields};
pub use backend::{Backend, BincodeBackend, BincodeConfig, MAX_BACKEND_ID_LEN, MAX_DEPTH};
#[cfg(feature = "json")]
pub use backend::{JsonBackend, JsonConfig};
#[cfg(feature = "msgpack")]
pub use backend::{MessagePackBackend, MessagePackConfig};
pub use bound::RESCAN_MIN_WRITES;
pub use bucket::{Bucket, BucketStats, Hit, HitSource, Stored, WriteOptions};
pub use builder::{BucketBuilder, DEFAULT_MEMORY_MAX_BYTES};
pub use call_info::{CachedCallInfo, CallArg};
pub use clock::{Clock, ManualClock, SystemClock};
pub use default_bucket::{default_cache_dir, deferred_calls, BUCKETCACHE_DIR_VAR};
pub use deferred::{deferred_write, DeferredWriteBucket};
pub use disable::{disable, disabled, enable, is_disabled, reread_env, DisabledGuard, BUCKETCACHE_DISABLE_VAR};
pub use error::{BoxError, Error, Result};
pub use freshness::Freshness;
pub use key::exact::ExactKey;
pub use key::{
    canonical_key_bytes, default_key_hash, DefaultKeyMaker, KeyHash, KeyMaker, StreamingDefaultKeyMaker,
    KEY_FORMAT_VERSION,
};
pub use lock::{CrossFlight, CrossFlightGuard, FlightRole, DEFAULT_FLIGHT_WAIT_LIMIT};
pub use prune::PrunedFilesInfo;
pub use stats::{stats, CacheStats, Counters, FunctionStats, MissCounts, MissReason, Stats};
pub use store::Durability;
pub use tier::lease::{LeaseGuard, SharedFlight};
#[cfg(feature = "redis")]
pub use tier::redis::{RedisTier, RedisTierBuilder};
pub use tier::{SharedStats, SharedTier, TierError};

#[cfg(feature = "macros")]
/// Caches a function's results in a [`Bucket`]: a call hashes its arguments, returns the stored value on a hit
/// (calling `on_cached` first), and otherwise runs the body and stores its result.
///
/// ```
/// use std::sync::LazyLock;
/// use bucketcache::{bucket_cache, Bucket};
///
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
///
/// #[bucket_cache(bucket = CACHE, lifetime = "1h")]
/// fn word_lengths(text: String) -> Vec<usize> {
///     text.split_whitespace().map(str::len).collect()
/// }
///
/// assert_eq!(word_lengths("a bb ccc".into()), [1, 2, 3]); // runs the body, writes the entry
/// assert_eq!(word_lengths("a bb ccc".into()), [1, 2, 3]); // a hit: from memory, or from the file in a later run
/// ```
///
/// It applies to free functions, inherent and trait `impl` methods (`&self`, `self`, `self: Box<Self>`, ...),
/// associated functions, `async fn`s and generic functions. Attributes, doc comments, `cfg`s, visibility,
/// generics and `where` clauses are kept; the body runs in a closure (an `async move` block for `async fn`), so
/// `return` and `?` behave as written.
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `bucket = EXPR` | the bucket: an expression that is, or derefs to, a [`Bucket`] (any backend and key maker), e.g. a `static CACHE: LazyLock<Bucket>`, an `Arc<Bucket>`, or `self.cache` in a method; or a [`DeferredWriteBucket`] (e.g. a `static D: LazyLock<DeferredWriteBucket<'static>>`): results stay pending until its `sync()` (crate docs, "Deferred writes") |
/// | `path = "dir"` | a bucket in that directory, opened on first use (relative to the current directory) |
/// | neither | the default directory, [`default_cache_dir`]: `$BUCKETCACHE_DIR`, else `$XDG_CACHE_HOME/bucketcache`, else `$HOME/.cache/bucketcache`, else the temp dir |
/// | `backend = json` / `msgpack` / `bincode` | the backend of the bucket opened by `path` or the default (bincode if not given); not with `bucket`; quoted (`"json"`) works too |
/// | `lifetime = "1h 30m"` | entries expire this long after each write: a string with a unit (`"90s"`, `"2d"`, `"1h 30m"`, [humantime](https://docs.rs/humantime) syntax; `3600` alone is an error), checked at compile time; overrides the bucket's lifetime for this function's entries only |
/// | `nocache = flag` | names a `bool` parameter (bare or quoted: `nocache = refresh`, `nocache = "refresh"`): when `true` the cache is not read, the body runs and its result overwrites the entry; never part of the key |
/// | `ignore(a, b)` | parameters left out of the key; they need not be `Serialize`; `ignore(self)` leaves the receiver out |
/// | `method` | hash `self`'s state into the key (requires `Self: Serialize`); a receiver with neither `method` nor `ignore(self)` is hashed as well, `method` says so |
/// | `on_cached = path` | called on hits only, before returning: `fn(&CachedCallInfo<'_, R>)`, or `fn(&Self, &CachedCallInfo<'_, R>)` for functions with a receiver; `R` is the whole return type (for `-> Result<u32, E>`, `CachedCallInfo<'_, Result<u32, E>>`), and a generic `fn cb<R>(info: &CachedCallInfo<'_, R>)` fits any function |
/// | `version = "..."` | replaces the body fingerprint in the key: edits of the body keep the entries until the version changes |
/// | `deps(helper, crate::model::Config, other::cached_fn, file = "data/table.csv")` | adds to the code version the fingerprints of the items named (each marked [`#[bucketcache::fingerprint]`](macro@fingerprint), transitively) and the content of the files named (relative to the crate's directory, read once per process at the first call; an unreadable file is logged at `error` and the function runs uncached): editing any of them starts fresh entries. See [`fingerprint`](macro@fingerprint) |
/// | `cache_err` | also cache `Err` values of a `Result` return type (the whole `Result` is stored, so `E` must be serializable); a compile error on another return type (aliases of `Result` work) |
/// | `cache_none` | also cache `None` values of an `Option` return type; a compile error on another return type |
/// | `allow_unit` | cache a function returning `()`: the body then runs once per key (its side effects too, across runs, until the entry expires); without it such a function is a compile error, since there is nothing to cache |
/// | `shared = false` | keep this function off the shared tier the environment attaches (`BUCKETCACHE_REDIS_URL`) to the buckets the attribute opens; see [Shared tier](crate#shared-tier-redis) |
/// | `fingerprint = false` | no hidden fingerprint item beside the function: required for a cached associated function without `self` or `Self` in a trait impl (an extra item there does not compile); the function can then not be named in `deps(...)` |
/// | `cross_process = "30s"` / `false` | how long a caller waits for another process running the body for the same key (default two minutes), or `false` for no cross-process waiting; see [Concurrency](#concurrency) |
/// | `cache_err = "30s"` / `cache_none = "5m"` | as the bare forms, but a cached `Err` / `None` expires after its own (usually shorter) lifetime; `Ok` / `Some` values keep the function's |
/// | `stale = "10m"` | after an entry expires, for up to this long, a call returns the expired value at once while one caller (the first, in this process or another) recomputes it; the others never wait; beyond the window, a normal miss. Needs `lifetime`. See [`freshness`] |
/// | `stale_if_error` | when the recompute of an expired entry fails (`Err`, `None`, or a panic in the body), return the stale value instead and keep the entry (the next call retries). Needs `stale` |
/// | `early_refresh` / `early_refresh = 1.5` | a caller recomputes before expiry with a probability rising as expiry nears, scaled by the value's recorded cost (XFetch, β = 1 or the number given); the others keep getting the fresh value. Needs `lifetime` |
/// | `max_age = "param"` | names a `Duration` or `Option<Duration>` parameter: on this call an entry older than it is a miss (recomputed and overwritten); `None` means no limit; never part of the key |
/// | `refresh = "background"` | with `stale` (or `early_refresh`): every caller, the first included, gets the stale (or early-refreshed) value at once, and a thread of its own recomputes it; sync functions without `self` whose arguments are `Send + 'static`, with a bucket that lives for the program. `refresh = "caller"` is the default. See [Background refresh](#background-refresh) |
///
/// # The key
///
/// A call's key is hashed by the bucket's key maker from, in order: the key layout version; the function's path
/// (module path, and the `impl`'s type for methods and associated functions, as [`core::any::type_name`] spells
/// it, so `a::f` and `b::f`, `Cat::speak` and `Dog::speak` never share entries); a code version computed at
/// compile time: a blake3 hash of the signature's tokens (so the parameter names and types, and the return type)
/// and the fingerprint (a blake3 hash of the body's tokens, or the `version` string); the return shape; a digest
/// of the stored type's serde shape (see [Type shapes](#type-shapes)); the names of the type arguments (and of
/// `Self`); then the value of each key argument in order, `self` first. Const
/// generic values count as arguments. So editing the body or the signature starts fresh entries, and reverting
/// the edit finds the old ones again; whitespace and comments do not count. Type names come from the compiler:
/// a compiler upgrade may start fresh entries.
///
/// A `HashSet` argument (`HashSet<T>`, `HashSet<T, S>`, `&HashSet<T>`, spelled with its name at the top level of
/// the parameter's type) is hashed in a canonical order, so equal sets give one key whatever their iteration order.
/// A set nested inside another type (a field, a `Vec<HashSet<T>>`, a type alias) is hashed in iteration order,
/// which differs between equal sets: every call would miss. Use a `BTreeSet` there.
///
/// ## Repeated calls: found by value
///
/// When every key argument is an [`ExactKey`] type (the integers, `bool`, `char`, `String`, `&str`, `Duration`,
/// and `Box`, `Vec`, `&[T]`, `Option`, arrays, tuples, `BTreeMap`, `BTreeSet` of them, or your type that opts in)
/// and the key names no type (no type parameters, no receiver), a call repeating a recent one on the same thread
/// finds its key by comparing the argument values, without encoding them (a per-thread memo of a few hundred
/// argument lists of up to 256 bytes each, per site and bucket). The key, and so every entry, is the same as the
/// encoding gives; expiry, `nocache`, removals and other writers are seen exactly as before. Other argument types
/// (floats, `HashMap`, your types that do not opt in) are encoded on every call. Implement [`ExactKey`] for a type
/// only when `a == b` implies that `a` and `b` serialize identically (see its contract).
///
/// # Return values
///
/// The return type `R` must be `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`, except:
///
/// - a `Result<T, E>` (any spelling: `io::Result<T>`, an alias) caches only `Ok` values: `T` is stored and needs
///   those traits, `E` needs none, and an error is retried on the next call. `cache_err` caches errors too.
/// - an `Option<T>` caches only `Some`; `cache_none` caches `None` too.
///
/// References and `impl Trait` cannot be returned (a hit has nothing to borrow from, and no type to decode).
///
/// # Type shapes
///
/// The key holds a digest of the stored type's serde shape, traced from its `Deserialize` implementation once per
/// type and process (not on each call): struct, tuple struct, newtype and enum names, field names in order,
/// variant names and contents, primitive kinds (`u32` and `u64` differ), options, sequences, tuples and maps,
/// through every nested type. So reordering, renaming or retyping a field, adding or removing a variant, or
/// wrapping the value in `Option`, starts fresh entries, with every backend, even under `version = "..."`; it
/// never decodes an old entry as a wrong value. Reverting the type finds the old entries again.
///
/// Some shapes cannot be traced: untagged and internally tagged enums, `#[serde(flatten)]`, types that call
/// `deserialize_any` (`serde_json::Value`) and custom `Deserialize` implementations that reject every sample value
/// the tracer offers (zero and one, the empty string, an RFC 3339 date, a UUID, an IP address, a URL: so chrono
/// dates, `NonZeroU32` and `IpAddr` are traced; a string of your own format may not be). For those the key
/// holds no shape, as before, and this is logged once per type at `debug` ("type shape cannot be traced"): after
/// changing such a type, change `version = "..."` (or the body) yourself. A self-describing backend (`json`,
/// `msgpack`) then still refuses most mismatches as a decode failure (a miss, logged at `warn`).
///
/// ```
/// # use std::sync::LazyLock;
/// # use bucketcache::{bucket_cache, Bucket};
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// # static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static RUNS: AtomicU32 = AtomicU32::new(0);
///
/// #[bucket_cache(bucket = CACHE)]
/// fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
///     RUNS.fetch_add(1, Ordering::SeqCst);
///     Ok(text.parse()?)
/// }
///
/// assert!(parse("x").is_err());
/// assert!(parse("x").is_err()); // not cached: ran again
/// assert_eq!(parse("7"), Ok(7));
/// assert_eq!(parse("7"), Ok(7)); // cached
/// assert_eq!(RUNS.load(Ordering::SeqCst), 3);
///
/// static LOOKUPS: AtomicU32 = AtomicU32::new(0);
///
/// #[bucket_cache(bucket = CACHE, cache_none)] // "not found" is an answer worth keeping too
/// fn lookup(user: &str) -> Option<u32> {
///     LOOKUPS.fetch_add(1, Ordering::SeqCst);
///     (user == "ann").then_some(1)
/// }
///
/// assert_eq!(lookup("bob"), None);
/// assert_eq!(lookup("bob"), None); // cached
/// assert_eq!(LOOKUPS.load(Ordering::SeqCst), 1);
/// ```
///
/// # `nocache` and `ignore`
///
/// ```
/// # use std::sync::LazyLock;
/// # use bucketcache::{bucket_cache, Bucket};
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// # static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
/// use std::sync::atomic::{AtomicU64, Ordering};
/// static CLOCK: AtomicU64 = AtomicU64::new(0);
///
/// /// Not `Serialize`: fine, it is ignored.
/// struct Progress(Vec<String>);
///
/// #[bucket_cache(bucket = CACHE, nocache = "refresh", ignore(progress))]
/// fn snapshot(name: &str, progress: &mut Progress, refresh: bool) -> u64 {
///     progress.0.push(format!("snapshot of {name}"));
///     CLOCK.fetch_add(1, Ordering::SeqCst)
/// }
///
/// let mut p = Progress(Vec::new());
/// let first = snapshot("db", &mut p, false);
/// assert_eq!(snapshot("db", &mut p, false), first); // a hit: the body (and its logging) did not run
/// let fresh = snapshot("db", &mut p, true);         // refresh: runs and overwrites
/// assert_ne!(fresh, first);
/// assert_eq!(snapshot("db", &mut p, false), fresh);
/// assert_eq!(p.0.len(), 2);
/// ```
///
/// A `&mut` argument or `&mut self` must be ignored (a hit would skip its mutation): it is a compile error
/// otherwise.
///
/// # Methods and `on_cached`
///
/// ```
/// # use std::sync::LazyLock;
/// # use bucketcache::{bucket_cache, Bucket};
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// # static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
/// use std::sync::Mutex;
/// use bucketcache::{ArgValue, CachedCallInfo};
///
/// #[derive(serde::Serialize)]
/// struct Service {
///     region: String,
///     #[serde(skip)] // not part of the state that matters (and kept out of the key)
///     hits: Mutex<Vec<String>>,
/// }
///
/// impl Service {
///     #[bucket_cache(method, bucket = CACHE, on_cached = Service::cache_used)]
///     fn price(&self, item: u32) -> u64 {
///         u64::from(item) * if self.region == "eu" { 2 } else { 3 }
///     }
///
///     fn cache_used(&self, info: &CachedCallInfo<'_, u64>) {
///         let item = info.arg("item").and_then(ArgValue::as_u64);
///         self.hits.lock().unwrap().push(format!("{} {item:?} -> {}", info.function, info.return_value));
///     }
/// }
///
/// let eu = Service { region: "eu".into(), hits: Mutex::default() };
/// let us = Service { region: "us".into(), hits: Mutex::default() };
/// assert_eq!((eu.price(10), us.price(10)), (20, 30)); // two states, two entries
/// assert_eq!(eu.price(10), 20);
/// let hits = eu.hits.lock().unwrap();
/// assert_eq!(hits.len(), 1);
/// assert!(hits[0].ends_with("Service::price Some(10) -> 20"), "{}", hits[0]);
/// ```
///
/// The callback runs on memory and disk hits, never on a miss or a `nocache` call. [`CachedCallInfo`] holds the
/// function path, every argument by name (rendered through `Serialize`, so printable with `{:?}` without
/// `Debug`; ignored ones show as `<ignored>`), the return value, `expiration_date`, the write date, the key hash
/// and the hit's source.
///
/// # Buckets the attribute opens: `path`, `backend` and the default directory
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # std::env::set_current_dir(dir.path()).unwrap();
/// use bucketcache::bucket_cache;
///
/// #[bucket_cache(path = "cache/reports", backend = json, lifetime = "1d")]
/// fn report(year: u16) -> Vec<String> {
///     vec![format!("report {year}")]
/// }
///
/// # std::env::set_var("BUCKETCACHE_DIR", dir.path().join("default"));
/// #[bucket_cache] // the default directory: $BUCKETCACHE_DIR, read when the function first needs it
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// assert_eq!(report(2026), ["report 2026"]);
/// assert!(std::path::Path::new("cache/reports/entries-v2").is_dir());
/// assert_eq!(square(12), 144);
/// assert!(dir.path().join("default/entries-v2").is_dir());
/// ```
///
/// These buckets are shared process-wide per (directory, backend), so functions in one directory share one memory
/// tier. A directory that cannot be created is logged at `warn` and the function runs uncached (retrying on the
/// next call).
/// Their debug logs show abbreviated keys; set `BUCKETCACHE_LOG_FULL_KEYS=1` in the environment (read when such a
/// bucket is first opened) for full keys, as [`BucketBuilder::log_full_keys`] does for your own buckets.
///
/// # Generic and `async` functions
///
/// ```
/// # use std::sync::LazyLock;
/// # use bucketcache::{bucket_cache, Bucket};
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// # static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
/// #[bucket_cache(bucket = CACHE)]
/// fn size_of<T>() -> usize {
///     std::mem::size_of::<T>() // `size_of::<u8>` and `size_of::<u64>` have separate entries
/// }
///
/// #[bucket_cache(bucket = CACHE, version = "2")]
/// async fn fetch(id: u32) -> Option<String> {
///     (id > 0).then(|| format!("item {id}"))
/// }
///
/// assert_eq!((size_of::<u8>(), size_of::<u64>()), (1, 8));
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
/// # }
/// # block_on(async {
/// assert_eq!(fetch(3).await.as_deref(), Some("item 3")); // in any executor
/// # });
/// ```
///
/// # Concurrency
///
/// Concurrent callers of one cold key in one process (same bucket, same key) run the body once: the first caller
/// runs it, the others wait and then read its stored value. Different keys never wait on each other. A sync
/// caller blocks its thread while waiting; an `async fn` caller awaits without blocking its executor thread. If
/// the first caller stores nothing (an `Err`, a `None`, a panic, a cancelled future), the next waiter runs the
/// body.
///
/// Across processes too: the caller that runs the body holds the key's lock file (see [`lock`]), and callers in
/// other processes wait for its entry, up to a wait limit ([`DEFAULT_FLIGHT_WAIT_LIMIT`], two minutes) after which
/// they run the body anyway. A process that dies while running the body releases its lock at once, and a waiter
/// runs it. `cross_process = "30s"` sets the wait limit; `cross_process = false` switches the cross-process
/// waiting off (each process may then run the body, and the last write wins, atomically). An `async fn` never
/// blocks its thread on another process: if another process holds the lock, it runs the body itself.
///
/// # Background refresh
///
/// With `stale = "10m", refresh = "background"`, a call that finds its entry expired within the stale window
/// returns the stale value at once, even the first one, and starts the recompute on a thread of its own (so does a
/// caller that draws an `early_refresh`: it returns the fresh value). The refresh is single-flight as the caller's
/// refresh is: one per key at a time in the process (the in-process flight) and among processes (the key's
/// cross-process lock, tried without waiting); callers arriving meanwhile get the stale value and start nothing.
/// Its result is stored as any call's (cost, statistics, `cache_err` lifetimes); with `stale_if_error`, an `Err`,
/// a `None` or a panic stores nothing and the stale entry stays. A panic in the body never reaches a caller or
/// ends the process: it is caught and logged at `warn`, and the entry stays as it was.
///
/// Threads: one per refresh in flight, spawned for it and detached, at most 16 at once per process. When that
/// many run (many keys went stale together), a caller that would start another returns the stale value without
/// starting it; a later caller of that key starts it once a place is free. There is no queue: the stale value is
/// served meanwhile either way, and a queued refresh could outlive its window. A process that exits while a
/// refresh runs loses it: nothing is stored, the entry stays stale (the next process refreshes it), and its lock is
/// released with the process. Writes are atomic renames, so no entry is ever left half written.
///
/// The caller that starts a refresh pays for the miss's bookkeeping (its reason, the call hash), never for the
/// body; it gets the cached value (`on_cached` fires) and is counted as the refresh's miss (`expired`) in
/// [`stats()`], as a caller that refreshes in the foreground is. The body runs on the refresh thread with the call's arguments moved there, so: a sync function (an
/// `async fn` needs its executor: a compile error), no `self` (a compile error: take the state as owned
/// arguments), every parameter `Send + 'static` (a reference or an `Rc` is a compile error on that parameter; no
/// `Clone` is needed: the caller returns the stale value and hands its arguments over), and a bucket that lives
/// as long as the program (`bucket = STATIC`, `path = "..."` or the default; another `bucket = EXPR` is a compile
/// error). A miss beyond the window, `nocache` and a disabled cache run the body on the caller, as always; a
/// refresh still running when the process is disabled ([`disable`]) stores nothing. The caller that started a
/// refresh is then a follower like any other (a later call of the key that cannot be served the stale value, e.g.
/// under `max_age`, waits for the refresh instead of running the body beside it). A
/// refresh thread writes straight to the bucket, outside any [`deferred_calls`] scope of the caller's thread.
///
/// ```
/// # use std::sync::LazyLock;
/// # use bucketcache::{bucket_cache, Bucket};
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
///
/// #[bucket_cache(bucket = CACHE, lifetime = "1m", stale = "1h", stale_if_error, refresh = "background")]
/// fn exchange_rate(pair: String) -> Result<f64, String> {
///     // a slow API call; within the hour after expiry, no caller waits for it
///     Ok(if pair == "EUR/USD" { 1.08 } else { 1.0 })
/// }
///
/// assert_eq!(exchange_rate("EUR/USD".into()), Ok(1.08));
/// ```
///
/// # Failures
///
/// A cache failure never changes what the function returns: an unopenable directory, a full disk, a value the
/// backend cannot encode, an argument whose `Serialize` fails, a corrupt entry, or an entry of another type (the
/// return type changed) are logged at `warn` (target `bucketcache`) and the body runs; its value is returned, and
/// stored when possible. Hits and misses are logged at `debug`.
///
/// # Compile errors
///
/// Each points at the offending token and says the fix, and the function is still emitted unchanged, so no
/// cascade of errors follows: an unknown argument (with the closest known one: `ttl` → `lifetime`, `dir` →
/// `path`) or a repeated one; a value of the wrong kind (`lifetime = 3600`); `ignore` or `nocache` naming no
/// parameter; `nocache` on a non-`bool` or ignored parameter; an invalid or zero `lifetime`; `bucket` with `path`
/// or `backend`; an un-ignored `&mut` argument or `&mut self`; a reference or `impl Trait` return type; a `()`
/// return type without `allow_unit`; `cache_none` on a non-`Option`, `cache_err` on a non-`Result`; `method`
/// without a receiver; a parameter pattern without a name; a `const fn`. Type errors are one error each, in these
/// words: a key argument that is not `Serialize` (for `self`: add `ignore(self)`), a return type that cannot be
/// stored (not `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`), an `on_cached` callback of another
/// signature (the error names the expected one).
pub use bucketcache_macros::bucket_cache;

#[cfg(feature = "macros")]
/// Gives an item a code fingerprint that `deps(...)` can name, so that editing it starts fresh entries for every
/// cached function that depends on it.
///
/// ```
/// # use std::sync::LazyLock;
/// # use bucketcache::{bucket_cache, Bucket};
/// # static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
/// # static CACHE: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).unwrap());
/// mod model {
///     #[bucketcache::fingerprint]
///     #[derive(Clone, serde::Serialize, serde::Deserialize)]
///     pub struct Config { pub scale: u32 }
///
///     #[bucketcache::fingerprint(deps(Config))]
///     pub fn scaled(c: &Config, x: u32) -> u32 { c.scale * x }
/// }
///
/// // Editing `scaled`, or `Config` (a dependency of `scaled`), starts fresh entries for `report`;
/// // reverting the edit finds the old ones again.
/// #[bucket_cache(bucket = CACHE, deps(model::scaled))]
/// fn report(x: u32) -> u32 {
///     model::scaled(&model::Config { scale: 3 }, x)
/// }
///
/// assert_eq!(report(2), 6);
/// assert_eq!(report(2), 6); // a hit
/// ```
///
/// # Where it applies, and the names it gives
///
/// | item | its fingerprint covers | named in `deps` as |
/// |---|---|---|
/// | `fn helper` (free, or in an inherent `impl`) | the whole item: signature, body, attributes | `helper`, `path::to::helper`, `Type::helper` |
/// | `struct Config`, `enum Mode` | the whole item, fields, variants and their attributes (`#[serde(...)]` counts) | `Config`, `crate::model::Config` |
/// | `const LIMIT`, `static TABLE` | the whole item | `LIMIT`, `path::to::LIMIT` |
/// | `impl Config { ... }` | the whole block | `impl_Config` (in the module of the block) |
/// | `impl Display for Config { ... }` | the whole block | `impl_Display_for_Config` |
/// | a `#[bucket_cache]` free function (no `self`, no `Self`) | its code version (signature and body, or `version`) | `cached_fn`, `other::cached_fn` |
///
/// An item's fingerprint is 128 bits of the blake3 hash of its tokens, written canonically (whitespace, comments
/// and doc comments do not count). With `deps(...)` it also covers the fingerprints of the items named there and
/// the content of the files named there, **transitively**: editing `leaf` changes the fingerprint of `helper`
/// (`deps(leaf)`) and so the code version of every cached function naming `helper`. Cycles are fine (each item is
/// counted once). An impl block's fingerprint is named after its self type (the last segment of its path, generic
/// arguments dropped) and trait; two blocks of one type in one module with the same name would clash (two inherent
/// blocks, or `impl From<u8> for Cfg` and `impl From<u16> for Cfg`: rustc E0428), so fingerprint
/// one of them, or their methods one by one (`#[bucketcache::fingerprint]` on a method in an inherent `impl` gives
/// it the name `Type::method`). In a trait impl, put the attribute on the whole block: an extra item there does not
/// compile.
///
/// Naming an item without a fingerprint is a compile error on the path you wrote: rustc "cannot find function
/// `__add_bucketcache_fingerprint_to_helper`", that is, add `#[bucketcache::fingerprint]` to `helper`. Each
/// fingerprint is a hidden function beside its item with the item's visibility: name a private helper from its
/// module and the modules inside it, a `pub` one from anywhere (another crate too), by the path of its definition
/// (a `pub use` re-exports the item, not its fingerprint; name the original path).
///
/// `#[bucket_cache]` methods and functions whose signature names `Self` get no fingerprint of their own (the
/// attribute cannot tell an inherent impl from a trait impl): fingerprint their `impl` block instead. A cached free
/// function has one already: do not add `#[bucketcache::fingerprint]` to it (the two would share a name). A cached
/// associated function in a **trait impl** whose signature has neither `self` nor `Self` must say
/// `#[bucket_cache(fingerprint = false)]`: its fingerprint is an item beside it, which a trait impl does not
/// accept (rustc: "method `__add_bucketcache_fingerprint_to_...` is not a member of trait"). In a
/// generic `impl<T> Wrapper<T>`, name a method's fingerprint with type arguments on the type
/// (`deps(Wrapper::<u8>::method)`: every instance has the same tokens); inside the impl, `deps(Self::method)` works.
///
/// # Data files
///
/// `deps(file = "data/table.csv")` adds the content hash of a file, given relative to the crate's directory (the
/// one holding its `Cargo.toml`, `CARGO_MANIFEST_DIR`). The file must exist when the crate is compiled (a typo is a
/// compile error on the string); it is resolved to an absolute path then, and **read at run time**, once per
/// process at the first call of a function depending on it (so editing the data file starts fresh entries without
/// a rebuild, and reverting it finds the old ones). The key holds the path as written and the content hash, never
/// the absolute path, so a bucket stays portable. If the file cannot be read at run time (removed, renamed,
/// unreadable), that is logged at `error` naming the function and the file, and every call of the function runs
/// its body uncached for the rest of the process: never a wrong hit.
///
/// # The hit path
///
/// The code version with dependencies is computed once per call site and process (a `static`), at the first call:
/// a later call pays one initialized check. A function without `deps` has exactly the code version it had before
/// `deps` existed (no entries are invalidated by upgrading).
///
/// # What a token fingerprint cannot see
///
/// | change | what to do |
/// |---|---|
/// | a dependency crate's new version (its code is not in your tokens) | `deps(file = "Cargo.lock")` (in a workspace, `file = "../Cargo.lock"`): any lock file change starts fresh entries; or put the crate's version in `version = "..."` |
/// | a helper, type or `const` the function uses but `deps` does not name | name it (and give it `#[bucketcache::fingerprint]`); its own dependencies must be named on it in turn |
/// | a macro that expands differently (a `macro_rules!` edited elsewhere, `include_str!`'d file, a build script's output) | the tokens are the macro's call, not its expansion: name the data file with `deps(file = ...)`, or bump `version = "..."` |
/// | the environment, the clock, the network, other files read at run time | these are inputs: pass them as arguments (they join the key), or name the files in `deps(file = ...)` |
/// | the compiler, `cfg`s and features | bump `version = "..."` when a build setting changes results |
///
/// `version = "..."` keeps its meaning with `deps`: it replaces the function's own body fingerprint, and the
/// dependencies still apply.
pub use bucketcache_macros::fingerprint;
