//! A Jetson's on-board INA3221 power monitor, in either of the layouts NVIDIA's kernels use:
//! - JetPack 4 (L4T 32, NVIDIA's own IIO driver `ina3221x`):
//!   `/sys/bus/i2c/drivers/ina3221x/*/iio:device*/` with `rail_name_N`, `in_powerN_input`
//!   (milliwatts), `in_voltageN_input` (millivolts), `in_currentN_input` (milliamperes);
//! - JetPack 5 and 6 (the mainline hwmon driver `ina3221`):
//!   `/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/` with `inN_label`, `inN_input` (bus
//!   millivolts) and `currN_input` (milliamperes); power is their product.
//!
//! A rail is chosen by its label. The board's input rail (`POM_5V_IN` on a Nano, `VDD_IN` on
//! TX2, Xavier and Orin) already includes every other rail: [`is_board_input`] says which,
//! so that totals never add the others to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::limits::INA_MAX_BUS_VOLTS;
use super::sysfs;
use super::{Limits, Origin, PowerSensor, Reading, SensorInfo};

/// Read rate where the driver does not say (the JetPack 4 IIO driver has no
/// `update_interval`): 10 a second, tegrastats' finest useful rate on these boards;
/// `period_ms` overrides.
const DEFAULT_PERIOD: Duration = Duration::from_millis(100);

/// Whether a rail label is a Jetson's whole-board input, which every other rail is part of.
pub fn is_board_input(label: &str) -> bool {
    matches!(label, "POM_5V_IN" | "VDD_IN")
}

/// A `kind = "ina3221"` table: one rail of a Jetson's INA3221.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ina3221Spec {
    /// What is measured, e.g. "Jetson Nano 5 V input".
    pub rail: String,
    /// The rail's label, e.g. "POM_5V_IN", "VDD_IN", "POM_5V_GPU".
    pub label: String,
    /// Read every this many milliseconds instead of the driver's `update_interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_ms: Option<u32>,
    /// Where sysfs is (default `/sys`).
    #[serde(
        default = "sysfs::default_root",
        skip_serializing_if = "sysfs::is_default_root"
    )]
    pub root: PathBuf,
}

