//! `joulebench calibrate` for a Raspberry Pi 5's PMIC: one reference point per run, the PMIC
//! total beside a meter at the board's 5 V input (a USB-C power meter), kept in the rig's
//! `calibration` list; from two points on the sensor reports the line through them
//! ([`crate::sensor::rpi_pmic::fit`]: a gain and an offset, since the input feeds more than the
//! rails, and their bound from the references' uncertainty).
//!
//! The points, not a fitted gain and offset, go into the rig: the fit is made again from them
//! whenever the rig opens, so a third point refines it and nothing in the rig is a number
//! that only this command could check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Context, Result};
use chrono::{DateTime, Utc};

use super::{pending_write, Reference, Request, COMMENT_MARK};
use crate::clock::TimeSource;
use crate::project::RigSource;
use crate::rig::{Rig, SensorSpec};
use crate::sensor::rpi_pmic::fit::{CalibrationPoint, Fit};
use crate::sensor::rpi_pmic::{self, RpiPmicSpec};
use crate::sensor::PowerSensor;

/// Fewest readings a point's mean is taken from.
const MIN_READINGS: usize = 5;

/// The PMIC table a calibration is for.
#[derive(Debug, Clone)]
pub struct PmicTarget {
    /// "rig file PATH" or "built-in rig NAME".
    pub origin: String,
    pub path: Option<PathBuf>,
    /// Its place among the rig's `[[sensors]]`.
    pub index: usize,
    pub spec: RpiPmicSpec,
}

/// The rig's `rpi-pmic` table of `rail`, if that rail is one.
pub fn target_in(rig: &Rig, source: &RigSource, rail: &str) -> Option<PmicTarget> {
    rig.sensors
        .iter()
        .enumerate()
        .find_map(|(index, s)| match &s.spec {
            SensorSpec::RpiPmic(spec) if spec.rail == rail => Some(PmicTarget {
                origin: source.origin.clone(),
                path: source.path.clone(),
                index,
                spec: spec.clone(),
            }),
            _ => None,
        })
}

/// The mean of the PMIC total over a calibration's seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct PmicMeasurement {
    pub readings: usize,
    pub seconds: f64,
    pub mean_w: f64,
    /// Standard deviation of the readings.
    pub sd_w: f64,
}

