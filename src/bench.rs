//! `joulebench bench`: the rig measured against itself and against a reference.
//!
//! Two comparisons, each alternating its contenders round by round so that drift in the
//! machine (thermal, other load) hits both sides alike, and each printed as medians with the
//! ratio measured side by side in this one run:
//! 1. rig FPS, for each engine asked for (`--engines litert,tflite`), against a Python loop of
//!    the same method on Google's `ai-edge-litert` runtime (same model, image, threads);
//! 2. rig FPS with the sampler reading the rig's sensors at full rate against the sampler off,
//!    with every core running the backend (unless `--threads` says otherwise), with the
//!    sampler's own CPU use: the ratio and its 95 % interval.
//!
//! A round is measured by the runner's own calls, the ones a run makes for each backend:
//! every contender loaded once by [`prepare_backend`], every round one repetition of
//! [`run_repetitions`]. It cannot go through [`crate::session::measure`], which claims a run
//! folder and writes a run's files (bench writes none), nor through [`crate::runner::prepare`]
//! and [`crate::runner::Prepared::execute`]: `prepare` opens the rig's sensors once and
//! lengthens the timed window for slow ones (bench opens them each round at that round's rate,
//! and keeps the protocol asked for), and `execute` consumes the loaded backends (a round would
//! reload its model) and runs them all in turn (bench puts the Python loop between them).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use statrs::statistics::{Data, OrderStatistics};

use crate::backend::EngineInfo;
use crate::clock::{monotonic_seconds, PhaseLog, RunClock};
use crate::output::console::Console;
use crate::rig::{
    BackendSpec, Device, Engine, ProtocolSpec, Rig, SensorSpec, TfliteSpec, TorchSpec, Workload,
};
use crate::runner::{prepare_backend, run_repetitions, Measuring, PreparedBackend};
use crate::sampler::{Sampler, SensorLog};
use crate::sensor::{self, SensorContext};
use crate::stats::PairedRatios;
use crate::summary;

/// A bench as its command line resolved it ([`crate::cli`]): the rig with the backend it
/// benchmarks, and what that backend is compared with.
pub struct Bench {
    /// The rig; its first backend is the one benchmarked (with the command line's model and
    /// threads, checked), its sensors are the ones sampled.
    pub rig: Rig,
    /// The protocol of every round: the rig's, with the command line's timed classifications.
    pub protocol: ProtocolSpec,
    /// The engines compared, in turn (`None`: the backend's own); at least one.
    pub engines: Vec<Option<Engine>>,
    /// Rounds of each contender, alternating.
    pub rounds: usize,
    /// Threads the command line gave: the sampler comparison's (else every core).
    pub threads: Option<u32>,
    /// The Python reference loop compared with, unless skipped.
    pub reference: Option<ReferenceLoop>,
    /// Whether the sampler-overhead comparison runs.
    pub sampler: bool,
}

/// How the Python reference loop runs.
pub struct ReferenceLoop {
    /// Its Python; default $JOULEBENCH_PYTHON or $JOULEBENCH_TORCH_PYTHON, else the venvs.
    pub python: Option<PathBuf>,
    /// The PyTorch loop's forward pass (torch backends).
    pub mode: ReferenceMode,
}

/// The PyTorch reference loop's forward pass (`torch_loop.py --mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReferenceMode {
    /// The fastest PyTorch offers on the device: `compile` with channels-last on a GPU,
    /// `eager` on a CPU.
    // The choice, and the figures behind it, are in `ReferenceMode::resolve`.
    Best,
    /// One kernel launch per operator, from Python.
    Eager,
    /// The forward pass captured once as a CUDA graph and replayed (CUDA only).
    Graph,
    /// `torch.compile`: Inductor's fused kernels ("reduce-overhead": replayed as CUDA graphs on
    /// a GPU), with channels-last activations.
    Compile,
}

impl ReferenceMode {
    /// The loop's `--mode`, and whether it stores activations channels-last. On a GPU,
    /// compiled kernels were the fastest PyTorch offered on an H200 at batch 1 fp32 (1971/s,
    /// level with graph replay) and by far at batch 64 fp16 with channels-last (30,346/s against
    /// 16,528/s for graph replay). On a CPU, eager: compiled kernels ran 3 to 5 % faster on
    /// the 2-core AMD EPYC VM (32.5 against 31.0 and 31.7 classifications/s, 1 thread), and
    /// the loop compiles afresh every round (about 60 s there); `--reference-mode compile`
    /// asks for it.
    fn resolve(self, device: Device) -> (&'static str, bool) {
        match (self, device) {
            (ReferenceMode::Best, Device::Cuda(_)) | (ReferenceMode::Compile, _) => {
                ("compile", true)
            }
            (ReferenceMode::Best, Device::Cpu) | (ReferenceMode::Eager, _) => ("eager", false),
            (ReferenceMode::Graph, _) => ("graph", false),
        }
    }
}

