//! `joulebench run`: the rig resolved with the command line's settings, measured into a
//! claimed run folder ([`crate::session`]), its table printed and its exports written;
//! `--open-only` opens the backends and stops. [`RunFlags`] are the flags `soak` shares.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::export_args::{exports_written, ExportArgs};
use super::DEFAULT_RIG;
use crate::export;
use crate::output::{self, console::Console};
use crate::plan::{BackendOverrides, Overrides, Plan, ProtocolOverrides};
use crate::session::{self, Measurement, Session};
use crate::signals::{self, Stage};
use crate::summary;

/// The flags of every command that measures a rig into a run folder (`run` and `soak`, which
/// names its own default rig): the rig and the folder. [`RunFlags::plan`] is where a command
/// line becomes a [`Plan`].
#[derive(clap::Args)]
pub struct RunFlags {
    /// Rig file, or a rig's name: rigs/NAME.toml under the current folder, then
    /// ~/.config/joulebench/rigs/NAME.toml, then the rigs built in (sim-cpu, rpi3-cpu, ...).
    #[arg(long, default_value = DEFAULT_RIG)]
    pub rig: String,
    /// Output folder (new or empty); default results/<rig>-<UTC timestamp>/.
    // The doc is --help text, where <rig> is a placeholder, not HTML.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl RunFlags {
    /// The rig with `overrides` over its settings, validated, its meters chosen, and its
    /// threads checked against this machine's cores, before anything opens.
    pub fn plan(&self, overrides: &Overrides) -> Result<Plan> {
        let plan = Plan::resolve(&self.rig, overrides)?;
        plan.check_threads()?;
        Ok(plan)
    }

    /// A session measuring into this folder.
    pub fn session(&self) -> Session<'_> {
        Session {
            out: self.out.as_deref(),
            ..Session::default()
        }
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub backends: BackendOverrides,
    /// Open every backend (verify its model, compile its AOTInductor package where it needs
    /// one) and exit without measuring: a bench session's first run then starts at once.
    #[arg(long)]
    pub open_only: bool,
    #[command(flatten)]
    pub protocol: ProtocolOverrides,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Also write LAVA test-case lines (one per figure) to this file.
    #[arg(long)]
    pub export_lava: Option<PathBuf>,
}

impl RunArgs {
    /// The settings these flags give over the rig's.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            backends: self.backends.clone(),
            protocol: self.protocol.clone(),
        }
    }
}

pub fn run(args: RunArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    if args.open_only {
        return open_only(&args, out);
    }
    let plan = args.run.plan(&args.overrides())?;
    let mut exports = args.export.outputs();
    exports.extend(args.export_lava.as_deref().map(|p| ("--export-lava", p)));
    let Measurement {
        run_dir,
        rows,
        stream_error,
        ..
    } = session::measure(
        plan,
        &Session {
            exports,
            ..args.run.session()
        },
    )?;
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
    let plan = args.run.plan(&args.overrides())?;
    for (i, spec) in plan.rig.backends.iter().enumerate() {
        let start = std::time::Instant::now();
        let prepared = crate::runner::prepare_backend(spec)
            .with_context(|| format!("backend {i} ({})", spec.kind().as_str()))?;
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
    dir: &Path,
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
    if let Some(problem) = rows.iter().find(|r| r.status.fails_run()) {
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
    dir: &Path,
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
    fn the_flags_become_the_plans_settings() {
        let o = args(&[
            "--threads",
            "3",
            "--runs",
            "7",
            "--batch",
            "1,8",
            "--no-xnnpack",
        ])
        .overrides();
        assert_eq!(
            (
                o.backends.threads,
                o.protocol.runs,
                o.backends.batch.as_slice()
            ),
            (Some(3), Some(7), &[1, 8][..])
        );
        assert!(o.backends.no_xnnpack && !o.backends.aoti && o.protocol.repeat.is_none());
        let plan = Plan::resolve("sim-cpu", &args(&["--repeat", "2"]).overrides()).unwrap();
        assert_eq!(plan.rig.protocol.repeat, 2);
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
