//! Float MobileNetV2 through libtorch (crate `tch`) on the CPU or an NVIDIA GPU.
//!
//! The network is the int8 model's own, dequantized ([`crate::models::ensure_float_weights`]),
//! so a float run on a GPU and an int8 run on a Raspberry Pi classify with the same weights;
//! only the arithmetic differs. See `mobilenet.rs` for how the graph matches TensorFlow's.
//!
//! Every classification follows the 2019 method: the input is copied into the model (host to
//! device on a GPU), the network runs, and the scores are read back to the host.
//!
//! What runs the network, from fastest to plainest, each kept only where it works and gives
//! the eager network's scores (else the next, with the reason in the engine note):
//! - on CUDA by default, Inductor's fused kernels from an AOTInductor package (`aoti.rs`),
//!   compiled once per machine and cached; on the CPU when the rig asks (`aoti = true`);
//! - libtorch's eager kernels, one call per operator (`mobilenet.rs`).
//!
//! On CUDA either runs as a CUDA graph by default (`shim::CudaGraph`): captured once when
//! the backend opens, replayed per classification; the copies in and out stay outside it.

mod aoti;
mod mobilenet;
mod shim;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tch::{Kind, Tensor};

use super::spec::{Device, Precision, TorchSpec};
use super::{Backend, EngineInfo};
use crate::input::{InputSpec, TensorType};
use crate::models::NUM_CLASSES;
use mobilenet::MobileNetV2;

/// The libtorch version tch 0.24 is built for, reported when the wheel's `version.py` cannot
/// be found (tch itself exposes no version).
const PINNED_LIBTORCH: &str = "2.11.0";

/// MobileNetV2's input: 224×224 RGB, normalized to [−1, 1] as f32.
const SIDE: i64 = 224;
const IMAGE_BYTES: usize = (SIDE * SIDE * 3) as usize * 4;

/// Uncaptured passes on the capture stream before the capture, as in PyTorch's recipe for
/// graphs: per-stream lazy set-up (cuBLAS and cuDNN workspaces) must happen outside it.
#[cfg(joulebench_cuda_graph)]
const GRAPH_WARMUP: u32 = 3;

/// The most an AOTInductor package's probabilities may differ from the eager network's before
/// the backend refuses the package. Its fused kernels sum in their own order through 53
/// layers, so the scores are not bit-equal; a package of other weights, layout or network is
/// off by tenths. fp32 measured 1e-6 on the CPU; fp16's 11 mantissa bits leave more.
fn aoti_tolerance(precision: Precision) -> f32 {
    match precision {
        Precision::Fp32 => 1e-4,
        Precision::Fp16 => 1e-2,
    }
}

/// The most a replayed graph's probabilities may differ from the eager pass's before the
/// backend refuses the graph. Replay runs the kernels eager launches, on the same data, so
/// the outputs are expected equal; the bounds only allow for a cuDNN algorithm that sums in
/// another order (fp16 keeps 11 mantissa bits, so its bound is wider).
// Used by the graph's checks, which need the shim (and by the tests).
#[cfg_attr(not(joulebench_cuda_graph), allow(dead_code))]
fn graph_tolerance(precision: Precision) -> f32 {
    match precision {
        Precision::Fp32 => 1e-5,
        Precision::Fp16 => 1e-3,
    }
}

/// What computes the scores from the NCHW input.
enum Network {
    /// libtorch's kernels, one call per operator.
    Eager(MobileNetV2),
    /// An AOTInductor package's fused kernels.
    #[cfg(joulebench_aoti)]
    Compiled(shim::AotiPackage),
}

impl Network {
    fn forward(&mut self, nchw: &Tensor) -> Result<Tensor> {
        match self {
            Network::Eager(net) => net.forward(nchw),
            #[cfg(joulebench_aoti)]
            Network::Compiled(package) => package.run(nchw),
        }
    }
}

pub struct TorchBackend {
    network: Network,
    batch: usize,
    /// `[batch, 224, 224, 3]` f32 on the host (page-locked for a GPU): `batch` copies of the
    /// input, rewritten only when the input bytes change.
    host: Tensor,
    /// The input bytes `host` holds.
    last_input: Vec<u8>,
    /// The same shape on the GPU, the target of the per-call host-to-device copy; None on
    /// the CPU.
    device_nhwc: Option<Tensor>,
    /// `[batch, 3, 224, 224]` in the model's precision, channels-last in memory where the
    /// backend keeps activations so: what the network reads.
    nchw: Tensor,
    /// The layout change and the forward pass captured as a CUDA graph, from `device_nhwc`
    /// to the scores; None runs them eager.
    graph: Option<Graphed>,
    /// Why the network runs slower than the default would (eager kernels, no graph): the
    /// summary's engine note.
    note: Option<String>,
    /// The AOTInductor package the network runs from, if it does.
    package: Option<std::path::PathBuf>,
    input: InputSpec,
    signature: super::Signature,
    engine: EngineInfo,
}

