//! The `joulebench` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use joulebench::output::console::Console;
use joulebench::project::RigSource;
use joulebench::rig::{BackendKind, BackendSpec, Device, Engine, Precision, Rig, Scenario};
use joulebench::runner::{self, RunOptions};
use joulebench::signals::{self, Stage};
use joulebench::{bench, export, models, output, sensor, soak, summary};

/// Measures how much ML inference a machine does per joule.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The rig `run` and `sensors` use unless told otherwise (a built-in rig's name): this
/// machine's own meters where they are readable, else a simulated board.
const DEFAULT_RIG: &str = "local";

#[derive(Subcommand)]
enum Command {
    /// Run the benchmark protocol on every backend of a rig while sampling its sensors.
    Run(RunArgs),
    /// List, fetch or verify the model, label and image files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Read each sensor of a rig once, or list this machine's meters (--detect).
    Sensors {
        /// Rig file, or the name of a rig (see `run --rig`).
        #[arg(long, default_value = DEFAULT_RIG)]
        rig: String,
        /// List the meters this machine offers (RAPL, hwmon, INA3221 under /sys or
        /// $JOULEBENCH_ROOT/sys; NVML GPUs), whether each can be read now and why not, and
        /// a rig snippet for the readable ones. Ignores --rig.
        #[arg(long)]
        detect: bool,
    },
    /// Derive an INA219's shunt correction from a reference reading and write it into the rig.
    Calibrate(CalibrateArgs),
    /// Compare the rig against a Python reference loop, and measure the sampler's overhead.
    Bench(bench::BenchArgs),
    /// Compare inferences per joule across run folders, against a baseline.
    Compare(CompareArgs),
    /// Write a Markdown report with SVG charts of run folders.
    Report(ReportArgs),
    /// Repeat a rig's protocol for an hour (or --minutes): check that memory stays bounded,
    /// no reading is dropped and latency does not drift.
    Soak(SoakArgs),
    /// Rebuild a run folder's summary.csv from its rows (a run that was killed included).
    Summarize {
        /// The run folder.
        dir: PathBuf,
    },
}

/// The reference and its uncertainty are checked in `calibrate`, not by clap, so a missing one
/// is the usual one-line error.
#[derive(clap::Args)]
struct CalibrateArgs {
    /// Rig file, or a rig's name (see `run --rig`); a built-in rig must be copied first.
    #[arg(long)]
    rig: String,
    /// The rail of the INA219 to calibrate.
    #[arg(long)]
    rail: String,
    /// The current a trusted ammeter in series reads, in A.
    #[arg(long)]
    amps: Option<f64>,
    /// The power a trusted meter in the line reads, in W.
    #[arg(long)]
    watts: Option<f64>,
    /// A known resistance across VIN− and ground, in Ω: the current is the bus voltage over it.
    #[arg(long)]
    load_ohms: Option<f64>,
    /// What the reference is good to, in percent (e.g. 0.1 for a 0.1 % resistor); required.
    #[arg(long)]
    reference_uncertainty_pct: Option<f64>,
    /// Seconds to read the chip for.
    #[arg(long, default_value_t = joulebench::calibrate::DEFAULT_SECONDS)]
    seconds: f64,
    /// Print the result without writing the rig file.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
struct SoakArgs {
    /// Rig file, or a rig's name (see `run --rig`): by default a simulated INA219 at its
    /// fastest conversion and two int8 engines.
    #[arg(long, default_value = "sim-soak")]
    rig: String,
    /// Output folder (new or empty); default results/<rig>-<UTC timestamp>/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long to measure, minutes (up to a day); the backends share it equally.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Most the resident memory may grow from the start of measuring to the end, MiB.
    #[arg(long, default_value_t = soak::Targets::default().max_growth_mib)]
    max_growth_mib: f64,
    /// Most the last tenth's mean latency may differ from the first tenth's, percent.
    #[arg(long, default_value_t = soak::Targets::default().max_drift_pct)]
    max_drift_pct: f64,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Run folders (as `joulebench run` wrote them).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Folder for report.md and its charts (created if missing).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Run folders (as `joulebench run` wrote them).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// The entry (1-based, in table order) every other is compared with.
    #[arg(long, default_value_t = 1)]
    baseline: usize,
    /// Hold the entries against the published and nominal figures of analysis/references.csv.
    #[arg(long)]
    references: bool,
    #[command(flatten)]
    export: ExportArgs,
}

/// Files a command also writes its results to, one per format.
#[derive(clap::Args, Default)]
struct ExportArgs {
    /// Also write the table as CSV to this file.
    #[arg(long)]
    export_csv: Option<PathBuf>,
    /// Also write the whole record (summary rows, or the comparison) as JSON to this file.
    #[arg(long)]
    export_json: Option<PathBuf>,
    /// Also write the table as Markdown to this file.
    #[arg(long)]
    export_markdown: Option<PathBuf>,
}

impl ExportArgs {
    /// Each file asked for, with its flag and format.
    fn files(&self) -> impl Iterator<Item = (&str, &PathBuf, &dyn export::Exporter)> {
        let formats: [(_, _, &dyn export::Exporter); 3] = [
            ("--export-csv", &self.export_csv, &export::Csv),
            ("--export-json", &self.export_json, &export::Json),
            (
                "--export-markdown",
                &self.export_markdown,
                &export::Markdown,
            ),
        ];
        formats
            .into_iter()
            .filter_map(|(flag, path, format)| Some((flag, path.as_ref()?, format)))
    }

