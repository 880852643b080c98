//! `joulebench soak`: one rig's protocol repeated for an hour (or as long as asked), to show
//! that a long bench session holds: memory does not grow with the run, no reading is
//! dropped between the sensor and the disk, and the timed loop does not slow down.
//!
//! While the run goes, a [`Monitor`] thread records the process's resident memory and the
//! run folder's file sizes every [`MONITOR_EVERY`] into `soak.csv`. Afterwards [`Report::of`]
//! reads `power.csv` back (what is on disk is what counts), the repetitions' latencies from
//! the record, and judges three targets ([`Targets`]); `soak.json` keeps the report. A target
//! the soak was too short to judge (a drift from too few repetitions, gaps against a stall
//! probe too short to bound them) is reported as not judged, with the soak that would judge
//! it, never as met.
//!
//! Two measurements of the machine itself stand beside the rig's: its stalls ([`floor`],
//! probed after the run), against which the sampler's gaps are judged, and its speed
//! ([`reference`](mod@reference), in the monitor's rows), against which the backends' latency drift is.

pub mod floor;
pub mod reference;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::output::folder::{read_power, LATENCY_CSV, POWER_CSV, RUN_JSON, SUMMARY_CSV};
use crate::record::RunRecord;
use crate::sampler::SensorLog;
use crate::stats::{RatioCi, Summary};
use floor::Floor;

/// How often the monitor records memory and file sizes.
pub const MONITOR_EVERY: Duration = Duration::from_secs(5);
/// The monitor's rows and the report, in the run folder.
pub use crate::output::folder::{SOAK_CSV as MONITOR_FILE, SOAK_JSON as REPORT_FILE};
/// The run folder's files the monitor follows.
const FOLLOWED: [&str; 4] = [POWER_CSV, LATENCY_CSV, RUN_JSON, SUMMARY_CSV];

/// What a soak must show.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Targets {
    /// Resident memory at the end may exceed that when measuring began by this much.
    /// The readings are not kept ([`crate::settled`]); what a run keeps per repetition (its
    /// latencies, summary row and settled windows, about 10 KiB) stays far below this for
    /// an hour.
    pub max_growth_mib: f64,
    /// The mean latency of the last tenth of the repetitions must be within this many
    /// percent of the first tenth's, its whole 95 % confidence interval included, once the
    /// machine's own change of speed over the same time ([`reference`](mod@reference)) is taken out.
    pub max_drift_pct: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            max_growth_mib: 32.0,
            max_drift_pct: 2.0,
        }
    }
}

/// One row of `soak.csv`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorRow {
    /// Seconds since the monitor started (the models loaded and the sensors open, as
    /// measuring began).
    pub t_s: f64,
    /// The process's resident memory (`VmRSS`).
    pub rss_kib: u64,
    pub power_csv_bytes: u64,
    pub latency_csv_bytes: u64,
    pub run_json_bytes: u64,
    pub summary_csv_bytes: u64,
    /// CPU time of the machine-speed reference ([`reference::time_ms`]).
    pub reference_ms: f64,
}

/// The monitor thread.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Vec<MonitorRow>>>,
}

