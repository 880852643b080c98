//! Statistics of latencies, of repeated measurements and of comparisons between two
//! contenders, with Student's t from `statrs`.
//!
//! Notation used in the formulas below: a sample x₁ … xₙ of n values has the mean
//! x̄ = Σxᵢ / n and the sample variance s² = Σ(xᵢ − x̄)² / (n − 1); t₍q, ν₎ is the q quantile
//! of Student's t with ν degrees of freedom and F_ν its cumulative distribution function.
//! The constructors take plain slices and return `None` where their statistic is undefined;
//! all but [`Summary::of`] also return `None` for a non-finite input value.

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
/// With n values: mean x̄; sample standard deviation s = √(Σ(xᵢ − x̄)² / (n − 1)); standard
/// error s / √n; the confidence interval of the mean at level L (0.95 for 95 %)
/// x̄ ± t₍(1+L)/2, n−1₎ × s / √n with Student's t; coefficient of variation s / x̄.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    pub std_dev: f64,
    /// s / √n; `None` for a single value.
    pub std_error: Option<f64>,
    /// Confidence level of `ci`, e.g. 0.95.
    pub level: f64,
    /// The confidence interval of the mean, low and high; `None` for a single value (an
    /// interval of zero width would claim a certainty one measurement cannot give).
    pub ci: Option<(f64, f64)>,
    /// Half the interval's width, t₍(1+L)/2, n−1₎ × s / √n.
    pub half_width: Option<f64>,
    /// s / x̄; `None` for a single value or a zero mean.
    pub cv: Option<f64>,
}

impl Spread {
    /// At 95 % confidence; `None` for no values or a non-finite one.
    pub fn of(values: &[f64]) -> Option<Self> {
        Self::with_level(values, 0.95)
    }

    /// At confidence `level` (0 < level < 1, else `None`).
    pub fn with_level(values: &[f64], level: f64) -> Option<Self> {
        if !(level > 0.0 && level < 1.0) {
            return None;
        }
        let m = Moments::of(values)?;
        if m.n == 1 {
            return Some(Self {
                n: 1,
                mean: m.mean,
                std_dev: 0.0,
                std_error: None,
                level,
                ci: None,
                half_width: None,
                cv: None,
            });
        }
        let std_dev = m.var.sqrt();
        let std_error = std_dev / (m.n as f64).sqrt();
        let half_width = t_quantile((1.0 + level) / 2.0, (m.n - 1) as f64)? * std_error;
        Some(Self {
            n: m.n,
            mean: m.mean,
            std_dev,
            std_error: Some(std_error),
            level,
            ci: Some((m.mean - half_width, m.mean + half_width)),
            half_width: Some(half_width),
            cv: (m.mean != 0.0).then(|| std_dev / m.mean),
        })
    }
}

/// Welch's unequal-variance t-test of the difference between the means of samples a and b.
///
/// With vₐ = sₐ² / nₐ and v_b = s_b² / n_b:
/// t = (x̄ₐ − x̄_b) / √(vₐ + v_b); degrees of freedom by Welch–Satterthwaite,
/// ν = (vₐ + v_b)² / (vₐ² / (nₐ − 1) + v_b² / (n_b − 1)); two-sided p = 2 × (1 − F_ν(|t|)).
///
/// When both samples have zero variance the test degenerates: t = 0 and p = 1 if the means
/// are equal, otherwise t = ±∞ and p = 0 (no spread, so any difference is certain); ν is 0/0
/// there and given as `None`. With one variance zero the formulas hold (ν = n − 1 of the
/// other sample).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Welch {
    pub n_a: usize,
    pub n_b: usize,
    /// x̄ₐ − x̄_b.
    pub difference: f64,
    /// √(sₐ² / nₐ + s_b² / n_b).
    pub std_error: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom; `None` when both variances are zero.
    pub df: Option<f64>,
    /// Two-sided p-value.
    pub p: f64,
}

impl Welch {
    /// `None` unless both samples have at least two values, all finite.
    pub fn test(a: &[f64], b: &[f64]) -> Option<Self> {
        let (ma, mb) = (Moments::of(a)?, Moments::of(b)?);
        if ma.n < 2 || mb.n < 2 {
            return None;
        }
        let (va, vb) = (ma.var / ma.n as f64, mb.var / mb.n as f64);
        let difference = ma.mean - mb.mean;
        let std_error = (va + vb).sqrt();
        let (t, df, p) = if std_error == 0.0 {
            if difference == 0.0 {
                (0.0, None, 1.0)
            } else {
                (f64::INFINITY.copysign(difference), None, 0.0)
            }
        } else {
            let t = difference / std_error;
            let df = welch_satterthwaite(va, ma.n, vb, mb.n);
            (t, Some(df), two_sided_p(t, df)?)
        };
        Some(Self {
            n_a: ma.n,
            n_b: mb.n,
            difference,
            std_error,
            t,
            df,
            p,
        })
    }
}

