//! The driver: an INA219 read through the `ina219` crate over any `embedded_hal` I2C bus,
//! with its reset, checks, timing and the readings it gives the sampler.

use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use embedded_hal::i2c::{Error as _, ErrorKind, I2c, NoAcknowledgeSource};
use ina219::address::Address;
use ina219::calibration::IntCalibration;
use ina219::errors::{
    BusVoltageReadError, InitializationError, InitializationErrorReason, MeasurementError,
    ShuntVoltageReadError,
};
use ina219::measurements::{BusVoltage, CurrentRegister, ShuntVoltage};
use ina219::SyncIna219;
use linux_embedded_hal::I2cdev;

use super::super::{sysfs, Limits, Origin, PowerSensor, Reading, SensorInfo};
use super::*;
use crate::clock::{RunClock, TimeSource};

/// An INA219 read with the `ina219` crate over any I2C bus.
pub struct Ina219Sensor<I2C: I2c> {
    ina: SyncIna219<SharedBus<I2C>, IntCalibration>,
    /// The same bus, for our own register reads.
    raw: SharedBus<I2C>,
    settings: Ina219Settings,
    info: SensorInfo,
    describe: Describe<I2C::Error>,
    last: Option<Reading>,
    /// Fresh readings since calibration and configuration were last checked.
    fresh_since_check: u32,
    /// The current register of the last fresh reading.
    last_current: i16,
    /// How long fetching a fresh reading took when timed at open ([`Self::time_reads`]).
    measured_read: Option<Duration>,
}

/// Fresh readings timed by [`Ina219Sensor::time_reads`].
pub(super) const READS_TO_TIME: usize = 9;

impl<I2C: I2c> Ina219Sensor<I2C> {
    /// Resets the chip (checking it reads like an INA219 after reset), writes the calibration
    /// and the configuration.
    pub fn new(i2c: I2C, settings: Ina219Settings, info: SensorInfo) -> Result<Self> {
        Self::with_describe(i2c, settings, info, |e| BusFault {
            kind: e.kind(),
            errno: None,
            text: format!("{e:?}"),
        })
    }

    /// As [`Self::new`], with bus errors described by `describe`.
    pub fn with_describe(
        i2c: I2C,
        settings: Ina219Settings,
        info: SensorInfo,
        describe: Describe<I2C::Error>,
    ) -> Result<Self> {
        let address = Address::from_byte(settings.address).map_err(|e| anyhow!("INA219: {e}"))?;
        let raw = SharedBus::new(i2c);
        let mut ina = SyncIna219::new_calibrated(raw.clone(), address, settings.calibration)
            .map_err(|e| init_error(&settings, describe, &e))?;
        ina.set_configuration(settings.config)
            .map_err(|e| bus_error(&settings, describe(&e)))?;
        Ok(Self {
            ina,
            raw,
            settings,
            info,
            describe,
            last: None,
            fresh_since_check: 0,
            last_current: 0,
            measured_read: None,
        })
    }

    /// The update period: the conversion or the wire's time for a reading, or what fetching
    /// one took when timed, whichever is longest.
    pub(super) fn period(&self) -> Duration {
        let fetch = self.measured_read.unwrap_or_default() * self.settings.chips_on_bus.max(1);
        self.settings.update_period().max(fetch)
    }

    pub fn settings(&self) -> &Ina219Settings {
        &self.settings
    }

    /// A reading computed from the raw voltages, bypassing the current and power registers.
    pub(super) fn reading_from_voltages(&self, bus: BusVoltage, shunt: ShuntVoltage) -> Reading {
        let volts = f64::from(bus.voltage_mv()) * 1e-3;
        let amps =
            f64::from(shunt.shunt_voltage_uv()) * 1e-6 / self.settings.effective_shunt_ohms();
        Reading {
            volts: Some(volts),
            amps: Some(amps),
            watts: volts * amps,
            ..Reading::default()
        }
    }

    /// No conversion since the last read, and no earlier reading to repeat: the registers
    /// still hold the latest sample, so read it directly.
    pub(super) fn read_voltages(&mut self, bus: BusVoltage) -> Result<Reading> {
        let (shunt, saturated) = self.shunt()?;
        Ok(Reading {
            stale: true,
            saturated,
            ..self.reading_from_voltages(bus, shunt)
        })
    }