impl Monitor {
    /// Starts recording into `dir/soak.csv` (a row now, then every [`MONITOR_EVERY`]).
    pub fn start(dir: &Path) -> Result<Self> {
        let path = dir.join(MONITOR_FILE);
        let mut out = csv::Writer::from_path(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, stopped) = (dir.to_path_buf(), stop.clone());
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("joulebench-soak-monitor".into())
            .spawn(move || -> Result<Vec<MonitorRow>> {
                crate::sampler::background_priority();
                let mut rows = Vec::new();
                loop {
                    let done = stopped.load(Ordering::Relaxed);
                    let row = sample(&dir, started)?;
                    out.serialize(&row)
                        .and_then(|()| Ok(out.flush()?))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    rows.push(row);
                    if done {
                        return Ok(rows);
                    }
                    let next = started + MONITOR_EVERY * rows.len() as u32;
                    while !stopped.load(Ordering::Relaxed) && Instant::now() < next {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
            .context("cannot start the soak monitor")?;
        Ok(Self { stop, thread })
    }

    /// Takes a last row and returns them all.
    pub fn finish(self) -> Result<Vec<MonitorRow>> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(rows) => rows,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

fn sample(dir: &Path, started: Instant) -> Result<MonitorRow> {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    Ok(MonitorRow {
        t_s: started.elapsed().as_secs_f64(),
        rss_kib: resident_kib()?,
        power_csv_bytes: size(FOLLOWED[0]),
        latency_csv_bytes: size(FOLLOWED[1]),
        run_json_bytes: size(FOLLOWED[2]),
        summary_csv_bytes: size(FOLLOWED[3]),
        reference_ms: reference::time_ms(),
    })
}

/// This process's resident memory, from `/proc/self/status`.
pub fn resident_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("/proc/self/status has no VmRSS line")
}

/// The soak's findings.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seconds: f64,
    pub targets: Targets,
    pub memory: Memory,
    pub sensors: Vec<SensorReadings>,
    pub files: Vec<FileSize>,
    pub latency: Vec<Drift>,
    /// The machine's own stalls, probed after the run.
    pub floor: Floor,
    /// The targets missed, as the closing verdict names them.
    pub missed: Vec<String>,
    /// The targets the soak could not judge.
    pub not_judged: Vec<NotJudged>,
    /// Every target judged and met.
    pub ok: bool,
}

/// A target the soak could not judge, and what it would take.
#[derive(Debug, Clone, Serialize)]
pub struct NotJudged {
    /// The target, as the closing verdict names it.
    pub target: String,
    /// Why it was not judged.
    pub why: String,
    /// About how long a soak would judge it on this machine, minutes (from this soak's own
    /// pace); `None` where nothing tells.
    pub soak_minutes: Option<f64>,
}

/// Resident memory over the soak, MiB.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// As measuring began (models loaded, sensors open).
    pub start_mib: f64,
    pub end_mib: f64,
    pub peak_mib: f64,
    pub growth_mib: f64,
    /// Repetitions run, over all backends, and the growth per repetition: memory follows
    /// them (each keeps its latencies and summary row), not the readings.
    pub repetitions: usize,
    pub kib_per_repetition: f64,
    pub ok: bool,
}

/// One sensor's readings as `power.csv` holds them.
#[derive(Debug, Clone, Serialize)]
pub struct SensorReadings {
    pub rail: String,
    pub update_period_s: f64,
    /// Readings the sampler took (`run.json`'s count).
    pub taken: usize,
    /// Rows of the sensor in `power.csv`: every reading taken must be there.
    pub on_disk: usize,
    pub fresh: usize,
    pub stale: usize,
    pub errors: usize,
    /// Fresh readings the sensor produces between the first and the last one kept, one per
    /// update period.
    pub expected_fresh: usize,
    /// Longest time between consecutive fresh readings.
    pub largest_gap_s: f64,
    /// The gap that makes a window's coverage drop ([`crate::summary::GAP_PERIODS`] periods).
    pub allowed_gap_s: f64,
    /// Gaps between consecutive fresh readings longer than `allowed_gap_s`, and per hour.
    pub gaps: usize,
    pub gaps_per_hour: f64,
    /// Stalls of the machine's probe ([`floor`]) that would make such a gap: longer than the
    /// allowed gap less the period a reading takes anyway.
    pub floor_stalls: usize,
    /// The 95 % upper bound of the probe's rate of those stalls, per hour: the most gaps an
    /// hour any reader could be expected to suffer on this machine.
    pub floor_upper_per_hour: f64,
    /// The most gaps an hour any reader can have (each lasts longer than `allowed_gap_s`): a
    /// bound at or above it bounds nothing, and the gaps are not judged.
    pub most_gaps_per_hour: f64,
    /// The gaps against the machine's bound; `None` when they were not judged (a probe too
    /// short to bound them, or none).
    pub gaps_ok: Option<bool>,
    /// Every part met; `None` when the rest was met but the gaps were not judged.
    pub ok: Option<bool>,
}

/// A file of the run folder at the end.
#[derive(Debug, Clone, Serialize)]
pub struct FileSize {
    pub name: String,
    pub bytes: u64,
    pub mib_per_hour: f64,
}

/// One backend's latency, first tenth of its repetitions against the last.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub backend_index: usize,
    pub engine: String,
    pub repetitions: usize,
    /// Repetitions in each tenth compared.
    pub compared: usize,
    /// Mean of the per-repetition median latencies, first and last tenth, ms.
    pub first_ms: f64,
    pub last_ms: f64,
    /// last / first, with its 95 % confidence interval.
    pub ratio: Option<RatioCi>,
    /// The machine-speed reference's last / first over the same tenths of the run.
    pub reference: Option<RatioCi>,
    /// `ratio` / `reference`: the drift the machine does not explain, which is judged
    /// (`ratio` itself where there is no reference).
    pub corrected: Option<RatioCi>,
    /// Seconds a repetition took, from the first phase of the backend to its last over its
    /// repetitions; `None` where it has none.
    pub seconds_per_repetition: Option<f64>,
    /// `None` when there were too few repetitions to compare (fewer than four).
    pub ok: Option<bool>,
}

impl Report {
    /// Judges a finished soak from its record, its folder and the monitor's rows.
    pub fn of(
        record: &RunRecord,
        dir: &Path,
        rows: &[MonitorRow],
        floor: Floor,
        targets: Targets,
    ) -> Result<Self> {
        let seconds = rows.last().map_or(0.0, |r| r.t_s);
        let repetitions = record.backends.iter().map(|b| b.repetitions.len()).sum();
        let memory = memory(rows, repetitions, targets);
        let sensors = sensor_readings(record, &dir.join(POWER_CSV), &floor)?;
        let files = FOLLOWED
            .iter()
            .chain([&MONITOR_FILE])
            .map(|name| {
                let bytes = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
                FileSize {
                    name: (*name).into(),
                    bytes,
                    mib_per_hour: bytes as f64 / MIB / (seconds / 3600.0),
                }
            })
            .collect();
        let latency = drift(record, rows, targets);
        let mut missed = Vec::new();
        if !memory.ok {
            missed.push("memory".to_string());
        }
        let mut not_judged = Vec::new();
        for s in &sensors {
            if s.ok == Some(false) {
                missed.push(format!("readings of {}", s.rail));
            }
            if s.gaps_ok.is_none() {
                not_judged.push(gaps_not_judged(s, &floor));
            }
        }
        let slowest = latency
            .iter()
            .filter_map(|d| d.seconds_per_repetition)
            .reduce(f64::max);
        for d in &latency {
            match d.ok {
                Some(true) => {}
                Some(false) => missed.push(drift_target(d)),
                None => not_judged.push(drift_not_judged(d, slowest, latency.len())),
            }
        }
        let ok = missed.is_empty() && not_judged.is_empty();
        Ok(Self {
            seconds,
            targets,
            memory,
            sensors,
            files,
            latency,
            floor,
            missed,
            not_judged,
            ok,
        })
    }

    /// The closing verdict: every target met, or those missed and those not judged, with
    /// how long a soak would judge them. One line, as the command's error repeats it.
    pub fn verdict(&self) -> String {
        if self.ok {
            return "every target met".into();
        }
        let mut parts = Vec::new();
        if !self.missed.is_empty() {
            parts.push(format!("a target was missed: {}", self.missed.join(", ")));
        }
        if !self.not_judged.is_empty() {
            let items: Vec<String> = self
                .not_judged
                .iter()
                .map(|n| format!("{}: {}", n.target, n.why))
                .collect();
            let mut text = format!("not judged: {}", items.join("; "));
            let soak = self
                .not_judged
                .iter()
                .filter_map(|n| n.soak_minutes)
                .reduce(f64::max);
            if let Some(minutes) = soak {
                text += &format!(
                    "; a soak of about {} min judges {} on this machine",
                    minutes_up(minutes),
                    if self.not_judged.len() == 1 {
                        "it"
                    } else {
                        "them"
                    }
                );
            }
            if self.missed.is_empty() {
                text += "; every target judged was met";
            }
            parts.push(text);
        }
        parts.join("; ")
    }

