//! The `joulebench` command line: the arguments (clap), one module per command, and the
//! exit status. `src/main.rs` only calls [`main`].

mod bench;
mod calibrate;
mod compare;
mod export_args;
mod models;
mod report;
mod rigs;
pub mod run;
mod sensors;
mod soak;
mod summarize;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{FromArgMatches, Parser, Subcommand};

use crate::output::console::Console;
use crate::signals;

/// Measures how much ML inference a machine does per joule.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The rig `run` and `sensors` use unless told otherwise (a built-in rig's name): this
/// machine's own meters where they are readable, else a simulated board.
pub const DEFAULT_RIG: &str = "local";

#[derive(Subcommand)]
pub enum Command {
    /// Run the benchmark protocol on every backend of a rig while sampling its sensors.
    Run(run::RunArgs),
    /// List, fetch or verify the model, label and image files.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// List the rigs built into joulebench, or print one to save and edit (`rigs show NAME >
    /// my.toml`, then `run --rig my.toml`).
    Rigs {
        #[command(subcommand)]
        command: Option<rigs::RigsCommand>,
    },
    /// Read each sensor of a rig once, or list this machine's meters (--detect).
    Sensors {
        /// Rig file, or the name of a rig (see `run --rig`).
        #[arg(long, default_value = DEFAULT_RIG)]
        rig: String,
        /// List the meters this machine offers (RAPL, hwmon, INA3221 under /sys or
        /// $JOULEBENCH_ROOT/sys; a Pi 5's PMIC; NVML GPUs), whether each can be read now and
        /// why not, and a rig snippet for the readable ones. Ignores --rig.
        #[arg(long)]
        detect: bool,
    },
    /// Derive an INA219's shunt correction from a reference reading, or add a reference point
    /// to a Pi 5 PMIC's gain-and-offset fit, and write it into the rig.
    Calibrate(calibrate::CalibrateArgs),
    /// Compare the rig against a Python reference loop, and measure the sampler's overhead.
    Bench(bench::BenchArgs),
    /// Compare inferences per joule across run folders, against a baseline.
    Compare(compare::CompareArgs),
    /// Write a Markdown report with SVG charts of run folders.
    Report(report::ReportArgs),
    /// Repeat a rig's protocol for an hour (or --minutes): check that memory stays bounded,
    /// no reading is dropped and latency does not drift.
    Soak(soak::SoakArgs),
    /// Rebuild a run folder's summary.csv from its rows (a run that was killed included).
    Summarize {
        /// The run folder.
        dir: PathBuf,
    },
}

/// The command line's definition, with the environment variables it reads listed after
/// `--help` ([`crate::environment`]).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().after_long_help(crate::environment::help())
}

/// Parses the command line, runs the command and turns its outcome into an exit status:
/// what the binary's `main` does.
pub fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match dispatch(cli, &mut Console::stdout()) {
        Ok(code) => code,
        Err(e) => {
            // One line: the context chain joined by ": ".
            eprintln!("joulebench: {}", format!("{e:#}").replace('\n', " "));
            // A run a signal ended says so in its status, whatever else went wrong.
            signals::received().map_or(ExitCode::FAILURE, |s| signals::exit_code(s).into())
        }
    }
}

/// Clap's own output for `--help`, `--version` and usage errors, with its exit status (0 and
/// 2); an error also ends with the one `joulebench: ` line every other failure ends with.
fn usage_error(e: &clap::Error) -> ExitCode {
    let code = ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    let _ = e.print();
    if e.use_stderr() {
        let rendered = e.render().to_string();
        let first = rendered.lines().map(str::trim).find(|l| !l.is_empty());
        let line = match (e.kind(), first) {
            (clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand, _) | (_, None) => {
                "a subcommand or argument is missing: see the usage above".to_owned()
            }
            (_, Some(first)) => first.strip_prefix("error: ").unwrap_or(first).to_owned(),
        };
        eprintln!("joulebench: {line}");
    }
    code
}

