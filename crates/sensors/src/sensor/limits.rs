//! What a meter can physically report. A reading outside it is not a load but a fault: a
//! channel read in the wrong unit, a shunt wired backwards, a driver's sentinel value, a meter
//! of something that draws nothing. Such a reading must never reach a per-joule figure, so the
//! summary makes its window invalid and names the reading ([`Limits::judge`]), as it does for
//! a negative energy counter; and a window whose mean is below [`MIN_BOARD_WATTS`] has no
//! per-joule figure worth printing (1 µW gives 300 million inferences per joule).

use serde::{Deserialize, Serialize};

use super::Reading;

/// The least power a board that runs a model draws, watts: a microcontroller doing inference
/// draws tens of milliwatts, a Raspberry Pi's 5 V supply watts. A meter whose window averages
/// less reads another rail, or nothing.
pub const MIN_BOARD_WATTS: f64 = 0.01;

/// The most one meter of any machine this rig measures carries, watts, where its kind states
/// no range of its own: more than a whole eight-GPU server draws (about 10 kW). Beyond it a
/// reading is a misread unit, not a load.
pub const ANY_RAIL_MAX_WATTS: f64 = 20_000.0;

/// The highest voltage an INA219's or INA3221's bus pins take (both datasheets' absolute
/// maximum, 26 V): a higher reading is not a supply.
pub const INA_MAX_BUS_VOLTS: f64 = 26.0;

/// What a sensor of its kind and settings can report ([`super::PowerSensor::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// The most power its range, or the rail it measures, can carry, watts.
    pub max_watts: f64,
    /// The highest bus voltage it reads, volts, where it reads one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_volts: Option<f64>,
}

impl Default for Limits {
    /// A meter that states no range of its own.
    fn default() -> Self {
        Self {
            max_watts: ANY_RAIL_MAX_WATTS,
            max_volts: None,
        }
    }
}

impl Limits {
    /// An INA219's or INA3221's: its bus voltage up to [`INA_MAX_BUS_VOLTS`], its current up to
    /// its shunt range over the shunt.
    pub fn ina(shunt_range_volts: f64, shunt_ohms: f64) -> Self {
        Self {
            max_watts: INA_MAX_BUS_VOLTS * shunt_range_volts / shunt_ohms,
            max_volts: Some(INA_MAX_BUS_VOLTS),
        }
    }

    /// Why `reading` cannot come from such a sensor, as the end of a sentence ("-5.000 W: ...");
    /// `None` where it can.
    pub fn judge(&self, reading: &Reading) -> Option<String> {
        let Reading {
            watts, volts, amps, ..
        } = *reading;
        if !watts.is_finite() {
            return Some(format!("{watts} W, not a number a meter reads"));
        }
        if watts < 0.0 {
            return Some(format!(
                "{watts:.3} W: a meter of a supply never reads negative power (a shunt wired \
                 backwards, or a channel that is not a supply's)"
            ));
        }
        if let Some(v) = volts.filter(|v| !v.is_finite() || *v < 0.0) {
            return Some(format!(
                "bus voltage {v:.3} V: a supply's is never negative (a bus pin on the wrong side \
                 of the shunt, or to ground)"
            ));
        }
        if let Some(a) = amps.filter(|a| !a.is_finite() || *a < 0.0) {
            return Some(format!(
                "current {a:.4} A: negative, so VIN+ and VIN− are swapped (current flows from \
                 VIN+ to VIN−)"
            ));
        }
        if watts > self.max_watts {
            return Some(format!(
                "{watts:.3} W, more than the {:.1} W this sensor's range can carry (a misread \
                 unit or channel)",
                self.max_watts
            ));
        }
        if let (Some(v), Some(max)) = (volts, self.max_volts) {
            if v > max {
                return Some(format!(
                    "bus voltage {v:.3} V, above the {max} V this chip's bus pins take"
                ));
            }
        }
        None
    }
}

/// Why `watts` (a window's mean, or a meter's reading) is too little to be a board's that
/// runs a model, which leaves no per-joule figure to trust; `None` where it is enough.
pub fn too_little(watts: f64) -> Option<String> {
    (watts < MIN_BOARD_WATTS).then(|| {
        format!(
            "{watts:.6} W, less than the {MIN_BOARD_WATTS} W any board running a model draws: \
             the meter reads another rail, or nothing (check the rig's channel and its wiring)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(watts: f64, volts: Option<f64>, amps: Option<f64>) -> Reading {
        Reading {
            watts,
            volts,
            amps,
            ..Reading::default()
        }
    }

    #[test]
    fn possible_readings_pass_and_impossible_ones_are_named() {
        let pi = Limits::ina(0.32, 0.1);
        assert!((pi.max_watts - 83.2).abs() < 1e-9);
        assert_eq!(pi.judge(&reading(3.8, Some(5.05), Some(0.75))), None);
        assert_eq!(pi.judge(&reading(0.0, Some(5.1), Some(0.0))), None);
        for (r, says) in [
            (
                reading(-5.0, None, None),
                "-5.000 W: a meter of a supply never reads",
            ),
            (reading(f64::NAN, None, None), "NaN W, not a number"),
            (reading(1.0, Some(-0.2), None), "bus voltage -0.200 V"),
            (
                reading(1.0, Some(5.0), Some(-0.2)),
                "VIN+ and VIN− are swapped",
            ),
            (reading(90.0, Some(5.0), Some(18.0)), "more than the 83.2 W"),
            (reading(3.0, Some(27.0), Some(0.1)), "above the 26 V"),
        ] {
            let why = pi.judge(&r).expect("impossible");
            assert!(why.contains(says), "{why}");
        }
        // A meter with no range of its own: only the physics of any supply.
        let any = Limits::default();
        assert_eq!(any.judge(&reading(700.0, None, None)), None);
        assert!(any.judge(&reading(30_000.0, None, None)).is_some());
    }

    #[test]
    fn a_board_drawing_microwatts_has_no_per_joule_figure() {
        assert!(too_little(0.000001)
            .unwrap()
            .starts_with("0.000001 W, less than"));
        assert!(too_little(0.0).is_some());
        assert_eq!(too_little(0.4), None);
    }
}