    /// The report as lines for the terminal.
    pub fn render(&self) -> String {
        let mut out = format!("soak: {:.1} min\n", self.seconds / 60.0);
        out += &self.memory_line();
        for s in &self.sensors {
            out += &self.readings_line(s);
        }
        out += &self.floor_lines();
        for f in &self.files {
            out += &format!(
                "file    {}: {:.1} MiB ({:.1} MiB/h)\n",
                f.name,
                f.bytes as f64 / MIB,
                f.mib_per_hour
            );
        }
        for d in &self.latency {
            out += &self.drift_line(d);
        }
        out += &format!("soak: {}\n", self.verdict());
        out
    }

    /// The memory target's line: resident memory at the start, end and peak, its growth per
    /// repetition, and whether it was met.
    fn memory_line(&self) -> String {
        format!(
            "memory  start {:.1} MiB, end {:.1} MiB, peak {:.1} MiB: grew {} MiB (target ≤ {} MiB) over {} repetitions ({} KiB each): {}\n",
            self.memory.start_mib,
            self.memory.end_mib,
            self.memory.peak_mib,
            fixed(self.memory.growth_mib, 1, true),
            number(self.targets.max_growth_mib),
            self.memory.repetitions,
            fixed(self.memory.kib_per_repetition, 1, false),
            met(self.memory.ok)
        )
    }

    /// Sensor `s`'s line: its readings taken, on disk, fresh, stale and failed, and its gaps
    /// against the machine's bound (or why they were not judged).
    fn readings_line(&self, s: &SensorReadings) -> String {
        let bound = if s.gaps_ok.is_some() {
            format!("at most {:.0}/h", s.floor_upper_per_hour)
        } else if self.floor.seconds > 0.0 {
            format!(
                "not judged: the probe's bound, {:.0}/h, is at or above the {:.0}/h of gaps back to back",
                s.floor_upper_per_hour, s.most_gaps_per_hour
            )
        } else {
            "not judged: the machine was not probed".into()
        };
        // The rest of a sensor's readings is judged on any length, its gaps not always.
        let judged = s.ok.map_or("gaps not judged, the rest ok", met);
        format!(
            "readings {}: {} taken, {} on disk; {} fresh of {} expected ({} %, target ≥ {} %), {} stale, {} errors; {} gaps over {:.2} ms ({:.0}/h, the longest {:.2} ms; target: no more than this machine's stalls, {bound}): {judged}\n",
            s.rail,
            s.taken,
            s.on_disk,
            s.fresh,
            s.expected_fresh,
            fixed(percent(s.fresh, s.expected_fresh), 3, false),
            number(MIN_KEPT * 100.0),
            s.stale,
            s.errors,
            s.gaps,
            s.allowed_gap_s * 1e3,
            s.gaps_per_hour,
            s.largest_gap_s * 1e3,
        )
    }

    /// The machine's stall probe ([`floor`]): what it found, then for each sensor the stalls
    /// long enough to make a gap in its readings.
    fn floor_lines(&self) -> String {
        let mut out = if self.floor.seconds > 0.0 {
            format!(
                "machine {} s probed after the run, a thread spinning on the clock beside {} busy: {} stalls over 0.5 ms ({} % of the time), the longest {:.2} ms\n",
                seconds(self.floor.seconds),
                self.floor.busy_threads,
                self.floor.stalls_s.len(),
                fixed(self.floor.stalled_fraction() * 100.0, 3, false),
                self.floor.longest_s() * 1e3
            )
        } else {
            "machine not probed (the run was interrupted)\n".into()
        };
        for s in &self.sensors {
            out += &format!(
                "machine stalls that would make a gap in {}'s readings: {} in {} s\n",
                s.rail,
                s.floor_stalls,
                seconds(self.floor.seconds)
            );
        }
        out
    }

