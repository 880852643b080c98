//! Turning an image file into a model's input tensor, and a model's output into labels.
//!
//! The tensor is prepared once, before timing: the 2019 method classifies the same image
//! repeatedly, and a classification starts by copying these bytes into the model.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::imageops::FilterType;

/// Element type and quantization of a model's input or output tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorType {
    /// `real = scale × (q − zero_point)`.
    U8 {
        scale: f32,
        zero_point: i32,
    },
    I8 {
        scale: f32,
        zero_point: i32,
    },
    F32,
}

impl TensorType {
    pub fn name(&self) -> &'static str {
        match self {
            TensorType::U8 { .. } => "uint8",
            TensorType::I8 { .. } => "int8",
            TensorType::F32 => "float32",
        }
    }

    /// Bytes per element.
    pub fn size(&self) -> usize {
        match self {
            TensorType::U8 { .. } | TensorType::I8 { .. } => 1,
            TensorType::F32 => 4,
        }
    }

    /// Decodes raw tensor bytes into real values.
    pub fn dequantize(&self, bytes: &[u8], out: &mut Vec<f32>) {
        out.clear();
        match *self {
            TensorType::U8 { scale, zero_point } => out.extend(
                bytes
                    .iter()
                    .map(|&q| scale * (i32::from(q) - zero_point) as f32),
            ),
            TensorType::I8 { scale, zero_point } => out.extend(
                bytes
                    .iter()
                    .map(|&q| scale * (i32::from(q as i8) - zero_point) as f32),
            ),
            TensorType::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
            ),
        }
    }
}

/// The float values a network was trained on: `x = (pixel − mean) / std`. MobileNetV2 uses
/// mean = std = 127.5, mapping pixels to [−1, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: f32,
    pub std: f32,
}

impl Normalization {
    /// MobileNet's: pixels to [−1, 1]. Used for a model the manifest does not describe.
    pub const MOBILENET: Self = Self {
        mean: 127.5,
        std: 127.5,
    };
}

/// An input tensor: NHWC, batch 1, RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub dtype: TensorType,
}

impl InputSpec {
    /// The input of a model whose tensor has `dims`: NHWC with batch 1 and fixed sizes.
    pub fn nhwc(dims: &[i64], dtype: TensorType) -> Result<Self> {
        let size = |d: i64| u32::try_from(d).ok().filter(|d| *d > 0);
        match dims {
            &[1, h, w, c] => match (size(h), size(w), size(c)) {
                (Some(height), Some(width), Some(channels)) => Ok(Self {
                    height,
                    width,
                    channels,
                    dtype,
                }),
                _ => bail!("expected a fixed input shape, got {dims:?}"),
            },
            _ => bail!("expected an NHWC input of batch 1, got {dims:?}"),
        }
    }
}

/// Decodes a BMP, JPEG or PNG file and resizes it (bilinear) to the input size.
pub fn load_image(path: &Path, width: u32, height: u32) -> Result<image::RgbImage> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode image {}", path.display()))?;
    Ok(image::imageops::resize(
        &img.to_rgb8(),
        width,
        height,
        FilterType::Triangle,
    ))
}

/// Encodes an RGB image as the bytes of an input tensor of the given type.
///
/// A quantized input receives `round(((pixel − mean) / std) / scale + zero_point)`, clamped:
/// for the usual MobileNet input (scale 1/128, zero point 128) that is almost the raw pixel.
pub fn encode(img: &image::RgbImage, spec: &InputSpec, norm: Normalization) -> Result<Vec<u8>> {
    if spec.channels != 3 || img.width() != spec.width || img.height() != spec.height {
        bail!(
            "input is {}x{}x{}, image is {}x{}x3",
            spec.height,
            spec.width,
            spec.channels,
            img.height(),
            img.width()
        );
    }
    let real = img
        .as_raw()
        .iter()
        .map(|&p| (f32::from(p) - norm.mean) / norm.std);
    Ok(match spec.dtype {
        TensorType::U8 { scale, zero_point } => real
            .map(|x| (x / scale + zero_point as f32).round().clamp(0.0, 255.0) as u8)
            .collect(),
        TensorType::I8 { scale, zero_point } => real
            .map(|x| (x / scale + zero_point as f32).round().clamp(-128.0, 127.0) as i8 as u8)
            .collect(),
        TensorType::F32 => real.flat_map(f32::to_ne_bytes).collect(),
    })
}

