//! One monotonic clock for the whole run.
//!
//! The runner stamps phase boundaries and latencies, and the sampler stamps sensor readings,
//! in seconds since the same epoch, so energy can be integrated over exactly the window in
//! which inferences ran.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How often (run-clock seconds) a sampler thread or the timed loop hands its new rows over:
/// often enough that a flush finds them, rarely enough that the hand-off costs nothing.
pub const HAND_OFF_EVERY_S: f64 = 0.25;

/// The longest idle baseline, settle or minimum timed window a rig may ask for, in seconds.
///
/// An hour: far more than any sensor's validity needs (NVML's slowest counter wants 0.5 s, an
/// INA219 averaging 128 samples 0.35 s), and short enough that a slip of the finger (3600000
/// for 3600, or 1e300) is refused instead of holding the machine for weeks or for ever. A
/// longer measurement is a loop of repetitions (`--repeat`, `joulebench soak`), each with its
/// own window.
pub const MAX_SECONDS: f64 = 3600.0;

/// Seconds since the start of a run, on a monotonic clock (CLOCK_MONOTONIC, the clock
/// `Instant` reads on Linux).
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    /// CLOCK_MONOTONIC at the run's start, seconds.
    epoch: f64,
}

impl RunClock {
    pub fn start() -> Self {
        Self {
            epoch: monotonic_seconds(),
        }
    }

    /// Seconds elapsed since the run's epoch.
    pub fn now(&self) -> f64 {
        monotonic_seconds() - self.epoch
    }
}

impl Default for RunClock {
    fn default() -> Self {
        Self::start()
    }
}

/// The system's CLOCK_MONOTONIC in seconds: the clock `Instant` reads on Linux, and the one
/// Python's `time.monotonic()` reads, so another process's timestamps can be placed on the
/// run clock (`joulebench bench` cuts its power samples to a reference loop's timed window).
pub fn monotonic_seconds() -> f64 {
    // CLOCK_MONOTONIC always exists.
    clock_seconds(libc::CLOCK_MONOTONIC).unwrap_or(f64::NAN)
}

/// A POSIX clock's reading in seconds (CLOCK_MONOTONIC, or a thread's CPU-time clock); None
/// where it cannot be read (the CPU clock of a thread that has ended: the kernel answers
/// EINVAL, nothing worse).
pub fn clock_seconds(clock: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let read = unsafe { libc::clock_gettime(clock, &mut ts) } == 0;
    read.then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

/// Sleeps until CLOCK_MONOTONIC reads `deadline` seconds: one `clock_nanosleep` with
/// TIMER_ABSTIME, so a signal or an early wake-up resumes towards the same instant instead of
/// adding its delay to a relative sleep. The thread blocks meanwhile: nothing spins.
pub fn sleep_until_monotonic(deadline: f64) {
    if !deadline.is_finite() {
        return;
    }
    let secs = deadline.floor();
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: (((deadline - secs) * 1e9) as libc::c_long).clamp(0, 999_999_999),
    };
    loop {
        // SAFETY: clock_nanosleep reads the timespec it is given; with TIMER_ABSTIME it writes
        // nothing back, so the remainder pointer may be null.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        // EINTR: a signal handler ran (Ctrl-C's); the deadline is absolute, so sleep on.
        if rc != libc::EINTR {
            return;
        }
    }
}

/// A source of time in seconds. The runner's [`RunClock`] in a run; a hand-driven clock in
/// tests of time-dependent models (the simulated INA219's conversion timing).
pub trait TimeSource: Send + Sync {
    fn now(&self) -> f64;

    /// Blocks until `now() >= t`: a real sleep on the run clock, a jump on a hand-driven clock
    /// (so a simulated I2C bus's transfer time and the sampler's schedule run in virtual time
    /// in tests).
    fn sleep_until(&self, t: f64);
}

impl TimeSource for RunClock {
    fn now(&self) -> f64 {
        RunClock::now(self)
    }

    /// Blocks until `t` on an absolute deadline ([`sleep_until_monotonic`]). It never spins:
    /// a spinning wait takes a core from the backend being measured and, on a board, draws
    /// power on the very rail being measured. The sampler's schedule absorbs a late wake-up
    /// instead (see `sampler.rs`).
    fn sleep_until(&self, t: f64) {
        sleep_until_monotonic(self.epoch + t);
    }
}

