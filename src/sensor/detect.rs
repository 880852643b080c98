//! What power meters this machine offers: RAPL zones, hwmon power and energy channels,
//! INA3221 rails (all under a sysfs root, `/sys`, or `sys` under `$JOULEBENCH_ROOT`), a
//! Raspberry Pi 5's PMIC (where the device tree under that root names a Pi 5) and NVIDIA GPUs
//! through NVML; each with whether it can be read now, and if not, why.
//!
//! `joulebench sensors --detect` lists them with a rig snippet for the readable ones; a rig
//! with `detect_sensors = true` uses them instead of its own `[[sensors]]` ([`resolve`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::hwmon::{self, HwmonSpec};
use super::ina3221::{self, Ina3221Spec};
use super::nvml;
use super::rapl::{self, RaplSpec};
use super::rpi_pmic::RpiPmicSpec;
use crate::rig::{Device, NvmlMethod, NvmlSpec, Rig, SensorSpec};

/// The sysfs root detection looks in: `sys` under the machine's root ([`crate::machine::root`]:
/// `/`, or `$JOULEBENCH_ROOT` for a copy of another machine's files or a test's fake tree).
pub fn sysfs_root() -> PathBuf {
    crate::machine::root().join("sys")
}

/// One meter found.
#[derive(Debug, Clone)]
pub struct Detected {
    /// What it is, e.g. "RAPL package-0 (intel-rapl:0)".
    pub what: String,
    /// The `[[sensors]]` table that reads it.
    pub spec: SensorSpec,
    /// The sensor's detail when it opened and read, else why not (one line).
    pub readable: Result<String, String>,
    /// Whether a run with `detect_sensors` uses it: a whole package rather than its parts, a
    /// Jetson's board input rather than the rails inside it.
    pub primary: bool,
}

/// How long one meter may take to open and read before detection gives up on it: a driver
/// stuck on its bus can hold a sysfs read for seconds, and detection must not hang with it.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// [`check_now`] in a thread of its own, given up after [`ANSWER_WITHIN`] (the thread is left
/// to finish or not; the process does not wait for it).
fn check(spec: &SensorSpec) -> Result<String, String> {
    let (send, answer) = std::sync::mpsc::channel();
    let spec = spec.clone();
    std::thread::spawn(move || {
        let _ = send.send(check_now(&spec));
    });
    answer.recv_timeout(ANSWER_WITHIN).unwrap_or_else(|_| {
        Err(format!(
            "it did not answer within {} s (a driver stuck on its bus?)",
            ANSWER_WITHIN.as_secs()
        ))
    })
}

fn check_now(spec: &SensorSpec) -> Result<String, String> {
    // A meter a rig cannot name (a hwmon chip with an empty name) is no use in a snippet.
    spec.validate_alone()
        .map_err(|e| format!("a rig cannot select it: {e}"))?;
    let ctx = super::SensorContext::new(
        crate::clock::RunClock::start(),
        crate::clock::PhaseLog::new(),
    );
    let one_line = |e: anyhow::Error| format!("{e:#}").replace('\n', " ");
    let mut sensor = super::open(spec, &ctx).map_err(one_line)?;
    // A meter whose reading no supply gives (negative, beyond its range, a board drawing
    // microwatts) is a misread channel: offering it would print impossible figures.
    let reading = sensor.read().map_err(one_line)?;
    let impossible = sensor.limits().judge(&reading).or_else(|| {
        // A counter's first reading has no power yet; its windows are judged as they come.
        (reading.energy_j.is_none())
            .then(|| super::limits::too_little(reading.watts))
            .flatten()
    });
    match impossible {
        Some(why) => Err(format!("it reads {why}")),
        None => Ok(sensor.info().detail.clone()),
    }
}

