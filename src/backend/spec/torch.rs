//! The settings of a `torch` backend: float MobileNetV2 through libtorch. They exist in every
//! build, so a rig naming them parses (and a build without the `torch` feature says what it
//! lacks when the backend opens).

use serde::{Deserialize, Serialize};

/// A `[[backends]]` table with `kind = "torch"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TorchSpec {
    /// A model name from `models/manifest.toml`, or a path to a `.tflite` file (its weights,
    /// dequantized, are the network's).
    pub model: String,
    /// An image name from the manifest, or a path to a BMP, JPEG or PNG file.
    pub image: String,
    /// Intra-op threads.
    #[serde(default = "super::default_threads")]
    pub threads: u32,
    /// "cpu" (default), "cuda" or "cuda:N".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub device: Option<Device>,
    /// fp32 (default) or fp16.
    #[serde(default)]
    pub precision: Option<Precision>,
    /// Images per inference (default 1; more than 1 needs the Offline scenario).
    #[serde(default)]
    pub batch: Option<u32>,
    /// Let cuDNN time its algorithms on the first batches (default on; the warm-up absorbs
    /// that time).
    #[serde(default)]
    pub cudnn_benchmark: Option<bool>,
    /// Capture the forward pass as a CUDA graph once and replay it for every classification
    /// (default on CUDA, where the shim is built and the capture succeeds; else eager, with
    /// the reason in the engine note). `false` runs eager; `true` insists: a backend that
    /// cannot use graphs then fails to open.
    #[serde(default)]
    pub cuda_graph: Option<bool>,
    /// Run the network as an AOTInductor package (Inductor's fused kernels, compiled once per
    /// machine, device, precision, batch and layout by the project's torch venv and cached;
    /// see `src/backend/torch/aoti.rs`). Default on CUDA, where compiling and loading work
    /// and the package's scores match eager ones (else eager kernels, with the reason in the
    /// engine note); off on the CPU. `false` runs eager kernels; `true` insists, on the CPU
    /// too: a backend that cannot use the package then fails to open.
    #[serde(default)]
    pub aoti: Option<bool>,
    /// Keep activations channels-last (NHWC in memory), which cuDNN's fp16 kernels prefer.
    /// Default on for fp16 on CUDA, off otherwise.
    #[serde(default)]
    pub channels_last: Option<bool>,
}

impl Default for TorchSpec {
    fn default() -> Self {
        Self {
            model: String::new(),
            image: String::new(),
            threads: super::default_threads(),
            device: None,
            precision: None,
            batch: None,
            cudnn_benchmark: None,
            cuda_graph: None,
            aoti: None,
            channels_last: None,
        }
    }
}

/// The largest batch: its input and activations are allocated when the backend opens, and at
/// 4096 images one fp32 activation of MobileNetV2's widest layer (112 × 112 × 96) is already
/// 19.7 GB, most of a large GPU's memory; a larger batch is a typo, not a measurement.
pub const MAX_BATCH: u32 = 4096;

impl TorchSpec {
    /// Images per inference call.
    pub fn batch(&self) -> u32 {
        self.batch.unwrap_or(1)
    }

    pub fn device(&self) -> Device {
        self.device.unwrap_or(Device::Cpu)
    }

    pub fn precision(&self) -> Precision {
        self.precision.unwrap_or(Precision::Fp32)
    }

    pub(super) fn validate(&self, offline: bool) -> Result<(), String> {
        if self.cuda_graph == Some(true) && !matches!(self.device, Some(Device::Cuda(_))) {
            return Err("cuda_graph = true needs device = \"cuda\" or \"cuda:N\" (CUDA graphs run on an NVIDIA GPU)".into());
        }
        super::validate_batch(
            self.batch(),
            MAX_BATCH,
            "the batch's input and activations are allocated when the backend opens",
            offline,
        )
    }
}

/// Where a `torch` backend computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    Cpu,
    Cuda(u32),
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("device {s:?} is not \"cpu\", \"cuda\" or \"cuda:N\"")),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Numeric precision of a `torch` backend.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    clap::ValueEnum,
    strum::IntoStaticStr,
    strum::VariantArray,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Precision {
    Fp32,
    Fp16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
