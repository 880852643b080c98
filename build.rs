//! The shipped rigs, embedded; and link settings for the optional `torch` feature (libtorch
//! through `tch`).
//!
//! Two traps of linking libtorch from the PyPI wheel (see ../shared/notes/FINDINGS.md):
//! - nothing in the binary names a symbol of `libtorch_cuda.so`, so the linker's `--as-needed`
//!   drops it and CUDA is silently unavailable at run time; link it (and `libc10_cuda.so`)
//!   with `--no-as-needed` whenever the wheel has them;
//! - the libraries live in the venv's `site-packages/torch/lib`: bake that folder in as an
//!   rpath so the binary runs without `LD_LIBRARY_PATH`.
//!
//! With the `torch` feature it also compiles the CUDA-graph shim
//! (`src/backend/torch/cuda_graph.cpp`, see `src/backend/torch/graph.rs`) against the headers
//! of that same libtorch, where the CUDA runtime headers are found.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Declared whether or not the CUDA-graph shim is built, so `cfg(joulebench_cuda_graph)` is
    // a name rustc knows in every build.
    println!("cargo::rustc-check-cfg=cfg(joulebench_cuda_graph)");
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
        no_shim("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
        return;
    };
    let lib = std::path::PathBuf::from(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let cuda: Vec<&str> = ["torch_cuda", "c10_cuda"]
        .into_iter()
        .filter(|name| lib.join(format!("lib{name}.so")).exists())
        .collect();
    if !cuda.is_empty() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        for name in cuda {
            println!("cargo:rustc-link-arg=-l{name}");
        }
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    build_cuda_graph_shim(&lib);
}

/// Compiles `src/backend/torch/cuda_graph.cpp` (C++ over libtorch's `at::cuda::CUDAGraph`)
/// into a static library, and tells the crate through `cfg(joulebench_cuda_graph)` and the
/// `JOULEBENCH_CUDA_GRAPH_SHIM` variable ("built", or why not: the backend's engine note).
///
/// Missing ingredients (a libtorch without CUDA, no CUDA runtime headers) are not an error:
/// the backend then runs eager and says so. A compile error where everything was found is one:
/// the shim is then broken, and a build that quietly dropped it would hide that.
fn build_cuda_graph_shim(lib: &std::path::Path) {
    let source = "src/backend/torch/cuda_graph.cpp";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    if !lib.join("libtorch_cuda.so").exists() {
        no_shim(&format!(
            "the libtorch at {} has no CUDA (no libtorch_cuda.so)",
            lib.display()
        ));
        return;
    }
    // The wheel's layout: site-packages/torch/{lib,include}; a libtorch zip's: libtorch/{lib,include}.
    let torch = lib.parent().unwrap_or(lib);
    let torch_include = torch.join("include");
    if !torch_include.join("ATen/cuda/CUDAGraph.h").is_file() {
        no_shim(&format!(
            "libtorch's headers are not at {} (no ATen/cuda/CUDAGraph.h)",
            torch_include.display()
        ));
        return;
    }
    let cuda_include = match cuda_headers(torch) {
        Ok(dirs) => dirs,
        Err(why) => {
            no_shim(&why);
            return;
        }
    };
    // torch-sys compiles its own wrapper with the ABI that Python's torch reports; the PyPI
    // wheels of libtorch 2.11 (the only version tch 0.24 takes) are built with the C++11 ABI,
    // so 1 unless LIBTORCH_CXX11_ABI says otherwise, as torch-sys defaults without Python.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .file(source);
    // -isystem, not -I: the shim's own warnings are shown, libtorch's thousands are not.
    for dir in [
        torch_include.clone(),
        torch_include.join("torch/csrc/api/include"),
    ]
    .iter()
    .chain(&cuda_include)
    {
        build
            .flag("-isystem")
            .flag(dir.to_str().expect("a UTF-8 include path"));
    }
    if let Err(e) = build.try_compile("joulebench_cuda_graph") {
        panic!(
            "the CUDA-graph shim {source} did not compile against {} and {}: {e}",
            torch_include.display(),
            cuda_include
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // What the shim calls: at::cuda::CUDAGraph (libtorch_cuda), the CUDA streams (libc10_cuda)
    // and c10's generic streams, events and errors (libc10); after the static library, so the
    // linker resolves its symbols. No libcudart: the shim never calls the CUDA runtime itself.
    for name in ["torch_cuda", "c10_cuda", "c10"] {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    println!("cargo:rustc-cfg=joulebench_cuda_graph");
    println!("cargo:rustc-env=JOULEBENCH_CUDA_GRAPH_SHIM=built");
}

/// No shim in this build, and why: a build warning now, the engine note at run time.
fn no_shim(why: &str) {
    println!("cargo:warning=building without the CUDA-graph shim, torch on CUDA runs eager: {why}");
    println!("cargo:rustc-env=JOULEBENCH_CUDA_GRAPH_SHIM=the CUDA-graph shim was not built: {why}");
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
