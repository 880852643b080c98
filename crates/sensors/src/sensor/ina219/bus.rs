//! The I2C bus an INA219 is read over: one shared handle, its faults described the same way
//! whichever bus they came from (errnos from `libc`), and a Linux bus opened by path.

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
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
use libc::{EBUSY, EOPNOTSUPP, EREMOTEIO, ETIMEDOUT};

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
             (sudo usermod -aG i2c $USER) and log in again, or run joulebench as root"
        ),
        _ => anyhow!("cannot use {path} as an I2C bus: {e}"),
    }
}

/// The bus number N of `/dev/i2c-N` (or of a link to it), which sysfs and i2c-tools name it by.
pub fn bus_number(bus: &str) -> Option<u32> {
    let number = |path: &Path| {
        let name = path.file_name()?.to_str()?;
        name.strip_prefix("i2c-")?.parse().ok()
    };
    let path = Path::new(bus);
    number(path).or_else(|| number(&path.canonicalize().ok()?))
}

/// The kernel driver bound to the chip at `address` on bus `number`, as sysfs under `sysfs`
/// names it (`bus/i2c/devices/N-00AA/driver`, a link to the driver's folder).
pub fn bound_driver(sysfs: &Path, number: u32, address: u8) -> Option<String> {
    let link: PathBuf = sysfs
        .join("bus/i2c/devices")
        .join(format!("{number}-{address:04x}"))
        .join("driver");
    let target = std::fs::read_link(link).ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

/// i2c-dev refuses an address a kernel driver has bound (EBUSY from I2C_SLAVE): one line naming
/// the driver, where sysfs under `sysfs` tells it, and how to release the chip.
pub(super) fn busy_error(settings: &Ina219Settings, sysfs: &Path) -> anyhow::Error {
    let (address, bus) = (settings.address, &settings.bus);
    let number = bus_number(bus);
    let (device, which) = match number {
        Some(n) => (format!("{n}-{address:04x}"), String::new()),
        None => (
            format!("N-{address:04x}"),
            format!(", N the number of {bus}'s adapter"),
        ),
    };
    let driver = number.and_then(|n| bound_driver(sysfs, n, address));
    let (who, unbind) = match &driver {
        Some(name) => (
            format!("the kernel's {name} driver has the chip at this address"),
            format!("/sys/bus/i2c/drivers/{name}/unbind"),
        ),
        None => (
            "a kernel driver (ina2xx, for an INA219) has the chip at this address".to_string(),
            format!("/sys/bus/i2c/devices/{device}/driver/unbind"),
        ),
    };
    let hwmon = match driver.as_deref() {
        Some("ina2xx") => "; or measure through ina2xx instead, with a `hwmon` sensor",
        _ => "",
    };
    anyhow!(
        "INA219 at {address:#04x} on {bus}: {who}, and i2c-dev refuses an address a driver holds \
         (EBUSY): release it as root with `echo {device} > {unbind}`{which} (until the next \
         boot; to keep it free, drop the device-tree overlay or new_device line that declares \
         it){hwmon}"
    )
}

/// Why the chip's address could not be claimed on the bus (i2c-dev's I2C_SLAVE), in one line.
pub(super) fn claim_error(
    settings: &Ina219Settings,
    e: LinuxI2CError,
    sysfs: &Path,
) -> anyhow::Error {
    let e = I2CError::from(e);
    let fault = describe_linux(&e);
    if fault.errno == Some(EBUSY) {
        return busy_error(settings, sysfs);
    }
    bus_error(settings, fault)
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
