//! Float MobileNetV2 through libtorch (crate `tch`) on the CPU or an NVIDIA GPU.
//!
//! The network is the int8 model's own, dequantized ([`crate::models::ensure_float_weights`]),
//! so a float run on a GPU and an int8 run on a Raspberry Pi classify with the same weights;
//! only the arithmetic differs. See [`mobilenet`] for how the graph matches TensorFlow's.
//!
//! Every classification follows the 2019 method: the input is copied into the model (host to
//! device on a GPU), the network runs, and the scores are read back to the host.

mod mobilenet;

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

use super::{Backend, EngineInfo};
use crate::input::{InputSpec, TensorType};
use crate::models::NUM_CLASSES;
use crate::rig::{BackendSpec, Device, Precision};
use mobilenet::MobileNetV2;

/// The libtorch version tch 0.24 is built for, reported when the wheel's `version.py` cannot
/// be found (tch itself exposes no version).
const PINNED_LIBTORCH: &str = "2.11.0";

/// MobileNetV2's input: 224×224 RGB, normalized to [−1, 1] as f32.
const SIDE: i64 = 224;
const IMAGE_BYTES: usize = (SIDE * SIDE * 3) as usize * 4;

pub struct TorchBackend {
    model: MobileNetV2,
    batch: usize,
    /// `[batch, 224, 224, 3]` f32 on the host (page-locked for a GPU): `batch` copies of the
    /// input, rewritten only when the input bytes change.
    host: Tensor,
    /// The input bytes `host` holds.
    last_input: Vec<u8>,
    /// The same shape on the GPU, the target of the per-call host-to-device copy; None on
    /// the CPU.
    device_nhwc: Option<Tensor>,
    /// `[batch, 3, 224, 224]` in the model's precision: what the network reads.
    nchw: Tensor,
    input: InputSpec,
    engine: EngineInfo,
}

impl TorchBackend {
    /// Loads the float weights of the int8 `model` onto the rig's device and precision.
    pub fn open(spec: &BackendSpec, model: &Path) -> Result<Self> {
        let device = spec.device.unwrap_or(Device::Cpu);
        let precision = spec.precision.unwrap_or(Precision::Fp32);
        let tdevice = match device {
            Device::Cpu => tch::Device::Cpu,
            Device::Cuda(n) => {
                let count = tch::Cuda::device_count();
                if !tch::Cuda::is_available() || i64::from(n) >= count {
                    bail!("CUDA device cuda:{n} is not available (tch sees {count} CUDA devices)");
                }
                tch::Cuda::cudnn_set_benchmark(spec.cudnn_benchmark.unwrap_or(true));
                tch::Device::Cuda(n as usize)
            }
        };
        let kind = match precision {
            Precision::Fp32 => Kind::Float,
            Precision::Fp16 => Kind::Half,
        };
        let batch = spec.batch() as usize;
        if batch == 0 {
            bail!("batch must be at least 1");
        }
        if spec.threads > 0 {
            // Intra-op threads, process-wide in libtorch.
            tch::set_num_threads(spec.threads as i32);
        }
        let weights = crate::models::ensure_float_weights(model)?;
        let net = MobileNetV2::load(&weights, tdevice, kind)?;

        let nhwc = [batch as i64, SIDE, SIDE, 3];
        let mut host = Tensor::f_zeros(nhwc.as_slice(), (Kind::Float, tch::Device::Cpu))?;
        let device_nhwc = if tdevice == tch::Device::Cpu {
            None
        } else {
            // Page-locked memory lets the copy run at full PCIe speed, as a tuned pipeline's.
            // `_pin_memory` is what `pin_memory` dispatches to, minus the deprecation warning
            // libtorch prints when `pin_memory` is given a device (tch always passes one).
            host = host.f_internal_pin_memory(tdevice)?;
            Some(Tensor::f_zeros(nhwc.as_slice(), (Kind::Float, tdevice))?)
        };
        let nchw = Tensor::f_zeros([batch as i64, 3, SIDE, SIDE].as_slice(), (kind, tdevice))?;
        // The GPU's name is in the NVML sensor's detail; tch has no call for it.
        let accelerator = format!("{device} {}", precision.as_str());
        let mut backend = Self {
            model: net,
            batch,
            host,
            last_input: Vec::new(),
            device_nhwc,
            nchw,
            input: InputSpec {
                height: SIDE as u32,
                width: SIDE as u32,
                channels: 3,
                dtype: TensorType::F32,
            },
            engine: EngineInfo {
                engine: "torch".into(),
                version: format!("libtorch {}", libtorch_version()),
                accelerator,
                threads: spec.threads,
            },
        };
        // One pass now, so that a precision the device has no kernels for (fp16 convolutions
        // on some CPU builds) fails here with its reason rather than in the timed run.
        let mut scores = Vec::new();
        backend
            .infer(&vec![0; IMAGE_BYTES], &mut scores)
            .with_context(|| format!("{} on {device} cannot run", precision.as_str()))?;
        Ok(backend)
    }
}

