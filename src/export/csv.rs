//! CSV: the table's columns, quoted where a cell needs it.

use anyhow::Result;

use super::{Exporter, Table};

pub struct Csv;

impl Exporter for Csv {
    fn export(&self, table: &Table, _record: &serde_json::Value) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&table.headers)?;
        for row in &table.rows {
            w.write_record(row)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}
