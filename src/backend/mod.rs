//! Inference backends: one file per engine behind [`Backend`].
//!
//! A backend owns a loaded model. The runner hands it the prepared input bytes once per
//! classification; the backend copies them in, invokes the model and returns the output as
//! real-valued scores, so top-k and labels are the same code for every engine.

pub mod check;
pub mod edgetpu;
pub mod feed;
pub mod litert;
pub mod signature;
pub mod spec;
pub mod tflite;
#[cfg(feature = "torch")]
pub mod torch;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::input::TensorType;
pub use signature::Signature;
use spec::{BackendSpec, Engine, TfliteSpec};

/// Which engine computed a result, so rows from different engines are never mixed up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EngineInfo {
    /// Engine name, e.g. "tflite".
    pub engine: String,
    /// The engine's own version (e.g. TensorFlow Lite 1.15.5).
    pub version: String,
    /// Accelerator or delegate in use ("none" for plain CPU kernels).
    pub accelerator: String,
    pub threads: u32,
}

/// A loaded model, ready to classify.
pub trait Backend {
    fn engine(&self) -> &EngineInfo;

    /// The model's inputs and outputs as the engine runs them, and what each input is fed
    /// ([`feed::prepare`] encodes them).
    fn signature(&self) -> &Signature;

    /// Images per inference call: 1, or the batch of an Offline run. `input` then holds the
    /// image once (one image's inputs); the backend replicates it, and [`Backend::signature`]
    /// gives the shapes at the batch.
    fn batch(&self) -> usize {
        1
    }

    /// One inference: copies `input` (every input of [`Backend::signature`], in order, as
    /// [`feed::prepare`] encodes them) into the model, runs it and, for a classifier
    /// ([`Signature::classifier`]), writes the dequantized output scores (of the first image)
    /// to `scores`; for any other model it leaves `scores` empty (no prediction to rank).
    fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> Result<()>;
}

/// A loaded backend, and why it runs on another engine than the default would, where it fell
/// back.
pub struct Opened {
    pub backend: Box<dyn Backend>,
    /// Set where a `tflite` backend left its engine open and LiteRT's library was not found:
    /// it runs TF Lite 1.15.5, and the summary must say so; and where a `torch` backend runs
    /// eager though CUDA graphs are its default (and why).
    pub fallback: Option<String>,
}

/// Loads `model` into the engine a rig's backend table names.
pub fn open(spec: &BackendSpec, model: &Path) -> Result<Opened> {
    let (backend, fallback): (Box<dyn Backend>, _) = match spec {
        BackendSpec::Tflite(spec) => match engine_for(spec)? {
            EngineChoice {
                engine: Engine::Litert,
                library: Some(library),
                ..
            } => (
                Box::new(litert::LiteRtBackend::open(
                    model,
                    spec.threads,
                    spec.xnnpack.unwrap_or(true),
                    &library,
                    spec.batch() as usize,
                )?),
                None,
            ),
            choice => (
                Box::new(tflite::TfliteBackend::open(
                    model,
                    spec.threads,
                    spec.batch() as usize,
                )?),
                choice.fallback,
            ),
        },
        BackendSpec::Torch(spec) => open_torch(spec, model)?,
        BackendSpec::Edgetpu(spec) => (Box::new(edgetpu::EdgeTpuBackend::open(spec, model)?), None),
    };
    Ok(Opened { backend, fallback })
}

/// The float backend: `model` is the int8 `.tflite` file whose dequantized weights it runs;
/// with the reason it runs eager where CUDA graphs are the default.
#[cfg(feature = "torch")]
fn open_torch(spec: &spec::TorchSpec, model: &Path) -> Result<(Box<dyn Backend>, Option<String>)> {
    let backend = torch::TorchBackend::open(spec, model)?;
    let note = backend.engine_note().map(str::to_string);
    Ok((Box::new(backend), note))
}

#[cfg(not(feature = "torch"))]
fn open_torch(_: &spec::TorchSpec, _: &Path) -> Result<(Box<dyn Backend>, Option<String>)> {
    anyhow::bail!(
        "backend kind \"torch\" needs joulebench built with the torch feature: run `make run FEATURES=torch` (it installs libtorch into the project's torch venv)"
    )
}

/// The engine an int8 TFLite backend runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineChoice {
    pub engine: Engine,
    /// LiteRT's library, when that is the engine.
    pub library: Option<PathBuf>,
    /// Why the engine is TF Lite 1.15.5 though the rig left it open: LiteRT's library was not
    /// found (where it was looked for).
    pub fallback: Option<String>,
}

