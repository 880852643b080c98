//! The sampler: one thread per sensor, reading at the sensor's own update rate and stamping
//! every reading on the run clock.
//!
//! Readings are kept in the thread and handed back when the sampler stops, so the timed loop
//! on the other core never contends for a lock. A run that streams its results instead hands
//! them, every [`HAND_OFF_EVERY_S`], to the writer thread through a channel whose send never
//! blocks (`joulebench::output::stream`).
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
//!
//! Nothing here spins: between reads a thread sleeps to an absolute deadline
//! ([`crate::clock::sleep_until_monotonic`]), and where the process may (root, or
//! CAP_SYS_NICE) it raises only itself to SCHED_FIFO so a wake-up is not queued behind the
//! backend's threads ([`SensorLog::realtime`] says whether it did). A wake-up that still comes
//! late costs no update: once locked on, every read narrows where the updates lie (a fresh
//! value came after the read before it and by this one; the last update, moved on by whole
//! periods, narrows that further), so a late fresh value is still stamped close to its
//! update, and an update is lost only when a wake-up is later than [`wake_slack`], most of a
//! period (an averaged INA219's conversion, a counter's update).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::HAND_OFF_EVERY_S;
use crate::clock::{RunClock, TimeSource};
#[cfg(test)]
use crate::sensor::Origin;
use crate::sensor::{HelperCpu, PowerSensor, ReadError, Reading, SensorInfo};

/// After this many failed reads in a row a sensor is retried every [`RETRY_EVERY_S`] rather
/// than at its own rate, so a dead bus is not hammered, and a chip that comes back is read
/// again within that time ...
const BACKOFF_AFTER_ERRORS: u32 = 20;
const RETRY_EVERY_S: f64 = 0.01;
/// ... and only after failing continuously for this long is it given up for the rest of the
/// run. The gap it leaves is the validity check's business: a window it hurts is invalid.
pub const GIVE_UP_AFTER_S: f64 = 5.0;

/// In phase lock, reads after a stale one start this fraction of a period apart (or back to
/// back, where a read takes longer), and the first read of a bracket is aimed [`LEAD_STEPS`]
/// of them before the earliest instant the track allows for the update (before it is due,
/// where nothing is tracked yet): enough to absorb the period's own error.
const STEP_FRACTION: f64 = 1.0 / 32.0;
const LEAD_STEPS: f64 = 1.0;

/// One update in this many is bracketed by polls (a stale read, then a fresh one a step
/// later); the others are read once, `AFTER_FRACTION` of a period after they are due, and
/// stamped from the track, which the brackets keep tight (the period is known to a bracket's
/// width over the chain's length, so a track carried 16 periods widens by about a step).
/// Polls are most of a sampler's reads: bracketing every update takes about three reads per
/// update, this about one and an eighth.
const BRACKET_EVERY: u32 = 16;

/// How far past its expected instant an update is read when it is not bracketed: late
/// enough that an error in the track cannot put the read before it, early enough to leave
/// most of the period for a late wake-up.
const AFTER_FRACTION: f64 = 0.25;

/// A track no wider than this many poll steps (plus a read) brackets its update: the schedule
/// polls a step apart around an update, so an on-time bracket is one step wide.
const TIGHT_STEPS: f64 = 2.0;

/// Tight brackets at most this many periods apart refine the period: counting the periods
/// between them is safe while the estimate is within 3 % (16 × 3 % is half a period).
const PERIOD_SPAN: f64 = 16.0;

/// Periods a chain of brackets spans before the period is taken as its length over its count.
const LONG_BASELINE: f64 = 16.0;

