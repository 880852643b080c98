//! joulebench's power sensors, the threads that sample them, and the run clock they are
//! stamped on: the INA219 driver and its register-level model, RAPL, hwmon, a Jetson's
//! INA3221, a Raspberry Pi 5's PMIC, NVML and nominal figures ([`sensor`]), the sampler ([`sampler`]) and the clock and
//! phase log ([`clock`]). Each sensor kind's rig-file table lives with its kind.
//!
//! A crate of its own so that it depends on nothing of the rig above it — no engine, backend
//! or command line — and its tests build and run without compiling TensorFlow Lite or
//! libtorch: `cargo test -p joulebench-sensors`. Rows leave the sampler through a sink trait
//! ([`sampler::SampleSink`]) that the run's writer implements.

pub mod clock;
pub mod sampler;
pub mod sensor;

#[cfg(test)]
pub(crate) use joulebench_test_support::proptest_config;
