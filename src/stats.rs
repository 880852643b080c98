//! Summary statistics of latencies and of repeated measurements (`statrs`).

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

#[cfg(test)]
mod tests {
    use super::*;

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
