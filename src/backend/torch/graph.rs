//! CUDA graphs for the torch backend: the forward pass captured once, then replayed per
//! classification. tch has no API for graphs or streams, so a small C++ file over libtorch's
//! `at::cuda::CUDAGraph` (`cuda_graph.cpp`, compiled by build.rs) does the capture and the
//! replay; this module is its only user and holds all of its `unsafe`.
//!
//! Replaying a graph launches the network's kernels (well over a hundred) with one call, not one
//! each: at batch 1 the eager loop is bound by those launches (FINDINGS.md: about 2.8 ms
//! eager against 0.6 ms replayed on an H100), so without graphs the rig measures its own launch
//! overhead rather than the GPU.
//!
//! build.rs compiles the shim only where it finds the CUDA runtime headers and libtorch's CUDA
//! libraries; without them [`shim`] says why and the backend runs eager.

/// Whether this build has the shim: `Err` holds why not (from build.rs), for the engine note.
pub fn shim() -> Result<(), &'static str> {
    match option_env!("JOULEBENCH_CUDA_GRAPH_SHIM") {
        Some("built") => Ok(()),
        Some(why) => Err(why),
        None => Err("this build has no CUDA-graph shim (build.rs did not say why)"),
    }
}

#[cfg(joulebench_cuda_graph)]
pub use imp::CudaGraph;

#[cfg(joulebench_cuda_graph)]
mod imp {
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::panic::{self, AssertUnwindSafe};
    use std::ptr::NonNull;

    use anyhow::{anyhow, Result};

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

    /// Room for one C++ error message; c10's messages without their backtrace fit.
    const ERR_LEN: usize = 1024;

    /// The message the shim wrote into `buf` (NUL-terminated by its `snprintf`), on one line:
    /// it ends up in the engine note, and CUDA's messages span several.
    fn message(buf: &[u8; ERR_LEN]) -> String {
        CStr::from_bytes_until_nul(buf)
            .map(|s| {
                s.to_string_lossy()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|_| "unreadable C++ error".into())
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
