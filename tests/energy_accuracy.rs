//! Energy against analytic loads, end to end through the sampler: a sensor model read on a
//! virtual clock by the real sampling loop, its log integrated by the real summary code, over
//! windows whose edges are load steps (as protocol phases are). Run with `--nocapture` for
//! the table docs/src/methodology/accuracy.md quotes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use joulebench::clock::{ManualClock, TimeSource};
use joulebench::rig::{I2cAdapter, Ina219Spec, Rig, SensorSpec};
use joulebench::sampler::{self, SensorLog};
use joulebench::sensor::ina219::Ina219Settings;
use joulebench::sensor::ina219_sim::{self, SimBus, SimFault, SimulatedIna219};
use joulebench::sensor::load::Load;
use joulebench::sensor::{Origin, PowerSensor, Reading, SensorInfo};
use joulebench::summary::SensorEnergy;
use joulebench::validity::ValiditySpec;

/// A load that steps between two powers: `busy_w` inside the busy windows, `idle_w` outside.
#[derive(Clone)]
struct StepLoad {
    idle_w: f64,
    busy_w: f64,
    busy: Vec<(f64, f64)>,
}

impl StepLoad {
    /// Busy windows of `duration` s, each after about 1.5 s idle, starting off the sensor's
    /// grid, each at another phase of it (0.0371 s later than a whole number of seconds: a
    /// third of a 10 Hz counter's period, a quarter of an avg128 conversion).
    fn windows(duration: f64, count: usize) -> Self {
        let busy = (0..count)
            .map(|i| {
                let start = 2.0137 + i as f64 * (duration + 1.5371);
                (start, start + duration)
            })
            .collect();
        Self {
            idle_w: 70.0,
            busy_w: 150.0,
            busy,
        }
    }

    /// Exact energy from 0 to `t`.
    fn energy_until(&self, t: f64) -> f64 {
        let busy: f64 = self
            .busy
            .iter()
            .map(|(a, b)| (t.min(*b) - a).max(0.0))
            .sum();
        self.idle_w * t + (self.busy_w - self.idle_w) * busy
    }

    fn end(&self) -> f64 {
        self.busy.last().unwrap().1 + 1.0
    }
}

fn info() -> SensorInfo {
    SensorInfo {
        kind: "model".into(),
        rail: "test".into(),
        origin: Origin::Simulated,
        detail: String::new(),
    }
}

/// An NVML-style energy counter: it moves every `period` s (from `phase`), in millijoules; a
/// read costs `read_s` and samples the counter in its middle. It claims `claimed_period`, as
/// NVML's sensor claims the period it measured when it opened.
struct Counter {
    clock: Arc<ManualClock>,
    load: StepLoad,
    period: f64,
    phase: f64,
    read_s: f64,
    claimed_period: f64,
    last: Option<i64>,
    info: SensorInfo,
}

impl PowerSensor for Counter {
    fn info(&self) -> &SensorInfo {
        &self.info
    }
    fn update_period(&self) -> Duration {
        Duration::from_secs_f64(self.claimed_period)
    }
    fn read(&mut self) -> Result<Reading> {
        let start = self.clock.now();
        let sampled_at = start + self.read_s / 2.0;
        self.clock.sleep_until(start + self.read_s);
        let k = ((sampled_at - self.phase) / self.period).floor() as i64;
        let update = self.phase + k as f64 * self.period;
        let stale = self.last == Some(k);
        self.last = Some(k);
        Ok(Reading {
            energy_j: Some((self.load.energy_until(update) * 1000.0).floor() / 1000.0),
            stale,
            ..Reading::default()
        })
    }
}

fn sample_until(sensor: Box<dyn PowerSensor>, clock: &ManualClock, end: f64) -> SensorLog {
    sampler::sample(sensor, clock, |now| (now >= end).then_some(end))
}

/// Worst relative error over the busy windows, and over the idle stretches between them.
fn errors(log: &SensorLog, load: &StepLoad) -> (f64, f64) {
    let energy = SensorEnergy::of(log);
    let rel = |a: f64, b: f64| {
        let exact = load.energy_until(b) - load.energy_until(a);
        let got = energy.window(a, b).unwrap().joules;
        ((got - exact) / exact).abs()
    };
    let busy = load
        .busy
        .iter()
        .map(|&(a, b)| rel(a, b))
        .fold(0.0, f64::max);
    let idle = load
        .busy
        .windows(2)
        .map(|w| rel(w[0].1, w[1].0))
        .fold(0.0, f64::max);
    (busy, idle)
}

