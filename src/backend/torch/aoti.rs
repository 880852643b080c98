//! AOTInductor packages for the torch backend: which one a backend needs, where it is cached,
//! and how it is made.
//!
//! A package is the network compiled by Inductor into fused kernels for one device, precision,
//! batch and memory layout of one set of weights, by one libtorch; the backend runs it through
//! the shim ([`super::shim::AotiPackage`]). Compiling takes Python (`torch.export` and Inductor)
//! and time (about 25 s for the CPU on a 2-core VM, 94 s measured on an H200), so it is done
//! once by `analysis/reference/aoti_export.py` in the project's torch venv, and the package is
//! kept outside the clone, in `$JOULEBENCH_CACHE/aoti/` (default `~/.cache/joulebench/aoti/`),
//! named by everything it depends on.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::rig::{Device, Precision};

/// Everything a package depends on: a package differing in any of these is another file.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageKey {
    /// The GPU's name (NVML's) or the CPU's (`/proc/cpuinfo`): kernels are compiled for it.
    pub hardware: String,
    pub device: Device,
    pub precision: Precision,
    pub batch: usize,
    pub channels_last: bool,
    /// CPU threads: Inductor writes the count into the CPU kernels it generates. Not part of a
    /// CUDA package's name.
    pub threads: u32,
    /// The libtorch that runs it ("2.11.0+cu130"): packages are not portable across versions.
    pub libtorch: String,
    /// SHA-256 of the float weights' tensors ([`weights_digest`]).
    pub weights_sha256: String,
}

impl PackageKey {
    /// The package's file name: readable, and unique for each key.
    pub fn file_name(&self) -> String {
        let device = match self.device {
            Device::Cpu => format!("cpu-t{}", self.threads),
            // The index is part of it because the package is loaded onto that device.
            Device::Cuda(n) => format!("cuda{n}"),
        };
        let name = format!(
            "{}-{device}-{}-b{}-{}-torch{}-{}",
            self.hardware,
            self.precision.as_str(),
            self.batch,
            if self.channels_last { "nhwc" } else { "nchw" },
            self.libtorch,
            &self.weights_sha256[..self.weights_sha256.len().min(16)],
        );
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.pt2")
    }
}

/// The name of the hardware a package for `device` is compiled for.
pub fn hardware_name(device: Device) -> Result<String> {
    match device {
        Device::Cpu => {
            let cpu = crate::machine::system::SystemInfo::read().cpu;
            if cpu.is_empty() {
                bail!("cannot tell this CPU's model from /proc/cpuinfo");
            }
            Ok(cpu)
        }
        // NVML's order is the PCI bus order; CUDA's may differ on a machine with unlike GPUs.
        // A package compiled for another GPU then fails to load or to match the eager scores,
        // and is compiled again (see `TorchBackend::use_aoti`).
        Device::Cuda(n) => crate::sensor::nvml::device_name(n)
            .with_context(|| format!("cannot name GPU cuda:{n} for its package")),
    }
}

/// SHA-256 over the tensors of a safetensors file (names, shapes and data, in name order):
/// what a package is compiled from. Not the file's own hash, whose metadata may be written in
/// any order, so that equal weights converted twice name one package.
pub fn weights_digest(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let mut names = tensors.names();
    names.sort();
    let mut hash = Sha256::new();
    for name in names {
        let tensor = tensors.tensor(name)?;
        hash.update(name.as_bytes());
        hash.update(format!("{:?}{:?}", tensor.dtype(), tensor.shape()).as_bytes());
        hash.update(tensor.data());
    }
    Ok(crate::models::hex(&hash.finalize()))
}

/// Where packages are kept.
pub fn cache_dir() -> PathBuf {
    crate::cache_dir().join("aoti")
}

/// How a package came to be there, for the engine note.
#[derive(Debug, Clone, PartialEq)]
pub enum Provenance {
    Cached,
    /// Compiled by this run, in this many seconds.
    Exported(f64),
}

