//! The slice of LiteRT's C API that [`super::LiteRtBackend`] needs, loaded at run time, and a
//! safe [`Session`] over it. All `unsafe` of the LiteRT engine lives in this file.
//!
//! Why by hand: `litert-sys` 0.2.1 binds the 2.1.4 headers, but from 2.1.6 on
//! `LiteRtCreateModelFromFile` takes a `LiteRtEnvironment` first (a library has that form
//! exactly when it exports `LiteRtCreateModelFromFd`), and the crate links at build time. Loading
//! with `libloading` keeps the binary starting where the library is absent. Types and signatures
//! follow the 2.1.4 headers, checked against the 2.3.0 wheel's `libLiteRt.so`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Result};
use libloading::Library;

/// Every LiteRT handle (`LiteRtEnvironment`, `LiteRtModel`, ...) is an opaque pointer.
type Handle = *mut c_void;
/// `LiteRtStatus`; 0 is `kLiteRtStatusOk`.
type Status = c_int;

/// `LiteRtLayout`: `unsigned rank : 7; bool has_strides : 1;` share the first 4 bytes.
#[repr(C)]
#[derive(Clone)]
struct Layout {
    bits: u32,
    dimensions: [i32; 8],
    strides: [u32; 8],
}

/// The dimensions of a layout, as many as its rank.
fn dims(layout: &Layout) -> &[i32] {
    let rank = (layout.bits & 0x7f) as usize;
    layout.dimensions.get(..rank).unwrap_or_default()
}

/// `LiteRtRankedTensorType`.
#[repr(C)]
struct RankedTensorType {
    element_type: u32,
    layout: Layout,
}

/// `LiteRtQuantizationPerTensor`.
#[repr(C)]
struct QuantizationPerTensor {
    scale: f32,
    zero_point: i64,
}

/// `LiteRtEnvOption { tag; LiteRtAny value; }`: `value` starts at 8, its union at 16.
#[repr(C)]
struct EnvOption {
    tag: u32,
    value: Any,
}

/// `LiteRtAny` holding an `int64_t` (`kLiteRtAnyTypeInt`).
#[repr(C)]
struct Any {
    any_type: u32,
    int_value: i64,
}

// The sizes the headers assert for 64-bit non-MSVC targets.
const _: () = assert!(std::mem::size_of::<RankedTensorType>() == 72);
const _: () = assert!(std::mem::size_of::<EnvOption>() == 24);

const ENV_AUTO_REGISTER_ACCELERATORS: u32 = 24;
const ENV_MIN_LOGGER_SEVERITY: u32 = 25;
const ANY_TYPE_INT: u32 = 2;
const HW_ACCELERATOR_CPU: c_int = 1;
const QUANTIZATION_PER_TENSOR: u32 = 1;
const LOCK_READ: c_int = 0;
const LOCK_WRITE: c_int = 1;