/// Reads `sensor` every update period for `seconds` of `clock`; a failed read ends it.
pub fn measure(
    sensor: &mut dyn PowerSensor,
    clock: &dyn TimeSource,
    seconds: f64,
) -> Result<PmicMeasurement> {
    let period = sensor.update_period().as_secs_f64();
    let end = clock.now() + seconds;
    let mut next = clock.now();
    let mut watts = Vec::new();
    while clock.now() < end {
        clock.sleep_until(next);
        watts.push(sensor.read()?.watts);
        next = (next + period).max(clock.now());
    }
    let needed = MIN_READINGS.max((0.5 * seconds / period).ceil() as usize);
    ensure!(
        watts.len() >= needed,
        "only {} readings in {seconds} s, where calibration needs {needed}: read longer \
         (--seconds)",
        watts.len()
    );
    let n = watts.len() as f64;
    let mean_w = watts.iter().sum::<f64>() / n;
    let sd_w = (watts.iter().map(|w| (w - mean_w).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Ok(PmicMeasurement {
        readings: watts.len(),
        seconds,
        mean_w,
        sd_w,
    })
}

/// What one calibration run gave.
#[derive(Debug, Clone, PartialEq)]
pub struct PmicCalibration {
    pub measurement: PmicMeasurement,
    /// This run's point.
    pub point: CalibrationPoint,
    /// Every point, the rig's first and this one last.
    pub points: Vec<CalibrationPoint>,
    /// The line through them, from two points on.
    pub fit: Option<Fit>,
}

/// A PMIC calibration whose request and rig file were checked: what is left is the read.
pub struct PreparedPmic {
    target: PmicTarget,
    reference_w: f64,
    request: Request,
    pending: Option<crate::atomic::Pending>,
}

/// Checks everything that needs no reading: the request (a reference in watts), and, unless
/// a dry run, that the rig has a file joulebench can write.
pub fn prepare(rig: &Rig, target: PmicTarget, request: &Request) -> Result<PreparedPmic> {
    request.check()?;
    let Reference::Watts(reference_w) = request.reference else {
        bail!(
            "rail {:?} is a PMIC total (kind \"rpi-pmic\"): it is fitted to a meter at the \
             board's 5 V input in watts: give --watts, not {}",
            target.spec.rail,
            request.reference.option()
        );
    };
    let pending = pending_write(&target.path, &target.origin, &rig.name, request.dry_run)?;
    Ok(PreparedPmic {
        target,
        reference_w,
        request: request.clone(),
        pending,
    })
}

impl PreparedPmic {
    /// Reads the PMIC total without any calibration on `clock`, adds the point, fits, and
    /// (unless a dry run) writes the points into the rig file with a comment dated `now`.
    pub fn run(
        self,
        clock: Arc<dyn TimeSource>,
        now: DateTime<Utc>,
    ) -> Result<(PmicTarget, PmicCalibration)> {
        let PreparedPmic {
            target,
            reference_w,
            request,
            pending,
        } = self;
        let what = format!("rpi-pmic ({}) of {}", target.spec.rail, target.origin);
        let mut sensor = rpi_pmic::open_uncalibrated(&target.spec).with_context(|| what.clone())?;
        let m =
            measure(&mut sensor, clock.as_ref(), request.seconds).with_context(|| what.clone())?;
        let point = CalibrationPoint {
            pmic_w: m.mean_w,
            reference_w,
            reference_uncertainty_pct: request.reference_uncertainty_pct,
        };
        let mut points = target.spec.calibration.clone();
        points.push(point);
        let fit = Fit::of(&points)
            .map_err(|e| anyhow!("{e} (nothing written)"))
            .with_context(|| what.clone())?;
        let calibration = PmicCalibration {
            measurement: m,
            point,
            points,
            fit,
        };
        if let (Some(path), Some(pending)) = (&target.path, pending) {
            write_points(path, pending, &target, &calibration, now)?;
        }
        Ok((target, calibration))
    }
}

/// Writes the points into the target's table of the rig file at `path`, keeping every
/// comment and the rest of the layout.
fn write_points(
    path: &Path,
    pending: crate::atomic::Pending,
    target: &PmicTarget,
    calibration: &PmicCalibration,
    now: DateTime<Utc>,
) -> Result<()> {
    let p = &calibration.point;
    let comment = format!(
        "{COMMENT_MARK}, {}: point {} read {:.4} W of PMIC rails against {} W at the 5 V \
         input, good to {} %",
        now.format("%Y-%m-%d %H:%M UTC"),
        calibration.points.len(),
        p.pmic_w,
        p.reference_w,
        p.reference_uncertainty_pct
    );
    super::rewrite_rig(path, pending, |text| {
        edit_rig_text(
            text,
            target.index,
            &target.spec.rail,
            &calibration.points,
            &comment,
        )
    })
}

/// The rig text with the `index`-th `[[sensors]]` table (which must measure `rail`) holding
/// `calibration = points`, one inline table a point, and `comment` added above the key to
/// the comments of earlier points.
pub fn edit_rig_text(
    text: &str,
    index: usize,
    rail: &str,
    points: &[CalibrationPoint],
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
                "cannot find the [[sensors]] table of rail {rail:?} to edit: add the point by hand"
            )
        })?;
    let kept: String = table
        .key("calibration")
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    let mut list = toml_edit::Array::new();
    for p in points {
        let mut point = toml_edit::InlineTable::new();
        // Rounded past what the readings resolve: short lines, the same fit.
        let round = |v: f64| (v * 1e6).round() / 1e6;
        point.insert("pmic_w", round(p.pmic_w).into());
        point.insert("reference_w", p.reference_w.into());
        point.insert(
            "reference_uncertainty_pct",
            p.reference_uncertainty_pct.into(),
        );
        list.push(point);
    }
    for value in list.iter_mut() {
        value.decor_mut().set_prefix("\n  ");
    }
    list.set_trailing("\n");
    list.set_trailing_comma(true);
    table.insert("calibration", toml_edit::value(list));
    if let Some(mut key) = table.key_mut("calibration") {
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

    const RIG: &str = r#"name = "pi5"

[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"

# The PMIC.
[[sensors]]
kind = "rpi-pmic"
rail = "Pi 5 PMIC"
"#;

    #[test]
    fn points_are_written_one_per_run_with_their_comments() {
        let point = |pmic_w, reference_w| CalibrationPoint {
            pmic_w,
            reference_w,
            reference_uncertainty_pct: 1.0,
        };
        let one = edit_rig_text(
            RIG,
            0,
            "Pi 5 PMIC",
            &[point(2.0, 2.9)],
            "# joulebench calibrate, A",
        )
        .unwrap();
        assert!(one.contains("# The PMIC.\n[[sensors]]"), "{one}");
        assert!(
            one.contains(
                "# joulebench calibrate, A\ncalibration = [\n  { pmic_w = 2.0, reference_w = 2.9, \
                 reference_uncertainty_pct = 1.0 },\n]"
            ),
            "{one}"
        );
        let two = edit_rig_text(
            &one,
            0,
            "Pi 5 PMIC",
            &[point(2.0, 2.9), point(6.0, 7.7)],
            "# joulebench calibrate, B",
        )
        .unwrap();
        assert!(
            two.contains("# joulebench calibrate, A\n# joulebench calibrate, B\ncalibration = ["),
            "{two}"
        );
        let rig = Rig::parse(&two).unwrap();
        let SensorSpec::RpiPmic(spec) = &rig.sensors[0].spec else {
            panic!("{two}")
        };
        assert_eq!(spec.calibration, [point(2.0, 2.9), point(6.0, 7.7)]);
        assert!(edit_rig_text(RIG, 0, "other", &[point(2.0, 2.9)], "#").is_err());
    }
}
