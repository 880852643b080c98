//! A TF Lite model's inputs and outputs (name, element type, shape, quantization), read from
//! its flatbuffer before any engine sees it, and what the rig feeds each input.
//!
//! Read here rather than asked of each engine: TF Lite 1.15's schema has no `shape_signature`
//! (the field that marks a dimension dynamic), LiteRT orders a signature's tensors its own
//! way, and the Edge TPU's engine is another library again. One reading gives every engine the
//! same description, `run.json` records it, and the feeding code ([`super::feed`]) works from it.
//!
//! The reader walks the flatbuffer by hand with bounds-checked reads (no `unsafe`): only the
//! few fields below are needed, at their `schema.fbs` slots.

use std::ops::Range;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::input::TensorType;

/// The element types the rig feeds and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    Uint8,
    Int8,
    Int16,
    Float16,
    Float32,
}

impl ElementType {
    /// From TF Lite's `TensorType` code (schema.fbs).
    fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => Self::Float32,
            1 => Self::Float16,
            3 => Self::Uint8,
            7 => Self::Int16,
            9 => Self::Int8,
            _ => return None,
        })
    }

    /// The C runtime's `TfLiteType` code (not the schema's): what TF Lite's interpreter,
    /// LiteRT's `LiteRtElementType` and the Edge TPU's C API report.
    pub fn c_type(self) -> u32 {
        match self {
            Self::Float32 => 1,
            Self::Uint8 => 3,
            Self::Int16 => 7,
            Self::Int8 => 9,
            Self::Float16 => 10,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Uint8 => "uint8",
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Float16 => "float16",
            Self::Float32 => "float32",
        }
    }
}

/// TF Lite's names of the type codes it defines and the rig does not feed.
fn unsupported_name(code: i8) -> String {
    const NAMES: [&str; 18] = [
        "float32",
        "float16",
        "int32",
        "uint8",
        "int64",
        "string",
        "bool",
        "int16",
        "complex64",
        "int8",
        "float64",
        "complex128",
        "uint64",
        "resource",
        "variant",
        "uint32",
        "uint16",
        "int4",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or(format!("{code} (not one TF Lite defines)"), |n| {
            (*n).to_owned()
        })
}

/// Per-tensor quantization: `real = scale × (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i64,
}

/// The seed of the synthetic inputs: the same bytes on every run, every machine and every
/// engine, so two runs of one model compute the same thing. (2019: the year of the method.)
/// Here, beside [`Fed::Synthetic`], which names it; `feed` fills the inputs with it.
pub const SEED: u64 = 2019;

/// What the rig puts into an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fed {
    /// The rig's image, resized to the tensor's height and width (grayscale for 1 channel),
    /// quantized with the tensor's own parameters, repeated over its batch.
    Image,
    /// Seeded synthetic data, the same every run ([`SEED`]).
    Synthetic,
}

/// One input or output of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    pub name: String,
    #[serde(rename = "type")]
    pub dtype: ElementType,
    pub shape: Vec<i64>,
    /// None: a float tensor, or an integer one without parameters (fed and read raw).
    pub quantization: Option<Quantization>,
    /// Inputs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fed: Option<Fed>,
    /// The model marks the leading (batch) dimension dynamic (-1 in its `shape_signature`),
    /// the only dimension the rig lets be: the tensor runs at the size `shape` gives it, or
    /// at a batch. Left out of run.json where false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_batch: bool,
}

impl Tensor {
    /// Elements in the tensor.
    pub fn elements(&self) -> usize {
        self.shape.iter().map(|&d| d as usize).product()
    }

    /// Bytes in the tensor.
    pub fn bytes(&self) -> usize {
        self.elements() * self.tensor_type().size()
    }

    /// The type with its quantization; an integer tensor without parameters reads raw (scale 1,
    /// zero point 0).
    pub fn tensor_type(&self) -> TensorType {
        let (scale, zero_point) = self
            .quantization
            .map_or((1.0, 0), |q| (q.scale, q.zero_point as i32));
        match self.dtype {
            ElementType::Uint8 => TensorType::U8 { scale, zero_point },
            ElementType::Int8 => TensorType::I8 { scale, zero_point },
            ElementType::Int16 => TensorType::I16 { scale, zero_point },
            ElementType::Float16 => TensorType::F16,
            ElementType::Float32 => TensorType::F32,
        }
    }

