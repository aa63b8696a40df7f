//! Compile errors of `#[bucket_cache]` (one file per error under `tests/ui/fail`, with its `.stderr`), and hygiene
//! cases that must compile and run (`tests/ui/pass`).
//!
//! Regenerate the goldens after a deliberate change with `TRYBUILD=overwrite cargo test --test attr_ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