/// Welch's test on the logarithms of two samples of a positive quantity: the ratio of their
/// geometric means, its confidence interval and the test's p-value, all from one t statistic
/// with one number of degrees of freedom.
///
/// With lₐ = ln a and l_b = ln b, [`Welch`] gives d = l̄ₐ − l̄_b, its standard error se, ν and
/// p; the ratio is exp(d) and the interval at level L exp(d ± t₍(1+L)/2, ν₎ × se). Since the
/// interval excludes 1 exactly when |d| / se > t₍(1+L)/2, ν₎, that is exactly when p < 1 − L:
/// the two never disagree. Without spread on either side (ν undefined) the interval is the
/// ratio itself, and p is 1 for equal samples, else 0.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LogRatio {
    /// exp(l̄ₐ − l̄_b): the ratio of the geometric means.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub level: f64,
    /// The Welch test on the logarithms.
    pub test: Welch,
}

impl LogRatio {
    /// At 95 % confidence.
    pub fn of(a: &[f64], b: &[f64]) -> Option<Self> {
        Self::with_level(a, b, 0.95)
    }

    /// At confidence `level` (0 < level < 1). `None` unless both samples have at least two
    /// values, all finite and above zero.
    pub fn with_level(a: &[f64], b: &[f64], level: f64) -> Option<Self> {
        if !(level > 0.0 && level < 1.0) {
            return None;
        }
        let test = Welch::test(&logs(a)?, &logs(b)?)?;
        let half = match test.df {
            Some(df) => t_quantile((1.0 + level) / 2.0, df)? * test.std_error,
            None => 0.0,
        };
        Some(Self {
            ratio: test.difference.exp(),
            low: (test.difference - half).exp(),
            high: (test.difference + half).exp(),
            level,
            test,
        })
    }
}

/// A positive quantity measured in repetitions (inferences per joule, FPS, watts), as every
/// figure across repetitions is given: the table's aggregate row, `compare`, `report` and the
/// exports all take this one statistic.
///
/// With lᵢ = ln xᵢ: the figure is the geometric mean exp(l̄), and its interval at 95 %
/// exp(l̄ ± t₍0.975, n−1₎ × s_l / √n), Student's t on the logarithms. That is the scale on
/// which [`LogRatio`] compares two of them, so an entry's figure and its ratio to another are
/// one statistic; the interval holds the figure, is asymmetric as a ratio's is, and never
/// reaches zero (with two repetitions t is 12.7, and x̄ ± h went below zero). The geometric mean
/// of a quotient is the quotient of the geometric means, so the aggregate's inferences per joule
/// is its FPS over its watts and the reciprocal of its joules per inference, as each
/// repetition's is. `std_dev` and `cv` describe the values themselves: s and s / x̄.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Repeated {
    pub n: usize,
    /// The geometric mean.
    pub mean: f64,
    /// Its 95 % interval; `None` for a single value.
    pub ci: Option<(f64, f64)>,
    /// Half the interval's width on the log scale, t × s_l / √n = ln(high / mean).
    pub log_half_width: Option<f64>,
    /// The values' sample standard deviation (0 for a single value).
    pub std_dev: f64,
    /// s / x̄ of the values; `None` for a single value.
    pub cv: Option<f64>,
}

impl Repeated {
    /// `None` for no values or one not above zero or not finite.
    pub fn of(values: &[f64]) -> Option<Self> {
        // Relative to the first value, so that a constant sample (one value, say) gives that
        // value back to the bit rather than exp(ln x).
        let (&first, _) = values.split_first()?;
        if first <= 0.0 {
            return None;
        }
        let relative: Vec<f64> = values.iter().map(|v| v / first).collect();
        let logs = Spread::of(&logs(&relative)?)?;
        let spread = Spread::of(values)?;
        Some(Self {
            n: values.len(),
            mean: first * logs.mean.exp(),
            ci: logs
                .ci
                .map(|(low, high)| (first * low.exp(), first * high.exp())),
            log_half_width: logs.half_width,
            std_dev: spread.std_dev,
            cv: spread.cv,
        })
    }
}

/// The natural logarithms of `values`; `None` if one is not above zero.
fn logs(values: &[f64]) -> Option<Vec<f64>> {
    values.iter().map(|v| (*v > 0.0).then(|| v.ln())).collect()
}

