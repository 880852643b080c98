//! The float backend through the binary (built with the `torch` feature; `make test` always
//! builds it). CUDA parts run only where a GPU is present.
#![cfg(feature = "torch")]

use crate::common::*;

#[test]
fn torch_on_the_cpu_agrees_with_the_int8_model() {
    ensure_models();
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(
        r#"
name = "int8-and-float"
idle_baseline_s = 0.3
[protocol]
settle_s = 0.1
runs = 20
[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "grace_hopper.bmp"
[[backends]]
kind = "torch"
model = "mobilenet_v2_1.0_224_quant"
image = "grace_hopper.bmp"
device = "cpu"
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1
max_current_a = 3.2
"#,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = read_csv(&out_dir.join("summary.csv"));
    assert_eq!(summary.len(), 2);
    let torch = &summary[1];
    assert_eq!(
        (torch["backend"].as_str(), torch["engine"].as_str()),
        ("torch", "torch")
    );
    assert!(
        torch["accelerator"].contains("cpu"),
        "{}",
        torch["accelerator"]
    );
    for row in &summary {
        assert_eq!(row["top1_label"], "military uniform");
        assert_eq!(row["top1_expected"], "military uniform");
        assert_eq!(row["top1_agrees"], "true");
        assert_eq!(row["status"], "ok");
    }
}

#[test]
fn offline_scenario_counts_batches_of_images() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = run(&[
        "run",
        "--backend",
        "torch",
        "--device",
        "cpu",
        "--scenario",
        "offline",
        "--batch",
        "4",
        "--runs",
        "5",
        "--settle",
        "0",
        "--out",
        s(&out_dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let row = &read_csv(&out_dir.join("summary.csv"))[0];
    assert_eq!(row["scenario"], "offline");
    assert_eq!(
        (
            row["batch"].as_str(),
            row["runs"].as_str(),
            row["inferences"].as_str()
        ),
        ("4", "5", "20")
    );
    assert_eq!(row["top1_label"], "chickadee");
    assert_eq!(read_csv(&out_dir.join("latency.csv")).len(), 5);
}

#[test]
fn batch_needs_the_offline_scenario() {
    let out = run(&["run", "--backend", "torch", "--batch", "8"]);
    assert_one_line_error(&out, "needs protocol.scenario = \"offline\"");
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    ensure_models();
    // No GPU visible to the run, whether or not this machine has one.
    let out = {
        let _machine = one_run_at_a_time();
        joulebench()
            .env("CUDA_VISIBLE_DEVICES", "")
            .args([
                "run",
                "--backend",
                "torch",
                "--device",
                "cuda:0",
                "--runs",
                "1",
            ])
            .output()
            .unwrap()
    };
    assert_one_line_error(&out, "CUDA device cuda:0 is not available");
}

/// `--batch 1,2,4` runs the backend once per batch and prints inferences per joule by batch,
/// the most efficient marked; summary.csv holds the curve's rows.
#[test]
fn a_batch_list_sweeps_and_prints_the_curve() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = run(&[
        "run",
        "--backend",
        "torch",
        "--scenario",
        "offline",
        "--batch",
        "1,2,4",
        "--runs",
        "5",
        "--settle",
        "0",
        "--out",
        s(&out_dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_csv(&out_dir.join("summary.csv"));
    let batches: Vec<&str> = rows.iter().map(|r| r["batch"].as_str()).collect();
    assert_eq!(batches, ["1", "2", "4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let curve: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("inferences per joule by batch: torch"))
        .skip(2)
        .take(3)
        .collect();
    assert_eq!(curve.len(), 3, "{stdout}");
    assert_eq!(
        curve
            .iter()
            .filter(|l| l.ends_with("<- most efficient"))
            .count(),
        1,
        "{stdout}"
    );
    for (line, batch) in curve.iter().zip(["1", "2", "4"]) {
        assert!(line.starts_with(&format!("{batch} ")), "{stdout}");
    }
    // A list needs the offline scenario too (its batches above 1 do).
    let out = run(&["run", "--backend", "torch", "--batch", "1,8"]);
    assert_one_line_error(&out, "batch 8 needs protocol.scenario = \"offline\"");
}

/// `--open-only` opens each backend as a run would, says what it runs on, and measures
/// nothing: no run folder.
#[test]
fn open_only_opens_every_backend_and_measures_nothing() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = run(&[
        "run",
        "--backend",
        "torch",
        "--scenario",
        "offline",
        "--batch",
        "1,3",
        "--open-only",
        "--out",
        s(&out_dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, batch) in lines.iter().zip([1, 3]) {
        assert!(
            line.starts_with(&format!("backend {}: torch libtorch ", batch / 2))
                && line.contains(&format!(" on cpu fp32, batch {batch}, opened in ")),
            "{stdout}"
        );
    }
    assert!(!out_dir.exists());
}
