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

/// What the probe saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Floor {
    /// How long the probe ran.
    pub seconds: f64,
    /// Threads kept busy beside it.
    pub busy_threads: usize,
    /// Every stall over [`KEEP_OVER_S`], in seconds.
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

    /// The share of the probe's time spent in stalls over [`KEEP_OVER_S`].
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
/// (Garwood's exact interval: half the 97.5 % point of χ² with 2(count + 1) degrees of freedom).
pub fn upper_rate_per_hour(count: usize, seconds: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    let chi = ChiSquared::new(2.0 * (count as f64 + 1.0)).expect("positive degrees of freedom");
    chi.inverse_cdf(0.975) / 2.0 / seconds * 3600.0
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
}
