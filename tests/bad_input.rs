//! Every kind of bad input gets one line on stderr starting `joulebench: ` that names the
//! thing and what to do, a non-zero exit and no panic (the "Bad input" table of
//! docs/src/reference/errors.md: one test, or one named case of a table-driven test, per row).
//!
//! Most cases fail before anything is measured. Where an input must be *accepted* (a
//! grayscale or CMYK image, a float model), the rig's sensor is a real INA219 on a bus that
//! does not exist: backends (model and image) are prepared before sensors are opened, so the
//! run reaching the bus error shows the input passed, without a measuring run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use tflite::model::stl::vector::VectorInsert;

/// A one-backend rig with the given model and image, and `extra` lines (protocol keys go in
/// `[protocol]`, which comes first).
fn rig(model: &str, image: &str, protocol: &str, sensor: &str) -> String {
    format!(
        r#"
name = "bad-input"
idle_baseline_s = 0.5
[protocol]
warmup = 1
settle_s = 0.1
runs = 20
{protocol}
[[backends]]
kind = "tflite"
engine = "tflite"
model = "{model}"
image = "{image}"
{sensor}
"#
    )
}

/// The INA219 on a bus that is not there: a rig using it fails when sensors open, after the
/// backends were prepared.
const ABSENT_BUS: &str = r#"
[[sensors]]
kind = "ina219"
rail = "5V"
i2c_bus = "/dev/i2c-99"
shunt_ohms = 0.1
max_current_a = 3.2
"#;

const SIM: &str = r#"
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1
max_current_a = 3.2
"#;

/// Runs `joulebench run` on a rig given as text, with `args` after it, into `run` in the
/// returned folder.
fn run_text(text: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    run_text_by(text, args, run)
}

/// [`run_text`], the binary started by `runner`.
fn run_text_by(
    text: &str,
    args: &[&str],
    runner: fn(&[&str]) -> Output,
) -> (tempfile::TempDir, Output) {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let path = write_rig(dir.path(), "rig", text);
    let out_dir = dir.path().join("run");
    let mut all = vec!["run", "--rig", s(&path), "--out", s(&out_dir)];
    all.extend_from_slice(args);
    let out = runner(&all);
    (dir, out)
}

/// The contract, with the case named on failure: non-zero exit, no panic, the last stderr
/// line starts `joulebench: ` and holds every needle, and it is the only such error line.
fn assert_bad(case: &str, out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "{case}: exit 0; stderr: {err}");
    assert!(!err.contains("panicked"), "{case}: panic: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("joulebench: "), "{case}: {err}");
    for needle in needles {
        assert!(
            last.contains(needle),
            "{case}: expected {needle:?} in {last:?}"
        );
    }
}

/// The input passed: the run failed only later, at the absent bus.
fn assert_accepted(case: &str, out: &Output) {
    assert_bad(case, out, &["I2C bus /dev/i2c-99 not found"]);
}

fn models_dir() -> PathBuf {
    repo().join("../shared/models")
}

fn quant_model() -> tflite::model::Model {
    let bytes = std::fs::read(models_dir().join("mobilenet_v2_1.0_224_quant.tflite")).unwrap();
    tflite::model::Model::from_buffer(&bytes).unwrap()
}

fn write_model(dir: &Path, name: &str, model: &tflite::model::Model) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, model.to_buffer()).unwrap();
    path
}

/// A model file given by path, run on the built-in TF Lite.
fn run_model(path: &Path, sensor: &str) -> Output {
    let (_dir, out) = run_text(&rig(s(path), "bird.bmp", "", sensor), &[]);
    out
}

// ---- model files ----------------------------------------------------------------------------

#[test]
fn model_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(models_dir().join("mobilenet_v2_1.0_224_quant.tflite")).unwrap();
    let path = dir.path().join("cut.tflite");
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    assert_bad(
        "truncated model",
        &run_model(&path, SIM),
        &[
            "cut.tflite",
            "not a valid TensorFlow Lite model",
            "truncated, corrupt",
        ],
    );
}

#[test]
fn model_not_a_flatbuffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.tflite");
    std::fs::write(&path, "these are notes, not a model\n".repeat(20)).unwrap();
    assert_bad(
        "not a flatbuffer",
        &run_model(&path, SIM),
        &["notes.tflite", "not a valid TensorFlow Lite model"],
    );
}

#[test]
fn model_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.tflite");
    std::fs::write(&path, b"").unwrap();
    assert_bad(
        "empty model",
        &run_model(&path, SIM),
        &["empty.tflite", "is empty (0 bytes)"],
    );
}

#[test]
fn model_corrupt_manifest_file() {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(models_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let model = dir.path().join("mobilenet_v2_1.0_224_quant.tflite");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[1000] ^= 0xFF;
    std::fs::write(&model, bytes).unwrap();
    let rig_dir = tempfile::tempdir().unwrap();
    let path = write_rig(
        rig_dir.path(),
        "rig",
        &rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM),
    );
    let _machine = one_run_at_a_time();
    let out = joulebench()
        .env("JOULEBENCH_MODELS_DIR", dir.path())
        .args(["run", "--rig", s(&path), "--out"])
        .arg(rig_dir.path().join("run"))
        .output()
        .unwrap();
    assert_bad(
        "corrupt manifest model",
        &out,
        &["is corrupt", "joulebench models fetch"],
    );
}

/// A model file given by path, on the `torch` backend (which runs MobileNetV2's shape only:
/// its model checks come before libtorch loads).
fn run_model_on_torch(path: &Path, sensor: &str) -> Output {
    let text = rig(s(path), "bird.bmp", "", sensor)
        .replace("kind = \"tflite\"\nengine = \"tflite\"", "kind = \"torch\"");
    let (_dir, out) = run_text(&text, &[]);
    out
}

/// An input that is not an image: a `tflite` backend feeds it synthetic data; `torch`, which
/// runs MobileNetV2's shape only, refuses it.
#[test]
fn model_input_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = quant_model();
    let input = m.subgraphs[0].inputs[0] as usize;
    m.subgraphs[0].tensors[input].shape.assign(vec![1, 28, 28]);
    let path = write_model(dir.path(), "sequence.tflite", &m);
    assert_bad(
        "input shape not an image",
        &run_model_on_torch(&path, SIM),
        &[
            "sequence.tflite",
            "input is [1, 28, 28] uint8, not an image the protocol can feed: it takes one RGB \
             image, shape [1, height, width, 3]",
        ],
    );
}

