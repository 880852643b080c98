//! The PMIC total fitted to a meter at the board's 5 V input: input ≈ gain × rails + offset.
//!
//! The rails the PMIC measures are the SoC side only; the input also feeds the PMIC's own
//! losses, USB, the fan and everything on 5 V, which grow with the load but not in proportion
//! to it, so a gain alone cannot map one onto the other: an offset too, and so at least two
//! reference points at different loads (`joulebench calibrate`, once per load).
//!
//! Each point's reference has a stated uncertainty (a USB-C meter's ±1 %, say). The fit is a
//! weighted least-squares line, a linear function of the references, so its value at any
//! PMIC reading is Σ cᵢ yᵢ with coefficients cᵢ that depend only on the PMIC readings; the
//! references' bounds bᵢ then bound it by Σ |cᵢ| bᵢ (a bound, not a standard error: one
//! meter's error has one sign at every load). [`Fit::uncertainty`] is the largest such bound,
//! relative to the value, over the fitted range.

use serde::{Deserialize, Serialize};

/// One reference point: the PMIC total and the input meter, read over the same seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    /// The mean of the PMIC rails' total, watts.
    pub pmic_w: f64,
    /// What the meter at the 5 V input read meanwhile, watts.
    pub reference_w: f64,
    /// What that meter is good to, percent.
    pub reference_uncertainty_pct: f64,
}

/// Points closer than this share of the larger PMIC reading do not tell an offset from a
/// gain: a 1 % error in either reference would move the offset by more than the reading.
pub const MIN_SPREAD: f64 = 0.2;

/// The largest reference uncertainty a point may state: beyond it the fit says nothing.
pub const MAX_REFERENCE_PCT: f64 = 20.0;

/// A gain outside this band maps the rails onto the input as no supply does (the input is
/// the rails plus the rest of the board, so near 1 and above): points from another board, or
/// swapped values.
pub const GAIN_BAND: std::ops::RangeInclusive<f64> = 0.5..=4.0;

/// The line through the points.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub gain: f64,
    pub offset_w: f64,
    /// The PMIC readings' range the points span, watts.
    pub range_w: (f64, f64),
    /// The largest relative bound on a fitted value within that range (0.01 for 1 %).
    pub uncertainty: f64,
    pub points: usize,
}

/// Checks one point's numbers.
pub fn check_point(p: &CalibrationPoint) -> Result<(), String> {
    let positive = |v: f64| v > 0.0 && v.is_finite();
    if !positive(p.pmic_w) || !positive(p.reference_w) {
        return Err(format!(
            "a calibration point needs positive pmic_w and reference_w, not {} and {}",
            p.pmic_w, p.reference_w
        ));
    }
    if !(p.reference_uncertainty_pct > 0.0 && p.reference_uncertainty_pct <= MAX_REFERENCE_PCT) {
        return Err(format!(
            "reference_uncertainty_pct must be above 0 and at most {MAX_REFERENCE_PCT}, not {}",
            p.reference_uncertainty_pct
        ));
    }
    Ok(())
}

