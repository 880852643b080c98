//! A batch sweep read as a curve: one backend measured at several batch sizes
//! (`run --batch 1,8,64,256 --scenario offline`), its inferences per joule against the batch,
//! and the batch where the device is most efficient.
//!
//! Larger batches keep a GPU busier per launch and per copy, so inferences per joule rise with
//! the batch until the device is saturated and then level off or fall (memory traffic, clocks
//! dropping to the power limit). Where the peak is depends on the device, the precision and
//! the engine, which is why the rig measures it rather than assuming a batch.

use std::fmt::Write;

use crate::export::{cell, Table};
use crate::results::{Repetition, Status, SummaryRow};

/// One backend × sensor at each batch it ran, in batch order.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve<'a> {
    pub points: Vec<&'a SummaryRow>,
}

impl Curve<'_> {
    /// The point with the most inferences per joule among the windows that were valid.
    pub fn most_efficient(&self) -> Option<&SummaryRow> {
        self.points
            .iter()
            .copied()
            .filter(|r| r.status == Status::Ok)
            .filter_map(|r| Some((r, r.inferences_per_joule?)))
            .max_by(|(_, a), (_, b)| a.total_cmp(b))
            .map(|(r, _)| r)
    }

    /// Points whose 95 % interval overlaps the best one's: the runs cannot tell them apart
    /// (aggregate rows only; a single repetition has no interval).
    pub fn not_separable_from_best(&self) -> Vec<&SummaryRow> {
        let Some(best) = self.most_efficient() else {
            return Vec::new();
        };
        let Some(best_low) = best.inferences_per_joule_ci_low else {
            return Vec::new();
        };
        self.points
            .iter()
            .copied()
            .filter(|r| r.batch != best.batch && r.status == Status::Ok)
            .filter(|r| {
                r.inferences_per_joule_ci_high
                    .is_some_and(|h| h >= best_low)
            })
            .collect()
    }
}

/// The curves in `rows`: for each backend setting (everything but the batch) and sensor that
/// ran at two or more batch sizes, its rows in batch order. With repetitions, the aggregate
/// rows; else the one repetition's.
pub fn curves(rows: &[SummaryRow]) -> Vec<Curve<'_>> {
    let repeated = rows.iter().any(|r| r.repetition == Repetition::All);
    let setting = |r: &SummaryRow| {
        (
            r.backend.clone(),
            r.engine.clone(),
            r.accelerator.clone(),
            r.threads,
            r.model.clone(),
            r.image.clone(),
            r.sensor_index,
        )
    };
    let mut groups: Vec<(_, Vec<&SummaryRow>)> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.sensor != "none")
        .filter(|r| (r.repetition == Repetition::All) == repeated)
    {
        let key = setting(r);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, points)) => points.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    groups
        .into_iter()
        .filter_map(|(_, mut points)| {
            points.sort_by_key(|r| r.batch);
            points.dedup_by_key(|r| r.batch);
            (points.len() >= 2).then_some(Curve { points })
        })
        .collect()
}

