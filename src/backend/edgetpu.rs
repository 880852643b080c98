//! Int8 models compiled by `edgetpu_compiler` on a Coral Edge TPU (USB Accelerator or PCIe
//! card): Coral's `libedgetpu.so.1` as a delegate of the classic TF Lite C API
//! (`libtensorflowlite_c.so`, of the TensorFlow version libedgetpu was built against), both
//! loaded at run time (module `ffi`).
//!
//! Before anything is loaded the model is checked for the Edge TPU's custom op: a model not
//! compiled for the Edge TPU would run entirely on the CPU without a word, and its figures
//! would be labelled as the Edge TPU's.

mod ffi;

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::signature::{Signature, Tensor};
use super::spec::{Bus, DeviceChoice, EdgetpuSpec};
use super::{Backend, EngineInfo};
use crate::input::TensorType;

/// Overrides the system's search for libedgetpu when the rig gives no `edgetpu_lib`.
pub const EDGETPU_LIB_ENV: &str = crate::environment::EDGETPU_LIB;
/// Overrides the system's search for the TF Lite C library when the rig gives no `tflite_c_lib`.
pub const TFLITE_C_LIB_ENV: &str = crate::environment::TFLITE_C_LIB;
/// What the system's library search looks for.
pub const EDGETPU_SONAME: &str = "libedgetpu.so.1";
pub const TFLITE_C_SONAME: &str = "libtensorflowlite_c.so";

/// The custom op `edgetpu_compiler` puts in place of the layers it compiled.
pub const EDGETPU_CUSTOM_OP: &str = "edgetpu-custom-op";

/// The bus libedgetpu says a device is on.
fn bus_of(device_type: i32) -> Option<Bus> {
    match device_type {
        ffi::DEVICE_USB => Some(Bus::Usb),
        ffi::DEVICE_PCI => Some(Bus::Pci),
        _ => None,
    }
}

/// Refuses a model without the Edge TPU custom op: one not compiled by `edgetpu_compiler`
/// would run on the CPU through the delegate-less interpreter, silently.
pub fn check_compiled_for_edgetpu(model: &Path) -> Result<()> {
    let bytes =
        std::fs::read(model).with_context(|| format!("cannot read model {}", model.display()))?;
    let parsed = tflite::model::Model::from_buffer(&bytes)
        .with_context(|| format!("{} is not a valid TensorFlow Lite model", model.display()))?;
    let compiled = parsed
        .operator_codes
        .iter()
        .any(|code| code.custom_code.c_str().to_bytes() == EDGETPU_CUSTOM_OP.as_bytes());
    if !compiled {
        bail!(
            "model {} was not compiled for the Edge TPU (no {EDGETPU_CUSTOM_OP} among its operators), so it would run on the CPU: compile it with edgetpu_compiler, or use mobilenet_v2_1.0_224_quant_edgetpu",
            model.display()
        );
    }
    Ok(())
}

/// Where a library is looked for, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryChoice {
    /// A path, or a bare file name for the system's search.
    pub path: PathBuf,
    /// "the rig's edgetpu_lib", "$JOULEBENCH_EDGETPU_LIB", "the system's library search".
    pub from: String,
}

/// The rig's key if set, else the environment variable, else the system's library search.
fn choose_library(
    explicit: Option<&Path>,
    key: &str,
    env: &str,
    env_value: Option<std::ffi::OsString>,
    soname: &str,
) -> LibraryChoice {
    if let Some(path) = explicit {
        return LibraryChoice {
            path: path.to_owned(),
            from: format!("the rig's {key}"),
        };
    }
    match env_value.filter(|v| !v.is_empty()) {
        Some(path) => LibraryChoice {
            path: PathBuf::from(path),
            from: format!("${env}"),
        },
        None => LibraryChoice {
            path: PathBuf::from(soname),
            from: "the system's library search".into(),
        },
    }
}

/// One library to load: its file name, rig key, environment variable and install hint.
struct Library {
    soname: &'static str,
    key: &'static str,
    env: &'static str,
    install: &'static str,
}

const EDGETPU: Library = Library {
    soname: EDGETPU_SONAME,
    key: "edgetpu_lib",
    env: EDGETPU_LIB_ENV,
    install: "install Coral's libedgetpu1-std package (docs/src/guide/coral.md)",
};

const TFLITE_C: Library = Library {
    soname: TFLITE_C_SONAME,
    key: "tflite_c_lib",
    env: TFLITE_C_LIB_ENV,
    install: "install a libtensorflowlite_c.so built from the TensorFlow version libedgetpu was built against (docs/src/guide/coral.md)",
};