macro_rules! api {
    (
        required {
            $($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*
        }
        optional {
            $($opt:ident: fn($($opt_arg:ty),*) $(-> $opt_ret:ty)?;)*
        }
    ) => {
        /// Function pointers into a loaded (and never unloaded) `libLiteRt.so`; the optional
        /// ones are what only some features need, and a library without them still runs the
        /// rest.
        #[allow(non_snake_case)]
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
            $($opt: Option<unsafe extern "C" fn($($opt_arg),*) $(-> $opt_ret)?>,)*
        }

        impl Api {
            /// Resolves every symbol, or names the first one missing.
            fn load(lib: &'static Library) -> Result<Self, &'static str> {
                // SAFETY: each type is the C declaration; the library outlives the pointers.
                unsafe {
                    // Never called: its presence marks the 2.1.6+ ABI of model creation.
                    lib.get::<unsafe extern "C" fn()>(b"LiteRtCreateModelFromFd\0")
                        .map_err(|_| "LiteRtCreateModelFromFd")?;
                    Ok(Self {
                        $($name: *lib
                            .get(concat!(stringify!($name), "\0").as_bytes())
                            .map_err(|_| stringify!($name))?,)*
                        $($opt: lib
                            .get(concat!(stringify!($opt), "\0").as_bytes())
                            .ok()
                            .map(|symbol| *symbol),)*
                    })
                }
            }
        }
    };
}

api! {
    required {
    LiteRtCreateEnvironment: fn(c_int, *const EnvOption, *mut Handle) -> Status;
    LiteRtDestroyEnvironment: fn(Handle);
    LiteRtCreateModelFromFile: fn(Handle, *const c_char, *mut Handle) -> Status;
    LiteRtDestroyModel: fn(Handle);
    LiteRtGetNumModelSignatures: fn(Handle, *mut usize) -> Status;
    LiteRtGetModelSignature: fn(Handle, usize, *mut Handle) -> Status;
    LiteRtGetNumSignatureInputs: fn(Handle, *mut usize) -> Status;
    LiteRtGetNumSignatureOutputs: fn(Handle, *mut usize) -> Status;
    LiteRtGetSignatureInputTensorByIndex: fn(Handle, usize, *mut Handle) -> Status;
    LiteRtGetSignatureOutputTensorByIndex: fn(Handle, usize, *mut Handle) -> Status;
    LiteRtGetRankedTensorType: fn(Handle, *mut RankedTensorType) -> Status;
    LiteRtGetTensorName: fn(Handle, *mut *const c_char) -> Status;
    LiteRtGetQuantizationTypeId: fn(Handle, *mut u32) -> Status;
    LiteRtGetPerTensorQuantization: fn(Handle, *mut QuantizationPerTensor) -> Status;
    LiteRtCreateOptions: fn(*mut Handle) -> Status;
    LiteRtDestroyOptions: fn(Handle);
    LiteRtSetOptionsHardwareAccelerators: fn(Handle, c_int) -> Status;
    LiteRtCreateOpaqueOptions:
        fn(*const c_char, *mut c_void, unsafe extern "C" fn(*mut c_void), *mut Handle) -> Status;
    LiteRtDestroyOpaqueOptions: fn(Handle);
    LiteRtAddOpaqueOptions: fn(Handle, Handle) -> Status;
    LiteRtCreateCompiledModel: fn(Handle, Handle, Handle, *mut Handle) -> Status;
    LiteRtDestroyCompiledModel: fn(Handle);
    LiteRtGetCompiledModelInputBufferRequirements: fn(Handle, usize, usize, *mut Handle) -> Status;
    LiteRtGetCompiledModelOutputBufferRequirements:
        fn(Handle, usize, usize, *mut Handle) -> Status;
    LiteRtCreateManagedTensorBufferFromRequirements:
        fn(Handle, *const RankedTensorType, Handle, *mut Handle) -> Status;
    LiteRtDestroyTensorBuffer: fn(Handle);
    LiteRtGetTensorBufferPackedSize: fn(Handle, *mut usize) -> Status;
    LiteRtLockTensorBuffer: fn(Handle, *mut *mut c_void, c_int) -> Status;
    LiteRtUnlockTensorBuffer: fn(Handle) -> Status;
    LiteRtRunCompiledModel: fn(Handle, usize, usize, *mut Handle, usize, *mut Handle) -> Status;
    }
    optional {
        // Batches (declared as in litert_compiled_model.h of 2.3.0, whose library exports them).
        LiteRtCompiledModelResizeInputTensorNonStrict:
            fn(Handle, usize, usize, *const c_int, usize) -> Status;
        LiteRtGetCompiledModelOutputTensorLayouts:
            fn(Handle, usize, usize, *mut Layout, bool) -> Status;
    }
}

/// Loads `path` once per process and leaks it: unloading LiteRT segfaults at exit on versions
/// up to 2.2.0, and an incompatible library may be exactly such a version.
fn api(path: &Path) -> Result<&'static Api> {
    static LOADED: Mutex<Vec<(PathBuf, &'static Api)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, api)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(api);
    }
    // SAFETY: LiteRT's initialisers only register its own accelerators and ops.
    let lib = unsafe { Library::new(path) }
        .map_err(|e| anyhow!("cannot load {}: {e}", path.display()))?;
    let api = Api::load(Box::leak(Box::new(lib))).map_err(|symbol| {
        anyhow!(
            "{} is incompatible: missing symbol {symbol} (joulebench needs ai-edge-litert 2.1.6 \
             or newer; `make setup` installs 2.3.0)",
            path.display()
        )
    })?;
    let api: &'static Api = Box::leak(Box::new(api));
    loaded.push((path.to_owned(), api));
    Ok(api)
}

