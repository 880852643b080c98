//! What a model must be for a backend to run it through the protocol, checked on the model's
//! flatbuffer before any engine sees it.
//!
//! The engines fail badly on models they were not meant for: the `tflite` crate panics on a
//! tensor without quantization parameters, LiteRT and TF Lite print their own log lines for
//! an Edge TPU build's custom op, and a model whose input is not an image gets an error about
//! the image. Here each case is one line naming the model and what to do. A `tflite` backend
//! runs any model whose tensors it can feed ([`Signature::parse`]); `torch` runs MobileNetV2's
//! shape only: one RGB image in, one vector of class scores out.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tflite::model::{Model, TensorT, TensorType as TfType};

use super::edgetpu::EDGETPU_CUSTOM_OP;
use super::signature::Signature;
use crate::input::{InputSpec, Labels, TensorType};
use crate::rig::BackendKind;

/// Checks the model at `path` for a backend of `kind`, and that `labels` (the model's label
/// file, `labels_path`, if it has one) name exactly its outputs. An `edgetpu` backend has its
/// own check ([`super::edgetpu::check_compiled_for_edgetpu`]) and is passed through.
pub fn check(
    kind: BackendKind,
    path: &Path,
    labels: &Labels,
    labels_path: Option<&Path>,
) -> Result<()> {
    if kind == BackendKind::Edgetpu {
        return Ok(());
    }
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model {name}"))?;
    if bytes.is_empty() {
        bail!("model {name} is empty (0 bytes): fetch it again or give another file");
    }
    let invalid = || {
        anyhow::anyhow!(
            "model {name} is not a valid TensorFlow Lite model ({} bytes; truncated, corrupt or \
             another format): give a .tflite file",
            bytes.len()
        )
    };
    let model = Model::from_buffer(&bytes);
    // TF Lite 1.15's verifier also refuses a whole model whose operators came after it (their
    // options a union member it does not know): a `tflite` backend's LiteRT runs those, once
    // the structure is walked and found within the file.
    if model.is_none()
        && (kind != BackendKind::Tflite || super::signature::check_structure(&bytes).is_err())
    {
        return Err(invalid());
    }
    let compiled = super::signature::custom_codes(&bytes)
        .map_err(|_| invalid())?
        .iter()
        .any(|code| code == EDGETPU_CUSTOM_OP);
    if compiled {
        bail!(
            "model {name} was compiled for the Edge TPU ({EDGETPU_CUSTOM_OP}, which only \
             libedgetpu runs), so backend kind \"{}\" cannot run it: use kind = \"edgetpu\" \
             (--backend edgetpu), or the model it was compiled from",
            kind.as_str()
        );
    }
    let Some(model) = model.filter(|_| kind != BackendKind::Tflite) else {
        return check_any(path, labels, labels_path);
    };
    check_classifier(path, &model, labels, labels_path)
}

/// A model for a `torch` backend, which runs MobileNetV2's shape only: one RGB image in, one
/// vector of class scores out, whose classes the labels (where the model has a file) name
/// exactly.
fn check_classifier(
    path: &Path,
    model: &Model,
    labels: &Labels,
    labels_path: Option<&Path>,
) -> Result<()> {
    let name = path.display();
    let graph = model
        .subgraphs
        .first()
        .with_context(|| format!("model {name} has no subgraph"))?;
    let (&[input], &[output]) = (&*graph.inputs, &*graph.outputs) else {
        bail!(
            "model {name} has {} inputs and {} outputs: the protocol feeds one image and reads \
             one vector of class scores",
            graph.inputs.len(),
            graph.outputs.len()
        );
    };
    let tensor = |index: i32| -> Result<&TensorT> {
        usize::try_from(index)
            .ok()
            .and_then(|i| graph.tensors.get(i))
            .map(|t| &**t)
            .with_context(|| format!("model {name}: tensor {index} does not exist"))
    };
    let (input, output) = (tensor(input)?, tensor(output)?);
    let dims: Vec<i64> = input.shape.iter().map(|&d| i64::from(d)).collect();
    tensor_type(input)
        .and_then(|t| InputSpec::nhwc(&dims, t))
        .with_context(|| format!("model {name}"))?;
    tensor_type(output).with_context(|| format!("model {name}: output"))?;
    let classes: i64 = output.shape.iter().map(|&d| i64::from(d)).product();
    if let Some(labels_path) = labels_path {
        if usize::try_from(classes).ok() != Some(labels.len()) {
            bail!(
                "labels {} name {} classes, model {name} outputs {classes} ({:?}): the labels \
                 do not belong to this model (check the manifest's labels and label_offset)",
                labels_path.display(),
                labels.len(),
                &*output.shape
            );
        }
    }
    Ok(())
}

