//! Fuzzing the entry decoder, in CI: random bytes, and valid entries of random values damaged by random mutations
//! (with the checksum recomputed half of the time, as a forger would), fed to the entry parser and to every
//! backend's decoder as several types. Nothing may panic; an undamaged entry must decode to its value.
//!
//! Each case is measured: its peak heap use (a counting global allocator) must stay within the bound
//! `tests/hostile_files.rs` uses for one read (max(64 x the input, 1 MiB) + 64 KiB), and it must finish within
//! [`CASE_TIME_LIMIT`] (generous: a hang, not a slow machine, fails it).
//!
//! `BUCKETCACHE_FUZZ_CASES=N` sets the cases per property (default 1,000); a longer run:
//! `BUCKETCACHE_FUZZ_CASES=200000 cargo test --release --test fuzz_decoder -- --nocapture`.
//! The same target runs under libFuzzer in `fuzz/` (cargo-fuzz, nightly).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bucketcache::entry::{FORMAT_VERSION, HEADER_LEN};

use bucketcache::{Backend, BincodeBackend, JsonBackend, MessagePackBackend};
use bucketcache_suite::forge;
use bucketcache_suite::fuzz::{decode_everything, Shape};
use peak_alloc::PeakAlloc;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The allocator's counters are process-wide: the tests of this file take turns, so a case's peak is its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The longest one case may take (a debug build decodes every input many times over).
const CASE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most one case may allocate for an input of `len` bytes: as for one read in `tests/hostile_files.rs`.
fn alloc_bound(len: usize) -> usize {
    (64 * len).max(1 << 20) + (64 << 10)
}

fn cases() -> u32 {
    std::env::var("BUCKETCACHE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Unit),
        (
            any::<i64>(),
            any::<u8>(),
            any::<f64>().prop_filter("NaN never equals itself", |f| !f.is_nan())
        )
            .prop_map(|(a, b, c)| Shape::Num(a, b, c)),
        (".{0,12}", prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(s, b)| Shape::Text(s, b)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Shape::List),
            prop::collection::btree_map(".{0,6}", inner.clone(), 0..4).prop_map(Shape::Map),
            (prop::option::of(inner), any::<char>()).prop_map(|(c, tag)| Shape::Node {
                child: c.map(Box::new),
                tag
            }),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// Overwrite with a length-like value (0xFF.. or a big varint) where a decoder reads a length.
    Huge(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
            (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(p, b)| Mutation::Insert(p, b)),
            (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
            any::<usize>().prop_map(Mutation::Huge),
        ],
        0..4,
    )
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let len = bytes.len().max(1);
        match m {
            Mutation::Set(p, b) if !bytes.is_empty() => bytes[p % len] = *b,
            Mutation::Insert(p, b) => {
                let at = p % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(p, n) if !bytes.is_empty() => {
                let at = p % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Huge(p) => {
                let at = p % (bytes.len() + 1);
                let huge: &[u8] = match p % 4 {
                    0 => &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                    1 => &[253, 0, 0, 0, 0, 1, 0, 0, 0],
                    2 => &[0xdd, 0xFF, 0xFF, 0xFF, 0xFF],
                    _ => &[0xdb, 0x7F, 0xFF, 0xFF, 0xFF],
                };
                bytes.splice(at..at, huge.iter().copied());
            }
            _ => {}
        }
    }
}

fn encode<B: Backend>(backend: &B, value: &Shape) -> Vec<u8> {
    let mut out = Vec::new();
    backend.encode(value, &mut out).expect("encodes");
    out
}

/// Runs `test` on `cases()` inputs from `strategy`. `test` returns its input's length in bytes and the number of
/// successful decodes; each case's peak heap use and time are checked against their bounds.
fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> (usize, usize)) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let cases = cases();
    let decoded = AtomicUsize::new(0);
    let worst = Mutex::new((0usize, 0usize, Duration::ZERO));
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |input| {
            let before = ALLOC.current_usage();
            ALLOC.reset_peak_usage();
            let case_started = Instant::now();
            let (len, n) = test(input);
            let elapsed = case_started.elapsed();
            let peak = ALLOC.peak_usage().saturating_sub(before);
            prop_assert!(
                peak <= alloc_bound(len),
                "a {len}-byte input made the decoders allocate {peak} bytes (bound {})",
                alloc_bound(len)
            );
            prop_assert!(elapsed <= CASE_TIME_LIMIT, "a {len}-byte input took {elapsed:?}");
            let mut w = worst.lock().unwrap_or_else(|p| p.into_inner());
            *w = (w.0.max(peak), w.1.max(len), w.2.max(elapsed));
            decoded.fetch_add(n, Ordering::Relaxed);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (peak, len, slowest) = *worst.lock().unwrap_or_else(|p| p.into_inner());
    println!(
        "fuzz decoder: {name}: {cases} cases in {:?}, {} successful decodes, no panic; largest input {len} B, \
         worst peak {peak} B, slowest case {slowest:?}",
        started.elapsed(),
        decoded.load(Ordering::Relaxed)
    );
}

#[test]
fn random_bytes_never_panic_the_decoders() {
    run("random bytes", prop::collection::vec(any::<u8>(), 0..600), |bytes| {
        (bytes.len(), decode_everything(&bytes))
    });
    run(
        "random bytes behind a valid header",
        (prop::collection::vec(any::<u8>(), 0..400), 0usize..3),
        |(payload, b)| {
            let id = ["bincode2", "json", "msgpack"][b];
            let file = forge::entry(FORMAT_VERSION, &[7; 32], id, &payload);
            (file.len(), decode_everything(&file))
        },
    );
}

#[test]
fn damaged_entries_of_random_values_never_panic_and_intact_ones_round_trip() {
    run(
        "mutated entries",
        (shape(), 0usize..3, mutations(), any::<bool>()),
        |(value, b, muts, reseal)| {
            let (id, payload) = match b {
                0 => ("bincode2", encode(&BincodeBackend::new(), &value)),
                1 => ("json", encode(&JsonBackend::new(), &value)),
                _ => ("msgpack", encode(&MessagePackBackend::new(), &value)),
            };
            let mut file = forge::entry(FORMAT_VERSION, &[7; 32], id, &payload);
            let intact = file.clone();
            apply(&mut file, &muts);
            if reseal && file.len() >= HEADER_LEN {
                forge::seal(&mut file);
            }
            if file == intact {
                // Undamaged: it verifies and decodes to exactly the value.
                let (_, at) = bucketcache::entry::verify(&file).expect("intact entry verifies");
                let back: Shape = match b {
                    0 => BincodeBackend::new().decode(&file[at..]),
                    1 => JsonBackend::new().decode(&file[at..]),
                    _ => MessagePackBackend::new().decode(&file[at..]),
                }
                .expect("intact payload decodes");
                assert_eq!(back, value);
            } else if !reseal {
                assert!(
                    bucketcache::entry::verify(&file).is_err(),
                    "damage without a new checksum is caught"
                );
            }
            (file.len(), decode_everything(&file))
        },
    );
}