#[test]
fn model_input_type_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = quant_model();
    let input = m.subgraphs[0].inputs[0] as usize;
    m.subgraphs[0].tensors[input].typ = tflite::model::TensorType::TensorType_INT32;
    let path = write_model(dir.path(), "int32.tflite", &m);
    assert_bad(
        "input type not an image",
        &run_model(&path, SIM),
        &[
            "int32.tflite",
            "tensor input [1, 224, 224, 3] is int32: the rig feeds and reads uint8, int8, int16, \
             float16 and float32 tensors",
        ],
    );
    assert_bad(
        "input type not an image (torch)",
        &run_model_on_torch(&path, SIM),
        &[
            "int32.tflite",
            "tensor type INT32 is not one the protocol feeds",
        ],
    );
}

/// A uint8 input without quantization: `torch`, which dequantizes by those parameters, refuses
/// the model; on a `tflite` backend the engine does, its kernels needing them too.
#[test]
fn model_without_quantization_where_needed() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = quant_model();
    let input = m.subgraphs[0].inputs[0] as usize;
    // No quantization table at all: the `tflite` crate panicked on it (memory_impl.rs:276).
    m.subgraphs[0].tensors[input].quantization = unsafe { std::mem::zeroed() };
    let path = write_model(dir.path(), "noquant.tflite", &m);
    assert_bad(
        "no quantization",
        &run_model_on_torch(&path, SIM),
        &["noquant.tflite", "uint8 tensor has no quantization scale"],
    );
    // A `tflite` backend would feed it raw pixels, but the model's first convolution has no
    // quantization for it: the engine refuses the model, in one line naming it.
    assert_bad(
        "no quantization (tflite)",
        &run_model(&path, SIM),
        &[
            "TF Lite 1.15.5 cannot build an interpreter for model",
            "noquant.tflite: ",
        ],
    );
}

#[test]
fn model_float_on_engine_tflite_is_accepted() {
    // A valid float32 model (no quantization tables) panicked inside the `tflite` crate
    // (memory_impl.rs:276); it is accepted now, its input fed as normalized floats.
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(
        dir.path(),
        "float.tflite",
        &joulebench::backend::tflite::fixtures::tiny_float_model(),
    );
    assert_accepted("float model", &run_model(&path, ABSENT_BUS));
}

#[test]
fn model_compiled_for_the_edge_tpu_on_cpu_backends() {
    let path = models_dir().join("keras_lstm_mnist_ptq_edgetpu.tflite");
    for backend in ["tflite", "torch"] {
        let (_dir, out) = run_text(&rig(s(&path), "bird.bmp", "", SIM), &["--backend", backend]);
        assert_bad(
            &format!("edgetpu model on {backend}"),
            &out,
            &[
                "keras_lstm_mnist_ptq_edgetpu.tflite",
                "compiled for the Edge TPU",
                "kind = \"edgetpu\"",
            ],
        );
    }
}

#[test]
fn labels_that_do_not_match_the_outputs() {
    use sha2::Digest;
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(models_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    // The labels file one line short, with its new SHA-256 in a manifest of its own.
    let labels = dir.path().join("imagenet_labels.txt");
    let text = std::fs::read_to_string(&labels).unwrap();
    let short: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&labels, &short).unwrap();
    let old = format!("{:x}", sha2::Sha256::digest(text.as_bytes()));
    let new = format!("{:x}", sha2::Sha256::digest(short.as_bytes()));
    let manifest = std::fs::read_to_string(repo().join("models/manifest.toml")).unwrap();
    assert!(manifest.contains(&old));
    std::fs::write(
        dir.path().join("manifest.toml"),
        manifest.replace(&old, &new),
    )
    .unwrap();
    let rig_dir = tempfile::tempdir().unwrap();
    let path = write_rig(
        rig_dir.path(),
        "rig",
        &rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM),
    );
    let _machine = one_run_at_a_time();
    let out = joulebench()
        .env("JOULEBENCH_MODELS_DIR", dir.path())
        .args(["run", "--rig", s(&path), "--out"])
        .arg(rig_dir.path().join("run"))
        .output()
        .unwrap();
    assert_bad(
        "labels mismatch",
        &out,
        &[
            "name 1000 classes",
            "outputs 1001",
            "do not belong to this model",
        ],
    );
}

// ---- images ---------------------------------------------------------------------------------

fn run_image(path: &Path, sensor: &str) -> Output {
    let (_dir, out) = run_text(&rig("mobilenet_v2_1.0_224_quant", s(path), "", sensor), &[]);
    out
}

#[test]
fn image_missing() {
    assert_bad(
        "missing image",
        &run_image(Path::new("/nonexistent/cat.png"), SIM),
        &["/nonexistent/cat.png", "nor a readable file"],
    );
}

#[test]
fn image_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jpg");
    std::fs::write(&path, b"").unwrap();
    assert_bad(
        "empty image",
        &run_image(&path, SIM),
        &["empty.jpg", "is empty (0 bytes)"],
    );
}

#[test]
fn image_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.png");
    std::fs::write(&path, "not a picture at all").unwrap();
    assert_bad(
        "not an image",
        &run_image(&path, SIM),
        &[
            "cannot decode image",
            "photo.png",
            "not a BMP, JPEG or PNG file",
        ],
    );
}

/// A BMP header (BITMAPINFOHEADER, 24 bits) claiming `w` × `h` pixels, with no pixel data.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&(54u32 + 12).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 24]);
    b.extend_from_slice(&[0; 12]);
    b
}

#[test]
fn image_zero_sized() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.bmp");
    std::fs::write(&path, bmp_header(0, 0)).unwrap();
    assert_bad("zero-sized image", &run_image(&path, SIM), &["zero.bmp"]);
}

#[test]
fn image_huge_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.bmp");
    std::fs::write(&path, bmp_header(20_000, 20_000)).unwrap();
    assert_bad(
        "huge image",
        &run_image(&path, SIM),
        &[
            "huge.bmp",
            "20000 × 20000 pixels, more than joulebench decodes (8192 per side)",
        ],
    );
}

#[test]
fn image_truncated_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(models_dir().join("parrot.jpg")).unwrap();
    let path = dir.path().join("cut.jpg");
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    assert_bad(
        "truncated JPEG",
        &run_image(&path, SIM),
        &["cut.jpg", "truncated", "without the end-of-image marker"],
    );
}

