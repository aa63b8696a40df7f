//! `on_cached`: called on hits only (memory or disk), never on a miss or a `nocache` call, before the value is
//! returned, with a `CachedCallInfo` holding the function path, the arguments by name, the return value, the
//! expiration date and the key hash.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bucketcache::{bucket_cache, ArgValue, Bucket, CachedCallInfo, HitSource, ManualClock};
use serde::Serialize;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::starting_now);
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| {
    Bucket::builder(DIR.path())
        .clock(CLOCK.clone())
        .build()
        .expect("bucket")
});

/// What the callback saw, in order.
static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

#[derive(Debug, Clone)]
struct Seen {
    function: &'static str,
    debug: String,
    a: Option<u64>,
    point_x: Option<i64>,
    value: Vec<u8>,
    expires: Option<chrono::DateTime<chrono::Utc>>,
    key_hex: String,
    source: HitSource,
}

fn record(info: &CachedCallInfo<'_, Vec<u8>>) {
    SEEN.lock().expect("lock").push(Seen {
        function: info.function,
        debug: format!("{:?}", info.args),
        a: info.arg("a").and_then(ArgValue::as_u64),
        point_x: info.arg("p").and_then(|p| p.field("x")).and_then(ArgValue::as_i64),
        value: info.return_value.clone(),
        expires: info.expiration_date,
        key_hex: info.key_hash.to_hex(),
        source: info.source,
    });
}

/// Not `Debug`: the callback still prints it, through `Serialize`.
#[derive(Serialize)]
struct Point {
    x: i32,
    y: i32,
}

struct Opaque;

#[bucket_cache(bucket = BUCKET, lifetime = "1h", on_cached = record, nocache = "fresh", ignore(o))]
fn encode(a: u64, p: Point, o: Opaque, fresh: bool) -> Vec<u8> {
    let _ = o;
    vec![a as u8, p.x as u8, p.y as u8]
}

fn seen() -> Vec<Seen> {
    SEEN.lock().expect("lock").clone()
}

#[test]
fn callback_fires_on_hits_only_with_the_call_details() {
    let call = || encode(5, Point { x: -1, y: 2 }, Opaque, false);
    let v = call();
    assert!(seen().is_empty(), "a miss does not call back");

    assert_eq!(call(), v);
    let s = seen();
    assert_eq!(s.len(), 1);
    let hit = &s[0];
    assert_eq!(hit.source, HitSource::Memory);
    assert!(hit.function.ends_with("attr_callbacks::encode"), "{}", hit.function);
    assert_eq!(hit.a, Some(5));
    assert_eq!(hit.point_x, Some(-1));
    assert_eq!(hit.value, v);
    assert_eq!(
        hit.debug,
        r#"[CallArg { name: "a", value: 5 }, CallArg { name: "p", value: Point { x: -1, y: 2 } }, CallArg { name: "o", value: <ignored> }, CallArg { name: "fresh", value: false }]"#
    );
    // The lifetime of the attribute, counted from the write, on the bucket's clock.
    let expires = hit.expires.expect("a lifetime was given");
    let now = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now");
    let left = expires - now;
    assert!(
        left <= chrono::Duration::hours(1) && left > chrono::Duration::minutes(59),
        "{left}"
    );
    // The key hash names the entry file.
    let file = BUCKET.entry_path(&bucketcache::KeyHash::from_hex(&hit.key_hex).expect("hex"));
    assert!(file.exists(), "{}", file.display());

    // From the file.
    BUCKET.unload_all();
    assert_eq!(call(), v);
    assert_eq!(seen().len(), 2);
    assert_eq!(seen()[1].source, HitSource::Disk);

    // nocache: no callback.
    assert_eq!(encode(5, Point { x: -1, y: 2 }, Opaque, true), v);
    assert_eq!(seen().len(), 2);

    // Expired: a miss, no callback.
    CLOCK.advance(Duration::from_secs(3601));
    assert_eq!(call(), v);
    assert_eq!(seen().len(), 2);
    assert_eq!(call(), v);
    assert_eq!(seen().len(), 3);
}