pub fn run(bench: &Bench, out: &mut Console) -> Result<()> {
    let (rig, protocol) = (&bench.rig, &bench.protocol);
    let backend_spec = rig.backends.first().context("the rig has no backend")?;
    // One prepared backend per engine; the first is the rig's own choice.
    let mut contenders = bench
        .engines
        .iter()
        .map(|&engine| prepare_backend(&with_engine(backend_spec, engine)))
        .collect::<Result<Vec<_>>>()?;
    let first = &contenders[0];
    writeln!(
        out,
        "bench: model {}, image {}, {} thread{}, {} timed classifications per round, {} rounds, alternating",
        first.model.name,
        first.image.name,
        backend_spec.threads(),
        if backend_spec.threads() == 1 { "" } else { "s" },
        protocol.runs,
        bench.rounds
    )?;

    if let Some(reference) = &bench.reference {
        compare_with_reference(&mut contenders, protocol, rig, reference, bench.rounds, out)?;
    }
    if bench.sampler {
        // A benchmark on a board uses every core, so the sampler is judged there: a sampler
        // that needs a core of its own shows up as lost FPS only when none is left over.
        let cores = crate::plan::usable_cores();
        let threads = bench.threads.unwrap_or(cores);
        let mut spec = contenders[0].spec.clone();
        spec.set_workload(Workload {
            threads,
            ..spec.workload()
        });
        let mut backend = prepare_backend(&spec)?;
        sampler_overhead(
            &mut backend,
            threads,
            cores,
            protocol,
            rig,
            bench.rounds,
            out,
        )?;
    }
    Ok(())
}

/// `spec` on `engine`, where it is a tflite backend (other kinds have no engine to choose).
fn with_engine(spec: &BackendSpec, engine: Option<Engine>) -> BackendSpec {
    match spec {
        BackendSpec::Tflite(s) => BackendSpec::Tflite(TfliteSpec {
            engine,
            ..s.clone()
        }),
        other => other.clone(),
    }
}

/// Rig engines against the Python loop, alternating within every round. With real sensors
/// in the rig, both sides are measured: watts and inferences per joule too.
fn compare_with_reference(
    contenders: &mut [PreparedBackend],
    protocol: &ProtocolSpec,
    rig: &Rig,
    reference: &ReferenceLoop,
    round_count: usize,
    out: &mut Console,
) -> Result<()> {
    let reference = Reference::for_backend(&contenders[0], protocol, reference)?;
    let energy = measures_energy(rig).then_some(rig);
    let mut names: Vec<String> = contenders
        .iter()
        .map(|b| format!("rig {}", engine_label(b.backend.engine())))
        .collect();
    names.push(format!("{} (reference)", reference.name));
    let last = names.len() - 1;
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); names.len()];
    for round in 1..=round_count {
        // The reference first in every other round, so neither side always follows the other.
        let reference_first = round % 2 == 0;
        if reference_first {
            rounds[last].push(reference.round(energy)?);
        }
        for (i, b) in contenders.iter_mut().enumerate() {
            rounds[i].push(rig_round(b, protocol, energy.map(|rig| (rig, Rate::Full)))?.0);
        }
        if !reference_first {
            rounds[last].push(reference.round(energy)?);
        }
        let line: Vec<String> = names
            .iter()
            .zip(&rounds)
            .map(|(n, r)| format!("{n} {}", r[round - 1]))
            .collect();
        writeln!(out, "  round {round}: {}", line.join(", "))?;
    }
    write_reference_table(&names, &rounds, out)
}

