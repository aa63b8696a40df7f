//! The entry parser and every backend's decoder on arbitrary bytes (see `bucketcache_suite::fuzz`).
//!
//! `cargo +nightly fuzz run decode_entry -- -max_total_time=600 -malloc_limit_mb=16`: a single allocation over
//! 16 MiB is reported as a crash, which checks that decoding is bounded by the input's size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bucketcache_suite::fuzz::decode_everything(data);
});
