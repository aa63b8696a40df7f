//! Logs of the attribute's calls: one decode failure is one `warn` line per call (not one per lookup), and
//! `BUCKETCACHE_LOG_FULL_KEYS=1` turns on full keys in the debug logs of the buckets the attribute opens.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bucketcache::__private::{self as p, Arg, Args, Call, CallKey, ProbeAll as _, Step};
use bucketcache::{bucket_cache, Bucket, JsonBackend};
use tracing_subscriber::fmt::MakeWriter;

/// Everything a subscriber writes, for counting lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Runs `f` with a subscriber at `level` for target `bucketcache` on this thread; returns what it logged.
fn logged(level: &str, f: impl FnOnce()) -> String {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!("bucketcache={level}")))
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    out.text()
}

fn no_shape() -> Option<[u8; 32]> {
    None
}

/// One call through the attribute's runtime steps, with a fixed key whatever `R` is (no shape), so an entry of
/// one type can be read back as another.
fn call<R>(bucket: &Bucket<JsonBackend>, compute: impl FnOnce() -> R) -> (R, bool)
where
    R: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let shape = (&p::Probe::<R>::new()).shape();
    let call = Call::new(
        Some(bucket),
        "attr_logs::f",
        None,
        &CallKey {
            function: "attr_logs::f",
            code: "0:version:1",
            mode: "R",
            shape: no_shape,
            types: &[],
            args: Args(Arg {
                value: p::key_arg(&1u8),
                next: p::End,
            }),
        },
    );
    match call.begin::<R, _>(shape, false) {
        Step::Hit(hit) => (hit.value, true),
        Step::Run(guard) => {
            let v = compute();
            call.store::<R, _>(shape, &v);
            drop(guard);
            (v, false)
        }
    }
}

/// Both checks in one test, one after the other on one thread: tracing caches each call site's interest
/// process-wide, and two thread-local subscribers installed at once (parallel tests) can hide a call site's debug
/// line from one of them.
#[test]
fn logs() {
    one_decode_failure_is_one_warn_line();
    full_keys_for_attribute_buckets_via_the_environment();
}

fn one_decode_failure_is_one_warn_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    assert_eq!(call(&bucket, || "text".to_string()), ("text".to_string(), false));
    // A second bucket on the directory: the entry is read from its file, and a `String` does not decode as `u32`.
    let reader = Bucket::builder(dir.path())
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    let log = logged("debug", || assert_eq!(call(&reader, || 5u32), (5, false)));
    let warns: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 1, "one warn line, got:\n{log}");
    assert!(warns[0].contains("attr_logs::f"), "{}", warns[0]);
    // The value was replaced: the next call hits.
    assert_eq!(call(&reader, || unreachable!("cached")), (5, true));
}

#[bucket_cache(path = "target/attr_logs_full_keys")]
fn long_key(text: String) -> usize {
    text.len()
}

/// The env var is read when the attribute's bucket is first opened: this test is the only one opening it.
fn full_keys_for_attribute_buckets_via_the_environment() {
    std::env::set_var("BUCKETCACHE_LOG_FULL_KEYS", "1");
    let text = "k".repeat(120);
    let log = logged("debug", || assert_eq!(long_key(text.clone()), 120));
    let line = log
        .lines()
        .find(|l| l.contains("hashed key"))
        .unwrap_or_else(|| panic!("no key line in\n{log}"));
    assert!(line.contains(&text), "the whole key is logged: {line}");
}