/// Whether `path` loads as a LiteRT library of the API joulebench binds (and loads it, once).
pub fn load(path: &Path) -> Result<()> {
    api(path).map(|_| ())
}

/// The C enum name of a `LiteRtStatus` (litert_common.h).
fn status_name(status: Status) -> &'static str {
    match status {
        1 => "kLiteRtStatusErrorInvalidArgument",
        2 => "kLiteRtStatusErrorMemoryAllocationFailure",
        3 => "kLiteRtStatusErrorRuntimeFailure",
        4 => "kLiteRtStatusErrorMissingInputTensor",
        5 => "kLiteRtStatusErrorUnsupported",
        6 => "kLiteRtStatusErrorNotFound",
        7 => "kLiteRtStatusErrorTimeoutExpired",
        8 => "kLiteRtStatusErrorWrongVersion",
        9 => "kLiteRtStatusErrorUnknown",
        10 => "kLiteRtStatusErrorAlreadyExists",
        100 => "kLiteRtStatusCancelled",
        500 => "kLiteRtStatusErrorFileIO",
        501 => "kLiteRtStatusErrorInvalidFlatbuffer",
        502 => "kLiteRtStatusErrorDynamicLoading",
        503 => "kLiteRtStatusErrorSerialization",
        504 => "kLiteRtStatusErrorCompilation",
        1000 => "kLiteRtStatusErrorIndexOOB",
        1001 => "kLiteRtStatusErrorInvalidIrType",
        1002 => "kLiteRtStatusErrorInvalidGraphInvariant",
        1003 => "kLiteRtStatusErrorGraphModification",
        4000 => "kLiteRtStatusErrorUnsupportedRuntimeVersion",
        4001 => "kLiteRtStatusErrorUnsupportedCompilerVersion",
        4002 => "kLiteRtStatusErrorIncompatibleByteCodeVersion",
        _ => "unknown status",
    }
}

/// `Ok` for `kLiteRtStatusOk`; else an error naming the call. No allocation on success: this
/// runs on the timed path.
fn check(status: Status, call: &'static str) -> Result<()> {
    if status == 0 {
        return Ok(());
    }
    bail!("LiteRT {call} failed: {} ({status})", status_name(status))
}

/// Frees the CPU options payload (a `CString` handed over with `into_raw`).
unsafe extern "C" fn free_payload(payload: *mut c_void) {
    drop(CString::from_raw(payload.cast()));
}

/// The CPU options of a compilation, in the TOML that LiteRT's CPU options parse.
fn cpu_payload(threads: u32, xnnpack: bool) -> Result<CString> {
    // XNNPACK's own threads only follow `num_threads`: without it LiteRT runs 1 thread.
    // `kernel_mode` (litert_cpu_options.h, parsed by the library's TOML reader) picks
    // XNNPACK ("xnnpack", 0), reference (1) or the builtin optimized kernels ("builtin", 2).
    Ok(CString::new(format!(
        "num_threads = {threads}\nkernel_mode = \"{}\"\n",
        if xnnpack { "xnnpack" } else { "builtin" }
    ))?)
}

/// What reads an output's bytes while its buffer is locked.
pub type Reader<'a> = &'a mut dyn FnMut(&[u8]);

/// Name, element type, shape and per-tensor quantization of a signature input or output.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// `LiteRtElementType` code (TF Lite's `TfLiteType`: [`ElementType::c_type`]).
    ///
    /// [`ElementType::c_type`]: crate::backend::signature::ElementType::c_type
    pub element_type: u32,
    pub dims: Vec<i32>,
    /// (scale, zero point) when the tensor has per-tensor quantization.
    pub quantization: Option<(f32, i64)>,
}

/// A compiled model of signature 0, and the host-memory tensor buffers of its inputs and
/// outputs (created once, reused by every [`Session::run`]).
pub struct Session {
    api: &'static Api,
    env: Handle,
    model: Handle,
    options: Handle,
    compiled: Handle,
    inputs: Vec<Handle>,
    outputs: Vec<Handle>,
    input_sizes: Vec<usize>,
    output_sizes: Vec<usize>,
}

