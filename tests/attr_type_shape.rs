//! The serde shape of the stored type is part of every attribute key: after a field is reordered, renamed or
//! retyped, a variant added or removed, or the value wrapped in `Option`, the next call is a miss (never a wrong
//! value), with every backend; reverting the type hits the old entries again.
//!
//! A test cannot edit a type between two runs, so each "edit" is a same-named type of another shape in another
//! module, and the call goes through the same runtime steps as the attribute's expansion (`__private::Call` with a
//! `CallKey` whose function path, code version and arguments are the same for both types: only the type differs).
//! The attribute itself is checked to pass the shape (`attribute_keys_hold_the_shape`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use bucketcache::__private::{self as p, shape_digest, shape_text, Arg, Args, Call, CallKey, ProbeAll as _, Step};
use bucketcache::{bucket_cache, Backend, BincodeBackend, Bucket, JsonBackend, MessagePackBackend};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Stats {
        pub count: u32,
        pub mean: f64,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Kind {
        Small,
        Large(u32),
    }
}

/// `v1::Stats` with its fields reordered: bincode would decode a v1 entry into it as a wrong value.
mod reordered {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Stats {
        pub mean: f64,
        pub count: u32,
    }
}

mod renamed {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Stats {
        pub count: u32,
        pub average: f64,
    }
}

mod retyped {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Stats {
        pub count: u64,
        pub mean: f64,
    }
}

mod added_variant {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Kind {
        Small,
        Large(u32),
        Huge(u64),
    }
}

mod removed_variant {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Kind {
        Small,
    }
}

/// One cached call, as the attribute expands it: the same function path, code version and argument for every
/// type `R`, so only `R`'s shape can tell two calls apart. Returns the value and whether it was a hit.
fn call<R, B>(bucket: &Bucket<B>, compute: impl FnOnce() -> R) -> (R, bool)
where
    R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    B: Backend,
{
    let shape = (&p::Probe::<R>::new()).shape();
    let call = Call::new(
        Some(bucket),
        "attr_type_shape::stats",
        None,
        &CallKey {
            function: "attr_type_shape::stats",
            code: "0123456789ab:version:x",
            mode: p::mode_of::<R, _>(&shape),
            shape: p::shape_of::<R, _>(&shape),
            types: &[],
            args: Args(Arg {
                value: p::key_arg(&7u32),
                next: p::End,
            }),
        },
    );
    match call.begin::<R, _>(shape, false) {
        Step::Hit(hit) => (hit.value, true),
        Step::Run(guard) => {
            let value = compute();
            call.store::<R, _>(shape, &value);
            drop(guard);
            (value, false)
        }
    }
}

/// Every edit with one backend: each a miss computing the new value, and reverting hits the old entry (read from
/// the file by a second bucket on the same directory, so not from the memory tier).
fn every_edit_is_a_miss<B: Backend + Clone>(backend: B) {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Bucket::builder(dir.path())
            .backend(backend.clone())
            .build()
            .expect("bucket")
    };
    let first = open();

    let stats = v1::Stats { count: 64, mean: 2.5 };
    assert_eq!(call(&first, || stats.clone()), (stats.clone(), false));
    assert_eq!(call(&first, || unreachable!("cached")), (stats.clone(), true));

    let b = open();
    let r = reordered::Stats { mean: 1.0, count: 1 };
    assert_eq!(call(&b, || r.clone()), (r.clone(), false), "reordered fields");
    let n = renamed::Stats { count: 2, average: 2.0 };
    assert_eq!(call(&b, || n.clone()), (n.clone(), false), "renamed field");
    let t = retyped::Stats { count: 3, mean: 3.0 };
    assert_eq!(call(&b, || t.clone()), (t.clone(), false), "field type changed");
    // `Option<Stats>` stores its `Some` value, a `Stats`; with `cache_none`, the whole `Option`.
    let o = Some(v1::Stats { count: 4, mean: 4.0 });
    assert_eq!(call(&b, || o.clone()), (o.clone(), false), "wrapped in Option");

    let k = v1::Kind::Large(5);
    assert_eq!(call(&b, || k.clone()), (k.clone(), false));
    let a = added_variant::Kind::Huge(6);
    assert_eq!(call(&b, || a.clone()), (a.clone(), false), "variant added");
    let rm = removed_variant::Kind::Small;
    assert_eq!(call(&b, || rm.clone()), (rm.clone(), false), "variant removed");

    // Reverting each type hits its own entry again, read from the file.
    let c = open();
    assert_eq!(call(&c, || unreachable!("cached")), (stats, true), "reverted");
    assert_eq!(call(&c, || unreachable!("cached")), (r, true));
    assert_eq!(call(&c, || unreachable!("cached")), (k, true));
    assert_eq!(call(&c, || unreachable!("cached")), (a, true));
}

