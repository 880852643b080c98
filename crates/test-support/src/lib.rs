//! What the tests of every crate of the workspace share, written once. A dev-dependency only:
//! nothing here reaches a binary.

/// How many cases a property test runs: `PROPTEST_CASES` when set (for longer runs, e.g.
/// `PROPTEST_CASES=10000 cargo test --lib prop_`), else `default`, kept small so that
/// `make test` stays fast on a 2-core machine.
pub fn proptest_config(default: u32) -> proptest::test_runner::Config {
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
