//! What the rig puts into a model's inputs, for every engine of the `tflite` family alike: the
//! image where an input is shaped like one, seeded synthetic data elsewhere, as TensorFlow's
//! `benchmark_model` does.
//!
//! The bytes are prepared once, before timing, all inputs together in the signature's order;
//! a backend copies each input's share into its tensor on every inference.

use std::path::Path;

use anyhow::Result;

pub use super::signature::SEED;
use super::signature::{ElementType, Fed, Signature, Tensor};
use crate::input::{self, InputSpec, Normalization, TensorType};

/// The bytes of every input of `signature` for one image, in order: image-shaped inputs
/// (NHWC, 1 or 3 channels) get `image`, resized and normalized with `norm` then quantized
/// with the tensor's own parameters (grayscale for 1 channel, the same picture over a leading
/// dimension the model fixes above 1); the others get [`synthetic`] data. For a signature at
/// a batch, the bytes are one image's, which the engine replicates over the batch: image 0
/// of a batch is then fed exactly what a batch-1 run feeds.
pub fn prepare(signature: &Signature, image: &Path, norm: Normalization) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(signature.input_bytes());
    let mut rng = SplitMix64(SEED);
    for tensor in &signature.inputs {
        let tensor = tensor.one_image(signature.batch);
        match tensor.fed {
            Some(Fed::Image) => out.extend(encode_image(&tensor, image, norm)?),
            _ => out.extend(synthetic(&tensor, &mut rng)),
        }
    }
    Ok(out)
}

/// The image as an NHWC tensor. An integer input without quantization parameters takes raw
/// pixels (uint8, int16: 0..255; int8: pixel − 128), as such models expect.
fn encode_image(tensor: &Tensor, image: &Path, norm: Normalization) -> Result<Vec<u8>> {
    let &[batch, height, width, channels] = &tensor.shape[..] else {
        unreachable!("an image-shaped tensor has rank 4");
    };
    let dtype = tensor.tensor_type();
    let norm = match (tensor.quantization, tensor.dtype) {
        (_, ElementType::Float16 | ElementType::Float32) | (Some(_), _) => norm,
        (None, ElementType::Int8) => Normalization {
            mean: 128.0,
            std: 1.0,
        },
        (None, _) => Normalization {
            mean: 0.0,
            std: 1.0,
        },
    };
    let (height, width) = (height as u32, width as u32);
    let img = input::load_image(image, width, height)?;
    let one = if channels == 3 {
        // The same code the protocol has always run MobileNetV2's input through.
        let spec = InputSpec {
            height,
            width,
            channels: 3,
            dtype,
        };
        input::encode(&img, &spec, norm)?
    } else {
        let gray = image::DynamicImage::ImageRgb8(img).into_luma8();
        let real = gray
            .as_raw()
            .iter()
            .map(|&p| (f32::from(p) - norm.mean) / norm.std);
        input::quantize(real, dtype)
    };
    Ok(one.repeat(batch as usize))
}

