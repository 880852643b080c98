//! A Raspberry Pi 5's PMIC (`rpi-pmic`) through the real binary, on a fake Pi 5: a device-tree
//! model under `$JOULEBENCH_ROOT` and a stand-in `vcgencmd` that prints what a file holds, in
//! either firmware's format, so a test can change the board's draw (or break its output)
//! while the binary runs.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// What a Pi 5 with current firmware prints (shortened to three rails and two voltages
/// without a current): VDD_CORE 2 A × 0.8 V = 1.6 W, 3V3_SYS 0.1 A × 3.3 V = 0.33 W.
const CURRENT_FIRMWARE: &str = "     VDD_CORE_A current(7)=2.00000000A
   3V3_SYS_A current(1)=0.10000000A
   DDR_VDD2_A current(4)=0.25000000A
   VDD_CORE_V volt(15)=0.80000000V
   3V3_SYS_V volt(9)=3.30000000V
   DDR_VDD2_V volt(12)=1.10000000V
   EXT5V_V volt(24)=5.12000000V
   BATT_V volt(25)=0.00000000V
";
const CORE_W: f64 = 1.6;
const SYS_W: f64 = 0.33;
const ALL_W: f64 = 1.6 + 0.33 + 0.275;

/// The same board as older firmware prints it.
const OLDER_FIRMWARE: &str = "VDD_CORE_A=2.000A
VDD_CORE_V=0.800V
3V3_SYS_A=0.100A
3V3_SYS_V=3.300V
DDR_VDD2_A=0.250A
DDR_VDD2_V=1.100V
EXT5V_V=5.120V
";

/// A fake Pi 5: `root` stands for `/`, with the device tree's model; `bin/vcgencmd` prints
/// `adc.txt` for `pmic_read_adc`, and fails like the real one for anything else.
struct FakePi5 {
    root: tempfile::TempDir,
}

impl FakePi5 {
    fn new(adc: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dt = root.path().join("proc/device-tree");
        std::fs::create_dir_all(&dt).unwrap();
        // The firmware ends the string with a NUL.
        std::fs::write(dt.join("model"), "Raspberry Pi 5 Model B Rev 1.0\0").unwrap();
        std::fs::create_dir_all(root.path().join("sys")).unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let pi = Self { root };
        pi.set_adc(adc);
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = pmic_read_adc ] || {{ echo \"error=2 error_msg=\\\"Command not \
             registered\\\"\" >&2; exit 2; }}\nexec cat '{}'\n",
            pi.adc_file().display()
        );
        std::fs::write(pi.vcgencmd(), script).unwrap();
        std::fs::set_permissions(pi.vcgencmd(), std::fs::Permissions::from_mode(0o755)).unwrap();
        pi
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn vcgencmd(&self) -> PathBuf {
        self.path().join("bin/vcgencmd")
    }

    fn adc_file(&self) -> PathBuf {
        self.path().join("adc.txt")
    }

    /// What the next `pmic_read_adc` prints (replaced whole: a read sees the old or the new).
    fn set_adc(&self, text: &str) {
        let tmp = self.path().join("adc.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.adc_file()).unwrap();
    }
}

/// The `[[sensors]]` table of a PMIC table on the fake Pi, read every 50 ms: its windows need
/// ten reads (0.5 s).
fn pmic_table(pi: &FakePi5, rail: &str, rails: &str) -> String {
    format!(
        "[[sensors]]\nkind = \"rpi-pmic\"\nrail = \"{rail}\"\nvcgencmd = \"{}\"\nperiod_ms = 50\n{rails}\n",
        pi.vcgencmd().display()
    )
}

/// A small rig on the fake Pi: windows of at least `window_s`, the given tables.
fn rig(window_s: f64, extra: &str, tables: &str) -> String {
    format!(
        r#"
name = "test-pi5"
idle_baseline_s = {window_s}
{extra}
[protocol]
warmup = 1
settle_s = 0.1
runs = 20
min_duration_s = {window_s}
[[backends]]
kind = "tflite"
model = "{model}"
image = "bird.bmp"
{tables}
"#,
        model = timed_model(),
    )
}

fn row<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    rail: &str,
) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| r["rail"] == rail)
        .unwrap_or_else(|| panic!("no row for {rail}: {rows:?}"))
}

fn number(row: &std::collections::HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} in {row:?}", row[column]))
}