/// Hedges' g of samples a and b: Cohen's d with the pooled standard deviation, times the
/// small-sample correction J.
///
/// sₚ = √(((nₐ − 1)sₐ² + (n_b − 1)s_b²) / (nₐ + n_b − 2)), d = (x̄ₐ − x̄_b) / sₚ,
/// J = 1 − 3 / (4(nₐ + n_b) − 9), g = J × d. Positive when a's mean is the larger.
///
/// `None` unless both samples have at least two values (each must estimate its own spread),
/// all finite, and sₚ > 0.
pub fn hedges_g(a: &[f64], b: &[f64]) -> Option<f64> {
    let (ma, mb) = (Moments::of(a)?, Moments::of(b)?);
    if ma.n < 2 || mb.n < 2 {
        return None;
    }
    let (na, nb) = (ma.n as f64, mb.n as f64);
    let pooled = (((na - 1.0) * ma.var + (nb - 1.0) * mb.var) / (na + nb - 2.0)).sqrt();
    if pooled == 0.0 {
        return None;
    }
    let j = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0);
    Some(j * (ma.mean - mb.mean) / pooled)
}

/// The ratio of two means, x̄ₐ / x̄_b, with a confidence interval by the delta method on the
/// log ratio.
///
/// se = √(sₐ² / (nₐ x̄ₐ²) + s_b² / (n_b x̄_b²)) is the standard error of ln(x̄ₐ / x̄_b) to first
/// order; its degrees of freedom ν come from Welch–Satterthwaite on the two terms
/// uₐ = sₐ² / (nₐ x̄ₐ²) and u_b = s_b² / (n_b x̄_b²), ν = (uₐ + u_b)² / (uₐ² / (nₐ − 1) +
/// u_b² / (n_b − 1)); the interval at level L is ratio × exp(± t₍(1+L)/2, ν₎ × se), so it is
/// asymmetric about the ratio and never reaches zero.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RatioCi {
    /// x̄ₐ / x̄_b.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    /// Confidence level of the interval, e.g. 0.95.
    pub level: f64,
    /// Standard error of the log ratio.
    pub se_log: f64,
    /// Welch–Satterthwaite degrees of freedom; `None` when both variances are zero (the
    /// interval is then the ratio itself).
    pub df: Option<f64>,
}

impl RatioCi {
    /// At 95 % confidence.
    pub fn of(a: &[f64], b: &[f64]) -> Option<Self> {
        Self::with_level(a, b, 0.95)
    }

    /// At confidence `level` (0 < level < 1). `None` unless both samples have at least two
    /// values, all finite, and both means are positive.
    pub fn with_level(a: &[f64], b: &[f64], level: f64) -> Option<Self> {
        if !(level > 0.0 && level < 1.0) {
            return None;
        }
        let (ma, mb) = (Moments::of(a)?, Moments::of(b)?);
        if ma.n < 2 || mb.n < 2 || ma.mean <= 0.0 || mb.mean <= 0.0 {
            return None;
        }
        let ua = ma.var / (ma.n as f64 * ma.mean * ma.mean);
        let ub = mb.var / (mb.n as f64 * mb.mean * mb.mean);
        let se_log = (ua + ub).sqrt();
        let df = (se_log != 0.0).then(|| welch_satterthwaite(ua, ma.n, ub, mb.n));
        Self::from_log_error(ma.mean / mb.mean, se_log, df, level)
    }

    /// `self / other`, two independent ratios: their log standard errors added in
    /// quadrature, Student's t at the fewer degrees of freedom of the two, at `self`'s level.
    pub fn divided_by(&self, other: &RatioCi) -> Option<Self> {
        let df = match (self.df, other.df) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        Self::from_log_error(
            self.ratio / other.ratio,
            self.se_log.hypot(other.se_log),
            df,
            self.level,
        )
    }

    /// The interval ratio × exp(± t × se) at `level`; without degrees of freedom (no
    /// spread) the ratio itself.
    fn from_log_error(ratio: f64, se_log: f64, df: Option<f64>, level: f64) -> Option<Self> {
        let factor = match df {
            Some(df) => (t_quantile((1.0 + level) / 2.0, df)? * se_log).exp(),
            None => 1.0,
        };
        Some(Self {
            ratio,
            low: ratio / factor,
            high: ratio * factor,
            level,
            se_log,
            df,
        })
    }
}

