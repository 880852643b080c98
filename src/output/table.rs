//! The human-readable table printed at the end of a run.

use std::fmt::Write;

use crate::machine::Throttle;
use crate::results::{Repetition, Status, SummaryRow};
use crate::sensor::Origin;

/// Marks a throttled window in the table; a footnote says why.
const THROTTLED_MARK: &str = "*";

fn throttled(r: &SummaryRow) -> Option<&str> {
    match &r.throttled {
        Some(Throttle::Yes(why)) => Some(why),
        _ => None,
    }
}

fn mark(r: &SummaryRow) -> &'static str {
    if throttled(r).is_some() {
        THROTTLED_MARK
    } else {
        ""
    }
}

/// A row's `#`: the backend, and with repetitions `backend/repetition` (`0/2`, `0/all`).
fn label(r: &SummaryRow, repeated: bool) -> String {
    if repeated {
        format!("{}/{}", r.backend_index, r.repetition)
    } else {
        r.backend_index.to_string()
    }
}

/// Renders the summary: speed per backend, then energy per backend and sensor.
pub fn render(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    let repeated = rows.iter().any(|r| r.repetition == Repetition::All);
    write_speed(&mut out, rows, repeated);
    write_energy(&mut out, rows, repeated);
    write_counter_checks(&mut out, rows, repeated);
    write_costly_samplers(&mut out, rows, repeated);
    write_withheld_net(&mut out, rows, repeated);
    write_throttled(&mut out, rows, repeated);
    write_fallbacks(&mut out, rows);
    write_unchecked(&mut out, rows);
    out += &super::batch_curve::render(rows);
    out
}

/// The speed of each repetition; a table of aggregates only (a soak's) has none.
fn write_speed(out: &mut String, rows: &[SummaryRow], repeated: bool) {
    let opt = crate::export::cell;
    if rows.iter().any(|r| r.repetition != Repetition::All) {
        let _ = writeln!(
            out,
            "{:<3} {:<7} {:<14} {:<12} {:>3} {:>5} {:>5} {:>8} {:>7} {:>7} {:>7} {:>7}  top-1",
            "#",
            "backend",
            "engine",
            "accelerator",
            "thr",
            "batch",
            "runs",
            "FPS",
            "mean ms",
            "p50",
            "p90",
            "p99"
        );
        let mut seen = Vec::new();
        for r in rows.iter().filter(|r| r.repetition != Repetition::All) {
            if seen.contains(&(r.backend_index, r.repetition)) {
                continue;
            }
            seen.push((r.backend_index, r.repetition));
            let _ = writeln!(
                out,
                "{:<3} {:<7} {:<14} {:<12} {:>3} {:>5} {:>5} {:>8} {:>7} {:>7} {:>7} {:>7}  {}",
                label(r, repeated),
                r.backend,
                format!("{} {}", r.engine, r.engine_version),
                r.accelerator,
                r.threads,
                r.batch,
                r.runs,
                opt(r.fps, 1) + mark(r),
                opt(r.latency_ms_mean, 2),
                opt(r.latency_ms_median, 2),
                opt(r.latency_ms_p90, 2),
                opt(r.latency_ms_p99, 2),
                r.top1_class
                    .map_or(String::new(), |c| format!("{} ({c})", r.top1_label)),
            );
        }
    }
}

