//! The TI INA219 current/power monitor, read through the `ina219` crate over any
//! `embedded_hal::i2c::I2c` bus: `/dev/i2c-N` on a board ([`open_linux`]), or the register model
//! in [`super::ina219_sim`], so the simulated sensor runs this exact driver code.

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};
use embedded_hal::i2c::{Error as _, ErrorKind, I2c, NoAcknowledgeSource};
use ina219::address::Address;
use ina219::calibration::{IntCalibration, MicroAmpere};
use ina219::configuration::{
    BusVoltageRange, Configuration, MeasuredSignals, OperatingMode, Reset, Resolution,
    ShuntVoltageRange,
};
use ina219::errors::{InitializationError, InitializationErrorReason, MeasurementError};
use ina219::measurements::{BusVoltage, ShuntVoltage};
use ina219::SyncIna219;
use linux_embedded_hal::i2cdev::linux::LinuxI2CError;
use linux_embedded_hal::{I2CError, I2cdev};

use super::{Origin, PowerSensor, Reading, SensorInfo};
use crate::rig::{AdcMode, Ina219Spec};

/// Full-scale count of the signed current register: current LSB = max current / 2^15.
const CURRENT_FULL_SCALE: f64 = 32768.0;

/// Shunt ranges the PGA offers, smallest first.
const PGA_RANGES: [(u16, ShuntVoltageRange); 4] = [
    (40, ShuntVoltageRange::Fsr40mv),
    (80, ShuntVoltageRange::Fsr80mv),
    (160, ShuntVoltageRange::Fsr160mv),
    (320, ShuntVoltageRange::Fsr320mv),
];

/// The chip settings a rig's `Ina219Spec` asks for, derived as the datasheet's programming
/// section does (SBOS448G 8.5.1): calibration, PGA and bus ranges, ADC mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Ina219Settings {
    /// 7-bit I2C address.
    pub address: u8,
    /// Where the chip sits, as error messages name it ("/dev/i2c-1").
    pub bus: String,
    pub shunt_ohms: f64,
    /// Current LSB (whole µA) and shunt (µΩ); the register value is trunc(0.04096 / (LSB × R))
    /// with bit 0 cleared.
    pub calibration: IntCalibration,
    /// Written after the reset: ranges, ADC mode, shunt and bus continuous.
    pub config: Configuration,
    pub adc: AdcMode,
}

impl Ina219Settings {
    /// Derives the settings; `bus` names the bus in error messages.
    pub fn from_spec(spec: &Ina219Spec, bus: impl Into<String>) -> Result<Self> {
        let (max_a, ohms) = (spec.max_current_a, spec.shunt_ohms);
        ensure!(
            max_a > 0.0 && max_a.is_finite() && ohms > 0.0 && ohms.is_finite(),
            "INA219: max_current_a and shunt_ohms must be positive"
        );
        let lsb_ua = round_lsb_ua(max_a * 1e6 / CURRENT_FULL_SCALE);
        let shunt_uohm = (ohms * 1e6).round();
        let calibration = (shunt_uohm <= f64::from(u32::MAX))
            .then(|| IntCalibration::new(MicroAmpere(lsb_ua as i64), shunt_uohm as u32))
            .flatten()
            .ok_or_else(|| {
                anyhow!(
                    "INA219: max_current_a {max_a} A on a {ohms} Ω shunt needs a calibration \
                     register outside 2..65535 (current LSB {lsb_ua} µA); change max_current_a"
                )
            })?;

        // The slack keeps 0.4 A × 0.1 Ω (40.000000000000007 mV in floating point) in 40 mV.
        let shunt_mv = max_a * ohms * 1e3 - 1e-9;
        let shunt_voltage_range = match spec.shunt_range_mv {
            Some(mv) => PGA_RANGES
                .iter()
                .find(|r| r.0 == mv)
                .map(|r| r.1)
                .ok_or_else(|| {
                    anyhow!("INA219: shunt_range_mv must be 40, 80, 160 or 320, not {mv}")
                })?,
            None => PGA_RANGES
                .iter()
                .find(|r| shunt_mv <= f64::from(r.0))
                .map(|r| r.1)
                .ok_or_else(|| {
                    anyhow!(
                        "INA219: {max_a} A through {ohms} Ω is {shunt_mv:.0} mV, beyond the \
                         ±320 mV shunt range; use a smaller shunt or a lower max_current_a"
                    )
                })?,
        };
        let bus_voltage_range = match spec.bus_range_v {
            16 => BusVoltageRange::Fsr16v,
            32 => BusVoltageRange::Fsr32v,
            v => bail!("INA219: bus_range_v must be 16 or 32, not {v}"),
        };
        let resolution = resolution(spec.adc);
        Ok(Self {
            address: spec.address,
            bus: bus.into(),
            shunt_ohms: ohms,
            calibration,
            config: Configuration {
                reset: Reset::Run,
                bus_voltage_range,
                shunt_voltage_range,
                bus_resolution: resolution,
                shunt_resolution: resolution,
                operating_mode: OperatingMode::Continous(MeasuredSignals::ShutAndBusVoltage),
            },
            adc: spec.adc,
        })
    }

