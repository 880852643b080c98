//! Float32 weights for the `torch` backend, dequantized from an int8 MobileNetV2 `.tflite`.
//!
//! The float backend must run *the same network* as the int8 engines, or its energy figures
//! would compare two different models. So instead of downloading a separately trained float
//! checkpoint, we take the int8 file's weights and dequantize them: `real = scale × (q −
//! zero_point)`, per tensor (TF1 models) or per output channel (TF2 models), with int32 biases
//! on their own scales. Batch norm is already folded into the convolutions by the converter
//! that made the `.tflite`, so the float network is plain convolutions with biases.
//!
//! The result is a `.safetensors` file next to the model (see [`float_weights_path`]), with
//! PyTorch layouts and these names (53 weight + bias pairs):
//!
//! | name | shape | TF Lite source |
//! |---|---|---|
//! | `stem.{weight,bias}` | `[32, 3, 3, 3]` | first CONV_2D (OHWI → OIHW) |
//! | `blocks.N.expand.{weight,bias}` | `[hidden, in, 1, 1]` | 1×1 CONV_2D; blocks 1..=16 only |
//! | `blocks.N.depthwise.{weight,bias}` | `[hidden, 1, 3, 3]` | DEPTHWISE_CONV_2D (`[1,kh,kw,C]`) |
//! | `blocks.N.project.{weight,bias}` | `[out, hidden, 1, 1]` | 1×1 CONV_2D |
//! | `head.{weight,bias}` | `[1280, 320, 1, 1]` | last 1×1 CONV_2D before pooling |
//! | `classifier.{weight,bias}` | `[1001, 1280]` | 1×1 CONV_2D (TF1, TF2) or FULLY_CONNECTED |
//!
//! `N` runs 0..=16 over the inverted-residual blocks of [`mobilenet_v2_blocks`]. The
//! safetensors `__metadata__` records the source file's SHA-256 (`source_sha256`), its name
//! (`source_model`), the architecture and this naming scheme's version, so a stale file is
//! detected and rebuilt by [`ensure_float_weights`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};
use tflite::model::{BuiltinOperator, Model, TensorT, TensorType};

use super::{schema, sha256_file};

/// The architecture this converter knows: MobileNetV2, width 1.0, 224×224 input.
const ARCHITECTURE: &str = "mobilenet_v2_1.0_224";
/// Version of the tensor naming scheme above; bump it if names or layouts change, and old
/// files are rebuilt.
const LAYOUT_VERSION: &str = "1";
/// Output classes (index 0 is "background").
pub const NUM_CLASSES: usize = 1001;
/// Channels of the stem convolution and of the last 1×1 convolution before pooling.
const STEM_CHANNELS: usize = 32;
const HEAD_CHANNELS: usize = 1280;

/// One inverted-residual block: optional 1×1 expand (when `hidden != input`), 3×3 depthwise
/// with `stride`, 1×1 linear project; a residual add when stride is 1 and `input == output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub input: usize,
    pub hidden: usize,
    pub output: usize,
    pub stride: usize,
}

impl BlockSpec {
    pub fn has_expand(&self) -> bool {
        self.hidden != self.input
    }
    pub fn has_residual(&self) -> bool {
        self.stride == 1 && self.input == self.output
    }
}

/// The 17 blocks of MobileNetV2 1.0 from the paper's (t, c, n, s) table.
pub fn mobilenet_v2_blocks() -> Vec<BlockSpec> {
    const TABLE: [(usize, usize, usize, usize); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let mut blocks = Vec::with_capacity(17);
    let mut input = STEM_CHANNELS;
    for (t, c, n, s) in TABLE {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            blocks.push(BlockSpec {
                input,
                hidden: input * t,
                output: c,
                stride,
            });
            input = c;
        }
    }
    blocks
}

