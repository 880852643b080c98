//! `joulebench run`: the rig resolved with the command line's settings, measured into a
//! claimed run folder, its table printed and its exports written; `--open-only` opens the
//! backends and stops. `soak` measures through the same [`measure`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::export_args::{exports_written, ExportArgs};
use super::DEFAULT_RIG;
use crate::export;
use crate::output::{self, console::Console};
use crate::project::RigSource;
use crate::rig::{BackendKind, BackendSpec, Device, Engine, Precision, Rig, Scenario};
use crate::runner::{self, RunOptions};
use crate::signals::{self, Stage};
use crate::{soak, summary};

#[derive(clap::Args, Default)]
pub struct RunArgs {
    /// Rig file, or a rig's name: rigs/NAME.toml under the current folder, then
    /// ~/.config/joulebench/rigs/NAME.toml, then the rigs built in (sim-cpu, rpi3-cpu, ...).
    #[arg(long, default_value = DEFAULT_RIG)]
    pub rig: String,
    /// Output folder (new or empty); default results/<rig>-<UTC timestamp>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Model for every backend (manifest name or path).
    #[arg(long)]
    pub model: Option<String>,
    /// Image for every backend (manifest name or path).
    #[arg(long)]
    pub image: Option<String>,
    /// Threads for every backend.
    #[arg(long)]
    pub threads: Option<u32>,
    /// Backend kind for every backend: tflite (int8) or torch (float, libtorch).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Engine for tflite backends (default: litert where its library is found, else tflite).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Device for torch backends: cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<Device>,
    /// Precision for torch backends.
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Images per inference for torch backends (more than 1 needs --scenario offline). A list
    /// (`1,8,64,256`) runs each torch backend once per batch and prints inferences per joule
    /// by batch, marking the most efficient.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub batch: Vec<u32>,
    /// single-stream (batch 1, latency; the 2019 method) or offline (batches, throughput).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Run LiteRT without XNNPACK (its builtin kernels).
    #[arg(long)]
    pub no_xnnpack: bool,
    /// Run torch backends eager, without CUDA graphs (`cuda_graph = false`).
    #[arg(long)]
    pub no_cuda_graph: bool,
    /// Run torch backends on eager kernels, without an AOTInductor package (`aoti = false`).
    #[arg(long, conflicts_with = "aoti")]
    pub no_aoti: bool,
    /// Run torch backends as AOTInductor packages, on the CPU too (`aoti = true`).
    #[arg(long)]
    pub aoti: bool,
    /// Keep torch backends' activations channels-last (`channels_last = true`).
    #[arg(long)]
    pub channels_last: bool,
    /// Open every backend (verify its model, compile its AOTInductor package where it needs
    /// one) and exit without measuring: a bench session's first run then starts at once.
    #[arg(long)]
    pub open_only: bool,
    /// Timed classifications.
    #[arg(long)]
    pub runs: Option<u32>,
    /// Warm-up classifications.
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Seconds between warm-up and the timed run.
    #[arg(long)]
    pub settle: Option<f64>,
    /// Run the whole protocol this many times per backend (sensors kept open); from 2 on the
    /// summary adds an aggregate row with confidence intervals.
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Run the protocol once first, then range every INA219 from 1.1 × the peak current it
    /// saw (max_current_a, calibration and PGA range) for the measured run.
    #[arg(long)]
    pub ranging: bool,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Also write LAVA test-case lines (one per figure) to this file.
    #[arg(long)]
    pub export_lava: Option<PathBuf>,
}

/// Each torch backend once per batch of `batches`, in the rig's order; other kinds get the
/// list too, which the rig's checks refuse (batch is a torch key).
fn sweep_batches(backends: &[BackendSpec], batches: &[u32]) -> Vec<BackendSpec> {
    backends
        .iter()
        .flat_map(|b| {
            batches.iter().map(|&batch| BackendSpec {
                batch: Some(batch),
                ..b.clone()
            })
        })
        .collect()
}