/// Uniform synthetic data for one tensor: integers over the whole range of their type (uint8
/// 0..=255, int8 −128..=127, int16 −32768..=32767, whatever the quantization), floats in
/// [−1, 1) (float16 rounded from them). One 64-bit draw per element, from `rng`.
pub fn synthetic(tensor: &Tensor, rng: &mut SplitMix64) -> Vec<u8> {
    let n = tensor.elements();
    match tensor.tensor_type() {
        TensorType::U8 { .. } | TensorType::I8 { .. } => {
            (0..n).map(|_| rng.next_u64() as u8).collect()
        }
        TensorType::I16 { .. } => (0..n)
            .flat_map(|_| (rng.next_u64() as u16).to_ne_bytes())
            .collect(),
        TensorType::F16 => (0..n)
            .flat_map(|_| input::f32_to_f16(rng.unit()).to_ne_bytes())
            .collect(),
        TensorType::F32 => (0..n).flat_map(|_| rng.unit().to_ne_bytes()).collect(),
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a generator written out here rather than taken
/// from a crate whose streams may change between versions; the Python reference loop of
/// `joulebench bench` reads the same bytes from the file the rig writes, so it needs none.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [−1, 1), from the top 24 bits (exact in f32).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::signature::Quantization;

    fn tensor(shape: &[i64], dtype: ElementType, quantization: Option<Quantization>) -> Tensor {
        let mut t = Tensor {
            name: "t".into(),
            dtype,
            shape: shape.to_vec(),
            quantization,
            fed: None,
            dynamic_batch: false,
        };
        t.fed = Some(if t.is_image() {
            Fed::Image
        } else {
            Fed::Synthetic
        });
        t
    }

    /// The first outputs of SplitMix64 seeded 0, as its reference implementation prints them.
    #[test]
    fn splitmix_matches_the_reference() {
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn synthetic_data_is_seeded_and_spans_the_types_range() {
        let make = |dtype| {
            let sig = Signature {
                inputs: vec![tensor(&[1, 4096], dtype, None)],
                outputs: vec![tensor(&[1], ElementType::Float32, None)],
                batch: 1,
            };
            prepare(
                &sig,
                Path::new("/nonexistent.bmp"),
                Normalization::MOBILENET,
            )
            .unwrap()
        };
        for dtype in [
            ElementType::Uint8,
            ElementType::Int8,
            ElementType::Int16,
            ElementType::Float16,
            ElementType::Float32,
        ] {
            let (a, b) = (make(dtype), make(dtype));
            assert_eq!(a, b, "{dtype:?}: not the same every run");
            let mut real = Vec::new();
            tensor(&[1, 4096], dtype, None)
                .tensor_type()
                .dequantize(&a, &mut real);
            assert_eq!(real.len(), 4096);
            let (lo, hi) = real
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
            let (want_lo, want_hi) = match dtype {
                ElementType::Uint8 => (0.0, 255.0),
                ElementType::Int8 => (-128.0, 127.0),
                ElementType::Int16 => (-32768.0, 32767.0),
                _ => (-1.0, 1.0),
            };
            let span = want_hi - want_lo;
            assert!(
                lo >= want_lo
                    && hi <= want_hi
                    && lo < want_lo + span / 50.0
                    && hi > want_hi - span / 50.0,
                "{dtype:?}: {lo}..{hi}"
            );
        }
    }

    #[test]
    fn a_grayscale_image_input_gets_the_luma_repeated_over_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("red.png");
        image::RgbImage::from_pixel(8, 8, image::Rgb([255, 0, 0]))
            .save(&path)
            .unwrap();
        let gray = tensor(&[2, 4, 4, 1], ElementType::Uint8, None);
        let bytes = encode_image(&gray, &path, Normalization::MOBILENET).unwrap();
        assert_eq!(bytes.len(), 32);
        // Rec. 709 luma of pure red: 0.2126 × 255 = 54.
        assert!(bytes.iter().all(|&b| b == 54), "{bytes:?}");
        let q = tensor(
            &[1, 2, 2, 1],
            ElementType::Int16,
            Some(Quantization {
                scale: 1.0 / 128.0,
                zero_point: 0,
            }),
        );
        let bytes = encode_image(&q, &path, Normalization::MOBILENET).unwrap();
        // (54 − 127.5) / 127.5 × 128 = −73.8 → −74.
        assert_eq!(i16::from_ne_bytes([bytes[0], bytes[1]]), -74);
    }

    #[test]
    fn f16_round_trips() {
        for x in [
            0.0f32,
            1.0,
            -1.0,
            0.5,
            65504.0,
            6.1035156e-5,
            5.9604645e-8,
            -0.333_251_95,
        ] {
            assert_eq!(input::f16_to_f32(input::f32_to_f16(x)), x, "{x}");
        }
        assert_eq!(input::f32_to_f16(1.0), 0x3c00);
        assert_eq!(input::f32_to_f16(70000.0), 0x7c00);
    }
}