    /// Backend `d`'s latency line: its drift, the machine's and the one judged, each with its
    /// interval, or why it was not judged.
    fn drift_line(&self, d: &Drift) -> String {
        let pct = |r: &RatioCi| {
            format!(
                "{} % (95 % CI {} to {} %)",
                fixed((r.ratio - 1.0) * 100.0, 2, true),
                fixed((r.low - 1.0) * 100.0, 2, true),
                fixed((r.high - 1.0) * 100.0, 2, true)
            )
        };
        let judgement = match (&d.ratio, &d.corrected, d.ok) {
            (Some(r), Some(c), Some(ok)) => format!(
                "; median latency, first {n}: {:.3} ms, last {n}: {:.3} ms: {}; machine reference {}; latency beyond the machine's {} (target within ±{} %): {}\n",
                d.first_ms,
                d.last_ms,
                pct(r),
                d.reference.as_ref().map_or("not measured".into(), pct),
                pct(c),
                number(self.targets.max_drift_pct),
                met(ok),
                n = d.compared,
            ),
            _ if d.compared == 0 => format!(
                ", too few to judge a drift (it takes {}): not judged\n",
                2 * MIN_COMPARED
            ),
            _ => ", no confidence interval from its latencies: not judged\n".into(),
        };
        format!(
            "latency backend {} ({}): {} repetitions{judgement}",
            d.backend_index, d.engine, d.repetitions
        )
    }
}

/// A target's verdict as the report writes it.
fn met(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

/// The drift target of backend `d`, as the verdict names it.
fn drift_target(d: &Drift) -> String {
    format!(
        "latency drift of backend {} ({})",
        d.backend_index, d.engine
    )
}

/// Backend `d`'s drift, not judged: too few repetitions, or none whose latencies give an
/// interval. A soak shares its time equally among the `backends`, so each needs a share of
/// [`MIN_COMPARED`] × 2 repetitions of the slowest: the last of them starts before its share
/// ends, and the backend before it, running over its own share by less than one of its
/// repetitions, leaves enough.
fn drift_not_judged(d: &Drift, slowest_s: Option<f64>, backends: usize) -> NotJudged {
    let needed = 2 * MIN_COMPARED;
    let (why, soak_minutes) = if d.compared == 0 {
        (
            format!(
                "{} repetition{}, a drift takes {needed}",
                d.repetitions,
                if d.repetitions == 1 { "" } else { "s" }
            ),
            slowest_s.map(|s| (backends * needed) as f64 * s / 60.0),
        )
    } else {
        (
            format!(
                "{} repetitions whose latencies give no confidence interval",
                d.repetitions
            ),
            None,
        )
    };
    NotJudged {
        target: drift_target(d),
        why,
        soak_minutes,
    }
}

/// Sensor `s`'s gaps, not judged: the probe's bound is one no reader can exceed
/// ([`floor::shortest_bounding_s`]), or there was no probe.
fn gaps_not_judged(s: &SensorReadings, floor: &Floor) -> NotJudged {
    let probe_s = floor::shortest_bounding_s(s.floor_stalls, s.allowed_gap_s);
    let why = if floor.seconds > 0.0 {
        format!(
            "a {} s stall probe bounds them at {:.0}/h, at or above the {:.0}/h of gaps back to back (a probe of more than {} s bounds them)",
            seconds(floor.seconds),
            s.floor_upper_per_hour,
            s.most_gaps_per_hour,
            seconds(probe_s)
        )
    } else {
        "the machine's stalls were not probed (the soak was interrupted)".into()
    };
    NotJudged {
        target: format!("gaps in the readings of {}", s.rail),
        why,
        soak_minutes: floor::soak_for(probe_s).map(|s| s / 60.0),
    }
}

/// `value` to `decimals` places, with its sign where `signed`, except that a value which
/// rounds to zero is written without one: "0.000", never "-0.000" (an empty sum of floats
/// is -0.0, and -0.0004 rounds to it) nor "+0.00". Every figure that can be negative or
/// signed (the percentages, the memory's growth) is written through it.
fn fixed(value: f64, decimals: usize, signed: bool) -> String {
    let text = if signed {
        format!("{value:+.decimals$}")
    } else {
        format!("{value:.decimals$}")
    };
    if text.bytes().all(|b| matches!(b, b'0' | b'.' | b'-' | b'+')) {
        text.trim_start_matches(['-', '+']).to_string()
    } else {
        text
    }
}

/// A number as given (a target), -0 written as 0.
fn number(value: f64) -> String {
    (value + 0.0).to_string()
}

/// Seconds to a precision that shows a short probe: 0.150, 2.4, 60.
fn seconds(s: f64) -> String {
    let decimals = if s < 1.0 {
        3
    } else if s < 10.0 {
        1
    } else {
        0
    };
    format!("{s:.decimals$}")
}

/// Minutes rounded up to two significant figures, as `--minutes` would take them: a soak of
/// that length is no shorter than the one asked for.
fn minutes_up(minutes: f64) -> String {
    if !(minutes.is_finite() && minutes > 0.0) {
        return format!("{minutes}");
    }
    let exponent = minutes.log10().floor() as i32 - 1;
    let step = 10f64.powi(exponent);
    // Less a rounding error, so that 0.2 stays 0.2.
    let up = (minutes / step * (1.0 - 1e-12)).ceil() * step;
    let decimals = exponent.min(0).unsigned_abs() as usize;
    format!("{up:.decimals$}")
}

const MIB: f64 = 1024.0 * 1024.0;

/// The fewest repetitions each end of a drift comparison takes (a tenth of them from 20 on).
const MIN_COMPARED: usize = 2;

/// The fewest fresh readings of those expected a sensor may keep. A reader limited by its
/// bus (the soak rig's INA219: 1.92 ms of transfers, every reading fresh) cannot catch up:
/// each late wake-up is lost for good, so its rate sits a fraction of a percent below the
/// bus's. One percent is the target, a fifth of the 5 % a window's validity check allows.
const MIN_KEPT: f64 = 0.99;

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64 * 100.0
    }
}

fn memory(rows: &[MonitorRow], repetitions: usize, targets: Targets) -> Memory {
    let mib = |r: &MonitorRow| r.rss_kib as f64 / 1024.0;
    let start = rows.first().map_or(0.0, mib);
    let end = rows.last().map_or(0.0, mib);
    let peak = rows.iter().map(mib).fold(0.0, f64::max);
    let growth = end - start;
    Memory {
        start_mib: start,
        end_mib: end,
        peak_mib: peak,
        growth_mib: growth,
        repetitions,
        kib_per_repetition: growth * 1024.0 / repetitions.max(1) as f64,
        ok: growth <= targets.max_growth_mib,
    }
}

/// Each sensor's readings as `power.csv` holds them (what is on disk is what counts), judged
/// against what the sampler took and the machine's stalls.
fn sensor_readings(
    record: &RunRecord,
    power_csv: &Path,
    floor: &Floor,
) -> Result<Vec<SensorReadings>> {
    let tallies = tally_power_rows(record, power_csv)?;
    Ok(record
        .sensors
        .iter()
        .zip(tallies)
        .enumerate()
        // An optional sensor that never opened read nothing to judge (its rows say so).
        .filter(|(_, (log, _))| log.missing.is_none())
        .map(|(i, (log, t))| {
            let taken = log.samples.len() + record.settled.released(i);
            judge_readings(log, taken, t, floor)
        })
        .collect())
}

/// One sensor's rows of `power.csv`, counted as they are read.
struct Tally {
    rows: usize,
    fresh: usize,
    stale: usize,
    errors: usize,
    first: f64,
    last: f64,
    largest_gap: f64,
    /// The gap that makes a window's coverage drop, and how many were longer.
    allowed_gap: f64,
    gaps: usize,
}

impl Tally {
    /// No rows yet, of a sensor read every `update_period`.
    fn new(update_period: Duration) -> Self {
        Self {
            rows: 0,
            fresh: 0,
            stale: 0,
            errors: 0,
            first: f64::NAN,
            last: f64::NAN,
            largest_gap: 0.0,
            allowed_gap: crate::summary::GAP_PERIODS * update_period.as_secs_f64(),
            gaps: 0,
        }
    }