/// How a layer's TF Lite weight maps to PyTorch's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// CONV_2D, OHWI → OIHW.
    Conv,
    /// DEPTHWISE_CONV_2D, `[1, kh, kw, C]` → `[C, 1, kh, kw]`.
    Depthwise,
    /// 1×1 CONV_2D `[out, 1, 1, in]` or FULLY_CONNECTED `[out, in]` → `[out, in]`.
    Linear,
}

/// A layer of the fixed layout: its name prefix, kind and PyTorch weight shape.
struct Layer {
    name: String,
    op: Op,
    shape: Vec<usize>,
}

/// The 53 layers in the order the `.tflite` graph computes them.
fn layout() -> Vec<Layer> {
    let layer = |name: String, op, shape: &[usize]| Layer {
        name,
        op,
        shape: shape.to_vec(),
    };
    let mut layers = vec![layer("stem".into(), Op::Conv, &[STEM_CHANNELS, 3, 3, 3])];
    for (i, b) in mobilenet_v2_blocks().iter().enumerate() {
        if b.has_expand() {
            let shape = [b.hidden, b.input, 1, 1];
            layers.push(layer(format!("blocks.{i}.expand"), Op::Conv, &shape));
        }
        let shape = [b.hidden, 1, 3, 3];
        layers.push(layer(
            format!("blocks.{i}.depthwise"),
            Op::Depthwise,
            &shape,
        ));
        let shape = [b.output, b.hidden, 1, 1];
        layers.push(layer(format!("blocks.{i}.project"), Op::Conv, &shape));
    }
    let last = mobilenet_v2_blocks().last().map_or(0, |b| b.output);
    layers.push(layer("head".into(), Op::Conv, &[HEAD_CHANNELS, last, 1, 1]));
    layers.push(layer(
        "classifier".into(),
        Op::Linear,
        &[NUM_CLASSES, HEAD_CHANNELS],
    ));
    layers
}

/// Every tensor name and PyTorch shape the converted file holds, in graph order.
pub fn float_weight_names() -> Vec<(String, Vec<usize>)> {
    layout()
        .into_iter()
        .flat_map(|l| {
            let bias = vec![l.shape[0]];
            [
                (format!("{}.weight", l.name), l.shape),
                (format!("{}.bias", l.name), bias),
            ]
        })
        .collect()
}

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    /// Tensors written (106: 53 weights and 53 biases).
    pub tensors: usize,
    /// Float parameters in all of them.
    pub parameters: usize,
    /// SHA-256 of the `.tflite` the weights came from.
    pub source_sha256: String,
}

/// Where [`ensure_float_weights`] keeps a model's float weights: `<folder>/<stem>.safetensors`.
pub fn float_weights_path(tflite: &Path) -> PathBuf {
    tflite.with_extension("safetensors")
}

/// Dequantizes the MobileNetV2 in `tflite` into float32 safetensors at `out` (written
/// atomically). Fails with a one-line error when the file is not a TF Lite model or its
/// layers do not match MobileNetV2 1.0/224 exactly.
pub fn convert(tflite: &Path, out: &Path) -> Result<ConvertReport> {
    let bytes =
        std::fs::read(tflite).with_context(|| format!("cannot read {}", tflite.display()))?;
    let sha = super::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let tensors = dequantize_model(&bytes)
        .with_context(|| format!("cannot convert {} to float weights", tflite.display()))?;
    let model_name = tflite
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let metadata = HashMap::from([
        ("source_sha256".to_string(), sha.clone()),
        ("source_model".to_string(), model_name),
        ("architecture".to_string(), ARCHITECTURE.to_string()),
        ("layout_version".to_string(), LAYOUT_VERSION.to_string()),
    ]);
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)?;
            Ok((name.as_str(), view))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .context("cannot build safetensors")?;
    let file = safetensors::serialize(views, Some(metadata)).context("cannot serialize")?;
    // A reader, or a second process converting at the same time, never sees half a file.
    crate::atomic::replace(out, &file)?;
    Ok(ConvertReport {
        tensors: tensors.len(),
        parameters: tensors.iter().map(|(_, _, d)| d.len() / 4).sum(),
        source_sha256: sha,
    })
}

