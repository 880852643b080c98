//! The sampler: one thread per sensor, reading at the sensor's own update rate and stamping
//! every reading on the run clock.
//!
//! Readings are kept in the thread and handed back when the sampler stops, so the timed loop
//! on the other core never contends for a lock. A run that streams its results instead hands
//! them, every [`HAND_OFF_EVERY_S`], to the writer thread through a channel whose send never
//! blocks ([`crate::output::stream`]).
//!
//! Two things make the stamps right, and both matter most for slow sensors (an NVML energy
//! counter moves every 100 ms; an `avg128` INA219 conversion takes 136 ms):
//! - **phase lock**: once a sensor has shown that it can say "no update since the last read"
//!   (a stale reading; the first two reads are back to back to find out), every update is bracketed between a stale read and a fresh one. The
//!   next read is aimed one small step before the next expected update, at the last update's
//!   time plus the period measured from these brackets, so the schedule never drifts across
//!   the sensor's period and every fresh value is stamped within a step of when it appeared.
//! - **centre of the value**: a fresh value is stamped at its update instant minus the
//!   sensor's [`Reading::centre_offset_s`]: an averaged INA219 value belongs to the middle of
//!   the conversion that produced it, not to the read.
//!
//! When asked to stop, each thread goes on until it has one fresh reading stamped after the
//! stop, so the last window's end lies between two readings instead of being extrapolated.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::{RunClock, TimeSource};
use crate::output::stream::{Feed, HAND_OFF_EVERY_S};
#[cfg(test)]
use crate::sensor::Origin;
use crate::sensor::{PowerSensor, Reading, SensorInfo};

/// After this many failed reads in a row a sensor is retried every [`RETRY_EVERY_S`] rather
/// than at its own rate, so a dead bus is not hammered, and a chip that comes back is read
/// again within that time ...
const BACKOFF_AFTER_ERRORS: u32 = 20;
const RETRY_EVERY_S: f64 = 0.01;
/// ... and only after failing continuously for this long is it given up for the rest of the
/// run. The gap it leaves is the validity check's business: a window it hurts is invalid.
pub const GIVE_UP_AFTER_S: f64 = 5.0;

/// In phase lock, reads after a stale one start this fraction of a period apart (or back to
/// back, where a read takes longer), and the first read for an update is aimed
/// [`LEAD_STEPS`] of them before it is due: enough to absorb the estimate's own error.
const STEP_FRACTION: f64 = 1.0 / 32.0;
const LEAD_STEPS: f64 = 2.0;

/// After a stop, wait at most this many update periods (plus [`TAIL_SLACK_S`]) for the one
/// fresh reading past the stop.
const TAIL_PERIODS: f64 = 3.0;
const TAIL_SLACK_S: f64 = 0.05;

/// Sleeping threads wake this often to notice a stop.
const WAKE_EVERY_S: f64 = 0.02;

/// One read of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Run-clock time the value belongs to, in seconds: for a fresh value, its update instant
    /// less the sensor's centre offset; otherwise the middle of the read.
    pub t: f64,
    /// The values, or the error the read returned.
    pub reading: Result<Reading, String>,
}

/// Everything one sensor produced during a run.
#[derive(Debug, Clone)]
pub struct SensorLog {
    pub info: SensorInfo,
    pub update_period: Duration,
    pub samples: Vec<Sample>,
    /// Set when the sensor was given up mid-run (failing for [`GIVE_UP_AFTER_S`]).
    pub failure: Option<String>,
    /// The sensor's own relative uncertainty of energy ([`PowerSensor::uncertainty`]).
    pub uncertainty: Option<f64>,
    /// CPU time the sampler thread used.
    pub cpu_time: Duration,
    /// Whether its energy can be cross-checked against instant power
    /// ([`PowerSensor::crosscheck`]).
    pub crosscheck: Option<crate::sensor::Crosscheck>,
    /// The shortest window the sensor can measure ([`PowerSensor::min_window`]), seconds.
    pub min_window_s: Option<f64>,
}

