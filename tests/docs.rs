//! The README and the docs book hold together, and hold to the code: every relative link
//! points to a file that exists and, with a `#fragment`, to a heading of that file (GitHub's
//! anchors); every page of `docs/src/` is in its `SUMMARY.md`; and every claim the code can
//! settle is checked against the code: the rig list against `rigs/`, the output files'
//! columns and keys against what a run writes, the exit codes per command against what the
//! binary does, the README's account of `make test` against the Makefile, the man pages'
//! cross-references against the pages there are, the board guides against the shipped rigs,
//! and the release tarball's man pages. The generated command-line reference (`cli.md`, the
//! man pages) is checked against the clap definitions by `cli::reference` in the library's
//! tests, which also keeps rustdoc link syntax out of `--help`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{ensure_models, joulebench, repo, sim_rig};

/// `README.md` and every Markdown file under `docs/src`.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![repo().join("README.md")];
    let mut stack = vec![repo().join("docs/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The text's lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, every character but letters, digits, spaces,
/// `-` and `_` dropped, spaces to `-`; a repeated one gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while out.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        out.insert(unique);
    }
    out
}

/// Every link target `](…)` in the page's prose, inline code left out.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        // Spans in backticks are code, not links.
        let plain: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            out.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            checked += 1;
            let (file, fragment) = match target.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let name = page.strip_prefix(repo()).unwrap().display().to_string();
            if !resolved.exists() {
                broken.push(format!("{name}: {target} (no such file)"));
                continue;
            }
            if let Some(fragment) = fragment {
                let heads = anchors(&std::fs::read_to_string(&resolved).unwrap_or_default());
                if !heads.contains(fragment) {
                    broken.push(format!("{name}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} links found: is the reader broken?"
    );
    assert!(
        broken.is_empty(),
        "{} broken links: {}",
        broken.len(),
        broken.join("; ")
    );
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let src = repo().join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<PathBuf> = links(&summary).iter().map(|l| src.join(l)).collect();
    for page in pages() {
        if page.starts_with(&src) && !page.ends_with("SUMMARY.md") {
            assert!(
                listed.contains(&page),
                "{} is not in SUMMARY.md",
                page.display()
            );
        }
    }
    assert!(repo().join("docs/book.toml").is_file());
}

#[test]
fn the_readme_stays_short() {
    let words = std::fs::read_to_string(repo().join("README.md"))
        .unwrap()
        .split_whitespace()
        .count();
    assert!(
        words <= 3000,
        "README.md has {words} words: move detail into docs/"
    );
}

#[test]
fn the_reader_finds_links_and_anchors() {
    let text = "# A title\n## A title\n### Two: `words` (and more)\n```\n## not a heading \
                [x](code.md)\n```\nSee [this](b.md#two-words-and-more) and `[code](c.md)`.";
    assert_eq!(links(text), ["b.md#two-words-and-more"]);
    let heads = anchors(text);
    assert!(heads.contains("a-title") && heads.contains("a-title-1"));
    assert!(heads.contains("two-words-and-more") && !heads.contains("not-a-heading"));
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The spans in backticks of a piece of Markdown, in order.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, span)| span.to_string())
        .collect()
}

/// The rows of the first table after the heading line `heading` (exactly as written, `#`s
/// included) and before the next heading: each row's cells, trimmed, the header row and the
/// separator left out. A `\|` inside a cell stays in it.
fn table_under(text: &str, heading: &str) -> Vec<Vec<String>> {
    let lines = prose(text);
    let at = lines
        .iter()
        .position(|l| l.trim_end() == heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let rows: Vec<Vec<String>> = lines[at + 1..]
        .iter()
        .take_while(|l| !l.starts_with('#'))
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.replace("\\|", "\u{0}")
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.replace('\u{0}', "\\|").trim().to_string())
                .collect()
        })
        .collect();
    assert!(rows.len() > 2, "no table under {heading:?}");
    rows[2..].to_vec()
}

/// The names a table lists in its first column, in order: every span in backticks there.
fn first_column_names(text: &str, heading: &str) -> Vec<String> {
    table_under(text, heading)
        .iter()
        .flat_map(|row| code_spans(&row[0]))
        .collect()
}

