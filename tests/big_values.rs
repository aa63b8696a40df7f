//! Large values: streamed into and out of their files (issue 10). A streamed entry is the same format as any other,
//! a corrupt one is a miss (never a wrong value), and neither a store nor a load holds a second copy of the value.

use std::sync::Mutex;

use bucketcache::{Bucket, DefaultKeyMaker, HitSource, JsonBackend, KeyMaker, MessagePackBackend};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The allocator counts every thread: the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const MIB: usize = 1 << 20;

/// A value whose encoding is well past the 1 MiB streaming threshold.
fn big(n_mib: usize) -> Vec<f64> {
    (0..n_mib * MIB / 8).map(|i| i as f64 * 0.5 + 0.25).collect()
}

#[test]
fn a_streamed_entry_round_trips_with_every_backend_and_is_a_valid_entry_file() {
    let _s = serial();
    let value = big(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let bincode = Bucket::new(dir.path().join("bincode")).expect("bucket");
    let json = Bucket::builder(dir.path().join("json"))
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    let msgpack = Bucket::builder(dir.path().join("msgpack"))
        .backend(MessagePackBackend::new())
        .build()
        .expect("bucket");
    bincode.insert("k", &value).expect("insert");
    json.insert("k", &value).expect("insert");
    msgpack.insert("k", &value).expect("insert");
    for (id, got, path) in [
        (
            "bincode",
            bincode.get::<Vec<f64>>("k"),
            bincode.entry_path(&bincode.key_hash("k").expect("hash")),
        ),
        (
            "json",
            json.get::<Vec<f64>>("k"),
            json.entry_path(&json.key_hash("k").expect("hash")),
        ),
        (
            "msgpack",
            msgpack.get::<Vec<f64>>("k"),
            msgpack.entry_path(&msgpack.key_hash("k").expect("hash")),
        ),
    ] {
        assert_eq!(got.expect("get").as_deref(), Some(&value[..]), "{id}");
        let file = std::fs::read(&path).expect("read");
        let (header, _) = bucketcache::entry::verify(&file).expect("a streamed entry is a valid entry file");
        assert!(header.backend.starts_with(&id[..4]), "{id}");
    }
    // Too large for the default 64 MiB tier's share (8 MiB)? No: 3 MiB is kept, and a hit then comes from memory.
    let key = bincode.key_hash("k").expect("hash");
    assert_eq!(
        bincode.lookup::<Vec<f64>>(&key).expect("lookup").expect("hit").source,
        HitSource::Memory
    );
    bincode.unload_all();
    let hit = bincode.lookup::<Vec<f64>>(&key).expect("lookup").expect("hit");
    assert_eq!((hit.source, hit.value == value), (HitSource::Disk, true));
}

#[test]
fn a_value_larger_than_an_eighth_of_the_memory_tier_is_not_kept_in_it() {
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path())
        .memory_max_bytes(16 * MIB as u64)
        .build()
        .expect("bucket");
    let key = bucket.key_hash("big").expect("hash");
    bucket.insert_typed(&key, &big(3), None, None).expect("insert");
    assert_eq!(bucket.memory_usage().0, 0, "a 3 MiB value is over 16 MiB / 8");
    assert_eq!(
        bucket.lookup::<Vec<f64>>(&key).expect("lookup").expect("hit").source,
        HitSource::Disk
    );
    assert_eq!(
        bucket.lookup::<Vec<f64>>(&key).expect("lookup").expect("hit").source,
        HitSource::Disk
    );
    let small = bucket.key_hash("small").expect("hash");
    bucket
        .insert_typed(&small, &big(1)[..1000].to_vec(), None, None)
        .expect("insert");
    assert_eq!(
        bucket.lookup::<Vec<f64>>(&small).expect("lookup").expect("hit").source,
        HitSource::Memory
    );
}

