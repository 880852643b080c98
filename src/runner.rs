//! The runner: takes a rig from file to measurements.
//!
//! Everything that can fail before measuring (rig, models, backends, sensors) is opened
//! first, so a missing model or an absent I2C bus stops the run before it starts. Then the
//! sampler starts, the idle baseline is taken, and each backend goes through the protocol.
//! Whatever happens after that — Ctrl-C, a failed inference, a sensor that stops answering —
//! the runner returns what was measured.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backend::{self, Backend};
use crate::clock::{Phase, PhaseLog, RunClock, Slot};
use crate::input::{self, Labels};
use crate::models::{self, ResolvedImage, ResolvedModel};
use crate::plan::Plan;
use crate::protocol::{self, LatencySink, TimedRun};
use crate::rig::{BackendSpec, ProtocolSpec, Rig};
use crate::sampler::{Sample, SampleSink, Sampler, SensorLog};
use crate::sensor::nvml::{self, GpuProbe};
use crate::sensor::{self, Missing, PowerSensor, SensorContext};

/// How to run.
pub struct RunOptions {
    /// Set by Ctrl-C.
    pub interrupt: Arc<AtomicBool>,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
    /// Read the rig's sensors (off in the sampler-overhead benchmark).
    pub sample: bool,
    /// Repeat each backend's protocol until its equal share of this time has passed (the
    /// rig's `repeat` then only caps the repetitions): `joulebench soak`.
    pub time_budget: Option<Duration>,
}

/// A backend ready to run: model loaded, input encoded.
pub struct PreparedBackend {
    pub spec: BackendSpec,
    pub model: ResolvedModel,
    pub image: ResolvedImage,
    pub labels: Labels,
    pub backend: Box<dyn Backend>,
    pub input: Vec<u8>,
    /// Why the engine is not the default's, where it fell back ([`backend::Opened`]).
    pub engine_note: Option<String>,
}

/// A plan with everything opened.
pub struct Prepared {
    /// The plan as it runs: its windows lengthened for a slow sensor.
    pub plan: Plan,
    pub backends: Vec<PreparedBackend>,
    /// The rig's sensors in its order: opened, or an `optional` one that did not open.
    sensors: Vec<Result<Box<dyn PowerSensor>, Missing>>,
    /// One per NVML sensor, read at the edges of every timed window.
    gpus: Vec<GpuProbe>,
    clock: RunClock,
    phases: PhaseLog,
}

pub use crate::record::{BackendResult, RunRecord};
use crate::record::{RecordedImage, RecordedModel};

/// Where each backend's repetitions go while a run streams (the writer thread of
/// [`crate::output::stream`]); a hand-off must return at once.
pub trait RepetitionSink: Send + Sync {
    /// A backend as it starts, with the runs it ended so far (none from the runner), so that
    /// `run.json` names it: its model, image and labels cross once.
    fn backend(&self, backend: usize, result: BackendResult, at: f64);
    /// A repetition the backend ended, which the writer appends to its runs.
    fn repetition(&self, backend: usize, run: TimedRun, at: f64);
}

/// Where a streamed run's rows go as they are measured (the writer of
/// [`crate::output::stream`]): a handle for each kind of producer, and the run's record back
/// once they are done. It is started on the run's empty record, its phase log and its clock,
/// and holds that record while the run streams.
pub trait Stream {
    fn sample_sink(&self) -> Arc<dyn SampleSink>;
    fn latency_sink(&self) -> Arc<dyn LatencySink>;
    fn repetition_sink(&self) -> Arc<dyn RepetitionSink>;
    /// Once every handle is dropped: writes the last rows and hands back the record.
    fn finish(self: Box<Self>) -> Kept;
}

/// The record a stream was started on, as it kept it, and how its writing went.
pub struct Kept {
    /// Its sensors hold the readings no settled window accounts for; `settled` the windows
    /// settled along the way, and how many readings each sensor released.
    pub record: RunRecord,
    /// The first write that failed (the rest of the rows were then kept only in memory).
    pub error: Option<String>,
}