#[test]
fn image_truncated_png() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::open(models_dir().join("bird.bmp")).unwrap();
    let whole = dir.path().join("whole.png");
    img.save(&whole).unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    let path = dir.path().join("cut.png");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_bad(
        "truncated PNG",
        &run_image(&path, SIM),
        &["cannot decode image", "cut.png"],
    );
}

#[test]
fn image_grayscale_16_bit_and_cmyk_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::open(models_dir().join("bird.bmp")).unwrap();
    let gray = dir.path().join("gray.png");
    img.to_luma8().save(&gray).unwrap();
    let deep = dir.path().join("deep.png");
    image::DynamicImage::ImageRgb16(img.to_rgb16())
        .save(&deep)
        .unwrap();
    let cmyk = dir.path().join("cmyk.jpg");
    write_cmyk_jpeg(&cmyk);
    for (case, path) in [("grayscale", gray), ("16-bit", deep), ("CMYK", cmyk)] {
        assert_accepted(case, &run_image(&path, ABSENT_BUS));
    }
}

// ---- rig files ------------------------------------------------------------------------------

/// Rig texts and what their error must say, one case each.
fn rig_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let base = |protocol: &str, sensor: &str| {
        rig("mobilenet_v2_1.0_224_quant", "bird.bmp", protocol, sensor)
    };
    let sim = |extra: &str| format!("{SIM}{extra}\n");
    let two = |a: &str, b: &str| {
        format!(
            "[[sensors]]\nkind = \"ina219-sim\"\nrail = \"A\"\nshunt_ohms = 0.1\nmax_current_a = 3.2\n{a}\n\
             [[sensors]]\nkind = \"ina219-sim\"\nrail = \"B\"\nshunt_ohms = 0.1\nmax_current_a = 3.2\n{b}\n"
        )
    };
    vec![
        (
            "malformed TOML",
            "name = \"x\"\n[protocol\nruns = 1\n".into(),
            vec!["line 2, column"],
        ),
        (
            "unknown key",
            base("rnus = 5", SIM),
            vec!["line 8, column 1", "unknown field `rnus`"],
        ),
        (
            "unknown backend kind",
            base("", SIM).replace("kind = \"tflite\"", "kind = \"tensorrt\""),
            vec!["line 10", "unknown variant `tensorrt`"],
        ),
        (
            "unknown sensor kind",
            base("", &SIM.replace("ina219-sim", "ina226")),
            vec!["unknown variant `ina226`"],
        ),
        (
            "wrong type",
            base("", SIM).replace("runs = 20", "runs = \"many\""),
            vec!["line 7", "invalid type: string \"many\", expected u32"],
        ),
        (
            "wrong type in a sensor table",
            base("", &SIM.replace("shunt_ohms = 0.1", "shunt_ohms = \"0.1\"")),
            vec![
                "line 18, column 1: sensors[0].shunt_ohms: invalid type: string \"0.1\", expected f64",
            ],
        ),
        (
            "unknown ADC mode in a sensor table",
            base("", &sim("adc = \"13bit\"")),
            vec!["line 20, column 1: sensors[0].adc: unknown variant `13bit`, expected one of `9bit`"],
        ),
        (
            "zero runs",
            base("", SIM).replace("runs = 20", "runs = 0"),
            vec!["protocol.runs must be at least 1"],
        ),
        (
            "negative runs",
            base("", SIM).replace("runs = 20", "runs = -5"),
            vec!["line 7", "invalid value: integer `-5`"],
        ),
        (
            "zero threads",
            base("", SIM).replace("image = \"bird.bmp\"", "image = \"bird.bmp\"\nthreads = 0"),
            vec!["backends[0] (tflite): threads must be at least 1"],
        ),
        (
            "zero batch",
            base("scenario = \"offline\"", SIM).replace(
                "kind = \"tflite\"\nengine = \"tflite\"",
                "kind = \"torch\"\nbatch = 0",
            ),
            vec!["backends[0] (torch): batch must be at least 1"],
        ),
        (
            "zero shunt",
            base("", &SIM.replace("shunt_ohms = 0.1", "shunt_ohms = 0")),
            vec!["sensors[0] (ina219-sim): shunt_ohms must be positive, not 0"],
        ),
        (
            "negative shunt",
            base("", &SIM.replace("shunt_ohms = 0.1", "shunt_ohms = -0.1")),
            vec!["shunt_ohms must be positive, not -0.1"],
        ),
        (
            "NaN current",
            base(
                "",
                &SIM.replace("max_current_a = 3.2", "max_current_a = nan"),
            ),
            vec!["max_current_a must be positive, not NaN"],
        ),
        (
            "infinite current",
            base(
                "",
                &SIM.replace("max_current_a = 3.2", "max_current_a = inf"),
            ),
            vec!["max_current_a must be positive, not inf"],
        ),
        (
            "infinite min_duration_s",
            base("min_duration_s = inf", SIM),
            vec!["protocol.min_duration_s must be 0 to 3600 seconds, not inf"],
        ),
        (
            "huge min_duration_s",
            base("min_duration_s = 1e300", SIM),
            vec!["protocol.min_duration_s must be 0 to 3600 seconds, not 1e300"],
        ),
        (
            "NaN min_duration_s",
            base("min_duration_s = nan", SIM),
            vec!["protocol.min_duration_s must be 0 to 3600 seconds, not NaN"],
        ),
        (
            "negative min_duration_s",
            base("min_duration_s = -1.0", SIM),
            vec!["protocol.min_duration_s must be 0 to 3600 seconds, not -1"],
        ),
        (
            "NaN settle_s",
            base("", SIM).replace("settle_s = 0.1", "settle_s = nan"),
            vec!["protocol.settle_s must be 0 to 3600 seconds, not NaN"],
        ),
        (
            "infinite idle_baseline_s",
            base("", SIM).replace("idle_baseline_s = 0.5", "idle_baseline_s = inf"),
            vec!["idle_baseline_s must be 0 to 3600 seconds, not inf"],
        ),
        (
            "NaN validity threshold",
            format!("{}\n[validity]\nmin_coverage = nan\n", base("", "")) + SIM,
            vec!["validity.min_coverage must be above 0 and at most 1, not NaN"],
        ),
        (
            "NaN simulated load",
            base("", &sim("[sensors.load]\nnoise_amps = nan")),
            vec!["sensors[0] (ina219-sim): load.noise_amps must be 0 or more, not NaN"],
        ),
        (
            "infinite supply voltage",
            base("", &sim("[sensors.load]\nsupply_volts = inf")),
            vec!["load.supply_volts must be positive, not inf"],
        ),
        (
            "NaN shunt tolerance",
            base("", &sim("shunt_tolerance_pct = nan")),
            vec!["shunt_tolerance_pct must be 0 to 100 percent, not NaN"],
        ),
        (
            "NaN nominal watts",
            base(
                "",
                "[[sensors]]\nkind = \"nominal\"\nrail = \"board\"\nwatts = nan\n",
            ),
            vec!["sensors[0] (nominal): watts must be positive"],
        ),
        (
            "nominal watts beyond any machine",
            base(
                "",
                "[[sensors]]\nkind = \"nominal\"\nrail = \"board\"\nwatts = 1e308\n",
            ),
            vec!["sensors[0] (nominal): watts must be positive and at most 100000 W (100 kW"],
        ),
        (
            "address outside 0x40..0x4F",
            base("", &sim("address = 0x50")),
            vec!["address 0x50 is not an INA219 address (0x40 to 0x4f)"],
        ),
        (
            "duplicate sensor rails",
            base(
                "",
                &two("", "address = 0x41").replace("rail = \"B\"", "rail = \"A\""),
            ),
            vec!["both measure rail \"A\"", "its own rail name"],
        ),
        (
            "a rail with white space at an end",
            base(
                "",
                &two("", "address = 0x41").replace("rail = \"B\"", "rail = \"A \""),
            ),
            vec![
                "sensors[1] (ina219-sim): rail \"A \" has white space at an end, which makes it \
                 another rail than \"A\": write rail = \"A\"",
            ],
        ),
        (
            "a rail with a control character",
            base("", &SIM.replace("rail = \"5V\"", "rail = \"5V\\nUSB\"")),
            vec![
                "sensors[0] (ina219-sim): rail \"5V\\nUSB\" holds a control character (a line \
                 break, a tab, ...): write rail = \"5V USB\"",
            ],
        ),
        (
            "a rail with no name",
            base("", &SIM.replace("rail = \"5V\"", "rail = \"\"")),
            vec![
                "sensors[0] (ina219-sim): rail \"\" names nothing: name what the sensor measures, \
                 e.g. rail = \"5V supply\"",
            ],
        ),
        (
            "a shunt range too small for the current",
            base("", &sim("shunt_range_mv = 40")),
            vec![
                "sensors[0] (ina219-sim): max_current_a = 3.2 A through shunt_ohms = 0.1 Ω is 320 mV, \
                 beyond shunt_range_mv = 40 (a current above 0.4 A would read clipped): set \
                 shunt_range_mv = 320 or leave it out, or use a smaller shunt",
            ],
        ),
        (
            "duplicate addresses on one bus",
            base("", &two("", "")),
            vec!["both at address 0x40 on one bus"],
        ),
    ]
}

