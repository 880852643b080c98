//! `joulebench calibrate`: a shunt correction factor for one INA219, from a reference reading
//! (a known resistive load, or a trusted meter in series), written into the rig file.
//!
//! The chip is opened with any correction the rig already has ignored, read for a few seconds,
//! and the mean compared with the reference: factor = reference / measured. That is the TI
//! datasheet's calibration (SBOS448G 8.5.1, Corrected_Full_Scale_Cal = trunc(Cal ×
//! MeasShuntCurrent / INA219_Current)); the driver applies it as a shunt of
//! `shunt_ohms / factor` ([`Ina219Settings::from_spec`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Context, Result};
use chrono::{DateTime, Utc};

use crate::clock::{PhaseLog, TimeSource};
use crate::project::RigSource;
use crate::rig::{Ina219Spec, Rig, SensorSpec};
use crate::sensor::ina219::{self, Ina219Settings, SHUNT_CORRECTION_BAND};
use crate::sensor::ina219_sim::{self, SimWire};
use crate::sensor::PowerSensor;

pub mod pmic;

/// Seconds read when `--seconds` is not given: about 145 conversions at the default settings.
pub const DEFAULT_SECONDS: f64 = 5.0;

/// Longest `--seconds`: ten minutes.
pub const MAX_SECONDS: f64 = 600.0;

/// Fewest fresh readings a calibration's mean is taken from, whatever the rate: with fewer, one
/// odd reading moves the mean by more than a tenth of its difference from the rest.
const MIN_FRESH: usize = 10;

/// Fraction of the fresh readings the sensor's update rate promises that must arrive. Fewer
/// means the chip is not converting as configured (CNVR stuck, a bus too busy), and the mean of
/// what came is not the steady reading a calibration needs.
const MIN_FRESH_FRACTION: f64 = 0.5;

/// Least measured value, in LSBs of its register: the register's truncation (up to 1 LSB) then
/// costs the factor at most 0.1 %.
const MIN_LSBS: f64 = 1000.0;

/// How the calibration comment above `shunt_correction` starts; a recalibration replaces the
/// lines that start so and keeps every other comment.
const COMMENT_MARK: &str = "# joulebench calibrate";

/// What the reading is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reference {
    /// A trusted ammeter in series: the current, in A.
    Amps(f64),
    /// A trusted power meter in the line: the power, in W.
    Watts(f64),
    /// A known resistance across VIN− and ground, in Ω: the current is the bus voltage over it.
    LoadOhms(f64),
}

impl Reference {
    fn value(self) -> f64 {
        match self {
            Reference::Amps(v) | Reference::Watts(v) | Reference::LoadOhms(v) => v,
        }
    }

    fn option(self) -> &'static str {
        match self {
            Reference::Amps(_) => "--amps",
            Reference::Watts(_) => "--watts",
            Reference::LoadOhms(_) => "--load-ohms",
        }
    }

    /// E.g. "1 A (--amps)", "12.7 Ω load (--load-ohms)".
    pub fn describe(self) -> String {
        match self {
            Reference::Amps(a) => format!("{a} A (--amps)"),
            Reference::Watts(w) => format!("{w} W (--watts)"),
            Reference::LoadOhms(r) => format!("a {r} Ω load (--load-ohms)"),
        }
    }
}

/// What `joulebench calibrate` was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The rail of the INA219 to calibrate.
    pub rail: String,
    pub reference: Reference,
    /// What the reference is good to, in percent.
    pub reference_uncertainty_pct: f64,
    pub seconds: f64,
    /// Print, do not write.
    pub dry_run: bool,
}

impl Request {
    /// The values that can be refused before anything is opened.
    pub fn check(&self) -> Result<()> {
        let v = self.reference.value();
        ensure!(
            v > 0.0 && v.is_finite(),
            "{} must be a positive number, not {v}",
            self.reference.option()
        );
        ensure!(
            self.seconds > 0.0 && self.seconds <= MAX_SECONDS,
            "--seconds must be positive and at most {MAX_SECONDS} (a steady load's mean settles \
             within seconds; longer only follows the shunt's temperature), not {:?}",
            self.seconds
        );
        let probe = Ina219Spec {
            shunt_correction: Some(1.0),
            reference_uncertainty_pct: Some(self.reference_uncertainty_pct),
            ..bare_spec()
        };
        ina219::check_correction(&probe).map_err(|e| anyhow!("--reference-uncertainty-pct: {e}"))
    }
}

/// An Ina219Spec for checks of the correction keys alone.
fn bare_spec() -> Ina219Spec {
    Ina219Spec::new("", 0.1, 3.2)
}

