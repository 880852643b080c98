//! The measurement protocol: by default exactly the 2019 method — one warm-up classification,
//! sleep 1 s, then 250 timed classifications of the same image.
//!
//! A classification is: copy the input in, invoke, read the output, top-k. Each one's latency
//! is taken on the run clock, and the phase boundaries go to the [`PhaseLog`] the sampler's
//! readings are later cut by.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;

use crate::backend::Backend;
use crate::clock::HAND_OFF_EVERY_S;
use crate::clock::{Phase, PhaseLog, RunClock, Slot};
use crate::input::{top_k, Prediction};
use crate::machine::MachineState;
use crate::rig::ProtocolSpec;
use crate::sensor::nvml::GpuProbe;
use crate::sensor::nvml::GpuState;

/// Where the timed loop hands its latencies while a run streams them to disk (the writer
/// thread of [`crate::output::stream`]). A hand-off must return at once: the loop is timing.
pub trait LatencySink: Send + Sync {
    /// The timed loop's new latencies; `first` is the 1-based index of `batch[0]`.
    fn latencies(&self, slot: Slot, engine: &str, first: usize, batch: Vec<Latency>);
}

/// Classes reported per classification.
pub const TOP_K: usize = 5;

/// The shared state a protocol run reports to.
pub struct Context<'a> {
    pub clock: RunClock,
    pub phases: &'a PhaseLog,
    /// The rig's backend and the repetition of the protocol on it, for the phase log.
    pub slot: Slot,
    /// Set by Ctrl-C: finish the current classification and stop.
    pub interrupt: &'a AtomicBool,
    pub progress: &'a ProgressBar,
    /// Where to read the machine state at the timed window's edges ([`crate::machine::root`]);
    /// none: not read.
    pub machine_root: Option<&'a Path>,
    /// The GPUs whose state is read at the same edges (none without an NVML sensor).
    pub gpus: &'a [GpuProbe],
    /// Where the timed loop hands its latencies, every [`HAND_OFF_EVERY_S`], when the run
    /// streams its results (a copy: the run keeps its own).
    pub stream: Option<&'a dyn LatencySink>,
    /// Rank the backend's scores into a top-k: only for a classifier with a label file
    /// ([`crate::runner::PreparedBackend::checks_prediction`]); any other model's prediction
    /// is not checked, so none is reported.
    pub rank: bool,
}

/// One timed classification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Run-clock start, seconds.
    pub start: f64,
    pub seconds: f64,
}

/// What the protocol measured for one backend. Kept even when the run stopped early.
#[derive(Debug, Clone, Default)]
pub struct TimedRun {
    pub latencies: Vec<Latency>,
    /// Run-clock `[start, end]` of the timed phase, once it began.
    pub window: Option<(f64, f64)>,
    /// Top-k of the last classification.
    pub top: Vec<Prediction>,
    /// Images per timed call (the backend's batch).
    pub batch: usize,
    /// CPU time the whole process used during the timed phase, in seconds: unlike wall time,
    /// it leaves out time a shared machine's other tenants took.
    pub cpu_seconds: f64,
    pub interrupted: bool,
    /// The error that ended the run early, if any.
    pub error: Option<String>,
    /// The machine state just before the timed window opened and just after it closed.
    pub machine_start: Option<MachineState>,
    pub machine_end: Option<MachineState>,
    /// Each NVML GPU's state at the same instants; empty without an NVML sensor.
    pub gpu_start: Vec<GpuState>,
    pub gpu_end: Vec<GpuState>,
}

impl TimedRun {
    /// Images classified in the timed window: calls × batch.
    pub fn inferences(&self) -> usize {
        self.latencies.len() * self.batch
    }

    /// Images classified per second over the timed window.
    pub fn fps(&self) -> Option<f64> {
        let (start, end) = self.window?;
        (end > start && !self.latencies.is_empty())
            .then(|| self.inferences() as f64 / (end - start))
    }

