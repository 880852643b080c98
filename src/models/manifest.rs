//! The manifest file (`models/manifest.toml`): its schema, validation and look-ups.
//!
//! The manifest is validated as a whole when it is loaded, so every later look-up can rely
//! on it: names and file names are unique, file names cannot escape the models folder,
//! checksums are well-formed, and every cross-reference (a model's labels, an image's
//! expected top-1 model) names an entry of the right kind.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// File name of the manifest inside the models folder.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// Environment variable naming the models folder.
pub const MODELS_DIR_ENV: &str = crate::environment::MODELS_DIR;

/// The project's `models/manifest.toml`, built in: the manifest a models folder without one
/// of its own follows.
pub const BUILT_IN_MANIFEST: &str = include_str!("../../models/manifest.toml");

/// The models folder: `$JOULEBENCH_MODELS_DIR` if set and non-empty, else the user's data
/// folder, `$XDG_DATA_HOME/joulebench/models` (`~/.local/share/joulebench/models`): files
/// fetched once serve every project checkout and an installed binary alike.
pub fn models_dir() -> PathBuf {
    models_dir_from(std::env::var_os(MODELS_DIR_ENV), dirs::data_dir())
}

/// [`models_dir`] given the variable's value and the data folder, so the choice is testable
/// without touching the process environment.
fn models_dir_from(var: Option<OsString>, data_dir: Option<PathBuf>) -> PathBuf {
    match (var, data_dir) {
        (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(data)) => data.join("joulebench/models"),
        // No home folder at all: the current folder's models/.
        _ => PathBuf::from("models"),
    }
}

/// What a manifest file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A TensorFlow Lite network.
    Model,
    /// Class names, one a line.
    Labels,
    /// A test picture.
    Image,
    /// Terms the other files come under.
    Licence,
    /// A file only tests use (the Edge TPU fixture): no rig runs it.
    Fixture,
}

impl Kind {
    /// The word used for this kind in messages ("label file imagenet_labels.txt is missing").
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Labels => "label file",
            Kind::Image => "image",
            Kind::Licence => "licence",
            Kind::Fixture => "test fixture",
        }
    }
}

/// The manifest's spelling (`model`, `labels`, `image`, `licence`).
impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Model => "model",
            Kind::Labels => "labels",
            Kind::Image => "image",
            Kind::Licence => "licence",
            Kind::Fixture => "fixture",
        })
    }
}

/// The picture a model takes, and how pixels become the floats it was trained on.
///
/// A float network sees `(pixel - mean) / std` per channel. A quantized network's input
/// tensor has its own dtype, scale and zero point, which come from the model file; this spec
/// only says which float range those quantized values stand for.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub height: u32,
    pub width: u32,
    /// 3 for RGB.
    pub channels: u32,
    pub mean: f32,
    pub std: f32,
}

/// The class a model is expected to rank first for an image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Top1 {
    /// Name of a `model` entry.
    pub model: String,
    /// Output index of the class.
    pub index: usize,
    /// Its line in the model's label file (at `index + label_offset`).
    pub label: String,
}

/// One file of the manifest (`[[entry]]`). See `models/manifest.toml` for the field docs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What rigs and the CLI call the file; unique.
    pub name: String,
    /// Plain file name inside the models folder; unique.
    pub file: String,
    pub kind: Kind,
    /// Expected SHA-256, 64 lowercase hex digits; every entry has it or `git_blob`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Expected git blob id (SHA-1 of `"blob <size>\0"` and the bytes), 40 lowercase hex
    /// digits: pins a file whose SHA-256 is not known but whose repository is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_blob: Option<String>,
    /// Only some rigs need it: missing, it fails neither `verify` nor `fetch --from DIR`.
    #[serde(default)]
    pub optional: bool,
    /// Compiled by `edgetpu_compiler`: runs only on an Edge TPU (kind = "edgetpu").
    #[serde(default)]
    pub edgetpu: bool,
    /// Commit-pinned download address.
    pub url: String,
    /// Where `url` is a zip archive (a PyPI wheel): the path of the file inside it. The
    /// SHA-256 is the extracted file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// One line for listings.
    pub description: String,
    /// Models only: name of the `labels` entry naming the outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Models only: output index `i` is label line `i + label_offset`.
    #[serde(default)]
    pub label_offset: usize,
    /// Models only: input size and normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputSpec>,
    /// Images only: expected top-1 class per model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top1: Vec<Top1>,
}