/// The meters under a sysfs root (RAPL, hwmon, INA3221, a Pi 5's PMIC), each opened once to
/// see whether it reads. NVML is not in here: see [`detect_gpus`].
pub fn detect(root: &Path) -> Vec<Detected> {
    let mut found = Vec::new();

    let zones = rapl::zones(root);
    for z in &zones {
        // By domain name where that is unique (clearer in a rig), else by folder.
        let unique = zones.iter().filter(|o| o.name == z.name).count() == 1;
        let spec = SensorSpec::Rapl(RaplSpec {
            rail: format!("RAPL {}", z.name),
            domain: unique.then(|| z.name.clone()),
            zone: (!unique).then(|| z.zone.clone()),
            root: root.to_path_buf(),
        });
        found.push(Detected {
            what: format!("RAPL {} ({})", z.name, z.zone),
            readable: check(&spec),
            spec,
            primary: z.is_top_level(),
        });
    }

    let rails = ina3221::rails(root);
    let has_board_input = rails.iter().any(|r| ina3221::is_board_input(&r.label));
    let ina_hwmon = rails
        .iter()
        .any(|r| matches!(r.files, ina3221::Files::Hwmon { .. }));
    for r in &rails {
        let spec = SensorSpec::Ina3221(Ina3221Spec {
            rail: format!("Jetson {}", r.label),
            label: r.label.clone(),
            period_ms: None,
            root: root.to_path_buf(),
        });
        found.push(Detected {
            what: format!("INA3221 {}", r.label),
            readable: check(&spec),
            spec,
            primary: !has_board_input || ina3221::is_board_input(&r.label),
        });
    }

    found.extend(detect_pmic(root));

    let chips = hwmon::chips(root);
    for chip in &chips {
        // A Jetson's INA3221 on JetPack 5/6 is also a hwmon chip: listed once, as ina3221.
        if ina_hwmon && chip.name == "ina3221" {
            continue;
        }
        let same: Vec<_> = chips.iter().filter(|c| c.name == chip.name).collect();
        let index = same.iter().position(|c| c.dir == chip.dir);
        for ch in hwmon::power_channels(&chip.dir) {
            let name = ch
                .label
                .clone()
                .unwrap_or_else(|| format!("channel {}", ch.number));
            let spec = SensorSpec::Hwmon(HwmonSpec {
                rail: format!("{} {name}", chip.name),
                chip: chip.name.clone(),
                chip_index: if same.len() > 1 { index } else { None },
                label: ch.label.clone(),
                channel: ch.label.is_none().then_some(ch.number),
                period_ms: None,
                root: root.to_path_buf(),
            });
            found.push(Detected {
                what: format!(
                    "hwmon {} ({}) {name}",
                    chip.name,
                    chip.dir.file_name().unwrap_or_default().to_string_lossy()
                ),
                readable: check(&spec),
                spec,
                primary: true,
            });
        }
    }
    found
}

/// The device tree's model name, from the machine that holds the sysfs `root`: its
/// `/proc/device-tree/model`, else sysfs's own copy; without the NUL the firmware ends it with.
pub fn board_model(root: &Path) -> Option<String> {
    let proc = root
        .parent()
        .map(|machine| machine.join("proc/device-tree/model"));
    let sys = root.join("firmware/devicetree/base/model");
    proc.into_iter().chain([sys]).find_map(|path| {
        let bytes = std::fs::read(path).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let model = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        (!model.is_empty()).then(|| model.to_string())
    })
}

/// A Raspberry Pi 5's PMIC (a Pi 500 is a Pi 5 too), where the device tree says the board is
/// one; readable when vcgencmd (on PATH) runs and prints its rails. Primary: a Pi 5 has no
/// other meter of its own, and its figures are labelled partial wherever they appear.
fn detect_pmic(root: &Path) -> Option<Detected> {
    let model = board_model(root)?;
    if !model.starts_with("Raspberry Pi 5") {
        return None;
    }
    let spec = SensorSpec::RpiPmic(RpiPmicSpec::new(
        "Pi 5 PMIC rails",
        Path::new(super::rpi_pmic::DEFAULT_PROGRAM),
    ));
    Some(Detected {
        what: format!("{model} PMIC (vcgencmd pmic_read_adc)"),
        readable: check(&spec),
        spec,
        primary: true,
    })
}

/// NVIDIA GPUs through NVML, each opened (half a second each: NVML's update rate is
/// measured); an error (one line) where NVML is not available.
pub fn detect_gpus() -> Result<Vec<Detected>, String> {
    let count = nvml::device_count().map_err(|e| format!("{e:#}"))?;
    Ok((0..count)
        .map(|device| {
            let spec = SensorSpec::Nvml(NvmlSpec {
                rail: format!("GPU {device} board power"),
                device,
                method: NvmlMethod::Auto,
            });
            Detected {
                what: format!("NVML GPU {device}"),
                readable: check(&spec),
                spec,
                primary: true,
            }
        })
        .collect())
}

