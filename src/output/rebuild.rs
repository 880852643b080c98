//! `joulebench summarize DIR`: the summary of a run folder rebuilt from its rows —
//! `latency.csv`, `power.csv`, and `run.json`'s rig, phases, sensors and backends — through the
//! same summary code a run uses. For a folder whose run was killed (`"finished": false`), the
//! repetition it stopped in becomes an `interrupted` row.
//!
//! It replaces `summary.csv` only where the rows it reads are all the summary was built from:
//! not while a run holds the folder, not where a finished run's row files differ from what
//! `run.json` says the run left (rows, bytes, SHA-256), not where the run could not write all
//! it measured (a full disk), and not where a killed run's files hold fewer rows than at its
//! last `run.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

use super::files::{read_rows, FileDigest, LatencyRecord, PowerRecord, RowFiles};
use crate::backend::EngineInfo;
use crate::clock::{Phase, PhaseSpan};
use crate::input::{Labels, Prediction};
use crate::machine::MachineState;
use crate::models::{ResolvedImage, ResolvedModel, Top1};
use crate::protocol::{Latency, TimedRun};
use crate::record::{BackendResult, RunRecord};
use crate::results::{GpuState, SummaryRow};
use crate::rig::Rig;
use crate::sampler::{Sample, SensorLog};
use crate::sensor::{Origin, Reading, SensorInfo};

/// The parts of `run.json` a rebuild reads.
#[derive(Deserialize)]
struct RunJson {
    /// Absent in folders written before results were streamed: those always finished.
    finished: Option<bool>,
    /// Absent in folders written before results were streamed.
    progress: Option<ProgressJson>,
    started_utc: String,
    rig_file: String,
    rig: Rig,
    phases: Vec<SpanJson>,
    sensors: Vec<SensorJson>,
    backends: Option<Vec<BackendJson>>,
    #[serde(default)]
    machine_state: Vec<MachineJson>,
    /// Absent without an NVML sensor, and in folders written before it was recorded.
    #[serde(default)]
    gpu_state: Vec<GpuJson>,
}

#[derive(Deserialize)]
struct SpanJson {
    phase: Phase,
    backend: Option<usize>,
    repetition: Option<usize>,
    start: f64,
    /// Null while the phase was running.
    end: Option<f64>,
    /// Absent in folders written before the sampler's CPU was metered.
    #[serde(default)]
    sampler_cpu_s: Vec<f64>,
}

#[derive(Deserialize)]
struct SensorJson {
    kind: String,
    rail: String,
    origin: Origin,
    detail: String,
    update_period_s: f64,
    failure: Option<String>,
    #[serde(default)]
    uncertainty: Option<f64>,
    /// Absent in folders written before the cross-check: nothing to say then.
    #[serde(default)]
    crosscheck: Option<crate::sensor::Crosscheck>,
    #[serde(default)]
    min_window_s: Option<f64>,
    /// Absent in folders written before it was recorded: then only the physics of any
    /// supply, as a meter without a range of its own has.
    #[serde(default)]
    limits: crate::sensor::Limits,
    #[serde(default)]
    sampler_cpu_s: f64,
    #[serde(default)]
    sampler_realtime: bool,
    /// Absent in folders written before it was recorded: their INA219 values were
    /// integrated as point samples, and a rebuild does the same.
    #[serde(default)]
    integrating: bool,
}

#[derive(Deserialize)]
struct BackendJson {
    engine: EngineInfo,
    model: String,
    model_sha256: String,
    image: String,
    image_sha256: String,
    top1_expected: Option<Top1>,
    /// Absent in folders written before run.json recorded it: no note then.
    #[serde(default)]
    engine_note: Option<String>,
    /// Absent in folders written before run.json recorded it.
    #[serde(default)]
    signature: Option<crate::backend::Signature>,
    runs: Vec<super::files::RepetitionJson>,
}

#[derive(Deserialize)]
struct MachineJson {
    backend: usize,
    repetition: usize,
    start: MachineState,
    end: MachineState,
}

#[derive(Deserialize)]
struct GpuJson {
    backend: usize,
    repetition: usize,
    start: Vec<GpuState>,
    end: Vec<GpuState>,
}

