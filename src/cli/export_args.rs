//! `--export-csv`, `--export-json` and `--export-markdown`, shared by `run` and `compare`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::export;

/// Files a command also writes its results to, one per format.
#[derive(clap::Args, Default)]
pub struct ExportArgs {
    /// Also write the table as CSV to this file.
    #[arg(long)]
    pub export_csv: Option<PathBuf>,
    /// Also write the whole record (summary rows, or the comparison) as JSON to this file.
    #[arg(long)]
    pub export_json: Option<PathBuf>,
    /// Also write the table as Markdown to this file.
    #[arg(long)]
    pub export_markdown: Option<PathBuf>,
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

    /// Each file asked for, with its flag: what [`export::check_outputs`] proves before the
    /// work that fills them.
    pub fn outputs(&self) -> Vec<(&str, &Path)> {
        self.files()
            .map(|(flag, path, _)| (flag, path.as_path()))
            .collect()
    }

    /// Writes `table` (and `record`) in each format whose file was asked for, each on its
    /// own: one that fails (a full disk) stops none of the others. Returns the failures, each
    /// naming its flag and file.
    pub fn write(&self, table: &export::Table, record: &serde_json::Value) -> Vec<String> {
        self.files()
            .filter_map(|(flag, path, format)| {
                export::write(flag, format, path, table, record).err()
            })
            .collect()
    }
}

/// One line naming every export that could not be written, as an error; none, Ok.
pub fn exports_written(failed: Vec<String>) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", failed.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_checked_and_every_failure_named() {
        let tmp = tempfile::tempdir().unwrap();
        let inside = ExportArgs {
            export_json: Some(tmp.path().join("run.json")),
            ..ExportArgs::default()
        };
        let e = export::check_outputs(&inside.outputs(), &[tmp.path()])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--export-json ") && e.contains("is inside the run folder"),
            "{e}"
        );
        let fine = ExportArgs {
            export_csv: Some(tmp.path().join("a.csv")),
            export_markdown: Some(tmp.path().join("a.md")),
            ..ExportArgs::default()
        };
        let flags: Vec<&str> = fine.files().map(|(flag, ..)| flag).collect();
        assert_eq!(flags, ["--export-csv", "--export-markdown"]);
        assert!(export::check_outputs(&fine.outputs(), &[]).is_ok());
        assert!(exports_written(vec![]).is_ok());
        let e = exports_written(vec!["a (--export-csv)".into(), "b (--export-json)".into()]);
        assert_eq!(
            e.unwrap_err().to_string(),
            "a (--export-csv); b (--export-json)"
        );
    }
}