/// The float weights of `tflite`, converting first when they are missing, unreadable, or were
/// made from other bytes or by another naming scheme.
pub fn ensure_float_weights(tflite: &Path) -> Result<PathBuf> {
    let out = float_weights_path(tflite);
    let sha = sha256_file(tflite).with_context(|| format!("cannot read {}", tflite.display()))?;
    if !is_current(&out, &sha) {
        convert(tflite, &out)?;
    }
    Ok(out)
}

/// Whether `path` is a complete conversion of the file with SHA-256 `sha`.
fn is_current(path: &Path, sha: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let Ok(st) = SafeTensors::deserialize(&bytes) else {
        return false;
    };
    let Ok((_, meta)) = SafeTensors::read_metadata(&bytes) else {
        return false;
    };
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| meta.get(k).map(String::as_str);
    get("source_sha256") == Some(sha)
        && get("layout_version") == Some(LAYOUT_VERSION)
        && float_weight_names().iter().all(|(name, shape)| {
            st.tensor(name)
                .is_ok_and(|t| t.dtype() == Dtype::F32 && t.shape() == shape.as_slice())
        })
}

/// `(name, PyTorch shape, little-endian f32 bytes)` of every tensor, in graph order.
pub type Tensors = Vec<(String, Vec<usize>, Vec<u8>)>;

/// Reads the bytes of an int8 MobileNetV2 `.tflite` (TF Lite's flatbuffer verifier, then the
/// layers) into float tensors. Any bytes give a one-line error or the tensors, never a panic:
/// the entry point of the `model_reader` fuzz target and of the fuzz smoke tests.
pub fn dequantize_model(bytes: &[u8]) -> Result<Tensors> {
    let model = Model::from_buffer(bytes).context("not a TensorFlow Lite model")?;
    let graph = match model.subgraphs.first() {
        Some(g) if model.subgraphs.len() == 1 => g,
        _ => bail!("expected one subgraph, found {}", model.subgraphs.len()),
    };
    let layers = layout();
    let mut out = Vec::with_capacity(layers.len() * 2);
    let mut found = 0;
    for op in graph.operators.iter() {
        let code = model
            .operator_codes
            .get(op.opcode_index as usize)
            .map(|c| schema::builtin_code(c))
            .context("operator with an unknown opcode index")?;
        const CONV: i32 = BuiltinOperator::BuiltinOperator_CONV_2D as i32;
        const DEPTHWISE: i32 = BuiltinOperator::BuiltinOperator_DEPTHWISE_CONV_2D as i32;
        const LINEAR: i32 = BuiltinOperator::BuiltinOperator_FULLY_CONNECTED as i32;
        let kind = match code {
            CONV => Op::Conv,
            DEPTHWISE => Op::Depthwise,
            LINEAR => Op::Linear,
            _ => continue,
        };
        found += 1;
        let Some(layer) = layers.get(found - 1) else {
            continue; // counted, reported below
        };
        let expected_kind = match (layer.op, kind) {
            (Op::Linear, Op::Conv | Op::Linear) => true,
            (want, got) => want == got,
        };
        if !expected_kind {
            bail!(
                "not a MobileNetV2 1.0/224: layer {found} ({}) is {code:?}, expected {:?}",
                layer.name,
                layer.op
            );
        }
        let (&[_, w, b, ..], true) = (&*op.inputs, op.inputs.len() >= 3) else {
            bail!("layer {found} ({}) has no weight and bias", layer.name);
        };
        let (wshape, bshape) = (tensor_shape(&model, w)?, tensor_shape(&model, b)?);
        let torch_shape = torch_shape(layer.op, &wshape);
        if torch_shape.as_ref() != Some(&layer.shape) || bshape != [layer.shape[0]] {
            bail!(
                "not a MobileNetV2 1.0/224: layer {found} ({}) has weight {wshape:?} and bias {bshape:?} in TF Lite layout, expected {:?} in PyTorch layout and bias [{}]",
                layer.name,
                layer.shape,
                layer.shape[0]
            );
        }
        let weight = read_tensor(&model, w)
            .with_context(|| format!("layer {found} ({}) weight", layer.name))?;
        let bias = read_tensor(&model, b)
            .with_context(|| format!("layer {found} ({}) bias", layer.name))?;
        let weight = match layer.op {
            // OHWI → OIHW.
            Op::Conv => permute(&weight, &wshape, [0, 3, 1, 2]),
            // [1, kh, kw, C] → [C, 1, kh, kw].
            Op::Depthwise => permute(&weight, &wshape, [3, 0, 1, 2]),
            // A 1×1 convolution's [out, 1, 1, in] is the linear layer's [out, in] in memory.
            Op::Linear => weight,
        };
        for (suffix, shape, data) in [
            ("weight", layer.shape.clone(), weight),
            ("bias", bshape, bias),
        ] {
            let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.push((format!("{}.{suffix}", layer.name), shape, bytes));
        }
    }
    if found != layers.len() {
        bail!(
            "not a MobileNetV2 1.0/224: {found} convolution and fully-connected layers, expected {}",
            layers.len()
        );
    }
    Ok(out)
}

