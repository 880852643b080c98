//! Whether a window's energy can be trusted, judged from the sensor's physics rather than
//! from how plausible the number looks.
//!
//! A sensor says how often it produces a fresh value (joulebench's `PowerSensor::update_period`:
//! an INA219's conversion or bus time, an NVML counter's measured period). A window that got
//! far fewer fresh values than that, or whose values leave stretches uncovered, or whose values
//! were clipped at the sensor's range, describes the sampler or the wiring more than the load:
//! it is reported `invalid: <reason>` with no per-joule figures, and the run exits non-zero.
//! Every window is checked this way, the idle baseline too, since every net figure uses it.

use serde::{Deserialize, Serialize};

use crate::energy::{WindowEnergy, MIN_COUNTER_UPDATES};

/// The rig's `[validity]` table: how much of a window the readings must cover.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValiditySpec {
    /// Least fraction of a window spanned by fresh readings no further apart than three
    /// update periods.
    #[serde(default = "default_fraction")]
    pub min_coverage: f64,
    /// Least number of fresh readings, as a fraction of what the sensor's update rate fits
    /// in the window.
    #[serde(default = "default_fraction")]
    pub min_fresh_fraction: f64,
}

fn default_fraction() -> f64 {
    0.95
}

impl Default for ValiditySpec {
    fn default() -> Self {
        Self {
            min_coverage: default_fraction(),
            min_fresh_fraction: default_fraction(),
        }
    }
}

impl ValiditySpec {
    /// Both thresholds are fractions in (0, 1].
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("min_coverage", self.min_coverage),
            ("min_fresh_fraction", self.min_fresh_fraction),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!(
                    "validity.{name} must be above 0 and at most 1, not {v}"
                ));
            }
        }
        Ok(())
    }
}

/// What one sensor saw of one window, beyond its energy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowReadings {
    /// Readings clipped at the sensor's range.
    pub saturated: usize,
    /// Reads that failed.
    pub errors: usize,
}

/// The fresh readings a sensor updating every `period_s` must deliver in `duration_s`:
/// `min_fresh_fraction` of those that fit, rounded down (a 0.35 s window of a 10 Hz counter
/// holds 3 or 4 updates depending on phase; 95 % of 3.5 is 3.3, so 3 must be there).
pub fn expected_fresh(duration_s: f64, period_s: f64, spec: &ValiditySpec) -> usize {
    if period_s <= 0.0 || !duration_s.is_finite() {
        return 0;
    }
    (spec.min_fresh_fraction * duration_s / period_s + 1e-9).floor() as usize
}

/// Checks one window; the error is the reason, for `invalid: <reason>`.
pub fn check(
    energy: Option<&WindowEnergy>,
    readings: WindowReadings,
    (start, end): (f64, f64),
    period_s: f64,
    counted: bool,
    spec: &ValiditySpec,
) -> Result<(), String> {
    let Some(e) = energy else {
        return Err("no fresh readings in the window".into());
    };
    if readings.saturated > 0 {
        return Err(format!(
            "{} readings clipped at the shunt range (PGA saturated): the power was higher; \
             raise shunt_range_mv or max_current_a, or use a smaller shunt",
            readings.saturated
        ));
    }
    if counted && e.samples < MIN_COUNTER_UPDATES {
        return Err(format!(
            "short window: the energy counter updated {} times (fewer than {}); raise \
             protocol.min_duration_s",
            e.samples, MIN_COUNTER_UPDATES
        ));
    }
    let duration = end - start;
    let expected = expected_fresh(duration, period_s, spec);
    if e.samples < expected {
        return Err(format!(
            "{} fresh readings in {:.3} s, fewer than {} ({:.0} % of what {:.1} Hz gives{})",
            e.samples,
            duration,
            expected,
            spec.min_fresh_fraction * 100.0,
            1.0 / period_s,
            errors_note(readings.errors)
        ));
    }
    if e.coverage < spec.min_coverage {
        return Err(format!(
            "coverage {:.3} below {} (largest gap {:.1} ms{})",
            e.coverage,
            spec.min_coverage,
            e.largest_gap_s * 1e3,
            errors_note(readings.errors)
        ));
    }
    Ok(())
}

fn errors_note(errors: usize) -> String {
    match errors {
        0 => String::new(),
        n => format!(", {n} failed reads"),
    }
}

/// One window's energy, and whether its readings can be trusted.
#[derive(Debug, Clone)]
pub struct CheckedWindow {
    pub energy: Option<WindowEnergy>,
    /// The fewest fresh readings that make the window valid.
    pub expected: usize,
    /// Why the window is invalid.
    pub invalid: Option<String>,
    /// For a total, each rail's joules, in the rig's `total` order.
    pub parts: Option<Vec<f64>>,
    /// The counter against instant power over the same window (`joulebench::summary::SensorEnergy::crosscheck`):
    /// the disagreement in percent, or why there is none; `None` where no check applies.
    pub crosscheck: Option<Result<f64, String>>,
    /// The standard error of the window's mean power from its fresh readings, s / √n, watts
    /// (treating them as independent); `None` with fewer than two.
    pub watts_se: Option<f64>,
}

