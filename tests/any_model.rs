//! Any `.tflite` model, not just MobileNetV2: generated models (`passthrough_model`: every
//! output is an input reshaped, so it holds exactly what the input was fed) cover the types
//! and shapes a user's model can have, on every engine of the `tflite` backend and through
//! `joulebench run`, `compare` and `report`.

use std::path::{Path, PathBuf};

use joulebench::backend::signature::{ElementType, Fed};
use joulebench::rig::{BackendSpec, Engine, TfliteSpec};
use joulebench::runner::prepare_backend;
use joulebench_test_support::{passthrough_model, Element, IoTensor};

use crate::common::{assert_one_line_error, run, run_rig, s, sim_rig_running};

/// Writes a generated model into `dir`.
fn model(dir: &Path, name: &str, inputs: &[IoTensor], outputs: &[(usize, Vec<i32>)]) -> PathBuf {
    let path = dir.join(format!("{name}.tflite"));
    std::fs::write(&path, passthrough_model(inputs, outputs)).unwrap();
    path
}

/// A 16 × 16 PNG of one colour.
fn flat_image(dir: &Path, rgb: [u8; 3]) -> PathBuf {
    let path = dir.join("flat.png");
    image::RgbImage::from_pixel(16, 16, image::Rgb(rgb))
        .save(&path)
        .unwrap();
    path
}

/// Every engine the `tflite` backend has here: TF Lite 1.15.5, LiteRT with and without
/// XNNPACK (`make setup` installs LiteRT; CI always has it).
const ENGINES: [(Engine, Option<bool>); 3] = [
    (Engine::Tflite, None),
    (Engine::Litert, Some(true)),
    (Engine::Litert, Some(false)),
];

fn spec(model: &Path, image: &Path, engine: Engine, xnnpack: Option<bool>) -> BackendSpec {
    BackendSpec::Tflite(TfliteSpec {
        engine: Some(engine),
        xnnpack,
        model: s(model).into(),
        image: s(image).into(),
        threads: 1,
        ..Default::default()
    })
}

/// An RGB image input of each type, reshaped to a vector: a classifier by shape, so its
/// scores are its output, which is its input. The image is a flat colour, so every score is
/// that colour's channel, normalized (MobileNet's (p − 127.5) / 127.5) and quantized with the
/// input's own parameters.
#[test]
fn an_image_input_of_each_type_is_quantized_with_its_own_parameters_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let image = flat_image(dir.path(), [255, 0, 64]);
    // The colour in real numbers: 1, -1, (64 - 127.5) / 127.5.
    let real = [1.0f32, -1.0, (64.0 - 127.5) / 127.5];
    let cases = [
        (Element::Uint8, Some((1.0 / 128.0, 128)), 1.0 / 128.0),
        (Element::Int8, Some((1.0 / 64.0, -10)), 1.0 / 64.0),
        (Element::Int16, Some((1.0 / 4096.0, 0)), 1.0 / 4096.0),
        (Element::Float16, None, 1e-3),
        (Element::Float32, None, 1e-6),
    ];
    for (element, quantization, step) in cases {
        let mut input = IoTensor::new("pixels", element, &[1, 4, 4, 3]);
        input.quantization = quantization;
        let path = model(dir.path(), "image", &[input], &[(0, vec![1, 48])]);
        for (engine, xnnpack) in ENGINES {
            let what = format!("{element:?} on {engine:?} (xnnpack {xnnpack:?})");
            let mut b = prepare_backend(&spec(&path, &image, engine, xnnpack))
                .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let signature = b.backend.signature().clone();
            assert!(signature.classifier(), "{what}");
            assert_eq!(signature.inputs[0].fed, Some(Fed::Image), "{what}");
            let mut scores = Vec::new();
            b.backend.infer(&b.input, &mut scores).unwrap();
            assert_eq!(scores.len(), 48, "{what}");
            for (i, got) in scores.iter().enumerate() {
                let want = real[i % 3];
                // Within half a step of the input's quantization (its rounding), and the
                // step itself of the clamp at the type's end.
                assert!(
                    (got - want).abs() <= step,
                    "{what}: score {i} is {got}, want {want}"
                );
            }
        }
    }
}

