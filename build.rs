//! The shipped rigs, embedded; and link settings for the optional `torch` feature (libtorch
//! through `tch`).
//!
//! Two traps of linking libtorch from the PyPI wheel (see ../shared/notes/FINDINGS.md):
//! - nothing in the binary names a symbol of `libtorch_cuda.so`, so the linker's `--as-needed`
//!   drops it and CUDA is silently unavailable at run time; link it (and `libc10_cuda.so`, and
//!   `libtorch.so` for AOTInductor packages) with `--no-as-needed` whenever the wheel has them;
//! - the libraries live in the venv's `site-packages/torch/lib`: bake that folder in as an
//!   rpath so the binary runs without `LD_LIBRARY_PATH`.
//!
//! With the `torch` feature it also compiles the torch backend's C++ shim
//! (`src/backend/torch/shim/`, see `src/backend/torch/shim.rs`: AOTInductor packages and CUDA
//! graphs) against the headers of that same libtorch.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Declared whether or not the shim's parts are built, so their cfgs are names rustc knows
    // in every build.
    println!("cargo::rustc-check-cfg=cfg(joulebench_cuda_graph)");
    println!("cargo::rustc-check-cfg=cfg(joulebench_aoti)");
    embed_shipped_rigs();
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    link_libtorch();
}

/// The rigs in `rigs/` go into the binary (their text, not their path), so an installed
/// `joulebench run --rig sim-cpu` works from any folder.
fn embed_shipped_rigs() {
    println!("cargo:rerun-if-changed=rigs");
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("rigs");
    let mut rigs: Vec<String> = std::fs::read_dir(&dir)
        .expect("rigs/ is part of the source")
        .map(|entry| entry.expect("rigs/ is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    rigs.sort();
    // The path is joined when the crate compiles, not here: cargo does not rerun a build
    // script when the same target folder builds a checkout in another place, and a baked-in
    // absolute path would then name the old place.
    let entries: String = rigs
        .iter()
        .map(|name| {
            format!(
                "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/rigs/{name}.toml\"))),\n"
            )
        })
        .collect();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("shipped_rigs.rs");
    std::fs::write(
        out,
        format!("/// The rigs of `rigs/`: (name, text).\npub const SHIPPED_RIGS: &[(&str, &str)] = &[\n{entries}];\n"),
    )
    .expect("OUT_DIR is writable");
}

fn link_libtorch() {
    // Exported by torch-sys (links = "tch") to the build scripts of crates that depend on it.
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not export DEP_TCH_LIBTORCH_LIB: set LD_LIBRARY_PATH to libtorch's lib folder at run time");
        for part in ["AOTI", "CUDA_GRAPH"] {
            no_shim(
                part,
                "torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)",
            );
        }
        return;
    };
    let lib = std::path::PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // Also `libtorch.so`, which nothing names either: an AOTInductor package's compiled
    // library needs it, and `dlopen` finds it only if it is loaded already (the binary's
    // RUNPATH does not apply to the dependencies of a library opened at run time).
    let unnamed: Vec<&str> = ["torch", "torch_cuda", "c10_cuda"]
        .into_iter()
        .filter(|name| lib.join(format!("lib{name}.so")).exists())
        .collect();
    if !unnamed.is_empty() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        for name in unnamed {
            println!("cargo:rustc-link-arg=-l{name}");
        }
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    build_shim(&lib);
}

/// Compiles the torch backend's C++ shim (`src/backend/torch/shim/`, used through
/// `src/backend/torch/shim.rs`) into a static library against the headers of the libtorch
/// torch-sys links. Two parts, each announced to the crate by a cfg and an environment
/// variable ("built", or why not: the backend's engine note):
/// - `aoti.cpp` (AOTInductor packages, `cfg(joulebench_aoti)`, `JOULEBENCH_AOTI_SHIM`) needs
///   libtorch's headers only;
/// - `cuda_graph.cpp` (`cfg(joulebench_cuda_graph)`, `JOULEBENCH_CUDA_GRAPH_SHIM`) needs a
///   libtorch with CUDA and the CUDA runtime headers.
///
/// Missing ingredients are not an error: the backend then runs eager and says so. A compile
/// error where everything was found is one: the shim is then broken, and a build that quietly
/// dropped it would hide that.
fn build_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed={SHIM_DIR}");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    // The wheel's layout: site-packages/torch/{lib,include}; a libtorch zip's: libtorch/{lib,include}.
    let torch = lib.parent().unwrap_or(lib);
    let torch_include = torch.join("include");
    let aoti = aoti_ingredients(&torch_include);
    let cuda = cuda_graph_ingredients(lib, torch, &torch_include);
    let mut include = vec![
        torch_include.clone(),
        torch_include.join("torch/csrc/api/include"),
    ];
    let mut build = cc::Build::new();
    // torch-sys compiles its own wrapper with the ABI that Python's torch reports; the PyPI
    // wheels of libtorch 2.11 (the only version tch 0.24 takes) are built with the C++11 ABI,
    // so 1 unless LIBTORCH_CXX11_ABI says otherwise, as torch-sys defaults without Python.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    build
        .cpp(true)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str());
    if aoti.is_ok() {
        build.file(format!("{SHIM_DIR}/aoti.cpp"));
    }
    if let Ok(dirs) = &cuda {
        build.file(format!("{SHIM_DIR}/cuda_graph.cpp"));
        include.extend(dirs.iter().cloned());
    }
    for (part, built) in [
        ("AOTI", aoti.as_ref().map(|_| ())),
        ("CUDA_GRAPH", cuda.as_ref().map(|_| ())),
    ] {
        match built {
            Ok(()) => println!("cargo:rustc-env=JOULEBENCH_{part}_SHIM=built"),
            Err(why) => no_shim(part, why),
        }
    }
    if aoti.is_err() && cuda.is_err() {
        return;
    }
    compile_shim(&mut build, &include);
    link_shim(aoti.is_ok(), cuda.is_ok());
}