    pub fn current_lsb_a(&self) -> f64 {
        self.calibration.current_lsb().0 as f64 * 1e-6
    }

    /// 20 × the current LSB (datasheet equation 3).
    pub fn power_lsb_w(&self) -> f64 {
        self.calibration.power_lsb().0 as f64 * 1e-6
    }

    /// Time between fresh readings: a shunt conversion then a bus conversion.
    pub fn update_period(&self) -> Duration {
        let c = &self.config;
        let us = c.shunt_resolution.conversion_time_us() + c.bus_resolution.conversion_time_us();
        Duration::from_micros(u64::from(us))
    }

    /// One line, e.g. "R=0.1 Ω, I_LSB=100 µA, cal=4096, PGA ±320 mV, 32 V, 12bit".
    pub fn summary(&self) -> String {
        format!(
            "R={} Ω, I_LSB={}, cal={}, PGA ±{} mV, {} V, {}",
            self.shunt_ohms,
            self.calibration.current_lsb(),
            self.calibration.as_bits(),
            self.config.shunt_voltage_range.range_mv().end(),
            self.config.bus_voltage_range.range_v().end,
            adc_label(self.adc),
        )
    }
}

fn resolution(adc: AdcMode) -> Resolution {
    match adc {
        AdcMode::Bits9 => Resolution::Res9Bit,
        AdcMode::Bits10 => Resolution::Res10Bit,
        AdcMode::Bits11 => Resolution::Res11Bit,
        AdcMode::Bits12 => Resolution::Res12Bit,
        AdcMode::Avg2 => Resolution::Avg2,
        AdcMode::Avg4 => Resolution::Avg4,
        AdcMode::Avg8 => Resolution::Avg8,
        AdcMode::Avg16 => Resolution::Avg16,
        AdcMode::Avg32 => Resolution::Avg32,
        AdcMode::Avg64 => Resolution::Avg64,
        AdcMode::Avg128 => Resolution::Avg128,
    }
}

/// The rig file's spelling of an ADC mode.
fn adc_label(adc: AdcMode) -> &'static str {
    match adc {
        AdcMode::Bits9 => "9bit",
        AdcMode::Bits10 => "10bit",
        AdcMode::Bits11 => "11bit",
        AdcMode::Bits12 => "12bit",
        AdcMode::Avg2 => "avg2",
        AdcMode::Avg4 => "avg4",
        AdcMode::Avg8 => "avg8",
        AdcMode::Avg16 => "avg16",
        AdcMode::Avg32 => "avg32",
        AdcMode::Avg64 => "avg64",
        AdcMode::Avg128 => "avg128",
    }
}

/// How a bus's error reads: its kind, and a human description for kinds that need one.
type Describe<E> = fn(&E) -> (ErrorKind, String);

/// An INA219 read with the `ina219` crate over any I2C bus.
pub struct Ina219Sensor<I2C: I2c> {
    ina: SyncIna219<I2C, IntCalibration>,
    settings: Ina219Settings,
    info: SensorInfo,
    describe: Describe<I2C::Error>,
    last: Option<Reading>,
}

impl<I2C: I2c> Ina219Sensor<I2C> {
    /// Resets the chip (checking it reads like an INA219 after reset), writes the calibration
    /// and the configuration.
    pub fn new(i2c: I2C, settings: Ina219Settings, info: SensorInfo) -> Result<Self> {
        Self::with_describe(i2c, settings, info, |e| (e.kind(), format!("{e:?}")))
    }

