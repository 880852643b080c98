//! Writing a run's record into its folder: the rows of `latency.csv` and `power.csv`,
//! `summary.csv`, and `run.json` built from the record. What the files hold, and their
//! names, is [`super::folder`]'s.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result};

use super::folder::{
    BackendJson, GpuStateJson, LatencyRow, MachineStateJson, PowerRow, Progress, RepetitionJson,
    RowFiles, RunJson, SensorJson, LATENCY_CSV, POWER_CSV, RUN_JSON, SUMMARY_CSV,
};
use crate::machine::system::SystemInfo;
use crate::record::RunRecord;
use crate::results::SummaryRow;
use crate::sensor::{Origin, ReadError};

/// Writes all four files at once, the run finished (for a record measured without streaming:
/// a streamed run already holds its latency and power rows, and needs only [`write_final`]).
pub fn write_all(
    dir: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    args: &[String],
) -> Result<()> {
    write_latency(&dir.join(LATENCY_CSV), record)?;
    write_power(&dir.join(POWER_CSV), record)?;
    write_final(dir, record, rows, args)
}

/// Replaces `summary.csv` and `run.json` with the finished run's. `run.json` then records the
/// rows the summary was built from and what `latency.csv` and `power.csv` hold, so that a
/// later `summarize` can tell a damaged folder ([`RowFiles`]).
pub fn write_final(
    dir: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    args: &[String],
) -> Result<()> {
    write_summary(&dir.join(SUMMARY_CSV), rows)?;
    let progress = Progress {
        finished: true,
        latency_rows: record
            .backends
            .iter()
            .flat_map(|b| &b.repetitions)
            .map(|r| r.latencies.len())
            .sum(),
        power_rows: (0..record.sensors.len()).map(|i| record.readings(i)).sum(),
        files: Some(RowFiles::of(dir)?),
        ..Progress::default()
    };
    let phase_energy = crate::summary::phase_energy(record);
    write_run_json(
        &dir.join(RUN_JSON),
        record,
        rows,
        phase_energy,
        args,
        &progress,
    )
}

fn write_latency(path: &Path, record: &RunRecord) -> Result<()> {
    let mut w = writer(path)?;
    for (index, b) in record.backends.iter().enumerate() {
        for (repetition, run) in b.repetitions.iter().enumerate() {
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

fn write_power(path: &Path, record: &RunRecord) -> Result<()> {
    let mut w = writer(path)?;
    for (index, log) in record.sensors.iter().enumerate() {
        for s in &log.samples {
            w.serialize(power_row(index, &log.info, s, &record.phases))?;
        }
    }
    finish(w, path)
}

/// The `power.csv` row of one sample of sensor `index`, its phase looked up in `phases`.
pub(crate) fn power_row<'a>(
    index: usize,
    info: &'a crate::sensor::SensorInfo,
    s: &'a crate::sampler::Sample,
    phases: &[crate::clock::PhaseSpan],
) -> PowerRow<'a> {
    // From the latest phase back: a streamed reading belongs to one of the last few, and a
    // long run has thousands.
    let phase = phases
        .iter()
        .rev()
        .find(|p| p.start <= s.t && s.t < p.end)
        .map_or("", |p| p.phase.as_str());
    let reading = s.reading.as_ref().ok();
    PowerRow {
        sensor_index: index,
        sensor: &info.kind,
        rail: &info.rail,
        simulated: info.origin == Origin::Simulated,
        origin: info.origin,
        t_s: s.t,
        phase,
        volts: reading.and_then(|r| r.volts),
        amps: reading.and_then(|r| r.amps),
        watts: reading.map(|r| r.watts),
        energy_j: reading.and_then(|r| r.energy_j),
        instant_watts: reading.and_then(|r| r.instant_watts),
        overflow: reading.is_some_and(|r| r.overflow),
        saturated: reading.is_some_and(|r| r.saturated),
        stale: reading.is_some_and(|r| r.stale),
        error: s.reading.as_ref().err().map_or("", ReadError::message),
        counter_break: s.reading.as_ref().is_err_and(ReadError::is_counter_break),
    }
}

/// Replaces `summary.csv` atomically.
pub(crate) fn write_summary(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    crate::atomic::replace(path, &bytes)
}

fn backends_json(record: &RunRecord) -> Vec<BackendJson> {
    record
        .backends
        .iter()
        .map(|b| BackendJson {
            engine: b.engine.clone(),
            model: b.model.name.clone(),
            model_sha256: b.model.sha256.clone(),
            image: b.image.name.clone(),
            image_sha256: b.image.sha256.clone(),
            top1_expected: b.image.expected_top1.clone(),
            engine_note: b.engine_note.clone(),
            label_file: b.model.label_file.clone(),
            signature: b.signature.clone(),
            repetitions: b
                .repetitions
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let top1 = r.top.first();
                    RepetitionJson {
                        repetition: i + 1,
                        batch: r.batch,
                        cpu_seconds: r.cpu_seconds,
                        interrupted: r.interrupted,
                        error: r.error.clone(),
                        top1_class: top1.map(|p| p.class),
                        top1_label: top1.map_or(String::new(), |p| b.labels.get(p.class).into()),
                        top1_score: top1.map(|p| p.score),
                    }
                })
                .collect(),
        })
        .collect()
}

