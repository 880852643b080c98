//! Energy over a time window, from power samples (trapezoids) or from a cumulative energy
//! counter (its difference).
//!
//! Windows are protocol phases, and the load steps where a phase begins or ends, so neither
//! method interpolates across a window's edge as if power were smooth there:
//! - power samples: the stretch between an edge and the nearest sample inside the window holds
//!   that sample's value (linear interpolation would mix in the neighbouring phase's power);
//! - a counter: the update interval that straddles an edge holds energy from both phases;
//!   it is split in proportion to the power of the neighbouring intervals on either side
//!   ([`integrate_counter`]), which is exact when the power steps at the edge and equal to
//!   linear interpolation when it does not.

/// One power sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerPoint {
    pub t: f64,
    pub watts: f64,
}

/// Energy and sampling quality over one window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
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
    /// Longest stretch of the window without a sample (seconds), its edges included.
    pub largest_gap_s: f64,
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
    let inside = points.partition_point(|p| p.t <= start)..points.partition_point(|p| p.t < end);
    let held = &points[inside.clone()];
    // Hold the nearest sample inside the window at each edge; only a window with no sample
    // inside falls back to interpolating across it (and has no coverage to speak of).
    let (at_start, at_end) = match (held.first(), held.last()) {
        (Some(first), Some(last)) => (first.watts, last.watts),
        _ => (interpolate(points, start), interpolate(points, end)),
    };
    let mut joules = 0.0;
    let mut prev = PowerPoint {
        t: start,
        watts: at_start,
    };
    for &p in held.iter().chain([&PowerPoint {
        t: end,
        watts: at_end,
    }]) {
        joules += (p.t - prev.t) * (p.watts + prev.watts) / 2.0;
        prev = p;
    }
    let samples = inside.len();
    Some(WindowEnergy {
        joules,
        mean_watts: joules / duration,
        samples,
        sample_rate_hz: samples as f64 / duration,
        coverage: coverage(around(points, &inside, |p| p.t), start, end, max_gap),
        largest_gap_s: largest_gap(held.iter().map(|p| p.t), start, end),
    })
}

/// Fraction of `[start, end]` spanned by consecutive times no further apart than `max_gap`.
/// The times of the points `inside` a window and of one neighbour on each side: the only ones
/// [`coverage`] can count (any other pair lies wholly outside the window), so a window of an
/// hour-long run costs its own points, not the whole run's.
fn around<'a, P>(
    points: &'a [P],
    inside: &std::ops::Range<usize>,
    time: impl Fn(&P) -> f64 + 'a,
) -> impl Iterator<Item = f64> + 'a {
    let from = inside.start.saturating_sub(1);
    let to = (inside.end + 1).min(points.len()).max(from);
    points[from..to].iter().map(time)
}

fn coverage(times: impl Iterator<Item = f64>, start: f64, end: f64, max_gap: f64) -> f64 {
    let mut covered = 0.0;
    let mut prev: Option<f64> = None;
    for t in times {
        if let Some(p) = prev.filter(|p| t - p <= max_gap) {
            covered += (t.min(end) - p.max(start)).max(0.0);
        }
        prev = Some(t);
    }
    (covered / (end - start)).min(1.0)
}

