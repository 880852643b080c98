//! Markdown: a pipe table of the same columns as the terminal's, for reports.

use anyhow::Result;

use super::{Exporter, Table};

pub struct Markdown;

impl Exporter for Markdown {
    fn export(&self, table: &Table, _record: &serde_json::Value) -> Result<String> {
        let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        // A pipe inside a cell would end it.
        let escape = |cell: &str| cell.replace('|', "\\|");
        let mut out = row(table.headers.iter().map(|h| escape(h)).collect());
        out += &format!("|{}|\n", vec!["---"; table.headers.len()].join("|"));
        for r in &table.rows {
            out += &row(r.iter().map(|c| escape(c)).collect());
        }
        Ok(out)
    }
}
