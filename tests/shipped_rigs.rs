//! Rigs that run as shipped: a sensor table marked `optional` that does not open lets the run
//! go on without it, and every output says which sensor is missing and why; `joulebench rigs`
//! lists the built-in rigs and prints each exactly as shipped, to save and edit.

use crate::common::*;

/// A real INA219 on an I2C bus that exists on no machine: it never opens.
fn absent_ina219(rail: &str, optional: bool) -> String {
    format!(
        "[[sensors]]\nkind = \"ina219\"\nrail = \"{rail}\"\ni2c_bus = \"/nonexistent/i2c-9\"\n\
         address = 0x41\nshunt_ohms = 0.1\nmax_current_a = 3.2\noptional = {optional}\n"
    )
}

/// `sim_rig` with its simulated INA219's rail "5V", more sensor tables after it, and the
/// top-level `extra` lines.
fn rig_with(extra: &str, sensors: &str) -> String {
    sim_rig("").replacen("idle_baseline_s", &format!("{extra}idle_baseline_s"), 1) + sensors
}

#[test]
fn an_optional_sensor_that_does_not_open_is_named_with_why_in_every_output() {
    let run = run_rig(&rig_with(
        "total = [\"5V\", \"Coral\"]\n",
        &absent_ina219("Coral", true),
    ));
    let err = stderr(&run.output);
    assert!(run.output.status.success(), "{err}");
    // The run's first lines.
    assert!(
        err.lines().any(|l| l
            .starts_with("joulebench: sensor 1 ina219 (Coral) is optional and did not open: ")
            && l.contains("/nonexistent/i2c-9")
            && l.ends_with(
                "the run goes on without it, and the total of 5V + Coral is not formed"
            )),
        "{err}"
    );
    // The final table: the missing sensor's row and the total's, and the footnote.
    let table = String::from_utf8_lossy(&run.output.stdout).into_owned();
    assert!(
        table.contains("sensor missing: optional, did not open: ")
            && table.contains("sensor missing: no total: Coral did not open")
            && table.contains("(sensor missing: an optional sensor of the rig did not open"),
        "{table}"
    );
    // summary.csv: the sensor that measured is ok, with figures; the missing one and the
    // total say why and have none.
    let rows = read_csv(&run.out_dir.join("summary.csv"));
    let of = |sensor: &str| -> Vec<_> { rows.iter().filter(|r| r["sensor"] == sensor).collect() };
    let measured = of("ina219-sim");
    assert_eq!(measured.len(), 1);
    assert_eq!(measured[0]["status"], "ok", "{:?}", measured[0]);
    assert!(!measured[0]["inferences_per_joule"].is_empty());
    let missing = of("ina219");
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0]["status"].starts_with("sensor missing: optional, did not open: ")
            && missing[0]["status"].contains("/nonexistent/i2c-9"),
        "{:?}",
        missing[0]
    );
    assert_eq!(
        (
            missing[0]["rail"].as_str(),
            missing[0]["sensor_index"].as_str()
        ),
        ("Coral", "1")
    );
    assert!(missing[0]["inferences_per_joule"].is_empty());
    let total = of("total");
    assert_eq!(total.len(), 1);
    assert!(
        total[0]["status"].starts_with("sensor missing: no total: Coral did not open (")
            && total[0]["inferences_per_joule"].is_empty(),
        "{:?}",
        total[0]
    );
    // run.json: the sensor in its place, with why and no readings; power.csv: no row of it.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.out_dir.join("run.json")).unwrap()).unwrap();
    let sensor = &json["sensors"][1];
    assert_eq!(
        (&sensor["rail"], &sensor["samples"]),
        (&"Coral".into(), &0.into())
    );
    assert!(
        sensor["missing"]
            .as_str()
            .is_some_and(|why| why.contains("/nonexistent/i2c-9")),
        "{sensor}"
    );
    assert!(
        json["sensors"][0].get("missing").is_none(),
        "{}",
        json["sensors"][0]
    );
    let power = read_csv(&run.out_dir.join("power.csv"));
    assert!(!power.is_empty() && power.iter().all(|r| r["sensor_index"] == "0"));
    // summarize rebuilds the same summary from the folder; the report names the sensor too.
    let summary = std::fs::read(run.out_dir.join("summary.csv")).unwrap();
    let rebuilt = joulebench()
        .arg("summarize")
        .arg(&run.out_dir)
        .output()
        .unwrap();
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert_eq!(
        std::fs::read(run.out_dir.join("summary.csv")).unwrap(),
        summary
    );
    let report_dir = run.dir.path().join("report");
    let report = joulebench()
        .arg("report")
        .arg(&run.out_dir)
        .arg("--out")
        .arg(&report_dir)
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(
        md.contains("sensor missing: optional, did not open: ")
            && md.contains("Entries whose status is `sensor missing`"),
        "{md}"
    );
}