/// Starts a [`Stream`] on a run's empty record, phase log and clock.
pub type StartStream<'a> = &'a dyn Fn(RunRecord, PhaseLog, RunClock) -> Result<Box<dyn Stream>>;

/// Loads the backends and opens the sensors of a plan.
pub fn prepare(plan: Plan) -> Result<Prepared> {
    let mut plan = plan;
    let rig = &mut plan.rig;
    let clock = RunClock::start();
    let phases = PhaseLog::new();
    let backends = rig
        .backends
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            prepare_backend(spec).with_context(|| format!("backend {i} ({})", spec.kind().as_str()))
        })
        .collect::<Result<Vec<_>>>()?;
    let ctx = SensorContext::new(clock, phases.clone());
    let sensors = sensor::open_tables(&rig.sensors, &ctx)?;
    check_something_measures(&sensors)?;
    let opened = || sensors.iter().filter_map(|s| s.as_ref().ok());
    let gpus = nvml::probes(
        (rig.sensors.iter().enumerate())
            .filter(|(i, _)| sensors[*i].is_ok())
            .map(|(i, s)| (i, &s.spec)),
    )?;
    extend_for_slow_sensors(rig, &opened().map(|s| s.as_ref()).collect::<Vec<_>>());
    Ok(Prepared {
        plan,
        backends,
        sensors,
        gpus,
        clock,
        phases,
    })
}