/// The comparison's table: each contender's medians (FPS, CPU ms, and watts and inferences
/// per joule where measured), each beside the median of its per-round ratios to the
/// reference, whose rounds are the last of `rounds`.
fn write_reference_table(names: &[String], rounds: &[Vec<Round>], out: &mut Console) -> Result<()> {
    let fps_of = |r: &[Round]| r.iter().map(|r| r.fps).collect::<Vec<_>>();
    // Inverted, so that above 1 means "faster than the reference" here too.
    let cpu_speed_of = |r: &[Round]| r.iter().map(|r| 1.0 / r.cpu_ms).collect::<Vec<_>>();
    let per_joule_of = |r: &[Round]| r.iter().map(|r| r.per_joule).collect::<Option<Vec<_>>>();
    let base = &rounds[rounds.len() - 1];
    writeln!(
        out,
        "{:<44} {:>10} {:>7} {:>16} {:>24} {:>8} {:>7} {:>8} {:>8} {:>7}",
        "contender",
        "median FPS",
        "ratio",
        "per-round ratios",
        "geo. mean, 95 % interval",
        "CPU ms",
        "ratio",
        "W",
        "inf/J",
        "ratio"
    )?;
    for (name, r) in names.iter().zip(rounds) {
        let fps = paired(&fps_of(r), &fps_of(base))?;
        let cpu = paired(&cpu_speed_of(r), &cpu_speed_of(base))?;
        let cpu_ms: Vec<f64> = r.iter().map(|r| r.cpu_ms).collect();
        let energy = match (per_joule_of(r), per_joule_of(base)) {
            (Some(j), Some(base_j)) => {
                let watts: Vec<f64> = r.iter().filter_map(|r| r.watts).collect();
                format!(
                    "{:>8.1} {:>8.2} {:>7.3}",
                    median(&watts),
                    median(&j),
                    paired(&j, &base_j)?.median
                )
            }
            _ => format!("{:>8} {:>8} {:>7}", "-", "-", "-"),
        };
        let interval = fps.interval().map_or("-".to_string(), |(mean, low, high)| {
            format!("{mean:.3} ({low:.3} to {high:.3})")
        });
        writeln!(
            out,
            "{name:<44} {:>10.1} {:>7.3} {:>16} {interval:>24} {:>8.2} {:>7.3} {energy}",
            median(&fps_of(r)),
            fps.median,
            fps.range(),
            median(&cpu_ms),
            cpu.median
        )?;
    }
    writeln!(
        out,
        "(ratio: median of the per-round ratios, each run against the reference run next to it; geo. mean: their geometric mean with its 95 % interval, Student's t on their logarithms; CPU ms: process CPU time per image, its ratio inverted so that above 1 is faster)"
    )?;
    Ok(())
}

/// Whether the rig's sensors measure real power (a simulated board's watts say nothing
/// about the machine the benchmark runs on).
fn measures_energy(rig: &Rig) -> bool {
    rig.sensors.iter().any(|s| {
        matches!(
            s.spec,
            SensorSpec::Ina219(_)
                | SensorSpec::Nvml(_)
                | SensorSpec::Rapl(_)
                | SensorSpec::Hwmon(_)
                | SensorSpec::Ina3221(_)
        )
    })
}

/// What one round of one contender measured.
#[derive(Debug, Clone, Copy)]
struct Round {
    fps: f64,
    /// Process CPU time per image in the timed window: immune to time other tenants of a
    /// shared machine take, which wall-clock FPS is not.
    cpu_ms: f64,
    /// Mean power of the rig's first sensor over the timed window, when measured.
    watts: Option<f64>,
    per_joule: Option<f64>,
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} FPS ({:.2} CPU ms)", self.fps, self.cpu_ms)?;
        if let (Some(w), Some(j)) = (self.watts, self.per_joule) {
            write!(f, " {w:.1} W {j:.2} inf/J")?;
        }
        Ok(())
    }
}

/// The Python loop a backend is compared with: Google's LiteRT runtime for int8 TFLite,
/// PyTorch on the same weights and device for torch.
struct Reference {
    name: String,
    python: PathBuf,
    script: PathBuf,
    args: Vec<OsString>,
    /// The rig's prepared input bytes, which the LiteRT loop feeds (`--input-bytes`): every
    /// input of any model, image or seeded data, the same bytes on both sides.
    _input: Option<tempfile::NamedTempFile>,
}

/// The loop's arguments every kind shares: the image, threads and the rig's protocol, so
/// both sides run the same protocol.
fn protocol_args(b: &PreparedBackend, protocol: &ProtocolSpec) -> Vec<OsString> {
    vec![
        "--image".into(),
        b.image.path.clone().into(),
        "--threads".into(),
        b.spec.threads().to_string().into(),
        "--runs".into(),
        protocol.runs.to_string().into(),
        "--warmup".into(),
        protocol.warmup.to_string().into(),
        "--settle".into(),
        protocol.settle_s.to_string().into(),
        "--min-duration".into(),
        protocol.min_duration_s.unwrap_or(0.0).to_string().into(),
    ]
}