/// A rebuilt folder: its summary rows, and whether its run finished.
pub struct Rebuilt {
    pub rows: Vec<SummaryRow>,
    pub finished: bool,
    /// The phase the run was in when its `run.json` was last written, if it did not finish.
    pub stopped_in: Option<String>,
}

/// Rebuilds the summary of the run folder `dir` and replaces its `summary.csv`, once the
/// folder is shown to hold every row the summary came from.
pub fn summarize(dir: &Path) -> Result<Rebuilt> {
    if let Some(run) = super::run_holding(dir)? {
        bail!(
            "{} is in use by {run}, which writes its summary itself: summarize it once that run \
             has ended",
            dir.display()
        );
    }
    let (json_path, json) = read_json(dir)?;
    check_rows(dir, json.finished, json.progress.as_ref())?;
    let rebuilt = rebuild_from(dir, &json_path, json)?;
    super::files::write_summary(&dir.join("summary.csv"), &rebuilt.rows)?;
    Ok(rebuilt)
}

#[derive(Deserialize)]
struct ProgressJson {
    latency_rows: usize,
    power_rows: usize,
    /// Absent in folders written before it was recorded, and while a run is going.
    files: Option<RowFiles>,
}

/// Refuses a folder whose row files hold less than its summary was built from (see the
/// module comment), naming the file and what is missing.
fn check_rows(dir: &Path, finished: Option<bool>, progress: Option<&ProgressJson>) -> Result<()> {
    let Some(progress) = progress else {
        return Ok(());
    };
    let kept = "summary.csv is kept as the run wrote it";
    let files = progress.files.as_ref();
    for (name, built_from, left) in [
        (
            "latency.csv",
            progress.latency_rows,
            files.map(|f| &f.latency),
        ),
        ("power.csv", progress.power_rows, files.map(|f| &f.power)),
    ] {
        let path = dir.join(name);
        match left {
            Some(left) => {
                if left.rows < built_from {
                    bail!(
                        "{}: the run measured {built_from} rows but could write only {} (see \
                         the error it ended with): a rebuild from the file would lose the \
                         rest; {kept}",
                        path.display(),
                        left.rows
                    );
                }
                let now = FileDigest::of(&path)?;
                if now != *left {
                    bail!(
                        "{} is not the file the run left: it holds {} rows in {} bytes, the run \
                         left {} rows in {} bytes{}; {kept}: restore {name} or measure again",
                        path.display(),
                        now.rows,
                        now.bytes,
                        left.rows,
                        left.bytes,
                        if (now.rows, now.bytes) == (left.rows, left.bytes) {
                            " with another SHA-256"
                        } else {
                            ""
                        }
                    );
                }
            }
            // A run that stopped leaves at least what its last run.json counted.
            None if finished == Some(false) => {
                let now = FileDigest::of(&path)?.rows;
                if now < built_from {
                    bail!(
                        "{} holds {now} rows, fewer than the {built_from} it held when the run \
                         last wrote run.json: the file was cut since; {kept}",
                        path.display()
                    );
                }
            }
            None => {}
        }
    }
    Ok(())
}

/// The summary of the run folder `dir`, from its rows.
pub fn rebuild(dir: &Path) -> Result<Rebuilt> {
    let (json_path, json) = read_json(dir)?;
    rebuild_from(dir, &json_path, json)
}

/// The folder's `run.json`, its schema checked.
fn read_json(dir: &Path) -> Result<(PathBuf, RunJson)> {
    let (json_path, text) = crate::results::read_run_json(dir)?;
    crate::results::check_schema(dir, &json_path, &text)?;
    let json = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} cannot be read back ({e}): summarize needs a run.json written by joulebench {}",
            json_path.display(),
            env!("CARGO_PKG_VERSION")
        )
    })?;
    Ok((json_path, json))
}

