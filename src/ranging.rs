//! The ranging pass, after MLPerf Power's ranging mode: run the workload once with each INA219
//! at its configured range, then set its range and calibration from 1.1 × the peak current it
//! saw, for the run that counts.
//!
//! Why: an INA219's current LSB is its full scale / 32768. A rig written for the worst case
//! (3.2 A on a 0.1 Ω shunt: 100 µA steps, ±320 mV PGA) measures a Coral drawing 0.4 A in
//! steps of 0.025 % of its reading; ranged to 0.44 A it gets 20 µA steps and the ±40 mV range,
//! whose gain error is the datasheet's smallest. The 10 % headroom keeps a peak the pass
//! missed from clipping (a clipped reading makes the window invalid, never silently low).

use anyhow::{bail, Context, Result};

use crate::plan::Plan;
use crate::record::RunRecord;
use crate::rig::{Ina219Spec, SensorSpec, SensorTable};
use crate::runner::{self, RunOptions};
use crate::sampler::SensorLog;
use crate::sensor::ina219;

/// Headroom over the peak current of the ranging pass.
pub const HEADROOM: f64 = 1.1;

pub use crate::sensor::ina219::Ranged;

/// Runs the plan's protocol once (one repetition, no idle baseline) and returns the plan with
/// every INA219 ranged, ready for the measured run, and what was changed in its `ranging`.
/// Other sensors are left as they are; a plan without INA219s is returned unchanged, without
/// a pass.
pub fn range(plan: &Plan, options: &RunOptions) -> Result<Plan> {
    let is_ina219 =
        |s: &SensorTable| matches!(s.spec, SensorSpec::Ina219(_) | SensorSpec::Ina219Sim(_));
    if !plan.rig.sensors.iter().any(is_ina219) {
        return Ok(plan.clone());
    }
    let rig = &plan.rig;
    let record = ranging_pass(plan, options)?;
    // The sensors the plan chose (`detect_sensors` included): the measured run uses the same
    // ones, ranged.
    let mut ranged_rig = rig.clone();
    let mut ranged = Vec::new();
    for (index, (spec, log)) in ranged_rig
        .sensors
        .iter_mut()
        .zip(&record.sensors)
        .enumerate()
    {
        let (SensorSpec::Ina219(s) | SensorSpec::Ina219Sim(s)) = &mut spec.spec else {
            continue;
        };
        // An optional chip that did not open has no peak to range from: the measured run
        // goes on without it too.
        if log.missing.is_some() {
            continue;
        }
        ranged.push(range_sensor(index, s, log)?);
    }
    ranged_rig
        .validate()
        .context("the rig after the ranging pass")?;
    Ok(Plan {
        rig: ranged_rig,
        ranging: ranged,
        ..plan.clone()
    })
}

/// The plan run once (one repetition, no idle baseline); an error if it was interrupted or a
/// backend failed, since then its peaks say nothing.
fn ranging_pass(plan: &Plan, options: &RunOptions) -> Result<RunRecord> {
    let mut pass = plan.clone();
    pass.rig.protocol.repeat = 1;
    pass.rig.idle_baseline_s = 0.0;
    let prepared = runner::prepare(pass)?;
    let record = prepared.execute(options);
    if record.interrupted {
        bail!("interrupted during the ranging pass: nothing was measured");
    }
    if let Some(failed) = record.backends.iter().find_map(|b| {
        b.repetitions
            .iter()
            .find_map(|r| r.error.as_ref().map(|e| (b.spec.kind(), e)))
    }) {
        bail!(
            "ranging pass: backend {} failed: {}",
            failed.0.as_str(),
            failed.1
        );
    }
    Ok(record)
}

/// Sets sensor `index`'s range from the peak of its fresh readings in the pass's `log`; an
/// error if it clipped or read nothing.
fn range_sensor(index: usize, s: &mut Ina219Spec, log: &SensorLog) -> Result<Ranged> {
    let fresh: Vec<_> = log
        .samples
        .iter()
        .filter_map(|sample| sample.reading.as_ref().ok())
        .filter(|r| !r.stale)
        .collect();
    if fresh.iter().any(|r| r.saturated) {
        bail!(
            "ranging pass: sensor {index} ({}) clipped at its range: raise max_current_a \
             (now {} A) or use a smaller shunt",
            s.rail,
            s.max_current_a
        );
    }
    let Some(peak) = fresh.iter().filter_map(|r| r.amps).reduce(f64::max) else {
        bail!(
            "ranging pass: sensor {index} ({}) gave no fresh reading{}",
            s.rail,
            log.failure
                .as_ref()
                .map_or(String::new(), |f| format!(": {f}"))
        );
    };
    let before = s.max_current_a;
    s.max_current_a = ina219::ranged_max_current(HEADROOM * peak.max(0.0), s.shunt_ohms);
    s.shunt_range_mv = None;
    let settings = ina219::Ina219Settings::from_spec(s, "ranging")
        .with_context(|| format!("ranging sensor {index} ({})", s.rail))?;
    Ok(Ranged {
        sensor_index: index,
        rail: s.rail.clone(),
        peak_amps: peak,
        readings: fresh.len(),
        max_current_a_before: before,
        max_current_a: s.max_current_a,
        shunt_range_mv: settings.shunt_range_mv(),
    })
}

/// One line per ranged sensor, for the terminal.
pub fn describe(ranged: &[Ranged]) -> Vec<String> {
    ranged
        .iter()
        .map(|r| {
            format!(
                "ranging: {}: peak {:.4} A in {} readings; max_current_a {} A -> {:.4} A, PGA ±{} mV",
                r.rail,
                r.peak_amps,
                r.readings,
                r.max_current_a_before,
                r.max_current_a,
                r.shunt_range_mv
            )
        })
        .collect()
}
