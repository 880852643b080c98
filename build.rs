//! The shipped rigs, embedded; and link settings for the optional `torch` feature (libtorch
//! through `tch`).
//!
//! Two traps of linking libtorch from the PyPI wheel (see ../shared/notes/FINDINGS.md):
//! - nothing in the binary names a symbol of `libtorch_cuda.so`, so the linker's `--as-needed`
//!   drops it and CUDA is silently unavailable at run time; link it (and `libc10_cuda.so`)
//!   with `--no-as-needed` whenever the wheel has them;
//! - the libraries live in the venv's `site-packages/torch/lib`: bake that folder in as an
//!   rpath so the binary runs without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