/// Writes `good` (a valid entry of `value` under key "k") back with one byte flipped at each of `flips`, then
/// truncated by `cut` bytes and extended by `grow`: each must read as a miss, never an error or a wrong value; then
/// intact again: a hit with `value`.
fn damage_is_a_miss(
    bucket: &Bucket,
    path: &std::path::Path,
    good: &[u8],
    value: &[f64],
    flips: &[usize],
    cut: usize,
    grow: usize,
) {
    for &at in flips {
        let mut bad = good.to_vec();
        bad[at] ^= 0x10;
        std::fs::write(path, &bad).expect("write");
        assert_eq!(
            bucket
                .get::<Vec<f64>>("k")
                .expect("a damaged entry is a miss, not an error"),
            None,
            "flip at {at}"
        );
    }
    if cut > 0 {
        std::fs::write(path, &good[..good.len() - cut]).expect("write");
        assert!(bucket.get::<Vec<f64>>("k").expect("get").is_none(), "truncated");
    }
    if grow > 0 {
        let mut longer = good.to_vec();
        longer.extend(std::iter::repeat_n(0u8, grow));
        std::fs::write(path, &longer).expect("write");
        assert!(bucket.get::<Vec<f64>>("k").expect("get").is_none(), "extended");
    }
    std::fs::write(path, good).expect("write");
    assert_eq!(bucket.get::<Vec<f64>>("k").expect("get").as_deref(), Some(value));
}

