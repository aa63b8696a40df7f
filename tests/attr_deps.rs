//! Dependency fingerprints: `#[bucketcache::fingerprint]` and `deps(...)`.
//!
//! One test binary cannot hold two versions of one item, so the token cases compare fingerprints of look-alike
//! items in sibling modules (`v1`, `v1_again`, `v2`): the same tokens give the same fingerprint, an edit a
//! different one, through two levels of `deps`. The data-file cases run this binary again as a child process
//! (the test `child`, which does nothing unless `ATTR_DEPS_CHILD` is set): files are read once per process, and
//! the child redirects the checked-in fixture `tests/fixtures/deps/table.csv` to a temporary copy the parent edits
//! between runs (`bucketcache::__private::redirect_dep_file`, a hidden test hook).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex};

use bucketcache::__private::fingerprint_digest;
use bucketcache::{bucket_cache, Bucket, CachedCallInfo, MissReason};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

/// The code version of the last hit (from `on_cached`), per function path.
static CODES: Mutex<Vec<(&'static str, &'static str)>> = Mutex::new(Vec::new());

fn remember<R>(info: &CachedCallInfo<'_, R>) {
    if let Some(code) = info.code_version {
        CODES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((info.function, code));
    }
}

/// The code version `f`'s hit reports (`f` calls a function twice: a miss, then a hit).
fn code_of(f: impl Fn()) -> &'static str {
    f();
    f();
    let codes = CODES.lock().unwrap_or_else(|p| p.into_inner());
    codes.last().expect("a hit").1
}

// ---- the same tokens, an edit, two levels ----

macro_rules! three_levels {
    ($name:ident, $leaf:expr) => {
        mod $name {
            #[bucketcache::fingerprint]
            pub fn leaf() -> u32 {
                $leaf
            }

            #[bucketcache::fingerprint(deps(leaf))]
            pub fn mid() -> u32 {
                leaf() + 1
            }

            #[bucketcache::fingerprint(deps(mid))]
            pub fn top() -> u32 {
                mid() * 2
            }

            #[bucketcache::bucket_cache(bucket = super::BUCKET, deps(top), on_cached = super::remember)]
            pub fn cached(x: u32) -> u32 {
                x + top()
            }
        }
    };
}

three_levels!(v1, 1);
three_levels!(v1_again, 1);
three_levels!(v2, 2);

#[test]
fn the_same_tokens_give_the_same_fingerprint_and_an_edit_another_through_two_levels() {
    let top = |f: fn(&mut bucketcache::__private::FpWalk)| fingerprint_digest(f).expect("digest");
    assert_eq!(
        top(v1::__add_bucketcache_fingerprint_to_top),
        top(v1_again::__add_bucketcache_fingerprint_to_top)
    );
    assert_ne!(
        top(v1::__add_bucketcache_fingerprint_to_leaf),
        top(v2::__add_bucketcache_fingerprint_to_leaf),
        "the leaf was edited"
    );
    assert_ne!(
        top(v1::__add_bucketcache_fingerprint_to_top),
        top(v2::__add_bucketcache_fingerprint_to_top),
        "`top` names `mid`, which names the edited `leaf`"
    );
    assert_eq!(top(v1::__add_bucketcache_fingerprint_to_top).len(), 32);
}

#[test]
fn a_cached_function_s_code_version_follows_its_dependencies() {
    let a = code_of(|| assert_eq!(v1::cached(1), 5));
    let a_again = code_of(|| assert_eq!(v1_again::cached(1), 5));
    let b = code_of(|| assert_eq!(v2::cached(1), 7));
    assert_eq!(a, a_again, "same tokens everywhere: same code version");
    assert_ne!(a, b, "a leaf two levels down was edited");
    let (base_a, deps_a) = a.split_once(":deps:").expect("a deps part");
    let (base_b, _) = b.split_once(":deps:").expect("a deps part");
    assert_eq!(base_a, base_b, "the function's own tokens did not change");
    assert_eq!(deps_a.len(), 32);
}

// ---- without deps: the code version of before ----

#[bucket_cache(bucket = BUCKET, on_cached = remember)]
fn plain(x: u32) -> u32 {
    x * 3 + 1
}

#[bucket_cache(bucket = BUCKET, on_cached = remember, version = "7")]
fn pinned(x: u32) -> u32 {
    x * 3 + 1
}

mod pinned_with_deps {
    #[bucketcache::fingerprint]
    #[allow(dead_code)]
    fn helper() {}

    #[bucketcache::bucket_cache(bucket = super::BUCKET, on_cached = super::remember, version = "7", deps(helper))]
    pub fn pinned(x: u32) -> u32 {
        x * 3 + 1
    }
}