    /// Proves every file asked for can be written, outside every run folder in `folders`
    /// (those the command writes or reads), before the work that fills it.
    fn check(&self, folders: &[&Path]) -> Result<()> {
        self.files()
            .try_for_each(|(flag, path, _)| export::check_output(flag, path, folders))
    }

    /// Writes `table` (and `record`) in each format whose file was asked for, each on its
    /// own: one that fails (a full disk) stops none of the others. Returns the failures, each
    /// naming its flag and file.
    fn write(&self, table: &export::Table, record: &serde_json::Value) -> Vec<String> {
        self.files()
            .filter_map(|(flag, path, format)| {
                export::write(flag, format, path, table, record).err()
            })
            .collect()
    }
}

#[derive(clap::Args, Default)]
struct RunArgs {
    /// Rig file, or a rig's name: rigs/NAME.toml under the current folder, then
    /// ~/.config/joulebench/rigs/NAME.toml, then the rigs built in (sim-cpu, rpi3-cpu, ...).
    #[arg(long, default_value = DEFAULT_RIG)]
    rig: String,
    /// Output folder (new or empty); default results/<rig>-<UTC timestamp>/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Model for every backend (manifest name or path).
    #[arg(long)]
    model: Option<String>,
    /// Image for every backend (manifest name or path).
    #[arg(long)]
    image: Option<String>,
    /// Threads for every backend.
    #[arg(long)]
    threads: Option<u32>,
    /// Backend kind for every backend: tflite (int8) or torch (float, libtorch).
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Engine for tflite backends (default: litert where its library is found, else tflite).
    #[arg(long, value_enum)]
    engine: Option<Engine>,
    /// Device for torch backends: cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<Device>,
    /// Precision for torch backends.
    #[arg(long, value_enum)]
    precision: Option<Precision>,
    /// Images per inference for torch backends (more than 1 needs --scenario offline). A list
    /// (`1,8,64,256`) runs each torch backend once per batch and prints inferences per joule
    /// by batch, marking the most efficient.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    batch: Vec<u32>,
    /// single-stream (batch 1, latency; the 2019 method) or offline (batches, throughput).
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Run LiteRT without XNNPACK (its builtin kernels).
    #[arg(long)]
    no_xnnpack: bool,
    /// Run torch backends eager, without CUDA graphs (`cuda_graph = false`).
    #[arg(long)]
    no_cuda_graph: bool,
    /// Run torch backends on eager kernels, without an AOTInductor package (`aoti = false`).
    #[arg(long, conflicts_with = "aoti")]
    no_aoti: bool,
    /// Run torch backends as AOTInductor packages, on the CPU too (`aoti = true`).
    #[arg(long)]
    aoti: bool,
    /// Keep torch backends' activations channels-last (`channels_last = true`).
    #[arg(long)]
    channels_last: bool,
    /// Open every backend (verify its model, compile its AOTInductor package where it needs
    /// one) and exit without measuring: a bench session's first run then starts at once.
    #[arg(long)]
    open_only: bool,
    /// Timed classifications.
    #[arg(long)]
    runs: Option<u32>,
    /// Warm-up classifications.
    #[arg(long)]
    warmup: Option<u32>,
    /// Seconds between warm-up and the timed run.
    #[arg(long)]
    settle: Option<f64>,
    /// Run the whole protocol this many times per backend (sensors kept open); from 2 on the
    /// summary adds an aggregate row with confidence intervals.
    #[arg(long)]
    repeat: Option<u32>,
    /// Run the protocol once first, then range every INA219 from 1.1 × the peak current it
    /// saw (max_current_a, calibration and PGA range) for the measured run.
    #[arg(long)]
    ranging: bool,
    #[command(flatten)]
    export: ExportArgs,
    /// Also write LAVA test-case lines (one per figure) to this file.
    #[arg(long)]
    export_lava: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Show the manifest and which files are present.
    List,
    /// Download missing or damaged files (verifying SHA-256), or copy them from a folder.
    Fetch {
        /// Copy from this folder instead of downloading.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Check the SHA-256 of every file.
    Verify,
    /// Write each int8 model's weights, dequantized, as float32 safetensors next to it (for
    /// the torch backend; a derived file, redone when its source changes).
    Convert,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match dispatch(cli, &mut Console::stdout()) {
        Ok(code) => code,
        Err(e) => {
            // One line: the context chain joined by ": ".
            eprintln!("joulebench: {}", format!("{e:#}").replace('\n', " "));
            // A run a signal ended says so in its status, whatever else went wrong.
            signals::received().map_or(ExitCode::FAILURE, |s| signals::exit_code(s).into())
        }
    }
}

/// Clap's own output for `--help`, `--version` and usage errors, with its exit status (0 and
/// 2); an error also ends with the one `joulebench: ` line every other failure ends with.
fn usage_error(e: &clap::Error) -> ExitCode {
    let code = ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    let _ = e.print();
    if e.use_stderr() {
        let rendered = e.render().to_string();
        let first = rendered.lines().map(str::trim).find(|l| !l.is_empty());
        let line = match (e.kind(), first) {
            (clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand, _) | (_, None) => {
                "a subcommand or argument is missing: see the usage above".to_owned()
            }
            (_, Some(first)) => first.strip_prefix("error: ").unwrap_or(first).to_owned(),
        };
        eprintln!("joulebench: {line}");
    }
    code
}

/// Runs the command; everything it prints goes through `out`.
fn dispatch(cli: Cli, out: &mut Console) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run(args, out),
        Command::Models { command } => models_command(command, out),
        Command::Sensors { detect: true, .. } => detect_sensors(out),
        Command::Sensors { rig, .. } => sensors(&rig, out),
        Command::Calibrate(args) => calibrate(&args, out),
        Command::Bench(args) => bench::run(&args, out).map(|()| ExitCode::SUCCESS),
        Command::Compare(args) => compare(&args, out),
        Command::Report(args) => report(&args, out),
        Command::Soak(args) => soak(&args, out),
        Command::Summarize { dir } => summarize(&dir, out),
    }
}