impl Reference {
    /// The Python reference loop for backend `b`'s kind, on the rig's protocol.
    fn for_backend(
        b: &PreparedBackend,
        protocol: &ProtocolSpec,
        reference: &ReferenceLoop,
    ) -> Result<Self> {
        let loop_args = protocol_args(b, protocol);
        match &b.spec {
            // The Python loop feeds the model as its file shapes it: one image per call.
            BackendSpec::Tflite(tflite) if tflite.batch() > 1 => anyhow::bail!(
                "joulebench bench's LiteRT reference loop runs batch 1, the backend batch {}: \
                 compare at batch 1, or measure the batch with joulebench run",
                tflite.batch()
            ),
            BackendSpec::Tflite(_) => Self::litert(b, reference, loop_args),
            BackendSpec::Torch(torch) => Self::torch(b, torch, reference, loop_args),
            // No Python reference loop drives an Edge TPU here (pycoral is not installed).
            BackendSpec::Edgetpu(_) => anyhow::bail!(
                "joulebench bench has no reference loop for kind \"edgetpu\"; use joulebench run"
            ),
        }
    }

    /// The LiteRT loop on the backend's model, fed the rig's prepared input from a temporary
    /// file that lives as long as the loop.
    fn litert(
        b: &PreparedBackend,
        reference: &ReferenceLoop,
        mut loop_args: Vec<OsString>,
    ) -> Result<Self> {
        let mut input = tempfile::Builder::new()
            .prefix("joulebench-bench-input-")
            .tempfile()
            .context("cannot write the reference loop's input")?;
        std::io::Write::write_all(input.as_file_mut(), &b.input)
            .context("cannot write the reference loop's input")?;
        loop_args.extend([
            "--model".into(),
            b.model.path.clone().into(),
            "--input-bytes".into(),
            input.path().into(),
        ]);
        Ok(Self {
            _input: Some(input),
            name: "Python ai-edge-litert".into(),
            python: crate::project::python_path(
                reference.python.as_ref(),
                crate::environment::PYTHON,
                "venv",
            ),
            script: reference_script("litert_loop.py")?,
            args: loop_args,
        })
    }

    /// The PyTorch loop on the model's float weights, in the reference mode resolved for the
    /// backend's device, precision and batch.
    fn torch(
        b: &PreparedBackend,
        torch: &TorchSpec,
        reference: &ReferenceLoop,
        mut loop_args: Vec<OsString>,
    ) -> Result<Self> {
        let weights = crate::models::ensure_float_weights(&b.model.path)?;
        let device = torch.device();
        let (mode, channels_last) = reference.mode.resolve(device);
        if mode == "graph" && device == Device::Cpu {
            bail!("--reference-mode graph needs a CUDA device; the backend runs on cpu");
        }
        loop_args.extend(["--mode".into(), mode.into()]);
        if channels_last {
            loop_args.push("--channels-last".into());
        }
        loop_args.extend([
            "--weights".into(),
            weights.into(),
            "--device".into(),
            device.to_string().into(),
            "--precision".into(),
            torch.precision().as_str().into(),
            "--batch".into(),
            torch.batch().to_string().into(),
        ]);
        Ok(Self {
            name: format!(
                "Python PyTorch {mode}{}",
                if channels_last { " channels-last" } else { "" }
            ),
            python: crate::project::python_path(
                reference.python.as_ref(),
                crate::environment::TORCH_PYTHON,
                "torch-venv",
            ),
            script: reference_script("torch_loop.py")?,
            args: loop_args,
            _input: None,
        })
    }

