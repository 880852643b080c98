//! Writing results: the run folder with its CSV files and `run.json`, and the table on stdout.

pub mod files;
pub mod rebuild;
pub mod stream;
pub mod system;
pub mod table;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

/// Creates the folder a run writes to. Never reuses an existing, non-empty folder:
/// with `out` given it must be new or empty; by default it is
/// `results/<rig>-<UTC timestamp>/`, suffixed `-2`, `-3`, ... if that exists already.
pub fn create_run_dir(out: Option<&Path>, rig: &str, started: DateTime<Utc>) -> Result<PathBuf> {
    if let Some(dir) = out {
        let occupied = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if occupied {
            bail!(
                "{} already holds files: choose a new --out folder",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok(dir.to_path_buf());
    }
    let base = Path::new("results").join(format!("{rig}-{}", started.format("%Y%m%dT%H%M%SZ")));
    std::fs::create_dir_all("results").context("cannot create results/")?;
    for n in 1.. {
        let dir = if n == 1 {
            base.clone()
        } else {
            PathBuf::from(format!("{}-{n}", base.display()))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    unreachable!("an unbounded range always yields")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_out_dir_must_be_new_or_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        assert_eq!(create_run_dir(Some(&dir), "r", Utc::now()).unwrap(), dir);
        std::fs::write(dir.join("summary.csv"), "x").unwrap();
        let err = create_run_dir(Some(&dir), "r", Utc::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already holds files"), "{err}");
    }
}