    fn with_describe(
        i2c: I2C,
        settings: Ina219Settings,
        info: SensorInfo,
        describe: Describe<I2C::Error>,
    ) -> Result<Self> {
        let address = Address::from_byte(settings.address).map_err(|e| anyhow!("INA219: {e}"))?;
        let mut ina = SyncIna219::new_calibrated(i2c, address, settings.calibration)
            .map_err(|e| init_error(&settings, describe, &e))?;
        ina.set_configuration(settings.config)
            .map_err(|e| bus_error(&settings, describe(&e)))?;
        Ok(Self {
            ina,
            settings,
            info,
            describe,
            last: None,
        })
    }

    pub fn settings(&self) -> &Ina219Settings {
        &self.settings
    }

    /// A reading computed from the raw voltages, bypassing the current and power registers.
    fn reading_from_voltages(&self, bus: BusVoltage, shunt: ShuntVoltage) -> Reading {
        let volts = f64::from(bus.voltage_mv()) * 1e-3;
        let amps = f64::from(shunt.shunt_voltage_uv()) * 1e-6 / self.settings.shunt_ohms;
        Reading {
            volts: Some(volts),
            amps: Some(amps),
            watts: volts * amps,
            ..Reading::default()
        }
    }

    /// No conversion since the last read, and no earlier reading to repeat: the registers
    /// still hold the latest sample, so read it directly.
    fn read_voltages(&mut self) -> Result<Reading> {
        let bus = self.ina.bus_voltage().map_err(|e| self.error(e.into()))?;
        let shunt = self.ina.shunt_voltage().map_err(|e| self.error(e.into()))?;
        Ok(Reading {
            stale: true,
            ..self.reading_from_voltages(bus, shunt)
        })
    }

    fn error(&self, e: MeasurementError<I2C::Error>) -> anyhow::Error {
        match e {
            MeasurementError::I2cError(err) => bus_error(&self.settings, (self.describe)(&err)),
            other => anyhow!(
                "INA219 at {:#04x} on {}: {other}",
                self.settings.address,
                self.settings.bus
            ),
        }
    }
}

/// Why the reset-and-check at start-up failed: a NACK on the address means no chip is there.
fn init_error<I, E: Debug>(
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
    match describe(err) {
        (
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown),
            _,
        ) => {
            anyhow!(
                "no INA219 answers at {:#04x} on {} (check address pins A0/A1 and wiring)",
                settings.address,
                settings.bus
            )
        }
        found => bus_error(settings, found),
    }
}

/// One line naming the chip, its bus and what went wrong, e.g.
/// "INA219 at 0x40 on /dev/i2c-1: no acknowledge (address)".
fn bus_error(settings: &Ina219Settings, (kind, detail): (ErrorKind, String)) -> anyhow::Error {
    let what = match kind {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address) => "no acknowledge (address)".into(),
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data) => "no acknowledge (data)".into(),
        ErrorKind::NoAcknowledge(_) => "no acknowledge".into(),
        ErrorKind::Bus => format!("bus error ({detail})"),
        ErrorKind::ArbitrationLoss => format!("arbitration lost ({detail})"),
        _ => detail,
    };
    anyhow!(
        "INA219 at {:#04x} on {}: {what}",
        settings.address,
        settings.bus
    )
}

impl<I2C: I2c + Send> PowerSensor for Ina219Sensor<I2C> {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        self.settings.update_period()
    }

    fn read(&mut self) -> Result<Reading> {
        let reading = match self.ina.next_measurement() {
            Ok(Some(m)) => {
                let volts = f64::from(m.bus_voltage.voltage_mv()) * 1e-3;
                // The crate reads the power register as signed, but it is unsigned (P = |I| × V):
                // undo the wrap so large powers stay positive.
                let mut power_uw = m.power.0;
                if power_uw < 0 {
                    power_uw += 65536 * self.settings.calibration.power_lsb().0;
                }
                Reading {
                    volts: Some(volts),
                    amps: Some(m.current.0 as f64 * 1e-6),
                    watts: power_uw as f64 * 1e-6,
                    ..Reading::default()
                }
            }
            Ok(None) => {
                return match self.last {
                    Some(last) => Ok(Reading {
                        stale: true,
                        ..last
                    }),
                    None => self.read_voltages(),
                }
            }
            // OVF: the current or power register is wrong, but the raw voltages are not.
            Err(MeasurementError::MathOverflow(m)) => Reading {
                overflow: true,
                ..self.reading_from_voltages(m.bus_voltage, m.shunt_voltage)
            },
            Err(e) => return Err(self.error(e)),
        };
        self.last = Some(reading);
        Ok(reading)
    }
}