    /// Runs the loop once; with `energy`, that rig's sensors are sampled meanwhile and cut to
    /// the loop's timed window, which it reports on the CLOCK_MONOTONIC clock.
    fn round(&self, energy: Option<&Rig>) -> Result<Round> {
        let clock = RunClock::start();
        let sampler = energy
            .map(|rig| start_sampler(rig, clock, &PhaseLog::new(), Rate::Full))
            .transpose()?;
        let output = Command::new(&self.python)
            .arg(&self.script)
            .args(&self.args)
            .output();
        let logs = sampler.map(Sampler::stop);
        let output = output.with_context(|| {
            format!(
                "cannot start {} (`make setup` creates the venvs)",
                self.python.display()
            )
        })?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            bail!(
                "{} failed: {}",
                self.name,
                err.lines().last().unwrap_or("no output")
            );
        }
        let out = ReferenceOutput::parse(&String::from_utf8_lossy(&output.stdout), &self.name)?;
        let round = Round {
            fps: out.fps,
            cpu_ms: out.cpu_ms,
            watts: None,
            per_joule: None,
        };
        let Some(logs) = logs else {
            return Ok(round);
        };
        // Both clocks run on CLOCK_MONOTONIC: shift the loop's window onto the run clock.
        let offset = clock.now() - monotonic_seconds();
        let window = (out.window.0 + offset, out.window.1 + offset);
        Ok(with_energy(round, &logs, window, out.inferences))
    }
}

/// What a reference loop prints: one JSON line, the last of its output.
#[derive(Debug, Clone, PartialEq)]
struct ReferenceOutput {
    fps: f64,
    cpu_ms: f64,
    /// The timed window on CLOCK_MONOTONIC.
    window: (f64, f64),
    inferences: f64,
}

impl ReferenceOutput {
    fn parse(stdout: &str, name: &str) -> Result<Self> {
        let json: serde_json::Value =
            serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
                .with_context(|| format!("{name} printed no JSON"))?;
        let number = |key: &str| {
            json[key]
                .as_f64()
                .with_context(|| format!("{name} printed no {key}"))
        };
        Ok(Self {
            fps: number("fps")?,
            cpu_ms: number("cpu_ms_per_inference")?,
            window: (number("start_monotonic")?, number("end_monotonic")?),
            inferences: number("inferences")?,
        })
    }
}

/// A reference loop's script, found at run time ([`crate::project::find`]) so an installed or
/// copied binary finds it.
fn reference_script(name: &str) -> Result<PathBuf> {
    crate::project::find(
        "analysis/reference",
        name,
        crate::environment::REFERENCE_DIR,
    )
}

/// Adds the first sensor's mean power and inferences per joule over `window`.
fn with_energy(
    round: Round,
    logs: &[SensorLog],
    (start, end): (f64, f64),
    inferences: f64,
) -> Round {
    let Some(e) = logs
        .first()
        .and_then(|log| summary::SensorEnergy::of(log).window(start, end))
    else {
        return round;
    };
    Round {
        watts: Some(e.mean_watts),
        per_joule: (e.joules > 0.0).then(|| inferences / e.joules),
        ..round
    }
}

/// Paired ratios, one per round ([`PairedRatios`]): drift between rounds cancels within each
/// pair. Every round ran, so the pairs are complete; a zero or missing figure is an error.
fn paired(values: &[f64], baseline: &[f64]) -> Result<PairedRatios> {
    PairedRatios::of(values, baseline).context("a round measured no rate to compare")
}

/// The rig's FPS with its sensors sampled at full rate against the sampler off.
fn sampler_overhead(
    backend: &mut PreparedBackend,
    threads: u32,
    cores: u32,
    protocol: &ProtocolSpec,
    rig: &Rig,
    rounds: usize,
    out: &mut Console,
) -> Result<()> {
    if rig.sensors.is_empty() {
        bail!("the rig has no sensors: nothing to measure the sampler's overhead with");
    }
    // With a real sensor the "off" side still reads it, slowly, so that both sides' watts
    // are measured and the difference is what full-rate sampling costs.
    let measured = measures_energy(rig);
    let off_sensors = measured.then_some((rig, Rate::Slow));
    let (mut on, mut off, mut cpu_share, mut rate) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut rounds_on, mut rounds_off) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Sampler-off first in every other round, so neither side always follows the other.
        let off_first = round % 2 == 0;
        let mut off_round = None;
        if off_first {
            off_round = Some(rig_round(backend, protocol, off_sensors)?.0);
        }
        let (on_round, sampler) = rig_round(backend, protocol, Some((rig, Rate::Full)))?;
        let off_round = match off_round {
            Some(r) => r,
            None => rig_round(backend, protocol, off_sensors)?.0,
        };
        let s = sampler.context("sampler stats missing")?;
        writeln!(
            out,
            "  round {round}: sampler on {on_round} ({:.0} reads/s, {:.2}% of a core), {} {off_round}",
            s.reads_per_s,
            s.cpu_share * 100.0,
            if measured { "slow" } else { "off" }
        )?;
        on.push(on_round.fps);
        off.push(off_round.fps);
        cpu_share.push(s.cpu_share);
        rate.push(s.reads_per_s);
        rounds_on.push(on_round);
        rounds_off.push(off_round);
    }
    if measured {
        writeln!(out, "{}", sampling_cost(&rounds_on, &rounds_off)?)?;
    }
    let ratios = paired(&on, &off)?;
    let interval = match ratios.interval() {
        Some((mean, low, high)) => {
            format!("geometric mean {mean:.4}, 95 % interval {low:.4} to {high:.4}")
        }
        None => "no interval from one round".into(),
    };
    let every_core = if threads >= cores {
        "every core busy".to_string()
    } else {
        format!("{threads} of {cores} cores busy")
    };
    writeln!(
        out,
        "sampler on vs off ({}, {threads} thread{}, {every_core}): median {:.1} vs {:.1} FPS; on/off {:.4} ({:+.2}%; {interval}; per-round ratios {}); sampler {:.0} reads/s using {:.2}% of a core ({:.2}% per sensor)",
        engine_label(backend.backend.engine()),
        if threads == 1 { "" } else { "s" },
        median(&on),
        median(&off),
        ratios.median,
        (ratios.median - 1.0) * 100.0,
        ratios.range(),
        median(&rate),
        median(&cpu_share) * 100.0,
        median(&cpu_share) * 100.0 / rig.sensors.len() as f64
    )?;
    Ok(())
}

