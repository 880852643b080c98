//! A register-level model of the TI INA219 (datasheet SBOS448G) on a Linux I2C bus, behind
//! `embedded_hal::i2c::I2c`.
//!
//! The `ina219-sim` sensor is the real [`Ina219Sensor`] driver talking to this model instead of
//! `/dev/i2c-N`, so tests exercise the exact code a board runs: addressing, the register
//! pointer, reset, calibration, the current/power arithmetic and its overflow flag, and the
//! conversion timing that makes fast reads return the same sample again. The analog inputs come
//! from a [`Load`](super::load::Load); time comes from a [`TimeSource`], so tests can step a
//! [`crate::clock::ManualClock`].
//!
//! The bus follows linux-embedded-hal's `I2cdev`: one `transaction` is one I2C_RDWR ioctl with
//! one message per operation, refused as i2c-dev and the chosen adapter driver refuse it
//! ([`I2cAdapter`](super::ina219::I2cAdapter)), with the errno Linux returns; its SMBus word transfers (the I2C_SMBUS
//! ioctl) are the driver's path on an SMBus-only adapter, which refuses every I2C_RDWR. A timed bus ([`SimBus::timed`]) turns the
//! clock cycles on the wire into time: each message is sampled by the chip at the moment it
//! happens, and the call blocks until the transfer's end. The model is never more forgiving
//! than a board on purpose: a driver bug that only a board would show is the kind this model
//! exists to catch.
//!
//! Not modelled: ADC resolution below 12 bits changes only the conversion time (register LSBs
//! stay 10 µV and 4 mV), there is no ADC noise beyond what the load supplies, and the chip never
//! stretches the clock.

mod adapter;
mod chip;
mod faults;
mod registers;

pub use adapter::*;
pub use chip::*;
pub use faults::*;
pub use registers::*;

use std::sync::Arc;

use anyhow::Result;

use super::ina219::{AdapterBus, Ina219Sensor, Ina219Settings};
use super::ina219::{Ina219Spec, SimLoadSpec};
use super::load::SimulatedBoard;
use super::{Origin, SensorContext, SensorInfo};
use crate::clock::{PhaseLog, TimeSource};

/// The driver on a simulated chip, as on a board.
pub type SimSensor = Ina219Sensor<AdapterBus<SimulatedIna219>>;

/// The driver on a simulated chip, opened as on Linux: the transfers chosen from what its
/// adapter offers ([`AdapterBus`]), bus errors described as Linux's.
pub fn sensor(
    chip: SimulatedIna219,
    settings: Ina219Settings,
    info: SensorInfo,
) -> Result<SimSensor> {
    let bus = AdapterBus::open(chip, &settings, describe_sim)?;
    Ina219Sensor::with_describe(bus, settings, info, describe_sim)
}

/// Checks `[sensors.load]` keys that the chip, not the board, uses; one line naming the key.
pub fn check_load(load: &SimLoadSpec) -> Result<(), String> {
    for (key, value, least) in [
        ("supply_volts", load.supply_volts, f64::MIN_POSITIVE),
        ("source_ohms", load.source_ohms, 0.0),
        ("idle_amps", load.idle_amps, 0.0),
        ("active_amps", load.active_amps, 0.0),
        ("noise_amps", load.noise_amps, 0.0),
    ] {
        if !(value >= least && value.is_finite()) {
            let what = if least > 0.0 { "positive" } else { "0 or more" };
            return Err(format!("load.{key} must be {what}, not {value}"));
        }
    }
    match load.actual_shunt_ohms {
        Some(ohms) if !(ohms > 0.0 && ohms.is_finite()) => Err(format!(
            "load.actual_shunt_ohms must be positive, not {ohms}"
        )),
        _ => Ok(()),
    }
}

/// Opens an `ina219-sim` sensor: the real driver on a simulated chip on a timed bus, whose load
/// is a [`SimulatedBoard`] following the run's phases on the run's clock.
pub fn open(spec: &Ina219Spec, ctx: &SensorContext, chips_on_bus: u32) -> Result<SimSensor> {
    open_on(
        spec,
        Arc::new(ctx.clock),
        ctx.phases.clone(),
        ctx.sim_buses.wire(&bus_name(spec)),
        chips_on_bus,
    )
}