impl Backend for TorchBackend {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    fn input(&self) -> &InputSpec {
        &self.input
    }

    fn batch(&self) -> usize {
        self.batch
    }

    fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> Result<()> {
        if input.len() != IMAGE_BYTES {
            bail!(
                "input is {} bytes, the model takes {IMAGE_BYTES}",
                input.len()
            );
        }
        // Replicating the image into the batch is the data loader's work, not inference: it
        // is redone only when the image changes.
        if self.last_input != input {
            let image = Tensor::f_from_data_size(input, &[1, SIDE, SIDE, 3], Kind::Float)?;
            self.host
                .f_copy_(&image.f_expand([self.batch as i64, SIDE, SIDE, 3], false)?)?;
            self.last_input.clear();
            self.last_input.extend_from_slice(input);
        }
        tch::no_grad(|| -> Result<()> {
            // Host to device every call, as every classification of the 2019 method copies
            // its input into the model; then NHWC → NCHW and the precision, on the device.
            let nhwc = match &mut self.device_nhwc {
                Some(device) => {
                    device.f_copy_(&self.host)?;
                    &*device
                }
                None => &self.host,
            };
            self.nchw
                .f_copy_(&nhwc.f_permute([0i64, 3, 1, 2].as_slice())?)?;
            let probs = self.model.forward(&self.nchw)?;
            scores.clear();
            scores.resize(NUM_CLASSES, 0.0);
            // Reading the first row back to the host waits for every kernel queued before it:
            // on a GPU this copy is the synchronisation that makes the measured latency the
            // real one (kernel launches alone return before the work is done).
            probs
                .f_narrow(0, 0, 1)?
                .f_copy_data(scores.as_mut_slice(), NUM_CLASSES)?;
            Ok(())
        })
    }
}

