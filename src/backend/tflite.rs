//! Int8 TensorFlow Lite on the CPU through the `tflite` crate (TensorFlow Lite 1.15.5,
//! compiled from source with the flags in `.cargo/config.toml`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tflite::ops::builtin::BuiltinOpResolver;
use tflite::{FlatBufferModel, Interpreter, InterpreterBuilder};

use super::{tensor_type, Backend, EngineInfo};
use crate::input::InputSpec;

/// The TensorFlow Lite version the `tflite` crate bundles.
pub const TFLITE_VERSION: &str = "1.15.5";

pub struct TfliteBackend {
    interpreter: Interpreter<'static, BuiltinOpResolver>,
    input_index: i32,
    output_index: i32,
    input: InputSpec,
    output_type: crate::input::TensorType,
    engine: EngineInfo,
}

impl TfliteBackend {
    pub fn open(model_path: &Path, threads: u32) -> Result<Self> {
        let bytes = std::fs::read(model_path)
            .with_context(|| format!("cannot read model {}", model_path.display()))?;
        // The interpreter does not expose quantization; the flatbuffer does.
        let model = tflite::model::Model::from_buffer(&bytes)
            .with_context(|| format!("{} is not a TensorFlow Lite model", model_path.display()))?;
        let flat = FlatBufferModel::build_from_buffer(bytes)
            .map_err(|e| anyhow::anyhow!("cannot load model {}: {e}", model_path.display()))?;
        let builder = InterpreterBuilder::new(flat, BuiltinOpResolver::default())
            .map_err(|e| anyhow::anyhow!("cannot build interpreter: {e}"))?;
        let interpreter = builder
            .build_with_threads(threads as i32)
            .map_err(|e| anyhow::anyhow!("cannot build interpreter: {e}"))?;

        let (&[input_index], &[output_index]) = (interpreter.inputs(), interpreter.outputs())
        else {
            bail!("expected a model with one input and one output");
        };
        let describe = |index: i32| -> Result<(Vec<usize>, crate::input::TensorType)> {
            let info = interpreter
                .tensor_info(index)
                .context("tensor without info")?;
            let tensor = model
                .subgraphs
                .first()
                .and_then(|g| g.tensors.get(index as usize))
                .context("tensor missing from the flatbuffer")?;
            let q = &tensor.quantization;
            let kind = match info.element_kind {
                tflite::context::ElementKind::kTfLiteUInt8 => "uint8",
                tflite::context::ElementKind::kTfLiteInt8 => "int8",
                tflite::context::ElementKind::kTfLiteFloat32 => "float32",
                other => bail!("unsupported tensor type {other:?}"),
            };
            let dtype = tensor_type(
                kind,
                q.scale.first().copied(),
                q.zero_point.first().copied(),
            )?;
            Ok((info.dims, dtype))
        };
        let (in_dims, in_type) = describe(input_index)?;
        let (_, output_type) = describe(output_index)?;
        let in_dims: Vec<i64> = in_dims.iter().map(|&d| d as i64).collect();
        Ok(Self {
            interpreter,
            input_index,
            output_index,
            input: InputSpec::nhwc(&in_dims, in_type)?,
            output_type,
            engine: EngineInfo {
                engine: "tflite".into(),
                version: TFLITE_VERSION.into(),
                accelerator: "none".into(),
                threads,
            },
        })
    }
}

impl Backend for TfliteBackend {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    fn input(&self) -> &InputSpec {
        &self.input
    }

    fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> Result<()> {
        let dst = self
            .interpreter
            .tensor_buffer_mut(self.input_index)
            .context("input tensor has no buffer")?;
        if dst.len() != input.len() {
            bail!(
                "input is {} bytes, the model takes {}",
                input.len(),
                dst.len()
            );
        }
        dst.copy_from_slice(input);
        self.interpreter
            .invoke()
            .map_err(|e| anyhow::anyhow!("inference failed: {e}"))?;
        let out = self
            .interpreter
            .tensor_buffer(self.output_index)
            .context("output tensor has no buffer")?;
        self.output_type.dequantize(out, scores);
        Ok(())
    }
}