#[test]
fn without_deps_the_code_version_is_unchanged_and_version_keeps_its_meaning() {
    // Golden strings, recorded before `deps` existed: upgrading starts no fresh entries.
    assert_eq!(
        code_of(|| assert_eq!(plain(1), 4)),
        "ca507bd4071e:body:464812766dee3651"
    );
    assert_eq!(code_of(|| assert_eq!(pinned(1), 4)), "c5d8edaecc91:version:7");
    let with_deps = code_of(|| assert_eq!(pinned_with_deps::pinned(1), 4));
    assert!(with_deps.starts_with("c5d8edaecc91:version:7:deps:"), "{with_deps}");
}

// ---- cycles ----

mod cycle {
    #[bucketcache::fingerprint(deps(b))]
    pub fn a() -> u32 {
        1
    }

    #[bucketcache::fingerprint(deps(a, self::a))]
    pub fn b() -> u32 {
        2
    }

    #[bucketcache::fingerprint(deps(self_loop))]
    pub fn self_loop() {}

    #[bucketcache::bucket_cache(bucket = super::BUCKET, deps(a))]
    pub fn cached(x: u32) -> u32 {
        x + a() + b()
    }
}

#[test]
fn a_cycle_terminates() {
    let from_a = fingerprint_digest(cycle::__add_bucketcache_fingerprint_to_a).expect("digest");
    let from_b = fingerprint_digest(cycle::__add_bucketcache_fingerprint_to_b).expect("digest");
    assert_eq!(from_a, from_b, "the same two items, entered from either end");
    assert!(fingerprint_digest(cycle::__add_bucketcache_fingerprint_to_self_loop).is_ok());
    cycle::self_loop();
    assert_eq!(cycle::cached(1), 4);
    assert_eq!(cycle::cached(1), 4);
}

// ---- every kind of item, paths and visibility ----

static MODEL_RUNS: AtomicU32 = AtomicU32::new(0);

mod model {
    use serde::{Deserialize, Serialize};

    #[bucketcache::fingerprint]
    #[derive(Clone, Serialize, Deserialize)]
    pub struct Config {
        pub scale: u32,
    }

    #[bucketcache::fingerprint]
    #[derive(Clone, Copy, Serialize, Deserialize)]
    pub enum Mode {
        Plain,
        Doubled,
    }

    #[bucketcache::fingerprint]
    pub const LIMIT: u32 = 100;

    #[bucketcache::fingerprint(deps(LIMIT))]
    impl Config {
        pub fn apply(&self, mode: Mode, x: u32) -> u32 {
            let v = self.scale * x;
            (match mode {
                Mode::Plain => v,
                Mode::Doubled => v * 2,
            })
            .min(LIMIT)
        }
    }

    #[derive(serde::Serialize)]
    pub struct Tool;

    impl Tool {
        /// A method's fingerprint is named `Tool::measure`.
        #[bucketcache::fingerprint(deps(Config))]
        pub fn measure(c: &Config) -> u32 {
            c.scale
        }

        /// A cached method naming a sibling with `Self::`.
        #[bucketcache::bucket_cache(method, bucket = super::BUCKET, deps(Self::measure, super::vis::child::uses))]
        pub fn cached_measure(&self, scale: u32) -> u32 {
            Self::measure(&Config { scale })
        }
    }

    impl std::fmt::Display for Tool {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("tool")
        }
    }

    pub mod inner {
        /// Private to `inner`: nameable from `inner` and modules inside it.
        #[bucketcache::fingerprint]
        fn private_helper() -> u32 {
            1
        }

        #[bucketcache::fingerprint(deps(private_helper))]
        pub fn public_helper() -> u32 {
            private_helper()
        }
    }

    /// A cached function others name with `deps(model::report)`.
    #[bucketcache::bucket_cache(bucket = super::BUCKET, deps(Config, Mode, impl_Config, Tool::measure, inner::public_helper))]
    pub fn report(scale: u32, x: u32) -> u32 {
        super::MODEL_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let c = Config { scale };
        c.apply(Mode::Doubled, x) + Tool::measure(&c) + inner::public_helper()
    }
}

mod vis {
    /// Private: nameable from `vis` and the modules inside it.
    #[bucketcache::fingerprint]
    fn secret() -> u32 {
        7
    }

    pub mod child {
        #[bucketcache::fingerprint(deps(super::secret))]
        pub fn uses() -> u32 {
            super::secret()
        }
    }
}

#[bucketcache::fingerprint]
impl std::fmt::Display for model::Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scale {}", self.scale)
    }
}

#[bucket_cache(bucket = BUCKET, deps(model::report, crate::model::Mode, impl_Display_for_Config, file = "tests/fixtures/deps/table.csv"))]
fn summary(scale: u32) -> String {
    format!("{} {}", model::Config { scale }, model::report(scale, 1))
}