#[test]
fn a_damaged_streamed_entry_is_a_miss_never_a_wrong_value() {
    let _s = serial();
    let value = big(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    bucket.insert("k", &value).expect("insert");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    let good = std::fs::read(&path).expect("read");

    // One flipped bit in the middle of the floats still decodes: only the checksum can tell. Truncated, extended.
    damage_is_a_miss(
        &bucket,
        &path,
        &good,
        &value,
        &[good.len() / 2, good.len() - 1, 300],
        8,
        8,
    );
}

#[test]
fn an_intact_streamed_entry_of_another_type_is_a_decode_error() {
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    // Shorter than the payload: trailing bytes.
    bucket.insert("k", &big(3)).expect("insert");
    let err = bucket.get::<(u64, f64)>("k").expect_err("trailing bytes are an error");
    assert!(err.to_string().contains("trailing"), "{err}");
    // Bytes that are not a `Vec<String>`.
    bucket.insert("k", &vec![u64::MAX; 3 * MIB / 8]).expect("insert");
    assert!(matches!(
        bucket.get::<Vec<String>>("k"),
        Err(bucketcache::Error::Decode { .. })
    ));
}

#[test]
fn storing_and_loading_a_large_value_holds_no_second_copy() {
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let value = big(24);
    let value_bytes = value.len() * 8;
    let key = bucket.key_hash("k").expect("hash");

    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    bucket.insert_typed(&key, &value, None, None).expect("insert");
    let store_peak = ALLOC.peak_usage().saturating_sub(before);
    assert!(
        store_peak <= 16 * MIB,
        "a store of {value_bytes} bytes allocated {store_peak} bytes beyond the value"
    );

    bucket.unload_all();
    drop(value);
    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let loaded = bucket.get::<Vec<f64>>("k").expect("get").expect("hit");
    let load_peak = ALLOC.peak_usage().saturating_sub(before);
    assert_eq!(loaded.len() * 8, value_bytes);
    // A flat vector is allocated once at its length and filled block by block: the value and a few blocks.
    assert!(
        load_peak <= value_bytes + 16 * MIB,
        "a load of {value_bytes} bytes allocated {load_peak} bytes"
    );

    // Through serde (a type that is not a flat vector), the decoded `Vec` grows by doubling from serde's cautious
    // first capacity, and this counting allocator reallocates by copying, so the last growth step counts the old
    // half beside the new buffer (the system allocator moves pages instead: the bigvalues bench measures resident
    // memory). What must never be held beside the value is the file's bytes or a clone: the old load path (file +
    // value + clone) fails this bound.
    let pairs: Vec<(f64, f64)> = loaded.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    drop(loaded);
    bucket.insert_typed(&key, &pairs, None, None).expect("insert");
    drop(pairs);
    bucket.unload_all();
    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let loaded = bucket.get::<Vec<(f64, f64)>>("k").expect("get").expect("hit");
    let load_peak = ALLOC.peak_usage().saturating_sub(before);
    assert_eq!(loaded.len() * 16, value_bytes);
    assert!(
        load_peak <= 2 * value_bytes + 16 * MIB,
        "a load of {value_bytes} bytes allocated {load_peak} bytes"
    );
}

/// A `Vec` of fixed-width numbers stored by bincode is read in blocks straight into the vector (`backend/flat.rs`):
/// the same values as serde gives, for each element type and both bincode configurations, and the same decode
/// error when the entry holds another type.
#[test]
fn flat_vectors_round_trip_and_another_type_is_a_decode_error() {
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = Bucket::builder(dir.path().join("plain"))
        .memory_max_bytes(0)
        .build()
        .expect("bucket");
    let fixint = Bucket::builder(dir.path().join("fixint"))
        .backend(bucketcache::BincodeBackend::with_config(
            bucketcache::BincodeConfig::new().fixed_int_encoding(true),
        ))
        .memory_max_bytes(0)
        .build()
        .expect("bucket");
    let n = 5 * MIB / 4 + 3; // past the helper's 4 MiB as f64, and an odd count
    let floats: Vec<f64> = (0..n).map(|i| i as f64 * -0.75 + 1e-300).collect();
    let singles: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let bytes: Vec<u8> = (0..5 * MIB + 1).map(|i| (i * 31 + i / 977) as u8).collect();
    let signed: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
    let longs: Vec<i64> = (0..n as i64).map(|i| i * -0x0123_4567).collect();
    let words: Vec<u16> = (0..n).map(|i| (i * 7) as u16).collect();
    macro_rules! round_trip {
        ($bucket:expr, $value:expr, $t:ty) => {
            $bucket.insert("k", &$value).expect("insert");
            let got = $bucket.get::<$t>("k").expect("get").expect("hit");
            assert!(got == $value, "{}", stringify!($t));
        };
    }
    round_trip!(plain, floats, Vec<f64>);
    round_trip!(fixint, floats, Vec<f64>);
    round_trip!(plain, singles, Vec<f32>);
    round_trip!(plain, bytes, Vec<u8>);
    round_trip!(plain, signed, Vec<i8>);
    round_trip!(fixint, longs, Vec<i64>);
    round_trip!(fixint, words, Vec<u16>);
    // Varint integers go through serde.
    round_trip!(plain, longs, Vec<i64>);

    // Another flat type than the one stored: its declared length does not match the payload.
    plain.insert("k", &floats).expect("insert");
    let err = plain.get::<Vec<u8>>("k").expect_err("fewer bytes than the payload");
    assert!(err.to_string().contains("trailing"), "{err}");
    plain.insert("k", &bytes).expect("insert");
    let err = plain.get::<Vec<f64>>("k").expect_err("more bytes than the payload");
    assert!(matches!(err, bucketcache::Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("ends before"), "{err}");
    // And a damaged flat entry is still a miss, with the length prefix damaged too.
    let path = plain.entry_path(&plain.key_hash("k").expect("hash"));
    let good = std::fs::read(&path).expect("read");
    let header_len = bucketcache::entry::verify(&good).expect("valid").1;
    for at in [header_len, header_len + 1, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).expect("write");
        assert_eq!(plain.get::<Vec<u8>>("k").expect("a miss"), None, "flip at {at}");
    }
}

/// Past 4 MiB of payload the checksum is computed on a helper thread while the value is encoded or decoded: a
/// damaged byte anywhere (in a block the helper hashed, in the last one, in the header) is still a miss.
#[test]
fn a_damaged_entry_checksummed_on_the_helper_thread_is_a_miss() {
    let _s = serial();
    let value = big(12);
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    bucket.insert("k", &value).expect("insert");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    let good = std::fs::read(&path).expect("read");
    assert!(good.len() > 12 * MIB);
    damage_is_a_miss(
        &bucket,
        &path,
        &good,
        &value,
        &[
            300,
            2 * MIB,
            5 * MIB + 17,
            good.len() / 2,
            good.len() - MIB,
            good.len() - 1,
        ],
        0,
        0,
    );
}

/// Past 16 MiB a flat vector is loaded by every core at once, each reading and hashing 4 MiB pieces
/// (`backend/flat_parallel.rs`): the same values, and a damaged byte in any piece or at a piece boundary, a
/// truncated or an extended file is still a miss.
#[test]
fn a_flat_vector_loaded_across_cores_is_exact_and_a_damaged_one_is_a_miss() {
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    let value: Vec<f64> = (0..(20 * MIB) / 8 + 5).map(|i| i as f64 * 1.5 - 7.0).collect();
    bucket.insert("k", &value).expect("insert");
    assert_eq!(bucket.get::<Vec<f64>>("k").expect("get").as_deref(), Some(&value[..]));
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    let good = std::fs::read(&path).expect("read");
    let payload_at = bucketcache::entry::verify(&good).expect("valid").1;
    damage_is_a_miss(
        &bucket,
        &path,
        &good,
        &value,
        &[
            payload_at,
            payload_at + 4 * MIB - 1,
            payload_at + 4 * MIB,
            payload_at + 13 * MIB + 3,
            good.len() - 1,
        ],
        3,
        1,
    );
}

/// Entry files written from the documented format by the forge (not by the crate's writer): format 3 (the
/// piecewise xxh3 checksum) and format 2 (blake3, as earlier builds wrote), small, streamed and big enough to be
/// loaded across cores. Each is a hit with its value; one flipped payload byte makes it a miss.
#[test]
fn forged_format_3_and_format_2_entries_are_read_and_checked() {
    use bucketcache::Backend;
    use bucketcache_suite::forge;
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    let key = bucket.key_hash("k").expect("hash");
    let path = bucket.entry_path(&key);
    std::fs::create_dir_all(path.parent().expect("fan-out")).expect("mkdir");
    for n in [10usize, (9 * MIB) / 8, (20 * MIB) / 8 + 3] {
        let value: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 3.0).collect();
        let mut payload = Vec::new();
        bucket.backend().encode(&value, &mut payload).expect("encode");
        let id = bucket.backend().id();
        for (format, file) in [
            (3, forge::entry_xxh3(key.as_bytes(), id, &payload)),
            (2, forge::entry(forge::FORMAT_VERSION, key.as_bytes(), id, &payload)),
        ] {
            std::fs::write(&path, &file).expect("write");
            bucket.unload_all();
            assert_eq!(
                bucket.get::<Vec<f64>>("k").expect("get").as_deref(),
                Some(&value[..]),
                "format {format}, {n} floats"
            );
            let mut bad = file.clone();
            let at = file.len() - payload.len() / 2;
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).expect("write");
            bucket.unload_all();
            assert_eq!(
                bucket.get::<Vec<f64>>("k").expect("a damaged entry is a miss"),
                None,
                "format {format}, {n} floats, a flipped byte"
            );
        }
    }
}

