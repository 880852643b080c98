//! The settings of an `edgetpu` backend: a model compiled by `edgetpu_compiler`, on a Coral
//! Edge TPU, and which Edge TPU it uses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A `[[backends]]` table with `kind = "edgetpu"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgetpuSpec {
    /// A model name from `models/manifest.toml` (an `_edgetpu.tflite`), or a path to one.
    pub model: String,
    /// An image name from the manifest, or a path to a BMP, JPEG or PNG file.
    pub image: String,
    /// CPU threads of the TF Lite interpreter (for any operators left on the CPU).
    #[serde(default = "super::default_threads")]
    pub threads: u32,
    /// A label file naming the model's classes, one per line, line i for output i (a path);
    /// by default the manifest's, for a model it knows. A classifier's top-1 is reported and
    /// checked only with one.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// Path of `libedgetpu.so.1`; by default $JOULEBENCH_EDGETPU_LIB, else the system's
    /// library search.
    #[serde(default)]
    pub edgetpu_lib: Option<PathBuf>,
    /// Path of `libtensorflowlite_c.so`; by default $JOULEBENCH_TFLITE_C_LIB, else the
    /// system's library search.
    #[serde(default)]
    pub tflite_c_lib: Option<PathBuf>,
    /// "usb", "usb:N", "pci" or "pci:N"; by default the first Edge TPU found.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub edgetpu_device: Option<DeviceChoice>,
}

impl Default for EdgetpuSpec {
    fn default() -> Self {
        Self {
            model: String::new(),
            image: String::new(),
            threads: super::default_threads(),
            labels: None,
            edgetpu_lib: None,
            tflite_c_lib: None,
            edgetpu_device: None,
        }
    }
}

impl EdgetpuSpec {
    pub(super) fn validate(&self) -> Result<(), String> {
        for (key, path) in [
            ("edgetpu_lib", &self.edgetpu_lib),
            ("tflite_c_lib", &self.tflite_c_lib),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(format!(
                    "{key} is empty: give a path, or leave it out for the default"
                ));
            }
        }
        Ok(())
    }
}

/// Which Edge TPU a backend uses (`edgetpu_device`): the N-th of a type in the order
/// libedgetpu lists them, or the first of a type, or (absent) the first found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceChoice {
    pub bus: Bus,
    /// Index among the devices on that bus; None: the first.
    pub index: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Usb,
    Pci,
}

impl Bus {
    pub fn as_str(self) -> &'static str {
        match self {
            Bus::Usb => "usb",
            Bus::Pci => "pci",
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (bus, index) = match s.split_once(':') {
            Some((bus, n)) => (bus, Some(n)),
            None => (s, None),
        };
        let bus = match bus {
            "usb" => Bus::Usb,
            "pci" => Bus::Pci,
            _ => return Err(bad_device(s)),
        };
        let index = match index {
            Some(n) => Some(n.parse().map_err(|_| bad_device(s))?),
            None => None,
        };
        Ok(DeviceChoice { bus, index })
    }
}

fn bad_device(s: &str) -> String {
    format!("edgetpu_device {s:?} is not \"usb\", \"usb:N\", \"pci\" or \"pci:N\"")
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(n) => write!(f, "{}:{n}", self.bus.as_str()),
            None => f.write_str(self.bus.as_str()),
        }
    }
}
