//! The files of a run folder: `latency.csv`, `power.csv`, `summary.csv` and `run.json` — their
//! names, the rows written and the rows read back (by `summarize`, `soak` and `report`), so the
//! folder's format is in one place.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::machine::system::SystemInfo;
use crate::record::RunRecord;
use crate::results::SummaryRow;
use crate::sensor::Origin;

/// Writes all four files at once, the run finished (for a record measured without streaming:
/// a streamed run already holds its latency and power rows, and needs only [`write_final`]).
pub fn write_all(
    dir: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    args: &[String],
) -> Result<()> {
    write_latency(&dir.join("latency.csv"), record)?;
    write_power(&dir.join("power.csv"), record)?;
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
    write_summary(&dir.join("summary.csv"), rows)?;
    let progress = Progress {
        finished: true,
        latency_rows: record
            .backends
            .iter()
            .flat_map(|b| &b.runs)
            .map(|r| r.latencies.len())
            .sum(),
        power_rows: (0..record.sensors.len()).map(|i| record.readings(i)).sum(),
        files: Some(RowFiles::of(dir)?),
        ..Progress::default()
    };
    write_run_json(&dir.join("run.json"), record, rows, args, &progress)
}

/// What one row file held, for `run.json`: its CSV records (the header not counted), its
/// size and its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    pub rows: usize,
    pub bytes: u64,
    pub sha256: String,
}

impl FileDigest {
    /// Reads `path` once, counting its records as the CSV reader sees them while hashing its
    /// bytes.
    pub fn of(path: &Path) -> Result<Self> {
        use sha2::Digest as _;
        /// Hashes and counts what the CSV reader takes from the file.
        struct Hashing<R> {
            inner: R,
            hasher: sha2::Sha256,
            bytes: u64,
        }
        impl<R: std::io::Read> std::io::Read for Hashing<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.inner.read(buf)?;
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
        }
        let cannot =
            |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot read {}: {e}", path.display());
        let file = std::fs::File::open(path).map_err(|e| cannot(&e))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(Hashing {
                inner: file,
                hasher: sha2::Sha256::new(),
                bytes: 0,
            });
        let mut record = csv::ByteRecord::new();
        let mut rows = 0;
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| cannot(&e))?
        {
            rows += 1;
        }
        let hashing = reader.into_inner();
        Ok(Self {
            rows,
            bytes: hashing.bytes,
            sha256: format!("{:x}", hashing.hasher.finalize()),
        })
    }
}

/// `latency.csv` and `power.csv` as a run left them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowFiles {
    #[serde(rename = "latency.csv")]
    pub latency: FileDigest,
    #[serde(rename = "power.csv")]
    pub power: FileDigest,
}

impl RowFiles {
    pub fn of(dir: &Path) -> Result<Self> {
        Ok(Self {
            latency: FileDigest::of(&dir.join("latency.csv"))?,
            power: FileDigest::of(&dir.join("power.csv"))?,
        })
    }
}

/// A row of `latency.csv`.
#[derive(Serialize)]
pub(crate) struct LatencyRow<'a> {
    pub backend_index: usize,
    /// 1-based repetition of the protocol.
    pub repetition: usize,
    pub engine: &'a str,
    /// 1-based index of the timed classification.
    pub inference: usize,
    pub start_s: f64,
    pub latency_ms: f64,
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

/// A row of `power.csv` as read back (by `summarize`, `soak` and `report`). Columns added
/// since the first streamed folders default when absent.
#[derive(Debug, Deserialize)]
pub struct PowerRecord {
    pub sensor_index: usize,
    #[serde(default)]
    pub sensor: String,
    #[serde(default)]
    pub rail: String,
    #[serde(default)]
    pub origin: Option<Origin>,
    pub t_s: f64,
    pub volts: Option<f64>,
    pub amps: Option<f64>,
    pub watts: Option<f64>,
    pub energy_j: Option<f64>,
    /// Absent in folders written before the cross-check.
    #[serde(default)]
    pub instant_watts: Option<f64>,
    pub overflow: bool,
    pub saturated: bool,
    pub stale: bool,
    pub error: String,
}

/// A row of `latency.csv` as read back.
#[derive(Debug, Deserialize)]
pub struct LatencyRecord {
    pub backend_index: usize,
    pub repetition: usize,
    pub start_s: f64,
    pub latency_ms: f64,
}

/// Every whole row of one of a run folder's CSV files. A run killed mid-write can leave its
/// last line torn; it is left out (every whole row ends with a newline).
pub fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}: is this a run folder?", path.display()))?;
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(whole);
    csv::Reader::from_reader(bytes.as_slice())
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 1)))
        .collect()
}

/// A row of `power.csv` as written.
#[derive(Serialize)]
pub(crate) struct PowerRow<'a> {
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
    /// Instant power read beside the counter, for the cross-check (NVML).
    instant_watts: Option<f64>,
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
        error: s.reading.as_ref().err().map_or("", String::as_str),
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