/// A clock that moves only when told to, or when something sleeps on it: drives the simulated
/// chip's conversion timing and the sampler's schedule in virtual time in tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    bits: AtomicU64,
}

impl ManualClock {
    pub fn new(t: f64) -> Self {
        Self {
            bits: AtomicU64::new(t.to_bits()),
        }
    }

    pub fn set(&self, t: f64) {
        self.bits.store(t.to_bits(), Ordering::SeqCst);
    }
}

impl TimeSource for ManualClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::SeqCst))
    }

    /// Time jumps forward to `t` (never backward).
    fn sleep_until(&self, t: f64) {
        if t > self.now() {
            self.set(t);
        }
    }
}

/// The parts of the measurement protocol, in the order a run goes through them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Phase {
    /// Nothing runs: the machine's idle draw, subtracted for net figures.
    IdleBaseline,
    /// Untimed classifications that load caches and lazily allocated buffers.
    Warmup,
    /// A pause between warm-up and the timed run (the 2019 method sleeps 1 s).
    Settle,
    /// The timed classifications.
    Timed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the backend is computing during this phase (a simulated board draws its active
    /// current then).
    pub fn is_busy(self) -> bool {
        matches!(self, Phase::Warmup | Phase::Timed)
    }
}

/// Which backend, and which repetition of the protocol on it, a phase belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index of the rig's backend.
    pub backend: usize,
    /// 1-based repetition of the protocol on that backend.
    pub repetition: usize,
}

/// One phase of one backend, as `[start, end)` on the run clock.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhaseSpan {
    pub phase: Phase,
    /// Index of the rig's backend this phase belongs to; `None` for the idle baseline.
    pub backend: Option<usize>,
    /// 1-based repetition of the protocol; `None` for the idle baseline.
    pub repetition: Option<usize>,
    pub start: f64,
    /// `f64::INFINITY` while the phase is still running.
    pub end: f64,
    /// CPU seconds each sampler thread used within the phase, in sensor order (what the
    /// meter itself cost); empty where nothing was sampled, or for a phase still running.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sampler_cpu_s: Vec<f64>,
}

impl PhaseSpan {
    /// A span with no sampler CPU figures.
    pub fn new(phase: Phase, slot: Option<Slot>, start: f64, end: f64) -> Self {
        Self {
            phase,
            backend: slot.map(|s| s.backend),
            repetition: slot.map(|s| s.repetition),
            start,
            end,
            sampler_cpu_s: Vec::new(),
        }
    }

    /// Sampler thread `sensor`'s CPU time over the span as a share of one core, percent.
    pub fn sampler_cpu_pct(&self, sensor: usize) -> Option<f64> {
        let cpu = *self.sampler_cpu_s.get(sensor)?;
        let seconds = self.end - self.start;
        (cpu.is_finite() && seconds > 0.0 && seconds.is_finite()).then(|| 100.0 * cpu / seconds)
    }
}

/// Reads each sampler thread's CPU clock, seconds, in sensor order.
pub type CpuMeter = Box<dyn Fn() -> Vec<f64> + Send>;

#[derive(Default)]
struct Phases {
    spans: Vec<PhaseSpan>,
    meter: Option<CpuMeter>,
    /// The meter's reading when the running phase began.
    cpu_at_start: Vec<f64>,
}

/// Phase boundaries shared between the runner (which writes them) and whoever needs to know
/// what the machine was doing at a given time (energy windows, the simulated load).
#[derive(Clone, Default)]
pub struct PhaseLog {
    inner: Arc<Mutex<Phases>>,
}

impl std::fmt::Debug for PhaseLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseLog")
            .field("spans", &self.lock().spans)
            .finish()
    }
}