/// What full-rate sampling costs where a real sensor measures both sides: watts, and
/// inferences per joule, each as the median of the per-round pairs.
fn sampling_cost(full: &[Round], slow: &[Round]) -> Result<String> {
    let of = |rounds: &[Round], f: fn(&Round) -> Option<f64>| -> Option<Vec<f64>> {
        rounds.iter().map(f).collect()
    };
    let (Some(w_full), Some(w_slow), Some(j_full), Some(j_slow)) = (
        of(full, |r| r.watts),
        of(slow, |r| r.watts),
        of(full, |r| r.per_joule),
        of(slow, |r| r.per_joule),
    ) else {
        return Ok("sampling cost: not every round measured its energy".into());
    };
    let extra: Vec<f64> = w_full.iter().zip(&w_slow).map(|(a, b)| a - b).collect();
    let per_joule = paired(&j_full, &j_slow)?;
    Ok(format!(
        "sampling cost (full rate against one read every {} ms, both measured): {:+.3} W median, inferences per joule x{:.4} (per-round ratios {})",
        SLOW_READ.as_millis(),
        median(&extra),
        per_joule.median,
        per_joule.range()
    ))
}

/// How often the sensors are read in a round.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    /// At the sensors' own update rate, as in a run.
    Full,
    /// One read every [`SLOW_READ`]: enough to measure, too little to cost anything.
    Slow,
}

const SLOW_READ: std::time::Duration = std::time::Duration::from_millis(250);

fn engine_label(e: &EngineInfo) -> String {
    format!("{} {} ({})", e.engine, e.version, e.accelerator)
}

struct SamplerStats {
    reads_per_s: f64,
    cpu_share: f64,
}

fn start_sampler(rig: &Rig, clock: RunClock, phases: &PhaseLog, rate: Rate) -> Result<Sampler> {
    let ctx = SensorContext::new(clock, phases.clone());
    // Every sensor, `optional` ones too: the overhead is that of sampling the whole rig.
    let specs: Vec<_> = rig.sensors.iter().map(|s| s.spec.clone()).collect();
    let mut sensors = sensor::open_all(&specs, &ctx)?;
    if rate == Rate::Slow {
        sensors = sensors
            .into_iter()
            .map(|s| crate::sampler::slowed(s, SLOW_READ))
            .collect();
    }
    Ok(Sampler::start(sensors, clock))
}