/// A captured forward pass and the scores tensor each replay overwrites.
#[cfg(joulebench_cuda_graph)]
struct Graphed {
    /// Allocated in the graph's memory pool during the capture: declared before `graph` so
    /// it is dropped first.
    probs: Tensor,
    graph: shim::CudaGraph,
}

/// No graphs without the shim: a type with no values keeps `Option<Graphed>` always None.
#[cfg(not(joulebench_cuda_graph))]
enum Graphed {}

impl Graphed {
    /// Replays the graph on the device's current stream; the scores it writes.
    #[cfg(joulebench_cuda_graph)]
    fn replay(&mut self) -> Result<Tensor> {
        self.graph.replay()?;
        Ok(self.probs.shallow_clone())
    }

    #[cfg(not(joulebench_cuda_graph))]
    fn replay(&mut self) -> Result<Tensor> {
        match *self {}
    }
}

impl TorchBackend {
    /// Loads the float weights of the int8 `model` onto the rig's device and precision.
    pub fn open(spec: &TorchSpec, model: &Path) -> Result<Self> {
        let device = spec.device.unwrap_or(Device::Cpu);
        let precision = spec.precision.unwrap_or(Precision::Fp32);
        let tdevice = tch_device(device, spec)?;
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

        let channels_last = spec
            .channels_last
            .unwrap_or(matches!(device, Device::Cuda(_)) && precision == Precision::Fp16);
        let (host, device_nhwc, nchw) = input_tensors(batch, tdevice, kind, channels_last)?;
        let mut backend = Self {
            network: Network::Eager(net),
            batch,
            host,
            last_input: Vec::new(),
            device_nhwc,
            nchw,
            graph: None,
            note: None,
            package: None,
            input: InputSpec {
                height: SIDE as u32,
                width: SIDE as u32,
                channels: 3,
                dtype: TensorType::F32,
            },
            // At the batch, as run.json records a batched `tflite` backend's.
            signature: super::signature::image_classifier(
                SIDE as u32,
                SIDE as u32,
                TensorType::F32,
                NUM_CLASSES,
            )
            .batched(batch)?,
            engine: EngineInfo {
                engine: "torch".into(),
                version: format!("libtorch {}", libtorch_version()),
                // Set below, once it is known whether graphs run.
                accelerator: String::new(),
                threads: spec.threads,
            },
        };
        // One pass now, so that a precision the device has no kernels for (fp16 convolutions
        // on some CPU builds) fails here with its reason rather than in the timed run. It is
        // also the warm-up a capture needs (cuDNN's algorithm search, the allocator's blocks).
        backend
            .infer(&[0; IMAGE_BYTES], &mut Vec::new())
            .with_context(|| format!("{} on {device} cannot run", precision.as_str()))?;
        // The GPU's name is in the NVML sensor's detail; tch has no call for it.
        backend.engine.accelerator = format!("{device} {}", precision.as_str());
        if channels_last {
            backend.engine.accelerator += " channels-last";
        }
        backend.choose_aoti(spec, device, precision, channels_last, &weights)?;
        backend.choose_graph(device, precision, spec.cuda_graph)?;
        Ok(backend)
    }

    /// Runs the network from an AOTInductor package where the rig asks for one (`aoti`) or
    /// leaves it to the default (on CUDA); where the package cannot run, an error if the rig
    /// asked, else the eager network with a note saying why.
    fn choose_aoti(
        &mut self,
        spec: &TorchSpec,
        device: Device,
        precision: Precision,
        channels_last: bool,
        weights: &Path,
    ) -> Result<()> {
        match (device, spec.aoti) {
            (_, Some(false)) | (Device::Cpu, None) => {}
            (_, want) => {
                let key = package_key(spec, device, precision, self.batch, channels_last, weights);
                match key.and_then(|key| self.use_aoti(&key, weights)) {
                    Ok(()) => self.engine.accelerator += " AOTInductor",
                    Err(e) if want == Some(true) => {
                        return Err(e.context("aoti = true, but the AOTInductor package cannot run"))
                    }
                    Err(e) => self.add_note(format!(
                        "eager kernels, not an AOTInductor package: {e:#} (aoti = false in the \
                         rig runs eager without this note)"
                    )),
                }
            }
        }
        Ok(())
    }

    /// Captures the network as a CUDA graph where the rig asks for one (`cuda_graph`) or
    /// leaves it to the default (on CUDA); where it cannot, an error if the rig asked, else
    /// eager launches with a note saying why.
    fn choose_graph(
        &mut self,
        device: Device,
        precision: Precision,
        cuda_graph: Option<bool>,
    ) -> Result<()> {
        match (device, cuda_graph) {
            (Device::Cpu, Some(true)) => {
                bail!("cuda_graph = true needs a CUDA device (the backend's device is cpu)")
            }
            (Device::Cpu, Some(false)) => {}
            (Device::Cpu, None) => {
                self.add_note("no CUDA graph: CUDA graphs need a CUDA device".into());
            }
            (Device::Cuda(_), Some(false)) => self.mark_ungraphed(),
            (Device::Cuda(n), want) => match self.use_graph(n as usize, precision) {
                Ok(()) => self.engine.accelerator += " CUDA graph",
                Err(e) if want == Some(true) => {
                    return Err(e.context("cuda_graph = true, but CUDA graphs cannot run"))
                }
                Err(e) => {
                    self.mark_ungraphed();
                    self.add_note(format!(
                        "no CUDA graph: {e:#} (cuda_graph = false in the rig runs without a \
                             graph and without this note)"
                    ));
                }
            },
        }
        Ok(())
    }

