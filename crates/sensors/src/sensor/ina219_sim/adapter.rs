//! The Linux I2C adapter the chip sits behind: which transfers i2c-dev and the chosen
//! adapter driver refuse, with which errno, and the time a transfer takes on the wire.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource, Operation};

use super::super::ina219::{BusFault, Functionality, I2cAdapter, SHAPE_REFUSED};
use super::*;

/// i2c-dev's I2C_RDWR_IOCTL_MAX_MSGS: more messages in one I2C_RDWR is EINVAL.
pub const RDWR_MAX_MSGS: usize = 42;
/// i2c-dev refuses a message longer than this (EINVAL).
pub(super) const RDWR_MAX_LEN: usize = 8192;
/// i2c-tegra's quirks: reads of at most 4 KiB, writes of 4 KiB less its 12-byte packet header.
pub(super) const TEGRA_MAX_READ: usize = 4096;
pub(super) const TEGRA_MAX_WRITE: usize = 4096 - 12;

/// How long a hung transfer takes to fail by default: the i2c core gives an adapter that sets
/// no timeout of its own HZ (1 s), which i2c-bcm2835 then waits for.
pub const DEFAULT_TIMEOUT_S: f64 = 1.0;

/// A transfer that begins less than this after the previous one ended starts exactly at that
/// end. This absorbs the model's own inaccuracy, not bus time: the call sleeps until its
/// transfer's end on the run clock, and a loaded machine's sleep overshoots by tens of
/// microseconds, which back-to-back register reads would otherwise add up into a slower bus
/// than the one modelled.
pub(super) const BACK_TO_BACK_S: f64 = 0.2e-3;

/// The bus a simulated chip sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimBus {
    /// Which Linux adapter driver decides what reaches the wire.
    pub adapter: I2cAdapter,
    /// SCL in kHz; `None`: transfers take no time (register-level tests only; an
    /// `ina219-sim` rig always has a timed bus).
    pub khz: Option<u32>,
}

impl SimBus {
    /// A bus whose transfers take their time on the wire at `khz`.
    pub fn timed(adapter: I2cAdapter, khz: u32) -> Self {
        Self {
            adapter,
            khz: Some(khz),
        }
    }

    /// Permissive and timeless: for tests of the registers alone.
    pub const INSTANT: SimBus = SimBus {
        adapter: I2cAdapter::Permissive,
        khz: None,
    };

    /// Whether consecutive operations in one direction go out as one message (I2C_M_NOSTART,
    /// which i2cdev sets on them, as embedded-hal's contract asks). i2c-bcm2835 ignores the
    /// flag and starts every message again with its address.
    pub(super) fn joins_messages(self) -> bool {
        self.adapter != I2cAdapter::Bcm2835
    }

    /// What the adapter tells I2C_FUNCS: plain I2C and the SMBus transfers the i2c core
    /// emulates with it, or, on an SMBus-only controller, i2c-stub's default set.
    pub fn functionality(self) -> Functionality {
        Functionality(match self.adapter {
            I2cAdapter::SmbusOnly => Functionality::I2C_STUB,
            _ => Functionality::I2C | Functionality::SMBUS_EMUL,
        })
    }

    /// Whether the adapter's driver runs SMBus transfers itself; otherwise the i2c core sends
    /// them as I2C messages (i2c_smbus_xfer_emulated), under the adapter's rules.
    pub(super) fn native_smbus(self) -> bool {
        self.adapter == I2cAdapter::SmbusOnly
    }

    /// The errno of a NACK: ENXIO from an SMBus controller (i2c-i801), EREMOTEIO from the I2C
    /// adapters modelled here.
    pub(super) fn nack_errno(self) -> i32 {
        if self.native_smbus() {
            errno::ENXIO
        } else {
            errno::EREMOTEIO
        }
    }

    /// What the kernel refuses before anything reaches the bus: i2c-dev's limits, then the
    /// adapter's quirks (checked by the i2c core) and its driver's own rules.
    pub(super) fn check_shape(self, ops: &[Operation<'_>]) -> Result<(), SimI2cError> {
        let len = |op: &Operation<'_>| match op {
            Operation::Write(bytes) => bytes.len(),
            Operation::Read(buf) => buf.len(),
        };
        let is_read = |op: &Operation<'_>| matches!(op, Operation::Read(_));
        if ops.is_empty()
            || ops.len() > RDWR_MAX_MSGS
            || ops.iter().any(|op| len(op) > RDWR_MAX_LEN)
        {
            return Err(SimI2cError::new(errno::EINVAL));
        }
        let refused = match self.adapter {
            // i2c-bcm2835: "only one read message supported, has to be last".
            I2cAdapter::Bcm2835 => ops[..ops.len() - 1].iter().any(is_read),
            // I2C_AQ_NO_ZERO_LEN, max_read_len, max_write_len.
            I2cAdapter::Tegra => ops.iter().any(|op| {
                let max = if is_read(op) {
                    TEGRA_MAX_READ
                } else {
                    TEGRA_MAX_WRITE
                };
                len(op) == 0 || len(op) > max
            }),
            I2cAdapter::Permissive => false,
            // No master_xfer: i2c_transfer refuses every I2C_RDWR.
            I2cAdapter::SmbusOnly => true,
        };
        if refused {
            return Err(SimI2cError::new(errno::EOPNOTSUPP));
        }
        Ok(())
    }

