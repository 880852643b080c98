//! A plan measured into a claimed run folder: the folder claimed before anything opens, the
//! ranging pass, the backends and sensors opened, the protocol run with its rows streamed to
//! disk, and the run's files written. `run` and `soak` both call [`measure`]; they
//! differ only in what they print, and in `soak`'s time budget and memory monitor.
//!
//! It sits with the commands' own work: it drives the whole flow, from the plan to the run
//! folder's files, and starts `soak`'s monitor.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::export;
use crate::output;
use crate::plan::Plan;
use crate::runner::{self, RunOptions};
use crate::signals::{self, Stage};
use crate::{soak, summary};

/// How a plan is measured: where its files go and for how long.
#[derive(Default)]
pub struct Session<'a> {
    /// The run folder (new or empty); default `results/<rig>-<UTC timestamp>/`.
    pub out: Option<&'a Path>,
    /// The export files the command writes after measuring, as (flag, path): checked before
    /// the folder is claimed, so that one that cannot be written costs no measurement.
    pub exports: Vec<(&'a str, &'a Path)>,
    /// Repeat the protocol until this is spent (a soak), whatever the plan's `repeat`.
    pub time_budget: Option<Duration>,
    /// Run the soak monitor (resident memory, sampled) while measuring.
    pub monitor: bool,
}

/// A run measured and its files written; the folder still claimed.
pub struct Measurement {
    pub run_dir: output::RunDir,
    pub rows: Vec<summary::SummaryRow>,
    pub record: runner::RunRecord,
    /// The first streaming write that failed, if one did.
    pub stream_error: Option<String>,
    /// The soak monitor, where one was asked for.
    pub monitor: Option<soak::Monitor>,
}

/// Claims `session`'s output folder, measures `plan` (for the time budget if given, with the
/// soak monitor if asked) and writes the run's files.
pub fn measure(plan: Plan, session: &Session) -> Result<Measurement> {
    let interrupt = signals::install()?;
    let Session {
        out,
        ref exports,
        time_budget,
        monitor,
    } = *session;
    let run_dir = claim_run_dir(out, exports, &plan.rig.name)?;
    let dir = run_dir.path();
    let options = RunOptions {
        interrupt,
        progress: true,
        sample: true,
        time_budget,
    };
    let mut plan = ranged(plan, &options)?;
    if time_budget.is_some() {
        // A soak repeats the protocol until its time is spent, however many repetitions that
        // takes: the clock bounds them, not the user's `repeat` (set past its bound here, once
        // the rig was validated and ranged).
        plan.rig.protocol.repeat = u32::MAX;
    }
    let prepared = runner::prepare(plan)?;
    print_opening(&prepared, dir);
    let argv: Vec<String> = std::env::args().collect();
    // The rows go to disk as they are measured, so a killed run leaves them behind.
    let to = output::stream::StreamTo {
        dir: dir.to_path_buf(),
        command: argv.clone(),
    };
    signals::set_stage(Stage::Measuring);
    // Started once everything is loaded: its first row is the memory a run starts from.
    let monitor = monitor.then(|| soak::Monitor::start(dir)).transpose()?;
    let (record, stream_error) = prepared.execute_streaming(&options, &to.starter())?;
    let rows = summary::summarize(&record);
    signals::set_stage(Stage::Writing);
    output::files::write_final(dir, &record, &rows, &argv)?;
    Ok(Measurement {
        run_dir,
        rows,
        record,
        stream_error,
        monitor,
    })
}

/// Claims the run folder before any model loads or sensor opens: a folder that cannot take
/// the results, or that another run holds, must not cost a measurement; nor must an export
/// file that cannot be written.
fn claim_run_dir(
    out: Option<&Path>,
    exports: &[(&str, &Path)],
    rig: &str,
) -> Result<output::RunDir> {
    signals::hold(|| {
        // A default folder is new and named by the clock: no export can be in it yet.
        let folders: Vec<&Path> = out.into_iter().collect();
        export::check_outputs(exports, &folders)?;
        let claimed = output::create_run_dir(out, rig, chrono::Utc::now())?;
        signals::on_exit(claimed.releaser());
        anyhow::Ok(claimed)
    })
}

/// The plan after its ranging pass where the rig asks for one (the protocol once, to set each
/// INA219's range), saying what it set.
fn ranged(plan: Plan, options: &RunOptions) -> Result<Plan> {
    if !plan.rig.protocol.ranging {
        return Ok(plan);
    }
    eprintln!("joulebench: ranging pass: the protocol once, to set each INA219's range");
    let plan = crate::ranging::range(&plan, options)?;
    for line in crate::ranging::describe(&plan.ranging) {
        eprintln!("joulebench: {line}");
    }
    Ok(plan)
}

/// The run's first lines on stderr: the sensors chosen and those missing, each backend's
/// engine note, and where the run goes.
fn print_opening(prepared: &runner::Prepared, dir: &Path) {
    if let Some(choice) = &prepared.plan.sensor_choice {
        eprintln!("joulebench: {}", choice.line);
    }
    for line in prepared.missing_lines() {
        eprintln!("joulebench: {line}");
    }
    for (i, b) in prepared.backends.iter().enumerate() {
        if let Some(note) = &b.engine_note {
            eprintln!("joulebench: backend {i}: {note}");
        }
    }
    eprintln!(
        "joulebench: running rig {} ({}) into {}",
        prepared.plan.rig.name,
        prepared.plan.origin,
        dir.display()
    );
}
