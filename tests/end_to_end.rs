//! The binary, end to end: the default rig, and every kind of bad input.

use crate::common::*;

#[test]
fn default_rig_writes_four_files_with_250_timed_classifications() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    // The simulated rig the default (rigs/local.toml) falls back to on a machine without
    // readable meters: named, so its numbers hold wherever the test runs.
    let out = run(&["run", "--rig", "rigs/sim-cpu.toml", "--out", s(&out_dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("chickadee (20)"), "{stdout}");
    assert!(stdout.contains("simulated"), "{stdout}");

    let latency = read_csv(&out_dir.join("latency.csv"));
    assert_eq!(latency.len(), 250);
    assert!(latency
        .iter()
        .all(|r| r["latency_ms"].parse::<f64>().unwrap() > 0.0));

    let power = read_csv(&out_dir.join("power.csv"));
    assert!(power.iter().all(|r| r["simulated"] == "true"));
    // Every phase long enough to hold a conversion has readings (the warm-up's one
    // classification is shorter than the default INA219's 34.6 ms conversion).
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let period = json["sensors"][0]["update_period_s"].as_f64().unwrap();
    for span in json["phases"].as_array().unwrap() {
        let phase = span["phase"].as_str().unwrap();
        let length = span["end"].as_f64().unwrap() - span["start"].as_f64().unwrap();
        if length >= 2.0 * period {
            assert!(
                power.iter().any(|r| r["phase"] == phase),
                "no {phase} samples in {length} s"
            );
        }
    }

    let summary = read_csv(&out_dir.join("summary.csv"));
    assert_eq!(summary.len(), 1);
    let row = &summary[0];
    for column in [
        "rig",
        "backend",
        "engine",
        "engine_version",
        "model",
        "model_sha256",
        "threads",
        "runs",
        "fps",
        "latency_ms_mean",
        "latency_ms_median",
        "latency_ms_p90",
        "latency_ms_p99",
        "sensor",
        "rail",
        "simulated",
        "idle_watts",
        "mean_watts",
        "joules_per_inference",
        "inferences_per_joule",
        "net_inferences_per_joule",
        "samples",
        "sample_rate_hz",
        "coverage",
        "top1_label",
        "status",
    ] {
        assert!(row.contains_key(column), "summary.csv lacks {column}");
    }
    assert_eq!(row["rig"], "sim-cpu");
    assert_eq!(row["runs"], "250");
    assert_eq!(row["top1_label"], "chickadee");
    assert_eq!(row["simulated"], "true");
    assert_eq!(row["status"], "ok");
    // The default rig's simulated bus is a Pi's (i2c-bcm2835) at 100 kHz: the driver reads on
    // it, the sampler catches the chip's conversions, and the windows are valid. What "all of
    // them" means comes from this run: its timed window and the sensor's period, whatever
    // this machine's speed made of them.
    let coverage: f64 = row["coverage"].parse().unwrap();
    let samples: usize = row["samples"].parse().unwrap();
    let expected: usize = row["expected_samples"].parse().unwrap();
    assert!(coverage >= 0.95, "coverage {coverage}");
    let timed = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "timed")
        .unwrap();
    let window = timed["end"].as_f64().unwrap() - timed["start"].as_f64().unwrap();
    let fit = window / period;
    assert_eq!(
        expected,
        (0.95 * fit + 1e-9).floor() as usize,
        "{window} s / {period} s"
    );
    // Every conversion in the window is read once: at most one more or less at each edge.
    assert!(
        samples >= expected && samples as f64 <= fit + 2.0,
        "{samples} of {fit:.1} conversions in the window"
    );
    // What the sampler cost over that window, as a share of a core, is in the summary.
    let sampler_cpu: f64 = row["sampler_cpu_pct"].parse().unwrap();
    assert!(sampler_cpu > 0.0 && sampler_cpu < 100.0, "{sampler_cpu}");
    assert!(row["idle_coverage"].parse::<f64>().unwrap() >= 0.95);
    assert_eq!(
        row["model_sha256"],
        "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
    );
    // The simulated board draws about 2 W idle and 3.8 W busy (rigs/sim-cpu.toml).
    let idle: f64 = row["idle_watts"].parse().unwrap();
    let busy: f64 = row["mean_watts"].parse().unwrap();
    assert!((1.9..2.2).contains(&idle), "idle {idle}");
    assert!((3.5..4.0).contains(&busy), "busy {busy}");
    let fps: f64 = row["fps"].parse().unwrap();
    let per_joule: f64 = row["inferences_per_joule"].parse().unwrap();
    assert!(
        (per_joule - fps / busy).abs() / per_joule < 0.01,
        "{per_joule} vs {fps}/{busy}"
    );
    let net: f64 = row["net_inferences_per_joule"].parse().unwrap();
    assert!((net - fps / (busy - idle)).abs() / net < 0.02, "{net}");

    assert!(json["rig_file"]
        .as_str()
        .unwrap()
        .contains("name = \"sim-cpu\""));
    assert!(!json["system"]["cpu"].as_str().unwrap().is_empty());
    let detail = json["sensors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("on a bcm2835 bus at 100 kHz"), "{detail}");
    // The default engine is LiteRT (installed by `make setup`), with XNNPACK.
    assert_eq!(row["engine"], "litert");
    assert_eq!(row["engine_version"], "2.3.0");
    assert_eq!(row["accelerator"], "xnnpack");
    assert_eq!(json["engines"][0]["engine"], "litert");
    let phases: Vec<&str> = json["phase_energy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["idle-baseline", "warmup", "settle", "timed"]);
    let timed = &json["phase_energy"][3];
    assert!((timed["mean_watts"].as_f64().unwrap() - busy).abs() < 1e-9);
}

/// The stand-in of the run-timing tests (`timed_model` in tests/common) is a real TF Lite model
/// with MobileNetV2's input and output: both engines run it, and rank first the class it was
/// built to rank first, named by the label file `--labels` gives. (`make sweep` prints how
/// much faster than MobileNetV2 it classifies.)
#[test]
fn the_standin_model_runs_on_both_engines_and_ranks_its_class_first() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let labels = standin_labels_path();
    for engine in ["litert", "tflite"] {
        let out_dir = tmp.path().join(engine);
        let out = run_standin(
            &out_dir,
            &["--labels", s(&labels), "--engine", engine, "--runs", "50"],
        );
        assert!(out.status.success(), "{engine}: {}", stderr(&out));
        let row = &read_csv(&out_dir.join("summary.csv"))[0];
        assert_eq!(row["engine"], engine);
        // At least the runs asked for: sim-cpu's sensor sets a least duration too.
        assert!(row["runs"].parse::<usize>().unwrap() >= 50);
        let top1 = joulebench_test_support::STANDIN_TOP1;
        assert_eq!(
            (row["top1_class"].as_str(), row["top1_label"].as_str()),
            (top1.to_string().as_str(), format!("class {top1}").as_str()),
            "{engine}"
        );
    }
}

/// `joulebench run --rig sim-cpu` on the stand-in into `out_dir`, with `flags` besides.
fn run_standin(out_dir: &std::path::Path, flags: &[&str]) -> std::process::Output {
    let standin = standin_path();
    let mut args = vec!["run", "--rig", "sim-cpu", "--model", s(&standin)];
    args.extend_from_slice(flags);
    args.extend(["--out", s(out_dir)]);
    run(&args)
}

/// A classifier without a label file: its scores are not ranked, so no top-1 is reported or
/// checked, and the table says why and what it was fed.
#[test]
fn a_classifier_without_labels_reports_no_prediction() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = run_standin(&out_dir, &["--runs", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "(backend 0 has no label file, so no prediction was checked; fed input \
             [1, 224, 224, 3] uint8: the image)"
        ),
        "{stdout}"
    );
    for row in read_csv(&out_dir.join("summary.csv")) {
        assert_eq!(
            (row["top1_class"].as_str(), row["top1_label"].as_str()),
            ("", "")
        );
    }
}

