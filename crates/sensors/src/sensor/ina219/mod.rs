//! The TI INA219 current/power monitor, read through the `ina219` crate over any
//! `embedded_hal::i2c::I2c` bus: `/dev/i2c-N` on a board ([`open_linux`]), or the register model
//! in [`super::ina219_sim`], so the simulated sensor runs this exact driver code.
//!
//! Every register access is its own write-then-read transfer (the crate's `no_transaction`
//! feature, and our own reads): the Raspberry Pi's i2c-bcm2835 refuses any transfer with a read
//! before its last message, which is what the crate's multi-register transaction sends. On an
//! adapter without plain I2C each is an SMBus word transfer instead ([`AdapterBus`]).

mod spec;
pub use spec::{
    AdcMode, I2cAdapter, Ina219Spec, NackBurstSpec, Ranged, SimFaultSpec, SimLoadSpec, VanishSpec,
};

mod bus;
mod driver;
mod i2c_funcs;
mod settings;
mod smbus;

pub use bus::*;
pub use driver::*;
pub use settings::*;
pub use smbus::*;

#[cfg(test)]
mod tests {

    use std::io;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::Result;
    use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

    use ina219::calibration::MicroAmpere;
    use ina219::errors::{InitializationError, InitializationErrorReason};
    use libc::c_ulong;
    use linux_embedded_hal::I2cdev;

    use linux_embedded_hal::i2cdev::linux::LinuxI2CError;
    use linux_embedded_hal::I2CError;

    use super::super::{Origin, PowerSensor, Reading, SensorInfo};

    use super::*;
    use crate::clock::{ManualClock, TimeSource};
    use crate::sensor::ina219_sim::{
        self, bus_flags, describe_sim, reg, SimBus, SimFault, SimI2cError, SimulatedIna219,
    };
    use crate::sensor::load::{ConstantLoad, Load};

    const ADAPTERS: [I2cAdapter; 4] = [
        I2cAdapter::Bcm2835,
        I2cAdapter::Tegra,
        I2cAdapter::Permissive,
        I2cAdapter::SmbusOnly,
    ];

    /// Both channels at 12 bits, as the datasheet's examples are.
    fn spec(max_current_a: f64, shunt_range_mv: Option<u16>) -> Ina219Spec {
        Ina219Spec {
            shunt_range_mv,
            adc: AdcMode::Bits12,
            bus_adc: AdcMode::Bits12,
            ..Ina219Spec::new("5V", 0.1, max_current_a)
        }
    }