/// The INA219 a calibration is for.
#[derive(Debug, Clone)]
pub struct Target {
    /// "rig file PATH" or "built-in rig NAME".
    pub origin: String,
    /// The rig file; None for a built-in rig.
    pub path: Option<PathBuf>,
    /// Its place among the rig's `[[sensors]]`.
    pub index: usize,
    /// "ina219" or "ina219-sim".
    pub kind: &'static str,
    /// As the rig has it (with any correction it already holds).
    pub spec: Ina219Spec,
}

impl Target {
    /// The spec without any correction: what calibration measures with.
    pub fn uncorrected(&self) -> Ina219Spec {
        Ina219Spec {
            shunt_correction: None,
            reference_uncertainty_pct: None,
            ..self.spec.clone()
        }
    }
}

/// Finds the INA219 measuring `rail` in the rig `rig_arg` names (as `--rig` does).
pub fn find_target(rig_arg: &str, rail: &str) -> Result<Target> {
    let (rig, source) = Rig::find(rig_arg)?;
    target_in(&rig, source, rail)
}

fn target_in(rig: &Rig, source: RigSource, rail: &str) -> Result<Target> {
    let Some(index) = rig.sensors.iter().position(|s| s.rail() == rail) else {
        let ina: Vec<String> = rig
            .sensors
            .iter()
            .filter(|s| matches!(s.spec, SensorSpec::Ina219(_) | SensorSpec::Ina219Sim(_)))
            .map(|s| format!("{:?}", s.rail()))
            .collect();
        bail!(
            "no sensor of {} measures rail {rail:?} (its INA219 rails: {})",
            source.origin,
            if ina.is_empty() {
                "none".into()
            } else {
                ina.join(", ")
            }
        );
    };
    let sensor = &rig.sensors[index];
    let (SensorSpec::Ina219(spec) | SensorSpec::Ina219Sim(spec)) = &sensor.spec else {
        bail!(
            "rail {rail:?} of {} is a {} sensor: calibrate works on INA219s (kind \"ina219\" or \
             \"ina219-sim\") and a Pi 5's PMIC (kind \"rpi-pmic\") only",
            source.origin,
            sensor.kind()
        );
    };
    Ok(Target {
        origin: source.origin,
        path: source.path,
        index,
        kind: sensor.kind(),
        spec: spec.clone(),
    })
}

/// The refusal for a rig that has no file to write to.
fn built_in_refusal(origin: &str, rig_name: &str) -> anyhow::Error {
    let copy = crate::project::user_rigs_dir()
        .map(|d| d.join(format!("{rig_name}.toml")).display().to_string())
        .unwrap_or_else(|| format!("~/.config/joulebench/rigs/{rig_name}.toml"));
    anyhow!(
        "{} has no file to write the correction to: copy it first (to {copy}, say), then \
         calibrate --rig {rig_name}; or add --dry-run",
        origin
    )
}

/// Means of the fresh readings of a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Fresh readings the means are of.
    pub fresh: usize,
    /// Fresh readings the sensor's update rate promised in that time.
    pub expected: f64,
    pub seconds: f64,
    pub mean_amps: f64,
    pub mean_volts: f64,
    pub mean_watts: f64,
    /// Standard deviation of the current readings.
    pub sd_amps: f64,
}

/// Reads `sensor` every update period for `seconds` of `clock` and takes the means of its
/// fresh readings. A read error, a saturated or overflowed reading, or too few fresh readings
/// end it with a one-line error: a calibration must come from clean, steady readings.
pub fn measure(
    sensor: &mut dyn PowerSensor,
    clock: &dyn TimeSource,
    seconds: f64,
) -> Result<Measurement> {
    let period = sensor.update_period().as_secs_f64();
    let start = clock.now();
    let end = start + seconds;
    let mut next = start;
    let mut readings = Vec::new();
    while clock.now() < end {
        clock.sleep_until(next);
        let r = sensor.read()?;
        // A read that ran late moves the schedule on rather than piling up reads.
        next = (next + period).max(clock.now());
        if r.stale {
            continue;
        }
        ensure!(
            !r.saturated,
            "a reading was beyond the shunt range (saturated): raise shunt_range_mv, or lower \
             the reference load's current, then calibrate again"
        );
        ensure!(
            !r.overflow,
            "the chip's current or power register overflowed: raise max_current_a, then \
             calibrate again"
        );
        let (Some(amps), Some(volts)) = (r.amps, r.volts) else {
            bail!("the sensor gave a reading without current or voltage");
        };
        readings.push((amps, volts, r.watts));
    }
    let expected = seconds / period;
    let needed = (MIN_FRESH_FRACTION * expected).max(MIN_FRESH as f64).ceil() as usize;
    ensure!(
        readings.len() >= needed,
        "only {} fresh readings in {seconds} s, where the sensor's rate promises {expected:.0} \
         and calibration needs {needed}: check the chip converts (sensors --rig), or read longer \
         (--seconds)",
        readings.len()
    );
    let n = readings.len() as f64;
    let mean = |f: fn(&(f64, f64, f64)) -> f64| readings.iter().map(f).sum::<f64>() / n;
    let mean_amps = mean(|r| r.0);
    let var = readings
        .iter()
        .map(|r| (r.0 - mean_amps).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    Ok(Measurement {
        fresh: readings.len(),
        expected,
        seconds,
        mean_amps,
        mean_volts: mean(|r| r.1),
        mean_watts: mean(|r| r.2),
        sd_amps: var.sqrt(),
    })
}

/// The result of a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub measurement: Measurement,
    /// What was compared: the mean current, or for `--watts` the mean power.
    pub measured: f64,
    /// The reference's value of the same ("A" or "W").
    pub reference: f64,
    pub unit: &'static str,
    /// reference / measured, rounded to 6 decimals (what the rig file gets).
    pub factor: f64,
    /// The calibration register without a correction, and with this one.
    pub uncorrected_register: u16,
    pub corrected_register: u16,
    /// The correction the rig held before, if any.
    pub previous_factor: Option<f64>,
    /// Relative energy uncertainty as the rig stood, and with this calibration.
    pub uncertainty_before: f64,
    pub uncertainty_after: f64,
}

