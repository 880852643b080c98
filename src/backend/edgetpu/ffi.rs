//! The slices of libedgetpu's C API (`tflite/public/edgetpu_c.h`) and of the classic TF Lite C
//! API (`tensorflow/lite/c/c_api.h`) that [`super::EdgeTpuBackend`] needs, both loaded at run
//! time, and a safe [`Session`] over them. All `unsafe` of the Edge TPU engine lives here.
//!
//! Loaded with `libloading` so the binary starts where neither library is installed. The
//! declarations follow google-coral/libedgetpu at e35aed1 (TF 2.16.1 support) and
//! tensorflow/lite/core/c/c_api.h; only functions whose signatures are the same across the TF
//! 2.x releases libedgetpu has been built against are used.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Result};
use libloading::Library;

/// Every TF Lite and libedgetpu object is used through an opaque pointer.
type Handle = *mut c_void;
/// `TfLiteStatus`; 0 is `kTfLiteOk`.
type Status = c_int;

/// `enum edgetpu_device_type` values (edgetpu_c.h).
pub const DEVICE_PCI: c_int = 0;
pub const DEVICE_USB: c_int = 1;

/// `struct edgetpu_device { enum edgetpu_device_type type; const char* path; }`.
#[repr(C)]
struct RawDevice {
    device_type: c_int,
    path: *const c_char,
}

/// `TfLiteQuantizationParams { float scale; int32_t zero_point; }`, returned by value.
#[repr(C)]
#[derive(Clone, Copy)]
struct QuantizationParams {
    scale: f32,
    zero_point: i32,
}

macro_rules! api {
    ($api:ident: $($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// Function pointers into a loaded (and never unloaded) library.
        #[allow(non_snake_case)]
        pub struct $api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl $api {
            /// Resolves every symbol, or names the first one missing.
            fn resolve(lib: &'static Library) -> Result<Self, &'static str> {
                // SAFETY: each type is the C declaration; the library outlives the pointers.
                unsafe {
                    Ok(Self {
                        $($name: *lib
                            .get(concat!(stringify!($name), "\0").as_bytes())
                            .map_err(|_| stringify!($name))?,)*
                    })
                }
            }
        }
    };
}

api! {
    EdgeTpuApi:
    edgetpu_list_devices: fn(*mut usize) -> *mut RawDevice;
    edgetpu_free_devices: fn(*mut RawDevice);
    edgetpu_create_delegate: fn(c_int, *const c_char, *const c_void, usize) -> Handle;
    edgetpu_free_delegate: fn(Handle);
    edgetpu_version: fn() -> *const c_char;
}

api! {
    TfLiteApi:
    TfLiteVersion: fn() -> *const c_char;
    TfLiteModelCreateFromFile: fn(*const c_char) -> Handle;
    TfLiteModelDelete: fn(Handle);
    TfLiteInterpreterOptionsCreate: fn() -> Handle;
    TfLiteInterpreterOptionsDelete: fn(Handle);
    TfLiteInterpreterOptionsSetNumThreads: fn(Handle, i32);
    TfLiteInterpreterOptionsAddDelegate: fn(Handle, Handle);
    TfLiteInterpreterCreate: fn(Handle, Handle) -> Handle;
    TfLiteInterpreterDelete: fn(Handle);
    TfLiteInterpreterAllocateTensors: fn(Handle) -> Status;
    TfLiteInterpreterGetInputTensorCount: fn(Handle) -> i32;
    TfLiteInterpreterGetOutputTensorCount: fn(Handle) -> i32;
    TfLiteInterpreterGetInputTensor: fn(Handle, i32) -> Handle;
    TfLiteInterpreterGetOutputTensor: fn(Handle, i32) -> Handle;
    TfLiteInterpreterInvoke: fn(Handle) -> Status;
    TfLiteTensorType: fn(Handle) -> c_int;
    TfLiteTensorNumDims: fn(Handle) -> i32;
    TfLiteTensorDim: fn(Handle, i32) -> i32;
    TfLiteTensorByteSize: fn(Handle) -> usize;
    TfLiteTensorData: fn(Handle) -> *mut c_void;
    TfLiteTensorQuantizationParams: fn(Handle) -> QuantizationParams;
    TfLiteTensorCopyFromBuffer: fn(Handle, *const c_void, usize) -> Status;
}

/// Why a library could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// `dlopen` failed (not found, wrong architecture, unresolved dependencies): its message.
    Open(String),
    /// Loaded, but a function joulebench needs is not exported.
    Symbol(&'static str),
}

/// Loads `path` once per process and keeps it: a delegate and an interpreter hold code
/// pointers into both libraries, and unloading them mid-process buys nothing. A bare file
/// name goes through the system's library search (`dlopen`).
fn load<A: 'static>(
    cache: &Mutex<Vec<(PathBuf, &'static A)>>,
    path: &Path,
    resolve: fn(&'static Library) -> Result<A, &'static str>,
) -> Result<&'static A, LoadError> {
    let mut loaded = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, api)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(api);
    }
    // SAFETY: loading runs the libraries' initialisers, which only set up their own state.
    let lib = unsafe { Library::new(path) }.map_err(|e| LoadError::Open(e.to_string()))?;
    let api: &'static A = Box::leak(Box::new(
        resolve(Box::leak(Box::new(lib))).map_err(LoadError::Symbol)?,
    ));
    loaded.push((path.to_owned(), api));
    Ok(api)
}

