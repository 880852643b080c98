//! `joulebench compare RUN_DIR...`: inferences per joule across runs and rigs, each against a
//! baseline, with confidence intervals, Welch's test and an effect size, and one plain
//! sentence per comparison.
//!
//! An entry is one backend × sensor of one run folder; its values are the inferences per
//! joule of its repetitions that ended `ok` (`--repeat`). Inferences per joule is a positive
//! quantity whose comparisons are ratios, so everything here is on the log scale: an entry's
//! figure is the geometric mean of its values with Student's t interval of their logarithms
//! ([`Repeated`], the statistic of the summary's aggregate rows too, so a folder's table and
//! its entry here give one figure),
//! and its ratio to the baseline, the interval of the ratio and the p-value all come from one
//! Welch test of the logarithms ([`LogRatio`]): the interval excludes 1 exactly when
//! p < 0.05. Nothing is compared silently across
//! a measurement boundary: a simulated or nominal figure, or another rail than the
//! baseline's, is marked in the table and named in the sentence.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::export::Table;
use crate::output::folder::{self, RunFolder};
use crate::references::{self, ReferenceKind};
use crate::results::{self, Status, SummaryRow};
use crate::sensor::Origin;
use crate::stats::{hedges_g, LogRatio, Repeated};

/// One backend × sensor of one run, with its comparison to the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// 1-based position in the table.
    pub index: usize,
    pub run_dir: PathBuf,
    pub rig: String,
    pub model: String,
    pub backend: String,
    pub engine: String,
    pub sensor: String,
    pub rail: String,
    pub origin: Option<Origin>,
    /// Repetitions whose inferences per joule the entry uses.
    pub n: usize,
    /// The geometric mean of the repetitions' inferences per joule, with its 95 % interval.
    pub inferences_per_joule: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// inferences per joule / the baseline's (geometric means), with its 95 % interval.
    pub ratio: Option<f64>,
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    /// The two-sided p-value of Welch's test of the logarithms against the baseline's.
    pub p_value: Option<f64>,
    /// Hedges' g against the baseline.
    pub effect_size: Option<f64>,
    /// Measurement boundaries crossed ("simulated", "nominal, not measured", "other rail").
    pub marks: Vec<String>,
    /// The comparison in words.
    pub sentence: String,
    #[serde(skip)]
    values: Vec<f64>,
}

impl Entry {
    /// "rig model backend (engine), sensor on rail", as the sentences name it.
    pub fn label(&self) -> String {
        format!(
            "{} {} {} ({}), {} on {}",
            self.rig, self.model, self.backend, self.engine, self.sensor, self.rail
        )
    }
}

/// A reference held against the measured entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceLine {
    pub id: String,
    pub device: String,
    pub watts: f64,
    /// For each entry (same order): the FPS the device would need at `watts` to match it.
    pub fps_to_match: Vec<Option<f64>>,
    pub source: String,
}

/// What `compare` prints and exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: usize,
    pub entries: Vec<Entry>,
    /// Inferences per joule implied by a published latency at a nominal wattage.
    pub implied: Vec<(String, f64)>,
    pub references: Vec<ReferenceLine>,
    /// Backends of the run folders that ran without a sensor: FPS only, nothing to compare.
    pub without_sensor: Vec<String>,
}