/// One entry per timed window whose edges were read.
fn machine_state(record: &RunRecord) -> Vec<MachineStateJson<'_>> {
    let mut out = Vec::new();
    for (backend, b) in record.backends.iter().enumerate() {
        for (repetition, run) in b.repetitions.iter().enumerate() {
            if let (Some(start), Some(end), Some(verdict)) =
                (&run.machine_start, &run.machine_end, run.machine_verdict())
            {
                out.push(MachineStateJson {
                    backend,
                    repetition: repetition + 1,
                    start: Cow::Borrowed(start),
                    end: Cow::Borrowed(end),
                    verdict,
                });
            }
        }
    }
    out
}

/// One entry per timed window whose GPUs were read.
fn gpu_state(record: &RunRecord) -> Vec<GpuStateJson<'_>> {
    let mut out = Vec::new();
    for (backend, b) in record.backends.iter().enumerate() {
        for (repetition, run) in b.repetitions.iter().enumerate() {
            if !run.gpu_start.is_empty() || !run.gpu_end.is_empty() {
                out.push(GpuStateJson {
                    backend,
                    repetition: repetition + 1,
                    start: Cow::Borrowed(&run.gpu_start),
                    end: Cow::Borrowed(&run.gpu_end),
                });
            }
        }
    }
    out
}

/// Replaces `run.json` atomically.
pub(crate) fn write_run_json(
    path: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    phase_energy: Vec<crate::summary::PhaseEnergy>,
    args: &[String],
    progress: &Progress,
) -> Result<()> {
    let json = RunJson {
        schema_version: crate::results::SCHEMA_VERSION,
        joulebench_version: Cow::Borrowed(env!("CARGO_PKG_VERSION")),
        command: Cow::Borrowed(args),
        started_utc: record.started.to_rfc3339(),
        interrupted: record.interrupted,
        finished: progress.finished,
        progress: Some(progress.clone()),
        system: SystemInfo::read(),
        engines: record.backends.iter().map(|b| &b.engine).collect(),
        sensors: record
            .sensors
            .iter()
            .enumerate()
            .map(|(i, s)| SensorJson {
                kind: s.info.kind.clone(),
                rail: s.info.rail.clone(),
                origin: s.info.origin,
                detail: s.info.detail.clone(),
                update_period_s: s.update_period.as_secs_f64(),
                samples: record.readings(i),
                failure: s.failure.clone(),
                missing: s.missing.clone(),
                sampler_cpu_s: s.cpu_time.as_secs_f64(),
                sampler_realtime: s.realtime,
                integrating: s.integrating,
                uncertainty: s.uncertainty,
                crosscheck: s.crosscheck.clone(),
                min_window_s: s.min_window_s,
                limits: s.limits,
            })
            .collect(),
        sensor_choice: record.sensor_choice.as_ref(),
        ranging: &record.ranging,
        phases: Cow::Borrowed(&record.phases),
        phase_energy,
        rig_file: Cow::Borrowed(&record.rig_text),
        rig: Cow::Borrowed(&record.rig),
        summary: rows,
        machine_state: machine_state(record),
        gpu_state: gpu_state(record),
        backends: Some(backends_json(record)),
    };
    let text = serde_json::to_string_pretty(&json)?;
    crate::atomic::replace(path, text.as_bytes())
}

fn writer(path: &Path) -> Result<csv::Writer<std::fs::File>> {
    csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))
}

fn finish(mut w: csv::Writer<std::fs::File>, path: &Path) -> Result<()> {
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_json_holds_gpu_state_only_where_a_gpu_was_read() {
        use crate::output::fixtures::{backend_result, record};
        let json_of = |gpus: bool| {
            let mut record = record(1);
            let mut backend = backend_result();
            if gpus {
                let probe = crate::sensor::nvml::warming_probe(0);
                backend.repetitions[0].gpu_start = vec![probe.capture()];
                backend.repetitions[0].gpu_end = vec![probe.capture()];
            }
            record.backends.push(backend);
            let dir = tempfile::tempdir().unwrap();
            let rows = crate::summary::summarize(&record);
            write_all(dir.path(), &record, &rows, &["joulebench".into()]).unwrap();
            // What summarize reads back must still read.
            crate::output::rebuild::rebuild(dir.path()).unwrap();
            let text = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        };
        let json = json_of(true);
        let entry = &json["gpu_state"][0];
        assert_eq!(
            (entry["backend"].as_u64(), entry["repetition"].as_u64()),
            (Some(0), Some(1))
        );
        assert_eq!(entry["start"][0]["temperature_c"], 40);
        assert_eq!(entry["end"][0]["temperature_c"], 41);
        assert_eq!(entry["start"][0]["power_limit_w"], 700.0);
        assert!(entry["start"][0]["performance_state"].is_null());
        assert_eq!(
            entry["start"][0]["unreadable"][0],
            "performance_state: Not Supported"
        );
        let none = json_of(false);
        assert!(none.get("gpu_state").is_none(), "{none}");
    }
}