#[test]
fn rig_files_with_bad_values() {
    let cases = rig_cases();
    assert!(cases.len() >= 20);
    for (case, text, needles) in cases {
        let (_dir, out) = run_text(&text, &[]);
        assert_bad(case, &out, &needles);
    }
}

/// A rig name too long to begin a folder name is refused at load, not by the file system
/// ("File name too long (os error 36)"), and the refused run leaves no empty `results/`.
#[test]
fn rig_name_too_long_for_a_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM).replace(
        "name = \"bad-input\"",
        &format!("name = \"{}\"", "a".repeat(300)),
    );
    let path = write_rig(dir.path(), "rig", &text);
    let out = joulebench()
        .current_dir(dir.path())
        .args(["run", "--rig", s(&path)])
        .output()
        .unwrap();
    assert_bad(
        "rig name too long",
        &out,
        &[
            "name must be at most 200 bytes (it begins the name of each run's folder",
            "not 300: give a shorter name",
        ],
    );
    assert!(!dir.path().join("results").exists());
}

// ---- the command line -----------------------------------------------------------------------

#[test]
fn usage_errors_end_with_a_joulebench_line_and_exit_2() {
    for (case, args, needle) in [
        (
            "unknown flag",
            vec!["run", "--frobnicate"],
            "joulebench: unexpected argument '--frobnicate' found",
        ),
        (
            "bench --rounds 0",
            vec!["bench", "--rounds", "0"],
            "joulebench: invalid value '0' for '--rounds <ROUNDS>'",
        ),
        (
            "bench --runs 0",
            vec!["bench", "--runs", "0"],
            "joulebench: invalid value '0' for '--runs <RUNS>'",
        ),
        (
            "not a number",
            vec!["run", "--threads", "many"],
            "joulebench: invalid value 'many' for '--threads <THREADS>'",
        ),
        (
            "no subcommand",
            vec![],
            "joulebench: a subcommand or argument is missing",
        ),
    ] {
        let out = joulebench().args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with(needle), "{case}: {err}");
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("joulebench: "))
                .count(),
            1,
            "{case}: {err}"
        );
    }
}

#[test]
fn help_and_version_print_normally() {
    for args in [vec!["--help"], vec!["--version"], vec!["run", "--help"]] {
        let out = joulebench().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
        assert!(!stderr(&out).contains("joulebench: "), "{args:?}");
    }
}

#[test]
fn conflicting_flags() {
    let text = rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM);
    for (case, args, needle) in [
        (
            "--engine with --backend torch",
            vec!["--backend", "torch", "--engine", "litert"],
            "backends[0] (torch): --engine applies only to kind \"tflite\"",
        ),
        (
            "--batch without --scenario offline",
            vec!["--backend", "torch", "--batch", "4"],
            "batch 4 needs protocol.scenario = \"offline\"",
        ),
        (
            "--runs 0",
            vec!["--runs", "0"],
            "command-line settings: protocol.runs must be at least 1",
        ),
        (
            "--settle inf",
            vec!["--settle", "inf"],
            "protocol.settle_s must be 0 to 3600 seconds, not inf",
        ),
    ] {
        let (_dir, out) = run_text(&text, &args);
        assert_bad(case, &out, &[needle]);
    }
    let out = joulebench()
        .args([
            "calibrate",
            "--rig",
            "sim-cpu",
            "--rail",
            "x",
            "--amps",
            "1",
            "--watts",
            "5",
        ])
        .output()
        .unwrap();
    assert_bad("two references", &out, &["give one reference"]);
}

