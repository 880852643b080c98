//! Int8 TensorFlow Lite models on Google's LiteRT runtime (the `ai-edge-litert` wheel's
//! `libLiteRt.so`), through its C API loaded at run time (module `ffi`).
//!
//! This is the engine Google's own Python loop uses (XNNPACK on the CPU), so joulebench's
//! numbers are comparable with it; the binary still starts where the library is absent.

mod ffi;

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::signature::{at_batch, Signature, Tensor};
use super::{Backend, EngineInfo};
use crate::input::TensorType;

/// Where the rig's library path, if any, may be overridden without editing the rig.
pub const LIBRARY_ENV: &str = crate::environment::LITERT_LIB;

pub struct LiteRtBackend {
    session: ffi::Session,
    signature: Signature,
    /// Where each of LiteRT's inputs (its signature's order) lies in the prepared bytes (the
    /// model's subgraph order): one image's, which the session copies once per image.
    ranges: Vec<Range<usize>>,
    /// The output's type and the bytes of one image's scores, where the model is a classifier
    /// whose scores are read.
    scored: Option<(TensorType, usize)>,
    engine: EngineInfo,
}

impl LiteRtBackend {
    /// Compiles `model_path` for the CPU with `threads` threads, on XNNPACK or (with `xnnpack`
    /// false) on LiteRT's builtin kernels, using the LiteRT library at `library`, at `batch`
    /// images per inference (every input's leading dimension resized to it).
    ///
    /// LiteRT applies `num_threads` to XNNPACK only: its builtin kernels run on one thread
    /// whatever is asked (seen with 2.3.0, from Rust and from Google's Python `CompiledModel`
    /// alike: no worker thread appears, no speed-up), so more threads without XNNPACK are
    /// refused rather than reported but not used.
    pub fn open(
        model_path: &Path,
        threads: u32,
        xnnpack: bool,
        library: &Path,
        batch: usize,
    ) -> Result<Self> {
        if threads == 0 {
            bail!("LiteRT needs at least 1 thread");
        }
        if threads > 1 && !xnnpack {
            bail!(
                "LiteRT runs its builtin kernels (XNNPACK off) on 1 thread only, {threads} asked"
            );
        }
        if !library.is_file() {
            bail!(not_found(&library.display().to_string()));
        }
        check_model_file(model_path)?;
        let model = || format!("model {}{}", model_path.display(), at_batch(batch));
        let signature = Signature::read(model_path)?
            .batched(batch)
            .with_context(model)?;
        // At batch 1 the session's errors name what failed (the library, the model file)
        // themselves; a batch's resize is the model's to fail.
        let opened = ffi::Session::open(library, model_path, threads, xnnpack, batch);
        let (session, inputs, outputs) = if batch == 1 {
            opened?
        } else {
            opened.with_context(model)?
        };
        let input_ranges = signature.input_ranges();
        let ranges = match_tensors(&signature, true, &inputs, session.input_sizes())
            .with_context(model)?
            .into_iter()
            .map(|i| input_ranges[i].clone())
            .collect();
        match_tensors(&signature, false, &outputs, &[]).with_context(model)?;
        let scored = signature.classifier().then(|| {
            (
                signature.outputs[0].tensor_type(),
                signature.output_bytes_per_image(0),
            )
        });
        Ok(Self {
            session,
            signature,
            ranges,
            scored,
            engine: EngineInfo {
                engine: "litert".into(),
                version: wheel_version(library),
                accelerator: if xnnpack { "xnnpack" } else { "none" }.into(),
                threads,
            },
        })
    }
}

