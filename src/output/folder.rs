//! The run folder's format, in one place: its files' names, `run.json`'s one type
//! ([`RunJson`]: [`super::files`] writes it, every command reads it back through it), the rows
//! of its CSV files with one reader each, and which folders this joulebench reads
//! ([compatibility](#compatibility)). No other module spells a file name: they use the
//! constants here (and scripts read them from here, `scripts/run-folder.sh`).
//!
//! # Compatibility
//!
//! A folder is read under the schema it was written in, `run.json`'s `schema_version`
//! ([`SCHEMA_VERSION`]), and under no other: columns moved and changed meaning between
//! schemas, so a folder of another schema (or of none, the first releases: schema 1) is not
//! migrated but refused in one line naming its schema, the joulebench that wrote it, and what to
//! do: use that version, or measure again ([`read_run_json`]).
//!
//! Within the schema, a key or column is optional on read only where a folder of the schema can
//! lack it, and each such field says which case it is:
//! - the writer leaves it out when empty (`gpu_state`, a sensor's `crosscheck`);
//! - it was added since the schema began (a sensor's `limits`);
//! - the first folders of the schema lack it: those stamped schema 3 when it began, written
//!   before results were streamed (the examples in `results/examples`). They have no
//!   `finished`, `progress`, `backends` or `machine_state`, no sensor's `sampler_realtime` or
//!   `integrating`, no `instant_watts` in `power.csv`, and not the newest `summary.csv` columns
//!   ([`SummaryRow`]). `compare` and `report` read them; `summarize` cannot rebuild one
//!   without `backends`, and says so.
//!
//! Everything else a schema-3 writer always wrote is required: a folder without it is damaged,
//! and reading it fails naming the file and the key.

use std::borrow::Cow;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::backend::EngineInfo;
use crate::clock::{Phase, PhaseSpan};
use crate::machine::system::SystemInfo;
use crate::machine::{MachineState, Verdict};
use crate::models::Top1;
use crate::results::{GpuState, SummaryRow, SCHEMA_VERSION};
use crate::rig::Rig;
use crate::sensor::{Crosscheck, Limits, Origin};

/// Everything about the run but its rows.
pub const RUN_JSON: &str = "run.json";
/// A row per sensor read ([`PowerRow`]).
pub const POWER_CSV: &str = "power.csv";
/// A row per timed classification ([`LatencyRow`]).
pub const LATENCY_CSV: &str = "latency.csv";
/// A row per backend × sensor (× repetition) ([`SummaryRow`]).
pub const SUMMARY_CSV: &str = "summary.csv";
/// A soak's monitor rows (`crate::soak::MonitorRow`).
pub const SOAK_CSV: &str = "soak.csv";
/// A soak's report.
pub const SOAK_JSON: &str = "soak.json";

