//! What is checked before measuring (the run folder, the engine), and how SIGINT, SIGTERM and
//! SIGHUP end a run: in every phase the files hold what was measured, marked `interrupted`,
//! and the exit status is 128 + the signal's number.

use std::io::{BufRead, BufReader};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

/// A run of the binary in the background, its stderr read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Running {
    fn start(rig: &Path, out: &Path) -> Self {
        let mut child = joulebench()
            .args(["run", "--rig", s(rig), "--out", s(out)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`: the phase the run has reached.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let found = line.contains(needle);
                self.stderr.push(line);
                if found {
                    return;
                }
            }
        }
        panic!("no {needle:?} on stderr: {:?}", self.stderr);
    }

    /// Waits until the process catches SIGINT, SIGTERM and SIGHUP (its handlers are installed:
    /// `SigCgt` in /proc), so a signal sent now reaches them, not the default action.
    fn wait_for_handlers(&self) {
        let mask =
            (1u64 << (libc::SIGINT - 1)) | (1 << (libc::SIGTERM - 1)) | (1 << (libc::SIGHUP - 1));
        let status = format!("/proc/{}/status", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let caught = std::fs::read_to_string(&status)
                .ok()
                .and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("SigCgt:"))?.to_string();
                    u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
                })
                .unwrap_or(0);
            if caught & mask == mask {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("the signal handlers were never installed");
    }

    fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {signal}");
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.stderr.extend(self.lines.iter());
        (status, self.stderr.join("\n"))
    }
}

/// The sim rig with these settings changed (`key = value` lines replaced by key).
fn rig_with(dir: &Path, changes: &[(&str, &str)]) -> PathBuf {
    let mut text = sim_rig("");
    for (key, value) in changes {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("no {key} in the sim rig"))
            .to_string();
        text = text.replace(&line, &format!("{key} = {value}"));
    }
    write_rig(dir, "rig", &text)
}

/// The run ended by `signal` (`code` = 128 + its number), without a panic, and its folder is
/// whole: every summary row `interrupted`, `run.json` readable, latency.csv a row per timed
/// classification. Returns the summary.
fn assert_interrupted(
    status: ExitStatus,
    stderr: &str,
    code: i32,
    out: &Path,
) -> Vec<std::collections::HashMap<String, String>> {
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let summary = read_csv(&out.join("summary.csv"));
    assert!(!summary.is_empty(), "no summary rows; {stderr}");
    assert!(
        summary.iter().all(|r| r["status"] == "interrupted"),
        "{summary:?}"
    );
    let runs: usize = summary
        .iter()
        .map(|r| r["runs"].parse::<usize>().unwrap())
        .sum();
    assert_eq!(read_csv(&out.join("latency.csv")).len(), runs);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert!(json["schema_version"].is_number());
    // The run's lock is released and gone.
    assert!(!out.join(".lock").exists());
    summary
}

#[test]
fn sigterm_during_the_idle_baseline_ends_it_with_143() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = rig_with(tmp.path(), &[("idle_baseline_s", "60.0")]);
    let out = tmp.path().join("run");
    let _machine = one_run_at_a_time();
    let mut run = Running::start(&rig, &out);
    // Printed once the models are loaded and the sensors open: the idle baseline follows.
    run.wait_for("running rig");
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();
    // The 60 s baseline was cut short, not waited out.
    assert!(signalled.elapsed() < Duration::from_secs(30), "{stderr}");
    let summary = assert_interrupted(status, &stderr, 143, &out);
    assert!(summary.iter().all(|r| r["runs"] == "0"), "{summary:?}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
}

#[test]
fn sighup_during_the_timed_run_keeps_what_was_measured_with_129() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    // A timed run of ten minutes, sized in time: signalled long before it ends on any machine.
    let rig = rig_with(tmp.path(), &[("min_duration_s", "600.0")]);
    let out = tmp.path().join("run");
    let _machine = one_run_at_a_time();
    let mut run = Running::start(&rig, &out);
    run.wait_for("running rig");
    // Once the timed run has streamed classifications, however long this machine takes.
    assert!(
        wait_for_timed_rows(&out),
        "no timed classification streamed"
    );
    run.signal(libc::SIGHUP);
    let (status, stderr) = run.finish();
    let summary = assert_interrupted(status, &stderr, 129, &out);
    let runs: usize = summary[0]["runs"].parse().unwrap();
    assert!(runs > 0, "{summary:?}");
    assert!(stderr.contains("interrupted by SIGHUP"), "{stderr}");
}

#[test]
fn sigint_while_the_models_load_still_writes_the_folder_with_130() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = rig_with(tmp.path(), &[]);
    let out = tmp.path().join("run");
    let _machine = one_run_at_a_time();
    let run = Running::start(&rig, &out);
    // As soon as it can be caught: the run is reading the rig or loading the model.
    run.wait_for_handlers();
    run.signal(libc::SIGINT);
    let (status, stderr) = run.finish();
    let summary = assert_interrupted(status, &stderr, 130, &out);
    assert!(summary.iter().all(|r| r["runs"] == "0"), "{summary:?}");
}

#[test]
fn a_second_sigint_stops_at_once_with_the_files_whole() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    // A timed run of ten minutes, sized in time: signalled long before it ends on any machine.
    let rig = rig_with(tmp.path(), &[("min_duration_s", "600.0")]);
    let out = tmp.path().join("run");
    let _machine = one_run_at_a_time();
    let mut run = Running::start(&rig, &out);
    run.wait_for("running rig");
    assert!(
        wait_for_timed_rows(&out),
        "no timed classification streamed"
    );
    run.signal(libc::SIGINT);
    run.wait_for("SIGINT: stopping");
    run.signal(libc::SIGINT);
    let (status, stderr) = run.finish();
    let summary = assert_interrupted(status, &stderr, 130, &out);
    assert!(summary[0]["runs"].parse::<usize>().unwrap() > 0);
    // The first signal's run may have finished its files before the second arrived; if not,
    // the second waited for them and skipped the rest.
    assert!(
        stderr.contains("SIGINT again: stopping once what was measured is written")
            || stderr.contains("interrupted by SIGINT"),
        "{stderr}"
    );
}

#[test]
fn a_second_sigterm_while_loading_stops_at_once_with_nothing_written() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    // The model is a FIFO nothing writes to: loading it lasts until the run is stopped, on a
    // machine of any speed (a real model loads in milliseconds on a fast one).
    let fifo = tmp.path().join("never-written.tflite");
    let path = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let rig = write_rig(
        tmp.path(),
        "rig",
        &sim_rig("").replace(
            &format!("model = \"{}\"", timed_model()),
            &format!("model = \"{}\"", s(&fifo)),
        ),
    );
    let out = tmp.path().join("run");
    let _machine = one_run_at_a_time();
    let mut run = Running::start(&rig, &out);
    run.wait_for_handlers();
    // Both while the model loads. The second only once the first has been caught: two sent
    // before the process runs again are one pending signal to the kernel (seen on a busy
    // 2-core machine: "again" never came).
    run.signal(libc::SIGTERM);
    run.wait_for("SIGTERM: stopping");
    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("SIGTERM again: stopped before measuring began; nothing was written"),
        "{stderr}"
    );
    // Nothing measured, nothing left: not even the folder the run created and claimed.
    assert!(!out.exists());
}

/// Takes the lock a run takes on its folder, as a run in progress holds it.
fn hold_lock(dir: &Path) -> std::fs::File {
    std::fs::create_dir_all(dir).unwrap();
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    // SAFETY: flock on a file descriptor `lock` owns.
    let held = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(held, 0);
    lock
}

#[test]
fn a_folder_another_run_holds_is_refused_before_anything_loads() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = rig_with(tmp.path(), &[]);
    let out = tmp.path().join("run");
    let lock = hold_lock(&out);
    let output = run(&["run", "--rig", s(&rig), "--out", s(&out)]);
    assert_one_line_error(&output, "is in use by another joulebench run");
    assert!(
        !stderr(&output).contains("running rig"),
        "{}",
        stderr(&output)
    );
    // The holder's folder is as it was.
    let entries: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1);
    drop(lock);
}

#[test]
fn a_read_only_out_folder_is_refused_before_anything_loads() {
    use std::os::unix::fs::PermissionsExt;
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = rig_with(tmp.path(), &[]);
    let out = tmp.path().join("ro");
    std::fs::create_dir(&out).unwrap();
    // Read-only to the binary even as root: `joulebench()` binds it by file permissions.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let output = run(&["run", "--rig", s(&rig), "--out", s(&out)]);
    assert_one_line_error(&output, &format!("cannot write to {}", out.display()));
    assert!(
        !stderr(&output).contains("running rig"),
        "{}",
        stderr(&output)
    );
}

/// A rig with one tflite backend, its engine left open, no sensors: the engine is the test.
const OPEN_ENGINE_RIG: &str = r#"
name = "engine-open"
idle_baseline_s = 0.0
[protocol]
warmup = 1
settle_s = 0.0
runs = 3
[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"
"#;

const MISSING_LITERT: &str = "/nonexistent/libLiteRt.so";

#[test]
fn a_missing_litert_falls_back_to_tflite_and_says_so() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = write_rig(tmp.path(), "rig", OPEN_ENGINE_RIG);
    let out = tmp.path().join("run");
    let output = {
        let _machine = one_run_at_a_time();
        joulebench()
            .args(["run", "--rig", s(&rig), "--out", s(&out)])
            .env("JOULEBENCH_LITERT_LIB", MISSING_LITERT)
            .output()
            .unwrap()
    };
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("joulebench: backend 0: LiteRT library not found"))
        .unwrap_or_else(|| panic!("no fallback line: {err}"));
    assert!(
        line.contains(MISSING_LITERT) && line.contains("running TF Lite 1.15.5 instead"),
        "{line}"
    );
    let summary = read_csv(&out.join("summary.csv"));
    assert_eq!(summary[0]["engine"], "tflite");
    assert_eq!(summary[0]["engine_version"], "1.15.5");
    assert!(
        summary[0]["engine_note"].contains(MISSING_LITERT),
        "{summary:?}"
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("(engine of backend 0: LiteRT library not found"),
        "{table}"
    );
    // A summary rebuilt from the folder keeps the note.
    let rebuilt = joulebench().args(["summarize", s(&out)]).output().unwrap();
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    let after = read_csv(&out.join("summary.csv"));
    assert_eq!(after[0]["engine_note"], summary[0]["engine_note"]);
}

#[test]
fn litert_insisted_on_but_missing_is_a_one_line_error() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let open = write_rig(tmp.path(), "open", OPEN_ENGINE_RIG);
    let insists = write_rig(
        tmp.path(),
        "insists",
        &OPEN_ENGINE_RIG.replace(
            "kind = \"tflite\"",
            "kind = \"tflite\"\nengine = \"litert\"",
        ),
    );
    for (args, out) in [
        (vec!["--rig", s(&open), "--engine", "litert"], "a"),
        (vec!["--rig", s(&insists)], "b"),
    ] {
        let out = tmp.path().join(out);
        let output = {
            let _machine = one_run_at_a_time();
            joulebench()
                .arg("run")
                .args(&args)
                .args(["--out", s(&out)])
                .env("JOULEBENCH_LITERT_LIB", MISSING_LITERT)
                .output()
                .unwrap()
        };
        assert_one_line_error(
            &output,
            &format!("LiteRT library not found (looked in {MISSING_LITERT})"),
        );
        // Refused before measuring: the folder the run created is gone again.
        assert!(!out.exists());
    }
}