/// Several inputs of several types and shapes: the image where an input is one, seeded
/// synthetic data elsewhere, the same bytes every time, each output exactly its input; no
/// scores (not a classifier).
#[test]
fn several_inputs_get_the_image_or_seeded_synthetic_data_and_no_scores() {
    let dir = tempfile::tempdir().unwrap();
    let image = flat_image(dir.path(), [10, 20, 30]);
    let inputs = [
        IoTensor::new("frame", Element::Uint8, &[1, 8, 8, 3]).quantized(1.0 / 128.0, 128),
        IoTensor::new("features", Element::Int16, &[1, 10]),
        IoTensor::new("mask", Element::Float16, &[2, 5]),
        IoTensor::new("gray", Element::Int8, &[1, 6, 6, 1]).quantized(1.0 / 128.0, 0),
    ];
    let path = model(
        dir.path(),
        "several",
        &inputs,
        &[(1, vec![10]), (0, vec![192]), (2, vec![10]), (3, vec![36])],
    );
    let mut first = None;
    for (engine, xnnpack) in ENGINES {
        let what = format!("{engine:?} (xnnpack {xnnpack:?})");
        let mut b = prepare_backend(&spec(&path, &image, engine, xnnpack))
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let signature = b.backend.signature().clone();
        assert!(!signature.classifier());
        let fed: Vec<_> = signature.inputs.iter().map(|t| t.fed).collect();
        assert_eq!(
            fed,
            [
                Some(Fed::Image),
                Some(Fed::Synthetic),
                Some(Fed::Synthetic),
                Some(Fed::Image)
            ]
        );
        assert_eq!(
            signature
                .outputs
                .iter()
                .map(|t| t.dtype)
                .collect::<Vec<_>>(),
            [
                ElementType::Int16,
                ElementType::Uint8,
                ElementType::Float16,
                ElementType::Int8
            ]
        );
        assert_eq!(b.input.len(), 192 + 20 + 20 + 36, "{what}");
        // The gray input: luma of (10, 20, 30) by Rec. 709 is 18.6 → 19; (19 − 127.5) / 127.5
        // × 128 = −108.9 → −109.
        assert!(
            b.input[232..].iter().all(|&q| q as i8 == -109),
            "{what}: {:?}",
            &b.input[232..]
        );
        // Synthetic data spans its type: not constant.
        let features = &b.input[192..212];
        assert!(features.windows(2).any(|w| w[0] != w[1]));
        match &first {
            None => first = Some(b.input.clone()),
            Some(bytes) => assert_eq!(bytes, &b.input, "{what}: other bytes than the first"),
        }
        let mut scores = vec![1.0];
        b.backend.infer(&b.input, &mut scores).unwrap();
        assert!(scores.is_empty(), "{what}: {scores:?}");
    }
}

/// What the rig cannot feed is refused before anything runs, in one line naming the tensor.
#[test]
fn dynamic_shapes_and_unsupported_types_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            IoTensor::new("tokens", Element::Float32, &[1, 10]).signature(&[1, -1]),
            "tensor tokens has a dynamic shape ([1, 10], signature [1, -1])",
        ),
        (
            IoTensor::new("empty", Element::Float32, &[1, 0]),
            "tensor empty has a dynamic shape ([1, 0]",
        ),
        (
            IoTensor::new("ids", Element::Int32, &[1, 10]),
            "tensor ids [1, 10] is int32",
        ),
    ];
    for (i, (input, needle)) in cases.into_iter().enumerate() {
        let shape = input.shape.clone();
        let path = model(dir.path(), &format!("bad{i}"), &[input], &[(0, shape)]);
        let out = run(&[
            "run",
            "--model",
            s(&path),
            "--backend",
            "tflite",
            "--out",
            s(&dir.path().join(format!("run{i}"))),
        ]);
        assert_one_line_error(&out, needle);
    }
}

