//! `joulebench report`: a Markdown report with SVG charts of run folders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::export;
use crate::output::console::Console;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Run folders (as `joulebench run` wrote them).
    #[arg(required = true, value_name = "RUNS")]
    pub folders: Vec<PathBuf>,
    /// Folder for report.md and its charts (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &ReportArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    let folders: Vec<&Path> = args.folders.iter().map(PathBuf::as_path).collect();
    export::check_outside("--out", &args.out, &folders)?;
    let path = crate::report::write(&args.folders, &args.out)?;
    writeln!(out, "report: {}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, parse};
    use super::super::Command;
    use super::*;

    #[test]
    fn a_report_inside_a_run_folder_is_refused() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples");
        let run_dir = examples.join("repeat-quant");
        let out_dir = run_dir.join("report");
        let line = [
            "report",
            run_dir.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ];
        let Command::Report(args) = parse(&line).unwrap().command else {
            unreachable!("a report command line")
        };
        let e = super::run(&args, &mut console()).unwrap_err().to_string();
        assert!(
            e.starts_with("--out ") && e.contains("is inside the run folder"),
            "{e}"
        );
        assert!(!out_dir.exists());
    }
}
