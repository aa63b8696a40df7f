//! Arguments named like the expansion's own concepts do not clash with it.
use std::sync::LazyLock;

use bucketcache::{bucket_cache, Bucket, CachedCallInfo};

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));

fn on_hit(_: &CachedCallInfo<'_, String>) {}

#[allow(clippy::too_many_arguments)]
#[bucket_cache(bucket = BUCKET, on_cached = on_hit, nocache = "shape", ignore(guard))]
fn f(
    key: u32,
    bucket: String,
    result: Option<u8>,
    cache: Vec<u8>,
    call: (),
    value: i64,
    hit: char,
    guard: std::sync::Mutex<()>,
    shape: bool,
    function: &str,
) -> String {
    let _ = (call, guard, shape);
    format!("{key}{bucket}{result:?}{cache:?}{value}{hit}{function}")
}

fn main() {
    for _ in 0..2 {
        let s = f(1, "b".into(), Some(2), vec![3], (), 4, 'h', std::sync::Mutex::new(()), false, "fn");
        assert_eq!(s, "1bSome(2)[3]4hfn");
    }
}