/// Running sampler threads.
pub struct Sampler {
    /// The run-clock time a stop was asked for, as f64 bits; NaN while running.
    stop_at: Arc<AtomicU64>,
    clock: RunClock,
    threads: Vec<JoinHandle<SensorLog>>,
}

impl Sampler {
    /// Starts one thread per sensor.
    pub fn start(sensors: Vec<Box<dyn PowerSensor>>, clock: RunClock) -> Self {
        Self::start_with(sensors, clock, None)
    }

    /// Starts one thread per sensor; with a feed, each hands its readings to it in batches
    /// and keeps none (its log's `samples` come back empty).
    pub fn start_with(
        sensors: Vec<Box<dyn PowerSensor>>,
        clock: RunClock,
        feed: Option<Feed>,
    ) -> Self {
        let stop_at = Arc::new(AtomicU64::new(f64::NAN.to_bits()));
        let threads = sensors
            .into_iter()
            .enumerate()
            .map(|(index, sensor)| {
                let stop_at = Arc::clone(&stop_at);
                let feed = feed.clone();
                std::thread::Builder::new()
                    .name("joulebench-sampler".into())
                    .spawn(move || {
                        precise_sleeps();
                        let cpu_start = cpu_time::ThreadTime::now();
                        let stop = || Some(f64::from_bits(stop_at.load(Ordering::Relaxed)));
                        let stop_requested = |_: f64| stop().filter(|t| !t.is_nan());
                        let mut log = match feed {
                            Some(feed) => {
                                let mut hand_off =
                                    |batch: &mut Vec<Sample>, failure: Option<&str>, last: bool| {
                                        let batch = std::mem::take(batch);
                                        feed.samples(index, batch, failure.map(Into::into), last)
                                    };
                                let hand_off: HandOff = &mut hand_off;
                                sample_with(sensor, &clock, stop_requested, Some(hand_off))
                            }
                            None => sample(sensor, &clock, stop_requested),
                        };
                        log.cpu_time = cpu_start.elapsed();
                        log
                    })
                    .expect("spawning a thread")
            })
            .collect();
        Self {
            stop_at,
            clock,
            threads,
        }
    }