/// How late a sampler wake-up may come without losing an update: a read aimed
/// `AFTER_FRACTION` of a period after an update (or `LEAD_STEPS` before it) still lands
/// before the next one while it is late by less than the rest of the period less the read
/// itself (the default INA219, 34.58 ms conversions with 0.5 ms reads: 25 ms; NVML's 100 ms
/// counter with 4 ms reads: 71 ms). Its value is then stamped at
/// where the reads so far place it (`Schedule::narrow`), so nothing is lost but a bracket.
pub fn wake_slack(period: Duration, read_cost: Duration) -> Duration {
    period
        .mul_f64(1.0 - AFTER_FRACTION)
        .saturating_sub(read_cost)
}

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
    /// The values, or why the read returned none.
    pub reading: Result<Reading, ReadError>,
}

/// Everything one sensor produced during a run.
#[derive(Debug, Clone)]
pub struct SensorLog {
    pub info: SensorInfo,
    pub update_period: Duration,
    pub samples: Vec<Sample>,
    /// Set when the sensor was given up mid-run (failing for [`GIVE_UP_AFTER_S`]).
    pub failure: Option<String>,
    /// Set for an `optional` sensor that did not open, which the run went on without: why.
    /// It has no readings and no sampler thread.
    pub missing: Option<String>,
    /// The sensor's own relative uncertainty of energy ([`PowerSensor::uncertainty`]).
    pub uncertainty: Option<f64>,
    /// CPU time the sampler thread used.
    pub cpu_time: Duration,
    /// Whether the sampler thread ran at a real-time priority (SCHED_FIFO): only where the
    /// process is allowed to raise it.
    pub realtime: bool,
    /// Whether the sensor's values each average its whole update period
    /// ([`PowerSensor::integrates`]).
    pub integrating: bool,
    /// Whether its energy can be cross-checked against instant power
    /// ([`PowerSensor::crosscheck`]).
    pub crosscheck: Option<crate::sensor::Crosscheck>,
    /// The shortest window the sensor can measure ([`PowerSensor::min_window`]), seconds.
    pub min_window_s: Option<f64>,
    /// What the sensor can report at all ([`PowerSensor::limits`]).
    pub limits: crate::sensor::Limits,
}

impl SensorLog {
    /// What `sensor` says of itself, with no readings yet (and no CPU time, not real-time).
    pub fn of(sensor: &dyn PowerSensor) -> Self {
        Self {
            info: sensor.info().clone(),
            update_period: sensor.update_period(),
            samples: Vec::new(),
            failure: None,
            missing: None,
            uncertainty: sensor.uncertainty(),
            cpu_time: Duration::ZERO,
            realtime: false,
            integrating: sensor.integrates(),
            crosscheck: sensor.crosscheck(),
            min_window_s: sensor.min_window().map(|d| d.as_secs_f64()),
            limits: sensor.limits(),
        }
    }
}

impl From<crate::sensor::Missing> for SensorLog {
    /// The log of a sensor that did not open: no readings, and why.
    fn from(missing: crate::sensor::Missing) -> Self {
        Self {
            info: missing.info,
            update_period: Duration::ZERO,
            samples: Vec::new(),
            failure: None,
            missing: Some(missing.why),
            uncertainty: None,
            cpu_time: Duration::ZERO,
            realtime: false,
            integrating: false,
            crosscheck: None,
            min_window_s: None,
            limits: crate::sensor::Limits::default(),
        }
    }
}

/// Running sampler threads.
pub struct Sampler {
    /// The run-clock time a stop was asked for, as f64 bits; NaN while running.
    stop_at: Arc<AtomicU64>,
    clock: RunClock,
    threads: Vec<JoinHandle<SensorLog>>,
    /// Each thread's CPU-time clock, taken while it runs.
    cpu_clocks: Vec<Option<libc::clockid_t>>,
    /// Each sensor's CPU outside its thread ([`PowerSensor::helper_cpu`]), where it has any.
    helpers: Vec<Option<HelperCpu>>,
}

/// Where sampler threads hand their readings while a run streams them to disk (the writer
/// thread of `joulebench::output::stream`). A hand-off must return at once: the thread is
/// timing a sensor.
pub trait SampleSink: Send + Sync {
    /// Sensor `sensor`'s new readings; `last` with its final batch (and why it gave the sensor
    /// up, if it did).
    fn samples(&self, sensor: usize, batch: Vec<Sample>, failure: Option<String>, last: bool);
}

