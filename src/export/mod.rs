//! Exports of a result table, one file per format behind [`Exporter`]: what `run` and
//! `compare` write with `--export-csv`, `--export-json` and `--export-markdown`; and LAVA
//! test-case lines ([`lava`]) for board farms.
//!
//! A [`Table`] is the one column list the terminal table and every format share; JSON
//! exports the typed record itself, so it loses nothing the columns leave out.

mod csv;
mod json;
pub mod lava;
pub mod markdown;

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use crate::output::folder::run_folder_holding;
use crate::results::resolved;

pub use self::csv::Csv;
pub use self::json::Json;
pub use self::markdown::Markdown;

/// Rows of text under named columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table as the terminal shows it: columns padded to their widest cell.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .chain([self.headers[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(self.headers.clone());
        for row in &self.rows {
            out += &line(row.iter().map(String::as_str).collect());
        }
        out
    }
}

/// A number in a table cell with `digits` decimals, or "-" where there is none.
pub fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// One export format.
pub trait Exporter {
    /// The table in this format; `record` is the typed record behind it, for formats that
    /// carry more than the columns.
    fn export(&self, table: &Table, record: &serde_json::Value) -> Result<String>;
}

/// Writes `table` (and `record`) in `format` to `path`.
pub fn write(
    flag: &str,
    format: &dyn Exporter,
    path: &Path,
    table: &Table,
    record: &serde_json::Value,
) -> Result<(), String> {
    let text = format
        .export(table, record)
        .map_err(|e| format!("cannot write {}: {e:#} ({flag})", path.display()))?;
    write_output(flag, path, &text)
}

/// Proves, before the work that fills them, that every output (`flag`, `path`) can be
/// written ([`check_writable`]), lies outside every run folder ([`check_outside`]: those in
/// `folders`, which the command writes or reads, and any other), and has a path of its own:
/// two exports to one file would leave only the last.
pub fn check_outputs(outputs: &[(&str, &Path)], folders: &[&Path]) -> Result<()> {
    for (n, &(flag, path)) in outputs.iter().enumerate() {
        check_outside(flag, path, folders)?;
        check_writable(flag, path)?;
        let same = |&&(_, other): &&(&str, &Path)| resolved(other) == resolved(path);
        if let Some((first, _)) = outputs[..n].iter().find(same) {
            bail!(
                "{flag} {} is the file {first} writes too: give each export a file of its own",
                path.display()
            );
        }
    }
    Ok(())
}

/// Writes `text` to the file `flag` names; the error names the file and the flag.
pub fn write_output(flag: &str, path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e} ({flag})", path.display()))
}

/// Refuses, in one line, an output `path` (what `flag` names) that lies in a run folder: one
/// of `folders`, the run folders a command writes or reads (the run being written has no
/// `run.json` yet), or any other folder holding a `run.json`. An export or report there would
/// replace or add to that run's own files: `run --out R --export-json R/run.json` once
/// replaced the run's record, and `--export-csv OTHER/summary.csv` another run's summary.
/// Paths are compared as the file system resolves them, through symbolic links and `..`; a
/// path not created yet is resolved through its nearest existing folder.
pub fn check_outside(flag: &str, path: &Path, folders: &[&Path]) -> Result<()> {
    let out = resolved(path);
    let given = folders
        .iter()
        .find(|folder| out.starts_with(resolved(folder)))
        .map(|folder| folder.to_path_buf());
    if let Some(folder) = given.or_else(|| run_folder_holding(path)) {
        bail!(
            "{flag} {} is inside the run folder {}: write it elsewhere, so the folder keeps \
             only its own files",
            path.display(),
            folder.display()
        );
    }
    Ok(())
}

