//! A fixed wattage standing in for a measurement: a nameplate or TDP figure, as the 2019
//! comparison used for every device (e.g. a GTX1080's 180 W).
//!
//! It lets a rig without a power meter still produce an inferences-per-joule figure, while
//! [`Origin::Nominal`] makes every output say that the watts were not measured.

use std::time::Duration;

use anyhow::{bail, Result};

use super::{Origin, PowerSensor, Reading, SensorInfo};
use serde::{Deserialize, Serialize};

/// The figure never changes, so a slow cadence loses nothing and spares the sampler's CPU;
/// it still gives the integrator several points inside any window worth reporting.
const PERIOD: Duration = Duration::from_millis(100);

/// A sensor that always reports the rig's nominal wattage.
#[derive(Debug, Clone)]
pub struct NominalSensor {
    info: SensorInfo,
    watts: f64,
}

/// Builds the sensor a `kind = "nominal"` table describes.
pub fn open(spec: &NominalSpec) -> Result<NominalSensor> {
    if let Err(why) = spec.check_watts() {
        bail!("nominal sensor {:?}: {why}", spec.rail);
    }
    let source = spec.source.trim();
    let detail = if source.is_empty() {
        format!("nominal {} W, not measured", spec.watts)
    } else {
        format!("nominal {} W ({source}), not measured", spec.watts)
    };
    Ok(NominalSensor {
        info: SensorInfo {
            kind: "nominal".into(),
            rail: spec.rail.clone(),
            origin: Origin::Nominal,
            detail,
        },
        watts: spec.watts,
    })
}

impl PowerSensor for NominalSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        PERIOD
    }

    /// Never stale: a repeated figure is the figure, and stale readings are dropped from the
    /// energy integral.
    fn read(&mut self) -> Result<Reading> {
        Ok(Reading {
            watts: self.watts,
            ..Reading::default()
        })
    }
}

/// A fixed power figure that stands in for a measurement.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NominalSpec {
    /// What the figure is for, e.g. "GTX1080 board (TDP)".
    pub rail: String,
    pub watts: f64,
    /// Where the figure comes from, e.g. "NVIDIA GTX1080 specification: 180 W TDP".
    #[serde(default)]
    pub source: String,
}

impl NominalSpec {
    /// The most a nominal figure may be: 100 kW, more than any one machine this rig measures
    /// draws (an eight-GPU server, about 10 kW). Beyond it a figure is a typo, and 1e308 W would
    /// make every per-joule figure 0 and every net one infinite.
    pub const MAX_WATTS: f64 = 100_000.0;

    /// `watts` above 0 and at most [`Self::MAX_WATTS`]: the error names the figure.
    pub fn check_watts(&self) -> Result<(), String> {
        if self.watts > 0.0 && self.watts <= Self::MAX_WATTS {
            return Ok(());
        }
        Err(format!(
            "watts must be positive and at most {} W (100 kW, more than any one machine draws), \
             not {:?}",
            Self::MAX_WATTS,
            self.watts
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(watts: f64, source: &str) -> NominalSpec {
        NominalSpec {
            rail: "GTX1080 board (TDP)".into(),
            watts,
            source: source.into(),
        }
    }

    #[test]
    fn reports_the_figure_as_nominal() {
        let mut s = open(&spec(180.0, "NVIDIA GTX1080 specification: 180 W TDP")).unwrap();
        let info = s.info().clone();
        assert_eq!(info.kind, "nominal");
        assert_eq!(info.rail, "GTX1080 board (TDP)");
        assert_eq!(info.origin, Origin::Nominal);
        assert_eq!(
            info.detail,
            "nominal 180 W (NVIDIA GTX1080 specification: 180 W TDP), not measured"
        );
        assert_eq!(s.update_period(), PERIOD);
        for _ in 0..3 {
            let r = s.read().unwrap();
            assert_eq!(r.watts, 180.0);
            assert_eq!((r.volts, r.amps, r.energy_j), (None, None, None));
            assert!(!r.stale && !r.overflow);
        }
    }

    #[test]
    fn detail_without_source_and_bad_figures() {
        assert_eq!(
            open(&spec(2.5, "")).unwrap().info().detail,
            "nominal 2.5 W, not measured"
        );
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e308, 100_000.5] {
            let err = format!("{:#}", open(&spec(w, "")).unwrap_err());
            assert!(err.contains("watts must be positive"), "{err}");
        }
    }

    #[test]
    fn opens_through_the_rig_spec() {
        let spec = crate::sensor::SensorSpec::Nominal(spec(12.5, "Jetson Nano supply"));
        let ctx =
            super::super::SensorContext::new(crate::clock::RunClock::start(), Default::default());
        let mut s = super::super::open(&spec, &ctx).unwrap();
        assert_eq!(s.info().origin, Origin::Nominal);
        assert_eq!(s.read().unwrap().watts, 12.5);
    }
}
