//! Int8 TensorFlow Lite on the CPU through the `tflite` crate (TensorFlow Lite 1.15.5,
//! compiled from source with the flags in `.cargo/config.toml`).

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tflite::model::stl::vector::VectorInsert;
use tflite::ops::builtin::BuiltinOpResolver;
use tflite::{FlatBufferModel, Interpreter, InterpreterBuilder};

use super::signature::{at_batch, Signature, Tensor};
use super::{Backend, EngineInfo};
use crate::input::TensorType;

/// The TensorFlow Lite version the `tflite` crate bundles.
pub const TFLITE_VERSION: &str = "1.15.5";

pub struct TfliteBackend {
    interpreter: Interpreter<'static, BuiltinOpResolver>,
    /// Each input's tensor index and its bytes' place in the prepared input (one image's,
    /// copied once per image of the batch).
    inputs: Vec<(i32, Range<usize>)>,
    /// The output tensor, its type and the bytes of one image's scores, where the model is a
    /// classifier whose scores are read.
    scored: Option<(i32, TensorType, usize)>,
    signature: Signature,
    engine: EngineInfo,
}

impl TfliteBackend {
    /// Builds an interpreter of `model_path` with `threads` threads, running `batch` images
    /// per inference.
    ///
    /// The `tflite` crate (0.9) binds no `ResizeInputTensor`, so a batch is set where that call
    /// would set it, before the interpreter allocates its tensors: the model's inputs are
    /// given their batched shapes in the flatbuffer it is built from. Every other tensor's
    /// shape is computed from them when the interpreter allocates (each kernel's `Prepare`),
    /// exactly as after a resize.
    pub fn open(model_path: &Path, threads: u32, batch: usize) -> Result<Self> {
        let bytes = std::fs::read(model_path)
            .with_context(|| format!("cannot read model {}", model_path.display()))?;
        // The interpreter does not expose quantization; the flatbuffer does.
        tflite::model::Model::from_buffer(&bytes).with_context(|| {
            format!(
                "TF Lite {TFLITE_VERSION} cannot read model {}: not a TensorFlow Lite model, or \
                 one with operators newer than TF Lite {TFLITE_VERSION} (engine = \"litert\" runs those)",
                model_path.display()
            )
        })?;
        let signature = Signature::parse(&bytes)
            .and_then(|s| s.batched(batch))
            .with_context(|| format!("model {}", model_path.display()))?;
        let bytes = if batch == 1 {
            bytes
        } else {
            with_batched_inputs(&bytes, &signature)
        };
        let flat = FlatBufferModel::build_from_buffer(bytes)
            .map_err(|e| anyhow::anyhow!("cannot load model {}: {e}", model_path.display()))?;
        // The engine's own refusals (an operator without the quantization its kernel needs:
        // "failed to allocate tensors"; at a batch, an operator whose shapes cannot follow it)
        // name the model, as every other refusal does.
        let at_batch = at_batch(batch);
        let why = if batch == 1 {
            String::new()
        } else {
            format!(
                " (its inputs resized to {batch} images, an operator cannot follow: one that \
                 fixes a shape to one image's, such as a RESHAPE to [1, N])"
            )
        };
        let cannot = |e| {
            anyhow::anyhow!(
                "TF Lite {TFLITE_VERSION} cannot build an interpreter for model {}{at_batch}{why}: \
                 {e}",
                model_path.display()
            )
        };
        let builder =
            InterpreterBuilder::new(flat, BuiltinOpResolver::default()).map_err(cannot)?;
        let interpreter = builder.build_with_threads(threads as i32).map_err(cannot)?;

        let model = || format!("model {}{at_batch}", model_path.display());
        check_tensors(
            &interpreter,
            interpreter.inputs(),
            &signature.inputs,
            signature.batch,
        )
        .with_context(model)?;
        check_tensors(
            &interpreter,
            interpreter.outputs(),
            &signature.outputs,
            signature.batch,
        )
        .with_context(model)?;
        let inputs = interpreter
            .inputs()
            .iter()
            .copied()
            .zip(signature.input_ranges())
            .collect();
        let scored = signature.classifier().then(|| {
            (
                interpreter.outputs()[0],
                signature.outputs[0].tensor_type(),
                signature.output_bytes_per_image(0),
            )
        });
        Ok(Self {
            interpreter,
            inputs,
            scored,
            signature,
            engine: EngineInfo {
                engine: "tflite".into(),
                version: TFLITE_VERSION.into(),
                accelerator: "none".into(),
                threads,
            },
        })
    }
}

