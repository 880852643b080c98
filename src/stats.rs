//! Summary statistics of latencies and of repeated measurements (`statrs`).

use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::{Data, Distribution, Max, Min, OrderStatistics};

/// Distribution of one series of measurements.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (0 for fewer than two values).
    pub std_dev: f64,
}

impl Summary {
    /// `None` for an empty series.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut data = Data::new(values.to_vec());
        Some(Self {
            n: values.len(),
            mean: data.mean()?,
            median: data.median(),
            p90: data.percentile(90),
            p99: data.percentile(99),
            min: data.min(),
            max: data.max(),
            std_dev: data.std_dev().unwrap_or(0.0),
        })
    }
}

/// The spread of repeated measurements of one quantity.
///
/// With n values x₁ … xₙ: mean x̄ = Σxᵢ / n; sample standard deviation
/// s = √(Σ(xᵢ − x̄)² / (n − 1)); standard error s / √n; the confidence interval of the mean
/// x̄ ± t₍₁₋α/₂, n−1₎ × s / √n with Student's t (α = 0.05 for 95 %); coefficient of variation
/// s / x̄.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    pub std_dev: f64,
    /// s / √n; `None` for a single value.
    pub std_error: Option<f64>,
    /// The confidence interval of the mean, low and high; `None` for a single value (an
    /// interval of zero width would claim a certainty one measurement cannot give).
    pub ci: Option<(f64, f64)>,
    /// Half the interval's width.
    pub half_width: Option<f64>,
    /// s / x̄; `None` for a single value or a zero mean.
    pub cv: Option<f64>,
}

impl Spread {
    /// At 95 % confidence; `None` for no values or a non-finite one.
    pub fn of(values: &[f64]) -> Option<Self> {
        Self::with_level(values, 0.95)
    }

    /// At confidence `level` (0 < level < 1).
    pub fn with_level(values: &[f64], level: f64) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Self {
                n,
                mean,
                std_dev: 0.0,
                std_error: None,
                ci: None,
                half_width: None,
                cv: None,
            });
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let std_dev = var.sqrt();
        let std_error = std_dev / (n as f64).sqrt();
        let half_width = t_quantile((1.0 + level) / 2.0, (n - 1) as f64)? * std_error;
        Some(Self {
            n,
            mean,
            std_dev,
            std_error: Some(std_error),
            ci: Some((mean - half_width, mean + half_width)),
            half_width: Some(half_width),
            cv: (mean != 0.0).then(|| std_dev / mean),
        })
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(p))
}

/// Half-width of an interval that adds a measurement's own relative uncertainty
/// (`instrument_relative`, e.g. 0.012) to a run-to-run half-width: independent contributions,
/// so their root sum of squares, √(h² + (u × mean)²).
pub fn combined_half_width(spread_half_width: f64, instrument_relative: f64, mean: f64) -> f64 {
    spread_half_width.hypot(instrument_relative * mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// t quantiles from the standard tables (and scipy.stats.t.ppf): t(0.975, 2) =
    /// 4.302652729749464, t(0.975, 4) = 2.7764451051977987, t(0.975, 1) = 12.706204736174698.
    /// statrs inverts the regularised incomplete beta function numerically; 1e-9 relative is
    /// far inside what it achieves and far below anything a confidence interval is read to.
    #[test]
    fn t_quantiles_match_the_tables() {
        for (df, want) in [
            (1.0, 12.706204736174698),
            (2.0, 4.302652729749464),
            (4.0, 2.7764451051977987),
        ] {
            let got = t_quantile(0.975, df).unwrap();
            assert!((got - want).abs() <= 1e-9 * want, "df {df}: {got}");
        }
    }

    #[test]
    fn spread_of_known_samples() {
        // 100, 110, 120: mean 110, s = 10, se = 10/√3, CI 110 ± 4.302653 × 5.773503.
        let s = Spread::of(&[100.0, 110.0, 120.0]).unwrap();
        assert_eq!((s.n, s.mean, s.std_dev), (3, 110.0, 10.0));
        let half = 4.302652729749464 * 10.0 / 3f64.sqrt();
        assert!((s.half_width.unwrap() - half).abs() < 1e-9);
        let (low, high) = s.ci.unwrap();
        assert!((low - (110.0 - half)).abs() < 1e-9 && (high - (110.0 + half)).abs() < 1e-9);
        assert!((s.cv.unwrap() - 10.0 / 110.0).abs() < 1e-15);
        // n = 2: 3 and 5, s = √2, CI 4 ± 12.7062 × 1.
        let s = Spread::of(&[3.0, 5.0]).unwrap();
        assert!((s.half_width.unwrap() - 12.706204736174698).abs() < 1e-8);
        // One value: a mean, no interval.
        let s = Spread::of(&[7.0]).unwrap();
        assert_eq!((s.mean, s.ci, s.cv), (7.0, None, None));
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn combined_half_width_is_a_root_sum_of_squares() {
        // 3 and 4 make 5.
        assert!((combined_half_width(3.0, 0.04, 100.0) - 5.0).abs() < 1e-12);
        assert_eq!(combined_half_width(2.0, 0.0, 100.0), 2.0);
    }

    #[test]
    fn summary_of_one_to_a_hundred() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values).unwrap();
        assert_eq!(s.n, 100);
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.median, 50.5);
        assert!((89.0..=91.0).contains(&s.p90), "{}", s.p90);
        assert!((98.0..=100.0).contains(&s.p99), "{}", s.p99);
        assert_eq!((s.min, s.max), (1.0, 100.0));
        assert!((s.std_dev - 29.011).abs() < 0.001);
    }

    #[test]
    fn empty_has_no_summary() {
        assert!(Summary::of(&[]).is_none());
    }
}