/// `run.json`. Fields marked written-only are there for people and other tools: no command
/// reads them back, so reading a folder leaves them empty and neither needs nor checks them.
#[derive(Serialize, Deserialize)]
pub struct RunJson<'a> {
    /// The layout of this folder's files ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    pub joulebench_version: Cow<'a, str>,
    pub command: Cow<'a, [String]>,
    pub started_utc: String,
    pub interrupted: bool,
    /// False until the run's last files are written: a folder left by a killed run says so. Absent
    /// in the first schema-3 folders (see Compatibility, in the module), whose runs finished: they
    /// were written once, at the end.
    #[serde(default = "finished_when_absent")]
    pub finished: bool,
    /// Absent in the first schema-3 folders (see Compatibility, in the module).
    pub progress: Option<Progress>,
    /// Written-only.
    #[serde(skip_deserializing)]
    pub system: SystemInfo,
    /// Written-only.
    #[serde(skip_deserializing)]
    pub engines: Vec<&'a EngineInfo>,
    pub sensors: Vec<SensorJson>,
    /// With `detect_sensors`: whether this machine's meters or the rig's own sensors were
    /// used, why, and every meter detection found; absent otherwise. Written-only.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub sensor_choice: Option<&'a crate::sensor::detect::SensorChoice>,
    /// With a ranging pass: each INA219's peak current and the range it was given.
    /// Written-only.
    #[serde(skip_serializing_if = "<[_]>::is_empty", skip_deserializing)]
    pub ranging: &'a [crate::ranging::Ranged],
    /// Open-ended phases (a run cut short) are written with a null end.
    #[serde(deserialize_with = "read_phases")]
    pub phases: Cow<'a, [PhaseSpan]>,
    /// Mean power and energy of every phase, per sensor. Written-only.
    #[serde(skip_deserializing)]
    pub phase_energy: Vec<crate::summary::PhaseEnergy>,
    /// The rig file exactly as read.
    pub rig_file: Cow<'a, str>,
    pub rig: Cow<'a, Rig>,
    /// The rows of `summary.csv`, which readers read instead. Written-only.
    #[serde(skip_deserializing)]
    pub summary: &'a [SummaryRow],
    /// The machine at the edges of every timed window, and whether the CPU throttled. Absent in the
    /// first schema-3 folders (see Compatibility, in the module).
    #[serde(default)]
    pub machine_state: Vec<MachineStateJson<'a>>,
    /// Each NVML GPU's state at the edges of every timed window; left out without an NVML
    /// sensor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_state: Vec<GpuStateJson<'a>>,
    /// What `joulebench summarize` needs besides the rows to rebuild the summary of a folder whose
    /// run was killed: each backend that ran, and how each repetition ended. Absent in the first
    /// schema-3 folders (see Compatibility, in the module).
    pub backends: Option<Vec<BackendJson>>,
}

fn finished_when_absent() -> bool {
    true
}

/// How far a run got: a run killed mid-way leaves `finished: false` and the phase it was in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub finished: bool,
    /// The phase running when the file was written (none between phases and at the end).
    pub phase: Option<Phase>,
    pub backend: Option<usize>,
    pub repetition: Option<usize>,
    /// Run-clock time the file was written at.
    pub at_s: f64,
    /// While running: rows in `latency.csv` and `power.csv` at the last flush before this
    /// file. Finished: the rows the summary was built from (all the run measured; more than
    /// the files hold where a write failed).
    pub latency_rows: usize,
    pub power_rows: usize,
    /// Finished runs only: what the two files held when the run ended; left out otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<RowFiles>,
}

/// One sensor of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensorJson {
    pub kind: String,
    pub rail: String,
    pub origin: Origin,
    pub detail: String,
    pub update_period_s: f64,
    /// Readings taken.
    pub samples: usize,
    pub failure: Option<String>,
    /// An `optional` sensor that did not open, which the run went on without: why. Left out
    /// otherwise, and absent in folders written before optional sensors (none was missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    pub sampler_cpu_s: f64,
    /// Whether the sampler thread ran at a real-time priority (SCHED_FIFO). Absent in the first
    /// schema-3 folders (see Compatibility, in the module).
    #[serde(default)]
    pub sampler_realtime: bool,
    /// Whether each fresh value averages its whole update period (an averaging INA219), so energy
    /// sums value × period and window edges split the periods they cut. Absent in the first
    /// schema-3 folders (see Compatibility, in the module), whose INA219 values were integrated as
    /// point samples, as a rebuild then does.
    #[serde(default)]
    pub integrating: bool,
    /// The sensor's own relative uncertainty of energy, a fraction.
    pub uncertainty: Option<f64>,
    /// Whether its energy is cross-checked against instant power (`instant-power`), or why
    /// not (`{"absent": why}`), where such a check applies; left out otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crosscheck: Option<Crosscheck>,
    /// The shortest window its figures can measure (averaged power), seconds; left out where
    /// there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_window_s: Option<f64>,
    /// What it can report at all: a reading beyond makes its window invalid. Added since schema 3
    /// began (see Compatibility, in the module): without it, only the physics of any supply, as a
    /// meter without a range of its own has.
    #[serde(default)]
    pub limits: Limits,
}