    /// Seconds per SCL cycle (0 on an instant bus).
    pub(super) fn cycle_s(self) -> f64 {
        self.khz.map_or(0.0, |khz| 1e-3 / f64::from(khz))
    }
}

/// The wire that the chips on one simulated bus share: one transfer at a time, as the adapter
/// lock does on Linux. A transfer that arrives while another is on the wire starts when it
/// ends, so two sensors on one bus slow each other down exactly as on a board.
#[derive(Debug, Clone)]
pub struct SimWire(Arc<Mutex<f64>>);

impl SimWire {
    /// A new, idle wire.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(f64::NEG_INFINITY)))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, f64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for SimWire {
    fn default() -> Self {
        Self::new()
    }
}

/// The simulated buses of a run, by name (an `ina219-sim` sensor's `i2c_bus`): chips that name
/// the same bus share its wire.
#[derive(Debug, Clone, Default)]
pub struct SimBuses(Arc<Mutex<std::collections::HashMap<String, SimWire>>>);

impl SimBuses {
    /// The wire of the bus called `name`, created on first use.
    pub fn wire(&self, name: &str) -> SimWire {
        let mut buses = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buses.entry(name.to_string()).or_default().clone()
    }
}

/// What an `ina219-sim` sensor's bus is called when its table names none.
pub const DEFAULT_SIM_BUS: &str = "sim-i2c";

impl fmt::Display for SimBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.khz {
            Some(khz) => write!(f, "a {} bus at {khz} kHz", self.adapter.as_str()),
            None => write!(f, "an untimed {} bus", self.adapter.as_str()),
        }
    }
}

/// A failed transfer, as Linux reports it: the errno, and the `embedded_hal` kind the driver
/// sees for it (what linux-embedded-hal gives, with EREMOTEIO read as a NACK, as the driver's
/// `describe_linux` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimI2cError {
    kind: ErrorKind,
    errno: i32,
    /// A transaction the driver's SMBus path has no SMBus transfer for ([`SHAPE_REFUSED`]):
    /// refused before it reaches the adapter, with no errno of Linux's.
    shape: bool,
}

impl SimI2cError {
    pub fn new(errno: i32) -> Self {
        let kind = match errno {
            errno::EREMOTEIO => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown),
            errno::ENXIO => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
            errno::EINVAL => ErrorKind::Bus,
            _ => ErrorKind::Other,
        };
        Self {
            kind,
            errno,
            shape: false,
        }
    }

    /// What the driver's SMBus path refuses, as it refuses it on Linux.
    pub fn unsupported_shape() -> Self {
        Self {
            kind: ErrorKind::Other,
            errno: errno::EOPNOTSUPP,
            shape: true,
        }
    }

    pub fn errno(&self) -> i32 {
        self.errno
    }
}

/// As linux-embedded-hal prints an errno (nix's `Errno`): "EREMOTEIO: Remote I/O error".
impl fmt::Display for SimI2cError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shape {
            return f.write_str(SHAPE_REFUSED);
        }
        let (name, text) = match self.errno {
            errno::EINVAL => ("EINVAL", "Invalid argument"),
            errno::ENXIO => ("ENXIO", "No such device or address"),
            errno::EOPNOTSUPP => (
                "EOPNOTSUPP",
                "Operation not supported on transport endpoint",
            ),
            errno::ETIMEDOUT => ("ETIMEDOUT", "Connection timed out"),
            errno::EREMOTEIO => ("EREMOTEIO", "Remote I/O error"),
            n => return write!(f, "errno {n}"),
        };
        write!(f, "{name}: {text}")
    }
}

impl std::error::Error for SimI2cError {}

impl embedded_hal::i2c::Error for SimI2cError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// How the driver describes the simulated bus's errors: as it describes Linux's.
pub fn describe_sim(e: &SimI2cError) -> BusFault {
    BusFault {
        kind: e.kind,
        errno: (!e.shape).then_some(e.errno),
        text: e.to_string(),
    }
}