/// Payload sizes around each switch of the write and read paths: in memory up to 1 MiB, streamed past it, the
/// checksum on a helper thread past 4 MiB, and the 1 MiB stream buffer's boundaries. `serde_bytes` makes the payload
/// the bytes plus a short length prefix.
#[test]
fn values_round_trip_at_sizes_crossing_every_threshold() {
    let _s = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::builder(dir.path()).memory_max_bytes(0).build().expect("bucket");
    for edge in [MIB, 2 * MIB, 4 * MIB, 5 * MIB] {
        for len in [edge - 9, edge - 1, edge, edge + 1, edge + 4097] {
            let value = serde_bytes::ByteBuf::from((0..len).map(|i| (i * 7 + i / 1000) as u8).collect::<Vec<u8>>());
            bucket.insert("k", &value).expect("insert");
            let got = bucket.get::<serde_bytes::ByteBuf>("k").expect("get").expect("hit");
            assert!(got == value, "{len} bytes");
        }
    }
}

/// A key holding a big argument is hashed in blocks (on a helper thread past 1 MiB) in bounded memory, and to the
/// same hash as its canonical bytes built whole.
#[test]
fn a_big_key_hashes_like_its_whole_encoding_in_under_a_mebibyte() {
    let _s = serial();
    for len in [64 * 1024 - 20, 64 * 1024 + 20, MIB + 3, 3 * MIB + 12_345] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 + i / 4099) as u8).collect();
        let floats: Vec<f64> = (0..len / 8).map(|i| i as f64 * 0.25).collect();
        let key = ("f", 7u32, &bytes, serde_bytes::Bytes::new(&bytes), &floats);
        let (whole, encoded) = DefaultKeyMaker.make_key_with_bytes(&key).expect("hash");
        let encoded_len = encoded.map_or(0, |b| b.len());
        let before = ALLOC.current_usage();
        ALLOC.reset_peak_usage();
        let streamed = DefaultKeyMaker.make_key(&key).expect("hash");
        let peak = ALLOC.peak_usage().saturating_sub(before);
        assert_eq!(streamed, whole, "{len} bytes");
        assert!(
            peak < MIB,
            "hashing a key of {encoded_len} canonical bytes allocated {peak} bytes"
        );
    }
}

#[cfg(feature = "zstd")]
mod zstd {
    use super::*;