/// One backend that began.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendJson {
    pub engine: EngineInfo,
    pub model: String,
    pub model_sha256: String,
    pub image: String,
    pub image_sha256: String,
    pub top1_expected: Option<Top1>,
    /// Why the engine is not the default's, where it fell back: the summary's `engine_note`.
    pub engine_note: Option<String>,
    /// The label file naming the model's classes (its file name): a classifier's prediction is
    /// reported and checked only with one. Absent where the model has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_file: Option<String>,
    /// The model's inputs and outputs (name, type, shape, quantization) and what each input
    /// was fed. Absent in folders written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::backend::Signature>,
    /// One per repetition (the file's name for them is older than the distinction).
    #[serde(rename = "runs")]
    pub repetitions: Vec<RepetitionJson>,
}

/// A repetition that finished (or failed): what the latency rows do not say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepetitionJson {
    pub repetition: usize,
    pub batch: usize,
    pub cpu_seconds: f64,
    pub interrupted: bool,
    pub error: Option<String>,
    pub top1_class: Option<usize>,
    pub top1_label: String,
    pub top1_score: Option<f32>,
}

/// The machine at the edges of one timed window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineStateJson<'a> {
    pub backend: usize,
    /// 1-based repetition of the protocol.
    pub repetition: usize,
    pub start: Cow<'a, MachineState>,
    pub end: Cow<'a, MachineState>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Each NVML GPU at the edges of one timed window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuStateJson<'a> {
    pub backend: usize,
    /// 1-based repetition of the protocol.
    pub repetition: usize,
    pub start: Cow<'a, [GpuState]>,
    pub end: Cow<'a, [GpuState]>,
}

/// [`PhaseSpan`] as `run.json` holds it (the sensors crate only writes it): the end of a
/// phase still running is null, `sampler_cpu_s` left out where empty.
#[derive(Deserialize)]
#[serde(remote = "PhaseSpan")]
struct SpanJson {
    phase: Phase,
    backend: Option<usize>,
    repetition: Option<usize>,
    start: f64,
    #[serde(deserialize_with = "open_end")]
    end: f64,
    #[serde(default)]
    sampler_cpu_s: Vec<f64>,
}

fn open_end<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

fn read_phases<'de, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Cow<'a, [PhaseSpan]>, D::Error> {
    #[derive(Deserialize)]
    struct Span(#[serde(with = "SpanJson")] PhaseSpan);
    let spans = Vec::<Span>::deserialize(d)?;
    Ok(Cow::Owned(spans.into_iter().map(|s| s.0).collect()))
}

/// A run folder's `run.json`, read back once `check_schema` accepts it; a folder without
/// one is a one-line error.
pub fn read_run_json(dir: &Path) -> Result<RunJson<'static>> {
    let path = dir.join(RUN_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "{} is not a joulebench run folder: cannot read {RUN_JSON} ({e})",
            dir.display()
        )
    })?;
    check_schema(dir, &path, &text)?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{} cannot be read back ({e}): joulebench {} reads a {RUN_JSON} of schema \
             {SCHEMA_VERSION} as it writes it",
            path.display(),
            env!("CARGO_PKG_VERSION")
        )
    })
}

/// Refuses, in one line, a `run.json` (`text`, read from `path` in `dir`) that is not JSON or was
/// written under another schema than [`SCHEMA_VERSION`]: which schema, by which joulebench, and
/// what to do (see Compatibility, in the module). Read as plain JSON, not as a [`RunJson`]: a
/// folder of another schema need not have its keys.
fn check_schema(dir: &Path, path: &Path, text: &str) -> Result<()> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        anyhow!(
            "{} is not valid JSON ({e}): it is cut short or damaged, since joulebench \
             replaces it whole and a crash leaves the old one or the new; restore it from a \
             copy, or measure again",
            path.display()
        )
    })?;
    let written_by = json["joulebench_version"].as_str().unwrap_or_default();
    match &json["schema_version"] {
        serde_json::Value::Null => bail!(
            "{} was written before result folders carried a schema_version (schema 1); \
             this joulebench reads schema {SCHEMA_VERSION}: measure again",
            dir.display()
        ),
        version if version.as_u64() == Some(SCHEMA_VERSION.into()) => Ok(()),
        other => bail!(
            "{} holds results of schema {other} (joulebench {written_by}); this joulebench {} \
             reads schema {SCHEMA_VERSION}: use the version that wrote them, or measure again",
            dir.display(),
            env!("CARGO_PKG_VERSION")
        ),
    }
}

