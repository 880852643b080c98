//! From a rig's `model = "..."` / `image = "..."` to a file and what a run needs to know
//! about it, and the checks that make a run refuse a missing or corrupt file.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use super::digest::{git_blob_file, sha256_file};
use super::manifest::{Entry, InputSpec, Kind, Manifest, Top1, MANIFEST_FILE};
use super::report::Outcome;

/// Why a manifest file cannot be used for a run. Kept typed (inside the `anyhow::Error`s this
/// module returns) so a caller can tell "fetch first" from other failures by downcasting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error(
        "{} {name} is missing: run `joulebench models fetch` (or `joulebench models fetch --from DIR`) to put it at {}",
        .kind.noun(),
        .path.display()
    )]
    Missing {
        kind: Kind,
        name: String,
        path: PathBuf,
    },
    #[error(
        "{} {name} is corrupt: {digest} {actual}, expected {expected}; run `joulebench models fetch` to replace it",
        .kind.noun()
    )]
    Corrupt {
        kind: Kind,
        name: String,
        path: PathBuf,
        digest: &'static str,
        expected: String,
        actual: String,
    },
    #[error("cannot read {} {name} at {}: {reason}", .kind.noun(), .path.display())]
    Unreadable {
        kind: Kind,
        name: String,
        path: PathBuf,
        reason: String,
    },
}

/// A model ready for the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// The manifest name, or the string as given for a file the manifest does not know.
    pub name: String,
    pub path: PathBuf,
    /// The manifest's checksum, or the one computed from a file given by path.
    pub sha256: String,
    /// Whether the metadata below comes from the manifest: the model was named, or given by a
    /// path whose bytes match a manifest model.
    pub in_manifest: bool,
    /// The label file (None for an unknown model).
    pub labels: Option<PathBuf>,
    /// Input size and normalization (None for an unknown model: the caller chooses).
    pub input: Option<InputSpec>,
    /// Output index `i` is label line `i + label_offset`.
    pub label_offset: usize,
}

/// An image ready for the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The manifest name, or the string as given for a file the manifest does not know.
    pub name: String,
    pub path: PathBuf,
    /// The manifest's checksum, or the one computed from a file given by path.
    pub sha256: String,
    /// Whether `top1` comes from the manifest (named, or matched by checksum).
    pub in_manifest: bool,
    /// Expected top-1 class per manifest model; empty for an unknown image.
    pub top1: Vec<Top1>,
}

impl ResolvedImage {
    /// The class the model named `model` (a manifest name) should rank first, if known.
    pub fn expected_top1(&self, model: &str) -> Option<&Top1> {
        self.top1.iter().find(|t| t.model == model)
    }
}

/// What a rig's string designates.
enum Found<'m> {
    /// A manifest entry, by name or file name; its file is in the models folder.
    Entry(&'m Entry),
    /// A file given by path, hashed; `entry` is the manifest entry with the same bytes.
    File {
        path: PathBuf,
        sha256: String,
        entry: Option<&'m Entry>,
    },
}

impl<'m> Found<'m> {
    fn entry(&self) -> Option<&'m Entry> {
        match self {
            Found::Entry(entry) => Some(entry),
            Found::File { entry, .. } => *entry,
        }
    }
}

impl Manifest {
    /// Resolves a rig's `model` string without checking the file's checksum: a manifest
    /// name or file name (looked up first), else a path (relative to the current folder),
    /// which must be readable because its checksum is computed.
    pub fn resolve_model(&self, spec: &str) -> Result<ResolvedModel> {
        let found = self.find(spec, Kind::Model)?;
        Ok(self.model_from(spec, &found))
    }

    /// Resolves a rig's `image` string like [`Manifest::resolve_model`].
    pub fn resolve_image(&self, spec: &str) -> Result<ResolvedImage> {
        let found = self.find(spec, Kind::Image)?;
        Ok(self.image_from(spec, &found))
    }

