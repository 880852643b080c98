//! The human-readable table printed at the end of a run.

use std::fmt::Write;

use crate::sensor::Origin;
use crate::summary::SummaryRow;

/// Renders the summary: speed per backend, then energy per backend and sensor.
pub fn render(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
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
    for r in rows {
        if seen.contains(&r.backend_index) {
            continue;
        }
        seen.push(r.backend_index);
        let _ = writeln!(
            out,
            "{:<3} {:<7} {:<14} {:<12} {:>3} {:>5} {:>5} {:>8} {:>7} {:>7} {:>7} {:>7}  {}",
            r.backend_index,
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
        for r in rows.iter().filter(|r| r.sensor != "none") {
            let sensor = match r.origin.map_or("", Origin::label) {
                "" => r.sensor.clone(),
                label => format!("{} ({label})", r.sensor),
            };
            let _ = writeln!(
                out,
                "{:<3} {:<30} {:>7} {:>7} {:>9} {:>8} {:>9} {:>7} {:>8} {:>5}  {}",
                r.backend_index,
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