// ---- counts and their bounds ----------------------------------------------------------------

/// Runs the binary with `args`, killed if it has not ended within a minute: a refusal of its
/// arguments loads and measures nothing, so it ends at once on any machine, while a count that
/// was let through would measure for hours (or abort on its allocation).
fn run_refusal(args: &[&str]) -> Output {
    let _machine = one_run_at_a_time();
    let mut child = joulebench()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} still ran after 60 s: it was not refused; stderr: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `run` of the rig `text` with `args` is refused with exit status `code` and one
/// `joulebench: ` line holding `needles`, before it measured anything or made its folder.
fn assert_count_refused(case: &str, text: &str, args: &[&str], code: i32, needles: &[&str]) {
    let (dir, out) = run_text_by(text, args, run_refusal);
    let out_dir = dir.path().join("run");
    assert_bad(case, &out, needles);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{case}: {err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("joulebench: "))
            .count(),
        1,
        "{case}: {err}"
    );
    assert!(!out_dir.exists(), "{case}: it made the run folder: {err}");
}

/// Every count of a rig file and of `run`'s command line has an upper bound, checked before
/// anything is loaded, allocated or measured: `--runs 4294967295` once aborted on a 64 GiB
/// allocation after the idle baseline, and `--threads 4294967295` ran one thread recorded as
/// four billion.
#[test]
fn counts_beyond_their_bounds_are_refused_before_anything_is_measured() {
    let base = |protocol: &str| rig("mobilenet_v2_1.0_224_quant", "bird.bmp", protocol, SIM);
    let torch = |protocol: &str| {
        base(protocol).replace("kind = \"tflite\"\nengine = \"tflite\"", "kind = \"torch\"")
    };
    let ordinary = base("");
    let many_backends = {
        let table = "[[backends]]\nkind = \"tflite\"\nengine = \"tflite\"\nmodel = \"mobilenet_v2_1.0_224_quant\"\nimage = \"bird.bmp\"\n";
        format!("{ordinary}{}", table.repeat(64))
    };
    // 65 batches of 1: a list that long, not its batches, is what is refused.
    let batches = vec!["1"; 65].join(",");
    let cores = std::thread::available_parallelism().unwrap().get();
    let beyond_cores = (cores + 1).to_string();
    let beyond_cores_refused = format!("threads {beyond_cores} is more than the {cores} cores");
    let cases: Vec<(&str, String, Vec<&str>, Vec<&str>)> = vec![
        (
            "runs in the rig",
            ordinary.replace("runs = 20", "runs = 4294967295"),
            vec![],
            vec![
                "protocol.runs must be at most 1000000 (",
                "not 4294967295: ",
            ],
        ),
        (
            "--runs",
            ordinary.clone(),
            vec!["--runs", "4294967295"],
            vec!["command-line settings: protocol.runs must be at most 1000000 ("],
        ),
        (
            "warmup in the rig",
            ordinary.replace("warmup = 1", "warmup = 4294967295"),
            vec![],
            vec!["protocol.warmup must be at most 100000000 ("],
        ),
        (
            "--warmup",
            ordinary.clone(),
            vec!["--warmup", "100000001"],
            vec![
                "protocol.warmup must be at most 100000000 (",
                "not 100000001",
            ],
        ),
        (
            "repeat in the rig",
            base("repeat = 1001"),
            vec![],
            vec![
                "protocol.repeat must be at most 1000 (",
                "run joulebench soak",
            ],
        ),
        (
            "--repeat",
            ordinary.clone(),
            vec!["--repeat", "4294967295"],
            vec!["protocol.repeat must be at most 1000 ("],
        ),
        (
            "batch in the rig",
            torch("scenario = \"offline\"").replace(
                "image = \"bird.bmp\"",
                "image = \"bird.bmp\"\nbatch = 4294967295",
            ),
            vec![],
            vec!["backends[0] (torch): batch must be at most 4096 ("],
        ),
        (
            "--batch",
            ordinary.clone(),
            vec![
                "--backend",
                "torch",
                "--scenario",
                "offline",
                "--batch",
                "4294967295",
            ],
            vec!["backends[0] (torch): batch must be at most 4096 ("],
        ),
        (
            "backends in the rig",
            many_backends,
            vec![],
            vec!["the rig has 65 backends", "split it into several runs"],
        ),
        (
            "a --batch sweep",
            ordinary.clone(),
            vec![
                "--backend",
                "torch",
                "--scenario",
                "offline",
                "--batch",
                &batches,
            ],
            vec!["the rig has 65 backends"],
        ),
        (
            "--threads",
            ordinary.clone(),
            vec!["--threads", "4294967295"],
            vec![
                "backends[0] (tflite): threads 4294967295 is more than the",
                "--threads",
            ],
        ),
        (
            "threads beyond the cores",
            ordinary.replace(
                "image = \"bird.bmp\"",
                &format!("image = \"bird.bmp\"\nthreads = {beyond_cores}"),
            ),
            vec![],
            vec![&beyond_cores_refused],
        ),
    ];
    for (case, text, args, needles) in &cases {
        assert_count_refused(case, text, args, 1, needles);
    }
}

/// `bench`'s counts are bounded too: its rounds and runs by their flags' ranges (a usage
/// error, exit status 2, as their lower bounds are), its threads by the cores, and an engine
/// named twice (each contender's model is loaded before the first round) is refused.
#[test]
fn bench_counts_beyond_their_bounds_are_refused_before_anything_is_measured() {
    ensure_models();
    let cores = std::thread::available_parallelism().unwrap().get();
    for (case, args, code, needle) in [
        (
            "--rounds",
            vec!["bench", "--rounds", "4294967295"],
            2,
            "joulebench: invalid value '4294967295' for '--rounds <ROUNDS>': 4294967295 is not in 1..=1000".to_string(),
        ),
        (
            "--runs",
            vec!["bench", "--runs", "4294967295"],
            2,
            "joulebench: invalid value '4294967295' for '--runs <RUNS>': 4294967295 is not in 1..=1000000".to_string(),
        ),
        (
            "--threads",
            vec!["bench", "--threads", "4294967295"],
            1,
            format!("joulebench: command-line settings: backends[0] (tflite): threads 4294967295 is more than the {cores} cores"),
        ),
        (
            "--engines twice",
            vec!["bench", "--engines", "litert,tflite,litert"],
            1,
            "joulebench: --engines names litert twice: name each engine once".to_string(),
        ),
    ] {
        let out = run_refusal(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{case}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with(&needle), "{case}: {err}");
        assert!(out.stdout.is_empty(), "{case}: it began: {}", String::from_utf8_lossy(&out.stdout));
    }
}

