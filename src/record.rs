//! A run's raw record, as the runner leaves it and everything after reads it: the rig as
//! run, the phases, each backend's timed runs, each sensor's readings, and the windows settled
//! while it streamed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::backend::EngineInfo;
use crate::clock::PhaseSpan;
use crate::input::Labels;
use crate::models::{ResolvedImage, ResolvedModel, Top1};
use crate::protocol::TimedRun;
use crate::rig::{BackendSpec, Rig};
use crate::sampler::SensorLog;
use crate::sensor::detect::SensorChoice;
use crate::validity::CheckedWindow;

/// One backend's measurements.
#[derive(Clone)]
pub struct BackendResult {
    pub spec: BackendSpec,
    pub model: RecordedModel,
    pub image: RecordedImage,
    pub engine: EngineInfo,
    pub labels: Labels,
    /// Why the engine is not the default's, where it fell back.
    pub engine_note: Option<String>,
    /// The model's inputs and outputs as the engine ran them, and what each input was fed;
    /// none in a folder written before `run.json` recorded it.
    pub signature: Option<crate::backend::Signature>,
    /// One timed run per repetition of the protocol, in order; fewer than the rig's `repeat`
    /// when the run was interrupted or the backend failed.
    pub repetitions: Vec<TimedRun>,
}

/// The model a backend ran, as `run.json` keeps it: where its file was is not part of the
/// result, and a rebuilt record has only these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedModel {
    /// The manifest name, or the string the rig gave for a file the manifest does not know.
    pub name: String,
    pub sha256: String,
    /// The label file naming the model's classes (its file name), where the model has one:
    /// only then is a classifier's prediction reported and checked.
    pub label_file: Option<String>,
}

impl RecordedModel {
    pub fn of(model: &ResolvedModel) -> Self {
        let label_file = model.labels.as_ref().map(|path| {
            let name = path.file_name().unwrap_or(path.as_os_str());
            name.to_string_lossy().into_owned()
        });
        RecordedModel {
            name: model.name.clone(),
            sha256: model.sha256.clone(),
            label_file,
        }
    }
}

/// The image a backend classified, as `run.json` keeps it: with the one expected answer that
/// concerns this backend, its model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedImage {
    /// The manifest name, or the string the rig gave for a file the manifest does not know.
    pub name: String,
    pub sha256: String,
    /// The class the backend's model should rank first, where the manifest knows it.
    pub expected_top1: Option<Top1>,
}

impl RecordedImage {
    /// `image` as classified by the model named `model`.
    pub fn of(image: &ResolvedImage, model: &str) -> Self {
        RecordedImage {
            name: image.name.clone(),
            sha256: image.sha256.clone(),
            expected_top1: image.expected_top1(model).cloned(),
        }
    }
}

impl RunRecord {
    /// Every reading sensor `sensor` took: those still held and those settled and released.
    pub fn readings(&self, sensor: usize) -> usize {
        self.sensors[sensor].samples.len() + self.settled.released(sensor)
    }
}

impl BackendResult {
    /// Why no prediction of this backend was reported or checked, and what it was fed ("is not
    /// a classifier, so no prediction was checked; fed ..."); none for a classifier with a
    /// label file, and where the folder did not record the model's signature.
    pub fn unchecked_prediction(&self) -> Option<String> {
        let signature = self.signature.as_ref()?;
        let why = if !signature.classifier() {
            "is not a classifier"
        } else if self.model.label_file.is_none() {
            "has no label file"
        } else {
            return None;
        };
        Some(format!(
            "{why}, so no prediction was checked; fed {}",
            signature.fed_line()
        ))
    }

    /// The last repetition's timed run (its top-k is the backend's final answer).
    pub fn last_run(&self) -> Option<&TimedRun> {
        self.repetitions.last()
    }
}

/// Everything a run measured.
pub struct RunRecord {
    pub rig: Rig,
    pub rig_text: String,
    pub started: DateTime<Utc>,
    pub phases: Vec<PhaseSpan>,
    pub backends: Vec<BackendResult>,
    pub sensors: Vec<SensorLog>,
    /// What `detect_sensors` decided, for `run.json`.
    pub sensor_choice: Option<SensorChoice>,
    /// What a ranging pass before the run set (empty without one).
    pub ranging: Vec<crate::sensor::ina219::Ranged>,
    pub interrupted: bool,
    /// Windows whose results are final, and the readings released from `sensors` with them
    /// (a streamed run keeps only the readings its open windows need).
    pub settled: Settled,
}

/// A window, by the exact bits of its edges (they are copied, never recomputed).
type Key = (usize, u64, u64);

fn key(sensor: usize, (start, end): (f64, f64)) -> Key {
    (sensor, start.to_bits(), end.to_bits())
}

/// The settled windows of a run, and how many readings each sensor released.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    windows: HashMap<Key, CheckedWindow>,
    released: Vec<usize>,
}

impl Settled {
    /// Sensor `sensor`'s settled result of window `w`, if it is settled.
    pub fn get(&self, sensor: usize, w: (f64, f64)) -> Option<&CheckedWindow> {
        self.windows.get(&key(sensor, w))
    }

    /// Readings of sensor `sensor` written and no longer held in the record.
    pub fn released(&self, sensor: usize) -> usize {
        self.released.get(sensor).copied().unwrap_or(0)
    }

    /// Whether sensor `sensor`'s window `w` is settled.
    pub fn contains(&self, sensor: usize, w: (f64, f64)) -> bool {
        self.windows.contains_key(&key(sensor, w))
    }

    /// Settles sensor `sensor`'s window `w` with its final result.
    pub fn insert(&mut self, sensor: usize, w: (f64, f64), checked: CheckedWindow) {
        self.windows.insert(key(sensor, w), checked);
    }

    /// Notes that sensor `sensor` released `n` more readings (of `sensors` in all).
    pub fn release(&mut self, sensor: usize, sensors: usize, n: usize) {
        self.released.resize(self.released.len().max(sensors), 0);
        self.released[sensor] += n;
    }

    /// Windows settled, over all sensors.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}
