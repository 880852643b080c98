//! The I2C bus an INA219 is read over: one shared handle, its faults described the same way
//! whichever bus they came from (errnos from `libc`), and a Linux bus opened by path.

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{anyhow, Result};
use embedded_hal::i2c::{Error as _, ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use linux_embedded_hal::i2cdev::linux::LinuxI2CError;
use linux_embedded_hal::I2CError;

use super::*;

/// A bus error as the driver reports it, the same way whichever bus it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusFault {
    pub kind: ErrorKind,
    /// The Linux errno, where the bus has one.
    pub errno: Option<i32>,
    /// What the bus says, e.g. "EREMOTEIO: Remote I/O error".
    pub text: String,
}

/// How a bus's errors read.
pub type Describe<E> = fn(&E) -> BusFault;

/// One I2C bus, shared: the `ina219` crate owns one handle, and the driver keeps another for
/// the registers the crate gives no public read of (calibration, raw configuration).
pub struct SharedBus<I2C>(Arc<Mutex<I2C>>);

impl<I2C> SharedBus<I2C> {
    pub fn new(i2c: I2C) -> Self {
        Self(Arc::new(Mutex::new(i2c)))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, I2C> {
        // A panic elsewhere mid-transfer leaves nothing half-written on our side.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<I2C> Clone for SharedBus<I2C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<I2C: I2c> ErrorType for SharedBus<I2C> {
    type Error = I2C::Error;
}

impl<I2C: I2c> I2c for SharedBus<I2C> {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        self.lock().transaction(address, operations)
    }
}

/// Linux errnos the driver explains.
use libc::{EOPNOTSUPP, EREMOTEIO, ETIMEDOUT};

/// What went wrong on the bus, in words, with the bus's own text in brackets.
pub(super) fn fault_text(fault: &BusFault) -> String {
    let BusFault { kind, errno, text } = fault;
    match (kind, errno) {
        (ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address), _) => {
            format!("no acknowledge on the address ({text})")
        }
        (ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data), _) => {
            format!("no acknowledge on a data byte ({text})")
        }
        (ErrorKind::NoAcknowledge(_), _) => format!("no acknowledge ({text})"),
        (_, Some(ETIMEDOUT)) => format!("bus timed out ({text})"),
        (_, Some(EOPNOTSUPP)) => format!("the I2C adapter refused the transfer ({text})"),
        (ErrorKind::Bus, _) => format!("bus error ({text})"),
        (ErrorKind::ArbitrationLoss, _) => format!("arbitration lost ({text})"),
        _ => text.clone(),
    }
}

/// One line naming the chip, its bus and what went wrong, e.g.
/// "INA219 at 0x40 on /dev/i2c-1: no acknowledge (EREMOTEIO: Remote I/O error)".
pub(super) fn bus_error(settings: &Ina219Settings, fault: BusFault) -> anyhow::Error {
    anyhow!(
        "INA219 at {:#04x} on {}: {}",
        settings.address,
        settings.bus,
        fault_text(&fault)
    )
}

/// What to do about a bus that will not open, in one line.
pub(super) fn open_error(path: &Path, e: LinuxI2CError) -> anyhow::Error {
    let path = path.display();
    let e = io::Error::from(e);
    match e.kind() {
        io::ErrorKind::NotFound => anyhow!(
            "I2C bus {path} not found: enable I2C (raspi-config → Interface Options → I2C, \
             or dtparam=i2c_arm=on) and check the wiring"
        ),
        io::ErrorKind::PermissionDenied => anyhow!(
            "no permission to open I2C bus {path}: add your user to the i2c group \
             (sudo usermod -aG i2c $USER), then log in again"
        ),
        _ => anyhow!("cannot use {path} as an I2C bus: {e}"),
    }
}

/// Linux I2C errors. Several bus drivers (the Raspberry Pi's i2c-bcm2835 among them) report a
/// NACK as EREMOTEIO, which linux-embedded-hal leaves as `Other`; call it a NACK.
pub(super) fn describe_linux(e: &I2CError) -> BusFault {
    let errno = match e.inner() {
        LinuxI2CError::Errno(n) => Some(*n),
        LinuxI2CError::Io(io) => io.raw_os_error(),
    };
    let kind = match errno {
        Some(EREMOTEIO) => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown),
        _ => e.kind(),
    };
    BusFault {
        kind,
        errno,
        text: e.to_string(),
    }
}
