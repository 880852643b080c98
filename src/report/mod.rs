//! `joulebench report`: run folders read back into a Markdown report with SVG charts (FPS on a
//! linear and a log scale, time of the timed runs, inferences per joule with confidence
//! intervals and the published references, and each sensor's power trace by phase).
//!
//! The charts are drawn with `plotters`' SVG backend; laying out their text needs a TrueType
//! font loaded at run time ([`FONT`], or `$JOULEBENCH_FONT`).

mod charts;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::clock::PhaseSpan;
use crate::output::folder::{read_power, read_run_dir, RunFolder, POWER_CSV};
use crate::results::{Repetition, SummaryRow};
use crate::sensor::Origin;

/// The font the charts' text is laid out with (Debian's `fonts-dejavu-core`).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The font file the charts use: `$JOULEBENCH_FONT`, else [`FONT`].
pub fn font_path() -> PathBuf {
    std::env::var_os(crate::environment::FONT)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(FONT))
}

/// One backend × sensor of one run folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based, in report order.
    pub number: usize,
    /// 1-based position of its run folder among the inputs.
    pub folder: usize,
    /// rig, model, engine, and how the watts were obtained where not measured.
    pub label: String,
    pub row: SummaryRow,
    pub origin: Option<Origin>,
}

impl Entry {
    /// "simulated", "nominal" or "" (measured).
    pub fn origin_mark(&self) -> &'static str {
        self.origin.map_or("", Origin::mark)
    }

    /// Seconds of one timed run: runs / FPS (an aggregate row counts the runs of all its
    /// repetitions).
    pub fn timed_seconds(&self) -> Option<f64> {
        let runs = self.row.runs as f64 / self.row.repetitions.max(1) as f64;
        self.row.fps.filter(|f| *f > 0.0).map(|fps| runs / fps)
    }
}

/// One sensor's readings of one run folder.
#[derive(Debug, Clone)]
pub struct Trace {
    pub folder: usize,
    pub sensor_index: usize,
    /// sensor kind, rail and origin.
    pub label: String,
    pub origin: Option<Origin>,
    /// (run time s, watts) of every fresh reading without an error.
    pub points: Vec<(f64, f64)>,
    /// The folder's protocol phases.
    pub phases: Vec<PhaseSpan>,
}

/// The entries of one folder: a backend × sensor each, from its aggregate row where it has
/// one, else its single row.
fn entries_of(rows: &[SummaryRow]) -> Vec<SummaryRow> {
    let mut out: Vec<SummaryRow> = Vec::new();
    for row in rows {
        let has_all = rows
            .iter()
            .any(|r| r.key() == row.key() && r.repetition == Repetition::All);
        let pick = if has_all {
            row.repetition == Repetition::All
        } else {
            !out.iter().any(|r| r.key() == row.key())
        };
        if pick {
            out.push(row.clone());
        }
    }
    out
}

/// The power traces of the run folder `dir`, numbered `folder`, shaded by its `phases`.
fn read_traces(dir: &Path, folder: usize, phases: &[PhaseSpan]) -> Result<Vec<Trace>> {
    let csv_path = dir.join(POWER_CSV);
    if !csv_path.exists() {
        return Ok(Vec::new());
    }
    let mut traces: Vec<Trace> = Vec::new();
    for row in read_power(&csv_path)? {
        let row = row?;
        let at = match traces
            .iter()
            .position(|t| t.sensor_index == row.sensor_index)
        {
            Some(at) => at,
            None => {
                let origin = match row.origin.map_or("", Origin::label) {
                    "" => String::new(),
                    label => format!(" ({label})"),
                };
                traces.push(Trace {
                    folder,
                    sensor_index: row.sensor_index,
                    label: format!("{} on {}{origin}", row.sensor, row.rail),
                    origin: row.origin,
                    points: Vec::new(),
                    phases: phases.to_vec(),
                });
                traces.len() - 1
            }
        };
        if let (Some(w), false, true) = (row.watts, row.stale, row.error.is_empty()) {
            traces[at].points.push((row.t_s, w));
        }
    }
    traces.sort_by_key(|t| t.sensor_index);
    Ok(traces)
}

