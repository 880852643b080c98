//! JSON: the typed record behind the table, pretty-printed, so nothing is lost to the columns.

use anyhow::Result;

use super::{Exporter, Table};

pub struct Json;

impl Exporter for Json {
    fn export(&self, _table: &Table, record: &serde_json::Value) -> Result<String> {
        Ok(serde_json::to_string_pretty(record)? + "\n")
    }
}