impl Library {
    fn choose(&self, explicit: Option<&Path>) -> LibraryChoice {
        choose_library(
            explicit,
            self.key,
            self.env,
            std::env::var_os(self.env),
            self.soname,
        )
    }

    /// One line for a library that cannot be used: which, where, why, what to do.
    fn error(&self, choice: &LibraryChoice, err: ffi::LoadError) -> anyhow::Error {
        let (what, key, env, install) = (self.soname, self.key, self.env, self.install);
        let searched = choice.path.components().count() == 1;
        let tried = format!("{} (from {})", choice.path.display(), choice.from);
        anyhow::anyhow!(match err {
            ffi::LoadError::Open(_) if !searched && !choice.path.exists() => {
                format!("{what} not found at {tried}: {install}, or set {env} / the rig's {key}")
            }
            ffi::LoadError::Open(reason) if searched => format!(
                "cannot load {what} through the system's library search: {}; {install}, or set {env} / the rig's {key}",
                reason.replace('\n', " ")
            ),
            ffi::LoadError::Open(reason) => format!(
                "cannot load {what} from {tried}: {}; {install}, or set {env} / the rig's {key}",
                reason.replace('\n', " ")
            ),
            ffi::LoadError::Symbol(symbol) => {
                format!("{tried} lacks {symbol}, so it is not a usable {what}: {install}")
            }
        })
    }
}

pub struct EdgeTpuBackend {
    session: ffi::Session,
    signature: Signature,
    /// Where each input's bytes lie in the prepared input.
    ranges: Vec<Range<usize>>,
    /// The output's type, where the model is a classifier whose scores are read.
    scored: Option<TensorType>,
    engine: EngineInfo,
}

impl EdgeTpuBackend {
    /// Checks the model, loads both libraries, picks the Edge TPU and attaches its delegate.
    /// Each failure is one line, in that order.
    pub fn open(spec: &EdgetpuSpec, model: &Path) -> Result<Self> {
        check_compiled_for_edgetpu(model)?;
        let signature = Signature::read(model)?;
        let (edgetpu, tflite) = load_libraries(spec)?;
        let devices = edgetpu.devices();
        let device = choose_device(&devices, spec.edgetpu_device)?;
        let (session, inputs, outputs) =
            ffi::Session::open(tflite, edgetpu, model, device, spec.threads)?;
        check_tensors(&inputs, &signature.inputs)
            .and_then(|()| check_tensors(&outputs, &signature.outputs))
            .with_context(|| format!("model {}", model.display()))?;
        let ranges = signature.input_ranges();
        let scored = signature
            .classifier()
            .then(|| signature.outputs[0].tensor_type());
        Ok(Self {
            session,
            signature,
            ranges,
            scored,
            engine: EngineInfo {
                engine: "edgetpu".into(),
                version: format!(
                    "libedgetpu {}; TF Lite {}",
                    edgetpu.version(),
                    tflite.version()
                ),
                accelerator: describe_device(device),
                threads: spec.threads,
            },
        })
    }
}

/// Checks that the interpreter holds each of the model's inputs (or outputs), in the
/// subgraph's order, as its flatbuffer describes it: the same count, and per tensor the type,
/// the shape and, where both have one, the quantization.
fn check_tensors(interpreter: &[ffi::TensorInfo], model: &[Tensor]) -> Result<()> {
    if interpreter.len() != model.len() {
        bail!(
            "the TF Lite C library sees {} tensors where the model file lists {}",
            interpreter.len(),
            model.len()
        );
    }
    for (info, t) in interpreter.iter().zip(model) {
        let dims: Vec<i64> = info.dims.iter().map(|&d| i64::from(d)).collect();
        let quantization = (info.scale > 0.0).then_some((info.scale, i64::from(info.zero_point)));
        if info.element_type as u32 != t.dtype.c_type()
            || dims != t.shape
            || !t.quantization_agrees(quantization)
        {
            bail!(
                "the TF Lite C library sees tensor {} as {dims:?} of type {} quantized {:?}, \
                 the model file as {} quantized {:?}",
                t.name,
                info.element_type,
                quantization,
                t.describe(),
                t.quantization.map(|q| (q.scale, q.zero_point))
            );
        }
    }
    Ok(())
}