pub fn load_rig(arg: &str, args: Option<&RunArgs>) -> Result<(Rig, RigSource)> {
    let (mut rig, source) = Rig::find(arg)?;
    if let Some(a) = args {
        for b in &mut rig.backends {
            if let Some(kind) = a.backend.filter(|k| *k != b.kind) {
                // Settings of the other kind would no longer apply.
                *b = BackendSpec {
                    kind,
                    model: b.model.clone(),
                    image: b.image.clone(),
                    threads: b.threads,
                    ..BackendSpec::new(kind)
                };
            }
            b.model = a.model.clone().unwrap_or(b.model.clone());
            b.image = a.image.clone().unwrap_or(b.image.clone());
            b.threads = a.threads.unwrap_or(b.threads);
            b.engine = a.engine.or(b.engine);
            b.device = a.device.or(b.device);
            b.precision = a.precision.or(b.precision);
            if let [batch] = a.batch[..] {
                b.batch = Some(batch);
            }
            if a.no_xnnpack {
                b.xnnpack = Some(false);
            }
            // Only where it applies: the key is refused on other kinds.
            if b.kind == BackendKind::Torch {
                if a.no_cuda_graph {
                    b.cuda_graph = Some(false);
                }
                if a.no_aoti || a.aoti {
                    b.aoti = Some(a.aoti);
                }
                if a.channels_last {
                    b.channels_last = Some(true);
                }
            }
        }
        if a.batch.len() > 1 {
            rig.backends = sweep_batches(&rig.backends, &a.batch);
        }
        let p = &mut rig.protocol;
        p.runs = a.runs.unwrap_or(p.runs);
        p.warmup = a.warmup.unwrap_or(p.warmup);
        p.settle_s = a.settle.unwrap_or(p.settle_s);
        p.scenario = a.scenario.unwrap_or(p.scenario);
        p.repeat = a.repeat.unwrap_or(p.repeat);
        p.ranging |= a.ranging;
        rig.validate().with_context(|| "command-line settings")?;
    }
    Ok((rig, source))
}

/// A run measured and its files written; the folder still claimed.
pub struct Measured {
    pub run_dir: output::RunDir,
    pub rows: Vec<summary::SummaryRow>,
    pub record: runner::RunRecord,
    /// The first streaming write that failed, if one did.
    pub stream_error: Option<String>,
    /// The soak monitor, where one was asked for.
    pub monitor: Option<soak::Monitor>,
}

/// Claims the output folder, loads the rig, measures it (for `time_budget` if given, with the
/// soak monitor if `monitor`) and writes the run's files.
pub fn measure(
    args: &RunArgs,
    time_budget: Option<std::time::Duration>,
    monitor: bool,
) -> Result<Measured> {
    let interrupt = signals::install()?;
    let (rig, source) = load_rig(&args.rig, Some(args))?;
    // Claimed before any model loads or sensor opens: a folder that cannot take the results,
    // or that another run holds, must not cost a measurement; nor must an export file that
    // cannot be written.
    let run_dir = signals::hold(|| {
        // A default folder is new and named by the clock: no export can be in it yet.
        let out: Vec<&Path> = args.out.as_deref().into_iter().collect();
        args.export.check(&out)?;
        if let Some(path) = &args.export_lava {
            export::check_output("--export-lava", path, &out)?;
        }
        let claimed = output::create_run_dir(args.out.as_deref(), &rig.name, chrono::Utc::now())?;
        signals::on_exit(claimed.releaser());
        anyhow::Ok(claimed)
    })?;
    let dir = run_dir.path();
    let options = RunOptions {
        interrupt,
        progress: true,
        sample: true,
        time_budget,
    };
    let (rig, ranged) = if rig.protocol.ranging {
        eprintln!("joulebench: ranging pass: the protocol once, to set each INA219's range");
        let (rig, ranged) = crate::ranging::range(&rig, &source.text, &options)?;
        for line in crate::ranging::describe(&ranged) {
            eprintln!("joulebench: {line}");
        }
        (rig, ranged)
    } else {
        (rig, Vec::new())
    };
    let prepared = runner::prepare(rig, source.text)?;
    if let Some(choice) = &prepared.sensor_choice {
        eprintln!("joulebench: {}", choice.line);
    }
    for (i, b) in prepared.backends.iter().enumerate() {
        if let Some(note) = &b.engine_note {
            eprintln!("joulebench: backend {i}: {note}");
        }
    }
    eprintln!(
        "joulebench: running rig {} ({}) into {}",
        prepared.rig.name,
        source.origin,
        dir.display()
    );
    let argv: Vec<String> = std::env::args().collect();
    // The rows go to disk as they are measured, so a killed run leaves them behind.
    let to = output::stream::StreamTo {
        dir: dir.to_path_buf(),
        command: argv.clone(),
        ranging: ranged.clone(),
    };
    signals::set_stage(Stage::Measuring);
    // Started once everything is loaded: its first row is the memory a run starts from.
    let monitor = monitor.then(|| soak::Monitor::start(dir)).transpose()?;
    let (mut record, stream_error) = prepared.execute_streaming(&options, &to.starter())?;
    record.ranging = ranged;
    let rows = summary::summarize(&record);
    signals::set_stage(Stage::Writing);
    output::files::write_final(dir, &record, &rows, &argv)?;
    Ok(Measured {
        run_dir,
        rows,
        record,
        stream_error,
        monitor,
    })
}

