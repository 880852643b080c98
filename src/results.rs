//! The results of a run as a typed, versioned record: the summary rows the runner writes into
//! its folder and everything downstream reads back, and the folder's schema. The folder's
//! files, and which schemas are read, are `crate::output::folder`'s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sensor::Origin;

/// The layout of a run folder's files, in its `run.json`; a folder of another is refused
/// (`crate::output::folder`'s compatibility policy). 1 was the unversioned layout of the first
/// releases (no `schema_version` in `run.json`); 2 added validity columns and typed statuses;
/// 3 gives each backend of the rig as run only its own kind's keys (`run.json`'s
/// `rig.backends`).
pub const SCHEMA_VERSION: u32 = 3;

/// How a summary row ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Ctrl-C (or another stop) ended the run before this row's timed run completed.
    Interrupted,
    /// The backend failed; the reason.
    Error(String),
    /// The sensor was given up mid-run; the reason.
    SensorFailed(String),
    /// An `optional` sensor did not open and the run went on without it (or a total names
    /// one); why. The row has no figures, and it does not fail the run.
    SensorMissing(String),
    /// The window's readings cannot be trusted (see [`crate::validity`]); the figures that
    /// depend on it are left empty.
    Invalid(String),
}

impl Status {
    pub fn is_ok(&self) -> bool {
        *self == Status::Ok
    }

    /// Whether the row says what went wrong in a run, rather than that it went as the rig
    /// allows: every status but `ok` and `sensor missing`, which an `optional` sensor asks for.
    pub fn fails_run(&self) -> bool {
        !matches!(self, Status::Ok | Status::SensorMissing(_))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Interrupted => f.write_str("interrupted"),
            Status::Error(why) => write!(f, "error: {why}"),
            Status::SensorFailed(why) => write!(f, "sensor failed: {why}"),
            Status::SensorMissing(why) => write!(f, "sensor missing: {why}"),
            Status::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let with_reason = [
            ("error: ", Status::Error as fn(String) -> Status),
            ("sensor failed: ", Status::SensorFailed),
            ("sensor missing: ", Status::SensorMissing),
            ("invalid: ", Status::Invalid),
        ];
        match s {
            "ok" => Ok(Status::Ok),
            "interrupted" => Ok(Status::Interrupted),
            _ => with_reason
                .iter()
                .find_map(|(prefix, make)| s.strip_prefix(prefix).map(|why| make(why.into())))
                .ok_or_else(|| format!("unknown status {s:?}")),
        }
    }
}