/// Ratios of paired measurements, vᵢ / bᵢ, each value against the baseline measured next to
/// it (alternating rounds), with their median (the mean of the middle two for an even count),
/// minimum and maximum.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PairedRatios {
    /// vᵢ / bᵢ in the order given.
    pub ratios: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl PairedRatios {
    /// `None` when there are no pairs, the slices differ in length, or a ratio is not finite
    /// (a zero or non-finite baseline, a non-finite value).
    pub fn of(values: &[f64], baseline: &[f64]) -> Option<Self> {
        if values.is_empty() || values.len() != baseline.len() {
            return None;
        }
        let ratios: Vec<f64> = values.iter().zip(baseline).map(|(v, b)| v / b).collect();
        if ratios.iter().any(|r| !r.is_finite()) {
            return None;
        }
        let mut data = Data::new(ratios.clone());
        Some(Self {
            median: data.median(),
            min: data.min(),
            max: data.max(),
            ratios,
        })
    }

    /// "min to max" with three decimals, e.g. "0.981 to 1.024".
    pub fn range(&self) -> String {
        format!("{:.3} to {:.3}", self.min, self.max)
    }

    /// The geometric mean of the ratios with its 95 % interval: Student's t on their
    /// logarithms, back-transformed, so the interval of a ratio is never below zero and a
    /// ratio and its inverse get the same interval inverted. `None` for fewer than two pairs
    /// or a ratio not above zero.
    pub fn interval(&self) -> Option<(f64, f64, f64)> {
        if self.ratios.iter().any(|r| *r <= 0.0) {
            return None;
        }
        let logs: Vec<f64> = self.ratios.iter().map(|r| r.ln()).collect();
        let spread = Spread::of(&logs)?;
        let (low, high) = spread.ci?;
        Some((spread.mean.exp(), low.exp(), high.exp()))
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom; `None` unless 0 < p < 1 and
/// df > 0.
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(p))
}

/// Two-sided p-value of a t statistic, 2 × (1 − F_ν(|t|)), from the survival function so
/// that small p-values keep their precision.
fn two_sided_p(t: f64, df: f64) -> Option<f64> {
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some((2.0 * dist.sf(t.abs())).min(1.0))
}

/// Welch–Satterthwaite degrees of freedom of a sum of two variance terms vₐ and v_b estimated
/// from nₐ and n_b values: (vₐ + v_b)² / (vₐ² / (nₐ − 1) + v_b² / (n_b − 1)). Needs n ≥ 2 and
/// vₐ + v_b > 0.
fn welch_satterthwaite(va: f64, na: usize, vb: f64, nb: usize) -> f64 {
    (va + vb).powi(2) / (va.powi(2) / (na - 1) as f64 + vb.powi(2) / (nb - 1) as f64)
}

/// Size, mean and sample variance of one sample.
struct Moments {
    n: usize,
    mean: f64,
    /// Σ(xᵢ − x̄)² / (n − 1); 0 for a single value.
    var: f64,
}

impl Moments {
    /// `None` for no values or a non-finite one. The mean is taken as x₁ + Σ(xᵢ − x₁) / n,
    /// equal to Σxᵢ / n but exact for a constant sample, whose variance is then exactly 0
    /// (the zero-variance cases of `Welch` and `RatioCi` rely on it).
    fn of(values: &[f64]) -> Option<Self> {
        let (&first, _) = values.split_first()?;
        if values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let n = values.len();
        let mean = first + values.iter().map(|v| v - first).sum::<f64>() / n as f64;
        let var = if n < 2 {
            0.0
        } else {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        };
        Some(Self { n, mean, var })
    }
}

#[cfg(test)]
mod tests {
    //! Known answers come from a reference implementation, not from this module: scipy
    //! 1.17.1 (numpy 2.4.6) and pingouin 0.7.0 under Python 3.11; each test names the call.
    //!
    //! Tolerances. Where both sides evaluate the same closed form in f64 (means, variances,
    //! t statistics, ratios) the results agree to a few ulps, so 1e-12 relative leaves ample
    //! room for summation order. Quantiles and p-values go through statrs's regularised
    //! incomplete beta function: its CDF is a continued fraction iterated to f64 precision
    //! (`prec::F64_PREC`), and `inverse_cdf` refines an AS 64/AS 109 start by Newton steps
    //! until the step is below 10^max(−30, ⌊−5/a² − 1/x^0.2 − 13⌋) (Remark AS R83), which
    //! statrs documents no bound for beyond that. Against scipy's Boost-based values every
    //! such known answer below agreed to 2.6e-13 relative at worst (measured, statrs 0.19.1),
    //! the closed forms to 1.6e-15; 1e-9 relative, the tolerance for everything depending on
    //! the t distribution, is far below anything a confidence interval or p-value is read to.
    use super::*;

    const A: [f64; 5] = [12.1, 11.8, 12.6, 12.3, 11.9];
    const B: [f64; 7] = [10.2, 11.5, 9.8, 12.0, 10.9, 11.1, 10.4];
    const C: [f64; 2] = [3.0, 5.0];
    const D: [f64; 2] = [6.0, 7.5];
    const E: [f64; 3] = [5.0, 5.0, 5.0];
    const F: [f64; 3] = [4.0, 6.0, 7.0];