impl CheckedWindow {
    /// The energy, only if the window is valid.
    pub fn valid(&self) -> Option<WindowEnergy> {
        self.energy.filter(|_| self.invalid.is_none())
    }

    /// The sum of several rails' windows over the same interval: valid only where every rail's
    /// is, with the sum of their energies and powers, and the worst of their coverage and gaps.
    pub fn total(rails: &[(&str, CheckedWindow)]) -> CheckedWindow {
        let energies: Option<Vec<WindowEnergy>> = rails.iter().map(|(_, w)| w.energy).collect();
        let energy = energies.as_ref().map(|each| WindowEnergy {
            joules: each.iter().map(|e| e.joules).sum(),
            mean_watts: each.iter().map(|e| e.mean_watts).sum(),
            samples: each.iter().map(|e| e.samples).sum(),
            sample_rate_hz: each.iter().map(|e| e.sample_rate_hz).sum(),
            coverage: each.iter().map(|e| e.coverage).fold(1.0, f64::min),
            largest_gap_s: each.iter().map(|e| e.largest_gap_s).fold(0.0, f64::max),
        });
        let invalid = rails
            .iter()
            .find_map(|(rail, w)| w.invalid.as_ref().map(|why| format!("{rail}: {why}")))
            .or_else(|| {
                let missing = rails.iter().find(|(_, w)| w.energy.is_none())?;
                Some(format!("{}: no energy for this window", missing.0))
            });
        CheckedWindow {
            energy,
            expected: rails.iter().map(|(_, w)| w.expected).sum(),
            invalid,
            parts: energies.map(|each| each.iter().map(|e| e.joules).collect()),
            // Each rail's check is on its own row; a sum of rails has none.
            crosscheck: None,
            // Independent rails: their errors add in quadrature.
            watts_se: rails
                .iter()
                .map(|(_, w)| w.watts_se.map(|se| se * se))
                .sum::<Option<f64>>()
                .map(f64::sqrt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(samples: usize, coverage: f64) -> WindowEnergy {
        WindowEnergy {
            joules: 10.0,
            mean_watts: 3.33,
            samples,
            sample_rate_hz: samples as f64 / 3.0,
            coverage,
            largest_gap_s: 0.004,
        }
    }

    const SPEC: ValiditySpec = ValiditySpec {
        min_coverage: 0.95,
        min_fresh_fraction: 0.95,
    };

    fn check_3s(
        e: Option<&WindowEnergy>,
        readings: WindowReadings,
        counted: bool,
    ) -> Result<(), String> {
        // A 12-bit INA219 on a 400 kHz bus: 1.064 ms per fresh value, 2819 fit in 3 s.
        check(e, readings, (1.0, 4.0), 1.064e-3, counted, &SPEC)
    }

    #[test]
    fn expected_readings_round_down() {
        assert_eq!(expected_fresh(3.0, 1.064e-3, &SPEC), 2678);
        assert_eq!(expected_fresh(0.35, 0.1, &SPEC), 3);
        assert_eq!(expected_fresh(3.0, 0.1, &SPEC), 28);
        assert_eq!(expected_fresh(f64::INFINITY, 0.1, &SPEC), 0);
    }

    #[test]
    fn a_full_window_passes_and_each_shortfall_has_its_reason() {
        let ok = WindowReadings::default();
        assert_eq!(check_3s(Some(&window(2800, 1.0)), ok, false), Ok(()));
        let few = check_3s(Some(&window(1900, 1.0)), ok, false).unwrap_err();
        assert!(
            few.starts_with("1900 fresh readings in 3.000 s, fewer than 2678"),
            "{few}"
        );
        let gaps = check_3s(
            Some(&window(2800, 0.94)),
            WindowReadings { errors: 7, ..ok },
            false,
        )
        .unwrap_err();
        assert_eq!(
            gaps,
            "coverage 0.940 below 0.95 (largest gap 4.0 ms, 7 failed reads)"
        );
        let none = check_3s(None, ok, false).unwrap_err();
        assert_eq!(none, "no fresh readings in the window");
        let clipped = check_3s(
            Some(&window(2800, 1.0)),
            WindowReadings { saturated: 2, ..ok },
            false,
        )
        .unwrap_err();
        assert!(
            clipped.starts_with("2 readings clipped at the shunt range"),
            "{clipped}"
        );
        let short = check(Some(&window(2, 1.0)), ok, (1.0, 1.2), 0.1, true, &SPEC).unwrap_err();
        assert!(
            short.starts_with("short window: the energy counter updated 2 times"),
            "{short}"
        );
    }

    #[test]
    fn thresholds_must_be_fractions() {
        assert!(SPEC.validate().is_ok());
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            let spec = ValiditySpec {
                min_coverage: bad,
                ..SPEC
            };
            assert!(spec
                .validate()
                .unwrap_err()
                .starts_with("validity.min_coverage"));
        }
    }
}