/// The simulated bus a sensor names (chips naming the same one share its time).
fn bus_name(spec: &Ina219Spec) -> String {
    spec.i2c_bus
        .as_deref()
        .map_or(DEFAULT_SIM_BUS.into(), |p| p.to_string_lossy().into_owned())
}

/// As [`open`], on any clock (a [`crate::clock::ManualClock`] in tests) and `wire`.
pub fn open_on(
    spec: &Ina219Spec,
    clock: Arc<dyn TimeSource>,
    phases: PhaseLog,
    wire: SimWire,
    chips_on_bus: u32,
) -> Result<SimSensor> {
    let load_spec = spec.load.clone().unwrap_or_default();
    check_load(&load_spec).map_err(anyhow::Error::msg)?;
    let board = SimulatedBoard::new(&load_spec, phases)?;
    let settings = Ina219Settings {
        chips_on_bus,
        ..Ina219Settings::from_spec(spec, "simulated I2C bus")?
    };
    let bus = SimBus::timed(spec.bus_adapter.unwrap_or_default(), settings.bus_khz);
    let bus_name = bus_name(spec);
    // The chip measures across the board's real shunt; the driver assumes `shunt_ohms`.
    let actual_ohms = load_spec.actual_shunt_ohms.unwrap_or(spec.shunt_ohms);
    let chip =
        SimulatedIna219::on_wire(spec.address, actual_ohms, Box::new(board), clock, bus, wire);
    let real_shunt = if actual_ohms == spec.shunt_ohms {
        String::new()
    } else {
        format!("; its shunt really {actual_ohms} Ω")
    };
    for fault in spec.faults.iter().flat_map(SimFault::from_spec) {
        chip.inject(fault);
    }
    let info = SensorInfo {
        kind: "ina219-sim".into(),
        rail: spec.rail.clone(),
        origin: Origin::Simulated,
        detail: format!(
            "simulated INA219 ({}) at {:#04x} on {bus} ({bus_name}), up to {:.0} readings/s; board {:.2} A idle + \
             {:.2} A busy, σ {} A, {} V{real_shunt}",
            settings.summary(),
            spec.address,
            settings.readings_per_s(),
            load_spec.idle_amps,
            load_spec.active_amps,
            load_spec.noise_amps,
            load_spec.supply_volts
        ),
    };
    sensor(chip, settings, info)
}

#[cfg(test)]
mod tests {

    use std::sync::Arc;