/// The factor from a measurement (taken with `uncorrected`'s settings) and the reference.
pub fn derive(target: &Target, m: &Measurement, request: &Request) -> Result<Calibration> {
    let plain = Ina219Settings::from_spec(&target.uncorrected(), "-")?;
    let (measured, reference, unit, lsb) = match request.reference {
        Reference::Amps(a) => (m.mean_amps, a, "A", plain.current_lsb_a()),
        Reference::Watts(w) => (m.mean_watts, w, "W", plain.power_lsb_w()),
        Reference::LoadOhms(r) => (m.mean_amps, m.mean_volts / r, "A", plain.current_lsb_a()),
    };
    ensure!(
        m.mean_amps >= 0.0,
        "the chip reads a negative current ({:.4} A): VIN+ and VIN− are swapped (VIN+ goes on \
         the supply side)",
        m.mean_amps
    );
    ensure!(
        measured >= MIN_LSBS * lsb,
        "the chip reads {measured:.4} {unit}, under {MIN_LSBS} steps of its register \
         ({:.4} {unit}): too little for a factor good to 0.1 %; draw more current (a smaller \
         load resistance) or lower max_current_a",
        MIN_LSBS * lsb
    );
    let raw = reference / measured;
    if !SHUNT_CORRECTION_BAND.contains(&raw) {
        bail!(
            "the chip reads {measured:.4} {unit} where the reference says {reference:.4} {unit}: \
             a factor of {raw:.4}, outside {}..{}. That is a wiring fault, not a shunt's \
             tolerance: check the reference is in series with the INA219 (a load across VIN− \
             and ground), nothing bypasses the shunt, and shunt_ohms is the shunt's value",
            SHUNT_CORRECTION_BAND.start(),
            SHUNT_CORRECTION_BAND.end()
        );
    }
    // 1 ppm: far finer than the calibration register's step (1 in about 4000).
    let factor = (raw * 1e6).round() / 1e6;
    let corrected = Ina219Spec {
        shunt_correction: Some(factor),
        reference_uncertainty_pct: Some(request.reference_uncertainty_pct),
        ..target.spec.clone()
    };
    let after = Ina219Settings::from_spec(&corrected, "-")?;
    let before = Ina219Settings::from_spec(&target.spec, "-")?;
    Ok(Calibration {
        measurement: m.clone(),
        measured,
        reference,
        unit,
        factor,
        uncorrected_register: plain.calibration.as_bits(),
        corrected_register: after.calibration.as_bits(),
        previous_factor: target.spec.shunt_correction,
        uncertainty_before: before.energy_uncertainty(),
        uncertainty_after: after.energy_uncertainty(),
    })
}

/// Opens the target's chip without its correction: `clock` drives a simulated chip (a real one
/// runs in real time whatever `clock` says).
pub fn open_uncorrected(
    target: &Target,
    clock: Arc<dyn TimeSource>,
) -> Result<Box<dyn PowerSensor>> {
    let spec = target.uncorrected();
    Ok(match target.kind {
        "ina219-sim" => Box::new(ina219_sim::open_on(
            &spec,
            clock,
            PhaseLog::new(),
            SimWire::new(),
            1,
        )?),
        _ => Box::new(ina219::open_linux(&spec, 1)?),
    })
}