/// Opens the INA219 a rig names on a Linux I2C bus (`/dev/i2c-N`).
pub fn open_linux(spec: &Ina219Spec) -> Result<Ina219Sensor<I2cdev>> {
    let path = spec.i2c_bus.as_deref().ok_or_else(|| {
        anyhow!(
            "INA219 \"{}\": i2c_bus is required, e.g. \"/dev/i2c-1\"",
            spec.rail
        )
    })?;
    let settings = Ina219Settings::from_spec(spec, path.display().to_string())?;
    let i2c = I2cdev::new(path).map_err(|e| open_error(path, e))?;
    let info = SensorInfo {
        kind: "ina219".into(),
        rail: spec.rail.clone(),
        origin: Origin::Measured,
        detail: settings.summary(),
    };
    Ina219Sensor::with_describe(i2c, settings, info, describe_linux)
}

/// What to do about a bus that will not open, in one line.
fn open_error(path: &Path, e: LinuxI2CError) -> anyhow::Error {
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
fn describe_linux(e: &I2CError) -> (ErrorKind, String) {
    const EREMOTEIO: i32 = 121;
    let errno = match e.inner() {
        LinuxI2CError::Errno(n) => Some(*n),
        LinuxI2CError::Io(io) => io.raw_os_error(),
    };
    let kind = match errno {
        Some(EREMOTEIO) => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown),
        _ => e.kind(),
    };
    (kind, e.to_string())
}