/// Reads the run folders, draws the charts into `out` and writes `out/report.md`; returns
/// the report's path.
pub fn write(runs: &[PathBuf], out: &Path) -> Result<PathBuf> {
    check_out(out)?;
    let (folders, entries, traces) = read_runs(runs)?;
    crate::results::refuse_repeats(runs, "name each run folder once")?;
    if entries.is_empty() {
        bail!("the run folders hold no summary rows to report");
    }
    register_font()?;
    let staging = staging_beside(out)?;
    let references = crate::references::load_default().unwrap_or_default();
    let implied = crate::references::implied_per_joule(&references);

    let mut md = String::new();
    write_folders(&mut md, &folders);
    write_entry_table(&mut md, &entries);
    write_origin_notes(&mut md, &entries);

    let charts = charts::draw_all(staging.path(), &entries, &traces, &implied)?;
    write_charts(&mut md, &charts);
    let staged = staging.path().join("report.md");
    std::fs::write(&staged, md).with_context(|| format!("cannot write {}", staged.display()))?;
    replace_folder(staging, out)?;
    Ok(out.join("report.md"))
}

/// Reads every run folder of `runs` into the report's entries and power traces, numbering
/// them in order, so the report holds nothing until every folder has read back.
fn read_runs(runs: &[PathBuf]) -> Result<(Vec<RunFolder>, Vec<Entry>, Vec<Trace>)> {
    let mut entries = Vec::new();
    let mut traces = Vec::new();
    let mut folders = Vec::new();
    for (i, dir) in runs.iter().enumerate() {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        let folder = read_run_dir(dir)?;
        let several_sensors = folder
            .rows
            .iter()
            .any(|r| r.sensor_index != folder.rows[0].sensor_index);
        for row in entries_of(&folder.rows) {
            let run = (runs.len() > 1).then_some(i + 1);
            entries.push(Entry {
                number: entries.len() + 1,
                folder: i + 1,
                label: entry_label(&row, several_sensors, run),
                origin: row.origin,
                row,
            });
        }
        traces.extend(read_traces(dir, i + 1, &folder.phases)?);
        folders.push(folder);
    }
    Ok((folders, entries, traces))
}

/// An entry's label: rig, model and engine, then what tells it from its neighbours (the
/// sensor where its folder has several, the run where the report has several) and how its
/// watts were obtained where not measured.
fn entry_label(row: &SummaryRow, several_sensors: bool, run: Option<usize>) -> String {
    let mut label = format!(
        "{} {} {} {}",
        row.rig, row.model, row.engine, row.engine_version
    );
    if several_sensors {
        label = format!("{label}, {} {}", row.sensor, row.sensor_index.unwrap_or(0));
    }
    if let Some(run) = run {
        label = format!("run {run}: {label}");
    }
    if let Some(mark) = row.origin.map(Origin::mark).filter(|m| !m.is_empty()) {
        label.push_str(&format!(" ({mark})"));
    }
    label
}

/// Loads the charts' font before anything is drawn, so a missing font fails with what to
/// install rather than halfway through the charts.
fn register_font() -> Result<()> {
    let font = font_path();
    let bytes = std::fs::read(&font).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the charts' font {} ({e}): install fonts-dejavu-core (scripts/setup.sh \
             does) or set JOULEBENCH_FONT to a TrueType font",
            font.display()
        )
    })?;
    charts::register_font(bytes)
        .with_context(|| format!("{} is not a usable TrueType font", font.display()))
}

/// A new folder beside `out` for the report to be drawn into.
///
/// It then replaces `out` whole: a previous report's charts that this one does not draw do
/// not linger, and a failure halfway leaves the previous report as it was.
fn staging_beside(out: &Path) -> Result<tempfile::TempDir> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(".joulebench-report-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a folder in {}", parent.display()))
}