pub fn load_edgetpu(path: &Path) -> Result<&'static EdgeTpuApi, LoadError> {
    static LOADED: Mutex<Vec<(PathBuf, &'static EdgeTpuApi)>> = Mutex::new(Vec::new());
    load(&LOADED, path, EdgeTpuApi::resolve)
}

pub fn load_tflite(path: &Path) -> Result<&'static TfLiteApi, LoadError> {
    static LOADED: Mutex<Vec<(PathBuf, &'static TfLiteApi)>> = Mutex::new(Vec::new());
    load(&LOADED, path, TfLiteApi::resolve)
}

/// A static C string from a library, or "unknown" for a null pointer.
fn static_str(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return "unknown".into();
    }
    // SAFETY: both version functions return a NUL-terminated static string.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

impl EdgeTpuApi {
    /// `edgetpu_version()`, e.g. "BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,...), RuntimeVersion(14)".
    pub fn version(&self) -> String {
        // SAFETY: no arguments; returns a static string.
        static_str(unsafe { (self.edgetpu_version)() })
    }

    /// Every Edge TPU libedgetpu sees, in its order.
    pub fn devices(&self) -> Vec<Device> {
        let mut count = 0usize;
        // SAFETY: the library writes the count and returns an array of that many devices
        // (null for none), which is freed below after its strings are copied.
        unsafe {
            let list = (self.edgetpu_list_devices)(&mut count);
            if list.is_null() {
                return Vec::new();
            }
            let devices = std::slice::from_raw_parts(list, count)
                .iter()
                .map(|d| Device {
                    device_type: d.device_type,
                    path: static_str(d.path),
                })
                .collect();
            (self.edgetpu_free_devices)(list);
            devices
        }
    }
}

impl TfLiteApi {
    /// `TfLiteVersion()`, e.g. "2.16.1".
    pub fn version(&self) -> String {
        // SAFETY: no arguments; returns a static string.
        static_str(unsafe { (self.TfLiteVersion)() })
    }
}

/// One entry of `edgetpu_list_devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// [`DEVICE_USB`] or [`DEVICE_PCI`] (another value is passed through as found).
    pub device_type: c_int,
    /// Its path: a sysfs folder for USB (`/sys/bus/usb/devices/2-1`), `/dev/apex_N` for PCIe.
    pub path: String,
}

/// An input or output tensor as the interpreter holds it.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub element_type: c_int,
    pub dims: Vec<i32>,
    /// Per-tensor quantization; a scale of 0 means none.
    pub scale: f32,
    pub zero_point: i32,
    pub bytes: usize,
}

/// A model on an interpreter with the Edge TPU delegate attached, tensors allocated.
pub struct Session {
    tflite: &'static TfLiteApi,
    edgetpu: &'static EdgeTpuApi,
    model: Handle,
    interpreter: Handle,
    delegate: Handle,
    inputs: Vec<Handle>,
    outputs: Vec<Handle>,
    /// Bytes of output 0, the one [`Session::run`] hands over.
    output_bytes: usize,
}

