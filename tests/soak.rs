//! `joulebench soak` end to end, shortened to a fraction of a minute on the built-in soak rig:
//! the time budget, the monitor's rows, the machine's own measurements, the report's
//! bookkeeping and the exit contract. The hour-long run and its figures are in
//! docs/src/measurements.md ("An hour's soak").

mod common;

use common::*;

#[test]
fn a_short_soak_shares_its_time_and_reports_memory_readings_files_and_drift() {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("soak");
    let minutes = 0.4;
    // The built-in soak rig, on the model the run-timing tests use (the stand-in in the fast
    // pass of the speed sweep).
    let shipped = std::fs::read_to_string(repo().join("rigs/sim-soak.toml")).unwrap();
    let text = shipped.replace(
        &format!("model = \"{MOBILENET}\""),
        &format!("model = \"{}\"", timed_model()),
    );
    let rig = write_rig(dir.path(), "sim-soak", &text);
    let out = run(&[
        "soak",
        "--rig",
        s(&rig),
        "--minutes",
        "0.4",
        "--out",
        s(&out_dir),
    ]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    // Whether the targets are met depends on the machine (a loaded CI machine misses
    // readings, and the report then says so); the bookkeeping must hold either way.
    match out.status.code() {
        Some(0) => {}
        Some(1) => assert!(
            err.lines()
                .last()
                .is_some_and(|l| l.starts_with("joulebench: ")),
            "{err}"
        ),
        other => panic!("exit {other:?}: {err}"),
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("soak.json")).unwrap()).unwrap();

    // Each backend gets half the budget; the one running when its share ends finishes its
    // repetition (LiteRT about 6 s, TF Lite 1.15 about 12 s here), and loading comes first.
    let seconds = report["seconds"].as_f64().unwrap();
    assert!(
        (minutes * 60.0..minutes * 60.0 + 60.0).contains(&seconds),
        "{seconds} s"
    );
    let latency = report["latency"].as_array().unwrap();
    assert_eq!(latency.len(), 2);
    let summary = read_csv(&out_dir.join("summary.csv"));
    for (index, backend) in latency.iter().enumerate() {
        let repetitions = backend["repetitions"].as_u64().unwrap() as usize;
        assert!(repetitions >= 1, "{backend}");
        let rows = summary
            .iter()
            .filter(|r| r["backend_index"] == index.to_string() && r["repetition"] != "all")
            .count();
        assert_eq!(rows, repetitions, "{backend}");
    }

    // Every reading taken is on disk, as the run's own count says.
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    let sensor = &report["sensors"][0];
    assert_eq!(sensor["taken"], run_json["sensors"][0]["samples"]);
    assert_eq!(sensor["taken"], sensor["on_disk"]);
    let power_rows = read_csv(&out_dir.join("power.csv")).len() as u64;
    assert_eq!(sensor["on_disk"].as_u64(), Some(power_rows));
    let fresh = sensor["fresh"].as_f64().unwrap();
    let expected = sensor["expected_fresh"].as_f64().unwrap();
    assert!(fresh > 0.0 && fresh <= expected * 1.001, "{sensor}");

    // The monitor: a row every 5 s from the start of measuring (and a last one), the memory
    // figures taken from them.
    let monitor = read_csv(&out_dir.join("soak.csv"));
    assert!(
        monitor.len() as f64 >= seconds / 5.0,
        "{} rows",
        monitor.len()
    );
    let t: Vec<f64> = monitor.iter().map(|r| r["t_s"].parse().unwrap()).collect();
    assert!(t.windows(2).all(|w| w[1] > w[0]), "{t:?}");
    let mib = |row: &std::collections::HashMap<String, String>| {
        row["rss_kib"].parse::<f64>().unwrap() / 1024.0
    };
    let memory = &report["memory"];
    assert_eq!(memory["start_mib"].as_f64(), Some(mib(&monitor[0])));
    assert_eq!(
        memory["end_mib"].as_f64(),
        Some(mib(monitor.last().unwrap()))
    );
    let peak = monitor.iter().map(mib).fold(0.0, f64::max);
    assert_eq!(memory["peak_mib"].as_f64(), Some(peak));
    let files = report["files"].as_array().unwrap();
    let power = files.iter().find(|f| f["name"] == "power.csv").unwrap();
    assert_eq!(
        power["bytes"].as_u64(),
        Some(std::fs::metadata(out_dir.join("power.csv")).unwrap().len())
    );

    // The machine's own measurements: its stalls probed for a twentieth of the soak after
    // it (1.2 s here), and its speed reference in every monitor row.
    let floor = &report["floor"];
    let probed = floor["seconds"].as_f64().unwrap();
    assert!((1.2..3.0).contains(&probed), "{floor}");
    assert_eq!(floor["busy_threads"], 1);
    assert!(
        sensor["floor_upper_per_hour"].as_f64().unwrap() > 0.0,
        "{sensor}"
    );
    assert!(monitor
        .iter()
        .all(|r| r["reference_ms"].parse::<f64>().unwrap() > 0.0));
    for backend in latency {
        // Drift is judged net of the machine's reference wherever both are measured.
        if !backend["ratio"].is_null() && !backend["reference"].is_null() {
            let (r, m, c) = (
                backend["ratio"]["ratio"].as_f64().unwrap(),
                backend["reference"]["ratio"].as_f64().unwrap(),
                backend["corrected"]["ratio"].as_f64().unwrap(),
            );
            assert!((c - r / m).abs() < 1e-9 * c, "{backend}");
        }
    }

    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "soak: ",
        "memory  start ",
        "readings ",
        "machine ",
        "latency backend 1 ",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from {stdout}");
    }
}

#[test]
fn a_soak_of_an_impossible_length_is_refused_before_anything_runs() {
    for minutes in ["0", "-1", "NaN", "inf", "1e9"] {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("soak");
        let out = joulebench()
            .args([
                "soak",
                &format!("--minutes={minutes}"),
                "--out",
                s(&out_dir),
            ])
            .output()
            .unwrap();
        assert_one_line_error(&out, "--minutes must be more than 0");
        assert!(!out_dir.exists(), "{minutes}: a folder was made");
    }
    let out = joulebench()
        .args(["soak", "--max-drift-pct=-2"])
        .output()
        .unwrap();
    assert_one_line_error(&out, "--max-drift-pct must be a number of at least 0");
}