    /// Why the network runs slower than the default would, if it does.
    pub fn engine_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The AOTInductor package the network runs from, if it does.
    pub fn aoti_package(&self) -> Option<&Path> {
        self.package.as_deref()
    }

    /// On CUDA without a graph, the accelerator says that eager kernels are launched one by
    /// one (a package's run needs no word: it is one call).
    fn mark_ungraphed(&mut self) {
        if self.package.is_none() {
            self.engine.accelerator += " eager";
        }
    }

    fn add_note(&mut self, note: String) {
        self.note = Some(match self.note.take() {
            Some(before) => format!("{before}; {note}"),
            None => note,
        });
    }

    /// Runs the network from the AOTInductor package for `key` (cached, else compiled now),
    /// kept only if its scores match the eager network's on the check inputs
    /// ([`Self::reference_scores`]). A cached package that fails to load or to match is
    /// compiled again once: it may be from another GPU that NVML names alike, or damaged.
    #[cfg(joulebench_aoti)]
    fn use_aoti(&mut self, key: &aoti::PackageKey, weights: &Path) -> Result<()> {
        let exporter = aoti::Exporter::project()?;
        let cuda = match key.device {
            Device::Cpu => None,
            Device::Cuda(n) => Some(n as usize),
        };
        let cases = self.reference_scores()?;
        let mut fresh = false;
        loop {
            let (path, how) = exporter.package(&aoti::cache_dir(), key, weights, fresh)?;
            if let aoti::Provenance::Exported(seconds) = how {
                eprintln!("joulebench: compiled {} in {seconds:.0} s", path.display());
            }
            let checked = shim::AotiPackage::load(&path, cuda).and_then(|package| {
                let eager = std::mem::replace(&mut self.network, Network::Compiled(package));
                let checked = self.check_against(&cases, aoti_tolerance(key.precision));
                if checked.is_err() {
                    self.network = eager;
                }
                checked
            });
            match checked {
                Ok(()) => {
                    self.package = Some(path);
                    return Ok(());
                }
                Err(e) if how == aoti::Provenance::Cached => {
                    eprintln!(
                        "joulebench: the cached AOTInductor package {} cannot be used ({e:#}); \
                         compiling it again",
                        path.display()
                    );
                    fresh = true;
                }
                Err(e) => return Err(e.context(format!("package {}", path.display()))),
            }
        }
    }

    #[cfg(not(joulebench_aoti))]
    fn use_aoti(&mut self, _: &aoti::PackageKey, _: &Path) -> Result<()> {
        Err(anyhow!(shim::aoti_shim()
            .err()
            .unwrap_or("the AOTInductor shim was not built")))
    }

    /// The check inputs, an all-zero image and [`check_pattern`], with the scores the
    /// network as it now runs gives them: what a package or a graph must reproduce. The
    /// pattern comes last, so the device buffer holds it afterwards (a capture's input, which
    /// the check then overwrites and brings back).
    #[cfg_attr(not(any(joulebench_aoti, joulebench_cuda_graph)), allow(dead_code))]
    fn reference_scores(&mut self) -> Result<Vec<(Vec<u8>, Vec<f32>)>> {
        [vec![0; IMAGE_BYTES], check_pattern()]
            .into_iter()
            .map(|input| {
                let mut scores = Vec::new();
                self.infer(&input, &mut scores)?;
                Ok((input, scores))
            })
            .collect()
    }

    /// Whether the network as it now runs gives each input's `expected` scores, within
    /// `tolerance`.
    #[cfg_attr(not(any(joulebench_aoti, joulebench_cuda_graph)), allow(dead_code))]
    fn check_against(&mut self, cases: &[(Vec<u8>, Vec<f32>)], tolerance: f32) -> Result<()> {
        let mut scores = Vec::new();
        for (i, (input, expected)) in cases.iter().enumerate() {
            self.infer(input, &mut scores)?;
            let diff = max_abs_diff(&scores, expected);
            if diff > tolerance {
                bail!(
                    "its scores differ from the reference ones on check input {} of {} by {diff:e} (more \
                     than {tolerance:e})",
                    i + 1,
                    cases.len()
                );
            }
        }
        Ok(())
    }

    /// Captures the forward pass on CUDA device `device` and keeps the graph only if its
    /// replay gives the uncaptured pass's scores (of eager kernels or of a package, whichever
    /// the network runs), on the input it was captured with and on another: a graph that
    /// reads a stale buffer or computes something else is refused.
    #[cfg(joulebench_cuda_graph)]
    fn use_graph(&mut self, device: usize, precision: Precision) -> Result<()> {
        shim::graph_shim().map_err(|why| anyhow!(why))?;
        let cases = self.reference_scores()?;
        self.graph = Some(self.capture(device).context("CUDA graph capture failed")?);
        let checked = self.check_against(&cases, graph_tolerance(precision));
        if checked.is_err() {
            self.graph = None;
        }
        checked.context("the replayed graph")
    }