/// One row of `summary.csv`: one backend measured by one sensor. Columns the first schema-3
/// folders lack read as empty (`crate::output::folder`'s compatibility policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub rig: String,
    /// Position of the backend in the rig (as in latency.csv).
    pub backend_index: usize,
    /// Which repetition of the protocol the row describes, or `all` for the aggregate.
    pub repetition: Repetition,
    /// Repetitions the row's figures come from: 1, or for `all` those that ended `ok`.
    pub repetitions: usize,
    pub backend: String,
    pub engine: String,
    pub engine_version: String,
    pub accelerator: String,
    pub model: String,
    pub model_sha256: String,
    pub image: String,
    pub threads: u32,
    /// single-stream or offline.
    pub scenario: String,
    /// Images per timed call.
    pub batch: usize,
    /// Timed calls completed.
    pub runs: usize,
    /// Images classified in the timed run: runs × batch. The per-joule figures count these.
    pub inferences: usize,
    pub fps: Option<f64>,
    pub latency_ms_mean: Option<f64>,
    pub latency_ms_median: Option<f64>,
    pub latency_ms_p90: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// The sensor's position in the rig (as in power.csv); empty for a rig without sensors.
    pub sensor_index: Option<usize>,
    /// Sensor kind, or "none" for a rig without sensors.
    pub sensor: String,
    pub rail: String,
    pub simulated: bool,
    /// measured, simulated, or nominal (a fixed figure, not measured); empty without a sensor.
    pub origin: Option<Origin>,
    /// Mean power over the idle baseline.
    pub idle_watts: Option<f64>,
    /// Mean power over the timed run.
    pub mean_watts: Option<f64>,
    pub joules_per_inference: Option<f64>,
    /// Gross: all energy the rail delivered during the timed run.
    pub inferences_per_joule: Option<f64>,
    /// Net of the idle baseline: only the energy above idle.
    pub net_inferences_per_joule: Option<f64>,
    /// The sensor's own relative uncertainty of energy (its datasheet accuracy and the shunt's
    /// tolerance, root sum of squares), percent; empty for a nominal figure.
    pub energy_uncertainty_pct: Option<f64>,
    /// Aggregate rows only: spread of the repetitions' values (standard deviation, 95 %
    /// confidence interval of the mean by Student's t, coefficient of variation).
    pub fps_sd: Option<f64>,
    pub fps_ci_low: Option<f64>,
    pub fps_ci_high: Option<f64>,
    pub fps_cv: Option<f64>,
    pub mean_watts_sd: Option<f64>,
    pub mean_watts_ci_low: Option<f64>,
    pub mean_watts_ci_high: Option<f64>,
    pub mean_watts_cv: Option<f64>,
    pub inferences_per_joule_sd: Option<f64>,
    pub inferences_per_joule_ci_low: Option<f64>,
    pub inferences_per_joule_ci_high: Option<f64>,
    pub inferences_per_joule_cv: Option<f64>,
    pub net_inferences_per_joule_sd: Option<f64>,
    pub net_inferences_per_joule_ci_low: Option<f64>,
    pub net_inferences_per_joule_ci_high: Option<f64>,
    pub net_inferences_per_joule_cv: Option<f64>,
    /// Aggregate rows only: the inferences-per-joule interval with the sensor's uncertainty
    /// added to the run-to-run one (root sum of squares of the half-widths).
    pub inferences_per_joule_total_low: Option<f64>,
    pub inferences_per_joule_total_high: Option<f64>,
    /// Fresh readings in the timed window.
    pub samples: usize,
    /// The fewest fresh readings the sensor's update rate makes valid for the timed window.
    pub expected_samples: usize,
    pub sample_rate_hz: Option<f64>,
    pub coverage: Option<f64>,
    /// Longest stretch of the timed window without a fresh reading.
    pub largest_gap_ms: Option<f64>,
    /// Coverage of the idle baseline, whose mean power every net figure subtracts.
    pub idle_coverage: Option<f64>,
    pub top1_class: Option<usize>,
    pub top1_label: String,
    pub top1_score: Option<f32>,
    /// The top-1 label the manifest expects for this model and image, where it knows one.
    pub top1_expected: String,
    /// Whether every backend of the run that classified this image gave the same top-1.
    pub top1_agrees: bool,
    pub status: Status,
    /// Whether the CPU throttled during the timed window ([`crate::machine`]): `no`,
    /// `yes: <reasons>`, or empty where the machine offers no throttle signal (and in folders
    /// written before the column existed).
    #[serde(default)]
    pub throttled: Option<crate::machine::Throttle>,
    /// Why `engine` is not the one the rig would have had by default: a `tflite` backend that
    /// left its engine open ran TF Lite 1.15.5 because LiteRT's library was not found (and
    /// where it was looked for). Empty otherwise, and in folders written before the column.
    #[serde(default)]
    pub engine_note: String,
    /// The sensor's energy counter against instant power integrated over the same timed
    /// window, read by the same sampler: (instant − counter) / counter, percent. Empty where
    /// there is no such check (see the note), and in folders written before the column.
    #[serde(default)]
    pub instant_vs_counter_pct: Option<f64>,
    /// Why `instant_vs_counter_pct` is empty, for a sensor that should have one (an NVML
    /// GPU without the instant power field, or without a counter); empty otherwise.
    #[serde(default)]
    pub instant_vs_counter_note: String,
    /// CPU time the sampler thread of this row's sensor used over the timed window, as a share
    /// of one core, percent (for the rig's total, all sampler threads together): what the
    /// meter itself took from the machine it measures. Aggregate rows: the largest
    /// repetition's. Empty without a sensor, and in folders written before the column.
    #[serde(default)]
    pub sampler_cpu_pct: Option<f64>,
    /// Why `net_inferences_per_joule` is empty where the timed and idle windows are both
    /// valid: a nominal sensor, or a timed − idle power within its uncertainty (see
    /// [`crate::summary`]). Aggregate rows: the first repetition's without a net figure.
    /// Empty otherwise, and in folders written before the column.
    #[serde(default)]
    pub net_note: String,
    /// Where the backend's prediction was not checked (a model that is not a classifier, or
    /// a classifier without a label file): why, and what each input was fed (the image or
    /// seeded synthetic data), for the table's note; empty for a classifier with labels. Not a
    /// column (summary.csv keeps its columns): a rebuild takes it again from `run.json`
    /// ([`crate::record::BackendResult::unchecked_prediction`]).
    #[serde(skip)]
    pub unchecked_prediction: String,
}

