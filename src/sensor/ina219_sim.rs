//! A register-level model of the TI INA219 (datasheet SBOS448G) behind `embedded_hal::i2c::I2c`.
//!
//! The `ina219-sim` sensor is the real [`Ina219Sensor`] driver talking to this model instead of
//! `/dev/i2c-N`, so tests exercise the exact code a board runs: addressing, the register
//! pointer, reset, calibration, the current/power arithmetic and its overflow flag, and the
//! conversion timing that makes fast reads return the same sample again. The analog inputs come
//! from a [`Load`]; time comes from a [`TimeSource`], so tests can step a [`ManualClock`].
//!
//! Not modelled: ADC resolution below 12 bits changes only the conversion time (register LSBs
//! stay 10 µV and 4 mV), and there is no ADC noise beyond what the load supplies.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use super::ina219::{Ina219Sensor, Ina219Settings};
use super::load::{Load, SimulatedBoard};
use super::{Origin, SensorContext, SensorInfo};
use crate::clock::TimeSource;
use crate::rig::{Ina219Spec, SimFaultSpec};

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

/// Most load samples averaged per conversion window (the chip averages up to 128; a few evenly
/// spaced points give the window's mean for the loads used here).
const MAX_WINDOW_SAMPLES: u32 = 8;

/// One ADC channel's setting (BADC or SADC): how many 12-bit samples it averages and how long a
/// conversion takes. Lower resolutions only shorten the conversion in this model.
fn adc_setting(bits: u16) -> (u32, f64) {
    const SINGLE_US: [f64; 4] = [84.0, 148.0, 276.0, 532.0];
    const AVERAGED_US: [f64; 7] = [
        1_060.0, 2_130.0, 4_260.0, 8_510.0, 17_020.0, 34_050.0, 68_100.0,
    ];
    match bits & cfg::ADC_MASK {
        // 0b0X00..0b0X11: one sample at 9..12 bits (bit 2 is ignored); 0b1000 is 12 bits too.
        b if b & 0b1000 == 0 => (1, SINGLE_US[usize::from(b & 0b11)] / 1e6),
        0b1000 => (1, SINGLE_US[3] / 1e6),
        b => (
            1 << (b & 0b111),
            AVERAGED_US[usize::from(b & 0b111) - 1] / 1e6,
        ),
    }
}

/// A fault the simulated chip injects, to exercise the driver's and sampler's error paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimFault {
    /// Once this many transactions have been answered, every further one is NACKed (a chip
    /// that browns out or a wire that comes loose mid-run).
    NackAfterTransactions(u64),
    /// No chip answers at any address (unplugged, or wrong A0/A1).
    Absent,
}

impl SimFault {
    /// The faults a rig's `faults` table asks for.
    pub fn from_spec(spec: &SimFaultSpec) -> Vec<SimFault> {
        let mut faults = Vec::new();
        if let Some(n) = spec.nack_after_transactions {
            faults.push(SimFault::NackAfterTransactions(n));
        }
        if spec.absent {
            faults.push(SimFault::Absent);
        }
        faults
    }
}

/// The simulated bus's error: only NACKs exist on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimI2cError(pub NoAcknowledgeSource);

impl fmt::Display for SimI2cError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            NoAcknowledgeSource::Address => write!(f, "no acknowledge (address)"),
            NoAcknowledgeSource::Data => write!(f, "no acknowledge (data)"),
            NoAcknowledgeSource::Unknown => write!(f, "no acknowledge"),
        }
    }
}

impl std::error::Error for SimI2cError {}

impl embedded_hal::i2c::Error for SimI2cError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::NoAcknowledge(self.0)
    }
}

/// A simulated INA219 on its own I2C bus.
///
/// A cheap handle: clones share one chip, so a test can keep a clone to inject faults or peek
/// at registers while the driver owns another.
#[derive(Clone)]
pub struct SimulatedIna219 {
    chip: Arc<Mutex<Chip>>,
}

