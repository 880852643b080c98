//! SMBus-only I2C adapters: a PC's `i2c-i801` and `i2c-piix4`, the kernel's `i2c-stub`, and
//! any other whose Linux driver implements SMBus transfers but no plain I2C. On them every
//! I2C_RDWR ioctl (what linux-embedded-hal's `I2cdev` sends) fails with EOPNOTSUPP, while the
//! kernel's own ina2xx driver works: it reads and writes the chip's registers with SMBus word
//! transfers (`i2c_smbus_read_word_swapped`). So the bus is opened through [`AdapterBus`]: it
//! asks the adapter what it offers (I2C_FUNCS) and, where plain I2C is missing, carries each of
//! the driver's register reads and writes as one SMBus word transfer.
//!
//! The register model runs the same code: [`SmbusWord`] is what a bus must offer for it, and
//! both `I2cdev` and the model's `SimulatedIna219` implement it.

use std::io;
use std::os::fd::AsRawFd;

use anyhow::{anyhow, Result};
use embedded_hal::i2c::{ErrorType, I2c, Operation};
use libc::c_ulong;
use linux_embedded_hal::i2cdev::core::I2CDevice;
use linux_embedded_hal::i2cdev::linux::{LinuxI2CDevice, LinuxI2CError};
use linux_embedded_hal::{I2CError, I2cdev};

use super::i2c_funcs;
use super::*;

/// An adapter's functionality mask (the I2C_FUNCS ioctl), its bits as
/// include/uapi/linux/i2c.h defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Functionality(pub c_ulong);

impl Functionality {
    /// I2C_FUNC_I2C: plain I2C messages (I2C_RDWR).
    pub const I2C: c_ulong = 0x0000_0001;
    /// I2C_FUNC_SMBUS_READ_WORD_DATA.
    pub const SMBUS_READ_WORD_DATA: c_ulong = 0x0020_0000;
    /// I2C_FUNC_SMBUS_WRITE_WORD_DATA.
    pub const SMBUS_WRITE_WORD_DATA: c_ulong = 0x0040_0000;
    /// I2C_FUNC_SMBUS_EMUL: the SMBus transfers the i2c core emulates with I2C messages on an
    /// adapter with plain I2C (quick, byte, byte data, word data, process call, block write, I2C
    /// block, PEC), which i2c-bcm2835 and i2c-tegra declare beside I2C_FUNC_I2C.
    pub const SMBUS_EMUL: c_ulong = 0x0EFF_0008;
    /// What i2c-stub offers by default (STUB_FUNC_DEFAULT: quick, byte, byte data, word data,
    /// I2C block): SMBus only.
    pub const I2C_STUB: c_ulong = 0x0C7F_0000;

    pub fn has(self, bits: c_ulong) -> bool {
        self.0 & bits == bits
    }
}

/// How the driver's register reads and writes reach the chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfers {
    /// One I2C_RDWR per register access: the pointer written, then 2 bytes read; or the pointer
    /// and 2 bytes written.
    I2c,
    /// One SMBus word transfer per register access: the adapter has no plain I2C.
    SmbusWords,
}

impl Transfers {
    /// Plain I2C wherever the adapter has it, else SMBus words; `Err` lists the functions the
    /// adapter lacks for either.
    pub fn choose(funcs: Functionality) -> Result<Self, Vec<&'static str>> {
        if funcs.has(Functionality::I2C) {
            return Ok(Self::I2c);
        }
        let missing: Vec<_> = [
            (
                Functionality::SMBUS_READ_WORD_DATA,
                "I2C_FUNC_SMBUS_READ_WORD_DATA",
            ),
            (
                Functionality::SMBUS_WRITE_WORD_DATA,
                "I2C_FUNC_SMBUS_WRITE_WORD_DATA",
            ),
        ]
        .into_iter()
        .filter(|(bit, _)| !funcs.has(*bit))
        .map(|(_, name)| name)
        .collect();
        if missing.is_empty() {
            return Ok(Self::SmbusWords);
        }
        Err([vec!["I2C_FUNC_I2C"], missing].concat())
    }
}