/// How an entry's bytes are pinned: by SHA-256 where known, else by git blob id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin<'e> {
    Sha256(&'e str),
    GitBlob(&'e str),
}

impl<'e> Pin<'e> {
    /// The digest's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            Pin::Sha256(_) => "SHA-256",
            Pin::GitBlob(_) => "git blob id",
        }
    }

    /// The expected digest, lowercase hex.
    pub fn expected(self) -> &'e str {
        match self {
            Pin::Sha256(hex) | Pin::GitBlob(hex) => hex,
        }
    }

    /// This digest of the file at `path`.
    pub fn of_file(self, path: &Path) -> std::io::Result<String> {
        match self {
            Pin::Sha256(_) => super::digest::sha256_file(path),
            Pin::GitBlob(_) => super::digest::git_blob_file(path),
        }
    }
}

impl Entry {
    /// How this entry's bytes are pinned (validation guarantees one of the two).
    pub fn pin(&self) -> Pin<'_> {
        match (&self.sha256, &self.git_blob) {
            (Some(sha), _) => Pin::Sha256(sha),
            (None, Some(blob)) => Pin::GitBlob(blob),
            // Validation refuses such an entry; an empty pin would match no file.
            (None, None) => Pin::Sha256(""),
        }
    }

    /// The expected top-1 class of this image for the model named `model`.
    pub fn top1_for(&self, model: &str) -> Option<&Top1> {
        self.top1.iter().find(|t| t.model == model)
    }

    /// Whether `name_or_file` designates this entry.
    fn is_called(&self, name_or_file: &str) -> bool {
        self.name == name_or_file || self.file == name_or_file
    }
}

/// The TOML document: a list of `[[entry]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    entry: Vec<Entry>,
}

/// A loaded, validated manifest and the folder its files live in.
#[derive(Debug, Clone)]
pub struct Manifest {
    dir: PathBuf,
    entries: Vec<Entry>,
}

impl Manifest {
    /// The manifest of [`models_dir`]: its own `manifest.toml` where it has one, else the
    /// built-in one.
    pub fn load_default() -> Result<Self> {
        let dir = models_dir();
        if dir.join(MANIFEST_FILE).is_file() {
            Self::load_dir(&dir)
        } else {
            Self::parse(BUILT_IN_MANIFEST, dir).context("built-in models manifest")
        }
    }