    use anyhow::Result;
    use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource, Operation};

    use super::super::ina219::{Functionality, I2cAdapter, Ina219Spec, SimFaultSpec, SmbusWord};
    use super::super::load::Load;
    use super::super::{Origin, SensorContext};
    use crate::clock::TimeSource;

    use super::*;
    use crate::clock::ManualClock;
    use crate::sensor::load::{ConstantLoad, SquareWave};

    const ADDR: u8 = 0x40;

    fn chip(load: impl Load + 'static) -> (SimulatedIna219, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(0.0));
        let sim = SimulatedIna219::new(ADDR, 0.1, Box::new(load), clock.clone());
        (sim, clock)
    }

    /// A chip on a timed bus, powered on at t = 1 s.
    fn chip_on(adapter: I2cAdapter, khz: u32, amps: f64) -> (SimulatedIna219, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1.0));
        let load = ConstantLoad { amps, volts: 5.0 };
        let bus = SimBus::timed(adapter, khz);
        let sim = SimulatedIna219::on_bus(ADDR, 0.1, Box::new(load), clock.clone(), bus);
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

    fn assert_close(what: &str, got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "{what}: got {got}, want {want}");
    }

    /// The `ina219` crate's transaction without `no_transaction`: four register reads in one
    /// I2C_RDWR (write, read, write, read, ...).
    fn four_reads_in_one_transaction(sim: &mut SimulatedIna219) -> Result<[u16; 4], SimI2cError> {
        let mut bufs = [[0u8; 2]; 4];
        let [b0, b1, b2, b3] = &mut bufs;
        let mut ops = [
            Operation::Write(&[reg::BUS]),
            Operation::Read(b0),
            Operation::Write(&[reg::POWER]),
            Operation::Read(b1),
            Operation::Write(&[reg::SHUNT]),
            Operation::Read(b2),
            Operation::Write(&[reg::CURRENT]),
            Operation::Read(b3),
        ];
        sim.transaction(ADDR, &mut ops)?;
        Ok(bufs.map(u16::from_be_bytes))
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
        // Linux reports any NACK, address or data, as EREMOTEIO.
        let nack = Err(SimI2cError::new(errno::EREMOTEIO));
        assert_eq!(sim.write(0x41, &[0]), nack);
        assert_eq!(sim.write(ADDR, &[6]), nack, "no register 6: pointer NACKed");
        assert_eq!(
            sim.write(ADDR, &[reg::CALIBRATION, 0x10, 0x00, 0x55]),
            nack,
            "a fourth byte is NACKed"
        );
        assert_eq!(
            read(&mut sim, reg::CALIBRATION),
            0x1000,
            "after the third byte"
        );
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
    fn shunt_clips_where_the_register_field_ends_not_at_the_nominal_range() {
        // ±40 mV (PG = 00): SIGN bits over SD11..SD0, so 4095 (40.95 mV) and -4096.
        for (amps, pg, want) in [
            (1.0, 0b00, 4095_i16),
            (-1.0, 0b00, -4096),
            (1.0, 0b01, 8191),
            (1.0, 0b10, 10_000), // 100 mV fits ±160 mV
            (4.0, 0b11, 32767),  // 400 mV: 327.67 mV at ±320 mV
            (-4.0, 0b11, -32768),
        ] {
            let (mut sim, clock) = chip(ConstantLoad { amps, volts: 5.0 });
            let value = cfg::BRNG | pg << cfg::PG_SHIFT | 0b0011 << cfg::BADC_SHIFT;
            write(
                &mut sim,
                reg::CONFIG,
                value | 0b0011 << cfg::SADC_SHIFT | 0b111,
            );
            clock.set(2e-3);
            assert_eq!(
                read(&mut sim, reg::SHUNT) as i16,
                want,
                "{amps} A, PG {pg:02b}"
            );
        }
    }

    #[test]
    fn bcm2835_refuses_a_read_before_the_last_message_and_nothing_reaches_the_bus() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        let before = (clock.now(), sim.transactions());
        let err = four_reads_in_one_transaction(&mut sim).unwrap_err();
        assert_eq!(err.errno(), errno::EOPNOTSUPP);
        assert_eq!(
            err.to_string(),
            "EOPNOTSUPP: Operation not supported on transport endpoint"
        );
        assert_eq!(
            (clock.now(), sim.transactions()),
            before,
            "no bus time, no transfer"
        );
        assert_eq!(sim.last_transfer(), None);
        // A write then a read (the read last) is fine; so is a lone read.
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F);
        let mut buf = [0; 2];
        sim.read(ADDR, &mut buf).unwrap();
        // The permissive and tegra adapters take the crate's old transaction.
        for adapter in [I2cAdapter::Permissive, I2cAdapter::Tegra] {
            let (mut sim, _) = chip_on(adapter, 100, 1.0);
            assert!(
                four_reads_in_one_transaction(&mut sim).is_ok(),
                "{adapter:?}"
            );
        }
    }

    #[test]
    fn smbus_only_refuses_every_i2c_transfer_and_serves_smbus_words() {
        let (mut sim, clock) = chip_on(I2cAdapter::SmbusOnly, 100, 1.0);
        let funcs = sim.functionality().unwrap();
        assert!(!funcs.has(Functionality::I2C), "{funcs:?}");
        assert!(funcs.has(Functionality::SMBUS_READ_WORD_DATA));
        assert!(funcs.has(Functionality::SMBUS_WRITE_WORD_DATA));
        // No master_xfer: i2c_transfer refuses every I2C_RDWR, after i2c-dev's own checks.
        let refused = Err(SimI2cError::new(errno::EOPNOTSUPP));
        let mut buf = [0; 2];
        assert_eq!(sim.write_read(ADDR, &[reg::CONFIG], &mut buf), refused);
        assert_eq!(sim.write(ADDR, &[reg::CALIBRATION, 0x10, 0x00]), refused);
        assert_eq!(sim.read(ADDR, &mut buf), refused);
        assert_eq!(
            four_reads_in_one_transaction(&mut sim),
            Err(SimI2cError::new(errno::EOPNOTSUPP))
        );
        assert_eq!(
            sim.transaction(ADDR, &mut []),
            Err(SimI2cError::new(errno::EINVAL))
        );
        assert_eq!(
            (clock.now(), sim.transactions(), sim.last_transfer()),
            (1.0, 0, None),
            "nothing reached the bus"
        );
        // SMBus words go low byte first: the chip's MSB is the word's low byte.
        let t = clock.now();
        assert_eq!(sim.smbus_read_word(ADDR, reg::CONFIG), Ok(0x9F39));
        // START, address, command (19), repeated START, address, 2 bytes (28), STOP (1).
        assert_close("read word", clock.now() - t, 0.48e-3);
        let t = clock.now();
        sim.smbus_write_word(ADDR, reg::CALIBRATION, 0x0010)
            .unwrap();
        assert_close("write word", clock.now() - t, 0.38e-3);
        assert_eq!(sim.peek(reg::CALIBRATION), Some(0x1000));
        assert_eq!(sim.transactions(), 2);
        // An SMBus controller reports a NACKed address as ENXIO (START, address, STOP).
        let t = clock.now();
        assert_eq!(
            sim.smbus_read_word(0x41, reg::CONFIG),
            Err(SimI2cError::new(errno::ENXIO))
        );
        assert_close("NACK", clock.now() - t, 0.11e-3);
    }

    #[test]
    fn smbus_words_go_out_as_i2c_transfers_on_an_i2c_adapter() {
        for adapter in [
            I2cAdapter::Bcm2835,
            I2cAdapter::Tegra,
            I2cAdapter::Permissive,
        ] {
            let (mut sim, clock) = chip_on(adapter, 100, 1.0);
            let funcs = sim.functionality().unwrap();
            let words = Functionality::SMBUS_READ_WORD_DATA | Functionality::SMBUS_WRITE_WORD_DATA;
            assert!(funcs.has(Functionality::I2C | words), "{adapter:?}");
            // The i2c core's emulation: the same messages, under the adapter's rules (a read
            // last passes i2c-bcm2835's).
            let t = clock.now();
            assert_eq!(sim.smbus_read_word(ADDR, reg::CONFIG), Ok(0x9F39));
            assert_close("read word", clock.now() - t, 0.48e-3);
            sim.smbus_write_word(ADDR, reg::CALIBRATION, 0x0010)
                .unwrap();
            assert_eq!(read(&mut sim, reg::CALIBRATION), 0x1000, "{adapter:?}");
            assert_eq!(
                sim.smbus_read_word(0x41, reg::CONFIG),
                Err(SimI2cError::new(errno::EREMOTEIO)),
                "{adapter:?}"
            );
        }
    }

    #[test]
    fn an_smbus_only_rig_reads_through_smbus_words() {
        use crate::clock::{PhaseLog, RunClock};
        use crate::sensor::PowerSensor;

        let ctx = SensorContext::new(RunClock::start(), PhaseLog::new());
        let spec = Ina219Spec {
            bus_adapter: Some(I2cAdapter::SmbusOnly),
            ..Ina219Spec::new("5V", 0.1, 3.2)
        };
        let mut sensor = open(&spec, &ctx, 1).unwrap();
        assert_eq!(sensor.transfers_label(), "SMBus word transfers");
        assert!(
            sensor
                .info()
                .detail
                .contains("at 0x40 on a smbus-only bus at 100 kHz"),
            "{}",
            sensor.info().detail
        );
        assert!(sensor.read().is_ok());
    }

    #[test]
    fn tegra_refuses_zero_length_and_over_long_messages() {
        let (mut sim, _) = chip_on(I2cAdapter::Tegra, 400, 1.0);
        let refused = Err(SimI2cError::new(errno::EOPNOTSUPP));
        assert_eq!(sim.write(ADDR, &[]), refused, "I2C_AQ_NO_ZERO_LEN");
        assert_eq!(sim.read(ADDR, &mut []), refused);
        assert_eq!(sim.read(ADDR, &mut [0; 4097]), refused, "max_read_len 4096");
        sim.read(ADDR, &mut [0; 4096]).unwrap();
        // bcm2835 and permissive send the address alone (a bus scan's probe).
        for adapter in [I2cAdapter::Bcm2835, I2cAdapter::Permissive] {
            let (mut sim, _) = chip_on(adapter, 400, 1.0);
            sim.write(ADDR, &[]).unwrap();
        }
    }

    #[test]
    fn i2c_dev_refuses_more_than_42_messages_and_none_on_every_adapter() {
        for adapter in [
            I2cAdapter::Bcm2835,
            I2cAdapter::Tegra,
            I2cAdapter::Permissive,
        ] {
            let (mut sim, _) = chip_on(adapter, 100, 1.0);
            let invalid = Err(SimI2cError::new(errno::EINVAL));
            let mut ops: Vec<Operation<'_>> = (0..43).map(|_| Operation::Write(&[0])).collect();
            assert_eq!(sim.transaction(ADDR, &mut ops), invalid, "{adapter:?}");
            assert_eq!(sim.transaction(ADDR, &mut []), invalid, "{adapter:?}");
            // 42 messages reach the bus (where joined one-byte writes overrun a register).
            ops.truncate(RDWR_MAX_MSGS);
            assert_ne!(
                sim.transaction(ADDR, &mut ops),
                invalid,
                "{adapter:?}: 42 writes"
            );
            assert_eq!(sim.transactions(), 1, "{adapter:?}");
        }
    }

    #[test]
    fn bus_time_is_the_clock_cycles_on_the_wire() {
        for (khz, read_s) in [(100, 0.48e-3), (400, 0.12e-3)] {
            let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, khz, 1.0);
            // Register read: START, address, pointer (19), Sr, address, 2 bytes (28), STOP (1).
            let t = clock.now();
            read(&mut sim, reg::BUS);
            assert_close("register read", clock.now() - t, read_s);
            assert_eq!(sim.last_transfer(), Some((t, clock.now())));
            // Register write: START, address, 3 bytes, STOP: 38 cycles.
            clock.set(clock.now() + 1.0);
            let t = clock.now();
            write(&mut sim, reg::CALIBRATION, 4096);
            assert_close(
                "register write",
                clock.now() - t,
                38.0 / (f64::from(khz) * 1e3),
            );
            // A NACKed address: START, address, STOP: 11 cycles.
            clock.set(clock.now() + 1.0);
            let t = clock.now();
            assert!(sim.write(0x41, &[0]).is_err());
            assert_close("NACK", clock.now() - t, 11.0 / (f64::from(khz) * 1e3));
        }
        // The crate's old 4-register transaction, where an adapter takes it: 4 × 47 + STOP.
        let (mut sim, clock) = chip_on(I2cAdapter::Permissive, 100, 1.0);
        let t = clock.now();
        four_reads_in_one_transaction(&mut sim).unwrap();
        assert_close("old transaction", clock.now() - t, 1.89e-3);
    }

    #[test]
    fn chips_on_one_bus_take_turns_on_its_wire() {
        let clock = Arc::new(ManualClock::new(1.0));
        let bus = SimBus::timed(I2cAdapter::Bcm2835, 100);
        let wire = SimWire::new();
        let on_wire = |address| {
            let load = Box::new(one_amp());
            SimulatedIna219::on_wire(address, 0.1, load, clock.clone(), bus, wire.clone())
        };
        let (mut supply, mut coral) = (on_wire(0x40), on_wire(0x41));
        // Each chip answers its own address only: the other's transfer is not for it.
        assert!(supply.write(0x41, &[reg::BUS]).is_err());
        clock.set(2.0);
        // The Pi's chip is read; the Coral's read is asked for while that is on the wire
        // (its sampler thread woke at the same moment) and goes out when the wire is free.
        let (start, _) = {
            let mut buf = [0; 2];
            supply.write_read(0x40, &[reg::BUS], &mut buf).unwrap();
            supply.last_transfer().unwrap()
        };
        clock.set(start + 0.1e-3);
        let mut buf = [0; 2];
        coral.write_read(0x41, &[reg::BUS], &mut buf).unwrap();
        let (first, second) = (
            supply.last_transfer().unwrap(),
            coral.last_transfer().unwrap(),
        );
        assert_eq!(second.0, first.1, "the second transfer waits for the first");
        assert_close("second transfer", second.1 - second.0, 0.48e-3);
        // A chip alone on its own wire would have started at once.
        let (mut alone, alone_clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        alone_clock.set(start + 0.1e-3);
        alone.write_read(0x40, &[reg::BUS], &mut buf).unwrap();
        assert_eq!(alone.last_transfer().unwrap().0, start + 0.1e-3);
    }

    #[test]
    fn a_transfer_within_0_2_ms_of_the_last_end_starts_back_to_back() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        read(&mut sim, reg::BUS);
        let end = clock.now();
        // The caller came back 0.15 ms late (its sleep overshot): the bus did not idle.
        clock.set(end + 0.15e-3);
        read(&mut sim, reg::BUS);
        assert_eq!(sim.last_transfer(), Some((end, end + 0.48e-3)));
        // 0.25 ms late is a real gap.
        let end = clock.now();
        clock.set(end + 0.25e-3);
        read(&mut sim, reg::BUS);
        let (start, _) = sim.last_transfer().unwrap();
        assert_close("start after a gap", start, end + 0.25e-3);
    }

    #[test]
    fn one_transfer_samples_each_message_when_it_happens() {
        // The first conversion ends 1.064 ms after power-on. The crate's old transaction,
        // started at 0.7 ms, latches the bus register 29 cycles in (0.99 ms: before that) and
        // the shunt register 123 cycles in (1.93 ms: after it), as a real chip would.
        let clock = Arc::new(ManualClock::new(0.0));
        let bus = SimBus::timed(I2cAdapter::Permissive, 100);
        let mut sim = SimulatedIna219::on_bus(ADDR, 0.1, Box::new(one_amp()), clock.clone(), bus);
        clock.set(0.7e-3);
        let [bus_reg, power, shunt, _] = four_reads_in_one_transaction(&mut sim).unwrap();
        assert_eq!(
            bus_reg, 0,
            "no conversion yet when the bus register was latched"
        );
        assert_eq!(power, 0, "calibration 0");
        assert_eq!(
            shunt, 10_000,
            "the conversion had ended when the shunt was latched"
        );
    }

    #[test]
    fn consecutive_writes_join_on_tegra_but_not_on_bcm2835() {
        // embedded-hal joins adjacent operations of one direction (i2cdev: I2C_M_NOSTART).
        let split_write = |sim: &mut SimulatedIna219| {
            let mut ops = [
                Operation::Write(&[reg::CALIBRATION, 0x10]),
                Operation::Write(&[0x00]),
            ];
            sim.transaction(ADDR, &mut ops)
        };
        let (mut sim, _) = chip_on(I2cAdapter::Tegra, 100, 1.0);
        split_write(&mut sim).unwrap();
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0x1000);
        // i2c-bcm2835 ignores the flag: the second message starts over, its byte a pointer.
        let (mut sim, _) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        split_write(&mut sim).unwrap();
        assert_eq!(sim.peek(reg::CALIBRATION), Some(0));
    }

    #[test]
    fn brown_out_resets_the_registers_while_conversions_go_on() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 400, 1.0);
        write(&mut sim, reg::CALIBRATION, 4096);
        write(&mut sim, reg::CONFIG, 0x199F);
        sim.inject(SimFault::ResetAt(1.01));
        clock.set(1.005);
        assert_eq!(read(&mut sim, reg::CURRENT), 10_000);
        clock.set(1.02);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0);
        assert!(cnvr(&mut sim), "still converting");
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000);
        assert_eq!(read(&mut sim, reg::CURRENT), 0);
        assert_eq!(read(&mut sim, reg::POWER), 0);
    }

    #[test]
    fn cnvr_stuck_never_sets_though_the_registers_update() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        sim.inject(SimFault::CnvrStuck);
        clock.set(1.5);
        assert!(!cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000);
    }

    #[test]
    fn nack_bursts_and_timeouts_fail_as_linux_reports_them() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        sim.inject(SimFault::NackBurst {
            at_s: 1.1,
            transactions: 2,
        });
        read(&mut sim, reg::CONFIG); // before the burst
        clock.set(1.1);
        let mut buf = [0; 2];
        for _ in 0..2 {
            let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
            assert_eq!(err.to_string(), "EREMOTEIO: Remote I/O error");
            assert_eq!(
                embedded_hal::i2c::Error::kind(&err),
                ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown)
            );
        }
        read(&mut sim, reg::CONFIG);

        sim.inject(SimFault::Timeout {
            at_s: 1.2,
            secs: 1.0,
        });
        clock.set(1.2);
        let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
        assert_eq!(err.errno(), errno::ETIMEDOUT);
        assert_eq!(err.to_string(), "ETIMEDOUT: Connection timed out");
        assert_close("the adapter's timeout", clock.now(), 2.2);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F, "one hang only");
    }

    #[test]
    fn vanished_chip_nacks_then_comes_back_power_cycled() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        write(&mut sim, reg::CALIBRATION, 4096);
        sim.inject(SimFault::Vanish {
            from_s: 1.1,
            until_s: 1.2,
        });
        clock.set(1.15);
        let mut buf = [0; 2];
        assert!(sim.write_read(ADDR, &[0], &mut buf).is_err());
        clock.set(1.2);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0, "reset state");
        assert_eq!(sim.sequence_start(), 1.2, "conversions restart at power-on");
    }

    #[test]
    fn open_builds_a_labelled_simulated_sensor_on_a_timed_bus_and_applies_rig_faults() {
        use crate::clock::{PhaseLog, RunClock};
        use crate::sensor::PowerSensor;

        let ctx = SensorContext::new(RunClock::start(), PhaseLog::new());
        let mut spec = Ina219Spec {
            address: 0x41,
            ..Ina219Spec::new("5V", 0.1, 3.2)
        };
        let mut sensor = open(&spec, &ctx, 1).unwrap();
        let info = sensor.info();
        assert_eq!(
            (info.kind.as_str(), info.origin),
            ("ina219-sim", Origin::Simulated)
        );
        assert!(
            info.detail.starts_with("simulated INA219 (")
                && info.detail.contains(
                    ") at 0x41 on a bcm2835 bus at 100 kHz (sim-i2c), up to 29 readings/s; board"
                ),
            "{}",
            info.detail
        );
        let t = ctx.clock.now();
        assert!(sensor.read().is_ok());
        assert!(
            ctx.clock.now() - t >= 0.48e-3,
            "a read takes its bus time on the run clock"
        );
        spec.bus_adapter = Some(I2cAdapter::Tegra);
        spec.bus_khz = 400;
        let sensor = open(&spec, &ctx, 1).unwrap();
        assert!(
            sensor
                .info()
                .detail
                .contains("at 0x41 on a tegra bus at 400 kHz (sim-i2c), up to 29 readings/s"),
            "{}",
            sensor.info().detail
        );

        // Initialisation alone takes more than 3 transactions.
        spec.faults = Some(SimFaultSpec {
            nack_after_transactions: Some(3),
            ..Default::default()
        });
        let err = open(&spec, &ctx, 1).err().unwrap().to_string();
        assert!(err.contains("no INA219 answers at 0x41"), "{err}");
    }

    #[test]
    fn rig_fault_tables_become_faults() {
        use crate::sensor::ina219::{NackBurstSpec, VanishSpec};
        let spec = SimFaultSpec {
            nack_after_transactions: Some(9),
            absent: true,
            reset_at_s: Some(2.0),
            cnvr_stuck: true,
            nack_burst: Some(NackBurstSpec {
                at_s: 3.0,
                transactions: 4,
            }),
            timeout_at_s: Some(4.0),
            timeout_ms: None,
            vanish: Some(VanishSpec {
                from_s: 5.0,
                until_s: 6.0,
            }),
        };
        assert_eq!(
            SimFault::from_spec(&spec),
            [
                SimFault::NackAfterTransactions(9),
                SimFault::Absent,
                SimFault::ResetAt(2.0),
                SimFault::CnvrStuck,
                SimFault::NackBurst {
                    at_s: 3.0,
                    transactions: 4
                },
                SimFault::Timeout {
                    at_s: 4.0,
                    secs: DEFAULT_TIMEOUT_S
                },
                SimFault::Vanish {
                    from_s: 5.0,
                    until_s: 6.0
                },
            ]
        );
        let faults = SimFault::from_spec(&SimFaultSpec {
            timeout_at_s: Some(1.0),
            timeout_ms: Some(25.0),
            ..Default::default()
        });
        assert_eq!(
            faults,
            [SimFault::Timeout {
                at_s: 1.0,
                secs: 0.025
            }]
        );
    }

    #[test]
    fn faults_nack_after_n_and_absent() {
        let (mut sim, _) = chip(one_amp());
        sim.inject(SimFault::NackAfterTransactions(2));
        read(&mut sim, reg::CONFIG);
        read(&mut sim, reg::CONFIG);
        let mut buf = [0; 2];
        let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
        assert_eq!(err.to_string(), "EREMOTEIO: Remote I/O error");
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

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A shunt voltage (or bus voltage) `n + frac` register LSBs, |frac| ≤ 0.45, so that
        /// the datasheet's rounding to the nearest LSB is n whatever the order of the
        /// floating-point operations that produced the volts (they err by far less than 0.05
        /// LSB).
        fn counts(range: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = (i32, f64)> {
            (range, -0.45..0.45_f64)
        }

        proptest! {
            #![proptest_config(crate::proptest_config(256))]

            /// SBOS448G, for any shunt current, shunt, bus voltage, PGA range, bus range and
            /// calibration: shunt register = round(V_shunt / 10 µV), clipped where the PGA
            /// range's data field ends (sign bits above SD11 at ±40 mV, ... SD14 at ±320 mV:
            /// -4096·2^PG to 4096·2^PG - 1); bus register bits 15..3 = V_bus / 4 mV (BD11..BD0
            /// at 16 V, BD12..BD0 at 32 V), CNVR (bit 1) set after the conversion; calibration
            /// bit 0 reads 0; current = shunt × cal / 4096 (equation 4), power = current ×
            /// bus / 5000 (equation 5), OVF (bit 0) when either is out of its register's range.
            #[test]
            fn prop_registers_follow_the_datasheet_formulas(
                (shunt_n, shunt_frac) in counts(-40_000..=40_000),
                (bus_n, bus_frac) in counts(-2..=9_000),
                shunt_ohms in 0.001..2.0_f64,
                pg in 0u16..4,
                brng in any::<bool>(),
                cal in any::<u16>(),
            ) {
                let shunt_volts = (f64::from(shunt_n) + shunt_frac) * 10e-6;
                let bus_volts = (f64::from(bus_n) + bus_frac) * 4e-3;
                let load = ConstantLoad { amps: shunt_volts / shunt_ohms, volts: bus_volts };
                let clock = Arc::new(ManualClock::new(0.0));
                let mut sim = SimulatedIna219::new(ADDR, shunt_ohms, Box::new(load), clock.clone());
                write(&mut sim, reg::CALIBRATION, cal);
                let brng_bit = if brng { cfg::BRNG } else { 0 };
                // 12-bit on both channels (0b0011), shunt and bus continuous.
                let config = brng_bit | pg << cfg::PG_SHIFT | 0b0011 << cfg::BADC_SHIFT
                    | 0b0011 << cfg::SADC_SHIFT | 0b111;
                write(&mut sim, reg::CONFIG, config);
                // One conversion: 532 µs shunt + 532 µs bus.
                clock.set(1.1e-3);

                let field = 4096_i32 << pg;
                let shunt = shunt_n.clamp(-field, field - 1);
                let bus_limit = if brng { 8191 } else { 4095 };
                let bus = bus_n.clamp(0, bus_limit);
                let cal_reg = cal & !1;
                // Exact in f64: |shunt × cal| < 2^31.
                let current = (f64::from(shunt) * f64::from(cal_reg) / 4096.0).trunc();
                let power = (current.abs() * f64::from(bus) / 5000.0).trunc();
                let overflow = !(f64::from(i16::MIN)..=f64::from(i16::MAX)).contains(&current)
                    || power > f64::from(u16::MAX);

                prop_assert_eq!(read(&mut sim, reg::CONFIG), config);
                prop_assert_eq!(read(&mut sim, reg::CALIBRATION), cal_reg);
                prop_assert_eq!(read(&mut sim, reg::SHUNT) as i16, shunt as i16);
                let bus_reg = read(&mut sim, reg::BUS);
                prop_assert_eq!(i32::from(bus_reg >> 3), bus);
                prop_assert_eq!(bus_reg & 0b100, 0, "bit 2 is not used");
                prop_assert!(bus_reg & bus_flags::CNVR != 0, "conversion ready");
                prop_assert_eq!(bus_reg & bus_flags::OVF != 0, overflow, "OVF: current {}, power {}", current, power);
                if !overflow {
                    prop_assert_eq!(f64::from(read(&mut sim, reg::CURRENT) as i16), current);
                    prop_assert_eq!(f64::from(read(&mut sim, reg::POWER)), power);
                }
            }
        }
    }
}