/// Where each of LiteRT's tensors (`engine`, its signature's order) is among the model's
/// inputs (or outputs) of `signature` (the subgraph's order), by index: matched by name, or by
/// position where the names differ (a signature may rename). Each must have the type and shape
/// of `signature` (the flatbuffer's, at its batch) and, where `sizes` are given, as many bytes.
fn match_tensors(
    signature: &Signature,
    inputs: bool,
    engine: &[ffi::TensorInfo],
    sizes: &[usize],
) -> Result<Vec<usize>> {
    let model: &[Tensor] = if inputs {
        &signature.inputs
    } else {
        &signature.outputs
    };
    if model.len() != engine.len() {
        bail!(
            "LiteRT sees {} tensors where the model lists {}",
            engine.len(),
            model.len()
        );
    }
    let by_name = engine
        .iter()
        .all(|e| model.iter().filter(|m| m.name == e.name).count() == 1);
    engine
        .iter()
        .enumerate()
        .map(|(j, e)| {
            let i = if by_name {
                model.iter().position(|m| m.name == e.name).unwrap_or(j)
            } else {
                j
            };
            let t = &model[i];
            let code = t.dtype.c_type();
            let dims: Vec<i64> = e.dims.iter().map(|&d| i64::from(d)).collect();
            let agrees = t.quantization_agrees(e.quantization);
            if signature.batch > 1 && e.element_type == code && dims != t.shape {
                bail!(
                    "{}",
                    super::signature::folded_batch("LiteRT", &e.name, &dims, t, signature.batch)
                );
            }
            if e.element_type != code || dims != t.shape || !agrees {
                bail!(
                    "LiteRT sees tensor {} as {dims:?} of element type {} quantized {:?}, the \
                     model file as {} quantized {:?}",
                    e.name,
                    e.element_type,
                    e.quantization,
                    t.describe(),
                    t.quantization
                );
            }
            if let Some(&size) = sizes.get(j) {
                if size != t.bytes() {
                    bail!(
                        "LiteRT's buffer for {} holds {size} bytes, the tensor {}",
                        t.describe(),
                        t.bytes()
                    );
                }
            }
            Ok(i)
        })
        .collect()
}

impl Backend for LiteRtBackend {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn batch(&self) -> usize {
        self.signature.batch
    }

    /// Copies one image's inputs into every image of the batch on each call, as at batch 1:
    /// what an inference costs per image stays comparable between batches.
    fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> Result<()> {
        match self.scored {
            Some((output_type, first_image)) => self.session.run(
                input,
                &self.ranges,
                Some(&mut |out: &[u8]| output_type.dequantize(&out[..first_image], scores)),
            ),
            None => {
                scores.clear();
                self.session.run(input, &self.ranges, None)
            }
        }
    }
}

/// Loads the library at `path` (once per process), or says why it cannot be: a library built
/// for a newer C library than this system's (a tarball's on an old board), or not LiteRT.
pub fn load_library(path: &Path) -> Result<()> {
    ffi::load(path)
}

/// The file name of LiteRT's C library, as the `ai-edge-litert` wheel and a release tarball
/// ship it.
const LIBRARY_FILE: &str = "libLiteRt.so";

/// Finds libLiteRt.so: `explicit` (from the rig) if given, else env `JOULEBENCH_LITERT_LIB`,
/// else beside the joulebench executable (a release tarball ships it there, for boards
/// without Python), else `<cache>/venv/lib/python3*/site-packages/ai_edge_litert/libLiteRt.so`
/// where cache = [`crate::cache_dir`] (where `make setup` installs the wheel).
pub fn locate_library(explicit: Option<&Path>) -> Result<PathBuf> {
    let from_env = std::env::var_os(LIBRARY_ENV).filter(|v| !v.is_empty());
    let beside = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    locate_in(
        explicit.map(PathBuf::from).or(from_env.map(PathBuf::from)),
        beside.as_deref(),
        &crate::cache_dir().join("venv/lib"),
    )
}

/// [`locate_library`] with its places given: a path named by the rig or the environment, the
/// executable's folder, and the project venv's `lib` folder.
fn locate_in(named: Option<PathBuf>, beside: Option<&Path>, venv_lib: &Path) -> Result<PathBuf> {
    if let Some(path) = named {
        if !path.is_file() {
            bail!(not_found(&path.display().to_string()));
        }
        return Ok(path);
    }
    if let Some(path) = beside.map(|dir| dir.join(LIBRARY_FILE)) {
        if path.is_file() {
            return Ok(path);
        }
    }
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv_lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    pythons.sort();
    pythons
        .iter()
        .map(|p| p.join("site-packages/ai_edge_litert").join(LIBRARY_FILE))
        .find(|p| p.is_file())
        .with_context(|| {
            let pattern = venv_lib
                .join("python3*/site-packages/ai_edge_litert")
                .join(LIBRARY_FILE);
            let mut places = beside
                .map(|dir| format!("{} and ", dir.join(LIBRARY_FILE).display()))
                .unwrap_or_default();
            places += &pattern.display().to_string();
            not_found(&places)
        })
}