/// The energy of each measured row, with the footnotes its columns need.
fn write_energy(out: &mut String, rows: &[SummaryRow], repeated: bool) {
    let measured: Vec<SummaryRow> = rows
        .iter()
        .filter(|r| r.sensor != "none")
        .cloned()
        .collect();
    if !measured.is_empty() {
        // The same columns `--export-csv` and `--export-markdown` write.
        out.push('\n');
        let mut table = columns(&measured);
        for (cells, r) in table.rows.iter_mut().zip(&measured) {
            if let (Some(status), Some(_)) = (cells.last_mut(), throttled(r)) {
                *status = format!("{status} {}", mark(r));
            }
        }
        out.push_str(&table.render());
        if repeated {
            let _ = writeln!(
                out,
                "(n/all: the geometric mean over the repetitions that ended ok, with its 95 % \
                 confidence interval by Student's t on the logarithms, as compare gives it)"
            );
        }
        if rows.iter().any(|r| r.origin == Some(Origin::Nominal)) {
            let _ = writeln!(
                out,
                "(nominal: a fixed wattage from the rig file, such as a nameplate or TDP, not a measurement; it has no net figure)"
            );
        }
        if rows.iter().any(|r| r.simulated) {
            let _ = writeln!(
                out,
                "(simulated: watts come from a model of an INA219 on a simulated board, not from this machine)"
            );
        }
        if rows
            .iter()
            .any(|r| matches!(r.status, Status::SensorMissing(_)))
        {
            let _ = writeln!(
                out,
                "(sensor missing: an optional sensor of the rig did not open and the run went on \
                 without it; its rows have no figures, nor has a total that names it)"
            );
        }
    }
}

/// The NVML counter's cross-check, one entry per row of an NVML sensor that has one or
/// says why not (a footnote, so the exported columns stay as they are).
fn write_counter_checks(out: &mut String, rows: &[SummaryRow], repeated: bool) {
    let checks: Vec<String> = rows
        .iter()
        .filter(|r| r.sensor == "nvml")
        .filter_map(|r| {
            let what = match (r.instant_vs_counter_pct, r.instant_vs_counter_note.as_str()) {
                (Some(pct), _) => format!("{pct:+.1} %"),
                (None, "") => return None,
                (None, why) => format!("none ({why})"),
            };
            Some(format!("{} {}: {what}", label(r, repeated), r.rail))
        })
        .collect();
    if !checks.is_empty() {
        let _ = writeln!(
            out,
            "(NVML instant power against the energy counter over the timed window: {})",
            checks.join("; ")
        );
    }
}

/// What the meter itself cost, where it was more than a meter should: one entry per
/// sensor's row, the rig's total left out (it only adds them up).
fn write_costly_samplers(out: &mut String, rows: &[SummaryRow], repeated: bool) {
    let costly: Vec<String> = rows
        .iter()
        .filter(|r| r.sensor != crate::summary::TOTAL_KIND)
        .filter_map(|r| {
            let pct = r.sampler_cpu_pct.filter(|p| *p > SAMPLER_CPU_NOTE_PCT)?;
            Some(format!("{} {}: {pct:.1} %", label(r, repeated), r.rail))
        })
        .collect();
    if !costly.is_empty() {
        let _ = writeln!(
            out,
            "(sampler CPU above {SAMPLER_CPU_NOTE_PCT} % of a core over the timed window, taken \
             from the machine being measured: {})",
            costly.join("; ")
        );
    }
}

/// A net figure left out on purpose, once per row of a measured or simulated sensor (a
/// nominal one is explained by its own footnote), and not for an aggregate whose
/// repetitions are listed already.
fn write_withheld_net(out: &mut String, rows: &[SummaryRow], repeated: bool) {
    let withheld: Vec<String> = rows
        .iter()
        .filter(|r| !r.net_note.is_empty() && r.origin != Some(Origin::Nominal))
        .filter(|r| r.repetition != Repetition::All)
        .map(|r| format!("{} {}: {}", label(r, repeated), r.rail, r.net_note))
        .collect();
    if !withheld.is_empty() {
        let _ = writeln!(out, "(net inf/J left empty: {})", withheld.join("; "));
    }
}

/// The throttled windows: one note per window (not per sensor), and none for an aggregate
/// whose repetitions are listed already.
fn write_throttled(out: &mut String, rows: &[SummaryRow], repeated: bool) {
    let marked: Vec<String> = rows
        .iter()
        .filter(|r| r.sensor_index.unwrap_or(0) == 0 && r.repetition != Repetition::All)
        .filter_map(|r| Some(format!("{}: {}", label(r, repeated), throttled(r)?)))
        .collect();
    if !marked.is_empty() {
        let _ = writeln!(
            out,
            "({THROTTLED_MARK} the CPU throttled during the timed window; its figures describe a \
             throttled machine: {})",
            marked.join("; ")
        );
    }
}

