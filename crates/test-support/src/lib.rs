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

mod flatbuffer;
mod standin_model;
pub use standin_model::{standin_model, STANDIN_CLASSES, STANDIN_TOP1};

mod io_model;
pub use io_model::{passthrough_model, passthrough_model_listing_custom_op, Element, IoTensor};

mod privileges;
pub use privileges::{bind_file_permissions, with_file_permissions_binding};

/// Hardware a test needs, or needs absent, that a machine may lack or have: the only reason a
/// test may skip. `.ci/run` counts the skip lines and fails on one that names no hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardware {
    /// The test drives an NVIDIA GPU through CUDA.
    CudaGpu,
    /// The test checks what happens without one, in a process that already sees one.
    NoCudaGpu,
}

impl Hardware {
    /// The tag of a skip line: what this machine lacks, or has.
    pub fn tag(self) -> &'static str {
        match self {
            Hardware::CudaGpu => "no CUDA GPU",
            Hardware::NoCudaGpu => "a CUDA GPU present",
        }
    }
}

/// Tells whoever runs the tests that `test` could not run on this machine's hardware, and why:
/// `SKIP (no CUDA GPU) test: why`, straight to stderr (the harness swallows a passing test's
/// output, and a skip must not look like a pass).
pub fn skip_test(test: &str, hardware: Hardware, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIP ({}) {test}: {why}",
        hardware.tag()
    );
}