/// A run folder as `compare` and `report` read it: its summary rows and what they show
/// beside them.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub joulebench_version: String,
    pub started_utc: String,
    pub interrupted: bool,
    pub rows: Vec<SummaryRow>,
    pub phases: Vec<PhaseSpan>,
}

/// Reads a run folder's `run.json` and `summary.csv`; a folder of another schema, or not a
/// run folder at all, is a one-line error.
pub fn read_run_dir(dir: &Path) -> Result<RunFolder> {
    let json = read_run_json(dir)?;
    let rows = read_summary(&dir.join(SUMMARY_CSV))?;
    Ok(RunFolder {
        dir: dir.to_path_buf(),
        joulebench_version: json.joulebench_version.into_owned(),
        started_utc: json.started_utc,
        interrupted: json.interrupted,
        rows,
        phases: json.phases.into_owned(),
    })
}

/// The run folder (a folder holding `run.json`) that `path` is or lies in, resolved through
/// links and `..` ([`crate::results::resolved`]), if any: a file there belongs to the run, and
/// no command may write it. `path` need not exist yet.
pub fn run_folder_holding(path: &Path) -> Option<PathBuf> {
    crate::results::resolved(path)
        .ancestors()
        .find(|dir| dir.join(RUN_JSON).is_file())
        .map(Path::to_path_buf)
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
        let cannot = |e: &dyn std::fmt::Display| anyhow!("cannot read {}: {e}", path.display());
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
            latency: FileDigest::of(&dir.join(LATENCY_CSV))?,
            power: FileDigest::of(&dir.join(POWER_CSV))?,
        })
    }
}

/// A row of `latency.csv` as written.
#[derive(Serialize)]
pub struct LatencyRow<'a> {
    pub backend_index: usize,
    /// 1-based repetition of the protocol.
    pub repetition: usize,
    pub engine: &'a str,
    /// 1-based index of the timed classification.
    pub inference: usize,
    pub start_s: f64,
    pub latency_ms: f64,
}

/// A row of `latency.csv` as read back ([`read_latency`]).
#[derive(Debug, Deserialize)]
pub struct LatencyRecord {
    pub backend_index: usize,
    pub repetition: usize,
    pub start_s: f64,
    pub latency_ms: f64,
}

/// A row of `power.csv` as written.
#[derive(Serialize)]
pub struct PowerRow<'a> {
    pub sensor_index: usize,
    pub sensor: &'a str,
    pub rail: &'a str,
    pub simulated: bool,
    pub origin: Origin,
    pub t_s: f64,
    /// The protocol phase at the sample's time ("" between phases).
    pub phase: &'a str,
    pub volts: Option<f64>,
    pub amps: Option<f64>,
    pub watts: Option<f64>,
    /// The sensor's cumulative energy counter, where it has one.
    pub energy_j: Option<f64>,
    /// Instant power read beside the counter, for the cross-check (NVML).
    pub instant_watts: Option<f64>,
    pub overflow: bool,
    /// Clipped at the sensor's range: the true power was higher.
    pub saturated: bool,
    pub stale: bool,
    pub error: &'a str,
    /// The read lost an energy counter's count ([`crate::sensor::ReadError::CounterBreak`]):
    /// `summarize` makes the windows across it invalid, as the run did, without reading
    /// `error`.
    pub counter_break: bool,
}

/// A row of `power.csv` as read back ([`read_power`]).
#[derive(Debug, Deserialize)]
pub struct PowerRecord {
    pub sensor_index: usize,
    pub sensor: String,
    pub rail: String,
    pub origin: Option<Origin>,
    pub t_s: f64,
    pub volts: Option<f64>,
    pub amps: Option<f64>,
    pub watts: Option<f64>,
    pub energy_j: Option<f64>,
    /// Absent in the first schema-3 folders (see Compatibility, in the module).
    pub instant_watts: Option<f64>,
    pub overflow: bool,
    pub saturated: bool,
    pub stale: bool,
    pub error: String,
    /// Absent in folders written before it: a lost count there reads back as a failed read.
    #[serde(default)]
    pub counter_break: bool,
}