struct Chip {
    address: u8,
    shunt_ohms: f64,
    load: Box<dyn Load>,
    clock: Arc<dyn TimeSource>,
    faults: Vec<SimFault>,
    /// Transactions answered so far (for [`SimFault::NackAfterTransactions`]).
    answered: u64,
    pointer: u8,
    config: u16,
    calibration: u16,
    shunt: i16,
    /// Bus voltage in 4 mV units (bits 15..3 of the bus register).
    bus_4mv: u16,
    current: i16,
    power: u16,
    cnvr: bool,
    ovf: bool,
    /// When the current conversion sequence started (reset or last configuration write).
    started_at: f64,
    /// Conversions completed since `started_at`.
    converted: u64,
}

impl SimulatedIna219 {
    /// A chip at 7-bit `address` measuring across `shunt_ohms`, powered on at `clock.now()`.
    pub fn new(
        address: u8,
        shunt_ohms: f64,
        load: Box<dyn Load>,
        clock: Arc<dyn TimeSource>,
    ) -> Self {
        let now = clock.now();
        let mut chip = Chip {
            address,
            shunt_ohms,
            load,
            clock,
            faults: Vec::new(),
            answered: 0,
            pointer: 0,
            config: 0,
            calibration: 0,
            shunt: 0,
            bus_4mv: 0,
            current: 0,
            power: 0,
            cnvr: false,
            ovf: false,
            started_at: now,
            converted: 0,
        };
        chip.reset(now);
        Self {
            chip: Arc::new(Mutex::new(chip)),
        }
    }

    /// Adds a fault; it applies from the next transaction on.
    pub fn inject(&self, fault: SimFault) {
        self.lock().faults.push(fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Transactions the chip has answered so far.
    pub fn transactions(&self) -> u64 {
        self.lock().answered
    }

    /// A register's current contents, as the next read would return them (conversions due by
    /// now included), without the side effects of a bus read. `None` for an invalid address.
    pub fn peek(&self, register: u8) -> Option<u16> {
        let mut chip = self.lock();
        let now = chip.clock.now();
        chip.catch_up(now);
        chip.register(register)
    }

    fn lock(&self) -> MutexGuard<'_, Chip> {
        // A panic elsewhere while holding the lock leaves the registers consistent enough.
        self.chip.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ErrorType for SimulatedIna219 {
    type Error = SimI2cError;
}

impl I2c for SimulatedIna219 {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimI2cError> {
        self.lock().transaction(address, operations)
    }
}

impl Chip {
    fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), SimI2cError> {
        let answered = self.answered;
        let nacked = self.faults.iter().any(|f| match *f {
            SimFault::NackAfterTransactions(n) => answered >= n,
            SimFault::Absent => true,
        });
        if nacked || address != self.address {
            return Err(SimI2cError(NoAcknowledgeSource::Address));
        }
        self.answered += 1;
        // The whole transaction (repeated starts included) happens at one instant.
        let now = self.clock.now();
        self.catch_up(now);
        for op in ops {
            match op {
                Operation::Write(bytes) => self.write(bytes, now)?,
                Operation::Read(buf) => self.read(buf),
            }
        }
        Ok(())
    }

    /// A write sets the pointer; with two more bytes it also writes that register (MSB first).
    fn write(&mut self, bytes: &[u8], now: f64) -> Result<(), SimI2cError> {
        let Some((&pointer, value)) = bytes.split_first() else {
            return Ok(()); // An address-only write (a bus scan's probe).
        };
        if pointer > reg::CALIBRATION || value.len() > 2 {
            // No such register, or more data than one register: the chip NACKs the byte.
            return Err(SimI2cError(NoAcknowledgeSource::Data));
        }
        self.pointer = pointer;
        if let [msb, lsb] = *value {
            let value = u16::from_be_bytes([msb, lsb]);
            match pointer {
                reg::CONFIG => self.write_config(value, now),
                // Figure 27: bit 0 of the calibration register is not used and reads 0.
                reg::CALIBRATION => self.calibration = value & !1,
                _ => {} // Read-only registers ignore writes.
            }
        }
        Ok(())
    }

    /// Reads return the pointed register MSB first; past its two bytes the bus floats high.
    fn read(&mut self, buf: &mut [u8]) {
        let bytes = self.register(self.pointer).unwrap_or(0).to_be_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0xFF);
        }
        if self.pointer == reg::POWER {
            self.cnvr = false;
        }
    }