/// Loads libedgetpu, then the TF Lite C library, from the rig's paths, the environment or the
/// system's search.
fn load_libraries(
    spec: &EdgetpuSpec,
) -> Result<(&'static ffi::EdgeTpuApi, &'static ffi::TfLiteApi)> {
    let choice = EDGETPU.choose(spec.edgetpu_lib.as_deref());
    let edgetpu = ffi::load_edgetpu(&choice.path).map_err(|e| EDGETPU.error(&choice, e))?;
    let choice = TFLITE_C.choose(spec.tflite_c_lib.as_deref());
    let tflite = ffi::load_tflite(&choice.path).map_err(|e| TFLITE_C.error(&choice, e))?;
    Ok((edgetpu, tflite))
}

/// The device the rig asks for among those found.
fn choose_device(devices: &[ffi::Device], choice: Option<DeviceChoice>) -> Result<&ffi::Device> {
    if devices.is_empty() {
        bail!(
            "no Edge TPU found (libedgetpu lists none): plug in the Coral USB Accelerator (`lsusb` shows 1a6e:089a, or 18d1:9302 once in use) or install the PCIe card's gasket/apex driver (/dev/apex_0), and check that your user may open it (libedgetpu1-std's udev rule; the plugdev group)"
        );
    }
    let Some(choice) = choice else {
        return Ok(&devices[0]);
    };
    let on_bus: Vec<&ffi::Device> = devices
        .iter()
        .filter(|d| bus_of(d.device_type) == Some(choice.bus))
        .collect();
    on_bus
        .get(choice.index.unwrap_or(0))
        .copied()
        .with_context(|| {
            let found: Vec<String> = devices.iter().map(describe_device).collect();
            format!(
                "no Edge TPU matches edgetpu_device = \"{choice}\"; found: {}",
                found.join(", ")
            )
        })
}

/// "Coral USB Accelerator (/sys/bus/usb/devices/2-1)", "Coral PCIe Edge TPU (/dev/apex_0)".
fn describe_device(device: &ffi::Device) -> String {
    let what = match bus_of(device.device_type) {
        Some(Bus::Usb) => "Coral USB Accelerator".to_owned(),
        Some(Bus::Pci) => "Coral PCIe Edge TPU".to_owned(),
        None => format!("Edge TPU of type {}", device.device_type),
    };
    format!("{what} ({})", device.path)
}

impl Backend for EdgeTpuBackend {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> Result<()> {
        match self.scored {
            Some(output_type) => self.session.run(input, &self.ranges, |out| {
                output_type.dequantize(out, scores)
            }),
            None => {
                scores.clear();
                self.session.run(input, &self.ranges, |_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/models")
            .join(file)
    }

    const FIXTURE: &str = "keras_lstm_mnist_ptq_edgetpu.tflite";
    const PLAIN: &str = "mobilenet_v2_1.0_224_quant.tflite";

    fn open_err(spec: &EdgetpuSpec, model: &Path) -> String {
        match EdgeTpuBackend::open(spec, model) {
            Ok(_) => panic!("opened without an Edge TPU"),
            Err(e) => {
                let text = format!("{e:#}");
                assert!(!text.contains('\n'), "{text}");
                text
            }
        }
    }

    /// Builds a stand-in library from `tests/fixtures/edgetpu_standin.c` with the given
    /// macros (with the C compiler scripts/setup.sh installs).
    fn standin(dir: &Path, name: &str, defines: &[&str]) -> PathBuf {
        let src = dir.join("standin.c");
        std::fs::write(&src, include_str!("../../tests/fixtures/edgetpu_standin.c")).unwrap();
        let out = dir.join(name);
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&out)
            .arg(&src)
            .args(defines.iter().map(|d| format!("-D{d}")))
            .status();
        let status = status.unwrap_or_else(|e| panic!("cc (scripts/setup.sh installs it): {e}"));
        assert!(status.success(), "cc failed for {name}");
        out
    }

    fn spec(edgetpu_lib: &Path, tflite_c_lib: &Path) -> EdgetpuSpec {
        EdgetpuSpec {
            edgetpu_lib: Some(edgetpu_lib.to_owned()),
            tflite_c_lib: Some(tflite_c_lib.to_owned()),
            ..EdgetpuSpec::default()
        }
    }

    #[test]
    fn device_choices_parse_and_print() {
        for (text, bus, index) in [
            ("usb", Bus::Usb, None),
            ("usb:0", Bus::Usb, Some(0)),
            ("pci", Bus::Pci, None),
            ("pci:2", Bus::Pci, Some(2)),
        ] {
            let choice: DeviceChoice = text.parse().unwrap();
            assert_eq!(choice, DeviceChoice { bus, index });
            assert_eq!(choice.to_string(), text);
        }
        for bad in ["USB", "usb:", "usb:x", "tpu", "pci:-1", ""] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(err.contains("is not \"usb\", \"usb:N\""), "{bad}: {err}");
        }
    }

