//! The pieces of a TF Lite flatbuffer both generated models are built from (the schema's
//! field indices as in `tensorflow/lite/schema/schema.fbs`).

use flatbuffers::{FlatBufferBuilder, WIPOffset};

pub(crate) type Table = WIPOffset<flatbuffers::TableFinishedWIPOffset>;

/// A table field's vtable offset from its index in the schema.
pub(crate) const fn slot(index: u16) -> u16 {
    4 + 2 * index
}

/// A `Buffer` holding `data` (empty: a tensor the interpreter allocates).
pub(crate) fn buffer(fbb: &mut FlatBufferBuilder, data: &[u8]) -> Table {
    let data = fbb.create_vector(data);
    let start = fbb.start_table();
    fbb.push_slot_always(slot(0), data);
    fbb.end_table(start)
}

/// Per-tensor `QuantizationParameters`.
pub(crate) fn quantization(fbb: &mut FlatBufferBuilder, scale: f32, zero_point: i64) -> Table {
    let scale = fbb.create_vector(&[scale]);
    let zero_point = fbb.create_vector(&[zero_point]);
    let start = fbb.start_table();
    fbb.push_slot_always(slot(2), scale);
    fbb.push_slot_always(slot(3), zero_point);
    fbb.end_table(start)
}

/// A `Tensor`; `shape_signature` only where given (a dynamic dimension is -1 there).
pub(crate) fn tensor(
    fbb: &mut FlatBufferBuilder,
    name: &str,
    shape: &[i32],
    kind: i8,
    buffer: u32,
    quantization: Option<Table>,
    shape_signature: Option<&[i32]>,
) -> Table {
    let shape = fbb.create_vector(shape);
    let name = fbb.create_string(name);
    let signature = shape_signature.map(|s| fbb.create_vector(s));
    let start = fbb.start_table();
    fbb.push_slot_always(slot(0), shape);
    fbb.push_slot(slot(1), kind, 0);
    fbb.push_slot(slot(2), buffer, 0);
    fbb.push_slot_always(slot(3), name);
    if let Some(q) = quantization {
        fbb.push_slot_always(slot(4), q);
    }
    if let Some(s) = signature {
        fbb.push_slot_always(slot(7), s);
    }
    fbb.end_table(start)
}

/// A subgraph named "main" over `tensors`, its inputs and outputs by tensor index.
pub(crate) fn subgraph(
    fbb: &mut FlatBufferBuilder,
    tensors: &[Table],
    inputs: &[i32],
    outputs: &[i32],
    operators: &[Table],
) -> Table {
    let tensors = fbb.create_vector(tensors);
    let inputs = fbb.create_vector(inputs);
    let outputs = fbb.create_vector(outputs);
    let operators = fbb.create_vector(operators);
    let name = fbb.create_string("main");
    let start = fbb.start_table();
    fbb.push_slot_always(slot(0), tensors);
    fbb.push_slot_always(slot(1), inputs);
    fbb.push_slot_always(slot(2), outputs);
    fbb.push_slot_always(slot(3), operators);
    fbb.push_slot_always(slot(4), name);
    fbb.end_table(start)
}