/// Refuses a run whose `optional` sensors did not open and whose sensors that did measure
/// nothing (none opened, or only nominal figures): it would print no watts at all, or a
/// nameplate as the only figure. One line names each sensor that did not open and why. A rig
/// without sensors is an FPS-only run, as it says.
pub fn check_something_measures(sensors: &[Result<Box<dyn PowerSensor>, Missing>]) -> Result<()> {
    let missing: Vec<&Missing> = sensors.iter().filter_map(|s| s.as_ref().err()).collect();
    let measures = sensors
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .any(|s| s.info().origin != sensor::Origin::Nominal);
    if missing.is_empty() || measures {
        return Ok(());
    }
    anyhow::bail!(
        "no sensor of the rig measures: {}",
        missing
            .iter()
            .map(|m| format!(
                "sensor {} ({}) is optional and did not open: {}",
                m.info.kind, m.info.rail, m.why
            ))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// Timed runs span at least this many updates of the slowest sensor.
const MIN_SENSOR_UPDATES: f64 = 5.0;

/// A sensor that updates slowly (NVML's energy counter: about 11 times a second) cannot
/// resolve a timed run shorter than a few of its updates — 250 GPU inferences can take a
/// fraction of a second — so the timed run is extended to span [`MIN_SENSOR_UPDATES`] updates.
/// A sensor whose figures are long averages ([`PowerSensor::min_window`]) needs its windows
/// longer still: the timed run, and an idle baseline the rig asked for, are stretched to it.
fn extend_for_slow_sensors(rig: &mut Rig, sensors: &[&dyn PowerSensor]) {
    let slowest = sensors
        .iter()
        .map(|s| s.update_period().as_secs_f64())
        .fold(0.0, f64::max);
    let averaged = sensors
        .iter()
        .filter_map(|s| s.min_window())
        .map(|d| d.as_secs_f64())
        .fold(0.0, f64::max);
    let needed = (MIN_SENSOR_UPDATES * slowest).max(averaged);
    let p = &mut rig.protocol;
    if needed > p.min_duration_s.unwrap_or(0.0) {
        p.min_duration_s = Some(needed);
    }
    if rig.idle_baseline_s > 0.0 {
        rig.idle_baseline_s = rig.idle_baseline_s.max(averaged);
    }
}

/// Loads one backend of a rig: verified model and image, engine, encoded input.
pub fn prepare_backend(spec: &BackendSpec) -> Result<PreparedBackend> {
    let manifest = models::Manifest::load_default()?;
    let mut model = manifest.open_model(spec.model())?;
    if let Some(labels) = spec.labels() {
        // The rig's own file: its line i names output i.
        model.labels = Some(labels.to_path_buf());
        model.label_offset = 0;
    }
    let image = manifest.open_image(spec.image())?;
    let labels = match &model.labels {
        Some(path) => Labels::load(path, model.label_offset)?,
        None => Labels::default(),
    };
    backend::check::check(spec.kind(), &model.path, &labels, model.labels.as_deref())?;
    let backend::Opened { backend, fallback } = backend::open(spec, &model.path)?;
    let norm = model
        .input
        .as_ref()
        .map_or(input::Normalization::MOBILENET, |i| input::Normalization {
            mean: i.mean,
            std: i.std,
        });
    let input = backend::feed::prepare(backend.signature(), &image.path, norm)?;
    Ok(PreparedBackend {
        spec: spec.clone(),
        model,
        image,
        labels,
        backend,
        input,
        engine_note: fallback,
    })
}

impl PreparedBackend {
    /// Whether the backend's prediction is reported and checked: a classifier (one image in,
    /// one vector of scores out) with a label file to name its classes. Any other model's
    /// outputs are computed but not ranked; the summary says what it was fed instead.
    pub fn checks_prediction(&self) -> bool {
        self.backend.signature().classifier() && self.model.labels.is_some()
    }

    /// What the record keeps of this backend, with its `repetitions`.
    fn result(&self, repetitions: Vec<TimedRun>) -> BackendResult {
        BackendResult {
            spec: self.spec.clone(),
            model: RecordedModel::of(&self.model),
            image: RecordedImage::of(&self.image, &self.model.name),
            engine: self.backend.engine().clone(),
            labels: self.labels.clone(),
            engine_note: self.engine_note.clone(),
            signature: Some(self.backend.signature().clone()),
            repetitions,
        }
    }
}

impl Prepared {
    /// The run's first lines about its `optional` sensors that did not open: which, why, and
    /// what the run does without them.
    pub fn missing_lines(&self) -> Vec<String> {
        let rig = &self.plan.rig;
        (self.sensors.iter().enumerate())
            .filter_map(|(index, s)| Some((index, s.as_ref().err()?)))
            .map(|(index, m)| {
                let total = if rig.total.contains(&m.info.rail) {
                    format!(", and the total of {} is not formed", rig.total.join(" + "))
                } else {
                    String::new()
                };
                format!(
                    "sensor {index} {} ({}) is optional and did not open: {}; the run goes on \
                     without it{total}",
                    m.info.kind, m.info.rail, m.why
                )
            })
            .collect()
    }

    /// Runs the rig: sampler on, idle baseline, then each backend through the protocol.
    pub fn execute(self, opts: &RunOptions) -> RunRecord {
        match self.run(opts, None) {
            Ok((record, _)) => record,
            Err(_) => unreachable!("only starting a stream can fail"),
        }
    }

    /// [`Prepared::execute`], handing the results to the stream `start` begins as they are
    /// measured ([`crate::output::stream`]). Fails only when the stream cannot start; a write
    /// that fails later is returned beside the record (whose measurements are all there).
    pub fn execute_streaming(
        self,
        opts: &RunOptions,
        start: StartStream,
    ) -> Result<(RunRecord, Option<String>)> {
        self.run(opts, Some(start))
    }

    fn run(
        self,
        opts: &RunOptions,
        start: Option<StartStream>,
    ) -> Result<(RunRecord, Option<String>)> {
        let Prepared {
            plan,
            backends,
            sensors,
            gpus,
            clock,
            phases,
        } = self;
        let sampling = opts.sample && !sensors.is_empty();
        let (logs, to_rig, live) = split_sensors(sensors, sampling);
        let (protocol, idle_baseline_s) = (plan.rig.protocol.clone(), plan.rig.idle_baseline_s);
        let record = record_of(plan, Utc::now(), logs);
        let holder = match start {
            Some(start) => Holder::Stream(start(record, phases.clone(), clock)?),
            None => Holder::Runner(Box::new(record)),
        };
        let stream = holder.stream();
        let latencies = stream.map(|w| w.latency_sink());
        let repetitions = stream.map(|w| w.repetition_sink());
        let samples = stream.map(|w| w.sample_sink());
        let sampler = (!live.is_empty()).then(|| {
            let sink = samples.map(|sink| to_rig.sink(sink));
            Sampler::start_with(live, clock, sink)
        });
        if let Some(sampler) = &sampler {
            phases.meter_with(to_rig.meter(sampler.cpu_meter()));
        }

        if sampling && idle_baseline_s > 0.0 {
            take_idle_baseline(idle_baseline_s, clock, &phases, &opts.interrupt);
        }

        // What every backend is measured on; its index and time share are its own.
        let every = Measuring {
            clock,
            phases: &phases,
            backend: 0,
            interrupt: &opts.interrupt,
            progress: opts.progress,
            latencies: latencies.as_deref(),
            repetitions: repetitions.as_deref(),
            gpus: &gpus,
            until: None,
        };
        let results = measure_backends(backends, &protocol, opts.time_budget, every);

        let sampled = sampler.map(Sampler::stop).unwrap_or_default();
        drop((latencies, repetitions));
        let (mut record, stream_error) = holder.finish();
        record.sensors = to_rig.logs(std::mem::take(&mut record.sensors), sampled);
        record.interrupted = opts.interrupt.load(std::sync::atomic::Ordering::Relaxed);
        record.phases = phases.spans();
        // The stream's copies of the results lack the empty run of a backend interrupted
        // before it began; the runner's are whole.
        record.backends = results;
        Ok((record, stream_error))
    }
}

/// Who holds a run's record while it is measured: the stream it was started on, or the
/// runner itself when nothing streams.
enum Holder {
    Stream(Box<dyn Stream>),
    Runner(Box<RunRecord>),
}

impl Holder {
    fn stream(&self) -> Option<&dyn Stream> {
        match self {
            Holder::Stream(stream) => Some(stream.as_ref()),
            Holder::Runner(_) => None,
        }
    }

    /// The record back, once the run's sinks are dropped (a stream writes its last rows
    /// first), with the stream's first failed write.
    fn finish(self) -> (RunRecord, Option<String>) {
        match self {
            Holder::Stream(stream) => {
                let kept = stream.finish();
                (kept.record, kept.error)
            }
            Holder::Runner(record) => (*record, None),
        }
    }
}

/// The rig's sensors split for the sampler, which reads those that opened (when `sampling`).
///
/// The rest keep their place in the rig's order (the indices of power.csv, summary.csv and
/// run.json) with why they are missing: returns every sensor's log in that order, where the
/// sampled ones sit in it, and the sampled sensors.
fn split_sensors(
    sensors: Vec<Result<Box<dyn PowerSensor>, Missing>>,
    sampling: bool,
) -> (Vec<SensorLog>, RigOrder, Vec<Box<dyn PowerSensor>>) {
    let mut logs: Vec<SensorLog> = Vec::new();
    let mut sampled: Vec<usize> = Vec::new();
    let mut live: Vec<Box<dyn PowerSensor>> = Vec::new();
    for (index, sensor) in sensors.into_iter().enumerate().filter(|_| sampling) {
        match sensor {
            Ok(sensor) => {
                logs.push(SensorLog::of(sensor.as_ref()));
                sampled.push(index);
                live.push(sensor);
            }
            Err(missing) => logs.push(missing.into()),
        }
    }
    let to_rig = RigOrder {
        sampled,
        sensors: logs.len(),
    };
    (logs, to_rig, live)
}

/// The run's record of `plan` and its `sensors` with nothing measured yet: what a stream
/// starts on, and what the run's measurements then fill in.
fn record_of(plan: Plan, started: chrono::DateTime<Utc>, sensors: Vec<SensorLog>) -> RunRecord {
    let Plan {
        rig,
        rig_text,
        sensor_choice,
        ranging,
        ..
    } = plan;
    RunRecord {
        rig,
        rig_text,
        started,
        phases: Vec::new(),
        backends: Vec::new(),
        sensors,
        sensor_choice,
        ranging,
        interrupted: false,
        settled: Default::default(),
    }
}

/// The idle baseline: `seconds` of the machine doing nothing, as its own phase, cut short by
/// an interrupt.
fn take_idle_baseline(seconds: f64, clock: RunClock, phases: &PhaseLog, interrupt: &AtomicBool) {
    phases.begin(Phase::IdleBaseline, None, clock.now());
    protocol::sleep_unless(Duration::from_secs_f64(seconds), interrupt);
    phases.end(clock.now());
}

/// Every backend measured in turn, each `on` its own index and its equal share of the
/// `time_budget` (counted from now) where the run has one.
fn measure_backends(
    backends: Vec<PreparedBackend>,
    protocol: &ProtocolSpec,
    time_budget: Option<Duration>,
    every: Measuring,
) -> Vec<BackendResult> {
    let mut results = Vec::new();
    let budget_from = every.clock.now();
    let shares = backends.len() as f64;
    // Interrupted, every backend still gets its (empty, interrupted) run: the summary
    // lists what was not measured, not only what was.
    for (index, b) in backends.into_iter().enumerate() {
        let on = Measuring {
            backend: index,
            until: time_budget.map(|t| budget_from + t.as_secs_f64() * (index + 1) as f64 / shares),
            ..every
        };
        results.push(measure_backend(b, protocol, &on));
    }
    results
}

/// One backend's repetitions measured `on` its share of the run, with what it ran on.
fn measure_backend(
    mut b: PreparedBackend,
    protocol: &ProtocolSpec,
    on: &Measuring,
) -> BackendResult {
    let repetitions = run_repetitions(&mut b, protocol, on);
    b.result(repetitions)
}

/// The sampler's sensors (those that opened) placed back in the rig's order, beside the
/// missing ones: sensor `k` of the sampler is sensor `sampled[k]` of the rig.
struct RigOrder {
    sampled: Vec<usize>,
    sensors: usize,
}

impl RigOrder {
    /// `sink` taking the sampler's batches under the rig's indices.
    fn sink(&self, sink: Arc<dyn SampleSink>) -> Arc<dyn SampleSink> {
        Arc::new(RigIndexed {
            sink,
            sampled: self.sampled.clone(),
        })
    }

    /// The sampler threads' CPU clocks in the rig's order; a missing sensor has no thread,
    /// and uses none (0 s: a number, which run.json holds and `summarize` reads back).
    fn meter(&self, meter: crate::clock::CpuMeter) -> crate::clock::CpuMeter {
        let (sampled, sensors) = (self.sampled.clone(), self.sensors);
        Box::new(move || {
            let mut all = vec![0.0; sensors];
            for (&index, seconds) in sampled.iter().zip(meter()) {
                all[index] = seconds;
            }
            all
        })
    }

    /// The sampler's logs put in place of the opened sensors' among `logs` (the rig's), each
    /// after the readings its place holds: those a stream kept, which the sampler handed over
    /// instead of keeping (without a stream the place holds none, and the sampler all).
    fn logs(&self, mut logs: Vec<SensorLog>, sampled: Vec<SensorLog>) -> Vec<SensorLog> {
        for (&index, mut log) in self.sampled.iter().zip(sampled) {
            let mut samples = std::mem::take(&mut logs[index].samples);
            samples.append(&mut log.samples);
            logs[index] = SensorLog { samples, ..log };
        }
        logs
    }
}

struct RigIndexed {
    sink: Arc<dyn SampleSink>,
    sampled: Vec<usize>,
}

impl SampleSink for RigIndexed {
    fn samples(&self, sensor: usize, batch: Vec<Sample>, failure: Option<String>, last: bool) {
        self.sink
            .samples(self.sampled[sensor], batch, failure, last);
    }
}

/// Where and how a backend's repetitions are measured.
pub struct Measuring<'a> {
    pub clock: RunClock,
    pub phases: &'a PhaseLog,
    /// The backend's index in the rig.
    pub backend: usize,
    pub interrupt: &'a AtomicBool,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
    /// Where each repetition's latencies and result go as they are measured, if anywhere.
    pub latencies: Option<&'a dyn LatencySink>,
    pub repetitions: Option<&'a dyn RepetitionSink>,
    /// The GPUs whose state is read at the edges of each timed window (none without NVML).
    pub gpus: &'a [GpuProbe],
    /// Run-clock time after which no further repetition starts (the first always does).
    pub until: Option<f64>,
}

/// Runs the protocol `protocol.repeat` times on one backend: each repetition is the whole
/// protocol again (warm-up, settle, timed run), on the clock and phase log the sensors are
/// sampled against. Stops after a failed repetition or an interrupt, keeping what ran (at least
/// one run, empty where the interrupt came first). `joulebench run` and `soak` measure
/// through this ([`Prepared::execute`]), and `joulebench bench` each of its rounds.
pub fn run_repetitions(
    b: &mut PreparedBackend,
    protocol: &ProtocolSpec,
    on: &Measuring,
) -> Vec<TimedRun> {
    let mut runs = Vec::new();
    let machine_root = crate::machine::root();
    // The stream learns what the backend is before its first phase begins, then each
    // repetition's run as it ends (only the new one: a long run has thousands).
    if let Some(sink) = on.repetitions {
        sink.backend(on.backend, b.result(Vec::new()), on.clock.now());
    }
    let report = |done: &[TimedRun]| {
        if let (Some(sink), Some(run)) = (on.repetitions, done.last()) {
            sink.repetition(on.backend, run.clone(), on.clock.now());
        }
    };
    for repetition in 1..=protocol.repeat as usize {
        if repetition > 1 && on.until.is_some_and(|until| on.clock.now() >= until) {
            break;
        }
        if on.interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            if runs.is_empty() {
                // Stopped before its first repetition: an empty run says so in the summary.
                runs.push(TimedRun {
                    batch: b.backend.batch(),
                    interrupted: true,
                    ..TimedRun::default()
                });
            }
            break;
        }
        let progress = progress_bar(on.progress, &b.backend.engine().engine);
        let ctx = protocol::Context {
            clock: on.clock,
            phases: on.phases,
            slot: Slot {
                backend: on.backend,
                repetition,
            },
            interrupt: on.interrupt,
            progress: &progress,
            machine_root: Some(&machine_root),
            gpus: on.gpus,
            stream: on.latencies,
            rank: b.checks_prediction(),
        };
        let run = protocol::run(b.backend.as_mut(), &b.input, protocol, &ctx);
        progress.finish_and_clear();
        let failed = run.error.is_some();
        runs.push(run);
        report(&runs);
        if failed {
            break;
        }
    }
    runs
}