/// A leading (batch) dimension left dynamic (-1 in `shape_signature`) is the one dynamic
/// dimension a model may have: it runs at the size its shape gives, on every engine (LiteRT
/// is told that size), each output exactly its input.
#[test]
fn a_dynamic_batch_dimension_runs_at_the_shapes_size_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let image = flat_image(dir.path(), [0, 0, 0]);
    let input = IoTensor::new("features", Element::Int8, &[1, 10]).signature(&[-1, 10]);
    let path = model(dir.path(), "dynamic", &[input], &[(0, vec![1, 10])]);
    for (engine, xnnpack) in ENGINES {
        let what = format!("{engine:?} (xnnpack {xnnpack:?})");
        let mut b = prepare_backend(&spec(&path, &image, engine, xnnpack))
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let signature = b.backend.signature();
        assert!(signature.inputs[0].dynamic_batch, "{what}");
        assert_eq!(signature.inputs[0].shape, [1, 10], "{what}");
        let mut scores = vec![1.0];
        b.backend.infer(&b.input, &mut scores).unwrap();
        assert!(scores.is_empty(), "{what}");
    }
}

/// Where the model has no batch to grow, a batch is refused when the backend opens, in one
/// line naming the model and why: an input whose leading dimension the file fixes above 1
/// (named), and, on each engine, an operator that fixes one image's shape (a RESHAPE to
/// `[10]`), which the engine refuses once the input is resized.
#[test]
fn a_batch_the_model_cannot_take_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let image = flat_image(dir.path(), [0, 0, 0]);
    let pairs = IoTensor::new("pairs", Element::Float32, &[2, 5]);
    let fixed = model(dir.path(), "fixed", &[pairs], &[(0, vec![2, 5])]);
    let out = run(&[
        "run",
        "--model",
        s(&fixed),
        "--backend",
        "tflite",
        "--scenario",
        "offline",
        "--batch",
        "4",
        "--out",
        s(&dir.path().join("run")),
    ]);
    assert_one_line_error(
        &out,
        "at batch 4: input pairs [2, 5] fixes its leading (batch) dimension at 2, not 1: the \
         model cannot take a batch of 4 images (run it at batch 1)",
    );
    let vector = IoTensor::new("features", Element::Float32, &[1, 10]);
    let reshaped = model(dir.path(), "reshaped", &[vector], &[(0, vec![10])]);
    for (engine, xnnpack) in ENGINES {
        let what = format!("{engine:?} (xnnpack {xnnpack:?})");
        let mut spec = spec(&reshaped, &image, engine, xnnpack);
        if let BackendSpec::Tflite(s) = &mut spec {
            s.batch = Some(4);
        }
        let e = format!("{:#}", prepare_backend(&spec).err().unwrap());
        assert!(
            e.contains(&format!("model {} at batch 4", reshaped.display()))
                && e.contains("an operator cannot follow")
                && !e.contains('\n'),
            "{what}: {e}"
        );
    }
}

