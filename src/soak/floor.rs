//! The machine's own stalls, measured beside the soak: a thread that spins on the clock, as
//! the sampler does through a simulated transfer, while as many threads as the rig's busiest
//! backend keep their cores busy. Every stretch the spinning thread did not run is one the
//! machine (its scheduler, or a hypervisor under it) took away; no reader on this machine can
//! avoid those. The soak judges the sampler's gaps against this floor, so a gap the rig causes
//! (its writer, its monitor, its own work) is told apart from one any program would see.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Stalls shorter than this are not kept (they are far below any sensor's allowed gap).
const KEEP_OVER_S: f64 = 0.5e-3;

/// How often the probe asks whether to stop.
const CHECK_STOP_EVERY: Duration = Duration::from_millis(10);

/// The probe runs for this share of the soak ([`length_for`]) ...
const SHARE_OF_SOAK: u32 = 20;
/// ... and at most this long.
const LONGEST: Duration = Duration::from_secs(60);

/// How long the probe runs after a soak of `soak`: a twentieth of it, a minute at most.
pub fn length_for(soak: Duration) -> Duration {
    (soak / SHARE_OF_SOAK).min(LONGEST)
}

/// The soak, in seconds, after which the probe runs `probe_s`; `None` beyond the longest
/// probe, which no soak gives.
pub fn soak_for(probe_s: f64) -> Option<f64> {
    (probe_s <= LONGEST.as_secs_f64()).then(|| probe_s * f64::from(SHARE_OF_SOAK))
}

/// What the probe saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Floor {
    /// How long the probe ran.
    pub seconds: f64,
    /// Threads kept busy beside it.
    pub busy_threads: usize,
    /// Every stall over `KEEP_OVER_S`, in seconds.
    pub stalls_s: Vec<f64>,
}

impl Floor {
    /// Stalls longer than `s`.
    pub fn over(&self, s: f64) -> usize {
        self.stalls_s.iter().filter(|&&x| x > s).count()
    }

    pub fn longest_s(&self) -> f64 {
        self.stalls_s.iter().copied().fold(0.0, f64::max)
    }

    /// The share of the probe's time spent in stalls over `KEEP_OVER_S`.
    pub fn stalled_fraction(&self) -> f64 {
        self.stalls_s.iter().sum::<f64>() / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// Spins on the clock for `duration` with `busy_threads` other threads computing, and
/// records every stall. Ends early once `stopped()` (checked every few milliseconds).
pub fn probe(duration: Duration, busy_threads: usize, stopped: &dyn Fn() -> bool) -> Floor {
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..busy_threads)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1000 {
                        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut last = start;
    let mut stalls_s = Vec::new();
    let mut checked = start;
    while last - start < duration {
        let now = Instant::now();
        if now - checked > CHECK_STOP_EVERY {
            if stopped() {
                break;
            }
            checked = now;
        }
        let gap = (now - last).as_secs_f64();
        if gap > KEEP_OVER_S {
            stalls_s.push(gap);
        }
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    for thread in busy {
        // A busy loop cannot panic; if it did, the probe's figures still stand.
        let _ = thread.join();
    }
    Floor {
        seconds: (last - start).as_secs_f64(),
        busy_threads,
        stalls_s,
    }
}

/// The 95 % upper bound of a Poisson rate, per hour, from `count` events in `seconds`
/// ([`upper_count`] per `seconds`); infinite for a probe that did not run.
pub fn upper_rate_per_hour(count: usize, seconds: f64) -> f64 {
    upper_count(count) / seconds * 3600.0
}

/// The 95 % upper bound of a Poisson mean from `count` events seen (Garwood's exact interval:
/// half the 97.5 % point of χ² with 2(count + 1) degrees of freedom): 3.689 for none.
pub fn upper_count(count: usize) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    let chi = ChiSquared::new(2.0 * (count as f64 + 1.0)).expect("positive degrees of freedom");
    chi.inverse_cdf(0.975) / 2.0
}

/// The shortest probe, in seconds, whose bound on `count` stalls (the count it saw) is below
/// one stall per `gap_s`. A reader's gaps each last longer than `gap_s`, so it has fewer than
/// one per `gap_s`; a bound of [`upper_count`]`(count) / T` per second is below that only when
/// `T > upper_count(count) × gap_s`. A shorter probe's bound is one no reader can exceed: it
/// bounds nothing.
pub fn shortest_bounding_s(count: usize, gap_s: f64) -> f64 {
    upper_count(count) * gap_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poisson_upper_bound_matches_garwoods_table() {
        // Garwood (1936): 95 % two-sided upper limits 3.689 for 0 events, 8.767 for 3, 18.39
        // for 10 (the tabulated values, to four figures).
        for (count, upper) in [(0, 3.689), (3, 8.767), (10, 18.39)] {
            let got = upper_rate_per_hour(count, 3600.0);
            assert!((got - upper).abs() / upper < 1e-3, "{count}: {got}");
        }
    }

    #[test]
    fn a_probe_runs_for_its_time_and_counts_by_threshold() {
        let floor = probe(Duration::from_millis(50), 1, &|| false);
        let stopped = probe(Duration::from_secs(60), 1, &|| true);
        assert!(stopped.seconds < 1.0, "{stopped:?}");
        assert!(floor.seconds >= 0.05 && floor.seconds < 1.0, "{floor:?}");
        assert_eq!(floor.busy_threads, 1);
        let made = Floor {
            seconds: 10.0,
            busy_threads: 1,
            stalls_s: vec![0.001, 0.004, 0.007],
        };
        assert_eq!((made.over(0.003), made.over(0.01)), (2, 0));
        assert_eq!(made.longest_s(), 0.007);
        assert!((made.stalled_fraction() - 0.0012).abs() < 1e-12);
    }

    #[test]
    fn a_probe_bounds_gaps_only_past_garwoods_count_of_gap_lengths() {
        // No stall seen: 3.689 gaps' length. At exactly that length the bound is one gap per
        // gap length, which a reader can only come near, never exceed.
        let gap = 6e-3;
        let shortest = shortest_bounding_s(0, gap);
        assert!((shortest - 3.689 * gap).abs() < 1e-5, "{shortest}");
        let most_per_hour = 3600.0 / gap;
        assert!((upper_rate_per_hour(0, shortest) - most_per_hour).abs() < 1e-6 * most_per_hour);
        assert!(upper_rate_per_hour(0, shortest * 1.01) < most_per_hour);
        assert!(upper_rate_per_hour(0, shortest * 0.99) > most_per_hour);
        // Stalls seen take a longer probe: 8.767 gap lengths for three.
        assert!((shortest_bounding_s(3, gap) / gap - 8.767).abs() < 1e-2);
        // A probe that did not run bounds nothing.
        assert_eq!(upper_rate_per_hour(0, 0.0), f64::INFINITY);
    }

    #[test]
    fn the_probe_takes_a_twentieth_of_the_soak_and_a_minute_at_most() {
        assert_eq!(
            length_for(Duration::from_secs(6)),
            Duration::from_millis(300)
        );
        assert_eq!(length_for(Duration::from_secs(3600)), LONGEST);
        assert_eq!(soak_for(0.5), Some(10.0));
        assert_eq!(soak_for(60.0), Some(1200.0));
        assert_eq!(soak_for(61.0), None);
    }
}
