//! Both shared models give the expected top-1 on the four shared images (the manifest's
//! `top1` tables) on every engine, through the same preparation code a run uses.

use joulebench::input::top_k;
use joulebench::models::Manifest;
use joulebench::rig::{BackendSpec, Engine, TfliteSpec};
use joulebench::runner::prepare_backend;

#[test]
fn both_models_classify_the_four_images() {
    crate::common::ensure_models();
    let manifest = Manifest::load_default().unwrap();
    let mut checked = 0;
    // LiteRT comes with `make setup`'s venv, which `make test` (and so CI) always creates.
    let engines: &[(Engine, Option<bool>)] = &[
        (Engine::Tflite, None),
        (Engine::Litert, Some(true)),
        (Engine::Litert, Some(false)),
    ];
    for &(engine, xnnpack) in engines {
        for model in ["mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq"] {
            for image in ["bird.bmp", "cat.bmp", "grace_hopper.bmp", "parrot.jpg"] {
                let spec = BackendSpec::Tflite(TfliteSpec {
                    engine: Some(engine),
                    xnnpack,
                    model: model.into(),
                    image: image.into(),
                    threads: if xnnpack == Some(false) { 1 } else { 2 },
                    litert_lib: None,
                    batch: None,
                });
                let mut b = prepare_backend(&spec).unwrap();
                let mut scores = Vec::new();
                b.backend.infer(&b.input, &mut scores).unwrap();
                assert_eq!(scores.len(), 1001);
                let mut top = Vec::new();
                top_k(&scores, 1, &mut top);
                let expected = manifest.open_image(image).unwrap();
                let expected = expected.expected_top1(model).unwrap();
                assert_eq!(
                    (top[0].class, b.labels.get(top[0].class)),
                    (expected.index, expected.label.as_str()),
                    "{model} on {image} with {engine:?} (xnnpack {xnnpack:?})"
                );
                assert_eq!(b.backend.engine().engine, engine.as_str());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 24);
}