    /// Loads `manifest.toml` from the folder `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        Self::load(&dir.join(MANIFEST_FILE))
    }

    /// Loads a manifest file; its files are expected in the folder that holds it.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read models manifest {} (check {MODELS_DIR_ENV})",
                path.display()
            )
        })?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::parse(&text, dir).with_context(|| format!("models manifest {}", path.display()))
    }

    /// Parses and validates manifest text whose files live in `dir`.
    pub fn parse(text: &str, dir: impl Into<PathBuf>) -> Result<Self> {
        let file: ManifestFile =
            toml::from_str(text).map_err(|e| anyhow::anyhow!(one_line_toml_error(text, &e)))?;
        validate(&file.entry)?;
        Ok(Self {
            dir: dir.into(),
            entries: file.entry,
        })
    }

    /// The folder holding the manifest and its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every entry, in manifest order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name_or_file` (its name or its file name), of any kind.
    pub fn entry(&self, name_or_file: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.is_called(name_or_file))
    }

    /// The model entry called `name_or_file`.
    pub fn model(&self, name_or_file: &str) -> Option<&Entry> {
        self.entry_of_kind(name_or_file, Kind::Model)
    }

    /// The image entry called `name_or_file`.
    pub fn image(&self, name_or_file: &str) -> Option<&Entry> {
        self.entry_of_kind(name_or_file, Kind::Image)
    }

    /// The entry called `name_or_file` if it has the given kind.
    pub fn entry_of_kind(&self, name_or_file: &str, kind: Kind) -> Option<&Entry> {
        self.entry(name_or_file).filter(|e| e.kind == kind)
    }

    /// The entries of one kind, in manifest order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    /// The label-file entry of a model entry (validation guarantees it exists for models).
    pub fn labels_of(&self, model: &Entry) -> Option<&Entry> {
        model
            .labels
            .as_deref()
            .and_then(|l| self.entry_of_kind(l, Kind::Labels))
    }

    /// Where an entry's file lives: the models folder joined with its file name.
    pub fn path(&self, entry: &Entry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// Names of the entries of one kind, comma-separated, for "known models: ..." hints.
    pub(crate) fn names_of_kind(&self, kind: Kind) -> String {
        let names: Vec<&str> = self.of_kind(kind).map(|e| e.name.as_str()).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// TOML errors print a multi-line snippet; condense one to "line L, column C: message".
fn one_line_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Checks every entry on its own, then the references between entries.
fn validate(entries: &[Entry]) -> Result<()> {
    check_unique(entries)?;
    for entry in entries {
        check_entry(entry).with_context(|| format!("entry {:?}", entry.name))?;
    }
    for entry in entries {
        check_references(entry, entries).with_context(|| format!("entry {:?}", entry.name))?;
    }
    Ok(())
}

/// Names and file names must each be unique, and a name may not be another entry's file
/// name: look-ups accept either, so any overlap would make one of them unreachable.
fn check_unique(entries: &[Entry]) -> Result<()> {
    let mut names = HashSet::new();
    let mut files = HashSet::new();
    for entry in entries {
        if !names.insert(entry.name.as_str()) {
            bail!("two entries are named {:?}", entry.name);
        }
        if !files.insert(entry.file.as_str()) {
            bail!("two entries use the file {:?}", entry.file);
        }
    }
    for entry in entries {
        if let Some(other) = entries
            .iter()
            .find(|o| o.file == entry.name && o.name != entry.name)
        {
            bail!(
                "entry {:?} is named like the file of entry {:?}",
                entry.name,
                other.name
            );
        }
    }
    Ok(())
}

/// Field checks that need no other entry.
fn check_entry(entry: &Entry) -> Result<()> {
    if entry.name.trim().is_empty() {
        bail!("name is empty");
    }
    check_file_name(&entry.file)?;
    match (&entry.sha256, &entry.git_blob) {
        (None, None) => bail!("needs `sha256` (or, where only that is known, `git_blob`)"),
        (Some(_), Some(_)) => bail!("give `sha256` or `git_blob`, not both"),
        (Some(sha256), None) => check_sha256(sha256)?,
        (None, Some(blob)) => check_git_blob(blob)?,
    }
    if !(entry.url.starts_with("https://") || entry.url.starts_with("http://")) {
        bail!("url {:?} is not an http(s) address", entry.url);
    }
    if let Some(member) = &entry.member {
        if member.is_empty() || member.starts_with('/') || member.split('/').any(|p| p == "..") {
            bail!("member {member:?} is not a relative path inside the archive");
        }
        if entry.sha256.is_none() {
            bail!("a file taken from an archive (`member`) is pinned by `sha256`");
        }
    }
    if entry.description.contains('\n') {
        bail!("description must be one line");
    }
    check_kind_fields(entry)
}

/// A file name must stay inside the models folder and must not look like the manifest or a
/// fetch's temporary file (which start with a dot).
fn check_file_name(file: &str) -> Result<()> {
    let mut components = Path::new(file).components();
    let plain = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(c)), None) if c == file
    );
    if !plain || file.starts_with('.') || file == MANIFEST_FILE {
        bail!("file {file:?} must be a plain file name, without folders or a leading dot");
    }
    Ok(())
}

fn check_sha256(sha256: &str) -> Result<()> {
    let hex = sha256
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if sha256.len() != 64 || !hex {
        bail!("sha256 {sha256:?} is not 64 lowercase hex digits");
    }
    Ok(())
}

fn check_git_blob(blob: &str) -> Result<()> {
    let hex = blob
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if blob.len() != 40 || !hex {
        bail!("git_blob {blob:?} is not 40 lowercase hex digits");
    }
    Ok(())
}

/// Models need labels and an input spec; the model-only and image-only fields are rejected
/// elsewhere so that a misplaced field is noticed rather than ignored.
fn check_kind_fields(entry: &Entry) -> Result<()> {
    let is_model = entry.kind == Kind::Model;
    if is_model {
        // A classifier has both; another model (a detector, a keyword spotter) has no labels,
        // and `input` only where it takes an image.
        if entry.labels.is_some() && entry.input.is_none() {
            bail!("a model with `labels` needs `input`");
        }
        if let Some(input) = &entry.input {
            check_input(input)?;
        }
    } else if entry.labels.is_some() || entry.input.is_some() || entry.label_offset != 0 {
        bail!("`labels`, `label_offset` and `input` are for models only");
    }
    if entry.kind != Kind::Image && !entry.top1.is_empty() {
        bail!("`top1` is for images only");
    }
    if entry.edgetpu && !matches!(entry.kind, Kind::Model | Kind::Fixture) {
        bail!("`edgetpu` is for models and fixtures only");
    }
    Ok(())
}