/// The whole command: finds the INA219 of `request.rail` in the rig `rig_arg` names and
/// checks everything that can fail before a read ([`prepare`]).
pub fn calibrate(rig_arg: &str, request: &Request) -> Result<Prepared> {
    let (rig, source) = Rig::find(rig_arg)?;
    prepare(&rig, source, request)
}

/// A calibration whose request, rail and rig file were checked: what is left is the read.
pub struct Prepared {
    target: Target,
    request: Request,
    /// Where the edited rig goes (beside the rig file, so proof that it can be written);
    /// `None` for a dry run.
    pending: Option<crate::atomic::Pending>,
}

/// Checks, before anything is read, every refusal that does not need a reading: the request,
/// the rail (an INA219 of the rig), and (unless a dry run) that the rig has a file outside any
/// run folder, in a folder joulebench can write: a read of seconds is not wasted on a
/// calibration that could not be kept.
pub fn prepare(rig: &Rig, source: RigSource, request: &Request) -> Result<Prepared> {
    request.check()?;
    let target = target_in(rig, source, &request.rail)?;
    let pending = pending_write(&target.path, &target.origin, &rig.name, request.dry_run)?;
    Ok(Prepared {
        target,
        request: request.clone(),
        pending,
    })
}

/// Where a calibration of the rig file at `path` goes: a file beside it, made now so that a
/// read is not wasted on a result that could not be kept; `None` for a dry run. Refused for a
/// built-in rig, a rig inside a run folder and a folder joulebench cannot write.
fn pending_write(
    path: &Option<PathBuf>,
    origin: &str,
    rig_name: &str,
    dry_run: bool,
) -> Result<Option<crate::atomic::Pending>> {
    Ok(match (path, dry_run) {
        (_, true) => None,
        (None, false) => return Err(built_in_refusal(origin, rig_name)),
        (Some(path), false) => {
            if let Some(run) = crate::output::folder::run_folder_holding(path) {
                bail!(
                    "rig file {} is inside the run folder {}: calibrate writes into the rig \
                     file, which would change that run's folder; copy the rig elsewhere and \
                     calibrate the copy",
                    path.display(),
                    run.display()
                );
            }
            let pending = crate::atomic::Pending::beside(path).map_err(|e| {
                anyhow!(
                    "{e:#}: calibrate writes the correction into the rig file; copy the rig to \
                     a folder you can write, or add --dry-run"
                )
            })?;
            Some(pending)
        }
    })
}

impl Prepared {
    /// Reads the INA219 uncorrected on `clock`, derives the factor, and (unless a dry run)
    /// writes it into the rig file with a comment dated `now`. Returns the target and the
    /// calibration.
    pub fn run(
        self,
        clock: Arc<dyn TimeSource>,
        now: DateTime<Utc>,
    ) -> Result<(Target, Calibration)> {
        let Prepared {
            target,
            request,
            pending,
        } = self;
        let what = format!("{} ({}) of {}", target.kind, request.rail, target.origin);
        let mut sensor = open_uncorrected(&target, clock.clone()).with_context(|| what.clone())?;
        let m = measure(sensor.as_mut(), clock.as_ref(), request.seconds)
            .with_context(|| what.clone())?;
        drop(sensor);
        let calibration = derive(&target, &m, &request).with_context(|| what.clone())?;
        if let (Some(path), Some(pending)) = (&target.path, pending) {
            write_correction(path, pending, &target, &calibration, &request, now)?;
        }
        Ok((target, calibration))
    }
}

/// The comment line above `shunt_correction`.
fn comment(calibration: &Calibration, request: &Request, now: DateTime<Utc>) -> String {
    format!(
        "{COMMENT_MARK}, {}: {:.5} {unit} read against {}, good to {} %",
        now.format("%Y-%m-%d %H:%M UTC"),
        calibration.measured,
        request.reference.describe(),
        request.reference_uncertainty_pct,
        unit = calibration.unit,
    )
}

/// Writes `shunt_correction` and `reference_uncertainty_pct` into the target's table of the
/// rig file at `path` (through `pending`, a file beside it), keeping every comment and the
/// rest of the layout.
fn write_correction(
    path: &Path,
    pending: crate::atomic::Pending,
    target: &Target,
    calibration: &Calibration,
    request: &Request,
    now: DateTime<Utc>,
) -> Result<()> {
    rewrite_rig(path, pending, |text| {
        edit_rig_text(
            text,
            target.index,
            &request.rail,
            calibration.factor,
            request.reference_uncertainty_pct,
            &comment(calibration, request, now),
        )
    })
}

