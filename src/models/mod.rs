//! Pretrained model, label and image files, and the manifest that pins them.
//!
//! The files (MobileNetV2 `.tflite` networks, ImageNet labels, test pictures and their
//! licences) are third-party and never committed. The project commits
//! `models/manifest.toml` instead: for every file its name, kind, SHA-256 and a
//! commit-pinned download address, plus what a run needs to know about it (a model's labels
//! and input normalization, an image's expected top-1 class). This module
//!
//! * loads and validates that manifest ([`Manifest::load_default`], [`Manifest::load`]),
//! * resolves a rig's `model = "..."` / `image = "..."` to a file and its metadata
//!   ([`Manifest::resolve_model`], [`Manifest::resolve_image`]),
//! * checks the files ([`Manifest::verify`]) and fetches missing or corrupt ones, by download
//!   or from a local folder ([`Manifest::fetch`]), never leaving a bad file under a final name,
//! * and opens the files a run needs only once their checksums match
//!   ([`Manifest::open_model`], [`Manifest::open_image`]), so a truncated download cannot
//!   silently skew a measurement.
//!
//! Everything that can fail returns a one-line error; per-file results come back as
//! [`FileReport`] rows for the CLI to print ([`format_table`]).

mod convert;
mod digest;
mod fetch;
mod manifest;
mod report;
mod resolve;
pub(crate) mod schema;

pub use convert::{
    convert, dequantize_model, ensure_float_weights, float_weight_names, float_weights_path,
    mobilenet_v2_blocks, BlockSpec, ConvertReport, Tensors, NUM_CLASSES,
};
#[cfg(feature = "torch")]
pub(crate) use digest::hex;
pub use digest::{git_blob_file, sha256_file};
pub use fetch::{FetchOptions, Source};
pub use manifest::{
    models_dir, Entry, InputSpec, Kind, Manifest, Pin, Top1, BUILT_IN_MANIFEST, MANIFEST_FILE,
    MODELS_DIR_ENV,
};
pub use report::{all_ok, format_list, format_table, FileReport, Outcome};
pub use resolve::{IntegrityError, ResolvedImage, ResolvedModel};

#[cfg(test)]
mod test_support;
