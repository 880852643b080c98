//! Every environment variable joulebench reads at run time, declared once: the code reads them
//! by these names, and `joulebench --help` lists them with what they do ([`help`]).

/// Where the caches live, outside the clone: the cargo target dir, the Python venvs, the
/// compiled AOTInductor packages.
pub const CACHE: &str = "JOULEBENCH_CACHE";
/// The models folder.
pub const MODELS_DIR: &str = "JOULEBENCH_MODELS_DIR";
/// Another CSV of published references for `compare --references`.
pub const REFERENCES: &str = "JOULEBENCH_REFERENCES";
/// `libLiteRt.so` for a LiteRT backend without `litert_lib`.
pub const LITERT_LIB: &str = "JOULEBENCH_LITERT_LIB";
/// `libedgetpu.so.1` for an `edgetpu` backend without `edgetpu_lib`.
pub const EDGETPU_LIB: &str = "JOULEBENCH_EDGETPU_LIB";
/// `libtensorflowlite_c.so` for an `edgetpu` backend without `tflite_c_lib`.
pub const TFLITE_C_LIB: &str = "JOULEBENCH_TFLITE_C_LIB";
/// Where `bench` and the AOTInductor export find `analysis/reference/`.
pub const REFERENCE_DIR: &str = "JOULEBENCH_REFERENCE_DIR";
/// The Python of `bench`'s LiteRT reference loop.
pub const PYTHON: &str = "JOULEBENCH_PYTHON";
/// The Python with torch: AOTInductor exports and `bench`'s torch reference loop.
pub const TORCH_PYTHON: &str = "JOULEBENCH_TORCH_PYTHON";
/// The directory holding `sys/`, `var/` and `etc/`, where machine state and meters are read.
pub const ROOT: &str = "JOULEBENCH_ROOT";
/// Another TrueType font for the report's charts.
pub const FONT: &str = "JOULEBENCH_FONT";

/// Each variable with what it does and its default, as `--help` lists them.
pub const VARIABLES: [(&str, &str); 11] = [
    (
        CACHE,
        "caches outside the clone: cargo target, venvs, AOTInductor packages (~/.cache/joulebench)",
    ),
    (
        MODELS_DIR,
        "the models folder (~/.local/share/joulebench/models)",
    ),
    (
        REFERENCES,
        "a CSV of published references for compare --references (built in)",
    ),
    (
        LITERT_LIB,
        "libLiteRt.so for LiteRT backends without litert_lib (else the one beside the executable, else the project venv's)",
    ),
    (
        EDGETPU_LIB,
        "libedgetpu.so.1 for edgetpu backends without edgetpu_lib (the system's)",
    ),
    (
        TFLITE_C_LIB,
        "libtensorflowlite_c.so for edgetpu backends without tflite_c_lib (the system's)",
    ),
    (
        REFERENCE_DIR,
        "where analysis/reference/ is (the current folder's or the executable's)",
    ),
    (
        PYTHON,
        "the Python of bench's LiteRT reference loop (the project venv's)",
    ),
    (
        TORCH_PYTHON,
        "the Python with torch for AOTInductor exports and bench (the project torch venv's)",
    ),
    (
        ROOT,
        "the folder holding sys/, var/ and etc/ for machine state and meters (/)",
    ),
    (FONT, "a TrueType font for report charts (DejaVu Sans)"),
];

/// The "Environment" section of `joulebench --help`.
pub fn help() -> String {
    let width = VARIABLES
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Environment:\n");
    for (name, what) in VARIABLES {
        out.push_str(&format!("  {name:width$}  {what}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No other `JOULEBENCH_` name is read anywhere in the sources (outside tests, and
    /// besides the two shim paths the build script sets at compile time).
    #[test]
    fn every_variable_read_is_declared_here() {
        let build_time = ["JOULEBENCH_AOTI_SHIM", "JOULEBENCH_CUDA_GRAPH_SHIM"];
        let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rust = path.extension().is_some_and(|e| e == "rs");
                if !rust || path.ends_with("environment.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for piece in code.split("\"JOULEBENCH_").skip(1) {
                    let name = format!("JOULEBENCH_{}", piece.split('"').next().unwrap());
                    assert!(
                        build_time.contains(&name.as_str()),
                        "{}: {name} is read there but not declared in environment.rs",
                        path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn help_lists_every_variable_once() {
        let help = help();
        for (name, _) in VARIABLES {
            assert_eq!(help.matches(name).count(), 1, "{name}");
        }
    }
}