/// One protocol run in this process; with `sensors_of`, that rig's sensors are sampled
/// throughout at that rate and the round carries their energy over the timed window.
fn rig_round(
    b: &mut PreparedBackend,
    protocol: &ProtocolSpec,
    sensors_of: Option<(&Rig, Rate)>,
) -> Result<(Round, Option<SamplerStats>)> {
    let clock = RunClock::start();
    let phases = PhaseLog::new();
    let sampler = sensors_of
        .map(|(rig, rate)| start_sampler(rig, clock, &phases, rate))
        .transpose()?;
    let no_interrupt = AtomicBool::new(false);
    // One round is one repetition of the same protocol code `joulebench run` uses.
    let once = ProtocolSpec {
        repeat: 1,
        ..protocol.clone()
    };
    let on = Measuring {
        clock,
        phases: &phases,
        backend: 0,
        interrupt: &no_interrupt,
        progress: false,
        latencies: None,
        repetitions: None,
        // A bench round's GPU state is not recorded: it writes no run.json.
        gpus: &[],
        until: None,
    };
    let run = run_repetitions(b, &once, &on)
        .pop()
        .context("the protocol ran no repetition")?;
    let wall = clock.now();
    let logs = sampler.map(Sampler::stop);
    if let Some(e) = run.error {
        bail!("{e}");
    }
    let mut round = Round {
        fps: run.fps().context("no timed classifications")?,
        cpu_ms: run.cpu_seconds * 1e3 / run.inferences() as f64,
        watts: None,
        per_joule: None,
    };
    let stats = logs.map(|logs| {
        if let Some(window) = run.window {
            round = with_energy(round, &logs, window, run.inferences() as f64);
        }
        let reads: usize = logs.iter().map(|l| l.samples.len()).sum();
        let cpu: f64 = logs.iter().map(|l| l.cpu_time.as_secs_f64()).sum();
        SamplerStats {
            reads_per_s: reads as f64 / wall,
            cpu_share: cpu / wall,
        }
    });
    Ok((round, stats))
}