    #[cfg(not(joulebench_cuda_graph))]
    fn use_graph(&mut self, _: usize, _: Precision) -> Result<()> {
        Err(anyhow!(shim::graph_shim()
            .err()
            .unwrap_or("the CUDA-graph shim was not built")))
    }

    /// Captures the NHWC → NCHW copy (with the precision change) and the forward pass, from
    /// `device_nhwc` to a scores tensor of the graph's own.
    #[cfg(joulebench_cuda_graph)]
    fn capture(&mut self, device: usize) -> Result<Graphed> {
        let nhwc = self
            .device_nhwc
            .as_ref()
            .context("a CUDA backend has a device input buffer")?;
        let (network, nchw) = (&mut self.network, &mut self.nchw);
        let mut probs = None;
        let graph = tch::no_grad(|| {
            shim::CudaGraph::capture(device, GRAPH_WARMUP, &mut || -> Result<()> {
                nchw.f_copy_(&nhwc.f_permute([0i64, 3, 1, 2].as_slice())?)?;
                probs = Some(network.forward(nchw)?);
                Ok(())
            })
        })?;
        let probs = probs.context("the captured forward pass left no scores")?;
        Ok(Graphed { probs, graph })
    }
}

/// The tch device for the rig's `device`, which must exist; on CUDA, with cuDNN's benchmark
/// mode as the rig sets it.
fn tch_device(device: Device, spec: &TorchSpec) -> Result<tch::Device> {
    Ok(match device {
        Device::Cpu => tch::Device::Cpu,
        Device::Cuda(n) => {
            let count = tch::Cuda::device_count();
            if !tch::Cuda::is_available() || i64::from(n) >= count {
                bail!("CUDA device cuda:{n} is not available (tch sees {count} CUDA devices)");
            }
            tch::Cuda::cudnn_set_benchmark(spec.cudnn_benchmark.unwrap_or(true));
            tch::Device::Cuda(n as usize)
        }
    })
}

/// The input's three tensors: `[batch, 224, 224, 3]` f32 on the host, its copy on a GPU
/// device (none on the CPU), and `[batch, 3, 224, 224]` in `kind` on the device, the
/// network's input (see the fields of [`TorchBackend`]).
fn input_tensors(
    batch: usize,
    tdevice: tch::Device,
    kind: Kind,
    channels_last: bool,
) -> Result<(Tensor, Option<Tensor>, Tensor)> {
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
    let nchw = if channels_last {
        // NCHW indices over NHWC memory: PyTorch's channels-last format.
        Tensor::f_zeros(nhwc.as_slice(), (kind, tdevice))?.f_permute([0i64, 3, 1, 2].as_slice())?
    } else {
        Tensor::f_zeros([batch as i64, 3, SIDE, SIDE].as_slice(), (kind, tdevice))?
    };
    Ok((host, device_nhwc, nchw))
}

/// What names this backend's AOTInductor package in the cache. The shim's absence first: it
/// says more than a key that cannot be made.
fn package_key(
    spec: &TorchSpec,
    device: Device,
    precision: Precision,
    batch: usize,
    channels_last: bool,
    weights: &Path,
) -> Result<aoti::PackageKey> {
    shim::aoti_shim()
        .map_err(|why| anyhow!(why))
        .and_then(|()| {
            Ok(aoti::PackageKey {
                hardware: aoti::hardware_name(device)?,
                device,
                precision,
                batch,
                channels_last,
                threads: spec.threads,
                libtorch: libtorch_version(),
                weights_sha256: aoti::weights_digest(weights)?,
            })
        })
}

/// A second check input for a captured graph, unlike the all-zero one: f32 values spread over
/// [−1, 1], repeating every 251 values (a prime: the pattern does not line up with pixels or
/// rows).
// Used by the package's and the graph's checks, which need the shim (and by the tests).
#[cfg_attr(not(any(joulebench_aoti, joulebench_cuda_graph)), allow(dead_code))]
fn check_pattern() -> Vec<u8> {
    (0..IMAGE_BYTES / 4)
        .flat_map(|i| ((((i * 7919) % 251) as f32) / 125.0 - 1.0).to_ne_bytes())
        .collect()
}

// Used by the package's and the graph's checks, which need the shim (and by the tests).
#[cfg_attr(not(any(joulebench_aoti, joulebench_cuda_graph)), allow(dead_code))]
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

impl TorchBackend {
    /// The one image the network takes.
    pub fn input(&self) -> &InputSpec {
        &self.input
    }
}

impl Backend for TorchBackend {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    fn signature(&self) -> &super::Signature {
        &self.signature
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
            let probs = match &mut self.graph {
                // The layout change and the network, as captured: one launch.
                Some(graph) => graph.replay()?,
                None => {
                    self.nchw
                        .f_copy_(&nhwc.f_permute([0i64, 3, 1, 2].as_slice())?)?;
                    self.network.forward(&self.nchw)?
                }
            };
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
    use joulebench_test_support::Hardware;