/// A model for a `tflite` backend, which runs any model of fixed shapes and types it can feed
/// ([`Signature::parse`] says what it refuses): labels only for a classifier, naming its
/// classes.
fn check_any(path: &Path, labels: &Labels, labels_path: Option<&Path>) -> Result<()> {
    let name = path.display();
    let signature = Signature::read(path)?;
    let Some(labels_path) = labels_path else {
        return Ok(());
    };
    if !signature.classifier() {
        bail!(
            "model {name} has labels ({}) but is not a classifier (one RGB image in, one \
             vector of scores out): its inputs are {}; its outputs {}",
            labels_path.display(),
            signature
                .inputs
                .iter()
                .map(|t| t.describe())
                .collect::<Vec<_>>()
                .join(", "),
            signature
                .outputs
                .iter()
                .map(|t| t.describe())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let output = &signature.outputs[0];
    if output.elements() != labels.len() {
        bail!(
            "labels {} name {} classes, model {name} outputs {} ({:?}): the labels \
             do not belong to this model (check the manifest's labels and label_offset)",
            labels_path.display(),
            labels.len(),
            output.elements(),
            output.shape
        );
    }
    Ok(())
}

/// A tensor's element type with its quantization: uint8 and int8 need a scale, which the
/// `tflite` crate would otherwise dereference unchecked (a float model has none).
fn tensor_type(tensor: &TensorT) -> Result<TensorType> {
    let kind = match crate::models::schema::tensor_type(tensor) {
        Ok(TfType::TensorType_UINT8) => "uint8",
        Ok(TfType::TensorType_INT8) => "int8",
        Ok(TfType::TensorType_FLOAT32) => "float32",
        other => bail!(
            "tensor type {} is not one the protocol feeds or reads (uint8, int8 or float32)",
            match other {
                Ok(named) => format!("{named:?}")
                    .trim_start_matches("TensorType_")
                    .to_owned(),
                Err(number) => format!("{number} (not one TF Lite defines)"),
            }
        ),
    };
    let (scale, zero_point) = if tensor.quantization.is_valid() {
        let q = &*tensor.quantization;
        (q.scale.first().copied(), q.zero_point.first().copied())
    } else {
        (None, None)
    };
    super::tensor_type(kind, scale, zero_point).map_err(|e| {
        anyhow::anyhow!(
            "{e}: a quantized model needs the scale and zero point of its input and output \
             (convert it with full integer quantization, or give a float32 model)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `make test` (or the integration tests) fetched the files.
    fn shared_dir() -> std::path::PathBuf {
        crate::models::models_dir()
    }
    use tflite::model::stl::memory::UniquePtr;
    use tflite::model::stl::vector::VectorInsert;

    fn quant_model() -> Model {
        let bytes = std::fs::read(shared_dir().join("mobilenet_v2_1.0_224_quant.tflite")).unwrap();
        Model::from_buffer(&bytes).unwrap()
    }

    fn write(dir: &Path, name: &str, model: &Model) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, model.to_buffer()).unwrap();
        path
    }

    fn err(path: &Path) -> String {
        let e = check(BackendKind::Torch, path, &Labels::default(), None).unwrap_err();
        let msg = format!("{e:#}");
        assert!(!msg.contains('\n'), "{msg}");
        msg
    }

    #[test]
    fn the_real_models_pass_with_their_labels() {
        let labels_path = shared_dir().join("imagenet_labels.txt");
        let labels = Labels::load(&labels_path, 0).unwrap();
        for m in [
            "mobilenet_v2_1.0_224_quant.tflite",
            "tf2_mobilenet_v2_1.0_224_ptq.tflite",
        ] {
            for kind in [BackendKind::Tflite, BackendKind::Torch] {
                check(kind, &shared_dir().join(m), &labels, Some(&labels_path)).unwrap();
            }
        }
    }

    #[test]
    fn a_quantized_tensor_without_quantization_is_named_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = quant_model();
        let input = m.subgraphs[0].inputs[0] as usize;
        // A null quantization table, as a float model's tensors have: the crate's Deref
        // would panic on it.
        m.subgraphs[0].tensors[input].quantization = unsafe { std::mem::zeroed() };
        let path = write(dir.path(), "noquant.tflite", &m);
        let msg = err(&path);
        assert!(
            msg.contains("uint8 tensor has no quantization scale"),
            "{msg}"
        );
        // An empty table: the same.
        let mut m = quant_model();
        m.subgraphs[0].tensors[input].quantization = UniquePtr::default();
        let path = write(dir.path(), "emptyquant.tflite", &m);
        assert!(err(&path).contains("no quantization scale"));
    }

    #[test]
    fn a_float_model_passes() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = quant_model();
        for t in [m.subgraphs[0].inputs[0], m.subgraphs[0].outputs[0]] {
            let t = &mut m.subgraphs[0].tensors[t as usize];
            t.typ = TfType::TensorType_FLOAT32;
            t.quantization = unsafe { std::mem::zeroed() };
        }
        let path = write(dir.path(), "float-io.tflite", &m);
        check(BackendKind::Tflite, &path, &Labels::default(), None).unwrap();
    }

    #[test]
    fn inputs_that_are_not_images_blame_the_model() {
        let dir = tempfile::tempdir().unwrap();
        for (shape, typ, needle) in [
            (
                vec![1, 28, 28],
                TfType::TensorType_UINT8,
                "[1, 28, 28] uint8",
            ),
            (
                vec![1, 224, 224, 1],
                TfType::TensorType_UINT8,
                "[1, 224, 224, 1]",
            ),
            (
                vec![4, 224, 224, 3],
                TfType::TensorType_UINT8,
                "[4, 224, 224, 3]",
            ),
            (vec![1, 224, 224, 3], TfType::TensorType_INT32, "INT32"),
        ] {
            let mut m = quant_model();
            let input = m.subgraphs[0].inputs[0] as usize;
            m.subgraphs[0].tensors[input].shape.assign(shape);
            m.subgraphs[0].tensors[input].typ = typ;
            let msg = err(&write(dir.path(), "shape.tflite", &m));
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
        let msg = err(&write(dir.path(), "s.tflite", &{
            let mut m = quant_model();
            let input = m.subgraphs[0].inputs[0] as usize;
            m.subgraphs[0].tensors[input].shape.assign(vec![1, 28, 28]);
            m
        }));
        assert!(msg.contains("not an image the protocol can feed"), "{msg}");
    }

    #[test]
    fn garbage_truncated_and_edgetpu_models_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(shared_dir().join("mobilenet_v2_1.0_224_quant.tflite")).unwrap();
        let cut = dir.path().join("cut.tflite");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(err(&cut).contains("not a valid TensorFlow Lite model"));
        let empty = dir.path().join("empty.tflite");
        std::fs::write(&empty, b"").unwrap();
        assert!(err(&empty).contains("is empty"));
        let tpu = shared_dir().join("keras_lstm_mnist_ptq_edgetpu.tflite");
        for kind in [BackendKind::Tflite, BackendKind::Torch] {
            let msg = format!(
                "{:#}",
                check(kind, &tpu, &Labels::default(), None).unwrap_err()
            );
            assert!(msg.contains("compiled for the Edge TPU"), "{msg}");
            assert!(msg.contains("kind = \"edgetpu\""), "{msg}");
        }
        check(BackendKind::Edgetpu, &tpu, &Labels::default(), None).unwrap();
    }
}
