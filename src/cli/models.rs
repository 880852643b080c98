//! `joulebench models`: list, fetch, verify and convert the model, label and image files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::models;
use crate::output::console::Console;

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// Show the manifest: each entry's name, kind, file and description (`verify` checks
    /// the files themselves).
    List,
    /// Download missing or damaged files (verifying SHA-256), or copy them from a folder.
    Fetch {
        /// Copy from this folder instead of downloading.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Check every file against the manifest (its SHA-256, or its git blob id); a missing
    /// optional file is reported, not a failure.
    Verify,
    /// Write each int8 model's weights, dequantized, as float32 safetensors next to it (for
    /// the torch backend; a derived file, redone when its source changes).
    Convert,
}

pub fn run(command: ModelsCommand, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    let manifest = models::Manifest::load_default()?;
    let offline_hint = matches!(command, ModelsCommand::Fetch { from: None });
    let rows = match command {
        ModelsCommand::List => {
            write!(out, "{}", models::format_list(&manifest))?;
            return Ok(ExitCode::SUCCESS);
        }
        ModelsCommand::Verify => manifest.verify(),
        ModelsCommand::Convert => {
            // An Edge TPU build keeps its weights inside the custom op: nothing to dequantize.
            // The float backend runs the classifiers (the models with labels) only.
            for entry in manifest
                .of_kind(models::Kind::Model)
                .filter(|e| !e.edgetpu && e.labels.is_some())
            {
                let model = manifest.open_model(&entry.name)?;
                let weights = models::ensure_float_weights(&model.path)?;
                writeln!(out, "{:<30} {}", entry.name, weights.display())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        ModelsCommand::Fetch { from: Some(dir) } => {
            manifest.fetch(&models::FetchOptions::from_dir(dir))
        }
        ModelsCommand::Fetch { from: None } => manifest.fetch(&models::FetchOptions::network()),
    };
    write!(out, "{}", models::format_table(&rows))?;
    verdict(&rows, offline_hint)?;
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 when every file is as the manifest says (optional ones may be missing), else the
/// one-line count; after a download, with the way to fetch without a network.
fn verdict(rows: &[models::FileReport], downloaded: bool) -> Result<()> {
    if models::all_ok(rows) {
        return Ok(());
    }
    let bad = rows.iter().filter(|r| !r.is_ok()).count();
    let hint = if downloaded {
        ": where the addresses cannot be reached, copy the files from a folder that has them \
         with `joulebench models fetch --from DIR`"
    } else {
        ""
    };
    anyhow::bail!(
        "{bad} of {} files are not as the manifest says{hint}",
        rows.len()
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, printed};
    use super::*;

    #[test]
    fn a_failed_download_says_how_to_fetch_offline() {
        let row = |outcome, optional| models::FileReport {
            name: "x".into(),
            kind: models::Kind::Model,
            path: "x".into(),
            outcome,
            optional,
        };
        let failed = || models::Outcome::Failed("download failed".into());
        let rows = [
            row(failed(), false),
            row(models::Outcome::NotFetched("HTTP 404".into()), true),
        ];
        let e = verdict(&rows, true).unwrap_err().to_string();
        assert_eq!(
            e,
            "1 of 2 files are not as the manifest says: where the addresses cannot be reached, \
             copy the files from a folder that has them with `joulebench models fetch --from DIR`"
        );
        let e = verdict(&rows, false).unwrap_err().to_string();
        assert_eq!(e, "1 of 2 files are not as the manifest says");
        // An optional file not fetched fails nothing.
        assert!(verdict(&rows[1..], true).is_ok());
    }

    #[test]
    fn the_list_names_the_manifest_models() {
        let mut out = console();
        run(ModelsCommand::List, &mut out).unwrap();
        assert!(printed(out).contains("mobilenet_v2_1.0_224_quant"));
    }
}