    /// Whether an engine's per-tensor quantization, (scale, zero point) where it reports one,
    /// agrees with the model file's: where either has none there is nothing to disagree on.
    pub fn quantization_agrees(&self, engine: Option<(f32, i64)>) -> bool {
        match (engine, self.quantization) {
            (Some((scale, zero_point)), Some(q)) => (scale, zero_point) == (q.scale, q.zero_point),
            _ => true,
        }
    }

    /// The tensor of one image of a batch of `batch`: its leading dimension divided by it.
    pub fn one_image(&self, batch: usize) -> Tensor {
        let mut t = self.clone();
        if let Some(d) = t.shape.first_mut() {
            *d /= batch as i64;
        }
        t
    }

    /// NHWC with 1 or 3 channels: an input the rig's image can fill.
    pub fn is_image(&self) -> bool {
        matches!(self.shape[..], [n, h, w, 1 | 3] if n >= 1 && h >= 1 && w >= 1)
    }

    /// "input_1 [1, 224, 224, 3] uint8".
    pub fn describe(&self) -> String {
        format!("{} {:?} {}", self.name, self.shape, self.dtype.name())
    }
}

/// A model's inputs and outputs, in the order of its first subgraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<Tensor>,
    /// Images per inference the shapes are for: 1 as the model file gives them, or the batch
    /// of an Offline run ([`Signature::batched`]), every leading dimension then that many
    /// times the model's, as the engine ran it. Left out of run.json at 1, as folders written
    /// before batches have it.
    #[serde(default = "one_image", skip_serializing_if = "is_one_image")]
    pub batch: usize,
}

fn one_image() -> usize {
    1
}

fn is_one_image(batch: &usize) -> bool {
    *batch == 1
}

