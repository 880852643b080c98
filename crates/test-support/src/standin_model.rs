//! A stand-in for MobileNetV2: a valid TF Lite model with the same input (uint8
//! `[1, 224, 224, 3]`, scale 1/128, zero point 128) and output (uint8 `[1, 1001]`, scale 1/256)
//! as `mobilenet_v2_1.0_224_quant.tflite`, that classifies in microseconds instead of
//! milliseconds. Tests whose runs are timed or killed by phase run on it to stand in for a
//! machine far faster than any they were written on (see docs/src/contributing.md, The speed
//! sweep): a test that assumes how long a phase sized in inferences lasts fails on it.
//!
//! Two operators that TF Lite 1.15.5 and LiteRT 2.3.0 both run on uint8: `MEAN` over height
//! and width (a pixel's three channels), then `FULLY_CONNECTED` to 1001 scores. The bias gives
//! class [`STANDIN_TOP1`] half the output range and every other class a quarter; the weights
//! move a score by at most 3 × 4/256 × 1 < 1/16, so that class is top-1 for every image, by
//! construction, whatever the engine's rounding.
//!
//! Written with the `flatbuffers` builder against TF Lite's schema (`schema.fbs`: the field
//! slots below are its vtable offsets, stable since schema version 3).

use flatbuffers::FlatBufferBuilder;

use crate::flatbuffer::{self, buffer, quantization, slot, tensor, Table};

/// The output index the stand-in ranks first for every input: the class MobileNetV2 gives
/// `bird.bmp` (20, chickadee), so a test's check of the top-1 class holds on either model.
pub const STANDIN_TOP1: usize = 20;
/// Classes, as MobileNetV2's ImageNet head (1000 and "background").
pub const STANDIN_CLASSES: usize = 1001;

const INPUT_SCALE: f32 = 1.0 / 128.0;
const INPUT_ZERO: i64 = 128;
const WEIGHT_SCALE: f32 = 1.0 / 256.0;
const WEIGHT_ZERO: i64 = 128;
const OUTPUT_SCALE: f32 = 1.0 / 256.0;

// TF Lite schema constants (schema.fbs).
const TENSOR_INT32: i8 = 2;
const TENSOR_UINT8: i8 = 3;
const OP_FULLY_CONNECTED: i32 = 9;
const OP_MEAN: i32 = 40;
const OPTIONS_FULLY_CONNECTED: u8 = 8;
const OPTIONS_REDUCER: u8 = 27;

/// The stand-in model's bytes (deterministic: the same bytes on every call).
pub fn standin_model() -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let buffers = buffers(&mut fbb);
    let tensors = tensors(&mut fbb);
    let (operators, codes) = operators(&mut fbb);
    let subgraph = subgraph(&mut fbb, &tensors, &operators);
    let codes = fbb.create_vector(&codes);
    let subgraphs = fbb.create_vector(&[subgraph]);
    let description = fbb.create_string("joulebench stand-in for MobileNetV2 (tests only)");
    let buffers = fbb.create_vector(&buffers);
    let model = {
        let start = fbb.start_table();
        fbb.push_slot(slot(0), 3u32, 0); // schema version
        fbb.push_slot_always(slot(1), codes);
        fbb.push_slot_always(slot(2), subgraphs);
        fbb.push_slot_always(slot(3), description);
        fbb.push_slot_always(slot(4), buffers);
        fbb.end_table(start)
    };
    fbb.finish(model, Some("TFL3"));
    fbb.finished_data().to_vec()
}