/// The model's bytes with the first subgraph's inputs at the shapes of `batched` (the
/// signature at a batch, whose inputs are that subgraph's in order).
fn with_batched_inputs(bytes: &[u8], batched: &Signature) -> Vec<u8> {
    let mut model = tflite::model::Model::from_buffer(bytes)
        .expect("verified by Model::from_buffer before the signature was read");
    let graph = &mut model.subgraphs[0];
    let inputs: Vec<usize> = graph.inputs.iter().map(|&i| i as usize).collect();
    for (index, t) in inputs.into_iter().zip(&batched.inputs) {
        graph.tensors[index]
            .shape
            .assign(t.shape.iter().map(|&d| d as i32).collect::<Vec<_>>());
    }
    model.to_buffer()
}

/// The interpreter lists the subgraph's tensors in the flatbuffer's order: checks that it sees
/// each of `indices` as the signature's `tensors` describe it.
fn check_tensors(
    interpreter: &Interpreter<'static, BuiltinOpResolver>,
    indices: &[i32],
    tensors: &[Tensor],
    batch: usize,
) -> Result<()> {
    if indices.len() != tensors.len() {
        bail!(
            "TF Lite sees {} tensors where the model lists {}",
            indices.len(),
            tensors.len()
        );
    }
    for (&index, t) in indices.iter().zip(tensors) {
        let info = interpreter
            .tensor_info(index)
            .context("tensor without info")?;
        let dims: Vec<i64> = info.dims.iter().map(|&d| d as i64).collect();
        let same_type = info.element_kind as u32 == t.dtype.c_type();
        if batch > 1 && same_type && dims != t.shape {
            let engine = format!("TF Lite {TFLITE_VERSION}");
            bail!(
                "{}",
                super::signature::folded_batch(&engine, &t.name, &dims, t, batch)
            );
        }
        if !same_type || dims != t.shape {
            bail!(
                "TF Lite {TFLITE_VERSION} sees tensor {} as {dims:?} {:?}, where the model \
                     file gives {}",
                t.name,
                info.element_kind,
                t.describe()
            );
        }
    }
    Ok(())
}

impl Backend for TfliteBackend {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn batch(&self) -> usize {
        self.signature.batch
    }

    /// Copies one image's inputs into every image of the batch on each call, as at batch 1:
    /// what an inference costs per image stays comparable between batches.
    fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> Result<()> {
        let batch = self.signature.batch;
        for (index, range) in &self.inputs {
            let dst = self
                .interpreter
                .tensor_buffer_mut(*index)
                .context("input tensor has no buffer")?;
            match input.get(range.clone()) {
                Some(src) if src.len() * batch == dst.len() => {
                    for image in dst.chunks_exact_mut(src.len()) {
                        image.copy_from_slice(src);
                    }
                }
                _ => bail!(
                    "input of {} bytes at {range:?} of {}, the model takes {} per image",
                    range.len(),
                    input.len(),
                    dst.len() / batch
                ),
            }
        }
        self.interpreter
            .invoke()
            .map_err(|e| anyhow::anyhow!("inference failed: {e}"))?;
        match self.scored {
            Some((index, output_type, first_image)) => {
                let out = self
                    .interpreter
                    .tensor_buffer(index)
                    .context("output tensor has no buffer")?;
                output_type.dequantize(&out[..first_image], scores);
            }
            None => scores.clear(),
        }
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
        let mut backend = TfliteBackend::open(&path, 1, 1).unwrap();
        let input = &backend.signature().inputs[0];
        assert_eq!(input.tensor_type(), crate::input::TensorType::F32);
        assert_eq!(input.shape, vec![1, 2, 2, 3]);
        let input: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_ne_bytes()).collect();
        // Its output is an image, not a vector of class scores: nothing to rank.
        let mut scores = vec![1.0];
        backend.infer(&input, &mut scores).unwrap();
        assert!(scores.is_empty(), "{scores:?}");
        // Input bytes of another size are an error, not a partial copy.
        assert!(backend.infer(&input[4..], &mut scores).is_err());
    }
}