    /// Whether the CPU throttled during the timed window, from the machine states at its
    /// edges; none where they were not read.
    pub fn machine_verdict(&self) -> Option<crate::machine::Verdict> {
        Some(crate::machine::verdict(
            self.machine_start.as_ref()?,
            self.machine_end.as_ref()?,
        ))
    }
}

/// Runs the protocol on one backend with one prepared input.
pub fn run(
    backend: &mut dyn Backend,
    input: &[u8],
    spec: &ProtocolSpec,
    ctx: &Context,
) -> TimedRun {
    let mut out = TimedRun {
        batch: backend.batch(),
        ..TimedRun::default()
    };
    let engine = backend.engine().engine.clone();
    let mut scores = Vec::new();
    let mut top = Vec::with_capacity(TOP_K + 1);
    let mut classify = |top: &mut Vec<Prediction>| -> anyhow::Result<()> {
        backend.infer(input, &mut scores)?;
        if ctx.rank {
            top_k(&scores, TOP_K, top);
        }
        Ok(())
    };

    ctx.phases
        .begin(Phase::Warmup, Some(ctx.slot), ctx.clock.now());
    if let Err(e) = warm_up(&mut classify, &mut top, spec, ctx) {
        out.error = Some(format!("warm-up: {e:#}"));
        ctx.phases.end(ctx.clock.now());
        return out;
    }

    ctx.phases
        .begin(Phase::Settle, Some(ctx.slot), ctx.clock.now());
    sleep_unless(Duration::from_secs_f64(spec.settle_s), ctx.interrupt);

    ctx.progress.set_length(u64::from(spec.runs));
    // Read outside the window, so its sysfs reads are in neither the timing nor the energy.
    out.machine_start = ctx.machine_root.map(MachineState::capture);
    out.gpu_start = ctx.gpus.iter().map(GpuProbe::capture).collect();
    let start = ctx.clock.now();
    ctx.phases.begin(Phase::Timed, Some(ctx.slot), start);
    let end = timed_loop(&mut classify, &mut top, spec, ctx, &engine, start, &mut out);
    ctx.phases.end(end);
    out.machine_end = ctx.machine_root.map(MachineState::capture);
    out.gpu_end = ctx.gpus.iter().map(GpuProbe::capture).collect();
    out.window = Some((start, end));
    out.top = top;
    out.interrupted = stopped(ctx);
    out
}

/// Whether Ctrl-C asked the run to stop.
fn stopped(ctx: &Context) -> bool {
    ctx.interrupt.load(Ordering::Relaxed)
}

/// The warm-up classifications, until done or stopped; the first error ends them.
fn warm_up(
    classify: &mut impl FnMut(&mut Vec<Prediction>) -> anyhow::Result<()>,
    top: &mut Vec<Prediction>,
    spec: &ProtocolSpec,
    ctx: &Context,
) -> anyhow::Result<()> {
    for _ in 0..spec.warmup {
        if stopped(ctx) {
            break;
        }
        classify(top)?;
    }
    Ok(())
}

/// The timed classifications from `start`, into `out`, until the rig's runs and minimum
/// duration are both done, a classification fails, or the run is stopped; handed to the
/// stream as they go. Returns the end of the window: the end of the last classification.
fn timed_loop(
    classify: &mut impl FnMut(&mut Vec<Prediction>) -> anyhow::Result<()>,
    top: &mut Vec<Prediction>,
    spec: &ProtocolSpec,
    ctx: &Context,
    engine: &str,
    start: f64,
    out: &mut TimedRun,
) -> f64 {
    // Reserved so that no reallocation lands in the timed loop; never past the bound a rig's
    // runs has (16 MB), whatever spec the caller built.
    out.latencies
        .reserve(spec.runs.min(crate::rig::MAX_RUNS) as usize);
    let min_end = start + spec.min_duration_s.unwrap_or(0.0);
    let cpu_start = cpu_time::ProcessTime::now();
    let mut end = start;
    // Latencies handed to the stream so far, and when.
    let (mut handed, mut handed_at) = (0, start);
    while !stopped(ctx) && (out.latencies.len() < spec.runs as usize || end < min_end) {
        let t0 = ctx.clock.now();
        let result = classify(top);
        end = ctx.clock.now();
        if let Err(e) = result {
            out.error = Some(format!("classification {}: {e:#}", out.latencies.len() + 1));
            break;
        }
        out.latencies.push(Latency {
            start: t0,
            seconds: end - t0,
        });
        ctx.progress.inc(1);
        if let Some(feed) = ctx.stream.filter(|_| end - handed_at >= HAND_OFF_EVERY_S) {
            feed.latencies(
                ctx.slot,
                engine,
                handed + 1,
                out.latencies[handed..].to_vec(),
            );
            (handed, handed_at) = (out.latencies.len(), end);
        }
    }
    out.cpu_seconds = cpu_start.elapsed().as_secs_f64();
    if let Some(feed) = ctx.stream.filter(|_| handed < out.latencies.len()) {
        feed.latencies(
            ctx.slot,
            engine,
            handed + 1,
            out.latencies[handed..].to_vec(),
        );
    }
    end
}

