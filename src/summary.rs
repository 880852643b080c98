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

/// Summarises a run: a row per backend and sensor (a single sensor-less row per backend when
/// the rig has no sensors).
pub fn summarize(record: &RunRecord) -> Vec<SummaryRow> {
    let idle_window = record
        .phases
        .iter()
        .find(|s| s.phase == Phase::IdleBaseline && s.end.is_finite())
        .map(|s| (s.start, s.end));
    let energies: Vec<SensorEnergy> = record.sensors.iter().map(SensorEnergy::of).collect();
    let mut rows = Vec::new();
    for (index, backend) in record.backends.iter().enumerate() {
        if record.sensors.is_empty() {
            rows.push(row(record, index, backend, None));
            continue;
        }
        for (log, energy) in record.sensors.iter().zip(&energies) {
            let window = |w: Option<(f64, f64)>| w.and_then(|(a, b)| energy.window(a, b));
            let measured = Measured {
                log,
                idle: window(idle_window),
                timed: window(backend.run.window),
                counted: energy.counted(),
            };
            rows.push(row(record, index, backend, Some(measured)));
        }
    }
    rows
}

/// What one sensor measured for one backend.
struct Measured<'a> {
    log: &'a SensorLog,
    idle: Option<WindowEnergy>,
    timed: Option<WindowEnergy>,
    /// The energy came from the sensor's own counter, not from integrating power.
    counted: bool,
}

/// One sensor's readings, ready to integrate over any window: the difference of its energy
/// counter where it keeps one (NVML on Volta and newer), else trapezoids over its power.
pub struct SensorEnergy {
    counter: Vec<CounterPoint>,
    points: Vec<PowerPoint>,
    max_gap: f64,
}

impl SensorEnergy {
    pub fn of(log: &SensorLog) -> Self {
        // Fresh, valid readings only: a stale reading repeats an earlier conversion or counter
        // update, and an error has no value.
        let fresh = || {
            log.samples.iter().filter_map(|s| match &s.reading {
                Ok(r) if !r.stale => Some((s.t, r)),
                _ => None,
            })
        };
        Self {
            counter: fresh()
                .filter_map(|(t, r)| r.energy_j.map(|joules| CounterPoint { t, joules }))
                .collect(),
            points: fresh()
                .map(|(t, r)| PowerPoint { t, watts: r.watts })
                .collect(),
            max_gap: GAP_PERIODS * log.update_period.as_secs_f64().max(1e-3),
        }
    }

    /// Whether energy comes from the sensor's counter.
    pub fn counted(&self) -> bool {
        self.counter.len() >= 2
    }

    /// Energy over `[start, end]`. A counter that reset inside the window gives none rather
    /// than a wrong one.
    pub fn window(&self, start: f64, end: f64) -> Option<WindowEnergy> {
        if self.counted() {
            energy::integrate_counter(&self.counter, start, end, self.max_gap)
        } else {
            energy::integrate(&self.points, start, end, self.max_gap)
        }
    }
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
    #[serde(flatten)]
    pub energy: WindowEnergy,
}

/// Energy per phase and sensor, for every phase that ended.
pub fn phase_energy(record: &RunRecord) -> Vec<PhaseEnergy> {
    let mut out = Vec::new();
    for (sensor_index, log) in record.sensors.iter().enumerate() {
        let energy = SensorEnergy::of(log);
        for span in record.phases.iter().filter(|s| s.end.is_finite()) {
            if let Some(e) = energy.window(span.start, span.end) {
                out.push(PhaseEnergy {
                    phase: span.phase,
                    backend: span.backend,
                    sensor_index,
                    start_s: span.start,
                    end_s: span.end,
                    energy: e,
                });
            }
        }
    }
    out
}

fn row(
    record: &RunRecord,
    backend_index: usize,
    b: &BackendResult,
    sensor: Option<Measured>,
) -> SummaryRow {
    let latencies_ms: Vec<f64> = b.run.latencies.iter().map(|l| l.seconds * 1e3).collect();
    let lat = Summary::of(&latencies_ms);
    let runs = b.run.latencies.len();
    let inferences = b.run.inferences();
    let timed_span = sensor.as_ref().and_then(|m| m.timed);
    let idle_watts = sensor.as_ref().and_then(|m| m.idle).map(|w| w.mean_watts);
    let log = sensor.as_ref().map(|m| m.log);
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
    let origin = log.map(|l| l.info.origin);
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
        sensor: log.map_or("none".into(), |l| l.info.kind.clone()),
        rail: log.map_or(String::new(), |l| l.info.rail.clone()),
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
        status: status(record, b, sensor.as_ref()),
    }
}

fn status(record: &RunRecord, b: &BackendResult, sensor: Option<&Measured>) -> String {
    if let Some(e) = &b.run.error {
        return format!("error: {e}");
    }
    if let Some(failure) = sensor.and_then(|m| m.log.failure.as_deref()) {
        return format!("sensor failed: {failure}");
    }
    if b.run.interrupted
        || (record.interrupted && b.run.latencies.len() < record.rig.protocol.runs as usize)
    {
        return "interrupted".into();
    }
    let Some(m) = sensor else {
        return "ok".into();
    };
    let Some(timed) = m.timed else {
        return "no power samples in the timed window".into();
    };
    if m.counted && timed.samples < energy::MIN_COUNTER_UPDATES {
        return format!(
            "short window: the energy counter updated {} times (fewer than {}); raise protocol.min_duration_s",
            timed.samples,
            energy::MIN_COUNTER_UPDATES
        );
    }
    "ok".into()
}