fn not_found(looked_in: &str) -> String {
    format!(
        "LiteRT library not found (looked in {looked_in}): run `make setup` (installs \
         ai-edge-litert into the project venv), or set {LIBRARY_ENV} / the rig's litert_lib"
    )
}

/// Runs the flatbuffer verifier over the model first: `LiteRtCreateModelFromFile` does not
/// verify, and a truncated or corrupt file segfaults it (Google's Python `CompiledModel` too).
/// The verifier is TensorFlow Lite's own (`VerifyModelBuffer`, through the `tflite` crate).
fn check_model_file(path: &Path) -> Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    // TF Lite 1.15's verifier refuses a model of newer operators as a whole; those pass when
    // every offset of the model is found within the file.
    if tflite::model::Model::from_buffer(&bytes).is_none()
        && super::signature::check_structure(&bytes).is_err()
    {
        bail!("{} is not a valid TensorFlow Lite model", path.display());
    }
    Ok(())
}

/// The wheel's version, from the `ai_edge_litert-X.Y.Z.dist-info` folder next to the package
/// folder holding the library (a venv), or next to the library (a release tarball);
/// "unknown" for a library without one.
fn wheel_version(library: &Path) -> String {
    // site-packages in a venv (the library is in ai_edge_litert/), or the library's own
    // folder in a release tarball.
    let folders = [library.parent().and_then(Path::parent), library.parent()];
    let mut versions: Vec<String> = folders
        .into_iter()
        .flatten()
        .filter_map(|folder| std::fs::read_dir(folder).ok())
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name
                .strip_prefix("ai_edge_litert-")?
                .strip_suffix(".dist-info")?;
            Some(version.to_owned())
        })
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::tflite::TfliteBackend;
    use crate::input::Normalization;

    const MODELS: [&str; 2] = [
        "mobilenet_v2_1.0_224_quant.tflite",
        "tf2_mobilenet_v2_1.0_224_ptq.tflite",
    ];
    /// Image and the top-1 output index both models give it (models/manifest.toml).
    const IMAGES: [(&str, usize); 4] = [
        ("bird.bmp", 20),
        ("cat.bmp", 286),
        ("grace_hopper.bmp", 653),
        ("parrot.jpg", 89),
    ];

    /// Where `make test` (or the integration tests) fetched the files.
    fn models() -> PathBuf {
        crate::models::models_dir()
    }

    /// The real library, which `make setup` installs (a test without it fails: a missing
    /// venv is no reason to skip).
    fn library() -> PathBuf {
        locate_library(None).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn prepare(backend: &dyn Backend, image: &str) -> Vec<u8> {
        crate::backend::feed::prepare(
            backend.signature(),
            &models().join(image),
            Normalization::MOBILENET,
        )
        .unwrap()
    }

    fn top1(scores: &[f32]) -> usize {
        (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap()
    }

    #[test]
    fn classifies_like_the_manifest_with_and_without_xnnpack() {
        let lib = library();
        for model in MODELS {
            for (xnnpack, threads) in [(true, 1), (true, 2), (false, 1)] {
                let mut b = LiteRtBackend::open(&models().join(model), threads, xnnpack, &lib, 1)
                    .unwrap_or_else(|e| panic!("{model}: {e:#}"));
                assert_eq!(b.engine().engine, "litert");
                assert_eq!(
                    b.engine().accelerator,
                    if xnnpack { "xnnpack" } else { "none" }
                );
                assert_eq!(b.engine().threads, threads);
                let spec = b.signature().inputs[0].clone();
                assert_eq!(spec.shape, vec![1, 224, 224, 3]);
                let mut scores = Vec::new();
                for (image, want) in IMAGES {
                    let input = prepare(&b, image);
                    b.infer(&input, &mut scores).unwrap();
                    assert_eq!(scores.len(), 1001);
                    let got = top1(&scores);
                    assert_eq!(
                        got, want,
                        "{model} {image} xnnpack={xnnpack} threads={threads}"
                    );
                }
            }
        }
    }

    #[test]
    fn refuses_threads_it_would_not_use() {
        let (model, lib) = (
            models().join(MODELS[0]),
            Path::new("/nonexistent/libLiteRt.so"),
        );
        for (threads, xnnpack, want) in [(0, true, "at least 1"), (2, false, "1 thread only")] {
            let e = LiteRtBackend::open(&model, threads, xnnpack, lib, 1)
                .err()
                .unwrap();
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn reports_the_wheel_version() {
        let lib = library();
        let b = LiteRtBackend::open(&models().join(MODELS[0]), 1, true, &lib, 1).unwrap();
        let version = &b.engine().version;
        // Where `make setup` put it, the wheel's dist-info is beside the package.
        let in_wheel = lib.parent().is_some_and(|p| p.ends_with("ai_edge_litert"));
        assert!(!in_wheel || version.starts_with("2."), "{version}");
        let fake = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fake.path().join("ai_edge_litert-9.8.7.dist-info")).unwrap();
        let in_pkg = fake.path().join("ai_edge_litert/libLiteRt.so");
        assert_eq!(wheel_version(&in_pkg), "9.8.7");
        assert_eq!(wheel_version(Path::new("/nowhere/libLiteRt.so")), "unknown");
    }

    /// Same input through TensorFlow Lite 1.15: the same top-1 on every image, and scores
    /// near enough that a misread output fails. Not the same scores, and no tolerance from the
    /// arithmetic would hold on every processor: both engines run the same quantized graph but
    /// requantize each of its 65 layers with their own rounding, XNNPACK picks its kernels by
    /// CPU, and one-step differences compound through the depth by amounts that vary by
    /// processor (13 steps of 1/256 seen on an Intel Xeon, 17 on an AMD EPYC). What the
    /// engines promise a classifier is the class, so the class is compared exactly. The score
    /// bound, 64 steps (a quarter of the range), guards something else: a wrong scale, zero
    /// point or output tensor moves the top score by about its whole value, so it fails.
    #[test]
    fn matches_the_tflite_engine() {
        const MISREAD_STEPS: u32 = 64;
        let lib = library();
        for model in MODELS {
            let path = models().join(model);
            let mut tflite = TfliteBackend::open(&path, 1, 1).unwrap();
            let (mut want, mut got) = (Vec::new(), Vec::new());
            for xnnpack in [true, false] {
                let mut litert = LiteRtBackend::open(&path, 1, xnnpack, &lib, 1).unwrap();
                assert_eq!(litert.signature(), tflite.signature());
                let Some((TensorType::U8 { scale, .. }, _)) = litert.scored else {
                    panic!("{model}: expected a uint8 output");
                };
                for (image, _) in IMAGES {
                    let input = prepare(&litert, image);
                    tflite.infer(&input, &mut want).unwrap();
                    litert.infer(&input, &mut got).unwrap();
                    assert_eq!(top1(&got), top1(&want), "{model} {image} xnnpack={xnnpack}");
                    let worst = want
                        .iter()
                        .zip(&got)
                        .map(|(a, b)| ((a - b) / scale).abs().round() as u32)
                        .max()
                        .unwrap();
                    assert!(
                        worst <= MISREAD_STEPS,
                        "{model} {image} xnnpack={xnnpack}: scores differ by up to {worst} steps"
                    );
                }
            }
        }
    }

    /// A batch of 4 on both engines, on the stand-in (whose operators follow any batch): the
    /// shapes as run are the model's with 4 images, one call counts 4, one image's input is
    /// prepared, and image 0's scores are exactly batch 1's (each image of a batch is computed
    /// by the same integer arithmetic as alone).
    #[test]
    fn image_0_of_a_batch_scores_as_batch_1_on_both_engines() {
        let lib = library();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("standin.tflite");
        std::fs::write(&path, joulebench_test_support::standin_model()).unwrap();
        for engine in ["litert", "tflite"] {
            let open = |batch| -> Box<dyn Backend> {
                match engine {
                    "litert" => Box::new(LiteRtBackend::open(&path, 1, true, &lib, batch).unwrap()),
                    _ => Box::new(TfliteBackend::open(&path, 1, batch).unwrap()),
                }
            };
            let (mut one, mut four) = (open(1), open(4));
            assert_eq!((one.batch(), four.batch()), (1, 4), "{engine}");
            let signature = four.signature();
            assert_eq!(signature.inputs[0].shape, [4, 224, 224, 3], "{engine}");
            assert_eq!(signature.outputs[0].shape, [4, 1001], "{engine}");
            assert!(signature.classifier(), "{engine}");
            let input = prepare(&*four, "cat.bmp");
            assert_eq!(input, prepare(&*one, "cat.bmp"), "{engine}");
            assert_eq!(input.len(), 224 * 224 * 3, "{engine}");
            let (mut alone, mut batched) = (Vec::new(), Vec::new());
            one.infer(&input, &mut alone).unwrap();
            four.infer(&input, &mut batched).unwrap();
            assert_eq!(batched.len(), 1001, "{engine}");
            assert_eq!(alone, batched, "{engine}");
        }
    }

    /// MobileNetV2's files end in a RESHAPE to one image's `[1, 1001]`: at a batch neither
    /// engine can prepare it, and the refusal is one line naming the model and the batch.
    #[test]
    fn a_model_whose_operators_fix_one_image_is_refused_at_a_batch() {
        let lib = library();
        for model in MODELS {
            let path = models().join(model);
            for e in [
                LiteRtBackend::open(&path, 1, true, &lib, 4).err().unwrap(),
                TfliteBackend::open(&path, 1, 4).err().unwrap(),
            ] {
                let text = format!("{e:#}");
                assert!(
                    text.contains(&format!("model {} at batch 4", path.display()))
                        && text.contains("cannot follow")
                        && !text.contains('\n'),
                    "{text}"
                );
            }
        }
    }

    /// Where the same library runs the same bytes, the output is exact: two interpreters of
    /// one model give identical scores, classification after classification.
    #[test]
    fn the_same_library_gives_the_same_bytes() {
        let lib = library();
        for model in MODELS {
            let path = models().join(model);
            let mut a = LiteRtBackend::open(&path, 1, true, &lib, 1).unwrap();
            let mut b = LiteRtBackend::open(&path, 1, true, &lib, 1).unwrap();
            let input = prepare(&a, "cat.bmp");
            let (mut first, mut second) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                a.infer(&input, &mut first).unwrap();
                b.infer(&input, &mut second).unwrap();
                assert_eq!(first, second, "{model}");
            }
        }
    }

    /// A named path wins; else the executable's folder (a release tarball's layout); else the
    /// venv; where none holds it, the error names every place looked in.
    #[test]
    fn the_library_is_found_beside_the_executable_before_the_venv() {
        let dir = tempfile::tempdir().unwrap();
        let (exe_dir, venv_lib) = (dir.path().join("bin"), dir.path().join("venv/lib"));
        let in_venv = venv_lib.join("python3.11/site-packages/ai_edge_litert");
        std::fs::create_dir_all(&exe_dir).unwrap();
        std::fs::create_dir_all(&in_venv).unwrap();
        let err = format!(
            "{:#}",
            locate_in(None, Some(&exe_dir), &venv_lib).unwrap_err()
        );
        assert!(
            err.starts_with(&format!(
                "LiteRT library not found (looked in {}/libLiteRt.so and {}/python3*/",
                exe_dir.display(),
                venv_lib.display()
            )),
            "{err}"
        );
        std::fs::write(in_venv.join(LIBRARY_FILE), b"").unwrap();
        let found = |named: Option<PathBuf>| locate_in(named, Some(&exe_dir), &venv_lib).unwrap();
        assert_eq!(found(None), in_venv.join(LIBRARY_FILE));
        std::fs::write(exe_dir.join(LIBRARY_FILE), b"").unwrap();
        assert_eq!(found(None), exe_dir.join(LIBRARY_FILE));
        let named = dir.path().join("mine.so");
        std::fs::write(&named, b"").unwrap();
        assert_eq!(found(Some(named.clone())), named);
    }

    /// The version is read from the dist-info beside the package folder (a venv) or beside
    /// the library (a release tarball), and is "unknown" without either.
    #[test]
    fn the_wheel_version_is_read_in_a_venv_and_in_a_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let venv_lib = dir.path().join("site-packages/ai_edge_litert/libLiteRt.so");
        let tarball_lib = dir.path().join("joulebench-0.1.0/libLiteRt.so");
        for lib in [&venv_lib, &tarball_lib] {
            std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
            assert_eq!(wheel_version(lib), "unknown");
        }
        std::fs::create_dir(
            dir.path()
                .join("site-packages/ai_edge_litert-2.3.0.dist-info"),
        )
        .unwrap();
        std::fs::create_dir(
            dir.path()
                .join("joulebench-0.1.0/ai_edge_litert-2.3.0.dist-info"),
        )
        .unwrap();
        assert_eq!(wheel_version(&venv_lib), "2.3.0");
        assert_eq!(wheel_version(&tarball_lib), "2.3.0");
    }

    #[test]
    fn missing_library_says_how_to_install_it() {
        let missing = Path::new("/nonexistent/libLiteRt.so");
        for e in [
            locate_library(Some(missing)).unwrap_err(),
            LiteRtBackend::open(&models().join(MODELS[0]), 1, true, missing, 1)
                .err()
                .unwrap(),
        ] {
            let text = format!("{e:#}");
            assert!(
                text.starts_with("LiteRT library not found (looked in /nonexistent/libLiteRt.so)"),
                "{text}"
            );
            assert!(
                text.contains("make setup") && !text.contains('\n'),
                "{text}"
            );
        }
    }

    #[test]
    fn incompatible_library_names_the_missing_symbol() {
        // Debian's multiarch path of the C maths library, on x86-64 and arm64 alike.
        let libm = PathBuf::from(format!(
            "/lib/{}-linux-gnu/libm.so.6",
            std::env::consts::ARCH
        ));
        assert!(libm.is_file(), "no {}", libm.display());
        let e = LiteRtBackend::open(&models().join(MODELS[0]), 1, true, &libm, 1)
            .err()
            .unwrap();
        let text = format!("{e:#}");
        assert!(
            text.starts_with(&format!(
                "{} is incompatible: missing symbol Lite",
                libm.display()
            )),
            "{text}"
        );
        assert!(text.contains("2.1.6 or newer"), "{text}");
    }

    #[test]
    fn bad_model_files_are_errors() {
        let lib = library();
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.tflite");
        std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
        // Right identifier, broken flatbuffer: crashes LiteRT unless verified first.
        let truncated = dir.path().join("truncated.tflite");
        let real = std::fs::read(models().join(MODELS[0])).unwrap();
        std::fs::write(&truncated, &real[..4096]).unwrap();
        let cases = [
            (garbage.as_path(), "is not a valid TensorFlow Lite model"),
            (truncated.as_path(), "is not a valid TensorFlow Lite model"),
            (Path::new("/nonexistent.tflite"), "cannot read model"),
        ];
        for (path, want) in cases {
            let e = LiteRtBackend::open(path, 1, true, &lib, 1).err().unwrap();
            let text = format!("{e:#}");
            assert!(text.contains(want) && !text.contains('\n'), "{text}");
        }
    }

    /// Not a test: `cargo test --release --lib backend::litert -- --ignored --nocapture`
    /// prints the mean time of 250 classifications after 1 warm-up and 1 s of sleep (the 2019
    /// method), and the process's thread count (XNNPACK adds threads - 1 workers).
    #[test]
    #[ignore]
    fn speed() {
        let lib = library();
        let tasks = || std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
        for model in MODELS {
            for (xnnpack, threads) in [(true, 1), (true, 2), (false, 1)] {
                let path = models().join(model);
                let mut b = LiteRtBackend::open(&path, threads, xnnpack, &lib, 1).unwrap();
                let input = prepare(&b, "grace_hopper.bmp");
                let mut scores = Vec::new();
                b.infer(&input, &mut scores).unwrap();
                std::thread::sleep(std::time::Duration::from_secs(1));
                let start = std::time::Instant::now();
                for _ in 0..250 {
                    b.infer(&input, &mut scores).unwrap();
                }
                let ms = start.elapsed().as_secs_f64() * 1e3 / 250.0;
                eprintln!(
                    "{model} xnnpack={xnnpack} threads={threads}: {ms:.2} ms ({} OS threads)",
                    tasks()
                );
            }
        }
    }
}