    /// [`Manifest::resolve_model`], then checks that the manifest files it uses (the model
    /// and its labels) are present with the right SHA-256: the runner calls this before a
    /// run so that a missing or damaged file stops it with a hint to fetch, instead of
    /// producing figures for the wrong bytes. Failures carry an [`IntegrityError`].
    pub fn open_model(&self, spec: &str) -> Result<ResolvedModel> {
        let found = self.find(spec, Kind::Model)?;
        if let Found::Entry(entry) = found {
            self.check(entry)?;
        }
        if let Some(labels) = found.entry().and_then(|e| self.labels_of(e)) {
            self.check(labels)?;
        }
        Ok(self.model_from(spec, &found))
    }

    /// [`Manifest::resolve_image`], then checks a manifest image's SHA-256 (see
    /// [`Manifest::open_model`]).
    pub fn open_image(&self, spec: &str) -> Result<ResolvedImage> {
        let found = self.find(spec, Kind::Image)?;
        if let Found::Entry(entry) = found {
            self.check(entry)?;
        }
        Ok(self.image_from(spec, &found))
    }

    /// The path of an entry's file if it is present with the expected SHA-256.
    pub fn check(&self, entry: &Entry) -> Result<PathBuf, IntegrityError> {
        let path = self.path(entry);
        let kind = entry.kind;
        let name = entry.name.clone();
        match self.check_file(entry) {
            Outcome::Ok | Outcome::Downloaded { .. } | Outcome::Copied { .. } => Ok(path),
            Outcome::Missing | Outcome::NotFetched(_) => {
                Err(IntegrityError::Missing { kind, name, path })
            }
            Outcome::Mismatch {
                digest,
                expected,
                actual,
            } => Err(IntegrityError::Corrupt {
                kind,
                name,
                path,
                digest,
                expected,
                actual,
            }),
            Outcome::Unreadable(reason) | Outcome::Failed(reason) => {
                Err(IntegrityError::Unreadable {
                    kind,
                    name,
                    path,
                    reason,
                })
            }
        }
    }

