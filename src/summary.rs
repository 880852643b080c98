//! From a run's raw measurements to one summary row per backend × sensor.

use crate::clock::Phase;
use crate::energy::{self, CounterPoint, PowerPoint, WindowEnergy};
use crate::input::Prediction;
use crate::protocol::TimedRun;
use crate::record::{BackendResult, RunRecord};
pub use crate::results::{Repetition, Status, SummaryRow};
use crate::sampler::{Sample, SensorLog};
use crate::sensor::{Crosscheck, Origin, ReadError};
use crate::stats::{Spread, Summary};
pub use crate::validity::CheckedWindow;
use crate::validity::{self, ValiditySpec, WindowReadings};

/// Samples further apart than this many update periods leave a gap in coverage.
pub const GAP_PERIODS: f64 = 3.0;

/// Summarises a run: a row per backend, repetition and sensor (a single sensor-less row per
/// backend and repetition when the rig has no sensors), then, where the protocol was repeated,
/// an aggregate row per backend and sensor ([`crate::aggregate`]).
pub fn summarize(record: &RunRecord) -> Vec<SummaryRow> {
    summarize_with(record, &Energies::of(record))
}

/// [`summarize`] from `energies`, brought up to date with `record`.
pub fn summarize_with(record: &RunRecord, energies: &Energies) -> Vec<SummaryRow> {
    let idle_window = record
        .phases
        .iter()
        .find(|s| s.phase == Phase::IdleBaseline && s.end.is_finite())
        .map(|s| (s.start, s.end));
    let windows = Windows::of(record, energies);
    let mut rows = Vec::new();
    for (index, backend) in record.backends.iter().enumerate() {
        for (repetition, run) in backend.repetitions.iter().enumerate() {
            let at = At {
                backend_index: index,
                repetition: repetition + 1,
                run,
            };
            if record.sensors.is_empty() {
                rows.push(row(record, backend, &at, None));
                continue;
            }
            let check =
                |sensor: usize, w: Option<(f64, f64)>| w.map(|w| windows.checked(sensor, w));
            for (sensor_index, log) in record.sensors.iter().enumerate() {
                let measured = Measured {
                    index: sensor_index,
                    sensor: RowSensor::of(log),
                    idle: check(sensor_index, idle_window),
                    timed: check(sensor_index, run.window),
                };
                rows.push(row(record, backend, &at, Some(measured)));
            }
            let members = record.rig.total_sensors();
            if members.len() >= 2 {
                let windows = |w: Option<(f64, f64)>| {
                    let each: Option<Vec<(&str, CheckedWindow)>> = members
                        .iter()
                        .map(|&i| Some((record.sensors[i].info.rail.as_str(), check(i, w)?)))
                        .collect();
                    each.map(|each| CheckedWindow::total(&each))
                };
                let logs: Vec<&SensorLog> = members.iter().map(|&i| &record.sensors[i]).collect();
                let timed = windows(run.window);
                let measured = Measured {
                    index: record.sensors.len(),
                    sensor: RowSensor::total(&logs, timed.as_ref()),
                    idle: windows(idle_window),
                    timed,
                };
                rows.push(row(record, backend, &at, Some(measured)));
            }
        }
    }
    if record.rig.protocol.repeat > 1 {
        let aggregates = crate::aggregate::rows(&rows);
        rows.extend(aggregates);
    }
    rows
}

/// Which timed run a row describes.
struct At<'a> {
    backend_index: usize,
    /// 1-based.
    repetition: usize,
    run: &'a TimedRun,
}

/// What one sensor (or the rig's total) measured for one backend: its idle and timed
/// windows, where they exist.
struct Measured {
    /// The sensor's position in the rig; the total comes after the last sensor.
    index: usize,
    sensor: RowSensor,
    idle: Option<CheckedWindow>,
    timed: Option<CheckedWindow>,
}

/// What a row says about the sensor behind it.
struct RowSensor {
    kind: String,
    rail: String,
    origin: Origin,
    uncertainty: Option<f64>,
    failure: Option<String>,
    /// Why the row has no figures: an `optional` sensor that did not open, or a total that
    /// names one.
    missing: Option<String>,
}

impl RowSensor {
    fn of(log: &SensorLog) -> Self {
        Self {
            kind: log.info.kind.clone(),
            rail: log.info.rail.clone(),
            origin: log.info.origin,
            uncertainty: log.uncertainty,
            failure: log.failure.clone(),
            missing: log
                .missing
                .as_ref()
                .map(|why| format!("optional, did not open: {why}")),
        }
    }

    /// The rig's total of `logs`. Simulated if any rail is. Its uncertainty bound is the
    /// energy-weighted mean of the rails' bounds over `timed`: their errors may share a sign
    /// (shunts from one batch), so they are added, not combined in quadrature.
    fn total(logs: &[&SensorLog], timed: Option<&CheckedWindow>) -> Self {
        // A sum that holds a stated figure is not measured; one that holds a model's is not
        // this machine's; one that holds a part of a board is a part too.
        let any = |origin| logs.iter().any(|l| l.info.origin == origin);
        let origin = if any(Origin::Nominal) {
            Origin::Nominal
        } else if any(Origin::Simulated) {
            Origin::Simulated
        } else if any(Origin::Partial) {
            Origin::Partial
        } else {
            Origin::Measured
        };
        let uncertainty = timed.and_then(|t| {
            let parts = t.parts.as_ref()?;
            let total: f64 = parts.iter().sum();
            let bound: Option<f64> = logs
                .iter()
                .zip(parts)
                .map(|(l, joules)| Some(l.uncertainty? * joules))
                .sum();
            bound.filter(|_| total > 0.0).map(|b| b / total)
        });
        Self {
            kind: TOTAL_KIND.into(),
            rail: logs
                .iter()
                .map(|l| l.info.rail.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            origin,
            uncertainty,
            failure: logs
                .iter()
                .find_map(|l| l.failure.as_ref().map(|f| format!("{}: {f}", l.info.rail))),
            // A sum over fewer rails than the rig names is not the whole setup's energy: no
            // total is formed, and the row says which rail is missing.
            missing: logs.iter().find_map(|l| {
                let why = l.missing.as_ref()?;
                Some(format!(
                    "no total: {} did not open ({why}), and a total over fewer rails than it \
                     names is not the whole setup's energy",
                    l.info.rail
                ))
            }),
        }
    }
}

/// The `sensor` column of a total row.
pub const TOTAL_KIND: &str = "total";

/// Values an integrating sensor's window is summed from on either side of it: the edge split
/// needs the conversion cut by the edge and one beyond it, and coverage one more.
const INTEGRATED_MARGIN: usize = 3;

/// One sensor's readings, ready to integrate over any window: the difference of its energy
/// counter where it keeps one (NVML on Volta and newer), else trapezoids over its power.
pub struct SensorEnergy {
    counter: Vec<CounterPoint>,
    /// Whether `points` are each the mean of their whole period, to be integrated as the
    /// counter they add up to ([`energy::integrated`]): the sensor's are
    /// (`integrates`), and it keeps no counter.
    integrating: bool,
    integrates: bool,
    points: Vec<PowerPoint>,
    /// Instant power read beside the counter, every read (stale ones too: only the counter
    /// was unchanged), for the cross-check.
    instant: Vec<PowerPoint>,
    crosscheck: Option<Crosscheck>,
    /// The shortest window the sensor's averaged figures can measure, seconds.
    min_window_s: Option<f64>,
    max_gap: f64,
    period: f64,
    /// Times of readings clipped at the sensor's range, and of failed reads.
    saturated: Vec<f64>,
    errors: Vec<f64>,
    /// Fresh readings the sensor cannot report ([`crate::sensor::Limits::judge`]): when, and why.
    impossible: Vec<(f64, String)>,
    /// Where the counter lost count ([`ReadError::CounterBreak`]): from its last update
    /// before to its first after, the stretch whose energy is unknown, with the read's error.
    breaks: Vec<CounterBreak>,
}

/// A read where an energy counter lost count.
struct CounterBreak {
    /// The counter's last update before the read and its first after it: the stretch whose
    /// energy is unknown.
    from: f64,
    to: f64,
    /// The read's time and error.
    at: f64,
    why: String,
}

impl SensorEnergy {
    /// Every reading `log` holds, indexed.
    pub fn of(log: &SensorLog) -> Self {
        Self::of_samples(log, &log.samples)
    }

