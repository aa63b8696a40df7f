//! Clear errors: values a backend cannot represent, type changes, bad configuration.

use std::time::Duration;

use bucketcache::{BincodeBackend, Bucket, Error, JsonBackend};

#[test]
fn bincode_refuses_self_describing_values_and_names_the_backends_to_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .backend(BincodeBackend::new())
        .build()
        .expect("bucket");
    let value = serde_json::json!({"a": [1, 2, {"b": null}]});
    bucket.insert("v", &value).expect("bincode can write a Value");
    bucket.unload_all();
    let err = bucket.get::<serde_json::Value>("v").expect_err("but not read it back");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("JsonBackend") && msg.contains("MessagePackBackend"),
        "{msg}"
    );

    let json = Bucket::builder(dir.path().join("j"))
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    json.insert("v", &value).expect("insert");
    json.unload_all();
    assert_eq!(json.get::<serde_json::Value>("v").expect("get"), Some(value));
}

#[test]
fn reading_as_another_type_is_a_decode_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    bucket.insert("k", &"text").expect("insert");
    for unload in [false, true] {
        if unload {
            bucket.unload_all();
        }
        let err = bucket.get::<Vec<u64>>("k").expect_err("a string is no Vec<u64>");
        match &err {
            Error::Decode { type_name, backend, .. } => {
                assert!(type_name.contains("Vec<u64>"), "{type_name}");
                assert_eq!(*backend, "json");
            }
            other => panic!("expected Decode, got {other:?}"),
        }
    }
    // The right type still reads.
    assert_eq!(bucket.get::<String>("k").expect("get").as_deref(), Some("text"));
}

#[test]
fn lifetime_and_shortcuts_together_are_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Bucket::builder(dir.path())
        .lifetime(Duration::from_secs(1))
        .hours(1)
        .build()
        .expect_err("both given");
    assert!(matches!(err, Error::Config { .. }));
    assert!(err.to_string().contains("one or the other"), "{err}");
}

#[test]
fn a_key_that_fails_to_serialize_is_a_key_error() {
    struct Bad;
    impl serde::Serialize for Bad {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("this key refuses"))
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let err = bucket.insert(&Bad, &1u8).expect_err("bad key");
    assert!(
        matches!(err, Error::Key { .. }) && err.to_string().contains("this key refuses"),
        "{err}"
    );
    assert!(bucket.get::<u8>(&Bad).is_err());
}

#[test]
fn a_value_that_fails_to_serialize_is_an_encode_error_and_keeps_the_old_entry() {
    struct Bad;
    impl serde::Serialize for Bad {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("nope"))
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("k", &7u8).expect("insert");
    let err = bucket.insert("k", &Bad).expect_err("bad value");
    assert!(
        matches!(
            err,
            Error::Encode {
                backend: "bincode2",
                ..
            }
        ),
        "{err:?}"
    );
    bucket.unload_all();
    assert_eq!(bucket.get::<u8>("k").expect("get"), Some(7));
}

#[test]
fn a_zero_lifetime_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for b in [
        Bucket::builder(dir.path()).seconds(0),
        Bucket::builder(dir.path()).lifetime(Duration::from_micros(10)),
    ] {
        let err = b.build().expect_err("zero lifetime");
        assert!(
            matches!(err, Error::Config { .. }) && err.to_string().contains("never expire"),
            "{err}"
        );
    }
}
