//! Markdown: a pipe table of the same columns as the terminal's, for reports.

use anyhow::Result;

use super::{Exporter, Table};

pub struct Markdown;

impl Exporter for Markdown {
    fn export(&self, table: &Table, _record: &serde_json::Value) -> Result<String> {
        let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let mut out = row(table.headers.iter().map(|h| cell(h)).collect());
        out += &format!("|{}|\n", vec!["---"; table.headers.len()].join("|"));
        for r in &table.rows {
            out += &row(r.iter().map(|c| cell(c)).collect());
        }
        Ok(out)
    }
}

/// Text made safe for one cell of a Markdown table: a pipe would end the cell and a line
/// break the row (a rail named "5V | USB" or with a newline in it), so pipes are escaped and
/// line breaks become spaces.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace("\r\n", " ")
        .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_and_line_breaks_stay_inside_their_cell() {
        assert_eq!(cell("5V | USB\nline\r\nend\r"), "5V \\| USB line end ");
        let table = Table {
            headers: vec!["rail"],
            rows: vec![vec!["a|b\nc".into()]],
        };
        let text = Markdown.export(&table, &serde_json::Value::Null).unwrap();
        assert_eq!(text, "| rail |\n|---|\n| a\\|b c |\n");
    }
}