#[test]
fn nvml_style_counter_with_steps_at_the_window_edges() {
    println!("NVML-style counter, 10 Hz, 4 ms reads, 70 W idle / 150 W busy, steps at both edges:");
    println!("  sensor's period estimate | window | worst error, busy windows | idle between");
    for claimed in [0.1, 0.1002, 0.098] {
        for duration in [0.5, 3.0] {
            let clock = Arc::new(ManualClock::new(0.0));
            let load = StepLoad::windows(duration, 6);
            let sensor = Counter {
                clock: Arc::clone(&clock),
                load: load.clone(),
                period: 0.1,
                phase: 0.0371,
                read_s: 0.004,
                claimed_period: claimed,
                last: None,
                info: info(),
            };
            let log = sample_until(Box::new(sensor), &clock, load.end());
            let (busy, idle) = errors(&log, &load);
            println!(
                "  {:>6.1} ms | {duration:>4} s | {:>6.3} % | {:>6.3} %",
                claimed * 1e3,
                busy * 100.0,
                idle * 100.0
            );
            // Each fresh value is stamped within a poll step plus half a read of its update
            // (4 + 2 ms, see sampler.rs), and each edge's share is off by at most the power
            // step times that: 80 W x 6 ms per edge, two edges, over the window's energy.
            let bound = 2.0 * 80.0 * 0.006 / (150.0 * duration);
            assert!(busy <= bound, "{duration} s windows: {busy} > {bound}");
            if duration >= 3.0 {
                assert!(busy <= 0.005, "{duration} s windows: {busy}");
            }
        }
    }
}

/// The same steps as current through a simulated INA219 at 5 V (0.40 A idle, 0.75 A busy).
struct StepCurrent(StepLoad);

impl Load for StepCurrent {
    fn current_at(&mut self, t: f64) -> f64 {
        let busy = self.0.busy.iter().any(|(a, b)| (*a..*b).contains(&t));
        if busy {
            self.0.busy_w / 5.0
        } else {
            self.0.idle_w / 5.0
        }
    }
    fn bus_volts_at(&mut self, _t: f64, _amps: f64) -> f64 {
        5.0
    }
}

/// The `ina219-sim` sensor of a one-sensor rig, with `extra` lines in its table.
fn ina219_spec(extra: &str) -> Ina219Spec {
    // 3.2 A unless `extra` sets max_current_a itself.
    let max = if extra.contains("max_current_a") {
        ""
    } else {
        "max_current_a = 3.2\n"
    };
    let rig = Rig::parse(&format!(
        "name = \"t\"\n[[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n\
         [[sensors]]\nkind = \"ina219-sim\"\nrail = \"5V\"\nshunt_ohms = 0.1\n\
         {max}{extra}\n"
    ))
    .unwrap();
    match rig.sensors.into_iter().next().map(|s| s.spec) {
        Some(SensorSpec::Ina219Sim(spec)) => spec,
        other => panic!("{other:?}"),
    }
}

/// The driver on a simulated INA219 (0x40, 0.1 Ω) on a Raspberry Pi's bus at `khz`, drawing
/// `load`, with the rig-file settings `extra`; and its update period.
fn ina219_on(
    extra: &str,
    khz: u32,
    load: Box<dyn Load>,
    clock: &Arc<ManualClock>,
) -> (Box<dyn PowerSensor>, Ina219Settings) {
    let spec = ina219_spec(&format!("{extra}\nbus_khz = {khz}"));
    let chip = SimulatedIna219::on_bus(
        0x40,
        0.1,
        load,
        clock.clone(),
        SimBus::timed(I2cAdapter::Bcm2835, khz),
    );
    let settings = Ina219Settings::from_spec(&spec, "simulated bus").unwrap();
    let sensor = ina219_sim::sensor(chip, settings.clone(), info()).unwrap();
    (Box::new(sensor), settings)
}

