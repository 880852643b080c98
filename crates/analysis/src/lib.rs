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

#[cfg(test)]
pub(crate) use joulebench_test_support::proptest_config;
