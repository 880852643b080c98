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
    /// Quantized 16-bit, or plain int16 data (scale 1, zero point 0).
    I16 {
        scale: f32,
        zero_point: i32,
    },
    /// IEEE half precision.
    F16,
    F32,
}

impl TensorType {
    pub fn name(&self) -> &'static str {
        match self {
            TensorType::U8 { .. } => "uint8",
            TensorType::I8 { .. } => "int8",
            TensorType::I16 { .. } => "int16",
            TensorType::F16 => "float16",
            TensorType::F32 => "float32",
        }
    }

    /// Bytes per element.
    pub fn size(&self) -> usize {
        match self {
            TensorType::U8 { .. } | TensorType::I8 { .. } => 1,
            TensorType::I16 { .. } | TensorType::F16 => 2,
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
            TensorType::I16 { scale, zero_point } => out.extend(bytes.chunks_exact(2).map(|c| {
                scale * (i32::from(i16::from_ne_bytes([c[0], c[1]])) - zero_point) as f32
            })),
            TensorType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16_to_f32(u16::from_ne_bytes([c[0], c[1]]))),
            ),
            TensorType::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
            ),
        }
    }
}

/// IEEE half-precision bits to f32 (exact: every half is a float).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: frac × 2^-24.
        (0, _) => {
            let v = frac as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, _) => sign | 0x7fc0_0000,
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// f32 to IEEE half-precision bits, rounded to nearest even (overflow to infinity).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = f32::from_bits(bits & 0x7fff_ffff);
    if abs.is_nan() {
        return sign | 0x7e00;
    }
    if abs >= 65520.0 {
        return sign | 0x7c00;
    }
    if abs < 6.103_515_6e-5 {
        // Subnormal half: a multiple of 2^-24, rounded half to even.
        let q = abs * 16_777_216.0;
        return sign | q.round_ties_even() as u16;
    }
    let b = abs.to_bits();
    let exp = (b >> 23) as i32 - 127 + 15;
    let mant = b & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (mant >> 13);
    let rest = mant & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
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
    ///
    /// Anything else is refused as the model's fault, not the image's: the protocol feeds one
    /// RGB image, height × width × 3, per inference.
    pub fn nhwc(dims: &[i64], dtype: TensorType) -> Result<Self> {
        let size = |d: i64| u32::try_from(d).ok().filter(|d| *d > 0);
        let not_an_image = || {
            anyhow::anyhow!(
                "the model's input is {dims:?} {}, not an image the protocol can feed: it takes one RGB image, shape [1, height, width, 3] (uint8, int8 or float32)",
                dtype.name()
            )
        };
        match dims {
            &[1, h, w, 3] => match (size(h), size(w)) {
                (Some(height), Some(width)) => Ok(Self {
                    height,
                    width,
                    channels: 3,
                    dtype,
                }),
                _ => Err(not_an_image()),
            },
            _ => Err(not_an_image()),
        }
    }
}

/// The largest image [`load_image`] decodes, per side: 8192 × 8192 RGBA at 16 bits is 512 MiB,
/// the decoder's own allocation limit. A camera's 48-megapixel photo (8000 × 6000) fits; a
/// file claiming more is refused before anything is allocated (a PNG of a few hundred bytes
/// can claim 100000 × 100000 pixels).
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// Decodes a BMP, JPEG or PNG file and resizes it (bilinear) to the input size.
///
/// Any colour type the decoders read is converted to 8-bit RGB: grayscale is repeated in
/// the three channels, 16-bit channels are scaled to 8 bits, alpha is dropped, and a CMYK
/// JPEG is converted by the JPEG decoder. Refused, each with one line naming the file: a file
/// that cannot be opened, an empty or unrecognised one, one larger than [`MAX_IMAGE_SIDE`]
/// per side, and a truncated JPEG (no end-of-image marker after its scan), which the decoder
/// would otherwise fill with grey and classify as if it were whole.
pub fn load_image(path: &Path, width: u32, height: u32) -> Result<image::RgbImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot open image {}", path.display()))?;
    if bytes.is_empty() {
        bail!("image {} is empty (0 bytes)", path.display());
    }
    let reader = || -> Result<image::ImageReader<std::io::Cursor<&[u8]>>> {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .with_context(|| format!("cannot read image {}", path.display()))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        reader.limits(limits);
        Ok(reader)
    };
    let format = reader()?.format();
    if format.is_none() {
        bail!(
            "cannot decode image {}: not a BMP, JPEG or PNG file",
            path.display()
        );
    }
    let mut unlimited = reader()?;
    unlimited.no_limits();
    if let Ok((w, h)) = unlimited.into_dimensions() {
        if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
            bail!(
                "image {} is {w} × {h} pixels, more than joulebench decodes ({MAX_IMAGE_SIDE} per side): scale it down",
                path.display()
            );
        }
        if w == 0 || h == 0 {
            bail!(
                "image {} is {w} × {h} pixels: it holds no pixels",
                path.display()
            );
        }
    }
    if format == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(&bytes)
            .with_context(|| format!("cannot decode image {}: not a whole JPEG", path.display()))?;
    }
    let img = reader()?
        .decode()
        .with_context(|| format!("cannot decode image {}", path.display()))?;
    if img.width() == 0 || img.height() == 0 {
        bail!("image {} holds no pixels", path.display());
    }
    Ok(image::imageops::resize(
        &img.to_rgb8(),
        width,
        height,
        FilterType::Triangle,
    ))
}

