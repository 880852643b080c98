//! Exports of a result table, one file per format behind [`Exporter`]: what `run` and
//! `compare` write with `--export-csv`, `--export-json` and `--export-markdown`; and LAVA
//! test-case lines ([`lava`]) for board farms.
//!
//! A [`Table`] is the one column list the terminal table and every format share; JSON
//! exports the typed record itself, so it loses nothing the columns leave out.

mod csv;
mod json;
pub mod lava;
mod markdown;

use std::path::Path;

use anyhow::{Context, Result};

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
    format: &dyn Exporter,
    path: &Path,
    table: &Table,
    record: &serde_json::Value,
) -> Result<()> {
    let text = format.export(table, record)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
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
}