impl Sampler {
    /// Starts one thread per sensor.
    pub fn start(sensors: Vec<Box<dyn PowerSensor>>, clock: RunClock) -> Self {
        Self::start_with(sensors, clock, None)
    }

    /// Starts one thread per sensor; with a sink, each hands its readings to it in batches
    /// and keeps none (its log's `samples` come back empty).
    pub fn start_with(
        sensors: Vec<Box<dyn PowerSensor>>,
        clock: RunClock,
        feed: Option<Arc<dyn SampleSink>>,
    ) -> Self {
        let stop_at = Arc::new(AtomicU64::new(f64::NAN.to_bits()));
        // CPU a sensor's reads use in processes of their own, which no thread clock counts.
        let helpers: Vec<Option<HelperCpu>> = sensors.iter().map(|s| s.helper_cpu()).collect();
        let threads = sensors
            .into_iter()
            .enumerate()
            .map(|(index, sensor)| {
                let stop_at = Arc::clone(&stop_at);
                let feed = feed.clone();
                let helper = helpers[index].clone();
                std::thread::Builder::new()
                    .name("joulebench-sampler".into())
                    .spawn(move || {
                        precise_sleeps();
                        let realtime = realtime_priority();
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
                        log.cpu_time = cpu_start.elapsed() + helper_time(helper.as_ref());
                        log.realtime = realtime;
                        log
                    })
                    .expect("spawning a thread")
            })
            .collect::<Vec<_>>();
        let cpu_clocks = threads
            .iter()
            .map(|t| {
                use std::os::unix::thread::JoinHandleExt;
                cpu_clock(t.as_pthread_t())
            })
            .collect();
        Self {
            stop_at,
            clock,
            threads,
            cpu_clocks,
            helpers,
        }
    }

