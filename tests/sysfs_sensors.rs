//! The sysfs sensors (rapl, hwmon, ina3221) and detection, through the real binary, on a fake
//! sysfs tree whose counters a writer thread advances at known rates while the run goes on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

/// The known draws, watts.
const RAPL_W: f64 = 150.0;
const HWMON_ENERGY_W: f64 = 22.0;
const HWMON_POWER_W: f64 = 7.5;
/// INA3221, JetPack 5/6: 5.000 V × 1.800 A.
const JP5_W: f64 = 9.0;
/// INA3221, JetPack 4: in_power0_input in mW.
const JP4_W: f64 = 4.2;
/// RAPL wraps every 200 J: about every 1.3 s at 150 W, so several times in a run. Reads of a
/// counter this range may be up to 200 J / 1000 W = 200 ms apart before the rig must call the
/// count lost (rapl::CEILING_WATTS): a margin a loaded machine keeps, as a real zone's 262 J
/// does. A smaller range would ask the sampler for a deadline no scheduler promises, and a
/// starved read would rightly break the count.
const RAPL_RANGE_UJ: u64 = 200_000_000;
/// Where the RAPL counter starts: 2 J before its first wrap.
const RAPL_START_UJ: u64 = 198_000_000;
/// The idle and timed windows last at least this long, seconds.
const SHORTEST_WINDOW_S: f64 = 1.0;

/// Writes `value` to `path` atomically (a reader sees the old or the new number, never half).
fn put(path: &Path, value: impl std::fmt::Display) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A fake sysfs tree with one meter of each kind, and the thread that drives its counters.
///
/// It holds the real machine ([`one_run_at_a_time`]) for its whole life: its writer wakes
/// 2000 times a second, and beside another test's measuring run on a 2-core machine it
/// delays that run's sampler by tens of milliseconds (seen: an idle window 3.4 % high).
struct FakeMachine {
    held: HeldMachine,
    root: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<(u64, f64, u32)>>,
}