fn progress_bar(show: bool, engine: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        None,
        if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(engine.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::{Origin, Reading, SensorInfo};

    /// A sensor updating every `period`, its figures averages needing `min_window`.
    struct Slow {
        info: SensorInfo,
        period: Duration,
        min_window: Option<Duration>,
    }

    impl PowerSensor for Slow {
        fn info(&self) -> &SensorInfo {
            &self.info
        }
        fn update_period(&self) -> Duration {
            self.period
        }
        fn read(&mut self) -> Result<Reading> {
            Ok(Reading::default())
        }
        fn min_window(&self) -> Option<Duration> {
            self.min_window
        }
    }

    fn slow(period_ms: u64, min_window_s: Option<u64>) -> Box<dyn PowerSensor> {
        Box::new(Slow {
            info: SensorInfo {
                kind: "test".into(),
                rail: "r".into(),
                origin: Origin::Measured,
                detail: String::new(),
            },
            period: Duration::from_millis(period_ms),
            min_window: min_window_s.map(Duration::from_secs),
        })
    }

    fn missing(rail: &str) -> Missing {
        Missing {
            info: SensorInfo {
                kind: "ina219".into(),
                rail: rail.into(),
                origin: Origin::Measured,
                detail: String::new(),
            },
            why: "cannot open /dev/i2c-9".into(),
        }
    }

    /// A run goes on without its optional sensors while another measures; with none left but
    /// nominal figures, it is one line naming each that did not open.
    #[test]
    fn a_run_needs_a_sensor_that_measures_once_optional_ones_are_missing() {
        let nominal = || -> Box<dyn PowerSensor> {
            Box::new(Slow {
                info: SensorInfo {
                    origin: Origin::Nominal,
                    ..slow(100, None).info().clone()
                },
                period: Duration::from_millis(100),
                min_window: None,
            })
        };
        check_something_measures(&[]).unwrap();
        check_something_measures(&[Ok(nominal())]).unwrap();
        check_something_measures(&[Ok(slow(100, None)), Err(missing("Coral"))]).unwrap();
        for sensors in [
            vec![Err(missing("Pi")), Err(missing("Coral"))],
            vec![Ok(nominal()), Err(missing("Pi")), Err(missing("Coral"))],
        ] {
            let e = check_something_measures(&sensors).unwrap_err().to_string();
            assert_eq!(
                e,
                "no sensor of the rig measures: sensor ina219 (Pi) is optional and did not open: \
                 cannot open /dev/i2c-9; sensor ina219 (Coral) is optional and did not open: \
                 cannot open /dev/i2c-9"
            );
        }
    }

    /// The sampler numbers the sensors that opened from 0; their rows, CPU clocks and logs
    /// keep the rig's numbers, a missing sensor's place held by its own log.
    #[test]
    fn the_sampled_sensors_keep_the_rigs_indices() {
        struct Kept(std::sync::Mutex<Vec<(usize, bool)>>);
        impl SampleSink for Kept {
            fn samples(&self, sensor: usize, _: Vec<Sample>, _: Option<String>, last: bool) {
                self.0.lock().unwrap().push((sensor, last));
            }
        }
        let order = RigOrder {
            sampled: vec![0, 2],
            sensors: 3,
        };
        let kept = Arc::new(Kept(Default::default()));
        let sink = order.sink(kept.clone());
        sink.samples(0, Vec::new(), None, false);
        sink.samples(1, Vec::new(), None, true);
        assert_eq!(*kept.0.lock().unwrap(), [(0, false), (2, true)]);
        let meter = order.meter(Box::new(|| vec![1.0, 2.0]))();
        assert_eq!(meter, [1.0, 0.0, 2.0]);
        let log = |rail: &str| {
            let mut log = SensorLog::of(slow(100, None).as_ref());
            log.info.rail = rail.into();
            log
        };
        let logs = vec![log("a"), missing("b").into(), log("c")];
        let merged = order.logs(logs, vec![log("A"), log("C")]);
        let rails: Vec<&str> = merged.iter().map(|l| l.info.rail.as_str()).collect();
        assert_eq!(rails, ["A", "b", "C"]);
        assert_eq!(merged[1].missing.as_deref(), Some("cannot open /dev/i2c-9"));
    }

    #[test]
    fn windows_stretch_to_the_slowest_sensor_and_to_averaged_figures() {
        let mut rig = crate::summary::fixtures::rig("runs = 2");
        rig.idle_baseline_s = 2.0;
        extend_for_slow_sensors(&mut rig, &[slow(100, None).as_ref()]);
        assert_eq!(rig.protocol.min_duration_s, Some(0.5));
        assert_eq!(rig.idle_baseline_s, 2.0);
        // NVML's averaged power figure: both windows at least 10 s.
        extend_for_slow_sensors(
            &mut rig,
            &[slow(100, None).as_ref(), slow(50, Some(10)).as_ref()],
        );
        assert_eq!(rig.protocol.min_duration_s, Some(10.0));
        assert_eq!(rig.idle_baseline_s, 10.0);
        // A rig without an idle baseline gets none.
        rig.idle_baseline_s = 0.0;
        extend_for_slow_sensors(&mut rig, &[slow(50, Some(10)).as_ref()]);
        assert_eq!(rig.idle_baseline_s, 0.0);
    }
}