impl Session {
    /// Loads `library` (once per process), compiles `model` for the CPU with `threads` threads,
    /// with XNNPACK or with LiteRT's builtin kernels, at `batch` images per inference, and
    /// describes its inputs and outputs as they run (in signature 0's order, which need not be
    /// the subgraph's).
    ///
    /// At a batch, every input's leading dimension is resized to `batch` times the model's
    /// (the caller has checked that the model has one to resize); an input whose leading
    /// dimension the model leaves dynamic (-1) is resized even at batch 1, to the one image
    /// a call then holds.
    pub fn open(
        library: &Path,
        model: &Path,
        threads: u32,
        xnnpack: bool,
        batch: usize,
    ) -> Result<(Self, Vec<TensorInfo>, Vec<TensorInfo>)> {
        let api = api(library)?;
        let path = CString::new(model.as_os_str().as_bytes())
            .map_err(|_| anyhow!("model path {} contains a NUL byte", model.display()))?;
        // Fields fill in as they are created; Drop releases whatever exists on an early return.
        let mut s = Session {
            api,
            env: std::ptr::null_mut(),
            model: std::ptr::null_mut(),
            options: std::ptr::null_mut(),
            compiled: std::ptr::null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            input_sizes: Vec::new(),
            output_sizes: Vec::new(),
        };
        let payload = cpu_payload(threads, xnnpack)?;
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        // SAFETY: every call follows its C declaration; out-pointers point at live locals or
        // fields; handles are used only while their owners (fields of `s`) are alive.
        unsafe {
            s.load_model(&path, model)?;
            let (in_tensors, out_tensors) = s.signature_tensors(model)?;
            let (mut in_types, mut out_types) = (Vec::new(), Vec::new());
            for (tensors, types, infos) in [
                (&in_tensors, &mut in_types, &mut inputs),
                (&out_tensors, &mut out_types, &mut outputs),
            ] {
                for &tensor in tensors {
                    let t = s.ranked_type(tensor)?;
                    infos.push(s.describe(tensor, &t)?);
                    types.push(t);
                }
            }
            s.set_cpu_options(payload)?;
            s.compile()?;
            if batch > 1
                || in_types
                    .iter()
                    .any(|t| dims(&t.layout).first() == Some(&-1))
            {
                s.resize(batch, &mut in_types, &mut out_types)?;
            }
            s.create_buffers(&in_types, &out_types)?;
            for (info, t) in inputs.iter_mut().zip(&in_types) {
                info.dims = dims(&t.layout).to_vec();
            }
            for (info, t) in outputs.iter_mut().zip(&out_types) {
                info.dims = dims(&t.layout).to_vec();
            }
        }
        Ok((s, inputs, outputs))
    }

    /// Resizes every input's leading dimension to `batch` images (from the model's 1, or its
    /// dynamic -1) and has LiteRT work out the outputs' shapes from them, updating `inputs`
    /// and `outputs` to the shapes the model then runs at.
    unsafe fn resize(
        &mut self,
        batch: usize,
        inputs: &mut [RankedTensorType],
        outputs: &mut [RankedTensorType],
    ) -> Result<()> {
        let unsupported = |symbol: &str| {
            anyhow!(
                "this LiteRT library has no {symbol}, which a batch (or a dynamic batch \
                 dimension) needs: install ai-edge-litert 2.3.0 (`make setup`) or run batch 1 \
                 on engine \"tflite\""
            )
        };
        let resize = self
            .api
            .LiteRtCompiledModelResizeInputTensorNonStrict
            .ok_or_else(|| unsupported("LiteRtCompiledModelResizeInputTensorNonStrict"))?;
        let output_layouts = self
            .api
            .LiteRtGetCompiledModelOutputTensorLayouts
            .ok_or_else(|| unsupported("LiteRtGetCompiledModelOutputTensorLayouts"))?;
        let batch = c_int::try_from(batch).map_err(|_| anyhow!("batch {batch} is too large"))?;
        for (i, t) in inputs.iter_mut().enumerate() {
            let rank = (t.layout.bits & 0x7f) as usize;
            if rank == 0 {
                bail!("input {i} is a scalar: it has no batch dimension to resize");
            }
            let leading = &mut t.layout.dimensions[0];
            *leading = batch * (*leading).max(1);
            check(
                resize(self.compiled, 0, i, t.layout.dimensions.as_ptr(), rank),
                "LiteRtCompiledModelResizeInputTensorNonStrict",
            )?;
        }
        let mut layouts: Vec<Layout> = outputs.iter().map(|t| t.layout.clone()).collect();
        check(
            output_layouts(self.compiled, 0, layouts.len(), layouts.as_mut_ptr(), true),
            "LiteRtGetCompiledModelOutputTensorLayouts",
        )
        .map_err(|e| {
            anyhow!(
                "its inputs resized to {batch} images, an operator cannot follow (one that fixes \
                 a shape to one image's, such as a RESHAPE to [1, N]; LiteRT logs where): {e}"
            )
        })?;
        for (t, layout) in outputs.iter_mut().zip(layouts) {
            t.layout = layout;
        }
        Ok(())
    }