impl FakeMachine {
    fn start() -> Self {
        let held = one_run_at_a_time();
        // On tmpfs where there is one: renames on a disk file system can block the writer
        // for tens of milliseconds (seen on ext4), and the counters would lag their rates.
        let shm = Path::new("/dev/shm");
        let root = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        let r = &root.path().join("sys");
        let rapl = r.join("class/powercap/intel-rapl:0");
        let energy_chip = r.join("class/hwmon/hwmon1");
        let power_chip = r.join("class/hwmon/hwmon0");
        let jp5 = r.join("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3");
        let jp4 = r.join("bus/i2c/drivers/ina3221x/6-0040/iio:device0");
        for d in [&rapl, &energy_chip, &power_chip, &jp5, &jp4] {
            std::fs::create_dir_all(d).unwrap();
        }
        put(&rapl.join("name"), "package-0");
        put(&rapl.join("max_energy_range_uj"), RAPL_RANGE_UJ);
        put(&rapl.join("energy_uj"), RAPL_START_UJ);
        put(&energy_chip.join("name"), "amd_energy");
        put(&energy_chip.join("energy1_label"), "Esocket0");
        put(&energy_chip.join("energy1_input"), 0);
        put(&power_chip.join("name"), "pmbus");
        put(&power_chip.join("power1_label"), "pin");
        put(
            &power_chip.join("power1_input"),
            (HWMON_POWER_W * 1e6) as u64,
        );
        put(&jp5.join("name"), "ina3221");
        put(&jp5.join("in1_label"), "VDD_IN");
        put(&jp5.join("in1_input"), 5000);
        put(&jp5.join("curr1_input"), 1800);
        put(&jp4.join("rail_name_0"), "POM_5V_IN");
        put(&jp4.join("in_power0_input"), (JP4_W * 1e3) as u64);
        put(&jp4.join("in_voltage0_input"), 5000);
        put(&jp4.join("in_current0_input"), 840);

        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                // Values from wall-clock time: the rate is exact however the thread is
                // scheduled. Updates about every millisecond, like RAPL's (sleeps overshoot
                // on a busy machine, so ask for less).
                let start = Instant::now();
                let mut wraps = 0;
                let mut last = RAPL_START_UJ;
                let (mut prev_t, mut max_gap, mut late) = (0.0f64, 0.0f64, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    let t = start.elapsed().as_secs_f64();
                    max_gap = max_gap.max(t - prev_t);
                    if t - prev_t > 0.002 {
                        late += 1;
                    }
                    prev_t = t;
                    let rapl_uj = (RAPL_START_UJ + (RAPL_W * 1e6 * t) as u64) % RAPL_RANGE_UJ;
                    if rapl_uj < last {
                        wraps += 1;
                    }
                    last = rapl_uj;
                    put(&rapl.join("energy_uj"), rapl_uj);
                    put(
                        &energy_chip.join("energy1_input"),
                        (HWMON_ENERGY_W * 1e6 * t) as u64,
                    );
                    std::thread::sleep(Duration::from_micros(500));
                }
                (wraps, max_gap, late)
            })
        };
        Self {
            held,
            root,
            stop,
            writer: Some(writer),
        }
    }

    /// The folder standing for `/` (`$JOULEBENCH_ROOT`).
    fn path(&self) -> &Path {
        self.root.path()
    }

    /// Its sysfs, as a sensor's `root` names it.
    fn sysfs(&self) -> PathBuf {
        self.root.path().join("sys")
    }

    /// The machine it holds, for running the binary on it.
    fn held(&self) -> &HeldMachine {
        &self.held
    }

    /// Stops the writer; returns how often the RAPL counter wrapped and the writer's longest
    /// gap between updates, seconds.
    fn finish(&mut self) -> (u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let (wraps, max_gap, late) = self.writer.take().unwrap().join().unwrap();
        eprintln!(
            "writer: max gap {:.1} ms, {late} gaps over 2 ms",
            max_gap * 1e3
        );
        (wraps, max_gap)
    }
}