#[test]
fn with_every_sensor_optional_and_none_open_the_run_is_one_line() {
    let rig = sim_rig("").split("[[sensors]]").next().unwrap().to_string()
        + &absent_ina219("Pi", true)
        + &absent_ina219("Coral", true).replace("0x41", "0x40");
    let run = run_rig(&rig);
    assert_one_line_error(
        &run.output,
        "no sensor of the rig measures: sensor ina219 (Pi) is optional and did not open: ",
    );
    let line = stderr(&run.output).lines().last().unwrap().to_string();
    assert!(
        line.contains("; sensor ina219 (Coral) is optional and did not open: "),
        "{line}"
    );
    // Refused before measuring: the folder it claimed is gone again.
    assert!(!run.out_dir.exists());
}

#[test]
fn a_sensor_not_marked_optional_still_stops_the_run() {
    let run = run_rig(&rig_with("", &absent_ina219("Coral", false)));
    assert_one_line_error(&run.output, "sensor ina219 (Coral): ");
    assert!(stderr(&run.output).contains("/nonexistent/i2c-9"));
    assert!(!run.out_dir.exists());
}

/// The rigs of `rigs/`, by name.
fn shipped() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("rigs"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".toml")?
                .to_string();
            Some(name)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn rigs_lists_every_shipped_rig_and_shows_each_byte_for_byte() {
    let list = joulebench().arg("rigs").output().unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let text = String::from_utf8(list.stdout).unwrap();
    let listed: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(listed, shipped(), "{text}");
    for name in shipped() {
        let line = text
            .lines()
            .find(|l| l.split(' ').next() == Some(&name))
            .unwrap();
        assert!(line.len() > name.len() + 2, "no description: {line}");
        let shown = joulebench().args(["rigs", "show", &name]).output().unwrap();
        assert!(shown.status.success(), "{name}: {}", stderr(&shown));
        let file = std::fs::read(repo().join("rigs").join(format!("{name}.toml"))).unwrap();
        assert!(
            shown.stdout == file,
            "rigs show {name} is not rigs/{name}.toml"
        );
    }
}

#[test]
fn an_unknown_rig_name_is_one_line_naming_the_built_in_ones() {
    let out = joulebench()
        .args(["rigs", "show", "rpi9"])
        .output()
        .unwrap();
    assert_one_line_error(&out, "no built-in rig \"rpi9\"; the built-in rigs are ");
    assert!(
        stderr(&out).contains("rpi3-coral, rpi3-cpu"),
        "{}",
        stderr(&out)
    );
}

/// A shipped board rig on this machine, which has none of its hardware (no Coral, no INA219):
/// refused in one line before anything is measured, never a panic.
#[test]
fn a_board_rig_without_its_hardware_is_one_line() {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = run(&["run", "--rig", "rpi3-coral", "--out", s(&out_dir)]);
    // The Edge TPU backend opens first: without libedgetpu (or the compiled model) it stops
    // the run, whichever is missing.
    assert_one_line_error(&out, "backend 0 (edgetpu)");
    assert!(!out_dir.exists());
}