fn check_input(input: &InputSpec) -> Result<()> {
    if input.height == 0 || input.width == 0 || input.channels == 0 {
        bail!("input height, width and channels must be positive");
    }
    if !input.mean.is_finite() || !input.std.is_finite() || input.std <= 0.0 {
        bail!("input mean must be finite and std finite and positive");
    }
    Ok(())
}

/// A model's labels must name a labels entry; an image's top-1 rows must name distinct models.
fn check_references(entry: &Entry, entries: &[Entry]) -> Result<()> {
    let find = |name: &str, kind: Kind| entries.iter().any(|e| e.name == name && e.kind == kind);
    if let Some(labels) = &entry.labels {
        if !find(labels, Kind::Labels) {
            bail!("labels {labels:?} is not the name of a labels entry");
        }
    }
    let mut seen = HashSet::new();
    for top1 in &entry.top1 {
        if !find(&top1.model, Kind::Model) {
            bail!(
                "top1 model {:?} is not the name of a model entry",
                top1.model
            );
        }
        if !seen.insert(top1.model.as_str()) {
            bail!("top1 lists model {:?} twice", top1.model);
        }
        if top1.label.trim().is_empty() {
            bail!("top1 label for model {:?} is empty", top1.model);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::{
        project_manifest, project_manifest_text, shared_dir, PINNED_COMMIT,
    };

    /// File name → SHA-256 (empty where SOURCES.md gives none) from SOURCES.md's first table,
    /// the files that are there (a later table lists files that are not, by git blob id).
    fn sources_table() -> Vec<(String, String)> {
        let text = std::fs::read_to_string(shared_dir().join("SOURCES.md")).unwrap();
        text.lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter(|l| !l.starts_with("|---") && !l.starts_with("| file"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                (cells[0].to_owned(), cells.last().unwrap().trim().to_owned())
            })
            .collect()
    }

    /// File name → git blob id from SOURCES.md's second table: the Edge TPU builds, whose
    /// bytes are not in the shared folder.
    fn sources_blob_table() -> Vec<(String, String)> {
        let text = std::fs::read_to_string(shared_dir().join("SOURCES.md")).unwrap();
        text.lines()
            .skip_while(|l| !l.starts_with("| file | git blob id"))
            .take_while(|l| l.starts_with('|'))
            .filter(|l| !l.starts_with("|---") && !l.starts_with("| file"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                (cells[0].to_owned(), cells[1].to_owned())
            })
            .collect()
    }

    #[test]
    fn lists_every_file_of_sources_md_with_its_checksum() {
        let manifest = project_manifest();
        let table = sources_table();
        assert_eq!(table.len(), 10, "SOURCES.md table: {table:?}");
        for (file, sha) in &table {
            let entry = manifest
                .entry(file)
                .unwrap_or_else(|| panic!("{file} missing from manifest"));
            assert_eq!(&entry.file, file);
            assert!(!entry.optional, "{file} is in the shared folder");
            if !sha.is_empty() {
                assert_eq!(entry.sha256.as_deref(), Some(sha.as_str()), "{file}");
            }
        }
        let blobs = sources_blob_table();
        assert_eq!(blobs.len(), 2, "SOURCES.md blob table: {blobs:?}");
        for (file, blob) in &blobs {
            let entry = manifest
                .entry(file)
                .unwrap_or_else(|| panic!("{file} missing from manifest"));
            assert_eq!(entry.git_blob.as_deref(), Some(blob.as_str()), "{file}");
            assert_eq!(entry.pin(), Pin::GitBlob(blob));
            assert!(entry.optional && entry.edgetpu, "{file}");
        }
        assert_eq!(
            manifest.entries().len(),
            table.len() + blobs.len(),
            "extra manifest entries"
        );
    }

    /// Every file the shared folder has matches its pin; only optional files may be absent.
    #[test]
    fn checksums_match_the_real_files() {
        let manifest = project_manifest();
        let mut checked = 0;
        for entry in manifest.entries() {
            let path = shared_dir().join(&entry.file);
            if !path.exists() {
                assert!(entry.optional, "{} is not in the shared folder", entry.file);
                continue;
            }
            let pin = entry.pin();
            assert_eq!(
                pin.of_file(&path).unwrap(),
                pin.expected(),
                "{}",
                entry.file
            );
            checked += 1;
        }
        assert_eq!(checked, 10);
    }

    /// The git blob id SOURCES.md gives for a file that is there, computed from its bytes.
    #[test]
    fn git_blob_id_of_a_known_file() {
        let path = shared_dir().join("mobilenet_v2_1.0_224_quant.tflite");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3_610_798);
        assert_eq!(
            crate::models::git_blob_file(&path).unwrap(),
            "03533c32dacc1456ff3fe951ebdd5b967ce9e6a0"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        // `git hash-object` of an empty file.
        assert_eq!(
            crate::models::git_blob_file(&empty).unwrap(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    /// The models of other kinds, files inside PyPI wheels: optional (the shared folder lacks
    /// them), pinned by SHA-256, each at its wheel's own address on PyPI's file host (whose
    /// path holds the wheel's hash), its member ending in the entry's file name; none has
    /// labels.
    #[test]
    fn the_models_from_wheels_are_pinned_files_of_pinned_wheels() {
        let manifest = Manifest::parse(BUILT_IN_MANIFEST, "x").unwrap();
        let wheels: Vec<&Entry> = manifest
            .entries()
            .iter()
            .filter(|e| e.member.is_some())
            .collect();
        let names: Vec<&str> = wheels.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "face_detection_short_range",
                "selfie_segmentation",
                "okay_nabu"
            ]
        );
        for entry in wheels {
            let member = entry.member.as_deref().unwrap();
            assert!(
                entry
                    .url
                    .starts_with("https://files.pythonhosted.org/packages/")
                    && entry.url.ends_with(".whl")
                    && member.ends_with(&format!("/{}", entry.file))
                    && entry.optional
                    && entry.sha256.is_some()
                    && entry.labels.is_none()
                    && entry.kind == Kind::Model,
                "{entry:?}"
            );
        }
        assert_eq!(
            manifest.entries().len(),
            project_manifest().entries().len() + 3
        );
    }

    #[test]
    fn urls_are_pinned_to_the_commit() {
        for entry in project_manifest().entries() {
            let expected = format!(
                "https://github.com/google-coral/test_data/raw/{PINNED_COMMIT}/{}",
                entry.file
            );
            assert_eq!(entry.url, expected);
        }
    }

    #[test]
    fn kinds_names_and_model_fields() {
        let manifest = project_manifest();
        let models: Vec<&str> = manifest
            .of_kind(Kind::Model)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            models,
            [
                "mobilenet_v2_1.0_224_quant",
                "tf2_mobilenet_v2_1.0_224_ptq",
                "mobilenet_v2_1.0_224_quant_edgetpu",
                "tf2_mobilenet_v2_1.0_224_ptq_edgetpu"
            ]
        );
        for model in manifest.of_kind(Kind::Model) {
            assert_eq!(
                model.edgetpu,
                model.name.ends_with("_edgetpu"),
                "{}",
                model.name
            );
        }
        let fixture = manifest
            .entry("keras_lstm_mnist_ptq_edgetpu.tflite")
            .unwrap();
        assert_eq!((fixture.kind, fixture.edgetpu), (Kind::Fixture, true));
        for model in manifest.of_kind(Kind::Model) {
            assert_eq!(model.file, format!("{}.tflite", model.name));
            assert_eq!(model.labels.as_deref(), Some("imagenet_labels.txt"));
            assert_eq!(model.label_offset, 0);
            let expected = InputSpec {
                height: 224,
                width: 224,
                channels: 3,
                mean: 127.5,
                std: 127.5,
            };
            assert_eq!(model.input, Some(expected));
            assert_eq!(manifest.labels_of(model).unwrap().kind, Kind::Labels);
        }
        let kind = |f: &str| manifest.entry(f).unwrap().kind;
        assert_eq!(kind("imagenet_labels.txt"), Kind::Labels);
        assert_eq!(kind("LICENSE"), Kind::Licence);
        assert_eq!(kind("COPYRIGHT"), Kind::Licence);
        assert_eq!(manifest.of_kind(Kind::Image).count(), 4);
        assert!(manifest
            .model("mobilenet_v2_1.0_224_quant.tflite")
            .is_some());
        assert!(manifest.model("bird.bmp").is_none());
        assert!(manifest.image("bird.bmp").is_some());
    }

    #[test]
    fn images_carry_the_expected_top1_for_both_models() {
        let manifest = project_manifest();
        let expected = [
            ("bird.bmp", 20, "chickadee"),
            ("cat.bmp", 286, "Egyptian cat"),
            ("grace_hopper.bmp", 653, "military uniform"),
            ("parrot.jpg", 89, "macaw"),
        ];
        for (image, index, label) in expected {
            let entry = manifest.image(image).unwrap();
            assert_eq!(entry.top1.len(), 2, "{image}");
            // The Edge TPU builds' classes could not be checked here (no Edge TPU).
            for model in manifest
                .of_kind(Kind::Model)
                .filter(|m| !m.edgetpu && m.labels.is_some())
            {
                let top1 = entry.top1_for(&model.name).unwrap();
                assert_eq!((top1.index, top1.label.as_str()), (index, label), "{image}");
            }
        }
    }

    /// The top-1 labels must be the label-file lines their indices point at.
    #[test]
    fn top1_labels_agree_with_the_label_file() {
        let manifest = project_manifest();
        let labels_text =
            std::fs::read_to_string(shared_dir().join("imagenet_labels.txt")).unwrap();
        let labels: Vec<&str> = labels_text.lines().collect();
        assert_eq!(labels.len(), 1001);
        assert_eq!(labels[0], "background");
        for image in manifest.of_kind(Kind::Image) {
            for top1 in &image.top1 {
                let model = manifest.model(&top1.model).unwrap();
                assert_eq!(labels[top1.index + model.label_offset], top1.label);
            }
        }
    }

    #[test]
    fn load_places_files_next_to_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), project_manifest_text()).unwrap();
        let manifest = Manifest::load_dir(dir.path()).unwrap();
        assert!(manifest.image("bird").is_none(), "names match exactly");
        let bird = manifest.image("bird.bmp").unwrap();
        assert_eq!(manifest.path(bird), dir.path().join("bird.bmp"));
        assert_eq!(manifest.dir(), dir.path());
    }

    #[test]
    fn missing_manifest_error_names_the_path_and_the_variable() {
        let err = Manifest::load_dir(Path::new("/nonexistent/joulebench")).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("/nonexistent/joulebench/manifest.toml"),
            "{text}"
        );
        assert!(text.contains(MODELS_DIR_ENV), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn models_dir_is_the_users_data_folder_unless_the_variable_says_otherwise() {
        let data = || Some(PathBuf::from("/home/u/.local/share"));
        let default = PathBuf::from("/home/u/.local/share/joulebench/models");
        assert_eq!(models_dir_from(None, data()), default);
        assert_eq!(models_dir_from(Some("".into()), data()), default);
        assert_eq!(
            models_dir_from(Some("/x/y".into()), data()),
            PathBuf::from("/x/y")
        );
        assert_eq!(models_dir_from(None, None), PathBuf::from("models"));
    }

    #[test]
    fn the_built_in_manifest_is_the_projects() {
        let committed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/manifest.toml"),
        )
        .unwrap();
        assert_eq!(BUILT_IN_MANIFEST, committed);
        Manifest::parse(BUILT_IN_MANIFEST, "x").unwrap();
    }

    const GOOD: &str = r#"
