//! Statistics across repetitions: one aggregate row (`repetition = all`) per backend × sensor,
//! from the rows of the repetitions that ended `ok`.
//!
//! Every figure of the aggregate is the geometric mean of the repetitions' figures, the one
//! statistic across repetitions that `compare` and `report` show too ([`Repeated`]: the
//! figures are positive, and compared as ratios); counts (runs, inferences, samples) are sums;
//! coverage is the worst repetition's, the largest gap the longest, the counter's cross-check
//! against instant power the one furthest from zero. The spread columns give, for FPS, mean
//! watts and inferences per joule (gross and net), the repetitions' standard deviation, the
//! 95 % interval of the geometric mean (Student's t on the logarithms, never below zero) and
//! the coefficient of variation. The total interval of inferences per joule adds the
//! sensor's own uncertainty to the run-to-run one on the same log scale.
//!
//! A net figure is the geometric mean of the repetitions' only where every one of them has one: a
//! repetition whose timed − idle power was within its uncertainty has none, and neither has
//! the aggregate (its note says which repetition and why).

use crate::results::{repetition_groups, Repetition, Status, SummaryRow};
use crate::stats::Repeated;

/// The aggregate rows of `rows` (per-repetition rows of one run), one per backend × sensor
/// that has rows, in order of first appearance.
pub fn rows(rows: &[SummaryRow]) -> Vec<SummaryRow> {
    repetition_groups(rows)
        .iter()
        .map(|group| aggregate(group))
        .collect()
}

/// A positive quantity's spread columns: standard deviation, interval low and high (on the
/// log scale), CV.
fn columns(s: Option<Repeated>) -> [Option<f64>; 4] {
    let ci = s.and_then(|s| s.ci);
    [
        s.map(|s| s.std_dev),
        ci.map(|ci| ci.0),
        ci.map(|ci| ci.1),
        s.and_then(|s| s.cv),
    ]
}

/// One backend × sensor's repetitions, summarised.
fn aggregate(group: &[&SummaryRow]) -> SummaryRow {
    let last = group.last().expect("a group has a row");
    let ok: Vec<&SummaryRow> = group.iter().copied().filter(|r| r.status.is_ok()).collect();
    let status = aggregate_status(group, ok.len());
    // An invalid aggregate carries no figures; an interrupted one those of the repetitions
    // that finished.
    let from: &[&SummaryRow] = if matches!(status, Status::Invalid(_)) {
        &[]
    } else {
        &ok
    };
    let spread = |f: fn(&SummaryRow) -> Option<f64>| -> Option<Repeated> {
        let values: Option<Vec<f64>> = from.iter().map(|r| f(r)).collect();
        values.and_then(|v| Repeated::of(&v))
    };
    let mean = |f: fn(&SummaryRow) -> Option<f64>| spread(f).map(|s| s.mean);
    let fps = spread(|r| r.fps);
    let watts = spread(|r| r.mean_watts);
    let per_joule = spread(|r| r.inferences_per_joule);
    let net = spread(|r| r.net_inferences_per_joule);
    let sum = |f: fn(&SummaryRow) -> usize| from.iter().map(|r| f(r)).sum::<usize>();
    let row = SummaryRow {
        repetition: Repetition::All,
        repetitions: from.len(),
        runs: sum(|r| r.runs),
        inferences: sum(|r| r.inferences),
        fps: fps.map(|s| s.mean),
        latency_ms_mean: mean(|r| r.latency_ms_mean),
        latency_ms_median: mean(|r| r.latency_ms_median),
        latency_ms_p90: mean(|r| r.latency_ms_p90),
        latency_ms_p99: mean(|r| r.latency_ms_p99),
        idle_watts: mean(|r| r.idle_watts),
        mean_watts: watts.map(|s| s.mean),
        joules_per_inference: mean(|r| r.joules_per_inference),
        inferences_per_joule: per_joule.map(|s| s.mean),
        net_inferences_per_joule: net.map(|s| s.mean),
        samples: sum(|r| r.samples),
        expected_samples: sum(|r| r.expected_samples),
        sample_rate_hz: mean(|r| r.sample_rate_hz),
        coverage: from.iter().filter_map(|r| r.coverage).reduce(f64::min),
        largest_gap_ms: from
            .iter()
            .filter_map(|r| r.largest_gap_ms)
            .reduce(f64::max),
        // Like coverage, the worst repetition's: the disagreement furthest from zero.
        instant_vs_counter_pct: from
            .iter()
            .filter_map(|r| r.instant_vs_counter_pct)
            .reduce(|a, b| if b.abs() > a.abs() { b } else { a }),
        sampler_cpu_pct: from
            .iter()
            .filter_map(|r| r.sampler_cpu_pct)
            .reduce(f64::max),
        net_note: net_note(from),
        status,
        throttled: throttled(group),
        ..(*last).clone()
    };
    with_spread(row, fps, watts, per_joule, net)
}

