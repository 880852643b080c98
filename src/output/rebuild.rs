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
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::folder::{
    read_latency, read_power, read_run_json, BackendJson, FileDigest, GpuStateJson,
    MachineStateJson, PowerRecord, Progress, RunJson, SensorJson, LATENCY_CSV, POWER_CSV, RUN_JSON,
    SUMMARY_CSV,
};
use crate::clock::{Phase, PhaseSpan};
use crate::input::{Labels, Prediction};
use crate::protocol::{Latency, TimedRun};
use crate::record::{BackendResult, RecordedImage, RecordedModel, RunRecord};
use crate::results::SummaryRow;
use crate::rig::BackendSpec;
use crate::sampler::{Sample, SensorLog};
use crate::sensor::{ReadError, Reading, SensorInfo};

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
    let json = read_run_json(dir)?;
    check_rows(dir, json.finished, json.progress.as_ref())?;
    let rebuilt = rebuild_from(dir, json)?;
    super::files::write_summary(&dir.join(SUMMARY_CSV), &rebuilt.rows)?;
    Ok(rebuilt)
}

/// Refuses a folder whose row files hold less than its summary was built from (see the
/// module comment), naming the file and what is missing.
fn check_rows(dir: &Path, finished: bool, progress: Option<&Progress>) -> Result<()> {
    let Some(progress) = progress else {
        return Ok(());
    };
    let kept = format!("{SUMMARY_CSV} is kept as the run wrote it");
    let files = progress.files.as_ref();
    for (name, built_from, left) in [
        (
            LATENCY_CSV,
            progress.latency_rows,
            files.map(|f| &f.latency),
        ),
        (POWER_CSV, progress.power_rows, files.map(|f| &f.power)),
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
            None if !finished => {
                let now = FileDigest::of(&path)?.rows;
                if now < built_from {
                    bail!(
                        "{} holds {now} rows, fewer than the {built_from} it held when the run \
                         last wrote {RUN_JSON}: the file was cut since; {kept}",
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
    rebuild_from(dir, read_run_json(dir)?)
}

/// The summary of the run folder `dir` from its rows and its read `run.json`.
fn rebuild_from(dir: &Path, json: RunJson) -> Result<Rebuilt> {
    let json_path = dir.join(RUN_JSON);
    let Some(backends_json) = json.backends else {
        bail!(
            "{} was written before {RUN_JSON} recorded its backends: summarize cannot rebuild \
             it; its {SUMMARY_CSV} is as the run wrote it",
            json_path.display()
        );
    };
    let finished = json.finished;
    let phases: Vec<PhaseSpan> = json.phases.into_owned();
    let stopped_in = (!finished).then(|| where_stopped(&phases)).flatten();

    let mut sensors: Vec<SensorLog> = json.sensors.into_iter().map(sensor_log).collect();
    read_samples(&dir.join(POWER_CSV), &mut sensors)?;
    let mut latencies = read_latencies(&dir.join(LATENCY_CSV))?;

    let logs = RepetitionLogs {
        phases: &phases,
        machine_state: &json.machine_state,
        gpu_state: &json.gpu_state,
    };
    let mut backends = Vec::new();
    for (index, meta) in backends_json.into_iter().enumerate() {
        let Some(spec) = json.rig.backends.get(index) else {
            bail!("{}: backend {index} is not in its rig", json_path.display());
        };
        let repetitions = logs.repetitions(index, spec, &meta, &mut latencies);
        backends.push(backend_result(spec, meta, repetitions));
    }
    if let Some(((b, r), _)) = latencies.first_key_value() {
        bail!(
            "{}: rows of backend {b}, repetition {r}, which {RUN_JSON} does not know",
            dir.join(LATENCY_CSV).display()
        );
    }

    let record = RunRecord {
        rig: json.rig.into_owned(),
        rig_text: json.rig_file.into_owned(),
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

/// Where a run that did not finish stopped, as [`Rebuilt::stopped_in`] names it: its last
/// phase, if still open, with the backend and repetition it belonged to.
fn where_stopped(phases: &[PhaseSpan]) -> Option<String> {
    phases
        .last()
        .filter(|s| s.end.is_infinite())
        .map(|s| match (s.backend, s.repetition) {
            (Some(b), Some(r)) => format!("{} of backend {b}, repetition {r}", s.phase.as_str()),
            _ => s.phase.as_str().to_string(),
        })
}

/// A sensor as `run.json` describes it, with no samples yet: those come from `power.csv`.
fn sensor_log(s: SensorJson) -> SensorLog {
    SensorLog {
        info: SensorInfo {
            kind: s.kind,
            rail: s.rail,
            origin: s.origin,
            detail: s.detail,
        },
        update_period: std::time::Duration::from_secs_f64(s.update_period_s),
        samples: Vec::new(),
        failure: s.failure,
        missing: s.missing,
        uncertainty: s.uncertainty,
        cpu_time: std::time::Duration::from_secs_f64(s.sampler_cpu_s.max(0.0)),
        realtime: s.sampler_realtime,
        integrating: s.integrating,
        crosscheck: s.crosscheck,
        min_window_s: s.min_window_s,
        limits: s.limits,
    }
}

/// Hands every row of `power.csv` to its sensor's log, in file order, as the sampler handed
/// them to the run; a row of a sensor `run.json` does not list is refused.
fn read_samples(power_path: &Path, sensors: &mut [SensorLog]) -> Result<()> {
    for (i, row) in read_power(power_path)?.enumerate() {
        let row = row?;
        let Some(log) = sensors.get_mut(row.sensor_index) else {
            bail!(
                "{} row {}: sensor {} is not in {RUN_JSON}",
                power_path.display(),
                i + 1,
                row.sensor_index
            );
        };
        log.samples.push(sample(row));
    }
    Ok(())
}

/// One `power.csv` row as the sample it was written from: a reading, or the error in its
/// place.
fn sample(row: PowerRecord) -> Sample {
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
    } else if row.counter_break {
        Err(ReadError::CounterBreak(row.error))
    } else {
        Err(ReadError::Failed(row.error))
    };
    Sample {
        t: row.t_s,
        reading,
    }
}

/// `latency.csv`'s latencies by (backend, repetition); each repetition rebuilt takes its own,
/// so any left over belong to none.
type LatencyRows = BTreeMap<(usize, usize), Vec<Latency>>;

/// Reads `latency.csv` into [`LatencyRows`], each repetition's in file order.
fn read_latencies(path: &Path) -> Result<LatencyRows> {
    let mut latencies = LatencyRows::new();
    for row in read_latency(path)? {
        let row = row?;
        latencies
            .entry((row.backend_index, row.repetition))
            .or_default()
            .push(Latency {
                start: row.start_s,
                seconds: row.latency_ms / 1e3,
            });
    }
    Ok(latencies)
}

/// What `run.json` logged across backends that a repetition's timed run is rebuilt from: the
/// phase log and the machine and GPU states at each repetition's edges.
struct RepetitionLogs<'j> {
    phases: &'j [PhaseSpan],
    machine_state: &'j [MachineStateJson<'j>],
    gpu_state: &'j [GpuStateJson<'j>],
}

impl RepetitionLogs<'_> {
    /// Every repetition of backend `index` that began, taking their rows out of `latencies`.
    fn repetitions(
        &self,
        index: usize,
        spec: &BackendSpec,
        meta: &BackendJson,
        latencies: &mut LatencyRows,
    ) -> Vec<TimedRun> {
        let began = self.began(index, meta.repetitions.len(), latencies);
        (1..=began)
            .map(|repetition| {
                let lat = latencies.remove(&(index, repetition)).unwrap_or_default();
                self.timed_run(index, repetition, spec, meta, lat)
            })
            .collect()
    }

    /// How many repetitions of backend `index` began: the `recorded` ones that finished are
    /// in run.json, the one the run stopped in only in the phase log and the latency rows.
    fn began(&self, index: usize, recorded: usize, latencies: &LatencyRows) -> usize {
        self.phases
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
            .max(recorded)
    }

    /// Repetition `repetition` of backend `index` with its latencies `lat`: as run.json
    /// recorded it where it finished, else an interrupted run of the rig's batch.
    fn timed_run(
        &self,
        index: usize,
        repetition: usize,
        spec: &BackendSpec,
        meta: &BackendJson,
        lat: Vec<Latency>,
    ) -> TimedRun {
        let window = self.timed_window(index, repetition, &lat);
        let machine = self
            .machine_state
            .iter()
            .find(|m| m.backend == index && m.repetition == repetition);
        let gpu = self
            .gpu_state
            .iter()
            .find(|g| g.backend == index && g.repetition == repetition);
        match meta.repetitions.get(repetition - 1) {
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
                machine_start: machine.map(|m| m.start.clone().into_owned()),
                machine_end: machine.map(|m| m.end.clone().into_owned()),
                gpu_start: gpu.map(|g| g.start.to_vec()).unwrap_or_default(),
                gpu_end: gpu.map(|g| g.end.to_vec()).unwrap_or_default(),
            },
            None => TimedRun {
                latencies: lat,
                window,
                batch: spec.batch() as usize,
                interrupted: true,
                ..TimedRun::default()
            },
        }
    }

    /// The repetition's timed window from the phase log; one the run stopped in ends at its
    /// last latency (or where it began, with none).
    fn timed_window(&self, index: usize, repetition: usize, lat: &[Latency]) -> Option<(f64, f64)> {
        let timed = self.phases.iter().find(|s| {
            s.phase == Phase::Timed && s.backend == Some(index) && s.repetition == Some(repetition)
        });
        let last_end = lat.last().map(|l| l.start + l.seconds);
        timed.map(|s| {
            let end = if s.end.is_finite() {
                s.end
            } else {
                last_end.unwrap_or(s.start)
            };
            (s.start, end)
        })
    }
}

/// Backend `spec`'s result from its run.json entry and rebuilt repetitions.
fn backend_result(
    spec: &BackendSpec,
    meta: BackendJson,
    repetitions: Vec<TimedRun>,
) -> BackendResult {
    let labels = Labels::from_known(
        meta.repetitions
            .iter()
            .filter_map(|r| Some((r.top1_class?, r.top1_label.clone()))),
    );
    BackendResult {
        spec: spec.clone(),
        engine_note: meta.engine_note,
        signature: meta.signature,
        model: RecordedModel {
            name: meta.model,
            sha256: meta.model_sha256,
            label_file: meta.label_file,
        },
        image: RecordedImage {
            name: meta.image,
            sha256: meta.image_sha256,
            expected_top1: meta.top1_expected,
        },
        engine: meta.engine,
        labels,
        repetitions,
    }
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
