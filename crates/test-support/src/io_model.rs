//! Small TF Lite models with the inputs and outputs a test asks for: every output is one input
//! reshaped (TF Lite's `RESHAPE`, which both engines run on any element type by copying), so
//! an output holds exactly the bytes its input was fed. They cover what a user's model can
//! be — several inputs and outputs, uint8 to float16, an image of 1 or 3 channels, a dynamic
//! shape — without a file of anyone's.
//!
//! Written like [`crate::standin_model`]: the `flatbuffers` builder against `schema.fbs`.

use flatbuffers::FlatBufferBuilder;

use crate::flatbuffer::{self, buffer, quantization, slot, tensor, Table};

/// TF Lite's element types (schema.fbs `TensorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Float32 = 0,
    Float16 = 1,
    Int32 = 2,
    Uint8 = 3,
    Int16 = 7,
    Int8 = 9,
}

/// One input of a generated model.
#[derive(Debug, Clone)]
pub struct IoTensor {
    pub name: String,
    pub element: Element,
    pub shape: Vec<i32>,
    /// Per-tensor (scale, zero point); none for float or raw integers.
    pub quantization: Option<(f32, i64)>,
    /// `shape_signature`, where a dimension is dynamic (-1).
    pub shape_signature: Option<Vec<i32>>,
}

impl IoTensor {
    pub fn new(name: &str, element: Element, shape: &[i32]) -> Self {
        Self {
            name: name.into(),
            element,
            shape: shape.to_vec(),
            quantization: None,
            shape_signature: None,
        }
    }

    pub fn quantized(mut self, scale: f32, zero_point: i64) -> Self {
        self.quantization = Some((scale, zero_point));
        self
    }

    pub fn signature(mut self, shape_signature: &[i32]) -> Self {
        self.shape_signature = Some(shape_signature.to_vec());
        self
    }
}

const OP_RESHAPE: i32 = 22;
const OPTIONS_RESHAPE: u8 = 17;

/// A model with `inputs`, and one output per `(input, shape)` of `outputs`: that input
/// reshaped to `shape` (same element count, type and quantization), named `output_N`.
pub fn passthrough_model(inputs: &[IoTensor], outputs: &[(usize, Vec<i32>)]) -> Vec<u8> {
    model_with_codes(inputs, outputs, None)
}

/// [`passthrough_model`] whose operator codes also list the custom operator `custom_code`,
/// which no operator uses: what a model compiled for an accelerator carries (the Edge TPU's
/// `edgetpu-custom-op`), for tests whose engine is a stand-in that never runs the graph.
pub fn passthrough_model_listing_custom_op(
    inputs: &[IoTensor],
    outputs: &[(usize, Vec<i32>)],
    custom_code: &str,
) -> Vec<u8> {
    model_with_codes(inputs, outputs, Some(custom_code))
}

fn model_with_codes(
    inputs: &[IoTensor],
    outputs: &[(usize, Vec<i32>)],
    custom_code: Option<&str>,
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    // Buffers: 0 empty, then each output's shape (RESHAPE's second input).
    let mut buffers = vec![buffer(&mut fbb, &[])];
    for (_, shape) in outputs {
        let bytes: Vec<u8> = shape.iter().flat_map(|d| d.to_le_bytes()).collect();
        buffers.push(buffer(&mut fbb, &bytes));
    }
    // Tensors: the inputs, then per output its shape tensor and itself.
    let mut tensors: Vec<Table> = inputs
        .iter()
        .map(|t| {
            let q = t.quantization.map(|(s, z)| quantization(&mut fbb, s, z));
            tensor(
                &mut fbb,
                &t.name,
                &t.shape,
                t.element as i8,
                0,
                q,
                t.shape_signature.as_deref(),
            )
        })
        .collect();
    let mut operators = Vec::new();
    let mut output_indices = Vec::new();
    for (j, (source, shape)) in outputs.iter().enumerate() {
        let from = &inputs[*source];
        let shape_index = tensors.len() as i32;
        tensors.push(tensor(
            &mut fbb,
            &format!("output_{j}_shape"),
            &[shape.len() as i32],
            Element::Int32 as i8,
            (j + 1) as u32,
            None,
            None,
        ));
        let out_index = tensors.len() as i32;
        let q = from.quantization.map(|(s, z)| quantization(&mut fbb, s, z));
        tensors.push(tensor(
            &mut fbb,
            &format!("output_{j}"),
            shape,
            from.element as i8,
            0,
            q,
            None,
        ));
        operators.push(reshape(
            &mut fbb,
            *source as i32,
            shape_index,
            out_index,
            shape,
        ));
        output_indices.push(out_index);
    }
    let mut codes = vec![reshape_code(&mut fbb)];
    if let Some(custom) = custom_code {
        codes.push(custom_op_code(&mut fbb, custom));
    }
    let subgraph = subgraph(
        &mut fbb,
        &tensors,
        inputs.len(),
        &output_indices,
        &operators,
    );
    let model = model(&mut fbb, &codes, subgraph, &buffers);
    fbb.finish(model, Some("TFL3"));
    fbb.finished_data().to_vec()
}