impl Ina3221Spec {
    /// Checks what serde cannot; the error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.label.trim().is_empty() {
            return Err("label must name the rail, e.g. \"VDD_IN\"".into());
        }
        if self.period_ms == Some(0) {
            return Err("period_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// Where one rail's numbers are.
#[derive(Debug, Clone, PartialEq)]
pub enum Files {
    /// JetPack 4 IIO: power (mW), voltage (mV), current (mA).
    Iio {
        power: PathBuf,
        volts: PathBuf,
        amps: PathBuf,
    },
    /// JetPack 5/6 hwmon: voltage (mV) and current (mA).
    Hwmon { volts: PathBuf, amps: PathBuf },
}

/// One rail found under a sysfs root.
#[derive(Debug, Clone, PartialEq)]
pub struct Rail {
    pub label: String,
    /// The folder its files are in.
    pub dir: PathBuf,
    pub files: Files,
}

impl Rail {
    fn layout(&self) -> &'static str {
        match self.files {
            Files::Iio { .. } => "JetPack 4 IIO",
            Files::Hwmon { .. } => "hwmon",
        }
    }
}

/// Every INA3221 rail under `root`, both layouts.
pub fn rails(root: &Path) -> Vec<Rail> {
    let drivers = root.join("bus/i2c/drivers");
    let mut out = Vec::new();
    for chip in sysfs::entries(&drivers.join("ina3221x"), "") {
        for dir in sysfs::entries(&chip, "iio:device") {
            for n in sysfs::channels(&dir, "rail_name_", "") {
                let Ok(label) = sysfs::read_text(&dir.join(format!("rail_name_{n}"))) else {
                    continue;
                };
                out.push(Rail {
                    label,
                    files: Files::Iio {
                        power: dir.join(format!("in_power{n}_input")),
                        volts: dir.join(format!("in_voltage{n}_input")),
                        amps: dir.join(format!("in_current{n}_input")),
                    },
                    dir: dir.clone(),
                });
            }
        }
    }
    for chip in sysfs::entries(&drivers.join("ina3221"), "") {
        for dir in sysfs::entries(&chip.join("hwmon"), "hwmon") {
            for n in sysfs::channels(&dir, "in", "_label") {
                let amps = dir.join(format!("curr{n}_input"));
                // Labels without a current (a sum channel) are not rails.
                let (Ok(label), true) = (
                    sysfs::read_text(&dir.join(format!("in{n}_label"))),
                    amps.exists(),
                ) else {
                    continue;
                };
                out.push(Rail {
                    label,
                    files: Files::Hwmon {
                        volts: dir.join(format!("in{n}_input")),
                        amps,
                    },
                    dir: dir.clone(),
                });
            }
        }
    }
    out
}

/// One INA3221 rail.
#[derive(Debug)]
pub struct Ina3221Sensor {
    info: SensorInfo,
    files: Files,
    period: Duration,
}

/// Opens the rail a `kind = "ina3221"` table names and reads it once.
pub fn open(spec: &Ina3221Spec) -> Result<Ina3221Sensor> {
    let all = rails(&spec.root);
    let rail = match all.iter().find(|r| r.label == spec.label) {
        Some(r) => r.clone(),
        None if all.is_empty() => bail!(
            "no INA3221 rails under {} (looked in drivers/ina3221x/*/iio:device*, JetPack 4, \
             and drivers/ina3221/*/hwmon/hwmon*, JetPack 5 and 6): is this a Jetson with an \
             on-board monitor? (a Nano 2GB has none)",
            spec.root.join("bus/i2c/drivers").display()
        ),
        None => bail!(
            "no INA3221 rail labelled {:?} (found: {})",
            spec.label,
            all.iter()
                .map(|r| r.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let interval = sysfs::read_int(&rail.dir.join("update_interval"))
        .ok()
        .filter(|&ms| ms > 0)
        .map(|ms| Duration::from_millis(ms as u64));
    let period = spec
        .period_ms
        .map(|ms| Duration::from_millis(ms.into()))
        .or(interval)
        .unwrap_or(DEFAULT_PERIOD);
    let mut sensor = Ina3221Sensor {
        info: SensorInfo {
            kind: "ina3221".into(),
            rail: spec.rail.clone(),
            origin: Origin::Measured,
            detail: format!(
                "INA3221 {} ({}, {}){}, read every {} ms",
                rail.label,
                rail.layout(),
                rail.dir.display(),
                if is_board_input(&rail.label) {
                    ", the whole board's input"
                } else {
                    ""
                },
                period.as_millis()
            ),
        },
        files: rail.files,
        period,
    };
    sensor.read()?;
    Ok(sensor)
}

impl PowerSensor for Ina3221Sensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        self.period
    }

    /// None: the chip's gain error is small, but the shunts' tolerance on each board is not
    /// published.
    fn uncertainty(&self) -> Option<f64> {
        None
    }

    /// The chip's bus pins; the shunts, and so the current range, are the board's and not in
    /// sysfs on every JetPack.
    fn limits(&self) -> Limits {
        Limits {
            max_volts: Some(INA_MAX_BUS_VOLTS),
            ..Limits::default()
        }
    }

    /// Polled figures: never stale (a steady load repeats them for real).
    fn read(&mut self) -> Result<Reading> {
        let milli = |p: &Path| -> Result<f64> { Ok(sysfs::read_int(p)? as f64 / 1e3) };
        Ok(match &self.files {
            Files::Iio { power, volts, amps } => Reading {
                watts: milli(power)?,
                volts: Some(milli(volts)?),
                amps: Some(milli(amps)?),
                ..Reading::default()
            },
            Files::Hwmon { volts, amps } => {
                let (v, a) = (milli(volts)?, milli(amps)?);
                Reading {
                    watts: v * a,
                    volts: Some(v),
                    amps: Some(a),
                    ..Reading::default()
                }
            }
        })
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

    fn spec(root: &Path, label: &str) -> Ina3221Spec {
        Ina3221Spec {
            rail: "r".into(),
            label: label.into(),
            period_ms: None,
            root: root.to_path_buf(),
        }
    }

    #[test]
    fn jetpack4_iio_layout() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("bus/i2c/drivers/ina3221x/6-0040/iio:device0");
        write(
            &dir,
            &[
                ("rail_name_0", "POM_5V_IN"),
                ("in_power0_input", "2345"),
                ("in_voltage0_input", "5016"),
                ("in_current0_input", "467"),
                ("rail_name_1", "POM_5V_GPU"),
                ("in_power1_input", "40"),
                ("in_voltage1_input", "5000"),
                ("in_current1_input", "8"),
            ],
        );
        let mut s = open(&spec(t.path(), "POM_5V_IN")).unwrap();
        let r = s.read().unwrap();
        assert_eq!(
            (r.watts, r.volts, r.amps),
            (2.345, Some(5.016), Some(0.467))
        );
        assert_eq!(s.update_period(), DEFAULT_PERIOD);
        assert!(
            s.info().detail.contains("JetPack 4 IIO")
                && s.info().detail.contains("whole board's input")
        );
        let s = open(&spec(t.path(), "POM_5V_GPU")).unwrap();
        assert!(!s.info().detail.contains("whole board"));
        let e = open(&spec(t.path(), "VDD_IN")).unwrap_err().to_string();
        assert!(
            e.contains("no INA3221 rail labelled \"VDD_IN\" (found: POM_5V_IN, POM_5V_GPU)"),
            "{e}"
        );
    }

    #[test]
    fn jetpack5_hwmon_layout() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3");
        write(
            &dir,
            &[
                ("name", "ina3221"),
                ("update_interval", "5"),
                ("in1_label", "VDD_IN"),
                ("in1_input", "19000"),
                ("curr1_input", "350"),
                ("in7_label", "sum of shunt voltages"),
                ("in7_input", "2"),
            ],
        );
        let all = rails(t.path());
        assert_eq!(all.len(), 1, "{all:?}");
        let mut s = open(&spec(t.path(), "VDD_IN")).unwrap();
        let r = s.read().unwrap();
        assert!((r.watts - 6.65).abs() < 1e-12, "{}", r.watts);
        assert_eq!(s.update_period(), Duration::from_millis(5));
        let mut sp = spec(t.path(), "VDD_IN");
        sp.period_ms = Some(50);
        assert_eq!(
            open(&sp).unwrap().update_period(),
            Duration::from_millis(50)
        );
        write(&dir, &[("curr1_input", "")]);
        let e = format!("{:#}", open(&spec(t.path(), "VDD_IN")).unwrap_err());
        assert!(
            e.contains("curr1_input") && e.contains("not an integer"),
            "{e}"
        );
    }

    #[test]
    fn no_monitor_and_board_input() {
        let t = tempfile::tempdir().unwrap();
        let e = open(&spec(t.path(), "VDD_IN")).unwrap_err().to_string();
        assert!(e.starts_with("no INA3221 rails under"), "{e}");
        assert!(is_board_input("POM_5V_IN") && is_board_input("VDD_IN"));
        assert!(!is_board_input("POM_5V_GPU") && !is_board_input("VDD_CPU_GPU_CV"));
        assert!(spec(t.path(), " ").validate().is_err());
    }
}
