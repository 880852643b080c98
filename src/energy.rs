//! Energy from power samples: trapezoids over a time window, with the power at the window's
//! edges interpolated from the samples either side.

/// One power sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerPoint {
    pub t: f64,
    pub watts: f64,
}

/// Energy and sampling quality over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowEnergy {
    pub joules: f64,
    pub mean_watts: f64,
    /// Samples inside the window.
    pub samples: usize,
    /// Samples per second achieved inside the window.
    pub sample_rate_hz: f64,
    /// Fraction of the window spanned by consecutive samples no further apart than the
    /// allowed gap: 1.0 when the sensor kept up throughout, less after dropouts or when the
    /// first sample came late.
    pub coverage: f64,
}

/// Integrates `points` (sorted by time) over `[start, end]`.
///
/// Outside the sampled span the nearest sample is held, and that part counts against
/// coverage. Returns `None` without samples or for an empty window.
pub fn integrate(
    points: &[PowerPoint],
    start: f64,
    end: f64,
    max_gap: f64,
) -> Option<WindowEnergy> {
    if points.is_empty() || end <= start {
        return None;
    }
    let duration = end - start;
    let at = |t: f64| interpolate(points, t);

    let inside = points.partition_point(|p| p.t <= start)..points.partition_point(|p| p.t < end);
    let mut joules = 0.0;
    let mut prev = PowerPoint {
        t: start,
        watts: at(start),
    };
    for &p in points[inside.clone()].iter().chain([&PowerPoint {
        t: end,
        watts: at(end),
    }]) {
        joules += (p.t - prev.t) * (p.watts + prev.watts) / 2.0;
        prev = p;
    }

    let covered: f64 = points
        .windows(2)
        .filter(|w| w[1].t - w[0].t <= max_gap)
        .map(|w| (w[1].t.min(end) - w[0].t.max(start)).max(0.0))
        .sum();
    let samples = inside.len();
    Some(WindowEnergy {
        joules,
        mean_watts: joules / duration,
        samples,
        sample_rate_hz: samples as f64 / duration,
        coverage: (covered / duration).min(1.0),
    })
}

/// Linear interpolation between the samples around `t`; the nearest sample beyond the ends.
fn interpolate(points: &[PowerPoint], t: f64) -> f64 {
    let i = points.partition_point(|p| p.t <= t);
    match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
        (Some(a), Some(b)) if b.t > a.t => a.watts + (b.watts - a.watts) * (t - a.t) / (b.t - a.t),
        (Some(a), _) => a.watts,
        (None, Some(b)) => b.watts,
        (None, None) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(f: impl Fn(f64) -> f64, from: f64, to: f64, rate: f64) -> Vec<PowerPoint> {
        let n = ((to - from) * rate).round() as usize;
        (0..=n)
            .map(|i| {
                let t = from + i as f64 / rate;
                PowerPoint { t, watts: f(t) }
            })
            .collect()
    }

    fn relative_error(got: f64, want: f64) -> f64 {
        ((got - want) / want).abs()
    }

    #[test]
    fn constant_power_is_exact() {
        let points = sample(|_| 4.2, 0.0, 10.0, 100.0);
        let e = integrate(&points, 1.234, 7.891, 0.05).unwrap();
        assert!(relative_error(e.joules, 4.2 * (7.891 - 1.234)) < 1e-12);
        assert!((e.mean_watts - 4.2).abs() < 1e-12);
        assert!((e.coverage - 1.0).abs() < 1e-9);
        assert!((e.sample_rate_hz - 100.0).abs() < 1.0);
    }

    #[test]
    fn square_wave_within_half_a_percent_at_100_samples_per_period() {
        // 2 W idle, 6 W busy, 50% duty, 1 s period, window not aligned to edges.
        let square = |t: f64| if t.rem_euclid(1.0) < 0.5 { 6.0 } else { 2.0 };
        for rate in [100.0, 250.0, 1000.0] {
            let points = sample(square, 0.0, 20.0, rate);
            let (start, end) = (2.37, 17.83);
            // Analytic energy of the square wave over [start, end].
            let exact = {
                let step = 1e-5;
                let n = ((end - start) / step) as usize;
                (0..n)
                    .map(|i| square(start + (i as f64 + 0.5) * step) * step)
                    .sum::<f64>()
            };
            let e = integrate(&points, start, end, 2.0 / rate).unwrap();
            assert!(
                relative_error(e.joules, exact) <= 0.005,
                "rate {rate}: {} vs {exact}",
                e.joules
            );
        }
    }

    #[test]
    fn dropouts_reduce_coverage() {
        let mut points = sample(|_| 1.0, 0.0, 10.0, 100.0);
        points.retain(|p| !(4.0..6.0).contains(&p.t));
        let e = integrate(&points, 0.0, 10.0, 0.05).unwrap();
        assert!((e.coverage - 0.8).abs() < 0.02, "{}", e.coverage);
        // The power across the gap is interpolated, so the energy is still right.
        assert!(relative_error(e.joules, 10.0) < 1e-9);
    }

    #[test]
    fn late_first_sample_holds_and_counts_against_coverage() {
        let points = sample(|_| 3.0, 2.0, 10.0, 100.0);
        let e = integrate(&points, 0.0, 10.0, 0.05).unwrap();
        assert!((e.coverage - 0.8).abs() < 0.01);
        assert!(relative_error(e.joules, 30.0) < 1e-9);
    }

    #[test]
    fn no_samples_no_energy() {
        assert!(integrate(&[], 0.0, 1.0, 0.1).is_none());
    }
}
