//! What a simulated INA219 measures: the current a board draws and the bus voltage it sees.
//!
//! The chip model ([`super::ina219_sim`]) samples a [`Load`] over each conversion window, so a
//! test can feed it an exact waveform and know what every register must read, while a
//! simulated run feeds it a [`SimulatedBoard`] that follows the runner's phases.

use anyhow::{ensure, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::ina219::SimLoadSpec;
use crate::clock::PhaseLog;

/// The analog side of a simulated INA219: a load on a supply, as functions of run time (s).
///
/// Methods take `&mut self` so a load can draw noise from its own random generator; the chip
/// calls them with non-decreasing times.
pub trait Load: Send {
    /// Current through the shunt at time `t`, in amperes (negative when it flows backwards).
    fn current_at(&mut self, t: f64) -> f64;

    /// Bus voltage (IN- to ground) at time `t` while the load draws `amps`.
    fn bus_volts_at(&mut self, t: f64, amps: f64) -> f64;
}

/// A constant current at a constant voltage: every conversion reads the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstantLoad {
    pub amps: f64,
    pub volts: f64,
}

impl Load for ConstantLoad {
    fn current_at(&mut self, _t: f64) -> f64 {
        self.amps
    }

    fn bus_volts_at(&mut self, _t: f64, _amps: f64) -> f64 {
        self.volts
    }
}

/// A square wave of current at a constant voltage: `high_amps` for the first `duty` of every
/// `period_s` (starting at t = 0), `low_amps` for the rest. Its exact energy over any window is
/// known ([`SquareWave::energy_between`]), which is what energy-integration tests compare with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SquareWave {
    pub period_s: f64,
    /// Fraction of each period at `high_amps`, 0 to 1.
    pub duty: f64,
    pub high_amps: f64,
    pub low_amps: f64,
    pub volts: f64,
}

impl SquareWave {
    /// Charge drawn from 0 to `t` (coulombs), by whole periods plus the part of the last one.
    fn charge_until(&self, t: f64) -> f64 {
        let high_s = self.duty * self.period_s;
        let periods = (t / self.period_s).floor();
        let into = t - periods * self.period_s;
        let per_period = high_s * self.high_amps + (self.period_s - high_s) * self.low_amps;
        periods * per_period
            + into.min(high_s) * self.high_amps
            + (into - high_s).max(0.0) * self.low_amps
    }

    /// Exact energy in joules drawn between `t0` and `t1`.
    pub fn energy_between(&self, t0: f64, t1: f64) -> f64 {
        self.volts * (self.charge_until(t1) - self.charge_until(t0))
    }
}

impl Load for SquareWave {
    fn current_at(&mut self, t: f64) -> f64 {
        if t.rem_euclid(self.period_s) < self.duty * self.period_s {
            self.high_amps
        } else {
            self.low_amps
        }
    }

    fn bus_volts_at(&mut self, _t: f64, _amps: f64) -> f64 {
        self.volts
    }
}

/// The board of an `ina219-sim` rig: an idle current, plus an active current while the runner
/// is in a busy phase (warm-up or timed), plus Gaussian noise; the supply sags by I × R.
///
/// It reads the same [`PhaseLog`] the runner writes, so simulated energy follows the protocol
/// and net (minus idle) figures come out near `active_amps × volts`.
#[derive(Debug)]
pub struct SimulatedBoard {
    spec: SimLoadSpec,
    phases: PhaseLog,
    noise: Normal<f64>,
    rng: StdRng,
}

impl SimulatedBoard {
    /// A board drawing per `spec` and following `phases`; the noise is seeded with `spec.seed`.
    pub fn new(spec: &SimLoadSpec, phases: PhaseLog) -> Result<Self> {
        let values = [
            spec.supply_volts,
            spec.source_ohms,
            spec.idle_amps,
            spec.active_amps,
        ];
        ensure!(
            values.iter().all(|v| v.is_finite()),
            "simulated load: supply_volts, source_ohms, idle_amps and active_amps must be finite"
        );
        ensure!(
            spec.noise_amps >= 0.0 && spec.noise_amps.is_finite(),
            "simulated load: noise_amps must be 0 or more (got {})",
            spec.noise_amps
        );
        Ok(Self {
            noise: Normal::new(0.0, spec.noise_amps)?,
            rng: StdRng::seed_from_u64(spec.seed),
            spec: spec.clone(),
            phases,
        })
    }
}

