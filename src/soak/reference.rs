//! The machine's speed over the soak, measured beside the backends: a fixed piece of work
//! (multiply-adds over a buffer the size of a small layer's activations) timed in the
//! monitor's thread CPU time every [`super::MONITOR_EVERY`]. A virtual machine's host, its
//! other tenants and the CPU's clock move a backend's latency over an hour as much as
//! anything the rig could do; the same movement in this reference shows it is the machine's.
//! CPU time, not wall time: the monitor runs at a low priority, so waiting for a core must
//! not count, while a slower core does. The median of several runs, as a repetition's
//! latency is the median of its inferences: one run that another thread's time slice cut into
//! (its buffer then comes back from memory) does not move it.

use std::hint::black_box;

/// Elements of the buffer: 256 KiB of `u32`, in a core's L2 on the machines this runs on,
/// as a convolution's working set is.
const ELEMENTS: usize = 64 * 1024;
/// Passes over it: about a millisecond of work on a 2020s x86-64 core.
const PASSES: usize = 64;
/// Runs, of which the median counts.
const RUNS: usize = 7;

/// Milliseconds of this thread's CPU time the fixed work took, the median of `RUNS`.
pub fn time_ms() -> f64 {
    let mut runs: Vec<f64> = (0..RUNS).map(|_| once_ms()).collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn once_ms() -> f64 {
    let start = cpu_time::ThreadTime::now();
    let mut buffer: Vec<u32> = (0..ELEMENTS as u32).collect();
    let mut acc = 0u32;
    for pass in 0..PASSES as u32 {
        for x in buffer.iter_mut() {
            *x = x.wrapping_mul(2_654_435_761).wrapping_add(pass);
            acc = acc.wrapping_add(*x >> 7);
        }
        black_box(&mut buffer);
    }
    black_box(acc);
    start.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_work_takes_cpu_time() {
        let ms = super::time_ms();
        // A few million operations: well over a microsecond, well under a second anywhere.
        assert!(ms > 0.01 && ms < 1000.0, "{ms} ms");
    }
}