// ---- the output folder ----------------------------------------------------------------------

#[test]
fn out_folder_with_a_file_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    std::fs::write(&file, "x").unwrap();
    let text = rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM);
    let path = write_rig(dir.path(), "rig", &text);
    ensure_models();
    let out = run(&["run", "--rig", s(&path), "--out", s(&file.join("run"))]);
    assert_bad(
        "a file in the folder's place",
        &out,
        &["cannot create", "taken/run"],
    );
    let out = run(&["run", "--rig", s(&path), "--out", s(&file)]);
    assert_bad("--out names a file", &out, &["taken"]);
}

/// A run folder inside another run's folder would add to that run's files.
#[test]
fn out_folder_inside_another_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("run.json"), "{}").unwrap();
    let text = rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM);
    let path = write_rig(dir.path(), "rig", &text);
    let inside = other.join("nested/run");
    let out = run(&["run", "--rig", s(&path), "--out", s(&inside)]);
    assert_bad(
        "--out inside another run folder",
        &out,
        &[
            "nested/run is inside the run folder",
            "give a folder outside it",
        ],
    );
    assert!(!other.join("nested").exists());
}

/// A read-only folder `ro` in `dir` (read-only to the binary even as root: [`joulebench`]).
fn read_only_folder(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let ro = dir.join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    ro
}

#[test]
fn out_folder_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let ro = read_only_folder(dir.path());
    let text = rig("mobilenet_v2_1.0_224_quant", "bird.bmp", "", SIM);
    let path = write_rig(dir.path(), "rig", &text);
    ensure_models();
    let out = run(&["run", "--rig", s(&path), "--out", s(&ro.join("run"))]);
    assert_bad("read-only folder", &out, &["cannot create", "ro/run"]);
}

// ---- export files ---------------------------------------------------------------------------

/// A rig that measures for a minute: a run that ends within seconds measured nothing.
fn minute_long_rig() -> String {
    rig(
        "mobilenet_v2_1.0_224_quant",
        "bird.bmp",
        "min_duration_s = 60.0",
        SIM,
    )
}

/// `run` with `flag PATH` is refused at once, naming the path, the flag and `why`, and
/// leaves no run folder.
fn assert_export_refused(case: &str, flag: &str, path: &Path, why: &str) {
    let began = Instant::now();
    let (dir, out) = run_text(&minute_long_rig(), &[flag, s(path)]);
    let named = format!("cannot write {} ({flag}): ", path.display());
    assert_bad(case, &out, &[&named, why]);
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{case}: took {:?}, so it measured",
        began.elapsed()
    );
    let err = stderr(&out);
    assert!(!err.contains("running rig"), "{case}: it began: {err}");
    assert!(!dir.path().join("run").exists(), "{case}: a run folder");
}

#[test]
fn export_file_in_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert_export_refused(
        "missing folder",
        "--export-csv",
        &dir.path().join("gone/summary.csv"),
        "gone does not exist; create it first",
    );
}

#[test]
fn export_file_with_a_folder_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    assert_export_refused(
        "a folder in its place",
        "--export-json",
        dir.path(),
        "it is a folder; give a file name",
    );
}

#[test]
fn export_file_under_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    std::fs::write(&file, "x").unwrap();
    assert_export_refused(
        "a file in its folder's place",
        "--export-lava",
        &file.join("lava.txt"),
        "taken is not a folder",
    );
}

#[test]
fn export_file_in_a_folder_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let ro = read_only_folder(dir.path());
    assert_export_refused(
        "read-only folder",
        "--export-markdown",
        &ro.join("summary.md"),
        "Permission denied",
    );
}

#[test]
fn compare_export_file_in_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone/comparison.csv");
    let out = joulebench()
        .args([
            "compare",
            "results/examples/sim-cpu",
            "--export-csv",
            s(&path),
        ])
        .output()
        .unwrap();
    let named = format!("cannot write {} (--export-csv): ", path.display());
    assert_bad("compare, missing folder", &out, &[&named, "does not exist"]);
    assert!(out.stdout.is_empty(), "compared anyway");
}

// ---- stdout ---------------------------------------------------------------------------------

/// Where a command's stdout goes in the stdout tests.
#[derive(Clone, Copy)]
enum StdoutTo {
    /// `>/dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose reader is gone: every write fails with EPIPE.
    Closed,
}

/// Runs `cmd` to completion with its stdout on `to`, its stderr captured.
fn run_with_stdout(cmd: &mut Command, to: StdoutTo) -> Output {
    let stdout = match to {
        StdoutTo::Full => Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        ),
        StdoutTo::Closed => Stdio::piped(),
    };
    let _machine = one_run_at_a_time();
    let mut child = cmd.stdout(stdout).stderr(Stdio::piped()).spawn().unwrap();
    // The reader goes before the child prints anything (it reads its inputs first).
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// A short measuring run whose stdout goes to `to`.
fn measuring_run(to: StdoutTo) -> (tempfile::TempDir, Output) {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let path = write_rig(
        dir.path(),
        "rig",
        &rig(
            "mobilenet_v2_1.0_224_quant",
            "bird.bmp",
            "min_duration_s = 1.0",
            SIM,
        ),
    );
    let out = run_with_stdout(
        joulebench()
            .args(["run", "--rig", s(&path), "--out"])
            .arg(dir.path().join("run")),
        to,
    );
    (dir, out)
}

#[test]
fn stdout_full_is_one_line_and_keeps_the_files() {
    let (dir, out) = measuring_run(StdoutTo::Full);
    assert_bad(
        "stdout on /dev/full",
        &out,
        &[
            "cannot print to stdout: No space left on device",
            "the results are in",
        ],
    );
    assert!(dir.path().join("run/summary.csv").is_file());
}

#[test]
fn stdout_closed_exits_quietly_and_keeps_the_files() {
    let (dir, out) = measuring_run(StdoutTo::Closed);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with(
            "joulebench: stdout was closed before the table was printed; the results are in"
        )),
        "{err}"
    );
    // The run's own status: 0 where every row is ok (a busy machine may make a window
    // invalid, and then the run's one error line comes after this one).
    if !out.status.success() {
        assert!(
            err.lines().last().unwrap_or_default().contains("invalid"),
            "{err}"
        );
    }
    assert!(dir.path().join("run/summary.csv").is_file());
}