/// Buffers: 0 empty (the schema's convention), 1 MEAN's axes, 2 weights, 3 bias.
fn buffers(fbb: &mut FlatBufferBuilder) -> Vec<Table> {
    let axes: Vec<u8> = [1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let weights: Vec<u8> = (0..STANDIN_CLASSES * 3)
        .map(|i| (WEIGHT_ZERO + (i * 7 % 9) as i64 - 4) as u8)
        .collect();
    // In units of input scale × weight scale (the bias scale TF Lite requires): 1/2 or 1/4.
    let bias_unit = 1.0 / (f64::from(INPUT_SCALE) * f64::from(WEIGHT_SCALE));
    let bias: Vec<u8> = (0..STANDIN_CLASSES)
        .map(|c| if c == STANDIN_TOP1 { 0.5 } else { 0.25 })
        .flat_map(|b: f64| ((b * bias_unit) as i32).to_le_bytes())
        .collect();
    [&[][..], &axes, &weights, &bias]
        .iter()
        .map(|data| buffer(fbb, data))
        .collect()
}

/// Tensors: 0 image, 1 axes, 2 pooled, 3 weights, 4 bias, 5 scores.
fn tensors(fbb: &mut FlatBufferBuilder) -> [Table; 6] {
    let input_q = quantization(fbb, INPUT_SCALE, INPUT_ZERO);
    let pooled_q = quantization(fbb, INPUT_SCALE, INPUT_ZERO);
    let weight_q = quantization(fbb, WEIGHT_SCALE, WEIGHT_ZERO);
    let bias_q = quantization(fbb, INPUT_SCALE * WEIGHT_SCALE, 0);
    let output_q = quantization(fbb, OUTPUT_SCALE, 0);
    let classes = STANDIN_CLASSES as i32;
    [
        tensor(
            fbb,
            "input",
            &[1, 224, 224, 3],
            TENSOR_UINT8,
            0,
            Some(input_q),
            None,
        ),
        tensor(fbb, "axes", &[2], TENSOR_INT32, 1, None, None),
        tensor(
            fbb,
            "pooled",
            &[1, 3],
            TENSOR_UINT8,
            0,
            Some(pooled_q),
            None,
        ),
        tensor(
            fbb,
            "weights",
            &[classes, 3],
            TENSOR_UINT8,
            2,
            Some(weight_q),
            None,
        ),
        tensor(fbb, "bias", &[classes], TENSOR_INT32, 3, Some(bias_q), None),
        tensor(
            fbb,
            "output",
            &[1, classes],
            TENSOR_UINT8,
            0,
            Some(output_q),
            None,
        ),
    ]
}

/// The two operators, MEAN then FULLY_CONNECTED, and their operator codes.
fn operators(fbb: &mut FlatBufferBuilder) -> ([Table; 2], [Table; 2]) {
    let reducer = {
        let start = fbb.start_table();
        fbb.push_slot_always(slot(0), false); // keep_dims
        fbb.end_table(start)
    };
    let fully_connected = {
        let start = fbb.start_table();
        fbb.end_table(start) // no activation, default weight format
    };
    let operators = [
        operator(fbb, 0, &[0, 1], &[2], OPTIONS_REDUCER, reducer),
        operator(
            fbb,
            1,
            &[2, 3, 4],
            &[5],
            OPTIONS_FULLY_CONNECTED,
            fully_connected,
        ),
    ];
    let codes = [
        operator_code(fbb, OP_MEAN),
        operator_code(fbb, OP_FULLY_CONNECTED),
    ];
    (operators, codes)
}

/// The one subgraph: image in (tensor 0), scores out (tensor 5).
fn subgraph(fbb: &mut FlatBufferBuilder, tensors: &[Table], operators: &[Table]) -> Table {
    flatbuffer::subgraph(fbb, tensors, &[0], &[5], operators)
}

fn operator(
    fbb: &mut FlatBufferBuilder,
    opcode_index: u32,
    inputs: &[i32],
    outputs: &[i32],
    options_type: u8,
    options: Table,
) -> Table {
    let inputs = fbb.create_vector(inputs);
    let outputs = fbb.create_vector(outputs);
    let start = fbb.start_table();
    fbb.push_slot(slot(0), opcode_index, 0);
    fbb.push_slot_always(slot(1), inputs);
    fbb.push_slot_always(slot(2), outputs);
    fbb.push_slot(slot(3), options_type, 0);
    fbb.push_slot_always(slot(4), options);
    fbb.end_table(start)
}

/// An operator code in both of the schema's spellings: the byte TF Lite 1.15 reads
/// (`deprecated_builtin_code` today) and the int32 `builtin_code` LiteRT prefers.
fn operator_code(fbb: &mut FlatBufferBuilder, code: i32) -> Table {
    let start = fbb.start_table();
    fbb.push_slot(slot(0), code as i8, 0);
    fbb.push_slot(slot(2), 1i32, 0); // version 1: the uint8 kernels
    fbb.push_slot(slot(3), code, 0);
    fbb.end_table(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standin_is_a_tflite_flatbuffer_and_the_same_every_time() {
        let bytes = standin_model();
        assert_eq!(&bytes[4..8], b"TFL3");
        assert_eq!(bytes, standin_model());
        // Small: MobileNetV2 is 3.4 MB; this is its 3 × 1001 weights and 1001 biases.
        assert!(bytes.len() < 16 * 1024, "{} bytes", bytes.len());
    }

    #[test]
    fn class_scores_keep_the_designed_top1_whatever_the_pixels() {
        // The model's arithmetic in real numbers: pooled pixels in [-1, 1].
        for pooled in [[-1.0f64; 3], [1.0; 3], [1.0, -1.0, 0.5]] {
            let score = |c: usize| {
                let bias = if c == STANDIN_TOP1 { 0.5 } else { 0.25 };
                bias + (0..3)
                    .map(|k| {
                        let w = ((c * 3 + k) * 7 % 9) as f64 - 4.0;
                        w * f64::from(WEIGHT_SCALE) * pooled[k]
                    })
                    .sum::<f64>()
            };
            let top = (0..STANDIN_CLASSES)
                .max_by(|a, b| score(*a).total_cmp(&score(*b)))
                .unwrap();
            assert_eq!(top, STANDIN_TOP1);
            // One output step is 1/256: the gap is many steps wide.
            let runner_up = (0..STANDIN_CLASSES)
                .filter(|c| *c != STANDIN_TOP1)
                .map(score)
                .fold(f64::MIN, f64::max);
            assert!(score(STANDIN_TOP1) - runner_up > 32.0 / 256.0);
        }
    }
}