/// A batch of 4 through `joulebench run` on both engines of the `tflite` kind, on the
/// stand-in: a call counts 4 images (FPS and inferences per joule count images), the top-1 is
/// the stand-in's (read from the batch's first image), and run.json records the shapes that
/// ran.
#[test]
fn a_batch_of_4_runs_on_both_engines_and_counts_images() {
    let model = crate::common::standin_path();
    let backends: String = ["litert", "tflite"]
        .iter()
        .map(|engine| {
            format!(
                "[[backends]]\nkind = \"tflite\"\nengine = \"{engine}\"\nmodel = \"{}\"\n\
                 labels = \"{}\"\nimage = \"bird.bmp\"\nbatch = 4\n",
                s(&model),
                s(&crate::common::standin_labels_path())
            )
        })
        .collect();
    crate::common::ensure_models();
    let rig = format!(
        r#"
name = "tflite-batch"
idle_baseline_s = 1.0
[protocol]
scenario = "offline"
warmup = 1
settle_s = 0.1
runs = 20
min_duration_s = 2.0
{backends}
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1
max_current_a = 3.2
"#
    );
    let done = run_rig(&rig);
    assert!(
        done.output.status.success(),
        "{}",
        crate::common::stderr(&done.output)
    );
    let rows = crate::common::read_csv(&done.out_dir.join("summary.csv"));
    let engines: Vec<&str> = rows.iter().map(|r| r["engine"].as_str()).collect();
    assert_eq!(engines, ["litert", "tflite"], "{rows:?}");
    for row in &rows {
        let runs: usize = row["runs"].parse().unwrap();
        assert!(runs >= 20, "{row:?}");
        assert_eq!(
            (
                row["batch"].as_str(),
                row["inferences"].parse::<usize>().unwrap()
            ),
            ("4", runs * 4),
            "{row:?}"
        );
        assert_eq!(row["status"], "ok", "{row:?}");
        assert!(row["fps"].parse::<f64>().unwrap() > 0.0, "{row:?}");
        assert_eq!(
            row["top1_class"],
            joulebench_test_support::STANDIN_TOP1.to_string(),
            "{row:?}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(done.out_dir.join("run.json")).unwrap())
            .unwrap();
    for b in 0..2 {
        let signature = &json["backends"][b]["signature"];
        assert_eq!(signature["batch"], 4);
        assert_eq!(
            signature["inputs"][0]["shape"],
            serde_json::json!([4, 224, 224, 3])
        );
        assert_eq!(
            signature["outputs"][0]["shape"],
            serde_json::json!([4, 1001])
        );
    }
    // A classifier at a batch is still one: no note that no prediction was checked.
    let stdout = String::from_utf8_lossy(&done.output.stdout);
    assert!(!stdout.contains("no prediction was checked"), "{stdout}");
}

/// A model that is not a classifier runs through `joulebench run`: figures, no top-1, a note
/// saying what was fed, and its signature in run.json; `summarize`, `compare` and `report`
/// read the folder.
#[test]
fn a_model_that_is_not_a_classifier_runs_compares_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let image = flat_image(dir.path(), [1, 2, 3]);
    let inputs = [
        IoTensor::new("frame", Element::Float32, &[1, 8, 8, 3]),
        IoTensor::new("anchors", Element::Int8, &[1, 12]).quantized(0.5, 3),
    ];
    let path = model(
        dir.path(),
        "detector",
        &inputs,
        &[(0, vec![1, 4, 48]), (1, vec![12]), (0, vec![192])],
    );
    let first = run_rig(&sim_rig_running(s(&path), s(&image)));
    let stdout = String::from_utf8_lossy(&first.output.stdout).into_owned();
    assert!(
        first.output.status.success(),
        "{}",
        crate::common::stderr(&first.output)
    );
    let note = "(backend 0 is not a classifier, so no prediction was checked; fed frame \
                [1, 8, 8, 3] float32: the image; anchors [1, 12] int8: synthetic data (seed 2019))";
    assert!(stdout.contains(note), "{stdout}");
    let rows = crate::common::read_csv(&first.out_dir.join("summary.csv"));
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row["top1_class"], "", "{row:?}");
        assert_eq!(row["top1_label"], "", "{row:?}");
        assert_eq!(row["status"], "ok", "{row:?}");
        assert!(row["inferences_per_joule"].parse::<f64>().unwrap() > 0.0);
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.out_dir.join("run.json")).unwrap())
            .unwrap();
    let signature = &json["backends"][0]["signature"];
    assert_eq!(signature["inputs"][0]["name"], "frame");
    assert_eq!(signature["inputs"][0]["type"], "float32");
    assert_eq!(signature["inputs"][0]["fed"], "image");
    assert_eq!(
        signature["inputs"][0]["quantization"],
        serde_json::Value::Null
    );
    assert_eq!(signature["inputs"][1]["fed"], "synthetic");
    assert_eq!(signature["inputs"][1]["quantization"]["scale"], 0.5);
    assert_eq!(signature["inputs"][1]["quantization"]["zero_point"], 3);
    assert_eq!(
        signature["outputs"][0]["shape"],
        serde_json::json!([1, 4, 48])
    );
    assert_eq!(signature["outputs"].as_array().unwrap().len(), 3);

    // The folder rebuilds to the same summary, note included (the signature comes back from
    // run.json).
    let summarized = run(&["summarize", s(&first.out_dir)]);
    assert!(
        summarized.status.success(),
        "{}",
        crate::common::stderr(&summarized)
    );
    assert!(String::from_utf8_lossy(&summarized.stdout).contains(note));

    let second = run_rig(&sim_rig_running(s(&path), s(&image)));
    assert!(second.output.status.success());
    let compared = run(&["compare", s(&first.out_dir), s(&second.out_dir)]);
    assert!(
        compared.status.success(),
        "{}",
        crate::common::stderr(&compared)
    );
    assert!(String::from_utf8_lossy(&compared.stdout).contains("detector"));
    let report = dir.path().join("report");
    let reported = run(&[
        "report",
        s(&first.out_dir),
        s(&second.out_dir),
        "--out",
        s(&report),
    ]);
    assert!(
        reported.status.success(),
        "{}",
        crate::common::stderr(&reported)
    );
    assert!(report.join("report.md").is_file());
}

