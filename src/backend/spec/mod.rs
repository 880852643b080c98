//! What a rig's `[[backends]]` table says: which kind of backend, the model and image it
//! classifies, and the settings of that kind, each kind's in its own file.
//!
//! The table is tagged by `kind` and every kind's table rejects keys it does not have, so a
//! setting of another kind (`device` on a `tflite` backend) is an error naming the keys the
//! kind accepts, not a value silently ignored.

pub mod edgetpu;
pub mod tflite;
pub mod torch;

use serde::{Deserialize, Serialize};

pub use edgetpu::{Bus, DeviceChoice, EdgetpuSpec};
pub use tflite::{Engine, TfliteSpec};
pub use torch::{Device, Precision, TorchSpec};

/// One inference backend of the rig.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BackendSpec {
    /// Int8 TensorFlow Lite on the CPU.
    Tflite(TfliteSpec),
    /// Float MobileNetV2 through libtorch, on the CPU or an NVIDIA GPU.
    Torch(TorchSpec),
    /// A model compiled by `edgetpu_compiler`, on a Coral Edge TPU.
    Edgetpu(EdgetpuSpec),
}

impl BackendSpec {
    /// Reads a table of kind `kind`, its `kind` key left out, straight into that kind's
    /// struct: read through the `kind` tag, serde copies the table aside first, so a bad
    /// value's error names no key; read this way, the rig loader places it at its key (as
    /// for sensors, `SensorSpec::deserialize_kind`).
    pub fn deserialize_kind<'de, D>(kind: &str, table: D) -> Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        Ok(match kind {
            "tflite" => BackendSpec::Tflite(Deserialize::deserialize(table)?),
            "torch" => BackendSpec::Torch(Deserialize::deserialize(table)?),
            "edgetpu" => BackendSpec::Edgetpu(Deserialize::deserialize(table)?),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown backend kind {other:?}"
                )))
            }
        })
    }
}

/// The kinds of backend, as the command line's `--backend` names them.
#[derive(
    Debug,
    Clone,
    Copy,
    Deserialize,
    Serialize,
    PartialEq,
    Eq,
    clap::ValueEnum,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum BackendKind {
    /// Int8 TensorFlow Lite on the CPU.
    Tflite,
    /// Float MobileNetV2 (the int8 model's weights, dequantized) through libtorch, on the CPU
    /// or an NVIDIA GPU. Needs a build with the `torch` feature.
    Torch,
    /// A model compiled by `edgetpu_compiler` on a Coral Edge TPU (libedgetpu and the TF Lite
    /// C library, loaded at run time).
    Edgetpu,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What every kind's table has: the model, the image and the CPU threads. Each kind's struct
/// spells these three keys itself: serde cannot flatten a shared struct into one that refuses
/// unknown keys, and refusing them is the point of the tagged tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// A model name from `models/manifest.toml`, or a path to a `.tflite` file.
    pub model: String,
    /// An image name from the manifest, or a path to a BMP, JPEG or PNG file.
    pub image: String,
    /// CPU threads (intra-op threads for `torch`).
    pub threads: u32,
}

/// The same expression on whichever kind's settings `$spec` holds.
macro_rules! on_kind {
    ($spec:expr, $s:ident => $body:expr) => {
        match $spec {
            BackendSpec::Tflite($s) => $body,
            BackendSpec::Torch($s) => $body,
            BackendSpec::Edgetpu($s) => $body,
        }
    };
}

impl BackendSpec {
    /// A backend of `kind` running `workload`, every setting of the kind at its default.
    pub fn new(kind: BackendKind, workload: Workload) -> Self {
        let Workload {
            model,
            image,
            threads,
        } = workload;
        match kind {
            BackendKind::Tflite => BackendSpec::Tflite(TfliteSpec {
                model,
                image,
                threads,
                ..TfliteSpec::default()
            }),
            BackendKind::Torch => BackendSpec::Torch(TorchSpec {
                model,
                image,
                threads,
                ..TorchSpec::default()
            }),
            BackendKind::Edgetpu => BackendSpec::Edgetpu(EdgetpuSpec {
                model,
                image,
                threads,
                ..EdgetpuSpec::default()
            }),
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            BackendSpec::Tflite(_) => BackendKind::Tflite,
            BackendSpec::Torch(_) => BackendKind::Torch,
            BackendSpec::Edgetpu(_) => BackendKind::Edgetpu,
        }
    }

    pub fn model(&self) -> &str {
        on_kind!(self, s => &s.model)
    }

    pub fn image(&self) -> &str {
        on_kind!(self, s => &s.image)
    }

    pub fn threads(&self) -> u32 {
        on_kind!(self, s => s.threads)
    }

    /// The label file the rig gives for the model, if any (`torch` runs the manifest's
    /// MobileNetV2 with its labels only).
    pub fn labels(&self) -> Option<&std::path::Path> {
        match self {
            BackendSpec::Tflite(s) => s.labels.as_deref(),
            BackendSpec::Edgetpu(s) => s.labels.as_deref(),
            BackendSpec::Torch(_) => None,
        }
    }

    /// The model, image and threads, to be read or changed together.
    pub fn workload(&self) -> Workload {
        Workload {
            model: self.model().to_string(),
            image: self.image().to_string(),
            threads: self.threads(),
        }
    }

    /// Replaces the model, image and threads, keeping the kind's settings.
    pub fn set_workload(&mut self, workload: Workload) {
        on_kind!(self, s => {
            s.model = workload.model;
            s.image = workload.image;
            s.threads = workload.threads;
        })
    }

    /// Images per inference call (`torch` and `tflite` batch; `edgetpu` runs one image).
    pub fn batch(&self) -> u32 {
        match self {
            BackendSpec::Tflite(s) => s.batch(),
            BackendSpec::Torch(s) => s.batch(),
            BackendSpec::Edgetpu(_) => 1,
        }
    }

    pub fn tflite(&self) -> Option<&TfliteSpec> {
        match self {
            BackendSpec::Tflite(s) => Some(s),
            _ => None,
        }
    }

    pub fn torch(&self) -> Option<&TorchSpec> {
        match self {
            BackendSpec::Torch(s) => Some(s),
            _ => None,
        }
    }

    /// The checks serde cannot make (ranges, combinations within the kind), as one line
    /// without the backend's index. `offline` is whether the protocol runs the Offline
    /// scenario, which batches need.
    pub fn validate(&self, offline: bool) -> Result<(), String> {
        if self.threads() == 0 {
            return Err("threads must be at least 1".into());
        }
        match self {
            BackendSpec::Tflite(s) => s.validate(offline),
            BackendSpec::Torch(s) => s.validate(offline),
            BackendSpec::Edgetpu(s) => s.validate(),
        }
    }
}

pub(crate) fn default_threads() -> u32 {
    1
}

/// The checks of a kind's `batch`: at least 1, at most `max` (`why` says what a larger one
/// would exhaust), and more than 1 only in the Offline scenario (single-stream is batch 1).
fn validate_batch(batch: u32, max: u32, why: &str, offline: bool) -> Result<(), String> {
    if batch == 0 {
        return Err("batch must be at least 1".into());
    }
    if batch > max {
        return Err(format!(
            "batch must be at most {max} ({why}), not {batch}: give a smaller batch"
        ));
    }
    if batch > 1 && !offline {
        return Err(format!(
            "batch {batch} needs protocol.scenario = \"offline\" (single-stream is batch 1)"
        ));
    }
    Ok(())
}