fn median(values: &[f64]) -> f64 {
    Data::new(values.to_vec()).median()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_cost_is_the_paired_difference_of_measured_rounds() {
        let round = |watts: f64, per_joule: f64| Round {
            fps: 100.0,
            cpu_ms: 10.0,
            watts: Some(watts),
            per_joule: Some(per_joule),
        };
        let full = [round(4.1, 24.0), round(4.2, 23.0), round(4.0, 25.0)];
        let slow = [round(4.0, 25.0), round(4.0, 24.0), round(3.9, 25.0)];
        // Extra watts 0.1, 0.2, 0.1; inferences per joule ratios 0.96, 0.9583, 1.0.
        assert_eq!(
            sampling_cost(&full, &slow).unwrap(),
            "sampling cost (full rate against one read every 250 ms, both measured): +0.100 W \
             median, inferences per joule x0.9600 (per-round ratios 0.958 to 1.000)"
        );
        let unmeasured = [Round {
            watts: None,
            ..round(4.0, 24.0)
        }];
        assert!(sampling_cost(&unmeasured, &slow[..1])
            .unwrap()
            .contains("not every round measured"));
    }

    #[test]
    fn best_reference_mode_is_compiled_on_a_gpu_and_eager_on_a_cpu() {
        use ReferenceMode::*;
        assert_eq!(Best.resolve(Device::Cuda(0)), ("compile", true));
        assert_eq!(Best.resolve(Device::Cpu), ("eager", false));
        assert_eq!(Graph.resolve(Device::Cuda(1)), ("graph", false));
        assert_eq!(Compile.resolve(Device::Cpu), ("compile", true));
    }

    /// The PyTorch reference loop in each mode this machine can run: the same top-1 and the
    /// output `bench` parses; graph replay without a GPU is refused in one line.
    #[test]
    fn the_torch_reference_loop_runs_in_every_mode_the_device_allows() {
        let python =
            crate::project::python_path(None, crate::environment::TORCH_PYTHON, "torch-venv");
        let has_torch = Command::new(&python)
            .args(["-c", "import torch, safetensors"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            has_torch,
            "{} has no torch (make setup creates the venv)",
            python.display()
        );
        let manifest = crate::models::Manifest::load_default().unwrap();
        let model = manifest.open_model("mobilenet_v2_1.0_224_quant").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(model.path.file_name().unwrap());
        std::fs::copy(&model.path, &copy).unwrap();
        let weights = crate::models::ensure_float_weights(&copy).unwrap();
        let image = manifest.open_image("parrot.jpg").unwrap();
        let script = reference_script("torch_loop.py").unwrap();
        let run = |mode: &str, extra: &[&str]| {
            Command::new(&python)
                .arg(&script)
                .args(["--weights", weights.to_str().unwrap()])
                .args(["--image", image.path.to_str().unwrap()])
                .args(["--runs", "5", "--settle", "0", "--mode", mode])
                .args(extra)
                .output()
                .unwrap()
        };
        let want = image
            .expected_top1("mobilenet_v2_1.0_224_quant")
            .unwrap()
            .index;
        for (mode, extra) in [("eager", &[][..]), ("eager", &["--channels-last"][..])] {
            let out = run(mode, extra);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{mode}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: serde_json::Value =
                serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
            assert_eq!(json["top1"].as_u64(), Some(want as u64), "{mode} {extra:?}");
            assert!(ReferenceOutput::parse(&stdout, mode).unwrap().fps > 0.0);
        }
        let out = run("graph", &[]);
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "--mode graph needs a CUDA device"
        );
    }

    #[test]
    fn reference_output_carries_the_timed_window() {
        let stdout = "XNNPACK delegate created\n{\"fps\": 150.0, \"cpu_ms_per_inference\": 6.5, \
                      \"start_monotonic\": 100.5, \"end_monotonic\": 102.5, \"inferences\": 300}";
        let out = ReferenceOutput::parse(stdout, "loop").unwrap();
        assert_eq!(
            out,
            ReferenceOutput {
                fps: 150.0,
                cpu_ms: 6.5,
                window: (100.5, 102.5),
                inferences: 300.0
            }
        );
        let old = "{\"fps\": 150.0, \"cpu_ms_per_inference\": 6.5}";
        let e = ReferenceOutput::parse(old, "loop").unwrap_err();
        assert_eq!(e.to_string(), "loop printed no start_monotonic");
    }

    /// The reference loop's timed window lands among the rig's sensor readings, so a rig with
    /// a sensor gets both sides' watts (a simulated INA219 stands in for a real one here:
    /// `measures_energy` leaves simulated boards out of real benchmarks, not of this path).
    #[test]
    fn a_reference_round_with_a_sensor_gets_its_energy() {
        let python = crate::project::python_path(None, crate::environment::PYTHON, "venv");
        assert!(
            python.is_file(),
            "no {} (`make setup` creates it)",
            python.display()
        );
        let rig = Rig::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rigs/sim-cpu.toml"
        )))
        .unwrap();
        let backend = prepare_backend(&rig.backends[0]).unwrap();
        let protocol = ProtocolSpec {
            runs: 20,
            settle_s: 0.1,
            ..rig.protocol.clone()
        };
        let reference_loop = ReferenceLoop {
            python: None,
            mode: ReferenceMode::Best,
        };
        let reference = Reference::for_backend(&backend, &protocol, &reference_loop).unwrap();
        let round = reference.round(Some(&rig)).unwrap();
        let (watts, per_joule) = (round.watts.unwrap(), round.per_joule.unwrap());
        // The simulated board follows this process's phases, not the loop's: it stays at its
        // 2.03 W idle draw (rigs/sim-cpu.toml). A real sensor would see the loop's load.
        assert!((1.9..2.2).contains(&watts), "{watts} W");
        assert!(
            (per_joule - round.fps / watts).abs() / per_joule < 0.05,
            "{round}"
        );
    }

    /// A model of several inputs (an image and int16 and float16 data) and outputs, not a
    /// classifier: the Python loop feeds the rig's own bytes, every input, and runs.
    #[test]
    fn the_reference_loop_runs_a_model_of_several_inputs_on_the_rigs_bytes() {
        use joulebench_test_support::{passthrough_model, Element, IoTensor};
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("several.tflite");
        let inputs = [
            IoTensor::new("frame", Element::Uint8, &[1, 8, 8, 3]).quantized(1.0 / 128.0, 128),
            IoTensor::new("features", Element::Int16, &[1, 10]),
            IoTensor::new("mask", Element::Float16, &[2, 5]),
        ];
        std::fs::write(
            &model,
            passthrough_model(&inputs, &[(1, vec![10]), (0, vec![192]), (2, vec![10])]),
        )
        .unwrap();
        let spec = BackendSpec::Tflite(TfliteSpec {
            model: model.to_str().unwrap().into(),
            image: "bird.bmp".into(),
            ..TfliteSpec::default()
        });
        let backend = prepare_backend(&spec).unwrap();
        assert_eq!(backend.input.len(), 192 + 20 + 20);
        let protocol = ProtocolSpec {
            runs: 20,
            settle_s: 0.0,
            ..ProtocolSpec::default()
        };
        let reference_loop = ReferenceLoop {
            python: None,
            mode: ReferenceMode::Best,
        };
        let reference = Reference::for_backend(&backend, &protocol, &reference_loop).unwrap();
        let round = reference.round(None).unwrap();
        assert!(round.fps > 0.0, "{round}");
    }
}