/// A label file on a torch backend, whose model is the manifest's MobileNetV2 with its own
/// labels, is refused in one line before anything runs.
#[test]
fn labels_for_a_torch_backend_are_refused() {
    let out = run(&[
        "run",
        "--rig",
        "sim-cpu",
        "--backend",
        "torch",
        "--labels",
        "l.txt",
    ]);
    assert_one_line_error(
        &out,
        "--labels applies only to kinds \"tflite\" and \"edgetpu\"",
    );
}

#[test]
fn malformed_rig_names_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let rig = write_rig(
        tmp.path(),
        "bad",
        &sim_rig("").replace("runs = 20", "runs = \"many\""),
    );
    let out = run(&["run", "--rig", s(&rig)]);
    assert_one_line_error(&out, "line 7, column 8");
}

#[test]
fn missing_rig_file() {
    let out = run(&["run", "--rig", "rigs/nope.toml"]);
    assert_one_line_error(&out, "cannot read rig file rigs/nope.toml");
}

#[test]
fn missing_and_corrupt_model() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("models/manifest.toml"),
        tmp.path().join("manifest.toml"),
    )
    .unwrap();
    let run = || {
        joulebench()
            .env("JOULEBENCH_MODELS_DIR", tmp.path())
            .args(["run", "--runs", "1"])
            .output()
            .unwrap()
    };
    assert_one_line_error(&run(), "is missing: run `joulebench models fetch`");

    let mut bytes =
        std::fs::read(repo().join("../shared/models/mobilenet_v2_1.0_224_quant.tflite")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(tmp.path().join("mobilenet_v2_1.0_224_quant.tflite"), bytes).unwrap();
    assert_one_line_error(&run(), "is corrupt");
}

#[test]
fn model_file_that_is_not_tflite() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("garbage.tflite");
    std::fs::write(&fake, b"this is not a flatbuffer").unwrap();
    let out = run(&["run", "--runs", "1", "--model", s(&fake)]);
    assert_one_line_error(&out, "garbage.tflite");
}

#[test]
fn unreadable_image() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("broken.jpg");
    std::fs::write(&image, b"\xff\xd8\xff\xe0 truncated").unwrap();
    let out = run(&["run", "--runs", "1", "--image", s(&image)]);
    assert_one_line_error(&out, "cannot decode image");
    let out = run(&["run", "--runs", "1", "--image", "/nonexistent/cat.png"]);
    assert_one_line_error(&out, "/nonexistent/cat.png");
}