    /// Stops every thread (each after one more fresh reading) and returns the logs, in
    /// sensor order.
    pub fn stop(self) -> Vec<SensorLog> {
        self.stop_at
            .store(self.clock.now().to_bits(), Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| match t.join() {
                Ok(log) => log,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    }
}

/// `sensor` read no more often than every `period`: for measuring what sampling itself costs
/// (`joulebench bench` compares full-rate sampling against this, both measured).
pub fn slowed(sensor: Box<dyn PowerSensor>, period: Duration) -> Box<dyn PowerSensor> {
    Box::new(Slowed { sensor, period })
}

struct Slowed {
    sensor: Box<dyn PowerSensor>,
    period: Duration,
}

impl PowerSensor for Slowed {
    fn info(&self) -> &SensorInfo {
        self.sensor.info()
    }
    fn update_period(&self) -> Duration {
        self.sensor.update_period().max(self.period)
    }
    fn read(&mut self) -> anyhow::Result<Reading> {
        self.sensor.read()
    }
    fn uncertainty(&self) -> Option<f64> {
        self.sensor.uncertainty()
    }
    fn crosscheck(&self) -> Option<crate::sensor::Crosscheck> {
        self.sensor.crosscheck()
    }
    fn min_window(&self) -> Option<Duration> {
        self.sensor.min_window()
    }
}

/// Linux lets a normal thread's sleep overshoot by its timer slack (50 µs by default); a
/// sampler polling every millisecond needs its wake-ups where it asked for them.
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// The niceness of threads that only write or watch (the results writer, the soak monitor).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread to [`BACKGROUND_NICE`]. The backend and the sampler may keep
/// every core busy (a simulated bus and the sampler's last stretch before a read spin); a
/// writer at the same priority then takes its time slices from the sampler, which misses
/// readings for as long. At nice 10 it gets about a tenth of the share of a nice-0 thread,
/// enough for its rows, and the sampler's wake-ups come first. A failure leaves the thread as
/// it was (nothing to report: it only costs readings, which the validity checks count).
pub fn background_priority() {
    // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS and a thread id
    // changes only that thread's nice value on Linux.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE);
    }
}

/// Reads `sensor` on `clock` until `stop_requested(now)` returns the time a stop was asked
/// for and a fresh reading stamped after it has been taken (or [`TAIL_PERIODS`] have passed).
/// The real sampler runs this on the run clock; tests run it in virtual time.
pub fn sample(
    sensor: Box<dyn PowerSensor>,
    clock: &dyn TimeSource,
    stop_requested: impl FnMut(f64) -> Option<f64>,
) -> SensorLog {
    sample_with(sensor, clock, stop_requested, None)
}

/// What a sampler thread does with its readings while streaming: called with the readings
/// since the last call (to take), why the sensor was given up (if it was), and whether this is
/// the last call.
pub type HandOff<'a> = &'a mut dyn FnMut(&mut Vec<Sample>, Option<&str>, bool);

/// [`sample`], handing the readings to `hand_off` every [`HAND_OFF_EVERY_S`] and at the end.
pub fn sample_with(
    mut sensor: Box<dyn PowerSensor>,
    clock: &dyn TimeSource,
    mut stop_requested: impl FnMut(f64) -> Option<f64>,
    mut hand_off: Option<HandOff>,
) -> SensorLog {
    let mut handed_at = clock.now();
    let nominal = sensor.update_period().as_secs_f64();
    let mut schedule = Schedule::new(nominal);
    let mut samples = Vec::new();
    let mut failure = None;
    let mut errors = Errors::default();
    loop {
        let before = clock.now();
        let reading = sensor.read().map_err(|e| format!("{e:#}"));
        let after = clock.now();
        let t = match &reading {
            Ok(r) => schedule.record(r, before, after),
            Err(_) => (before + after) / 2.0,
        };
        if let Some(why) = errors.record(&reading, after) {
            failure = Some(why);
        }
        let fresh = matches!(&reading, Ok(r) if !r.stale);
        samples.push(Sample { t, reading });
        if failure.is_some() {
            break;
        }
        if let Some(hand_off) = hand_off.as_mut() {
            if after - handed_at >= HAND_OFF_EVERY_S {
                hand_off(&mut samples, None, false);
                handed_at = after;
            }
        }
        let next = errors
            .retry_at(after)
            .unwrap_or_else(|| schedule.next(after));
        if let Some(stop) = stop_requested(after) {
            let tail_ends = stop + TAIL_PERIODS * schedule.period + TAIL_SLACK_S;
            if (fresh && t > stop) || after > tail_ends {
                break;
            }
        }
        sleep_until(clock, next, &mut stop_requested);
    }
    if let Some(hand_off) = hand_off {
        hand_off(&mut samples, failure.as_deref(), true);
    }
    SensorLog {
        info: sensor.info().clone(),
        update_period: sensor.update_period(),
        samples,
        failure,
        uncertainty: sensor.uncertainty(),
        cpu_time: Duration::ZERO,
        crosscheck: sensor.crosscheck(),
        min_window_s: sensor.min_window().map(|d| d.as_secs_f64()),
    }
}

/// Sleeps until `t`, waking regularly so a stop is noticed (the loop then decides whether
/// one more reading is due).
fn sleep_until(
    clock: &dyn TimeSource,
    t: f64,
    stop_requested: &mut impl FnMut(f64) -> Option<f64>,
) {
    let already_stopping = stop_requested(clock.now()).is_some();
    loop {
        let now = clock.now();
        if now >= t || (!already_stopping && stop_requested(now).is_some()) {
            return;
        }
        clock.sleep_until(t.min(now + WAKE_EVERY_S));
    }
}

/// When to read next, and when a fresh value became readable.
#[derive(Debug, Clone)]
struct Schedule {
    /// The sensor's update period: nominal at first, then measured from bracketed updates.
    period: f64,
    nominal: f64,
    /// The sensor has reported a stale reading: its updates can be bracketed.
    locking: bool,
    /// Middle of the latest read, and whether it was stale.
    previous: Option<(f64, bool)>,
    /// Middle of the read before that.
    before_previous: Option<f64>,
    /// Estimated instant of the last update, when it was bracketed by a stale read.
    last_update: Option<f64>,
    /// Duration of the last stale read: the finest step polling can take.
    read_cost: f64,
    /// Start of the latest read, and the cadence kept for sensors that never report stale.
    last_start: f64,
    cadence: Option<f64>,
}

impl Schedule {
    fn new(nominal: f64) -> Self {
        Self {
            period: nominal,
            nominal,
            locking: false,
            previous: None,
            before_previous: None,
            last_update: None,
            read_cost: 0.0,
            last_start: 0.0,
            cadence: None,
        }
    }

