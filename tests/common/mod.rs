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

/// The binary under test: cargo's build of it, or where `JOULEBENCH_TEST_BIN` names a copy of
/// that build, the copy. `make test` (scripts/test.sh) makes one, because the install check
/// beside these tests runs `cargo install`, which puts a build without the torch feature at
/// cargo's path.
pub fn joulebench_bin() -> PathBuf {
    std::env::var_os("JOULEBENCH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_joulebench")))
}

/// The binary, run from the repository root, bound by file permissions as an ordinary user
/// is even where the tests run as root (as CI does): a read-only folder is read-only to it.
pub fn joulebench() -> Command {
    let mut cmd = Command::new(joulebench_bin());
    cmd.current_dir(repo());
    joulebench_test_support::bind_file_permissions(&mut cmd);
    cmd
}

/// Holds the machine for one run of the binary at a time. The test harness runs tests in
/// parallel; two measuring runs at once would share the cores and halve each other's FPS,
/// which the figures would then describe. Nothing here depends on it for validity: the
/// sampler sleeps between reads and keeps its windows valid with every core busy (see
/// `full_load_keeps_every_shipped_simulated_rig_valid`).
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

/// [`run`] on a machine the caller already holds. Once: a run whose sampler the machine
/// starved is a bug of the rig, not of the machine, and fails its test.
pub fn run_holding(_machine: &HeldMachine, args: &[&str]) -> Output {
    joulebench().args(args).output().unwrap()
}

/// Waits until a run streaming into `out_dir` has written its first timed classifications to
/// `latency.csv`, however long this machine takes to load the model and get there (at most
/// 120 s); false if it never did.
pub fn wait_for_timed_rows(out_dir: &Path) -> bool {
    let rows = || {
        std::fs::read_to_string(out_dir.join("latency.csv"))
            .map_or(0, |text| text.lines().count().saturating_sub(1))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while rows() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    rows() > 0
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

/// MobileNetV2 (int8): the model of every test that checks what the model predicts.
pub const MOBILENET: &str = "mobilenet_v2_1.0_224_quant";

/// The model a test classifies with when it checks how a run behaves, not what it predicts:
/// MobileNetV2, or with `JOULEBENCH_TEST_MODEL=standin` a generated stand-in with the same
/// input and output that classifies in microseconds
/// ([`joulebench_test_support::standin_model`]). The stand-in plays a machine far faster than
/// this one: a test that assumes how long a phase sized in inferences lasts fails on it
/// (`make test` sets it; `make sweep` also runs every test on MobileNetV2 with the CPU shared:
/// docs/src/contributing.md, The speed sweep). As a rig's `model = ...` value.
pub fn timed_model() -> String {
    match std::env::var("JOULEBENCH_TEST_MODEL").as_deref() {
        Err(_) | Ok("" | "mobilenet") => MOBILENET.to_string(),
        Ok("standin") => standin_path().to_str().unwrap().to_string(),
        Ok(other) => panic!("JOULEBENCH_TEST_MODEL={other}: expected standin or mobilenet"),
    }
}

/// [`timed_model`] as a backend table's keys: `model = ...`, and for the stand-in its label
/// file ([`standin_labels_path`]), so that its top-1 is reported as MobileNetV2's is.
pub fn timed_model_keys() -> String {
    let model = timed_model();
    if model == MOBILENET {
        format!("model = \"{model}\"")
    } else {
        format!(
            "model = \"{model}\"\nlabels = \"{}\"",
            standin_labels_path().display()
        )
    }
}

/// The stand-in model as a file, written once per test binary (atomically: test binaries
/// may run at once).
pub fn standin_path() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        write_once(
            "standin_mobilenet_v2.tflite",
            &joulebench_test_support::standin_model(),
        )
    })
    .clone()
}

/// A label file for the stand-in: `class N` for each of its classes (a classifier's top-1 is
/// reported only with labels), written once per test binary.
pub fn standin_labels_path() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let lines: Vec<String> = (0..joulebench_test_support::STANDIN_CLASSES)
            .map(|class| format!("class {class}\n"))
            .collect();
        write_once("standin_labels.txt", lines.concat().as_bytes())
    })
    .clone()
}

/// `bytes` as file `name` in the test binaries' temporary folder, written atomically: test
/// binaries may run at once.
fn write_once(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    let mut file = tempfile::NamedTempFile::new_in(dir).unwrap();
    use std::io::Write;
    file.write_all(bytes).unwrap();
    file.persist(&path).unwrap();
    path
}

/// A small simulated rig: short settle, few runs. Its windows last at least two seconds: a
/// virtual machine's host can stop the whole guest for 100 ms now and then, which loses the
/// conversions of that stretch, and a window needs 95 % of its readings (the validity check):
/// 100 ms is 5 % of 2 s.
pub fn sim_rig(extra_sensor_lines: &str) -> String {
    sim_rig_with(&timed_model_keys(), "bird.bmp") + extra_sensor_lines + "\n"
}

/// [`sim_rig`] running `model` on `image` (manifest names or paths), its INA219 last.
pub fn sim_rig_running(model: &str, image: &str) -> String {
    sim_rig_with(&format!("model = \"{model}\""), image)
}

/// [`sim_rig`] with its backend's model keys (`model = ...`, and any `labels = ...`) and image.
fn sim_rig_with(model_keys: &str, image: &str) -> String {
    format!(
        r#"
name = "test-sim"
idle_baseline_s = 1.0
[protocol]
warmup = 1
settle_s = 0.1
runs = 20
min_duration_s = 2.0
[[backends]]
kind = "tflite"
{model_keys}
image = "{image}"
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1
max_current_a = 3.2
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