    /// A meter of each sampler thread's CPU clock (seconds used so far, in sensor order; NaN
    /// for a thread that has ended), for [`crate::clock::PhaseLog::meter_with`]. A thread's
    /// CPU clock can be read from any thread of the process, so the runner reads it at phase
    /// edges and the sampling loop itself does no extra work.
    pub fn cpu_meter(&self) -> crate::clock::CpuMeter {
        let clocks = self.cpu_clocks.clone();
        let helpers = self.helpers.clone();
        Box::new(move || {
            clocks
                .iter()
                .zip(&helpers)
                .map(|(c, helper)| {
                    let thread = c.and_then(crate::clock::clock_seconds).unwrap_or(f64::NAN);
                    thread + helper_time(helper.as_ref()).as_secs_f64()
                })
                .collect()
        })
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

/// The CPU time a sensor's helper processes used so far.
fn helper_time(helper: Option<&HelperCpu>) -> Duration {
    helper.map_or(Duration::ZERO, |h| {
        Duration::from_nanos(h.load(Ordering::Relaxed))
    })
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
    fn helper_cpu(&self) -> Option<HelperCpu> {
        self.sensor.helper_cpu()
    }
    // Read less often than it updates, it no longer sees every period: not `integrates`.
}

/// Linux lets a normal thread's sleep overshoot by its timer slack (50 µs by default); a
/// sampler polling every millisecond needs its wake-ups where it asked for them.
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// The CPU-time clock of a thread of this process, or None.
fn cpu_clock(thread: libc::pthread_t) -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `thread` comes from a JoinHandle not yet joined (a live or exited-but-unjoined
    // thread, which pthread_getcpuclockid accepts); the call writes only `clock`.
    (unsafe { libc::pthread_getcpuclockid(thread, &mut clock) } == 0).then_some(clock)
}

/// The SCHED_FIFO priority a sampler thread asks for: the lowest real-time one, above every
/// normal thread (the backend's) and below the kernel's own real-time work.
const REALTIME_PRIORITY: libc::c_int = 1;

/// Raises the calling thread, and only it, to SCHED_FIFO; false where the process may not
/// (not root, no CAP_SYS_NICE, an RLIMIT_RTPRIO of 0). The thread sleeps between reads, so it
/// takes a core only for a read's few microseconds, and never starves the backend.
fn realtime_priority() -> bool {
    let param = libc::sched_param {
        sched_priority: REALTIME_PRIORITY,
    };
    // SAFETY: pthread_self names the calling thread; the call reads `param` only.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

/// The niceness of threads that only write or watch (the results writer, the soak monitor).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread to [`BACKGROUND_NICE`]. The backend may keep every core busy;
/// a writer at the same priority then competes with a sampler that could not be made
/// real-time for the time slices after its wake-ups. At nice 10 it gets about a tenth of the
/// share of a nice-0 thread, enough for its rows, and the sampler's wake-ups come first. A failure leaves the thread as
/// it was (nothing to report: it only costs readings, which the validity checks count).
pub fn background_priority() {
    // SAFETY: the gettid system call has no preconditions (called through syscall(2): glibc
    // has a gettid() only from 2.30, and the release binaries run on 2.27); setpriority with
    // PRIO_PROCESS and a thread id changes only that thread's nice value on Linux.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE);
    }
}

/// Reads `sensor` on `clock` until `stop_requested(now)` returns the time a stop was asked
/// for and a fresh reading stamped after it has been taken (or `TAIL_PERIODS` have passed).
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
    let mut errors = Errors {
        // A read that runs a process (rpi-pmic's vcgencmd) costs that process at every retry:
        // such a sensor is retried at its own rate, not faster.
        retry_every: match sensor.helper_cpu() {
            Some(_) => nominal.max(RETRY_EVERY_S),
            None => RETRY_EVERY_S,
        },
        ..Errors::default()
    };
    loop {
        let before = clock.now();
        let reading = sensor.read().map_err(|e| ReadError::of(&e));
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
        samples,
        failure,
        ..SensorLog::of(sensor.as_ref())
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
    /// The sensor's update period: nominal at first, then measured from tight brackets.
    period: f64,
    nominal: f64,
    /// The sensor has reported a stale reading: its updates can be bracketed.
    locking: bool,
    /// Middle of the latest read, and whether it was stale.
    previous: Option<(f64, bool)>,
    /// Middle of the read before that.
    before_previous: Option<f64>,
    /// Estimated instant of the last update (the middle of `track`), where one is known.
    last_update: Option<f64>,
    /// Where the latest update can lie, `(lo, hi]`, given every read so far: each fresh read
    /// says it came after the read before and by this one; the previous track, moved on by
    /// whole periods, narrows that further. Tight when a stale read and a fresh one bracket the
    /// update, and still close when a read came late.
    track: Option<(f64, f64)>,
    /// Tight brackets, whole periods apart, that measure the period.
    chain: Option<Chain>,
    /// Updates read since the last tight bracket.
    since_bracket: u32,
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
            track: None,
            chain: None,
            since_bracket: 0,
            read_cost: 0.0,
            last_start: 0.0,
            cadence: None,
        }
    }

    /// Whether the next update should be bracketed by polls: the track is no longer tight,
    /// or [`BRACKET_EVERY`] updates have passed since the last tight bracket.
    fn bracket_due(&self) -> bool {
        let wide = self.track.map_or(true, |(lo, hi)| hi - lo > self.tight());
        wide || self.since_bracket + 1 >= BRACKET_EVERY
    }