/// Sleeps for `d`, waking early when `interrupt` is set.
pub fn sleep_unless(d: Duration, interrupt: &AtomicBool) {
    const SLICE: Duration = Duration::from_millis(10);
    let until = std::time::Instant::now() + d;
    while !interrupt.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::EngineInfo;
    use crate::input::TensorType;

    /// Counts inferences; returns a score vector whose best class is 3. Can fail on the n-th
    /// call, or raise the interrupt flag at the n-th call.
    struct Fake {
        engine: EngineInfo,
        signature: crate::backend::Signature,
        calls: usize,
        fail_at: Option<usize>,
        interrupt_at: Option<(usize, &'static AtomicBool)>,
        /// A fake machine root whose cooling device's state the fake sets to its call count,
        /// so a machine state shows when it was read.
        machine: tempfile::TempDir,
    }

    const STATE: &str = "sys/class/thermal/cooling_device0/cur_state";

    impl Backend for Fake {
        fn engine(&self) -> &EngineInfo {
            &self.engine
        }
        fn signature(&self) -> &crate::backend::Signature {
            &self.signature
        }
        fn infer(&mut self, input: &[u8], scores: &mut Vec<f32>) -> anyhow::Result<()> {
            self.calls += 1;
            assert_eq!(input, [7u8; 3]);
            std::fs::write(self.machine.path().join(STATE), self.calls.to_string()).unwrap();
            if self.fail_at == Some(self.calls) {
                anyhow::bail!("boom");
            }
            if let Some((n, flag)) = self.interrupt_at {
                if n == self.calls {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            scores.clear();
            scores.extend([0.1, 0.2, 0.0, 0.9, 0.3]);
            Ok(())
        }
    }

    fn fake() -> Fake {
        Fake {
            engine: EngineInfo {
                engine: "fake".into(),
                version: "0".into(),
                accelerator: "none".into(),
                threads: 1,
            },
            signature: crate::backend::signature::image_classifier(1, 1, TensorType::F32, 5),
            calls: 0,
            fail_at: None,
            interrupt_at: None,
            machine: {
                let dir = tempfile::tempdir().unwrap();
                let state = dir.path().join(STATE);
                std::fs::create_dir_all(state.parent().unwrap()).unwrap();
                std::fs::write(state, "0").unwrap();
                dir
            },
        }
    }

    fn spec(warmup: u32, runs: u32) -> ProtocolSpec {
        ProtocolSpec {
            warmup,
            settle_s: 0.05,
            runs,
            ..ProtocolSpec::default()
        }
    }

    fn run_fake(
        backend: &mut Fake,
        spec: &ProtocolSpec,
        interrupt: &AtomicBool,
    ) -> (TimedRun, PhaseLog) {
        run_fake_on(backend, spec, interrupt, &[])
    }

    fn run_fake_on(
        backend: &mut Fake,
        spec: &ProtocolSpec,
        interrupt: &AtomicBool,
        gpus: &[GpuProbe],
    ) -> (TimedRun, PhaseLog) {
        let phases = PhaseLog::new();
        let progress = ProgressBar::hidden();
        let root = backend.machine.path().to_path_buf();
        let ctx = Context {
            clock: RunClock::start(),
            phases: &phases,
            slot: Slot {
                backend: 0,
                repetition: 1,
            },
            interrupt,
            progress: &progress,
            machine_root: Some(&root),
            gpus,
            stream: None,
            rank: true,
        };
        (run(backend, &[7; 3], spec, &ctx), phases)
    }

    #[test]
    fn runs_warmup_settle_and_exactly_the_timed_count() {
        let mut b = fake();
        let (run, phases) = run_fake(&mut b, &spec(2, 25), &AtomicBool::new(false));
        assert_eq!(b.calls, 27);
        assert_eq!(run.latencies.len(), 25);
        assert_eq!(run.top[0].class, 3);
        assert!(run.error.is_none() && !run.interrupted);
        let spans = phases.spans();
        let order: Vec<_> = spans.iter().map(|s| s.phase).collect();
        assert_eq!(order, [Phase::Warmup, Phase::Settle, Phase::Timed]);
        let settle = spans[1].end - spans[1].start;
        assert!(settle >= 0.05, "settle lasted {settle}");
        let (start, end) = run.window.unwrap();
        assert_eq!((start, end), (spans[2].start, spans[2].end));
        assert!(run
            .latencies
            .iter()
            .all(|l| l.start >= start && l.start + l.seconds <= end));
        assert!(run.fps().unwrap() > 0.0);
        // The machine state is read after the warm-up and before the first timed call, and
        // after the last one: outside the timed window, at its edges.
        let calls = |s: Option<&MachineState>| s.unwrap().cooling_devices[0].cur_state.clone();
        use crate::machine::Reading::Known;
        assert_eq!(calls(run.machine_start.as_ref()), Known(2));
        assert_eq!(calls(run.machine_end.as_ref()), Known(27));
    }

    #[test]
    fn gpu_state_is_read_at_both_edges_and_absent_without_a_gpu() {
        let mut b = fake();
        let gpus = [crate::sensor::nvml::warming_probe(1)];
        let (run, _) = run_fake_on(&mut b, &spec(1, 3), &AtomicBool::new(false), &gpus);
        let (start, end) = (&run.gpu_start, &run.gpu_end);
        assert_eq!((start.len(), end.len()), (1, 1));
        assert_eq!(
            (start[0].temperature_c, end[0].temperature_c),
            (Some(40), Some(41))
        );
        assert_eq!(start[0].sensor_index, 1);
        assert_eq!(start[0].sm_clock_mhz, Some(1755));
        assert_eq!(start[0].performance_state, None);
        let (run, _) = run_fake(&mut fake(), &spec(1, 3), &AtomicBool::new(false));
        assert!(run.gpu_start.is_empty() && run.gpu_end.is_empty());
    }

    #[test]
    fn min_duration_extends_the_timed_run() {
        let mut b = fake();
        let mut s = spec(0, 1);
        s.min_duration_s = Some(0.05);
        let (run, _) = run_fake(&mut b, &s, &AtomicBool::new(false));
        let (start, end) = run.window.unwrap();
        assert!(end - start >= 0.05);
        assert!(run.latencies.len() > 1);
    }

    #[test]
    fn a_failed_inference_keeps_what_was_measured() {
        let mut b = fake();
        b.fail_at = Some(1 + 10);
        let (run, _) = run_fake(&mut b, &spec(1, 250), &AtomicBool::new(false));
        assert_eq!(run.latencies.len(), 9);
        assert!(run
            .error
            .as_deref()
            .unwrap()
            .contains("classification 10: boom"));
        assert!(run.window.is_some());
    }

    #[test]
    fn interrupt_stops_after_the_current_classification() {
        static FLAG: AtomicBool = AtomicBool::new(false);
        let mut b = fake();
        b.interrupt_at = Some((1 + 40, &FLAG));
        let (run, _) = run_fake(&mut b, &spec(1, 250), &FLAG);
        assert!(run.interrupted);
        assert_eq!(run.latencies.len(), 40);
    }
}