impl Drop for FakeMachine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rig(root: &Path) -> String {
    let root = root.display();
    format!(
        r#"
name = "test-sysfs"
idle_baseline_s = {SHORTEST_WINDOW_S}
[protocol]
warmup = 1
settle_s = 0.1
runs = 20
min_duration_s = {SHORTEST_WINDOW_S}
[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"
[[sensors]]
kind = "rapl"
rail = "package"
domain = "package-0"
root = "{root}"
[[sensors]]
kind = "hwmon"
rail = "socket energy"
chip = "amd_energy"
label = "Esocket0"
root = "{root}"
[[sensors]]
kind = "hwmon"
rail = "psu in"
chip = "pmbus"
label = "pin"
root = "{root}"
[[sensors]]
kind = "ina3221"
rail = "jp5 in"
label = "VDD_IN"
root = "{root}"
[[sensors]]
kind = "ina3221"
rail = "jp4 in"
label = "POM_5V_IN"
root = "{root}"
"#
    )
}

#[test]
fn each_sysfs_sensor_reports_known_watts_within_1_percent_across_a_rapl_wrap() {
    ensure_models();
    let mut machine = FakeMachine::start();
    let run = run_rig_holding(machine.held(), &rig(&machine.sysfs()));
    let (wraps, writer_gap) = machine.finish();
    assert!(run.output.status.success(), "{}", stderr(&run.output));
    // The counters lag the wall clock by up to the writer's longest gap, so a window's
    // energy may be off by that gap's share of the window on top of the 1 %.
    let allowed = 0.01 + writer_gap / SHORTEST_WINDOW_S;
    // The run spans several wraps of the counter (200 J at 150 W: one every 1.33 s).
    assert!(wraps >= 2, "the RAPL counter wrapped {wraps} times");

    let rows = read_csv(&run.out_dir.join("summary.csv"));
    let known = [
        ("package", RAPL_W),
        ("socket energy", HWMON_ENERGY_W),
        ("psu in", HWMON_POWER_W),
        ("jp5 in", JP5_W),
        ("jp4 in", JP4_W),
    ];
    for (rail, watts) in known {
        let row = rows
            .iter()
            .find(|r| r["rail"] == rail)
            .unwrap_or_else(|| panic!("no summary row for {rail}"));
        assert_eq!(row["status"], "ok", "{rail}: {row:?}");
        assert_eq!(row["simulated"], "false");
        for column in ["mean_watts", "idle_watts"] {
            let got: f64 = row[column].parse().unwrap();
            let error = (got - watts) / watts;
            eprintln!(
                "{rail}: {column} {got:.4} W, known {watts} W ({:+.3} %)",
                error * 100.0
            );
            assert!(
                error.abs() < allowed,
                "{rail}: {column} {got} W, known {watts} W, allowed ±{:.2} %",
                allowed * 100.0
            );
        }
    }
    // The counters are recorded as cumulative, unwrapped joules: never decreasing.
    let power = read_csv(&run.out_dir.join("power.csv"));
    let rapl: Vec<f64> = power
        .iter()
        .filter(|r| r["rail"] == "package" && !r["energy_j"].is_empty())
        .map(|r| r["energy_j"].parse().unwrap())
        .collect();
    assert!(
        rapl.windows(2).all(|w| w[1] >= w[0]),
        "RAPL energy went down"
    );
    // More than the counter's whole range: only an unwrapped count gets there.
    let span = rapl.last().unwrap() - rapl.first().unwrap();
    eprintln!("RAPL counted {span:.2} J across a counter range of 200 J");
    assert!(span > RAPL_RANGE_UJ as f64 / 1e6, "only {span} J counted");
}

#[test]
fn detect_lists_the_meters_and_a_rig_snippet() {
    let mut machine = FakeMachine::start();
    let out = joulebench()
        .env("JOULEBENCH_ROOT", machine.path())
        .args(["sensors", "--detect"])
        .output()
        .unwrap();
    machine.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    for line in [
        "RAPL package-0 (intel-rapl:0): readable",
        "INA3221 VDD_IN: readable",
        "INA3221 POM_5V_IN: readable",
        "hwmon pmbus (hwmon0) pin: readable",
        "hwmon amd_energy (hwmon1) Esocket0: readable",
        "[[sensors]]\nkind = \"rapl\"",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    // The snippet's tables name the tree they were found in.
    assert!(stdout.contains(&format!("root = \"{}\"", machine.sysfs().display())));
}

#[test]
fn default_rig_measures_with_detected_meters_or_says_why_not() {
    ensure_models();
    // An empty tree: the fallback, and why.
    let empty = tempfile::tempdir().unwrap();
    let out = joulebench()
        .env("JOULEBENCH_ROOT", empty.path())
        .args(["sensors"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "sensors: no readable meter on this machine (no RAPL zones, hwmon power channels \
             or INA3221 rails under {}); using the rig's ina219-sim",
            empty.path().join("sys").display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("(simulated)"), "{stdout}");

    // A readable tree: its meters replace the simulated one, and run.json says so.
    let mut machine = FakeMachine::start();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = tmp.path().join("run");
    let out = joulebench()
        .env("JOULEBENCH_ROOT", machine.path())
        .args([
            "run",
            "--runs",
            "20",
            "--settle",
            "0.2",
            "--out",
            s(&out_dir),
        ])
        .output()
        .unwrap();
    let (_, writer_gap) = machine.finish();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "joulebench: sensors: this machine's RAPL package-0 (intel-rapl:0) (measured)"
        ) && err.contains("the rig's ina219-sim (5V supply (simulated board)) not used"),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["rig"]["name"], "local");
    assert_eq!(json["sensor_choice"]["source"], "this machine");
    let kinds: Vec<&str> = json["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"rapl") && !kinds.contains(&"ina219-sim"),
        "{kinds:?}"
    );
    let rows = read_csv(&out_dir.join("summary.csv"));
    let rapl = rows.iter().find(|r| r["sensor"] == "rapl").unwrap();
    let watts: f64 = rapl["mean_watts"].parse().unwrap();
    // As above: 1 % plus the writer's longest lag as a share of the timed window.
    let window_s: f64 =
        rapl["inferences"].parse::<f64>().unwrap() / rapl["fps"].parse::<f64>().unwrap();
    let allowed = 0.01 + writer_gap / window_s;
    assert!(
        (watts - RAPL_W).abs() / RAPL_W < allowed,
        "{watts} W, known {RAPL_W} W, allowed ±{:.2} %",
        allowed * 100.0
    );
}

/// A sysfs tree whose one meter is a hwmon power channel that reads `micro_watts`.
fn one_power_channel(micro_watts: i64) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let chip = root.path().join("sys/class/hwmon/hwmon0");
    std::fs::create_dir_all(&chip).unwrap();
    put(&chip.join("name"), "odd");
    put(&chip.join("power1_label"), "pin");
    put(&chip.join("power1_input"), micro_watts);
    root
}

