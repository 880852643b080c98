//! `joulebench summarize`: a run folder's summary rebuilt from its rows.

use std::process::ExitCode;

use anyhow::Result;

use crate::output::{self, console::Console};

pub fn run(dir: &std::path::Path, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    let rebuilt = output::rebuild::summarize(dir)?;
    write!(out, "{}", output::table::render(&rebuilt.rows))?;
    match &rebuilt.stopped_in {
        Some(phase) => writeln!(out, "run did not finish: stopped in {phase}")?,
        None if !rebuilt.finished => writeln!(out, "run did not finish")?,
        None => {}
    }
    writeln!(
        out,
        "summary: {}",
        dir.join(output::folder::SUMMARY_CSV).display()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::super::tests::console;
    use super::*;

    #[test]
    fn a_folder_that_is_not_a_run_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let e = run(tmp.path(), &mut console()).unwrap_err().to_string();
        assert!(e.contains("is not a joulebench run folder"), "{e}");
    }
}