    /// Where no calibration register fits, the advice names the key that is wrong: a shunt no
    /// supply's current suits, or a current this shunt cannot take (issue 30: it blamed
    /// max_current_a for a 1 µΩ and a 1 MΩ shunt).
    #[test]
    fn range_advice_names_the_shunt_or_the_current() {
        for ohms in [1e-6, 1e6] {
            let spec = Ina219Spec {
                shunt_ohms: ohms,
                ..spec(3.2, None)
            };
            let e = Ina219Settings::from_spec(&spec, "b")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!(
                    "INA219: shunt_ohms = {ohms} Ω is no shunt an INA219"
                )) && e.contains("check shunt_ohms"),
                "{e}"
            );
        }
        let e = Ina219Settings::from_spec(&spec(0.000001, None), "b")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("on this shunt max_current_a must be between 0.205 and 3.200 A"),
            "{e}"
        );
    }

    /// The datasheet's example: 0.1 Ω with a 100 µA current LSB.
    fn datasheet_spec() -> Ina219Spec {
        spec(3.2768, Some(320))
    }

    type Rig = (ina219_sim::SimSensor, SimulatedIna219, Arc<ManualClock>);

    /// The driver on a simulated chip on `bus`, drawing `load`, opened at t = 0.
    fn open_on(spec: &Ina219Spec, load: Box<dyn Load>, bus: SimBus) -> Result<Rig> {
        let clock = Arc::new(ManualClock::new(0.0));
        let chip = SimulatedIna219::on_bus(spec.address, spec.shunt_ohms, load, clock.clone(), bus);
        let settings = Ina219Settings::from_spec(spec, "test bus")?;
        let info = SensorInfo {
            kind: "ina219".into(),
            rail: spec.rail.clone(),
            origin: Origin::Simulated,
            detail: settings.summary(),
        };
        Ok((
            ina219_sim::sensor(chip.clone(), settings, info)?,
            chip,
            clock,
        ))
    }

    /// A constant load on a Raspberry Pi's bus at the spec's clock.
    fn open_sim(spec: &Ina219Spec, amps: f64) -> Result<Rig> {
        let load = Box::new(ConstantLoad { amps, volts: 5.0 });
        open_on(spec, load, SimBus::timed(I2cAdapter::Bcm2835, spec.bus_khz))
    }

    /// Sets the clock `dt` after the chip's conversions started (the configuration write).
    fn at(chip: &SimulatedIna219, clock: &ManualClock, dt: f64) {
        clock.set(chip.sequence_start() + dt);
    }

    fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: got {got}, want {want} ± {tolerance}"
        );
    }

    /// What the sampler does, in virtual time: read every `update_period` (at once if a read ran
    /// late) until `end`.
    fn poll_until(
        sensor: &mut ina219_sim::SimSensor,
        clock: &ManualClock,
        end: f64,
    ) -> Vec<(f64, Result<Reading>)> {
        let period = sensor.update_period().as_secs_f64();
        let mut next = clock.now();
        let mut out = Vec::new();
        while next < end {
            clock.sleep_until(next);
            let t = clock.now();
            out.push((t, sensor.read()));
            next += period;
        }
        out
    }

    #[test]
    fn settings_follow_the_datasheet_example() {
        let s = Ina219Settings::from_spec(&datasheet_spec(), "b").unwrap();
        assert_eq!(s.calibration.current_lsb(), MicroAmpere(100));
        assert_eq!(s.calibration.as_bits(), 4096);
        assert_near("power LSB", s.power_lsb_w(), 0.002, 1e-15);
        assert_eq!(s.conversion_time(), Duration::from_micros(1064));
        assert_eq!(
            s.summary(),
            "R=0.1 Ω, I_LSB=100 µA, cal=4096, PGA ±320 mV, 32 V, 12bit"
        );
        let avg = Ina219Spec {
            adc: AdcMode::Avg128,
            bus_adc: AdcMode::Avg128,
            ..datasheet_spec()
        };
        let s = Ina219Settings::from_spec(&avg, "b").unwrap();
        assert_eq!(s.update_period(), Duration::from_micros(136_200));
        // The rig file's default: the shunt averages 64 samples, the bus takes one.
        let default = Ina219Settings::from_spec(&Ina219Spec::new("5V", 0.1, 3.2), "b").unwrap();
        assert_eq!(default.update_period(), Duration::from_micros(34_050 + 532));
        assert_near(
            "default centre offset",
            default.centre_offset_s(),
            532e-6 + 17_025e-6,
            1e-12,
        );
        assert!(
            default.summary().ends_with("avg64, bus 12bit"),
            "{}",
            default.summary()
        );
        let fast = Ina219Spec {
            bus_khz: 1000,
            ..datasheet_spec()
        };
        let err = Ina219Settings::from_spec(&fast, "b").unwrap_err();
        assert!(err.to_string().contains("bus_khz"), "{err}");
    }

    #[test]
    fn a_shunt_correction_scales_the_calibration_as_the_datasheet_does() {
        // SBOS448G 8.5.1: Corrected_Full_Scale_Cal = trunc(Cal × MeasShuntCurrent /
        // INA219_Current). Worked example: the chip reads 1.0204 A where a trusted meter reads
        // 1 A, so the factor is 0.98 and the register trunc(4096 × 0.98) = trunc(4014.08) = 4014.
        let corrected = |f: f64| Ina219Spec {
            shunt_correction: Some(f),
            reference_uncertainty_pct: Some(0.1),
            ..datasheet_spec()
        };
        let s = Ina219Settings::from_spec(&corrected(0.98), "b").unwrap();
        assert_eq!(s.calibration.as_bits(), 4014);
        assert_eq!(s.uncorrected_calibration(), Some(4096));
        assert_eq!(s.calibration.current_lsb(), MicroAmpere(100), "same LSB");
        assert_near("shunt", s.effective_shunt_ohms(), 0.1 / 0.98, 1e-15);
        assert_eq!(
            s.summary(),
            "R=0.1 Ω, I_LSB=100 µA, cal=4014 (4096 corrected ×0.98), PGA ±320 mV, 32 V, 12bit"
        );
        // The datasheet's register with bit 0 cleared (it is not used), against ours from the
        // shunt rounded to 1 µΩ: that rounding moves 0.04096 / (LSB × R) by at most
        // 4096 × 1.25 × 0.5 µΩ / 80 000 µΩ = 0.032, so the truncations differ by at most 1 and,
        // with bit 0 cleared, the registers by at most 2.
        for (f, want) in [(0.8, 3276), (0.990099, 4054), (1.02, 4176), (1.25, 5120)] {
            let got = Ina219Settings::from_spec(&corrected(f), "b").unwrap();
            assert_eq!(got.calibration.as_bits(), want, "factor {f}");
        }
        for k in 0..=450 {
            let f = 0.8 + f64::from(k) * 0.001;
            let got = Ina219Settings::from_spec(&corrected(f), "b").unwrap();
            let datasheet = ((4096.0 * f).trunc() as u16) & !1;
            let diff = i32::from(got.calibration.as_bits()) - i32::from(datasheet);
            assert!(
                diff.abs() <= 2,
                "factor {f}: {} vs {datasheet}",
                got.calibration.as_bits()
            );
        }

        // The reference's 0.1 % stands in for the shunt's 1 %: √(0.5² + 0.5² + 0.1²) %.
        assert_near("calibrated", s.energy_uncertainty(), 0.0071414, 1e-7);
        let by_hand = Ina219Spec {
            reference_uncertainty_pct: None,
            ..corrected(0.98)
        };
        let s = Ina219Settings::from_spec(&by_hand, "b").unwrap();
        assert_near("no reference", s.energy_uncertainty(), 0.0122474, 1e-7);

        for (spec, want) in [
            (
                corrected(1.3),
                "shunt_correction must be between 0.8 and 1.25, not 1.3",
            ),
            (corrected(f64::NAN), "shunt_correction must be between"),
            (
                Ina219Spec {
                    shunt_correction: None,
                    ..corrected(1.0)
                },
                "reference_uncertainty_pct needs shunt_correction",
            ),
            (
                Ina219Spec {
                    reference_uncertainty_pct: Some(-1.0),
                    ..corrected(1.0)
                },
                "reference_uncertainty_pct must be above 0",
            ),
        ] {
            let err = Ina219Settings::from_spec(&spec, "b")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("INA219: {want}")), "{err}");
        }
    }

    #[test]
    fn a_correction_reaches_the_raw_voltage_fallback_too() {
        // The chip's shunt is really 0.101 Ω. On an overflow (20 µA LSB: 1 A is 50 000 LSB)
        // the current comes from the shunt voltage, 10100 LSB of 10 µV: 1.01 A over the
        // stated 0.1 Ω, 1 A over the corrected 0.101 Ω.
        for (correction, want) in [(None, 1.01), (Some(1.0 / 1.01), 1.0)] {
            let clock = Arc::new(ManualClock::new(0.0));
            let load = Box::new(ConstantLoad {
                amps: 1.0,
                volts: 5.0,
            });
            let bus = SimBus::timed(I2cAdapter::Bcm2835, 100);
            let chip = SimulatedIna219::on_bus(0x40, 0.101, load, clock.clone(), bus);
            let spec = Ina219Spec {
                shunt_correction: correction,
                ..spec(0.5, Some(320))
            };
            let settings = Ina219Settings::from_spec(&spec, "test bus").unwrap();
            let info = SensorInfo {
                kind: "ina219".into(),
                rail: "5V".into(),
                origin: Origin::Simulated,
                detail: String::new(),
            };
            let mut sensor = ina219_sim::sensor(chip.clone(), settings, info).unwrap();
            at(&chip, &clock, 2e-3);
            let r = sensor.read().unwrap();
            assert!(r.overflow, "{r:?}");
            // One shunt LSB, 10 µV over 0.1 Ω, is 100 µA.
            assert_near(&format!("{correction:?}"), r.amps.unwrap(), want, 100e-6);
        }
    }

    /// A board's bus: the simulated one plus a fixed software cost per transfer (system
    /// call, interrupt, wake-up), in virtual time.
    struct SlowBus {
        chip: SimulatedIna219,
        clock: Arc<ManualClock>,
        per_transfer_s: f64,
    }

    impl ErrorType for SlowBus {
        type Error = <SimulatedIna219 as ErrorType>::Error;
    }

    impl I2c for SlowBus {
        fn transaction(
            &mut self,
            address: u8,
            ops: &mut [Operation<'_>],
        ) -> Result<(), Self::Error> {
            let result = self.chip.transaction(address, ops);
            self.clock
                .sleep_until(self.clock.now() + self.per_transfer_s);
            result
        }
    }

    #[test]
    fn timed_reads_set_the_period_a_board_really_delivers() {
        // 12-bit at 400 kHz: 1.064 ms conversions, 0.48 ms on the wire for a reading; with
        // 0.3 ms of software per transfer, fetching a reading (4 transfers) takes 1.68 ms, so
        // that is the period the sampler and the validity check must expect.
        let spec = Ina219Spec {
            bus_khz: 400,
            ..datasheet_spec()
        };
        let clock = Arc::new(ManualClock::new(0.0));
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        });
        let bus = SimBus::timed(I2cAdapter::Bcm2835, 400);
        let chip = SimulatedIna219::on_bus(0x40, 0.1, load, clock.clone(), bus);
        let slow = SlowBus {
            chip,
            clock: clock.clone(),
            per_transfer_s: 0.3e-3,
        };
        let settings = Ina219Settings::from_spec(&spec, "test bus").unwrap();
        let info = SensorInfo {
            kind: "ina219".into(),
            rail: "5V".into(),
            origin: Origin::Measured,
            detail: String::new(),
        };
        let mut sensor = Ina219Sensor::with_describe(slow, settings, info, describe_sim).unwrap();
        assert_eq!(sensor.update_period(), Duration::from_micros(1064));
        sensor.time_reads(clock.as_ref()).unwrap();
        assert_near(
            "period",
            sensor.update_period().as_secs_f64(),
            1.68e-3,
            1e-9,
        );
        // Where the wire is the bottleneck, the timing changes nothing.
        let (mut sensor, _, clock) = open_sim(&spec, 1.0).unwrap();
        sensor.time_reads(clock.as_ref()).unwrap();
        assert_eq!(sensor.update_period(), Duration::from_micros(1064));
    }

    #[test]
    fn update_period_is_the_conversion_or_the_bus_time_whichever_is_longer() {
        // (ADC, kHz) → period: 4 register reads are 192 cycles: 1.92 ms at 100 kHz and
        // 0.48 ms at 400 kHz; conversions take 1.064 ms at 12 bits, 0.168 ms at 9 bits.
        for (adc, khz, period_us, rate) in [
            (AdcMode::Bits12, 100, 1920, 520.8),
            (AdcMode::Bits12, 400, 1064, 939.8),
            (AdcMode::Bits9, 100, 1920, 520.8),
            (AdcMode::Bits9, 400, 480, 2083.3),
        ] {
            let spec = Ina219Spec {
                adc,
                bus_adc: adc,
                bus_khz: khz,
                ..datasheet_spec()
            };
            let s = Ina219Settings::from_spec(&spec, "b").unwrap();
            assert_eq!(
                s.update_period(),
                Duration::from_micros(period_us),
                "{adc:?} {khz}"
            );
            assert_near("readings/s", s.readings_per_s(), rate, 0.05);

            // Polled at that period for 2 s of sensor time, nearly every read is fresh.
            let (mut sensor, _, clock) = open_sim(&spec, 1.0).unwrap();
            let start = clock.now();
            let reads = poll_until(&mut sensor, &clock, start + 2.0);
            let fresh = reads
                .iter()
                .filter(|(_, r)| matches!(r, Ok(r) if !r.stale))
                .count();
            let measured = fresh as f64 / (clock.now() - start);
            println!(
                "{} at {khz} kHz: update period {:.3} ms, {measured:.1} fresh readings/s \
                 ({} reads)",
                adc_label(adc),
                s.update_period().as_secs_f64() * 1e3,
                reads.len()
            );
            assert!(reads.iter().all(|(_, r)| r.is_ok()));
            assert_near("measured rate", measured, rate, 0.02 * rate);
        }
    }

    #[test]
    fn ranged_maximum_is_the_peak_unless_the_calibration_cannot_hold_it() {
        // 0.44 A on 0.1 Ω: LSB 0.44 / 32768 = 13.4 µA → 20 µA, cal 20480, PGA ±80 mV (44 mV
        // does not fit 40).
        let spec = Ina219Spec {
            max_current_a: ranged_max_current(0.44, 0.1),
            shunt_range_mv: None,
            ..datasheet_spec()
        };
        let s = Ina219Settings::from_spec(&spec, "b").unwrap();
        assert_eq!(spec.max_current_a, 0.44);
        assert_eq!(
            (
                s.calibration.current_lsb(),
                s.calibration.as_bits(),
                s.shunt_range_mv()
            ),
            (MicroAmpere(20), 20480, 80)
        );
        // 50 mA on 0.1 Ω would need a register above 65535: the least expressible maximum.
        let least = ranged_max_current(0.05, 0.1);
        assert_near("least maximum", least, 0.32768, 1e-12);
        let spec = Ina219Spec {
            max_current_a: least,
            ..spec
        };
        let s = Ina219Settings::from_spec(&spec, "b").unwrap();
        assert_eq!(
            (s.calibration.current_lsb(), s.calibration.as_bits()),
            (MicroAmpere(10), 40960)
        );
        assert_eq!(s.shunt_range_mv(), 40);
        // A smaller shunt needs a coarser LSB: on 10 mΩ at least 62.5 µA, so 100 µA, 3.2768 A.
        assert_near(
            "least on 10 mΩ",
            ranged_max_current(0.5, 0.01),
            3.2768,
            1e-12,
        );
        assert_eq!(ranged_max_current(4.0, 0.01), 4.0);
    }

    #[test]
    fn two_chips_on_one_bus_share_its_time() {
        // 12-bit conversions (1.064 ms) at 100 kHz: alone, the wire allows a reading every
        // 1.92 ms; two chips taking turns get one every 3.84 ms each, and say so.
        let clock = Arc::new(ManualClock::new(0.0));
        let wire = ina219_sim::SimWire::new();
        let bus = SimBus::timed(I2cAdapter::Bcm2835, 100);
        let mut sensors: Vec<ina219_sim::SimSensor> = [0x40, 0x41]
            .into_iter()
            .map(|address| {
                let spec = Ina219Spec {
                    address,
                    ..datasheet_spec()
                };
                let load = Box::new(ConstantLoad {
                    amps: 1.0,
                    volts: 5.0,
                });
                let chip =
                    SimulatedIna219::on_wire(address, 0.1, load, clock.clone(), bus, wire.clone());
                let settings = Ina219Settings {
                    chips_on_bus: 2,
                    ..Ina219Settings::from_spec(&spec, "test bus").unwrap()
                };
                let info = SensorInfo {
                    kind: "ina219".into(),
                    rail: format!("{address:#x}"),
                    origin: Origin::Simulated,
                    detail: String::new(),
                };
                ina219_sim::sensor(chip, settings, info).unwrap()
            })
            .collect();
        let period = sensors[0].update_period();
        assert_eq!(period, Duration::from_micros(3840));
        // Both read on the same schedule, as two sampler threads would: each read waits for
        // the other chip's to leave the wire.
        let start = clock.now();
        let mut fresh = [0usize; 2];
        let mut next = start;
        while next < start + 2.0 {
            for (sensor, count) in sensors.iter_mut().zip(&mut fresh) {
                clock.sleep_until(next);
                *count += usize::from(!sensor.read().unwrap().stale);
            }
            next += period.as_secs_f64();
        }
        for count in fresh {
            let rate = count as f64 / (clock.now() - start);
            assert_near("fresh readings/s per chip", rate, 260.4, 0.02 * 260.4);
        }
    }

    #[test]
    fn one_amp_at_five_volts_reads_within_one_lsb() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        assert_eq!(chip.peek(reg::CALIBRATION), Some(4096));
        at(&chip, &clock, 2e-3);
        assert_eq!(chip.peek(reg::CURRENT), Some(10_000));
        assert_eq!(chip.peek(reg::POWER), Some(2_500));
        let r = sensor.read().unwrap();
        assert_near("amps", r.amps.unwrap(), 1.0, 100e-6);
        assert_near("volts", r.volts.unwrap(), 5.0, 4e-3);
        assert_near("watts", r.watts, 5.0, 2e-3);
        assert!(!r.stale && !r.overflow && !r.saturated, "{r:?}");
    }

    #[test]
    fn old_multi_register_transaction_fails_on_a_pi_with_eopnotsupp() {
        // What the `ina219` crate sends without `no_transaction`: four register reads in one
        // I2C_RDWR. i2c-bcm2835 refuses a read that is not the last message.
        let clock = Arc::new(ManualClock::new(0.0));
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        });
        let bus = SimBus::timed(I2cAdapter::Bcm2835, 100);
        let mut chip = SimulatedIna219::on_bus(0x40, 0.1, load, clock.clone(), bus);
        let mut bufs = [[0u8; 2]; 4];
        let [b0, b1, b2, b3] = &mut bufs;
        let mut ops = [
            Operation::Write(&[0x02]),
            Operation::Read(b0),
            Operation::Write(&[0x03]),
            Operation::Read(b1),
            Operation::Write(&[0x01]),
            Operation::Read(b2),
            Operation::Write(&[0x04]),
            Operation::Read(b3),
        ];
        let err = chip.transaction(0x40, &mut ops).unwrap_err();
        assert_eq!(err, SimI2cError::new(95));
        assert_eq!(clock.now(), 0.0, "refused before the bus");
        let settings = Ina219Settings::from_spec(&datasheet_spec(), "/dev/i2c-1").unwrap();
        assert_eq!(
            bus_error(&settings, describe_sim(&err)).to_string(),
            "INA219 at 0x40 on /dev/i2c-1: the I2C adapter refused the transfer \
             (EOPNOTSUPP: Operation not supported on transport endpoint)"
        );
    }

    /// The settings of the datasheet's example on `bus`, and a sensor description.
    /// A chip at 0x40 behind `adapter` (100 kHz) that answers nothing.
    fn absent_chip(adapter: I2cAdapter) -> SimulatedIna219 {
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        });
        let clock = Arc::new(ManualClock::new(0.0));
        let chip = SimulatedIna219::on_bus(0x40, 0.1, load, clock, SimBus::timed(adapter, 100));
        chip.inject(SimFault::Absent);
        chip
    }

    fn on_bus(bus: &str) -> (Ina219Settings, SensorInfo) {
        let settings = Ina219Settings::from_spec(&datasheet_spec(), bus).unwrap();
        let info = SensorInfo {
            kind: "ina219".into(),
            rail: "5V".into(),
            origin: Origin::Simulated,
            detail: String::new(),
        };
        (settings, info)
    }

    /// i2c-stub, a PC's i801, and any adapter without I2C_FUNC_I2C: the driver's plain I2C
    /// transfers (before SMBus words) fail with EOPNOTSUPP, as on a real kernel, where the
    /// kernel's own ina2xx reads the chip.
    #[test]
    fn old_plain_i2c_path_fails_on_an_smbus_only_adapter_with_eopnotsupp() {
        let clock = Arc::new(ManualClock::new(0.0));
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        });
        let bus = SimBus::timed(I2cAdapter::SmbusOnly, 100);
        let chip = SimulatedIna219::on_bus(0x40, 0.1, load, clock.clone(), bus);
        let (settings, info) = on_bus("/dev/i2c-0");
        let err = Ina219Sensor::with_describe(chip.clone(), settings, info, describe_sim)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "INA219 at 0x40 on /dev/i2c-0: the I2C adapter refused the transfer \
             (EOPNOTSUPP: Operation not supported on transport endpoint)"
        );
        assert_eq!(
            (clock.now(), chip.transactions()),
            (0.0, 0),
            "refused in the kernel"
        );
        assert_eq!(chip.peek(reg::CALIBRATION), Some(0), "nothing written");
    }

    #[test]
    fn smbus_word_path_reads_an_smbus_only_adapter_within_one_lsb() {
        let (mut sensor, chip, clock) = open_on(
            &datasheet_spec(),
            Box::new(ConstantLoad {
                amps: 1.0,
                volts: 5.0,
            }),
            SimBus::timed(I2cAdapter::SmbusOnly, 100),
        )
        .unwrap();
        assert_eq!(sensor.transfers_label(), "SMBus word transfers");
        // The words went out low byte first and landed most significant byte first.
        assert_eq!(chip.peek(reg::CALIBRATION), Some(4096));
        assert_eq!(
            chip.peek(reg::CONFIG),
            Some(sensor.settings().config.as_bits())
        );
        at(&chip, &clock, 2e-3);
        assert_eq!(chip.peek(reg::CURRENT), Some(10_000));
        let r = sensor.read().unwrap();
        assert!(!r.stale && !r.overflow && !r.saturated, "{r:?}");
        assert_near("amps", r.amps.unwrap(), 1.0, 100e-6);
        assert_near("volts", r.volts.unwrap(), 5.0, 4e-3);
        assert_near("watts", r.watts, 5.0, 2e-3);
        // An adapter with plain I2C keeps it.
        let (sensor, _, _) = open_sim(&datasheet_spec(), 1.0).unwrap();
        assert_eq!(sensor.transfers_label(), "I2C");
    }

    #[test]
    fn transfers_follow_the_adapters_functionality() {
        // include/uapi/linux/i2c.h.
        assert_eq!(Functionality::I2C, 0x0000_0001);
        assert_eq!(Functionality::SMBUS_READ_WORD_DATA, 0x0020_0000);
        assert_eq!(Functionality::SMBUS_WRITE_WORD_DATA, 0x0040_0000);
        let words = Functionality::SMBUS_READ_WORD_DATA | Functionality::SMBUS_WRITE_WORD_DATA;
        for (funcs, want) in [
            (
                Functionality::I2C | Functionality::SMBUS_EMUL,
                Ok(Transfers::I2c),
            ),
            (Functionality::I2C, Ok(Transfers::I2c)),
            (Functionality::I2C_STUB, Ok(Transfers::SmbusWords)),
            (words, Ok(Transfers::SmbusWords)),
            (
                Functionality::SMBUS_READ_WORD_DATA,
                Err(vec!["I2C_FUNC_I2C", "I2C_FUNC_SMBUS_WRITE_WORD_DATA"]),
            ),
            (
                0x0001_0000, // SMBus quick only
                Err(vec![
                    "I2C_FUNC_I2C",
                    "I2C_FUNC_SMBUS_READ_WORD_DATA",
                    "I2C_FUNC_SMBUS_WRITE_WORD_DATA",
                ]),
            ),
        ] {
            assert_eq!(Transfers::choose(Functionality(funcs)), want, "{funcs:#x}");
        }
        for adapter in ADAPTERS {
            let want = if adapter == I2cAdapter::SmbusOnly {
                Transfers::SmbusWords
            } else {
                Transfers::I2c
            };
            let funcs = SimBus::timed(adapter, 100).functionality();
            assert_eq!(Transfers::choose(funcs), Ok(want), "{adapter:?}");
        }
    }

    /// An adapter that offers what it is told to, and no transfer at all.
    struct Offers(c_ulong);

    impl ErrorType for Offers {
        type Error = SimI2cError;
    }

    impl I2c for Offers {
        fn transaction(&mut self, _: u8, _: &mut [Operation<'_>]) -> Result<(), SimI2cError> {
            Err(SimI2cError::new(95))
        }
    }

    impl SmbusWord for Offers {
        fn functionality(&mut self) -> Result<Functionality, SimI2cError> {
            Ok(Functionality(self.0))
        }
        fn smbus_read_word(&mut self, _: u8, _: u8) -> Result<u16, SimI2cError> {
            Err(SimI2cError::new(95))
        }
        fn smbus_write_word(&mut self, _: u8, _: u8, _: u16) -> Result<(), SimI2cError> {
            Err(SimI2cError::new(95))
        }
        fn unsupported_shape() -> SimI2cError {
            SimI2cError::unsupported_shape()
        }
    }

    #[test]
    fn an_adapter_with_neither_plain_i2c_nor_smbus_words_is_one_line_naming_what_it_lacks() {
        // i2c-stub loaded with functionality=0x30000 (quick and byte reads: an EEPROM's).
        let (settings, _) = on_bus("/dev/i2c-3");
        let err = AdapterBus::open(Offers(0x0003_0000), &settings, describe_sim)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "INA219 at 0x40 on /dev/i2c-3: its I2C adapter offers neither plain I2C nor the \
             SMBus word reads and writes the driver needs: it lacks I2C_FUNC_I2C and \
             I2C_FUNC_SMBUS_READ_WORD_DATA and I2C_FUNC_SMBUS_WRITE_WORD_DATA (functionality \
             0x00030000; `i2cdetect -F 3` lists what it offers)"
        );
    }

    #[test]
    fn smbus_words_carry_the_two_register_shapes_big_endian_and_refuse_the_rest() {
        let clock = Arc::new(ManualClock::new(0.0));
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        });
        let bus = SimBus::timed(I2cAdapter::SmbusOnly, 100);
        let chip = SimulatedIna219::on_bus(0x40, 0.1, load, clock.clone(), bus);
        let (settings, _) = on_bus("/dev/i2c-0");
        let mut adapted = AdapterBus::open(chip.clone(), &settings, describe_sim).unwrap();
        assert_eq!(adapted.transfers(), Transfers::SmbusWords);
        // A register write: 38 cycles, as its I2C form.
        let t = clock.now();
        adapted
            .write(0x40, &[reg::CALIBRATION, 0x12, 0x34])
            .unwrap();
        assert_near("word write", clock.now() - t, 0.38e-3, 1e-12);
        assert_eq!(chip.peek(reg::CALIBRATION), Some(0x1234));
        // A register read: address and command, repeated START, address and 2 bytes: 48.
        let mut buf = [0; 2];
        let t = clock.now();
        adapted.write_read(0x40, &[reg::CONFIG], &mut buf).unwrap();
        assert_near("word read", clock.now() - t, 0.48e-3, 1e-12);
        assert_eq!(buf, [0x39, 0x9F], "0x399F, MSB first");
        // Anything else has no SMBus word form: refused before the bus.
        let transactions = chip.transactions();
        let mut bufs = [[0u8; 2]; 2];
        let [b0, b1] = &mut bufs;
        let mut two_reads = [
            Operation::Write(&[reg::BUS]),
            Operation::Read(b0),
            Operation::Write(&[reg::POWER]),
            Operation::Read(b1),
        ];
        let refused = [
            adapted.transaction(0x40, &mut two_reads).unwrap_err(),
            adapted.read(0x40, &mut buf).unwrap_err(),
            adapted.write(0x40, &[reg::CONFIG]).unwrap_err(),
            adapted
                .write_read(0x40, &[reg::BUS], &mut [0; 3])
                .unwrap_err(),
        ];
        assert_eq!(chip.transactions(), transactions);
        for e in refused {
            assert_eq!(
                bus_error(&settings, describe_sim(&e)).to_string(),
                format!("INA219 at 0x40 on /dev/i2c-0: {SHAPE_REFUSED}")
            );
        }
        // Linux's refusal reads the same.
        let linux = describe_linux(&<I2cdev as SmbusWord>::unsupported_shape());
        assert_eq!(linux, describe_sim(&SimI2cError::unsupported_shape()));
        assert_eq!(linux.errno, None);
    }

    #[test]
    fn no_chip_at_the_address_names_the_pins_and_the_bus_scan() {
        // A chip absent behind an SMBus controller: ENXIO, from the model.
        let chip = absent_chip(I2cAdapter::SmbusOnly);
        let (settings, info) = on_bus("/dev/i2c-0");
        let err = ina219_sim::sensor(chip, settings.clone(), info)
            .err()
            .unwrap();
        let want = "no INA219 answers at 0x40 on /dev/i2c-0 (check address pins A0/A1 and \
                    wiring; `i2cdetect -y 0` lists the addresses that answer)";
        assert_eq!(err.to_string(), want);
        // The errnos Linux adapters give for an address no chip answers: EREMOTEIO (i2c-bcm2835,
        // i2c-tegra), ENXIO (i2c-i801 and most others), ENODEV (i2c-stub).
        for errno in [libc::EREMOTEIO, libc::ENXIO, libc::ENODEV] {
            let e = InitializationError {
                reason: InitializationErrorReason::I2cError(I2CError::from(LinuxI2CError::Errno(
                    errno,
                ))),
                device: (),
            };
            let got = init_error(&settings, describe_linux, &e).to_string();
            assert_eq!(got, want, "errno {errno}");
        }
        // Any other fault is the bus's.
        let e = InitializationError {
            reason: InitializationErrorReason::I2cError(I2CError::from(LinuxI2CError::Errno(
                libc::EIO,
            ))),
            device: (),
        };
        assert_eq!(
            init_error(&settings, describe_linux, &e).to_string(),
            "INA219 at 0x40 on /dev/i2c-0: bus error (EIO: I/O error)"
        );
    }

    #[test]
    fn a_chip_a_kernel_driver_holds_is_one_line_naming_it_and_how_to_release_it() {
        let sysfs = tempfile::tempdir().unwrap();
        let device = sysfs.path().join("bus/i2c/devices/0-0040");
        std::fs::create_dir_all(&device).unwrap();
        let (settings, _) = on_bus("/dev/i2c-0");
        let busy = || LinuxI2CError::Errno(libc::EBUSY);
        // Unknown driver (no sysfs link): the device's own unbind.
        assert_eq!(
            claim_error(&settings, busy(), sysfs.path()).to_string(),
            "INA219 at 0x40 on /dev/i2c-0: a kernel driver (ina2xx, for an INA219) has the chip \
             at this address, and i2c-dev refuses an address a driver holds (EBUSY): release it \
             as root with `echo 0-0040 > /sys/bus/i2c/devices/0-0040/driver/unbind` (until the \
             next boot; to keep it free, drop the device-tree overlay or new_device line that \
             declares it)"
        );
        std::os::unix::fs::symlink("../../../../bus/i2c/drivers/ina2xx", device.join("driver"))
            .unwrap();
        assert_eq!(
            bound_driver(sysfs.path(), 0, 0x40).as_deref(),
            Some("ina2xx")
        );
        assert_eq!(
            claim_error(&settings, busy(), sysfs.path()).to_string(),
            "INA219 at 0x40 on /dev/i2c-0: the kernel's ina2xx driver has the chip at this \
             address, and i2c-dev refuses an address a driver holds (EBUSY): release it as root \
             with `echo 0-0040 > /sys/bus/i2c/drivers/ina2xx/unbind` (until the next boot; to \
             keep it free, drop the device-tree overlay or new_device line that declares it); or \
             measure through ina2xx instead, with a `hwmon` sensor"
        );
        // A bus named otherwise: the number left to fill in.
        let (settings, _) = on_bus("/dev/ina-bus");
        let err = claim_error(&settings, busy(), sysfs.path()).to_string();
        assert!(
            err.contains(
                "`echo N-0040 > /sys/bus/i2c/devices/N-0040/driver/unbind`, N the \
                          number of /dev/ina-bus's adapter (until"
            ),
            "{err}"
        );
        // Other errnos are the bus's, in the usual words.
        let (settings, _) = on_bus("/dev/i2c-0");
        assert_eq!(
            claim_error(&settings, LinuxI2CError::Errno(libc::EINVAL), sysfs.path()).to_string(),
            "INA219 at 0x40 on /dev/i2c-0: bus error (EINVAL: Invalid argument)"
        );
        for (bus, want) in [
            ("/dev/i2c-1", Some(1)),
            ("/dev/i2c-10", Some(10)),
            ("test bus", None),
            ("/dev/i2c-x", None),
        ] {
            assert_eq!(bus_number(bus), want, "{bus}");
        }
    }

    #[test]
    fn fixed_driver_reads_on_every_adapter_at_100_and_400_khz() {
        for adapter in ADAPTERS {
            for khz in [100, 400] {
                let spec = Ina219Spec {
                    bus_khz: khz,
                    ..datasheet_spec()
                };
                let load = Box::new(ConstantLoad {
                    amps: 1.0,
                    volts: 5.0,
                });
                let (mut sensor, chip, clock) =
                    open_on(&spec, load, SimBus::timed(adapter, khz)).unwrap();
                at(&chip, &clock, 3e-3);
                let t = clock.now();
                let r = sensor.read().unwrap();
                assert!(!r.stale, "{adapter:?} {khz} kHz: {r:?}");
                assert_near("amps", r.amps.unwrap(), 1.0, 100e-6);
                assert_near("volts", r.volts.unwrap(), 5.0, 4e-3);
                assert_near("watts", r.watts, 5.0, 2e-3);
                // Four register reads (or SMBus read words) of 48 cycles each.
                let bus_s = 192.0 / (f64::from(khz) * 1e3);
                assert_near("bus time", clock.now() - t, bus_s, 1e-12);
            }
        }
    }

    #[test]
    fn shunt_over_range_reads_saturated_at_the_register_limit() {
        let (mut sensor, chip, clock) = open_sim(&spec(3.2, Some(320)), 3.2).unwrap();
        at(&chip, &clock, 2e-3);
        assert_eq!(chip.peek(reg::SHUNT), Some(32_000));
        // 32000 × 4096 / 4096 = 32000 LSB of 100 µA: full scale, not beyond it.
        let r = sensor.read().unwrap();
        assert_near("amps at ±320 mV", r.amps.unwrap(), 3.2, 1e-9);
        assert!(!r.saturated, "{r:?}");

        let (mut sensor, chip, clock) = open_sim(&spec(3.2, Some(40)), 3.2).unwrap();
        at(&chip, &clock, 2e-3);
        // 320 mV on the ±40 mV range: the register stops at 40.95 mV, and the crate's
        // `paranoid` check refuses anything past 40 mV.
        assert_eq!(chip.peek(reg::SHUNT), Some(4_095));
        let r = sensor.read().unwrap();
        assert!(r.saturated && !r.overflow && !r.stale, "{r:?}");
        // From the clipped value: 4095 LSB of 100 µA, 0.41 A of the 3.2 A flowing.
        assert_near("amps at ±40 mV", r.amps.unwrap(), 0.4095, 1e-9);
        assert_near("watts", r.watts, 1023.0 * 0.002, 1e-9);
    }

    #[test]
    fn overflow_reports_current_from_the_shunt_voltage() {
        // A 16 µA LSB (calibration 25600) turns 1 A into 62 500 LSB: the current overflows.
        let (mut sensor, chip, clock) = open_sim(&spec(0.5, Some(320)), 1.0).unwrap();
        at(&chip, &clock, 2e-3);
        assert_eq!(
            chip.peek(reg::BUS).unwrap() & bus_flags::OVF,
            bus_flags::OVF
        );
        let r = sensor.read().unwrap();
        assert!(r.overflow && !r.saturated, "{r:?}");
        assert_near("amps", r.amps.unwrap(), 1.0, 1e-9);
        assert_near("watts", r.watts, 5.0, 1e-9);

        // A 10 µA LSB on the ±40 mV range: 1 A clips the shunt at 4095 and 4095 × 40960 / 4096
        // overflows the current register: both flags, the current from the clipped shunt.
        let (mut sensor, chip, clock) = open_sim(&spec(0.3, Some(40)), 1.0).unwrap();
        at(&chip, &clock, 2e-3);
        let r = sensor.read().unwrap();
        assert!(r.overflow && r.saturated, "{r:?}");
        assert_near("amps", r.amps.unwrap(), 0.4095, 1e-9);
    }

    #[test]
    fn reads_between_conversions_are_stale() {
        // At 400 kHz a fresh reading (0.48 ms) is quicker than a conversion (1.064 ms).
        let fast = Ina219Spec {
            bus_khz: 400,
            ..datasheet_spec()
        };
        let (mut sensor, chip, clock) = open_sim(&fast, 1.0).unwrap();
        at(&chip, &clock, 0.5e-3);
        let first = sensor.read().unwrap();
        assert!(first.stale, "no conversion yet: {first:?}");
        assert_eq!(
            first.volts,
            Some(0.0),
            "registers still hold their reset value"
        );
        at(&chip, &clock, 1.1e-3);
        let fresh = sensor.read().unwrap();
        assert!(!fresh.stale);
        assert_near("amps", fresh.amps.unwrap(), 1.0, 100e-6);
        assert_eq!(
            chip.peek(reg::BUS).unwrap() & bus_flags::CNVR,
            0,
            "read cleared CNVR"
        );
        at(&chip, &clock, 1.8e-3);
        assert_eq!(
            sensor.read().unwrap(),
            Reading {
                stale: true,
                ..fresh
            }
        );
        at(&chip, &clock, 2.2e-3);
        assert!(!sensor.read().unwrap().stale);
    }

    #[test]
    fn fresh_readings_carry_the_middle_of_the_shunt_conversion() {
        let avg = Ina219Spec {
            adc: AdcMode::Avg128,
            bus_adc: AdcMode::Avg128,
            ..datasheet_spec()
        };
        let (mut sensor, chip, clock) = open_sim(&avg, 1.0).unwrap();
        at(&chip, &clock, 0.137);
        let r = sensor.read().unwrap();
        assert!(!r.stale, "{r:?}");
        // A 68.1 ms bus conversion after the shunt's, plus half of the shunt's 68.1 ms.
        assert_near("centre offset", r.centre_offset_s, 0.10215, 1e-12);
        let s = Ina219Settings::from_spec(&datasheet_spec(), "b").unwrap();
        assert_near("12 bits", s.centre_offset_s(), 532e-6 + 266e-6, 1e-12);
    }

    #[test]
    fn a_bus_beyond_its_range_is_a_sentence_naming_the_key() {
        let spec = Ina219Spec {
            bus_range_v: 16,
            ..datasheet_spec()
        };
        let load = Box::new(ConstantLoad {
            amps: 1.0,
            volts: 20.0,
        });
        let (mut sensor, chip, clock) =
            open_on(&spec, load, SimBus::timed(I2cAdapter::Bcm2835, 100)).unwrap();
        at(&chip, &clock, 0.01);
        let err = format!("{:#}", sensor.read().unwrap_err());
        assert!(
            err.starts_with(
                "INA219 at 0x40 on test bus: bus voltage 16.380 V is beyond the 16 V range"
            ) && err.contains("set bus_range_v = 32")
                && !err.contains('{'),
            "{err}"
        );
    }

    #[test]
    fn brown_out_is_caught_by_the_current_and_the_chip_re_initialised() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        let reset_at = chip.sequence_start() + 0.05;
        chip.inject(SimFault::ResetAt(reset_at));
        let reads = poll_until(&mut sensor, &clock, reset_at + 0.05);
        let errors: Vec<_> = reads
            .iter()
            .filter_map(|(t, r)| r.as_ref().err().map(|e| (t, e.to_string())))
            .collect();
        // The rig's configuration is the power-on one (32 V, ±320 mV, 12-bit), so only the
        // calibration tells: it reads 0.
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (t, message) = &errors[0];
        assert_eq!(
            message,
            "INA219 at 0x40 on test bus: chip reset detected (configuration 0x399f, \
             calibration 0), re-initialised"
        );
        assert!(**t > reset_at && **t < reset_at + 5e-3, "found at {t}");
        assert_eq!(chip.peek(reg::CALIBRATION), Some(4096));
        for (t, r) in &reads {
            if let Ok(r) = r {
                assert_near(&format!("watts at {t}"), r.watts, 5.0, 2e-3);
            }
        }
        assert!(!reads.last().unwrap().1.as_ref().unwrap().stale);
    }

    #[test]
    fn brown_out_between_the_register_reads_of_one_reading_is_caught_too() {
        // A fresh reading at 100 kHz from T: the bus register's pointer is written at
        // T + 0.19 ms and the register latched at T + 0.29 ms; power, shunt and current are
        // latched at T + 0.77, 1.25 and 1.73 ms. A reset between pointer and latch makes the
        // bus read return the configuration (0x399F: CNVR and OVF set); later ones wipe the
        // registers still to be read.
        for offset_ms in [0.24, 0.6, 1.0, 1.5] {
            let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
            at(&chip, &clock, 3e-3);
            assert!(!sensor.read().unwrap().stale);
            at(&chip, &clock, 6e-3);
            chip.inject(SimFault::ResetAt(clock.now() + offset_ms * 1e-3));
            let err = sensor.read().unwrap_err().to_string();
            assert!(err.contains("chip reset detected"), "{offset_ms} ms: {err}");
            let start = clock.now();
            for (t, r) in poll_until(&mut sensor, &clock, start + 0.01) {
                let r = r.unwrap();
                assert_near(&format!("{offset_ms} ms: watts at {t}"), r.watts, 5.0, 2e-3);
            }
        }
    }

    #[test]
    fn reset_with_no_current_is_caught_within_a_second() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 0.0).unwrap();
        let reset_at = chip.sequence_start() + 0.3;
        chip.inject(SimFault::ResetAt(reset_at));
        let reads = poll_until(&mut sensor, &clock, reset_at + 1.5);
        let errors: Vec<_> = reads
            .iter()
            .filter_map(|(t, r)| r.as_ref().err().map(|e| (*t, e.to_string())))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("chip reset detected"), "{errors:?}");
        assert!(errors[0].0 < reset_at + 1.1, "found at {}", errors[0].0);
        assert_eq!(chip.peek(reg::CALIBRATION), Some(4096));
    }

    #[test]
    fn stuck_cnvr_leaves_every_read_stale() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        chip.inject(SimFault::CnvrStuck);
        let start = clock.now();
        let reads = poll_until(&mut sensor, &clock, start + 0.2);
        assert!(reads.len() > 90, "{}", reads.len());
        assert!(
            reads.iter().all(|(_, r)| matches!(r, Ok(r) if r.stale)),
            "{:?}",
            reads.iter().find(|(_, r)| !matches!(r, Ok(r) if r.stale))
        );
    }

    #[test]
    fn nack_burst_fails_reads_then_they_recover() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        at(&chip, &clock, 3e-3);
        chip.inject(SimFault::NackBurst {
            at_s: clock.now(),
            transactions: 3,
        });
        for _ in 0..3 {
            let t = clock.now();
            let err = sensor.read().unwrap_err().to_string();
            assert_eq!(
                err,
                "INA219 at 0x40 on test bus: no acknowledge (EREMOTEIO: Remote I/O error)"
            );
            // START, the address NACKed, STOP: 11 cycles at 100 kHz.
            assert_near("NACK time", clock.now() - t, 0.11e-3, 1e-12);
        }
        let r = sensor.read().unwrap();
        assert_near("amps", r.amps.unwrap(), 1.0, 100e-6);
    }

    #[test]
    fn bus_timeout_costs_the_adapter_timeout_then_reads_go_on() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        at(&chip, &clock, 3e-3);
        chip.inject(SimFault::Timeout {
            at_s: clock.now(),
            secs: 1.0,
        });
        let t = clock.now();
        let err = sensor.read().unwrap_err().to_string();
        assert_eq!(
            err,
            "INA219 at 0x40 on test bus: bus timed out (ETIMEDOUT: Connection timed out)"
        );
        assert_near("timeout", clock.now() - t, 1.0, 1e-12);
        assert!(sensor.read().is_ok());
    }

    #[test]
    fn vanished_chip_errors_then_comes_back_reset_and_is_re_initialised() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        let (from_s, until_s) = (chip.sequence_start() + 0.02, chip.sequence_start() + 0.06);
        chip.inject(SimFault::Vanish { from_s, until_s });
        let reads = poll_until(&mut sensor, &clock, until_s + 0.04);
        let mut gone = 0;
        let mut resets = Vec::new();
        for (t, r) in &reads {
            match r {
                Err(e) if e.to_string().contains("no acknowledge") => {
                    assert!(*t >= from_s - 2e-3 && *t < until_s, "NACK at {t}");
                    gone += 1;
                }
                Err(e) => {
                    assert!(e.to_string().contains("chip reset detected"), "{e}");
                    resets.push(*t);
                }
                Ok(r) => assert_near(&format!("watts at {t}"), r.watts, 5.0, 2e-3),
            }
        }
        assert!(gone >= 20, "{gone} NACKed reads while gone");
        assert_eq!(resets.len(), 1, "{resets:?}");
        assert!(
            resets[0] > until_s && resets[0] < until_s + 5e-3,
            "{resets:?}"
        );
        let last = reads.last().unwrap().1.as_ref().unwrap();
        assert!(!last.stale, "{last:?}");
    }

    #[test]
    fn nack_mid_run_is_a_read_error_naming_the_chip() {
        let (mut sensor, chip, clock) = open_sim(&datasheet_spec(), 1.0).unwrap();
        chip.inject(SimFault::NackAfterTransactions(chip.transactions()));
        at(&chip, &clock, 2e-3);
        let err = sensor.read().unwrap_err().to_string();
        assert_eq!(
            err,
            "INA219 at 0x40 on test bus: no acknowledge (EREMOTEIO: Remote I/O error)"
        );
    }

    #[test]
    fn absent_chip_fails_at_construction() {
        let (settings, info) = on_bus("test bus");
        let err = ina219_sim::sensor(absent_chip(I2cAdapter::Bcm2835), settings, info)
            .err()
            .unwrap();
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
        let err = format!("{:#}", open_linux(&spec, 1).err().unwrap());
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
             (sudo usermod -aG i2c $USER) and log in again, or run joulebench as root"
        );
        // EACCES, as opening /dev/i2c-N as another user gives it.
        let denied = open_error(Path::new("/dev/i2c-0"), LinuxI2CError::Errno(libc::EACCES));
        assert_eq!(
            denied.to_string(),
            "no permission to open I2C bus /dev/i2c-0: add your user to the i2c group \
             (sudo usermod -aG i2c $USER) and log in again, or run joulebench as root"
        );
        // A file that is not an I2C adapter: the driver's ioctl fails.
        let file = tempfile::NamedTempFile::new().unwrap();
        let spec = Ina219Spec {
            i2c_bus: Some(file.path().to_path_buf()),
            ..datasheet_spec()
        };
        let err = format!("{:#}", open_linux(&spec, 1).err().unwrap());
        assert!(
            !err.contains('\n') && err.contains(&file.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn i2c_funcs_on_a_file_that_is_no_adapter_is_refused() {
        use std::os::fd::AsRawFd;
        let file = tempfile::tempfile().unwrap();
        let err = i2c_funcs::functionality(file.as_raw_fd()).unwrap_err();
        // A kernel says ENOTTY; qemu-user (make test's aarch64 stage), which passes on only
        // the ioctls it knows, ENOSYS. The real adapter's answer is checked on a real kernel
        // (scripts/board-check.sh).
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTTY | libc::ENOSYS)),
            "{err}"
        );
    }

    #[test]
    fn eremoteio_counts_as_a_nack() {
        let fault = describe_linux(&I2CError::from(LinuxI2CError::Errno(121)));
        assert_eq!(
            fault.kind,
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown)
        );
        let fault = describe_linux(&I2CError::from(LinuxI2CError::Errno(5)));
        assert_eq!(fault.kind, ErrorKind::Bus);
        assert!(fault.text.contains("EIO"), "{}", fault.text);
    }

    #[test]
    fn simulated_bus_errors_read_like_linux_ones() {
        for errno in [6, 22, 95, 110, 121] {
            let linux = describe_linux(&I2CError::from(LinuxI2CError::Errno(errno)));
            let sim = describe_sim(&SimI2cError::new(errno));
            assert_eq!(sim, linux, "errno {errno}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A rig's INA219 on an untimed bus, the chip measuring across the stated shunt, after
        /// its first conversion.
        fn read_once(spec: &Ina219Spec, amps: f64, volts: f64) -> (Reading, Ina219Settings) {
            let load = Box::new(ConstantLoad { amps, volts });
            let (mut sensor, chip, clock) = open_on(spec, load, SimBus::INSTANT).unwrap();
            at(&chip, &clock, 2e-3);
            (sensor.read().unwrap(), sensor.settings().clone())
        }

        /// Shunts of 1 mΩ to 1 Ω in whole µΩ (what the driver programs), a largest current
        /// that puts 21 to 320 mV across the shunt (what a calibration register can express:
        /// 0.04096 / (LSB × R) in 2..65535, LSB ≈ max / 2^15), the PGA range the driver
        /// chooses or one the rig names, and either bus range.
        fn specs() -> impl Strategy<Value = Ina219Spec> {
            let ranges = prop::sample::select(vec![40u16, 80, 160, 320]);
            (
                1_000u32..=1_000_000,
                0.021..0.32_f64,
                prop::option::of(ranges),
                prop::sample::select(vec![16u8, 32]),
            )
                .prop_map(|(uohm, full_scale_v, shunt_range_mv, bus_range_v)| {
                    let shunt_ohms = f64::from(uohm) * 1e-6;
                    Ina219Spec {
                        shunt_ohms,
                        bus_range_v,
                        ..spec(full_scale_v / shunt_ohms, shunt_range_mv)
                    }
                })
        }

        proptest! {
            #![proptest_config(crate::proptest_config(128))]

            /// The driver's decode (current LSB, power LSB = 20 × current LSB) gives back the
            /// physical values within what the registers' quantisation allows:
            /// - volts: the bus register rounds to 4 mV, so within 2 mV;
            /// - amps: current = trunc(s × c / 4096) × LSB, with s = round(I·R / 10 µV)
            ///   (off by ≤ 5 µV / R) and c = trunc(c₀) with bit 0 cleared (c₀ = 0.04096 /
            ///   (LSB × R) the ideal calibration, so c/c₀ ∈ (1 - 2/c₀, 1]); s·c·LSB/4096 =
            ///   (I + e/R)·c/c₀, so |amps − I| ≤ LSB + 5 µV/R + (2/c₀)(|I| + 5 µV/R);
            /// - watts: power = trunc(|current| × bus / 5000) × 20 LSB = |amps|·volts less up
            ///   to 20 LSB, so |watts − |I|·V| ≤ 20 LSB + (amps bound)·volts + |I|·2 mV.
            /// Currents up to 0.99 of max_current_a on the driver's own PGA choice (or the
            /// rig's, where it holds them): no clipping, no overflow, and neither flagged.
            #[test]
            fn prop_driver_decodes_the_registers_within_their_lsbs(
                spec in specs(),
                fraction in -0.99..0.99_f64,
                volts in 0.0..15.9_f64,
            ) {
                let settings = Ina219Settings::from_spec(&spec, "b").unwrap();
                let amps = fraction * spec.max_current_a;
                let range_v = f64::from(settings.shunt_range_mv()) * 1e-3;
                prop_assume!(amps.abs() * spec.shunt_ohms < range_v * 0.999);
                let (r, settings) = read_once(&spec, amps, volts);

                let lsb = settings.current_lsb_a();
                // Both are whole µA / µW scaled by 1e-6: equal within a rounding.
                prop_assert!((settings.power_lsb_w() - 20.0 * lsb).abs() <= 1e-12 * lsb);
                let r_ohm = spec.shunt_ohms;
                let c0 = 0.04096 / (lsb * r_ohm);
                let amps_bound = lsb + 5e-6 / r_ohm + 2.0 / c0 * (amps.abs() + 5e-6 / r_ohm);
                let got_volts = r.volts.unwrap();
                // 1e-9 of each value: the decode's own floating point.
                let fp = |x: f64| 1e-9 * x.abs();
                prop_assert!(!r.stale && !r.overflow && !r.saturated, "{:?}", r);
                prop_assert!((got_volts - volts).abs() <= 2e-3 + fp(volts), "volts {} vs {}", got_volts, volts);
                let got_amps = r.amps.unwrap();
                prop_assert!((got_amps - amps).abs() <= amps_bound + fp(amps), "amps {} vs {} ± {}", got_amps, amps, amps_bound);
                let watts = amps.abs() * volts;
                let watts_bound = 20.0 * lsb + amps_bound * got_volts + amps.abs() * 2e-3;
                prop_assert!((r.watts - watts).abs() <= watts_bound + fp(watts), "watts {} vs {} ± {}", r.watts, watts, watts_bound);
            }

            /// Beyond the PGA range the chip clips the shunt register, and the driver marks the
            /// reading saturated: its energy is then a lower bound, and the window is flagged.
            #[test]
            fn prop_beyond_the_pga_range_is_saturated(
                spec in specs(),
                over in 1.01..3.0_f64,
                negative in any::<bool>(),
            ) {
                let settings = Ina219Settings::from_spec(&spec, "b").unwrap();
                let range_v = f64::from(settings.shunt_range_mv()) * 1e-3;
                let amps = over * range_v / spec.shunt_ohms * if negative { -1.0 } else { 1.0 };
                let (r, _) = read_once(&spec, amps, 5.0);
                prop_assert!(r.saturated, "{} A through {} Ω on ±{} V: {:?}", amps, spec.shunt_ohms, range_v, r);
            }
        }
    }
}