fn tensor(model: &Model, index: i32) -> Result<&TensorT> {
    usize::try_from(index)
        .ok()
        .and_then(|i| model.subgraphs[0].tensors.get(i))
        .map(|t| &**t)
        .with_context(|| format!("tensor index {index} out of range"))
}

/// A tensor's TF Lite shape.
fn tensor_shape(model: &Model, index: i32) -> Result<Vec<usize>> {
    tensor(model, index)?
        .shape
        .iter()
        .map(|&d| usize::try_from(d).context("negative dimension"))
        .collect()
}

/// A constant tensor's real values, in TF Lite order.
fn read_tensor(model: &Model, index: i32) -> Result<Vec<f32>> {
    let tensor = tensor(model, index)?;
    let shape = tensor_shape(model, index)?;
    let numel = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .with_context(|| format!("tensor {index} has an impossible shape {shape:?}"))?;
    let data = model
        .buffers
        .get(tensor.buffer as usize)
        .map(|b| &*b.data)
        .unwrap_or_default();
    // Raw values as f64, which holds every int32 exactly (f32 does not above 2^24).
    let typ = schema::tensor_type(tensor);
    let (size, raw): (usize, fn(&[u8]) -> f64) = match typ {
        Ok(TensorType::TensorType_UINT8) => (1, |b| f64::from(b[0])),
        Ok(TensorType::TensorType_INT8) => (1, |b| f64::from(b[0] as i8)),
        Ok(TensorType::TensorType_INT32) => (4, |b| {
            f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }),
        Ok(TensorType::TensorType_FLOAT32) => (4, |b| {
            f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }),
        Ok(other) => bail!("unsupported tensor type {other:?}"),
        Err(number) => bail!("tensor type {number} is not one TF Lite defines"),
    };
    if data.len() != numel * size {
        bail!(
            "tensor {index} holds {} bytes, its shape {shape:?} needs {}",
            data.len(),
            numel * size
        );
    }
    let float = typ == Ok(TensorType::TensorType_FLOAT32);
    let (scales, zeros, axis): (&[f32], &[i64], usize) = if tensor.quantization.is_valid() {
        let q = &*tensor.quantization;
        let axis = usize::try_from(q.quantized_dimension).unwrap_or(usize::MAX);
        (&*q.scale, &*q.zero_point, axis)
    } else {
        (&[], &[], 0)
    };
    // Per tensor: one scale. Per channel: one per index of `axis`; a channel's index is
    // `(flat / stride) % dim` where stride is the product of the dimensions after `axis`.
    let (channels, stride) = match scales.len() {
        0 if float => (1, 1),
        0 => bail!("quantized tensor {index} has no scale"),
        1 => (1, 1),
        n if shape.get(axis) == Some(&n) => (n, shape[axis + 1..].iter().product()),
        n => bail!("tensor {index} has {n} scales for shape {shape:?} along axis {axis}"),
    };
    if !(zeros.len() <= 1 || zeros.len() == channels) {
        bail!(
            "tensor {index} has {} zero points for {channels} scales",
            zeros.len()
        );
    }
    let values = data
        .chunks_exact(size)
        .enumerate()
        .map(|(i, b)| {
            let c = (i / stride) % channels;
            let q = raw(b);
            if scales.is_empty() {
                return q as f32;
            }
            let zero = zeros
                .get(if zeros.len() == 1 { 0 } else { c })
                .copied()
                .unwrap_or(0);
            (f64::from(scales[c]) * (q - zero as f64)) as f32
        })
        .collect();
    Ok(values)
}