/// Checks that a JPEG's segments are all there and its scan ends with the end-of-image
/// marker (FF D9). The decoder in use accepts a file cut short and fills the missing blocks
/// with grey, which a classifier then classifies, wrongly, as if it were the picture.
///
/// Headers are walked by their lengths up to the first start-of-scan (FF DA), so an EXIF
/// thumbnail's own end marker, inside an APP1 segment, does not count; after it, FF D9 can
/// only be a marker (entropy-coded data stuffs every FF byte with a 00).
pub fn check_jpeg_complete(bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        bail!("no start-of-image marker");
    }
    let mut at = 2;
    let scan = loop {
        // Markers may be preceded by fill bytes (FF).
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        match (bytes.get(at), bytes.get(at + 1)) {
            (Some(0xFF), Some(0xDA)) => break at,
            (Some(0xFF), Some(0xD9)) => bail!("it ends before any image data"),
            (Some(0xFF), Some(0x01 | 0xD0..=0xD7)) => at += 2,
            (Some(0xFF), Some(_)) => {
                let len = match (bytes.get(at + 2), bytes.get(at + 3)) {
                    (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => bail!("truncated in its headers ({} bytes)", bytes.len()),
                };
                at += 2 + len;
            }
            (None, _) | (Some(_), None) => bail!(
                "truncated in its headers: a segment runs to byte {at}, past its {} bytes",
                bytes.len()
            ),
            (Some(&b), _) => bail!("byte {b:#04x} at {at} where a marker should be"),
        }
    };
    if !bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9]) {
        bail!(
            "truncated: its {} bytes end inside the image data, without the end-of-image marker",
            bytes.len()
        );
    }
    Ok(())
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
    Ok(quantize(real, spec.dtype))
}

/// Real values as the bytes of a tensor of type `dtype`: rounded, clamped to the type's range.
pub fn quantize(real: impl Iterator<Item = f32>, dtype: TensorType) -> Vec<u8> {
    match dtype {
        TensorType::U8 { scale, zero_point } => real
            .map(|x| (x / scale + zero_point as f32).round().clamp(0.0, 255.0) as u8)
            .collect(),
        TensorType::I8 { scale, zero_point } => real
            .map(|x| (x / scale + zero_point as f32).round().clamp(-128.0, 127.0) as i8 as u8)
            .collect(),
        TensorType::I16 { scale, zero_point } => real
            .flat_map(|x| {
                ((x / scale + zero_point as f32)
                    .round()
                    .clamp(-32768.0, 32767.0) as i16)
                    .to_ne_bytes()
            })
            .collect(),
        TensorType::F16 => real.flat_map(|x| f32_to_f16(x).to_ne_bytes()).collect(),
        TensorType::F32 => real.flat_map(f32::to_ne_bytes).collect(),
    }
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

    /// The classes the file names: its lines from the offset on (0 without a label file).
    pub fn len(&self) -> usize {
        self.lines.len().saturating_sub(self.offset)
    }

    /// Whether there is no label (no label file, or an empty one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn a_jpeg_needs_its_end_marker_after_the_scan() {
        let whole = std::fs::read(crate::models::models_dir().join("parrot.jpg")).unwrap();
        check_jpeg_complete(&whole).unwrap();
        for cut in [whole.len() - 2, whole.len() / 2, 700] {
            let e = check_jpeg_complete(&whole[..cut]).unwrap_err().to_string();
            assert!(e.contains("truncated"), "{cut}: {e}");
        }
        assert!(check_jpeg_complete(&whole[..3]).is_err());
        assert!(check_jpeg_complete(b"GIF89a").is_err());
        // An EXIF-like APP1 segment holding a thumbnail's own end marker does not count.
        let mut thumb = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9];
        thumb.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0x00]);
        assert!(check_jpeg_complete(&thumb).is_err());
        thumb.extend_from_slice(&[0xFF, 0xD9]);
        check_jpeg_complete(&thumb).unwrap();
    }

    #[test]
    fn images_of_other_colour_types_become_rgb_and_huge_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let gray = dir.path().join("gray.png");
        image::GrayImage::from_pixel(4, 4, image::Luma([200]))
            .save(&gray)
            .unwrap();
        let rgb = load_image(&gray, 2, 2).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [200, 200, 200]);
        let deep = dir.path().join("deep.png");
        image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(4, 4, image::Rgb([65535, 0, 32896]))
            .save(&deep)
            .unwrap();
        assert_eq!(
            load_image(&deep, 2, 2).unwrap().get_pixel(1, 1).0,
            [255, 0, 128]
        );
        let cmyk = dir.path().join("cmyk.jpg");
        write_cmyk_jpeg(&cmyk);
        assert_eq!(load_image(&cmyk, 8, 8).unwrap().dimensions(), (8, 8));
    }

    /// A 64 × 64 CMYK JPEG (a gradient), written here rather than committed: a test picture in
    /// that colour model, made from nothing third-party.
    fn write_cmyk_jpeg(path: &std::path::Path) {
        let cmyk: Vec<u8> = (0..64u32 * 64)
            .flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 4) as u8, 64, 0])
            .collect();
        jpeg_encoder::Encoder::new_file(path, 90)
            .unwrap()
            .encode(&cmyk, 64, 64, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
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