    /// `samples` of `log`'s sensor, indexed.
    fn of_samples(log: &SensorLog, samples: &[Sample]) -> Self {
        // Fresh, valid readings only: a stale reading repeats an earlier conversion or counter
        // update, and an error has no value.
        let fresh = || {
            samples.iter().filter_map(|s| match &s.reading {
                Ok(r) if !r.stale => Some((s.t, r)),
                _ => None,
            })
        };
        let mut counter: Vec<CounterPoint> = fresh()
            .filter_map(|(t, r)| r.energy_j.map(|joules| CounterPoint { t, joules }))
            .collect();
        let mut points: Vec<PowerPoint> = fresh()
            .map(|(t, r)| PowerPoint { t, watts: r.watts })
            .collect();
        let mut instant: Vec<PowerPoint> = samples
            .iter()
            .filter_map(|s| {
                let watts = s.reading.as_ref().ok()?.instant_watts?;
                Some(PowerPoint { t: s.t, watts })
            })
            .collect();
        // Fresh values are stamped at their centre, which keeps them in order; sort anyway,
        // since the integrals depend on it.
        counter.sort_by(|a, b| a.t.total_cmp(&b.t));
        points.sort_by(|a, b| a.t.total_cmp(&b.t));
        instant.sort_by(|a, b| a.t.total_cmp(&b.t));
        let period = log.update_period.as_secs_f64();
        let breaks = samples
            .iter()
            .filter_map(|s| match &s.reading {
                Err(ReadError::CounterBreak(why)) => {
                    let after = counter.partition_point(|p| p.t <= s.t);
                    let from = after
                        .checked_sub(1)
                        .map_or(f64::NEG_INFINITY, |i| counter[i].t);
                    let to = counter.get(after).map_or(f64::INFINITY, |p| p.t);
                    Some(CounterBreak {
                        from,
                        to,
                        at: s.t,
                        why: why.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        Self {
            breaks,
            integrates: log.integrating,
            integrating: log.integrating && counter.is_empty(),
            counter,
            points,
            instant,
            crosscheck: log.crosscheck.clone(),
            min_window_s: log.min_window_s,
            max_gap: GAP_PERIODS * period.max(1e-3),
            period,
            saturated: fresh()
                .filter(|(_, r)| r.saturated)
                .map(|(t, _)| t)
                .collect(),
            errors: samples
                .iter()
                .filter(|s| s.reading.is_err())
                .map(|s| s.t)
                .collect(),
            impossible: fresh()
                .filter_map(|(t, r)| Some((t, log.limits.judge(r)?)))
                .collect(),
        }
    }

    /// Adds `later`, the sensor's readings after those indexed: what one index of all of them
    /// would hold. The counter's breaks on the seam get their neighbours across it.
    fn append(&mut self, mut later: SensorEnergy) {
        if let Some(last) = self.counter.last() {
            for b in later
                .breaks
                .iter_mut()
                .filter(|b| b.from == f64::NEG_INFINITY)
            {
                b.from = last.t;
            }
        }
        if let Some(next) = later.counter.first() {
            for b in self.breaks.iter_mut().filter(|b| b.to == f64::INFINITY) {
                b.to = next.t;
            }
        }
        joined(&mut self.counter, later.counter, |p| p.t);
        joined(&mut self.points, later.points, |p| p.t);
        joined(&mut self.instant, later.instant, |p| p.t);
        joined(&mut self.saturated, later.saturated, |t| *t);
        joined(&mut self.errors, later.errors, |t| *t);
        joined(&mut self.impossible, later.impossible, |(t, _)| *t);
        joined(&mut self.breaks, later.breaks, |b| b.at);
        self.integrating = self.integrates && self.counter.is_empty();
    }

    /// Drops what readings before `t` gave: the index of the readings from `t` on.
    fn release_before(&mut self, t: f64) {
        fn from<T>(v: &mut Vec<T>, t: f64, at: impl Fn(&T) -> f64) {
            let n = v.partition_point(|x| at(x) < t);
            v.drain(..n);
        }
        from(&mut self.counter, t, |p| p.t);
        from(&mut self.points, t, |p| p.t);
        from(&mut self.instant, t, |p| p.t);
        from(&mut self.saturated, t, |t| *t);
        from(&mut self.errors, t, |t| *t);
        from(&mut self.impossible, t, |(t, _)| *t);
        from(&mut self.breaks, t, |b| b.at);
        // A break whose last update before it went has none held before it.
        for b in &mut self.breaks {
            if b.from < t {
                b.from = f64::NEG_INFINITY;
            }
        }
        self.integrating = self.integrates && self.counter.is_empty();
    }

    /// Energy over `(start, end)` with its validity judged against `spec`.
    pub fn checked(&self, (start, end): (f64, f64), spec: &ValiditySpec) -> CheckedWindow {
        let energy = self.window(start, end);
        let within = |times: &[f64]| times.iter().filter(|t| (start..=end).contains(*t)).count();
        let readings = WindowReadings {
            saturated: within(&self.saturated),
            errors: within(&self.errors),
        };
        let impossible = self
            .impossible
            .iter()
            .find(|(t, _)| (start..=end).contains(t));
        let verdict = match (self.break_in(start, end), impossible) {
            (Some(b), _) => Err(format!("{}, read at {:.3} s", b.why, b.at)),
            (None, Some((t, why))) => Err(format!("a reading at {t:.3} s of {why}")),
            (None, None) => validity::check(
                energy.as_ref(),
                readings,
                (start, end),
                self.period,
                self.counted(),
                spec,
            ),
        }
        .and_then(|()| match self.min_window_s {
            // An averaged figure lags the load by half its averaging time: only a long
            // window makes that lag small against the window.
            Some(min) if end - start < min => Err(format!(
                "short window: {:.3} s of a power figure averaged over up to 1 s (windows of \
                 at least {min} s)",
                end - start
            )),
            _ => Ok(()),
        })
        .and_then(|()| {
            let mean = energy.as_ref().map(|e| e.mean_watts);
            match mean.and_then(crate::sensor::limits::too_little) {
                Some(why) => Err(format!("mean {why}")),
                None => Ok(()),
            }
        });
        let inside = |p: &&PowerPoint| (start..=end).contains(&p.t);
        let watts: Vec<f64> = self.points.iter().filter(inside).map(|p| p.watts).collect();
        CheckedWindow {
            crosscheck: self.crosscheck(start, end, energy.as_ref(), spec),
            watts_se: Spread::of(&watts).and_then(|s| s.std_error),
            energy,
            expected: validity::expected_fresh(end - start, self.period, spec),
            invalid: verdict.err(),
            parts: None,
        }
    }

    /// The energy counter's `counted` energy over `[start, end]` against the instant power
    /// read beside it, integrated over the same window by the same trapezoids as any power
    /// sensor's: (instant − counter) / counter, percent. `None` for a sensor without such a
    /// check; why, where there is none (no instant power field, too few instant readings).
    pub fn crosscheck(
        &self,
        start: f64,
        end: f64,
        counted: Option<&WindowEnergy>,
        spec: &ValiditySpec,
    ) -> Option<Result<f64, String>> {
        match self.crosscheck.as_ref()? {
            Crosscheck::Absent(why) => return Some(Err(why.clone())),
            Crosscheck::InstantPower => {}
        }
        let check = || -> Result<f64, String> {
            let counter = counted
                .filter(|_| self.counted())
                .filter(|c| c.joules > 0.0)
                .ok_or("no counter energy for the window")?;
            let instant = energy::integrate(&self.instant, start, end, self.max_gap)
                .filter(|e| e.samples > 0)
                .ok_or("no instant power readings in the window")?;
            if instant.coverage < spec.min_coverage {
                return Err(format!(
                    "instant power readings cover {:.3} of the window (largest gap {:.1} ms)",
                    instant.coverage,
                    instant.largest_gap_s * 1e3
                ));
            }
            Ok((instant.joules - counter.joules) / counter.joules * 100.0)
        };
        Some(check())
    }

    /// How far before a window a reading can still count for it (coverage looks one gap
    /// back, the edge shares one update interval): readings older than this before every
    /// window still open can go.
    pub(crate) fn reach(&self) -> f64 {
        self.max_gap + self.period
    }

    /// Whether energy comes from the sensor's counter.
    pub fn counted(&self) -> bool {
        self.counter.len() >= 2
    }

    /// The first stretch where the counter lost count that `[start, end]` draws on: the
    /// window's own updates and the update intervals that hold its edges.
    fn break_in(&self, start: f64, end: f64) -> Option<&CounterBreak> {
        self.breaks.iter().find(|b| b.from < end && b.to > start)
    }

    /// Energy over `[start, end]`. A counter that reset or lost count where the window draws
    /// on it gives none rather than a wrong one.
    pub fn window(&self, start: f64, end: f64) -> Option<WindowEnergy> {
        if self.counted() {
            if self.break_in(start, end).is_some() {
                return None;
            }
            energy::integrate_counter(&self.counter, start, end, self.max_gap)
        } else if self.integrating {
            // The counter is summed from a fixed number of values before the window, not from
            // the first value held: a window settled while a run streams (older values already
            // released) then adds up the very same numbers as one from every reading, to the
            // bit.
            let from = self.points.partition_point(|p| p.t <= start);
            let to = self.points.partition_point(|p| p.t < end);
            let slice = &self.points[from.saturating_sub(INTEGRATED_MARGIN)
                ..(to + INTEGRATED_MARGIN).min(self.points.len())];
            energy::integrate_counter(&energy::integrated(slice), start, end, self.max_gap)
        } else {
            energy::integrate(&self.points, start, end, self.max_gap)
        }
    }
}

/// `later` after `v`, kept in time order (`at`): appended, or merged where a reading came
/// out of order.
fn joined<T>(v: &mut Vec<T>, later: Vec<T>, at: impl Fn(&T) -> f64) {
    let in_order = match (v.last(), later.first()) {
        (Some(a), Some(b)) => at(a) <= at(b),
        _ => true,
    };
    v.extend(later);
    if !in_order {
        v.sort_by(|a, b| at(a).total_cmp(&at(b)));
    }
}

/// Every sensor's readings of a run, indexed ([`SensorEnergy`]) and kept up to date as the run
/// grows: each update indexes only the readings handed over since the last one and drops those
/// the record released, so a streamed run's checkpoint costs what is new, not the run so far.
/// A checkpoint builds it once and hands it to [`crate::settled::settle`],
/// [`summarize_with`] and [`phase_energy_with`].
#[derive(Default)]
pub struct Energies {
    sensors: Vec<Indexed>,
}

struct Indexed {
    energy: SensorEnergy,
    /// The sensor's readings indexed so far, those released since included.
    seen: usize,
}

impl Energies {
    /// Every reading `record` holds, indexed.
    pub fn of(record: &RunRecord) -> Self {
        let mut energies = Self::default();
        energies.update(record);
        energies
    }

    /// Indexes the readings `record` took since the last update and drops those it released.
    pub fn update(&mut self, record: &RunRecord) {
        self.sensors.truncate(record.sensors.len());
        for (sensor, log) in record.sensors.iter().enumerate() {
            let released = record.settled.released(sensor);
            let readings = released + log.samples.len();
            match self.sensors.get_mut(sensor) {
                // Only what came since; a record that lost readings unseen is indexed anew.
                Some(held) if (released..=readings).contains(&held.seen) => {
                    let new = &log.samples[held.seen - released..];
                    if !new.is_empty() {
                        held.energy.append(SensorEnergy::of_samples(log, new));
                    }
                    held.seen = readings;
                }
                _ => {
                    let indexed = Indexed {
                        energy: SensorEnergy::of(log),
                        seen: readings,
                    };
                    match self.sensors.get_mut(sensor) {
                        Some(held) => *held = indexed,
                        None => self.sensors.push(indexed),
                    }
                }
            }
            let held = &mut self.sensors[sensor].energy;
            match log.samples.first() {
                Some(first) => held.release_before(first.t),
                None => held.release_before(f64::INFINITY),
            }
        }
    }

    /// Sensor `sensor`'s index.
    pub fn sensor(&self, sensor: usize) -> &SensorEnergy {
        &self.sensors[sensor].energy
    }

    /// Whether every reading `record` holds, and no other, is indexed.
    fn current(&self, record: &RunRecord) -> bool {
        self.sensors.len() == record.sensors.len()
            && (self.sensors.iter().enumerate()).all(|(i, s)| s.seen == record.readings(i))
    }
}

/// Each sensor's windows of a run: a settled one from the record's
/// [`crate::settled::Settled`], any other
/// integrated from the readings the record still holds.
struct Windows<'a> {
    record: &'a RunRecord,
    energies: &'a Energies,
}

impl<'a> Windows<'a> {
    fn of(record: &'a RunRecord, energies: &'a Energies) -> Self {
        debug_assert!(
            energies.current(record),
            "the index is behind the record: call Energies::update"
        );
        Self { record, energies }
    }

    fn checked(&self, sensor: usize, w: (f64, f64)) -> CheckedWindow {
        match self.record.settled.get(sensor, w) {
            Some(settled) => settled.clone(),
            None => self
                .energies
                .sensor(sensor)
                .checked(w, &self.record.rig.validity),
        }
    }

    /// The window's energy and its cross-check ([`SensorEnergy::crosscheck`]).
    fn energy_checked(
        &self,
        sensor: usize,
        (start, end): (f64, f64),
    ) -> (Option<WindowEnergy>, Option<Result<f64, String>>) {
        match self.record.settled.get(sensor, (start, end)) {
            Some(settled) => (settled.energy, settled.crosscheck.clone()),
            None => {
                let e = self.energies.sensor(sensor);
                let energy = e.window(start, end);
                let check = e.crosscheck(start, end, energy.as_ref(), &self.record.rig.validity);
                (energy, check)
            }
        }
    }
}

/// Energy of one phase as one sensor saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseEnergy {
    pub phase: Phase,
    /// The rig's backend index (none for the idle baseline).
    pub backend: Option<usize>,
    /// 1-based repetition of the protocol (none for the idle baseline).
    pub repetition: Option<usize>,
    pub sensor_index: usize,
    pub start_s: f64,
    pub end_s: f64,
    #[serde(flatten)]
    pub energy: WindowEnergy,
    /// The energy counter against instant power over the phase, percent, where computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instant_vs_counter_pct: Option<f64>,
}

/// Energy per phase and sensor, for every phase that ended.
pub fn phase_energy(record: &RunRecord) -> Vec<PhaseEnergy> {
    phase_energy_with(record, &Energies::of(record))
}

/// [`phase_energy`] from `energies`, brought up to date with `record`.
pub fn phase_energy_with(record: &RunRecord, energies: &Energies) -> Vec<PhaseEnergy> {
    let windows = Windows::of(record, energies);
    let mut out = Vec::new();
    for sensor_index in 0..record.sensors.len() {
        for span in record.phases.iter().filter(|s| s.end.is_finite()) {
            let (energy, check) = windows.energy_checked(sensor_index, (span.start, span.end));
            if let Some(e) = energy {
                out.push(PhaseEnergy {
                    phase: span.phase,
                    backend: span.backend,
                    repetition: span.repetition,
                    sensor_index,
                    start_s: span.start,
                    end_s: span.end,
                    energy: e,
                    instant_vs_counter_pct: check.and_then(Result::ok),
                });
            }
        }
    }
    out
}

/// One backend's repetition as one sensor (or the total, or no sensor) measured it.
// One piece because its body is the row's one struct literal, a line per column: its figures
// are worked out in the helpers below, and a column left to a `Default` would go unnoticed.
fn row(record: &RunRecord, b: &BackendResult, at: &At, sensor: Option<Measured>) -> SummaryRow {
    let run = at.run;
    let latencies_ms: Vec<f64> = run.latencies.iter().map(|l| l.seconds * 1e3).collect();
    let lat = Summary::of(&latencies_ms);
    let inferences = run.inferences();
    let sensor = sensor.as_ref();
    let (timed, idle) = (
        sensor.and_then(|m| m.timed.as_ref()),
        sensor.and_then(|m| m.idle.as_ref()),
    );
    // Figures come only from valid windows; the raw window feeds the diagnostics.
    let timed_span = timed.and_then(CheckedWindow::valid);
    let timed_raw = timed.and_then(|w| w.energy);
    let about = sensor.map(|m| &m.sensor);
    let joules = timed_span
        .map(|w| w.joules)
        .filter(|j| *j > 0.0 && inferences > 0);
    let (net_joules, net_note) = net_joules(run, sensor, inferences);
    let crosscheck = timed.and_then(|w| w.crosscheck.clone());
    let top1 = run.top.first();
    let origin = about.map(|a| a.origin);
    SummaryRow {
        rig: record.rig.name.clone(),
        backend_index: at.backend_index,
        repetition: Repetition::One(at.repetition),
        repetitions: 1,
        backend: b.spec.kind().as_str().into(),
        engine: b.engine.engine.clone(),
        engine_version: b.engine.version.clone(),
        accelerator: b.engine.accelerator.clone(),
        model: b.model.name.clone(),
        model_sha256: b.model.sha256.clone(),
        image: b.image.name.clone(),
        threads: b.engine.threads,
        scenario: record.rig.protocol.scenario.as_str().into(),
        batch: run.batch,
        runs: run.latencies.len(),
        inferences,
        fps: run.fps(),
        latency_ms_mean: lat.map(|s| s.mean),
        latency_ms_median: lat.map(|s| s.median),
        latency_ms_p90: lat.map(|s| s.p90),
        latency_ms_p99: lat.map(|s| s.p99),
        sensor_index: sensor.map(|m| m.index),
        sensor: about.map_or("none".into(), |a| a.kind.clone()),
        rail: about.map_or(String::new(), |a| a.rail.clone()),
        simulated: origin == Some(Origin::Simulated),
        origin,
        idle_watts: idle.and_then(CheckedWindow::valid).map(|w| w.mean_watts),
        mean_watts: timed_span.map(|w| w.mean_watts),
        joules_per_inference: joules.map(|j| j / inferences as f64),
        inferences_per_joule: joules.map(|j| inferences as f64 / j),
        net_inferences_per_joule: net_joules.map(|j| inferences as f64 / j),
        energy_uncertainty_pct: about.and_then(|a| a.uncertainty).map(|u| u * 100.0),
        fps_sd: None,
        fps_ci_low: None,
        fps_ci_high: None,
        fps_cv: None,
        mean_watts_sd: None,
        mean_watts_ci_low: None,
        mean_watts_ci_high: None,
        mean_watts_cv: None,
        inferences_per_joule_sd: None,
        inferences_per_joule_ci_low: None,
        inferences_per_joule_ci_high: None,
        inferences_per_joule_cv: None,
        net_inferences_per_joule_sd: None,
        net_inferences_per_joule_ci_low: None,
        net_inferences_per_joule_ci_high: None,
        net_inferences_per_joule_cv: None,
        inferences_per_joule_total_low: None,
        inferences_per_joule_total_high: None,
        samples: timed_raw.map_or(0, |w| w.samples),
        expected_samples: timed.map_or(0, |w| w.expected),
        sample_rate_hz: timed_raw.map(|w| w.sample_rate_hz),
        coverage: timed_raw.map(|w| w.coverage),
        largest_gap_ms: timed_raw.map(|w| w.largest_gap_s * 1e3),
        idle_coverage: idle.and_then(|w| w.energy).map(|w| w.coverage),
        top1_class: top1.map(|p| p.class),
        top1_label: top1.map_or(String::new(), |p| b.labels.get(p.class).to_string()),
        top1_score: top1.map(|p| p.score),
        top1_expected: (b.image.expected_top1.as_ref()).map_or(String::new(), |t| t.label.clone()),
        top1_agrees: top1_agrees(record, b, top1),
        status: row_status(record, run, sensor, joules),
        throttled: run.machine_verdict().and_then(|v| v.throttled),
        engine_note: b.engine_note.clone().unwrap_or_default(),
        instant_vs_counter_pct: crosscheck.clone().and_then(Result::ok),
        instant_vs_counter_note: crosscheck.and_then(Result::err).unwrap_or_default(),
        sampler_cpu_pct: sensor.and_then(|m| sampler_cpu_pct(record, at, m.index)),
        net_note,
        unchecked_prediction: b.unchecked_prediction().unwrap_or_default(),
    }
}

/// The net energy of the timed window (its power above the idle baseline's, over its
/// length), or why it is withheld; none where a window is missing or invalid or nothing was
/// classified.
fn net_joules(
    run: &TimedRun,
    sensor: Option<&Measured>,
    inferences: usize,
) -> (Option<f64>, String) {
    let net = match sensor.and_then(|m| Some((m.timed.as_ref()?, m.idle.as_ref()?, &m.sensor))) {
        Some((timed, idle, about)) if inferences > 0 => {
            Net::of(timed, idle, about.origin, about.uncertainty)
        }
        _ => Net::None,
    };
    match (net, run.window) {
        (Net::Figure(watts), Some((start, end))) => (Some(watts * (end - start)), String::new()),
        (Net::Withheld(why), _) => (None, why),
        _ => (None, String::new()),
    }
}

/// Whether every backend that classified the same image gave the same top-1 class.
fn top1_agrees(record: &RunRecord, b: &BackendResult, top1: Option<&Prediction>) -> bool {
    record
        .backends
        .iter()
        .filter(|other| other.image.sha256 == b.image.sha256)
        // A backend that classified nothing (interrupted before it ran) has no answer to
        // disagree with.
        .filter_map(|other| other.last_run().and_then(|r| r.top.first()))
        .all(|theirs| Some(theirs.class) == top1.map(|p| p.class))
}

/// The row's status: its windows' and run's, and not ok for a measured row without figures.
fn row_status(
    record: &RunRecord,
    run: &TimedRun,
    sensor: Option<&Measured>,
    joules: Option<f64>,
) -> Status {
    match status(record, run, sensor) {
        // Whatever let the windows pass, a measured row is ok only with its figures.
        Status::Ok if sensor.is_some() && joules.is_none() => Status::Invalid(
            "no energy per inference: the timed window's energy is not above 0 J".into(),
        ),
        status => status,
    }
}

/// Power drawn above the idle baseline, where it can be told from the idle baseline.
#[derive(Debug, Clone, PartialEq)]
enum Net {
    /// Timed minus idle mean power, watts: beyond its uncertainty.
    Figure(f64),
    /// Why there is no figure though both windows are valid.
    Withheld(String),
    /// A window is missing or invalid (the status says so) or nothing was classified.
    None,
}

/// The coverage factor on the standard error of the difference: about 95 % for a normal
/// error, the level of every interval the rig prints.
const NET_SPREAD_FACTOR: f64 = 2.0;

impl Net {
    /// The timed window's mean power less the idle window's, given only where it exceeds its
    /// uncertainty U = u × (P_timed + P_idle) + 2 × √(se_timed² + se_idle²): the sensor's
    /// stated relative bound u on each of the two means, added (a bound, not a standard
    /// error, and one sensor's offset error does not cancel in a difference), plus twice the
    /// standard error of the difference from the windows' own readings. A nominal sensor
    /// states one figure for both, so it has none.
    fn of(
        timed: &CheckedWindow,
        idle: &CheckedWindow,
        origin: Origin,
        uncertainty: Option<f64>,
    ) -> Self {
        let (Some(t), Some(i)) = (timed.valid(), idle.valid()) else {
            return Net::None;
        };
        if origin == Origin::Nominal {
            return Net::Withheld(
                "no net figure: a nominal sensor states the same watts for the timed and the \
                 idle window, it measures neither"
                    .into(),
            );
        }
        let difference = t.mean_watts - i.mean_watts;
        let instrument = uncertainty.unwrap_or(0.0) * (t.mean_watts + i.mean_watts);
        let spread = NET_SPREAD_FACTOR
            * timed
                .watts_se
                .unwrap_or(0.0)
                .hypot(idle.watts_se.unwrap_or(0.0));
        let margin = instrument + spread;
        if margin <= 0.0 {
            return Net::Withheld(format!(
                "no net figure: neither a stated sensor uncertainty nor spread in the readings \
                 bounds timed − idle {difference:.4} W"
            ));
        }
        if difference > margin {
            return Net::Figure(difference);
        }
        Net::Withheld(format!(
            "no net figure: timed − idle {difference:.4} W is within its uncertainty ±{margin:.4} \
             W ({} readings' spread ±{spread:.4} W)",
            match uncertainty {
                Some(u) => format!(
                    "sensor ±{:.2} % of each mean ±{instrument:.4} W,",
                    u * 100.0
                ),
                None => "no stated sensor uncertainty,".into(),
            }
        ))
    }
}

/// CPU the sampler thread of sensor `index` (past the last sensor: all of them) used over the
/// timed window of `at`, as a share of one core, percent.
fn sampler_cpu_pct(record: &RunRecord, at: &At, index: usize) -> Option<f64> {
    let span = record.phases.iter().find(|s| {
        s.phase == Phase::Timed
            && s.backend == Some(at.backend_index)
            && s.repetition == Some(at.repetition)
    })?;
    if index < record.sensors.len() {
        return span.sampler_cpu_pct(index);
    }
    (0..record.sensors.len())
        .map(|i| span.sampler_cpu_pct(i))
        .sum::<Option<f64>>()
}

fn status(record: &RunRecord, run: &TimedRun, sensor: Option<&Measured>) -> Status {
    if let Some(e) = &run.error {
        return Status::Error(e.clone());
    }
    if let Some(missing) = sensor.and_then(|m| m.sensor.missing.as_deref()) {
        return Status::SensorMissing(missing.into());
    }
    if let Some(failure) = sensor.and_then(|m| m.sensor.failure.as_deref()) {
        return Status::SensorFailed(failure.into());
    }
    if run.interrupted
        || (record.interrupted && run.latencies.len() < record.rig.protocol.runs as usize)
    {
        return Status::Interrupted;
    }
    let Some(m) = sensor else {
        return Status::Ok;
    };
    let Some(timed) = &m.timed else {
        return Status::Invalid("the timed window never began".into());
    };
    if let Some(why) = &timed.invalid {
        return match run.window {
            Some((_, end)) if lost_to_the_stop(record, end) => Status::Interrupted,
            _ => Status::Invalid(why.clone()),
        };
    }
    if let Some(why) = m.idle.as_ref().and_then(|w| w.invalid.as_ref()) {
        return Status::Invalid(format!("idle baseline: {why}"));
    }
    Status::Ok
}

/// Whether a window ending at `end` lost readings to the run's stop rather than to a sensor:
/// the run was stopped, and some sensor's readings end before the window does. A killed run's
/// folder lacks its last half second of readings (they were not yet flushed), so a repetition
/// that finished just before the kill has a window without its tail; that is the kill's doing,
/// not the sensor's, and the window is `interrupted`, not `invalid`.
fn lost_to_the_stop(record: &RunRecord, end: f64) -> bool {
    record.interrupted
        && record
            .sensors
            .iter()
            // A sensor that never opened has no readings for any stop to cut.
            .filter(|s| s.missing.is_none())
            .any(|s| !matches!(s.samples.last(), Some(last) if last.t >= end))
}

/// A record to summarise in tests: a rig, a backend of it with given runs, sensor logs.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::protocol::TimedRun;
    use crate::record::{BackendResult, RecordedImage, RecordedModel, RunRecord};
    use crate::rig::{BackendSpec, Rig};
    use crate::sampler::{Sample, SensorLog};
    use crate::sensor::{Origin, SensorInfo};
    use std::time::Duration;

    /// Rig `t` with one tflite backend and `protocol` as its `[protocol]` table.
    pub fn rig(protocol: &str) -> Rig {
        toml::from_str(&format!(
            "name = \"t\"\n[protocol]\n{protocol}\n\
             [[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n"
        ))
        .unwrap()
    }

    /// Backend `spec` with model `m`, image `i` and engine `fake`, and its `repetitions`.
    pub fn backend(spec: &BackendSpec, repetitions: Vec<TimedRun>) -> BackendResult {
        BackendResult {
            spec: spec.clone(),
            model: RecordedModel {
                name: "m".into(),
                sha256: String::new(),
                label_file: None,
            },
            image: RecordedImage {
                name: "i".into(),
                sha256: String::new(),
                expected_top1: None,
            },
            engine: crate::backend::EngineInfo {
                engine: "fake".into(),
                version: "0".into(),
                accelerator: "none".into(),
                threads: 1,
            },
            labels: Default::default(),
            engine_note: None,
            signature: None,
            repetitions,
        }
    }

    /// A simulated sensor's log on `rail`.
    pub fn log(rail: &str, update_period: Duration, samples: Vec<Sample>) -> SensorLog {
        SensorLog {
            info: SensorInfo {
                kind: "test".into(),
                rail: rail.into(),
                origin: Origin::Simulated,
                detail: String::new(),
            },
            update_period,
            samples,
            failure: None,
            missing: None,
            uncertainty: None,
            cpu_time: Duration::ZERO,
            realtime: false,
            integrating: false,
            crosscheck: None,
            min_window_s: None,
            limits: Default::default(),
        }
    }

    pub fn record(rig: Rig, backends: Vec<BackendResult>, sensors: Vec<SensorLog>) -> RunRecord {
        RunRecord {
            started: chrono::Utc::now(),
            sensor_choice: None,
            ranging: Vec::new(),
            rig_text: String::new(),
            phases: vec![],
            backends,
            rig,
            sensors,
            interrupted: false,
            settled: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{CoolingDevice, MachineState, Reading, Throttle};
    use crate::protocol::Latency;

    /// A machine whose ACPI processor cooling device is at `state`.
    fn machine(state: u64) -> MachineState {
        MachineState {
            cooling_devices: vec![CoolingDevice {
                device: "cooling_device0".into(),
                kind: Reading::Known("Processor".into()),
                cur_state: Reading::Known(state),
            }],
            ..MachineState::default()
        }
    }

    /// A sensor-less run of two repetitions with the given machine states at their edges.
    fn record(states: [(Option<u64>, Option<u64>); 2]) -> RunRecord {
        let rig = fixtures::rig("repeat = 2\nruns = 2");
        let runs = states
            .iter()
            .map(|(start, end)| TimedRun {
                latencies: vec![
                    Latency {
                        start: 0.0,
                        seconds: 0.01
                    };
                    2
                ],
                window: Some((0.0, 0.02)),
                batch: 1,
                machine_start: start.map(machine),
                machine_end: end.map(machine),
                ..TimedRun::default()
            })
            .collect();
        let backend = fixtures::backend(&rig.backends[0], runs);
        fixtures::record(rig, vec![backend], vec![])
    }

    #[test]
    fn a_throttled_window_is_flagged_and_stays_ok() {
        let rows = summarize(&record([(Some(0), Some(0)), (Some(0), Some(2))]));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].throttled, Some(Throttle::No));
        assert_eq!(
            rows[1].throttled,
            Some(Throttle::Yes(
                "cooling_device0 (Processor) at state 2 at end".into()
            ))
        );
        assert!(rows.iter().all(|r| r.status == Status::Ok));
        // The aggregate names the repetition that throttled.
        assert_eq!(
            rows[2].throttled,
            Some(Throttle::Yes(
                "1 of 2 repetitions (repetition 2: cooling_device0 (Processor) at state 2 at end)"
                    .into()
            ))
        );
        assert_eq!(rows[2].status, Status::Ok);
    }

    #[test]
    fn without_states_or_signals_the_verdict_is_unknown() {
        let rows = summarize(&record([(None, None), (Some(0), Some(0))]));
        assert_eq!(rows[0].throttled, None);
        assert_eq!(rows[1].throttled, Some(Throttle::No));
        // One unknown repetition makes the aggregate unknown, not "no".
        assert_eq!(rows[2].throttled, None);
        let empty = MachineState::default();
        let mut r = record([(None, None), (None, None)]);
        r.backends[0].repetitions[0].machine_start = Some(empty.clone());
        r.backends[0].repetitions[0].machine_end = Some(empty);
        assert_eq!(summarize(&r)[0].throttled, None);
    }

    /// A counter sensor's log over 0 to 6 s: 100 W, the counter updating every 0.1 s and read
    /// three times per update, instant power 3 % low on every read where the sensor has it.
    fn counter_log(crosscheck: Option<Crosscheck>) -> SensorLog {
        let instant = matches!(crosscheck, Some(Crosscheck::InstantPower));
        let mut samples = Vec::new();
        for i in 0..60 {
            let t = i as f64 * 0.1;
            for (k, dt) in [0.0, 0.03, 0.06].into_iter().enumerate() {
                samples.push(crate::sampler::Sample {
                    t: t + dt,
                    reading: Ok(crate::sensor::Reading {
                        watts: 100.0,
                        energy_j: Some(100.0 * t),
                        stale: k > 0,
                        instant_watts: instant.then_some(97.0),
                        ..Default::default()
                    }),
                });
            }
        }
        let mut log = fixtures::log("GPU", std::time::Duration::from_millis(100), samples);
        log.crosscheck = crosscheck;
        log
    }

    /// One repetition timed from 1 to 4 s, measured by `log`, summarized.
    fn counted(log: SensorLog) -> Vec<SummaryRow> {
        summarize(&counted_record(log))
    }

    /// The record [`counted`] summarizes.
    fn counted_record(log: SensorLog) -> RunRecord {
        let rig = fixtures::rig("runs = 2");
        let run = TimedRun {
            latencies: vec![
                Latency {
                    start: 1.0,
                    seconds: 0.01
                };
                2
            ],
            window: Some((1.0, 4.0)),
            batch: 1,
            ..TimedRun::default()
        };
        let backend = fixtures::backend(&rig.backends[0], vec![run]);
        fixtures::record(rig, vec![backend], vec![log])
    }

    #[test]
    fn the_counter_is_cross_checked_against_instant_power_over_the_same_window() {
        let rows = counted(counter_log(Some(Crosscheck::InstantPower)));
        assert_eq!(rows[0].status, Status::Ok);
        let watts = rows[0].mean_watts.unwrap();
        assert!((watts - 100.0).abs() < 1e-9, "{watts}");
        let pct = rows[0].instant_vs_counter_pct.unwrap();
        assert!((pct + 3.0).abs() < 1e-9, "{pct}");
        assert_eq!(rows[0].instant_vs_counter_note, "");
    }

    #[test]
    fn an_absent_cross_check_says_why_and_is_not_zero() {
        let why = "no instant power field on this GPU or driver (NVML_FI_DEV_POWER_INSTANT: \
                   Not Supported)";
        let rows = counted(counter_log(Some(Crosscheck::Absent(why.into()))));
        assert_eq!(rows[0].instant_vs_counter_pct, None);
        assert_eq!(rows[0].instant_vs_counter_note, why);
        // A sensor without such a check (an INA219, say) leaves both empty.
        let rows = counted(counter_log(None));
        assert_eq!(rows[0].instant_vs_counter_pct, None);
        assert_eq!(rows[0].instant_vs_counter_note, "");
        assert_eq!(rows[0].status, Status::Ok);
    }

    /// A repetition that finished just before a kill, whose last readings the kill kept off
    /// the disk: `interrupted`, not blamed on the sensor; the same window in a run that was
    /// not stopped is `invalid` (issue 30).
    #[test]
    fn readings_lost_to_a_stop_make_a_window_interrupted_not_invalid() {
        let mut log = counter_log(None);
        log.samples.retain(|s| s.t < 2.0);
        let mut record = counted_record(log);
        let rows = summarize(&record);
        assert!(
            matches!(&rows[0].status, Status::Invalid(_)),
            "{:?}",
            rows[0].status
        );
        record.interrupted = true;
        assert_eq!(summarize(&record)[0].status, Status::Interrupted);
    }

    #[test]
    fn a_counter_that_lost_count_invalidates_the_windows_that_use_it() {
        let mut log = counter_log(None);
        let why = format!(
            "{}the counter went backwards (from 9 to 1 µJ)",
            crate::sensor::COUNTER_BREAK
        );
        log.samples.push(crate::sampler::Sample {
            t: 2.53,
            reading: Err(ReadError::CounterBreak(why.clone())),
        });
        let rows = counted(log.clone());
        assert_eq!(
            rows[0].status,
            Status::Invalid(format!("{why}, read at 2.530 s"))
        );
        assert_eq!(rows[0].inferences_per_joule, None);
        // The stretch lost is 2.5 to 2.6 s, between the counter's updates around the read: a
        // window whose edge interval holds it has no energy, one clear of it keeps its own.
        let energy = SensorEnergy::of(&log);
        let spec = ValiditySpec::default();
        for (window, lost) in [
            ((2.55, 4.0), true),
            ((1.0, 2.55), true),
            ((2.6, 5.0), false),
            ((1.0, 2.5), false),
        ] {
            let checked = energy.checked(window, &spec);
            assert_eq!(
                checked.invalid.is_some(),
                lost,
                "{window:?}: {:?}",
                checked.invalid
            );
            assert_eq!(checked.energy.is_none(), lost, "{window:?}");
        }
    }

    /// What a net-figure test measures: one sensor read every 10 ms, `idle` W at rest and
    /// `timed[k]` W around repetition k + 1, each reading `noise` W above or below, in turn.
    struct Load {
        idle: f64,
        timed: Vec<f64>,
        noise: f64,
        origin: Origin,
        uncertainty: Option<f64>,
        /// Inferences per repetition, each in a 1 s timed window.
        inferences: usize,
    }

    impl Load {
        /// Repetition k (from 0) is timed from 1.5 + 2k to 2.5 + 2k s, after an idle
        /// baseline from 0 to 1 s, its power level held from 0.3 s before to 0.3 s after.
        fn record(&self) -> RunRecord {
            use crate::clock::{PhaseSpan, Slot};
            let reps = self.timed.len();
            let rig = fixtures::rig(&format!("runs = {}\nrepeat = {reps}", self.inferences));
            let window = |k: usize| (1.5 + 2.0 * k as f64, 2.5 + 2.0 * k as f64);
            let runs = (0..reps)
                .map(|k| TimedRun {
                    latencies: vec![
                        Latency {
                            start: window(k).0,
                            seconds: 1.0 / self.inferences as f64
                        };
                        self.inferences
                    ],
                    window: Some(window(k)),
                    batch: 1,
                    ..TimedRun::default()
                })
                .collect();
            let samples = (0..(100 + 200 * reps))
                .map(|i| {
                    let t = i as f64 * 0.01;
                    let level = (0..reps)
                        .find(|&k| (window(k).0 - 0.3..window(k).1 + 0.3).contains(&t))
                        .map_or(self.idle, |k| self.timed[k]);
                    let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                    crate::sampler::Sample {
                        t,
                        reading: Ok(crate::sensor::Reading {
                            watts: level + sign * self.noise,
                            ..Default::default()
                        }),
                    }
                })
                .collect();
            let mut log = fixtures::log("5V", std::time::Duration::from_millis(10), samples);
            log.info.origin = self.origin;
            log.uncertainty = self.uncertainty;
            let backend = fixtures::backend(&rig.backends[0], runs);
            let mut record = fixtures::record(rig, vec![backend], vec![log]);
            record.phases = std::iter::once(PhaseSpan::new(Phase::IdleBaseline, None, 0.0, 1.0))
                .chain((0..reps).map(|k| {
                    let slot = Slot {
                        backend: 0,
                        repetition: k + 1,
                    };
                    PhaseSpan::new(Phase::Timed, Some(slot), window(k).0, window(k).1)
                }))
                .collect();
            record
        }
    }

    /// The summary row of one repetition of 100 inferences (see [`Load`]).
    fn net_row(idle: f64, timed: f64, noise: f64, origin: Origin, u: Option<f64>) -> SummaryRow {
        let load = Load {
            idle,
            timed: vec![timed],
            noise,
            origin,
            uncertainty: u,
            inferences: 100,
        };
        summarize(&load.record()).remove(0)
    }

    /// An optional sensor that did not open has a row per backend and repetition, and an
    /// aggregate, without figures and with why; the total that names it is not formed; the
    /// sensor that measured keeps its figures, and none of it fails the run.
    #[test]
    fn a_missing_sensor_and_the_total_naming_it_say_why_and_have_no_figures() {
        let load = Load {
            idle: 2.5,
            timed: vec![4.5, 4.5],
            noise: 0.0,
            origin: Origin::Simulated,
            uncertainty: Some(0.01),
            inferences: 100,
        };
        let mut record = load.record();
        let with_sensors: crate::rig::Rig = toml::from_str(
            "name = \"t\"\ntotal = [\"5V\", \"Coral\"]\n[[backends]]\nkind = \"tflite\"\n\
             model = \"m\"\nimage = \"i\"\n[[sensors]]\nkind = \"ina219-sim\"\nrail = \"5V\"\n\
             shunt_ohms = 0.1\nmax_current_a = 3.2\n[[sensors]]\nkind = \"ina219\"\n\
             rail = \"Coral\"\ni2c_bus = \"/dev/i2c-9\"\naddress = 0x41\nshunt_ohms = 0.1\n\
             max_current_a = 3.2\noptional = true\n",
        )
        .unwrap();
        record.rig.sensors = with_sensors.sensors;
        record.rig.total = with_sensors.total;
        record.sensors.push(
            crate::sensor::Missing {
                info: crate::sensor::SensorInfo {
                    kind: "ina219".into(),
                    rail: "Coral".into(),
                    origin: Origin::Measured,
                    detail: String::new(),
                },
                why: "cannot open /dev/i2c-9: No such file or directory".into(),
            }
            .into(),
        );
        let rows = summarize(&record);
        let of = |sensor: &str| -> Vec<&SummaryRow> {
            rows.iter().filter(|r| r.sensor == sensor).collect()
        };
        // Repetitions 1 and 2, and the aggregate.
        for r in of("ina219-sim") {
            assert_eq!(r.status, Status::Ok, "{r:?}");
            assert!(r.inferences_per_joule.is_some());
        }
        let missing = of("ina219");
        assert_eq!(missing.len(), 3);
        for r in missing {
            assert_eq!(
                r.status.to_string(),
                "sensor missing: optional, did not open: cannot open /dev/i2c-9: No such file or \
                 directory"
            );
            assert_eq!((r.inferences_per_joule, r.mean_watts), (None, None));
            assert!(!r.status.fails_run());
        }
        let total = of(TOTAL_KIND);
        assert_eq!(total.len(), 3);
        for r in total {
            assert_eq!(r.rail, "5V + Coral");
            assert!(
                matches!(&r.status, Status::SensorMissing(why) if why.starts_with("no total: Coral \
                    did not open (cannot open /dev/i2c-9")),
                "{}",
                r.status
            );
            assert_eq!((r.inferences_per_joule, r.mean_watts), (None, None));
        }
        assert!(rows.iter().all(|r| !r.status.fails_run()));
        assert!(Status::SensorFailed("gone".into()).fails_run());
    }

    #[test]
    fn a_net_figure_needs_a_difference_beyond_its_uncertainty() {
        // 2 W above idle, ±1 %: 2 W against a margin of 0.07 W.
        let r = net_row(2.5, 4.5, 0.0, Origin::Simulated, Some(0.01));
        assert_eq!(r.status, Status::Ok);
        let net = r.net_inferences_per_joule.unwrap();
        assert!((net - 100.0 / 2.0).abs() < 1e-6, "{net}");
        assert_eq!(r.net_note, "");
        // 0.01 W above idle (a load that adds 2 mA at 5 V) against ±1 % of 2.51 + 2.5 W.
        let r = net_row(2.5, 2.51, 0.0, Origin::Simulated, Some(0.01));
        assert_eq!(r.status, Status::Ok);
        assert!(r.inferences_per_joule.is_some());
        assert_eq!(r.net_inferences_per_joule, None);
        assert_eq!(
            r.net_note,
            "no net figure: timed − idle 0.0100 W is within its uncertainty ±0.0501 W (sensor \
             ±1.00 % of each mean ±0.0501 W, readings' spread ±0.0000 W)"
        );
        // No stated uncertainty, readings ±0.5 W about their level: the spread decides.
        // se = 0.5 × √(n / (n − 1)) / √n for n = 101 readings in a window, about 0.050 W on
        // each side; twice their quadrature sum is 0.142 W.
        let r = net_row(2.5, 2.6, 0.5, Origin::Measured, None);
        assert_eq!(r.net_inferences_per_joule, None);
        assert!(
            r.net_note
                .contains("(no stated sensor uncertainty, readings' spread ±0.14"),
            "{}",
            r.net_note
        );
        let r = net_row(2.5, 2.8, 0.5, Origin::Measured, None);
        assert!(r.net_inferences_per_joule.is_some(), "{}", r.net_note);
    }

    #[test]
    fn a_nominal_sensor_has_no_net_figure() {
        // 180 W for both windows: the difference is zero or rounding (4e15 inf/J once).
        let r = net_row(180.0, 180.0 + 3e-14, 0.0, Origin::Nominal, None);
        assert_eq!(r.net_inferences_per_joule, None);
        assert!(
            r.net_note
                .contains("a nominal sensor states the same watts"),
            "{}",
            r.net_note
        );
        assert!(r.inferences_per_joule.is_some());
    }

    #[test]
    fn an_averaged_power_figure_needs_its_long_window() {
        let mut log = counter_log(None);
        log.min_window_s = Some(10.0);
        let rows = counted(log);
        assert_eq!(
            rows[0].status,
            Status::Invalid(
                "short window: 3.000 s of a power figure averaged over up to 1 s (windows of \
                 at least 10 s)"
                    .into()
            )
        );
        assert_eq!(rows[0].inferences_per_joule, None);
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(64))]
        /// No figure larger than the inputs allow, over sensors (measured, simulated,
        /// nominal; with and without a stated uncertainty), idle and timed powers from equal
        /// to far apart, reading noise and repetitions:
        /// - gross inferences per joule within what the lowest and highest readings allow;
        /// - a net figure never for a nominal sensor, and never above inferences / (T × the
        ///   least margin its inputs give): u × (P_timed + P_idle) + 2σ / √N, with N the
        ///   readings in a window (each window's standard error is at least σ / √N);
        /// - every interval of a positive quantity above zero and holding its figure;
        /// - an aggregate figure within its repetitions' figures.
        #[test]
        fn no_figure_is_larger_than_its_inputs_allow(
            origin in proptest::sample::select(vec![Origin::Measured, Origin::Simulated, Origin::Nominal]),
            uncertainty in proptest::option::of(0.001f64..0.1),
            idle in 0.1f64..500.0,
            rises in proptest::collection::vec(0.0f64..2.0, 1..4),
            noise_share in proptest::sample::select(vec![0.0, 1e-4, 0.01, 0.2]),
            inferences in 1usize..500,
        ) {
            let load = Load {
                idle,
                timed: rises.iter().map(|r| idle * (1.0 + r)).collect(),
                noise: idle * noise_share,
                origin,
                uncertainty,
                inferences,
            };
            let rows = summarize(&load.record());
            let (lowest, highest) = (idle - load.noise, idle * 3.0 + load.noise);
            // 101 readings at most in a 1 s window read every 10 ms.
            let spread_floor = 2.0 * load.noise / 101f64.sqrt();
            let n = inferences as f64;
            for r in &rows {
                let label = format!("{:?} {}", r.repetition, r.net_note);
                // Every window is 1 s: n inferences on between the lowest and highest power
                // (an aggregate's mean of such figures too).
                if let Some(ipj) = r.inferences_per_joule {
                    proptest::prop_assert!(ipj <= n / lowest * (1.0 + 1e-9), "{label}");
                    proptest::prop_assert!(ipj >= n / highest * (1.0 - 1e-9), "{label}");
                }
                if let Some(net) = r.net_inferences_per_joule {
                    proptest::prop_assert!(origin != Origin::Nominal, "{label}");
                    let (timed, idle) = (r.mean_watts.unwrap(), r.idle_watts.unwrap());
                    let floor = uncertainty.unwrap_or(0.0) * (timed + idle) + spread_floor;
                    proptest::prop_assert!(floor > 0.0, "a net figure with nothing bounding it");
                    proptest::prop_assert!(net * floor <= n * (1.0 + 1e-9), "{label}: {net} against {floor} W");
                }
                for (figure, low, high) in [
                    (r.fps, r.fps_ci_low, r.fps_ci_high),
                    (r.mean_watts, r.mean_watts_ci_low, r.mean_watts_ci_high),
                    (r.inferences_per_joule, r.inferences_per_joule_ci_low, r.inferences_per_joule_ci_high),
                    (r.inferences_per_joule, r.inferences_per_joule_total_low, r.inferences_per_joule_total_high),
                    (r.net_inferences_per_joule, r.net_inferences_per_joule_ci_low, r.net_inferences_per_joule_ci_high),
                ] {
                    if let (Some(v), Some(low), Some(high)) = (figure, low, high) {
                        proptest::prop_assert!(low > 0.0 && low <= v && v <= high, "{label}: {low} {v} {high}");
                    }
                }
                if r.repetition == Repetition::All {
                    let reps: Vec<&SummaryRow> = rows.iter().filter(|x| x.repetition != Repetition::All).collect();
                    for (all, each) in [
                        (r.inferences_per_joule, reps.iter().map(|x| x.inferences_per_joule).collect::<Vec<_>>()),
                        (r.net_inferences_per_joule, reps.iter().map(|x| x.net_inferences_per_joule).collect()),
                    ] {
                        if let Some(all) = all {
                            let max = each.iter().flatten().copied().fold(f64::MIN, f64::max);
                            proptest::prop_assert!(all <= max * (1.0 + 1e-12), "{label}: {all} above {max}");
                        }
                    }
                }
            }
        }
    }