/// The version of the libtorch this process runs: the PyPI wheel's `torch/version.py` next to
/// the loaded `libtorch_cpu.so` (e.g. "2.11.0+cu130"), else the version tch is pinned to.
fn libtorch_version() -> String {
    let from_wheel = || -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let lib = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.ends_with("/libtorch_cpu.so"))?;
        let torch_dir = Path::new(lib).parent()?.parent()?;
        let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
        let line = text.lines().find_map(|l| l.strip_prefix("__version__ ="))?;
        Some(line.trim().trim_matches(['\'', '"']).to_string())
    };
    from_wheel().unwrap_or_else(|| PINNED_LIBTORCH.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Instant;

    use super::*;
    use crate::backend::tflite::TfliteBackend;
    use crate::input::{self, Normalization};
    use crate::models::Manifest;
    use crate::rig::BackendKind;

    const MODELS: [&str; 2] = ["mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq"];
    const IMAGES: [&str; 4] = ["bird.bmp", "cat.bmp", "grace_hopper.bmp", "parrot.jpg"];

    fn manifest() -> Manifest {
        Manifest::load_default().unwrap()
    }

    fn spec(threads: u32, precision: Precision, batch: u32) -> BackendSpec {
        BackendSpec {
            threads,
            precision: Some(precision),
            batch: Some(batch),
            ..BackendSpec::new(BackendKind::Torch)
        }
    }

    /// A copy of a manifest model in a fresh folder, so the float weights are written there
    /// and not next to the shared files.
    fn model_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let src = manifest().open_model(name).unwrap().path;
        let path = dir.path().join(src.file_name().unwrap());
        std::fs::copy(src, &path).unwrap();
        (dir, path)
    }

    /// `image` encoded for `spec` the way `runner::prepare_backend` does it.
    fn encode(model: &str, image: &str, spec: &InputSpec) -> Vec<u8> {
        let m = manifest();
        let norm = m
            .open_model(model)
            .unwrap()
            .input
            .map_or(Normalization::MOBILENET, |i| Normalization {
                mean: i.mean,
                std: i.std,
            });
        let path = m.open_image(image).unwrap().path;
        let img = input::load_image(&path, spec.width, spec.height).unwrap();
        input::encode(&img, spec, norm).unwrap()
    }

    fn top1(scores: &[f32]) -> usize {
        let mut top = Vec::new();
        input::top_k(scores, 1, &mut top);
        top[0].class
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The float network classifies like the int8 one it came from, on both models and all
    /// four images, and its probabilities stay close to the int8 engine's.
    #[test]
    fn float_top1_matches_int8_on_every_image() {
        let m = manifest();
        for name in MODELS {
            let (_dir, path) = model_copy(name);
            let mut float = TorchBackend::open(&spec(2, Precision::Fp32, 1), &path).unwrap();
            assert_eq!(float.engine().accelerator, "cpu fp32");
            let mut int8 = TfliteBackend::open(&path, 2).unwrap();
            let (mut fs, mut qs) = (Vec::new(), Vec::new());
            for image in IMAGES {
                float
                    .infer(&encode(name, image, float.input()), &mut fs)
                    .unwrap();
                int8.infer(&encode(name, image, int8.input()), &mut qs)
                    .unwrap();
                let want = m.open_image(image).unwrap();
                let want = want.expected_top1(name).unwrap().index;
                assert_eq!((top1(&fs), top1(&qs)), (want, want), "{name} {image}");
                let sum: f32 = fs.iter().sum();
                assert!((sum - 1.0).abs() < 1e-4, "{name} {image}: sum {sum}");
                let diff = max_diff(&fs, &qs);
                eprintln!(
                    "{name} {image}: top-1 {want} p(float) {:.4} p(int8) {:.4}, max |Δp| {diff:.4}",
                    fs[want], qs[want]
                );
                assert!(diff < 0.05, "{name} {image}: max |Δp| {diff}");
            }
        }
    }

    #[test]
    fn batch_replicates_the_image() {
        let (_dir, path) = model_copy(MODELS[1]);
        let mut one = TorchBackend::open(&spec(2, Precision::Fp32, 1), &path).unwrap();
        let mut four = TorchBackend::open(&spec(2, Precision::Fp32, 4), &path).unwrap();
        assert_eq!((one.batch(), four.batch()), (1, 4));
        let input = encode(MODELS[1], "parrot.jpg", one.input());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        one.infer(&input, &mut a).unwrap();
        four.infer(&input, &mut b).unwrap();
        assert_eq!(b.len(), NUM_CLASSES);
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
        // A second image replaces every copy of the first.
        let other = encode(MODELS[1], "cat.bmp", one.input());
        four.infer(&other, &mut b).unwrap();
        one.infer(&other, &mut a).unwrap();
        assert!(max_diff(&a, &b) < 1e-5 && top1(&b) == 286);
        assert!(four.infer(&other[1..], &mut b).is_err());
    }

    /// fp16 on the CPU: libtorch 2.11's CPU kernels cover half convolutions, so it runs; it
    /// must classify like fp32 (its probabilities differ by the rounding of 11-bit mantissas).
    #[test]
    fn fp16_on_cpu_classifies_like_fp32() {
        let (_dir, path) = model_copy(MODELS[0]);
        let mut half = TorchBackend::open(&spec(2, Precision::Fp16, 1), &path).unwrap();
        let mut full = TorchBackend::open(&spec(2, Precision::Fp32, 1), &path).unwrap();
        assert_eq!(half.engine().accelerator, "cpu fp16");
        let (mut h, mut f) = (Vec::new(), Vec::new());
        for image in IMAGES {
            let input = encode(MODELS[0], image, half.input());
            half.infer(&input, &mut h).unwrap();
            full.infer(&input, &mut f).unwrap();
            eprintln!("fp16 vs fp32 {image}: max |Δp| {:.5}", max_diff(&h, &f));
            assert_eq!(top1(&h), top1(&f), "{image}");
        }
    }

    #[test]
    fn cuda_without_a_gpu_is_a_one_line_error() {
        if tch::Cuda::is_available() {
            crate::skip_test(
                "cuda_without_a_gpu_is_a_one_line_error",
                "this machine has a CUDA GPU",
            );
            return;
        }
        let (_dir, path) = model_copy(MODELS[0]);
        let mut s = spec(1, Precision::Fp32, 1);
        s.device = Some(Device::Cuda(0));
        let err = format!("{:#}", TorchBackend::open(&s, &path).err().unwrap());
        assert_eq!(
            err,
            "CUDA device cuda:0 is not available (tch sees 0 CUDA devices)"
        );
    }

    #[test]
    fn engine_reports_the_wheel_version() {
        let v = libtorch_version();
        assert!(v.starts_with(PINNED_LIBTORCH), "{v}");
    }

    /// CPU speed, batch 1: `cargo test --release --features torch --lib torch_cpu_speed --
    /// --ignored --nocapture --test-threads=1` (threads are process-wide in libtorch).
    #[test]
    #[ignore]
    fn torch_cpu_speed() {
        for name in MODELS {
            let (_dir, path) = model_copy(name);
            for threads in [1, 2] {
                for precision in [Precision::Fp32, Precision::Fp16] {
                    let s = spec(threads, precision, 1);
                    let mut b = TorchBackend::open(&s, &path).unwrap();
                    let input = encode(name, "parrot.jpg", b.input());
                    let mut scores = Vec::new();
                    b.infer(&input, &mut scores).unwrap();
                    let mut ms = Vec::new();
                    for _ in 0..250 {
                        let t = Instant::now();
                        b.infer(&input, &mut scores).unwrap();
                        ms.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    ms.sort_by(f64::total_cmp);
                    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
                    eprintln!(
                        "{name} {} {threads} thread(s): mean {mean:.2} ms, median {:.2} ms, p90 {:.2} ms",
                        precision.as_str(),
                        ms[125],
                        ms[225]
                    );
                }
            }
        }
    }
}