    fn register(&self, register: u8) -> Option<u16> {
        Some(match register {
            reg::CONFIG => self.config,
            reg::SHUNT => self.shunt as u16,
            reg::BUS => {
                let flag = |on, bit| if on { bit } else { 0 };
                (self.bus_4mv << 3)
                    | flag(self.cnvr, bus_flags::CNVR)
                    | flag(self.ovf, bus_flags::OVF)
            }
            reg::POWER => self.power,
            reg::CURRENT => self.current as u16,
            reg::CALIBRATION => self.calibration,
            _ => return None,
        })
    }

    /// Power-on reset: every register to its default, conversions restart.
    fn reset(&mut self, now: f64) {
        self.pointer = 0;
        self.config = cfg::RESET_VALUE;
        self.calibration = 0;
        self.shunt = 0;
        self.bus_4mv = 0;
        self.current = 0;
        self.power = 0;
        self.cnvr = false;
        self.ovf = false;
        self.started_at = now;
        self.converted = 0;
    }

    fn write_config(&mut self, value: u16, now: f64) {
        if value & cfg::RST != 0 {
            return self.reset(now);
        }
        self.config = value;
        if self.mode() & (cfg::MODE_SHUNT | cfg::MODE_BUS) != 0 {
            self.cnvr = false;
        }
        // A configuration write aborts the running conversion and starts a new sequence (and
        // in triggered mode, is the trigger).
        self.started_at = now;
        self.converted = 0;
    }

    fn mode(&self) -> u16 {
        self.config & cfg::MODE_MASK
    }

    /// (samples, seconds) of the shunt and bus channels this mode converts.
    fn channels(&self) -> [Option<(u32, f64)>; 2] {
        let adc = |shift| adc_setting(self.config >> shift);
        let mode = self.mode();
        [
            (mode & cfg::MODE_SHUNT != 0).then(|| adc(cfg::SADC_SHIFT)),
            (mode & cfg::MODE_BUS != 0).then(|| adc(cfg::BADC_SHIFT)),
        ]
    }

    /// Runs the conversions that completed by `now`. Only the latest one is visible in the
    /// registers, so only it is computed.
    fn catch_up(&mut self, now: f64) {
        let period: f64 = self.channels().iter().flatten().map(|c| c.1).sum();
        if period == 0.0 {
            return; // Power-down or ADC off: nothing converts.
        }
        // The tiny slack makes a read exactly at a completion time see that conversion
        // despite rounding; a negative elapsed time saturates to 0 conversions.
        let mut due = ((now - self.started_at) / period + 1e-9).floor() as u64;
        if self.mode() & cfg::MODE_CONTINUOUS == 0 {
            due = due.min(1); // Triggered: one conversion per configuration write.
        }
        if due > self.converted {
            self.converted = due;
            self.convert(self.started_at + (due - 1) as f64 * period);
        }
    }