    fn device(device_type: i32, path: &str) -> ffi::Device {
        ffi::Device {
            device_type,
            path: path.into(),
        }
    }

    #[test]
    fn devices_are_chosen_by_bus_and_index() {
        let usb = device(ffi::DEVICE_USB, "/sys/bus/usb/devices/2-1");
        let pci = device(ffi::DEVICE_PCI, "/dev/apex_0");
        let usb2 = device(ffi::DEVICE_USB, "/sys/bus/usb/devices/1-1.3");
        let all = [usb.clone(), pci.clone(), usb2.clone()];
        let pick = |s: Option<&str>| choose_device(&all, s.map(|s| s.parse().unwrap()));
        assert_eq!(pick(None).unwrap(), &usb);
        assert_eq!(pick(Some("usb")).unwrap(), &usb);
        assert_eq!(pick(Some("usb:1")).unwrap(), &usb2);
        assert_eq!(pick(Some("pci")).unwrap(), &pci);
        assert_eq!(pick(Some("pci:0")).unwrap(), &pci);
        let err = format!("{:#}", pick(Some("pci:1")).unwrap_err());
        assert_eq!(
            err,
            "no Edge TPU matches edgetpu_device = \"pci:1\"; found: Coral USB Accelerator \
             (/sys/bus/usb/devices/2-1), Coral PCIe Edge TPU (/dev/apex_0), Coral USB \
             Accelerator (/sys/bus/usb/devices/1-1.3)"
        );
        let err = format!("{:#}", choose_device(&[], None).unwrap_err());
        assert!(err.starts_with("no Edge TPU found"), "{err}");
    }

    #[test]
    fn libraries_come_from_the_rig_then_the_environment_then_the_search() {
        let pick = |explicit: Option<&str>, env: Option<&str>| {
            choose_library(
                explicit.map(Path::new),
                "edgetpu_lib",
                EDGETPU_LIB_ENV,
                env.map(Into::into),
                EDGETPU_SONAME,
            )
        };
        let rig = pick(Some("/opt/a.so"), Some("/opt/b.so"));
        assert_eq!(rig.path, Path::new("/opt/a.so"));
        assert_eq!(rig.from, "the rig's edgetpu_lib");
        let env = pick(None, Some("/opt/b.so"));
        assert_eq!(env.path, Path::new("/opt/b.so"));
        assert_eq!(env.from, "$JOULEBENCH_EDGETPU_LIB");
        for env in [None, Some("")] {
            let search = pick(None, env);
            assert_eq!(search.path, Path::new("libedgetpu.so.1"));
            assert_eq!(search.from, "the system's library search");
        }
    }