/// The rows of a `power.csv`, read as they are taken; a torn last line is left out.
pub fn read_power(path: &Path) -> Result<impl Iterator<Item = Result<PowerRecord>> + '_> {
    whole_rows(path)
}

/// The rows of a `latency.csv`, read as they are taken; a torn last line is left out.
pub fn read_latency(path: &Path) -> Result<impl Iterator<Item = Result<LatencyRecord>> + '_> {
    whole_rows(path)
}

/// Every whole row of an appended row file, one at a time (a long run's `power.csv` is not
/// held in memory). A run killed mid-write can leave its last line torn; it is left out (every
/// whole row ends with a newline).
fn whole_rows<'a, T: serde::de::DeserializeOwned + 'a>(
    path: &'a Path,
) -> Result<impl Iterator<Item = Result<T>> + 'a> {
    let cannot = || format!("cannot read {}: is this a run folder?", path.display());
    let mut file = std::fs::File::open(path).with_context(cannot)?;
    let whole = whole_length(&mut file).with_context(cannot)?;
    file.seek(SeekFrom::Start(0)).with_context(cannot)?;
    Ok(csv::Reader::from_reader(file.take(whole))
        .into_deserialize()
        .enumerate()
        .map(move |(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 1))))
}

/// The length of `file` up to its last newline (0 without one), read from its end.
fn whole_length(file: &mut std::fs::File) -> std::io::Result<u64> {
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut buf = vec![0; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The rows of a `summary.csv` (replaced whole, never torn).
fn read_summary(path: &Path) -> Result<Vec<SummaryRow>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;

    /// The run kept in the repository (docs/src/guide/first-run.md).
    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/sim-cpu")
    }

    #[test]
    fn a_run_folder_reads_back_typed() {
        let run = read_run_dir(&example()).unwrap();
        assert_eq!(run.rows.len(), 1);
        let row = &run.rows[0];
        assert_eq!(row.status, Status::Ok);
        assert_eq!(row.origin, Some(Origin::Simulated));
        assert_eq!((row.runs, row.top1_label.as_str()), (250, "chickadee"));
        assert!(row.fps.is_some() && row.inferences_per_joule.is_some());
        assert!(row.samples >= row.expected_samples);

        // Written again and read back, the rows are unchanged.
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(example().join("run.json"), dir.path().join("run.json")).unwrap();
        let mut w = csv::Writer::from_path(dir.path().join("summary.csv")).unwrap();
        for row in &run.rows {
            w.serialize(row).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(read_run_dir(dir.path()).unwrap().rows, run.rows);
    }

    #[test]
    fn folders_of_other_schemas_are_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let refuse = |json: &str| {
            std::fs::write(dir.path().join("run.json"), json).unwrap();
            let e = format!("{:#}", read_run_dir(dir.path()).unwrap_err());
            assert!(!e.contains('\n'), "{e}");
            e
        };
        let old = refuse(r#"{"joulebench_version": "0.1.0", "summary": []}"#);
        assert!(
            old.contains("(schema 1)") && old.contains("measure again"),
            "{old}"
        );
        let newer = refuse(r#"{"schema_version": 4, "joulebench_version": "0.9.0"}"#);
        assert!(
            newer.contains("holds results of schema 4 (joulebench 0.9.0)"),
            "{newer}"
        );
        let garbage = refuse("not json");
        assert!(garbage.contains("is not valid JSON"), "{garbage}");
        // summarize reads the same way, in the same words (it once said "another schema
        // (Some(1))").
        std::fs::write(
            dir.path().join("run.json"),
            r#"{"schema_version": 1, "joulebench_version": "0.0.9", "started_utc": "", "rig_file": "", "rig": {}, "phases": [], "sensors": []}"#,
        )
        .unwrap();
        let rebuilt = match crate::output::rebuild::rebuild(dir.path()) {
            Err(e) => format!("{e:#}"),
            Ok(_) => panic!("a schema 1 folder was rebuilt"),
        };
        assert!(
            rebuilt.contains("holds results of schema 1 (joulebench 0.0.9)")
                && !rebuilt.contains("Some("),
            "{rebuilt}"
        );
        let missing = format!(
            "{:#}",
            read_run_dir(&dir.path().join("nowhere")).unwrap_err()
        );
        assert!(
            missing.contains("is not a joulebench run folder"),
            "{missing}"
        );
    }

    #[test]
    fn a_written_run_json_reads_back_through_the_one_type() {
        use crate::output::fixtures::{backend_result, record};
        let mut record = record(1);
        record.backends.push(backend_result());
        record.phases.push(PhaseSpan::new(
            Phase::Timed,
            Some(crate::clock::Slot {
                backend: 0,
                repetition: 1,
            }),
            0.0,
            0.02,
        ));
        // A phase still running, as a killed run leaves it: written with a null end.
        record
            .phases
            .push(PhaseSpan::new(Phase::Settle, None, 0.02, f64::INFINITY));
        let dir = tempfile::tempdir().unwrap();
        let rows = crate::summary::summarize(&record);
        super::super::files::write_all(dir.path(), &record, &rows, &["joulebench".into()]).unwrap();
        let json = read_run_json(dir.path()).unwrap();
        assert_eq!(json.schema_version, SCHEMA_VERSION);
        assert_eq!(json.command.as_ref(), ["joulebench".to_string()]);
        assert!(json.finished && json.progress.unwrap().files.is_some());
        assert_eq!(json.phases.as_ref(), record.phases.as_slice());
        assert!(json.phases[1].end.is_infinite());
        assert_eq!(json.rig.as_ref(), &record.rig);
        assert_eq!(json.rig_file, record.rig_text);
        assert_eq!(json.sensors.len(), record.sensors.len());
        let backends = json.backends.unwrap();
        assert_eq!(backends.len(), 1);
        assert_eq!(backends[0].engine, record.backends[0].engine);
        assert_eq!(
            backends[0].repetitions.len(),
            record.backends[0].repetitions.len()
        );
    }

    #[test]
    fn a_folder_of_another_schema_is_refused_naming_its_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(RUN_JSON),
            r#"{"schema_version": 2, "joulebench_version": "0.0.5"}"#,
        )
        .unwrap();
        let e = match read_run_json(dir.path()) {
            Err(e) => format!("{e:#}"),
            Ok(_) => panic!("a schema 2 folder was read"),
        };
        assert!(
            e.contains("holds results of schema 2 (joulebench 0.0.5)")
                && e.contains("reads schema 3")
                && e.contains("use the version that wrote them, or measure again")
                && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn row_readers_leave_out_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LATENCY_CSV);
        let header = "backend_index,repetition,engine,inference,start_s,latency_ms\n";
        let rows = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read_latency(&path)
                .unwrap()
                .map(|r| r.unwrap().start_s)
                .collect::<Vec<_>>()
        };
        let whole = format!("{header}0,1,tflite,1,0.5,2.0\n0,1,tflite,2,0.7,2.0\n");
        assert_eq!(rows(&whole), [0.5, 0.7]);
        assert_eq!(rows(&format!("{whole}0,1,tfl")), [0.5, 0.7]);
        assert_eq!(rows(&header[..10]), Vec::<f64>::new());
        // Longer than one chunk read from the end.
        let long = format!("{whole}0,1,{}", "x".repeat(100_000));
        assert_eq!(rows(&long), [0.5, 0.7]);
    }

    #[test]
    fn scripts_read_the_names_from_here() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(
                "source scripts/run-folder.sh && \
                 echo $RUN_JSON $POWER_CSV $LATENCY_CSV $SUMMARY_CSV $SOAK_CSV $SOAK_JSON",
            )
            .current_dir(root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let names = [
            RUN_JSON,
            POWER_CSV,
            LATENCY_CSV,
            SUMMARY_CSV,
            SOAK_CSV,
            SOAK_JSON,
        ];
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), names.join(" "));
    }
}
