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
        }
    }
}

impl TfliteSpec {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.engine == Some(Engine::Tflite)
            && (self.xnnpack == Some(true) || self.litert_lib.is_some())
        {
            return Err("xnnpack and litert_lib belong to engine \"litert\" (TF Lite 1.15.5 has no XNNPACK)".into());
        }
        Ok(())
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