    /// The widest bracket or track that still pins an update down ([`TIGHT_STEPS`]).
    fn tight(&self) -> f64 {
        TIGHT_STEPS * self.step() + self.read_cost
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
            // The update came after the previous read (which showed the one before, or none
            // new) and by this one. Once the sensor can say "stale", that is a bracket.
            Some((at, stale)) if self.locking || stale => {
                // A bracket of its own (not narrowed by the carried track, which the period
                // estimate moved) measures the period.
                if mid - at <= self.tight() {
                    self.refine_period((at + mid) / 2.0);
                    self.since_bracket = 0;
                } else {
                    self.since_bracket += 1;
                }
                let (lo, hi) = self.narrow(at, mid);
                let update = (lo + hi) / 2.0;
                self.last_update = Some(update);
                update
            }
            // No bracket: a sensor that never reads stale, or the first reads.
            _ => {
                self.last_update = None;
                mid
            }
        };
        update - r.centre_offset_s
    }

    /// The track after a fresh read whose update came in `(from, to]`: that interval, narrowed
    /// by the previous track moved on by the whole periods between them (widened a little for
    /// each, for the period's own error); just the interval where they do not meet (the
    /// period estimate was off, or the sensor restarted).
    fn narrow(&mut self, from: f64, to: f64) -> (f64, f64) {
        let mut track = (from, to);
        if let Some((lo, hi)) = self.track {
            let periods = (((from + to) - (lo + hi)) / 2.0 / self.period)
                .round()
                .max(1.0);
            let slack = periods * self.period_uncertainty();
            let moved = (
                lo + periods * self.period - slack,
                hi + periods * self.period + slack,
            );
            let met = (track.0.max(moved.0), track.1.min(moved.1));
            if met.0 < met.1 {
                track = met;
            }
        }
        self.track = Some(track);
        track
    }

    /// How far the period estimate may be off, seconds: a bracket's width spread over the
    /// periods of the chain that measured it; before the chain is [`LONG_BASELINE`] long, as
    /// far as the estimate may stray from the sensor's own figure (20 %), so a carried track
    /// says nothing and every update is bracketed.
    fn period_uncertainty(&self) -> f64 {
        match self.chain {
            Some(chain) if chain.periods >= LONG_BASELINE => {
                (self.step() + self.read_cost) / chain.periods
            }
            _ => 0.2 * self.nominal,
        }
    }

    /// Refines the period from a tight bracket: whole periods after the last one, counted
    /// along a chain of brackets from the first, so the estimate is the time since the first
    /// over the periods since (its error shrinks with each period), once the chain is
    /// [`LONG_BASELINE`] periods long; before that, moved an eighth of the way to each
    /// interval. Never far from what the sensor says.
    fn refine_period(&mut self, update: f64) {
        let Some(chain) = self.chain.as_mut() else {
            self.chain = Some(Chain::at(update));
            return;
        };
        let periods = ((update - chain.last) / self.period).round();
        let interval = (update - chain.last) / periods;
        if !(1.0..=PERIOD_SPAN).contains(&periods)
            || !(0.5 * self.period..1.5 * self.period).contains(&interval)
        {
            // A missed update counted wrong, or the sensor restarted: start a new chain.
            self.chain = Some(Chain::at(update));
            return;
        }
        chain.last = update;
        chain.periods += periods;
        self.period = if chain.periods >= LONG_BASELINE {
            (update - chain.first) / chain.periods
        } else {
            self.period + (interval - self.period) / 8.0
        };
        self.period = self.period.clamp(0.8 * self.nominal, 1.2 * self.nominal);
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
            // Until an update has been seen, it may be anywhere in the next period: look for
            // it in eighths of one, then bracket the next one finely from there.
            let step = match self.track {
                None => self.period / 8.0,
                Some(_) => self.step(),
            };
            return after + (step - self.read_cost).max(0.0);
        }
        match (self.last_update, self.track) {
            // Bracket the next update where the track has grown wide, and every
            // [`BRACKET_EVERY`] updates anyway: polling from before its earliest instant.
            (Some(_), Some((lo, _))) if self.bracket_due() => {
                (lo + self.period - LEAD_STEPS * self.step()).max(after)
            }
            // Otherwise read once, well after it is due: no poll, and the most room for a
            // late wake-up.
            (Some(update), _) => (update + self.period * (1.0 + AFTER_FRACTION)).max(after),
            // Not bracketed: the update came after the previous read, so the next one comes
            // no earlier than a period after it; polling from there brackets it again.
            (None, _) => {
                let previous = self.before_previous.unwrap_or(after);
                (previous + self.period - LEAD_STEPS * self.step()).max(after)
            }
        }
    }
}