/// The aggregate's status from its `group` of repetitions, `ok` of which ended ok: ok,
/// interrupted where the first that did not was, else invalid, naming that one.
fn aggregate_status(group: &[&SummaryRow], ok: usize) -> Status {
    match group.iter().find(|r| !r.status.is_ok()) {
        None => Status::Ok,
        Some(r) if r.status == Status::Interrupted => Status::Interrupted,
        // A sensor that never opened is missing from every repetition, for the same reason.
        Some(r) if matches!(r.status, Status::SensorMissing(_)) => r.status.clone(),
        Some(r) => Status::Invalid(format!(
            "{} of {} repetitions not ok (repetition {}: {})",
            group.len() - ok,
            group.len(),
            r.repetition,
            r.status
        )),
    }
}

/// Where a repetition has no net figure, neither has the aggregate: its note says which and
/// why (empty where every one has).
fn net_note(from: &[&SummaryRow]) -> String {
    from.iter()
        .find(|r| r.net_inferences_per_joule.is_none())
        .map_or(String::new(), |r| {
            format!("repetition {}: {}", r.repetition, r.net_note)
        })
}

/// The repetitions' throttle verdicts combined, each under its repetition's number.
fn throttled(group: &[&SummaryRow]) -> Option<crate::machine::Throttle> {
    crate::machine::combine(group.iter().map(|r| {
        let n = match r.repetition {
            Repetition::One(n) => n,
            Repetition::All => 0,
        };
        (n, r.throttled.as_ref())
    }))
}