/// The engine for an int8 TFLite backend, with LiteRT's library when that is the one: the
/// rig's choice (LiteRT insisted on but missing is an error), else LiteRT wherever its library
/// is found and loads (it runs MobileNetV2 several times faster than TF Lite 1.15; a release
/// tarball's library needs a newer C library than some boards have), else the `tflite`
/// crate's built-in TF Lite — never silently: `fallback` says why.
pub fn engine_for(spec: &TfliteSpec) -> Result<EngineChoice> {
    let library = || litert::locate_library(spec.litert_lib.as_deref());
    let choice = |engine, library, fallback| EngineChoice {
        engine,
        library,
        fallback,
    };
    Ok(match spec.engine {
        Some(Engine::Tflite) => choice(Engine::Tflite, None, None),
        Some(Engine::Litert) => choice(Engine::Litert, Some(library()?), None),
        None => match library().and_then(|path| litert::load_library(&path).map(|()| path)) {
            Ok(path) => choice(Engine::Litert, Some(path), None),
            Err(e) => choice(
                Engine::Tflite,
                None,
                Some(format!(
                    "{e:#}; running TF Lite 1.15.5 instead, several times slower: its figures describe \
                     that runtime more than this machine (engine = \"tflite\" in the rig chooses \
                     it and silences this)"
                )),
            ),
        },
    })
}

/// Maps a TF Lite tensor type and its (per-tensor) quantization to a [`TensorType`].
pub(crate) fn tensor_type(
    kind: &str,
    scale: Option<f32>,
    zero_point: Option<i64>,
) -> Result<TensorType> {
    let quant = || -> Result<(f32, i32)> {
        let scale = scale
            .filter(|s| *s > 0.0)
            .ok_or_else(|| anyhow::anyhow!("{kind} tensor has no quantization scale"))?;
        Ok((scale, zero_point.unwrap_or(0) as i32))
    };
    Ok(match kind {
        "uint8" => {
            let (scale, zero_point) = quant()?;
            TensorType::U8 { scale, zero_point }
        }
        "int8" => {
            let (scale, zero_point) = quant()?;
            TensorType::I8 { scale, zero_point }
        }
        "float32" => TensorType::F32,
        other => anyhow::bail!("unsupported tensor type {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(engine: Option<Engine>) -> TfliteSpec {
        TfliteSpec {
            engine,
            litert_lib: Some("/nonexistent/libLiteRt.so".into()),
            ..TfliteSpec::default()
        }
    }

    #[test]
    fn a_fallback_to_tflite_says_why() {
        let choice = engine_for(&spec(None)).unwrap();
        assert_eq!((choice.engine, choice.library), (Engine::Tflite, None));
        let why = choice.fallback.unwrap();
        assert!(
            why.starts_with("LiteRT library not found (looked in /nonexistent/libLiteRt.so)")
                && why.contains("running TF Lite 1.15.5 instead")
                && !why.contains('\n'),
            "{why}"
        );
    }

    /// A library that is found but cannot load (here not an ELF file at all; on a board, one
    /// built for a newer glibc) is a fallback with the loader's reason, where the engine was
    /// left open; the backend opens on TF Lite 1.15.5.
    #[test]
    fn a_library_that_cannot_load_is_a_fallback_with_the_loaders_reason() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("libLiteRt.so");
        std::fs::write(&broken, b"not a shared object").unwrap();
        let spec = TfliteSpec {
            litert_lib: Some(broken.clone()),
            ..TfliteSpec::default()
        };
        let choice = engine_for(&spec).unwrap();
        assert_eq!((choice.engine, choice.library), (Engine::Tflite, None));
        let why = choice.fallback.unwrap();
        assert!(
            why.starts_with(&format!("cannot load {}: ", broken.display()))
                && why.contains("running TF Lite 1.15.5 instead")
                && !why.contains('\n'),
            "{why}"
        );
    }

    #[test]
    fn a_chosen_engine_is_no_fallback_and_litert_insisted_on_is_an_error() {
        let tflite = engine_for(&spec(Some(Engine::Tflite))).unwrap();
        assert_eq!(tflite.fallback, None);
        let e = engine_for(&spec(Some(Engine::Litert))).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("LiteRT library not found (looked in /nonexistent/"),
            "{e:#}"
        );
    }
}