/// The curves as text for the terminal and the report; empty when the run swept no batch.
pub fn render(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    for curve in curves(rows) {
        let first = curve.points[0];
        let _ = writeln!(
            out,
            "\ninferences per joule by batch: {} ({}, {} threads), {}{} on {}",
            first.backend,
            first.accelerator,
            first.threads,
            first.sensor,
            if first.simulated { " (simulated)" } else { "" },
            first.rail
        );
        let best = curve.most_efficient().map(|r| r.batch);
        let table = Table {
            headers: vec![
                "batch",
                "FPS",
                "mean W",
                "inf/J",
                "inf/J 95 % CI",
                "status",
                "",
            ],
            rows: curve
                .points
                .iter()
                .map(|r| {
                    vec![
                        r.batch.to_string(),
                        cell(r.fps, 1),
                        cell(r.mean_watts, 2),
                        cell(r.inferences_per_joule, 2),
                        match (
                            r.inferences_per_joule_ci_low,
                            r.inferences_per_joule_ci_high,
                        ) {
                            (Some(lo), Some(hi)) => format!("{lo:.2} to {hi:.2}"),
                            _ => "-".into(),
                        },
                        r.status.to_string(),
                        if Some(r.batch) == best {
                            "<- most efficient".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect(),
        };
        out += &table.render();
        let close: Vec<String> = curve
            .not_separable_from_best()
            .iter()
            .map(|r| r.batch.to_string())
            .collect();
        if !close.is_empty() {
            let _ = writeln!(
                out,
                "(batch {} cannot be told apart from the most efficient at 95 %)",
                close.join(", ")
            );
        }
        if best.is_none() {
            let _ = writeln!(out, "(no valid window with inferences per joule)");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A measured row of a shipped example run, one repetition.
    fn summary_row() -> SummaryRow {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/repeat-quant");
        crate::output::folder::read_run_dir(&example)
            .unwrap()
            .rows
            .into_iter()
            .find(|r| r.repetition != Repetition::All && r.sensor != "none")
            .unwrap()
    }

    fn point(batch: usize, per_joule: f64, status: Status) -> SummaryRow {
        SummaryRow {
            batch,
            fps: Some(per_joule * 300.0),
            mean_watts: Some(300.0),
            inferences_per_joule: Some(per_joule),
            status,
            ..summary_row()
        }
    }

    #[test]
    fn a_sweep_is_one_curve_in_batch_order_with_its_most_efficient_valid_batch() {
        let rows = vec![
            point(64, 40.0, Status::Ok),
            point(1, 4.0, Status::Ok),
            point(256, 55.0, Status::Invalid("too few readings".into())),
            point(8, 20.0, Status::Ok),
        ];
        let curves = curves(&rows);
        assert_eq!(curves.len(), 1);
        let batches: Vec<usize> = curves[0].points.iter().map(|r| r.batch).collect();
        assert_eq!(batches, [1, 8, 64, 256]);
        // 256 has more per joule, but its window was invalid.
        assert_eq!(curves[0].most_efficient().unwrap().batch, 64);
        let text = render(&rows);
        let line = text.lines().find(|l| l.starts_with("64 ")).unwrap();
        assert!(line.ends_with("<- most efficient"), "{text}");
        assert!(!text.contains("cannot be told apart"), "{text}");
    }

    #[test]
    fn one_batch_per_setting_is_no_curve() {
        let mut other = point(8, 20.0, Status::Ok);
        other.accelerator = "cuda:0 fp32".into();
        let rows = vec![point(1, 4.0, Status::Ok), other];
        assert!(curves(&rows).is_empty());
        assert_eq!(render(&rows), "");
    }

    #[test]
    fn with_repetitions_the_aggregates_make_the_curve_and_overlapping_intervals_are_named() {
        let aggregate = |batch, per_joule, low, high| SummaryRow {
            repetition: Repetition::All,
            inferences_per_joule_ci_low: Some(low),
            inferences_per_joule_ci_high: Some(high),
            ..point(batch, per_joule, Status::Ok)
        };
        let rows = vec![
            point(1, 9.0, Status::Ok), // a repetition: not on the curve
            aggregate(1, 4.0, 3.9, 4.1),
            aggregate(64, 40.0, 38.0, 42.0),
            aggregate(256, 39.0, 36.5, 41.5),
        ];
        let curves = curves(&rows);
        assert_eq!(curves[0].points.len(), 3);
        assert_eq!(curves[0].most_efficient().unwrap().batch, 64);
        let close: Vec<usize> = curves[0]
            .not_separable_from_best()
            .iter()
            .map(|r| r.batch)
            .collect();
        assert_eq!(close, [256]);
        let text = render(&rows);
        assert!(text.contains("38.00 to 42.00"), "{text}");
        assert!(
            text.contains("(batch 256 cannot be told apart from the most efficient at 95 %)"),
            "{text}"
        );
    }
}