    fn compressed(dir: &std::path::Path) -> Bucket {
        Bucket::builder(dir)
            .memory_max_bytes(0)
            .compression(3, 4096)
            .build()
            .expect("bucket")
    }

    fn flags_and_len(bucket: &Bucket, key: &str) -> (u8, u64) {
        let file = std::fs::read(bucket.entry_path(&bucket.key_hash(key).expect("hash"))).expect("read");
        let (header, _) = bucketcache::entry::verify(&file).expect("valid");
        (header.flags, file.len() as u64)
    }

    #[test]
    fn compressed_entries_round_trip_small_and_streamed_and_record_the_flag() {
        let _s = serial();
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = compressed(dir.path());
        let small: Vec<u64> = (0..10_000).map(|i| i % 7).collect();
        let large: Vec<u64> = (0..3 * MIB as u64).map(|i| i % 7).collect();
        let tiny = vec![1u8; 100];
        bucket.insert("small", &small).expect("insert");
        bucket.insert("large", &large).expect("insert");
        bucket.insert("tiny", &tiny).expect("insert");
        assert_eq!(bucket.get::<Vec<u64>>("small").expect("get"), Some(small));
        assert_eq!(
            bucket.get::<Vec<u64>>("large").expect("get").as_deref(),
            Some(&large[..])
        );
        assert_eq!(bucket.get::<Vec<u8>>("tiny").expect("get"), Some(tiny));
        use bucketcache::entry::{FLAG_XXH3, FLAG_ZSTD};
        let (flags, len) = flags_and_len(&bucket, "large");
        assert_eq!(flags, FLAG_ZSTD | FLAG_XXH3);
        assert!(len < 1 << 20, "3 Mi small integers compress: {len} bytes");
        assert_eq!(flags_and_len(&bucket, "small").0, FLAG_ZSTD | FLAG_XXH3);
        assert_eq!(
            flags_and_len(&bucket, "tiny").0,
            FLAG_XXH3,
            "under min_bytes: stored plain"
        );
        // Another type: a decode error, not a wrong value.
        assert!(matches!(
            bucket.get::<Vec<String>>("large"),
            Err(bucketcache::Error::Decode { .. })
        ));
    }

    /// The memory tier weighs a compressed entry read from disk by its encoding, not its file: a 24 MiB value that
    /// compresses to a few KiB is not cloned into a 64 MiB tier (its share is 8 MiB).
    #[test]
    fn a_compressed_big_value_is_weighed_by_its_encoding_in_the_memory_tier() {
        let _s = serial();
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = Bucket::builder(dir.path())
            .memory_max_bytes(64 * MIB as u64)
            .compression(3, 4096)
            .build()
            .expect("bucket");
        // Floats: eight bytes each in bincode (a small integer would be one).
        let big: Vec<f64> = vec![0.5; 3 * MIB];
        let small: Vec<f64> = vec![0.25; MIB / 8];
        bucket.insert("big", &big).expect("insert");
        bucket.insert("small", &small).expect("insert");
        assert!(flags_and_len(&bucket, "big").1 < 64 * 1024, "compressible");
        bucket.unload_all();
        assert_eq!(
            bucket.get::<Vec<f64>>("big").expect("get").map(|v| v.len()),
            Some(big.len())
        );
        assert_eq!(
            bucket.memory_usage().0,
            0,
            "24 MiB of encoding is over the tier's share"
        );
        assert_eq!(bucket.get::<Vec<f64>>("small").expect("get"), Some(small));
        let (entries, weight) = bucket.memory_usage();
        assert_eq!(entries, 1);
        assert!(weight >= MIB as u64, "weighed by its encoding: {weight} bytes");
    }

    #[test]
    fn a_damaged_compressed_entry_is_a_miss() {
        let _s = serial();
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = compressed(dir.path());
        let value = big(3);
        bucket.insert("k", &value).expect("insert");
        let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
        let good = std::fs::read(&path).expect("read");
        for at in [good.len() / 2, good.len() - 1, good.len() - 9] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).expect("write");
            assert_eq!(
                bucket.get::<Vec<f64>>("k").expect("a miss, not an error"),
                None,
                "flip at {at}"
            );
        }
        std::fs::write(&path, &good).expect("write");
        assert_eq!(bucket.get::<Vec<f64>>("k").expect("get").as_deref(), Some(&value[..]));
    }
}