#[test]
fn absent_i2c_bus_is_a_clear_error_before_anything_runs() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = std::fs::read_to_string(repo().join("rigs/rpi3-cpu.toml"))
        .unwrap()
        .replace("/dev/i2c-1", "/dev/i2c-99");
    let rig = write_rig(tmp.path(), "rpi", &rig);
    let out_dir = tmp.path().join("run");
    let out = run(&["run", "--rig", s(&rig), "--out", s(&out_dir)]);
    assert_one_line_error(&out, "I2C bus /dev/i2c-99 not found");
    assert!(!out_dir.exists(), "nothing ran, so no run folder");

    let out = run(&["sensors", "--rig", s(&rig)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/dev/i2c-99 not found"));
}

#[test]
fn sensor_that_nacks_mid_run_keeps_the_measurements() {
    ensure_models();
    // Part of the idle baseline, then the chip stops answering: the sampler keeps retrying
    // (a chip may come back), the windows without readings are invalid, nothing is lost. 100
    // transfers are about a dozen fresh readings (set-up, then four register reads a reading
    // and a poll or two): under half of the 1 s baseline at the default 29 conversions a
    // second.
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(&sim_rig(
        "[sensors.faults]\nnack_after_transactions = 100\n",
    ));
    assert_one_line_error(&out, "invalid: 0 fresh readings");
    assert!(stderr(&out).contains("partial results in"));
    let summary = read_csv(&out_dir.join("summary.csv"));
    let status = &summary[0]["status"];
    assert!(
        status.starts_with("invalid: 0 fresh readings") && status.contains("failed reads"),
        "{status}"
    );
    for figure in ["mean_watts", "joules_per_inference", "inferences_per_joule"] {
        assert_eq!(summary[0][figure], "", "{figure} of an invalid window");
    }
    let runs: usize = summary[0]["runs"].parse().unwrap();
    assert!(runs >= 20, "the inferences still ran");
    assert_eq!(read_csv(&out_dir.join("latency.csv")).len(), runs);
    let power = read_csv(&out_dir.join("power.csv"));
    let first_error = power.iter().position(|r| !r["error"].is_empty()).unwrap();
    // What was read before the chip went is kept, and it never came back.
    assert!(first_error >= 5, "{first_error} readings before the NACKs");
    assert!(power[first_error..].iter().all(|r| !r["error"].is_empty()));
}

#[test]
fn a_window_without_fresh_readings_is_invalid_with_no_figures() {
    ensure_models();
    // CNVR never sets: every read finds no new conversion, so nothing is measured.
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(&sim_rig("[sensors.faults]\ncnvr_stuck = true\n"));
    assert_one_line_error(&out, "invalid: ");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("invalid: no fresh readings"), "{stdout}");
    let row = &read_csv(&out_dir.join("summary.csv"))[0];
    assert!(row["status"].starts_with("invalid: "), "{}", row["status"]);
    for figure in [
        "idle_watts",
        "mean_watts",
        "joules_per_inference",
        "inferences_per_joule",
        "net_inferences_per_joule",
    ] {
        assert_eq!(row[figure], "", "{figure}");
    }
    assert!(
        row["runs"].parse::<usize>().unwrap() >= 20,
        "the inferences still ran"
    );
}