impl PhaseLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on each phase records what the sampler threads' CPU clocks moved by within it
    /// (read at its edges, from the runner's thread: the sampling loop does nothing extra).
    pub fn meter_with(&self, meter: CpuMeter) {
        self.lock().meter = Some(meter);
    }

    /// Closes the running phase (if any) at `at` and opens `phase` there.
    pub fn begin(&self, phase: Phase, slot: Option<Slot>, at: f64) {
        let mut phases = self.lock();
        phases.close(at);
        phases
            .spans
            .push(PhaseSpan::new(phase, slot, at, f64::INFINITY));
    }

    /// Closes the running phase at `at`; afterwards no phase is running.
    pub fn end(&self, at: f64) {
        self.lock().close(at);
    }

    /// The phase running at time `t`, if any.
    pub fn phase_at(&self, t: f64) -> Option<Phase> {
        self.lock()
            .spans
            .iter()
            .rev()
            .find(|s| s.start <= t && t < s.end)
            .map(|s| s.phase)
    }

    pub fn spans(&self) -> Vec<PhaseSpan> {
        self.lock().spans.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phases> {
        // A poisoned lock only means another thread panicked mid-push; the spans are still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Phases {
    /// Ends the running phase at `at` with its sampler CPU, and reads the meter for the next.
    fn close(&mut self, at: f64) {
        let cpu = self.meter.as_ref().map(|m| m()).unwrap_or_default();
        if let Some(last) = self.spans.last_mut().filter(|s| s.end.is_infinite()) {
            last.end = at;
            if cpu.len() == self.cpu_at_start.len() {
                last.sampler_cpu_s = cpu
                    .iter()
                    .zip(&self.cpu_at_start)
                    .map(|(now, then)| now - then)
                    .collect();
            }
        }
        self.cpu_at_start = cpu;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run.json`'s phase names (serde) and the outputs' (`as_str`) come from one rule.
    #[test]
    fn phase_names_agree() {
        use strum::VariantArray;
        for phase in Phase::VARIANTS {
            let json = serde_json::to_value(phase).unwrap();
            assert_eq!(json, phase.as_str());
        }
        assert_eq!(Phase::IdleBaseline.as_str(), "idle-baseline");
        let adapter = crate::sensor::ina219::I2cAdapter::Bcm2835;
        assert_eq!(serde_json::to_value(adapter).unwrap(), adapter.as_str());
    }

    #[test]
    fn phases_close_each_other() {
        let log = PhaseLog::new();
        log.begin(Phase::IdleBaseline, None, 0.0);
        let slot = Some(Slot {
            backend: 0,
            repetition: 2,
        });
        log.begin(Phase::Warmup, slot, 2.0);
        log.begin(Phase::Timed, slot, 3.0);
        log.end(5.0);
        assert_eq!(
            (log.spans()[2].backend, log.spans()[2].repetition),
            (Some(0), Some(2))
        );
        assert_eq!(log.spans()[0].repetition, None);
        assert_eq!(log.phase_at(1.0), Some(Phase::IdleBaseline));
        assert_eq!(log.phase_at(2.5), Some(Phase::Warmup));
        assert_eq!(log.phase_at(4.9), Some(Phase::Timed));
        assert_eq!(log.phase_at(5.0), None);
        assert_eq!(log.spans()[1].end, 3.0);
    }

    #[test]
    fn each_phase_records_what_the_sampler_threads_used_within_it() {
        let log = PhaseLog::new();
        log.begin(Phase::IdleBaseline, None, 0.0);
        // A meter read at every edge: 1 s and 3 s of CPU for two threads by the second edge.
        let reads = Arc::new(Mutex::new(vec![
            vec![0.5, 1.0],
            vec![1.5, 4.0],
            vec![1.6, 4.5],
        ]));
        let next = Arc::clone(&reads);
        log.meter_with(Box::new(move || next.lock().unwrap().remove(0)));
        log.begin(Phase::Settle, None, 2.0);
        log.begin(Phase::Timed, None, 4.0);
        log.end(6.0);
        let spans = log.spans();
        // The first phase began before the meter existed: no figure.
        assert!(spans[0].sampler_cpu_s.is_empty());
        assert_eq!(spans[1].sampler_cpu_s, [1.0, 3.0]);
        assert_eq!(spans[1].sampler_cpu_pct(1), Some(150.0));
        let timed = &spans[2].sampler_cpu_s;
        assert!((timed[0] - 0.1).abs() < 1e-12 && (timed[1] - 0.5).abs() < 1e-12);
        assert!((spans[2].sampler_cpu_pct(0).unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(spans[2].sampler_cpu_pct(2), None);
        assert!(reads.lock().unwrap().is_empty());
    }

    #[test]
    fn monotonic_seconds_runs_with_instant() {
        let clock = RunClock::start();
        let offset = monotonic_seconds() - clock.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let drift = (monotonic_seconds() - clock.now()) - offset;
        assert!(drift.abs() < 1e-3, "{drift}");
    }
}