    /// One conversion starting at `t`: the shunt channel first, then the bus, each the mean
    /// of the load over its window, then the current and power calculation.
    fn convert(&mut self, mut t: f64) {
        let [shunt, bus] = self.channels();
        if let Some((samples, secs)) = shunt {
            let amps = self.window_mean(t, secs, samples, |load, t| load.current_at(t));
            let full_scale = 4000 << ((self.config >> cfg::PG_SHIFT) & 0b11);
            let counts = (amps * self.shunt_ohms / 10e-6).round();
            self.shunt = counts.clamp(-f64::from(full_scale), f64::from(full_scale)) as i16;
            t += secs;
        }
        if let Some((samples, secs)) = bus {
            let volts = self.window_mean(t, secs, samples, |load, t| {
                let amps = load.current_at(t);
                load.bus_volts_at(t, amps)
            });
            let full_scale = if self.config & cfg::BRNG != 0 {
                8000
            } else {
                4000
            };
            self.bus_4mv = (volts / 4e-3).round().clamp(0.0, full_scale as f64) as u16;
        }
        // Datasheet equations 4 and 5; both registers read 0 while the calibration is 0.
        let current = i64::from(self.shunt) * i64::from(self.calibration) / 4096;
        let power = current.abs() * i64::from(self.bus_4mv) / 5000;
        self.ovf = i16::try_from(current).is_err() || u16::try_from(power).is_err();
        self.current = current.clamp(i16::MIN.into(), i16::MAX.into()) as i16;
        self.power = power.min(u16::MAX.into()) as u16;
        self.cnvr = true;
    }

    /// Mean of `f(load, t)` over `[start, start + secs)`, at up to [`MAX_WINDOW_SAMPLES`] window
    /// midpoints.
    fn window_mean(
        &mut self,
        start: f64,
        secs: f64,
        samples: u32,
        mut f: impl FnMut(&mut dyn Load, f64) -> f64,
    ) -> f64 {
        let n = samples.min(MAX_WINDOW_SAMPLES);
        let sum: f64 = (0..n)
            .map(|i| {
                f(
                    self.load.as_mut(),
                    start + secs * (f64::from(i) + 0.5) / f64::from(n),
                )
            })
            .sum();
        sum / f64::from(n)
    }
}

/// A clock that moves only when told to: drives the chip's conversion timing in tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    bits: AtomicU64,
}

impl ManualClock {
    pub fn new(t: f64) -> Self {
        Self {
            bits: AtomicU64::new(t.to_bits()),
        }
    }

    pub fn set(&self, t: f64) {
        self.bits.store(t.to_bits(), Ordering::SeqCst);
    }
}

impl TimeSource for ManualClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::SeqCst))
    }
}

