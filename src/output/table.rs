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

/// A mean with its 95 % interval, e.g. "58.3 (57.9 to 58.7)".
fn with_ci(mean: Option<f64>, low: Option<f64>, high: Option<f64>, digits: usize) -> String {
    match (mean, low, high) {
        (Some(m), Some(l), Some(h)) => format!("{m:.digits$} ({l:.digits$} to {h:.digits$})"),
        (Some(m), ..) => format!("{m:.digits$}"),
        _ => "-".into(),
    }
}

/// The aggregate rows: means over the repetitions with their 95 % confidence intervals.
fn render_aggregates(out: &mut String, rows: &[SummaryRow]) {
    let _ = writeln!(
        out,
        "\n{:<5} {:<20} {:>4} {:>24} {:>24} {:>7} {:>24}  status",
        "#", "sensor", "reps", "FPS (95 % CI)", "inf/J (95 % CI)", "sensor", "net inf/J (95 % CI)"
    );
    for r in rows.iter().filter(|r| r.repetition == Repetition::All) {
        let _ = writeln!(
            out,
            "{:<5} {:<20} {:>4} {:>24} {:>24} {:>7} {:>24}  {}",
            label(r, true),
            r.sensor,
            r.repetitions,
            with_ci(r.fps, r.fps_ci_low, r.fps_ci_high, 1),
            with_ci(
                r.inferences_per_joule,
                r.inferences_per_joule_ci_low,
                r.inferences_per_joule_ci_high,
                2
            ),
            r.energy_uncertainty_pct
                .map_or("-".into(), |u| format!("±{u:.2}%")),
            with_ci(
                r.net_inferences_per_joule,
                r.net_inferences_per_joule_ci_low,
                r.net_inferences_per_joule_ci_high,
                2
            ),
            r.status
        );
    }
    let _ = writeln!(
        out,
        "(means over the repetitions that ended ok; 95 % CI of the mean by Student's t; sensor: \
         the sensor's own uncertainty of energy, which the total interval in summary.csv adds)"
    );
}

/// Renders the summary: speed per backend, then energy per backend and sensor.
pub fn render(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    let repeated = rows.iter().any(|r| r.repetition == Repetition::All);
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));

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

    if rows.iter().any(|r| r.sensor != "none") {
        let _ = writeln!(
            out,
            "\n{:<3} {:<30} {:>7} {:>7} {:>9} {:>8} {:>9} {:>7} {:>8} {:>5}  status",
            "#",
            "sensor",
            "idle W",
            "mean W",
            "J/inf",
            "inf/J",
            "net inf/J",
            "samples",
            "rate Hz",
            "cover"
        );
        for r in rows
            .iter()
            .filter(|r| r.sensor != "none" && r.repetition != Repetition::All)
        {
            let sensor = match r.origin.map_or("", Origin::label) {
                "" => r.sensor.clone(),
                label => format!("{} ({label})", r.sensor),
            };
            let _ = writeln!(
                out,
                "{:<3} {:<30} {:>7} {:>7} {:>9} {:>8} {:>9} {:>7} {:>8} {:>5}  {}",
                label(r, repeated),
                sensor,
                opt(r.idle_watts, 3),
                opt(r.mean_watts, 3),
                opt(r.joules_per_inference, 5),
                opt(r.inferences_per_joule, 2),
                opt(r.net_inferences_per_joule, 2),
                r.samples,
                opt(r.sample_rate_hz, 0),
                opt(r.coverage, 3),
                r.status
            );
        }
        if repeated {
            render_aggregates(&mut out, rows);
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

/// The summary's columns for exports (`run --export-csv/-markdown`): one row per summary row.
pub fn columns(rows: &[SummaryRow]) -> crate::export::Table {
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    crate::export::Table {
        headers: vec![
            "#",
            "backend",
            "model",
            "sensor",
            "reps",
            "FPS",
            "mean W",
            "inf/J",
            "net inf/J",
            "inf/J 95 % CI",
            "coverage",
            "status",
        ],
        rows: rows
            .iter()
            .map(|r| {
                let sensor = match r.origin.map_or("", Origin::label) {
                    "" => format!("{} {}", r.sensor, r.rail),
                    label => format!("{} {} ({label})", r.sensor, r.rail),
                };
                vec![
                    format!("{}/{}", r.backend_index, r.repetition),
                    format!("{} {} {}", r.backend, r.engine, r.engine_version),
                    r.model.clone(),
                    sensor.trim_end().to_string(),
                    r.repetitions.to_string(),
                    opt(r.fps, 1),
                    opt(r.mean_watts, 3),
                    opt(r.inferences_per_joule, 2),
                    opt(r.net_inferences_per_joule, 2),
                    match (
                        r.inferences_per_joule_ci_low,
                        r.inferences_per_joule_ci_high,
                    ) {
                        (Some(l), Some(h)) => format!("{l:.2} to {h:.2}"),
                        _ => "-".into(),
                    },
                    opt(r.coverage, 3),
                    r.status.to_string(),
                ]
            })
            .collect(),
    }
}