/// A rig snippet with a `[[sensors]]` table for every readable meter.
pub fn snippet(found: &[Detected]) -> String {
    #[derive(Serialize)]
    struct Snippet<'a> {
        sensors: Vec<&'a SensorSpec>,
    }
    let sensors: Vec<_> = found
        .iter()
        .filter(|d| d.readable.is_ok())
        .map(|d| &d.spec)
        .collect();
    if sensors.is_empty() {
        return String::new();
    }
    toml::to_string(&Snippet { sensors }).unwrap_or_else(|e| format!("# cannot write: {e}\n"))
}

/// What a run with `detect_sensors = true` decided, for the terminal and `run.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SensorChoice {
    /// "this machine" (detected meters used) or "rig" (the rig's own sensors).
    pub source: &'static str,
    /// The one line the run prints.
    pub line: String,
    /// Every meter detection found.
    pub found: Vec<FoundMeter>,
}

/// One detected meter, as `run.json` records it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FoundMeter {
    pub what: String,
    pub readable: bool,
    /// The sensor's detail, or why it could not be read.
    pub note: String,
    pub used: bool,
}

fn describe(spec: &SensorSpec) -> String {
    format!("{} ({})", spec.kind(), spec.rail())
}

/// Decides a `detect_sensors` rig's sensors from what was found: the readable primary
/// meters replace the rig's own sensors; where there are none, the rig's stay.
pub fn choose(rig: &mut Rig, found: &[Detected], root: &Path) -> SensorChoice {
    let used: Vec<&Detected> = found
        .iter()
        .filter(|d| d.primary && d.readable.is_ok())
        .collect();
    let (source, line) = if used.is_empty() {
        ("rig", no_meter_line(rig, found, root))
    } else {
        let line = detected_line(rig, &used);
        rig.sensors = used.iter().map(|d| d.spec.clone().into()).collect();
        ("this machine", line)
    };
    SensorChoice {
        source,
        line,
        found: found_meters(found, source),
    }
}