    const MODELS: [&str; 2] = ["mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq"];
    const IMAGES: [&str; 4] = ["bird.bmp", "cat.bmp", "grace_hopper.bmp", "parrot.jpg"];

    fn manifest() -> Manifest {
        Manifest::load_default().unwrap()
    }

    fn spec(threads: u32, precision: Precision, batch: u32) -> TorchSpec {
        TorchSpec {
            threads,
            precision: Some(precision),
            batch: Some(batch),
            ..TorchSpec::default()
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

    /// Classifies `images` (of `model`) with `a` and `b` in turn and asserts that their
    /// scores differ by at most `tolerance` and their top-1 agree (and are the manifest's
    /// where `manifest_top1`); returns the largest difference.
    fn agree_on<'i>(
        (a, b): (&mut TorchBackend, &mut TorchBackend),
        model: &str,
        images: impl IntoIterator<Item = &'i &'i str>,
        tolerance: f32,
        manifest_top1: bool,
    ) -> f32 {
        let m = manifest();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut largest = 0.0f32;
        for image in images {
            let input = encode(model, image, a.input());
            a.infer(&input, &mut x).unwrap();
            b.infer(&input, &mut y).unwrap();
            let diff = max_diff(&x, &y);
            largest = largest.max(diff);
            assert!(diff <= tolerance, "{model} {image}: {diff:e}");
            assert_eq!(top1(&x), top1(&y), "{model} {image}");
            if manifest_top1 {
                let want = m.open_image(image).unwrap();
                let want = want.expected_top1(model).unwrap().index;
                assert_eq!(top1(&x), want, "{model} {image}");
            }
        }
        largest
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
            let mut int8 = TfliteBackend::open(&path, 2, 1).unwrap();
            let (mut fs, mut qs) = (Vec::new(), Vec::new());
            for image in IMAGES {
                float
                    .infer(&encode(name, image, float.input()), &mut fs)
                    .unwrap();
                let input = crate::backend::feed::prepare(
                    int8.signature(),
                    &m.open_image(image).unwrap().path,
                    m.open_model(name)
                        .unwrap()
                        .input
                        .map_or(Normalization::MOBILENET, |i| Normalization {
                            mean: i.mean,
                            std: i.std,
                        }),
                )
                .unwrap();
                int8.infer(&input, &mut qs).unwrap();
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
            joulebench_test_support::skip_test(
                "cuda_without_a_gpu_is_a_one_line_error",
                Hardware::NoCudaGpu,
                "this process sees a CUDA GPU (tests/torch_backend.rs hides it from a run)",
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

    /// On the CPU the network runs eager and says so (unless the rig asked for eager);
    /// asking for graphs there is an error.
    #[test]
    fn cpu_runs_eager_with_a_note() {
        let (_dir, path) = model_copy(MODELS[0]);
        let mut s = spec(1, Precision::Fp32, 1);
        let b = TorchBackend::open(&s, &path).unwrap();
        assert_eq!(b.engine().accelerator, "cpu fp32");
        assert_eq!(
            b.engine_note(),
            Some("no CUDA graph: CUDA graphs need a CUDA device")
        );
        assert_eq!(b.aoti_package(), None);
        s.cuda_graph = Some(false);
        let b = TorchBackend::open(&s, &path).unwrap();
        assert_eq!(
            (b.engine().accelerator.as_str(), b.engine_note()),
            ("cpu fp32", None)
        );
        s.cuda_graph = Some(true);
        let err = format!("{:#}", TorchBackend::open(&s, &path).err().unwrap());
        assert_eq!(
            err,
            "cuda_graph = true needs a CUDA device (the backend's device is cpu)"
        );
    }

    /// build.rs sets each part's cfg and variable together; a build without a part says why
    /// (the engine note). This machine's answers are printed.
    #[test]
    fn the_build_says_which_parts_of_the_shim_it_has() {
        // Runtime bools, so the check is of build.rs and not a constant to clippy.
        for (part, built, status) in [
            (
                "AOTInductor",
                std::hint::black_box(cfg!(joulebench_aoti)),
                shim::aoti_shim(),
            ),
            (
                "CUDA graphs",
                std::hint::black_box(cfg!(joulebench_cuda_graph)),
                shim::graph_shim(),
            ),
        ] {
            match status {
                Ok(()) => {
                    assert!(built, "{part}");
                    eprintln!("shim, {part}: built");
                }
                Err(why) => {
                    assert!(!built, "{part}");
                    assert!(
                        why.starts_with("not built: ") && !why.contains('\n'),
                        "{why}"
                    );
                    eprintln!("shim, {part}: {why}");
                }
            }
        }
    }

    /// Why the CPU tests of AOTInductor packages cannot run here, if they cannot: compiling
    /// one needs the shim and the project's torch venv.
    /// Checks that this build and machine can export and compile AOTInductor packages: the
    /// shim built, the torch venv that scripts/setup.sh installs there. Nothing of it is
    /// hardware, so a test that needs it fails without it instead of skipping.
    fn assert_aoti_here() {
        shim::aoti_shim().unwrap_or_else(|why| panic!("{why}"));
        let exporter = aoti::Exporter::project().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            exporter.python.is_file(),
            "no {} (`make setup` creates the torch venv)",
            exporter.python.display()
        );
    }

    /// A package compiled for this CPU (once; cached after) gives the eager network's scores
    /// within [`aoti_tolerance`] on every image, and their top-1.
    #[test]
    fn an_aoti_package_classifies_like_the_eager_network() {
        assert_aoti_here();
        let name = MODELS[0];
        let (_dir, path) = model_copy(name);
        let mut compiled = TorchBackend::open(
            &TorchSpec {
                aoti: Some(true),
                ..spec(1, Precision::Fp32, 1)
            },
            &path,
        )
        .unwrap();
        assert_eq!(compiled.engine().accelerator, "cpu fp32 AOTInductor");
        let package = compiled.aoti_package().unwrap();
        assert!(
            package.starts_with(aoti::cache_dir()),
            "{}",
            package.display()
        );
        let mut eager = TorchBackend::open(&spec(1, Precision::Fp32, 1), &path).unwrap();
        let tolerance = aoti_tolerance(Precision::Fp32);
        let largest = agree_on((&mut compiled, &mut eager), name, &IMAGES, tolerance, true);
        eprintln!(
            "AOTInductor vs eager on the CPU, fp32: largest |Δp| {largest:e} (tolerance {:e})",
            aoti_tolerance(Precision::Fp32)
        );
    }

    /// A cached package that cannot be loaded (here: damaged) is compiled again, once, and the
    /// backend runs from the new one; batch 2, so a batch above 1 is compiled too.
    #[test]
    fn a_damaged_cached_package_is_compiled_again() {
        assert_aoti_here();
        let (_dir, path) = model_copy(MODELS[0]);
        let s = TorchSpec {
            aoti: Some(true),
            ..spec(1, Precision::Fp32, 2)
        };
        let package = TorchBackend::open(&s, &path)
            .unwrap()
            .aoti_package()
            .unwrap()
            .to_path_buf();
        std::fs::write(&package, b"PK\x03\x04 not a zip any more").unwrap();
        let mut b = TorchBackend::open(&s, &path).unwrap();
        assert_eq!(b.aoti_package(), Some(package.as_path()));
        assert!(std::fs::metadata(&package).unwrap().len() > 1 << 20);
        let input = encode(MODELS[0], "bird.bmp", b.input());
        let mut scores = Vec::new();
        b.infer(&input, &mut scores).unwrap();
        assert_eq!(top1(&scores), 20);
    }

    /// Channels-last activations compute the same scores as NCHW ones (other convolution
    /// kernels, so not bit-equal: within the package bound).
    #[test]
    fn channels_last_classifies_like_nchw() {
        let (_dir, path) = model_copy(MODELS[1]);
        let mut nhwc = TorchBackend::open(
            &TorchSpec {
                channels_last: Some(true),
                ..spec(1, Precision::Fp32, 1)
            },
            &path,
        )
        .unwrap();
        assert_eq!(nhwc.engine().accelerator, "cpu fp32 channels-last");
        let mut nchw = TorchBackend::open(&spec(1, Precision::Fp32, 1), &path).unwrap();
        let tolerance = aoti_tolerance(Precision::Fp32);
        agree_on((&mut nhwc, &mut nchw), MODELS[1], &IMAGES, tolerance, false);
    }

    /// Without a GPU, a capture reaches the shim, which must turn libtorch's exception into
    /// an error (an exception unwinding into Rust would abort or worse); the forward pass is
    /// never called.
    #[cfg(joulebench_cuda_graph)]
    #[test]
    fn a_capture_without_a_gpu_is_an_error_not_a_crash() {
        if tch::Cuda::is_available() {
            joulebench_test_support::skip_test(
                "a_capture_without_a_gpu_is_an_error_not_a_crash",
                Hardware::NoCudaGpu,
                "this process sees a CUDA GPU",
            );
            return;
        }
        let mut calls = 0;
        let err = shim::CudaGraph::capture(0, 1, &mut || -> Result<()> {
            calls += 1;
            Ok(())
        })
        .err()
        .expect("no GPU to capture on");
        let err = format!("{err:#}");
        eprintln!("capture without a GPU: {err}");
        assert!(!err.is_empty() && !err.contains('\n'), "{err}");
        assert_eq!(calls, 0);
    }

    /// Why a GPU test cannot run here, if it cannot.
    /// Whether this machine has a CUDA GPU for the graph tests; where it has one, the build
    /// must have the graph shim (a GPU without it is a broken build, not a skip).
    fn cuda_graphs_here(test: &str) -> bool {
        if !tch::Cuda::is_available() {
            joulebench_test_support::skip_test(test, Hardware::CudaGpu, "tch sees no CUDA device");
            return false;
        }
        shim::graph_shim().unwrap_or_else(|why| panic!("{why}"));
        true
    }

    /// A backend on the first GPU; `aoti` None is the default (a package where one works).
    fn cuda_spec(
        precision: Precision,
        batch: u32,
        cuda_graph: Option<bool>,
        aoti: Option<bool>,
    ) -> TorchSpec {
        TorchSpec {
            device: Some(Device::Cuda(0)),
            cuda_graph,
            aoti,
            ..spec(1, precision, batch)
        }
    }

    /// The accelerator a CUDA backend reports: fp16 is channels-last by default.
    fn cuda_accelerator(precision: Precision, engines: &str) -> String {
        let layout = match precision {
            Precision::Fp16 => " channels-last",
            Precision::Fp32 => "",
        };
        format!("cuda:0 {}{layout} {engines}", precision.as_str())
    }

    /// On a GPU, the replayed graph gives eager's scores (within [`graph_tolerance`]; the
    /// largest difference is printed) on every image, the images alternating so that each
    /// replay must read the input just copied in; fp32 batch 1 and fp16 batch 8.
    #[test]
    fn cuda_graph_output_equals_eager_output() {
        if !cuda_graphs_here("cuda_graph_output_equals_eager_output") {
            return;
        }
        for (precision, batch) in [(Precision::Fp32, 1), (Precision::Fp16, 8)] {
            for name in MODELS {
                let (_dir, path) = model_copy(name);
                let mut graphed =
                    TorchBackend::open(&cuda_spec(precision, batch, None, Some(false)), &path)
                        .unwrap();
                assert_eq!(graphed.engine_note(), None);
                let p = precision.as_str();
                assert_eq!(
                    graphed.engine().accelerator,
                    cuda_accelerator(precision, "CUDA graph")
                );
                let mut eager = TorchBackend::open(
                    &cuda_spec(precision, batch, Some(false), Some(false)),
                    &path,
                )
                .unwrap();
                assert_eq!(
                    eager.engine().accelerator,
                    cuda_accelerator(precision, "eager")
                );
                let largest = agree_on(
                    (&mut graphed, &mut eager),
                    name,
                    IMAGES.iter().chain(IMAGES.iter().rev()),
                    graph_tolerance(precision),
                    true,
                );
                eprintln!(
                    "CUDA graph vs eager, {name} {p} batch {batch}: largest |Δp| {largest:e} \
                     (tolerance {:e})",
                    graph_tolerance(precision)
                );
            }
        }
    }

    /// On a GPU: a forward pass that fails during warm-up, one that fails inside the
    /// capture, one that synchronises with the host (which capture forbids: libtorch's own
    /// error) and one that panics each end the capture with an error (the panic resumed), and
    /// leave the device, its streams and the allocator usable: eager work and a good capture
    /// still run afterwards.
    #[cfg(joulebench_cuda_graph)]
    #[test]
    fn failed_captures_are_errors_and_leave_cuda_usable() {
        use shim::CudaGraph;
        if !cuda_graphs_here("failed_captures_are_errors_and_leave_cuda_usable") {
            return;
        }
        let mut x = Tensor::f_ones([4i64].as_slice(), (Kind::Float, tch::Device::Cuda(0))).unwrap();
        let text = |r: Result<CudaGraph>| format!("{:#}", r.err().expect("the capture fails"));

        let err = text(CudaGraph::capture(0, 2, &mut || -> Result<()> {
            bail!("boom in warm-up")
        }));
        assert!(err.contains("boom in warm-up"), "{err}");

        let mut calls = 0;
        let err = text(CudaGraph::capture(0, 2, &mut || -> Result<()> {
            calls += 1;
            if calls == 3 {
                bail!("boom in the capture");
            }
            Ok(())
        }));
        assert!(
            err.contains("boom in the capture") && err.contains("during capture"),
            "{err}"
        );

        let err = text(CudaGraph::capture(0, 1, &mut || -> Result<()> {
            x.f_sum(Kind::Float)?.f_double_value(&[])?;
            Ok(())
        }));
        eprintln!("a host synchronisation inside a capture: {err}");
        assert!(err.contains("during capture"), "{err}");

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            CudaGraph::capture(0, 0, &mut || -> Result<()> {
                panic!("panic in the forward pass")
            })
        }));
        assert!(panicked.is_err());

        let eager = Vec::<f32>::try_from(x.f_mul_scalar(3.0).unwrap()).unwrap();
        assert_eq!(eager, vec![3.0; 4]);
        let mut out = None;
        let mut graph = CudaGraph::capture(0, 1, &mut || -> Result<()> {
            out = Some(x.f_mul_scalar(2.0)?);
            Ok(())
        })
        .unwrap();
        let out = out.unwrap();
        let _ = x.f_fill_(5.0).unwrap();
        graph.replay().unwrap();
        assert_eq!(Vec::<f32>::try_from(&out).unwrap(), vec![10.0; 4]);
        // The output lives in the graph's pool: dropped first.
        drop(out);
        drop(graph);
    }