    /// Closed forms evaluated the same way on both sides.
    const EXACT: f64 = 1e-12;
    /// Through statrs's incomplete beta function (see the module comment).
    const ITERATIVE: f64 = 1e-9;

    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs().max(f64::MIN_POSITIVE)
    }

    #[track_caller]
    fn assert_close(got: f64, want: f64, rel: f64) {
        assert!(
            close(got, want, rel),
            "got {got:e}, want {want:e} (rel {rel:e})"
        );
    }

    /// `scipy.stats.t.ppf(p, df)`, including fractional df as Welch–Satterthwaite gives.
    #[test]
    fn t_quantiles_match_scipy() {
        #[rustfmt::skip]
        let table = [
            (0.95, 1.0, 6.313751514675037), (0.95, 1.2, 4.79580134680627),
            (0.95, 2.0, 2.9199855803537242), (0.95, 2.5, 2.5582186141359355),
            (0.95, 4.0, 2.1318467863266495), (0.95, 7.3, 1.8829300179564308),
            (0.95, 30.0, 1.697260886593957), (0.95, 1000.0, 1.6463788172854643),
            (0.975, 1.0, 12.706204736174694), (0.975, 1.2, 8.648826510748867),
            (0.975, 2.0, 4.302652729749462), (0.975, 2.5, 3.5746548420036817),
            (0.975, 4.0, 2.7764451051977934), (0.975, 7.3, 2.345066736547703),
            (0.975, 30.0, 2.0422724563012378), (0.975, 1000.0, 1.9623390808264083),
            (0.995, 1.0, 63.656741162871526), (0.995, 1.2, 33.239028298318225),
            (0.995, 2.0, 9.924843200918287), (0.995, 2.5, 7.163728138948783),
            (0.995, 4.0, 4.604094871349992), (0.995, 7.3, 3.451031655622185),
            (0.995, 30.0, 2.7499956535672254), (0.995, 1000.0, 2.580754698065951),
        ];
        for (p, df, want) in table {
            let got = t_quantile(p, df).unwrap();
            assert!(
                close(got, want, ITERATIVE),
                "t({p}, {df}) = {got}, want {want}"
            );
            assert_close(t_quantile(1.0 - p, df).unwrap(), -want, ITERATIVE);
        }
        assert_eq!(t_quantile(0.0, 4.0), None);
        assert_eq!(t_quantile(1.0, 4.0), None);
        assert_eq!(t_quantile(0.975, 0.0), None);
    }

    /// `2 * scipy.stats.t.sf(t, df)`.
    #[test]
    fn two_sided_p_values_match_scipy() {
        #[rustfmt::skip]
        let table = [
            (0.5, 1.2, 0.6932486871653218), (0.5, 2.0, 0.6666666666666667),
            (0.5, 8.5, 0.629761630724111), (0.5, 60.0, 0.618903959437983),
            (2.2, 1.2, 0.23717009453017046), (2.2, 2.0, 0.15880897580794018),
            (2.2, 8.5, 0.05705604740936686), (2.2, 60.0, 0.0316692474725769),
            (4.0, 1.2, 0.1232219952178231), (4.0, 2.0, 0.05719095841793663),
            (4.0, 8.5, 0.0034916893688345984), (4.0, 60.0, 0.00017632238706397424),
            (12.0, 1.2, 0.033858485641627266), (12.0, 2.0, 0.00687293367715846),
            (12.0, 8.5, 1.2754376519126788e-06), (12.0, 60.0, 1.378632264181775e-17),
        ];
        for (t, df, want) in table {
            for t in [t, -t] {
                let got = two_sided_p(t, df).unwrap();
                assert!(
                    close(got, want, ITERATIVE),
                    "p({t}, {df}) = {got:e}, want {want:e}"
                );
            }
        }
        assert_eq!(two_sided_p(0.0, 3.0), Some(1.0));
    }

    /// `x.mean()`, `x.std(ddof=1)`, `scipy.stats.sem(x)`,
    /// `scipy.stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=sem(x))` and
    /// `scipy.stats.variation(x, ddof=1)` with `x = numpy.array(...)`.
    #[test]
    fn spread_matches_scipy() {
        // (sample, level, [mean, sd, sem, low, high, cv], half-width)
        #[rustfmt::skip]
        // scipy's sd of C, 1.4142135623730951, is the f64 nearest √2: clippy wants the constant.
        let cases: [(&[f64], f64, [f64; 6], f64); 5] = [
            (&A, 0.95, [12.139999999999999, 0.320936130717624, 0.1435270009440731,
                11.741505160765108, 12.53849483923489, 0.02643625458959012], 0.3984948392348908),
            (&A, 0.90, [12.139999999999999, 0.320936130717624, 0.1435270009440731,
                11.834022424286275, 12.445977575713723, 0.02643625458959012], 0.3059775757137242),
            (&A, 0.99, [12.139999999999999, 0.320936130717624, 0.1435270009440731,
                11.479188071053146, 12.800811928946851, 0.02643625458959012], 0.6608119289468526),
            (&B, 0.95, [10.842857142857143, 0.7678045386189178, 0.2902028378131921,
                10.13275637977614, 11.552957905938147, 0.07081201278435344], 0.7101007630810034),
            (&C, 0.95, [4.0, std::f64::consts::SQRT_2, 1.0,
                -8.706204736174694, 16.706204736174694, 0.3535533905932738], 12.706204736174694),
        ];
        for (x, level, [mean, sd, sem, low, high, cv], half) in cases {
            let s = Spread::with_level(x, level).unwrap();
            assert_eq!((s.n, s.level), (x.len(), level));
            assert_close(s.mean, mean, EXACT);
            assert_close(s.std_dev, sd, EXACT);
            assert_close(s.std_error.unwrap(), sem, EXACT);
            assert_close(s.cv.unwrap(), cv, EXACT);
            assert_close(s.half_width.unwrap(), half, ITERATIVE);
            let (l, h) = s.ci.unwrap();
            // The interval's ends are a mean plus or minus a half-width: relative to that.
            assert!((l - low).abs() <= ITERATIVE * half, "{l} vs {low}");
            assert!((h - high).abs() <= ITERATIVE * half, "{h} vs {high}");
        }
        assert_eq!(Spread::of(&A), Spread::with_level(&A, 0.95));
    }

    #[test]
    fn spread_of_one_value_has_no_interval() {
        let s = Spread::of(&[7.0]).unwrap();
        assert_eq!((s.n, s.mean, s.std_dev), (1, 7.0, 0.0));
        assert_eq!(
            (s.std_error, s.ci, s.half_width, s.cv),
            (None, None, None, None)
        );
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[1.0, f64::NAN]).is_none());
        assert!(Spread::of(&[1.0, f64::INFINITY]).is_none());
        assert!(Spread::with_level(&A, 1.0).is_none());
        assert!(Spread::with_level(&A, 0.0).is_none());
        assert!(Spread::with_level(&A, f64::NAN).is_none());
        // A constant sample: exactly its value, a zero-width interval (the data show no
        // spread, unlike a single value that cannot show any), and a zero mean has no CV.
        let s = Spread::of(&[0.1; 3]).unwrap();
        assert_eq!((s.mean, s.std_dev, s.ci), (0.1, 0.0, Some((0.1, 0.1))));
        assert_eq!(Spread::of(&[-1.0, 1.0]).unwrap().cv, None);
    }

    /// `res = scipy.stats.ttest_ind(a, b, equal_var=False)`: `res.statistic`, `res.pvalue`,
    /// `res.df`.
    #[test]
    fn welch_matches_scipy() {
        // (a, b, [t, p, df]): unequal sizes and variances; n = 2 against n = 2; one variance
        // zero; n = 2 against n = 7 (df near 1).
        #[rustfmt::skip]
        let cases: [(&[f64], &[f64], [f64; 3]); 5] = [
            (&A, &B, [4.006549589120009, 0.0034348996294636803, 8.528804583992425]),
            (&B, &A, [-4.006549589120009, 0.0034348996294636803, 8.528804583992425]),
            (&C, &D, [-2.2, 0.1686821367734422, 1.8545994065281899]),
            (&E, &F, [-0.7559289460184548, 0.5285954792089681, 2.0]),
            (&C, &B, [-6.571722697623207, 0.07210088211481619, 1.1741400383444178]),
        ];
        for (a, b, [t, p, df]) in cases {
            let w = Welch::test(a, b).unwrap();
            assert_eq!((w.n_a, w.n_b), (a.len(), b.len()));
            assert_close(w.t, t, EXACT);
            assert_close(w.df.unwrap(), df, EXACT);
            assert_close(w.p, p, ITERATIVE);
            assert_close(w.difference / w.std_error, t, EXACT);
        }
    }

    #[test]
    fn welch_degenerate_samples() {
        // Both variances zero (scipy answers NaN here): equal means, nothing to tell apart.
        let w = Welch::test(&[2.0, 2.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!((w.t, w.df, w.p, w.std_error), (0.0, None, 1.0, 0.0));
        // Different means without any spread: certainly different.
        let w = Welch::test(&[2.0, 2.0], &[3.0, 3.0, 3.0]).unwrap();
        assert_eq!(
            (w.t, w.df, w.p, w.difference),
            (f64::NEG_INFINITY, None, 0.0, -1.0)
        );
        let w = Welch::test(&[0.3; 4], &[0.1; 2]).unwrap();
        assert_eq!((w.t, w.p), (f64::INFINITY, 0.0));
        // Fewer than two values on either side, or a non-finite one.
        assert!(Welch::test(&[1.0], &B).is_none());
        assert!(Welch::test(&A, &[1.0]).is_none());
        assert!(Welch::test(&A, &[]).is_none());
        assert!(Welch::test(&A, &[1.0, f64::NAN]).is_none());
    }

    /// `pingouin.compute_effsize(a, b, eftype="hedges")` (Cohen's d from the pooled SD times
    /// 1 − 3 / (4(nx + ny) − 9)).
    #[test]
    fn hedges_g_matches_pingouin() {
        #[rustfmt::skip]
        let cases: [(&[f64], &[f64], f64); 3] = [
            (&A, &B, 1.9053478756453321),
            (&C, &D, -1.2571428571428571),
            (&E, &F, -0.4937707198786944),
        ];
        for (a, b, g) in cases {
            assert_close(hedges_g(a, b).unwrap(), g, EXACT);
            assert_close(hedges_g(b, a).unwrap(), -g, EXACT);
        }
        assert_eq!(hedges_g(&[2.0, 2.0], &[3.0, 3.0]), None);
        assert_eq!(hedges_g(&[2.0], &A), None);
        assert_eq!(hedges_g(&A, &[f64::NAN, 1.0]), None);
    }

    /// No library offers this interval; the reference evaluates the documented method in
    /// Python from numpy and scipy, independently of this code:
    /// `ua = a.var(ddof=1) / (len(a) * a.mean()**2)` (likewise ub), `se = sqrt(ua + ub)`,
    /// `df = (ua + ub)**2 / (ua**2 / (len(a) - 1) + ub**2 / (len(b) - 1))`,
    /// `t = scipy.stats.t.ppf(0.975, df)`, `ratio * exp(∓t * se)`.
    #[test]
    fn ratio_ci_matches_the_reference() {
        // (a, b, ratio, low, high, se_log, df)
        #[rustfmt::skip]
        let cases: [(&[f64], &[f64], [f64; 5]); 3] = [
            (&A, &B, [1.119631093544137, 1.0467411774547826, 1.1975967054998105,
                0.0292593499927491, 8.106953909897012]),
            (&C, &D, [0.5925925925925926, 0.09208863059350292, 3.8133478425336254,
                0.2735793833832251, 1.380225905823676]),
            (&E, &F, [0.8823529411764706, 0.45167361847357057, 1.7236931291977247,
                0.15563243006262295, 2.0]),
        ];
        for (a, b, [ratio, low, high, se_log, df]) in cases {
            let r = RatioCi::of(a, b).unwrap();
            assert_eq!(r.level, 0.95);
            assert_close(r.ratio, ratio, EXACT);
            assert_close(r.se_log, se_log, EXACT);
            assert_close(r.df.unwrap(), df, EXACT);
            assert_close(r.low, low, ITERATIVE);
            assert_close(r.high, high, ITERATIVE);
        }
        // Symmetric on the log scale.
        let r = RatioCi::of(&A, &B).unwrap();
        assert_close((r.high / r.ratio).ln(), (r.ratio / r.low).ln(), EXACT);
        // A higher level widens it.
        let wide = RatioCi::with_level(&A, &B, 0.99).unwrap();
        assert!(wide.low < r.low && wide.high > r.high);
    }

    /// `r = scipy.stats.ttest_ind(np.log(a), np.log(b), equal_var=False)`,
    /// `ci = r.confidence_interval(0.95)`: `exp(mean(log a) − mean(log b))`, `exp(ci.low)`,
    /// `exp(ci.high)`, `r.pvalue`, `r.df`.
    #[test]
    fn log_ratio_matches_scipys_welch_test_on_the_logarithms() {
        #[rustfmt::skip]
        let cases: [(&[f64], &[f64], [f64; 5]); 3] = [
            (&A, &B, [1.1217224355432767, 1.0488273059702997, 1.199683890034773,
                0.004231071756230738, 8.096892841012766]),
            (&C, &D, [0.5773502691896258, 0.08439727607665219, 3.9495745458726623,
                0.24284434788639125, 1.3682314017066355]),
            (&E, &F, [0.9061503108357435, 0.44192503752304435, 1.8580263983909207,
                0.6146855849276884, 2.0]),
        ];
        for (a, b, [ratio, low, high, p, df]) in cases {
            let r = LogRatio::of(a, b).unwrap();
            assert_close(r.ratio, ratio, EXACT);
            assert_close(r.test.df.unwrap(), df, EXACT);
            assert_close(r.low, low, ITERATIVE);
            assert_close(r.high, high, ITERATIVE);
            assert_close(r.test.p, p, ITERATIVE);
            // One test: the interval holds 1 exactly when p ≥ 0.05.
            assert_eq!(r.low <= 1.0 && 1.0 <= r.high, r.test.p >= 0.05);
        }
        assert!(LogRatio::of(&[1.0, 0.0], &A).is_none());
        assert!(LogRatio::of(&[1.0], &A).is_none());
        // No spread on either side: the ratio itself, certain.
        let r = LogRatio::of(&E, &[2.5, 2.5]).unwrap();
        assert_close(r.ratio, 2.0, EXACT);
        assert_eq!((r.low, r.high, r.test.p), (r.ratio, r.ratio, 0.0));
    }

    /// `l = np.log(v)`, `exp(l.mean())`, `exp(l.mean() ∓ scipy.stats.t.ppf(0.975, n − 1) ×
    /// scipy.stats.sem(l))`.
    #[test]
    fn geometric_means_match_scipy() {
        for (v, [mean, low, high]) in [
            (
                &A[..],
                [12.13662684130759, 11.746422324911343, 12.539793565293898],
            ),
            (
                &C[..],
                [3.872983346207417, 0.15087518408090983, 99.41992840887573],
            ),
        ] {
            let r = Repeated::of(v).unwrap();
            let (m, (l, h)) = (r.mean, r.ci.unwrap());
            assert_close(m, mean, EXACT);
            assert_close(l, low, ITERATIVE);
            assert_close(h, high, ITERATIVE);
        }
        let one = Repeated::of(&[4.0]).unwrap();
        assert_eq!((one.mean, one.ci, one.log_half_width), (4.0, None, None));
        assert_eq!(Repeated::of(&[4.0, -1.0]), None);
    }

    #[test]
    fn positive_intervals_hold_the_mean_and_stay_above_zero() {
        // C = 3, 5: a symmetric interval 4 ± 12.706 is −8.7 to 16.7.
        let r = Repeated::of(&C).unwrap();
        let (low, high) = r.ci.unwrap();
        let h = r.log_half_width.unwrap();
        assert_close(low, r.mean * (-h).exp(), EXACT);
        assert_close(high, r.mean * h.exp(), EXACT);
        assert!(low > 0.0 && low < r.mean && high > r.mean);
        // The values' own spread beside it: s = √2, s / x̄ = √2 / 4.
        assert_close(r.std_dev, 2f64.sqrt(), EXACT);
        assert_close(r.cv.unwrap(), 2f64.sqrt() / 4.0, EXACT);
        assert_eq!(Repeated::of(&[3.0]).unwrap().ci, None);
        assert_eq!(Repeated::of(&[-3.0, 1.0]), None);
        assert_eq!(Repeated::of(&[3.0, 0.0]), None);
    }

    #[test]
    fn ratio_ci_needs_two_values_and_positive_means() {
        assert!(RatioCi::of(&[1.0], &A).is_none());
        assert!(RatioCi::of(&A, &[-1.0, -2.0]).is_none());
        assert!(RatioCi::of(&[-1.0, 1.0], &A).is_none());
        assert!(RatioCi::of(&A, &[1.0, f64::INFINITY]).is_none());
        assert!(RatioCi::with_level(&A, &B, 1.5).is_none());
        // No spread on either side: the interval is the ratio itself.
        let r = RatioCi::of(&[3.0, 3.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(
            (r.ratio, r.low, r.high, r.se_log, r.df),
            (1.5, 1.5, 1.5, 0.0, None)
        );
    }

    /// `rs = numpy.array(v) / numpy.array(base)`; `numpy.median(rs)`, `rs.min()`, `rs.max()`.
    #[test]
    fn paired_ratios_match_numpy() {
        let v = [58.3, 57.9, 59.0, 58.4];
        let base = [55.2, 56.0, 54.7, 55.5];
        let r = PairedRatios::of(&v, &base).unwrap();
        let want = [
            1.056159420289855,
            1.0339285714285713,
            1.0786106032906764,
            1.0522522522522522,
        ];
        assert_eq!(r.ratios.len(), 4);
        for (got, want) in r.ratios.iter().zip(want) {
            assert_close(*got, want, EXACT);
        }
        assert_close(r.median, 1.0542058362710536, EXACT);
        assert_close(r.min, 1.0339285714285713, EXACT);
        assert_close(r.max, 1.0786106032906764, EXACT);
        assert_eq!(r.range(), "1.034 to 1.079");
        // An odd count: the middle ratio.
        let r = PairedRatios::of(&v[..3], &base[..3]).unwrap();
        assert_close(r.median, 1.056159420289855, EXACT);
        assert!(PairedRatios::of(&[], &[]).is_none());
        assert!(PairedRatios::of(&v, &base[..3]).is_none());
        assert!(PairedRatios::of(&[1.0], &[0.0]).is_none());
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

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(256))]
        /// A ratio interval of 0.42 to 11.98 beside p = 0.035 came from two
        /// statistics with two numbers of degrees of freedom. From one test they agree on
        /// every sample, up to the last bits of p at the boundary itself.
        #[test]
        fn log_ratio_interval_and_p_value_never_disagree(
            a in proptest::collection::vec(0.1f64..100.0, 2..8),
            b in proptest::collection::vec(0.1f64..100.0, 2..8),
        ) {
            if let Some(r) = LogRatio::of(&a, &b) {
                proptest::prop_assume!((r.test.p - 0.05).abs() > 1e-9);
                proptest::prop_assert_eq!(r.low <= 1.0 && 1.0 <= r.high, r.test.p >= 0.05);
                proptest::prop_assert!(r.low > 0.0 && r.low <= r.ratio && r.ratio <= r.high);
            }
        }
    }
}