/// Updates bracketed tightly, counted in whole periods from the first.
#[derive(Debug, Clone, Copy)]
struct Chain {
    first: f64,
    last: f64,
    periods: f64,
}

impl Chain {
    fn at(update: f64) -> Self {
        Self {
            first: update,
            last: update,
            periods: 0.0,
        }
    }
}

/// Consecutive failed reads.
#[derive(Debug, Default)]
struct Errors {
    in_a_row: u32,
    since: Option<f64>,
    /// Seconds between retries once backing off: [`RETRY_EVERY_S`], or the sensor's period.
    retry_every: f64,
}

impl Errors {
    /// Counts a read; returns why to give the sensor up, once it has failed for too long.
    fn record(&mut self, reading: &Result<Reading, ReadError>, at: f64) -> Option<String> {
        let Err(e) = reading else {
            (self.in_a_row, self.since) = (0, None);
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
        (self.in_a_row >= BACKOFF_AFTER_ERRORS).then_some(after + self.retry_every)
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

    /// The sampler's clock, whose sleeps overshoot by up to `max_late` s (a loaded machine's
    /// wake-ups); reads take their time on the inner clock, exactly.
    struct LateWakeups {
        clock: Arc<ManualClock>,
        max_late: f64,
        rng: std::sync::Mutex<rand::rngs::StdRng>,
    }

    impl TimeSource for LateWakeups {
        fn now(&self) -> f64 {
            self.clock.now()
        }
        fn sleep_until(&self, t: f64) {
            use rand::Rng;
            // A fixed seed: the same lateness pattern on every machine.
            let u: f64 = self.rng.lock().unwrap().random();
            self.clock.sleep_until(t + u * self.max_late);
        }
    }

    #[test]
    fn wake_ups_late_by_up_to_the_slack_lose_no_update() {
        // The default INA219's pace: a 34.58 ms update (avg64 shunt + 12-bit bus), 0.48 ms
        // reads at 100 kHz.
        let (period, read_s) = (0.03458, 0.00048);
        let slack = wake_slack(
            Duration::from_secs_f64(period),
            Duration::from_secs_f64(read_s),
        )
        .as_secs_f64();
        assert!((slack - (0.75 * period - read_s)).abs() < 1e-9);
        let run = |max_late: f64| {
            let clock = Arc::new(ManualClock::new(0.0));
            let mut sensor = Virtual::new(&clock, period);
            sensor.read_s = read_s;
            let late = LateWakeups {
                clock: Arc::clone(&clock),
                max_late,
                rng: std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(7)),
            };
            let log = sample(Box::new(sensor), &late, |now| (now >= 20.0).then_some(20.0));
            fresh(&log)
        };
        let step = (period * STEP_FRACTION).max(read_s);
        // Every wake-up late by up to 90 % of the slack: no update lost, and every stamp
        // inside the interval its reads place it in (between the read before and its own).
        // Every wake-up late by up to 3 ms (a scheduler under load): stamps within a bracket
        // whose fresh poll came that late (a step, a read and the lateness wide).
        for (max_late, bound) in [(0.9 * slack, period), (0.003, 0.003 + step + read_s)] {
            let fresh = run(max_late);
            let first = fresh[0].1 as i64;
            for (i, (_, k)) in fresh.iter().enumerate() {
                assert_eq!(*k as i64, first + i as i64, "update missed or repeated");
            }
            let mut worst: f64 = 0.0;
            for (t, k) in fresh.iter().filter(|(t, _)| *t > 1.0) {
                worst = worst.max((t - (0.0371 + k * period)).abs());
            }
            println!(
                "wake-ups late by up to {:.1} ms: stamps at most {:.3} ms off",
                max_late * 1e3,
                worst * 1e3
            );
            assert!(worst <= bound, "stamps up to {worst} s off");
        }
        // Past the slack, updates are lost: the bound is the schedule's, not the test's.
        let beyond = run(2.5 * period);
        let seen = beyond.last().unwrap().1 - beyond[0].1 + 1.0;
        assert!(
            (beyond.len() as f64) < 0.9 * seen,
            "{} of {seen}",
            beyond.len()
        );
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

    /// A sensor whose every read runs a process (rpi-pmic) is retried at its own period while
    /// it fails, not every 10 ms: each retry would cost a process.
    #[test]
    fn a_failing_sensor_that_runs_a_process_per_read_is_retried_at_its_own_rate() {
        struct Spawning(Virtual);
        impl PowerSensor for Spawning {
            fn info(&self) -> &SensorInfo {
                self.0.info()
            }
            fn update_period(&self) -> Duration {
                self.0.update_period()
            }
            fn read(&mut self) -> Result<Reading> {
                self.0.read()
            }
            fn helper_cpu(&self) -> Option<HelperCpu> {
                Some(HelperCpu::default())
            }
        }
        let failed = |spawning: bool| {
            let clock = Arc::new(ManualClock::new(0.0));
            let mut sensor = Virtual::new(&clock, 0.1);
            sensor.fail = (0.5, f64::INFINITY);
            let sensor: Box<dyn PowerSensor> = if spawning {
                Box::new(Spawning(sensor))
            } else {
                Box::new(sensor)
            };
            let log = sample(sensor, clock.as_ref(), |now| (now >= 60.0).then_some(60.0));
            assert!(log.failure.is_some());
            log.samples.iter().filter(|s| s.reading.is_err()).count()
        };
        // 5 s of failures: the 20 before the back-off at the schedule's pace, then one a
        // period, about 50 (a sensor read in its thread is retried every 10 ms: over 400).
        let spawning = failed(true);
        let most = BACKOFF_AFTER_ERRORS as usize + 55;
        assert!((45..=most).contains(&spawning), "{spawning}");
        assert!(failed(false) > 400);
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

    /// A sensor whose reads run a helper process (rpi-pmic's vcgencmd) counts that CPU
    /// itself; the sampler adds it to the thread's, in the log and in the meter the runner
    /// reads at phase edges.
    #[test]
    fn cpu_spent_in_a_sensors_helper_processes_counts_as_the_samplers() {
        /// Each read "spends" a second in a helper: far more than the thread's own time.
        struct Helped(HelperCpu);
        impl PowerSensor for Helped {
            fn info(&self) -> &SensorInfo {
                static INFO: std::sync::OnceLock<SensorInfo> = std::sync::OnceLock::new();
                INFO.get_or_init(info)
            }
            fn update_period(&self) -> Duration {
                Duration::from_millis(5)
            }
            fn read(&mut self) -> Result<Reading> {
                self.0.fetch_add(1_000_000_000, Ordering::Relaxed);
                Ok(Reading {
                    watts: 5.0,
                    ..Reading::default()
                })
            }
            fn helper_cpu(&self) -> Option<HelperCpu> {
                Some(self.0.clone())
            }
        }
        let helper = HelperCpu::default();
        let sampler = Sampler::start(vec![Box::new(Helped(helper.clone()))], RunClock::start());
        std::thread::sleep(Duration::from_millis(50));
        let metered = (sampler.cpu_meter())()[0];
        let logs = sampler.stop();
        let reads = logs[0].samples.len() as f64;
        assert!(metered >= 1.0, "{metered} s metered");
        assert!(
            logs[0].cpu_time.as_secs_f64() >= reads,
            "{:?} for {reads} reads",
            logs[0].cpu_time
        );
        assert_eq!(
            Duration::from_nanos(helper.load(Ordering::Relaxed)),
            Duration::from_secs(reads as u64)
        );
    }
}