#[test]
fn the_rig_reference_lists_every_shipped_rig() {
    let listed: BTreeSet<String> =
        first_column_names(&read("docs/src/reference/rig-files.md"), "# Rig files")
            .into_iter()
            .collect();
    let shipped: BTreeSet<String> = std::fs::read_dir(repo().join("rigs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .map(|name| format!("rigs/{name}"))
        .collect();
    assert!(shipped.len() > 5, "{shipped:?}");
    assert_eq!(
        listed, shipped,
        "rig-files.md's rig table and the files in rigs/ differ"
    );
}

/// The field names serde's derive gives a struct, in declaration order: what a CSV header
/// serialized from it holds. Read from its `Deserialize` impl, which hands them to the
/// deserializer, so no value of the type is needed.
fn serde_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor};
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Self::Error::custom("only the field names were wanted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

#[test]
fn the_summary_columns_are_the_ones_summary_rows_have_in_order() {
    let documented = first_column_names(
        &read("docs/src/reference/output-files.md"),
        "## `summary.csv` columns",
    );
    let defined = serde_fields::<joulebench::results::SummaryRow>();
    assert!(defined.len() > 50, "{defined:?}");
    assert_eq!(
        documented, defined,
        "output-files.md's summary.csv columns are not SummaryRow's fields (src/results.rs), \
         in order"
    );
}

#[test]
fn the_readers_find_tables_and_fields() {
    let text = "# T\n\nSome text.\n\n| a | b |\n|---|---|\n| `x`, `y` | 1 \\| 2 |\n| `z` | 3 |\n\n\
                ## Next\n\n| c |\n|---|\n| `w` |\n";
    assert_eq!(first_column_names(text, "# T"), ["x", "y", "z"]);
    assert_eq!(table_under(text, "# T")[0][1], "1 \\| 2");
    assert_eq!(first_column_names(text, "## Next"), ["w"]);
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        first: u8,
        #[serde(default)]
        second: String,
    }
    assert_eq!(serde_fields::<Two>(), ["first", "second"]);
}

fn output(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The CSV file's header, split.
fn header(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The keys of a pretty-printed JSON object's top level, in the order they are written.
fn top_level_keys(json: &str) -> Vec<String> {
    json.lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once("\":").map(|(key, _)| key.to_string()))
        .collect()
}

/// The exit-code page's per-command table: each command named in its first column (several
/// per row where a row names several) with the row's cells by column title.
fn exit_code_table() -> BTreeMap<String, BTreeMap<String, String>> {
    let page = read("docs/src/reference/exit-codes.md");
    let lines = prose(&page);
    let at = lines.iter().position(|l| *l == "## Per command").unwrap();
    let titles: Vec<String> = lines[at..]
        .iter()
        .find(|l| l.starts_with('|'))
        .unwrap()
        .trim()
        .trim_matches('|')
        .split('|')
        .map(|t| t.trim().to_string())
        .collect();
    let mut out = BTreeMap::new();
    for row in table_under(&page, "## Per command") {
        let cells: BTreeMap<String, String> =
            titles.iter().cloned().zip(row.iter().cloned()).collect();
        for name in code_spans(&row[0]) {
            out.insert(name, cells.clone());
        }
    }
    out
}

/// Every command of the command line, as typed (`run`, `models list`, ...), without clap's
/// `help`.
fn leaf_commands() -> BTreeSet<String> {
    fn walk(command: &clap::Command, path: &str, out: &mut BTreeSet<String>) {
        let subs: Vec<_> = command
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.insert(path.trim().to_string());
        }
        for sub in subs {
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&joulebench::cli::command(), "", &mut out);
    out
}

#[test]
fn the_exit_code_table_names_every_command_and_the_signals_the_code_uses() {
    let table = exit_code_table();
    let named: BTreeSet<String> = table
        .keys()
        .map(|name| {
            name.split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        named,
        leaf_commands(),
        "exit-codes.md's per-command table and the command line's commands differ"
    );
    let signalled: BTreeSet<String> = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM]
        .iter()
        .map(|s| joulebench::signals::exit_code(*s).to_string())
        .collect();
    for (name, cells) in &table {
        let cell = &cells["a signal"];
        if cell != "ends the process" {
            let codes: BTreeSet<String> = cell.split(", ").map(str::to_string).collect();
            assert_eq!(codes, signalled, "{name}: {cell}");
        }
    }
}

/// The rig of the run-based checks: the simulated chip never reports a conversion ready, so
/// every window is `invalid` however fast or slow this machine is.
fn invalid_rig() -> String {
    sim_rig("[sensors.faults]\ncnvr_stuck = true\n")
}

/// One run's folder checked against output-files.md, and every command that reads a run
/// folder checked against exit-codes.md for a row that is not `ok`.
#[test]
fn a_run_folder_and_the_exit_codes_are_as_documented() {
    ensure_models();
    let tmp = tempfile::tempdir().unwrap();
    let rig = tmp.path().join("rig.toml");
    std::fs::write(&rig, invalid_rig()).unwrap();
    let run_dir = tmp.path().join("run");
    let table = exit_code_table();
    let not_ok = |command: &str| -> i32 {
        let cell = &table[command]["a row not `ok`"];
        cell.parse()
            .unwrap_or_else(|_| panic!("{command}: {cell:?} is no exit status"))
    };

    let run = output(
        joulebench()
            .args(["run", "--rig"])
            .arg(&rig)
            .arg("--out")
            .arg(&run_dir),
    );
    assert_eq!(run.status.code(), Some(not_ok("run")), "{}", said(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("joulebench: invalid: "),
        "{}",
        said(&run)
    );

    // The files, against output-files.md.
    let page = read("docs/src/reference/output-files.md");
    for file in ["latency.csv", "power.csv", "summary.csv"] {
        assert_eq!(
            header(&run_dir.join(file)),
            first_column_names(&page, &format!("## `{file}` columns")),
            "{file}'s header and output-files.md's list differ"
        );
    }
    let documented = table_under(&page, "## `run.json` keys");
    let written = top_level_keys(&std::fs::read_to_string(run_dir.join("run.json")).unwrap());
    let keys: Vec<String> = documented
        .iter()
        .map(|row| code_spans(&row[0])[0].clone())
        .collect();
    let present: Vec<&String> = keys.iter().filter(|k| written.contains(k)).collect();
    assert_eq!(
        written.iter().collect::<Vec<_>>(),
        present,
        "run.json's keys are not those output-files.md lists, in its order"
    );
    for row in &documented {
        let key = &code_spans(&row[0])[0];
        assert!(
            written.contains(key) || row[1].contains("(absent otherwise)"),
            "run.json has no `{key}`, and output-files.md does not say when it is absent"
        );
    }

    // Commands that read the folder, with a row that is not ok.
    let ok_run = repo().join("results/examples/repeat-quant");
    let summarize = output(joulebench().arg("summarize").arg(&run_dir));
    assert_eq!(
        summarize.status.code(),
        Some(not_ok("summarize")),
        "{}",
        said(&summarize)
    );
    let compare = output(joulebench().arg("compare").arg(&ok_run).arg(&run_dir));
    assert_eq!(
        compare.status.code(),
        Some(not_ok("compare")),
        "{}",
        said(&compare)
    );
    let report = output(
        joulebench()
            .arg("report")
            .arg(&ok_run)
            .arg(&run_dir)
            .arg("--out")
            .arg(tmp.path().join("report")),
    );
    assert_eq!(
        report.status.code(),
        Some(not_ok("report")),
        "{}",
        said(&report)
    );
    let soak = output(
        joulebench()
            .args(["soak", "--minutes", "0.05", "--rig"])
            .arg(&rig)
            .arg("--out")
            .arg(tmp.path().join("soak")),
    );
    assert_eq!(soak.status.code(), Some(not_ok("soak")), "{}", said(&soak));
}

/// The exit statuses of the other commands' documented cases, each cheap and independent of
/// the machine's speed.
#[test]
fn the_other_commands_exit_as_documented() {
    let table = exit_code_table();
    let besides = |command: &str| table[command]["1 besides an error"].clone();
    let tmp = tempfile::tempdir().unwrap();

    // `sensors`: a chip that does not answer is a line on stdout and exit 1, with no
    // `joulebench:` line.
    let rig = tmp.path().join("absent.toml");
    std::fs::write(
        &rig,
        invalid_rig().replace("cnvr_stuck = true", "absent = true"),
    )
    .unwrap();
    let sensors = output(joulebench().args(["sensors", "--rig"]).arg(&rig));
    assert_eq!(sensors.status.code(), Some(1), "{}", said(&sensors));
    assert!(
        String::from_utf8_lossy(&sensors.stdout).contains("): error: ")
            && !String::from_utf8_lossy(&sensors.stderr).contains("joulebench:"),
        "{}",
        said(&sensors)
    );
    assert!(
        besides("sensors").contains("error: …") && besides("sensors").contains("no `joulebench:`"),
        "exit-codes.md: {}",
        besides("sensors")
    );

    // `models verify` of an empty models folder.
    let verify = output(
        joulebench()
            .args(["models", "verify"])
            .env("JOULEBENCH_MODELS_DIR", tmp.path().join("no-models")),
    );
    assert_eq!(verify.status.code(), Some(1), "{}", said(&verify));
    let line = String::from_utf8_lossy(&verify.stderr);
    assert!(
        line.contains("files are not as the manifest says"),
        "{line}"
    );
    assert!(
        besides("models verify").contains("files are not as the manifest says"),
        "exit-codes.md: {}",
        besides("models verify")
    );

    // The commands whose 0 and 1 are their work done or an error.
    ensure_models();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let no_models = tmp.path().join("no-models");
    for (line, env, code) in [
        (&["models", "list"][..], None, 0),
        (
            &["sensors", "--detect"],
            Some(("JOULEBENCH_ROOT", &empty)),
            0,
        ),
        (&["run", "--open-only", "--rig", "sim-cpu"], None, 0),
        (
            &["models", "convert"],
            Some(("JOULEBENCH_MODELS_DIR", &no_models)),
            1,
        ),
        (&["calibrate", "--rig", "sim-cpu", "--rail", "5V"], None, 1),
    ] {
        let mut command = joulebench();
        command.args(line);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let out = output(&mut command);
        assert_eq!(out.status.code(), Some(code), "{line:?}: {}", said(&out));
        if code == 1 {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                stderr
                    .lines()
                    .filter(|l| l.starts_with("joulebench: "))
                    .count(),
                1,
                "{line:?}: {stderr}"
            );
        }
    }
    let fetch = output(
        joulebench()
            .args(["models", "fetch", "--from"])
            .arg(&empty)
            .env("JOULEBENCH_MODELS_DIR", &no_models),
    );
    assert_eq!(fetch.status.code(), Some(1), "{}", said(&fetch));
    assert!(
        String::from_utf8_lossy(&fetch.stderr).contains("files are not as the manifest says"),
        "{}",
        said(&fetch)
    );

    // Every command: --help 0, a usage error 2, an error 1 with one `joulebench:` line.
    for command in leaf_commands() {
        let words: Vec<&str> = command.split(' ').collect();
        let help = output(joulebench().args(&words).arg("--help"));
        assert_eq!(help.status.code(), Some(0), "{command}: {}", said(&help));
        let usage = output(joulebench().args(&words).arg("--no-such-flag"));
        assert_eq!(usage.status.code(), Some(2), "{command}: {}", said(&usage));
    }
    let version = output(joulebench().arg("--version"));
    assert_eq!(version.status.code(), Some(0), "{}", said(&version));
    let error = output(joulebench().arg("summarize").arg(tmp.path()));
    assert_eq!(error.status.code(), Some(1), "{}", said(&error));
    let stderr = String::from_utf8_lossy(&error.stderr);
    assert!(
        stderr.lines().count() == 1 && stderr.starts_with("joulebench: "),
        "{stderr}"
    );
}

/// The steps of the Makefile's `test` recipe, in order, as the README names them: `cargo
/// SUBCOMMAND` for a cargo step, the path for a script, the program's name otherwise.
fn make_test_steps(makefile: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut in_recipe = false;
    for line in makefile.lines() {
        if line.starts_with("test:") && !line.contains('=') {
            in_recipe = true;
            continue;
        }
        if !in_recipe {
            continue;
        }
        let Some(command) = line.strip_prefix('\t') else {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            break;
        };
        let command = command.trim_start_matches(['@', '-', '+']);
        // Leading VAR=value assignments (and $(CARGO_ENV), a list of them) are the step's
        // environment, not the step.
        let mut words = command
            .split_whitespace()
            .skip_while(|w| (w.contains('=') && !w.starts_with('$')) || *w == "$(CARGO_ENV)");
        let Some(program) = words.next() else {
            continue;
        };
        let step = match program {
            "$(CARGO)" | "cargo" => format!("cargo {}", words.next().unwrap_or_default()),
            "echo" | "true" | ":" => continue,
            path => path.to_string(),
        };
        steps.push(step);
    }
    steps
}

/// The steps of a shell script such as scripts/test.sh, in order: each line whose command
/// (after its VAR=value assignments) is `cargo SUBCOMMAND` or a script of the project, a step
/// run twice in a row (`cargo test --no-run`, then `cargo test`) named once.
fn script_steps(script: &str) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    for line in script.lines() {
        let mut words = line
            .split_whitespace()
            .skip_while(|w| w.contains('=') && !w.starts_with("scripts/"));
        let step = match words.next() {
            Some("cargo") => format!("cargo {}", words.next().unwrap_or_default()),
            Some(path) if path.starts_with("scripts/") => path.to_string(),
            _ => continue,
        };
        if steps.last() != Some(&step) {
            steps.push(step);
        }
    }
    steps
}

#[test]
fn the_readme_says_what_make_test_runs_in_order() {
    let steps: Vec<String> = make_test_steps(&read("Makefile"))
        .into_iter()
        .flat_map(|step| match step.as_str() {
            "scripts/test.sh" => script_steps(&read(&step)),
            _ => vec![step],
        })
        .collect();
    assert!(
        steps.len() >= 3 && steps[0].starts_with("cargo "),
        "the test recipe's steps: {steps:?}"
    );
    let readme = read("README.md");
    let lines = prose(&readme);
    let at = lines
        .iter()
        .position(|l| l.contains("`make test` runs, in order:"))
        .expect("README.md has no paragraph starting \"`make test` runs, in order:\"");
    let paragraph = lines[at..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let spans = code_spans(&paragraph);
    let mut rest = spans.iter();
    for step in &steps {
        assert!(
            rest.any(|span| span == step),
            "README.md's account of `make test` does not name `{step}` after the steps before \
             it (the Makefile's test recipe runs {steps:?}; the paragraph names {spans:?})"
        );
    }
}

#[test]
fn the_make_test_reader_finds_each_step() {
    let makefile = "test: FEATURES = torch\ntest: models\n\t$(CARGO) test $(FLAGS)\n\
                    \t@scripts/a.sh\n\t@$(CARGO_ENV) X=\"$(Y)\" scripts/b.sh $(BIN)\n\t@echo done\n\n\
                    dist:\n\t@scripts/dist.sh\n";
    assert_eq!(
        make_test_steps(makefile),
        ["cargo test", "scripts/a.sh", "scripts/b.sh"]
    );
}

#[test]
fn the_script_reader_finds_each_step_once() {
    let script =
        "#!/bin/sh\n# scripts/not-a-step.sh in a comment\nX=1 cargo test \"$@\" --no-run\n\
                  nice -n 19 bash -c '\n  scripts/a.sh\n' &\nX=1 cargo test \"$@\"\n\
                  scripts/b.sh \"$bin\"\necho done\n";
    assert_eq!(
        script_steps(script),
        ["cargo test", "scripts/a.sh", "cargo test", "scripts/b.sh"]
    );
}

#[test]
fn the_readme_asks_for_the_rust_version_cargo_toml_needs() {
    let manifest = read("Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("Rust {version} or later")),
        "README.md's quick start must ask for Rust {version} or later (Cargo.toml's rust-version)"
    );
}

#[test]
fn every_man_page_cited_exists() {
    let man = repo().join("docs/man");
    let mut pages = 0;
    for entry in std::fs::read_dir(&man).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("1") {
            continue;
        }
        pages += 1;
        let text = std::fs::read_to_string(&path).unwrap().replace("\\-", "-");
        // A citation is NAME(SECTION), NAME made of letters, digits, `-`, `_` and `.`.
        let mut rest = text.as_str();
        while let Some(open) = rest.find('(') {
            let name: String = rest[..open]
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let section: String = rest[open + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let closed = rest[open + 1 + section.len()..].starts_with(')');
            if !name.is_empty() && !section.is_empty() && closed && name.starts_with("joulebench") {
                assert!(
                    man.join(format!("{name}.{section}")).is_file(),
                    "{} cites {name}({section}), which is no page in docs/man",
                    path.display()
                );
            }
            rest = &rest[open + 1..];
        }
        if path.file_name().unwrap() != "joulebench.1" {
            assert!(
                text.contains(".SH \"SEE ALSO\""),
                "{} has no SEE ALSO",
                path.display()
            );
        }
    }
    assert!(pages > 10, "only {pages} man pages");
}

#[test]
fn the_release_tarball_carries_the_man_pages_and_says_how_to_install_them() {
    let script = read("scripts/dist.sh");
    assert!(
        script.contains("cp docs/man/joulebench*.1 \"$root/man/man1/\""),
        "scripts/dist.sh must copy docs/man's pages into the tarball's man/man1/"
    );
    let install = script
        .split("cat > \"$root/INSTALL.txt\" <<INSTALL")
        .nth(1)
        .and_then(|rest| rest.split("\nINSTALL\n").next())
        .expect("scripts/dist.sh writes INSTALL.txt from a heredoc");
    for needed in [
        "man -l man/man1/",
        "~/.local/share/man/man1",
        "/usr/local/share/man/man1",
    ] {
        assert!(
            install.contains(needed),
            "INSTALL.txt must say how to read and install the man pages: no {needed:?}"
        );
    }
}

/// What `sensors` shows between brackets for an INA219 of a shipped rig: its settings as the
/// driver derives them, then the bus clock (`src/cli/sensors.rs`, the driver's `detail`).
fn ina219_details(rig: &str) -> Vec<(String, String, u8)> {
    let rig = joulebench::rig::Rig::load(&repo().join("rigs").join(format!("{rig}.toml")))
        .unwrap_or_else(|e| panic!("{rig}: {e:#}"));
    rig.sensors
        .iter()
        .filter_map(|spec| match &spec.spec {
            joulebench::sensor::SensorSpec::Ina219(spec) => {
                let bus = spec
                    .i2c_bus
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let settings =
                    joulebench::sensor::ina219::Ina219Settings::from_spec(spec, bus.clone())
                        .unwrap();
                Some((
                    format!("[{}; I2C at {} kHz, ", settings.summary(), spec.bus_khz),
                    bus,
                    spec.address,
                ))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_board_guides_wire_and_show_what_the_shipped_rigs_use() {
    for (page, rigs) in [
        (
            "docs/src/guide/raspberry-pi.md",
            &["rpi3-cpu", "rpi4-cpu", "rpi5-ina219"][..],
        ),
        ("docs/src/guide/jetson.md", &["jetson-nano"]),
        ("docs/src/guide/coral.md", &["rpi3-coral"]),
    ] {
        let text = read(page);
        for heading in ["What to buy", "Wiring", "Checking the wiring"] {
            assert!(
                text.contains(&format!("## {heading}")),
                "{page} has no \"{heading}\" section"
            );
        }
        // Every pin of the chip has its row in a wiring table.
        for pin in ["VCC", "GND", "SDA", "SCL", "VIN+", "VIN−"] {
            assert!(
                text.contains(&format!("| {pin} |")),
                "{page}: no wiring-table row for {pin}"
            );
        }
        for rig in rigs {
            let details = ina219_details(rig);
            assert!(!details.is_empty(), "{rig} has no INA219");
            for (detail, bus, address) in details {
                assert!(
                    text.contains(&detail),
                    "{page} does not show the line `sensors --rig {rig}` prints, {detail}…"
                );
                assert!(text.contains(&format!("`{bus}`")), "{page}: no `{bus}`");
                assert!(
                    text.contains(&format!("0x{address:02x}")),
                    "{page}: no address 0x{address:02x}"
                );
            }
        }
        // No line may read as a real board's measurement: the pages say none was made.
        assert!(
            text.contains("Not yet run on the real thing"),
            "{page} must say that it has not run on the hardware"
        );
    }
}

/// The first fenced block after the line `marker` in `text`, without its fences.
fn block_after(text: &str, marker: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(marker));
    assert!(lines.next().is_some(), "no line {marker:?}");
    lines
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_worked_comparison_is_what_compare_prints_for_its_folders() {
    // The example folders are kept in results/examples/, so the guide's output can be held to
    // what `compare` prints for them today.
    let page = read("docs/src/guide/comparing-and-reports.md");
    let shown = block_after(&page, "A worked comparison");
    let at = shown
        .find("$ joulebench compare ")
        .expect("the worked comparison shows a `$ joulebench compare …` line");
    let (command, printed) = shown[at + 2..].split_once('\n').unwrap();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = output(joulebench().args(&args));
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        printed,
        "comparing-and-reports.md shows another output than `{command}` prints"
    );
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    // A path in backticks names a file or folder of this repository; placeholders, and the
    // folders a run or a fuzzer creates, are not ones.
    const ROOTS: [&str; 12] = [
        "src/",
        "crates/",
        "tests/",
        "scripts/",
        "rigs/",
        "docs/",
        "analysis/",
        "lava/",
        "models/",
        "results/examples/",
        "fuzz/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for line in prose(&text) {
            for span in code_spans(line) {
                for word in span.split_whitespace() {
                    let path = word
                        .trim_matches(|c: char| "(),;:'\"".contains(c))
                        .split('#')
                        .next()
                        .unwrap();
                    let placeholder = ["<", ">", "…", "*", "NAME", "$", "{", "fuzz/artifacts"]
                        .iter()
                        .any(|p| path.contains(p));
                    if placeholder || !ROOTS.iter().any(|root| path.starts_with(root)) {
                        continue;
                    }
                    checked += 1;
                    if !repo().join(path).exists() {
                        let name = page.strip_prefix(repo()).unwrap().display().to_string();
                        missing.push(format!("{name}: {path}"));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} paths found: is the reader broken?"
    );
    assert!(
        missing.is_empty(),
        "paths the docs name that do not exist: {}",
        missing.join("; ")
    );
}

#[test]
fn the_rig_reference_gives_the_defaults_and_required_keys_the_schema_has() {
    // rig.schema.json is generated from the spec types the parser reads (a library test keeps
    // it so); a key's default or its being required, as rig-files.md states them, must be
    // what those types say. A key whose kinds disagree (`device`: NVML's index 0, torch's
    // "cpu") is left to the prose.
    let schema: serde_json::Value =
        serde_json::from_str(&read("docs/src/reference/rig.schema.json")).unwrap();
    let mut defaults: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut required: BTreeSet<String> = BTreeSet::new();
    let mut stack = vec![&schema];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(object) => {
                if let Some(serde_json::Value::Object(properties)) = object.get("properties") {
                    for (key, property) in properties {
                        if let Some(default) = property.get("default") {
                            defaults
                                .entry(key.clone())
                                .or_default()
                                .insert(default.to_string());
                        }
                    }
                }
                if let Some(serde_json::Value::Array(keys)) = object.get("required") {
                    required.extend(keys.iter().filter_map(|k| k.as_str().map(String::from)));
                }
                stack.extend(object.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    let page = read("docs/src/reference/rig-files.md");
    let mut compared = 0;
    for line in prose(&page) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let [key] = &code_spans(cells[1])[..] else {
            continue;
        };
        let stated = cells[2];
        if stated == "required" {
            assert!(
                required.contains(key),
                "rig-files.md: `{key}` is required, the schema says it is not"
            );
            compared += 1;
            continue;
        }
        let [literal] = &code_spans(stated)[..] else {
            continue;
        };
        let Some(schema_defaults) = defaults.get(key) else {
            assert!(
                !required.contains(key),
                "rig-files.md gives `{key}` the default {literal}, the schema requires it"
            );
            continue;
        };
        if schema_defaults.len() != 1 || schema_defaults.contains("null") {
            continue;
        }
        let documented = match literal.strip_prefix("0x") {
            Some(hex) => serde_json::Value::from(u64::from_str_radix(hex, 16).unwrap()),
            None => serde_json::from_str(literal)
                .unwrap_or_else(|_| panic!("rig-files.md: `{key}`'s default {literal}")),
        };
        let schema_default: serde_json::Value =
            serde_json::from_str(schema_defaults.first().unwrap()).unwrap();
        let same = match (documented.as_f64(), schema_default.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => documented == schema_default,
        };
        assert!(
            same,
            "rig-files.md gives `{key}` the default {literal}, the schema {schema_default}"
        );
        compared += 1;
    }
    assert!(compared > 20, "only {compared} keys compared");
}