    /// Every sensor kind's reader, fed arbitrary raw values where the kernel or the chip puts
    /// them: whatever it reads, a row is `ok` only with figures a supply can give (issue 30).
    mod physics {
        use super::*;
        use crate::sampler::Sample;
        use crate::sensor::{PowerSensor, SensorContext, SensorSpec, MIN_BOARD_WATTS};
        use proptest::prelude::*;
        use std::path::Path;

        /// A raw sysfs or spec value: ordinary ones, zero, negative, huge.
        fn raw() -> impl Strategy<Value = i64> {
            prop_oneof![
                0i64..20_000_000,
                -20_000_000i64..0,
                Just(0),
                Just(1),
                Just(-1),
                any::<i64>(),
            ]
        }

        fn put(dir: &Path, files: &[(&str, String)]) {
            std::fs::create_dir_all(dir).unwrap();
            for (name, value) in files {
                std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
            }
        }

        /// A meter of `kind` on a fake tree in `root` holding `a` and `b` where its values go,
        /// as the rig's table that names it.
        fn tree(kind: usize, root: &Path, a: i64, b: i64) -> String {
            let sys = root.display();
            match kind {
                0 => {
                    let dir = root.join("class/hwmon/hwmon0");
                    put(
                        &dir,
                        &[("name", "psu".into()), ("power1_input", a.to_string())],
                    );
                    format!("kind = \"hwmon\"\nchip = \"psu\"\nchannel = 1\nroot = \"{sys}\"")
                }
                1 => {
                    let dir = root.join("class/hwmon/hwmon0");
                    put(
                        &dir,
                        &[
                            ("name", "adc".into()),
                            ("in1_input", a.to_string()),
                            ("curr1_input", b.to_string()),
                        ],
                    );
                    format!("kind = \"hwmon\"\nchip = \"adc\"\nchannel = 1\nroot = \"{sys}\"")
                }
                2 => {
                    let dir = root.join("bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3");
                    put(
                        &dir,
                        &[
                            ("name", "ina3221".into()),
                            ("in1_label", "VDD_IN".into()),
                            ("in1_input", a.to_string()),
                            ("curr1_input", b.to_string()),
                        ],
                    );
                    format!("kind = \"ina3221\"\nlabel = \"VDD_IN\"\nroot = \"{sys}\"")
                }
                3 => {
                    let dir = root.join("bus/i2c/drivers/ina3221x/6-0040/iio:device0");
                    put(
                        &dir,
                        &[
                            ("rail_name_0", "POM_5V_IN".into()),
                            ("in_power0_input", a.to_string()),
                            ("in_voltage0_input", b.to_string()),
                            ("in_current0_input", a.to_string()),
                        ],
                    );
                    format!("kind = \"ina3221\"\nlabel = \"POM_5V_IN\"\nroot = \"{sys}\"")
                }
                _ => format!(
                    "kind = \"nominal\"\nwatts = {:?}",
                    a as f64 / 1e3 + b as f64 / 1e9
                ),
            }
        }