    /// Counts a row at `t_s`: a failed read, a stale one, or a fresh one and its gap since
    /// the last fresh one.
    fn count(&mut self, t_s: f64, failed: bool, stale: bool) {
        self.rows += 1;
        if failed {
            self.errors += 1;
        } else if stale {
            self.stale += 1;
        } else {
            self.fresh += 1;
            if self.last.is_finite() {
                let gap = t_s - self.last;
                self.largest_gap = self.largest_gap.max(gap);
                self.gaps += usize::from(gap > self.allowed_gap);
            } else {
                self.first = t_s;
            }
            self.last = t_s;
        }
    }
}

/// `power.csv`'s rows counted per sensor of `record`; a row of a sensor the run does not
/// have is refused.
fn tally_power_rows(record: &RunRecord, power_csv: &Path) -> Result<Vec<Tally>> {
    let mut tallies: Vec<Tally> = record
        .sensors
        .iter()
        .map(|log| Tally::new(log.update_period))
        .collect();
    for row in read_power(power_csv)? {
        let row = row?;
        let Some(t) = tallies.get_mut(row.sensor_index) else {
            anyhow::bail!(
                "{}: a row of sensor {}, which the run does not have",
                power_csv.display(),
                row.sensor_index
            );
        };
        t.count(row.t_s, !row.error.is_empty(), row.stale);
    }
    Ok(tallies)
}

/// Sensor `log`'s readings judged from its tally `t` of `power.csv`: every one of the `taken`
/// on disk without error, enough of them fresh ([`MIN_KEPT`]), and its gaps no more than the
/// machine's stalls (`floor`) explain, where the probe bounds them.
fn judge_readings(log: &SensorLog, taken: usize, t: Tally, floor: &Floor) -> SensorReadings {
    let period = log.update_period.as_secs_f64();
    let expected = if t.fresh > 0 {
        ((t.last - t.first) / period).round() as usize + 1
    } else {
        0
    };
    let (allowed_gap, gaps) = (t.allowed_gap, t.gaps);
    let hours = (t.last - t.first).max(f64::MIN_POSITIVE) / 3600.0;
    // A reading takes a period anyway; a stall longer than the rest makes the gap.
    let floor_stalls = floor.over(allowed_gap - period);
    let floor_upper = floor::upper_rate_per_hour(floor_stalls, floor.seconds);
    let gaps_per_hour = if t.fresh > 1 {
        gaps as f64 / hours
    } else {
        0.0
    };
    // A bound no reader can exceed bounds nothing (`floor::shortest_bounding_s`).
    let most_gaps_per_hour = 3600.0 / allowed_gap;
    let gaps_ok = (floor_upper < most_gaps_per_hour).then_some(gaps_per_hour <= floor_upper);
    let kept = t.rows == taken
        && t.errors == 0
        && t.fresh > 0
        && t.fresh as f64 >= MIN_KEPT * expected as f64;
    SensorReadings {
        rail: log.info.rail.clone(),
        update_period_s: period,
        taken,
        on_disk: t.rows,
        fresh: t.fresh,
        stale: t.stale,
        errors: t.errors,
        expected_fresh: expected,
        largest_gap_s: t.largest_gap,
        allowed_gap_s: allowed_gap,
        gaps,
        gaps_per_hour,
        floor_stalls,
        floor_upper_per_hour: floor_upper,
        most_gaps_per_hour,
        gaps_ok,
        ok: if kept { gaps_ok } else { Some(false) },
    }
}

fn drift(record: &RunRecord, rows: &[MonitorRow], targets: Targets) -> Vec<Drift> {
    // The reference's first and last tenth of the run, as the backends' are compared.
    let speed: Vec<f64> = rows.iter().map(|r| r.reference_ms).collect();
    let reference = tenths(&speed).and_then(|(first, last)| RatioCi::of(last, first));
    record
        .backends
        .iter()
        .enumerate()
        .map(|(backend_index, b)| {
            let medians: Vec<f64> = b
                .repetitions
                .iter()
                .filter_map(|r| {
                    let ms: Vec<f64> = r.latencies.iter().map(|l| l.seconds * 1e3).collect();
                    Summary::of(&ms).map(|s| s.median)
                })
                .collect();
            let compared = tenths(&medians);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let ratio = compared.and_then(|(first, last)| RatioCi::of(last, first));
            let corrected = match (&ratio, &reference) {
                (Some(r), Some(m)) => r.divided_by(m),
                (r, _) => *r,
            };
            let tolerance = targets.max_drift_pct / 100.0;
            // The backend's phases, first to last, over its repetitions.
            let (first, last) = record
                .phases
                .iter()
                .filter(|p| p.backend == Some(backend_index) && p.end.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(first, last), p| {
                    (first.min(p.start), last.max(p.end))
                });
            Drift {
                backend_index,
                engine: b.engine.engine.clone(),
                repetitions: medians.len(),
                compared: compared.map_or(0, |(first, _)| first.len()),
                first_ms: compared.map_or(0.0, |(first, _)| mean(first)),
                last_ms: compared.map_or(0.0, |(_, last)| mean(last)),
                seconds_per_repetition: (!b.repetitions.is_empty() && last > first)
                    .then(|| (last - first) / b.repetitions.len() as f64),
                ok: corrected
                    .as_ref()
                    .map(|r| r.low >= 1.0 - tolerance && r.high <= 1.0 + tolerance),
                ratio,
                reference,
                corrected,
            }
        })
        .collect()
}

/// The first and last tenth of `values` (at least [`MIN_COMPARED`] each), if there are
/// enough for both.
fn tenths(values: &[f64]) -> Option<(&[f64], &[f64])> {
    let n = (values.len() / 10).max(MIN_COMPARED);
    (values.len() >= 2 * n).then(|| (&values[..n], &values[values.len() - n..]))
}