/// The summary of the run folder `dir` from its rows and its read `run.json`.
fn rebuild_from(dir: &Path, json_path: &Path, json: RunJson) -> Result<Rebuilt> {
    let Some(backends_json) = json.backends else {
        bail!(
            "{} was written before run.json recorded its backends: summarize cannot rebuild it; \
             its summary.csv is as the run wrote it",
            json_path.display()
        );
    };
    let finished = json.finished.unwrap_or(true);
    let phases: Vec<PhaseSpan> = json
        .phases
        .iter()
        .map(|s| PhaseSpan {
            phase: s.phase,
            backend: s.backend,
            repetition: s.repetition,
            start: s.start,
            end: s.end.unwrap_or(f64::INFINITY),
            sampler_cpu_s: s.sampler_cpu_s.clone(),
        })
        .collect();
    let stopped_in = (!finished)
        .then(|| phases.last().filter(|s| s.end.is_infinite()))
        .flatten()
        .map(|s| match (s.backend, s.repetition) {
            (Some(b), Some(r)) => format!("{} of backend {b}, repetition {r}", s.phase.as_str()),
            _ => s.phase.as_str().to_string(),
        });

    let mut sensors: Vec<SensorLog> = json
        .sensors
        .into_iter()
        .map(|s| SensorLog {
            info: SensorInfo {
                kind: s.kind,
                rail: s.rail,
                origin: s.origin,
                detail: s.detail,
            },
            update_period: std::time::Duration::from_secs_f64(s.update_period_s),
            samples: Vec::new(),
            failure: s.failure,
            uncertainty: s.uncertainty,
            cpu_time: std::time::Duration::from_secs_f64(s.sampler_cpu_s.max(0.0)),
            realtime: s.sampler_realtime,
            integrating: s.integrating,
            crosscheck: s.crosscheck,
            min_window_s: s.min_window_s,
            limits: s.limits,
        })
        .collect();
    let power_path = dir.join("power.csv");
    for (i, row) in read_rows::<PowerRecord>(&power_path)?
        .into_iter()
        .enumerate()
    {
        let Some(log) = sensors.get_mut(row.sensor_index) else {
            bail!(
                "{} row {}: sensor {} is not in run.json",
                power_path.display(),
                i + 1,
                row.sensor_index
            );
        };
        let reading = if row.error.is_empty() {
            Ok(Reading {
                volts: row.volts,
                amps: row.amps,
                watts: row.watts.unwrap_or_default(),
                energy_j: row.energy_j,
                overflow: row.overflow,
                stale: row.stale,
                saturated: row.saturated,
                // Already applied: t_s is the instant the value stands for.
                centre_offset_s: 0.0,
                instant_watts: row.instant_watts,
            })
        } else {
            Err(row.error)
        };
        log.samples.push(Sample {
            t: row.t_s,
            reading,
        });
    }

    let mut latencies: BTreeMap<(usize, usize), Vec<Latency>> = BTreeMap::new();
    for row in read_rows::<LatencyRecord>(&dir.join("latency.csv"))? {
        latencies
            .entry((row.backend_index, row.repetition))
            .or_default()
            .push(Latency {
                start: row.start_s,
                seconds: row.latency_ms / 1e3,
            });
    }

    let mut backends = Vec::new();
    for (index, meta) in backends_json.into_iter().enumerate() {
        let Some(spec) = json.rig.backends.get(index) else {
            bail!("{}: backend {index} is not in its rig", json_path.display());
        };
        // Every repetition that began: finished ones are in run.json, the one the run stopped
        // in only in the phase log and the latency rows.
        let began = phases
            .iter()
            .filter(|s| s.backend == Some(index))
            .filter_map(|s| s.repetition)
            .chain(
                latencies
                    .range((index, 0)..(index + 1, 0))
                    .map(|(k, _)| k.1),
            )
            .max()
            .unwrap_or(0)
            .max(meta.runs.len());
        let mut runs = Vec::new();
        for repetition in 1..=began {
            let lat = latencies.remove(&(index, repetition)).unwrap_or_default();
            let timed = phases.iter().find(|s| {
                s.phase == Phase::Timed
                    && s.backend == Some(index)
                    && s.repetition == Some(repetition)
            });
            let last_end = lat.last().map(|l| l.start + l.seconds);
            let window = timed.map(|s| {
                let end = if s.end.is_finite() {
                    s.end
                } else {
                    last_end.unwrap_or(s.start)
                };
                (s.start, end)
            });
            let machine = json
                .machine_state
                .iter()
                .find(|m| m.backend == index && m.repetition == repetition);
            let gpu = json
                .gpu_state
                .iter()
                .find(|g| g.backend == index && g.repetition == repetition);
            let run = match meta.runs.get(repetition - 1) {
                Some(done) => TimedRun {
                    latencies: lat,
                    window,
                    top: match (done.top1_class, done.top1_score) {
                        (Some(class), Some(score)) => vec![Prediction { class, score }],
                        _ => Vec::new(),
                    },
                    batch: done.batch,
                    cpu_seconds: done.cpu_seconds,
                    interrupted: done.interrupted,
                    error: done.error.clone(),
                    machine_start: machine.map(|m| m.start.clone()),
                    machine_end: machine.map(|m| m.end.clone()),
                    gpu_start: gpu.map(|g| g.start.clone()).unwrap_or_default(),
                    gpu_end: gpu.map(|g| g.end.clone()).unwrap_or_default(),
                },
                None => TimedRun {
                    latencies: lat,
                    window,
                    batch: spec.batch() as usize,
                    interrupted: true,
                    ..TimedRun::default()
                },
            };
            runs.push(run);
        }
        let labels = Labels::from_known(
            meta.runs
                .iter()
                .filter_map(|r| Some((r.top1_class?, r.top1_label.clone()))),
        );
        backends.push(BackendResult {
            spec: spec.clone(),
            engine_note: meta.engine_note,
            signature: meta.signature,
            model: ResolvedModel {
                name: meta.model,
                path: PathBuf::new(),
                sha256: meta.model_sha256,
                in_manifest: false,
                labels: None,
                input: None,
                label_offset: 0,
            },
            image: ResolvedImage {
                name: meta.image,
                path: PathBuf::new(),
                sha256: meta.image_sha256,
                in_manifest: false,
                top1: meta.top1_expected.into_iter().collect(),
            },
            engine: meta.engine,
            labels,
            runs,
        });
    }
    if let Some(((b, r), _)) = latencies.first_key_value() {
        bail!(
            "{}: rows of backend {b}, repetition {r}, which run.json does not know",
            dir.join("latency.csv").display()
        );
    }

    let record = RunRecord {
        rig: json.rig,
        rig_text: json.rig_file,
        started: chrono::DateTime::parse_from_rfc3339(&json.started_utc)
            .with_context(|| format!("{} started_utc", json_path.display()))?
            .with_timezone(&chrono::Utc),
        phases,
        backends,
        sensors,
        sensor_choice: None,
        ranging: Vec::new(),
        interrupted: !finished,
        settled: Default::default(),
    };
    Ok(Rebuilt {
        rows: crate::summary::summarize(&record),
        finished,
        stopped_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::{backend_result, record};

    const NOTE: &str = "LiteRT library not found (looked in /x); running TF Lite 1.15.5 instead";

    /// A finished run of one backend on a fallback engine, written as `run` writes it.
    fn fell_back_run(dir: &Path) -> Vec<SummaryRow> {
        let mut record = record(0);
        record.backends.push(BackendResult {
            engine_note: Some(NOTE.into()),
            ..backend_result()
        });
        record.phases.push(PhaseSpan::new(
            Phase::Timed,
            Some(crate::clock::Slot {
                backend: 0,
                repetition: 1,
            }),
            0.0,
            0.02,
        ));
        let rows = crate::summary::summarize(&record);
        super::super::files::write_all(dir, &record, &rows, &["joulebench".into()]).unwrap();
        rows
    }

    #[test]
    fn the_rebuilt_summary_is_the_runs_engine_note_included() {
        let dir = tempfile::tempdir().unwrap();
        let live = fell_back_run(dir.path());
        assert_eq!(live[0].engine_note, NOTE);
        let rebuilt = rebuild(dir.path()).unwrap();
        assert!(rebuilt.finished);
        assert_eq!(rebuilt.rows, live);
    }

    #[test]
    fn a_run_json_without_engine_notes_rebuilds_with_none() {
        let dir = tempfile::tempdir().unwrap();
        fell_back_run(dir.path());
        // As written before run.json recorded the note.
        let path = dir.path().join("run.json");
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let backend = json["backends"][0].as_object_mut().unwrap();
        assert_eq!(backend.remove("engine_note").unwrap(), NOTE);
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let rebuilt = rebuild(dir.path()).unwrap();
        assert_eq!(rebuilt.rows.len(), 1);
        assert_eq!(rebuilt.rows[0].engine_note, "");
    }
}