/// Longest interval between `start`, the `times` inside the window (sorted), and `end`.
fn largest_gap(times: impl Iterator<Item = f64>, start: f64, end: f64) -> f64 {
    let mut prev = start;
    let mut largest: f64 = 0.0;
    for t in times.chain([end]) {
        largest = largest.max(t - prev);
        prev = t;
    }
    largest
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

/// The cumulative energy of a sensor whose every value is the mean power over its own update
/// period (an averaging INA219 read once per conversion): each value holds from halfway
/// after the previous value's stamp to halfway before the next's (its conversion, as nearly
/// as the stamps tell), and the counter steps by value × that span at each boundary. Fed to
/// [`integrate_counter`], a window's edges then split the conversions they cut by the power
/// on either side: exact for a step at the edge, where holding the nearest value would count
/// the straddling conversion's mix of both phases.
pub fn integrated(points: &[PowerPoint]) -> Vec<CounterPoint> {
    if points.len() < 2 {
        return Vec::new();
    }
    let boundary = |i: usize| (points[i].t + points[i + 1].t) / 2.0;
    let last = points.len() - 1;
    // The first and last values' outer halves mirror their inner ones.
    let first_edge = points[0].t - (boundary(0) - points[0].t);
    let mut joules = 0.0;
    let mut from = first_edge;
    let mut out = Vec::with_capacity(points.len() + 1);
    out.push(CounterPoint {
        t: first_edge,
        joules,
    });
    for (i, p) in points.iter().enumerate() {
        let to = if i < last {
            boundary(i)
        } else {
            p.t + (p.t - from)
        };
        joules += p.watts * (to - from);
        out.push(CounterPoint { t: to, joules });
        from = to;
    }
    out
}

/// One reading of a cumulative energy counter (NVML's, say), taken where it had just moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterPoint {
    pub t: f64,
    /// Energy since the counter started, joules.
    pub joules: f64,
}

/// A counter window with fewer updates inside than this is mostly interpolation: its energy is
/// the mean power of the update intervals around it, not of the window, so flag it.
pub const MIN_COUNTER_UPDATES: usize = 3;

/// Energy over `[start, end]` from a cumulative counter: its difference across the update
/// instants inside the window, plus the parts of the two update intervals that straddle the
/// edges.
///
/// `points` must be sorted by time and hold only reads where the counter moved (fresh
/// readings), each stamped at its update instant. Between updates the counter's energy is
/// exact, so all the error is in the two edge intervals. Each is split between the phases on
/// either side of the edge in proportion to the mean power of the interval before it and the
/// interval after it: exact for a step at the edge (the protocol's phases), and the same as
/// linear interpolation for steady power. A window inside a single interval, or an edge
/// without a neighbouring interval, falls back to linear interpolation. Beyond the first or
/// last point the nearest interval's mean power is held, and that part counts against
/// coverage as in [`integrate`].
///
/// `samples` is the number of counter updates inside the window (`sample_rate_hz` the update
/// rate): below [`MIN_COUNTER_UPDATES`] the window should be flagged or extended. Returns
/// `None` with fewer than two points, for an empty window, or when the counter decreases
/// (a driver reload resets it) in the stretch the window uses: no negative or wrapped energy.
pub fn integrate_counter(
    points: &[CounterPoint],
    start: f64,
    end: f64,
    max_gap: f64,
) -> Option<WindowEnergy> {
    if points.len() < 2 || end <= start {
        return None;
    }
    // Updates strictly inside the window, and the intervals holding the edges.
    let first_inside = points.partition_point(|p| p.t <= start);
    let after_last = points.partition_point(|p| p.t < end);
    let from = first_inside.saturating_sub(1).min(points.len() - 2);
    let to = after_last.max(from + 1).min(points.len() - 1);
    if points[from..=to]
        .windows(2)
        .any(|w| w[1].t <= w[0].t || w[1].joules < w[0].joules)
    {
        return None;
    }
    let joules = if after_last > first_inside && first_inside > 0 && after_last < points.len() {
        let (a, b) = (first_inside, after_last - 1);
        points[b].joules - points[a].joules
            + edge_share(points, a - 1, start, Side::After)
            + edge_share(points, b, end, Side::Before)
    } else {
        linear_counter_at(points, end)? - linear_counter_at(points, start)?
    };
    if !joules.is_finite() {
        return None;
    }
    let duration = end - start;
    let samples = after_last - first_inside;
    Some(WindowEnergy {
        joules,
        mean_watts: joules / duration,
        samples,
        sample_rate_hz: samples as f64 / duration,
        coverage: coverage(
            around(points, &(first_inside..after_last), |p| p.t),
            start,
            end,
            max_gap,
        ),
        largest_gap_s: largest_gap(
            points[first_inside..after_last].iter().map(|p| p.t),
            start,
            end,
        ),
    })
}