    /// A new conversion is ready (CNVR): read power (which clears CNVR), shunt and current, each
    /// its own transfer, then make sure the chip still holds our settings.
    pub(super) fn read_fresh(&mut self, bus: BusVoltage) -> Result<Reading> {
        let power = self.ina.power_raw().map_err(|e| self.bus_error(&e))?;
        let (shunt, saturated) = self.shunt()?;
        let current = self.ina.current_raw().map_err(|e| self.bus_error(&e))?;
        self.check_chip(shunt, current)?;
        let reading = if bus.has_math_overflowed() {
            // OVF: the current or power register is wrong, but the raw voltages are not.
            Reading {
                overflow: true,
                ..self.reading_from_voltages(bus, shunt)
            }
        } else {
            // Current is signed; power is unsigned (P = |I| × V), whatever the crate's types say.
            Reading {
                volts: Some(f64::from(bus.voltage_mv()) * 1e-3),
                amps: Some(f64::from(current.0 as i16) * self.settings.current_lsb_a()),
                watts: f64::from(power.0) * self.settings.power_lsb_w(),
                ..Reading::default()
            }
        };
        Ok(Reading {
            saturated,
            centre_offset_s: self.settings.centre_offset_s(),
            ..reading
        })
    }

    /// The shunt voltage, and whether it is beyond the PGA's full scale. Past it the chip clips
    /// the register at its data field's end, and the crate (feature `paranoid`) refuses the
    /// value; either way the true current was at least this much, so the reading is kept,
    /// marked saturated: its energy is a lower bound.
    pub(super) fn shunt(&mut self) -> Result<(ShuntVoltage, bool)> {
        match self.ina.shunt_voltage() {
            Ok(shunt) => {
                let beyond = shunt.shunt_voltage_10uv().unsigned_abs()
                    > self.settings.shunt_full_scale_10uv().unsigned_abs();
                Ok((shunt, beyond))
            }
            Err(ShuntVoltageReadError::ShuntVoltageOutOfRange { is, .. }) => Ok((is, true)),
            Err(ShuntVoltageReadError::I2cError(e)) => Err(self.bus_error(&e)),
        }
    }

    /// Catches a chip that reset behind our back (a brown-out, a power cycle): it converts on
    /// and sets CNVR, but with calibration 0 its current and power read 0. A current register
    /// of 0 beside a shunt voltage worth a few current LSBs gives it away at once, and so do
    /// current and shunt registers both fallen to exactly 0 from a current of a few LSBs (a
    /// reset between this reading's register reads wipes both); a check every second or so of fresh
    /// readings catches a reset with no current flowing. A reset chip is re-initialised and
    /// this read fails, so a 0 W sample from it is never returned.
    pub(super) fn check_chip(
        &mut self,
        shunt: ShuntVoltage,
        current: CurrentRegister,
    ) -> Result<()> {
        self.fresh_since_check += 1;
        let calibration = self.settings.calibration.as_bits();
        let expected = i64::from(shunt.shunt_voltage_10uv()) * i64::from(calibration) / 4096;
        let was = i64::from(std::mem::replace(&mut self.last_current, current.0 as i16));
        let wiped = shunt.shunt_voltage_10uv() == 0 && was.abs() >= RESET_HINT_LSB;
        let current_lost = current.0 == 0 && (expected.abs() >= RESET_HINT_LSB || wiped);
        if !current_lost && self.fresh_since_check < self.settings.check_every() {
            return Ok(());
        }
        self.fresh_since_check = 0;
        let config_read = self.read_register(CONFIG_REGISTER)?;
        let calibration_read = self.read_register(CALIBRATION_REGISTER)?;
        if config_read == self.settings.config.as_bits() && calibration_read == calibration {
            return Ok(());
        }
        let found = format!(
            "chip reset detected (configuration {config_read:#06x}, calibration {calibration_read})"
        );
        let (address, bus) = (self.settings.address, &self.settings.bus);
        let reinit = self
            .ina
            .calibrate(self.settings.calibration)
            .and_then(|()| self.ina.set_configuration(self.settings.config));
        match reinit {
            Ok(()) => Err(anyhow!(
                "INA219 at {address:#04x} on {bus}: {found}, re-initialised"
            )),
            Err(e) => {
                // Look again at the next fresh reading.
                self.fresh_since_check = self.settings.check_every();
                let fault = (self.describe)(&e);
                Err(anyhow!(
                    "INA219 at {address:#04x} on {bus}: {found}; re-initialising failed: {}",
                    fault_text(&fault)
                ))
            }
        }
    }

