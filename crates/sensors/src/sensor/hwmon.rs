//! Linux hwmon power channels: `/sys/class/hwmon/hwmonN/`, the chip chosen by its `name`
//! file, the channel by its `*_label` or number. Units are the kernel's hwmon ABI:
//! - `energyN_input`: microjoules, a cumulative counter (used as one where present: its
//!   difference is exact whatever the read rate);
//! - `powerN_input`: microwatts, a polled figure;
//! - `inN_input` (millivolts) × `currN_input` (milliamperes), where the chip has no power
//!   figure.
//!
//! `update_interval` (milliseconds), where the driver has it, is how often the chip refreshes
//! its readings, and the sensor is read at that rate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::sysfs::{self, EnergyCounter};
use super::{Origin, PowerSensor, Reading, SensorInfo};

/// Read rate of a polled figure when the driver has no `update_interval`: 10 a second, the
/// refresh many hwmon drivers cache their readings for (100 ms to 1 s); `period_ms` overrides.
const DEFAULT_POLL_PERIOD: Duration = Duration::from_millis(100);

/// An energy counter without `update_interval` is read like RAPL's (see
/// [`super::rapl::READ_PERIOD`]): exact whatever the rate, so slowly enough to cost little.
const DEFAULT_COUNTER_PERIOD: Duration = super::rapl::READ_PERIOD;

/// A `kind = "hwmon"` table: one channel of one hwmon chip.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HwmonSpec {
    /// What is measured, e.g. "12V input (PMBus)".
    pub rail: String,
    /// The chip's `name` file, e.g. "ina3221", "amd_energy".
    pub chip: String,
    /// Which of several chips with that name, counting from 0 in hwmonN order; required
    /// when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip_index: Option<usize>,
    /// The channel by its `*_label` text, e.g. "VDD_IN".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The channel by its number N (`powerN_input`, `energyN_input`, `inN_input` with
    /// `currN_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
    /// Read every this many milliseconds instead of the chip's `update_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_ms: Option<u32>,
    /// Where sysfs is (default `/sys`).
    #[serde(
        default = "sysfs::default_root",
        skip_serializing_if = "sysfs::is_default_root"
    )]
    pub root: PathBuf,
}

impl HwmonSpec {
    /// Checks what serde cannot; the error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.chip.trim().is_empty() {
            return Err("chip must name the chip (its hwmon `name` file)".into());
        }
        if self.label.is_some() == self.channel.is_some() {
            return Err("give label or channel (one of them)".into());
        }
        if self.period_ms == Some(0) {
            return Err("period_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// How a channel's power is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// `energyN_input`, µJ counter.
    Energy(PathBuf),
    /// `powerN_input`, µW.
    Power(PathBuf),
    /// `inN_input` (mV) × `currM_input` (mA).
    VoltsAmps(PathBuf, PathBuf),
}

impl Method {
    fn describe(&self) -> String {
        let name = |p: &Path| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        match self {
            Method::Energy(p) => format!("energy counter {}", name(p)),
            Method::Power(p) => format!("power {}", name(p)),
            Method::VoltsAmps(v, a) => format!("{} × {}", name(v), name(a)),
        }
    }
}

/// One hwmon chip folder.
#[derive(Debug, Clone)]
pub struct Chip {
    pub name: String,
    pub dir: PathBuf,
}

/// Every hwmon chip under `root`, in hwmonN order.
pub fn chips(root: &Path) -> Vec<Chip> {
    sysfs::entries(&root.join("class/hwmon"), "hwmon")
        .into_iter()
        .filter_map(|dir| {
            let name = sysfs::read_text(&dir.join("name")).ok()?;
            Some(Chip { name, dir })
        })
        .collect()
}

/// A channel that reports power one way or another.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Its label, where the chip names it.
    pub label: Option<String>,
    pub number: u32,
    pub method: Method,
}