        /// The meter read once per update period over the 1 to 4 s window [`counted`] times,
        /// or None where the rig or the sensor refuses it (as a run would, before measuring).
        fn log_of(table: &str) -> Option<crate::sampler::SensorLog> {
            let spec: SensorSpec = toml::from_str(&format!("rail = \"r\"\n{table}")).ok()?;
            spec.validate_alone().ok()?;
            let ctx = SensorContext::new(
                crate::clock::RunClock::start(),
                crate::clock::PhaseLog::new(),
            );
            let mut sensor: Box<dyn PowerSensor> = crate::sensor::open(&spec, &ctx).ok()?;
            let mut log = crate::sampler::SensorLog::of(sensor.as_ref());
            let period = log.update_period.as_secs_f64().max(1e-3);
            let reads = (3.2 / period).ceil().min(4000.0) as usize;
            log.samples = (0..reads)
                .map(|i| Sample {
                    t: 0.9 + period * i as f64,
                    reading: sensor.read().map_err(|e| ReadError::of(&e)),
                })
                .collect();
            Some(log)
        }

        /// The harness measures: ordinary values give an `ok` row on every kind, so the
        /// property below is not empty.
        #[test]
        fn ordinary_values_give_ok_rows_on_every_kind() {
            for (kind, a, b) in [
                (0, 5_000_000, 0),
                (1, 5_000, 1_000),
                (2, 19_000, 350),
                (3, 2_345, 5_016),
                (4, 5_000, 0),
            ] {
                let root = tempfile::tempdir().unwrap();
                let log = log_of(&tree(kind, root.path(), a, b)).expect("opens");
                let rows = counted(log);
                assert!(
                    rows.iter().all(|r| r.status.is_ok()),
                    "kind {kind}: {rows:?}"
                );
            }
        }