/// The torch backend's C++ shim, relative to the package.
const SHIM_DIR: &str = "src/backend/torch/shim";

/// Whether the AOTInductor part can be built: libtorch's headers have its package loader.
fn aoti_ingredients(torch_include: &std::path::Path) -> Result<(), String> {
    if torch_include
        .join("torch/csrc/inductor/aoti_package/model_package_loader.h")
        .is_file()
    {
        Ok(())
    } else {
        Err(format!(
            "libtorch's headers are not at {} (no AOTIModelPackageLoader)",
            torch_include.display()
        ))
    }
}

/// Whether the CUDA-graph part can be built: a libtorch with CUDA, its CUDA headers, and the
/// CUDA runtime's headers (their folders).
fn cuda_graph_ingredients(
    lib: &std::path::Path,
    torch: &std::path::Path,
    torch_include: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, String> {
    if !lib.join("libtorch_cuda.so").exists() {
        Err(format!(
            "the libtorch at {} has no CUDA (no libtorch_cuda.so)",
            lib.display()
        ))
    } else if !torch_include.join("ATen/cuda/CUDAGraph.h").is_file() {
        Err(format!(
            "libtorch's headers are not at {} (no ATen/cuda/CUDAGraph.h)",
            torch_include.display()
        ))
    } else {
        cuda_headers(torch)
    }
}

/// Compiles the shim's sources in `build` into its static library; a compile error is a
/// panic (see [`build_shim`]).
fn compile_shim(build: &mut cc::Build, include: &[std::path::PathBuf]) {
    // -isystem, not -I: the shim's own warnings are shown, libtorch's thousands are not.
    for dir in include {
        build
            .flag("-isystem")
            .flag(dir.to_str().expect("a UTF-8 include path"));
    }
    if let Err(e) = build.try_compile("joulebench_torch_shim") {
        panic!(
            "the torch backend's C++ shim ({SHIM_DIR}) did not compile against {}: {e}",
            include
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Links what the compiled shim calls, and announces its built parts by their cfgs.
fn link_shim(aoti: bool, cuda: bool) {
    // What the shim calls, after the static library so the linker resolves its symbols:
    // AOTIModelPackageLoader (libtorch_cpu); at::cuda::CUDAGraph (libtorch_cuda) and the CUDA
    // streams (libc10_cuda); c10's generic streams, events and errors (libc10). No libcudart:
    // the shim never calls the CUDA runtime itself.
    let mut libs = vec!["torch_cpu"];
    if aoti {
        println!("cargo:rustc-cfg=joulebench_aoti");
    }
    if cuda {
        libs.extend(["torch_cuda", "c10_cuda"]);
        println!("cargo:rustc-cfg=joulebench_cuda_graph");
    }
    libs.push("c10");
    for name in libs {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
}

/// One part of the shim is not in this build, and why: a build warning now, the engine note at
/// run time.
fn no_shim(part: &str, why: &str) {
    let what = match part {
        "AOTI" => "AOTInductor packages, torch runs eager kernels",
        _ => "CUDA graphs, torch on CUDA runs eager",
    };
    println!("cargo:warning=building the torch shim without {what}: {why}");
    println!("cargo:rustc-env=JOULEBENCH_{part}_SHIM=not built: {why}");
}

/// The CUDA runtime headers the shim needs (`cuda_runtime_api.h` and the `crt/` headers it
/// includes), from one installation: the venv's `nvidia-*` wheels beside `torch/` first (the
/// CUDA version libtorch was built with; the cu13 wheels share `nvidia/cu13/include`, the cu12
/// ones have a folder each), else `$CUDA_HOME`, else `/usr/local/cuda`. The `crt/` headers
/// come from the `nvidia-cuda-crt` wheel, not from `nvidia-cuda-runtime`.
fn cuda_headers(torch: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    use std::path::PathBuf;
    let mut installs: Vec<Vec<PathBuf>> = Vec::new();
    if let Some(nvidia) = torch.parent().map(|site| site.join("nvidia")) {
        let mut wheels: Vec<PathBuf> = std::fs::read_dir(&nvidia)
            .map(|entries| {
                entries
                    .filter_map(|e| Some(e.ok()?.path().join("include")))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        wheels.sort();
        installs.push(wheels);
    }
    if let Some(home) = std::env::var_os("CUDA_HOME") {
        installs.push(vec![PathBuf::from(home).join("include")]);
    }
    installs.push(vec![PathBuf::from("/usr/local/cuda/include")]);
    let mut looked = Vec::new();
    for dirs in installs {
        let has = |file: &str| dirs.iter().find(|d| d.join(file).is_file()).cloned();
        let (runtime, crt) = (has("cuda_runtime_api.h"), has("crt/host_config.h"));
        if let (Some(runtime), Some(crt)) = (&runtime, &crt) {
            let mut found = vec![runtime.clone()];
            if crt != runtime {
                found.push(crt.clone());
            }
            return Ok(found);
        }
        looked.extend(dirs.iter().map(|d| d.display().to_string()));
    }
    Err(format!(
        "no CUDA runtime headers with crt/host_config.h (looked in {}); the nvidia-cuda-crt \
         wheel of libtorch's CUDA version provides them",
        looked.join(", ")
    ))
}
