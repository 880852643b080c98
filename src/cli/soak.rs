//! `joulebench soak`: the rig's protocol repeated for minutes to hours into one run folder,
//! with the memory, reading and drift targets checked. A target missed or not judged (a soak
//! too short for it) exits 1 with the verdict as its one line.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::run::{finish, print_results, RunFlags};
use crate::output::{self, console::Console};
use crate::plan::Overrides;
use crate::session::{self, Measurement, Session};
use crate::signals::{self, Stage};
use crate::{soak, summary};

#[derive(clap::Args)]
// `run`'s rig and folder, with a rig of its own by default.
#[command(mut_arg("rig", |rig| rig.default_value("sim-soak").help(
    "Rig file, or a rig's name (see `run --rig`): by default a simulated INA219 at its fastest \
     conversion and two int8 engines",
)))]
pub struct SoakArgs {
    #[command(flatten)]
    pub run: RunFlags,
    /// How long to measure, minutes (up to a day); the backends share it equally.
    #[arg(long, default_value_t = 60.0)]
    pub minutes: f64,
    /// Most the resident memory may grow from the start of measuring to the end, MiB.
    #[arg(long, default_value_t = soak::Targets::default().max_growth_mib)]
    pub max_growth_mib: f64,
    /// Most the last tenth's mean latency may differ from the first tenth's, percent.
    #[arg(long, default_value_t = soak::Targets::default().max_drift_pct)]
    pub max_drift_pct: f64,
}

/// The longest soak: a day.
const MAX_SOAK_MINUTES: f64 = 24.0 * 60.0;

pub fn run(args: &SoakArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
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
    // The rig as written, for as many repetitions as the time allows: the session repeats
    // until the budget is spent.
    let plan = args.run.plan(&Overrides::default())?;
    let budget = std::time::Duration::from_secs_f64(args.minutes * 60.0);
    let Measurement {
        run_dir,
        rows,
        record,
        stream_error,
        monitor,
    } = session::measure(
        plan,
        &Session {
            time_budget: Some(budget),
            monitor: true,
            ..args.run.session()
        },
    )?;
    let dir = run_dir.path();
    let samples = monitor.context("the soak monitor")?.finish()?;
    // The machine's own stalls, under the load the backends put on it, for as long as a
    // twentieth of the soak (a minute at most).
    let floor = if signals::received().is_none() {
        let busy = record
            .rig
            .backends
            .iter()
            .map(|b| b.threads())
            .max()
            .unwrap_or(1);
        soak::floor::probe(soak::floor::length_for(budget), busy as usize, &|| {
            signals::received().is_some()
        })
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
    // Otherwise a target missed, or one the soak was too short to judge, is no success: the
    // verdict, with the soak that would judge it, is the error.
    if !report.ok && signals::received().is_none() {
        anyhow::bail!(
            "soak: {} (see above, or {})",
            report.verdict(),
            dir.join(soak::REPORT_FILE).display()
        );
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, parse};
    use super::super::Command;
    use super::*;

    fn refusal(line: &[&str]) -> String {
        let Command::Soak(args) = parse(&[&["soak"], line].concat()).unwrap().command else {
            unreachable!("a soak command line")
        };
        run(&args, &mut console()).unwrap_err().to_string()
    }

    #[test]
    fn its_length_and_targets_are_bounded_before_anything_runs() {
        for minutes in ["0", "1441", "NaN"] {
            assert!(
                refusal(&["--minutes", minutes]).starts_with("--minutes must be more than 0"),
                "{minutes}"
            );
        }
        assert_eq!(
            refusal(&["--minutes", "1", "--max-drift-pct=-1"]),
            "--max-drift-pct must be a number of at least 0, not -1"
        );
    }
}