fn label_of(dir: &Path, kind: &str, n: u32) -> Option<String> {
    sysfs::read_text(&dir.join(format!("{kind}{n}_label"))).ok()
}

/// The power channels of a chip folder, best method first per channel: an energy counter,
/// else a power figure, else voltage × current of the same label (or number).
pub fn power_channels(dir: &Path) -> Vec<Channel> {
    let mut out: Vec<Channel> = Vec::new();
    let taken = |label: &Option<String>, n: u32, out: &Vec<Channel>| {
        out.iter().any(|c| match (&c.label, label) {
            (Some(a), Some(b)) => a == b,
            _ => c.number == n && c.label.is_none() && label.is_none(),
        })
    };
    for kind in ["energy", "power"] {
        for n in sysfs::channels(dir, kind, "_input") {
            let label = label_of(dir, kind, n);
            if taken(&label, n, &out) {
                continue;
            }
            let path = dir.join(format!("{kind}{n}_input"));
            let method = if kind == "energy" {
                Method::Energy(path)
            } else {
                Method::Power(path)
            };
            out.push(Channel {
                label,
                number: n,
                method,
            });
        }
    }
    let currents = sysfs::channels(dir, "curr", "_input");
    for n in sysfs::channels(dir, "in", "_input") {
        let label = label_of(dir, "in", n);
        // The current of the same label, else of the same number.
        let curr = label
            .as_ref()
            .and_then(|l| {
                currents
                    .iter()
                    .find(|&&m| label_of(dir, "curr", m).as_ref() == Some(l))
            })
            .or_else(|| currents.iter().find(|&&m| m == n));
        let Some(&m) = curr else { continue };
        if taken(&label, n, &out) {
            continue;
        }
        out.push(Channel {
            label,
            number: n,
            method: Method::VoltsAmps(
                dir.join(format!("in{n}_input")),
                dir.join(format!("curr{m}_input")),
            ),
        });
    }
    out
}