    /// One register, read as its own write-then-read transfer.
    pub(super) fn read_register(&mut self, register: u8) -> Result<u16> {
        let mut buf = [0; 2];
        self.raw
            .write_read(self.settings.address, &[register], &mut buf)
            .map_err(|e| self.bus_error(&e))?;
        Ok(u16::from_be_bytes(buf))
    }

    pub(super) fn bus_error(&self, e: &I2C::Error) -> anyhow::Error {
        bus_error(&self.settings, (self.describe)(e))
    }

    /// A failed measurement in one sentence: the bus's fault, or which range the value left
    /// and which rig key to change (never the crate's debug text).
    pub(super) fn error(&self, e: MeasurementError<I2C::Error>) -> anyhow::Error {
        let why = match e {
            MeasurementError::I2cError(err)
            | MeasurementError::BusVoltageReadError(BusVoltageReadError::I2cError(err))
            | MeasurementError::ShuntVoltageReadError(ShuntVoltageReadError::I2cError(err)) => {
                return self.bus_error(&err)
            }
            MeasurementError::BusVoltageReadError(BusVoltageReadError::BusVoltageOutOfRange {
                should,
                is,
            }) => format!(
                "bus voltage {:.3} V is beyond the {} V range the rig sets (bus_range_v): set \
                 bus_range_v = 32, and keep the bus below 26 V",
                f64::from(is.voltage_mv()) / 1e3,
                should.range_v().end
            ),
            MeasurementError::ShuntVoltageReadError(
                ShuntVoltageReadError::ShuntVoltageOutOfRange { should, is },
            ) => format!(
                "shunt voltage {:.2} mV is beyond the ±{} mV PGA range: raise shunt_range_mv or \
                 max_current_a, or use a smaller shunt",
                f64::from(is.shunt_voltage_uv()) / 1e3,
                should.range_mv().end()
            ),
            MeasurementError::MathOverflow(_) => "the current or power register overflowed: \
                 raise max_current_a"
                .to_string(),
        };
        anyhow!(
            "INA219 at {:#04x} on {}: {why}",
            self.settings.address,
            self.settings.bus
        )
    }
}

/// Why the reset-and-check at start-up failed: a NACK on the address means no chip is there.
pub(super) fn init_error<I, E: Debug>(
    settings: &Ina219Settings,
    describe: Describe<E>,
    e: &InitializationError<I, E>,
) -> anyhow::Error {
    let InitializationErrorReason::I2cError(err) = &e.reason else {
        return anyhow!(
            "the device at {:#04x} on {} does not act like an INA219: {e}",
            settings.address,
            settings.bus
        );
    };
    let fault = describe(err);
    // An address NACK: EREMOTEIO from most I2C adapters, ENXIO from SMBus controllers, ENODEV
    // from i2c-stub, which has no chip there.
    let absent = matches!(
        fault.kind,
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown)
    ) || matches!(fault.errno, Some(libc::ENXIO | libc::ENODEV));
    if !absent {
        return bus_error(settings, fault);
    }
    let scan = match bus_number(&settings.bus) {
        Some(n) => format!("; `i2cdetect -y {n}` lists the addresses that answer"),
        None => String::new(),
    };
    anyhow!(
        "no INA219 answers at {:#04x} on {} (check address pins A0/A1 and wiring{scan})",
        settings.address,
        settings.bus
    )
}

impl<I2C: I2c + Send> Ina219Sensor<I2C> {
    /// Times a few fresh readings on `clock` and keeps their median as a floor under the
    /// update period. On a board every transfer also costs a system call, an interrupt and a
    /// wake-up, which neither the datasheet nor the bus clock accounts for; the validity check
    /// must expect the rate this bus really delivers, not the wire's.
    pub fn time_reads(&mut self, clock: &dyn TimeSource) -> Result<()> {
        let conversion = self.settings.conversion_time().as_secs_f64();
        let mut took = Vec::with_capacity(READS_TO_TIME);
        for _ in 0..READS_TO_TIME {
            clock.sleep_until(clock.now() + conversion);
            let start = clock.now();
            let fresh = !self.read()?.stale;
            if fresh {
                took.push(clock.now() - start);
            }
        }
        took.sort_by(f64::total_cmp);
        self.measured_read = took
            .get(took.len() / 2)
            .map(|s| Duration::from_secs_f64(*s));
        Ok(())
    }
}

