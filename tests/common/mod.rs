//! Helpers shared by the integration tests: running the real binary from the repository root
//! (where `rigs/` and `models/` are) with the model files in place.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, Once};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Makes sure `models/` holds the files, copying them from `../shared/models` as `make test`
/// does, so `cargo test` alone works too.
pub fn ensure_models() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let shared = repo().join("../shared/models");
        let out = joulebench()
            .args(["models", "fetch", "--from"])
            .arg(&shared)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "models fetch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

pub fn joulebench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_joulebench"));
    cmd.current_dir(repo());
    cmd
}

/// Holds the machine for one run of the binary at a time. The test harness runs tests in
/// parallel, and a measuring run on a 2-core machine needs one core for the inferences and
/// one for its sampler: two runs at once would starve each other's samplers, and the
/// validity checks would rightly call their windows invalid.
pub fn one_run_at_a_time() -> HeldMachine {
    static MACHINE: Mutex<()> = Mutex::new(());
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The machine as [`one_run_at_a_time`] hands it out: a test that holds it for longer than
/// one run (its own load beside the run, say) passes it to the `_holding` helpers.
pub type HeldMachine = MutexGuard<'static, ()>;

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    run_holding(&one_run_at_a_time(), args)
}

/// [`run`] on a machine the caller already holds.
///
/// A run whose window the rig called invalid because its sampler got too few readings (some,
/// but fewer than 95 % of the sensor's rate) is run again after a pause, at most [`ATTEMPTS`]
/// times in all: on a shared 2-core VM the host takes 100 ms of readings now and then, and
/// for minutes at a time 10 % of them (the soak measures such stalls). The rig is right to
/// refuse those windows, but the test is about the pipeline, not about this machine's quiet.
/// Each retry says why on stderr; a run that fails in any other way, or starves every time, is
/// returned as it is.
pub fn run_holding(_machine: &HeldMachine, args: &[&str]) -> Output {
    let mut attempt = 1;
    loop {
        let out = joulebench().args(args).output().unwrap();
        if attempt == ATTEMPTS || !starved(&stderr(&out)) {
            return out;
        }
        eprintln!(
            "RETRY {attempt}/{ATTEMPTS} joulebench {}: {}",
            args.join(" "),
            stderr(&out).lines().last().unwrap_or("")
        );
        // The failed run's folder holds its files; the next run needs it new or empty.
        if let Some(dir) = args.iter().position(|a| *a == "--out").map(|i| args[i + 1]) {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::thread::sleep(RETRY_PAUSE);
        attempt += 1;
    }
}

/// How often [`run_holding`] tries a run whose sampler was starved, and how long it waits
/// before the next try (a stall of the host often lasts seconds).
pub const ATTEMPTS: usize = 4;
pub const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a run's stderr says a window had some fresh readings, but fewer than its sensor's
/// rate requires: most often the machine stalled the sampler (a test's injected sensor fault
/// may too; retrying it only costs time). A sensor that gave none at all is a different
/// failure, never retried.
pub fn starved(text: &str) -> bool {
    text.lines().any(|line| {
        line.match_indices(" fresh readings in ").any(|(i, _)| {
            let count = line[..i].rsplit(' ').next().unwrap_or("");
            count.parse::<usize>().is_ok_and(|n| n > 0) && line[i..].contains("fewer than")
        })
    })
}

/// A path as an argument (temporary folders have UTF-8 names).
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes a rig file into `dir` and returns its path.
pub fn write_rig(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A finished `joulebench run` of a rig given as text: the temporary folder holding the rig
/// file and the run folder (`dir.path()/run`; keep `dir` bound while reading it: dropping it
/// deletes the folder), and the process output.
pub struct RigRun {
    pub dir: tempfile::TempDir,
    pub out_dir: PathBuf,
    pub output: Output,
}

/// Writes `text` as a rig file and runs it into a new run folder.
pub fn run_rig(text: &str) -> RigRun {
    run_rig_holding(&one_run_at_a_time(), text)
}

/// [`run_rig`] on a machine the caller already holds.
pub fn run_rig_holding(machine: &HeldMachine, text: &str) -> RigRun {
    let dir = tempfile::tempdir().unwrap();
    let rig = write_rig(dir.path(), "rig", text);
    let out_dir = dir.path().join("run");
    let output = run_holding(machine, &["run", "--rig", s(&rig), "--out", s(&out_dir)]);
    RigRun {
        dir,
        out_dir,
        output,
    }
}

/// A small simulated rig: short settle, few runs. Its windows last at least a second: a
/// shorter one on a busy 2-core machine can lose a few percent of its readings to a single
/// scheduling hiccup, and the validity checks would rightly call it invalid.
pub fn sim_rig(extra_sensor_lines: &str) -> String {
    format!(
        r#"
name = "test-sim"
idle_baseline_s = 1.0
[protocol]
warmup = 1
settle_s = 0.1
runs = 20
min_duration_s = 1.0
[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1
max_current_a = 3.2
{extra_sensor_lines}
"#
    )
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The error contract: non-zero exit, one line on stderr starting "joulebench:", no panic.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("joulebench: "), "{err}");
    assert!(last.contains(needle), "expected {needle:?} in {last:?}");
}

pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .map(str::to_string)
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}