fn summarize(dir: &std::path::Path, out: &mut Console) -> Result<ExitCode> {
    let rebuilt = output::rebuild::summarize(dir)?;
    write!(out, "{}", output::table::render(&rebuilt.rows))?;
    match &rebuilt.stopped_in {
        Some(phase) => writeln!(out, "run did not finish: stopped in {phase}")?,
        None if !rebuilt.finished => writeln!(out, "run did not finish")?,
        None => {}
    }
    writeln!(out, "summary: {}", dir.join("summary.csv").display())?;
    Ok(ExitCode::SUCCESS)
}

fn compare(args: &CompareArgs, out: &mut Console) -> Result<ExitCode> {
    let runs: Vec<&Path> = args.runs.iter().map(PathBuf::as_path).collect();
    args.export.check(&runs)?;
    let comparison = joulebench::compare::compare(&args.runs, args.baseline, args.references)?;
    let table = joulebench::compare::table(&comparison);
    let record = serde_json::to_value(&comparison)?;
    let failed = args.export.write(&table, &record);
    write!(out, "{}", joulebench::compare::render(&comparison))?;
    exports_written(failed)?;
    Ok(ExitCode::SUCCESS)
}

fn calibrate(args: &CalibrateArgs, out: &mut Console) -> Result<ExitCode> {
    use joulebench::calibrate::{self, Reference, Request};
    let reference = match (args.amps, args.watts, args.load_ohms) {
        (Some(a), None, None) => Reference::Amps(a),
        (None, Some(w), None) => Reference::Watts(w),
        (None, None, Some(r)) => Reference::LoadOhms(r),
        (None, None, None) => anyhow::bail!(
            "calibrate needs a reference: --amps A (a trusted ammeter in series), --watts W (a \
             trusted power meter) or --load-ohms R (a known resistance as the load)"
        ),
        _ => anyhow::bail!("give one reference: --amps, --watts or --load-ohms, not several"),
    };
    let Some(uncertainty_pct) = args.reference_uncertainty_pct else {
        anyhow::bail!(
            "calibrate needs --reference-uncertainty-pct: what the reference is good to, in \
             percent (0.1 for a 0.1 % resistor or a meter's stated accuracy)"
        );
    };
    let request = Request {
        rail: args.rail.clone(),
        reference,
        reference_uncertainty_pct: uncertainty_pct,
        seconds: args.seconds,
        dry_run: args.dry_run,
    };
    // Refused before the note below announces a read it would not make.
    request.check()?;
    eprintln!(
        "joulebench: reading rail {:?} for {} s, its correction (if any) ignored",
        args.rail, args.seconds
    );
    let clock = Arc::new(joulebench::clock::RunClock::start());
    let (target, cal) = calibrate::calibrate(&args.rig, &request, clock, chrono::Utc::now())?;
    let m = &cal.measurement;
    let unit = cal.unit;
    writeln!(
        out,
        "measured   {:.5} {unit} (mean of {} fresh readings in {} s; {:.5} V, {:.5} W; current σ {:.5} A)",
        cal.measured, m.fresh, m.seconds, m.mean_volts, m.mean_watts, m.sd_amps
    )?;
    writeln!(
        out,
        "reference  {:.5} {unit} ({}, good to {} %)",
        cal.reference,
        reference.describe(),
        uncertainty_pct
    )?;
    writeln!(
        out,
        "factor     {} (the chip read {:+.3} %){}",
        cal.factor,
        (1.0 / cal.factor - 1.0) * 100.0,
        cal.previous_factor
            .map_or(String::new(), |f| format!("; the rig had {f}"))
    )?;
    writeln!(
        out,
        "calibration register {} → {}; energy uncertainty {:.2} % → {:.2} %",
        cal.uncorrected_register,
        cal.corrected_register,
        cal.uncertainty_before * 100.0,
        cal.uncertainty_after * 100.0
    )?;
    // The mean's own scatter adds to the reference's uncertainty; say so when it is not small.
    let standard_error_pct = m.sd_amps / (m.fresh as f64).sqrt() / m.mean_amps * 100.0;
    if standard_error_pct > uncertainty_pct / 3.0 {
        writeln!(
            out,
            "note: the mean's standard error ({standard_error_pct:.3} %) is not small beside the \
             reference's {uncertainty_pct} %: a quieter load or a longer read (--seconds) helps"
        )?;
    }
    match (&target.path, args.dry_run) {
        (Some(path), false) => writeln!(
            out,
            "wrote shunt_correction = {} and reference_uncertainty_pct = {} into sensors[{}] of {}",
            cal.factor,
            uncertainty_pct,
            target.index,
            path.display()
        )?,
        _ => writeln!(out, "dry run: {} left as it was", target.origin)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn report(args: &ReportArgs, out: &mut Console) -> Result<ExitCode> {
    let runs: Vec<&Path> = args.runs.iter().map(PathBuf::as_path).collect();
    export::check_outside("--out", &args.out, &runs)?;
    let path = joulebench::report::write(&args.runs, &args.out)?;
    writeln!(out, "report: {}", path.display())?;
    Ok(ExitCode::SUCCESS)
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

fn load_rig(arg: &str, args: Option<&RunArgs>) -> Result<(Rig, RigSource)> {
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
struct Measured {
    run_dir: output::RunDir,
    rows: Vec<summary::SummaryRow>,
    record: runner::RunRecord,
    /// The first streaming write that failed, if one did.
    stream_error: Option<String>,
    /// The soak monitor, where one was asked for.
    monitor: Option<soak::Monitor>,
}

/// Claims the output folder, loads the rig, measures it (for `time_budget` if given, with the
/// soak monitor if `monitor`) and writes the run's files.
fn measure(
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
        let (rig, ranged) = joulebench::ranging::range(&rig, &source.text, &options)?;
        for line in joulebench::ranging::describe(&ranged) {
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
    let (mut record, stream_error) = prepared.execute_streaming(&options, &to)?;
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

fn run(args: RunArgs, out: &mut Console) -> Result<ExitCode> {
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

/// One line naming every export that could not be written, as an error; none, Ok.
fn exports_written(failed: Vec<String>) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", failed.join("; "))
}

/// `run --open-only`: each backend opened as a run would, one line each, nothing measured.
fn open_only(args: &RunArgs, out: &mut Console) -> Result<ExitCode> {
    let (rig, _) = load_rig(&args.rig, Some(args))?;
    for (i, spec) in rig.backends.iter().enumerate() {
        let start = std::time::Instant::now();
        let prepared = joulebench::runner::prepare_backend(spec)
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
fn finish(
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

/// The longest soak: a day.
const MAX_SOAK_MINUTES: f64 = 24.0 * 60.0;

fn soak(args: &SoakArgs, out: &mut Console) -> Result<ExitCode> {
    if !(args.minutes > 0.0 && args.minutes <= MAX_SOAK_MINUTES) {
        anyhow::bail!(
            "--minutes must be more than 0 and at most {MAX_SOAK_MINUTES} (a day), not {}",
            args.minutes
        );
    }
    for (flag, value) in [
        ("--max-growth-mib", args.max_growth_mib),
        ("--max-drift-pct", args.max_drift_pct),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            anyhow::bail!("{flag} must be a number of at least 0, not {value}");
        }
    }
    let targets = soak::Targets {
        max_growth_mib: args.max_growth_mib,
        max_drift_pct: args.max_drift_pct,
    };
    let run_args = RunArgs {
        rig: args.rig.clone(),
        out: args.out.clone(),
        // As many repetitions as the time allows.
        repeat: Some(u32::MAX),
        ..RunArgs::default()
    };
    let budget = std::time::Duration::from_secs_f64(args.minutes * 60.0);
    let Measured {
        run_dir,
        rows,
        record,
        stream_error,
        monitor,
    } = measure(&run_args, Some(budget), true)?;
    let dir = run_dir.path();
    let samples = monitor.context("the soak monitor")?.finish()?;
    // The machine's own stalls, under the load the backends put on it, for as long as a
    // twentieth of the soak (a minute at most).
    let floor = if signals::received().is_none() {
        let busy = record
            .rig
            .backends
            .iter()
            .map(|b| b.threads)
            .max()
            .unwrap_or(1);
        soak::floor::probe(
            budget.min(std::time::Duration::from_secs(60 * 20)) / 20,
            busy as usize,
            &|| signals::received().is_some(),
        )
    } else {
        soak::floor::Floor::default()
    };
    let report = soak::Report::of(&record, dir, &samples, floor, targets)?;
    soak::write(&report, dir)?;
    signals::set_stage(Stage::Written);
    // Each repetition has its row in summary.csv; the terminal gets the aggregates.
    let aggregates: Vec<_> = rows
        .iter()
        .filter(|r| r.repetition == summary::Repetition::All)
        .cloned()
        .collect();
    let text = format!("{}{}", output::table::render(&aggregates), report.render());
    let printed = print_results(out, &text, dir);
    let code = finish(&rows, dir, stream_error, printed)?;
    // A soak a signal cut short reports what it saw, and exits as a signalled run does.
    if !report.ok && signals::received().is_none() {
        anyhow::bail!(
            "soak: a target was missed (see above, or {})",
            dir.join(soak::REPORT_FILE).display()
        );
    }
    Ok(code)
}

/// Prints a run's table and folder, after its files are written. A reader that stopped
/// reading is no error, but stdout could not show the folder: one line on stderr names it. Any
/// other failed print is the run's error, naming the folder that holds the results.
fn print_results(out: &mut Console, table: &str, dir: &std::path::Path) -> Result<()> {
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

fn sensors(rig_path: &str, out: &mut Console) -> Result<ExitCode> {
    let (mut rig, _) = load_rig(rig_path, None)?;
    // The sensors a run of this rig would use.
    if let Some(choice) = sensor::detect::resolve(&mut rig, &sensor::detect::sysfs_root()) {
        writeln!(out, "{}", choice.line)?;
    }
    let ctx = sensor::SensorContext::new(
        joulebench::clock::RunClock::start(),
        joulebench::clock::PhaseLog::new(),
    );
    let mut failed = false;
    for spec in &rig.sensors {
        let label = format!("{} ({})", spec.kind(), spec.rail());
        match sensor::open(spec, &ctx).and_then(|mut s| {
            // Give the sensor one conversion so the reading is fresh.
            std::thread::sleep(s.update_period());
            Ok((s.read()?, s.info().clone()))
        }) {
            Ok((r, info)) => {
                let opt = |v: Option<f64>, unit: &str, digits: usize| {
                    v.map_or(String::new(), |v| format!("{v:.digits$} {unit}  "))
                };
                writeln!(
                    out,
                    "{label}: {}{}{:.3} W{}{}  [{}]",
                    opt(r.volts, "V", 3),
                    opt(r.amps, "A", 4),
                    r.watts,
                    if r.overflow { "  OVERFLOW" } else { "" },
                    match info.origin.label() {
                        "" => String::new(),
                        label => format!("  ({label})"),
                    },
                    info.detail
                )?;
            }
            Err(e) => {
                failed = true;
                writeln!(
                    out,
                    "{label}: error: {}",
                    format!("{e:#}").replace('\n', " ")
                )?;
            }
        }
    }
    if rig.sensors.is_empty() {
        writeln!(out, "rig {} has no sensors", rig.name)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn detect_sensors(out: &mut Console) -> Result<ExitCode> {
    use sensor::detect;
    let root = detect::sysfs_root();
    let mut found = detect::detect(&root);
    if found.is_empty() {
        writeln!(
            out,
            "no RAPL zones, hwmon power channels or INA3221 rails under {}",
            root.display()
        )?;
    }
    let gpus = detect::detect_gpus();
    match &gpus {
        Ok(list) if list.is_empty() => writeln!(out, "NVML: no GPUs")?,
        Ok(list) => found.extend(list.iter().cloned()),
        Err(why) => writeln!(out, "NVML: {why}")?,
    }
    for d in &found {
        match &d.readable {
            Ok(detail) => writeln!(out, "{}: readable  [{detail}]", d.what)?,
            Err(why) => writeln!(out, "{}: not readable: {why}", d.what)?,
        }
    }
    let snippet = detect::snippet(&found);
    if snippet.is_empty() {
        writeln!(out, "\nnothing readable to put in a rig")?;
    } else {
        writeln!(
            out,
            "\n# [[sensors]] tables for the readable meters, to paste into a rig:\n{snippet}"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn models_command(command: ModelsCommand, out: &mut Console) -> Result<ExitCode> {
    let manifest = models::Manifest::load_default()?;
    let rows = match command {
        ModelsCommand::List => {
            write!(out, "{}", models::format_list(&manifest))?;
            return Ok(ExitCode::SUCCESS);
        }
        ModelsCommand::Verify => manifest.verify(),
        ModelsCommand::Convert => {
            // An Edge TPU build keeps its weights inside the custom op: nothing to dequantize.
            for entry in manifest.of_kind(models::Kind::Model).filter(|e| !e.edgetpu) {
                let model = manifest.open_model(&entry.name)?;
                let weights = models::ensure_float_weights(&model.path)?;
                writeln!(out, "{:<30} {}", entry.name, weights.display())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        ModelsCommand::Fetch { from: Some(dir) } => {
            manifest.fetch(&models::FetchOptions::from_dir(dir))
        }
        ModelsCommand::Fetch { from: None } => manifest.fetch(&models::FetchOptions::network()),
    };
    write!(out, "{}", models::format_table(&rows))?;
    if models::all_ok(&rows) {
        Ok(ExitCode::SUCCESS)
    } else {
        let bad = rows.iter().filter(|r| !r.is_ok()).count();
        anyhow::bail!("{bad} of {} files are not as the manifest says", rows.len())
    }
}