pub use crate::sensor::nvml::GpuState;

impl SummaryRow {
    /// Which backend × sensor the row is about: rows of one key are its repetitions (and
    /// their aggregate).
    pub fn key(&self) -> (usize, Option<usize>) {
        (self.backend_index, self.sensor_index)
    }
}

/// The repetition rows of each backend × sensor (not their aggregates), in order of first
/// appearance: what an aggregate or a comparison entry is made of.
pub fn repetition_groups(rows: &[SummaryRow]) -> Vec<Vec<&SummaryRow>> {
    let mut groups: Vec<Vec<&SummaryRow>> = Vec::new();
    for r in rows.iter().filter(|r| r.repetition != Repetition::All) {
        match groups.iter_mut().find(|g| g[0].key() == r.key()) {
            Some(group) => group.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// Which repetition of the protocol a summary row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repetition {
    /// The n-th (1-based).
    One(usize),
    /// The aggregate over a backend × sensor's repetitions.
    All,
}

impl fmt::Display for Repetition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repetition::One(n) => write!(f, "{n}"),
            Repetition::All => f.write_str("all"),
        }
    }
}

impl FromStr for Repetition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Repetition::All),
            n => n
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .map(Repetition::One)
                .ok_or_else(|| format!("repetition must be a number from 1 or \"all\", not {s:?}")),
        }
    }
}

/// Both enums travel as their text in CSV and JSON.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_text!(Status);
serde_as_text!(Repetition);

/// `path` made absolute with its longest existing part's links and `..` resolved, and the
/// rest (not created yet) appended as written, `..` and `.` taken lexically: where a file
/// written to `path` would land.
pub fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::env::current_dir().unwrap_or_default().join(path);
    let parts: Vec<Component> = absolute.components().collect();
    let (mut out, rest) = (0..=parts.len())
        .rev()
        .find_map(|n| {
            let prefix: PathBuf = parts[..n].iter().collect();
            Some((std::fs::canonicalize(prefix).ok()?, &parts[n..]))
        })
        .unwrap_or_else(|| (PathBuf::new(), &parts[..]));
    for part in rest {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Refuses a run folder named twice in `dirs` (by another spelling, `..` or a symbolic link
/// alike): compared with itself its ratio is 1 and its test meaningless, and a report would
/// show it twice. `fix` ends the message.
pub fn refuse_repeats(dirs: &[PathBuf], fix: &str) -> Result<()> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for dir in dirs {
        let real = std::fs::canonicalize(dir)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            bail!(
                "{} and {} are the same run folder: {fix}",
                first.display(),
                dir.display()
            );
        }
        seen.push((real, dir));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_as_written() {
        for status in [
            Status::Ok,
            Status::Interrupted,
            Status::Error("warm-up: out of memory".into()),
            Status::SensorFailed("20 failed reads over 5.0 s: no acknowledge".into()),
            Status::SensorMissing("optional, did not open: no chip at 0x41".into()),
            Status::Invalid("coverage 0.636 below 0.95 (largest gap 12.0 ms)".into()),
        ] {
            let text = status.to_string();
            assert_eq!(text.parse::<Status>(), Ok(status), "{text}");
        }
        assert_eq!(
            "invalid: idle baseline: no fresh readings in the window".parse::<Status>(),
            Ok(Status::Invalid(
                "idle baseline: no fresh readings in the window".into()
            ))
        );
        assert!("fine".parse::<Status>().is_err());
    }
}
