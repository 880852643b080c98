//! `joulebench compare`: inferences per joule across run folders, against a baseline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::export_args::{exports_written, ExportArgs};
use crate::output::console::Console;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Run folders (as `joulebench run` wrote them).
    #[arg(required = true, value_name = "RUNS")]
    pub folders: Vec<PathBuf>,
    /// The entry (1-based, in table order) every other is compared with.
    #[arg(long, default_value_t = 1)]
    pub baseline: usize,
    /// Hold the entries against the published and nominal figures of analysis/references.csv.
    #[arg(long)]
    pub references: bool,
    #[command(flatten)]
    pub export: ExportArgs,
}

pub fn run(args: &CompareArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    let folders: Vec<&Path> = args.folders.iter().map(PathBuf::as_path).collect();
    crate::export::check_outputs(&args.export.outputs(), &folders)?;
    let comparison = crate::compare::compare(&args.folders, args.baseline, args.references)?;
    let table = crate::compare::table(&comparison);
    let record = serde_json::to_value(&comparison)?;
    let failed = args.export.write(&table, &record);
    write!(out, "{}", crate::compare::render(&comparison))?;
    exports_written(failed)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, parse, printed};
    use super::super::Command;
    use super::*;

    #[test]
    fn the_examples_compare_with_a_sentence_each() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples");
        let (a, b) = (examples.join("repeat-quant"), examples.join("repeat-tf2"));
        let line = ["compare", a.to_str().unwrap(), b.to_str().unwrap()];
        let Command::Compare(args) = parse(&line).unwrap().command else {
            unreachable!("a compare command line")
        };
        let mut out = console();
        run(&args, &mut out).unwrap();
        let text = printed(out);
        assert!(
            text.contains("is the baseline") && text.contains("does 1.46x"),
            "{text}"
        );
    }
}