/// Writes the report as `soak.json` into `dir`.
pub fn write(report: &Report, dir: &Path) -> Result<PathBuf> {
    let path = dir.join(REPORT_FILE);
    let text = serde_json::to_string_pretty(report)?;
    crate::atomic::replace(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{Latency, TimedRun};
    use crate::sampler::Sample;
    use crate::sensor::Reading;
    use crate::summary::fixtures;

    /// Repetitions whose latencies are all `ms(k)` for repetition k.
    fn record_with(repetitions: usize, ms: impl Fn(usize) -> f64) -> RunRecord {
        let rig = fixtures::rig("runs = 3");
        let runs = (0..repetitions)
            .map(|k| TimedRun {
                latencies: vec![
                    Latency {
                        start: 0.0,
                        seconds: ms(k) / 1e3,
                    };
                    3
                ],
                batch: 1,
                ..TimedRun::default()
            })
            .collect();
        let backend = fixtures::backend(&rig.backends[0], runs);
        fixtures::record(rig, vec![backend], Vec::new())
    }

    /// A little scatter, so the confidence interval has a width.
    fn scatter(k: usize) -> f64 {
        [0.0, 0.05, -0.05, 0.02, -0.02][k % 5]
    }

    #[test]
    fn a_steady_latency_meets_the_drift_target_and_a_slowing_one_misses_it() {
        let steady = drift(
            &record_with(100, |k| 10.0 + scatter(k)),
            &[],
            Targets::default(),
        );
        assert_eq!(steady[0].compared, 10);
        assert_eq!(steady[0].ok, Some(true), "{:?}", steady[0]);
        // 5 % slower by the end, against a 2 % target.
        let slowing = drift(&record_with(100, slower), &[], Targets::default());
        assert_eq!(slowing[0].ok, Some(false), "{:?}", slowing[0]);
        assert!(slowing[0].last_ms > slowing[0].first_ms * 1.04);
        // Three repetitions cannot show a drift either way.
        let few = drift(&record_with(3, |_| 10.0), &[], Targets::default());
        assert_eq!((few[0].ok, few[0].compared), (None, 0));
    }

    /// 5 % slower by the end of 100 repetitions, with a little scatter.
    fn slower(k: usize) -> f64 {
        10.0 * (1.0 + 0.05 * k as f64 / 99.0) + scatter(k)
    }

    #[test]
    fn a_slowing_the_machine_reference_shares_is_not_held_against_the_rig() {
        let rows = |slowdown: f64| -> Vec<MonitorRow> {
            (0..100)
                .map(|k| MonitorRow {
                    reference_ms: 5.0 * (1.0 + slowdown * k as f64 / 99.0) + scatter(k) / 2.0,
                    ..row(k as f64 * 5.0, 300)
                })
                .collect()
        };
        let record = record_with(100, slower);
        let shared = drift(&record, &rows(0.05), Targets::default());
        let r = shared[0].reference.unwrap();
        assert!(r.ratio > 1.04, "{r:?}");
        assert_eq!(shared[0].ok, Some(true), "{:?}", shared[0]);
        // The corrected interval is wider than either: both ratios' errors are in it.
        let c = shared[0].corrected.unwrap();
        assert!(c.se_log > shared[0].ratio.unwrap().se_log && c.se_log > r.se_log);
        // A steady machine leaves the backend's slowing to the rig.
        let steady = drift(&record, &rows(0.0), Targets::default());
        assert_eq!(steady[0].ok, Some(false), "{:?}", steady[0]);
        assert!((steady[0].corrected.unwrap().ratio - steady[0].ratio.unwrap().ratio).abs() < 0.01);
    }

    fn power_csv(dir: &Path, times: &[f64], error_at: Option<usize>) -> RunRecord {
        let mut w = csv::Writer::from_path(dir.join("power.csv")).unwrap();
        w.write_record([
            "sensor_index",
            "sensor",
            "rail",
            "t_s",
            "volts",
            "amps",
            "watts",
            "energy_j",
            "overflow",
            "saturated",
            "stale",
            "error",
        ])
        .unwrap();
        for (i, t) in times.iter().enumerate() {
            let error = if Some(i) == error_at { "NACK" } else { "" };
            let t = t.to_string();
            w.write_record([
                "0", "ina219", "5V", &t, "5", "0.5", "2.5", "", "false", "false", "false", error,
            ])
            .unwrap();
        }
        w.flush().unwrap();
        let mut record = record_with(1, |_| 1.0);
        let samples = times
            .iter()
            .map(|&t| Sample {
                t,
                reading: Ok(Reading::default()),
            })
            .collect();
        record.sensors = vec![fixtures::log("r", Duration::from_millis(2), samples)];
        record
    }

    /// A machine probed for a minute that stalled `stalls` times for 5 ms.
    fn floor_with(stalls: usize) -> Floor {
        Floor {
            seconds: 60.0,
            busy_threads: 1,
            stalls_s: vec![5e-3; stalls],
        }
    }

    #[test]
    fn readings_are_judged_from_the_rows_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let every: Vec<f64> = (0..5000).map(|i| i as f64 * 2e-3).collect();
        let record = power_csv(dir.path(), &every, None);
        let got = sensor_readings(&record, &dir.path().join("power.csv"), &floor_with(0)).unwrap();
        assert_eq!(
            (got[0].taken, got[0].on_disk, got[0].fresh),
            (5000, 5000, 5000)
        );
        assert_eq!(got[0].expected_fresh, 5000);
        assert_eq!(got[0].ok, Some(true), "{:?}", got[0]);

        // Ten readings in a row missed: a gap of 11 periods, allowed 3.
        let gappy: Vec<f64> = every
            .iter()
            .enumerate()
            .filter(|(i, _)| !(100..110).contains(i))
            .map(|(_, &t)| t)
            .collect();
        let record = power_csv(dir.path(), &gappy, None);
        let got = sensor_readings(&record, &dir.path().join("power.csv"), &floor_with(0)).unwrap();
        assert_eq!(got[0].expected_fresh, 5000);
        assert!((got[0].largest_gap_s - 0.022).abs() < 1e-9);
        // One gap in 10 s is 360 an hour; a machine that never stalled in a minute allows
        // at most 221 (3.689 per minute, Garwood's bound for none seen).
        assert_eq!((got[0].gaps, got[0].floor_stalls), (1, 0));
        assert!((got[0].gaps_per_hour - 360.0).abs() < 1.0, "{:?}", got[0]);
        assert!(
            (got[0].floor_upper_per_hour - 221.3).abs() < 0.1,
            "{:?}",
            got[0]
        );
        assert_eq!((got[0].gaps_ok, got[0].ok), (Some(false), Some(false)));
        // The same gap on a machine that stalled over 4 ms (the allowed 6 ms less the
        // reading's own 2 ms) five times a minute is the machine's.
        let got = sensor_readings(&record, &dir.path().join("power.csv"), &floor_with(5)).unwrap();
        assert_eq!(got[0].floor_stalls, 5);
        assert_eq!(got[0].ok, Some(true), "{:?}", got[0]);

        // A reading taken but not on disk, and a failed read, each miss the target.
        let record = power_csv(dir.path(), &every[1..], None);
        let mut more = record;
        more.sensors[0].samples.push(Sample {
            t: 11.0,
            reading: Ok(Reading::default()),
        });
        let got = sensor_readings(&more, &dir.path().join("power.csv"), &floor_with(0)).unwrap();
        assert_eq!((got[0].taken, got[0].on_disk), (5000, 4999));
        assert_eq!(got[0].ok, Some(false));
        let record = power_csv(dir.path(), &every, Some(7));
        let got = sensor_readings(&record, &dir.path().join("power.csv"), &floor_with(0)).unwrap();
        assert_eq!(got[0].errors, 1);
        assert_eq!(got[0].ok, Some(false));
    }

    /// A machine probed for `seconds` that never stalled.
    fn floor_of(seconds: f64) -> Floor {
        Floor {
            seconds,
            busy_threads: 1,
            stalls_s: Vec::new(),
        }
    }

    #[test]
    fn gaps_are_not_judged_against_a_bound_no_reader_can_exceed() {
        let dir = tempfile::tempdir().unwrap();
        // Ten readings missed in a row: one gap in 10 s, 360 an hour.
        let gappy: Vec<f64> = (0..5000)
            .filter(|i| !(100..110).contains(i))
            .map(|i| i as f64 * 2e-3)
            .collect();
        let record = power_csv(dir.path(), &gappy, None);
        let judge = |floor: &Floor| {
            sensor_readings(&record, &dir.path().join("power.csv"), floor).unwrap()[0].clone()
        };
        // Gaps last over 6 ms (3 periods of 2 ms): at most 600,000 an hour, back to back.
        // A probe with no stall bounds below that once it runs 3.689 × 6 ms = 22.1 ms.
        let short = judge(&floor_of(0.015));
        assert!((short.most_gaps_per_hour - 600_000.0).abs() < 1e-6);
        assert!(
            (short.floor_upper_per_hour - 885_331.1).abs() < 0.1,
            "{short:?}"
        );
        assert_eq!((short.gaps_ok, short.ok), (None, None), "{short:?}");
        let long_enough = judge(&floor_of(0.023));
        assert!(long_enough.floor_upper_per_hour < 600_000.0);
        // 360 gaps an hour against a bound of 577,000: judged, and met.
        assert_eq!(long_enough.gaps_ok, Some(true), "{long_enough:?}");
        // No probe (a signal came first) bounds nothing either.
        assert_eq!(judge(&Floor::default()).gaps_ok, None);
        // Readings lost are missed whether or not the gaps are judged.
        let mut lost = power_csv(dir.path(), &gappy, None);
        lost.sensors[0].samples.push(Sample {
            t: 11.0,
            reading: Ok(Reading::default()),
        });
        let got = sensor_readings(&lost, &dir.path().join("power.csv"), &floor_of(0.015)).unwrap();
        assert_eq!((got[0].gaps_ok, got[0].ok), (None, Some(false)));
    }

    /// `record` with backend 0's repetitions each `seconds` long on the run clock.
    fn with_phases(mut record: RunRecord, seconds: f64) -> RunRecord {
        use crate::clock::{Phase, PhaseSpan, Slot};
        let repetitions = record.backends[0].repetitions.len();
        record.phases = (0..repetitions)
            .map(|k| {
                let slot = Slot {
                    backend: 0,
                    repetition: k + 1,
                };
                let start = 2.0 + k as f64 * seconds;
                PhaseSpan::new(Phase::Timed, Some(slot), start, start + seconds)
            })
            .collect();
        record
    }

    /// The report of a soak of `seconds`, its memory steady, on `record` (whose backends
    /// replace those of a sensor's 10 s of readings every 2 ms, all fresh).
    fn report(dir: &Path, record: RunRecord, seconds: f64, floor: Floor) -> Report {
        let times: Vec<f64> = (0..5000).map(|i| i as f64 * 2e-3).collect();
        let mut whole = power_csv(dir, &times, None);
        whole.backends = record.backends;
        whole.phases = record.phases;
        let rows: Vec<MonitorRow> = (0..=(seconds / 5.0) as usize)
            .map(|k| MonitorRow {
                reference_ms: 5.0 + scatter(k) / 2.0,
                ..row(k as f64 * 5.0, 300)
            })
            .chain([row(seconds, 300)])
            .collect();
        Report::of(&whole, dir, &rows, floor, Targets::default()).unwrap()
    }

    #[test]
    fn a_soak_too_short_to_judge_says_what_it_did_not_judge_and_how_long_would() {
        let dir = tempfile::tempdir().unwrap();
        // Three seconds: one repetition of 2 s, a probe of 15 ms.
        let short = report(
            dir.path(),
            with_phases(record_with(1, |_| 10.0), 2.0),
            3.0,
            floor_of(0.015),
        );
        assert!(!short.ok && short.missed.is_empty(), "{short:?}");
        let targets: Vec<&str> = short.not_judged.iter().map(|n| n.target.as_str()).collect();
        assert_eq!(
            targets,
            [
                "gaps in the readings of r",
                "latency drift of backend 0 (fake)"
            ]
        );
        // The drift takes 4 repetitions of 2 s (8 s); the gaps a probe of more than 22.1 ms,
        // which a soak of 20 times that gives (0.44 s).
        let minutes: Vec<f64> = short
            .not_judged
            .iter()
            .map(|n| n.soak_minutes.unwrap())
            .collect();
        assert!(
            (minutes[0] - 20.0 * 3.689 * 6e-3 / 60.0).abs() < 1e-5,
            "{minutes:?}"
        );
        assert!((minutes[1] - 8.0 / 60.0).abs() < 1e-9, "{minutes:?}");
        assert_eq!(
            short.verdict(),
            "not judged: gaps in the readings of r: a 0.015 s stall probe bounds them at \
             885331/h, at or above the 600000/h of gaps back to back (a probe of more than \
             0.022 s bounds them); latency drift of backend 0 (fake): 1 repetition, a drift \
             takes 4; a soak of about 0.14 min judges them on this machine; every target \
             judged was met"
        );
        let text = short.render();
        assert!(!text.contains("every target met"), "{text}");
        assert!(
            text.ends_with(&format!("soak: {}\n", short.verdict())),
            "{text}"
        );
        assert!(
            text.contains("too few to judge a drift (it takes 4): not judged"),
            "{text}"
        );
        assert!(text.contains("machine 0.015 s probed"), "{text}");
        // The probe saw no stall: its stalled share is an empty sum, -0.0.
        assert!(!text.contains("-0.0"), "{text}");
        assert!(text.contains("(0.000 % of the time)"), "{text}");
    }

    #[test]
    fn every_target_met_only_when_every_target_was_judged() {
        let dir = tempfile::tempdir().unwrap();
        let steady = |k| 10.0 + scatter(k);
        let met = report(
            dir.path(),
            with_phases(record_with(100, steady), 2.0),
            200.0,
            floor_of(10.0),
        );
        assert!(met.ok && met.not_judged.is_empty(), "{met:?}");
        assert_eq!(met.verdict(), "every target met");
        assert!(met.render().ends_with("soak: every target met\n"));

        // A target missed (memory grew 40 MiB) and another not judged (one repetition; the
        // probe's 10 s bound the gaps): both said, the miss first.
        let times: Vec<f64> = (0..5000).map(|i| i as f64 * 2e-3).collect();
        let mut record = power_csv(dir.path(), &times, None);
        record.phases = with_phases(record_with(1, |_| 10.0), 2.0).phases;
        let rows = [row(0.0, 300), row(3.0, 340)];
        let missed = Report::of(
            &record,
            dir.path(),
            &rows,
            floor_of(10.0),
            Targets::default(),
        )
        .unwrap();
        assert_eq!(missed.missed, ["memory"]);
        assert!(
            missed.verdict().starts_with(
                "a target was missed: memory; not judged: latency drift of backend 0 (fake): \
                 1 repetition, a drift takes 4; a soak of about 0.14 min judges it"
            ),
            "{}",
            missed.verdict()
        );
        assert!(!missed.verdict().contains("every target judged was met"));
    }

    #[test]
    fn no_figure_is_written_as_a_negative_zero() {
        assert_eq!(fixed(-0.0, 3, false), "0.000");
        assert_eq!(fixed(-0.0004, 3, false), "0.000");
        assert_eq!(fixed(-0.0004, 2, true), "0.00");
        assert_eq!(fixed(0.0, 2, true), "0.00");
        assert_eq!(fixed(-0.006, 2, true), "-0.01");
        assert_eq!(fixed(0.006, 2, true), "+0.01");
        assert_eq!(fixed(99.282, 3, false), "99.282");
        assert_eq!(fixed(-3.1, 1, true), "-3.1");
        assert_eq!(fixed(f64::NAN, 2, true), "NaN");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(2.0), "2");
        // A drift whose ratio and interval round to zero, and a target of -0.
        let rendered = Report {
            targets: Targets {
                max_growth_mib: -0.0,
                max_drift_pct: -0.0,
            },
            latency: vec![Drift {
                ratio: RatioCi::of(&[10.0, 10.00001], &[10.0, 10.00002]),
                corrected: RatioCi::of(&[10.0, 10.00001], &[10.0, 10.00002]),
                ok: Some(true),
                compared: 2,
                ..drift(&record_with(4, |_| 10.0), &[], Targets::default())[0].clone()
            }],
            ..report(
                tempfile::tempdir().unwrap().path(),
                record_with(1, |_| 10.0),
                3.0,
                floor_of(0.015),
            )
        }
        .render();
        assert!(rendered.contains("0.00 % (95 % CI "), "{rendered}");
        assert!(rendered.contains("within ±0 %"), "{rendered}");
        assert!(rendered.contains("target ≤ 0 MiB"), "{rendered}");
        assert!(
            !rendered.contains("-0.0") && !rendered.contains("+0.00"),
            "{rendered}"
        );
    }

    #[test]
    fn a_soak_length_is_rounded_up_to_two_figures() {
        assert_eq!(minutes_up(0.1234), "0.13");
        assert_eq!(minutes_up(0.2), "0.20");
        assert_eq!(minutes_up(8.0 / 60.0), "0.14");
        assert_eq!(minutes_up(0.00738), "0.0074");
        assert_eq!(minutes_up(12.3), "13");
        assert_eq!(minutes_up(150.0), "150");
    }

    fn row(t_s: f64, mib: u64) -> MonitorRow {
        MonitorRow {
            t_s,
            rss_kib: mib * 1024,
            power_csv_bytes: 0,
            latency_csv_bytes: 0,
            run_json_bytes: 0,
            summary_csv_bytes: 0,
            reference_ms: 5.0,
        }
    }

    #[test]
    fn memory_growth_counts_from_the_start_of_measuring() {
        let rows = [row(0.0, 300), row(5.0, 340), row(10.0, 320)];
        let m = memory(&rows, 40, Targets::default());
        assert_eq!((m.start_mib, m.end_mib, m.peak_mib), (300.0, 320.0, 340.0));
        assert_eq!(m.kib_per_repetition, 512.0);
        assert!(m.ok);
        let m = memory(
            &rows,
            40,
            Targets {
                max_growth_mib: 10.0,
                ..Targets::default()
            },
        );
        assert!(!m.ok);
    }

    #[test]
    fn the_resident_memory_of_this_process_is_read() {
        let kib = resident_kib().unwrap();
        assert!(kib > 100, "{kib} KiB");
    }
}