impl Fit {
    /// The fit of two or more points; `Ok(None)` for fewer (nothing to fit yet). The error is
    /// one line that says what to measure instead.
    pub fn of(points: &[CalibrationPoint]) -> Result<Option<Fit>, String> {
        for p in points {
            check_point(p)?;
        }
        if points.len() < 2 {
            return Ok(None);
        }
        let lo = points
            .iter()
            .map(|p| p.pmic_w)
            .fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.pmic_w).fold(0.0, f64::max);
        if hi - lo < MIN_SPREAD * hi {
            return Err(format!(
                "the calibration points span {lo:.3} to {hi:.3} W of the PMIC: too close to tell \
                 an offset from a gain; measure one idle and one under load (stress-ng --cpu 4)"
            ));
        }
        // Weights 1/σᵢ², σᵢ the reference's bound in watts.
        let bound = |p: &CalibrationPoint| p.reference_w * p.reference_uncertainty_pct / 100.0;
        let w: Vec<f64> = points.iter().map(|p| bound(p).powi(-2)).collect();
        let sw: f64 = w.iter().sum();
        let mean_x = points
            .iter()
            .zip(&w)
            .map(|(p, w)| w * p.pmic_w)
            .sum::<f64>()
            / sw;
        let mean_y = points
            .iter()
            .zip(&w)
            .map(|(p, w)| w * p.reference_w)
            .sum::<f64>()
            / sw;
        let sxx: f64 = points
            .iter()
            .zip(&w)
            .map(|(p, w)| w * (p.pmic_w - mean_x).powi(2))
            .sum();
        let gain = points
            .iter()
            .zip(&w)
            .map(|(p, w)| w * (p.pmic_w - mean_x) * (p.reference_w - mean_y))
            .sum::<f64>()
            / sxx;
        let offset_w = mean_y - gain * mean_x;
        if !GAIN_BAND.contains(&gain) {
            return Err(format!(
                "the calibration points give input = {gain:.3} × PMIC {offset_w:+.3} W, a gain \
                 outside {}..{}: points of another board or load, or pmic_w and reference_w \
                 swapped",
                GAIN_BAND.start(),
                GAIN_BAND.end()
            ));
        }
        // The value at x is Σ cᵢ(x) yᵢ, cᵢ = wᵢ (1/Σw + (x − x̄)(xᵢ − x̄)/Sxx).
        let bound_at = |x: f64| -> f64 {
            points
                .iter()
                .zip(&w)
                .map(|(p, wi)| {
                    let c = wi * (1.0 / sw + (x - mean_x) * (p.pmic_w - mean_x) / sxx);
                    c.abs() * bound(p)
                })
                .sum()
        };
        // The bound is convex and piecewise linear in x, the value linear: the largest ratio
        // lies at an end of the range or where a coefficient changes sign; a fine scan finds it.
        let uncertainty = (0..=200)
            .map(|i| lo + (hi - lo) * i as f64 / 200.0)
            .map(|x| bound_at(x) / (gain * x + offset_w))
            .fold(0.0, f64::max);
        Ok(Some(Fit {
            gain,
            offset_w,
            range_w: (lo, hi),
            uncertainty,
            points: points.len(),
        }))
    }

    /// The input's watts for a PMIC total.
    pub fn apply(&self, pmic_w: f64) -> f64 {
        self.gain * pmic_w + self.offset_w
    }

    /// E.g. "input = 1.1946 × PMIC + 0.4183 W, fitted to 2 points over 2.41 to 5.80 W of the
    /// PMIC, within ±1.00 %".
    pub fn describe(&self) -> String {
        format!(
            "input = {:.4} × PMIC {:+.4} W, fitted to {} points over {:.2} to {:.2} W of the \
             PMIC, within ±{:.2} %",
            self.gain,
            self.offset_w,
            self.points,
            self.range_w.0,
            self.range_w.1,
            self.uncertainty * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(pmic_w: f64, reference_w: f64, pct: f64) -> CalibrationPoint {
        CalibrationPoint {
            pmic_w,
            reference_w,
            reference_uncertainty_pct: pct,
        }
    }

    #[test]
    fn two_points_give_the_line_through_them_and_their_bound() {
        // input = 1.2 × PMIC + 0.5 W.
        let fit = Fit::of(&[point(2.0, 2.9, 1.0), point(6.0, 7.7, 1.0)])
            .unwrap()
            .unwrap();
        assert!((fit.gain - 1.2).abs() < 1e-12 && (fit.offset_w - 0.5).abs() < 1e-12);
        assert_eq!(fit.range_w, (2.0, 6.0));
        // Between two points the value is (1 − t) y₁ + t y₂, bounded by (1 − t) b₁ + t b₂:
        // 1 % of each reference, so 1 % of the value everywhere in the range.
        assert!((fit.uncertainty - 0.01).abs() < 1e-9, "{}", fit.uncertainty);
        assert!((fit.apply(4.0) - 5.3).abs() < 1e-12);
        assert_eq!(
            fit.describe(),
            "input = 1.2000 × PMIC +0.5000 W, fitted to 2 points over 2.00 to 6.00 W of the \
             PMIC, within ±1.00 %"
        );
    }

    #[test]
    fn more_points_weigh_the_better_references_more() {
        // Three points on input = 1.1 × PMIC + 1 W, the middle one 5 % off but 10 times less
        // sure: the line stays near the two good ones.
        let fit = Fit::of(&[
            point(2.0, 3.2, 0.5),
            point(4.0, 5.4 * 1.05, 5.0),
            point(6.0, 7.6, 0.5),
        ])
        .unwrap()
        .unwrap();
        assert!((fit.gain - 1.1).abs() < 0.01, "{fit:?}");
        assert!((fit.offset_w - 1.0).abs() < 0.05, "{fit:?}");
        // No better than the best reference.
        assert!(fit.uncertainty >= 0.005 - 1e-12, "{fit:?}");
    }

    #[test]
    fn too_few_close_or_impossible_points_are_refused_or_unfitted() {
        assert_eq!(Fit::of(&[]), Ok(None));
        assert_eq!(Fit::of(&[point(2.0, 3.0, 1.0)]), Ok(None));
        let close = Fit::of(&[point(2.0, 3.0, 1.0), point(2.2, 3.2, 1.0)]).unwrap_err();
        assert!(
            close.contains("too close to tell an offset from a gain"),
            "{close}"
        );
        let swapped = Fit::of(&[point(2.0, 3.0, 1.0), point(6.0, 2.0, 1.0)]).unwrap_err();
        assert!(swapped.contains("a gain outside 0.5..4"), "{swapped}");
        for bad in [
            point(0.0, 3.0, 1.0),
            point(2.0, f64::NAN, 1.0),
            point(2.0, 3.0, 0.0),
            point(2.0, 3.0, 25.0),
        ] {
            assert!(Fit::of(&[bad]).is_err(), "{bad:?}");
        }
    }
}
