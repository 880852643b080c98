//! MobileNetV2 1.0/224 in libtorch, computing what the `.tflite` graph computes.
//!
//! `tch::vision::mobilenet` cannot be used: it follows torchvision (batch-norm layers,
//! symmetric padding, 1000 classes) and forces the pooled features to f32. This network is
//! written against the TF Lite graph instead, with weights from
//! [`crate::models::ensure_float_weights`]:
//!
//! * batch norm is folded into each convolution's bias, as in the `.tflite` (no BN layers);
//! * ReLU6 after the stem, every expand and depthwise convolution and the head; none after a
//!   block's project convolution (the "linear bottleneck");
//! * a residual add when a block has stride 1 and as many output as input channels;
//! * TensorFlow's "SAME" padding, which differs from PyTorch's symmetric `padding=1` for
//!   stride 2: TF pads `total = max((ceil(in/s) − 1)·s + k − in, 0)` with `total/2` at the
//!   top/left and the rest at the bottom/right. For the stride-2 3×3 convolutions on even
//!   sizes (224, 112, 56, 28, 14) that is 0 before and 1 after; Keras' `ZeroPadding2D(
//!   correct_pad(...))` + `valid` depthwise in `keras.applications.MobileNetV2` pads the same
//!   (0, 1). Padding (1, 1) instead shifts every stride-2 sampling grid by a pixel;
//! * global average pooling, a 1280 → 1001 linear classifier and softmax (both `.tflite`
//!   files end in SOFTMAX, so scores are probabilities), the softmax in f32.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

use crate::models::{float_weight_names, mobilenet_v2_blocks};

/// A convolution with folded batch norm, optionally followed by ReLU6.
struct Conv {
    weight: Tensor,
    bias: Tensor,
    kernel: i64,
    stride: i64,
    groups: i64,
    relu6: bool,
}

/// TF "SAME" padding of one spatial dimension: (before, after).
pub(crate) fn same_padding(size: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (size + stride - 1) / stride;
    let total = ((out - 1) * stride + kernel - size).max(0);
    (total / 2, total - total / 2)
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let size = x.size();
        let (top, bottom) = same_padding(size[2], self.kernel, self.stride);
        let (left, right) = same_padding(size[3], self.kernel, self.stride);
        // Symmetric padding goes into the convolution itself (no copy); TF's asymmetric
        // stride-2 padding needs an explicit pad first.
        let (x, padding) = if top == bottom && left == right {
            (x.shallow_clone(), [top, left])
        } else {
            (
                x.f_constant_pad_nd([left, right, top, bottom].as_slice())?,
                [0, 0],
            )
        };
        let mut y = x.f_conv2d(
            &self.weight,
            Some(&self.bias),
            [self.stride, self.stride].as_slice(),
            padding.as_slice(),
            [1i64, 1].as_slice(),
            self.groups,
        )?;
        if self.relu6 {
            y = y.f_clamp_(0.0, 6.0)?;
        }
        Ok(y)
    }
}

struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    residual: bool,
}

/// The network, its weights on one device in one precision.
pub struct MobileNetV2 {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    classifier: (Tensor, Tensor),
}

impl MobileNetV2 {
    /// Loads the weights written by [`crate::models::convert`] onto `device` as `kind`
    /// (`Float` or `Half`), checking every name and shape.
    pub fn load(path: &Path, device: Device, kind: Kind) -> Result<Self> {
        let mut file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| anyhow::anyhow!("cannot read float weights {}: {e}", path.display()))?
            .into_iter()
            .collect();
        let shapes: HashMap<String, Vec<usize>> = float_weight_names().into_iter().collect();
        let mut take = |name: String| -> Result<Tensor> {
            let t = file
                .remove(&name)
                .with_context(|| format!("{} has no tensor {name}", path.display()))?;
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            if shapes.get(&name) != Some(&shape) {
                bail!("{}: {name} has shape {shape:?}", path.display());
            }
            Ok(t.f_to_device(device)?.f_to_kind(kind)?)
        };
        let mut conv = |name: &str, stride: usize, groups: usize, relu6: bool| -> Result<Conv> {
            let weight = take(format!("{name}.weight"))?;
            Ok(Conv {
                kernel: weight.size()[2],
                weight,
                bias: take(format!("{name}.bias"))?,
                stride: stride as i64,
                groups: groups as i64,
                relu6,
            })
        };
        let stem = conv("stem", 2, 1, true)?;
        let mut blocks = Vec::new();
        for (i, b) in mobilenet_v2_blocks().into_iter().enumerate() {
            let expand = if b.has_expand() {
                Some(conv(&format!("blocks.{i}.expand"), 1, 1, true)?)
            } else {
                None
            };
            blocks.push(Block {
                expand,
                depthwise: conv(&format!("blocks.{i}.depthwise"), b.stride, b.hidden, true)?,
                project: conv(&format!("blocks.{i}.project"), 1, 1, false)?,
                residual: b.has_residual(),
            });
        }
        let head = conv("head", 1, 1, true)?;
        let classifier = (
            take("classifier.weight".into())?,
            take("classifier.bias".into())?,
        );
        Ok(Self {
            stem,
            blocks,
            head,
            classifier,
        })
    }

    /// Class probabilities `[N, 1001]` in f32 for an NCHW batch in the weights' precision.
    /// Call under `tch::no_grad`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.stem.forward(x)?;
        for b in &self.blocks {
            let mut y = match &b.expand {
                Some(e) => e.forward(&x)?,
                None => x.shallow_clone(),
            };
            y = b.project.forward(&b.depthwise.forward(&y)?)?;
            if b.residual {
                y = y.f_add_(&x)?;
            }
            x = y;
        }
        let pooled =
            self.head
                .forward(&x)?
                .f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)?;
        let logits = pooled.f_linear(&self.classifier.0, Some(&self.classifier.1))?;
        Ok(logits.f_softmax(-1, Kind::Float)?)
    }
}

#[cfg(test)]
mod tests {
    use super::same_padding;

    /// TF's SAME padding: even sizes at stride 2 pad only after; stride 1 pads both sides.
    #[test]
    fn same_padding_follows_tensorflow() {
        for size in [224, 112, 56, 28, 14] {
            assert_eq!(same_padding(size, 3, 2), (0, 1));
        }
        assert_eq!(same_padding(7, 3, 2), (1, 1));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(7, 1, 1), (0, 0));
    }
}