impl<I2C: I2c + Send> PowerSensor for Ina219Sensor<I2C> {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        self.period()
    }

    fn uncertainty(&self) -> Option<f64> {
        Some(self.settings.energy_uncertainty())
    }

    /// Its PGA range over the shunt it really has (the correction applied).
    fn limits(&self) -> Limits {
        let shunt = self.settings.shunt_ohms / self.settings.shunt_correction;
        Limits::ina(f64::from(self.settings.shunt_range_mv()) / 1e3, shunt)
    }

    /// Where the shunt converts for at least `INTEGRATING_SHARE` of each update period
    /// (averaged shunt, short bus conversion, every conversion read).
    fn integrates(&self) -> bool {
        let shunt = self.settings.config.shunt_resolution.conversion_time_us();
        f64::from(shunt) * 1e-6 >= INTEGRATING_SHARE * self.period().as_secs_f64()
    }

    /// Reads the bus voltage register first: its CNVR says whether a new conversion is there.
    /// Only then are power, shunt and current read; without one, the last reading repeats,
    /// marked stale, at the cost of one register read.
    fn read(&mut self) -> Result<Reading> {
        let bus = self.ina.bus_voltage().map_err(|e| self.error(e.into()))?;
        if !bus.is_conversion_ready() {
            return match self.last {
                Some(last) => Ok(Reading {
                    stale: true,
                    ..last
                }),
                None => self.read_voltages(bus),
            };
        }
        let reading = self.read_fresh(bus)?;
        self.last = Some(reading);
        Ok(reading)
    }
}

/// Opens the INA219 a rig names on a Linux I2C bus (`/dev/i2c-N`): claims its address (a chip
/// a kernel driver holds is refused there), then reads it with plain I2C transfers or, on an
/// SMBus-only adapter, SMBus word transfers ([`AdapterBus`]).
pub fn open_linux(
    spec: &Ina219Spec,
    chips_on_bus: u32,
) -> Result<Ina219Sensor<AdapterBus<I2cdev>>> {
    let path = spec.i2c_bus.as_deref().ok_or_else(|| {
        anyhow!(
            "INA219 \"{}\": i2c_bus is required, e.g. \"/dev/i2c-1\"",
            spec.rail
        )
    })?;
    let settings = Ina219Settings {
        chips_on_bus,
        ..Ina219Settings::from_spec(spec, path.display().to_string())?
    };
    let mut i2c = I2cdev::new(path).map_err(|e| open_error(path, e))?;
    // I2cdev sets the address at its first transfer; set it now, so that a chip a kernel
    // driver holds is refused here, with the driver named.
    i2c.set_slave_address(u16::from(settings.address))
        .map_err(|e| claim_error(&settings, e, Path::new(sysfs::DEFAULT_ROOT)))?;
    let i2c = AdapterBus::open(i2c, &settings, describe_linux)?;
    let info = SensorInfo {
        kind: "ina219".into(),
        rail: spec.rail.clone(),
        origin: Origin::Measured,
        detail: String::new(),
    };
    let mut sensor = Ina219Sensor::with_describe(i2c, settings, info, describe_linux)?;
    sensor.time_reads(&RunClock::start())?;
    sensor.info.detail = format!(
        "{}; {} at {} kHz, {:.0} readings/s",
        sensor.settings.summary(),
        sensor.transfers_label(),
        sensor.settings.bus_khz,
        1.0 / sensor.period().as_secs_f64()
    );
    Ok(sensor)
}

impl<B: SmbusWord> Ina219Sensor<AdapterBus<B>> {
    /// How the registers are read, for the sensor's description.
    pub fn transfers_label(&self) -> &'static str {
        match self.raw.lock().transfers() {
            Transfers::I2c => "I2C",
            Transfers::SmbusWords => "SMBus word transfers",
        }
    }
}