[[entry]]
name = "m"
file = "m.tflite"
kind = "model"
sha256 = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
url = "https://example.org/m.tflite"
description = "a model"
labels = "l.txt"
input = { height = 2, width = 2, channels = 3, mean = 0.0, std = 1.0 }

[[entry]]
name = "l.txt"
file = "l.txt"
kind = "labels"
sha256 = "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1"
url = "https://example.org/l.txt"
description = "labels"

[[entry]]
name = "i.bmp"
file = "i.bmp"
kind = "image"
sha256 = "3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994"
url = "https://example.org/i.bmp"
description = "an image"
top1 = [{ model = "m", index = 1, label = "x" }]
"#;

    /// `GOOD` with `from` replaced by `to`; the replacement must apply.
    fn bad(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    }

    fn parse_error(text: &str) -> String {
        let err = Manifest::parse(text, "d").unwrap_err();
        let text = format!("{err:#}");
        assert!(!text.contains('\n'), "multi-line error: {text}");
        text
    }

    #[test]
    fn a_git_blob_pins_an_entry_instead_of_sha256() {
        let blob = "03533c32dacc1456ff3fe951ebdd5b967ce9e6a0";
        let text = bad(
            "sha256 = \"3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994\"",
            &format!("git_blob = \"{blob}\"\noptional = true"),
        );
        let manifest = Manifest::parse(&text, "d").unwrap();
        let image = manifest.image("i.bmp").unwrap();
        assert_eq!(image.pin(), Pin::GitBlob(blob));
        assert_eq!((image.pin().label(), image.optional), ("git blob id", true));
        let model = manifest.model("m").unwrap();
        assert_eq!(model.pin().label(), "SHA-256");
        assert!(!model.optional && !model.edgetpu);
    }

    #[test]
    fn small_manifest_parses() {
        let manifest = Manifest::parse(GOOD, "d").unwrap();
        assert_eq!(manifest.entries().len(), 3);
        assert_eq!(
            manifest.path(manifest.model("m").unwrap()),
            Path::new("d/m.tflite")
        );
    }

    #[test]
    fn rejects_malformed_entries() {
        let cases = [
            (
                bad("name = \"l.txt\"", "name = \"m\""),
                "two entries are named",
            ),
            (
                bad("file = \"l.txt\"", "file = \"m.tflite\""),
                "two entries use the file",
            ),
            (
                bad("name = \"m\"", "name = \"l.txt\""),
                "two entries are named",
            ),
            (
                bad("file = \"i.bmp\"", "file = \"../i.bmp\""),
                "plain file name",
            ),
            (
                bad("file = \"i.bmp\"", "file = \"sub/i.bmp\""),
                "plain file name",
            ),
            (
                bad("file = \"i.bmp\"", "file = \".i.bmp\""),
                "plain file name",
            ),
            (
                bad("file = \"i.bmp\"", "file = \"/i.bmp\""),
                "plain file name",
            ),
            (
                bad("file = \"i.bmp\"", "file = \"manifest.toml\""),
                "plain file name",
            ),
            (bad("3fd22d6ed352", "3FD22D6ED352"), "64 lowercase hex"),
            (
                bad("sha256 = \"3fd2", "git_blob = \"3fd2"),
                "not 40 lowercase hex",
            ),
            (
                bad("sha256 = \"3fd2", "git_blob = \"03533c32dacc1456ff3fe951ebdd5b967ce9e6a0\"\nsha256 = \"3fd2"),
                "not both",
            ),
            (
                bad(
                    "sha256 = \"3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994\"\n",
                    "",
                ),
                "needs `sha256`",
            ),
            (
                bad("kind = \"image\"", "kind = \"image\"\nedgetpu = true"),
                "`edgetpu` is for models and fixtures only",
            ),
            (bad("3fd22d6ed352", "3fd22d6ed35"), "64 lowercase hex"),
            (bad("https://example.org/i.bmp", "ftp://x/i.bmp"), "http(s)"),
            (
                bad(
                    "input = { height = 2, width = 2, channels = 3, mean = 0.0, std = 1.0 }\n",
                    "",
                ),
                "a model with `labels` needs `input`",
            ),
            (
                bad(
                    "url = \"https://example.org/m.tflite\"",
                    "url = \"https://example.org/m.whl\"\nmember = \"../m.tflite\"",
                ),
                "not a relative path inside the archive",
            ),
            (
                bad("labels = \"l.txt\"", "labels = \"i.bmp\""),
                "not the name of a labels entry",
            ),
            (
                bad("input = { height = 2,", "input = { height = 0,"),
                "must be positive",
            ),
            (bad("std = 1.0", "std = 0.0"), "std finite and positive"),
            (
                bad("model = \"m\", index", "model = \"q\", index"),
                "not the name of a model",
            ),
            (
                bad("kind = \"image\"", "kind = \"licence\""),
                "`top1` is for images only",
            ),
            (
                bad("kind = \"labels\"", "kind = \"labels\"\nlabel_offset = 1"),
                "models only",
            ),
            (
                bad("kind = \"labels\"", "kind = \"pictures\""),
                "line 15, column 8",
            ),
            (
                bad("description = \"labels\"", "descripton = \"labels\""),
                "unknown field",
            ),
        ];
        for (text, needle) in cases {
            let err = parse_error(&text);
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        }
    }

    #[test]
    fn entry_errors_name_the_entry() {
        let err = parse_error(&bad("3fd22d6ed352", "zz"));
        assert!(err.starts_with("entry \"i.bmp\": "), "{err}");
    }
}