/// Compares every entry of `dirs` against entry `baseline` (1-based); with `with_references`,
/// adds the shipped references.
pub fn compare(dirs: &[PathBuf], baseline: usize, with_references: bool) -> Result<Comparison> {
    let runs = dirs
        .iter()
        .map(|d| folder::read_run_dir(d))
        .collect::<Result<Vec<RunFolder>>>()?;
    results::refuse_repeats(dirs, "compare a run with another run, not with itself")?;
    let mut entries = Vec::new();
    let mut without_sensor = Vec::new();
    for run in &runs {
        entries.extend(entries_of(run, entries.len()));
        without_sensor.extend(without_sensor_of(run));
    }
    if entries.is_empty() {
        if without_sensor.is_empty() {
            bail!("the run folders hold no measured rows to compare");
        }
        bail!(
            "the run folders hold no rows with a sensor to compare ({}): measure with a rig \
             that has sensors (`joulebench sensors --detect` lists this machine's)",
            without_sensor.join("; ")
        );
    }
    if baseline == 0 || baseline > entries.len() {
        bail!(
            "--baseline {baseline} is not an entry: choose 1 to {}",
            entries.len()
        );
    }
    let base = entries[baseline - 1].clone();
    for e in &mut entries {
        against(e, &base);
    }
    let (implied, references) = if with_references {
        let refs = references::load_default()?;
        let lines = refs
            .iter()
            .filter(|r| r.kind == ReferenceKind::NominalWatts)
            .map(|r| ReferenceLine {
                id: r.id.clone(),
                device: r.device.clone(),
                watts: r.value,
                fps_to_match: entries
                    .iter()
                    .map(|e| {
                        e.inferences_per_joule
                            .map(|j| references::fps_to_match(j, r.value))
                    })
                    .collect(),
                source: r.source.clone(),
            })
            .collect();
        let implied = references::implied_per_joule(&refs)
            .into_iter()
            .map(|(label, _, per_joule)| (label, per_joule))
            .collect();
        (implied, lines)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Comparison {
        baseline,
        entries,
        implied,
        references,
        without_sensor,
    })
}

/// "DIR: BACKEND (ENGINE) ran without a sensor", once per backend of `run` that had none.
fn without_sensor_of(run: &RunFolder) -> Vec<String> {
    results::repetition_groups(&run.rows)
        .into_iter()
        .filter(|reps| reps[0].sensor_index.is_none())
        .map(|reps| {
            let first = reps[0];
            format!(
                "{}: {} ({} {}) ran without a sensor, FPS only",
                run.dir.display(),
                first.backend,
                first.engine,
                first.engine_version
            )
        })
        .collect()
}

/// The mark of an entry whose run did not finish: the repetitions a stop cut short are left
/// out (as the summary's aggregate leaves them), and the reader is told.
fn unfinished_mark(run: &RunFolder, reps: &[&SummaryRow]) -> Option<String> {
    let cut = reps
        .iter()
        .filter(|r| r.status == Status::Interrupted)
        .count();
    if cut > 0 {
        Some(format!(
            "run interrupted: {} of {} repetitions finished",
            reps.len() - cut,
            reps.len()
        ))
    } else if run.interrupted {
        Some("from a run that was interrupted later".into())
    } else {
        None
    }
}

/// The entries of one run: each backend × sensor with a measured inferences per joule.
fn entries_of(run: &RunFolder, before: usize) -> Vec<Entry> {
    results::repetition_groups(&run.rows)
        .into_iter()
        .filter(|reps| reps[0].sensor_index.is_some())
        .enumerate()
        .map(|(i, reps)| {
            let values: Vec<f64> = reps
                .iter()
                .filter(|r| r.status.is_ok())
                .filter_map(|r| r.inferences_per_joule)
                .collect();
            let first = reps[0];
            let mean = Repeated::of(&values);
            Entry {
                index: before + i + 1,
                run_dir: run.dir.clone(),
                rig: first.rig.clone(),
                model: first.model.clone(),
                backend: first.backend.clone(),
                engine: format!("{} {}", first.engine, first.engine_version),
                sensor: first.sensor.clone(),
                rail: first.rail.clone(),
                origin: first.origin,
                n: values.len(),
                inferences_per_joule: mean.map(|m| m.mean),
                ci_low: mean.and_then(|m| m.ci).map(|c| c.0),
                ci_high: mean.and_then(|m| m.ci).map(|c| c.1),
                ratio: None,
                ratio_low: None,
                ratio_high: None,
                p_value: None,
                effect_size: None,
                marks: unfinished_mark(run, &reps).into_iter().collect(),
                sentence: String::new(),
                values,
            }
        })
        .collect()
}

