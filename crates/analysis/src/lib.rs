//! joulebench's analysis: energy from power readings or counters ([`energy`]), whether a
//! window's readings can be trusted ([`validity`]) and the statistics of repeated
//! measurements and comparisons ([`stats`]).
//!
//! A crate of its own so that it depends on nothing of the rig above it — no engine, sensor or
//! command line — and its tests build and run without compiling TensorFlow Lite or libtorch:
//! `cargo test -p joulebench-analysis`.

pub mod energy;
pub mod stats;
pub mod validity;

/// How many cases a property test runs: `PROPTEST_CASES` when set, else `default`.
#[cfg(test)]
pub(crate) fn proptest_config(default: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    proptest::test_runner::Config {
        cases,
        // A failing case is kept in the test's output (minimal input printed), not in files
        // beside the sources.
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