/// The engine a backend fell back to, once per backend: its figures are that engine's.
fn write_fallbacks(out: &mut String, rows: &[SummaryRow]) {
    let mut fell_back: Vec<(usize, &str)> = Vec::new();
    for r in rows.iter().filter(|r| !r.engine_note.is_empty()) {
        if !fell_back.iter().any(|(b, _)| *b == r.backend_index) {
            fell_back.push((r.backend_index, &r.engine_note));
        }
    }
    for (backend, note) in fell_back {
        let _ = writeln!(out, "(engine of backend {backend}: {note})");
    }
}

/// Why a backend's prediction was not checked and what it was fed, once per backend: its
/// top-1 column is empty, and the note says why.
fn write_unchecked(out: &mut String, rows: &[SummaryRow]) {
    let mut seen = Vec::new();
    for r in rows.iter().filter(|r| !r.unchecked_prediction.is_empty()) {
        if !seen.contains(&r.backend_index) {
            seen.push(r.backend_index);
            let _ = writeln!(
                out,
                "(backend {} {})",
                r.backend_index, r.unchecked_prediction
            );
        }
    }
}

/// A sampler thread above this share of a core is footnoted: reading a sensor should cost a
/// fraction of that (an INA219 at the shipped settings: under 1 %).
pub const SAMPLER_CPU_NOTE_PCT: f64 = 2.0;

