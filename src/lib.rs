//! joulebench: how much useful ML inference a machine does per joule.
//!
//! Data flows one way, and no module imports one that imports it back
//! (`tests/architecture.rs` reads the sources and fails on a cycle):
//!
//! - the rig file ([`rig`], each sensor's and backend's own keys with its kind) and the
//!   models it names ([`models`]);
//! - the run: the [`runner`] drives a [`backend`] through the [`protocol`], reading the
//!   [`machine`] state at each timed window's edges, while the [`sampler`] reads the
//!   [`sensor`]s on the [`clock`]; rows go out through the sink traits they declare
//!   ([`sampler::SampleSink`], [`protocol::LatencySink`], [`runner::Stream`]), which the
//!   writer in [`output::stream`] implements;
//! - the run's raw [`record`];
//! - analysis: [`energy`], [`validity`], [`stats`], [`summary`], [`aggregate`], [`settled`];
//! - results: a typed, versioned record ([`results`]) in run-folder files ([`output`]), which
//!   everything downstream reads back through [`results`];
//! - presentation: the table, [`export`]s, [`compare`], [`report`], [`soak`], [`bench`];
//! - the command line on top ([`cli`]).

pub mod aggregate;
pub mod atomic;
pub mod backend;
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod compare;
pub mod environment;
pub mod export;
pub mod input;
pub mod machine;
pub mod models;
pub mod output;
pub mod plan;
pub mod project;
pub mod protocol;
pub mod ranging;
pub mod record;
pub mod references;
pub mod report;
pub mod results;
pub mod rig;
pub mod runner;
pub mod settled;
pub mod signals;
pub mod soak;
pub mod summary;

/// Energy, validity and statistics live in their own crate, which depends on nothing here.
pub use joulebench_analysis::{energy, stats, validity};
/// So do the sensors, their sampler and the run clock.
pub use joulebench_sensors::{clock, sampler};

/// The sensors ([`joulebench_sensors::sensor`]), and choosing this machine's meters for a rig
/// ([`sensor::detect`]), which needs the rig.
pub mod sensor {
    pub use joulebench_sensors::sensor::*;
    pub mod detect;
}

/// Where set-up keeps what it builds and installs outside the clone (cargo target, Python
/// venv): `$JOULEBENCH_CACHE`, else `~/.cache/joulebench`.
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os(environment::CACHE)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            std::path::PathBuf::from(home).join(".cache/joulebench")
        })
}

/// Tells whoever runs the tests that a test could not run here, and why (one function for the
/// whole workspace).
#[doc(hidden)]
pub use joulebench_sensors::skip_test;

/// How many cases a property test runs: `PROPTEST_CASES` when set (for longer runs, e.g.
/// `PROPTEST_CASES=10000 cargo test --lib prop_`), else `default`, kept small so that
/// `make test` stays fast on a 2-core machine.
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