/// The RESHAPE operator copying tensor `source` into `output` as `shape`: its second input is
/// `shape_tensor`, which holds that shape, as its options do.
fn reshape(
    fbb: &mut FlatBufferBuilder,
    source: i32,
    shape_tensor: i32,
    output: i32,
    shape: &[i32],
) -> Table {
    let new_shape = fbb.create_vector(shape);
    let options = {
        let start = fbb.start_table();
        fbb.push_slot_always(slot(0), new_shape);
        fbb.end_table(start)
    };
    let op_inputs = fbb.create_vector(&[source, shape_tensor]);
    let op_outputs = fbb.create_vector(&[output]);
    let start = fbb.start_table();
    fbb.push_slot(slot(0), 0u32, 0);
    fbb.push_slot_always(slot(1), op_inputs);
    fbb.push_slot_always(slot(2), op_outputs);
    fbb.push_slot(slot(3), OPTIONS_RESHAPE, 0);
    fbb.push_slot_always(slot(4), options);
    fbb.end_table(start)
}

/// The model's one operator code: RESHAPE, version 1.
fn reshape_code(fbb: &mut FlatBufferBuilder) -> Table {
    let start = fbb.start_table();
    fbb.push_slot(slot(0), OP_RESHAPE as i8, 0);
    fbb.push_slot(slot(2), 1i32, 0);
    fbb.push_slot(slot(3), OP_RESHAPE, 0);
    fbb.end_table(start)
}

/// A CUSTOM operator code named `custom_code`, version 1.
fn custom_op_code(fbb: &mut FlatBufferBuilder, custom_code: &str) -> Table {
    const OP_CUSTOM: i32 = 32;
    let name = fbb.create_string(custom_code);
    let start = fbb.start_table();
    fbb.push_slot(slot(0), OP_CUSTOM as i8, 0);
    fbb.push_slot_always(slot(1), name);
    fbb.push_slot(slot(2), 1i32, 0);
    fbb.push_slot(slot(3), OP_CUSTOM, 0);
    fbb.end_table(start)
}

/// The model's one subgraph, "main", whose first `inputs` tensors are its inputs.
fn subgraph(
    fbb: &mut FlatBufferBuilder,
    tensors: &[Table],
    inputs: usize,
    outputs: &[i32],
    operators: &[Table],
) -> Table {
    let input_indices: Vec<i32> = (0..inputs as i32).collect();
    flatbuffer::subgraph(fbb, tensors, &input_indices, outputs, operators)
}

/// The root table: a schema-3 model of `codes` (RESHAPE's first) and one subgraph over
/// `buffers`.
fn model(
    fbb: &mut FlatBufferBuilder,
    codes: &[Table],
    subgraph: Table,
    buffers: &[Table],
) -> Table {
    let codes = fbb.create_vector(codes);
    let subgraphs = fbb.create_vector(&[subgraph]);
    let description = fbb.create_string("joulebench pass-through model (tests only)");
    let buffers = fbb.create_vector(buffers);
    let start = fbb.start_table();
    fbb.push_slot(slot(0), 3u32, 0);
    fbb.push_slot_always(slot(1), codes);
    fbb.push_slot_always(slot(2), subgraphs);
    fbb.push_slot_always(slot(3), description);
    fbb.push_slot_always(slot(4), buffers);
    fbb.end_table(start)
}
