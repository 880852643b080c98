//! The human-readable table printed at the end of a run.

use std::fmt::Write;

use crate::results::{Repetition, SummaryRow};
use crate::sensor::Origin;

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
    let opt = crate::export::cell;

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
            opt(r.fps, 1),
            opt(r.latency_ms_mean, 2),
            opt(r.latency_ms_median, 2),
            opt(r.latency_ms_p90, 2),
            opt(r.latency_ms_p99, 2),
            r.top1_class
                .map_or(String::new(), |c| format!("{} ({c})", r.top1_label)),
        );
    }

    let measured: Vec<SummaryRow> = rows
        .iter()
        .filter(|r| r.sensor != "none")
        .cloned()
        .collect();
    if !measured.is_empty() {
        // The same columns `--export-csv` and `--export-markdown` write.
        out.push('\n');
        out.push_str(&columns(&measured).render());
        if repeated {
            let _ = writeln!(
                out,
                "(n/all: the mean over the repetitions that ended ok, with the 95 % confidence \
                 interval of the mean by Student's t)"
            );
        }
        if rows.iter().any(|r| r.origin == Some(Origin::Nominal)) {
            let _ = writeln!(
                out,
                "(nominal: a fixed wattage from the rig file, such as a nameplate or TDP, not a measurement)"
            );
        }
        if rows.iter().any(|r| r.simulated) {
            let _ = writeln!(
                out,
                "(simulated: watts come from a model of an INA219 on a simulated board, not from this machine)"
            );
        }
    }
    out
}

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
        let rows = crate::results::read_run_dir(&example).unwrap().rows;
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
}