/// Which part of an update interval an edge share is.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Before,
    After,
}

/// The energy of update interval `k` (from `points[k]` to `points[k + 1]`) that falls on one
/// `side` of the edge at `t` inside it, split by the mean powers of intervals `k - 1` and
/// `k + 1`.
fn edge_share(points: &[CounterPoint], k: usize, t: f64, side: Side) -> f64 {
    let power = |i: usize| {
        let (p, q) = (points[i], points[i + 1]);
        (q.joules - p.joules) / (q.t - p.t)
    };
    let (p, q) = (points[k], points[k + 1]);
    let total = q.joules - p.joules;
    let (before_s, after_s) = (t - p.t, q.t - t);
    let linear = match side {
        Side::Before => total * before_s / (q.t - p.t),
        Side::After => total * after_s / (q.t - p.t),
    };
    let (Some(prev), true) = (k.checked_sub(1), k + 2 < points.len()) else {
        return linear;
    };
    let (w_before, w_after) = (power(prev) * before_s, power(k + 1) * after_s);
    let sum = w_before + w_after;
    if !(sum > 0.0 && sum.is_finite()) {
        return linear;
    }
    match side {
        Side::Before => total * w_before / sum,
        Side::After => total * w_after / sum,
    }
}

/// The counter at `t`, interpolated in the update interval holding `t` (extrapolated from the
/// first or last interval beyond the ends).
fn linear_counter_at(points: &[CounterPoint], t: f64) -> Option<f64> {
    let i = points.partition_point(|p| p.t <= t);
    let a = i.saturating_sub(1).min(points.len().checked_sub(2)?);
    let (p, q) = (points[a], points[a + 1]);
    (q.t > p.t).then(|| p.joules + (q.joules - p.joules) * (t - p.t) / (q.t - p.t))
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
    fn integrated_values_split_a_step_at_an_edge_exactly() {
        // Conversions of 10 ms centred at 5, 15, 25 ... ms; 2 W until 0.1234 s, 5 W after. The
        // conversion straddling the step reads the mean of its parts, as an averaging chip's.
        let step: f64 = 0.1234;
        let points: Vec<PowerPoint> = (0..60)
            .map(|i| {
                let (a, b) = (i as f64 * 0.01, (i + 1) as f64 * 0.01);
                let high = (b - step.max(a)).clamp(0.0, 0.01);
                PowerPoint {
                    t: (a + b) / 2.0,
                    watts: 2.0 + 3.0 * high / 0.01,
                }
            })
            .collect();
        let counter = integrated(&points);
        assert_eq!(counter.len(), points.len() + 1);
        // Every boundary but the ends is halfway between two stamps: a conversion's edge.
        assert!((counter[13].t - 0.13).abs() < 1e-12);
        // A window from the step on: 5 W exactly, though a conversion straddles its start.
        let w = integrate_counter(&counter, step, 0.5, 0.03).unwrap();
        assert!(
            relative_error(w.joules, 5.0 * (0.5 - step)) < 1e-12,
            "{}",
            w.joules
        );
        // Held point samples count the straddling conversion's mix of 2 and 5 W instead.
        let held = integrate(&points, step, 0.5, 0.03).unwrap();
        assert!(relative_error(held.joules, 5.0 * (0.5 - step)) > 1e-3);
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

    /// A square wave of 6 W and 2 W, 1 s period: its exact energy from 0 to `t`.
    fn square_energy(t: f64) -> f64 {
        let r = t.rem_euclid(1.0);
        4.0 * t.floor()
            + if r < 0.5 {
                6.0 * r
            } else {
                3.0 + 2.0 * (r - 0.5)
            }
    }

    /// A counter that updates at 10 Hz (from 0.0371 s), read `delay(k)` after its k-th update,
    /// with NVML's millijoule resolution.
    fn counter(
        energy: impl Fn(f64) -> f64,
        to: f64,
        delay: impl Fn(usize) -> f64,
    ) -> Vec<CounterPoint> {
        (0..)
            .map(|k| (k, 0.0371 + k as f64 * 0.1))
            .take_while(|&(_, u)| u <= to)
            .map(|(k, u)| CounterPoint {
                t: u + delay(k),
                joules: (energy(u) * 1000.0).floor() / 1000.0,
            })
            .collect()
    }

    #[test]
    fn counter_error_shrinks_with_window_length() {
        // 100 W, each update read 0 to 12.5 ms late (a sampler polling at 1/8 of the period):
        // each edge can be off by at most 100 W x 12.5 ms.
        let jitter = |k: usize| (k * 7919 % 13) as f64 / 13.0 * 0.0125;
        let points = counter(|t| 100.0 * t, 20.0, jitter);
        let mut errors = Vec::new();
        for duration in [0.35, 1.0, 4.0, 16.0] {
            let (start, end) = (10.0 - duration / 2.0, 10.0 + duration / 2.0);
            let e = integrate_counter(&points, start, end, 0.3).unwrap();
            let error = relative_error(e.joules, 100.0 * duration);
            assert!(error <= 0.0125 / duration + 1e-6, "{duration} s: {error}");
            assert!((e.mean_watts - 100.0).abs() <= 100.0 * (0.0125 / duration + 1e-6));
            assert!((e.coverage - 1.0).abs() < 1e-9);
            assert_eq!(
                e.samples >= MIN_COUNTER_UPDATES,
                duration > 0.3,
                "{duration} s"
            );
            errors.push(error);
        }
        assert!(errors[3] < 0.001, "{errors:?}");
        let e = integrate_counter(&points, 2.0, 18.0, 0.3).unwrap();
        assert!((e.sample_rate_hz - 10.0).abs() < 0.1);
    }

    #[test]
    fn counter_square_wave_within_half_a_percent() {
        let points = counter(square_energy, 20.0, |_| 0.0);
        let (start, end) = (2.37, 17.83);
        let exact = square_energy(end) - square_energy(start);
        let e = integrate_counter(&points, start, end, 0.3).unwrap();
        assert!(
            relative_error(e.joules, exact) <= 0.005,
            "{} vs {exact}",
            e.joules
        );
    }

    #[test]
    fn a_window_inside_one_update_interval_is_flagged() {
        let points = counter(|t| 100.0 * t, 10.0, |_| 0.0);
        let e = integrate_counter(&points, 5.04, 5.09, 0.3).unwrap();
        assert_eq!(e.samples, 0);
        assert!(e.samples < MIN_COUNTER_UPDATES);
        // Constant power: the interpolated energy is still right.
        assert!(relative_error(e.joules, 5.0) < 1e-3, "{}", e.joules);
    }

    #[test]
    fn counter_reset_gives_no_energy_inside_but_not_elsewhere() {
        let mut points = counter(|t| 100.0 * t, 10.0, |_| 0.0);
        for p in points.iter_mut().filter(|p| p.t > 6.0) {
            p.joules -= 600.0; // the driver reloaded: the counter restarts near zero.
        }
        assert!(integrate_counter(&points, 5.0, 7.0, 0.3).is_none());
        assert!(integrate_counter(&points, 5.5, 6.0, 0.3).is_none()); // uses the next update
        let e = integrate_counter(&points, 1.0, 5.0, 0.3).unwrap();
        assert!(relative_error(e.joules, 400.0) < 1e-4);
        let e = integrate_counter(&points, 7.0, 9.0, 0.3).unwrap();
        assert!(relative_error(e.joules, 200.0) < 1e-4);
    }

    #[test]
    fn counter_gaps_and_edges() {
        let mut points = counter(|t| 3.0 * t, 10.0, |_| 0.0);
        points.retain(|p| !(4.0..6.0).contains(&p.t));
        let e = integrate_counter(&points, 0.0, 10.0, 0.25).unwrap();
        // Before the first update (0.0371 s) and after the last (9.9371 s) the nearest
        // interval's power is held: the energy stays right, coverage drops by those parts.
        assert!(relative_error(e.joules, 30.0) < 1e-4, "{}", e.joules);
        assert!((e.coverage - 0.78).abs() < 0.005, "{}", e.coverage);
        assert!(integrate_counter(&points[..1], 0.0, 1.0, 0.25).is_none());
        assert!(integrate_counter(&points, 2.0, 2.0, 0.25).is_none());
    }
}

/// Property tests: any sampling of a load whose energy is known exactly integrates within the
/// error that sampling allows, derived from what each method promises (module docs).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Seconds of load and sampling; windows lie inside.
    const HORIZON: f64 = 20.0;

    /// A load that is linear between its edges (a jump, or a change of slope, may happen at
    /// each): segment k starts at `t[k]` with power `p[k]` and slope `slope[k]`. Constant,
    /// step, square-wave and ramp loads are all of this shape, and their energy over any
    /// interval is exact (trapezoids of linear pieces).
    #[derive(Debug, Clone)]
    struct Load {
        t: Vec<f64>,
        p: Vec<f64>,
        slope: Vec<f64>,
    }

    impl Load {
        fn constant(p: f64) -> Self {
            Self {
                t: vec![0.0],
                p: vec![p],
                slope: vec![0.0],
            }
        }

        /// Piecewise constant: `levels[k]` from `edges[k - 1]` (0 for the first).
        fn steps(edges: &[f64], levels: &[f64]) -> Self {
            Self {
                t: [0.0].iter().chain(edges).copied().collect(),
                p: levels.to_vec(),
                slope: vec![0.0; levels.len()],
            }
        }

        fn square(period: f64, duty: f64, phase: f64, low: f64, high: f64) -> Self {
            let (mut edges, mut levels) = (Vec::new(), vec![low]);
            let mut k = 0.0;
            loop {
                let rise = phase + k * period;
                let fall = rise + duty * period;
                if rise >= HORIZON + 1.0 {
                    break;
                }
                edges.extend([rise, fall]);
                levels.extend([high, low]);
                k += 1.0;
            }
            Self::steps(&edges, &levels)
        }

        fn ramp(p0: f64, slope: f64) -> Self {
            Self {
                t: vec![0.0],
                p: vec![p0],
                slope: vec![slope],
            }
        }

        fn segment(&self, t: f64) -> usize {
            self.t.partition_point(|&e| e <= t).saturating_sub(1)
        }

        fn at(&self, t: f64) -> f64 {
            let k = self.segment(t);
            self.p[k] + self.slope[k] * (t - self.t[k])
        }

        /// Power just before edge `k` (k ≥ 1).
        fn left_of(&self, k: usize) -> f64 {
            self.p[k - 1] + self.slope[k - 1] * (self.t[k] - self.t[k - 1])
        }

        /// Exact energy over [a, b] (a ≤ b).
        fn energy(&self, a: f64, b: f64) -> f64 {
            let mut joules = 0.0;
            for k in self.segment(a)..=self.segment(b) {
                let from = if k == 0 { a } else { self.t[k].max(a) };
                let to = self.t.get(k + 1).map_or(b, |&n| n.min(b));
                if to > from {
                    let p = |t: f64| self.p[k] + self.slope[k] * (t - self.t[k]);
                    joules += (to - from) * (p(from) + p(to)) / 2.0;
                }
            }
            joules
        }

        /// Edges in (a, b]: where the power may jump or bend.
        fn edges_in(&self, a: f64, b: f64) -> std::ops::Range<usize> {
            let lo = self.t.partition_point(|&e| e <= a).max(1);
            lo..self.t.partition_point(|&e| e <= b).max(lo)
        }

        /// Largest minus smallest power over [a, b], jumps' both sides included (linear
        /// pieces take their extremes at their ends).
        fn spread(&self, a: f64, b: f64) -> f64 {
            let values = [self.at(a), self.at(b)].into_iter().chain(
                self.edges_in(a, b)
                    .flat_map(|k| [self.left_of(k), self.at(self.t[k])]),
            );
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            hi - lo
        }

        /// Sum of the sizes of the jumps in (a, b).
        fn jumps_in(&self, a: f64, b: f64) -> f64 {
            self.edges_in(a, b)
                .filter(|&k| self.t[k] < b)
                .map(|k| (self.at(self.t[k]) - self.left_of(k)).abs())
                .sum()
        }

        /// Largest power over the horizon.
        fn peak(&self) -> f64 {
            (1..self.t.len())
                .map(|k| self.left_of(k))
                .chain(self.p.iter().copied())
                .chain([self.at(HORIZON)])
                .fold(0.0, |m, p| m.max(p.abs()))
        }

        fn is_piecewise_constant(&self) -> bool {
            self.slope.iter().all(|&s| s == 0.0)
        }
    }

    fn loads() -> impl Strategy<Value = Load> {
        let watts = 0.1..300.0_f64;
        prop_oneof![
            watts.clone().prop_map(Load::constant),
            (0.0..HORIZON, watts.clone(), watts.clone())
                .prop_map(|(at, p0, p1)| Load::steps(&[at], &[p0, p1])),
            (
                0.005..2.0_f64,
                0.05..0.95_f64,
                0.0..1.0_f64,
                watts.clone(),
                watts.clone()
            )
                .prop_map(|(period, duty, phase, low, high)| Load::square(
                    period,
                    duty,
                    phase * period,
                    low,
                    high
                )),
            // Power stays positive over the horizon: the slope takes at most 90 % of p0.
            (watts, -1.0..1.0_f64).prop_map(|(p0, s)| {
                let slope = if s < 0.0 {
                    s * 0.9 * p0 / HORIZON
                } else {
                    s * 20.0
                };
                Load::ramp(p0, slope)
            }),
        ]
    }

    /// Sample times over [0, HORIZON]: every `period`, each late by up to `jitter` periods
    /// (so gaps stay in (1 - jitter, 1 + jitter) periods and times stay sorted), with a
    /// fraction `dropout` of them lost (gaps of several periods).
    fn sample_times(period: f64, jitter: f64, dropout: f64, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let phase = rng.random::<f64>() * period;
        let mut times = Vec::new();
        for k in 0.. {
            let t = phase + f64::from(k) * period + rng.random::<f64>() * jitter * period;
            if t > HORIZON {
                break;
            }
            if rng.random::<f64>() >= dropout {
                times.push(t);
            }
        }
        times
    }

    /// A sampling: period 1 ms (a fast INA219) to 200 ms (a slow counter), jitter up to 0.9
    /// of a period, up to 30 % of the samples dropped, and a window [start, end] of 0.5 to
    /// 10 s that starts at least 3 s in and ends at least 3 s before the horizon (so samples
    /// lie on both sides of it: what the sampler guarantees by reading past the run's end).
    fn samplings() -> impl Strategy<Value = (Vec<f64>, f64, f64)> {
        (
            1e-3..0.2_f64,
            0.0..0.9_f64,
            prop_oneof![Just(0.0), 0.0..0.3_f64],
            any::<u64>(),
            3.0..7.0_f64,
            0.5..10.0_f64,
        )
            .prop_map(|(period, jitter, dropout, seed, start, len)| {
                (
                    sample_times(period, jitter, dropout, seed),
                    start,
                    start + len,
                )
            })
    }

    /// The counter's readings, exact energies since 0, summed interval by interval.
    fn counter_at(load: &Load, times: &[f64]) -> Vec<CounterPoint> {
        let mut joules = 0.0;
        let mut prev = 0.0;
        times
            .iter()
            .map(|&t| {
                joules += load.energy(prev, t);
                prev = t;
                CounterPoint { t, joules }
            })
            .collect()
    }

    /// The counter's own rounding: its values are running sums of at most 3·10^4 terms
    /// (samples, plus the segments inside each term), each addition rounding by at most
    /// 2^-53 of the total, so they and their differences carry at most 3·10^4 × 2^-52 × the
    /// energy over the horizon.
    fn counter_slack(load: &Load) -> f64 {
        3e4 * f64::EPSILON * load.energy(0.0, HORIZON)
    }

    /// Floating-point slack: the sums run over at most 2·10^4 samples, each rounding at
    /// 2^-53 of the running total and each time difference carrying about one ulp of 20 s
    /// (4e-15 s) at up to 600 W: far below 1e-9 of the energy or of peak × window.
    fn slack(load: &Load, start: f64, end: f64, exact: f64) -> f64 {
        1e-9 * exact.abs().max(load.peak() * (end - start)) + 1e-12
    }

    proptest! {
        #![proptest_config(crate::proptest_config(48))]

        /// `integrate`: trapezoids between consecutive samples inside the window, the
        /// nearest inside sample held from each edge. A trapezoid over [a, b] is exact for a
        /// linear load; where an edge of the load lies in (a, b], both it and the truth are
        /// integrals of powers within the load's range on [a, b], so they differ by at most
        /// (b - a) × spread. A held stretch of length d differs by at most d × spread over
        /// it. The sum over the window is the bound; for a piecewise-constant load it is at
        /// most (sum of jumps inside) × largest gap (a jump lies in one interval or stretch),
        /// and for a ramp of slope s only the two held stretches err, s·d²/2 each, at most
        /// s × largest gap².
        #[test]
        fn prop_integrate_within_the_bound_the_sampling_allows(
            load in loads(),
            (times, start, end) in samplings(),
        ) {
            let points: Vec<PowerPoint> =
                times.iter().map(|&t| PowerPoint { t, watts: load.at(t) }).collect();
            let inside: Vec<f64> = times.iter().copied().filter(|&t| start < t && t < end).collect();
            prop_assume!(!inside.is_empty() && times[0] < start && *times.last().unwrap() > end);
            let widest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            let e = integrate(&points, start, end, widest).unwrap();
            let exact = load.energy(start, end);

            let mut bound = (inside[0] - start) * load.spread(start, inside[0])
                + (end - inside[inside.len() - 1]) * load.spread(inside[inside.len() - 1], end);
            for w in inside.windows(2) {
                if !load.edges_in(w[0], w[1]).is_empty() {
                    bound += (w[1] - w[0]) * load.spread(w[0], w[1]);
                }
            }
            let slack = slack(&load, start, end, exact);
            let error = (e.joules - exact).abs();
            prop_assert!(error <= bound + slack, "error {error} J, bound {bound} J");

            let gaps: Vec<f64> = [start].into_iter().chain(inside.iter().copied()).chain([end]).collect();
            let largest = gaps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            prop_assert_eq!(e.largest_gap_s, largest);
            if load.is_piecewise_constant() {
                let coarse = load.jumps_in(start, end) * e.largest_gap_s;
                prop_assert!(error <= coarse + slack, "error {error} J, coarse bound {coarse} J");
            } else {
                let coarse = load.slope[0].abs() * e.largest_gap_s.powi(2);
                prop_assert!(error <= coarse + slack, "error {error} J, ramp bound {coarse} J");
            }
            prop_assert_eq!(e.samples, inside.len());
            prop_assert!((e.mean_watts - e.joules / (end - start)).abs() <= 1e-12 * e.mean_watts.abs());
            prop_assert!((e.coverage - 1.0).abs() <= 1e-9, "coverage {}", e.coverage);
        }

        /// Coverage counts only the points inside a window and one neighbour on each side:
        /// the same figure, to the bit, as counting every point of the run, for any sampling
        /// (dropouts included) and any gap allowance.
        #[test]
        fn prop_coverage_of_the_neighbourhood_is_coverage_of_the_run(
            (times, start, end) in samplings(),
            drop_every in 2..7usize,
            max_gap in 1e-3..0.5_f64,
        ) {
            let times: Vec<f64> = times.iter().enumerate()
                .filter(|(i, _)| i % drop_every != 0).map(|(_, &t)| t).collect();
            let inside = times.partition_point(|&t| t <= start)..times.partition_point(|&t| t < end);
            let all = coverage(times.iter().copied(), start, end, max_gap);
            let near = coverage(around(&times, &inside, |&t| t), start, end, max_gap);
            prop_assert_eq!(all.to_bits(), near.to_bits());
        }

        /// `integrate_counter`: the counter's difference between updates is exact, so only
        /// the two update intervals holding the window's edges err. Each is split in
        /// proportion to the mean powers of its neighbours; with every power of the three
        /// intervals within [m, M], the share and the truth both lie in ranges whose worst
        /// difference is (M - m) × the interval's length L (the difference is concave in
        /// the share's length and largest, (M - m)·L, when the edge sits at an end). Zero
        /// where the load is steady around an edge.
        #[test]
        fn prop_integrate_counter_within_the_bound_the_updates_allow(
            load in loads(),
            (times, start, end) in samplings(),
        ) {
            let points = counter_at(&load, &times);
            let first_inside = times.partition_point(|&t| t <= start);
            let after_last = times.partition_point(|&t| t < end);
            prop_assume!(first_inside >= 2 && after_last > first_inside && after_last + 2 <= times.len());
            let e = integrate_counter(&points, start, end, f64::INFINITY).unwrap();
            let exact = load.energy(start, end);

            // The interval holding an edge, [t[k], t[k + 1]], with its neighbours.
            let edge = |k: usize| {
                let span = (times[k - 1], times[(k + 2).min(times.len() - 1)]);
                (times[k + 1] - times[k]) * load.spread(span.0, span.1)
            };
            let bound = edge(first_inside - 1) + edge(after_last - 1);
            let slack = slack(&load, start, end, exact) + counter_slack(&load);
            let error = (e.joules - exact).abs();
            prop_assert!(error <= bound + slack, "error {error} J, bound {bound} J");
            prop_assert_eq!(e.samples, after_last - first_inside);
        }

        /// The protocol's case: the load steps exactly at the window's edges (a phase), steady
        /// inside and steady outside. Holding the nearest inside sample is then exact, and so
        /// is the counter's split (the interval's energy divides as p_before·b : p_inside·a).
        #[test]
        fn prop_a_step_at_each_window_edge_is_exact(
            levels in (0.1..300.0_f64, 0.1..300.0_f64, 0.1..300.0_f64),
            (times, start, end) in samplings(),
        ) {
            let load = Load::steps(&[start, end], &[levels.0, levels.1, levels.2]);
            let exact = levels.1 * (end - start);
            let slack = slack(&load, start, end, exact);
            let points: Vec<PowerPoint> =
                times.iter().map(|&t| PowerPoint { t, watts: load.at(t) }).collect();
            prop_assume!(times.iter().any(|&t| start < t && t < end));
            let e = integrate(&points, start, end, f64::INFINITY).unwrap();
            prop_assert!((e.joules - exact).abs() <= slack, "{} vs {exact}", e.joules);

            // The counter's split is exact when the intervals next to the edge intervals lie
            // wholly on their own side (else the neighbour's mean mixes both levels).
            let counter = counter_at(&load, &times);
            let first_inside = times.partition_point(|&t| t <= start);
            let after_last = times.partition_point(|&t| t < end);
            prop_assume!(first_inside >= 2 && after_last >= first_inside + 2 && after_last + 2 <= times.len());
            let e = integrate_counter(&counter, start, end, f64::INFINITY).unwrap();
            let slack = slack + counter_slack(&load);
            prop_assert!((e.joules - exact).abs() <= slack, "counter {} vs {exact}", e.joules);
        }
    }
}