/// Opens an `ina219-sim` sensor: the real driver on a simulated chip whose load is a
/// [`SimulatedBoard`] following the run's phases on the run's clock.
pub fn open(spec: &Ina219Spec, ctx: &SensorContext) -> Result<Ina219Sensor<SimulatedIna219>> {
    let load_spec = spec.load.clone().unwrap_or_default();
    let board = SimulatedBoard::new(&load_spec, ctx.phases.clone())?;
    let chip = SimulatedIna219::new(
        spec.address,
        spec.shunt_ohms,
        Box::new(board),
        Arc::new(ctx.clock),
    );
    for fault in spec.faults.iter().flat_map(SimFault::from_spec) {
        chip.inject(fault);
    }
    let settings = Ina219Settings::from_spec(spec, "simulated I2C bus")?;
    let info = SensorInfo {
        kind: "ina219-sim".into(),
        rail: spec.rail.clone(),
        origin: Origin::Simulated,
        detail: format!(
            "simulated INA219 ({}); board {:.2} A idle + {:.2} A busy, σ {} A, {} V",
            settings.summary(),
            load_spec.idle_amps,
            load_spec.active_amps,
            load_spec.noise_amps,
            load_spec.supply_volts
        ),
    };
    Ina219Sensor::new(chip, settings, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::load::{ConstantLoad, SquareWave};

    const ADDR: u8 = 0x40;

    fn chip(load: impl Load + 'static) -> (SimulatedIna219, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(0.0));
        let sim = SimulatedIna219::new(ADDR, 0.1, Box::new(load), clock.clone());
        (sim, clock)
    }

    fn one_amp() -> ConstantLoad {
        ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        }
    }

    fn read(sim: &mut SimulatedIna219, register: u8) -> u16 {
        let mut buf = [0; 2];
        sim.write_read(ADDR, &[register], &mut buf).unwrap();
        u16::from_be_bytes(buf)
    }

    fn write(sim: &mut SimulatedIna219, register: u8, value: u16) {
        let [msb, lsb] = value.to_be_bytes();
        sim.write(ADDR, &[register, msb, lsb]).unwrap();
    }

    fn cnvr(sim: &mut SimulatedIna219) -> bool {
        read(sim, reg::BUS) & bus_flags::CNVR != 0
    }

    /// A configuration with the given BADC/SADC field and MODE at 32 V, ±320 mV.
    fn config(adc: u16, mode: u16) -> u16 {
        cfg::BRNG | 0b11 << cfg::PG_SHIFT | adc << cfg::BADC_SHIFT | adc << cfg::SADC_SHIFT | mode
    }

    #[test]
    fn reset_restores_defaults_and_self_clears() {
        let (mut sim, _) = chip(one_amp());
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0);
        write(&mut sim, reg::CONFIG, 0x0007);
        write(&mut sim, reg::CALIBRATION, 0x1001);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x0007);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0x1000, "bit 0 reads 0");
        write(&mut sim, reg::CONFIG, cfg::RST);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F, "RST reads back 0");
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0);
    }

    #[test]
    fn addressing_pointer_and_read_only_registers() {
        let (mut sim, _) = chip(one_amp());
        let nack = |kind| Err(SimI2cError(kind));
        assert_eq!(sim.write(0x41, &[0]), nack(NoAcknowledgeSource::Address));
        assert_eq!(sim.write(ADDR, &[6]), nack(NoAcknowledgeSource::Data));
        write(&mut sim, reg::SHUNT, 0x1234); // ignored
        assert_eq!(read(&mut sim, reg::SHUNT), 0);
        // A 1-byte write sets the pointer for later plain reads.
        sim.write(ADDR, &[reg::CONFIG]).unwrap();
        let mut buf = [0; 3];
        sim.read(ADDR, &mut buf).unwrap();
        assert_eq!(buf, [0x39, 0x9F, 0xFF]);
    }

    #[test]
    fn twelve_bit_both_channels_convert_every_1064_us() {
        let (mut sim, clock) = chip(one_amp());
        write(&mut sim, reg::CALIBRATION, 4096);
        clock.set(1.063e-3);
        assert!(!cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 0, "no sample yet");
        clock.set(1.065e-3);
        assert!(cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000, "1 A × 0.1 Ω = 100 mV");
        assert_eq!(read(&mut sim, reg::BUS) >> 3, 1250, "5 V in 4 mV units");
        assert_eq!(read(&mut sim, reg::CURRENT), 10_000);
        assert_eq!(read(&mut sim, reg::POWER), 2_500);
        assert!(!cnvr(&mut sim), "reading power clears CNVR");
        clock.set(2.0e-3);
        assert!(!cnvr(&mut sim), "the next conversion ends at 2.128 ms");
        clock.set(2.2e-3);
        assert!(cnvr(&mut sim));
    }

    #[test]
    fn averaging_128_takes_68_1_ms_per_channel_and_averages_the_load() {
        // 2 A for the first half of the 68.1 ms window, 0 A for the second: mean 1 A.
        let wave = SquareWave {
            period_s: 68.1e-3,
            duty: 0.5,
            high_amps: 2.0,
            low_amps: 0.0,
            volts: 5.0,
        };
        let (mut sim, clock) = chip(wave);
        let shunt_continuous = cfg::MODE_CONTINUOUS | cfg::MODE_SHUNT;
        write(&mut sim, reg::CONFIG, config(0b1111, shunt_continuous));
        clock.set(68.09e-3);
        assert!(!cnvr(&mut sim));
        clock.set(68.11e-3);
        assert!(cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000);
        // Both channels: 2 × 68.1 ms.
        let both_continuous = shunt_continuous | cfg::MODE_BUS;
        write(&mut sim, reg::CONFIG, config(0b1111, both_continuous));
        clock.set(68.11e-3 + 136.19e-3);
        assert!(!cnvr(&mut sim));
        clock.set(68.11e-3 + 136.21e-3);
        assert!(cnvr(&mut sim));
    }

    #[test]
    fn triggered_converts_once_and_power_down_never() {
        let (mut sim, clock) = chip(one_amp());
        let triggered_both = cfg::MODE_SHUNT | cfg::MODE_BUS;
        write(&mut sim, reg::CONFIG, config(0b0011, triggered_both));
        clock.set(1.1e-3);
        assert!(cnvr(&mut sim));
        read(&mut sim, reg::POWER);
        clock.set(0.5);
        assert!(
            !cnvr(&mut sim),
            "no second conversion without a new trigger"
        );
        write(&mut sim, reg::CONFIG, config(0b0011, triggered_both));
        clock.set(0.502);
        assert!(cnvr(&mut sim), "a configuration write triggers again");

        let (mut sim, clock) = chip(one_amp());
        write(&mut sim, reg::CONFIG, config(0b0011, 0)); // power-down
        clock.set(1.0);
        assert!(!cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 0);
    }

    #[test]
    fn sadc_aliases_decode_like_the_datasheet() {
        assert_eq!(adc_setting(0b0100), adc_setting(0b0000));
        assert_eq!(adc_setting(0b0111), (1, 532e-6));
        assert_eq!(adc_setting(0b1000), (1, 532e-6));
        assert_eq!(adc_setting(0b1001), (2, 1.06e-3));
        assert_eq!(adc_setting(0b1111), (128, 68.1e-3));
    }

    #[test]
    fn current_overflow_sets_ovf() {
        let (mut sim, clock) = chip(one_amp());
        // 10000 × 0xFFFE / 4096 ≈ 160 000: far beyond a signed 16-bit register.
        write(&mut sim, reg::CALIBRATION, 0xFFFE);
        clock.set(2e-3);
        assert_eq!(read(&mut sim, reg::BUS) & bus_flags::OVF, bus_flags::OVF);
        assert_eq!(read(&mut sim, reg::CURRENT), i16::MAX as u16);
    }

    #[test]
    fn open_builds_a_labelled_simulated_sensor_and_applies_rig_faults() {
        use crate::clock::{PhaseLog, RunClock};
        use crate::sensor::PowerSensor;

        let ctx = SensorContext {
            clock: RunClock::start(),
            phases: PhaseLog::new(),
        };
        let mut spec = Ina219Spec {
            rail: "5V".into(),
            i2c_bus: None,
            address: 0x41,
            shunt_ohms: 0.1,
            max_current_a: 3.2,
            adc: Default::default(),
            bus_range_v: 32,
            shunt_range_mv: None,
            load: None,
            faults: None,
        };
        let mut sensor = open(&spec, &ctx).unwrap();
        let info = sensor.info();
        assert_eq!(
            (info.kind.as_str(), info.origin),
            ("ina219-sim", Origin::Simulated)
        );
        assert!(info.detail.starts_with("simulated"), "{}", info.detail);
        assert!(sensor.read().is_ok());

        // Initialisation alone takes more than 3 transactions.
        spec.faults = Some(SimFaultSpec {
            nack_after_transactions: Some(3),
            absent: false,
        });
        let err = open(&spec, &ctx).err().unwrap().to_string();
        assert!(err.contains("no INA219 answers at 0x41"), "{err}");
    }

    #[test]
    fn faults_nack_after_n_and_absent() {
        let (mut sim, _) = chip(one_amp());
        sim.inject(SimFault::NackAfterTransactions(2));
        read(&mut sim, reg::CONFIG);
        read(&mut sim, reg::CONFIG);
        let mut buf = [0; 2];
        let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
        assert_eq!(err.to_string(), "no acknowledge (address)");
        sim.clear_faults();
        read(&mut sim, reg::CONFIG);

        let faults = SimFault::from_spec(&SimFaultSpec {
            absent: true,
            ..Default::default()
        });
        assert_eq!(faults, [SimFault::Absent]);
        sim.inject(faults[0]);
        assert!(sim.write(ADDR, &[0]).is_err());
    }
}