/// Proves, before anything is measured, that the export `flag` asks for can be written to
/// `path`: it is no folder, its folder exists and takes a new file, and an existing file can be
/// opened for writing. Leaves nothing behind: the folder is probed with a file created and
/// removed at once, and an existing file is opened, not changed.
pub fn check_writable(flag: &str, path: &Path) -> Result<()> {
    let refused = |why: String| anyhow!("cannot write {} ({flag}): {why}", path.display());
    if path.is_dir() {
        return Err(refused("it is a folder; give a file name".into()));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder_problem = match std::fs::metadata(folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "folder {} does not exist; create it first",
            folder.display()
        )),
        Err(e) => Some(format!("folder {}: {e}", folder.display())),
        Ok(m) if !m.is_dir() => Some(format!("{} is not a folder", folder.display())),
        Ok(_) => None,
    };
    if let Some(why) = folder_problem {
        return Err(refused(why));
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| refused(e.to_string()))?;
    } else {
        // Named after this process, so no other run's probe is touched.
        let probe = folder.join(format!(".joulebench-probe-{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&probe)
            .map_err(|e| refused(format!("folder {}: {e}", folder.display())))?;
        let _ = std::fs::remove_file(&probe);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            headers: vec!["#", "entry", "inf/J"],
            rows: vec![
                vec!["1".into(), "a, b | c".into(), "28.96".into()],
                vec!["2".into(), "d".into(), "-".into()],
            ],
        }
    }

    #[test]
    fn every_format_carries_the_same_columns() {
        let record = serde_json::json!({"entries": [{"inf_per_j": 28.96}]});
        assert_eq!(
            table().render(),
            "#  entry     inf/J\n1  a, b | c  28.96\n2  d         -\n"
        );
        assert_eq!(
            Csv.export(&table(), &record).unwrap(),
            "#,entry,inf/J\n1,\"a, b | c\",28.96\n2,d,-\n"
        );
        assert_eq!(
            Markdown.export(&table(), &record).unwrap(),
            "| # | entry | inf/J |\n|---|---|---|\n| 1 | a, b \\| c | 28.96 |\n| 2 | d | - |\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&Json.export(&table(), &record).unwrap()).unwrap();
        assert_eq!(json, record);
    }

    #[test]
    fn outputs_stay_out_of_every_run_folder_and_off_each_others_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("run.json"), "{}").unwrap();
        let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.json"));
        check_outputs(&[("--export-csv", &a), ("--export-json", &b)], &[]).unwrap();
        // Another run's folder, not among those the command writes or reads.
        let inside = other.join("summary.csv");
        let e = check_outputs(&[("--export-csv", &inside)], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "--export-csv {} is inside the run folder {}: write it elsewhere, so the \
                 folder keeps only its own files",
                inside.display(),
                other.display()
            )
        );
        // The run folder itself, as a report's folder.
        assert!(check_outside("--out", &other, &[]).is_err());
        // One file, spelled two ways.
        std::fs::create_dir(tmp.path().join("x")).unwrap();
        let same = tmp.path().join("x/../a.csv");
        let e = check_outputs(&[("--export-csv", &a), ("--export-markdown", &same)], &[]);
        assert_eq!(
            e.unwrap_err().to_string(),
            format!(
                "--export-markdown {} is the file --export-csv writes too: give each export a \
                 file of its own",
                same.display()
            )
        );
    }

    #[test]
    fn an_export_path_that_cannot_be_written_is_named_and_nothing_is_left_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("taken");
        std::fs::write(&file, "x").unwrap();
        for (path, why) in [
            (tmp.path().to_path_buf(), "it is a folder".to_string()),
            (
                tmp.path().join("gone/out.csv"),
                format!(
                    "folder {} does not exist",
                    tmp.path().join("gone").display()
                ),
            ),
            (
                file.join("out.csv"),
                format!("{} is not a folder", file.display()),
            ),
        ] {
            let e = format!("{:#}", check_writable("--export-csv", &path).unwrap_err());
            assert!(
                e.starts_with(&format!("cannot write {} (--export-csv): ", path.display()))
                    && e.contains(&why),
                "{e}"
            );
        }
        check_writable("--export-csv", &tmp.path().join("new.csv")).unwrap();
        check_writable("--export-csv", &file).unwrap();
        // The probe is gone and the existing file untouched.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    }
}
