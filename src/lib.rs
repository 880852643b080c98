//! joulebench: how much useful ML inference a machine does per joule.
//!
//! Data flows one way; the modules below are declared in its order, and no module imports one
//! of a later stage or one that imports it back (`tests/architecture.rs` reads the sources
//! and fails on either, naming the import):
//!
//! - foundations every stage uses: files written whole ([`atomic`]), the environment, the
//!   project's own files, images and labels ([`input`]), the [`models`], the [`machine`];
//! - the rig file ([`rig`]; each backend's keys with its kind in [`backend::spec`], each
//!   sensor's in its [`sensor`] module);
//! - the [`plan`]: the rig with the command line's settings, validated, and this machine's
//!   meters chosen ([`sensor::detect`]);
//! - the run: the [`runner`] drives a [`backend`] through the [`protocol`], reading the
//!   [`machine`] state at each timed window's edges, while the [`sampler`] reads the
//!   [`sensor`]s on the [`clock`]; the [`ranging`] pass; rows go out through the sink traits
//!   they declare ([`sampler::SampleSink`], [`protocol::LatencySink`], [`runner::Stream`]),
//!   which the writer in [`output::stream`] implements; the run's raw [`record`];
//! - the run folder's rows: a typed, versioned record ([`results`]) that everything
//!   downstream reads back;
//! - analysis: [`energy`], [`validity`], [`stats`], [`summary`], [`aggregate`], [`settled`];
//! - presentation: run-folder files and the table ([`output`]), [`export`]s, [`compare`],
//!   [`report`];
//! - the commands: [`cli`] on top, and the commands' own work: a plan measured into a run
//!   folder ([`session`], for `run` and `soak`), [`bench`](mod@bench), [`soak`], [`calibrate`].

// Foundations.
pub mod atomic;
pub mod environment;
pub mod input;
pub mod machine;
pub mod models;
pub mod project;
pub mod references;
pub mod signals;
// The rig file, and the plan.
pub mod plan;
pub mod rig;
// The run.
pub mod backend;
pub mod protocol;
pub mod ranging;
pub mod record;
pub mod runner;
// The run folder's rows.
pub mod results;
// Analysis.
pub mod aggregate;
pub mod settled;
pub mod summary;
// Presentation.
pub mod compare;
pub mod export;
pub mod output;
pub mod report;
// The commands.
pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod session;
pub mod soak;

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

#[cfg(test)]
pub(crate) use joulebench_test_support::proptest_config;