/// The report's title and its numbered list of the run folders it reads.
fn write_folders(md: &mut String, folders: &[RunFolder]) {
    let _ = writeln!(md, "# joulebench report\n");
    let _ = writeln!(md, "Run folders:\n");
    for (i, f) in folders.iter().enumerate() {
        let _ = writeln!(
            md,
            "{}. `{}` (started {}, joulebench {}{})",
            i + 1,
            f.dir.display(),
            f.started_utc,
            f.joulebench_version,
            if f.interrupted { ", interrupted" } else { "" }
        );
    }
}

/// The table of entries, one line each, numbered as the charts number them.
fn write_entry_table(md: &mut String, entries: &[Entry]) {
    let _ = writeln!(
        md,
        "\nAn entry is one backend × sensor of a run folder; its figures come from the \
         aggregate row over its repetitions where there is one, else from its single row.\n"
    );
    let _ = writeln!(
        md,
        "| # | entry | sensor | origin | reps | FPS | s per timed run | inf/J (95 % CI) | status |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    let num = crate::export::cell;
    for e in entries {
        let r = &e.row;
        let ci = match (
            r.inferences_per_joule_ci_low,
            r.inferences_per_joule_ci_high,
        ) {
            (Some(lo), Some(hi)) => format!(" ({lo:.2} to {hi:.2})"),
            _ => String::new(),
        };
        // A backend run without a sensor has FPS only: no rail, and nothing measured of watts.
        let (sensor, origin) = match r.sensor_index {
            None => ("no sensor".to_string(), "FPS only"),
            Some(_) => (
                format!("{} on {}", r.sensor, crate::export::markdown::cell(&r.rail)),
                match e.origin_mark() {
                    "" => "measured",
                    mark => mark,
                },
            ),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {}{ci} | {} |",
            e.number,
            crate::export::markdown::cell(&e.label),
            sensor,
            origin,
            r.repetitions,
            num(r.fps, 1),
            num(e.timed_seconds(), 2),
            num(r.inferences_per_joule, 2),
            crate::export::markdown::cell(&r.status.to_string())
        );
    }
}

/// The notes under the table for entries whose watts were not measured, or not read at all,
/// so a reader does not take them for a machine's figures.
fn write_origin_notes(md: &mut String, entries: &[Entry]) {
    if entries.iter().any(|e| !e.origin_mark().is_empty()) {
        let _ = writeln!(
            md,
            "\nEntries marked simulated or nominal do not measure a machine's watts: simulated \
             ones come from a model of a sensor on a simulated board, nominal ones from a fixed \
             figure. The charts label and colour them so."
        );
    }

    if (entries.iter()).any(|e| matches!(e.row.status, crate::results::Status::SensorMissing(_))) {
        let _ = writeln!(
            md,
            "\nEntries whose status is `sensor missing` are an optional sensor of the rig that \
             did not open, which the run went on without (the status says why), or a total that \
             names one: they have no figures."
        );
    }
}

/// The charts section: each chart's title, caption and image.
fn write_charts(md: &mut String, charts: &[charts::Chart]) {
    let _ = writeln!(md, "\n## Charts\n");
    for chart in charts {
        let _ = writeln!(md, "### {}\n", chart.title);
        let _ = writeln!(md, "{}\n", chart.caption);
        let _ = writeln!(md, "![{}]({})\n", chart.title, chart.file);
    }
}

/// A report goes into a new or empty folder, or replaces a previous report (a folder holding
/// `report.md`); any other folder's files are not the report's to delete.
fn check_out(out: &Path) -> Result<()> {
    let Ok(mut files) = std::fs::read_dir(out) else {
        return Ok(()); // Not there yet (or not a folder: creating it will say so).
    };
    if files.next().is_none() || out.join("report.md").is_file() {
        return Ok(());
    }
    bail!(
        "{} holds files that are not a joulebench report: give a new or empty folder, or a \
         previous report's, which is replaced whole",
        out.display()
    )
}

/// Puts the finished `staging` folder at `out`, removing a previous report there.
fn replace_folder(staging: tempfile::TempDir, out: &Path) -> Result<()> {
    let fail = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", out.display());
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(fail)?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        fail(e)
    })
}
