//! The enum fields of a `.tflite` model as the `tflite` crate reads them, without undefined
//! behaviour. All `unsafe` around the crate's model structs lives here.
//!
//! The crate's object API mirrors TF Lite's C++ structs: `TensorT::typ` and
//! `OperatorCodeT::builtin_code` hold whatever number the file gave (the flatbuffer verifier
//! does not check enum ranges), but their Rust types are enums of the named values only. Even
//! matching on such a field with a number outside them is undefined behaviour: the compiler
//! may jump through a table indexed by it, which is how a mutated model crashed the reader
//! (the fuzz smoke test, at a few thousand cases). These read the number itself.

use tflite::model::{BuiltinOperator, OperatorCodeT, TensorT, TensorType};

// The fields are read as the 4-byte integers the C++ enums are.
const _: () = assert!(std::mem::size_of::<TensorType>() == 4);
const _: () = assert!(std::mem::size_of::<BuiltinOperator>() == 4);

/// Every named tensor type, at the index of its number.
const TENSOR_TYPES: [TensorType; 10] = [
    TensorType::TensorType_FLOAT32,
    TensorType::TensorType_FLOAT16,
    TensorType::TensorType_INT32,
    TensorType::TensorType_UINT8,
    TensorType::TensorType_INT64,
    TensorType::TensorType_STRING,
    TensorType::TensorType_BOOL,
    TensorType::TensorType_INT16,
    TensorType::TensorType_COMPLEX64,
    TensorType::TensorType_INT8,
];

/// A tensor's element type, or the number the file gave where it names none.
pub fn tensor_type(tensor: &TensorT) -> Result<TensorType, i32> {
    // SAFETY: the field is 4 bytes (asserted above) inside a live struct; it is read as an
    // integer, so no enum value is formed from it.
    let raw = unsafe {
        std::ptr::addr_of!(tensor.typ)
            .cast::<i32>()
            .read_unaligned()
    };
    usize::try_from(raw)
        .ok()
        .and_then(|i| TENSOR_TYPES.get(i))
        .copied()
        .filter(|t| *t as i32 == raw)
        .ok_or(raw)
}

/// An operator code's builtin operator, as its number (compare with `BuiltinOperator::X as
/// i32`): files from newer TF Lite versions name operators this crate's enum lacks.
pub fn builtin_code(code: &OperatorCodeT) -> i32 {
    // SAFETY: as in `tensor_type`.
    unsafe {
        std::ptr::addr_of!(code.builtin_code)
            .cast::<i32>()
            .read_unaligned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_tensor_type_sits_at_its_number() {
        for (i, t) in TENSOR_TYPES.iter().enumerate() {
            assert_eq!(*t as i32, i as i32, "{t:?}");
        }
        assert_eq!(
            TENSOR_TYPES.last().copied(),
            Some(TensorType::TensorType_MAX)
        );
    }

    #[test]
    fn a_number_outside_the_enum_comes_back_as_the_number() {
        let mut tensor: tflite::model::stl::memory::UniquePtr<TensorT> = Default::default();
        tensor.typ = TensorType::TensorType_INT8;
        assert_eq!(tensor_type(&tensor), Ok(TensorType::TensorType_INT8));
        for raw in [57, -3] {
            // SAFETY: an integer into the 4-byte field, where a corrupt file's byte lands.
            unsafe {
                std::ptr::addr_of_mut!(tensor.typ)
                    .cast::<i32>()
                    .write_unaligned(raw)
            };
            assert_eq!(tensor_type(&tensor), Err(raw));
        }
    }
}