/// How far a run got, for `run.json`: a run killed mid-way leaves `finished: false` and the
/// phase it was in.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub finished: bool,
    /// The phase running when the file was written (none between phases and at the end).
    pub phase: Option<crate::clock::Phase>,
    pub backend: Option<usize>,
    pub repetition: Option<usize>,
    /// Run-clock time the file was written at.
    pub at_s: f64,
    /// While running: rows in `latency.csv` and `power.csv` at the last flush before this
    /// file. Finished: the rows the summary was built from (all the run measured; more than
    /// the files hold where a write failed).
    pub latency_rows: usize,
    pub power_rows: usize,
    /// Finished runs only: what the two files held when the run ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<RowFiles>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    /// The layout of this folder's files ([`crate::results::SCHEMA_VERSION`]).
    schema_version: u32,
    joulebench_version: &'a str,
    command: &'a [String],
    started_utc: String,
    interrupted: bool,
    /// False until the run's last files are written: a folder left by a killed run says so.
    finished: bool,
    progress: &'a Progress,
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
    /// Each NVML GPU's state at the edges of every timed window; absent without an NVML
    /// sensor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gpu_state: Vec<GpuStateJson<'a>>,
    /// What `joulebench summarize` needs besides the rows to rebuild the summary of a folder
    /// whose run was killed: each backend that ran, and how each repetition ended.
    backends: Vec<BackendJson<'a>>,
}

#[derive(Serialize)]
pub(crate) struct BackendJson<'a> {
    pub engine: &'a crate::backend::EngineInfo,
    pub model: &'a str,
    pub model_sha256: &'a str,
    pub image: &'a str,
    pub image_sha256: &'a str,
    pub top1_expected: Option<&'a crate::models::Top1>,
    /// Why the engine is not the default's, where it fell back: the summary's `engine_note`.
    pub engine_note: Option<&'a str>,
    /// The model's inputs and outputs (name, type, shape, quantization) and what each input
    /// was fed: an addition of its own, absent where unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<&'a crate::backend::Signature>,
    pub runs: Vec<RepetitionJson>,
}

/// A repetition that finished (or failed): what the latency rows do not say.
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct RepetitionJson {
    pub repetition: usize,
    pub batch: usize,
    pub cpu_seconds: f64,
    pub interrupted: bool,
    pub error: Option<String>,
    pub top1_class: Option<usize>,
    pub top1_label: String,
    pub top1_score: Option<f32>,
}

fn backends_json(record: &RunRecord) -> Vec<BackendJson<'_>> {
    record
        .backends
        .iter()
        .map(|b| BackendJson {
            engine: &b.engine,
            model: &b.model.name,
            model_sha256: &b.model.sha256,
            image: &b.image.name,
            image_sha256: &b.image.sha256,
            top1_expected: b.image.expected_top1(&b.model.name),
            engine_note: b.engine_note.as_deref(),
            signature: b.signature.as_ref(),
            runs: b
                .runs
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
pub(crate) struct GpuStateJson<'a> {
    pub backend: usize,
    /// 1-based repetition of the protocol.
    pub repetition: usize,
    pub start: &'a [crate::results::GpuState],
    pub end: &'a [crate::results::GpuState],
}

/// One entry per timed window whose GPUs were read.
fn gpu_state(record: &RunRecord) -> Vec<GpuStateJson<'_>> {
    let mut out = Vec::new();
    for (backend, b) in record.backends.iter().enumerate() {
        for (repetition, run) in b.runs.iter().enumerate() {
            if !run.gpu_start.is_empty() || !run.gpu_end.is_empty() {
                out.push(GpuStateJson {
                    backend,
                    repetition: repetition + 1,
                    start: &run.gpu_start,
                    end: &run.gpu_end,
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
    /// Whether the sampler thread ran at a real-time priority (SCHED_FIFO).
    sampler_realtime: bool,
    /// Whether each fresh value averages its whole update period (an averaging INA219), so
    /// energy sums value × period and window edges split the periods they cut.
    integrating: bool,
    /// The sensor's own relative uncertainty of energy, a fraction.
    uncertainty: Option<f64>,
    /// Whether its energy is cross-checked against instant power (`instant-power`), or why
    /// not (`{"absent": why}`), where such a check applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    crosscheck: Option<&'a crate::sensor::Crosscheck>,
    /// The shortest window its figures can measure (averaged power), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    min_window_s: Option<f64>,
    /// What it can report at all: a reading beyond makes its window invalid.
    limits: crate::sensor::Limits,
}

/// Replaces `run.json` atomically.
pub(crate) fn write_run_json(
    path: &Path,
    record: &RunRecord,
    rows: &[SummaryRow],
    args: &[String],
    progress: &Progress,
) -> Result<()> {
    let json = RunJson {
        schema_version: crate::results::SCHEMA_VERSION,
        joulebench_version: env!("CARGO_PKG_VERSION"),
        command: args,
        started_utc: record.started.to_rfc3339(),
        interrupted: record.interrupted,
        finished: progress.finished,
        progress,
        system: SystemInfo::read(),
        engines: record.backends.iter().map(|b| &b.engine).collect(),
        sensors: record
            .sensors
            .iter()
            .enumerate()
            .map(|(i, s)| SensorJson {
                kind: &s.info.kind,
                rail: &s.info.rail,
                origin: s.info.origin,
                detail: &s.info.detail,
                update_period_s: s.update_period.as_secs_f64(),
                samples: record.readings(i),
                failure: s.failure.as_deref(),
                sampler_cpu_s: s.cpu_time.as_secs_f64(),
                sampler_realtime: s.realtime,
                integrating: s.integrating,
                uncertainty: s.uncertainty,
                crosscheck: s.crosscheck.as_ref(),
                min_window_s: s.min_window_s,
                limits: s.limits,
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
        gpu_state: gpu_state(record),
        backends: backends_json(record),
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
                backend.runs[0].gpu_start = vec![probe.capture()];
                backend.runs[0].gpu_end = vec![probe.capture()];
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