/// A run folder for `summarize`, measured in a second: one backend, no sensors.
fn quick_run_folder(dir: &Path) -> PathBuf {
    let text = r#"
name = "quick"
idle_baseline_s = 0.0
[protocol]
warmup = 1
settle_s = 0.0
runs = 3
[[backends]]
kind = "tflite"
engine = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"
"#;
    let path = write_rig(dir, "quick", text);
    let folder = dir.join("run");
    let out = run(&["run", "--rig", s(&path), "--out", s(&folder)]);
    assert!(out.status.success(), "{}", stderr(&out));
    folder
}

/// A command that prints to stdout, with arguments that succeed.
struct Printing {
    case: &'static str,
    args: Vec<String>,
    /// The `joulebench: ` lines it writes on stderr in any case (calibrate: what it reads).
    notes: usize,
}

/// Every command that prints to stdout but `bench` (which measures for minutes).
fn printing_commands(dir: &Path) -> Vec<Printing> {
    ensure_models();
    let folder = quick_run_folder(dir);
    let report = dir.join("report");
    let case = |case, args: &[&str], notes| Printing {
        case,
        args: args.iter().map(|a| a.to_string()).collect(),
        notes,
    };
    vec![
        case("models list", &["models", "list"], 0),
        case("models verify", &["models", "verify"], 0),
        case(
            "models fetch --from",
            &["models", "fetch", "--from", s(&models_dir())],
            0,
        ),
        case(
            "compare",
            &["compare", "results/examples/sim-cpu", s(&folder)],
            0,
        ),
        case("summarize", &["summarize", s(&folder)], 0),
        case("sensors", &["sensors", "--rig", "sim-cpu"], 0),
        case("sensors --detect", &["sensors", "--detect"], 0),
        case(
            "report",
            &["report", "results/examples/sim-cpu", "--out", s(&report)],
            0,
        ),
        case(
            "calibrate --dry-run",
            &[
                "calibrate",
                "--rig",
                "sim-cpu",
                "--rail",
                "5V supply (simulated board)",
                "--amps",
                "0.4",
                "--reference-uncertainty-pct",
                "1",
                // Calibration needs 10 fresh readings: 0.35 s of the default's 29 a second.
                "--seconds",
                "1.0",
                "--dry-run",
            ],
            1,
        ),
    ]
}

/// The `joulebench: ` lines of a command's stderr.
fn joulebench_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("joulebench: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn stdout_full_is_one_line_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for Printing { case, args, notes } in printing_commands(dir.path()) {
        let out = run_with_stdout(joulebench().args(&args), StdoutTo::Full);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        // One error line, the last.
        let lines = joulebench_lines(&out);
        assert_eq!(lines.len(), notes + 1, "{case}: {err}");
        assert!(
            lines[notes].starts_with("joulebench: cannot print to stdout: No space left on device")
                && err.trim_end().ends_with(&lines[notes]),
            "{case}: {err}"
        );
    }
}

#[test]
fn stdout_closed_is_no_error_for_any_command() {
    let dir = tempfile::tempdir().unwrap();
    for Printing { case, args, notes } in printing_commands(dir.path()) {
        let out = run_with_stdout(joulebench().args(&args), StdoutTo::Closed);
        let err = stderr(&out);
        assert!(out.status.success(), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert_eq!(joulebench_lines(&out).len(), notes, "{case}: {err}");
    }
    // Its work done all the same.
    assert!(dir.path().join("run/summary.csv").is_file());
    assert!(dir.path().join("report/report.md").is_file());
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

/// An export or report inside a run folder the command writes or reads is refused in one line
/// before any work, however the path is spelled (a symbolic link, `..`, a folder not created
/// yet), and the folder keeps its files.
#[test]
fn outputs_inside_a_run_folder_are_refused_before_any_work() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let example = repo().join("results/examples/sim-cpu");
    let a = tmp.path().join("a");
    std::fs::create_dir(&a).unwrap();
    for file in std::fs::read_dir(&example).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, a.join(file.file_name().unwrap())).unwrap();
    }
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| {
                let f = f.unwrap().path();
                (
                    f.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&f).unwrap(),
                )
            })
            .collect();
        all.sort();
        all
    };
    let before = files(&a);
    let new = tmp.path().join("new");
    let dotted = tmp.path().join("nowhere/../a/summary.md");
    let (json, csv) = (a.join("run.json"), link.join("summary.csv"));
    let (report_out, new_json, lava) = (
        link.join("report"),
        new.join("run.json"),
        new.join("x/../lava.txt"),
    );
    let cases: [&[&str]; 6] = [
        &["compare", s(&a), "--export-json", s(&json)],
        &["compare", s(&a), "--export-csv", s(&csv)],
        &["compare", s(&a), "--export-markdown", s(&dotted)],
        &["report", s(&a), "--out", s(&report_out)],
        &[
            "run",
            "--rig",
            "sim-cpu",
            "--out",
            s(&new),
            "--export-json",
            s(&new_json),
        ],
        &[
            "run",
            "--rig",
            "sim-cpu",
            "--out",
            s(&new),
            "--export-lava",
            s(&lava),
        ],
    ];
    for args in cases {
        let out = run(args);
        assert_one_line_error(&out, "is inside the run folder");
        assert_eq!(files(&a), before, "{args:?} changed the run folder");
        assert!(!new.exists(), "{args:?} created the run folder");
    }
}

/// A copy of the example run folder `name` (under results/examples) at `dir/as_name`.
fn copy_example(name: &str, dir: &Path, as_name: &str) -> PathBuf {
    let copy = dir.join(as_name);
    std::fs::create_dir(&copy).unwrap();
    for file in std::fs::read_dir(repo().join("results/examples").join(name)).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, copy.join(file.file_name().unwrap())).unwrap();
    }
    copy
}

/// Every file of the folder `dir`, by name, with its bytes.
fn folder_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let f = f.unwrap().path();
            let bytes = std::fs::read(&f).unwrap_or_default();
            (f.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    all.sort();
    all
}