/// A meter that reads -5 W or 1 µW is a misread channel: detection does not offer it, the
/// default rig does not pick it, and a rig that names it gets an invalid row and exit 1, not
/// an `ok` beside an impossible figure (issue 30).
#[test]
fn an_impossible_reading_is_not_offered_not_picked_and_never_ok() {
    ensure_models();
    for (micro_watts, says) in [
        (
            -5_000_000,
            "-5.000 W: a meter of a supply never reads negative power",
        ),
        (
            1,
            "0.000001 W, less than the 0.01 W any board running a model draws",
        ),
    ] {
        let root = one_power_channel(micro_watts);
        let out = joulebench()
            .env("JOULEBENCH_ROOT", root.path())
            .args(["sensors", "--detect"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(
                "hwmon odd (hwmon0) pin: not readable: it reads {says}"
            )),
            "{stdout}"
        );
        assert!(!stdout.contains("kind = \"hwmon\""), "offered: {stdout}");

        // The default rig falls back to its simulated board, and says so.
        let tmp = tempfile::tempdir().unwrap();
        let out_dir = tmp.path().join("local");
        let out = {
            let _machine = one_run_at_a_time();
            joulebench()
                .env("JOULEBENCH_ROOT", root.path())
                .args(["run", "--runs", "5", "--out", s(&out_dir)])
                .output()
                .unwrap()
        };
        assert!(out.status.success(), "{}", stderr(&out));
        let rows = read_csv(&out_dir.join("summary.csv"));
        assert!(rows.iter().all(|r| r["sensor"] == "ina219-sim"), "{rows:?}");

        // Named by a rig: every row invalid, naming the reading, with no figures; exit 1.
        let rig = write_rig(
            tmp.path(),
            "odd",
            &format!(
                r#"
name = "odd"
idle_baseline_s = 0.5
[protocol]
warmup = 1
settle_s = 0.1
runs = 5
min_duration_s = 0.5
[[backends]]
kind = "tflite"
model = "{}"
image = "bird.bmp"
[[sensors]]
kind = "hwmon"
rail = "psu in"
chip = "odd"
label = "pin"
root = "{}"
"#,
                timed_model(),
                root.path().join("sys").display()
            ),
        );
        let out_dir = tmp.path().join("named");
        let out = run(&["run", "--rig", s(&rig), "--out", s(&out_dir)]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        for row in read_csv(&out_dir.join("summary.csv")) {
            assert!(
                row["status"].starts_with("invalid: ") && row["status"].contains(says),
                "{}",
                row["status"]
            );
            assert_eq!(row["inferences_per_joule"], "", "{row:?}");
        }
    }
}

/// A hwmon energy counter that drops to 0 every 0.2 s, as if its driver were reloaded over and
/// over: each drop loses count, and every window across one is invalid, naming the counter's
/// file, the drop and when it was read, with no figures; exit 1. The read's error reaches the
/// summary as a counter break whatever text its sensor puts before it (issue 28: the summary
/// once knew a break only by its message's start, which the file's name hid).
#[test]
fn a_counter_that_goes_back_makes_every_window_across_it_invalid() {
    ensure_models();
    let machine = one_run_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let chip = root.path().join("sys/class/hwmon/hwmon0");
    std::fs::create_dir_all(&chip).unwrap();
    put(&chip.join("name"), "reloaded");
    put(&chip.join("energy1_label"), "Esocket0");
    let energy = chip.join("energy1_input");
    put(&energy, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, energy) = (Arc::clone(&stop), energy.clone());
        std::thread::spawn(move || {
            // 10 W, back to 0 every 0.2 s.
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let t = start.elapsed().as_secs_f64() % 0.2;
                put(&energy, (10e6 * t) as u64);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let run = run_rig_holding(
        &machine,
        &format!(
            r#"
name = "reloaded"
idle_baseline_s = 0.5
[protocol]
warmup = 1
settle_s = 0.1
runs = 3
min_duration_s = 0.5
[[backends]]
kind = "tflite"
model = "{}"
image = "bird.bmp"
[[sensors]]
kind = "hwmon"
rail = "socket energy"
chip = "reloaded"
label = "Esocket0"
root = "{}"
"#,
            timed_model(),
            root.path().join("sys").display()
        ),
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(run.output.status.code(), Some(1), "{}", stderr(&run.output));
    let lost = format!(
        "{}: the energy counter lost count: the counter went backwards and has no wrap range: \
         was the driver reloaded? (from ",
        energy.display()
    );
    let power = read_csv(&run.out_dir.join("power.csv"));
    assert!(
        power.iter().any(|r| r["error"].starts_with(&lost)),
        "no read lost count"
    );
    let rows = read_csv(&run.out_dir.join("summary.csv"));
    assert!(!rows.is_empty());
    for row in rows {
        let status = &row["status"];
        assert!(
            status.starts_with(&format!("invalid: {lost}")) && status.contains(" µJ), read at "),
            "{status}"
        );
        assert_eq!(row["inferences_per_joule"], "", "{row:?}");
    }
    // summarize rebuilds the same rows from the files: power.csv's counter_break column
    // carries the kind, which the message alone would not.
    let summary = run.out_dir.join("summary.csv");
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        power
            .iter()
            .all(|r| (r["counter_break"] == "true") == r["error"].starts_with(&lost)),
        "counter_break and the errors disagree"
    );
    std::fs::remove_file(&summary).unwrap();
    let out = joulebench()
        .args(["summarize", s(&run.out_dir)])
        .output()
        .unwrap();
    let rebuilt = std::fs::read_to_string(&summary)
        .unwrap_or_else(|e| panic!("no summary.csv rebuilt ({e}): {}", stderr(&out)));
    assert_eq!(rebuilt, written);
}

/// A tree whose power file is a FIFO (a copied or faked tree gone wrong): detection says so
/// and finishes, where a plain read would wait for a writer forever (issue 30).
#[test]
fn detection_does_not_hang_on_a_file_that_blocks() {
    let root = one_power_channel(5_000_000);
    let power = root.path().join("sys/class/hwmon/hwmon0/power1_input");
    std::fs::remove_file(&power).unwrap();
    let path = std::ffi::CString::new(s(&power)).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let mut child = joulebench()
        .env("JOULEBENCH_ROOT", root.path())
        .args(["sensors", "--detect"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Minutes, not the test's speed: the bound is only there to fail instead of hanging.
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("sensors --detect still waits on the FIFO after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hwmon odd (hwmon0) pin: not readable: ")
            && stdout.contains("not a regular file, as a sysfs attribute is"),
        "{stdout}"
    );
}