/// MobileNetV2's run.json records its signature too: one uint8 image in, 1001 scores out,
/// with the model's own quantization.
#[test]
fn mobilenets_signature_is_the_image_in_and_scores_out() {
    crate::common::ensure_models();
    let spec = BackendSpec::Tflite(TfliteSpec {
        model: crate::common::MOBILENET.into(),
        image: "bird.bmp".into(),
        ..TfliteSpec::default()
    });
    let b = prepare_backend(&spec).unwrap();
    let signature = b.backend.signature();
    assert!(signature.classifier());
    let input = &signature.inputs[0];
    assert_eq!(
        (
            input.shape.as_slice(),
            input.dtype,
            input.fed,
            input.quantization.map(|q| (q.scale, q.zero_point))
        ),
        (
            &[1, 224, 224, 3][..],
            ElementType::Uint8,
            Some(Fed::Image),
            Some((0.0078125, 128))
        )
    );
    assert_eq!(signature.outputs[0].shape, vec![1, 1001]);
}

/// The public models of other kinds the manifest lists (files inside pinned PyPI wheels),
/// fetched by the project's own code into the user's models folder (outside the clone; a
/// cache a second run finds filled, which nothing depends on).
const PUBLIC: [&str; 3] = [
    "face_detection_short_range",
    "selfie_segmentation",
    "okay_nabu",
];

fn fetch_public_models() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let manifest = joulebench::models::Manifest::load_default().unwrap();
        let rows = manifest.fetch_only(
            &PUBLIC,
            &joulebench::models::FetchOptions::network().quiet(),
        );
        assert_eq!(rows.len(), PUBLIC.len());
        // Present and verified: there already, or downloaded now (an optional file that
        // could not be fetched would be no failure to `all_ok`, but is to this test).
        assert!(
            rows.iter().all(|r| matches!(
                r.outcome,
                joulebench::models::Outcome::Ok | joulebench::models::Outcome::Downloaded { .. }
            )),
            "{}",
            joulebench::models::format_table(&rows)
        );
    });
}

/// Batches on public models, on LiteRT: the segmenter computes each image apart, so it takes a
/// batch of 4, its mask at `[4, 256, 256, 1]`; the detector's operators fold the batch into its
/// anchors (LiteRT computes its regressors as `[1, 3584, 16]`), so a batch is refused in one
/// line naming the tensor. TF Lite 1.15.5 cannot allocate either at batch 4 (an operator its
/// kernels size for one image): a one-line refusal naming the model and the batch.
#[test]
fn a_public_segmenter_takes_a_batch_and_a_detector_that_folds_it_is_refused() {
    crate::common::ensure_models();
    fetch_public_models();
    let batched = |model: &str, engine: Engine| {
        BackendSpec::Tflite(TfliteSpec {
            engine: Some(engine),
            model: model.into(),
            image: "grace_hopper.bmp".into(),
            threads: 1,
            batch: Some(4),
            ..Default::default()
        })
    };
    let refusal = |model: &str, engine: Engine| {
        let e = prepare_backend(&batched(model, engine)).err().unwrap();
        let e = format!("{e:#}");
        assert!(
            e.contains("at batch 4") && !e.contains('\n'),
            "{engine:?}: {e}"
        );
        e
    };
    let b = prepare_backend(&batched("selfie_segmentation", Engine::Litert))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(b.backend.batch(), 4);
    assert_eq!(b.backend.signature().outputs[0].shape, [4, 256, 256, 1]);
    let e = refusal("face_detection_short_range", Engine::Litert);
    assert!(
        e.contains(
            "LiteRT computes tensor regressors as [1, 3584, 16] where a batch of 4 gives \
             [4, 896, 16]: an operator folds the batch into another dimension"
        ),
        "{e}"
    );
    for model in ["selfie_segmentation", "face_detection_short_range"] {
        refusal(model, Engine::Tflite);
    }
}