    /// On a GPU, the default engine (an AOTInductor package replayed as a CUDA graph) gives
    /// the eager network's scores within [`aoti_tolerance`] on every image, alternating; fp32
    /// batch 1 and fp16 batch 8 (channels-last). Packages are compiled on the first run.
    #[test]
    fn cuda_aoti_output_equals_eager_output() {
        if !cuda_graphs_here("cuda_aoti_output_equals_eager_output") {
            return;
        }
        assert_aoti_here();
        let name = MODELS[0];
        let (_dir, path) = model_copy(name);
        for (precision, batch) in [(Precision::Fp32, 1), (Precision::Fp16, 8)] {
            let mut compiled =
                TorchBackend::open(&cuda_spec(precision, batch, None, None), &path).unwrap();
            assert_eq!(compiled.engine_note(), None);
            assert_eq!(
                compiled.engine().accelerator,
                cuda_accelerator(precision, "AOTInductor CUDA graph")
            );
            let mut eager = TorchBackend::open(
                &cuda_spec(precision, batch, Some(false), Some(false)),
                &path,
            )
            .unwrap();
            let largest = agree_on(
                (&mut compiled, &mut eager),
                name,
                IMAGES.iter().chain(IMAGES.iter().rev()),
                aoti_tolerance(precision),
                false,
            );
            eprintln!(
                "AOTInductor + CUDA graph vs eager, {} batch {batch}: largest |Δp| {largest:e} \
                 (tolerance {:e})",
                precision.as_str(),
                aoti_tolerance(precision)
            );
        }
    }