/// What a bus offers the driver beyond plain I2C: its adapter's functionality and SMBus word
/// transfers. An SMBus word goes low byte first, the INA219's registers most significant byte
/// first: [`AdapterBus`] swaps them, as the kernel's `i2c_smbus_read_word_swapped` does.
pub trait SmbusWord: I2c {
    /// The adapter's functionality mask (I2C_FUNCS).
    fn functionality(&mut self) -> Result<Functionality, Self::Error>;
    /// SMBus read word: START, address, `command`, repeated START, address, two bytes read
    /// (the first the word's low byte), STOP.
    fn smbus_read_word(&mut self, address: u8, command: u8) -> Result<u16, Self::Error>;
    /// SMBus write word: START, address, `command`, the word's low byte, its high byte, STOP.
    fn smbus_write_word(&mut self, address: u8, command: u8, word: u16) -> Result<(), Self::Error>;
    /// The error for a transaction no SMBus word transfer carries ([`SHAPE_REFUSED`]).
    fn unsupported_shape() -> Self::Error;
}

/// Why [`AdapterBus`] refuses a transaction on an SMBus-only adapter.
pub const SHAPE_REFUSED: &str = "an SMBus-only adapter carries an INA219's register read (the \
     register written, then 2 bytes read) or write (the register and 2 bytes) as an SMBus word, \
     and no other transfer";

/// A bus with the transfers its adapter allows: plain I2C passed through unchanged, or each
/// register access as an SMBus word transfer.
pub struct AdapterBus<B> {
    bus: B,
    transfers: Transfers,
}

impl<B: SmbusWord> AdapterBus<B> {
    /// Asks the adapter what it offers and chooses the transfers; one line naming the chip and
    /// what is missing where the adapter has neither plain I2C nor SMBus word transfers.
    pub fn open(
        mut bus: B,
        settings: &Ina219Settings,
        describe: Describe<B::Error>,
    ) -> Result<Self> {
        let funcs = bus
            .functionality()
            .map_err(|e| bus_error(settings, describe(&e)))?;
        let transfers = Transfers::choose(funcs).map_err(|missing| {
            let list = match bus_number(&settings.bus) {
                Some(n) => format!("; `i2cdetect -F {n}` lists what it offers"),
                None => String::new(),
            };
            anyhow!(
                "INA219 at {:#04x} on {}: its I2C adapter offers neither plain I2C nor the SMBus \
                 word reads and writes the driver needs: it lacks {} (functionality {:#010x}{list})",
                settings.address,
                settings.bus,
                missing.join(" and "),
                funcs.0
            )
        })?;
        Ok(Self { bus, transfers })
    }

    pub fn transfers(&self) -> Transfers {
        self.transfers
    }
}

impl<B: SmbusWord> ErrorType for AdapterBus<B> {
    type Error = B::Error;
}

impl<B: SmbusWord> I2c for AdapterBus<B> {
    /// On an SMBus-only adapter, exactly the two shapes the driver and the `ina219` crate
    /// issue (with `no_transaction`): a register read and a register write.
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        if self.transfers == Transfers::I2c {
            return self.bus.transaction(address, operations);
        }
        match operations {
            [Operation::Write([register]), Operation::Read(buf)] if buf.len() == 2 => {
                // The chip's MSB comes first on the wire, which SMBus takes for the low byte.
                let word = self.bus.smbus_read_word(address, *register)?;
                buf.copy_from_slice(&word.to_le_bytes());
                Ok(())
            }
            [Operation::Write([register, msb, lsb])] => {
                let word = u16::from_le_bytes([*msb, *lsb]);
                self.bus.smbus_write_word(address, *register, word)
            }
            _ => Err(B::unsupported_shape()),
        }
    }
}

/// A board's bus. Each SMBus transfer first sets the chip's address (i2c-dev's I2C_SLAVE): a
/// system call of microseconds beside the transfer's 0.48 ms on the wire at 100 kHz, which also
/// refuses (EBUSY) the address should a kernel driver claim the chip meanwhile.
impl SmbusWord for I2cdev {
    fn functionality(&mut self) -> Result<Functionality, I2CError> {
        i2c_funcs::functionality(self.as_raw_fd())
            .map(Functionality)
            .map_err(|e| I2CError::from(LinuxI2CError::Io(e)))
    }

    fn smbus_read_word(&mut self, address: u8, command: u8) -> Result<u16, I2CError> {
        let device: &mut LinuxI2CDevice = self;
        device.set_slave_address(u16::from(address))?;
        Ok(device.smbus_read_word_data(command)?)
    }

    fn smbus_write_word(&mut self, address: u8, command: u8, word: u16) -> Result<(), I2CError> {
        let device: &mut LinuxI2CDevice = self;
        device.set_slave_address(u16::from(address))?;
        Ok(device.smbus_write_word_data(command, word)?)
    }

    fn unsupported_shape() -> I2CError {
        let e = io::Error::new(io::ErrorKind::Unsupported, SHAPE_REFUSED);
        I2CError::from(LinuxI2CError::Io(e))
    }
}