/// A detector with two outputs, a segmenter whose one output is a mask (float32 both, fed the
/// image) and an int8 keyword spotter (fed seeded data) run in one rig, one backend each, and
/// through `compare` and `report`; none reports a top-1.
#[test]
fn public_models_of_three_kinds_run_compare_and_report() {
    crate::common::ensure_models();
    fetch_public_models();
    let backends: String = PUBLIC
        .iter()
        .map(|m| {
            format!(
                "[[backends]]\nkind = \"tflite\"\nmodel = \"{m}\"\nimage = \"grace_hopper.bmp\"\n"
            )
        })
        .collect();
    let rig = format!(
        r#"
name = "public-models"
idle_baseline_s = 1.0
[protocol]
warmup = 1
settle_s = 0.1
runs = 20
min_duration_s = 2.0
{backends}
[[sensors]]
kind = "ina219-sim"
rail = "5V"
shunt_ohms = 0.1
max_current_a = 3.2
"#
    );
    let first = run_rig(&rig);
    assert!(
        first.output.status.success(),
        "{}",
        crate::common::stderr(&first.output)
    );
    let stdout = String::from_utf8_lossy(&first.output.stdout).into_owned();
    for note in [
        "(backend 0 is not a classifier, so no prediction was checked; fed input [1, 128, 128, 3] float32: the image)",
        "(backend 1 is not a classifier, so no prediction was checked; fed input_1 [1, 256, 256, 3] float32: the image)",
        "(backend 2 is not a classifier, so no prediction was checked; fed serving_default_input_audio:0 [1, 3, 40] int8: synthetic data (seed 2019))",
    ] {
        assert!(stdout.contains(note), "{note}\n{stdout}");
    }
    let rows = crate::common::read_csv(&first.out_dir.join("summary.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(
            (row["status"].as_str(), row["top1_class"].as_str()),
            ("ok", ""),
            "{row:?}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.out_dir.join("run.json")).unwrap())
            .unwrap();
    let sig = |b: usize| json["backends"][b]["signature"].clone();
    let shapes = |s: &serde_json::Value, side: &str| -> Vec<serde_json::Value> {
        s[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["shape"].clone())
            .collect()
    };
    assert_eq!(
        shapes(&sig(0), "outputs"),
        [
            serde_json::json!([1, 896, 16]),
            serde_json::json!([1, 896, 1])
        ]
    );
    assert_eq!(
        shapes(&sig(1), "outputs"),
        [serde_json::json!([1, 256, 256, 1])]
    );
    let audio = &sig(2)["inputs"][0];
    assert_eq!(
        (
            &audio["type"],
            &audio["fed"],
            &audio["quantization"]["zero_point"]
        ),
        (
            &serde_json::json!("int8"),
            &serde_json::json!("synthetic"),
            &serde_json::json!(-128)
        )
    );
    assert_eq!(sig(2)["outputs"][0]["type"], "uint8");

    let second = run_rig(&rig);
    assert!(second.output.status.success());
    let compared = run(&["compare", s(&first.out_dir), s(&second.out_dir)]);
    assert!(
        compared.status.success(),
        "{}",
        crate::common::stderr(&compared)
    );
    let text = String::from_utf8_lossy(&compared.stdout);
    for model in PUBLIC {
        assert!(text.contains(model), "{model}: {text}");
    }
    let report = first.dir.path().join("report");
    let reported = run(&[
        "report",
        s(&first.out_dir),
        s(&second.out_dir),
        "--out",
        s(&report),
    ]);
    assert!(
        reported.status.success(),
        "{}",
        crate::common::stderr(&reported)
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("okay_nabu"), "{md}");
}
