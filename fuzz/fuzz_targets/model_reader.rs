//! The `.tflite` reader on arbitrary bytes: TF Lite's flatbuffer verifier (the check the
//! LiteRT, TF Lite and Edge TPU backends run before their engines see a file), then the
//! dequantizing reader of the torch backend. Any bytes give Ok or an error, never a panic.
//! Seed the corpus with the real models: `cp ~/.local/share/joulebench/models/*.tflite
//! corpus/model_reader/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = joulebench::models::dequantize_model(bytes);
});