/// Fills in `e`'s comparison with the baseline `base`.
fn against(e: &mut Entry, base: &Entry) {
    if let Some(origin) = e.origin.filter(|o| *o != Origin::Measured) {
        e.marks.push(origin.label().into());
    }
    if e.index != base.index {
        if base.origin == Some(Origin::Nominal) && e.origin != Some(Origin::Nominal) {
            e.marks.push("against a nominal baseline".into());
        }
        if e.rail != base.rail {
            e.marks
                .push(format!("other rail than the baseline ({})", base.rail));
        }
    }
    e.ratio = match (e.inferences_per_joule, base.inferences_per_joule) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    if e.index != base.index {
        let test = LogRatio::of(&e.values, &base.values);
        e.ratio_low = test.map(|r| r.low);
        e.ratio_high = test.map(|r| r.high);
        e.p_value = test.map(|r| r.test.p);
        e.effect_size = hedges_g(&e.values, &base.values);
    }
    e.sentence = sentence(e, base);
}

/// "the rig … does 4.1x (3.8 to 4.4) the inferences per joule of …, p < 0.001".
fn sentence(e: &Entry, base: &Entry) -> String {
    let marks = if e.marks.is_empty() {
        String::new()
    } else {
        format!(" [{}]", e.marks.join("; "))
    };
    if e.index == base.index {
        return format!("{} is the baseline{marks}", e.label());
    }
    let Some(ratio) = e.ratio else {
        // Name the side that lacks the figure: blaming each entry for the baseline's lack
        // would send the reader to the wrong run.
        return if base.inferences_per_joule.is_none() {
            format!(
                "{} has no ratio: the baseline {} has no inferences per joule (no repetition \
                 ended ok); choose another --baseline{marks}",
                e.label(),
                base.label()
            )
        } else {
            format!(
                "{} has no inferences per joule to compare (no repetition ended ok){marks}",
                e.label()
            )
        };
    };
    let mut s = format!("{} does {ratio:.2}x", e.label());
    if let (Some(low), Some(high)) = (e.ratio_low, e.ratio_high) {
        s.push_str(&format!(" ({low:.2} to {high:.2})"));
    }
    s.push_str(&format!(" the inferences per joule of {}", base.label()));
    match e.p_value {
        Some(p) if p < 0.001 => s.push_str(", p < 0.001"),
        Some(p) => s.push_str(&format!(", p = {p:.3}")),
        None => s.push_str(&format!(
            " (no test: {} and {} repetitions; run with --repeat 2 or more)",
            e.n, base.n
        )),
    }
    s + &marks
}

/// A number, or "-".
fn num(v: Option<f64>, digits: usize) -> String {
    crate::export::cell(v, digits)
}

/// A value with its interval, e.g. "28.96 (28.10 to 29.82)".
fn with_interval(v: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    match (v, low, high) {
        (Some(v), Some(l), Some(h)) => format!("{v:.2} ({l:.2} to {h:.2})"),
        (v, ..) => num(v, 2),
    }
}

/// The columns the terminal and every export share.
pub fn table(c: &Comparison) -> Table {
    Table {
        headers: vec![
            "#",
            "rig",
            "model",
            "backend",
            "sensor",
            "reps",
            "inf/J, geometric mean (95 % CI)",
            "ratio (95 % CI)",
            "p",
            "g",
            "marks",
        ],
        rows: c
            .entries
            .iter()
            .map(|e| {
                vec![
                    if e.index == c.baseline {
                        format!("{} (baseline)", e.index)
                    } else {
                        e.index.to_string()
                    },
                    e.rig.clone(),
                    e.model.clone(),
                    format!("{} {}", e.backend, e.engine),
                    format!("{} on {}", e.sensor, e.rail),
                    e.n.to_string(),
                    with_interval(e.inferences_per_joule, e.ci_low, e.ci_high),
                    with_interval(e.ratio, e.ratio_low, e.ratio_high),
                    match e.p_value {
                        Some(p) if p < 0.001 => "<0.001".into(),
                        p => num(p, 3),
                    },
                    num(e.effect_size, 2),
                    e.marks.join("; "),
                ]
            })
            .collect(),
    }
}