/// `row` with the spread columns of its four spread figures (FPS, mean watts, inferences per
/// joule gross and net) and the total interval of inferences per joule, which adds the
/// row's energy uncertainty.
fn with_spread(
    row: SummaryRow,
    fps: Option<Repeated>,
    watts: Option<Repeated>,
    per_joule: Option<Repeated>,
    net: Option<Repeated>,
) -> SummaryRow {
    let uncertainty = row.energy_uncertainty_pct.map(|pct| pct / 100.0);
    // A bound of ±u on the figure is ln(1 + u) on the log scale, added to the run-to-run
    // half-width as a root sum of squares (independent contributions).
    let total = per_joule.and_then(|s| {
        let half = s.log_half_width?.hypot(uncertainty?.ln_1p());
        Some((s.mean / half.exp(), s.mean * half.exp()))
    });
    let [fps_sd, fps_ci_low, fps_ci_high, fps_cv] = columns(fps);
    let [mean_watts_sd, mean_watts_ci_low, mean_watts_ci_high, mean_watts_cv] = columns(watts);
    let [inferences_per_joule_sd, inferences_per_joule_ci_low, inferences_per_joule_ci_high, inferences_per_joule_cv] =
        columns(per_joule);
    let [net_inferences_per_joule_sd, net_inferences_per_joule_ci_low, net_inferences_per_joule_ci_high, net_inferences_per_joule_cv] =
        columns(net);
    SummaryRow {
        fps_sd,
        fps_ci_low,
        fps_ci_high,
        fps_cv,
        mean_watts_sd,
        mean_watts_ci_low,
        mean_watts_ci_high,
        mean_watts_cv,
        inferences_per_joule_sd,
        inferences_per_joule_ci_low,
        inferences_per_joule_ci_high,
        inferences_per_joule_cv,
        net_inferences_per_joule_sd,
        net_inferences_per_joule_ci_low,
        net_inferences_per_joule_ci_high,
        net_inferences_per_joule_cv,
        inferences_per_joule_total_low: total.map(|t| t.0),
        inferences_per_joule_total_high: total.map(|t| t.1),
        ..row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repetition row of backend 0 and sensor 0 with the given figures.
    fn rep(n: usize, fps: f64, watts: f64, status: Status) -> SummaryRow {
        let csv = format!(
            "rig,backend_index,repetition,repetitions,backend,engine,engine_version,accelerator,\
             model,model_sha256,image,threads,scenario,batch,runs,inferences,fps,\
             latency_ms_mean,latency_ms_median,latency_ms_p90,latency_ms_p99,sensor_index,\
             sensor,rail,simulated,origin,idle_watts,mean_watts,joules_per_inference,\
             inferences_per_joule,net_inferences_per_joule,energy_uncertainty_pct,fps_sd,\
             fps_ci_low,fps_ci_high,fps_cv,mean_watts_sd,mean_watts_ci_low,mean_watts_ci_high,\
             mean_watts_cv,inferences_per_joule_sd,inferences_per_joule_ci_low,\
             inferences_per_joule_ci_high,inferences_per_joule_cv,net_inferences_per_joule_sd,\
             net_inferences_per_joule_ci_low,net_inferences_per_joule_ci_high,\
             net_inferences_per_joule_cv,inferences_per_joule_total_low,\
             inferences_per_joule_total_high,samples,expected_samples,sample_rate_hz,coverage,\
             largest_gap_ms,idle_coverage,top1_class,top1_label,top1_score,top1_expected,\
             top1_agrees,status\n\
             r,0,{n},1,tflite,litert,2.3.0,xnnpack,m,abc,bird.bmp,1,single-stream,1,250,250,\
             {fps},10,10,11,12,0,ina219,5V,false,measured,2.0,{watts},{jpi},{ipj},,1.2,,,,,,,,,,,,,,,,,,,\
             2000,1900,520,0.99,2.5,1.0,20,chickadee,0.9,chickadee,true,{status}\n",
            jpi = watts / fps,
            ipj = fps / watts,
        );
        csv::Reader::from_reader(csv.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap()
    }

    #[test]
    fn repetitions_give_means_intervals_and_sums() {
        let reps = [
            rep(1, 100.0, 4.0, Status::Ok),
            rep(2, 110.0, 4.0, Status::Ok),
            rep(3, 120.0, 4.0, Status::Ok),
        ];
        let all = rows(&reps);
        assert_eq!(all.len(), 1);
        let a = &all[0];
        assert_eq!(
            (a.repetition, a.repetitions, a.runs),
            (Repetition::All, 3, 750)
        );
        assert_eq!(a.status, Status::Ok);
        // The geometric mean (100 × 110 × 120)^⅓ = 109.6961, not the arithmetic 110.
        let fps = a.fps.unwrap();
        assert!((fps - 109.69613104865239).abs() < 1e-9, "{fps}");
        assert_eq!(a.fps_sd, Some(10.0));
        // On the logarithms: s_l = 0.091193, h = t(0.975, 2) × s_l / √3 = 0.226534, and
        // 109.6961 × exp(∓0.226534) = 87.4599 and 137.5859.
        let (low, high) = (a.fps_ci_low.unwrap(), a.fps_ci_high.unwrap());
        assert!(
            (low - 87.4599).abs() < 1e-3 && (high - 137.5859).abs() < 1e-3,
            "{low} {high}"
        );
        assert!(
            (low * high - fps.powi(2)).abs() < 1e-9,
            "symmetric in the log"
        );
        assert!((a.fps_cv.unwrap() - 10.0 / 110.0).abs() < 1e-12);
        // Inferences per joule: 25, 27.5, 30, geometric mean 27.4240 (FPS over watts, as each
        // repetition's); with the sensor's 1.2 % the total interval is wider than the
        // run-to-run one: ln(1.012) added in quadrature on the log scale.
        let per_joule = a.inferences_per_joule.unwrap();
        assert!((per_joule - 27.424032762163094).abs() < 1e-9, "{per_joule}");
        assert!((per_joule - fps / 4.0).abs() < 1e-12);
        let ci = (a.inferences_per_joule_ci_high.unwrap() / per_joule).ln();
        let total = (a.inferences_per_joule_total_high.unwrap() / per_joule).ln();
        assert!((total - ci.hypot(0.012f64.ln_1p())).abs() < 1e-12);
        assert!((a.inferences_per_joule_total_low.unwrap() / per_joule).ln() + total < 1e-12);
        assert_eq!(a.mean_watts_sd, Some(0.0));
    }

    #[test]
    fn a_repetition_that_is_not_ok_makes_the_aggregate_invalid_and_empty() {
        let reps = [
            rep(1, 100.0, 4.0, Status::Ok),
            rep(
                2,
                110.0,
                4.0,
                Status::Invalid("coverage 0.5 below 0.95".into()),
            ),
        ];
        let a = &rows(&reps)[0];
        assert_eq!(
            a.status,
            Status::Invalid(
                "1 of 2 repetitions not ok (repetition 2: invalid: coverage 0.5 below 0.95)".into()
            )
        );
        assert_eq!(
            (a.fps, a.inferences_per_joule, a.repetitions),
            (None, None, 0)
        );
    }

    #[test]
    fn two_repetitions_never_give_an_interval_below_zero() {
        // 40.33 and 47.51: 43.92 ± 12.706 × 3.59, a symmetric interval of −1.69 to 89.53.
        let reps = [
            rep(1, 100.0 * 40.33, 100.0, Status::Ok),
            rep(2, 100.0 * 47.51, 100.0, Status::Ok),
        ];
        let a = &rows(&reps)[0];
        let (low, high) = (
            a.inferences_per_joule_ci_low.unwrap(),
            a.inferences_per_joule_ci_high.unwrap(),
        );
        assert!(low > 0.0 && low < 43.92 && high > 43.92, "{low} {high}");
        assert!(a.inferences_per_joule_total_low.unwrap() > 0.0);
        assert!(a.fps_ci_low.unwrap() > 0.0);
    }

    #[test]
    fn a_repetition_without_a_net_figure_leaves_the_aggregate_without_one() {
        let mut reps = [
            rep(1, 100.0, 4.0, Status::Ok),
            rep(2, 110.0, 4.0, Status::Ok),
        ];
        reps[0].net_inferences_per_joule = Some(50.0);
        reps[1].net_note = "no net figure: timed − idle 0.0100 W is within …".into();
        let a = &rows(&reps)[0];
        assert_eq!(a.net_inferences_per_joule, None);
        assert_eq!(
            a.net_note,
            "repetition 2: no net figure: timed − idle 0.0100 W is within …"
        );
        reps[1].net_inferences_per_joule = Some(60.0);
        reps[1].net_note.clear();
        let a = &rows(&reps)[0];
        // √(50 × 60), the geometric mean.
        let net = a.net_inferences_per_joule.unwrap();
        assert!((net - 3000f64.sqrt()).abs() < 1e-12, "{net}");
        assert_eq!(a.net_note, "");
    }

    #[test]
    fn an_interrupted_series_keeps_the_finished_repetitions() {
        let reps = [
            rep(1, 100.0, 4.0, Status::Ok),
            rep(2, 120.0, 4.0, Status::Ok),
            rep(3, 50.0, 4.0, Status::Interrupted),
        ];
        let a = &rows(&reps)[0];
        assert_eq!(a.status, Status::Interrupted);
        // √(100 × 120), the geometric mean of the two that finished.
        let fps = a.fps.unwrap();
        assert!((fps - 12000f64.sqrt()).abs() < 1e-12, "{fps}");
        assert_eq!(a.repetitions, 2);
    }
}