#[test]
fn every_edit_is_a_miss_with_bincode() {
    every_edit_is_a_miss(BincodeBackend::new());
}

#[test]
fn every_edit_is_a_miss_with_json() {
    every_edit_is_a_miss(JsonBackend::new());
}

#[test]
fn every_edit_is_a_miss_with_msgpack() {
    every_edit_is_a_miss(MessagePackBackend::new());
}

#[test]
fn shape_digests_tell_every_edit_apart() {
    let all = [
        shape_digest::<v1::Stats>(),
        shape_digest::<reordered::Stats>(),
        shape_digest::<renamed::Stats>(),
        shape_digest::<retyped::Stats>(),
        shape_digest::<Option<v1::Stats>>(),
        shape_digest::<v1::Kind>(),
        shape_digest::<added_variant::Kind>(),
        shape_digest::<removed_variant::Kind>(),
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(a.is_some(), "type {i} is traced");
        for (j, b) in all.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "types {i} and {j}");
        }
    }
    // The digest is a function of the shape alone: the same shape under another Rust path digests the same.
    mod copy {
        use super::*;
        #[derive(Serialize, Deserialize)]
        pub struct Stats {
            pub count: u32,
            pub mean: f64,
        }
    }
    assert_eq!(shape_digest::<v1::Stats>(), shape_digest::<copy::Stats>());
    let text = shape_text::<v1::Stats>().expect("traced");
    assert!(text.contains("5:count") && text.contains("4:mean"), "{text}");
}

/// Shapes that cannot be traced fall back to keys without a shape: still cached, still hit.
mod untraceable {
    use super::*;
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Loose {
        N(u32),
        S(String),
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Flat {
        pub a: u32,
        #[serde(flatten)]
        pub rest: std::collections::BTreeMap<String, u32>,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    pub enum Tagged {
        A { x: u32 },
    }
}

#[test]
fn untraceable_shapes_fall_back() {
    assert!(shape_digest::<untraceable::Loose>().is_none());
    assert!(shape_digest::<untraceable::Flat>().is_none());
    assert!(shape_digest::<untraceable::Tagged>().is_none());
    assert!(shape_digest::<serde_json::Value>().is_none());
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    let v = untraceable::Loose::S("x".into());
    assert_eq!(call(&bucket, || v.clone()), (v.clone(), false));
    assert_eq!(call(&bucket, || unreachable!("cached")), (v, true));
}

static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static BUCKET: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(DIR.path()).expect("bucket"));
static RUNS: AtomicUsize = AtomicUsize::new(0);

#[bucket_cache(bucket = BUCKET)]
fn stats(n: u32) -> v1::Stats {
    RUNS.fetch_add(1, Ordering::SeqCst);
    v1::Stats { count: n, mean: 0.5 }
}

/// The attribute passes the stored type's shape function into the key: its key is the one `call` above makes
/// for the same parts, and it differs from the key made with another type's shape.
#[test]
fn attribute_keys_hold_the_shape() {
    assert_eq!(stats(1), v1::Stats { count: 1, mean: 0.5 });
    assert_eq!(stats(1), v1::Stats { count: 1, mean: 0.5 });
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    let key = |shape: p::ShapeFn| {
        BUCKET
            .key_hash(&CallKey {
                function: "attr_type_shape::stats",
                code: "0123456789ab:version:x",
                mode: "R",
                shape,
                types: &[],
                args: Args(Arg {
                    value: p::key_arg(&1u32),
                    next: p::End,
                }),
            })
            .expect("hash")
    };
    assert_ne!(key(shape_digest::<v1::Stats>), key(shape_digest::<reordered::Stats>));
}
