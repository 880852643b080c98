//! Link settings for the optional `torch` feature (libtorch through `tch`).
//!
//! Two traps of linking libtorch from the PyPI wheel (see ../shared/notes/FINDINGS.md):
//! - nothing in the binary names a symbol of `libtorch_cuda.so`, so the linker's `--as-needed`
//!   drops it and CUDA is silently unavailable at run time; link it (and `libc10_cuda.so`)
//!   with `--no-as-needed` whenever the wheel has them;
//! - the libraries live in the venv's `site-packages/torch/lib`: bake that folder in as an
//!   rpath so the binary runs without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    // Exported by torch-sys (links = "tch") to the build scripts of crates that depend on it.
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not export DEP_TCH_LIBTORCH_LIB: set LD_LIBRARY_PATH to libtorch's lib folder at run time");
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
}
