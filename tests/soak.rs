//! `joulebench soak` end to end, shortened to a fraction of a minute on the built-in soak rig:
//! the time budget, the monitor's rows, the machine's own measurements, the report's
//! bookkeeping and the exit contract. The hour-long run and its figures are in
//! docs/src/measurements.md ("An hour's soak").

use crate::common::*;

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

/// A soak too short to judge its targets says which it did not judge, and how long a soak
/// would, instead of "every target met"; and it exits 1, as exit-codes.md's `soak` row says.
/// Both targets are out of reach by construction, whatever this machine's speed: a repetition
/// of `sim_rig` lasts over 2 s (its timed window's `min_duration_s`), so the 3 s soak runs at
/// most 2 of the 4 a drift takes; and the stall probe runs 0.15 s (a twentieth), where the
/// bound on gaps of 3 × 68.6 ms (the chip averaging 128 samples) takes more than
/// 3.689 × 206 ms = 0.76 s without a stall, more with one: only a thread frozen for most of
/// a second as the probe ends would bound them.
#[test]
fn a_soak_too_short_to_judge_lists_what_it_did_not_judge_and_exits_1() {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("soak");
    let rig = write_rig(dir.path(), "rig", &sim_rig("adc = \"avg128\"\n"));
    let out = run(&[
        "soak",
        "--rig",
        s(&rig),
        "--minutes",
        "0.05",
        "--out",
        s(&out_dir),
    ]);
    let err = stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}\n{stdout}");
    assert_one_line_error(&out, "joulebench: soak: ");
    let line = err.lines().last().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("soak.json")).unwrap()).unwrap();
    // Whether the targets judged were met depends on the machine (a virtual machine's host
    // that stops the guest for a conversion's length loses one of the soak's 80 or so fresh
    // readings, more than the 1 % allowed); the verdict says which it was, a miss first.
    let missed = report["missed"].as_array().unwrap();
    let (opening, closing) = if missed.is_empty() {
        ("joulebench: soak: not judged: ", true)
    } else {
        ("joulebench: soak: a target was missed: ", false)
    };
    assert!(line.starts_with(opening), "{missed:?}: {line}");
    assert_eq!(
        line.contains("; every target judged was met"),
        closing,
        "{missed:?}: {line}"
    );
    for target in [
        "not judged: ",
        "latency drift of backend 0 ",
        "gaps in the readings of 5V: a ",
        " s stall probe bounds them at ",
    ] {
        assert!(line.contains(target), "{target:?} missing from {line}");
    }
    // How long a soak judges them, from this one: more than this one, at least the 4
    // repetitions of over 2 s a drift takes.
    let minutes: f64 = line
        .split("a soak of about ")
        .nth(1)
        .and_then(|rest| rest.split(" min").next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no soak length in {line}"));
    assert!(minutes >= 4.0 * 2.0 / 60.0, "{line}");

    // The closing verdict says the same; nothing claims success or prints a negative zero.
    let verdict = line
        .strip_prefix("joulebench: ")
        .and_then(|l| l.split(" (see above, or ").next())
        .unwrap();
    assert!(
        stdout.lines().any(|l| l == verdict),
        "{verdict:?} missing from {stdout}"
    );
    assert!(!stdout.contains("every target met"), "{stdout}");
    // A negative zero: "-0", "-0.0", "-0.000", not followed by another digit.
    let negative_zero = stdout.match_indices("-0").any(|(at, _)| {
        let rest = stdout[at + 2..].trim_start_matches(['.', '0']);
        !rest.starts_with(|c: char| c.is_ascii_digit())
    });
    assert!(!negative_zero, "{stdout}");

    assert_eq!(report["ok"], false, "{report}");
    let not_judged: Vec<&str> = report["not_judged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["target"].as_str().unwrap())
        .collect();
    assert_eq!(not_judged.len(), 2, "{not_judged:?}");
    assert_eq!(not_judged[0], "gaps in the readings of 5V");
    assert!(not_judged[1].starts_with("latency drift of backend 0 "));
    let latency = &report["latency"][0];
    assert!(latency["repetitions"].as_u64().unwrap() <= 2, "{latency}");
    assert!(latency["ok"].is_null(), "{latency}");
    let sensor = &report["sensors"][0];
    assert!(sensor["gaps_ok"].is_null(), "{sensor}");
    assert!(
        sensor["floor_upper_per_hour"].as_f64() >= sensor["most_gaps_per_hour"].as_f64(),
        "{sensor}"
    );

    // exit-codes.md's `soak` row names this outcome among its exits with status 1.
    let page = std::fs::read_to_string(repo().join("docs/src/reference/exit-codes.md")).unwrap();
    let row = page
        .lines()
        .find(|l| l.starts_with("| `soak` |"))
        .expect("exit-codes.md has a soak row");
    assert!(row.contains("`joulebench: soak: not judged: …`"), "{row}");
}