impl Load for SimulatedBoard {
    fn current_at(&mut self, t: f64) -> f64 {
        let busy = self.phases.phase_at(t).is_some_and(|p| p.is_busy());
        let active = if busy { self.spec.active_amps } else { 0.0 };
        self.spec.idle_amps + active + self.noise.sample(&mut self.rng)
    }

    fn bus_volts_at(&mut self, _t: f64, amps: f64) -> f64 {
        self.spec.supply_volts - amps * self.spec.source_ohms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Phase;

    /// Mean and standard deviation of the board's current over `n` points in `[t0, t0 + 1)`.
    fn stats(board: &mut SimulatedBoard, t0: f64, n: usize) -> (f64, f64) {
        let xs: Vec<f64> = (0..n)
            .map(|i| board.current_at(t0 + i as f64 / n as f64))
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn board_follows_phases_with_configured_noise() {
        let phases = PhaseLog::new();
        phases.begin(Phase::IdleBaseline, None, 0.0);
        let slot = Some(crate::clock::Slot {
            backend: 0,
            repetition: 1,
        });
        phases.begin(Phase::Timed, slot, 1.0);
        phases.begin(Phase::Settle, slot, 2.0);
        phases.end(3.0);
        let spec = SimLoadSpec {
            idle_amps: 0.4,
            active_amps: 0.35,
            noise_amps: 0.01,
            seed: 7,
            ..SimLoadSpec::default()
        };
        let mut board = SimulatedBoard::new(&spec, phases).unwrap();
        let n = 10_000;
        // The mean of n samples is within 5 standard errors (5 × 0.01 / 100 = 0.5 mA).
        for (t0, expected) in [(0.0, 0.40), (1.0, 0.75), (2.0, 0.40), (3.0, 0.40)] {
            let (mean, sd) = stats(&mut board, t0, n);
            assert!((mean - expected).abs() < 5e-4, "t0={t0}: mean {mean}");
            assert!((sd - 0.01).abs() < 5e-4, "t0={t0}: sd {sd}");
        }
        let v = board.bus_volts_at(0.0, 2.0);
        assert!((v - (5.1 - 2.0 * 0.05)).abs() < 1e-12, "{v}");
    }

    #[test]
    fn board_is_deterministic_per_seed_and_rejects_negative_noise() {
        let spec = SimLoadSpec::default();
        let draw = |spec: &SimLoadSpec| {
            let mut b = SimulatedBoard::new(spec, PhaseLog::new()).unwrap();
            (0..5).map(|i| b.current_at(i as f64)).collect::<Vec<_>>()
        };
        assert_eq!(draw(&spec), draw(&spec));
        assert_ne!(
            draw(&spec),
            draw(&SimLoadSpec {
                seed: 1,
                ..spec.clone()
            })
        );
        let bad = SimLoadSpec {
            noise_amps: -0.1,
            ..spec
        };
        let err = SimulatedBoard::new(&bad, PhaseLog::new()).unwrap_err();
        assert!(err.to_string().contains("noise_amps"), "{err}");
    }

    #[test]
    fn square_wave_levels_and_exact_energy() {
        let mut w = SquareWave {
            period_s: 1.0,
            duty: 0.25,
            high_amps: 2.0,
            low_amps: 0.5,
            volts: 5.0,
        };
        assert_eq!(w.current_at(0.1), 2.0);
        assert_eq!(w.current_at(0.3), 0.5);
        assert_eq!(w.current_at(1.2), 2.0);
        // One period: 0.25 s × 2 A + 0.75 s × 0.5 A = 0.875 C, × 5 V.
        assert!((w.energy_between(0.0, 1.0) - 4.375).abs() < 1e-12);
        // 0.1..2.3: 0.15 s high + 0.75 s low, one whole period, then 0.25 s high + 0.05 s low.
        let expected = 5.0 * (0.15 * 2.0 + 0.75 * 0.5 + 0.875 + 0.25 * 2.0 + 0.05 * 0.5);
        assert!((w.energy_between(0.1, 2.3) - expected).abs() < 1e-12);
    }
}
