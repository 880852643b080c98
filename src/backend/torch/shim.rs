//! The torch backend's C++ shim (`shim/`, compiled by build.rs against libtorch's headers):
//! what tch has no API for. This module is its only user and holds all of its `unsafe`.
//!
//! - **AOTInductor packages** ([`AotiPackage`], `shim/aoti.cpp`): a network compiled by
//!   Inductor ahead of time into fused kernels, loaded and run with libtorch's
//!   `AOTIModelPackageLoader`. PyTorch's own way of running compiled models outside Python.
//! - **CUDA graphs** ([`CudaGraph`], `shim/cuda_graph.cpp`): the forward pass captured once,
//!   then replayed per classification. Replaying launches the network's kernels (well over a
//!   hundred) with one call, not one each: at batch 1 the eager loop is bound by those
//!   launches (FINDINGS.md: about 2.8 ms eager against 0.6 ms replayed on an H100), so without
//!   graphs the rig measures its own launch overhead rather than the GPU.
//!
//! build.rs builds each part only where it finds what it needs (libtorch's headers; for graphs
//! also libtorch's CUDA libraries and the CUDA runtime headers); [`aoti_shim`] and
//! [`graph_shim`] say why a part is missing, and the backend then runs eager.

/// Whether this build can run AOTInductor packages: `Err` holds why not (from build.rs).
pub fn aoti_shim() -> Result<(), &'static str> {
    built(
        option_env!("JOULEBENCH_AOTI_SHIM"),
        "this build has no AOTInductor shim (build.rs did not say why)",
    )
}

/// Whether this build can capture CUDA graphs: `Err` holds why not (from build.rs).
pub fn graph_shim() -> Result<(), &'static str> {
    built(
        option_env!("JOULEBENCH_CUDA_GRAPH_SHIM"),
        "this build has no CUDA-graph shim (build.rs did not say why)",
    )
}

fn built(status: Option<&'static str>, unknown: &'static str) -> Result<(), &'static str> {
    match status {
        Some("built") => Ok(()),
        Some(why) => Err(why),
        None => Err(unknown),
    }
}

#[cfg(joulebench_cuda_graph)]
pub use graph::CudaGraph;

#[cfg(joulebench_aoti)]
pub use aoti::AotiPackage;

/// Room for one C++ error message; c10's messages without their backtrace fit.
#[cfg(any(joulebench_aoti, joulebench_cuda_graph))]
const ERR_LEN: usize = 1024;

