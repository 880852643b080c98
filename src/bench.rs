//! `joulebench bench`: the rig measured against itself and against a reference.
//!
//! Two comparisons, each alternating its contenders round by round so that drift in the
//! machine (thermal, other load) hits both sides alike, and each printed as medians with the
//! ratio measured side by side in this one run:
//! 1. rig FPS against a Python loop of the same method on Google's `ai-edge-litert` runtime
//!    (same model, image, threads);
//! 2. rig FPS with the sampler reading the rig's sensors at full rate against the sampler off,
//!    with the sampler's own CPU use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use statrs::statistics::{Data, OrderStatistics};

use crate::clock::{PhaseLog, RunClock};
use crate::protocol;
use crate::rig::{ProtocolSpec, Rig};
use crate::runner::{prepare_backend, PreparedBackend};
use crate::sampler::Sampler;
use crate::sensor::{self, SensorContext};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rig whose first backend (and sensors) are benchmarked.
    #[arg(long, default_value = "rigs/sim-cpu.toml")]
    pub rig: PathBuf,
    /// Rounds of each contender, alternating.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Model for the backend (manifest name or path).
    #[arg(long)]
    pub model: Option<String>,
    /// Threads for the backend and the reference.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Timed classifications per round.
    #[arg(long, default_value_t = 250)]
    pub runs: u32,
    /// Python with `ai-edge-litert`; default $JOULEBENCH_PYTHON, else the project venv.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the Python reference comparison.
    #[arg(long)]
    pub no_reference: bool,
    /// Skip the sampler-overhead comparison.
    #[arg(long)]
    pub no_sampler: bool,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let mut rig = Rig::load(&args.rig)?;
    let backend_spec = rig.backends.first_mut().context("the rig has no backend")?;
    if let Some(model) = &args.model {
        backend_spec.model = model.clone();
    }
    if let Some(threads) = args.threads {
        backend_spec.threads = threads;
    }
    let protocol = ProtocolSpec {
        runs: args.runs,
        ..rig.protocol.clone()
    };
    let mut backend = prepare_backend(backend_spec)?;
    let engine = backend.backend.engine().clone();
    println!(
        "bench: {} {} ({} thread{}), model {}, image {}, {} timed classifications, {} rounds",
        engine.engine,
        engine.version,
        engine.threads,
        if engine.threads == 1 { "" } else { "s" },
        backend.model.name,
        backend.image.name,
        args.runs,
        args.rounds
    );

    if !args.no_reference {
        let python = python_path(args.python.as_ref());
        let (mut rig_fps, mut ref_fps) = (Vec::new(), Vec::new());
        for round in 1..=args.rounds {
            rig_fps.push(rig_round(&mut backend, &protocol, None)?.0);
            let r = reference_round(&python, &backend, &protocol)?;
            ref_fps.push(r);
            println!(
                "  round {round}: rig {:.1} FPS, reference {:.1} FPS",
                rig_fps[round - 1],
                r
            );
        }
        let (a, b) = (median(&rig_fps), median(&ref_fps));
        println!(
            "rig vs Python ai-edge-litert: median {a:.1} vs {b:.1} FPS, ratio rig/reference {:.3}",
            a / b
        );
    }

    if !args.no_sampler {
        if rig.sensors.is_empty() {
            bail!("the rig has no sensors: nothing to measure the sampler's overhead with");
        }
        let (mut on, mut off, mut cpu_share, mut rate) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 1..=args.rounds {
            let (fps_on, sampler) = rig_round(&mut backend, &protocol, Some(&rig))?;
            let (fps_off, _) = rig_round(&mut backend, &protocol, None)?;
            let s = sampler.context("sampler stats missing")?;
            println!(
                "  round {round}: sampler on {fps_on:.1} FPS ({:.0} reads/s, {:.2}% of a core), off {fps_off:.1} FPS",
                s.reads_per_s,
                s.cpu_share * 100.0
            );
            on.push(fps_on);
            off.push(fps_off);
            cpu_share.push(s.cpu_share);
            rate.push(s.reads_per_s);
        }
        let (a, b) = (median(&on), median(&off));
        println!(
            "sampler on vs off: median {a:.1} vs {b:.1} FPS, ratio on/off {:.4} ({:+.2}%); sampler {:.0} reads/s using {:.2}% of a core",
            a / b,
            (a / b - 1.0) * 100.0,
            median(&rate),
            median(&cpu_share) * 100.0
        );
    }
    Ok(())
}

struct SamplerStats {
    reads_per_s: f64,
    cpu_share: f64,
}

/// One protocol run in this process; with `sensors_of`, that rig's sensors are sampled
/// throughout.
fn rig_round(
    b: &mut PreparedBackend,
    protocol: &ProtocolSpec,
    sensors_of: Option<&Rig>,
) -> Result<(f64, Option<SamplerStats>)> {
    let clock = RunClock::start();
    let phases = PhaseLog::new();
    let sampler = match sensors_of {
        Some(rig) => {
            let ctx = SensorContext {
                clock,
                phases: phases.clone(),
            };
            let sensors = rig
                .sensors
                .iter()
                .map(|s| sensor::open(s, &ctx))
                .collect::<Result<Vec<_>>>()?;
            Some(Sampler::start(sensors, clock))
        }
        None => None,
    };
    let no_interrupt = AtomicBool::new(false);
    let progress = ProgressBar::hidden();
    let run = protocol::run(
        b.backend.as_mut(),
        &b.input,
        protocol,
        &protocol::Context {
            clock,
            phases: &phases,
            backend: 0,
            interrupt: &no_interrupt,
            progress: &progress,
        },
    );
    let wall = clock.now();
    let stats = sampler.map(|s| {
        let logs = s.stop();
        let reads: usize = logs.iter().map(|l| l.samples.len()).sum();
        let cpu: f64 = logs.iter().map(|l| l.cpu_time.as_secs_f64()).sum();
        SamplerStats {
            reads_per_s: reads as f64 / wall,
            cpu_share: cpu / wall,
        }
    });
    if let Some(e) = run.error {
        bail!("{e}");
    }
    Ok((run.fps().context("no timed classifications")?, stats))
}

fn reference_round(python: &PathBuf, b: &PreparedBackend, protocol: &ProtocolSpec) -> Result<f64> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analysis/reference/litert_loop.py"
    );
    let output = Command::new(python)
        .arg(script)
        .arg("--model")
        .arg(&b.model.path)
        .arg("--image")
        .arg(&b.image.path)
        .args(["--threads", &b.backend.engine().threads.to_string()])
        .args(["--runs", &protocol.runs.to_string()])
        .args(["--warmup", &protocol.warmup.to_string()])
        .args(["--settle", &protocol.settle_s.to_string()])
        .output()
        .with_context(|| {
            format!(
                "cannot start {} (run `make setup` to create the venv)",
                python.display()
            )
        })?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        bail!(
            "reference loop failed: {}",
            err.lines().last().unwrap_or("no output")
        );
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .context("reference loop printed no JSON")?;
    json["fps"]
        .as_f64()
        .context("reference loop printed no fps")
}

fn python_path(given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .or_else(|| std::env::var_os("JOULEBENCH_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| crate::cache_dir().join("venv/bin/python3"))
}

fn median(values: &[f64]) -> f64 {
    Data::new(values.to_vec()).median()
}