    /// Creates the environment and loads the model file at `path` into it.
    unsafe fn load_model(&mut self, path: &CStr, model: &Path) -> Result<()> {
        let api = self.api;
        // Register only the CPU accelerator (no GPU/NPU probing) and log errors only.
        let env_options = [
            EnvOption {
                tag: ENV_AUTO_REGISTER_ACCELERATORS,
                value: Any {
                    any_type: ANY_TYPE_INT,
                    int_value: i64::from(HW_ACCELERATOR_CPU),
                },
            },
            EnvOption {
                tag: ENV_MIN_LOGGER_SEVERITY,
                value: Any {
                    any_type: ANY_TYPE_INT,
                    int_value: 3,
                },
            },
        ];
        check(
            (api.LiteRtCreateEnvironment)(2, env_options.as_ptr(), &mut self.env),
            "LiteRtCreateEnvironment",
        )?;
        check(
            (api.LiteRtCreateModelFromFile)(self.env, path.as_ptr(), &mut self.model),
            "LiteRtCreateModelFromFile",
        )
        .map_err(|e| anyhow!("cannot load model {}: {e}", model.display()))?;
        Ok(())
    }

    /// The input and output tensors of signature 0.
    unsafe fn signature_tensors(&self, model: &Path) -> Result<(Vec<Handle>, Vec<Handle>)> {
        let api = self.api;
        let mut count = 0;
        check(
            (api.LiteRtGetNumModelSignatures)(self.model, &mut count),
            "LiteRtGetNumModelSignatures",
        )?;
        if count == 0 {
            bail!("model {} has no signature", model.display());
        }
        let mut signature = std::ptr::null_mut();
        check(
            (api.LiteRtGetModelSignature)(self.model, 0, &mut signature),
            "LiteRtGetModelSignature",
        )?;
        let (mut inputs, mut outputs) = (0, 0);
        check(
            (api.LiteRtGetNumSignatureInputs)(signature, &mut inputs),
            "LiteRtGetNumSignatureInputs",
        )?;
        check(
            (api.LiteRtGetNumSignatureOutputs)(signature, &mut outputs),
            "LiteRtGetNumSignatureOutputs",
        )?;
        let mut in_tensors = vec![std::ptr::null_mut(); inputs];
        for (i, tensor) in in_tensors.iter_mut().enumerate() {
            check(
                (api.LiteRtGetSignatureInputTensorByIndex)(signature, i, tensor),
                "LiteRtGetSignatureInputTensorByIndex",
            )?;
        }
        let mut out_tensors = vec![std::ptr::null_mut(); outputs];
        for (i, tensor) in out_tensors.iter_mut().enumerate() {
            check(
                (api.LiteRtGetSignatureOutputTensorByIndex)(signature, i, tensor),
                "LiteRtGetSignatureOutputTensorByIndex",
            )?;
        }
        Ok((in_tensors, out_tensors))
    }

    /// Creates the compilation options: the CPU, with the CPU options `payload` (see
    /// [`cpu_payload`]), which they take ownership of.
    unsafe fn set_cpu_options(&mut self, payload: CString) -> Result<()> {
        let api = self.api;
        check(
            (api.LiteRtCreateOptions)(&mut self.options),
            "LiteRtCreateOptions",
        )?;
        check(
            (api.LiteRtSetOptionsHardwareAccelerators)(self.options, HW_ACCELERATOR_CPU),
            "LiteRtSetOptionsHardwareAccelerators",
        )?;
        let payload = payload.into_raw();
        let mut cpu = std::ptr::null_mut();
        if let Err(e) = check(
            (api.LiteRtCreateOpaqueOptions)(
                c"xnnpack".as_ptr(),
                payload.cast(),
                free_payload,
                &mut cpu,
            ),
            "LiteRtCreateOpaqueOptions",
        ) {
            free_payload(payload.cast());
            return Err(e);
        }
        // On success `options` owns `cpu` (litert_options.h); on failure we still do.
        if let Err(e) = check(
            (api.LiteRtAddOpaqueOptions)(self.options, cpu),
            "LiteRtAddOpaqueOptions",
        ) {
            (api.LiteRtDestroyOpaqueOptions)(cpu);
            return Err(e);
        }
        Ok(())
    }