#[test]
fn a_brown_out_mid_run_is_detected_and_the_run_stays_valid() {
    ensure_models();
    // The chip resets 1 s into a 2 s idle baseline; the driver sees current and power read
    // 0 against a live shunt voltage, re-initialises it, and the gap is one failed read.
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(
        &sim_rig("[sensors.faults]\nreset_at_s = 1.0\n")
            .replace("idle_baseline_s = 1.0", "idle_baseline_s = 2.0"),
    );
    let power = read_csv(&out_dir.join("power.csv"));
    let resets: Vec<_> = power
        .iter()
        .filter(|r| r["error"].contains("chip reset detected"))
        .collect();
    assert_eq!(resets.len(), 1, "{}", stderr(&out));
    assert!(
        power
            .iter()
            .filter(|r| r["stale"] == "false" && r["error"].is_empty())
            .all(|r| r["watts"].parse::<f64>().unwrap() > 1.0),
        "no 0 W reading got through"
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn repeated_runs_give_a_row_each_and_an_aggregate_with_intervals() {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let rig = write_rig(dir.path(), "rig", &sim_rig(""));
    let out_dir = dir.path().join("run");
    let export = |name: &str| dir.path().join(name);
    let out = run(&[
        "run",
        "--rig",
        s(&rig),
        "--out",
        s(&out_dir),
        "--repeat",
        "3",
        "--export-markdown",
        s(&export("s.md")),
        "--export-json",
        s(&export("s.json")),
        "--export-csv",
        s(&export("s.csv")),
        "--export-lava",
        s(&export("lava.sh")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The exports: the table's columns in Markdown and CSV, the typed rows in JSON, and a
    // LAVA test case per figure of every row (4 rows x 4 figures).
    let md = std::fs::read_to_string(export("s.md")).unwrap();
    assert!(
        md.starts_with("| # | backend | model |") && md.contains("| 0/all |"),
        "{md}"
    );
    assert_eq!(read_csv(&export("s.csv")).len(), 4);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export("s.json")).unwrap()).unwrap();
    assert_eq!(rows[3]["repetition"], "all");
    let lava = std::fs::read_to_string(export("lava.sh")).unwrap();
    assert_eq!(lava.lines().count(), 16, "{lava}");
    assert!(lava.contains(
        "lava-test-case test-sim_b0_rall_s0_inferences_per_joule --result pass --measurement "
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0/all") && stdout.contains("95 % CI"),
        "{stdout}"
    );
    let summary = read_csv(&out_dir.join("summary.csv"));
    let reps: Vec<&str> = summary.iter().map(|r| r["repetition"].as_str()).collect();
    assert_eq!(reps, ["1", "2", "3", "all"]);
    let all = &summary[3];
    assert_eq!(
        (all["status"].as_str(), all["repetitions"].as_str()),
        ("ok", "3")
    );
    let num = |k: &str| {
        all[k]
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{k}: {:?}", all[k]))
    };
    // The geometric mean of the repetitions, as `compare` gives it.
    let mean: f64 = (summary[..3]
        .iter()
        .map(|r| r["inferences_per_joule"].parse::<f64>().unwrap().ln())
        .sum::<f64>()
        / 3.0)
        .exp();
    assert!((num("inferences_per_joule") - mean).abs() < 1e-9 * mean);
    assert!(
        num("inferences_per_joule_ci_low") <= mean && mean <= num("inferences_per_joule_ci_high")
    );
    assert!(num("inferences_per_joule_total_low") <= num("inferences_per_joule_ci_low"));
    assert!((num("energy_uncertainty_pct") - 1.2247).abs() < 1e-3);
    for k in [
        "fps_ci_low",
        "fps_cv",
        "mean_watts_sd",
        "net_inferences_per_joule_ci_high",
    ] {
        num(k);
    }
    for rep in &summary[..3] {
        assert_eq!(
            rep["fps_ci_low"], "",
            "per-repetition rows carry no interval"
        );
    }
    let latency = read_csv(&out_dir.join("latency.csv"));
    for r in ["1", "2", "3"] {
        assert!(latency.iter().filter(|l| l["repetition"] == r).count() >= 20);
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], joulebench::results::SCHEMA_VERSION);
    let timed = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phase"] == "timed")
        .count();
    assert_eq!(timed, 3);
}

#[test]
fn compare_reads_run_folders_exports_and_refuses_unknown_schemas() {
    let example = repo().join("results/examples/sim-cpu");
    let tmp = tempfile::tempdir().unwrap();
    // A copy is another run folder with the same figures; the folder itself twice is refused.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for file in std::fs::read_dir(&example).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, copy.join(file.file_name().unwrap())).unwrap();
    }
    let out = run(&["compare", s(&example), s(&example)]);
    assert_one_line_error(&out, "are the same run folder");
    let (csv, json, md) = (
        tmp.path().join("c.csv"),
        tmp.path().join("c.json"),
        tmp.path().join("c.md"),
    );
    let out = run(&[
        "compare",
        s(&example),
        s(&copy),
        "--references",
        "--export-csv",
        s(&csv),
        "--export-json",
        s(&json),
        "--export-markdown",
        s(&md),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 (baseline)"), "{stdout}");
    assert!(
        stdout.contains("does 1.00x the inferences per joule of sim-cpu"),
        "{stdout}"
    );
    assert!(stdout.contains("GTX1080 at 180 W: #1 "), "{stdout}");
    assert_eq!(read_csv(&csv).len(), 2);
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .starts_with("| # | rig |"));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(record["entries"][1]["ratio"], 1.0);
    assert_eq!(record["entries"][1]["marks"][0], "simulated");

    std::fs::write(
        tmp.path().join("run.json"),
        r#"{"joulebench_version": "0.0.9"}"#,
    )
    .unwrap();
    let out = run(&["compare", s(&example), s(tmp.path())]);
    assert_one_line_error(&out, "(schema 1); this joulebench reads schema 3");
}

#[test]
fn sensors_command_reads_the_simulated_chip() {
    let out = run(&["sensors"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ina219-sim") && text.contains("(simulated)"),
        "{text}"
    );
    assert!(text.contains(" V ") && text.contains(" W"), "{text}");
}

/// Every shipped simulated rig with every core running the backend (`--threads` = the cores
/// this machine has) and three repetitions: each window valid. sim-pi-coral is two INA219s
/// on one bus. The sampler sleeps between reads, so it neither starves nor slows the backend.
#[test]
fn full_load_keeps_every_shipped_simulated_rig_valid() {
    ensure_models();
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    for rig in ["sim-cpu", "sim-pi-coral", "local"] {
        let out_dir = tmp.path().join(rig);
        let out = run(&[
            "run",
            "--rig",
            rig,
            "--threads",
            &cores,
            "--repeat",
            "3",
            "--out",
            s(&out_dir),
        ]);
        assert!(out.status.success(), "{rig}: {}", stderr(&out));
        let summary = read_csv(&out_dir.join("summary.csv"));
        assert!(!summary.is_empty(), "{rig}");
        for row in &summary {
            assert_eq!(row["status"], "ok", "{rig}: {row:?}");
            assert_eq!(row["threads"], cores, "{rig}");
            if row["sensor"] != "total" {
                let cpu: f64 = row["sampler_cpu_pct"].parse().unwrap();
                println!(
                    "{rig} {} {}: sampler {cpu:.2} % of a core",
                    row["repetition"], row["rail"]
                );
            }
        }
    }
}

#[test]
fn ctrl_c_writes_what_was_measured_and_marks_it_interrupted() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = write_rig(
        tmp.path(),
        "long",
        // A timed run of ten minutes, sized in time: interrupted long before it ends.
        &sim_rig("").replace("min_duration_s = 2.0", "min_duration_s = 600.0"),
    );
    let _machine = one_run_at_a_time();
    let out_dir = tmp.path().join("run");
    let child = joulebench()
        .args(["run", "--rig"])
        .arg(&rig)
        .arg("--out")
        .arg(&out_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the timed run has streamed its first classifications.
    assert!(
        wait_for_timed_rows(&out_dir),
        "no timed classification streamed in 120 s"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"));
    let summary = read_csv(&out_dir.join("summary.csv"));
    assert_eq!(summary[0]["status"], "interrupted");
    let runs: usize = summary[0]["runs"].parse().unwrap();
    assert!(runs > 0);
    assert_eq!(read_csv(&out_dir.join("latency.csv")).len(), runs);
    let per_joule = &summary[0]["inferences_per_joule"];
    let (samples, expected) = (&summary[0]["samples"], &summary[0]["expected_samples"]);
    assert!(
        per_joule.parse::<f64>().is_ok_and(|j| j > 0.0),
        "no inferences per joule: {samples} of {expected} readings; {}",
        stderr(&out)
    );
}

#[test]
fn out_dir_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("summary.csv"), "keep me").unwrap();
    let out = joulebench()
        .args(["run", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, "already holds files");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("summary.csv")).unwrap(),
        "keep me"
    );
}

#[test]
fn nominal_watts_are_labelled_not_measured() {
    ensure_models();
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(&sim_rig("").replace(
        "[[sensors]]",
        "[[sensors]]\nkind = \"nominal\"\nrail = \"GTX1080 (TDP)\"\nwatts = 180.0\nsource = \"spec sheet\"\n\n[[sensors]]",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("nominal (nominal, not measured)"),
        "{stdout}"
    );
    let summary = read_csv(&out_dir.join("summary.csv"));
    let nominal = summary.iter().find(|r| r["sensor"] == "nominal").unwrap();
    assert_eq!(nominal["origin"], "nominal");
    assert_eq!(nominal["simulated"], "false");
    let watts: f64 = nominal["mean_watts"].parse().unwrap();
    assert!((watts - 180.0).abs() < 1e-9);
    let fps: f64 = nominal["fps"].parse().unwrap();
    let per_joule: f64 = nominal["inferences_per_joule"].parse().unwrap();
    assert!((per_joule - fps / 180.0).abs() / per_joule < 1e-6);
    // The same 180 W for the idle and the timed window: no net figure, and why.
    assert_eq!(nominal["net_inferences_per_joule"], "");
    assert!(
        nominal["net_note"].contains("a nominal sensor states the same watts"),
        "{}",
        nominal["net_note"]
    );
}

/// A simulated board that draws nothing (0 A idle, busy and noise) measures 0 W: no figure per
/// joule, so no `ok` row; invalid, saying why, and exit 1 (issue 30).
#[test]
fn a_board_drawing_nothing_is_invalid_not_ok() {
    ensure_models();
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(&sim_rig(
        "[sensors.load]\nidle_amps = 0.0\nactive_amps = 0.0\nnoise_amps = 0.0\n",
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = &read_csv(&out_dir.join("summary.csv"))[0];
    assert!(
        row["status"].starts_with("invalid: mean 0.000000 W, less than the 0.01 W"),
        "{}",
        row["status"]
    );
    for figure in ["mean_watts", "inferences_per_joule", "joules_per_inference"] {
        assert_eq!(row[figure], "", "{figure}");
    }
}

#[test]
fn two_ina219s_on_one_bus_and_their_total() {
    ensure_models();
    // A Pi's supply at 0x40 and the Coral's USB line at 0x41 on one simulated bus at 100 kHz,
    // at the default ADC settings (the rate a shared bus allows is a unit test's business).
    let rig = sim_rig("address = 0x40\n[sensors.load]\nidle_amps = 0.40\n").replacen(
        "name = \"test-sim\"\n",
        "name = \"test-sim\"\ntotal = [\"5V\", \"Coral USB\"]\n",
        1,
    ) + "[[sensors]]\nkind = \"ina219-sim\"\nrail = \"Coral USB\"\naddress = 0x41\n\
           shunt_ohms = 0.1\nmax_current_a = 3.2\n[sensors.load]\n\
           idle_amps = 0.10\nactive_amps = 0.40\nseed = 7\n";
    let RigRun {
        dir: _dir,
        out_dir,
        output: out,
    } = run_rig(&rig);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = read_csv(&out_dir.join("summary.csv"));
    let rails: Vec<(&str, &str, &str)> = summary
        .iter()
        .map(|r| {
            (
                r["sensor"].as_str(),
                r["rail"].as_str(),
                r["status"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        rails,
        [
            ("ina219-sim", "5V", "ok"),
            ("ina219-sim", "Coral USB", "ok"),
            ("total", "5V + Coral USB", "ok")
        ]
    );
    let figure = |row: usize, name: &str| -> f64 { summary[row][name].parse().unwrap() };
    // The total's energy is the sum of the rails' over the same windows: its mean and idle
    // watts and its joules per inference are their sums (to the digits summary.csv keeps).
    for name in ["mean_watts", "idle_watts", "joules_per_inference"] {
        let (sum, total) = (figure(0, name) + figure(1, name), figure(2, name));
        assert!(
            (total - sum).abs() <= 1e-5 * total,
            "{name}: total {total} against {sum}"
        );
    }
    // Simulated loads on a 5.1 V supply: about 2.03 W and 0.51 W idle.
    let idle = figure(2, "idle_watts");
    assert!((idle - 2.54).abs() < 0.1, "{idle}");
}

/// A one-classification rig with an `edgetpu` backend and no sensors.
fn edgetpu_rig(model: &str, keys: &str) -> String {
    format!(
        r#"
name = "test-edgetpu"
[protocol]
settle_s = 0.0
runs = 1
[[backends]]
kind = "edgetpu"
model = "{model}"
image = "bird.bmp"
{keys}
"#
    )
}

/// `joulebench run` of an Edge TPU rig that must stop before anything runs: exit status 1,
/// exactly one line `joulebench: ...` holding `needle`, no run folder.
fn assert_edgetpu_run_fails(rig: &str, needle: &str) {
    let run = run_rig(rig);
    assert_one_line_error(&run.output, needle);
    assert_eq!(run.output.status.code(), Some(1));
    assert_eq!(
        stderr(&run.output).lines().count(),
        1,
        "{}",
        stderr(&run.output)
    );
    assert!(!run.out_dir.exists(), "nothing ran, so no run folder");
}

/// The compiled fixture where `ensure_models` put it (the user's models folder).
fn edgetpu_fixture() -> String {
    joulebench::models::models_dir()
        .join("keras_lstm_mnist_ptq_edgetpu.tflite")
        .display()
        .to_string()
}

#[test]
fn edgetpu_run_refuses_a_model_not_compiled_for_the_edge_tpu() {
    ensure_models();
    // The library paths do not exist: the model is refused before they are looked at.
    let keys = "edgetpu_lib = \"/nonexistent/libedgetpu.so.1\"";
    assert_edgetpu_run_fails(
        &edgetpu_rig("mobilenet_v2_1.0_224_quant", keys),
        &format!(
            "backend 0 (edgetpu): model {} was not compiled for the Edge TPU (no edgetpu-custom-op among its operators)",
            joulebench::models::models_dir()
                .join("mobilenet_v2_1.0_224_quant.tflite")
                .display()
        ),
    );
    // The compiled build is in the manifest; in a models folder without it, it is missing.
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rig = write_rig(
        dir.path(),
        "rig",
        &edgetpu_rig("mobilenet_v2_1.0_224_quant_edgetpu", keys),
    );
    let out_dir = dir.path().join("run");
    let out = joulebench()
        .env("JOULEBENCH_MODELS_DIR", empty.path())
        .args(["run", "--rig", s(&rig), "--out", s(&out_dir)])
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        "model mobilenet_v2_1.0_224_quant_edgetpu is missing: run `joulebench models fetch`",
    );
    assert!(!out_dir.exists(), "nothing ran, so no run folder");
}

#[test]
fn edgetpu_run_names_a_missing_library() {
    ensure_models();
    assert_edgetpu_run_fails(
        &edgetpu_rig(
            &edgetpu_fixture(),
            "edgetpu_lib = \"/nonexistent/libedgetpu.so.1\"",
        ),
        "libedgetpu.so.1 not found at /nonexistent/libedgetpu.so.1 (from the rig's edgetpu_lib): install Coral's libedgetpu1-std package",
    );
}

/// Compiles `tests/fixtures/edgetpu_standin.c` into `dir/name` with the given macros (with the
/// C compiler scripts/setup.sh installs).
fn edgetpu_standin(dir: &std::path::Path, name: &str, defines: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(repo().join("tests/fixtures/edgetpu_standin.c"))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .status();
    let status = status.unwrap_or_else(|e| panic!("cc (scripts/setup.sh installs it): {e}"));
    assert!(status.success(), "cc failed for {name}");
    out
}

#[test]
fn edgetpu_run_names_a_missing_symbol_and_a_missing_device() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let lacking = edgetpu_standin(tmp.path(), "libedgetpu-lacking.so", &["LACK_SYMBOL"]);
    let keys = format!("edgetpu_lib = \"{}\"", s(&lacking));
    assert_edgetpu_run_fails(
        &edgetpu_rig(&edgetpu_fixture(), &keys),
        &format!(
            "{} (from the rig's edgetpu_lib) lacks edgetpu_create_delegate",
            s(&lacking)
        ),
    );

    let none = edgetpu_standin(tmp.path(), "libedgetpu-none.so", &[]);
    let tflite = edgetpu_standin(tmp.path(), "libtflite.so", &["TFLITE_C"]);
    let keys = format!(
        "edgetpu_lib = \"{}\"\ntflite_c_lib = \"{}\"",
        s(&none),
        s(&tflite)
    );
    assert_edgetpu_run_fails(
        &edgetpu_rig(&edgetpu_fixture(), &keys),
        "backend 0 (edgetpu): no Edge TPU found (libedgetpu lists none)",
    );
}

#[test]
fn machine_state_is_recorded_at_the_edges_of_every_timed_window() {
    ensure_models();
    // A fake machine root: one cpufreq policy at full ceiling, one thermal zone, and an ACPI
    // processor cooling device holding the clock down, so every window is throttled.
    let root = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: &str| {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let policy = "sys/devices/system/cpu/cpufreq/policy0";
    put(&format!("{policy}/scaling_governor"), "performance\n");
    put(&format!("{policy}/scaling_cur_freq"), "2400000\n");
    put(&format!("{policy}/scaling_max_freq"), "2400000\n");
    put(&format!("{policy}/cpuinfo_max_freq"), "2400000\n");
    put("sys/class/thermal/thermal_zone0/type", "x86_pkg_temp\n");
    put("sys/class/thermal/thermal_zone0/temp", "71000\n");
    put("sys/class/thermal/cooling_device0/type", "Processor\n");
    put("sys/class/thermal/cooling_device0/cur_state", "1\n");

    let dir = tempfile::tempdir().unwrap();
    // No sensor: the machine state does not depend on one, and a sensor-less run cannot be
    // made invalid by a busy machine starving the sampler.
    let text = sim_rig("");
    let rig = write_rig(
        dir.path(),
        "rig",
        &text[..text.find("[[sensors]]").unwrap()],
    );
    let out_dir = dir.path().join("run");
    let out = {
        let _machine = crate::common::one_run_at_a_time();
        crate::common::joulebench()
            .env("JOULEBENCH_ROOT", root.path())
            .args([
                "run",
                "--rig",
                s(&rig),
                "--out",
                s(&out_dir),
                "--repeat",
                "2",
            ])
            .output()
            .unwrap()
    };
    assert!(out.status.success(), "{}", stderr(&out));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let states = json["machine_state"].as_array().unwrap();
    assert_eq!(states.len(), 2, "{states:?}");
    let why = "cooling_device0 (Processor) at state 1 at start and end";
    for (i, w) in states.iter().enumerate() {
        assert_eq!(
            (w["backend"].as_u64(), w["repetition"].as_u64()),
            (Some(0), Some(i as u64 + 1))
        );
        for edge in ["start", "end"] {
            let p = &w[edge]["cpufreq"][0];
            assert_eq!(p["governor"], "performance", "{w}");
            assert_eq!(p["max_khz"], 2400000, "{w}");
            assert_eq!(w[edge]["thermal_zones"][0]["temp_c"], 71.0, "{w}");
            assert!(w[edge]["capture_us"].as_f64().unwrap() > 0.0, "{w}");
        }
        assert_eq!(w["throttled"], format!("yes: {why}"), "{w}");
        assert_eq!(
            w["signals"],
            serde_json::json!(["cpu cooling devices", "cpufreq ceilings"])
        );
    }

    // The summary flags the windows, keeps them ok, and the table marks them (the FPS of the
    // speed part; a rig with sensors marks the status of the energy part too).
    let summary = read_csv(&out_dir.join("summary.csv"));
    assert_eq!(summary.len(), 3);
    for r in &summary[..2] {
        assert_eq!(
            (r["status"].as_str(), r["throttled"].clone()),
            ("ok", format!("yes: {why}"))
        );
    }
    assert!(summary[2]["throttled"].starts_with("yes: 2 of 2 repetitions"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().filter(|l| l.starts_with("0/")).count() == 2
            && stdout
                .lines()
                .filter(|l| l.starts_with("0/"))
                .all(|l| l.split_whitespace().any(|c| c.ends_with('*')))
            && stdout.contains("throttled machine: 0/1: "),
        "{stdout}"
    );
}

#[test]
fn a_ranging_pass_sets_each_ina219_from_its_peak_current() {
    ensure_models();
    // The simulated board draws 0.40 A idle and 0.75 A busy (σ 10 mA): the rig's 3.2 A range
    // is narrowed to 1.1 × the peak, about 0.85 A, for the measured run.
    let dir = tempfile::tempdir().unwrap();
    let rig = write_rig(dir.path(), "rig", &sim_rig(""));
    let out_dir = dir.path().join("run");
    let out = run(&["run", "--rig", s(&rig), "--out", s(&out_dir), "--ranging"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stderr(&out)
        .lines()
        .find(|l| l.starts_with("joulebench: ranging: 5V: peak "))
        .map(String::from)
        .unwrap_or_else(|| panic!("{}", stderr(&out)));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let ranged = &json["ranging"][0];
    let peak = ranged["peak_amps"].as_f64().unwrap();
    assert!((0.74..0.85).contains(&peak), "{line}");
    assert_eq!(ranged["max_current_a_before"].as_f64(), Some(3.2));
    assert!((ranged["max_current_a"].as_f64().unwrap() - 1.1 * peak).abs() < 1e-12);
    // 0.8 A to 0.94 A: a 50 µA LSB (0.9 A / 32768 = 27 µA, rounded up to 1-2-5) and the
    // ±160 mV range (80 to 94 mV do not fit 80); the run used them.
    assert_eq!(ranged["shunt_range_mv"].as_u64(), Some(160));
    assert_eq!(
        json["rig"]["sensors"][0]["max_current_a"],
        ranged["max_current_a"]
    );
    let detail = json["sensors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("I_LSB=50 µA, cal=8192, PGA ±160 mV"),
        "{detail}"
    );
}

#[test]
fn calibrate_through_a_symbolic_link_writes_the_rig_it_links_to() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("rigs")).unwrap();
    let original = std::fs::read_to_string(repo().join("rigs/sim-cpu.toml")).unwrap();
    let target = write_rig(&tmp.path().join("rigs"), "bench", &original);
    let link = tmp.path().join("current.toml");
    std::os::unix::fs::symlink("rigs/bench.toml", &link).unwrap();
    let out = run(&[
        "calibrate",
        "--rig",
        s(&link),
        "--rail",
        "5V supply (simulated board)",
        "--seconds",
        "1",
        "--amps",
        "0.4",
        "--reference-uncertainty-pct",
        "0.1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The link is still a link, and the rig it names holds the correction.
    let kind = std::fs::symlink_metadata(&link).unwrap().file_type();
    assert!(kind.is_symlink(), "the link was replaced by a file");
    let after = std::fs::read_to_string(&target).unwrap();
    assert!(after.contains("shunt_correction = "), "{after}");
}

#[test]
fn calibrate_writes_the_correction_a_later_read_applies() {
    // sim-cpu's board, steady (no noise) and with a shunt 1 % over its marking: the chip
    // reads 0.404 A where 0.4 A flows.
    let tmp = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(repo().join("rigs/sim-cpu.toml")).unwrap();
    let text = original
        .replace("noise_amps = 0.01", "noise_amps = 0.0")
        .replace("seed = 1", "seed = 1\nactual_shunt_ohms = 0.101");
    assert_ne!(text, original);
    let rig = write_rig(tmp.path(), "cal", &text);
    let rail = "5V supply (simulated board)";
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "calibrate",
            "--rig",
            s(&rig),
            "--rail",
            rail,
            "--seconds",
            "1",
        ];
        a.extend_from_slice(extra);
        a
    };

    let out = run(&args(&[
        "--amps",
        "0.4",
        "--reference-uncertainty-pct",
        "0.1",
        "--dry-run",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("dry run: rig file"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&rig).unwrap(), text);

    let out = run(&args(&[
        "--amps",
        "0.4",
        "--reference-uncertainty-pct",
        "0.1",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 4040 LSB of 100 µA read; 0.4 / 0.404 = 0.990099; trunc(4096 × 0.990099) = 4055, bit 0
    // cleared; the 1.22 % of a 1 % shunt becomes √(0.5² + 0.5² + 0.1²) = 0.71 %.
    for line in [
        "measured   0.40400 A",
        "reference  0.40000 A (0.4 A (--amps), good to 0.1 %)",
        "factor     0.990099 (the chip read +1.000 %)",
        "calibration register 4096 → 4054; energy uncertainty 1.22 % → 0.71 %",
        "wrote shunt_correction = 0.990099 and reference_uncertainty_pct = 0.1 into sensors[0]",
    ] {
        assert!(stdout.contains(line), "{line:?} not in {stdout}");
    }
    let after = std::fs::read_to_string(&rig).unwrap();
    let added: Vec<&str> = after
        .lines()
        .filter(|l| !text.lines().any(|t| t == *l))
        .collect();
    assert_eq!(added.len(), 3, "{after}");
    assert!(
        added[0].starts_with("# joulebench calibrate, "),
        "{added:?}"
    );
    assert_eq!(
        &added[1..],
        [
            "shunt_correction = 0.990099",
            "reference_uncertainty_pct = 0.1"
        ]
    );
    let rest: Vec<&str> = after.lines().filter(|l| !added.contains(l)).collect();
    assert_eq!(
        rest,
        text.lines().collect::<Vec<_>>(),
        "every other line kept"
    );

    // The rig now reads the board corrected: 4040 × 4054 / 4096 = 3998 LSB, 0.3998 A.
    let out = run(&["sensors", "--rig", s(&rig)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0.3998 A"), "{stdout}");
    assert!(
        stdout.contains("cal=4054 (4096 corrected ×0.990099)"),
        "{stdout}"
    );

    let refused = |extra: &[&'static str], needle: &str| {
        let out = run(&args(extra));
        assert_one_line_error(&out, needle);
    };
    refused(
        &["--reference-uncertainty-pct", "0.1"],
        "calibrate needs a reference: --amps A",
    );
    refused(
        &["--amps", "0.4"],
        "calibrate needs --reference-uncertainty-pct",
    );
    refused(
        &["--amps", "0.3", "--reference-uncertainty-pct", "0.1"],
        "a factor of 0.7426, outside 0.8..1.25. That is a wiring fault",
    );
    let out = run(&[
        "calibrate",
        "--rig",
        s(&rig),
        "--rail",
        "GPU",
        "--amps",
        "1",
        "--reference-uncertainty-pct",
        "0.1",
    ]);
    assert_one_line_error(
        &out,
        "measures rail \"GPU\" (its INA219 rails: \"5V supply (simulated board)\")",
    );
    assert_eq!(
        std::fs::read_to_string(&rig).unwrap(),
        after,
        "refusals write nothing"
    );
}