        /// The readers whose fakes live inside the sensors crate (RAPL's counter, NVML's
        /// counter with instant power beside it, the INA219 driver's voltages, current and
        /// power with its flags), as the summary receives them: a log with the kind's update
        /// period, mode (counter or not, integrating or not), cross-check and range, and any
        /// readings at all. What the summary makes of it must hold whatever a reader returns.
        #[derive(Debug, Clone, Copy)]
        enum Reader {
            Rapl,
            Nvml,
            Ina219,
        }

        /// One arbitrary read: its values, flags, and the counter's step since the last read.
        type Raw = (f64, Option<f64>, Option<f64>, f64, bool, bool, bool, bool);

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                0.0..30.0,
                -30.0..0.0,
                Just(0.0),
                Just(1e-9),
                Just(f64::NAN),
                Just(f64::INFINITY),
                any::<f64>(),
            ]
        }

        fn reads() -> impl Strategy<Value = Vec<Raw>> {
            let read = (
                value(),
                prop::option::of(value()),
                prop::option::of(value()),
                value(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            );
            prop::collection::vec(read, 40..41)
        }

        /// The log a reader of `reader` would leave with `reads`, every 0.1 s over the window
        /// [`counted`] measures; `range` sets the kind's range (RAPL's and NVML's most watts,
        /// the INA219's shunt in ohms).
        fn scripted(reader: Reader, range: f64, reads: &[Raw]) -> crate::sampler::SensorLog {
            let kind = match reader {
                Reader::Rapl => "rapl",
                Reader::Nvml => "nvml",
                Reader::Ina219 => "ina219",
            };
            let counter = !matches!(reader, Reader::Ina219);
            let mut energy = 0.0;
            let samples = reads
                .iter()
                .enumerate()
                .map(
                    |(i, &(watts, volts, amps, step, stale, saturated, overflow, fails))| {
                        energy += step;
                        let reading = crate::sensor::Reading {
                            watts,
                            volts: volts.filter(|_| !counter),
                            amps: amps.filter(|_| !counter),
                            energy_j: counter.then_some(energy),
                            instant_watts: matches!(reader, Reader::Nvml).then_some(watts),
                            stale,
                            saturated: saturated && !counter,
                            overflow: overflow && !counter,
                            ..crate::sensor::Reading::default()
                        };
                        Sample {
                            t: 0.8 + 0.1 * i as f64,
                            reading: if fails {
                                Err(ReadError::Failed("read failed".into()))
                            } else {
                                Ok(reading)
                            },
                        }
                    },
                )
                .collect();
            let mut log = fixtures::log("r", std::time::Duration::from_millis(100), samples);
            log.info.kind = kind.into();
            log.info.origin = Origin::Measured;
            log.integrating = matches!(reader, Reader::Ina219);
            log.crosscheck =
                matches!(reader, Reader::Nvml).then_some(crate::sensor::Crosscheck::InstantPower);
            log.limits = match reader {
                Reader::Ina219 => crate::sensor::Limits::ina(0.32, range),
                _ => crate::sensor::Limits {
                    max_watts: range,
                    max_volts: None,
                },
            };
            log
        }

        /// Ordinary reads of each scripted reader give `ok` rows: the property below is not
        /// empty.
        #[test]
        fn ordinary_scripted_reads_give_ok_rows() {
            for (reader, range, read) in [
                (
                    Reader::Rapl,
                    300.0,
                    (5.0, None, None, 0.5, false, false, false, false),
                ),
                (
                    Reader::Nvml,
                    700.0,
                    (5.0, None, None, 0.5, false, false, false, false),
                ),
                (
                    Reader::Ina219,
                    0.1,
                    (5.0, Some(5.0), Some(1.0), 0.0, false, false, false, false),
                ),
            ] {
                let rows = counted(scripted(reader, range, &[read; 40]));
                assert!(
                    rows.iter().all(|r| r.status.is_ok()),
                    "{reader:?}: {rows:?}"
                );
            }
        }

        /// Every `ok` row of `log`'s summary has a mean a supply can give (10 mW up to the
        /// sensor's limit) and a finite, positive inferences per joule; `what` names the case.
        fn every_ok_row_is_possible(
            log: crate::sampler::SensorLog,
            what: &str,
        ) -> Result<(), TestCaseError> {
            let limits = log.limits;
            for row in counted(log).into_iter().filter(|r| r.status.is_ok()) {
                let watts = row.mean_watts.expect("an ok row has its mean");
                let per_joule = row.inferences_per_joule.expect("and its per-joule figure");
                prop_assert!(
                    (MIN_BOARD_WATTS..=limits.max_watts).contains(&watts),
                    "{watts} W ok from {what}"
                );
                prop_assert!(per_joule.is_finite() && per_joule > 0.0, "{per_joule}");
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(crate::proptest_config(64))]
            #[test]
            fn prop_every_ok_row_is_physically_possible(kind in 0usize..5, a in raw(), b in raw()) {
                let root = tempfile::tempdir().unwrap();
                let Some(log) = log_of(&tree(kind, root.path(), a, b)) else {
                    return Ok(());
                };
                every_ok_row_is_possible(log, &format!("kind {kind}, raw {a}, {b}"))?;
            }

            #[test]
            fn prop_every_ok_row_of_a_counter_or_an_ina219_is_physically_possible(
                reader in prop_oneof![Just(Reader::Rapl), Just(Reader::Nvml), Just(Reader::Ina219)],
                range in prop_oneof![1e-4..1.0, 1.0..2000.0],
                reads in reads(),
            ) {
                every_ok_row_is_possible(scripted(reader, range, &reads), &format!("{reader:?}"))?;
            }
        }
    }
}