#[test]
fn structs_enums_impls_consts_methods_and_cached_functions_are_nameable() {
    assert_eq!(model::report(3, 2), 12 + 3 + 1);
    assert_eq!(model::report(3, 2), 16);
    assert_eq!(MODEL_RUNS.load(Ordering::SeqCst), 1, "the second call hit");
    assert_eq!(summary(2), "scale 2 7");
    assert_eq!(summary(2), "scale 2 7");
    let report = fingerprint_digest(model::__add_bucketcache_fingerprint_to_report).expect("digest");
    let measure = fingerprint_digest(model::Tool::__add_bucketcache_fingerprint_to_measure).expect("digest");
    assert_ne!(report, measure);
    assert_eq!(model::Tool.to_string(), "tool");
    assert_eq!(model::Tool.cached_measure(4), 4);
    assert_eq!(model::Tool.cached_measure(4), 4);
    assert_eq!(vis::child::uses(), 7);
}

// ---- data files, in child processes ----

const FIXTURE: &str = "tests/fixtures/deps/table.csv";
static TABLE_RUNS: AtomicU32 = AtomicU32::new(0);
static CHILD_BUCKET: LazyLock<Bucket> =
    LazyLock::new(|| Bucket::new(std::env::var_os("ATTR_DEPS_BUCKET").expect("ATTR_DEPS_BUCKET")).expect("bucket"));

#[bucket_cache(bucket = CHILD_BUCKET, deps(file = "tests/fixtures/deps/table.csv"))]
fn table_weight(symbol: String) -> u32 {
    TABLE_RUNS.fetch_add(1, Ordering::SeqCst);
    symbol.len() as u32
}

/// The child: redirects the fixture to `ATTR_DEPS_DATA`, calls `table_weight` twice with one argument, and
/// prints what happened: `runs N hits N code-changed N new N stores N`.
#[test]
fn child() {
    let Some(data) = std::env::var_os("ATTR_DEPS_CHILD") else {
        return;
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("bucketcache=error"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    bucketcache::__private::redirect_dep_file(fixture.to_string_lossy(), data);
    assert_eq!(table_weight("ACME".into()), 4);
    assert_eq!(table_weight("ACME".into()), 4);
    let row = bucketcache::stats()
        .function("table_weight")
        .map(|f| f.stats)
        .unwrap_or_default();
    println!(
        "runs {} hits {} code-changed {} new {} stores {}",
        TABLE_RUNS.load(Ordering::SeqCst),
        row.hits(),
        row.misses.get(MissReason::CodeChanged),
        row.misses.get(MissReason::NewArguments),
        row.stores,
    );
}

/// Runs the child on `bucket` with the data file `data`: its report line and its stderr.
fn run_child(bucket: &Path, data: &Path) -> (String, String) {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("ATTR_DEPS_CHILD", data)
        .env("ATTR_DEPS_BUCKET", bucket)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.find("runs ").map(|at| l[at..].to_owned()))
        .unwrap_or_else(|| panic!("no report in\n{stdout}\n{stderr}"));
    (line, stderr)
}

#[test]
fn editing_a_data_file_starts_fresh_entries_and_reverting_hits_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = dir.path().join("bucket");
    let data = dir.path().join("table.csv");
    let original = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).expect("fixture");
    std::fs::write(&data, &original).expect("write");

    let (first, _) = run_child(&bucket, &data);
    assert_eq!(first, "runs 1 hits 1 code-changed 0 new 1 stores 1");

    std::fs::write(&data, b"symbol,weight\nACME,5\n").expect("edit");
    let (edited, _) = run_child(&bucket, &data);
    assert_eq!(
        edited, "runs 1 hits 1 code-changed 1 new 0 stores 1",
        "the edit starts a fresh entry, and the miss says why"
    );

    std::fs::write(&data, &original).expect("revert");
    let (reverted, _) = run_child(&bucket, &data);
    assert_eq!(
        reverted, "runs 0 hits 2 code-changed 0 new 0 stores 0",
        "the old entry again"
    );
}

#[test]
fn a_missing_data_file_runs_uncached_and_logs_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = dir.path().join("bucket");
    let (line, stderr) = run_child(&bucket, &dir.path().join("gone.csv"));
    assert_eq!(
        line, "runs 2 hits 0 code-changed 0 new 0 stores 0",
        "both calls ran, nothing stored"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error per process: {stderr}");
    assert!(
        errors[0].contains("table_weight") && errors[0].contains(FIXTURE) && errors[0].contains("gone.csv"),
        "names the function, the declared path and the file read: {}",
        errors[0]
    );
    // Whatever the layout's version: no entry file (64 hex digits) anywhere under the bucket.
    fn entry_files(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() {
                        entry_files(&e.path())
                    } else {
                        usize::from(name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
                    }
                })
                .sum()
        })
    }
    assert!(bucket.is_dir(), "the child opened its bucket");
    assert_eq!(entry_files(&bucket), 0, "nothing written");
}

