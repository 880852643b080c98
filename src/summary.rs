//! From a run's raw measurements to one summary row per backend × sensor.

use crate::clock::Phase;
use crate::energy::{self, CounterPoint, PowerPoint, WindowEnergy};
use crate::runner::{BackendResult, RunRecord};
use crate::sampler::SensorLog;
use crate::sensor::Origin;
use crate::stats::Summary;

/// Samples further apart than this many update periods leave a gap in coverage.
const GAP_PERIODS: f64 = 3.0;

/// One row of `summary.csv`: one backend measured by one sensor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub rig: String,
    /// Position of the backend in the rig (as in latency.csv).
    pub backend_index: usize,
    pub backend: String,
    pub engine: String,
    pub engine_version: String,
    pub accelerator: String,
    pub model: String,
    pub model_sha256: String,
    pub image: String,
    pub threads: u32,
    /// single-stream or offline.
    pub scenario: &'static str,
    /// Images per timed call.
    pub batch: usize,
    /// Timed calls completed.
    pub runs: usize,
    /// Images classified in the timed run: runs × batch. The per-joule figures count these.
    pub inferences: usize,
    pub fps: Option<f64>,
    pub latency_ms_mean: Option<f64>,
    pub latency_ms_median: Option<f64>,
    pub latency_ms_p90: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// Sensor kind, or "none" for a rig without sensors.
    pub sensor: String,
    pub rail: String,
    pub simulated: bool,
    /// measured, simulated, or nominal (a fixed figure, not measured); empty without a sensor.
    pub origin: Option<Origin>,
    /// Mean power over the idle baseline.
    pub idle_watts: Option<f64>,
    /// Mean power over the timed run.
    pub mean_watts: Option<f64>,
    pub joules_per_inference: Option<f64>,
    /// Gross: all energy the rail delivered during the timed run.
    pub inferences_per_joule: Option<f64>,
    /// Net of the idle baseline: only the energy above idle.
    pub net_inferences_per_joule: Option<f64>,
    /// Valid samples in the timed window.
    pub samples: usize,
    pub sample_rate_hz: Option<f64>,
    pub coverage: Option<f64>,
    pub top1_class: Option<usize>,
    pub top1_label: String,
    pub top1_score: Option<f32>,
    /// The top-1 label the manifest expects for this model and image, where it knows one.
    pub top1_expected: String,
    /// Whether every backend of the run that classified this image gave the same top-1.
    pub top1_agrees: bool,
    /// "ok", "interrupted", or what went wrong.
    pub status: String,
}

/// Energy of one sensor over the windows that matter for one backend.
struct SensorEnergy {
    idle: Option<WindowEnergy>,
    timed: Option<WindowEnergy>,
}

/// Summarises a run: a row per backend and sensor (a single sensor-less row per backend when
/// the rig has no sensors).
pub fn summarize(record: &RunRecord) -> Vec<SummaryRow> {
    let idle_window = record
        .phases
        .iter()
        .find(|s| s.phase == Phase::IdleBaseline && s.end.is_finite())
        .map(|s| (s.start, s.end));
    let mut rows = Vec::new();
    for (index, backend) in record.backends.iter().enumerate() {
        if record.sensors.is_empty() {
            rows.push(row(record, index, backend, None));
            continue;
        }
        for log in &record.sensors {
            rows.push(row(
                record,
                index,
                backend,
                Some((log, sensor_energy(log, idle_window, backend.run.window))),
            ));
        }
    }
    rows
}

fn sensor_energy(
    log: &SensorLog,
    idle: Option<(f64, f64)>,
    timed: Option<(f64, f64)>,
) -> SensorEnergy {
    let energy = integrator(log);
    SensorEnergy {
        idle: idle.and_then(|(a, b)| energy(a, b)),
        timed: timed.and_then(|(a, b)| energy(a, b)),
    }
}

/// Energy of one sensor over `[start, end]`.
pub fn window_energy(log: &SensorLog, start: f64, end: f64) -> Option<WindowEnergy> {
    integrator(log)(start, end)
}

/// Energy of a window of one sensor's log: the difference of its energy counter where it
/// keeps one (NVML on Volta and newer), else trapezoids over its power readings.
fn integrator(log: &SensorLog) -> impl Fn(f64, f64) -> Option<WindowEnergy> {
    let counter = counter_points(log);
    let points = power_points(log);
    let max_gap = GAP_PERIODS * log.update_period.as_secs_f64().max(1e-3);
    move |start, end| {
        if counter.len() >= 2 {
            // A counter that reset inside the window gives no energy rather than a wrong one.
            energy::integrate_counter(&counter, start, end, max_gap)
        } else {
            energy::integrate(&points, start, end, max_gap)
        }
    }
}

/// The counter's fresh values: a stale reading repeats the previous update.
fn counter_points(log: &SensorLog) -> Vec<CounterPoint> {
    log.samples
        .iter()
        .filter_map(|s| match &s.reading {
            Ok(r) if !r.stale => r.energy_j.map(|joules| CounterPoint { t: s.t, joules }),
            _ => None,
        })
        .collect()
}

/// Energy of one phase as one sensor saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseEnergy {
    pub phase: Phase,
    /// The rig's backend index (none for the idle baseline).
    pub backend: Option<usize>,
    pub sensor_index: usize,
    pub start_s: f64,
    pub end_s: f64,
    pub joules: f64,
    pub mean_watts: f64,
    pub samples: usize,
    pub sample_rate_hz: f64,
    pub coverage: f64,
}