/// An export, a report or a run's export into a run folder the command neither writes nor
/// reads is refused as one into its own: `run --out NEW --export-csv OTHER/summary.csv` once
/// replaced OTHER's summary, and `compare OTHER` then failed.
#[test]
fn outputs_inside_another_run_folder_are_refused_before_any_work() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let other = copy_example("sim-cpu", tmp.path(), "other");
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let read = repo().join("results/examples/repeat-quant");
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    let before = folder_files(&other);
    let new = tmp.path().join("new");
    let (csv, json, md) = (
        other.join("summary.csv"),
        link.join("comparison.json"),
        tmp.path().join("sub/../other/table.md"),
    );
    let report_out = other.join("report");
    let cases: [&[&str]; 5] = [
        &[
            "run",
            "--rig",
            "sim-cpu",
            "--out",
            s(&new),
            "--export-csv",
            s(&csv),
        ],
        &[
            "run",
            "--rig",
            "sim-cpu",
            "--out",
            s(&new),
            "--export-markdown",
            s(&md),
        ],
        &["compare", s(&read), "--export-json", s(&json)],
        &["report", s(&read), "--out", s(&report_out)],
        &["report", s(&read), "--out", s(&other)],
    ];
    for args in cases {
        let out = run(args);
        assert_one_line_error(&out, "is inside the run folder");
        assert!(
            stderr(&out).contains(&format!("{}: write it elsewhere", other.display())),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("running rig"), "{args:?} measured");
        assert_eq!(
            folder_files(&other),
            before,
            "{args:?} changed the other run"
        );
        assert!(!new.exists(), "{args:?} created its run folder");
    }
    let out = run(&["compare", s(&other)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Two exports to one file (however the path is spelled) are refused before any work: the
/// second would replace the first.
#[test]
fn two_outputs_on_one_path_are_refused_before_any_work() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new");
    let file = tmp.path().join("rows.txt");
    let same = tmp.path().join("sub/../rows.txt");
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let read = repo().join("results/examples/repeat-quant");
    let run_with = |flags: [&str; 4]| -> Vec<String> {
        ["run", "--rig", "sim-cpu", "--out", s(&new)]
            .into_iter()
            .chain(flags)
            .map(String::from)
            .collect()
    };
    let compare_with = |flags: [&str; 4]| -> Vec<String> {
        ["compare", s(&read)]
            .into_iter()
            .chain(flags)
            .map(String::from)
            .collect()
    };
    for (args, needle) in [
        (
            run_with(["--export-csv", s(&file), "--export-json", s(&file)]),
            format!(
                "--export-json {} is the file --export-csv writes too: give each export a file of its own",
                file.display()
            ),
        ),
        (
            run_with(["--export-markdown", s(&file), "--export-lava", s(&same)]),
            "is the file --export-markdown writes too".to_string(),
        ),
        (
            compare_with(["--export-csv", s(&file), "--export-markdown", s(&same)]),
            "is the file --export-csv writes too".to_string(),
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_one_line_error(&out, &needle);
        assert!(out.stdout.is_empty(), "{args:?} began");
        assert!(!file.exists(), "{args:?} wrote {}", file.display());
        assert!(!new.exists(), "{args:?} created its run folder");
    }
}

/// Each export is written on its own: one to a full disk names its flag and file, and the
/// others, the table and the run folder still come out, with exit status 1.
#[test]
fn a_failing_export_stops_none_of_the_others() {
    // Every Linux system has it (devtmpfs).
    let full = Path::new("/dev/full");
    assert!(full.exists(), "no /dev/full");
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, json) = (tmp.path().join("run"), tmp.path().join("rows.json"));
    let out = run(&[
        "run",
        "--rig",
        "sim-cpu",
        "--out",
        s(&dir),
        "--export-csv",
        "/dev/full",
        "--export-json",
        s(&json),
    ]);
    assert_one_line_error(&out, "cannot write /dev/full: No space left on device");
    assert!(
        stderr(&out).trim_end().ends_with("(--export-csv)"),
        "{}",
        stderr(&out)
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(rows[0]["status"].is_string(), "{rows}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("results: "));
    assert!(dir.join("summary.csv").is_file() && dir.join("run.json").is_file());
}

// ---- the environment and damaged folders ----------------------------------------------------

/// `JOULEBENCH_ROOT` naming nothing is refused, not read as a machine without meters.
#[test]
fn a_machine_root_that_is_not_a_folder() {
    for command in [vec!["sensors"], vec!["sensors", "--detect"], vec!["run"]] {
        let out = joulebench()
            .env("JOULEBENCH_ROOT", "/nonexistent")
            .args(&command)
            .output()
            .unwrap();
        assert_bad(
            &format!("{command:?}"),
            &out,
            &["JOULEBENCH_ROOT=/nonexistent is not a folder: unset it"],
        );
    }
}

/// A references file the reader cannot use names the variable that chose it, and the way out.
#[test]
fn a_references_file_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("refs.csv");
    std::fs::write(&bad, "x,y\n1,2\n").unwrap();
    for (path, says) in [
        (bad.clone(), "line 2"),
        (dir.path().join("gone.csv"), "cannot read"),
    ] {
        let out = joulebench()
            .env("JOULEBENCH_REFERENCES", &path)
            .args(["compare", "results/examples/sim-cpu", "--references"])
            .output()
            .unwrap();
        assert_bad(
            "JOULEBENCH_REFERENCES",
            &out,
            &[
                &format!("JOULEBENCH_REFERENCES={}: ", path.display()),
                says,
                "or unset JOULEBENCH_REFERENCES for the built-in references",
            ],
        );
    }
}

/// A cut run.json says what happened to it and what to do, in every reader of a run folder.
#[test]
fn a_cut_run_json_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let example = repo().join("results/examples/sim-cpu");
    for file in ["latency.csv", "power.csv", "summary.csv"] {
        std::fs::copy(example.join(file), run.join(file)).unwrap();
    }
    let json = std::fs::read(example.join("run.json")).unwrap();
    std::fs::write(run.join("run.json"), &json[..500]).unwrap();
    let report = dir.path().join("report");
    for args in [
        vec!["summarize", s(&run)],
        vec!["compare", s(&run)],
        vec!["report", s(&run), "--out", s(&report)],
    ] {
        let out = joulebench().args(&args).output().unwrap();
        assert_bad(
            &format!("{args:?}"),
            &out,
            &[
                "run.json is not valid JSON (",
                "it is cut short or damaged",
                "measure again",
            ],
        );
    }
}