/// Everything `compare` prints: the table, a sentence per entry, and the references.
pub fn render(c: &Comparison) -> String {
    let mut out = table(c).render();
    out.push('\n');
    for e in &c.entries {
        out += &format!("{}. {}\n", e.index, e.sentence);
    }
    for line in &c.without_sensor {
        out += &format!("not compared: {line}\n");
    }
    if !c.references.is_empty() {
        out += "\nreferences (nominal, not measured): the FPS each would need at its wattage to match each entry\n";
        for r in &c.references {
            let needs: Vec<String> = r
                .fps_to_match
                .iter()
                .zip(&c.entries)
                .map(|(fps, e)| format!("#{} {}", e.index, num(*fps, 0)))
                .collect();
            out += &format!("  {} at {} W: {}\n", r.device, r.watts, needs.join(", "));
        }
        for (label, per_joule) in &c.implied {
            out += &format!("  {label}: {per_joule:.1} inferences per joule\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Repetition;

    /// A run folder of one backend × sensor with `values` as its repetitions' inferences per
    /// joule, built from the example run's row.
    fn run_dir(origin: Origin, sensor: &str, rail: &str, values: &[f64]) -> tempfile::TempDir {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/sim-cpu");
        let template = folder::read_run_dir(&example).unwrap().rows.remove(0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(example.join("run.json"), dir.path().join("run.json")).unwrap();
        let mut w = csv::Writer::from_path(dir.path().join(folder::SUMMARY_CSV)).unwrap();
        for (i, v) in values.iter().enumerate() {
            w.serialize(SummaryRow {
                repetition: Repetition::One(i + 1),
                origin: Some(origin),
                simulated: origin == Origin::Simulated,
                sensor: sensor.into(),
                rail: rail.into(),
                inferences_per_joule: Some(*v),
                status: Status::Ok,
                ..template.clone()
            })
            .unwrap();
        }
        w.flush().unwrap();
        dir
    }

    #[test]
    fn a_baseline_without_a_figure_is_named_not_the_entries() {
        let base = run_dir(Origin::Measured, "ina219", "5V Pi", &[10.0]);
        // Its one repetition ended invalid: no inferences per joule.
        let path = base.path().join("summary.csv");
        let mut rows = folder::read_run_dir(base.path()).unwrap().rows;
        rows[0].status = Status::Invalid("coverage 0.5 below 0.95".into());
        rows[0].inferences_per_joule = None;
        let mut w = csv::Writer::from_path(&path).unwrap();
        w.serialize(&rows[0]).unwrap();
        w.flush().unwrap();
        let other = run_dir(Origin::Measured, "ina219", "5V Pi", &[11.0, 12.0]);
        let c = compare(&[base.path().into(), other.path().into()], 1, false).unwrap();
        let s = &c.entries[1].sentence;
        assert!(
            s.contains("has no ratio: the baseline ") && s.ends_with("choose another --baseline"),
            "{s}"
        );
        // The other way round, the entry without a figure is the one named.
        let c = compare(&[base.path().into(), other.path().into()], 2, false).unwrap();
        let s = &c.entries[0].sentence;
        assert!(
            s.ends_with("has no inferences per joule to compare (no repetition ended ok)"),
            "{s}"
        );
    }

    /// Rewrites `dir`'s summary rows with `change`.
    fn rewrite(dir: &std::path::Path, change: impl Fn(&mut SummaryRow)) {
        let mut rows = folder::read_run_dir(dir).unwrap().rows;
        rows.iter_mut().for_each(change);
        let mut w = csv::Writer::from_path(dir.join("summary.csv")).unwrap();
        rows.iter().for_each(|r| w.serialize(r).unwrap());
        w.flush().unwrap();
    }

    #[test]
    fn an_entry_of_a_run_that_did_not_finish_is_marked() {
        let cut = run_dir(Origin::Measured, "ina219", "5V Pi", &[10.0, 11.0, 12.0]);
        // Repetition 3 was cut short by a signal: interrupted, no figure.
        rewrite(cut.path(), |r| {
            if r.repetition == Repetition::One(3) {
                r.status = Status::Interrupted;
                r.inferences_per_joule = None;
            }
        });
        let whole = run_dir(Origin::Measured, "ina219", "5V Pi", &[10.0, 11.0, 12.0]);
        let c = compare(&[whole.path().into(), cut.path().into()], 1, false).unwrap();
        let entry = &c.entries[1];
        assert_eq!(entry.n, 2);
        assert_eq!(
            entry.marks,
            ["run interrupted: 2 of 3 repetitions finished"]
        );
        assert!(
            entry
                .sentence
                .ends_with("[run interrupted: 2 of 3 repetitions finished]"),
            "{}",
            entry.sentence
        );
        // As the baseline, it says so too.
        let c = compare(&[cut.path().into(), whole.path().into()], 1, false).unwrap();
        assert!(
            c.entries[0]
                .sentence
                .ends_with("is the baseline [run interrupted: 2 of 3 repetitions finished]"),
            "{}",
            c.entries[0].sentence
        );
        assert!(c.entries[1].marks.is_empty());
    }

    #[test]
    fn a_backend_without_a_sensor_is_named_not_dropped() {
        let measured = run_dir(Origin::Measured, "ina219", "5V Pi", &[10.0, 11.0]);
        let bare = run_dir(Origin::Measured, "none", "", &[10.0]);
        rewrite(bare.path(), |r| {
            r.sensor_index = None;
            r.origin = None;
            r.inferences_per_joule = None;
        });
        let c = compare(&[measured.path().into(), bare.path().into()], 1, false).unwrap();
        assert_eq!(c.entries.len(), 1);
        let printed = render(&c);
        let line = format!(
            "not compared: {}: tflite (litert 2.3.0) ran without a sensor, FPS only",
            bare.path().display()
        );
        assert!(printed.contains(&line), "{printed}");
        // With nothing measured at all, the refusal says why and what to do.
        let e = compare(&[bare.path().into()], 1, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the run folders hold no rows with a sensor to compare (")
                && e.contains("ran without a sensor, FPS only")
                && e.ends_with("lists this machine's)"),
            "{e}"
        );
    }

    #[test]
    fn a_folder_named_twice_is_refused_however_spelled() {
        let pi = run_dir(Origin::Measured, "ina219", "5V Pi", &[10.0, 11.0, 12.0]);
        let link = tempfile::tempdir().unwrap();
        let linked = link.path().join("same");
        std::os::unix::fs::symlink(pi.path(), &linked).unwrap();
        let dotted = pi.path().join("..").join(pi.path().file_name().unwrap());
        for other in [pi.path().to_path_buf(), linked, dotted] {
            let err = compare(&[pi.path().into(), other.clone()], 1, false)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("are the same run folder"), "{other:?}: {err}");
        }
    }

    #[test]
    fn ratios_intervals_tests_and_boundaries() {
        let pi = run_dir(Origin::Measured, "ina219", "5V Pi", &[10.0, 11.0, 12.0]);
        let sim = run_dir(
            Origin::Simulated,
            "ina219-sim",
            "5V Pi",
            &[40.0, 44.0, 48.0],
        );
        let gpu = run_dir(Origin::Nominal, "nominal", "GTX1080 board", &[2.0, 2.0]);
        let dirs = [pi.path().into(), sim.path().into(), gpu.path().into()];
        let c = compare(&dirs, 1, false).unwrap();
        assert_eq!(c.entries.len(), 3);
        let [base, simulated, nominal] = [&c.entries[0], &c.entries[1], &c.entries[2]];
        assert_eq!(base.ratio, Some(1.0));
        assert!(base.marks.is_empty() && base.sentence.ends_with("is the baseline"));
        // Geometric means: 4 × (10 × 11 × 12)^⅓ against (10 × 11 × 12)^⅓.
        assert!((simulated.ratio.unwrap() - 4.0).abs() < 1e-12);
        let (low, high) = (simulated.ratio_low.unwrap(), simulated.ratio_high.unwrap());
        assert!(low < 4.0 && 4.0 < high, "{low} {high}");
        assert!(simulated.p_value.unwrap() < 0.01);
        assert!(simulated.effect_size.unwrap() > 3.0);
        assert_eq!(simulated.marks, ["simulated"]);
        assert!(
            simulated.sentence.contains("does 4.00x (")
                && simulated
                    .sentence
                    .contains("the inferences per joule of sim-cpu")
                && simulated.sentence.ends_with("[simulated]"),
            "{}",
            simulated.sentence
        );
        let pi_mean = 1320f64.cbrt();
        assert!((nominal.ratio.unwrap() - 2.0 / pi_mean).abs() < 1e-12);
        assert_eq!(
            nominal.marks,
            [
                "nominal, not measured",
                "other rail than the baseline (5V Pi)"
            ]
        );
        // Against another baseline the ratios turn over.
        let c = compare(&dirs, 2, false).unwrap();
        assert!((c.entries[0].ratio.unwrap() - 0.25).abs() < 1e-12);
        let text = render(&c);
        assert!(text.contains("2 (baseline)"), "{text}");
    }

    #[test]
    fn the_table_and_compare_give_one_figure_for_one_folder() {
        // Repetitions as far apart as those that once showed two answers: arithmetic mean
        // 31.67, geometric 18.05.
        let dir = run_dir(Origin::Measured, "ina219", "5V Pi", &[4.0, 21.0, 70.0]);
        // The folder as a run leaves it: the repetitions' rows, then their aggregate.
        let mut rows = folder::read_run_dir(dir.path()).unwrap().rows;
        rows.extend(crate::aggregate::rows(&rows));
        let mut w = csv::Writer::from_path(dir.path().join(folder::SUMMARY_CSV)).unwrap();
        rows.iter().for_each(|r| w.serialize(r).unwrap());
        w.flush().unwrap();

        let rows = folder::read_run_dir(dir.path()).unwrap().rows;
        let summary = crate::output::table::columns(&rows);
        let column = |name| summary.headers.iter().position(|h| *h == name).unwrap();
        let all = summary.rows.iter().find(|r| r[0] == "0/all").unwrap();
        let (figure, interval) = (&all[column("inf/J")], &all[column("inf/J 95 % CI")]);
        assert_eq!(figure, "18.05");

        let c = compare(&[dir.path().into()], 1, false).unwrap();
        let cell = &table(&c).rows[0][6];
        assert_eq!(cell, &format!("{figure} ({interval})"));
        let printed = crate::output::table::render(&rows);
        assert!(printed.contains(figure.as_str()) && printed.contains(interval.as_str()));
    }

    #[test]
    fn one_repetition_gives_a_ratio_but_no_test() {
        let a = run_dir(Origin::Measured, "ina219", "5V", &[10.0]);
        let b = run_dir(Origin::Measured, "ina219", "5V", &[20.0]);
        let c = compare(&[a.path().into(), b.path().into()], 1, false).unwrap();
        let e = &c.entries[1];
        assert_eq!((e.ratio, e.ratio_low, e.p_value), (Some(2.0), None, None));
        assert!(
            e.sentence.contains("no test: 1 and 1 repetitions"),
            "{}",
            e.sentence
        );
    }

    #[test]
    fn references_say_what_a_nameplate_wattage_would_need() {
        let a = run_dir(Origin::Measured, "ina219", "5V", &[20.0, 20.0]);
        let c = compare(&[a.path().into()], 1, true).unwrap();
        let gtx = c.references.iter().find(|r| r.device == "GTX1080").unwrap();
        assert_eq!(gtx.fps_to_match, [Some(3600.0)]);
        assert!(render(&c).contains("GTX1080 at 180 W: #1 3600"));
    }

    #[test]
    fn unknown_schemas_and_bad_baselines_are_one_line_errors() {
        let a = run_dir(Origin::Measured, "ina219", "5V", &[10.0]);
        let odd = tempfile::tempdir().unwrap();
        std::fs::write(odd.path().join("run.json"), r#"{"schema_version": 7}"#).unwrap();
        let e = format!(
            "{:#}",
            compare(&[a.path().into(), odd.path().into()], 1, false).unwrap_err()
        );
        assert!(
            e.contains("holds results of schema 7") && !e.contains('\n'),
            "{e}"
        );
        let e = compare(&[a.path().into()], 3, false)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--baseline 3 is not an entry: choose 1 to 1");
    }
}