pub fn run(args: RunArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    if args.open_only {
        return open_only(&args, out);
    }
    let Measured {
        run_dir,
        rows,
        stream_error,
        ..
    } = measure(&args, None, false)?;
    let dir = run_dir.path();
    let table = output::table::columns(&rows);
    let json = serde_json::to_value(&rows)?;
    let mut failed = args.export.write(&table, &json);
    if let Some(path) = &args.export_lava {
        if let Err(e) = export::write_output("--export-lava", path, &export::lava::lines(&rows)) {
            failed.push(e);
        }
    }
    signals::set_stage(Stage::Written);
    let printed = print_results(out, &output::table::render(&rows), dir);
    // The table and the other files are out; a failed export still fails the command.
    exports_written(failed)?;
    finish(&rows, dir, stream_error, printed)
}

/// `run --open-only`: each backend opened as a run would, one line each, nothing measured.
fn open_only(args: &RunArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    let (rig, _) = load_rig(&args.rig, Some(args))?;
    for (i, spec) in rig.backends.iter().enumerate() {
        let start = std::time::Instant::now();
        let prepared = crate::runner::prepare_backend(spec)
            .with_context(|| format!("backend {i} ({})", spec.kind.as_str()))?;
        let engine = prepared.backend.engine();
        writeln!(
            out,
            "backend {i}: {} {} on {}, batch {}, opened in {:.1} s{}",
            engine.engine,
            engine.version,
            engine.accelerator,
            prepared.backend.batch(),
            start.elapsed().as_secs_f64(),
            prepared
                .engine_note
                .map_or(String::new(), |note| format!(" ({note})"))
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit of a run whose files are written and whose table was printed (`printed`): a
/// failed stream, a signal, a print that failed or a row that is not `ok`, in that order.
pub fn finish(
    rows: &[summary::SummaryRow],
    dir: &std::path::Path,
    stream_error: Option<String>,
    printed: Result<()>,
) -> Result<ExitCode> {
    if let Some(e) = stream_error {
        anyhow::bail!("{e}; the summary is complete, the rows after that are not");
    }
    // A signal while the files were written ended nothing early: the rows say `ok`, but the
    // exit status still tells a caller the run was signalled. After SIGHUP the terminal may be
    // gone, so a failed print is no error then.
    if let Some(signal) = signals::received() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr().lock(),
            "joulebench: interrupted by {}; what was measured is in {}",
            signals::name(signal),
            dir.display()
        );
        return Ok(ExitCode::from(signals::exit_code(signal)));
    }
    printed?;
    if let Some(problem) = rows.iter().find(|r| !r.status.is_ok()) {
        anyhow::bail!("{}; partial results in {}", problem.status, dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a run's table and folder, after its files are written. A reader that stopped
/// reading is no error, but stdout could not show the folder: one line on stderr names it. Any
/// other failed print is the run's error, naming the folder that holds the results.
pub fn print_results(
    out: &mut Console<impl std::io::Write>,
    table: &str,
    dir: &std::path::Path,
) -> Result<()> {
    write!(out, "{table}")
        .and_then(|()| writeln!(out, "results: {}", dir.display()))
        .map_err(|e| anyhow::anyhow!("{e:#}; the results are in {}", dir.display()))?;
    if out.closed() {
        eprintln!(
            "joulebench: stdout was closed before the table was printed; the results are in {}",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::Command;
    use super::*;

    fn args(line: &[&str]) -> RunArgs {
        match parse(&[&["run"], line].concat()).unwrap().command {
            Command::Run(args) => args,
            _ => unreachable!("a run command line"),
        }
    }

    #[test]
    fn the_command_line_overrides_the_rig() {
        let a = args(&[
            "--rig",
            "sim-cpu",
            "--threads",
            "3",
            "--runs",
            "7",
            "--repeat",
            "2",
        ]);
        let (rig, _) = load_rig(&a.rig, Some(&a)).unwrap();
        assert_eq!((rig.protocol.runs, rig.protocol.repeat), (7, 2));
        assert!(rig.backends.iter().all(|b| b.threads == 3));
        let a = args(&["--rig", "sim-cpu", "--no-xnnpack", "--model", "m.tflite"]);
        let (rig, _) = load_rig(&a.rig, Some(&a)).unwrap();
        assert!(rig
            .backends
            .iter()
            .all(|b| b.xnnpack == Some(false) && b.model == "m.tflite"));
    }

    #[test]
    fn another_backend_kind_drops_the_settings_of_the_old_one() {
        let a = args(&["--rig", "sim-cpu", "--backend", "torch"]);
        let (rig, _) = load_rig(&a.rig, Some(&a)).unwrap();
        assert!(rig
            .backends
            .iter()
            .all(|b| b.kind == BackendKind::Torch && b.xnnpack.is_none()));
    }

    #[test]
    fn a_batch_list_sweeps_every_backend() {
        let a = args(&[
            "--rig",
            "sim-cpu",
            "--backend",
            "torch",
            "--scenario",
            "offline",
            "--batch",
            "1,8,64",
        ]);
        let (rig, _) = load_rig(&a.rig, Some(&a)).unwrap();
        let batches: Vec<Option<u32>> = rig.backends.iter().map(|b| b.batch).collect();
        assert_eq!(batches, [Some(1), Some(8), Some(64)]);
    }

    #[test]
    fn settings_that_conflict_are_refused_in_one_line() {
        let a = args(&[
            "--rig",
            "sim-cpu",
            "--backend",
            "torch",
            "--engine",
            "litert",
        ]);
        let e = format!("{:#}", load_rig(&a.rig, Some(&a)).unwrap_err());
        assert!(
            e.starts_with("command-line settings: backends[0]: engine") && !e.contains('\n'),
            "{e}"
        );
        let a = args(&["--rig", "sim-cpu", "--runs", "0"]);
        let e = format!("{:#}", load_rig(&a.rig, Some(&a)).unwrap_err());
        assert!(e.contains("protocol.runs must be at least 1"), "{e}");
    }

    #[test]
    fn a_run_ends_with_its_first_problem() {
        let dir = Path::new("R");
        let e = finish(&[], dir, Some("cannot write x".into()), Ok(())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write x; the summary is complete, the rows after that are not"
        );
        assert!(finish(&[], dir, None, Ok(())).is_ok());
        let e = finish(&[], dir, None, Err(anyhow::anyhow!("cannot print"))).unwrap_err();
        assert_eq!(e.to_string(), "cannot print");
    }
}