/// Runs the command; everything it prints goes through `out`.
pub fn dispatch(cli: Cli, out: &mut Console) -> Result<ExitCode> {
    crate::machine::check_root()?;
    match cli.command {
        Command::Run(args) => run::run(args, out),
        Command::Models { command } => models::run(command, out),
        Command::Rigs { command } => rigs::run(command, out),
        Command::Sensors { detect: true, .. } => sensors::detect(out),
        Command::Sensors { rig, .. } => sensors::read(&rig, out),
        Command::Calibrate(args) => calibrate::run(&args, out),
        Command::Bench(args) => bench::run(&args, out),
        Command::Compare(args) => compare::run(&args, out),
        Command::Report(args) => report::run(&args, out),
        Command::Soak(args) => soak::run(&args, out),
        Command::Summarize { dir } => summarize::run(&dir, out),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The command line `args` (after `joulebench`) as clap reads it.
    pub fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let line = std::iter::once("joulebench").chain(args.iter().copied());
        Cli::from_arg_matches(&command().try_get_matches_from(line)?)
    }

    /// A console that keeps what a command prints.
    pub fn console() -> Console<Vec<u8>> {
        Console::new(Vec::new())
    }

    pub fn printed(out: Console<Vec<u8>>) -> String {
        String::from_utf8(out.into_inner()).unwrap()
    }

    #[test]
    fn the_definitions_are_consistent() {
        command().debug_assert();
    }

    #[test]
    fn run_and_sensors_default_to_the_local_rig() {
        let Command::Run(args) = parse(&["run"]).unwrap().command else {
            panic!("not run");
        };
        assert_eq!(args.run.rig, DEFAULT_RIG);
        let Command::Sensors { rig, detect } = parse(&["sensors"]).unwrap().command else {
            panic!("not sensors");
        };
        assert_eq!((rig.as_str(), detect), (DEFAULT_RIG, false));
    }

    #[test]
    fn usage_errors_are_clap_errors() {
        for bad in [
            &["run", "--frobnicate"][..],
            &["bench", "--rounds", "0"],
            &["run", "--threads", "many"],
            &["run", "--aoti", "--no-aoti"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

/// The command-line reference generated from the clap definitions above, so that it cannot
/// drift from them: `docs/src/reference/cli.md` (every command's `--help`) and the man pages
/// in `docs/man/` (`joulebench.1` and one per command). A test fails when either file differs from what the definitions
/// give; `JOULEBENCH_UPDATE_DOCS=1 cargo test --lib cli::reference` writes them.
#[cfg(test)]
mod reference {
    use super::command;

    /// Help text is wrapped at this width, whatever the terminal running the test.
    const WIDTH: usize = 100;

    /// Every command's long help, the root's first, as Markdown.
    fn markdown() -> String {
        let mut root = command().term_width(WIDTH);
        root.build();
        let mut out = String::from(
            "<!-- generated by `JOULEBENCH_UPDATE_DOCS=1 cargo test --lib cli::reference` from \
             src/cli/; do not edit -->\n\n# Command line\n\nEvery command's `--help`, as \
             `joulebench` prints it. Exit statuses: [Exit codes](exit-codes.md); environment \
             variables: [Environment variables](environment.md); the man pages: \
             `docs/man/` (`man -l docs/man/joulebench-run.1`).\n",
        );
        let mut stack = vec![(String::from("joulebench"), root)];
        while let Some((name, mut command)) = stack.pop() {
            let help = command.render_long_help().to_string();
            out.push_str(&format!(
                "\n## `{name}`\n\n```text\n{}\n```\n",
                help.trim_end()
            ));
            let mut children: Vec<_> = command
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .map(|c| (format!("{name} {}", c.get_name()), c.clone()))
                .collect();
            children.reverse();
            stack.extend(children);
        }
        out
    }

    /// `joulebench.1` and a page per command at every depth (`joulebench-run.1`,
    /// `joulebench-models-list.1`, ...), as `git` has them. Each page's SUBCOMMANDS name the
    /// pages below it, and its SEE ALSO the page above it; clap's `help` subcommand is no
    /// page, so it is left out of the man pages (it stays in `--help`).
    fn man_pages() -> Vec<(String, Vec<u8>)> {
        /// The command without its `help` subcommand, at every depth.
        fn without_help(command: clap::Command) -> clap::Command {
            command
                .disable_help_subcommand(true)
                .mut_subcommands(without_help)
        }
        /// `command`'s page, named `name`, then its subcommands' pages.
        fn pages(
            command: &clap::Command,
            name: &str,
            parent: Option<&str>,
            out: &mut Vec<(String, Vec<u8>)>,
        ) {
            let version = format!("joulebench {}", env!("CARGO_PKG_VERSION"));
            let mut page = Vec::new();
            clap_mangen::Man::new(command.clone().display_name(name))
                .source(version)
                .render(&mut page)
                .unwrap();
            if let Some(parent) = parent {
                let mut see_also = clap_mangen::roff::Roff::new();
                see_also
                    .control("SH", ["SEE ALSO"])
                    .text([clap_mangen::roff::roman(format!("{parent}(1)"))]);
                page.extend(see_also.to_roff().into_bytes());
            }
            out.push((format!("{name}.1"), page));
            for sub in command.get_subcommands() {
                pages(sub, &format!("{name}-{}", sub.get_name()), Some(name), out);
            }
        }
        let mut root = without_help(command()).term_width(WIDTH);
        root.build();
        let mut out = Vec::new();
        pages(&root, "joulebench", None, &mut out);
        out
    }

    /// Every command's long help, at every depth, the root's first: what `--help` prints.
    fn every_help() -> Vec<(String, String)> {
        let mut root = command().term_width(WIDTH);
        root.build();
        let mut out = Vec::new();
        let mut stack = vec![(String::from("joulebench"), root)];
        while let Some((name, mut command)) = stack.pop() {
            out.push((name.clone(), command.render_long_help().to_string()));
            // clap's `help` subcommand repeats the help of the others.
            for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
                stack.push((format!("{name} {}", sub.get_name()), sub.clone()));
            }
        }
        out
    }

    /// A doc comment is both rustdoc and `--help`: an intra-doc link (``[`Type::item`]``) or a
    /// Markdown link renders as its brackets in a terminal, in cli.md and in the man pages.
    #[test]
    fn no_help_text_holds_rustdoc_or_markdown_link_syntax() {
        let helps = every_help();
        assert!(helps.len() > 10, "only {} commands walked", helps.len());
        for (name, help) in helps {
            for line in help.lines() {
                assert!(
                    !line.contains("[`") && !line.contains("`]") && !line.contains("]("),
                    "`{name} --help` shows link syntax; write the doc comment as plain text \
                     (a `//` comment can point developers elsewhere): {line}"
                );
            }
        }
    }

    #[test]
    fn the_command_line_reference_is_the_one_the_definitions_give() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let update = std::env::var_os("JOULEBENCH_UPDATE_DOCS").is_some();
        let mut files = vec![(
            "docs/src/reference/cli.md".to_string(),
            markdown().into_bytes(),
        )];
        let pages = man_pages();
        // A page of a command that is gone would still be installed, and cited: none may stay.
        let man = root.join("docs/man");
        for entry in std::fs::read_dir(&man).into_iter().flatten() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".1") && !pages.iter().any(|(page, _)| *page == name) {
                assert!(
                    update,
                    "docs/man/{name} is no command's page: run `JOULEBENCH_UPDATE_DOCS=1 cargo \
                     test --lib cli::reference` and commit it"
                );
                std::fs::remove_file(man.join(&name)).unwrap();
            }
        }
        for (page, text) in pages {
            files.push((format!("docs/man/{page}"), text));
        }
        for (file, generated) in files {
            let path = root.join(&file);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &generated).unwrap();
                continue;
            }
            let written = std::fs::read(&path).unwrap_or_default();
            assert!(
                written == generated,
                "{file} is not what src/cli/ defines: run `JOULEBENCH_UPDATE_DOCS=1 cargo test \
                 --lib cli::reference` and commit it"
            );
        }
    }
}