/// The rig's own sensors, for the terminal line.
fn sensor_list(rig: &Rig) -> String {
    rig.sensors
        .iter()
        .map(|s| describe(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The line of a run that found no readable primary meter and keeps the rig's sensors: why,
/// and which partial meters did read.
fn no_meter_line(rig: &Rig, found: &[Detected], root: &Path) -> String {
    let rigs_own = if rig.sensors.is_empty() {
        "the rig has no sensors of its own, so nothing is measured".to_string()
    } else {
        format!("using the rig's {}", sensor_list(rig))
    };
    // Meters that read but measure only part of the machine (a Jetson's CPU or GPU rail
    // beside an unreadable board input) are not used in its place, but they are there.
    let parts: Vec<&str> = found
        .iter()
        .filter(|d| !d.primary && d.readable.is_ok())
        .map(|d| d.what.as_str())
        .collect();
    let parts = if parts.is_empty() {
        String::new()
    } else {
        format!(
            "; readable, but parts of the machine rather than its whole: {} (`sensors \
             --detect` prints their tables for a rig)",
            parts.join(", ")
        )
    };
    let why = match found.iter().find(|d| d.primary) {
        Some(d) => format!(
            "{}: {}",
            d.what,
            d.readable.as_ref().err().map_or("", String::as_str)
        ),
        None => format!(
            "no RAPL zones, hwmon power channels or INA3221 rails under {}",
            root.display()
        ),
    };
    format!("sensors: no readable meter on this machine ({why}{parts}); {rigs_own}")
}

/// The line of a run that measures with the `used` meters, in place of the rig's sensors.
fn detected_line(rig: &Rig, used: &[&Detected]) -> String {
    let names = used
        .iter()
        .map(|d| match &d.spec {
            // A PMIC's rails are the SoC side only.
            SensorSpec::RpiPmic(_) => format!("{} (partial)", d.what),
            _ => format!("{} (measured)", d.what),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let dropped = if rig.sensors.is_empty() {
        String::new()
    } else {
        format!("; the rig's {} not used", sensor_list(rig))
    };
    format!("sensors: this machine's {names}{dropped}")
}

/// Every meter found, as `run.json` records it.
fn found_meters(found: &[Detected], source: &str) -> Vec<FoundMeter> {
    found
        .iter()
        .map(|d| FoundMeter {
            what: d.what.clone(),
            readable: d.readable.is_ok(),
            note: match &d.readable {
                Ok(detail) => detail.clone(),
                Err(why) => why.clone(),
            },
            used: source == "this machine" && d.primary && d.readable.is_ok(),
        })
        .collect()
}

/// Resolves a `detect_sensors` rig against this machine (sysfs under `root`; NVML GPUs only
/// when a backend runs on one, since a CPU run's GPU power says nothing about it). Returns
/// `None` for a rig without `detect_sensors`.
pub fn resolve(rig: &mut Rig, root: &Path) -> Option<SensorChoice> {
    if !rig.detect_sensors {
        return None;
    }
    let mut found = detect(root);
    let on_gpu = rig
        .backends
        .iter()
        .any(|b| matches!(b.torch().and_then(|t| t.device), Some(Device::Cuda(_))));
    if on_gpu {
        found.extend(detect_gpus().unwrap_or_default());
    }
    Some(choose(rig, &found, root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, value) in files {
            std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
        }
    }

    /// A machine with two RAPL zones, a PMBus hwmon chip and a temperature-only chip.
    fn machine() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let pc = t.path().join("class/powercap");
        write(
            &pc.join("intel-rapl:0"),
            &[
                ("name", "package-0"),
                ("energy_uj", "5"),
                ("max_energy_range_uj", "262143328850"),
            ],
        );
        write(
            &pc.join("intel-rapl:0:0"),
            &[
                ("name", "core"),
                ("energy_uj", "5"),
                ("max_energy_range_uj", "262143328850"),
            ],
        );
        let h = t.path().join("class/hwmon");
        write(
            &h.join("hwmon0"),
            &[
                ("name", "pmbus"),
                ("power1_input", "12000000"),
                ("power1_label", "pin"),
            ],
        );
        write(
            &h.join("hwmon1"),
            &[("name", "coretemp"), ("temp1_input", "40000")],
        );
        t
    }

    fn local_rig() -> Rig {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rigs/local.toml"))
                .unwrap();
        Rig::parse(&text).unwrap()
    }

    #[test]
    fn finds_every_meter_and_writes_a_rig_snippet() {
        let t = machine();
        let found = detect(t.path());
        let whats: Vec<_> = found.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "RAPL package-0 (intel-rapl:0)",
                "RAPL core (intel-rapl:0:0)",
                "hwmon pmbus (hwmon0) pin"
            ]
        );
        assert!(found.iter().all(|d| d.readable.is_ok()), "{found:?}");
        assert_eq!(
            found.iter().map(|d| d.primary).collect::<Vec<_>>(),
            [true, false, true]
        );
        let text = snippet(&found);
        // The snippet is a rig's sensors: it parses back into the same specs.
        let rig = Rig::parse(&format!(
            "name = \"x\"\n[[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n{text}"
        ))
        .unwrap();
        assert_eq!(rig.sensors.len(), 3, "{text}");
        assert!(
            text.contains("kind = \"rapl\"") && text.contains("domain = \"package-0\""),
            "{text}"
        );
        assert!(
            text.contains("chip = \"pmbus\"") && text.contains("label = \"pin\""),
            "{text}"
        );
    }

    #[test]
    fn a_chip_a_rig_cannot_name_stays_out_of_the_snippet() {
        let t = machine();
        // A driver that registers its hwmon device with an empty name.
        write(
            &t.path().join("class/hwmon/hwmon2"),
            &[("name", ""), ("power1_input", "5000000")],
        );
        let found = detect(t.path());
        let nameless = found.iter().find(|d| d.what.contains("hwmon2")).unwrap();
        let why = nameless.readable.as_ref().unwrap_err();
        assert!(
            why.starts_with("a rig cannot select it: chip must name"),
            "{why}"
        );
        // Every table the snippet holds is one a rig accepts.
        let text = snippet(&found);
        let rig = Rig::parse(&format!(
            "name = \"x\"\n[[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n{text}"
        ));
        assert!(rig.is_ok(), "{text}: {rig:?}");
        assert!(!text.contains("chip = \"\""), "{text}");
    }

    #[test]
    fn unreadable_meters_say_why_and_stay_out_of_the_snippet() {
        let t = machine();
        // A counter that is not a number stands in for one that cannot be read (tests may
        // run as root, where file modes do not bite).
        write(
            &t.path().join("class/powercap/intel-rapl:0"),
            &[("energy_uj", "")],
        );
        let found = detect(t.path());
        let why = found[0].readable.as_ref().unwrap_err();
        assert!(
            why.contains("energy_uj") && why.contains("not an integer"),
            "{why}"
        );
        assert!(!snippet(&found).contains("package-0"));
        assert!(detect(tempfile::tempdir().unwrap().path()).is_empty());
    }

    #[test]
    fn a_readable_tree_replaces_the_rigs_sensors() {
        let t = machine();
        let mut rig = local_rig();
        assert!(rig.detect_sensors);
        assert_eq!(rig.sensors[0].kind(), "ina219-sim");
        let choice = resolve(&mut rig, t.path()).unwrap();
        assert_eq!(choice.source, "this machine");
        let kinds: Vec<_> = rig.sensors.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["rapl", "hwmon"]);
        assert_eq!(
            choice.line,
            "sensors: this machine's RAPL package-0 (intel-rapl:0) (measured), hwmon pmbus \
             (hwmon0) pin (measured); the rig's ina219-sim (5V supply (simulated board)) not used"
        );
        assert_eq!(choice.found.iter().filter(|m| m.used).count(), 2);
    }

    #[test]
    fn an_empty_or_unreadable_tree_keeps_the_fallback() {
        let empty = tempfile::tempdir().unwrap();
        let mut rig = local_rig();
        let before = rig.sensors.clone();
        let choice = resolve(&mut rig, empty.path()).unwrap();
        assert_eq!(choice.source, "rig");
        assert_eq!(rig.sensors.len(), before.len());
        assert_eq!(rig.sensors[0].kind(), "ina219-sim");
        assert!(
            choice
                .line
                .starts_with("sensors: no readable meter on this machine (no RAPL zones"),
            "{}",
            choice.line
        );
        assert!(
            choice
                .line
                .ends_with("; using the rig's ina219-sim (5V supply (simulated board))"),
            "{}",
            choice.line
        );

        let t = machine();
        std::fs::remove_dir_all(t.path().join("class/hwmon")).unwrap();
        write(
            &t.path().join("class/powercap/intel-rapl:0"),
            &[("energy_uj", "x")],
        );
        let mut rig = local_rig();
        let choice = resolve(&mut rig, t.path()).unwrap();
        assert_eq!(rig.sensors[0].kind(), "ina219-sim");
        assert!(
            choice.line.contains("(RAPL package-0 (intel-rapl:0): "),
            "{}",
            choice.line
        );

        // Without detect_sensors nothing changes.
        let mut rig = local_rig();
        rig.detect_sensors = false;
        assert!(resolve(&mut rig, machine().path()).is_none());
        assert_eq!(rig.sensors[0].kind(), "ina219-sim");
    }

    #[test]
    fn a_jetson_uses_its_board_input_only() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3");
        write(
            &dir,
            &[
                ("name", "ina3221"),
                ("in1_label", "VDD_IN"),
                ("in1_input", "5000"),
                ("curr1_input", "1000"),
                ("in2_label", "VDD_CPU_GPU_CV"),
                ("in2_input", "5000"),
                ("curr2_input", "300"),
            ],
        );
        // The same chip as a hwmon class entry (a copy here; a symlink on a Jetson).
        let class = t.path().join("class/hwmon/hwmon3");
        write(
            &class,
            &[
                ("name", "ina3221"),
                ("in1_label", "VDD_IN"),
                ("in1_input", "5000"),
                ("curr1_input", "1000"),
            ],
        );
        let found = detect(t.path());
        let whats: Vec<_> = found.iter().map(|d| (d.what.as_str(), d.primary)).collect();
        assert_eq!(
            whats,
            [("INA3221 VDD_IN", true), ("INA3221 VDD_CPU_GPU_CV", false)]
        );

        // The board input listed but unreadable: its rails are not used in its place, and
        // the line says they are there rather than that nothing reads.
        std::fs::write(dir.join("curr1_input"), "not a number").unwrap();
        let mut rig = local_rig();
        let choice = resolve(&mut rig, t.path()).unwrap();
        assert_eq!(rig.sensors[0].kind(), "ina219-sim");
        assert!(
            choice.line.contains("(INA3221 VDD_IN: ")
                && choice.line.contains(
                    "; readable, but parts of the machine rather than its whole: INA3221 \
                     VDD_CPU_GPU_CV"
                ),
            "{}",
            choice.line
        );
    }
}