/// The message the shim wrote into `buf` (NUL-terminated by its `snprintf`), on one line:
/// it ends up in the engine note, and CUDA's messages span several.
#[cfg(any(joulebench_aoti, joulebench_cuda_graph))]
fn message(buf: &[u8; ERR_LEN]) -> String {
    std::ffi::CStr::from_bytes_until_nul(buf)
        .map(|s| {
            s.to_string_lossy()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unreadable C++ error".into())
}

#[cfg(joulebench_aoti)]
mod aoti {
    use std::ffi::{c_char, c_int, CString};
    use std::path::Path;
    use std::ptr::NonNull;

    use anyhow::{anyhow, Context, Result};
    use tch::Tensor;

    use super::{message, ERR_LEN};

    /// `jb_aoti` of `aoti.cpp`: an `AOTIModelPackageLoader`, opaque here.
    #[repr(C)]
    struct RawPackage {
        _opaque: [u8; 0],
    }

    extern "C" {
        fn jb_aoti_load(
            path: *const c_char,
            device: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut RawPackage;
        fn jb_aoti_run(
            package: *mut RawPackage,
            input: *const torch_sys::C_tensor,
            output: *mut *mut torch_sys::C_tensor,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        fn jb_aoti_free(package: *mut RawPackage);
    }

    /// A loaded AOTInductor package: a network of one input and one output.
    pub struct AotiPackage {
        raw: NonNull<RawPackage>,
    }

    impl AotiPackage {
        /// Loads the package at `path`, compiled for CUDA device `cuda` (None: the CPU).
        pub fn load(path: &Path, cuda: Option<usize>) -> Result<Self> {
            let c_path = CString::new(path.as_os_str().as_encoded_bytes())
                .with_context(|| format!("{} has a NUL byte in its path", path.display()))?;
            let device = match cuda {
                Some(n) => c_int::try_from(n).map_err(|_| anyhow!("CUDA device {n}"))?,
                None => -1,
            };
            let mut err = [0u8; ERR_LEN];
            // SAFETY: `c_path` is NUL-terminated and outlives the call; the shim catches every
            // C++ exception; `err` has ERR_LEN bytes.
            let raw =
                unsafe { jb_aoti_load(c_path.as_ptr(), device, err.as_mut_ptr().cast(), ERR_LEN) };
            NonNull::new(raw)
                .map(|raw| Self { raw })
                .ok_or_else(|| anyhow!("cannot load {}: {}", path.display(), message(&err)))
        }

        /// Runs the network on `input` (on the package's device and in its precision and
        /// layout); on a GPU, queued on the device's current stream.
        pub fn run(&mut self, input: &Tensor) -> Result<Tensor> {
            let mut output = std::ptr::null_mut();
            let mut err = [0u8; ERR_LEN];
            // SAFETY: `raw` came from `jb_aoti_load` and is freed only in Drop; `input` is a
            // live tch tensor, whose pointer is the `at::Tensor*` the shim reads; the shim
            // catches every C++ exception; `err` has ERR_LEN bytes.
            let rc = unsafe {
                jb_aoti_run(
                    self.raw.as_ptr(),
                    input.as_ptr(),
                    &mut output,
                    err.as_mut_ptr().cast(),
                    ERR_LEN,
                )
            };
            if rc != 0 || output.is_null() {
                return Err(anyhow!("AOTInductor run failed: {}", message(&err)));
            }
            // SAFETY: the shim allocated `output` with `new at::Tensor`, as tch's own C
            // wrapper does, and handed its ownership over: tch frees it on drop.
            Ok(unsafe { Tensor::from_ptr(output) })
        }
    }

    impl Drop for AotiPackage {
        fn drop(&mut self) {
            // SAFETY: `raw` came from `jb_aoti_load` and is freed only here; the loader's
            // destructor does not throw.
            unsafe { jb_aoti_free(self.raw.as_ptr()) }
        }
    }
}

#[cfg(joulebench_cuda_graph)]
mod graph {
    use std::ffi::{c_char, c_int, c_void};
    use std::panic::{self, AssertUnwindSafe};
    use std::ptr::NonNull;

    use anyhow::{anyhow, Result};

    use super::{message, ERR_LEN};

    /// `jb_graph` of `cuda_graph.cpp`: an `at::cuda::CUDAGraph`, opaque here.
    #[repr(C)]
    struct RawGraph {
        _opaque: [u8; 0],
    }

    type Body = unsafe extern "C" fn(ctx: *mut c_void) -> c_int;

    extern "C" {
        fn jb_graph_capture(
            device: c_int,
            warmup: c_int,
            body: Body,
            ctx: *mut c_void,
            body_failed: *mut c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut RawGraph;
        fn jb_graph_replay(graph: *mut RawGraph, err: *mut c_char, err_len: usize) -> c_int;
        fn jb_graph_free(graph: *mut RawGraph);
    }

    /// The Rust side of a capture: the forward pass, and what it left behind when it failed.
    struct Capture<'a> {
        body: &'a mut dyn FnMut() -> Result<()>,
        error: Option<anyhow::Error>,
        panic: Option<Box<dyn std::any::Any + Send>>,
    }

    /// Called by the shim, on its capture stream, for each warm-up pass and for the captured
    /// one. A panic must not unwind through C++ (undefined behaviour): it is caught here and
    /// resumed once the shim has returned.
    unsafe extern "C" fn run_body(ctx: *mut c_void) -> c_int {
        // SAFETY: `ctx` is the `Capture` that `CudaGraph::capture` passed to the shim, alive
        // and not otherwise borrowed for the whole call.
        let capture = unsafe { &mut *ctx.cast::<Capture>() };
        match panic::catch_unwind(AssertUnwindSafe(|| (capture.body)())) {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                capture.error = Some(e);
                1
            }
            Err(payload) => {
                capture.panic = Some(payload);
                1
            }
        }
    }

    /// A captured CUDA graph. Tensors that the captured work writes (its outputs) live in the
    /// graph's memory pool: keep them, and drop them before the graph.
    pub struct CudaGraph {
        raw: NonNull<RawGraph>,
    }

    impl CudaGraph {
        /// Captures `body` on CUDA device `device`, after `warmup` uncaptured runs of it on
        /// the capture stream. `body` must only queue device work on tensors that outlive the
        /// graph (inputs already on the device, outputs it stores): no host synchronisation,
        /// no copy from or to the host, which capture forbids. The capture stream waits for
        /// the work queued before the call, and the work queued after it waits for the
        /// capture stream.
        pub fn capture(
            device: usize,
            warmup: u32,
            body: &mut dyn FnMut() -> Result<()>,
        ) -> Result<Self> {
            let device = c_int::try_from(device).map_err(|_| anyhow!("CUDA device {device}"))?;
            let warmup = c_int::try_from(warmup).map_err(|_| anyhow!("{warmup} warm-up runs"))?;
            let mut capture = Capture {
                body,
                error: None,
                panic: None,
            };
            let mut body_failed: c_int = 0;
            let mut err = [0u8; ERR_LEN];
            // SAFETY: `run_body` receives `capture` (alive until the call returns); the shim
            // catches every C++ exception, and `run_body` every panic, so nothing unwinds
            // across the boundary; `err` has ERR_LEN bytes.
            let raw = unsafe {
                jb_graph_capture(
                    device,
                    warmup,
                    run_body,
                    (&mut capture as *mut Capture).cast(),
                    &mut body_failed,
                    err.as_mut_ptr().cast(),
                    ERR_LEN,
                )
            };
            if let Some(payload) = capture.panic.take() {
                // The shim has cleaned up: the panic goes on as if nothing had been between.
                panic::resume_unwind(payload);
            }
            match NonNull::new(raw) {
                Some(raw) => Ok(Self { raw }),
                None if body_failed != 0 => {
                    let why = message(&err);
                    Err(match capture.error.take() {
                        Some(e) => e.context(why),
                        None => anyhow!(why),
                    })
                }
                None => Err(anyhow!(message(&err))),
            }
        }

        /// Queues one replay on the device's current stream (where the backend's copies run).
        pub fn replay(&mut self) -> Result<()> {
            let mut err = [0u8; ERR_LEN];
            // SAFETY: `raw` came from `jb_graph_capture` and is freed only in Drop; the shim
            // catches every C++ exception; `err` has ERR_LEN bytes.
            let rc =
                unsafe { jb_graph_replay(self.raw.as_ptr(), err.as_mut_ptr().cast(), ERR_LEN) };
            if rc == 0 {
                Ok(())
            } else {
                Err(anyhow!("CUDA graph replay failed: {}", message(&err)))
            }
        }
    }

    impl Drop for CudaGraph {
        fn drop(&mut self) {
            // SAFETY: `raw` came from `jb_graph_capture` and is freed only here; the C++
            // destructor does not throw.
            unsafe { jb_graph_free(self.raw.as_ptr()) }
        }
    }
}