/// The summary's energy columns, one row per summary row: the table's second part on the
/// terminal, and what `run --export-csv` and `--export-markdown` write.
pub fn columns(rows: &[SummaryRow]) -> crate::export::Table {
    let repeated = rows.iter().any(|r| r.repetition == Repetition::All);
    let opt = crate::export::cell;
    crate::export::Table {
        headers: vec![
            "#",
            "backend",
            "model",
            "sensor",
            "reps",
            "FPS",
            "idle W",
            "mean W",
            "J/inf",
            "inf/J",
            "net inf/J",
            "inf/J 95 % CI",
            "samples",
            "rate Hz",
            "cover",
            "status",
        ],
        rows: rows
            .iter()
            .map(|r| {
                let sensor = match r.origin.map_or("", Origin::label) {
                    "" => format!("{} on {}", r.sensor, r.rail),
                    label => format!("{} ({label}) on {}", r.sensor, r.rail),
                };
                vec![
                    label(r, repeated),
                    format!("{} {} {}", r.backend, r.engine, r.engine_version),
                    r.model.clone(),
                    sensor.trim_end().to_string(),
                    r.repetitions.to_string(),
                    opt(r.fps, 1),
                    opt(r.idle_watts, 3),
                    opt(r.mean_watts, 3),
                    opt(r.joules_per_inference, 5),
                    opt(r.inferences_per_joule, 2),
                    opt(r.net_inferences_per_joule, 2),
                    match (
                        r.inferences_per_joule_ci_low,
                        r.inferences_per_joule_ci_high,
                    ) {
                        (Some(l), Some(h)) => format!("{l:.2} to {h:.2}"),
                        _ => "-".into(),
                    },
                    r.samples.to_string(),
                    opt(r.sample_rate_hz, 0),
                    opt(r.coverage, 3),
                    r.status.to_string(),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_cell_under_every_column() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        let rows = crate::output::folder::read_run_dir(&example).unwrap().rows;
        let table = columns(&rows);
        assert_eq!(table.rows.len(), 4);
        assert!(table.rows.iter().all(|r| r.len() == table.headers.len()));
        let text = render(&rows);
        assert!(
            text.contains("0/all") && text.contains("inf/J 95 % CI"),
            "{text}"
        );
        assert!(
            text.contains("ina219-sim (simulated) on 5V supply"),
            "{text}"
        );
    }

    #[test]
    fn a_fallback_engine_gets_one_footnote_per_backend() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        let mut rows = crate::output::folder::read_run_dir(&example).unwrap().rows;
        // Written before the column existed: no note.
        assert!(rows.iter().all(|r| r.engine_note.is_empty()));
        assert!(!render(&rows).contains("engine of backend"));
        for r in &mut rows {
            r.engine_note = "LiteRT library not found (looked in /x)".into();
        }
        let text = render(&rows);
        let notes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("(engine of backend "))
            .collect();
        assert_eq!(
            notes,
            ["(engine of backend 0: LiteRT library not found (looked in /x))"],
            "{text}"
        );
    }

    #[test]
    fn a_costly_sampler_gets_a_footnote_a_cheap_one_none() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        let mut rows = crate::output::folder::read_run_dir(&example).unwrap().rows;
        // Written before the column existed: no figure, and no note.
        assert!(rows.iter().all(|r| r.sampler_cpu_pct.is_none()));
        assert!(!render(&rows).contains("sampler CPU"));
        for r in &mut rows {
            r.sampler_cpu_pct = Some(0.6);
        }
        assert!(!render(&rows).contains("sampler CPU"));
        rows[1].sampler_cpu_pct = Some(SAMPLER_CPU_NOTE_PCT + 0.5);
        let text = render(&rows);
        let notes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("(sampler CPU above 2 % of a core"))
            .collect();
        assert_eq!(notes.len(), 1, "{text}");
        assert!(
            notes[0].contains("0/2 ") && notes[0].ends_with(": 2.5 %)"),
            "{text}"
        );
    }

    #[test]
    fn a_withheld_net_figure_gets_a_footnote_with_its_reason() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        let mut rows = crate::output::folder::read_run_dir(&example).unwrap().rows;
        assert!(!render(&rows).contains("net inf/J left empty"));
        rows[0].net_inferences_per_joule = None;
        rows[0].net_note = "no net figure: timed − idle 0.0100 W is within …".into();
        let text = render(&rows);
        let notes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("(net inf/J left empty: "))
            .collect();
        assert_eq!(notes.len(), 1, "{text}");
        assert!(
            notes[0].ends_with("no net figure: timed − idle 0.0100 W is within …)"),
            "{text}"
        );
    }

    #[test]
    fn a_throttled_window_is_marked_with_a_footnote() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        let mut rows = crate::output::folder::read_run_dir(&example).unwrap().rows;
        // Written before the column existed: unknown, and no mark.
        assert!(rows.iter().all(|r| r.throttled.is_none()));
        assert!(!render(&rows).contains("throttled"));
        rows[1].throttled = Some(Throttle::Yes("policy0 capped to 1200 of 2400 MHz".into()));
        let text = render(&rows);
        let marked: Vec<&str> = text.lines().filter(|l| l.ends_with(" ok *")).collect();
        assert_eq!(marked.len(), 1, "{text}");
        assert!(marked[0].starts_with("0/2 "), "{text}");
        assert!(
            text.contains("throttled machine: 0/2: policy0 capped to 1200 of 2400 MHz)"),
            "{text}"
        );
        // The exported columns stay as they were.
        assert!(columns(&rows)
            .rows
            .iter()
            .all(|r| r.last().unwrap() == "ok"));
    }

    #[test]
    fn nvml_rows_footnote_their_cross_check() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        let mut rows = crate::output::folder::read_run_dir(&example).unwrap().rows;
        // Written before the columns existed: empty, and no footnote.
        assert!(rows.iter().all(|r| r.instant_vs_counter_pct.is_none()));
        assert!(!render(&rows).contains("energy counter over"));
        for r in &mut rows {
            r.sensor = "nvml".into();
            r.rail = "GPU 0".into();
        }
        rows[0].instant_vs_counter_pct = Some(2.14);
        rows[1].instant_vs_counter_note = "no instant power field".into();
        let text = render(&rows);
        assert!(
            text.contains(
                "(NVML instant power against the energy counter over the timed window: \
                 0/1 GPU 0: +2.1 %; 0/2 GPU 0: none (no instant power field))"
            ),
            "{text}"
        );
    }
}