/// What compiles a package: a Python with torch and the export script.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub python: PathBuf,
    pub script: PathBuf,
}

impl Exporter {
    /// The project's: `$JOULEBENCH_TORCH_PYTHON`, else the torch venv `make setup` creates;
    /// `analysis/reference/aoti_export.py` (or in `$JOULEBENCH_REFERENCE_DIR`).
    pub fn project() -> Result<Self> {
        Ok(Self {
            python: crate::project::python_path(
                None,
                crate::environment::TORCH_PYTHON,
                "torch-venv",
            ),
            script: crate::project::find(
                "analysis/reference",
                "aoti_export.py",
                crate::environment::REFERENCE_DIR,
            )?,
        })
    }

    /// The package for `key` in `dir`: the cached file, or one compiled now from `weights`
    /// when there is none (or `fresh` asks for a new one, replacing a package that failed).
    pub fn package(
        &self,
        dir: &Path,
        key: &PackageKey,
        weights: &Path,
        fresh: bool,
    ) -> Result<(PathBuf, Provenance)> {
        let path = dir.join(key.file_name());
        if path.is_file() && !fresh {
            return Ok((path, Provenance::Cached));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let seconds = self.export(key, weights, &path)?;
        Ok((path, Provenance::Exported(seconds)))
    }

    /// Runs the script for `key` into `out`; returns how long it took.
    fn export(&self, key: &PackageKey, weights: &Path, out: &Path) -> Result<f64> {
        let Self { python, script } = self;
        eprintln!(
            "joulebench: compiling an AOTInductor package for {} {} {} batch {} (once per machine; \
             tens of seconds to minutes) into {}",
            key.hardware,
            key.device,
            key.precision.as_str(),
            key.batch,
            out.display()
        );
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg("--weights")
            .arg(weights)
            .arg("--out")
            .arg(out)
            .args(["--device", &key.device.to_string()])
            .args(["--precision", key.precision.as_str()])
            .args(["--batch", &key.batch.to_string()])
            .args(["--threads", &key.threads.to_string()])
            // Inductor's own compile cache, beside the packages rather than in /tmp.
            .env("TORCHINDUCTOR_CACHE_DIR", cache_dir().join("inductor"));
        if key.channels_last {
            cmd.arg("--channels-last");
        }
        let start = std::time::Instant::now();
        let output = cmd.output().with_context(|| {
            format!(
                "cannot start {} (`make setup` creates the torch venv)",
                python.display()
            )
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            bail!(
                "{} {} failed ({}): {last}",
                python.display(),
                script.display(),
                output.status
            );
        }
        if !out.is_file() {
            bail!("{} wrote no {}", script.display(), out.display());
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PackageKey {
        PackageKey {
            hardware: "NVIDIA H200".into(),
            device: Device::Cuda(0),
            precision: Precision::Fp16,
            batch: 64,
            channels_last: true,
            threads: 1,
            libtorch: "2.11.0+cu130".into(),
            weights_sha256: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    #[test]
    fn a_package_name_says_what_it_was_compiled_for_and_differs_with_each_setting() {
        assert_eq!(
            key().file_name(),
            "NVIDIA_H200-cuda0-fp16-b64-nhwc-torch2.11.0+cu130-0123456789abcdef.pt2"
        );
        let variants = [
            PackageKey {
                hardware: "NVIDIA H100 80GB HBM3".into(),
                ..key()
            },
            PackageKey {
                device: Device::Cuda(1),
                ..key()
            },
            PackageKey {
                precision: Precision::Fp32,
                ..key()
            },
            PackageKey { batch: 8, ..key() },
            PackageKey {
                channels_last: false,
                ..key()
            },
            PackageKey {
                libtorch: "2.12.0+cu130".into(),
                ..key()
            },
            PackageKey {
                weights_sha256: "fedcba9876543210".into(),
                ..key()
            },
        ];
        let mut names: Vec<String> = variants.iter().map(PackageKey::file_name).collect();
        names.push(key().file_name());
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
        // A CPU's name has characters no file name should carry.
        let cpu = PackageKey {
            hardware: "AMD EPYC 7B13 64-Core Processor / rev 1".into(),
            device: Device::Cpu,
            ..key()
        };
        assert!(!cpu.file_name().contains(['/', ' ']), "{}", cpu.file_name());
        // On the CPU the thread count is compiled in, so it names the package.
        let two = PackageKey {
            threads: 2,
            ..cpu.clone()
        };
        assert_ne!(cpu.file_name(), two.file_name());
        assert!(two.file_name().contains("-cpu-t2-"), "{}", two.file_name());
    }

    #[test]
    fn the_weights_digest_is_of_the_tensors_not_of_the_metadata() {
        use safetensors::{serialize, tensor::TensorView, Dtype};
        use std::collections::HashMap;
        let dir = tempfile::tempdir().unwrap();
        let data = [0u8, 0, 128, 63, 0, 0, 0, 64];
        let write = |name: &str, meta: &[(&str, &str)], values: &[u8]| {
            let view = TensorView::new(Dtype::F32, vec![2], values).unwrap();
            let meta: HashMap<String, String> = meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let path = dir.path().join(name);
            std::fs::write(&path, serialize([("w", view)], Some(meta)).unwrap()).unwrap();
            path
        };
        let a = write("a", &[("made", "first")], &data);
        let b = write("b", &[("made", "second"), ("by", "another run")], &data);
        let c = write("c", &[("made", "first")], &[0, 0, 128, 63, 0, 0, 64, 64]);
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(weights_digest(&a).unwrap(), weights_digest(&b).unwrap());
        assert_ne!(weights_digest(&a).unwrap(), weights_digest(&c).unwrap());
        assert!(weights_digest(&dir.path().join("missing")).is_err());
    }

    /// An exporter whose "Python" is the shell running `script`.
    fn shell(dir: &Path, script: &str) -> Exporter {
        let path = dir.join("export.sh");
        std::fs::write(&path, script).unwrap();
        Exporter {
            python: "/bin/sh".into(),
            script: path,
        }
    }

    #[test]
    fn a_cached_package_is_used_as_it_is_and_a_fresh_one_is_compiled_into_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("aoti");
        // Writes the file after --out, as the real script does.
        let exporter = shell(
            dir.path(),
            r#"while [ "$1" != --out ]; do shift; done; echo compiled > "$2""#,
        );
        let (path, how) = exporter
            .package(&cache, &key(), Path::new("w"), false)
            .unwrap();
        assert_eq!(path, cache.join(key().file_name()));
        assert!(
            matches!(how, Provenance::Exported(s) if s >= 0.0),
            "{how:?}"
        );
        std::fs::write(&path, "kept").unwrap();
        let (again, how) = exporter
            .package(&cache, &key(), Path::new("w"), false)
            .unwrap();
        assert_eq!((&again, how), (&path, Provenance::Cached));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept");
        let (_, how) = exporter
            .package(&cache, &key(), Path::new("w"), true)
            .unwrap();
        assert!(matches!(how, Provenance::Exported(_)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "compiled\n");
    }

    #[test]
    fn a_failed_export_says_why_in_one_line_and_leaves_no_package() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("aoti");
        let failing = shell(
            dir.path(),
            "echo 'Traceback (most recent call last):' >&2; echo 'RuntimeError: no C++ compiler' >&2; exit 1",
        );
        let e = format!(
            "{:#}",
            failing
                .package(&cache, &key(), Path::new("w"), false)
                .unwrap_err()
        );
        assert!(e.ends_with("RuntimeError: no C++ compiler"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(!cache.join(key().file_name()).exists());
        // Exiting 0 without writing the package is a failure too.
        let silent = shell(dir.path(), "exit 0");
        let e = format!(
            "{:#}",
            silent
                .package(&cache, &key(), Path::new("w"), false)
                .unwrap_err()
        );
        assert!(e.contains("wrote no"), "{e}");
    }
}