/// Class labels: output index `i` is line `i + offset` of a label file.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    lines: Vec<String>,
    offset: usize,
}

impl Labels {
    pub fn load(path: &Path, offset: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read labels {}", path.display()))?;
        Ok(Self {
            lines: text.lines().map(|l| l.trim().to_string()).collect(),
            offset,
        })
    }

    /// Labels of a few classes only (the others unknown): what a run folder records.
    pub fn from_known(known: impl IntoIterator<Item = (usize, String)>) -> Self {
        let mut lines = Vec::new();
        for (class, label) in known {
            if lines.len() <= class {
                lines.resize(class + 1, "?".to_string());
            }
            lines[class] = label;
        }
        Self { lines, offset: 0 }
    }

    /// The label of an output index; "?" when unknown (no label file, or past its end).
    pub fn get(&self, class: usize) -> &str {
        self.lines
            .get(class + self.offset)
            .map_or("?", String::as_str)
    }
}

/// One predicted class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub class: usize,
    pub score: f32,
}

/// The `k` highest scores, best first (ties: lower index first).
pub fn top_k(scores: &[f32], k: usize, out: &mut Vec<Prediction>) {
    out.clear();
    for (class, &score) in scores.iter().enumerate() {
        if out.len() == k && out.last().is_some_and(|p| p.score >= score) {
            continue;
        }
        let at = out.partition_point(|p| p.score >= score);
        out.insert(at, Prediction { class, score });
        out.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_bounded() {
        let mut out = Vec::new();
        top_k(&[0.1, 0.7, 0.3, 0.7, 0.0, 0.9], 3, &mut out);
        let classes: Vec<_> = out.iter().map(|p| p.class).collect();
        assert_eq!(classes, vec![5, 1, 3]);
    }

    #[test]
    fn quantized_encoding_follows_scale_and_zero_point() {
        let img = image::RgbImage::from_raw(1, 1, vec![0, 128, 255]).unwrap();
        let norm = Normalization {
            mean: 127.5,
            std: 127.5,
        };
        let spec = |dtype| InputSpec {
            height: 1,
            width: 1,
            channels: 3,
            dtype,
        };
        let u8in = encode(
            &img,
            &spec(TensorType::U8 {
                scale: 1.0 / 128.0,
                zero_point: 128,
            }),
            norm,
        )
        .unwrap();
        // 128 is just above the midpoint 127.5: 0.0039 / (1/128) = 0.5 → rounds up.
        assert_eq!(u8in, vec![0, 129, 255]);
        let i8in = encode(
            &img,
            &spec(TensorType::I8 {
                scale: 1.0 / 128.0,
                zero_point: 0,
            }),
            norm,
        )
        .unwrap();
        assert_eq!(i8in, vec![(-128i8) as u8, 1, 127]);
        let f32in = encode(&img, &spec(TensorType::F32), norm).unwrap();
        let mut back = Vec::new();
        TensorType::F32.dequantize(&f32in, &mut back);
        assert_eq!(back[0], -1.0);
        assert_eq!(back[2], 1.0);
    }

    #[test]
    fn dequantize_uint8() {
        let mut out = Vec::new();
        TensorType::U8 {
            scale: 0.5,
            zero_point: 10,
        }
        .dequantize(&[10, 12], &mut out);
        assert_eq!(out, vec![0.0, 1.0]);
    }
}