    /// Compiles the model with the options.
    unsafe fn compile(&mut self) -> Result<()> {
        // The options stay owned by us (litert_compiled_model.h) and live as long as `self`.
        check(
            (self.api.LiteRtCreateCompiledModel)(
                self.env,
                self.model,
                self.options,
                &mut self.compiled,
            ),
            "LiteRtCreateCompiledModel",
        )
    }

    /// Creates the compiled model's input and output buffers, of the types (shapes) given:
    /// after any resize, whose requirements they are asked for then.
    unsafe fn create_buffers(
        &mut self,
        in_types: &[RankedTensorType],
        out_types: &[RankedTensorType],
    ) -> Result<()> {
        let api = self.api;
        for (i, t) in in_types.iter().enumerate() {
            let mut requirements = std::ptr::null_mut();
            check(
                (api.LiteRtGetCompiledModelInputBufferRequirements)(
                    self.compiled,
                    0,
                    i,
                    &mut requirements,
                ),
                "LiteRtGetCompiledModelInputBufferRequirements",
            )?;
            let (buffer, size) = self.managed_buffer(t, requirements)?;
            self.inputs.push(buffer);
            self.input_sizes.push(size);
        }
        for (i, t) in out_types.iter().enumerate() {
            let mut requirements = std::ptr::null_mut();
            check(
                (api.LiteRtGetCompiledModelOutputBufferRequirements)(
                    self.compiled,
                    0,
                    i,
                    &mut requirements,
                ),
                "LiteRtGetCompiledModelOutputBufferRequirements",
            )?;
            let (buffer, size) = self.managed_buffer(t, requirements)?;
            self.outputs.push(buffer);
            self.output_sizes.push(size);
        }
        Ok(())
    }

    unsafe fn ranked_type(&self, tensor: Handle) -> Result<RankedTensorType> {
        let mut t: RankedTensorType = std::mem::zeroed();
        check(
            (self.api.LiteRtGetRankedTensorType)(tensor, &mut t),
            "LiteRtGetRankedTensorType",
        )?;
        Ok(t)
    }

    unsafe fn describe(&self, tensor: Handle, t: &RankedTensorType) -> Result<TensorInfo> {
        let dims = dims(&t.layout).to_vec();
        let mut name: *const c_char = std::ptr::null();
        check(
            (self.api.LiteRtGetTensorName)(tensor, &mut name),
            "LiteRtGetTensorName",
        )?;
        let name = if name.is_null() {
            String::new()
        } else {
            CStr::from_ptr(name).to_string_lossy().into_owned()
        };
        let mut kind = 0;
        check(
            (self.api.LiteRtGetQuantizationTypeId)(tensor, &mut kind),
            "LiteRtGetQuantizationTypeId",
        )?;
        let mut quantization = None;
        if kind == QUANTIZATION_PER_TENSOR {
            let mut q = QuantizationPerTensor {
                scale: 0.0,
                zero_point: 0,
            };
            check(
                (self.api.LiteRtGetPerTensorQuantization)(tensor, &mut q),
                "LiteRtGetPerTensorQuantization",
            )?;
            quantization = Some((q.scale, q.zero_point));
        }
        Ok(TensorInfo {
            name,
            element_type: t.element_type,
            dims,
            quantization,
        })
    }

    /// A managed buffer (host memory for the CPU) as the compiled model requires, and the
    /// number of bytes a lock exposes.
    unsafe fn managed_buffer(
        &self,
        t: &RankedTensorType,
        requirements: Handle,
    ) -> Result<(Handle, usize)> {
        let mut buffer = std::ptr::null_mut();
        check(
            (self.api.LiteRtCreateManagedTensorBufferFromRequirements)(
                self.env,
                t,
                requirements,
                &mut buffer,
            ),
            "LiteRtCreateManagedTensorBufferFromRequirements",
        )?;
        let mut size = 0;
        if let Err(e) = check(
            (self.api.LiteRtGetTensorBufferPackedSize)(buffer, &mut size),
            "LiteRtGetTensorBufferPackedSize",
        ) {
            (self.api.LiteRtDestroyTensorBuffer)(buffer);
            return Err(e);
        }
        Ok((buffer, size))
    }

