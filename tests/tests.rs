//! The integration tests, in one binary (linked once, as ripgrep's): a module per topic, each
//! running the built binary or the library as a user would, `common` their shared helpers.
//! `cargo test --test integration end_to_end::` runs one topic.

mod common;

mod any_model;
mod architecture;
mod bad_input;
mod compare_scipy;
mod crash_safety;
mod docs;
mod end_to_end;
mod energy_accuracy;
mod report;
mod rpi_pmic;
mod shipped_rigs;
mod signals;
mod soak;
mod sysfs_sensors;
mod top1;
mod torch_backend;