    /// Time between the starts of two polls for an update.
    fn step(&self) -> f64 {
        (self.period * STEP_FRACTION).max(self.read_cost)
    }

    /// Notes a reading taken between `before` and `after`; returns the time to stamp it with.
    fn record(&mut self, r: &Reading, before: f64, after: f64) -> f64 {
        let mid = (before + after) / 2.0;
        self.last_start = before;
        let previous = self.previous.replace((mid, r.stale));
        self.before_previous = previous.map(|(at, _)| at);
        if r.stale {
            self.locking = true;
            self.read_cost = after - before;
            return mid;
        }
        let update = match previous {
            // The update happened between the stale read and this one.
            Some((at, true)) => {
                let update = (at + mid) / 2.0;
                if let Some(last) = self.last_update {
                    let interval = update - last;
                    // One period apart (not a missed update): refine the period, slowly, and
                    // never far from what the sensor says.
                    if (0.5 * self.period..1.5 * self.period).contains(&interval) {
                        self.period += (interval - self.period) / 8.0;
                        self.period = self.period.clamp(0.8 * self.nominal, 1.2 * self.nominal);
                    }
                }
                self.last_update = Some(update);
                update
            }
            // No bracket: the update came at most a period before this read.
            _ => {
                self.last_update = None;
                match previous {
                    Some((at, false)) if self.locking => (at.max(mid - self.period) + mid) / 2.0,
                    _ => mid,
                }
            }
        };
        update - r.centre_offset_s
    }

    /// When to read next, given that the last read ended at `after`.
    fn next(&mut self, after: f64) -> f64 {
        let stale = matches!(self.previous, Some((_, true)));
        if self.before_previous.is_none() && !stale {
            // A second read straight after the first shows whether the sensor can tell that
            // nothing changed (it then reads stale), which phase lock needs.
            return after;
        }
        if !self.locking {
            // Keep the cadence, but never try to catch up after a stall.
            let next = self.cadence.unwrap_or(self.last_start) + self.period;
            return *self.cadence.insert(next.max(after));
        }
        if stale {
            return after + (self.step() - self.read_cost).max(0.0);
        }
        match self.last_update {
            Some(update) => (update + self.period - LEAD_STEPS * self.step()).max(after),
            // Not bracketed: the update came after the previous read, so the next one comes
            // no earlier than a period after it; polling from there brackets it again.
            None => {
                let previous = self.before_previous.unwrap_or(after);
                (previous + self.period - LEAD_STEPS * self.step()).max(after)
            }
        }
    }
}

/// Consecutive failed reads.
#[derive(Debug, Default)]
struct Errors {
    in_a_row: u32,
    since: Option<f64>,
}

impl Errors {
    /// Counts a read; returns why to give the sensor up, once it has failed for too long.
    fn record(&mut self, reading: &Result<Reading, String>, at: f64) -> Option<String> {
        let Err(e) = reading else {
            *self = Self::default();
            return None;
        };
        self.in_a_row += 1;
        let since = *self.since.get_or_insert(at);
        (at - since >= GIVE_UP_AFTER_S).then(|| {
            format!(
                "{} failed reads over {:.1} s: {e}",
                self.in_a_row,
                at - since
            )
        })
    }

