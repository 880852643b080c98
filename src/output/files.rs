//! The files of a run folder: `latency.csv`, `power.csv`, `summary.csv` and `run.json`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::system::SystemInfo;
use crate::results::SummaryRow;
use crate::runner::RunRecord;
use crate::sensor::Origin;

/// Writes all four files.
pub fn write_all(
    dir: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    args: &[String],
) -> Result<()> {
    write_latency(&dir.join("latency.csv"), record)?;
    write_power(&dir.join("power.csv"), record)?;
    write_summary(&dir.join("summary.csv"), rows)?;
    write_run_json(&dir.join("run.json"), record, rows, args)
}

#[derive(Serialize)]
struct LatencyRow<'a> {
    backend_index: usize,
    /// 1-based repetition of the protocol.
    repetition: usize,
    engine: &'a str,
    /// 1-based index of the timed classification.
    inference: usize,
    start_s: f64,
    latency_ms: f64,
}

fn write_latency(path: &Path, record: &RunRecord) -> Result<()> {
    let mut w = writer(path)?;
    for (index, b) in record.backends.iter().enumerate() {
        for (repetition, run) in b.runs.iter().enumerate() {
            for (i, l) in run.latencies.iter().enumerate() {
                w.serialize(LatencyRow {
                    backend_index: index,
                    repetition: repetition + 1,
                    engine: &b.engine.engine,
                    inference: i + 1,
                    start_s: l.start,
                    latency_ms: l.seconds * 1e3,
                })?;
            }
        }
    }
    finish(w, path)
}

#[derive(Serialize)]
struct PowerRow<'a> {
    sensor_index: usize,
    sensor: &'a str,
    rail: &'a str,
    simulated: bool,
    origin: Origin,
    t_s: f64,
    /// The protocol phase at the sample's time ("" between phases).
    phase: &'a str,
    volts: Option<f64>,
    amps: Option<f64>,
    watts: Option<f64>,
    /// The sensor's cumulative energy counter, where it has one.
    energy_j: Option<f64>,
    overflow: bool,
    /// Clipped at the sensor's range: the true power was higher.
    saturated: bool,
    stale: bool,
    error: &'a str,
}

fn write_power(path: &Path, record: &RunRecord) -> Result<()> {
    let mut w = writer(path)?;
    for (index, log) in record.sensors.iter().enumerate() {
        for s in &log.samples {
            let phase = record
                .phases
                .iter()
                .find(|p| p.start <= s.t && s.t < p.end)
                .map_or("", |p| p.phase.as_str());
            let reading = s.reading.as_ref().ok();
            w.serialize(PowerRow {
                sensor_index: index,
                sensor: &log.info.kind,
                rail: &log.info.rail,
                simulated: log.info.origin == Origin::Simulated,
                origin: log.info.origin,
                t_s: s.t,
                phase,
                volts: reading.and_then(|r| r.volts),
                amps: reading.and_then(|r| r.amps),
                watts: reading.map(|r| r.watts),
                energy_j: reading.and_then(|r| r.energy_j),
                overflow: reading.is_some_and(|r| r.overflow),
                saturated: reading.is_some_and(|r| r.saturated),
                stale: reading.is_some_and(|r| r.stale),
                error: s.reading.as_ref().err().map_or("", String::as_str),
            })?;
        }
    }
    finish(w, path)
}

fn write_summary(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    let mut w = writer(path)?;
    for row in rows {
        w.serialize(row)?;
    }
    finish(w, path)
}

#[derive(Serialize)]
struct RunJson<'a> {
    /// The layout of this folder's files ([`crate::results::SCHEMA_VERSION`]).
    schema_version: u32,
    joulebench_version: &'a str,
    command: &'a [String],
    started_utc: String,
    interrupted: bool,
    system: SystemInfo,
    engines: Vec<&'a crate::backend::EngineInfo>,
    sensors: Vec<SensorJson<'a>>,
    /// With `detect_sensors`: whether this machine's meters or the rig's own sensors were
    /// used, why, and every meter detection found; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_choice: Option<&'a crate::sensor::detect::SensorChoice>,
    /// With a ranging pass: each INA219's peak current and the range it was given.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ranging: &'a [crate::ranging::Ranged],
    phases: &'a [crate::clock::PhaseSpan],
    /// Mean power and energy of every phase, per sensor.
    phase_energy: Vec<crate::summary::PhaseEnergy>,
    /// The rig file exactly as read.
    rig_file: &'a str,
    rig: &'a crate::rig::Rig,
    summary: &'a [SummaryRow],
    /// The machine at the edges of every timed window, and whether the CPU throttled.
    machine_state: Vec<MachineStateJson<'a>>,
}

#[derive(Serialize)]
struct MachineStateJson<'a> {
    backend: usize,
    /// 1-based repetition of the protocol.
    repetition: usize,
    start: &'a crate::machine::MachineState,
    end: &'a crate::machine::MachineState,
    #[serde(flatten)]
    verdict: crate::machine::Verdict,
}

/// One entry per timed window whose edges were read.
fn machine_state(record: &RunRecord) -> Vec<MachineStateJson<'_>> {
    let mut out = Vec::new();
    for (backend, b) in record.backends.iter().enumerate() {
        for (repetition, run) in b.runs.iter().enumerate() {
            if let (Some(start), Some(end), Some(verdict)) =
                (&run.machine_start, &run.machine_end, run.machine_verdict())
            {
                out.push(MachineStateJson {
                    backend,
                    repetition: repetition + 1,
                    start,
                    end,
                    verdict,
                });
            }
        }
    }
    out
}

#[derive(Serialize)]
struct SensorJson<'a> {
    kind: &'a str,
    rail: &'a str,
    origin: Origin,
    detail: &'a str,
    update_period_s: f64,
    samples: usize,
    failure: Option<&'a str>,
    sampler_cpu_s: f64,
}

fn write_run_json(
    path: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    args: &[String],
) -> Result<()> {
    let json = RunJson {
        schema_version: crate::results::SCHEMA_VERSION,
        joulebench_version: env!("CARGO_PKG_VERSION"),
        command: args,
        started_utc: record.started.to_rfc3339(),
        interrupted: record.interrupted,
        system: SystemInfo::read(),
        engines: record.backends.iter().map(|b| &b.engine).collect(),
        sensors: record
            .sensors
            .iter()
            .map(|s| SensorJson {
                kind: &s.info.kind,
                rail: &s.info.rail,
                origin: s.info.origin,
                detail: &s.info.detail,
                update_period_s: s.update_period.as_secs_f64(),
                samples: s.samples.len(),
                failure: s.failure.as_deref(),
                sampler_cpu_s: s.cpu_time.as_secs_f64(),
            })
            .collect(),
        sensor_choice: record.sensor_choice.as_ref(),
        ranging: &record.ranging,
        // Open-ended phases (a run cut short) serialize their end as null.
        phases: &record.phases,
        phase_energy: crate::summary::phase_energy(record),
        rig_file: &record.rig_text,
        rig: &record.rig,
        summary: rows,
        machine_state: machine_state(record),
    };
    let text = serde_json::to_string_pretty(&json)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn writer(path: &Path) -> Result<csv::Writer<std::fs::File>> {
    csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))
}

fn finish(mut w: csv::Writer<std::fs::File>, path: &Path) -> Result<()> {
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
