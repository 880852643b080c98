//! The settings of a `tflite` backend: int8 TensorFlow Lite on the CPU.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A `[[backends]]` table with `kind = "tflite"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TfliteSpec {
    /// A model name from `models/manifest.toml`, or a path to a `.tflite` file.
    pub model: String,
    /// An image name from the manifest, or a path to a BMP, JPEG or PNG file.
    pub image: String,
    /// CPU threads.
    #[serde(default = "super::default_threads")]
    pub threads: u32,
    /// A label file naming the model's classes, one per line, line i for output i (a path);
    /// by default the manifest's, for a model it knows. A classifier's top-1 is reported and
    /// checked only with one.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// The runtime that executes the model; by default LiteRT where its library is found,
    /// else the `tflite` crate's TF Lite 1.15.5.
    #[serde(default)]
    pub engine: Option<Engine>,
    /// XNNPACK for the `litert` engine (default on).
    #[serde(default)]
    pub xnnpack: Option<bool>,
    /// Path of `libLiteRt.so`; by default $JOULEBENCH_LITERT_LIB, else the one beside the
    /// joulebench executable, else the project venv's.
    #[serde(default)]
    pub litert_lib: Option<PathBuf>,
    /// Images per inference (default 1; more than 1 needs the Offline scenario). The engine
    /// resizes every input's leading (batch) dimension from 1 to the batch, so the model must
    /// have one: a model whose inputs fix it above 1, or have none, is refused when it opens.
    #[serde(default)]
    pub batch: Option<u32>,
}

impl Default for TfliteSpec {
    fn default() -> Self {
        Self {
            model: String::new(),
            image: String::new(),
            threads: super::default_threads(),
            labels: None,
            engine: None,
            xnnpack: None,
            litert_lib: None,
            batch: None,
        }
    }
}

/// The largest batch: the engine allocates the batch's input and activations when the backend
/// opens, in the machine's memory, and at 1024 images one int8 activation of MobileNetV2's
/// widest layer (112 × 112 × 96) is already 1.2 GB, more than many boards have; a larger
/// batch is a typo, not a measurement.
pub const MAX_BATCH: u32 = 1024;

impl TfliteSpec {
    /// Images per inference call.
    pub fn batch(&self) -> u32 {
        self.batch.unwrap_or(1)
    }

    pub(super) fn validate(&self, offline: bool) -> Result<(), String> {
        if self.engine == Some(Engine::Tflite)
            && (self.xnnpack == Some(true) || self.litert_lib.is_some())
        {
            return Err("xnnpack and litert_lib belong to engine \"litert\" (TF Lite 1.15.5 has no XNNPACK)".into());
        }
        super::validate_batch(
            self.batch(),
            MAX_BATCH,
            "the engine allocates the batch's input and activations in the machine's memory \
             when the backend opens",
            offline,
        )
    }
}

/// A runtime for int8 TFLite models.
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
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Engine {
    /// Google's LiteRT (`libLiteRt.so` from the `ai-edge-litert` wheel), XNNPACK by default.
    Litert,
    /// TensorFlow Lite 1.15.5, compiled into joulebench by the `tflite` crate.
    Tflite,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