#[test]
fn a_run_reports_each_rails_watts_and_a_total_labelled_partial_in_either_format() {
    ensure_models();
    for format in [CURRENT_FIRMWARE, OLDER_FIRMWARE] {
        let pi = FakePi5::new(format);
        let tables = [
            pmic_table(&pi, "core", "rails = [\"VDD_CORE\"]"),
            pmic_table(&pi, "3v3", "rails = [\"3V3_SYS\"]"),
            pmic_table(&pi, "all rails", ""),
        ]
        .concat();
        let run = run_rig(&rig(0.5, "total = [\"core\", \"3v3\"]", &tables));
        let stdout = String::from_utf8_lossy(&run.output.stdout).into_owned();
        assert!(run.output.status.success(), "{}", stderr(&run.output));
        let rows = read_csv(&run.out_dir.join("summary.csv"));
        // Constant draws: every mean is the product of the printed figures.
        for (rail, watts) in [
            ("core", CORE_W),
            ("3v3", SYS_W),
            ("all rails", ALL_W),
            ("core + 3v3", CORE_W + SYS_W),
        ] {
            let r = row(&rows, rail);
            assert_eq!(r["status"], "ok", "{rail}: {r:?}");
            assert_eq!(r["origin"], "partial", "{rail}: {r:?}");
            assert_eq!(r["simulated"], "false");
            for column in ["mean_watts", "idle_watts"] {
                let got = number(r, column);
                assert!(
                    (got - watts).abs() < 1e-9,
                    "{rail} {column}: {got} W, not {watts}"
                );
            }
            assert!(number(r, "sampler_cpu_pct") > 0.0, "{r:?}");
        }
        assert_eq!(row(&rows, "core + 3v3")["sensor"], "total");
        // One rail's table carries its volts and amps; power.csv's rows say partial too.
        let power = read_csv(&run.out_dir.join("power.csv"));
        let core = power.iter().find(|p| p["rail"] == "core").unwrap();
        assert_eq!(
            (&core["volts"][..], &core["amps"][..]),
            ("0.8", "2.0"),
            "{core:?}"
        );
        assert!(power.iter().all(|p| p["origin"] == "partial"));
        // The console's table labels every row.
        let labelled = stdout
            .lines()
            .filter(|l| l.contains("rpi-pmic") || l.contains("total"))
            .collect::<Vec<_>>();
        assert_eq!(labelled.len(), 4, "{stdout}");
        for line in labelled {
            assert!(
                line.contains("(partial: SoC rails only, not the board's input)"),
                "{line}"
            );
        }
        // And the report's: every row of its table, every power chart's title.
        let report_dir = run.dir.path().join("report");
        let out = joulebench()
            .args(["report", "--out", s(&report_dir), s(&run.out_dir)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let report = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
        assert_eq!(report.matches(" | partial | ").count(), 4, "{report}");
        assert_eq!(
            report.matches("### Power, run 1 sensor ").count(),
            report
                .matches("(partial: SoC rails only, not the board's input)\n")
                .count(),
            "{report}"
        );
    }
}

#[test]
fn sensors_reads_the_rails_once_and_detect_finds_a_pi_5() {
    let pi = FakePi5::new(CURRENT_FIRMWARE);
    let tmp = tempfile::tempdir().unwrap();
    let rig_path = write_rig(
        tmp.path(),
        "pi5",
        &rig(0.5, "", &pmic_table(&pi, "Pi 5 PMIC rails", "")),
    );
    let out = joulebench()
        .args(["sensors", "--rig", s(&rig_path)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr(&out));
    assert!(
        stdout.starts_with(&format!(
            "rpi-pmic (Pi 5 PMIC rails): 2.205 W  (partial: SoC rails only, not the board's \
             input)  [{} pmic_read_adc, all 3 rails: SoC side only, not the 5 V input, read \
             every 50 ms]",
            pi.vcgencmd().display()
        )),
        "{stdout}"
    );

    // Detection: the device tree says Pi 5 and vcgencmd (on PATH) runs.
    // The stand-in first on PATH (its `cat` further on it); or nothing at all on PATH.
    let with_stand_in = std::env::join_paths([pi.path().join("bin")].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let with_stand_in = Path::new(&with_stand_in);
    let detect = |root: &Path, path: &Path| {
        let out = joulebench()
            .env("JOULEBENCH_ROOT", root)
            .env("PATH", path)
            .args(["sensors", "--detect"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = detect(pi.path(), with_stand_in);
    assert!(
        listed.contains(
            "Raspberry Pi 5 Model B Rev 1.0 PMIC (vcgencmd pmic_read_adc): readable  [vcgencmd \
             pmic_read_adc, all 3 rails: SoC side only, not the 5 V input, read every 500 ms]"
        ),
        "{listed}"
    );
    assert!(
        listed.contains("[[sensors]]\nkind = \"rpi-pmic\"\nrail = \"Pi 5 PMIC rails\"\n"),
        "{listed}"
    );
    // Without vcgencmd, it is there and says why it cannot be read; no snippet.
    let empty = tempfile::tempdir().unwrap();
    let unreadable = detect(pi.path(), empty.path());
    assert!(
        unreadable.contains(
            "PMIC (vcgencmd pmic_read_adc): not readable: cannot run vcgencmd: no such program \
             on PATH"
        ),
        "{unreadable}"
    );
    assert!(!unreadable.contains("kind = \"rpi-pmic\""), "{unreadable}");
    // The sysfs copy of the model serves as well; another board is no Pi 5.
    std::fs::remove_file(pi.path().join("proc/device-tree/model")).unwrap();
    let base = pi.path().join("sys/firmware/devicetree/base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("model"), "Raspberry Pi 5 Model B Rev 1.1\0").unwrap();
    assert!(detect(pi.path(), with_stand_in).contains("Rev 1.1 PMIC"));
    std::fs::write(base.join("model"), "Raspberry Pi 4 Model B Rev 1.5\0").unwrap();
    assert!(!detect(pi.path(), with_stand_in).contains("PMIC"));
}

/// One `calibrate` per load: the first point alone fits nothing, the second gives the gain
/// and the offset, and the rig then reports the fit's estimate of the input, measured.
#[test]
fn calibrate_fits_a_gain_and_an_offset_to_a_usb_c_meter() {
    let pi = FakePi5::new(CURRENT_FIRMWARE);
    let tmp = tempfile::tempdir().unwrap();
    let rig_path = write_rig(
        tmp.path(),
        "pi5",
        &rig(0.5, "", &pmic_table(&pi, "Pi 5 PMIC rails", "")),
    );
    let calibrate = |watts: &str| {
        let out = joulebench()
            .args([
                "calibrate",
                "--rig",
                s(&rig_path),
                "--rail",
                "Pi 5 PMIC rails",
                "--watts",
                watts,
                "--reference-uncertainty-pct",
                "1",
                "--seconds",
                "1",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Idle: 2.205 W of rails, 3 W at the input.
    let first = calibrate("3");
    assert!(
        first.starts_with("measured   2.20500 W of PMIC rails (mean of "),
        "{first}"
    );
    assert!(first.contains("points     1 (2.205 → 3.000 W)"), "{first}");
    assert!(first.contains("fit        none yet: a gain and an offset need a second point"));
    // Under load: VDD_CORE at 4 A, 3.805 W of rails; 5 W at the input.
    pi.set_adc(&CURRENT_FIRMWARE.replace("2.00000000A", "4.00000000A"));
    let second = calibrate("5");
    // 2 W more at the input for 1.6 W more of rails: gain 1.25; 3 − 1.25 × 2.205 = 0.24375.
    assert!(
        second.contains(
            "fit        input = 1.2500 × PMIC +0.2438 W, fitted to 2 points over 2.21 to 3.81 W \
             of the PMIC, within ±1.00 %"
        ),
        "{second}"
    );
    assert!(second.contains(&format!(
        "wrote calibration point 2 into sensors[0] of {}",
        rig_path.display()
    )));
    let text = std::fs::read_to_string(&rig_path).unwrap();
    assert_eq!(
        text.matches("# joulebench calibrate, ").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("{ pmic_w = 2.205, reference_w = 3.0, reference_uncertainty_pct = 1.0 }"),
        "{text}"
    );
    // The sensor now reports the fit at what the PMIC reads, as a measurement of the input.
    let out = joulebench()
        .args(["sensors", "--rig", s(&rig_path)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("rpi-pmic (Pi 5 PMIC rails): 5.000 W  ["),
        "{stdout}"
    );
    assert!(
        stdout.contains("fitted to the 5 V input: input = 1.2500 × PMIC"),
        "{stdout}"
    );
    // A reference in amps is refused before anything is read.
    let out = joulebench()
        .args([
            "calibrate",
            "--rig",
            s(&rig_path),
            "--rail",
            "Pi 5 PMIC rails",
            "--amps",
            "1",
            "--reference-uncertainty-pct",
            "1",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, "give --watts, not --amps");
}

fn sensors_of(pi: &FakePi5) -> (Output, String) {
    let tmp = tempfile::tempdir().unwrap();
    let rig_path = write_rig(
        tmp.path(),
        "pi5",
        &rig(0.5, "", &pmic_table(pi, "pmic", "")),
    );
    let out = joulebench()
        .args(["sensors", "--rig", s(&rig_path)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

#[test]
fn output_in_no_known_format_a_failing_or_missing_vcgencmd_are_one_line_errors() {
    ensure_models();
    let pi = FakePi5::new("   VDD_CORE_A current(7)=2.1mA\n   VDD_CORE_V volt(15)=0.8V\n");
    let (out, stdout) = sensors_of(&pi);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout,
        "rpi-pmic (pmic): error: vcgencmd pmic_read_adc printed \"VDD_CORE_A \
         current(7)=2.1mA\", which is not a reading joulebench knows (\"VDD_CORE_A \
         current(7)=2.12345600A\" or \"VDD_CORE_A=2.123A\")\n"
    );
    // A run stops before measuring, in one line that names the sensor.
    let tmp = tempfile::tempdir().unwrap();
    let rig_path = write_rig(
        tmp.path(),
        "pi5",
        &rig(0.5, "", &pmic_table(&pi, "pmic", "")),
    );
    let out = run(&[
        "run",
        "--rig",
        s(&rig_path),
        "--out",
        s(&tmp.path().join("run")),
    ]);
    assert_one_line_error(
        &out,
        "sensor rpi-pmic (pmic): vcgencmd pmic_read_adc printed",
    );

    // The firmware refuses the command (old firmware without pmic_read_adc): its message.
    std::fs::write(
        pi.vcgencmd(),
        "#!/bin/sh\necho 'error=2 error_msg=\"Command not registered\"' >&2\nexit 2\n",
    )
    .unwrap();
    let (_, stdout) = sensors_of(&pi);
    assert_eq!(
        stdout,
        format!(
            "rpi-pmic (pmic): error: {} pmic_read_adc failed (exit status 2): error=2 \
             error_msg=\"Command not registered\"\n",
            pi.vcgencmd().display()
        )
    );
    std::fs::remove_file(pi.vcgencmd()).unwrap();
    let (_, stdout) = sensors_of(&pi);
    assert_eq!(
        stdout,
        format!(
            "rpi-pmic (pmic): error: cannot run {}: no such file\n",
            pi.vcgencmd().display()
        )
    );
}

/// Waits (at most 120 s) until the run streaming into `out_dir` has a good reading taken in
/// its timed phase in `power.csv`; false if it never did.
fn wait_for_timed_reading(out_dir: &Path) -> bool {
    let path = out_dir.join("power.csv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        // Rows as flushed: the last one may be torn, and a torn row is not counted.
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let good_timed = csv::Reader::from_reader(whole.as_bytes())
            .deserialize::<std::collections::HashMap<String, String>>()
            .flatten()
            .any(|r| r["phase"] == "timed" && r["error"].is_empty());
        if good_timed || std::time::Instant::now() >= deadline {
            return good_timed;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Output that breaks while a run measures is a failed read like any sensor's: the run goes
/// on, records each failure, gives the sensor up once it has failed for 5 s, and keeps what
/// was read before.
#[test]
fn output_that_breaks_mid_run_is_a_failed_read_and_the_run_keeps_what_it_read() {
    ensure_models();
    let pi = FakePi5::new(CURRENT_FIRMWARE);
    let tmp = tempfile::tempdir().unwrap();
    // A timed window of at least 8 s: the reads fail for more than the sampler's 5 s before
    // it ends (the first good timed reading is on disk within a read period and a flush of
    // the window's start).
    let text = rig(0.5, "", &pmic_table(&pi, "pmic", ""))
        .replace("min_duration_s = 0.5", "min_duration_s = 8.0");
    let rig_path = write_rig(tmp.path(), "pi5", &text);
    let out_dir = tmp.path().join("run");
    let _machine = one_run_at_a_time();
    let child = joulebench()
        .args(["run", "--rig", s(&rig_path), "--out", s(&out_dir)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Broken only once a good timed reading is on disk (a fast machine sees the timed rows
    // before the sensor's first read in them).
    assert!(wait_for_timed_rows(&out_dir), "the timed run never began");
    assert!(
        wait_for_timed_reading(&out_dir),
        "no good reading while timed"
    );
    pi.set_adc("garbage\n");
    let out = child.wait_with_output().unwrap();
    // A row that is not ok makes the exit status 1; the run itself finished.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = read_csv(&out_dir.join("summary.csv"));
    let r = row(&rows, "pmic");
    assert!(
        r["status"].starts_with("sensor failed: ")
            && r["status"].contains("vcgencmd pmic_read_adc printed \"garbage\""),
        "{r:?}"
    );
    assert!((number(r, "idle_watts") - ALL_W).abs() < 1e-9, "{r:?}");
    let power = read_csv(&out_dir.join("power.csv"));
    let read: Vec<_> = power.iter().filter(|p| p["error"].is_empty()).collect();
    let failed: Vec<_> = power.iter().filter(|p| !p["error"].is_empty()).collect();
    assert!(read
        .iter()
        .all(|p| (number(p, "watts") - ALL_W).abs() < 1e-9));
    assert!(
        read.iter().any(|p| p["phase"] == "timed"),
        "nothing read while timed"
    );
    assert!(!failed.is_empty(), "no failed read recorded");
    for p in failed {
        assert_eq!(
            p["error"],
            "vcgencmd pmic_read_adc printed \"garbage\", which is not a reading joulebench \
             knows (\"VDD_CORE_A current(7)=2.12345600A\" or \"VDD_CORE_A=2.123A\")"
        );
    }
}

/// What one read costs, the figure the default read period (500 ms) is chosen from: CPU
/// seconds per read in the child and in the reading thread, over many reads, for the shell
/// stand-in through the whole sensor and for a minimal C program (`true`, as small as
/// vcgencmd) through the same spawn and wait. A benchmark, not a test:
/// `cargo test --release --test integration rpi_pmic::read_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn read_cost() {
    use joulebench::sensor::rpi_pmic::{self, command, RpiPmicSpec};
    use joulebench::sensor::PowerSensor;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    const READS: u32 = 500;
    let thread_cpu = || cpu_time::ThreadTime::now();
    let pct = |per_read: Duration| {
        per_read.as_secs_f64() / rpi_pmic::DEFAULT_PERIOD.as_secs_f64() * 100.0
    };

    let pi = FakePi5::new(CURRENT_FIRMWARE);
    // A period of 0: every read runs the stand-in (none reuses another's run).
    let mut sensor = rpi_pmic::open(&RpiPmicSpec {
        period_ms: Some(1),
        ..RpiPmicSpec::new("cost", &pi.vcgencmd())
    })
    .unwrap();
    let child = sensor.helper_cpu().unwrap();
    let before_child = child.load(Ordering::Relaxed);
    let (wall, own) = (Instant::now(), thread_cpu());
    for _ in 0..READS {
        sensor.read().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let own = own.elapsed() / READS;
    let wall = wall.elapsed() / READS;
    let child = Duration::from_nanos(child.load(Ordering::Relaxed) - before_child) / READS;
    eprintln!(
        "shell stand-in, whole read: child {:.3} ms + thread {:.3} ms CPU a read ({:.2} % of a \
         core at one read every {} ms); wall {:.2} ms a read including a 1 ms sleep",
        child.as_secs_f64() * 1e3,
        own.as_secs_f64() * 1e3,
        pct(child + own),
        rpi_pmic::DEFAULT_PERIOD.as_millis(),
        wall.as_secs_f64() * 1e3
    );

    let truth = Path::new("true");
    let (mut child, own) = (Duration::ZERO, thread_cpu());
    for _ in 0..READS {
        let out = command::run_with(truth, &[], command::TIMEOUT);
        out.stdout.unwrap();
        child += out.cpu;
    }
    let own = own.elapsed() / READS;
    let child = child / READS;
    eprintln!(
        "`true` (a small C program), spawn and wait: child {:.3} ms + thread {:.3} ms CPU a \
         read ({:.2} % of a core at one read every {} ms)",
        child.as_secs_f64() * 1e3,
        own.as_secs_f64() * 1e3,
        pct(child + own),
        rpi_pmic::DEFAULT_PERIOD.as_millis()
    );
}