impl Session {
    /// Creates the delegate for `device`, then the interpreter with it (CPU ops, if any, on
    /// `threads` threads); returns the session and its input and output tensors, in the
    /// interpreter's order (the model's subgraph's).
    pub fn open(
        tflite: &'static TfLiteApi,
        edgetpu: &'static EdgeTpuApi,
        model_path: &Path,
        device: &Device,
        threads: u32,
    ) -> Result<(Self, Vec<TensorInfo>, Vec<TensorInfo>)> {
        let c_path = CString::new(model_path.as_os_str().as_bytes())
            .map_err(|_| anyhow!("model path {} contains a NUL byte", model_path.display()))?;
        let c_device = CString::new(device.path.as_bytes())
            .map_err(|_| anyhow!("device path {:?} contains a NUL byte", device.path))?;
        let mut session = Session {
            tflite,
            edgetpu,
            model: std::ptr::null_mut(),
            interpreter: std::ptr::null_mut(),
            delegate: std::ptr::null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            output_bytes: 0,
        };
        // SAFETY: every handle is checked before use and owned by `session`, whose Drop frees
        // what was created so far, in reverse order.
        unsafe {
            session.delegate = (edgetpu.edgetpu_create_delegate)(
                device.device_type,
                c_device.as_ptr(),
                std::ptr::null(),
                0,
            );
            if session.delegate.is_null() {
                bail!(
                    "edgetpu_create_delegate failed for the Edge TPU at {} (is another process using it?)",
                    device.path
                );
            }
            session.model = (tflite.TfLiteModelCreateFromFile)(c_path.as_ptr());
            if session.model.is_null() {
                bail!(
                    "TF Lite could not load {} (TfLiteModelCreateFromFile failed)",
                    model_path.display()
                );
            }
            let options = (tflite.TfLiteInterpreterOptionsCreate)();
            if options.is_null() {
                bail!("TfLiteInterpreterOptionsCreate failed");
            }
            (tflite.TfLiteInterpreterOptionsSetNumThreads)(
                options,
                i32::try_from(threads).unwrap_or(i32::MAX),
            );
            (tflite.TfLiteInterpreterOptionsAddDelegate)(options, session.delegate);
            session.interpreter = (tflite.TfLiteInterpreterCreate)(session.model, options);
            (tflite.TfLiteInterpreterOptionsDelete)(options);
            if session.interpreter.is_null() {
                bail!(
                    "TfLiteInterpreterCreate failed with the Edge TPU delegate (a libtensorflowlite_c.so of another TF version than libedgetpu's, or a model compiled for a newer Edge TPU runtime)"
                );
            }
            if (tflite.TfLiteInterpreterAllocateTensors)(session.interpreter) != 0 {
                bail!("TfLiteInterpreterAllocateTensors failed");
            }
            let interpreter = session.interpreter;
            let count = |n: i32, what: &str| {
                if n > 0 {
                    Ok(n)
                } else {
                    Err(anyhow!("the interpreter reports {n} {what} tensors"))
                }
            };
            let inputs = count(
                (tflite.TfLiteInterpreterGetInputTensorCount)(interpreter),
                "input",
            )?;
            let outputs = count(
                (tflite.TfLiteInterpreterGetOutputTensorCount)(interpreter),
                "output",
            )?;
            session.inputs = (0..inputs)
                .map(|i| (tflite.TfLiteInterpreterGetInputTensor)(interpreter, i))
                .collect();
            session.outputs = (0..outputs)
                .map(|i| (tflite.TfLiteInterpreterGetOutputTensor)(interpreter, i))
                .collect();
            if session
                .inputs
                .iter()
                .chain(&session.outputs)
                .any(|t| t.is_null())
            {
                bail!("the interpreter returned no tensor for one of its inputs or outputs");
            }
            let describe = |tensors: &[Handle]| -> Vec<TensorInfo> {
                tensors.iter().map(|&t| session.describe(t)).collect()
            };
            let (inputs, outputs) = (describe(&session.inputs), describe(&session.outputs));
            session.output_bytes = outputs[0].bytes;
            Ok((session, inputs, outputs))
        }
    }

    /// # Safety
    /// `tensor` is a live tensor of this session's interpreter.
    unsafe fn describe(&self, tensor: Handle) -> TensorInfo {
        let t = self.tflite;
        let rank = (t.TfLiteTensorNumDims)(tensor).max(0);
        let q = (t.TfLiteTensorQuantizationParams)(tensor);
        TensorInfo {
            element_type: (t.TfLiteTensorType)(tensor),
            dims: (0..rank).map(|i| (t.TfLiteTensorDim)(tensor, i)).collect(),
            scale: q.scale,
            zero_point: q.zero_point,
            bytes: (t.TfLiteTensorByteSize)(tensor),
        }
    }

    /// Copies `input[ranges[i]]` into input `i`, invokes the interpreter (the Edge TPU runs
    /// its custom op), and hands output 0's bytes to `read`. No allocation: this runs on the
    /// timed path.
    pub fn run(
        &mut self,
        input: &[u8],
        ranges: &[Range<usize>],
        read: impl FnOnce(&[u8]),
    ) -> Result<()> {
        let t = self.tflite;
        if ranges.len() != self.inputs.len() {
            bail!(
                "{} inputs given, the model takes {}",
                ranges.len(),
                self.inputs.len()
            );
        }
        // SAFETY: the tensors belong to the live interpreter; CopyFromBuffer checks the size;
        // the output buffer holds `output_bytes` bytes once invoked.
        unsafe {
            for (&tensor, range) in self.inputs.iter().zip(ranges) {
                let src = input.get(range.clone()).unwrap_or_default();
                if src.len() != range.len()
                    || (t.TfLiteTensorCopyFromBuffer)(tensor, src.as_ptr().cast(), src.len()) != 0
                {
                    bail!(
                        "input of {} bytes at {range:?} of {}, the model takes {}",
                        range.len(),
                        input.len(),
                        (t.TfLiteTensorByteSize)(tensor)
                    );
                }
            }
            if (t.TfLiteInterpreterInvoke)(self.interpreter) != 0 {
                bail!("inference failed (TfLiteInterpreterInvoke)");
            }
            let data = (t.TfLiteTensorData)(self.outputs[0]);
            if data.is_null() {
                bail!("the output tensor has no data");
            }
            read(std::slice::from_raw_parts(
                data.cast::<u8>(),
                self.output_bytes,
            ));
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: each handle was created by the matching library and is freed once; the
        // interpreter goes before the delegate it uses, the model last.
        unsafe {
            if !self.interpreter.is_null() {
                (self.tflite.TfLiteInterpreterDelete)(self.interpreter);
            }
            if !self.delegate.is_null() {
                (self.edgetpu.edgetpu_free_delegate)(self.delegate);
            }
            if !self.model.is_null() {
                (self.tflite.TfLiteModelDelete)(self.model);
            }
        }
    }
}
