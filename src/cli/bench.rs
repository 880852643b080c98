//! `joulebench bench`: its flags resolved into a [`Bench`] (the rig's first backend with the
//! command line's model and threads, checked as a run's are, and the engines to compare),
//! which [`crate::bench`] measures.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::bench::{Bench, ReferenceLoop, ReferenceMode};
use crate::output::console::Console;
use crate::rig::{Engine, ProtocolSpec, Rig, Workload};

/// The most rounds `--rounds` takes: their medians settle long before, and each round runs the
/// protocol on every contender and the Python reference.
const MAX_ROUNDS: u64 = 1000;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rig whose first backend (and sensors) are benchmarked.
    #[arg(long, default_value = "sim-cpu")]
    pub rig: String,
    /// Rounds of each contender, alternating (1 to 1000; medians of no rounds are NaN).
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_ROUNDS))]
    pub rounds: usize,
    /// Model for the backend (manifest name or path).
    #[arg(long)]
    pub model: Option<String>,
    /// Threads for the backend and the reference.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Rig engines to compare, in turn (default: the rig's own).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub engines: Option<Vec<Engine>>,
    /// Timed classifications per round (1 to 1000000, as a rig's runs).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::rig::MAX_RUNS)))]
    pub runs: u32,
    /// Python for the reference loop; default $JOULEBENCH_PYTHON (with `ai-edge-litert`) or
    /// $JOULEBENCH_TORCH_PYTHON (with torch), else the project's venvs.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the Python reference comparison.
    #[arg(long)]
    pub no_reference: bool,
    /// How the PyTorch reference loop runs its forward pass (torch backends): `best` is the
    /// fastest PyTorch offers on the backend's device.
    #[arg(long, value_enum, default_value_t = ReferenceMode::Best)]
    pub reference_mode: ReferenceMode,
    /// Skip the sampler-overhead comparison.
    #[arg(long)]
    pub no_sampler: bool,
}

pub fn run(args: &BenchArgs, out: &mut Console) -> Result<ExitCode> {
    crate::bench::run(&bench(args)?, out)?;
    Ok(ExitCode::SUCCESS)
}

/// The bench `args` ask for, checked before any model loads.
fn bench(args: &BenchArgs) -> Result<Bench> {
    let (mut rig, _) = Rig::find(&args.rig)?;
    let backend_spec = rig.backends.first_mut().context("the rig has no backend")?;
    let workload = backend_spec.workload();
    backend_spec.set_workload(Workload {
        model: args.model.clone().unwrap_or(workload.model),
        threads: args.threads.unwrap_or(workload.threads),
        ..workload
    });
    let protocol = ProtocolSpec {
        runs: args.runs,
        ..rig.protocol.clone()
    };
    // Checked as a run's are, before any model loads (the sampler comparison runs on these
    // threads, or on every core).
    let cores = crate::plan::usable_cores();
    backend_spec
        .validate(protocol.scenario == crate::rig::Scenario::Offline)
        .map_err(anyhow::Error::msg)
        .and_then(|()| crate::plan::check_threads(std::slice::from_ref(backend_spec), cores))
        .context("command-line settings")?;
    // One contender per engine; the first is the rig's own choice.
    let engines = match (&args.engines, backend_spec.tflite()) {
        (Some(list), Some(_)) => list.iter().map(|e| Some(*e)).collect(),
        (Some(_), None) => bail!(
            "--engines applies to a tflite backend; the rig's first backend is {}",
            backend_spec.kind().as_str()
        ),
        (None, tflite) => vec![tflite.and_then(|s| s.engine)],
    };
    // Every contender is opened before the first round: an engine named twice would load its
    // model again to measure the same thing.
    let list = args.engines.as_deref().unwrap_or_default();
    if let Some(twice) = (1..list.len()).find(|&n| list[..n].contains(&list[n])) {
        bail!(
            "--engines names {} twice: name each engine once",
            list[twice].as_str()
        );
    }
    Ok(Bench {
        rig,
        protocol,
        engines,
        rounds: args.rounds,
        threads: args.threads,
        reference: (!args.no_reference).then(|| ReferenceLoop {
            python: args.python.clone(),
            mode: args.reference_mode,
        }),
        sampler: !args.no_sampler,
    })
}