    /// Looks `spec` up as a manifest entry of `kind`, else hashes it as a path and looks for
    /// a manifest entry of that kind with the same bytes (so a copy elsewhere keeps its
    /// metadata, such as an image's expected class).
    fn find(&self, spec: &str, kind: Kind) -> Result<Found<'_>> {
        if let Some(entry) = self.entry(spec) {
            if entry.kind != kind {
                bail!(
                    "{spec:?} is a manifest entry of kind \"{}\", not \"{kind}\"",
                    entry.kind
                );
            }
            return Ok(Found::Entry(entry));
        }
        let path = PathBuf::from(spec);
        let sha256 = sha256_file(&path).map_err(|e| {
            anyhow!(
                "{} {spec:?} is neither an entry of {} (known: {}) nor a readable file: {e}",
                kind.noun(),
                self.dir().join(MANIFEST_FILE).display(),
                self.names_of_kind(kind),
            )
        })?;
        // A blob-pinned entry is matched by its git blob id, computed only if one exists.
        let mut blob = None;
        let entry = self.of_kind(kind).find(|e| match (&e.sha256, &e.git_blob) {
            (Some(sha), _) => *sha == sha256,
            (None, Some(id)) => {
                let actual = blob.get_or_insert_with(|| git_blob_file(&path).ok());
                actual.as_deref() == Some(id.as_str())
            }
            (None, None) => false,
        });
        Ok(Found::File {
            path,
            sha256,
            entry,
        })
    }

    /// Name, path and checksum of what was found; `spec` names a file the manifest lacks.
    fn identify(&self, spec: &str, found: &Found<'_>) -> (String, PathBuf, String) {
        match found {
            Found::Entry(entry) => {
                let path = self.path(entry);
                // A blob-pinned entry's SHA-256 (the run record's) comes from its bytes; empty
                // when resolving a file that is not there yet (opening checks it first).
                let sha256 = entry
                    .sha256
                    .clone()
                    .unwrap_or_else(|| sha256_file(&path).unwrap_or_default());
                (entry.name.clone(), path, sha256)
            }
            Found::File {
                path,
                sha256,
                entry,
            } => {
                let name = entry.map_or_else(|| spec.to_owned(), |e| e.name.clone());
                (name, path.clone(), sha256.clone())
            }
        }
    }

    fn model_from(&self, spec: &str, found: &Found<'_>) -> ResolvedModel {
        let (name, path, sha256) = self.identify(spec, found);
        let entry = found.entry();
        ResolvedModel {
            name,
            path,
            sha256,
            in_manifest: entry.is_some(),
            labels: entry.and_then(|e| self.labels_of(e)).map(|l| self.path(l)),
            input: entry.and_then(|e| e.input),
            label_offset: entry.map_or(0, |e| e.label_offset),
        }
    }

    fn image_from(&self, spec: &str, found: &Found<'_>) -> ResolvedImage {
        let (name, path, sha256) = self.identify(spec, found);
        let entry = found.entry();
        ResolvedImage {
            name,
            path,
            sha256,
            in_manifest: entry.is_some(),
            top1: entry.map(|e| e.top1.clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::{copy_shared, project_manifest_in, shared_dir};

    const QUANT: &str = "mobilenet_v2_1.0_224_quant";
    const QUANT_SHA: &str = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776";

    #[test]
    fn resolves_a_model_by_name_or_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        for spec in [QUANT, "mobilenet_v2_1.0_224_quant.tflite"] {
            let model = manifest.resolve_model(spec).unwrap();
            assert_eq!(model.name, QUANT);
            assert_eq!(
                model.path,
                dir.path().join("mobilenet_v2_1.0_224_quant.tflite")
            );
            assert_eq!(model.sha256, QUANT_SHA);
            assert!(model.in_manifest);
            assert_eq!(model.labels, Some(dir.path().join("imagenet_labels.txt")));
            assert_eq!(model.label_offset, 0);
            let input = model.input.unwrap();
            assert_eq!((input.height, input.width, input.channels), (224, 224, 3));
            assert_eq!((input.mean, input.std), (127.5, 127.5));
        }
    }

    /// An entry pinned by git blob id only: opened after its blob id checks out, matched by
    /// it when given by path, and its SHA-256 (for the run record) computed from the bytes.
    #[test]
    fn a_git_blob_pinned_model_is_checked_and_matched_by_its_blob_id() {
        let dir = tempfile::tempdir().unwrap();
        let text = crate::models::test_support::project_manifest_text().replacen(
            &format!("sha256 = \"{QUANT_SHA}\""),
            "git_blob = \"03533c32dacc1456ff3fe951ebdd5b967ce9e6a0\"",
            1,
        );
        let manifest = Manifest::parse(&text, dir.path()).unwrap();
        assert!(manifest.model(QUANT).unwrap().sha256.is_none());
        copy_shared(dir.path(), "imagenet_labels.txt");
        let err = manifest.open_model(QUANT).unwrap_err().to_string();
        assert!(err.contains("is missing"), "{err}");
        copy_shared(dir.path(), "mobilenet_v2_1.0_224_quant.tflite");
        let model = manifest.open_model(QUANT).unwrap();
        assert_eq!(model.sha256, QUANT_SHA);

        let shared = shared_dir().join("mobilenet_v2_1.0_224_quant.tflite");
        let by_path = manifest.resolve_model(shared.to_str().unwrap()).unwrap();
        assert_eq!((by_path.name.as_str(), by_path.in_manifest), (QUANT, true));

        std::fs::write(dir.path().join("mobilenet_v2_1.0_224_quant.tflite"), "abc").unwrap();
        let err = manifest.open_model(QUANT).unwrap_err().to_string();
        assert!(
            err.contains("is corrupt: git blob id f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f, expected 03533c32"),
            "{err}"
        );
    }

    #[test]
    fn resolves_an_image_with_its_expected_classes() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let image = manifest.resolve_image("grace_hopper.bmp").unwrap();
        assert_eq!(image.path, dir.path().join("grace_hopper.bmp"));
        for model in [QUANT, "tf2_mobilenet_v2_1.0_224_ptq"] {
            let top1 = image.expected_top1(model).unwrap();
            assert_eq!((top1.index, top1.label.as_str()), (653, "military uniform"));
        }
        assert!(image.expected_top1("other").is_none());
    }

    #[test]
    fn a_path_matching_a_manifest_file_keeps_its_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let shared = shared_dir().join("parrot.jpg");
        let image = manifest.resolve_image(shared.to_str().unwrap()).unwrap();
        assert_eq!(image.name, "parrot.jpg");
        assert_eq!(image.path, shared);
        assert!(image.in_manifest);
        assert_eq!(image.expected_top1(QUANT).unwrap().label, "macaw");

        let model_path = shared_dir().join("tf2_mobilenet_v2_1.0_224_ptq.tflite");
        let model = manifest
            .resolve_model(model_path.to_str().unwrap())
            .unwrap();
        assert_eq!(model.name, "tf2_mobilenet_v2_1.0_224_ptq");
        assert_eq!(model.path, model_path);
        assert!(model.input.is_some());
    }

    #[test]
    fn an_unknown_file_is_hashed_and_has_no_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let own = dir.path().join("own.tflite");
        std::fs::write(&own, "abc").unwrap();
        let spec = own.to_str().unwrap();
        let model = manifest.open_model(spec).unwrap();
        assert_eq!(model.name, spec);
        assert!(model.sha256.starts_with("ba7816bf"));
        assert!(!model.in_manifest);
        assert_eq!((model.labels, model.input), (None, None));
        let image = manifest.open_image(spec).unwrap();
        assert!(image.top1.is_empty() && !image.in_manifest);
    }

    #[test]
    fn unknown_names_and_wrong_kinds_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let err = format!("{:#}", manifest.resolve_model("mobilenet_v2").unwrap_err());
        assert!(
            err.starts_with("model \"mobilenet_v2\" is neither an entry of "),
            "{err}"
        );
        assert!(
            err.contains(&format!("known: {QUANT}, tf2_mobilenet_v2_1.0_224_ptq")),
            "{err}"
        );
        assert!(err.contains("No such file"), "{err}");
        let err = format!("{:#}", manifest.resolve_model("bird.bmp").unwrap_err());
        assert_eq!(
            err,
            "\"bird.bmp\" is a manifest entry of kind \"image\", not \"model\""
        );
        let err = format!("{:#}", manifest.resolve_image(QUANT).unwrap_err());
        assert!(err.contains("not \"image\""), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn opening_a_missing_model_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let err = manifest.open_model(QUANT).unwrap_err();
        let path = dir.path().join("mobilenet_v2_1.0_224_quant.tflite");
        assert_eq!(
            err.to_string(),
            format!(
                "model mobilenet_v2_1.0_224_quant is missing: run `joulebench models fetch` \
                 (or `joulebench models fetch --from DIR`) to put it at {}",
                path.display()
            )
        );
        assert!(matches!(
            err.downcast_ref::<IntegrityError>(),
            Some(IntegrityError::Missing {
                kind: Kind::Model,
                ..
            })
        ));
        // Resolving alone does not touch the file.
        assert!(manifest.resolve_model(QUANT).is_ok());
    }

    #[test]
    fn opening_needs_the_labels_too() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        copy_shared(dir.path(), "mobilenet_v2_1.0_224_quant.tflite");
        let err = manifest.open_model(QUANT).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "label file imagenet_labels.txt is missing: run `joulebench models fetch`"
            ),
            "{err}"
        );
        copy_shared(dir.path(), "imagenet_labels.txt");
        let model = manifest.open_model(QUANT).unwrap();
        assert_eq!(model.sha256, QUANT_SHA);
    }

    #[test]
    fn opening_a_corrupt_file_says_how_to_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        std::fs::write(dir.path().join("cat.bmp"), "abc").unwrap();
        let err = manifest.open_image("cat.bmp").unwrap_err();
        assert_eq!(
            err.to_string(),
            "image cat.bmp is corrupt: SHA-256 \
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad, expected \
             34f235786382686111728287fd26d4c24dd8c25de8233469d6eeb301888ce0a9; \
             run `joulebench models fetch` to replace it"
        );
        assert!(matches!(
            err.downcast_ref::<IntegrityError>(),
            Some(IntegrityError::Corrupt {
                kind: Kind::Image,
                ..
            })
        ));
        copy_shared(dir.path(), "cat.bmp");
        let image = manifest.open_image("cat.bmp").unwrap();
        assert_eq!(image.expected_top1(QUANT).unwrap().index, 286);
    }
}
