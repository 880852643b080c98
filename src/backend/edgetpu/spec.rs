//! The `edgetpu_device` key of an `edgetpu` backend: which Edge TPU it uses.

use serde::{Deserialize, Serialize};

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
