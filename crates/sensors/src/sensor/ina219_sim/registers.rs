//! The INA219's register map and configuration fields (SBOS448G), and the Linux errnos a
//! transfer fails with: what the model and its tests address the chip by.

/// Register addresses (the pointer register's values).
pub mod reg {
    pub const CONFIG: u8 = 0x00;
    pub const SHUNT: u8 = 0x01;
    pub const BUS: u8 = 0x02;
    pub const POWER: u8 = 0x03;
    pub const CURRENT: u8 = 0x04;
    pub const CALIBRATION: u8 = 0x05;
}

/// Configuration register fields.
pub mod cfg {
    /// Power-on value: 32 V, ±320 mV, 12-bit both channels, shunt and bus continuous.
    pub const RESET_VALUE: u16 = 0x399F;
    /// Writing 1 resets every register; the bit reads back 0.
    pub const RST: u16 = 1 << 15;
    /// Bus range: 0 = 16 V, 1 = 32 V.
    pub const BRNG: u16 = 1 << 13;
    pub const PG_SHIFT: u16 = 11;
    pub const BADC_SHIFT: u16 = 7;
    pub const SADC_SHIFT: u16 = 3;
    pub const ADC_MASK: u16 = 0b1111;
    pub const MODE_MASK: u16 = 0b111;
    /// MODE bit 2: continuous; bits 1 and 0: convert bus, convert shunt. 0b000 is power-down
    /// and 0b100 ADC off.
    pub const MODE_CONTINUOUS: u16 = 0b100;
    pub const MODE_BUS: u16 = 0b010;
    pub const MODE_SHUNT: u16 = 0b001;
}

/// Bus voltage register flags.
pub mod bus_flags {
    /// Conversion ready: set when a conversion completes; cleared by reading the power register
    /// or writing a converting mode to the configuration register.
    pub const CNVR: u16 = 1 << 1;
    /// Math overflow: the last current or power calculation was out of range.
    pub const OVF: u16 = 1 << 0;
}

/// The Linux error numbers an I2C transfer fails with, from `libc`: EINVAL (i2c-dev: no
/// messages, more than 42, or one longer than 8192 bytes), EOPNOTSUPP (the adapter driver
/// cannot do this transfer's shape: a quirk, or i2c-bcm2835's rule), ETIMEDOUT (the adapter
/// gave up waiting), EREMOTEIO (a NACK, as i2c-bcm2835 and i2c-tegra report it), ENXIO (a
/// NACKed address, as SMBus controllers such as i2c-i801 report it).
pub mod errno {
    pub use libc::{EINVAL, ENXIO, EOPNOTSUPP, EREMOTEIO, ETIMEDOUT};
}