impl Signature {
    /// Reads the signature of the model file at `path`.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("model {}", path.display()))
    }

    /// Reads the signature of a model's bytes; refuses a type the rig cannot feed or read and a
    /// dynamic shape, naming the tensor.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let fb = Flatbuffer(bytes);
        let model = fb.root().context("not a TensorFlow Lite flatbuffer")?;
        let graph = fb
            .vector_tables(model, 2)?
            .first()
            .copied()
            .context("no subgraph")?;
        let tensors = fb.vector_tables(graph, 0)?;
        let inputs = fb
            .vector_i32(graph, 1)?
            .unwrap_or_default()
            .into_iter()
            .map(|i| read_tensor(&fb, &tensors, i, true))
            .collect::<Result<Vec<_>>>()?;
        let outputs = fb
            .vector_i32(graph, 2)?
            .unwrap_or_default()
            .into_iter()
            .map(|i| read_tensor(&fb, &tensors, i, false))
            .collect::<Result<Vec<_>>>()?;
        if inputs.is_empty() || outputs.is_empty() {
            bail!(
                "it has {} inputs and {} outputs: nothing to feed or nothing to read",
                inputs.len(),
                outputs.len()
            );
        }
        Ok(Self {
            inputs,
            outputs,
            batch: 1,
        })
    }

    /// The signature at `batch` images per inference: every input's and output's leading
    /// dimension `batch` times the model's, as an engine that resizes the inputs' leading
    /// dimension runs it. Refused in one line naming the input where the model has no batch
    /// to grow: an input without a leading dimension (a scalar) or one that fixes it above 1
    /// (its one call already holds several of something, so N calls' worth would not be N
    /// images). Whether every output follows the inputs is the engine's to say, once resized.
    /// At batch 1, the signature as it is.
    pub fn batched(&self, batch: usize) -> Result<Signature> {
        if self.batch != 1 {
            bail!("the signature is already at batch {}", self.batch);
        }
        if batch == 1 {
            return Ok(self.clone());
        }
        for t in &self.inputs {
            match t.shape.first() {
                None => bail!(
                    "input {} is a scalar, without a batch dimension: the model cannot take a \
                     batch of {batch} (run it at batch 1)",
                    t.name
                ),
                Some(&d) if d != 1 => bail!(
                    "input {} {:?} fixes its leading (batch) dimension at {d}, not 1: the model \
                     cannot take a batch of {batch} images (run it at batch 1)",
                    t.name,
                    t.shape
                ),
                Some(_) => {}
            }
        }
        if let Some(t) = self.outputs.iter().find(|t| t.shape.is_empty()) {
            bail!(
                "output {} is a scalar, without a batch dimension: the model cannot give a \
                 batch of {batch} results (run it at batch 1)",
                t.name
            );
        }
        let grow = |t: &Tensor| {
            let mut t = t.clone();
            t.shape[0] *= batch as i64;
            t
        };
        Ok(Signature {
            inputs: self.inputs.iter().map(grow).collect(),
            outputs: self.outputs.iter().map(grow).collect(),
            batch,
        })
    }

    /// A classifier as the 2019 method knows one: one RGB image in, one vector of class scores
    /// out (`[1, N]` or `[N]`), per image of the batch. Only such a model's top-1 is
    /// reported; it is what the protocol ran before it ran any model.
    pub fn classifier(&self) -> bool {
        let batch = self.batch as i64;
        matches!(
            (&self.inputs[..], &self.outputs[..]),
            ([input], [output])
                if matches!(input.shape[..], [n, _, _, 3] if n == batch)
                    && (matches!(output.shape[..], [n, _] if n == batch)
                        || (batch == 1 && matches!(output.shape[..], [_])))
        )
    }

    /// Input bytes of one image, all inputs together: what the runner prepares (an engine
    /// running a batch replicates them).
    pub fn input_bytes(&self) -> usize {
        self.inputs
            .iter()
            .map(|t| t.one_image(self.batch).bytes())
            .sum()
    }

    /// Where each input's bytes lie in one image's prepared input ([`Signature::input_bytes`]
    /// of them), in the inputs' order.
    pub fn input_ranges(&self) -> Vec<Range<usize>> {
        let mut at = 0;
        self.inputs
            .iter()
            .map(|t| {
                let bytes = t.one_image(self.batch).bytes();
                at += bytes;
                at - bytes..at
            })
            .collect()
    }

    /// Output `index`'s bytes of one image: where a batch's first image's result ends.
    pub fn output_bytes_per_image(&self, index: usize) -> usize {
        self.outputs[index].one_image(self.batch).bytes()
    }

    /// One line: what each input is fed. "input [1, 224, 224, 3] uint8: image; ..."
    pub fn fed_line(&self) -> String {
        self.inputs
            .iter()
            .map(|t| {
                let fed = match t.fed {
                    Some(Fed::Image) => "the image".to_owned(),
                    _ => format!("synthetic data (seed {})", SEED),
                };
                format!("{}: {fed}", t.describe())
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Walks the whole model (every buffer, tensor and operator of every subgraph), each offset
/// and length within the file: what LiteRT reads without a check (a truncated file segfaults
/// it). For a model TF Lite 1.15's verifier refuses only because its schema predates the
/// model's operators (their options are a union member it does not know).
pub fn check_structure(bytes: &[u8]) -> Result<()> {
    let fb = Flatbuffer(bytes);
    if bytes.get(4..8) != Some(b"TFL3") {
        bail!("no TFL3 identifier");
    }
    let model = fb.root()?;
    for buffer in fb.vector_tables(model, 4)? {
        fb.vector(buffer, 0, 1)?;
    }
    for code in fb.vector_tables(model, 1)? {
        fb.string(code, 1)?;
    }
    for graph in fb.vector_tables(model, 2)? {
        for tensor in fb.vector_tables(graph, 0)? {
            fb.vector_i32(tensor, 0)?;
            fb.string(tensor, 3)?;
            fb.table(tensor, 4)?;
            fb.vector_i32(tensor, 7)?;
        }
        fb.vector_i32(graph, 1)?;
        fb.vector_i32(graph, 2)?;
        for op in fb.vector_tables(graph, 3)? {
            fb.vector_i32(op, 1)?;
            fb.vector_i32(op, 2)?;
        }
    }
    Ok(())
}

/// The custom operators' codes (`OperatorCode.custom_code`), e.g. the Edge TPU's.
pub fn custom_codes(bytes: &[u8]) -> Result<Vec<String>> {
    let fb = Flatbuffer(bytes);
    let model = fb.root()?;
    Ok(fb
        .vector_tables(model, 1)?
        .into_iter()
        .map(|code| fb.string(code, 1))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// The signature of an engine that takes one RGB image, `height` × `width`, of type `dtype`
/// and gives `classes` float scores (`torch`, which runs MobileNetV2 only).
pub fn image_classifier(height: u32, width: u32, dtype: TensorType, classes: usize) -> Signature {
    let tensor = |name: &str, shape: Vec<i64>, dtype, fed| Tensor {
        name: name.into(),
        dtype,
        shape,
        quantization: None,
        fed,
        dynamic_batch: false,
    };
    let dtype = match dtype {
        TensorType::U8 { .. } => ElementType::Uint8,
        TensorType::I8 { .. } => ElementType::Int8,
        TensorType::I16 { .. } => ElementType::Int16,
        TensorType::F16 => ElementType::Float16,
        TensorType::F32 => ElementType::Float32,
    };
    Signature {
        inputs: vec![tensor(
            "image",
            vec![1, i64::from(height), i64::from(width), 3],
            dtype,
            Some(Fed::Image),
        )],
        outputs: vec![tensor(
            "scores",
            vec![1, classes as i64],
            ElementType::Float32,
            None,
        )],
        batch: 1,
    }
}

/// Tensor `index` of the subgraph whose tensor tables are `tensors`, refused where the rig
/// cannot feed or read its type or its shape is dynamic; `fed` for an input, which says what
/// the rig feeds it.
fn read_tensor(fb: &Flatbuffer, tensors: &[usize], index: i32, fed: bool) -> Result<Tensor> {
    let table = usize::try_from(index)
        .ok()
        .and_then(|i| tensors.get(i).copied())
        .with_context(|| format!("tensor {index} does not exist"))?;
    let name = fb.string(table, 3)?.unwrap_or_default();
    let shape: Vec<i64> = fb
        .vector_i32(table, 0)?
        .unwrap_or_default()
        .into_iter()
        .map(i64::from)
        .collect();
    let code = fb.scalar_i8(table, 1)?;
    let dtype = ElementType::from_code(code).with_context(|| {
        format!(
            "tensor {name} {shape:?} is {}: the rig feeds and reads uint8, int8, int16, \
                 float16 and float32 tensors",
            unsupported_name(code)
        )
    })?;
    let signature = fb.vector_i32(table, 7)?;
    // A dynamic leading dimension is a batch the engine can resize; any other dynamic one
    // would need sizes the rig has no way to choose.
    let dynamic_elsewhere = signature
        .as_ref()
        .is_some_and(|s| s.iter().skip(1).any(|&d| d < 0));
    if shape.iter().any(|&d| d <= 0) || dynamic_elsewhere {
        bail!(
            "tensor {name} has a dynamic shape ({shape:?}, signature {:?}): give a model \
                 with fixed sizes (convert it with a fixed input shape; only the leading, batch \
                 dimension may be dynamic)",
            signature.unwrap_or_default()
        );
    }
    let dynamic_batch = signature
        .as_ref()
        .is_some_and(|s| s.first().is_some_and(|&d| d < 0));
    let quantization = read_quantization(fb, table)?;
    let mut tensor = Tensor {
        name,
        dtype,
        shape,
        quantization: quantization
            .filter(|_| !matches!(dtype, ElementType::Float16 | ElementType::Float32)),
        fed: None,
        dynamic_batch,
    };
    if fed {
        tensor.fed = Some(if tensor.is_image() {
            Fed::Image
        } else {
            Fed::Synthetic
        });
    }
    Ok(tensor)
}

/// A tensor's quantization (slot 4) as its first scale and zero point, where that scale is
/// usable (positive and finite).
fn read_quantization(fb: &Flatbuffer, table: usize) -> Result<Option<Quantization>> {
    Ok(match fb.table(table, 4)? {
        Some(q) => {
            let scale = fb.vector_f32(q, 2)?.unwrap_or_default();
            let zero = fb.vector_i64(q, 3)?.unwrap_or_default();
            scale
                .first()
                .filter(|s| **s > 0.0 && s.is_finite())
                .map(|&scale| Quantization {
                    scale,
                    zero_point: zero.first().copied().unwrap_or(0),
                })
        }
        None => None,
    })
}

/// A verified-or-not flatbuffer, read with bounds checks: a bad offset is an error, never a
/// read out of bounds. Positions are byte offsets into the buffer.
struct Flatbuffer<'a>(&'a [u8]);

impl Flatbuffer<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N]> {
        self.0
            .get(at..at.checked_add(N).context("offset overflows")?)
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("offset {at} is past the end of the model"))
    }

    fn u32(&self, at: usize) -> Result<usize> {
        Ok(u32::from_le_bytes(self.bytes(at)?) as usize)
    }

    fn root(&self) -> Result<usize> {
        self.u32(0)
    }

    /// Where field `slot` of the table at `table` is stored, if present.
    fn field(&self, table: usize, slot: usize) -> Result<Option<usize>> {
        let soffset = i32::from_le_bytes(self.bytes(table)?) as i64;
        let vtable = usize::try_from(table as i64 - soffset).context("bad vtable offset")?;
        let vtable_len = usize::from(u16::from_le_bytes(self.bytes(vtable)?));
        let entry = 4 + 2 * slot;
        if entry + 2 > vtable_len {
            return Ok(None);
        }
        let offset = usize::from(u16::from_le_bytes(self.bytes(vtable + entry)?));
        Ok((offset != 0).then_some(table + offset))
    }

    /// The target of an offset field (a table, vector or string).
    fn indirect(&self, table: usize, slot: usize) -> Result<Option<usize>> {
        match self.field(table, slot)? {
            Some(at) => Ok(Some(at + self.u32(at)?)),
            None => Ok(None),
        }
    }

    fn table(&self, table: usize, slot: usize) -> Result<Option<usize>> {
        self.indirect(table, slot)
    }

    fn scalar_i8(&self, table: usize, slot: usize) -> Result<i8> {
        match self.field(table, slot)? {
            Some(at) => Ok(self.bytes::<1>(at)?[0] as i8),
            None => Ok(0),
        }
    }

    /// A vector's element positions.
    fn vector(&self, table: usize, slot: usize, size: usize) -> Result<Option<Vec<usize>>> {
        let Some(at) = self.indirect(table, slot)? else {
            return Ok(None);
        };
        let len = self.u32(at)?;
        if at + 4 + len.saturating_mul(size) > self.0.len() {
            bail!("a vector of {len} elements at {at} runs past the end of the model");
        }
        Ok(Some((0..len).map(|i| at + 4 + i * size).collect()))
    }

    fn vector_tables(&self, table: usize, slot: usize) -> Result<Vec<usize>> {
        self.vector(table, slot, 4)?
            .unwrap_or_default()
            .into_iter()
            .map(|at| Ok(at + self.u32(at)?))
            .collect()
    }

    fn vector_i32(&self, table: usize, slot: usize) -> Result<Option<Vec<i32>>> {
        self.vector(table, slot, 4)?
            .map(|v| {
                v.into_iter()
                    .map(|at| Ok(i32::from_le_bytes(self.bytes(at)?)))
                    .collect()
            })
            .transpose()
    }

    fn vector_f32(&self, table: usize, slot: usize) -> Result<Option<Vec<f32>>> {
        self.vector(table, slot, 4)?
            .map(|v| {
                v.into_iter()
                    .map(|at| Ok(f32::from_le_bytes(self.bytes(at)?)))
                    .collect()
            })
            .transpose()
    }

    fn vector_i64(&self, table: usize, slot: usize) -> Result<Option<Vec<i64>>> {
        self.vector(table, slot, 8)?
            .map(|v| {
                v.into_iter()
                    .map(|at| Ok(i64::from_le_bytes(self.bytes(at)?)))
                    .collect()
            })
            .transpose()
    }

    fn string(&self, table: usize, slot: usize) -> Result<Option<String>> {
        let Some(at) = self.indirect(table, slot)? else {
            return Ok(None);
        };
        let len = self.u32(at)?;
        let bytes = self
            .0
            .get(at + 4..at + 4 + len)
            .context("a string runs past the end of the model")?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// What an engine's refusal adds after the model's name: " at batch N", nothing at batch 1.
pub fn at_batch(batch: usize) -> String {
    if batch == 1 {
        String::new()
    } else {
        format!(" at batch {batch}")
    }
}

/// Why a model cannot take a batch whose engine ran the resize but gives tensor `name` another
/// shape than the batch's: an operator (a RESHAPE, typically) folds the batch into another
/// dimension, so the images would not be computed apart.
pub fn folded_batch(
    engine: &str,
    name: &str,
    dims: &[i64],
    batched: &Tensor,
    batch: usize,
) -> String {
    format!(
        "{engine} computes tensor {name} as {dims:?} where a batch of {batch} gives {:?}: an \
         operator folds the batch into another dimension, so the model cannot take a batch \
         (run it at batch 1)",
        batched.shape
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobilenet_is_a_classifier_fed_the_image() {
        let path = crate::models::models_dir().join("mobilenet_v2_1.0_224_quant.tflite");
        let s = Signature::read(&path).unwrap();
        assert!(s.classifier());
        assert_eq!(s.inputs.len(), 1);
        let input = &s.inputs[0];
        assert_eq!(
            (input.name.as_str(), &input.shape[..], input.dtype),
            ("input", &[1, 224, 224, 3][..], ElementType::Uint8)
        );
        assert_eq!(
            input.quantization,
            Some(Quantization {
                scale: 0.0078125,
                zero_point: 128
            })
        );
        assert_eq!(input.fed, Some(Fed::Image));
        assert_eq!(s.outputs[0].shape, vec![1, 1001]);
        assert_eq!(s.outputs[0].fed, None);
    }

    fn tensor(name: &str, shape: &[i64]) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: ElementType::Uint8,
            shape: shape.to_vec(),
            quantization: None,
            fed: None,
            dynamic_batch: false,
        }
    }

    /// At a batch every leading dimension grows, a classifier stays one, and one image's bytes
    /// are still what is prepared and what its scores span.
    #[test]
    fn a_batch_grows_every_leading_dimension() {
        let one = Signature {
            inputs: vec![tensor("image", &[1, 8, 8, 3])],
            outputs: vec![tensor("scores", &[1, 10])],
            batch: 1,
        };
        let four = one.batched(4).unwrap();
        assert_eq!(four.inputs[0].shape, [4, 8, 8, 3]);
        assert_eq!(four.outputs[0].shape, [4, 10]);
        assert_eq!(four.batch, 4);
        assert!(one.classifier() && four.classifier());
        assert_eq!(
            (four.input_bytes(), four.output_bytes_per_image(0)),
            (one.input_bytes(), 10)
        );
        // A signature of shapes for 4 that says batch 1 is no classifier of one image.
        assert!(!Signature { batch: 1, ..four }.classifier());
    }

    /// An input without a batch of 1 to grow is refused in one line naming it.
    #[test]
    fn a_batch_is_refused_where_the_model_has_no_batch_dimension() {
        for (inputs, outputs, want) in [
            (
                vec![tensor("image", &[1, 8, 8, 3]), tensor("pair", &[2, 5])],
                vec![tensor("out", &[1, 10])],
                "input pair [2, 5] fixes its leading (batch) dimension at 2, not 1: the model \
                 cannot take a batch of 4 images (run it at batch 1)",
            ),
            (
                vec![tensor("scale", &[])],
                vec![tensor("out", &[1])],
                "input scale is a scalar, without a batch dimension: the model cannot take a \
                 batch of 4 (run it at batch 1)",
            ),
            (
                vec![tensor("image", &[1, 8, 8, 3])],
                vec![tensor("count", &[])],
                "output count is a scalar, without a batch dimension: the model cannot give a \
                 batch of 4 results (run it at batch 1)",
            ),
        ] {
            let signature = Signature {
                inputs,
                outputs,
                batch: 1,
            };
            assert_eq!(signature.batched(4).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xff\xff\xff\xff",
            &[0u8; 64],
            b"\x08\0\0\0TFL3\xf0\xff",
        ] {
            assert!(Signature::parse(bytes).is_err());
        }
    }
}