/// The PyTorch shape of a TF Lite weight of shape `s` used by `op`; None if `op` cannot
/// have that shape.
fn torch_shape(op: Op, s: &[usize]) -> Option<Vec<usize>> {
    match (op, s) {
        (Op::Conv, &[o, h, w, i]) => Some(vec![o, i, h, w]),
        (Op::Depthwise, &[1, h, w, c]) => Some(vec![c, 1, h, w]),
        (Op::Linear, &[o, 1, 1, i] | &[o, i]) => Some(vec![o, i]),
        _ => None,
    }
}

/// Transposes a row-major 4-D array: output dimension `k` is input dimension `perm[k]`.
fn permute(data: &[f32], dims: &[usize], perm: [usize; 4]) -> Vec<f32> {
    let strides = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1];
    let (od, os) = (perm.map(|p| dims[p]), perm.map(|p| strides[p]));
    let mut out = Vec::with_capacity(data.len());
    for a in 0..od[0] {
        for b in 0..od[1] {
            for c in 0..od[2] {
                for d in 0..od[3] {
                    out.push(data[a * os[0] + b * os[1] + c * os[2] + d * os[3]]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `make test` fetched and converted the files.
    fn model(name: &str) -> PathBuf {
        crate::models::models_dir().join(name)
    }

    const MODELS: [&str; 2] = [
        "mobilenet_v2_1.0_224_quant.tflite",
        "tf2_mobilenet_v2_1.0_224_ptq.tflite",
    ];

    /// A copy of a shared model in a fresh folder, so tests never write next to the originals.
    fn copy(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::copy(model(name), &path).unwrap();
        (dir, path)
    }

    fn read_f32(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        let data = t.data().chunks_exact(4);
        let values = data.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        (t.shape().to_vec(), values.collect())
    }

    #[test]
    fn layout_has_53_pairs_with_standard_shapes() {
        let names = float_weight_names();
        assert_eq!(names.len(), 106);
        let blocks = mobilenet_v2_blocks();
        assert_eq!(blocks.len(), 17);
        assert!(!blocks[0].has_expand() && blocks[1].has_expand());
        assert_eq!(blocks.iter().filter(|b| b.has_residual()).count(), 10);
        let shape = |n: &str| names.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(shape("blocks.3.expand.weight"), [144, 24, 1, 1]);
        assert_eq!(shape("blocks.16.depthwise.bias"), [960]);
        assert_eq!(shape("blocks.16.project.weight"), [320, 960, 1, 1]);
        assert_eq!(shape("classifier.weight"), [1001, 1280]);
    }

    #[test]
    fn both_models_convert_to_the_layout() {
        for name in MODELS {
            let (dir, path) = copy(name);
            let out = dir.path().join("w.safetensors");
            let report = convert(&path, &out).unwrap();
            assert_eq!(report.tensors, 106);
            assert_eq!(report.source_sha256, sha256_file(&path).unwrap());
            let bytes = std::fs::read(&out).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            assert_eq!(st.len(), 106);
            let mut params = 0;
            for (n, shape) in float_weight_names() {
                let (s, v) = read_f32(&st, &n);
                assert_eq!(s, shape, "{n}");
                assert!(v.iter().all(|x| x.is_finite()), "{n}");
                params += v.len();
            }
            assert_eq!(params, report.parameters);
            // Counted independently from the (t, c, n, s) table, biases included.
            assert_eq!(params, 3_489_097, "{name}");
            let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
            let meta = meta.metadata().clone().unwrap();
            assert_eq!(meta["source_sha256"], report.source_sha256);
            assert_eq!(meta["source_model"], name.trim_end_matches(".tflite"));
        }
    }

    /// Finds the `nth` op of `code` in the graph and returns its (weight, bias) tensor indices.
    fn op_inputs(m: &Model, code: BuiltinOperator, nth: usize) -> (usize, usize) {
        let g = &m.subgraphs[0];
        let op = g
            .operators
            .iter()
            .filter(|op| m.operator_codes[op.opcode_index as usize].builtin_code == code)
            .nth(nth)
            .unwrap();
        (op.inputs[1] as usize, op.inputs[2] as usize)
    }

    /// Hand-computed values from the raw flatbuffer bytes against the converted file: TF1's
    /// per-tensor uint8 stem and TF2's per-channel int8 depthwise (quantized along axis 3).
    #[test]
    fn dequantized_values_match_a_hand_computation() {
        for (name, code, nth, key) in [
            (
                MODELS[0],
                BuiltinOperator::BuiltinOperator_CONV_2D,
                0,
                "stem",
            ),
            (
                MODELS[1],
                BuiltinOperator::BuiltinOperator_DEPTHWISE_CONV_2D,
                1,
                "blocks.1.depthwise",
            ),
        ] {
            let (dir, path) = copy(name);
            let out = dir.path().join("w.safetensors");
            convert(&path, &out).unwrap();
            let bytes = std::fs::read(&out).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let src = std::fs::read(&path).unwrap();
            let m = Model::from_buffer(&src).unwrap();
            let (w, b) = op_inputs(&m, code, nth);
            let g = &m.subgraphs[0];
            let (wt, bt) = (&g.tensors[w], &g.tensors[b]);
            let (wq, bq) = (&*wt.quantization, &*bt.quantization);
            let raw = &m.buffers[wt.buffer as usize].data;
            let (_, weights) = read_f32(&st, &format!("{key}.weight"));
            let (_, biases) = read_f32(&st, &format!("{key}.bias"));
            if key == "stem" {
                // OHWI [32,3,3,3]; element o=5, h=1, w=2, i=0 → OIHW index 5*27 + 0*9 + 1*3 + 2.
                assert_eq!(wt.typ, TensorType::TensorType_UINT8);
                assert_eq!(wq.scale.len(), 1);
                let q = raw[5 * 27 + 9 + 2 * 3] as f32; // h = 1 → 9, w = 2 → 2·3
                let want = wq.scale[0] * (q - wq.zero_point[0] as f32);
                assert_eq!(weights[5 * 27 + 3 + 2], want);
            } else {
                // [1,3,3,96] per channel along axis 3; element h=2, w=1, c=50 → [50,0,2,1].
                assert_eq!(wt.typ, TensorType::TensorType_INT8);
                assert_eq!((wq.quantized_dimension, wq.scale.len()), (3, 96));
                let q = raw[2 * 3 * 96 + 96 + 50] as i8 as f32;
                let want = wq.scale[50] * (q - wq.zero_point[50] as f32);
                assert_eq!(weights[50 * 9 + 2 * 3 + 1], want);
                assert_ne!(wq.scale[50], wq.scale[0]);
            }
            // Bias 7: int32 on its own scale (per channel in TF2).
            let braw = &(*m.buffers[bt.buffer as usize].data)[28..32];
            let c = if bq.scale.len() == 1 { 0 } else { 7 };
            let q = f64::from(i32::from_le_bytes(braw.try_into().unwrap()));
            let want = (f64::from(bq.scale[c]) * q) as f32;
            assert_eq!(biases[7], want);
        }
    }

    #[test]
    fn garbage_and_other_networks_fail_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("w.safetensors");
        let junk = dir.path().join("junk.tflite");
        std::fs::write(&junk, b"definitely not a flatbuffer, just some bytes").unwrap();
        let err = format!("{:#}", convert(&junk, &out).unwrap_err());
        assert!(err.contains("not a TensorFlow Lite model"), "{err}");
        assert!(!err.contains('\n') && !out.exists());

        // A valid TF Lite file whose head convolution has 1000 instead of 1280 channels.
        let src = std::fs::read(model(MODELS[0])).unwrap();
        let mut m = Model::from_buffer(&src).unwrap();
        let (w, _) = op_inputs(&m, BuiltinOperator::BuiltinOperator_CONV_2D, 34);
        m.subgraphs[0].tensors[w].shape[0] = 1000;
        let other = dir.path().join("other.tflite");
        std::fs::write(&other, m.to_buffer()).unwrap();
        let err = format!("{:#}", convert(&other, &out).unwrap_err());
        assert!(
            err.contains("not a MobileNetV2 1.0/224") && err.contains("(head)"),
            "{err}"
        );
        assert!(!err.contains('\n') && !out.exists());
    }

    #[test]
    fn ensure_is_idempotent_and_follows_the_source() {
        let (dir, path) = copy(MODELS[0]);
        let out = ensure_float_weights(&path).unwrap();
        assert_eq!(
            out,
            dir.path().join("mobilenet_v2_1.0_224_quant.safetensors")
        );
        let first = std::fs::metadata(&out).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(ensure_float_weights(&path).unwrap(), out);
        assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), first);

        // Other bytes under the same name: re-converted.
        std::fs::copy(model(MODELS[1]), &path).unwrap();
        ensure_float_weights(&path).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let sha = meta.metadata().as_ref().unwrap()["source_sha256"].clone();
        assert_eq!(sha, sha256_file(&path).unwrap());

        // A truncated weights file: re-converted; no temporary files left behind.
        std::fs::write(&out, &bytes[..1000]).unwrap();
        ensure_float_weights(&path).unwrap();
        let again = std::fs::read(&out).unwrap();
        let (a, b) = (
            SafeTensors::deserialize(&again).unwrap(),
            SafeTensors::deserialize(&bytes).unwrap(),
        );
        assert!(float_weight_names()
            .iter()
            .all(|(n, _)| a.tensor(n).unwrap().data() == b.tensor(n).unwrap().data()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    /// Stable-Rust stand-in for the `model_reader` fuzz target (fuzz/): a fixed number of
    /// arbitrary and mutated `.tflite` files through the reader, which must return, never
    /// panic.
    mod fuzz_smoke {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        use std::sync::OnceLock;

        use proptest::prelude::*;

        use super::*;

        /// The real quant model, read once.
        fn real() -> &'static [u8] {
            static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
            BYTES.get_or_init(|| std::fs::read(model(MODELS[0])).unwrap())
        }

        fn reads_without_panic(bytes: &[u8]) -> Result<bool, TestCaseError> {
            let outcome = catch_unwind(AssertUnwindSafe(|| dequantize_model(bytes).is_ok()));
            prop_assert!(
                outcome.is_ok(),
                "the model reader panicked on {} bytes",
                bytes.len()
            );
            Ok(outcome.unwrap_or(false))
        }

        /// Where a mutation lands: the flatbuffer's root offset and file identifier (the
        /// first 8 bytes), its tables (the last 64 KiB of TOCO's files: tensors, operators,
        /// quantization, names; the weights come before them), or anywhere.
        fn position() -> impl Strategy<Value = usize> {
            let len = real().len();
            prop_oneof![
                1 => 0..8usize,
                3 => (len - 65_536)..len,
                1 => 0..len,
            ]
        }

        /// A mutation of the file: a byte replaced, a little-endian 32-bit value (offsets,
        /// lengths, indices) overwritten with an extreme, or the file cut short.
        #[derive(Debug, Clone)]
        enum Edit {
            Byte(usize, u8),
            Word(usize, u32),
            Truncate(usize),
        }

        fn edits() -> impl Strategy<Value = Vec<Edit>> {
            let word =
                prop::sample::select(vec![0, 1, 0x7FFF_FFFF, 0x8000_0000, u32::MAX, 3_610_798]);
            let edit = prop_oneof![
                4 => (position(), any::<u8>()).prop_map(|(i, b)| Edit::Byte(i, b)),
                4 => (position(), word).prop_map(|(i, w)| Edit::Word(i, w)),
                1 => position().prop_map(Edit::Truncate),
            ];
            proptest::collection::vec(edit, 1..8)
        }

        /// Found by the mutated-model smoke test: a tensor type byte outside TF Lite's enum
        /// passes the flatbuffer verifier (it does not check enum ranges), and matching on it
        /// as the bindings' Rust enum crashed the process (SIGSEGV: undefined behaviour; it is
        /// read as a number now, `models::schema`). The byte is located by serialising the
        /// model twice with the first weight's type changed.
        #[test]
        fn fuzz_regression_tensor_type_outside_the_enum_is_an_error() {
            let mut m = Model::from_buffer(real()).unwrap();
            let (w, _) = op_inputs(&m, BuiltinOperator::BuiltinOperator_CONV_2D, 0);
            m.subgraphs[0].tensors[w].typ = TensorType::TensorType_INT8;
            let mut bytes = m.to_buffer();
            m.subgraphs[0].tensors[w].typ = TensorType::TensorType_INT16;
            let other = m.to_buffer();
            assert_eq!(bytes.len(), other.len());
            let differ: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != other[i]).collect();
            assert_eq!(differ.len(), 1, "one type byte");
            bytes[differ[0]] = 0x7F;
            let outcome = catch_unwind(AssertUnwindSafe(|| dequantize_model(&bytes).map(|_| ())));
            let err = format!("{:#}", outcome.expect("no panic").unwrap_err());
            assert!(
                err.contains("tensor type 127 is not one TF Lite defines"),
                "{err}"
            );
        }

        proptest! {
            // Each mutated case reads a 3.6 MB model (about 15 ms in a release build).
            #![proptest_config(crate::proptest_config(48))]

            /// Random bytes are never a MobileNetV2.
            #[test]
            fn fuzz_smoke_model_reader_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
                prop_assert!(!reads_without_panic(&bytes)?, "random bytes read as a model");
            }

            #[test]
            fn fuzz_smoke_model_reader_mutated_model(edits in edits()) {
                let mut bytes = real().to_vec();
                for edit in &edits {
                    match *edit {
                        Edit::Byte(i, b) => {
                            let i = i.min(bytes.len() - 1);
                            bytes[i] = b;
                        }
                        Edit::Word(i, w) => {
                            let i = i.min(bytes.len().saturating_sub(4));
                            bytes[i..i + 4].copy_from_slice(&w.to_le_bytes());
                        }
                        Edit::Truncate(n) => bytes.truncate(n.min(bytes.len())),
                    }
                    if bytes.len() < 4 {
                        break;
                    }
                }
                reads_without_panic(&bytes)?;
            }
        }
    }
}