/// The current LSB for a minimum LSB in µA: the next step of the 1-2-5 series at or above it,
/// as the datasheet's worked examples do. A round LSB keeps the calibration register and every
/// reading easy to check by hand (3.2 A on 0.1 Ω: 100 µA, calibration 4096), and costs at most
/// a factor 2.5 of resolution, which the 15-bit register has to spare. The 1e-9 slack keeps an
/// exact quotient such as 3.2768 A / 2^15 = 100 µA from moving up a step.
fn round_lsb_ua(min_ua: f64) -> f64 {
    let decade = 10f64.powf((min_ua - 1e-9).max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * decade)
        .find(|lsb| *lsb >= min_ua - 1e-9)
        .unwrap_or(10.0 * decade)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sensor::ina219_sim::{bus_flags, reg, ManualClock, SimFault, SimulatedIna219};
    use crate::sensor::load::{ConstantLoad, Load};

    fn spec(max_current_a: f64, shunt_range_mv: Option<u16>) -> Ina219Spec {
        Ina219Spec {
            rail: "5V".into(),
            i2c_bus: None,
            address: 0x40,
            shunt_ohms: 0.1,
            max_current_a,
            adc: AdcMode::Bits12,
            bus_range_v: 32,
            shunt_range_mv,
            load: None,
            faults: None,
        }
    }

    /// The datasheet's example: 0.1 Ω with a 100 µA current LSB.
    fn datasheet_spec() -> Ina219Spec {
        spec(3.2768, Some(320))
    }

    type Rig = (
        Ina219Sensor<SimulatedIna219>,
        SimulatedIna219,
        Arc<ManualClock>,
    );

    fn open_sim(spec: &Ina219Spec, amps: f64) -> Result<Rig> {
        let clock = Arc::new(ManualClock::new(0.0));
        let load: Box<dyn Load> = Box::new(ConstantLoad { amps, volts: 5.0 });
        let chip = SimulatedIna219::new(spec.address, spec.shunt_ohms, load, clock.clone());
        let settings = Ina219Settings::from_spec(spec, "test bus")?;
        let info = SensorInfo {
            kind: "ina219".into(),
            rail: spec.rail.clone(),
            origin: Origin::Simulated,
            detail: settings.summary(),
        };
        Ok((
            Ina219Sensor::new(chip.clone(), settings, info)?,
            chip,
            clock,
        ))
    }

    fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: got {got}, want {want} ± {tolerance}"
        );
    }

    #[test]
    fn settings_follow_the_datasheet_example() {
        let s = Ina219Settings::from_spec(&datasheet_spec(), "b").unwrap();
        assert_eq!(s.calibration.current_lsb(), MicroAmpere(100));
        assert_eq!(s.calibration.as_bits(), 4096);
        assert_near("power LSB", s.power_lsb_w(), 0.002, 1e-15);
        assert_eq!(s.update_period(), Duration::from_micros(1064));
        assert_eq!(
            s.summary(),
            "R=0.1 Ω, I_LSB=100 µA, cal=4096, PGA ±320 mV, 32 V, 12bit"
        );
        let avg = Ina219Spec {
            adc: AdcMode::Avg128,
            ..datasheet_spec()
        };
        let s = Ina219Settings::from_spec(&avg, "b").unwrap();
        assert_eq!(s.update_period(), Duration::from_micros(136_200));
    }

    #[test]
    fn settings_round_the_lsb_up_and_pick_the_smallest_pga_range() {
        let s = Ina219Settings::from_spec(&spec(3.2, None), "b").unwrap();
        // 3.2 A / 2^15 = 97.66 µA → 100 µA; 0.04096 / (100 µA × 0.1 Ω) = 4096.
        assert_eq!(s.calibration.current_lsb(), MicroAmpere(100));
        assert_eq!(s.calibration.as_bits(), 4096);
        let lsb = |a| {
            Ina219Settings::from_spec(&spec(a, None), "b")
                .unwrap()
                .current_lsb_a()
        };
        assert_near("0.4 A", lsb(0.4), 20e-6, 1e-12); // 12.2 µA → 20 µA
        assert_near("1.0 A", lsb(1.0), 50e-6, 1e-12); // 30.5 µA → 50 µA
        for (min, round) in [
            (1.0, 1.0),
            (1.2, 2.0),
            (100.0, 100.0),
            (100.1, 200.0),
            (250.0, 500.0),
        ] {
            assert_eq!(round_lsb_ua(min), round, "{min} µA");
        }
        assert_eq!(s.config.shunt_voltage_range, ShuntVoltageRange::Fsr320mv);
        let range = |a| {
            let s = Ina219Settings::from_spec(&spec(a, None), "b").unwrap();
            s.config.shunt_voltage_range
        };
        assert_eq!(range(0.4), ShuntVoltageRange::Fsr40mv);
        assert_eq!(range(0.41), ShuntVoltageRange::Fsr80mv);
        assert_eq!(range(1.0), ShuntVoltageRange::Fsr160mv);
        let err = Ina219Settings::from_spec(&spec(3.3, None), "b").unwrap_err();
        assert!(err.to_string().contains("±320 mV"), "{err}");
        let bad_bus = Ina219Spec {
            bus_range_v: 20,
            ..spec(1.0, None)
        };
        assert!(Ina219Settings::from_spec(&bad_bus, "b").is_err());
        // 0.1 A on 0.01 Ω: a 4 µA LSB needs calibration 1 024 000, beyond 16 bits.
        let tiny = Ina219Spec {
            shunt_ohms: 0.01,
            ..spec(0.1, None)
        };
        let err = Ina219Settings::from_spec(&tiny, "b").unwrap_err();
        assert!(err.to_string().contains("calibration"), "{err}");
    }

    #[test]
    fn one_amp_at_five_volts_reads_within_one_lsb() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        assert_eq!(chip.peek(reg::CALIBRATION), Some(4096));
        clock.set(2e-3);
        assert_eq!(chip.peek(reg::CURRENT), Some(10_000));
        assert_eq!(chip.peek(reg::POWER), Some(2_500));
        let r = sensor.read().unwrap();
        assert_near("amps", r.amps.unwrap(), 1.0, 100e-6);
        assert_near("volts", r.volts.unwrap(), 5.0, 4e-3);
        assert_near("watts", r.watts, 5.0, 2e-3);
        assert!(!r.stale && !r.overflow, "{r:?}");
    }

    #[test]
    fn shunt_saturates_at_the_pga_range() {
        let (mut sensor, chip, clock) = open_sim(&spec(3.2, Some(320)), 3.2).unwrap();
        clock.set(2e-3);
        assert_eq!(chip.peek(reg::SHUNT), Some(32_000));
        // 32000 × 4096 / 4096 = 32000 LSB of 100 µA.
        assert_near(
            "amps at ±320 mV",
            sensor.read().unwrap().amps.unwrap(),
            3.2,
            1e-9,
        );

        let (mut sensor, chip, clock) = open_sim(&spec(3.2, Some(40)), 3.2).unwrap();
        clock.set(2e-3);
        assert_eq!(chip.peek(reg::SHUNT), Some(4_000), "40 mV");
        // Saturated: 4000 × 4096 / 4096 = 4000 LSB of 100 µA, 0.4 A of the 3.2 A flowing.
        assert_near(
            "amps at ±40 mV",
            sensor.read().unwrap().amps.unwrap(),
            0.4,
            1e-9,
        );
    }

    #[test]
    fn reads_between_conversions_are_stale() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        clock.set(0.5e-3);
        let first = sensor.read().unwrap();
        assert!(first.stale, "no conversion yet: {first:?}");
        assert_eq!(
            first.volts,
            Some(0.0),
            "registers still hold their reset value"
        );
        clock.set(1.065e-3);
        let fresh = sensor.read().unwrap();
        assert!(!fresh.stale);
        assert_near("amps", fresh.amps.unwrap(), 1.0, 100e-6);
        assert_eq!(
            chip.peek(reg::BUS).unwrap() & bus_flags::CNVR,
            0,
            "read cleared CNVR"
        );
        clock.set(2.0e-3);
        assert_eq!(
            sensor.read().unwrap(),
            Reading {
                stale: true,
                ..fresh
            }
        );
        clock.set(2.2e-3);
        assert!(!sensor.read().unwrap().stale);
    }

    #[test]
    fn overflow_reports_current_from_the_shunt_voltage() {
        // A 16 µA LSB (calibration 25600) turns 1 A into 62 500 LSB: the current overflows.
        let (mut sensor, chip, clock) = open_sim(&spec(0.5, Some(320)), 1.0).unwrap();
        clock.set(2e-3);
        assert_eq!(
            chip.peek(reg::BUS).unwrap() & bus_flags::OVF,
            bus_flags::OVF
        );
        let r = sensor.read().unwrap();
        assert!(r.overflow, "{r:?}");
        assert_near("amps", r.amps.unwrap(), 1.0, 1e-9);
        assert_near("watts", r.watts, 5.0, 1e-9);
    }

    #[test]
    fn nack_mid_run_is_a_read_error_naming_the_chip() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        chip.inject(SimFault::NackAfterTransactions(chip.transactions()));
        clock.set(2e-3);
        let err = sensor.read().unwrap_err().to_string();
        assert_eq!(err, "INA219 at 0x40 on test bus: no acknowledge (address)");
    }

    #[test]
    fn absent_chip_fails_at_construction() {
        let clock = Arc::new(ManualClock::new(0.0));
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        });
        let chip = SimulatedIna219::new(0x40, 0.1, load, clock);
        chip.inject(SimFault::Absent);
        let settings = Ina219Settings::from_spec(&datasheet_spec(), "test bus").unwrap();
        let info = SensorInfo {
            kind: "ina219".into(),
            rail: "5V".into(),
            origin: Origin::Simulated,
            detail: String::new(),
        };
        let err = Ina219Sensor::new(chip, settings, info).err().unwrap();
        assert_eq!(
            err.to_string(),
            "no INA219 answers at 0x40 on test bus (check address pins A0/A1 and wiring)"
        );
    }

    #[test]
    fn missing_linux_bus_is_one_actionable_line() {
        let spec = Ina219Spec {
            i2c_bus: Some("/dev/i2c-99".into()),
            ..datasheet_spec()
        };
        let err = format!("{:#}", open_linux(&spec).err().unwrap());
        assert!(
            err.starts_with("I2C bus /dev/i2c-99 not found: enable I2C"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn unusable_buses_say_what_to_do() {
        let denied = open_error(
            Path::new("/dev/i2c-1"),
            LinuxI2CError::Io(io::Error::from(io::ErrorKind::PermissionDenied)),
        )
        .to_string();
        assert_eq!(
            denied,
            "no permission to open I2C bus /dev/i2c-1: add your user to the i2c group \
             (sudo usermod -aG i2c $USER), then log in again"
        );
        // A file that is not an I2C adapter: the driver's ioctl fails.
        let file = tempfile::NamedTempFile::new().unwrap();
        let spec = Ina219Spec {
            i2c_bus: Some(file.path().to_path_buf()),
            ..datasheet_spec()
        };
        let err = format!("{:#}", open_linux(&spec).err().unwrap());
        assert!(
            !err.contains('\n') && err.contains(&file.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn eremoteio_counts_as_a_nack() {
        let (kind, _) = describe_linux(&I2CError::from(LinuxI2CError::Errno(121)));
        assert_eq!(kind, ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown));
        let (kind, text) = describe_linux(&I2CError::from(LinuxI2CError::Errno(5)));
        assert_eq!(kind, ErrorKind::Bus);
        assert!(text.contains("EIO"), "{text}");
    }
}