/// Replaces the rig file at `path` with what `edit` makes of its text, through `pending` (a
/// file beside it): an interrupted write never leaves half a rig.
fn rewrite_rig(
    path: &Path,
    mut pending: crate::atomic::Pending,
    edit: impl FnOnce(&str) -> Result<String>,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read rig file {}", path.display()))?;
    let edited = edit(&text).with_context(|| format!("rig file {}", path.display()))?;
    pending
        .file()
        .write_all(edited.as_bytes())
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    pending.persist()
}

/// The rig text with the `index`-th `[[sensors]]` table (which must measure `rail`) holding
/// `shunt_correction = factor` and `reference_uncertainty_pct = pct`, and `comment` on the line
/// above the first. Earlier calibration comments on that key go; every other comment stays.
pub fn edit_rig_text(
    text: &str,
    index: usize,
    rail: &str,
    factor: f64,
    pct: f64,
    comment: &str,
) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("cannot parse it to edit")?;
    let table = doc
        .get_mut("sensors")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
        .and_then(|tables| tables.get_mut(index))
        .filter(|t| t.get("rail").and_then(|r| r.as_str()) == Some(rail))
        .ok_or_else(|| {
            anyhow!(
                "cannot find the [[sensors]] table of rail {rail:?} to edit: add \
                 shunt_correction = {factor} and reference_uncertainty_pct = {pct} to it by hand"
            )
        })?;
    let kept: String = table
        .key("shunt_correction")
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .lines()
        .filter(|line| !line.trim_start().starts_with(COMMENT_MARK))
        .map(|line| format!("{line}\n"))
        .collect();
    table.insert("shunt_correction", toml_edit::value(factor));
    table.insert("reference_uncertainty_pct", toml_edit::value(pct));
    if let Some(mut key) = table.key_mut("shunt_correction") {
        key.leaf_decor_mut()
            .set_prefix(format!("{kept}{comment}\n"));
    }
    let edited = doc.to_string();
    Rig::parse(&edited).context("the edited rig does not parse (nothing written)")?;
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sensor::ina219_sim::{SimBus, SimulatedIna219};
    use crate::sensor::load::ConstantLoad;
    use crate::sensor::{Origin, SensorInfo};

    const SIM_RIG: &str = r#"# A rig to calibrate.
name = "cal"
description = "a simulated board whose shunt is 1 % over its marking"

[[backends]]
kind = "tflite"    # the int8 model
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"

# The board's supply.
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1   # as marked
max_current_a = 3.2
bus_khz = 400

[sensors.load]
# A steady 0.4 A: no noise, so the mean is exact.
idle_amps = 0.4
noise_amps = 0.0
actual_shunt_ohms = 0.101