#[test]
fn ina219_model_with_steps_at_the_window_edges() {
    println!(
        "Simulated INA219 on a bcm2835 bus, 2.0 W idle / 3.75 W busy at 5 V, steps at both edges:"
    );
    println!(
        "  shunt ADC, bus ADC, bus clock | readings/s | window | worst error, busy windows | idle between"
    );
    // The shipped default (the rig file's: avg64 shunt, 12-bit bus) first, at both clocks.
    for (adc, khz) in [
        ("", 100),
        ("", 400),
        ("adc = \"12bit\"", 100),
        ("adc = \"12bit\"", 400),
        ("adc = \"9bit\"\nbus_adc = \"9bit\"", 400),
        ("adc = \"avg32\"", 100),
        ("adc = \"avg128\"", 100),
    ] {
        for duration in [0.5, 3.0] {
            let clock = Arc::new(ManualClock::new(0.0));
            let load = StepLoad::windows(duration, 8);
            let load = StepLoad {
                idle_w: 2.0,
                busy_w: 3.75,
                ..load
            };
            let (sensor, settings) =
                ina219_on(adc, khz, Box::new(StepCurrent(load.clone())), &clock);
            let period = sensor.update_period().as_secs_f64();
            let integrates = sensor.integrates();
            let log = sample_until(sensor, &clock, load.end());
            let (busy, idle) = errors(&log, &load);
            let name = if adc.is_empty() { "default" } else { adc };
            println!(
                "  {:>20}, {khz} kHz | {:>4.0} | {duration:>4} s | {:>6.3} % | {:>6.3} %",
                name.replace('\n', " "),
                1.0 / period,
                busy * 100.0,
                idle * 100.0
            );
            // Each edge costs at most the power step times half a conversion (the reading
            // that straddles it is a mean of both phases), plus the power register's
            // resolution (2 mW in 3.75 W). An integrating chip's edges split the conversions
            // they cut by the power on either side, exact for a step; what is left is the
            // stamp's error (half a poll step) and the bus conversion's gap, a step's worth of
            // 1.75 W each, and the resolution.
            let conversion = settings.conversion_time().as_secs_f64();
            let bound = if integrates {
                let step = conversion / 32.0 + settings.reading_bus_time().as_secs_f64();
                2.0 * 1.75 * step / (3.75 * duration) + 0.002 / 3.75
            } else {
                2.0 * 1.75 * conversion / 2.0 / (3.75 * duration) + 0.002 / 3.75
            };
            assert!(
                busy <= bound,
                "{name} {khz} kHz {duration} s: {busy} > {bound}"
            );
            // The targets for every shipped INA219 rig: 0.5 % on 3 s windows, 1 % on 0.5 s.
            if adc.is_empty() {
                let target = if duration >= 3.0 { 0.005 } else { 0.01 };
                assert!(busy <= target, "default {khz} kHz {duration} s: {busy}");
            }
        }
    }
}

/// A load that changes at nearly the conversion rate: a square wave between 2 and 3.75 W whose
/// period is 3 % longer than the default's conversion (34.58 ms) and one 3 % shorter. A chip
/// that sampled the current once per conversion would alias it into a slow beat worth up to
/// the whole step; averaging 64 samples over 98.5 % of every conversion leaves only what the
/// 0.53 ms bus conversions miss, and the beat averages that out over a window.
#[test]
fn ina219_default_follows_a_load_near_its_conversion_rate() {
    use joulebench::sensor::load::SquareWave;
    let conversion = Ina219Settings::from_spec(&ina219_spec(""), "simulated bus")
        .unwrap()
        .conversion_time()
        .as_secs_f64();
    for factor in [1.03, 0.97] {
        let clock = Arc::new(ManualClock::new(0.0));
        let wave = SquareWave {
            period_s: conversion * factor,
            duty: 0.5,
            high_amps: 0.75,
            low_amps: 0.40,
            volts: 5.0,
        };
        let (sensor, _) = ina219_on("", 100, Box::new(wave), &clock);
        let log = sample_until(sensor, &clock, 12.0);
        let energy = SensorEnergy::of(&log);
        let mut worst: f64 = 0.0;
        for start in [1.0137, 4.0371, 7.0913] {
            let (a, b) = (start, start + 3.0);
            let exact = wave.energy_between(a, b);
            let got = energy.window(a, b).unwrap().joules;
            worst = worst.max(((got - exact) / exact).abs());
        }
        println!(
            "  square wave of period {:.2} ms: worst error over 3 s windows {:.3} %",
            wave.period_s * 1e3,
            worst * 100.0
        );
        // The bus conversions leave 1.5 % of each conversion unseen; over a whole number of
        // beats that part sees the wave's mean. A 3 s window holds 2.6 beats: the part beat's
        // share (at most 1/2.6) of the unseen 1.5 % of a 1.75 W step's ±0.875 W swing, against
        // a 2.875 W mean, is under 0.2 %, plus the window's cut conversions at both edges (a
        // swing of 0.875 W over at most one conversion each: 0.7 %, alike for any sensor that
        // averages at this rate); the 0.5 % target is the measured bound here.
        assert!(worst <= 0.005, "period {}: {worst}", wave.period_s);
    }
}

