//! Hostile files: entries with a valid checksum whose payload declares huge lengths (4 GiB strings, vectors, maps)
//! must be decoded within a memory bound derived from the file's size, without a panic or a hang. Peak heap use
//! during each read is measured with a counting global allocator.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bucketcache::entry::FORMAT_VERSION;
use bucketcache::{Backend, BincodeBackend, BincodeConfig, Bucket, JsonBackend, MessagePackBackend};
use bucketcache_suite::fixtures::Checked;
use bucketcache_suite::forge;
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The most a read of a `file_len`-byte entry may allocate: 64 times the file (bincode's claim factor), and at
/// least 1 MiB (bincode's smallest claim limit), plus 64 KiB for the read's own bookkeeping.
fn bound(file_len: usize) -> usize {
    (64 * file_len).max(1 << 20) + (64 << 10)
}

#[derive(Default)]
struct Report {
    cases: usize,
    worst_peak: usize,
    worst_case: String,
}

/// Writes `payload` as the entry for key "k" with a valid checksum, reads it as `T`, and measures the read.
fn read_hostile<T, B>(bucket: &Bucket<B>, what: &str, payload: &[u8], report: &mut Report)
where
    T: serde::de::DeserializeOwned + Clone + Send + Sync + std::fmt::Debug + 'static,
    B: Backend,
{
    let key = bucket.key_hash("k").expect("hash");
    // Format 3 (the xxh3 checksum, as this build writes) and format 2 (blake3) alternately: both reach the decoder.
    let file = if payload.len().is_multiple_of(2) {
        forge::entry_xxh3(key.as_bytes(), bucket.backend().id(), payload)
    } else {
        forge::entry(FORMAT_VERSION, key.as_bytes(), bucket.backend().id(), payload)
    };
    let path = bucket.entry_path(&key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, &file).expect("write");
    bucket.unload_all();

    let before = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let started = Instant::now();
    let result = bucket.get::<T>("k");
    let elapsed = started.elapsed();
    let peak = ALLOC.peak_usage().saturating_sub(before);

    let case = format!("{} {what} as {}", bucket.backend().id(), std::any::type_name::<T>());
    // Only a decode error shows that the payload reached the decoder: a miss would mean the forged file was
    // rejected before decoding (say, if it stopped matching the entry format), and nothing here was tested.
    match &result {
        Err(bucketcache::Error::Decode { .. }) => {}
        other => panic!("{case}: expected a decode error, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(5), "{case}: took {elapsed:?}");
    assert!(
        peak <= bound(file.len()),
        "{case}: a {}-byte file made the read allocate {peak} bytes (bound {})",
        file.len(),
        bound(file.len())
    );
    println!("hostile: {case:<90} file {:>5} B  peak {:>8} B", file.len(), peak);
    report.cases += 1;
    if peak > report.worst_peak {
        report.worst_peak = peak;
        report.worst_case = case;
    }
}

/// Forges the entry for key "k" from a payload the backend encoded, and requires it to read back: the forged files
/// of this test are entries the reader accepts, so what it rejects below is rejected by the decoder.
fn forged_valid_entry_reads_back<B: Backend>(bucket: &Bucket<B>) {
    let value = Checked::new(5, 300);
    let mut payload = Vec::new();
    bucket.backend().encode(&value, &mut payload).expect("encode");
    let key = bucket.key_hash("k").expect("hash");
    let path = bucket.entry_path(&key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &path,
        forge::entry(FORMAT_VERSION, key.as_bytes(), bucket.backend().id(), &payload),
    )
    .expect("write");
    bucket.unload_all();
    assert_eq!(
        bucket.get::<Checked>("k").expect("get"),
        Some(value),
        "{}: a forged entry of a valid payload reads back",
        bucket.backend().id()
    );
}

/// Every type a declared length can target, read from one payload.
fn all_types<B: Backend>(bucket: &Bucket<B>, what: &str, payload: &[u8], report: &mut Report) {
    read_hostile::<String, _>(bucket, what, payload, report);
    read_hostile::<Vec<u8>, _>(bucket, what, payload, report);
    read_hostile::<Vec<u64>, _>(bucket, what, payload, report);
    read_hostile::<Vec<String>, _>(bucket, what, payload, report);
    read_hostile::<Vec<Vec<u64>>, _>(bucket, what, payload, report);
    read_hostile::<HashMap<String, u64>, _>(bucket, what, payload, report);
    read_hostile::<BTreeMap<u64, Vec<u8>>, _>(bucket, what, payload, report);
    read_hostile::<Checked, _>(bucket, what, payload, report);
    read_hostile::<(String, String), _>(bucket, what, payload, report);
    read_hostile::<Tree, _>(bucket, what, payload, report);
}

/// A recursive type: a crafted payload can nest it as deep as it has bytes.
#[derive(Debug, Clone, serde::Deserialize)]
#[allow(dead_code)]
struct Tree(Vec<Tree>, Option<Box<Tree>>);

/// bincode's varint for `n` (standard configuration).
fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xFFFF => [&[251u8][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xFFFF_FFFF => [&[252u8][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[253u8][..], &n.to_le_bytes()].concat(),
    }
}

const LENGTHS: [u64; 7] = [
    1 << 32,         // 4 GiB
    u64::MAX,        // overflows every size computation
    (1 << 32) - 1,   // the largest u32
    (1 << 24) - 100, // under a claim limit of 16 MiB
    1 << 20,         // 1 MiB
    (1 << 20) - 100, // under bincode's smallest claim limit and serde's preallocation cap
    1 << 16,
];

#[test]
fn crafted_lengths_never_allocate_beyond_the_file_size_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut report = Report::default();

    let bincode = Bucket::builder(dir.path().join("bincode")).build().expect("bucket");
    let fixint = Bucket::builder(dir.path().join("fixint"))
        .backend(BincodeBackend::with_config(
            BincodeConfig::new().fixed_int_encoding(true),
        ))
        .build()
        .expect("bucket");
    forged_valid_entry_reads_back(&bincode);
    forged_valid_entry_reads_back(&fixint);
    for n in LENGTHS {
        let what = format!("length {n}");
        // The length alone, then followed by a little data, then twice (a map or a pair of huge fields).
        all_types(&bincode, &what, &varint(n), &mut report);
        all_types(
            &bincode,
            &format!("{what} + 64 B"),
            &[varint(n), vec![7; 64]].concat(),
            &mut report,
        );
        all_types(
            &bincode,
            &format!("{what} twice"),
            &[varint(n), varint(n), vec![1; 8]].concat(),
            &mut report,
        );
        let fixed = n.to_le_bytes();
        all_types(&fixint, &what, &[&fixed[..], &[7; 64]].concat(), &mut report);
        all_types(&fixint, &format!("{what} twice"), &[fixed, fixed].concat(), &mut report);
    }

    // Deep nesting: a stack overflow would abort the process; every level declaring a huge length would make
    // serde preallocate a megabyte per level.
    for depth in [300usize, 5_000, 100_000] {
        let what = format!("{depth} nested levels");
        all_types(&bincode, &what, &vec![1u8; depth], &mut report);
        all_types(
            &bincode,
            &format!("{what} of 4 GiB each"),
            &varint(1 << 32).repeat(depth),
            &mut report,
        );
        all_types(&fixint, &what, &1u64.to_le_bytes().repeat(depth), &mut report);
    }

    let msgpack = Bucket::builder(dir.path().join("msgpack"))
        .backend(MessagePackBackend::new())
        .build()
        .expect("bucket");
    forged_valid_entry_reads_back(&msgpack);
    for n in [u32::MAX, 1 << 31, (1 << 24) - 1, 1 << 20] {
        for (marker, name) in [
            (0xdbu8, "str32"),
            (0xc6, "bin32"),
            (0xdd, "array32"),
            (0xdf, "map32"),
            (0xc9, "ext32"),
        ] {
            let what = format!("{name} of {n}");
            let head = [&[marker][..], &n.to_be_bytes()].concat();
            all_types(&msgpack, &what, &head, &mut report);
            all_types(
                &msgpack,
                &format!("{what} + 64 B"),
                &[head.clone(), vec![0xa1; 64]].concat(),
                &mut report,
            );
            // A map of one entry whose key and value both declare the length; an array of such arrays.
            let nested = [&[0x81u8][..], &head, &head].concat();
            all_types(&msgpack, &format!("fixmap {{{what}: {what}}}"), &nested, &mut report);
            let deep = [&[0xdd][..], &n.to_be_bytes(), &head, &head, &head].concat();
            all_types(&msgpack, &format!("array32 of {n} x {what}"), &deep, &mut report);
        }
    }

    for depth in [300usize, 5_000, 100_000] {
        let what = format!("{depth} nested fixarrays");
        all_types(&msgpack, &what, &vec![0x91; depth], &mut report);
        let huge = [&[0xddu8][..], &u32::MAX.to_be_bytes()].concat();
        all_types(
            &msgpack,
            &format!("{depth} nested array32 of 4 GiB"),
            &huge.repeat(depth),
            &mut report,
        );
    }

    let json = Bucket::builder(dir.path().join("json"))
        .backend(JsonBackend::new())
        .build()
        .expect("bucket");
    forged_valid_entry_reads_back(&json);
    // JSON declares no lengths: the hostile shapes are depth and unterminated runs.
    all_types(&json, "100k nested arrays", &vec![b'['; 100_000], &mut report);
    all_types(&json, "100k nested objects", &b"{\"a\":".repeat(20_000), &mut report);
    all_types(
        &json,
        "unterminated 64 KiB string",
        &[&b"\""[..], &vec![b'a'; 64 << 10]].concat(),
        &mut report,
    );
    all_types(&json, "100k-digit number", &vec![b'9'; 100_000], &mut report);

    println!(
        "hostile files: {} crafted reads, all decode errors; worst peak {} B ({})",
        report.cases, report.worst_peak, report.worst_case
    );
}