[[sensors]]
kind = "nominal"
rail = "GPU"
watts = 10.0
"#;

    fn request(reference: Reference) -> Request {
        Request {
            rail: "5V".into(),
            reference,
            reference_uncertainty_pct: 0.1,
            seconds: 1.0,
            dry_run: false,
        }
    }

    fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: got {got}, want {want} ± {tolerance}"
        );
    }

    /// The rig written to a temporary folder.
    fn rig_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cal.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// The driver assuming 0.1 Ω (with `correction`) on a chip whose shunt is really
    /// `actual_ohms`, a steady `amps` at 5 V, on a hand-driven clock.
    fn board(
        actual_ohms: f64,
        amps: f64,
        correction: Option<f64>,
    ) -> (Box<dyn PowerSensor>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(0.0));
        let load = Box::new(ConstantLoad { amps, volts: 5.0 });
        let bus = SimBus::timed(crate::rig::I2cAdapter::Bcm2835, 400);
        let chip = SimulatedIna219::on_bus(0x40, actual_ohms, load, clock.clone(), bus);
        let spec = Ina219Spec {
            rail: "5V".into(),
            max_current_a: 3.2768,
            shunt_range_mv: Some(320),
            bus_khz: 400,
            shunt_correction: correction,
            reference_uncertainty_pct: correction.map(|_| 0.1),
            ..bare_spec()
        };
        let settings = Ina219Settings::from_spec(&spec, "test bus").unwrap();
        let info = SensorInfo {
            kind: "ina219-sim".into(),
            rail: "5V".into(),
            origin: Origin::Simulated,
            detail: String::new(),
        };
        let sensor = ina219_sim::sensor(chip, settings, info).unwrap();
        (Box::new(sensor), clock)
    }

    #[test]
    fn a_shunt_one_percent_over_reads_one_percent_high_and_within_0_1_percent_once_calibrated() {
        // 1 A through 0.101 Ω is 10100 shunt LSBs; with calibration 4096 the current register
        // holds 10100 × 4096 / 4096: 1.01 A, 1 % high.
        let (mut sensor, clock) = board(0.101, 1.0, None);
        let m = measure(sensor.as_mut(), clock.as_ref(), 0.5).unwrap();
        assert_near("uncorrected amps", m.mean_amps, 1.01, 1e-9);
        let target = Target {
            origin: "test".into(),
            path: None,
            index: 0,
            kind: "ina219-sim",
            spec: Ina219Spec {
                rail: "5V".into(),
                max_current_a: 3.2768,
                shunt_range_mv: Some(320),
                bus_khz: 400,
                ..bare_spec()
            },
        };
        let cal = derive(&target, &m, &request(Reference::Amps(1.0))).unwrap();
        assert_near("factor", cal.factor, 1.0 / 1.01, 0.5e-6);
        // trunc(4096 × 0.990099) = 4055, bit 0 cleared: 4054.
        assert_eq!(
            (cal.uncorrected_register, cal.corrected_register),
            (4096, 4054)
        );
        // Corrected: 10100 × 4054 / 4096 = 9996.6, truncated to 9996 LSB: 0.9996 A. What the
        // code promises: the register is within 2 of Cal × f (truncation, then bit 0 cleared:
        // 2/4054 = 0.049 %), the current register truncates (1 LSB of 10000: 0.01 %), and the
        // factor came from a mean exact to 1 LSB (0.01 %) rounded to 1 ppm: 0.07 % in all,
        // inside the 0.1 % asked.
        let tolerance = 2.0 / 4054.0 + 1e-4 + 1e-4 + 1e-6;
        let (mut sensor, clock) = board(0.101, 1.0, Some(cal.factor));
        let m = measure(sensor.as_mut(), clock.as_ref(), 0.5).unwrap();
        assert_near("corrected amps", m.mean_amps, 1.0, tolerance);
        assert!(tolerance < 1e-3);
        // Uncorrected, the same reading was 1 % off: the tolerance tells them apart.
        assert!((1.01 - 1.0_f64).abs() > 10.0 * tolerance);
        // The 1.22 % of a 1 % shunt becomes √(0.5² + 0.5² + 0.1²) = 0.714 %.
        assert_near("before", cal.uncertainty_before, 0.012247, 1e-6);
        assert_near("after", cal.uncertainty_after, 0.007141, 1e-6);
    }

    #[test]
    fn the_three_references_give_the_same_factor() {
        let (mut sensor, clock) = board(0.101, 0.5, None);
        let m = measure(sensor.as_mut(), clock.as_ref(), 0.5).unwrap();
        // 0.505 A read at 5 V: 2.525 W read for 2.5 W drawn; a 10 Ω load at 5 V draws 0.5 A.
        let target = Target {
            origin: "test".into(),
            path: None,
            index: 0,
            kind: "ina219-sim",
            spec: Ina219Spec {
                rail: "5V".into(),
                ..bare_spec()
            },
        };
        for reference in [
            Reference::Amps(0.5),
            Reference::Watts(2.5),
            Reference::LoadOhms(10.0),
        ] {
            let cal = derive(&target, &m, &request(reference)).unwrap();
            // The power register truncates to 2 mW LSBs: 1 in 1262 of 2.525 W.
            assert_near(
                &format!("{reference:?}"),
                cal.factor,
                1.0 / 1.01,
                1.0 / 1262.0,
            );
        }
    }

    #[test]
    fn calibrate_writes_the_keys_into_the_rig_file_and_keeps_everything_else() {
        let (_dir, path) = rig_file(SIM_RIG);
        let clock = Arc::new(ManualClock::new(0.0));
        let now = DateTime::parse_from_rfc3339("2026-11-27T21:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let arg = path.to_str().unwrap();
        let (target, cal) = calibrate(arg, &request(Reference::Amps(0.4)))
            .unwrap()
            .run(clock, now)
            .unwrap();
        assert_eq!((target.index, target.kind), (0, "ina219-sim"));
        // 0.4 A through 0.101 Ω: 4040 shunt LSBs, 4040 current LSBs, exactly 0.404 A.
        assert_near("measured", cal.measured, 0.404, 1e-12);
        assert_eq!(cal.factor, 0.990099);
        let after = std::fs::read_to_string(&path).unwrap();
        let new_lines: Vec<&str> = after
            .lines()
            .filter(|l| !SIM_RIG.lines().any(|old| old == *l))
            .collect();
        assert_eq!(
            new_lines,
            [
                "# joulebench calibrate, 2026-11-27 21:30 UTC: 0.40400 A read against 0.4 A \
                 (--amps), good to 0.1 %",
                "shunt_correction = 0.990099",
                "reference_uncertainty_pct = 0.1",
            ]
        );
        let without: String = after
            .lines()
            .filter(|l| !new_lines.contains(l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(without, SIM_RIG, "everything else as it was");
        // Right below the sensor's keys, above its [sensors.load].
        assert!(
            after.contains("bus_khz = 400\n# joulebench calibrate"),
            "{after}"
        );
        let rig = Rig::load(&path).unwrap();
        let SensorSpec::Ina219Sim(spec) = &rig.sensors[0].spec else {
            panic!("{:?}", rig.sensors[0]);
        };
        assert_eq!(
            (spec.shunt_correction, spec.reference_uncertainty_pct),
            (Some(0.990099), Some(0.1))
        );

        // Calibrating again ignores the correction held (it reads 1 % high again), replaces
        // the values and the calibration comment, and keeps the rest.
        let clock = Arc::new(ManualClock::new(0.0));
        let again = Request {
            reference_uncertainty_pct: 0.2,
            ..request(Reference::LoadOhms(12.7))
        };
        let (_, cal) = calibrate(arg, &again).unwrap().run(clock, now).unwrap();
        assert_eq!(cal.previous_factor, Some(0.990099));
        // 5.1 V less 0.4 A × 0.05 Ω: 5.08 V over 12.7 Ω is 0.4 A.
        assert_eq!(cal.factor, 0.990099);
        let twice = std::fs::read_to_string(&path).unwrap();
        assert_eq!(twice.matches(COMMENT_MARK).count(), 1, "{twice}");
        assert!(
            twice.contains("reference_uncertainty_pct = 0.2\n"),
            "{twice}"
        );
        assert_eq!(twice.lines().count(), SIM_RIG.lines().count() + 3);
    }

    #[test]
    fn a_rig_inside_a_run_folder_is_not_written() {
        let (dir, path) = rig_file(SIM_RIG);
        std::fs::write(dir.path().join("run.json"), "{}").unwrap();
        let e = refusal(path.to_str().unwrap(), &request(Reference::Amps(0.4)));
        assert!(
            e.contains("is inside the run folder") && e.contains("calibrate the copy"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SIM_RIG);
    }

    #[test]
    fn a_dry_run_writes_nothing() {
        let (_dir, path) = rig_file(SIM_RIG);
        let dry = Request {
            dry_run: true,
            ..request(Reference::Amps(0.4))
        };
        let clock = Arc::new(ManualClock::new(0.0));
        let (_, cal) = calibrate(path.to_str().unwrap(), &dry)
            .unwrap()
            .run(clock, Utc::now())
            .unwrap();
        assert_eq!(cal.factor, 0.990099);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SIM_RIG);
    }

    /// The one-line error `calibrate` gives.
    fn refusal(rig: &str, request: &Request) -> String {
        let clock = Arc::new(ManualClock::new(0.0));
        let e = format!(
            "{:#}",
            calibrate(rig, request)
                .and_then(|prepared| prepared.run(clock, Utc::now()))
                .err()
                .unwrap()
        );
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn bad_requests_are_one_line_errors_and_write_nothing() {
        let (_dir, path) = rig_file(SIM_RIG);
        let rig = path.to_str().unwrap();
        let unknown = Request {
            rail: "12V".into(),
            ..request(Reference::Amps(0.4))
        };
        assert_eq!(
            refusal(rig, &unknown),
            format!("no sensor of rig file {rig} measures rail \"12V\" (its INA219 rails: \"5V\")")
        );
        let nominal = Request {
            rail: "GPU".into(),
            ..request(Reference::Amps(0.4))
        };
        assert_eq!(
            refusal(rig, &nominal),
            format!(
                "rail \"GPU\" of rig file {rig} is a nominal sensor: calibrate works on INA219s \
                 (kind \"ina219\" or \"ina219-sim\") and a Pi 5's PMIC (kind \"rpi-pmic\") only"
            )
        );
        // 0.404 A read against 0.3 A: a factor of 0.7426.
        let e = refusal(rig, &request(Reference::Amps(0.3)));
        assert!(
            e.contains("a factor of 0.7426, outside 0.8..1.25. That is a wiring fault"),
            "{e}"
        );
        let e = refusal(rig, &request(Reference::Amps(0.6)));
        assert!(e.contains("a factor of 1.4851, outside"), "{e}");
        for (bad, want) in [
            (
                Request {
                    reference_uncertainty_pct: 0.0,
                    ..request(Reference::Amps(0.4))
                },
                "--reference-uncertainty-pct: reference_uncertainty_pct must be above 0",
            ),
            (
                request(Reference::Watts(-2.0)),
                "--watts must be a positive",
            ),
            (
                request(Reference::LoadOhms(f64::NAN)),
                "--load-ohms must be a positive",
            ),
            (
                Request {
                    seconds: 0.0,
                    ..request(Reference::Amps(0.4))
                },
                "--seconds must be positive",
            ),
            (
                Request {
                    seconds: 1e300,
                    ..request(Reference::Amps(0.4))
                },
                "--seconds must be positive and at most 600",
            ),
        ] {
            let e = refusal(rig, &bad);
            assert!(e.starts_with(want), "{want}: {e}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SIM_RIG);
    }

    #[test]
    fn too_little_current_stuck_conversions_and_saturation_are_refused() {
        let little = SIM_RIG.replace("idle_amps = 0.4", "idle_amps = 0.05");
        let (_dir, path) = rig_file(&little);
        let e = refusal(path.to_str().unwrap(), &request(Reference::Amps(0.05)));
        assert!(e.contains("under 1000 steps of its register"), "{e}");

        let stuck = SIM_RIG.replace(
            "[[sensors]]\nkind = \"nominal\"",
            "[sensors.faults]\ncnvr_stuck = true\n\n[[sensors]]\nkind = \"nominal\"",
        );
        let (_dir, path) = rig_file(&stuck);
        let e = refusal(path.to_str().unwrap(), &request(Reference::Amps(0.4)));
        assert!(e.contains("only 0 fresh readings in 1 s"), "{e}");

        // A ±40 mV range holds the rig's max_current_a, 0.4 A, across the 0.1 Ω it states; but
        // the board's shunt is 0.101 Ω, so its 0.4 A makes 40.4 mV there: beyond the range.
        let clipped = SIM_RIG.replace(
            "max_current_a = 3.2\nbus_khz = 400",
            "max_current_a = 0.4\nbus_khz = 400\nshunt_range_mv = 40",
        );
        let (_dir, path) = rig_file(&clipped);
        let e = refusal(path.to_str().unwrap(), &request(Reference::Amps(0.4)));
        assert!(e.contains("beyond the shunt range (saturated)"), "{e}");
    }

    /// The rail, and a rig file that could not be written, are refused by [`prepare`]: before
    /// any read (which takes seconds), and naming the rig file, not a temporary one.
    #[test]
    fn the_rail_and_a_rig_that_cannot_be_written_are_refused_before_a_read() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, path) = rig_file(SIM_RIG);
        let rig = path.to_str().unwrap();
        let nope = Request {
            rail: "nope".into(),
            ..request(Reference::Amps(0.4))
        };
        let e = calibrate(rig, &nope).err().unwrap().to_string();
        assert!(e.starts_with("no sensor of rig file "), "{e}");

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let e = joulebench_test_support::with_file_permissions_binding(|| {
            calibrate(rig, &request(Reference::Amps(0.4))).err()
        });
        let dry = Request {
            dry_run: true,
            ..request(Reference::Amps(0.4))
        };
        let dry_ok =
            joulebench_test_support::with_file_permissions_binding(|| calibrate(rig, &dry).is_ok());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            format!("{:#}", e.unwrap()),
            format!(
                "cannot write {rig}: permission denied: calibrate writes the correction into \
                 the rig file; copy the rig to a folder you can write, or add --dry-run"
            )
        );
        assert!(
            dry_ok,
            "a dry run writes nothing, so needs no writable folder"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SIM_RIG);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn a_built_in_rig_must_be_copied_first_but_can_be_dry_run() {
        // As a built-in rig reads (no file): the refusal comes before anything is opened.
        let source = RigSource {
            text: SIM_RIG.into(),
            origin: "built-in rig cal".into(),
            path: None,
        };
        let rig = Rig::parse(SIM_RIG).unwrap();
        let clock = Arc::new(ManualClock::new(0.0));
        let run = |req: &Request| {
            prepare(&rig, source.clone(), req).and_then(|p| p.run(clock.clone(), Utc::now()))
        };
        let e = run(&request(Reference::Amps(0.4))).unwrap_err().to_string();
        let dir = crate::project::user_rigs_dir().unwrap();
        assert_eq!(
            e,
            format!(
                "built-in rig cal has no file to write the correction to: copy it first (to {}, \
                 say), then calibrate --rig cal; or add --dry-run",
                dir.join("cal.toml").display()
            )
        );
        assert_eq!(clock.now(), 0.0, "nothing was read");
        let dry = Request {
            dry_run: true,
            ..request(Reference::Amps(0.4))
        };
        assert_eq!(run(&dry).unwrap().1.factor, 0.990099);
        // The shipped rigs have no file once installed: the same refusal, by name.
        let (rig, mut source) = Rig::find("sim-cpu").unwrap();
        source.path = None;
        source.origin = "built-in rig sim-cpu".into();
        let req = Request {
            rail: rig.sensors[0].rail().into(),
            ..request(Reference::Amps(0.4))
        };
        let e = prepare(&rig, source, &req)
            .and_then(|p| p.run(clock.clone(), Utc::now()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("built-in rig sim-cpu has no file"), "{e}");
    }
}