#[cfg(unix)]
#[test]
fn a_data_file_replaced_by_a_fifo_runs_uncached_and_does_not_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("table.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo");
    // Opening a FIFO for reading blocks until a writer comes: the child would hang (it did) instead of returning.
    let (line, stderr) = run_child(&dir.path().join("bucket"), &fifo);
    assert_eq!(
        line, "runs 2 hits 0 code-changed 0 new 0 stores 0",
        "both calls ran, nothing stored"
    );
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

// ---- async and generic functions ----

#[bucket_cache(bucket = BUCKET, deps(v1::leaf, file = "tests/fixtures/deps/table.csv"), on_cached = remember)]
async fn async_cached(x: u32) -> u32 {
    x + v1::leaf()
}

#[bucket_cache(bucket = BUCKET, deps(v1::leaf), on_cached = remember)]
fn generic_cached<T: serde::Serialize + std::fmt::Display>(x: T) -> String {
    format!("{x}{}", v1::leaf())
}

/// The code version the last hit of a function whose path ends with `name` reported.
fn last_code_of(name: &str) -> Option<&'static str> {
    let codes = CODES.lock().unwrap_or_else(|p| p.into_inner());
    codes.iter().rev().find(|(f, _)| f.ends_with(name)).map(|(_, c)| *c)
}

#[test]
fn async_and_generic_functions_take_deps() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    assert_eq!(rt.block_on(async_cached(1)), 2);
    assert_eq!(rt.block_on(async_cached(1)), 2);
    let code = last_code_of("async_cached").expect("the second call is a hit");
    assert!(
        code.contains(":deps:"),
        "the async function's code version covers its deps: {code}"
    );
    assert_eq!(generic_cached(1u8), "11");
    assert_eq!(generic_cached("a"), "a1");
    assert_eq!(generic_cached("a"), "a1");
    let code = last_code_of("generic_cached").expect("the second call is a hit");
    assert!(
        code.contains(":deps:"),
        "the generic function's code version covers its deps: {code}"
    );
}

// ---- a cached associated function in a trait impl ----

trait Loader {
    fn load(n: u32) -> u32;
}

struct Disk;

static LOADS: AtomicU32 = AtomicU32::new(0);

impl Loader for Disk {
    // No `self`, no `Self`: without `fingerprint = false` the hidden fingerprint item beside it would not compile
    // in a trait impl (E0407).
    #[bucket_cache(bucket = &*BUCKET, fingerprint = false)]
    fn load(n: u32) -> u32 {
        LOADS.fetch_add(1, Ordering::SeqCst);
        n * 3
    }
}

#[test]
fn a_cached_associated_function_in_a_trait_impl_compiles_with_fingerprint_false_and_caches() {
    assert_eq!(Disk::load(14), 42);
    assert_eq!(Disk::load(14), 42);
    assert_eq!(LOADS.load(Ordering::SeqCst), 1, "the second call is a hit");
}

// ---- two same-named dependencies that swap their bodies ----

mod swap_before {
    pub mod x {
        #[bucketcache::fingerprint]
        pub fn rate() -> u32 {
            1
        }
    }
    pub mod y {
        #[bucketcache::fingerprint]
        pub fn rate() -> u32 {
            100
        }
    }
    #[bucketcache::fingerprint(deps(x::rate, y::rate))]
    pub fn price() -> u32 {
        x::rate() * 2 + y::rate()
    }
}

mod swap_after {
    pub mod x {
        #[bucketcache::fingerprint]
        pub fn rate() -> u32 {
            100
        }
    }
    pub mod y {
        #[bucketcache::fingerprint]
        pub fn rate() -> u32 {
            1
        }
    }
    #[bucketcache::fingerprint(deps(x::rate, y::rate))]
    pub fn price() -> u32 {
        x::rate() * 2 + y::rate()
    }
}

#[test]
fn two_same_named_dependencies_swapping_their_bodies_change_the_fingerprint() {
    assert_ne!(swap_before::price(), swap_after::price(), "the behaviour changed");
    assert_ne!(
        fingerprint_digest(swap_before::__add_bucketcache_fingerprint_to_price),
        fingerprint_digest(swap_after::__add_bucketcache_fingerprint_to_price),
        "so must the fingerprint (the wiring joins the digest, not only the set of items)"
    );
}