    /// Locks `buffer` into host memory for `mode`, returning its address.
    unsafe fn lock(&self, buffer: Handle, mode: c_int) -> Result<*mut u8> {
        let mut address = std::ptr::null_mut();
        check(
            (self.api.LiteRtLockTensorBuffer)(buffer, &mut address, mode),
            "LiteRtLockTensorBuffer",
        )?;
        if address.is_null() {
            (self.api.LiteRtUnlockTensorBuffer)(buffer);
            bail!("LiteRtLockTensorBuffer returned no host memory");
        }
        Ok(address.cast())
    }

    /// Bytes of each input buffer, in signature order.
    pub fn input_sizes(&self) -> &[usize] {
        &self.input_sizes
    }

    /// One inference: copies `input[ranges[i]]` into input buffer `i` (signature order), once
    /// per image of the batch the buffer holds, runs signature 0 and, where `read` is given,
    /// hands output 0's bytes to it while the buffer is locked. Allocates nothing.
    pub fn run(
        &mut self,
        input: &[u8],
        ranges: &[Range<usize>],
        read: Option<Reader>,
    ) -> Result<()> {
        if ranges.len() != self.inputs.len() {
            bail!(
                "{} inputs given, the model takes {}",
                ranges.len(),
                self.inputs.len()
            );
        }
        let api = self.api;
        // SAFETY: the buffers hold `input_sizes`/`output_sizes` bytes while locked; the
        // compiled model and buffers belong to `self`.
        unsafe {
            for ((&buffer, &size), range) in self.inputs.iter().zip(&self.input_sizes).zip(ranges) {
                let Some(src) = input
                    .get(range.clone())
                    .filter(|s| !s.is_empty() && size % s.len() == 0)
                else {
                    bail!(
                        "input of {} bytes at {range:?} of {}, the model's buffer holds {size}",
                        range.len(),
                        input.len()
                    );
                };
                let dst = self.lock(buffer, LOCK_WRITE)?;
                for image in 0..size / src.len() {
                    std::ptr::copy_nonoverlapping(
                        src.as_ptr(),
                        dst.add(image * src.len()),
                        src.len(),
                    );
                }
                check(
                    (api.LiteRtUnlockTensorBuffer)(buffer),
                    "LiteRtUnlockTensorBuffer",
                )?;
            }
            check(
                (api.LiteRtRunCompiledModel)(
                    self.compiled,
                    0,
                    self.inputs.len(),
                    self.inputs.as_mut_ptr(),
                    self.outputs.len(),
                    self.outputs.as_mut_ptr(),
                ),
                "LiteRtRunCompiledModel",
            )?;
            if let Some(read) = read {
                let src = self.lock(self.outputs[0], LOCK_READ)?;
                read(std::slice::from_raw_parts(src, self.output_sizes[0]));
                check(
                    (api.LiteRtUnlockTensorBuffer)(self.outputs[0]),
                    "LiteRtUnlockTensorBuffer",
                )?;
            }
            Ok(())
        }
    }
}

impl Drop for Session {
    /// Releases in reverse order of creation: buffers and compiled model before the options,
    /// model and environment they refer to.
    fn drop(&mut self) {
        let api = self.api;
        // SAFETY: each handle was created by the matching call and is released once.
        unsafe {
            for &buffer in self.inputs.iter().chain(&self.outputs) {
                if !buffer.is_null() {
                    (api.LiteRtDestroyTensorBuffer)(buffer);
                }
            }
            if !self.compiled.is_null() {
                (api.LiteRtDestroyCompiledModel)(self.compiled);
            }
            if !self.options.is_null() {
                (api.LiteRtDestroyOptions)(self.options);
            }
            if !self.model.is_null() {
                (api.LiteRtDestroyModel)(self.model);
            }
            if !self.env.is_null() {
                (api.LiteRtDestroyEnvironment)(self.env);
            }
        }
    }
}
