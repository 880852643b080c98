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
            // A float tensor has no quantization table, and the crate's Deref of a missing
            // one panics: read it only where it exists.
            let (scale, zero_point) = if tensor.quantization.is_valid() {
                let q = &*tensor.quantization;
                (q.scale.first().copied(), q.zero_point.first().copied())
            } else {
                (None, None)
            };
            let kind = match info.element_kind {
                tflite::context::ElementKind::kTfLiteUInt8 => "uint8",
                tflite::context::ElementKind::kTfLiteInt8 => "int8",
                tflite::context::ElementKind::kTfLiteFloat32 => "float32",
                other => bail!("unsupported tensor type {other:?}"),
            };
            let dtype = tensor_type(kind, scale, zero_point)?;
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

/// A model built in code for the tests (unit and integration), never a committed file.
#[doc(hidden)]
pub mod fixtures {
    use tflite::model::stl::memory::UniquePtr;
    use tflite::model::stl::vector::VectorInsert;
    use tflite::model::{
        BufferT, BuiltinOperator, BuiltinOptionsUnion, Model, OperatorCodeT, OperatorT, SubGraphT,
        TensorT, TensorType,
    };

    /// A valid float32 model: input [1, 2, 2, 3] padded by nothing (TF Lite's PAD with zero
    /// paddings), so its output is its input. Its tensors have no quantization table at all.
    pub fn tiny_float_model() -> Model {
        let mut model = Model::default();
        model.version = 3;
        let mut pad: UniquePtr<OperatorCodeT> = Default::default();
        pad.builtin_code = BuiltinOperator::BuiltinOperator_PAD;
        pad.version = 1;
        model.operator_codes.push_back(pad);
        model
            .buffers
            .assign(vec![UniquePtr::<BufferT>::default(); 3]);
        model.buffers[1].data.assign(vec![0u8; 4 * 2 * 4]);
        let mut graph: UniquePtr<SubGraphT> = Default::default();
        let mut op: UniquePtr<OperatorT> = Default::default();
        op.builtin_options = BuiltinOptionsUnion::PadOptions();
        op.opcode_index = 0;
        op.inputs.assign(vec![0, 1]);
        op.outputs.assign(vec![2]);
        graph.operators.push_back(op);
        graph.inputs.assign(vec![0]);
        graph.outputs.assign(vec![2]);
        for (shape, typ, buffer) in [
            (vec![1, 2, 2, 3], TensorType::TensorType_FLOAT32, 0),
            (vec![4, 2], TensorType::TensorType_INT32, 1),
            (vec![1, 2, 2, 3], TensorType::TensorType_FLOAT32, 2),
        ] {
            let mut t: UniquePtr<TensorT> = Default::default();
            t.shape.assign(shape);
            t.typ = typ;
            t.buffer = buffer;
            graph.tensors.push_back(t);
        }
        model.subgraphs.push_back(graph);
        model
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::tiny_float_model;
    use super::*;

    #[test]
    fn a_float_model_opens_and_runs_without_quantization() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("float.tflite");
        std::fs::write(&path, tiny_float_model().to_buffer()).unwrap();
        crate::backend::check::check(
            crate::rig::BackendKind::Tflite,
            &path,
            &crate::input::Labels::default(),
            None,
        )
        .unwrap();
        let mut backend = TfliteBackend::open(&path, 1).unwrap();
        assert_eq!(backend.input().dtype, crate::input::TensorType::F32);
        assert_eq!((backend.input().height, backend.input().width), (2, 2));
        let input: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_ne_bytes()).collect();
        let mut scores = Vec::new();
        backend.infer(&input, &mut scores).unwrap();
        assert_eq!(scores, (0..12).map(|i| i as f32).collect::<Vec<_>>());
    }
}