    /// GPU speed, eager kernels and AOTInductor packages, each without and with a CUDA graph:
    /// `cargo test --release --features torch --lib torch_cuda_graph_speed -- --ignored
    /// --nocapture` (scripts/gpu-check.sh runs it). Each classification as in a run: copy in,
    /// forward or replay, scores back.
    #[test]
    #[ignore]
    fn torch_cuda_graph_speed() {
        if !cuda_graphs_here("torch_cuda_graph_speed") {
            return;
        }
        let (_dir, path) = model_copy(MODELS[0]);
        for (precision, batch, runs) in [(Precision::Fp32, 1, 1000), (Precision::Fp16, 64, 300)] {
            for (cuda_graph, aoti) in [
                (Some(false), Some(false)),
                (None, Some(false)),
                (Some(false), None),
                (None, None),
            ] {
                let mut b =
                    TorchBackend::open(&cuda_spec(precision, batch, cuda_graph, aoti), &path)
                        .unwrap();
                let input = encode(MODELS[0], "bird.bmp", b.input());
                let mut scores = Vec::new();
                for _ in 0..50 {
                    b.infer(&input, &mut scores).unwrap();
                }
                let mut ms = Vec::with_capacity(runs);
                let start = Instant::now();
                for _ in 0..runs {
                    let t = Instant::now();
                    b.infer(&input, &mut scores).unwrap();
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
                let images_per_s = (runs * batch as usize) as f64 / start.elapsed().as_secs_f64();
                ms.sort_by(f64::total_cmp);
                eprintln!(
                    "{}, batch {batch}: median {:.3} ms, p90 {:.3} ms, {images_per_s:.0} images/s",
                    b.engine().accelerator,
                    ms[runs / 2],
                    ms[runs * 9 / 10]
                );
            }
        }
    }

    #[test]
    fn engine_reports_the_wheel_version() {
        let v = libtorch_version();
        assert!(v.starts_with(PINNED_LIBTORCH), "{v}");
    }

    /// CPU speed of an AOTInductor package against eager kernels, fp32 batch 1, 1 thread,
    /// side by side: 7 alternating rounds of 100 classifications each, the ratio of the
    /// medians printed. `cargo test --release --features torch --lib torch_cpu_aoti_speed --
    /// --ignored --nocapture --test-threads=1`.
    #[test]
    #[ignore]
    fn torch_cpu_aoti_speed() {
        assert_aoti_here();
        let (_dir, path) = model_copy(MODELS[0]);
        let eager_spec = spec(1, Precision::Fp32, 1);
        let aoti_spec = TorchSpec {
            aoti: Some(true),
            ..eager_spec.clone()
        };
        let mut backends = [
            TorchBackend::open(&eager_spec, &path).unwrap(),
            TorchBackend::open(&aoti_spec, &path).unwrap(),
        ];
        let input = encode(MODELS[0], "parrot.jpg", backends[0].input());
        let mut scores = Vec::new();
        let mut rounds = [Vec::new(), Vec::new()];
        for _ in 0..7 {
            for (b, per_s) in backends.iter_mut().zip(&mut rounds) {
                for _ in 0..10 {
                    b.infer(&input, &mut scores).unwrap();
                }
                let start = Instant::now();
                for _ in 0..100 {
                    b.infer(&input, &mut scores).unwrap();
                }
                per_s.push(100.0 / start.elapsed().as_secs_f64());
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (eager, compiled) = (median(&mut rounds[0]), median(&mut rounds[1]));
        eprintln!(
            "CPU fp32 batch 1, 1 thread: eager {eager:.1}/s, AOTInductor {compiled:.1}/s \
             (medians of 7 alternating rounds), ratio {:.2}",
            compiled / eager
        );
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