/// Every fault the model injects, in a run of the real driver and sampler on a steady 3.75 W
/// load: the 3 s window either comes out within 1 % of the true energy or is flagged invalid.
#[test]
fn faults_are_survived_and_never_pass_unflagged_with_wrong_energy() {
    println!("Faults on a simulated INA219 (default ADC: avg64 shunt, 12-bit bus; bcm2835 at 400 kHz), window 1.0 to 4.0 s:");
    println!("  fault | error | verdict");
    // A rig sized for 0.4 A (a ±40 mV range holds 0.4 A × 0.1 Ω) on a board drawing 0.75 A:
    // the shunt voltage clips at the range's edge.
    let over_range = "max_current_a = 0.4\nshunt_range_mv = 40";
    let cases: Vec<(&str, Option<SimFault>, &str)> = vec![
        ("none", None, ""),
        ("brown-out at 2.5 s", Some(SimFault::ResetAt(2.5)), ""),
        ("CNVR stuck", Some(SimFault::CnvrStuck), ""),
        (
            "NACK burst of 50 at 2.5 s",
            Some(SimFault::NackBurst {
                at_s: 2.5,
                transactions: 50,
            }),
            "",
        ),
        (
            "NACK burst of 2000 at 2.5 s",
            Some(SimFault::NackBurst {
                at_s: 2.5,
                transactions: 2000,
            }),
            "",
        ),
        (
            "bus timeout of 25 ms at 2.5 s",
            Some(SimFault::Timeout {
                at_s: 2.5,
                secs: 0.025,
            }),
            "",
        ),
        (
            "bus timeout of 1 s at 2.5 s",
            Some(SimFault::Timeout {
                at_s: 2.5,
                secs: 1.0,
            }),
            "",
        ),
        (
            "chip gone 2.5 to 2.52 s",
            Some(SimFault::Vanish {
                from_s: 2.5,
                until_s: 2.52,
            }),
            "",
        ),
        (
            "chip gone 2.5 to 3.5 s",
            Some(SimFault::Vanish {
                from_s: 2.5,
                until_s: 3.5,
            }),
            "",
        ),
        ("0.75 A on a 40 mV range (0.4 A)", None, over_range),
    ];
    let validity = ValiditySpec::default();
    for (name, fault, extra) in cases {
        let spec = ina219_spec(&format!("bus_khz = 400\n{extra}"));
        let clock = Arc::new(ManualClock::new(0.0));
        let load = StepLoad {
            idle_w: 3.75,
            busy_w: 3.75,
            busy: vec![],
        };
        let chip = SimulatedIna219::on_bus(
            0x40,
            0.1,
            Box::new(StepCurrent(load.clone())),
            clock.clone(),
            SimBus::timed(I2cAdapter::Bcm2835, 400),
        );
        if let Some(fault) = fault {
            chip.inject(fault);
        }
        let settings = Ina219Settings::from_spec(&spec, "simulated bus").unwrap();
        let sensor = ina219_sim::sensor(chip, settings, info()).unwrap();
        let log = sample_until(Box::new(sensor), &clock, 5.0);
        let window = SensorEnergy::of(&log).checked((1.0, 4.0), &validity);
        let error = window
            .energy
            .map(|e| (e.joules - 3.75 * 3.0) / (3.75 * 3.0));
        let verdict = window.invalid.clone().unwrap_or_else(|| "ok".into());
        println!(
            "  {name} | {} | {verdict}",
            error.map_or("-".into(), |e| format!("{:+.3} %", e * 100.0))
        );
        let fine = error.is_some_and(|e| e.abs() <= 0.01);
        assert!(
            window.invalid.is_some() || fine,
            "{name}: ok with energy off by {error:?}"
        );
        if name == "none" {
            assert!(window.invalid.is_none() && fine, "{name}: {verdict}");
        }
    }
}