/// The chip's own refresh interval, where its driver says.
fn update_interval(dir: &Path) -> Option<Duration> {
    let ms = sysfs::read_int(&dir.join("update_interval")).ok()?;
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

/// One hwmon channel.
#[derive(Debug)]
pub struct HwmonSensor {
    info: SensorInfo,
    method: Method,
    counter: Option<EnergyCounter>,
    period: Duration,
}

fn find(spec: &HwmonSpec) -> Result<(Chip, Channel)> {
    let all = chips(&spec.root);
    let same: Vec<&Chip> = all.iter().filter(|c| c.name == spec.chip).collect();
    let dir = spec.root.join("class/hwmon");
    let chip = match (same.as_slice(), spec.chip_index) {
        ([], _) => bail!(
            "no hwmon chip named {:?} under {} (found: {})",
            spec.chip,
            dir.display(),
            if all.is_empty() {
                "none".to_string()
            } else {
                all.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        ([one], None | Some(0)) => *one,
        (several, None) => bail!(
            "{} hwmon chips are named {:?}: choose one with chip_index = 0 to {}",
            several.len(),
            spec.chip,
            several.len() - 1
        ),
        (several, Some(i)) => *several.get(i).ok_or_else(|| {
            anyhow::anyhow!(
                "chip_index {i}: there are only {} chips named {:?}",
                several.len(),
                spec.chip
            )
        })?,
    };
    let channels = power_channels(&chip.dir);
    let found = channels.iter().find(|c| match (&spec.label, spec.channel) {
        (Some(l), _) => c.label.as_deref() == Some(l.as_str()),
        (None, Some(n)) => c.number == n,
        (None, None) => false,
    });
    match found {
        Some(c) => Ok((chip.clone(), c.clone())),
        None => bail!(
            "hwmon chip {:?} ({}) has no power channel {} (it has: {})",
            spec.chip,
            chip.dir.display(),
            spec.label
                .as_ref()
                .map(|l| format!("labelled {l:?}"))
                .or(spec.channel.map(|n| format!("number {n}")))
                .unwrap_or_default(),
            if channels.is_empty() {
                "none".into()
            } else {
                channels
                    .iter()
                    .map(|c| c.label.clone().unwrap_or_else(|| format!("#{}", c.number)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }
}

/// Opens the channel a `kind = "hwmon"` table names and reads it once.
pub fn open(spec: &HwmonSpec) -> Result<HwmonSensor> {
    let (chip, channel) = find(spec)?;
    let interval = update_interval(&chip.dir);
    let is_counter = matches!(channel.method, Method::Energy(_));
    let period = spec
        .period_ms
        .map(|ms| Duration::from_millis(ms.into()))
        .or(interval)
        .unwrap_or(if is_counter {
            DEFAULT_COUNTER_PERIOD
        } else {
            DEFAULT_POLL_PERIOD
        });
    let counter = match &channel.method {
        Method::Energy(path) => {
            let raw = sysfs::read_u64(path)?;
            // Stale once unchanged for a read period (see `EnergyCounter`).
            let tick = period.as_secs_f64();
            Some(EnergyCounter::new(raw, sysfs::now_s(), None, None, tick)?)
        }
        _ => None,
    };
    let mut sensor = HwmonSensor {
        info: SensorInfo {
            kind: "hwmon".into(),
            rail: spec.rail.clone(),
            origin: Origin::Measured,
            detail: format!(
                "hwmon {} ({}), {}, read every {} ms",
                chip.name,
                chip.dir.file_name().unwrap_or_default().to_string_lossy(),
                channel.method.describe(),
                period.as_millis()
            ),
        },
        method: channel.method,
        counter,
        period,
    };
    if sensor.counter.is_none() {
        // A channel that cannot be read fails now, not in the run.
        sensor.read()?;
    }
    Ok(sensor)
}

impl PowerSensor for HwmonSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        self.period
    }

    /// None: accuracy depends on the chip and its shunt, which sysfs does not say.
    fn uncertainty(&self) -> Option<f64> {
        None
    }

    fn read(&mut self) -> Result<Reading> {
        match &self.method {
            Method::Energy(path) => {
                let raw = sysfs::read_u64(path)?;
                let counter = self
                    .counter
                    .as_mut()
                    .expect("energy channels have a counter");
                counter
                    .update(raw, sysfs::now_s())
                    .map_err(|e| sysfs::counter_error(path, e))
            }
            // A power figure can repeat for real under a steady load: never stale.
            Method::Power(path) => Ok(Reading {
                watts: sysfs::read_int(path)? as f64 / 1e6,
                ..Reading::default()
            }),
            Method::VoltsAmps(v, a) => {
                let volts = sysfs::read_int(v)? as f64 / 1e3;
                let amps = sysfs::read_int(a)? as f64 / 1e3;
                Ok(Reading {
                    volts: Some(volts),
                    amps: Some(amps),
                    watts: volts * amps,
                    ..Reading::default()
                })
            }
        }
    }
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

    fn spec(root: &Path, chip: &str, label: Option<&str>, channel: Option<u32>) -> HwmonSpec {
        HwmonSpec {
            rail: "r".into(),
            chip: chip.into(),
            chip_index: None,
            label: label.map(Into::into),
            channel,
            period_ms: None,
            root: root.to_path_buf(),
        }
    }

    /// Three chips: a PMBus-like one with power, an INA3221-like with V and I only, and an
    /// energy-counting one.
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let h = t.path().join("class/hwmon");
        write(
            &h.join("hwmon0"),
            &[
                ("name", "pmbus"),
                ("power1_input", "12500000"),
                ("power1_label", "pin"),
                ("update_interval", "20"),
            ],
        );
        write(
            &h.join("hwmon1"),
            &[
                ("name", "ina3221"),
                ("in1_label", "VDD_IN"),
                ("in1_input", "5000"),
                ("curr1_input", "1200"),
                ("in2_input", "1000"),
                ("in4_input", "12"),
            ],
        );
        write(
            &h.join("hwmon2"),
            &[
                ("name", "amd_energy"),
                ("energy1_input", "1000"),
                ("energy1_label", "Esocket0"),
            ],
        );
        write(
            &h.join("hwmon3"),
            &[("name", "coretemp"), ("temp1_input", "40000")],
        );
        t
    }

    #[test]
    fn units_and_methods() {
        let t = tree();
        let mut s = open(&spec(t.path(), "pmbus", Some("pin"), None)).unwrap();
        assert_eq!(s.update_period(), Duration::from_millis(20));
        assert!((s.read().unwrap().watts - 12.5).abs() < 1e-12);
        assert_eq!(
            s.info().detail,
            "hwmon pmbus (hwmon0), power power1_input, read every 20 ms"
        );

        let mut s = open(&spec(t.path(), "ina3221", Some("VDD_IN"), None)).unwrap();
        let r = s.read().unwrap();
        assert_eq!((r.volts, r.amps), (Some(5.0), Some(1.2)));
        assert!((r.watts - 6.0).abs() < 1e-12);
        assert_eq!(s.update_period(), DEFAULT_POLL_PERIOD);
        // By number too; in2 has no current, in4 neither: not power channels.
        assert!(open(&spec(t.path(), "ina3221", None, Some(1))).is_ok());
        let e = open(&spec(t.path(), "ina3221", None, Some(2)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no power channel number 2 (it has: VDD_IN)"),
            "{e}"
        );

        let mut s = open(&spec(t.path(), "amd_energy", Some("Esocket0"), None)).unwrap();
        assert_eq!(s.update_period(), DEFAULT_COUNTER_PERIOD);
        write(
            &t.path().join("class/hwmon/hwmon2"),
            &[("energy1_input", "251000")],
        );
        let r = s.read().unwrap();
        assert_eq!(r.energy_j, Some(0.25));
        assert!(!r.stale && r.watts > 0.0);
    }

    #[test]
    fn chip_selection_errors() {
        let t = tree();
        let e = open(&spec(t.path(), "nct6775", None, Some(1)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no hwmon chip named \"nct6775\"")
                && e.contains("found: pmbus, ina3221, amd_energy, coretemp"),
            "{e}"
        );
        write(
            &t.path().join("class/hwmon/hwmon10"),
            &[
                ("name", "pmbus"),
                ("power1_input", "3000000"),
                ("power1_label", "pin"),
            ],
        );
        let e = open(&spec(t.path(), "pmbus", Some("pin"), None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 hwmon chips are named \"pmbus\": choose one with chip_index = 0 to 1"),
            "{e}"
        );
        let mut sp = spec(t.path(), "pmbus", Some("pin"), None);
        sp.chip_index = Some(1);
        let mut s = open(&sp).unwrap();
        assert!((s.read().unwrap().watts - 3.0).abs() < 1e-12);
        sp.chip_index = Some(2);
        assert!(open(&sp).is_err());
        write(
            &t.path().join("class/hwmon/hwmon0"),
            &[("power1_input", "twelve")],
        );
        let mut sp = spec(t.path(), "pmbus", Some("pin"), None);
        sp.chip_index = Some(0);
        let e = format!("{:#}", open(&sp).unwrap_err());
        assert!(
            e.contains("power1_input") && e.contains("not an integer"),
            "{e}"
        );
    }

    #[test]
    fn validation() {
        let p = Path::new("/sys");
        assert!(spec(p, "x", None, None).validate().is_err());
        assert!(spec(p, "x", Some("a"), Some(1)).validate().is_err());
        assert!(spec(p, "", Some("a"), None).validate().is_err());
        let mut s = spec(p, "x", Some("a"), None);
        assert!(s.validate().is_ok());
        s.period_ms = Some(0);
        assert!(s.validate().is_err());
    }
}
