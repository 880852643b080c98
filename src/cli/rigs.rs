//! `joulebench rigs`: the rigs built into the binary, one line each, or one of them printed
//! exactly as shipped. A rig for another setup starts as a copy of the nearest one:
//! `joulebench rigs show NAME > my.toml`, edited, then `joulebench run --rig my.toml`.

use std::process::ExitCode;

use anyhow::Result;

use crate::output::console::Console;
use crate::project;

#[derive(clap::Subcommand)]
pub enum RigsCommand {
    /// One line per built-in rig: its name and description (what `rigs` alone prints).
    List,
    /// Print a built-in rig's file exactly as shipped, comments included, to save and edit:
    /// `joulebench rigs show rpi3-cpu > my.toml`, then `joulebench run --rig my.toml`.
    Show {
        /// The rig's name, as `joulebench rigs` lists it.
        name: String,
    },
}

pub fn run(
    command: Option<RigsCommand>,
    out: &mut Console<impl std::io::Write>,
) -> Result<ExitCode> {
    match command.unwrap_or(RigsCommand::List) {
        RigsCommand::List => {
            let names = project::shipped_rig_names();
            let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
            for name in names {
                let text = project::shipped_rig(name)?;
                writeln!(out, "{name:<width$}  {}", description(text))?;
            }
        }
        RigsCommand::Show { name } => write!(out, "{}", project::shipped_rig(&name)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A rig's `description`, read from its TOML alone (every shipped rig parses: a unit test of
/// `rig` holds them to it).
fn description(text: &str) -> String {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    match table.get("description") {
        Some(toml::Value::String(d)) => d.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, printed};
    use super::*;

    #[test]
    fn every_built_in_rig_is_listed_with_its_description() {
        let mut out = console();
        run(None, &mut out).unwrap();
        let text = printed(out);
        let names = project::shipped_rig_names();
        assert_eq!(text.lines().count(), names.len(), "{text}");
        for (line, name) in text.lines().zip(&names) {
            let rig = crate::rig::Rig::parse(project::shipped_rig(name).unwrap()).unwrap();
            assert!(
                line.starts_with(&format!("{name} ")) && line.ends_with(&rig.description),
                "{line}"
            );
        }
        let mut listed = console();
        run(Some(RigsCommand::List), &mut listed).unwrap();
        assert_eq!(printed(listed), text);
    }

    #[test]
    fn a_shown_rig_is_the_shipped_file_and_an_unknown_name_one_line() {
        let mut out = console();
        run(
            Some(RigsCommand::Show {
                name: "rpi3-cpu".into(),
            }),
            &mut out,
        )
        .unwrap();
        let shipped = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rigs/rpi3-cpu.toml"),
        )
        .unwrap();
        assert_eq!(printed(out), shipped);
        let e = run(
            Some(RigsCommand::Show {
                name: "rpi9".into(),
            }),
            &mut console(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("no built-in rig \"rpi9\"; the built-in rigs are ")
                && e.contains("rpi3-cpu")
                && !e.contains('\n'),
            "{e}"
        );
    }
}