/// Energy per phase and sensor, for every phase that ended.
pub fn phase_energy(record: &RunRecord) -> Vec<PhaseEnergy> {
    let mut out = Vec::new();
    for (sensor_index, log) in record.sensors.iter().enumerate() {
        let energy = integrator(log);
        for span in record.phases.iter().filter(|s| s.end.is_finite()) {
            if let Some(e) = energy(span.start, span.end) {
                out.push(PhaseEnergy {
                    phase: span.phase,
                    backend: span.backend,
                    sensor_index,
                    start_s: span.start,
                    end_s: span.end,
                    joules: e.joules,
                    mean_watts: e.mean_watts,
                    samples: e.samples,
                    sample_rate_hz: e.sample_rate_hz,
                    coverage: e.coverage,
                });
            }
        }
    }
    out
}

/// Fresh, valid readings only: a stale reading repeats an earlier conversion and an error
/// has no value.
pub fn power_points(log: &SensorLog) -> Vec<PowerPoint> {
    log.samples
        .iter()
        .filter_map(|s| match &s.reading {
            Ok(r) if !r.stale => Some(PowerPoint {
                t: s.t,
                watts: r.watts,
            }),
            _ => None,
        })
        .collect()
}

fn row(
    record: &RunRecord,
    backend_index: usize,
    b: &BackendResult,
    sensor: Option<(&SensorLog, SensorEnergy)>,
) -> SummaryRow {
    let latencies_ms: Vec<f64> = b.run.latencies.iter().map(|l| l.seconds * 1e3).collect();
    let lat = Summary::of(&latencies_ms);
    let runs = b.run.latencies.len();
    let inferences = b.run.inferences();
    let (timed_span, idle_watts) = match &sensor {
        Some((_, e)) => (e.timed, e.idle.map(|w| w.mean_watts)),
        None => (None, None),
    };
    let joules = timed_span
        .map(|w| w.joules)
        .filter(|j| *j > 0.0 && inferences > 0);
    let net_joules = match (timed_span, idle_watts, b.run.window) {
        (Some(w), Some(idle), Some((start, end))) => {
            Some(w.joules - idle * (end - start)).filter(|j| *j > 0.0 && inferences > 0)
        }
        _ => None,
    };
    let top1 = b.run.top.first();
    let origin = sensor.as_ref().map(|(l, _)| l.info.origin);
    SummaryRow {
        rig: record.rig.name.clone(),
        backend_index,
        backend: b.spec.kind.as_str().into(),
        engine: b.engine.engine.clone(),
        engine_version: b.engine.version.clone(),
        accelerator: b.engine.accelerator.clone(),
        model: b.model.name.clone(),
        model_sha256: b.model.sha256.clone(),
        image: b.image.name.clone(),
        threads: b.engine.threads,
        scenario: record.rig.protocol.scenario.as_str(),
        batch: b.run.batch,
        runs,
        inferences,
        fps: b.run.fps(),
        latency_ms_mean: lat.map(|s| s.mean),
        latency_ms_median: lat.map(|s| s.median),
        latency_ms_p90: lat.map(|s| s.p90),
        latency_ms_p99: lat.map(|s| s.p99),
        sensor: sensor
            .as_ref()
            .map_or("none".into(), |(l, _)| l.info.kind.clone()),
        rail: sensor
            .as_ref()
            .map_or(String::new(), |(l, _)| l.info.rail.clone()),
        simulated: origin == Some(Origin::Simulated),
        origin,
        idle_watts,
        mean_watts: timed_span.map(|w| w.mean_watts),
        joules_per_inference: joules.map(|j| j / inferences as f64),
        inferences_per_joule: joules.map(|j| inferences as f64 / j),
        net_inferences_per_joule: net_joules.map(|j| inferences as f64 / j),
        samples: timed_span.map_or(0, |w| w.samples),
        sample_rate_hz: timed_span.map(|w| w.sample_rate_hz),
        coverage: timed_span.map(|w| w.coverage),
        top1_class: top1.map(|p| p.class),
        top1_label: top1.map_or(String::new(), |p| b.labels.get(p.class).to_string()),
        top1_score: top1.map(|p| p.score),
        top1_expected: b
            .image
            .expected_top1(&b.model.name)
            .map_or(String::new(), |t| t.label.clone()),
        top1_agrees: record
            .backends
            .iter()
            .filter(|other| other.image.sha256 == b.image.sha256)
            .all(|other| other.run.top.first().map(|p| p.class) == top1.map(|p| p.class)),
        status: status(record, b, sensor.as_ref().map(|(l, _)| *l), timed_span),
    }
}

fn status(
    record: &RunRecord,
    b: &BackendResult,
    sensor: Option<&SensorLog>,
    timed: Option<WindowEnergy>,
) -> String {
    if let Some(e) = &b.run.error {
        return format!("error: {e}");
    }
    if let Some(failure) = sensor.and_then(|s| s.failure.as_deref()) {
        return format!("sensor failed: {failure}");
    }
    if b.run.interrupted
        || (record.interrupted && b.run.latencies.len() < record.rig.protocol.runs as usize)
    {
        return "interrupted".into();
    }
    if sensor.is_some() && timed.is_none() {
        return "no power samples in the timed window".into();
    }
    let counted = sensor.is_some_and(|s| counter_points(s).len() >= 2);
    if let Some(e) = timed.filter(|e| counted && e.samples < energy::MIN_COUNTER_UPDATES) {
        return format!(
            "short window: the energy counter updated {} times (fewer than {}); raise protocol.min_duration_s",
            e.samples,
            energy::MIN_COUNTER_UPDATES
        );
    }
    "ok".into()
}