    /// After a run of errors, when to try again.
    fn retry_at(&self, after: f64) -> Option<f64> {
        (self.in_a_row >= BACKOFF_AFTER_ERRORS).then_some(after + RETRY_EVERY_S)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use anyhow::Result;

    fn info() -> SensorInfo {
        SensorInfo {
            kind: "test".into(),
            rail: "r".into(),
            origin: Origin::Simulated,
            detail: String::new(),
        }
    }

    /// A sensor on a shared virtual clock: a value updates every `period` (from `phase`),
    /// reads take `read_s`, and reads fail in `[fail_from, fail_until)`.
    struct Virtual {
        clock: Arc<ManualClock>,
        period: f64,
        /// The period the sensor claims (what NVML measured at open, say).
        claimed: f64,
        phase: f64,
        read_s: f64,
        last_update: i64,
        fail: (f64, f64),
        centre_offset_s: f64,
    }

    impl Virtual {
        fn new(clock: &Arc<ManualClock>, period: f64) -> Self {
            Self {
                clock: Arc::clone(clock),
                period,
                claimed: period,
                phase: 0.0371,
                read_s: 0.0,
                last_update: -1,
                fail: (f64::INFINITY, f64::INFINITY),
                centre_offset_s: 0.0,
            }
        }
    }

    impl PowerSensor for Virtual {
        fn info(&self) -> &SensorInfo {
            static INFO: std::sync::OnceLock<SensorInfo> = std::sync::OnceLock::new();
            INFO.get_or_init(info)
        }
        fn update_period(&self) -> Duration {
            Duration::from_secs_f64(self.claimed)
        }
        fn read(&mut self) -> Result<Reading> {
            let now = self.clock.now();
            self.clock.sleep_until(now + self.read_s);
            if (self.fail.0..self.fail.1).contains(&now) {
                anyhow::bail!("no acknowledge");
            }
            let k = ((now - self.phase) / self.period).floor() as i64;
            let stale = k == self.last_update;
            self.last_update = k;
            Ok(Reading {
                // The value is the update's number, so a test can tell which one it saw.
                watts: k as f64,
                stale,
                centre_offset_s: self.centre_offset_s,
                ..Reading::default()
            })
        }
    }

    fn run_until(sensor: Virtual, clock: &Arc<ManualClock>, until: f64) -> SensorLog {
        sample(Box::new(sensor), clock.as_ref(), move |now| {
            (now >= until).then_some(until)
        })
    }

    fn fresh(log: &SensorLog) -> Vec<(f64, f64)> {
        log.samples
            .iter()
            .filter_map(|s| match &s.reading {
                Ok(r) if !r.stale => Some((s.t, r.watts)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_counter_is_caught_within_a_step_of_every_update_without_drift() {
        // NVML on an H200: 100 ms updates, a read costs 4 ms; the sensor's own estimate of
        // the period is 2 % off (the sampler measures the real one from its brackets).
        let clock = Arc::new(ManualClock::new(0.0));
        let mut sensor = Virtual::new(&clock, 0.1);
        sensor.read_s = 0.004;
        sensor.claimed = 0.102;
        let log = run_until(sensor, &clock, 30.0);
        let fresh = fresh(&log);
        // Every update from the first to the last is seen once, in order.
        let first = fresh[0].1 as i64;
        for (i, (_, k)) in fresh.iter().enumerate() {
            assert_eq!(*k as i64, first + i as i64, "update missed or repeated");
        }
        assert!(fresh.len() >= 299, "{}", fresh.len());
        // After locking on (the first second), each stamp is within a read of the update.
        let mut worst: f64 = 0.0;
        for (t, k) in fresh.iter().filter(|(t, _)| *t > 1.0) {
            let update = 0.0371 + k * 0.1;
            worst = worst.max((t - update).abs());
        }
        assert!(worst <= 0.0061, "stamps up to {worst} s from the update");
        // About 3 reads per update (two polls of lead, then the fresh one), not a busy loop.
        assert!(log.samples.len() < 4 * fresh.len(), "{}", log.samples.len());
    }

    #[test]
    fn streaming_hands_every_reading_over_in_batches_and_keeps_none() {
        let run = |hand: bool| {
            let clock = Arc::new(ManualClock::new(0.0));
            let mut sensor = Virtual::new(&clock, 0.001);
            sensor.read_s = 0.0005;
            let mut batches: Vec<(f64, Vec<Sample>, bool)> = Vec::new();
            let mut hand_off = |b: &mut Vec<Sample>, _: Option<&str>, last: bool| {
                batches.push((clock.now(), std::mem::take(b), last));
            };
            let log = sample_with(
                Box::new(sensor),
                clock.as_ref(),
                |now| (now >= 3.0).then_some(3.0),
                hand.then_some(&mut hand_off as HandOff),
            );
            (log, batches)
        };
        let (kept, _) = run(false);
        let (log, batches) = run(true);
        assert!(log.samples.is_empty());
        // About one batch per hand-off interval, the last marked, and nothing lost or reordered.
        let n = batches.len();
        assert!((12..=14).contains(&n), "{n} batches");
        assert!(batches[..n - 1].iter().all(|b| !b.2) && batches[n - 1].2);
        for w in batches.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(
                w[1].2 || (HAND_OFF_EVERY_S..HAND_OFF_EVERY_S + 0.01).contains(&gap),
                "{gap}"
            );
        }
        let handed: Vec<Sample> = batches.into_iter().flat_map(|b| b.1).collect();
        assert_eq!(handed, kept.samples);
    }

    #[test]
    fn averaged_values_are_stamped_at_their_centre() {
        let clock = Arc::new(ManualClock::new(0.0));
        let mut sensor = Virtual::new(&clock, 0.1362);
        sensor.read_s = 0.00048;
        sensor.centre_offset_s = 0.102;
        let log = run_until(sensor, &clock, 5.0);
        for (t, k) in fresh(&log).iter().filter(|(t, _)| *t > 1.0) {
            let centre = 0.0371 + k * 0.1362 - 0.102;
            assert!((t - centre).abs() < 0.005, "{t} vs {centre}");
        }
    }

    #[test]
    fn a_slowed_sensor_is_read_at_most_at_its_slower_rate() {
        let clock = Arc::new(ManualClock::new(0.0));
        let mut sensor = Virtual::new(&clock, 0.001);
        sensor.read_s = 0.0005;
        let slowed = slowed(Box::new(sensor), Duration::from_millis(250));
        assert_eq!(slowed.update_period(), Duration::from_millis(250));
        let log = sample(slowed, clock.as_ref(), |now| (now >= 10.0).then_some(10.0));
        // The probe pair at the start, then one read every 250 ms, each fresh.
        let reads = log.samples.len();
        assert!((40..=44).contains(&reads), "{reads}");
        assert_eq!(fresh(&log).len(), reads);
    }

    #[test]
    fn one_fresh_reading_follows_the_stop() {
        let clock = Arc::new(ManualClock::new(0.0));
        let log = run_until(Virtual::new(&clock, 0.1), &clock, 2.0);
        let fresh = fresh(&log);
        let last = fresh.last().unwrap().0;
        assert!(last > 2.0 && last < 2.0 + 0.1 + 0.01, "{last}");
        assert!(fresh[fresh.len() - 2].0 <= 2.0);
    }

    #[test]
    fn sensors_that_never_go_stale_keep_their_cadence() {
        struct Steady;
        impl PowerSensor for Steady {
            fn info(&self) -> &SensorInfo {
                static INFO: std::sync::OnceLock<SensorInfo> = std::sync::OnceLock::new();
                INFO.get_or_init(info)
            }
            fn update_period(&self) -> Duration {
                Duration::from_millis(100)
            }
            fn read(&mut self) -> Result<Reading> {
                Ok(Reading::default())
            }
        }
        let clock = ManualClock::new(0.0);
        let log = sample(Box::new(Steady), &clock, |now| (now >= 1.0).then_some(1.0));
        let times: Vec<f64> = log.samples.iter().map(|s| s.t).collect();
        // The probe at 0 (never stale: no phase lock), 0, 0.1, ... 1.0 (within rounding),
        // then one read as soon as the stop is noticed, which is the fresh reading past it.
        let (last, rest) = times.split_last().unwrap();
        let (probe, cadence) = rest.split_first().unwrap();
        assert_eq!((*probe, cadence.len()), (0.0, 11), "{times:?}");
        assert!(cadence.windows(2).all(|w| (w[1] - w[0] - 0.1).abs() < 1e-9));
        assert!(
            *last > 1.0 && *last <= 1.0 + WAKE_EVERY_S + 1e-9,
            "{times:?}"
        );
    }

    #[test]
    fn a_sensor_that_drops_out_for_a_while_is_retried_and_kept() {
        let clock = Arc::new(ManualClock::new(0.0));
        let mut sensor = Virtual::new(&clock, 0.001);
        sensor.read_s = 0.0005;
        sensor.fail = (1.0, 1.5);
        let log = run_until(sensor, &clock, 3.0);
        assert!(log.failure.is_none());
        let errors = log.samples.iter().filter(|s| s.reading.is_err()).count();
        // Backing off: 20 at the sensor's rate, then one every 10 ms, not 500 ms' worth.
        assert!(
            (BACKOFF_AFTER_ERRORS as usize + 45..BACKOFF_AFTER_ERRORS as usize + 55)
                .contains(&errors),
            "{errors}"
        );
        let after: Vec<_> = fresh(&log).into_iter().filter(|(t, _)| *t > 1.6).collect();
        assert!(after.len() > 1000, "{}", after.len());
    }

    #[test]
    fn a_sensor_that_keeps_failing_is_given_up_and_keeps_its_samples() {
        let clock = Arc::new(ManualClock::new(0.0));
        let mut sensor = Virtual::new(&clock, 0.001);
        sensor.read_s = 0.0005;
        sensor.fail = (0.5, f64::INFINITY);
        let log = run_until(sensor, &clock, 60.0);
        let failure = log.failure.as_deref().unwrap();
        assert!(failure.contains("no acknowledge"), "{failure}");
        let gave_up_at = log.samples.last().unwrap().t;
        assert!(
            (0.5 + GIVE_UP_AFTER_S..0.5 + GIVE_UP_AFTER_S + 0.02).contains(&gave_up_at),
            "{gave_up_at}"
        );
        assert!(fresh(&log).len() > 400);
    }

    #[test]
    fn the_real_sampler_reads_at_about_the_sensor_rate_and_stops_after_a_fresh_read() {
        struct Counting(u32);
        impl PowerSensor for Counting {
            fn info(&self) -> &SensorInfo {
                static INFO: std::sync::OnceLock<SensorInfo> = std::sync::OnceLock::new();
                INFO.get_or_init(info)
            }
            fn update_period(&self) -> Duration {
                Duration::from_millis(2)
            }
            fn read(&mut self) -> Result<Reading> {
                self.0 += 1;
                Ok(Reading {
                    watts: 5.0,
                    ..Reading::default()
                })
            }
        }
        let clock = RunClock::start();
        let sampler = Sampler::start(vec![Box::new(Counting(0))], clock);
        std::thread::sleep(Duration::from_millis(200));
        let stopped_at = clock.now();
        let logs = sampler.stop();
        let samples = &logs[0].samples;
        assert!(samples.windows(2).all(|w| w[0].t < w[1].t));
        // 2 ms period over 200 ms: about 100 reads; generous bounds for a loaded machine.
        assert!((20..=115).contains(&samples.len()), "{}", samples.len());
        assert!(samples.last().unwrap().t >= stopped_at);
        assert!(logs[0].failure.is_none());
    }
}