    #[test]
    fn only_models_compiled_for_the_edge_tpu_pass() {
        check_compiled_for_edgetpu(&shared(FIXTURE)).unwrap();
        let plain = shared(PLAIN);
        let err = format!("{:#}", check_compiled_for_edgetpu(&plain).unwrap_err());
        assert_eq!(
            err,
            format!(
                "model {} was not compiled for the Edge TPU (no edgetpu-custom-op among its \
                 operators), so it would run on the CPU: compile it with edgetpu_compiler, or \
                 use mobilenet_v2_1.0_224_quant_edgetpu",
                plain.display()
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.tflite");
        std::fs::write(&junk, b"not a flatbuffer at all").unwrap();
        let err = format!("{:#}", check_compiled_for_edgetpu(&junk).unwrap_err());
        assert!(
            err.contains("is not a valid TensorFlow Lite model"),
            "{err}"
        );
    }

    /// The model is refused before any library is touched: the library paths here do not
    /// exist, and the error is still the model's.
    #[test]
    fn a_plain_model_is_refused_before_the_libraries() {
        let spec = spec(
            Path::new("/nonexistent/a.so"),
            Path::new("/nonexistent/b.so"),
        );
        let err = open_err(&spec, &shared(PLAIN));
        assert!(err.contains("was not compiled for the Edge TPU"), "{err}");
    }

    #[test]
    fn a_missing_library_is_named_with_where_it_was_looked_for() {
        let spec = spec(
            Path::new("/nonexistent/libedgetpu.so.1"),
            Path::new("/nonexistent/libtensorflowlite_c.so"),
        );
        let err = open_err(&spec, &shared(FIXTURE));
        assert_eq!(
            err,
            "libedgetpu.so.1 not found at /nonexistent/libedgetpu.so.1 (from the rig's \
             edgetpu_lib): install Coral's libedgetpu1-std package (docs/src/guide/coral.md), or set \
             JOULEBENCH_EDGETPU_LIB / the rig's edgetpu_lib"
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("libedgetpu.so.1");
        std::fs::write(&junk, b"not an ELF file").unwrap();
        let err = open_err(&spec_with(&junk, "/nonexistent/t.so"), &shared(FIXTURE));
        assert!(
            err.starts_with(&format!(
                "cannot load libedgetpu.so.1 from {} (from the rig's edgetpu_lib): ",
                junk.display()
            )),
            "{err}"
        );
        assert!(err.ends_with("or set JOULEBENCH_EDGETPU_LIB / the rig's edgetpu_lib"));
    }

    #[test]
    fn a_library_the_system_search_cannot_load_is_named_so() {
        let choice = choose_library(None, "edgetpu_lib", EDGETPU_LIB_ENV, None, EDGETPU_SONAME);
        let reason = "libedgetpu.so.1: cannot open shared object file: No such file or directory";
        let err = EDGETPU
            .error(&choice, ffi::LoadError::Open(reason.into()))
            .to_string();
        assert_eq!(
            err,
            format!(
                "cannot load libedgetpu.so.1 through the system's library search: {reason}; \
                 install Coral's libedgetpu1-std package (docs/src/guide/coral.md), or set \
                 JOULEBENCH_EDGETPU_LIB / the rig's edgetpu_lib"
            )
        );
    }

    fn spec_with(edgetpu_lib: &Path, tflite_c_lib: &str) -> EdgetpuSpec {
        spec(edgetpu_lib, Path::new(tflite_c_lib))
    }

    #[test]
    fn stand_in_libraries_lacking_a_symbol_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let lacking = standin(dir.path(), "libedgetpu-lacking.so", &["LACK_SYMBOL"]);
        let err = open_err(&spec_with(&lacking, "/nonexistent/t.so"), &shared(FIXTURE));
        assert_eq!(
            err,
            format!(
                "{} (from the rig's edgetpu_lib) lacks edgetpu_create_delegate, so it is not a \
                 usable libedgetpu.so.1: install Coral's libedgetpu1-std package (docs/src/guide/coral.md)",
                lacking.display()
            )
        );

        let edgetpu = standin(dir.path(), "libedgetpu.so", &[]);
        let tflite = standin(
            dir.path(),
            "libtflite-lacking.so",
            &["TFLITE_C", "LACK_SYMBOL"],
        );
        let err = open_err(&spec(&edgetpu, &tflite), &shared(FIXTURE));
        assert!(
            err.starts_with(&format!(
                "{} (from the rig's tflite_c_lib) lacks TfLiteInterpreterOptionsAddDelegate, so \
                 it is not a usable libtensorflowlite_c.so: install a libtensorflowlite_c.so \
                 built from the TensorFlow version libedgetpu was built against",
                tflite.display()
            )),
            "{err}"
        );
        let err = open_err(
            &spec_with(&edgetpu, "/nonexistent/libtensorflowlite_c.so"),
            &shared(FIXTURE),
        );
        assert!(
            err.starts_with("libtensorflowlite_c.so not found at /nonexistent/libtensorflowlite_c.so (from the rig's tflite_c_lib): install a libtensorflowlite_c.so"),
            "{err}"
        );
    }

    /// A model of two inputs and two outputs, as the `PASSTHROUGH` stand-in's interpreter
    /// holds them (uint8 [1, 4] scale 0.5 zero point 3, float32 [1, 2]; each output a copy),
    /// listing the Edge TPU's custom operator.
    /// A spec on the pass-through stand-ins in `dir`: one USB Edge TPU, and an interpreter
    /// that copies each input to its output, built with `tflite_defines` besides.
    fn passthrough_spec(dir: &Path, tflite_defines: &[&str]) -> EdgetpuSpec {
        let edgetpu = standin(
            dir,
            "libedgetpu-passthrough.so",
            &["PASSTHROUGH", "ONE_USB_DEVICE"],
        );
        let defines = [&["TFLITE_C", "PASSTHROUGH"][..], tflite_defines].concat();
        let tflite = standin(dir, "libtflite-passthrough.so", &defines);
        spec(&edgetpu, &tflite)
    }

    fn two_in_two_out(dir: &Path) -> PathBuf {
        use joulebench_test_support::{Element, IoTensor};
        let inputs = [
            IoTensor::new("codes", Element::Uint8, &[1, 4]).quantized(0.5, 3),
            IoTensor::new("gains", Element::Float32, &[1, 2]),
        ];
        let path = dir.join("two_in_two_out_edgetpu.tflite");
        std::fs::write(
            &path,
            joulebench_test_support::passthrough_model_listing_custom_op(
                &inputs,
                &[(0, vec![1, 4]), (1, vec![1, 2])],
                EDGETPU_CUSTOM_OP,
            ),
        )
        .unwrap();
        path
    }

    /// Any number of inputs and outputs: the stand-in's interpreter of two of each opens, each
    /// tensor checked against the model file; each input gets its own bytes (the stand-in
    /// refuses a buffer of another size, as TF Lite does), and output 0 holds input 0's.
    #[test]
    fn a_model_of_two_inputs_and_two_outputs_opens_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let spec = passthrough_spec(dir.path(), &[]);
        let model = two_in_two_out(dir.path());
        let mut b = EdgeTpuBackend::open(&spec, &model).unwrap_or_else(|e| panic!("{e:#}"));
        let signature = b.signature();
        assert_eq!((signature.inputs.len(), signature.outputs.len()), (2, 2));
        assert!(!signature.classifier());
        assert_eq!(b.ranges, [0..4, 4..12]);
        let input: Vec<u8> = (1..=12).collect();
        let mut scores = vec![1.0];
        b.infer(&input, &mut scores).unwrap();
        assert!(scores.is_empty(), "{scores:?}");
        let mut first = Vec::new();
        b.session
            .run(&input, &b.ranges, |out| first = out.to_vec())
            .unwrap();
        assert_eq!(first, [1, 2, 3, 4]);
        let e = b.infer(&input[..11], &mut scores).unwrap_err().to_string();
        assert_eq!(e, "input of 8 bytes at 4..12 of 11, the model takes 8");
    }

    /// Each tensor is checked, not only the first of each side: the stand-in's second output
    /// of another shape than the model file's is refused, naming it.
    #[test]
    fn every_tensor_must_agree_with_the_model_file() {
        let dir = tempfile::tempdir().unwrap();
        let spec = passthrough_spec(dir.path(), &["MISMATCH"]);
        let model = two_in_two_out(dir.path());
        let err = open_err(&spec, &model);
        assert_eq!(
            err,
            format!(
                "model {}: the TF Lite C library sees tensor output_1 as [1, 3] of type 1 \
                 quantized None, the model file as output_1 [1, 2] float32 quantized None",
                model.display()
            )
        );
    }

    #[test]
    fn no_device_found_and_a_device_without_a_delegate() {
        let dir = tempfile::tempdir().unwrap();
        let none = standin(dir.path(), "libedgetpu-none.so", &[]);
        let tflite = standin(dir.path(), "libtflite.so", &["TFLITE_C"]);
        let err = open_err(&spec(&none, &tflite), &shared(FIXTURE));
        assert!(
            err.starts_with(
                "no Edge TPU found (libedgetpu lists none): plug in the Coral USB Accelerator"
            ),
            "{err}"
        );

        // One USB device listed: its type and path are read from libedgetpu's array, and the
        // stand-in's refusal to create a delegate is reported with that path.
        let one = standin(dir.path(), "libedgetpu-one.so", &["ONE_USB_DEVICE"]);
        let err = open_err(&spec(&one, &tflite), &shared(FIXTURE));
        assert_eq!(
            err,
            "edgetpu_create_delegate failed for the Edge TPU at /sys/bus/usb/devices/standin \
             (is another process using it?)"
        );
        let mut pci = spec(&one, &tflite);
        pci.edgetpu_device = Some("pci".parse().unwrap());
        let err = open_err(&pci, &shared(FIXTURE));
        assert_eq!(
            err,
            "no Edge TPU matches edgetpu_device = \"pci\"; found: Coral USB Accelerator \
             (/sys/bus/usb/devices/standin)"
        );
        // The versions the engine reports come from the libraries.
        let edgetpu = ffi::load_edgetpu(&one).unwrap();
        let tflite = ffi::load_tflite(&tflite).unwrap();
        assert_eq!(
            (edgetpu.version(), tflite.version()),
            ("standin".into(), "0.0.0-standin".into())
        );
    }
}
