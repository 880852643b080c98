//! Results written as they are measured, so that a crash, an OOM kill or a power cut of the
//! reading host loses at most about a second of them.
//!
//! One writer thread owns the run folder's files. The sampler threads and the timed loop hand
//! it batches through a channel whose send never blocks (std's unbounded mpsc: an allocation
//! and a few atomic operations), so neither waits on the disk. The writer appends `latency.csv`
//! and `power.csv` and syncs them every [`FLUSH_EVERY`]; after each repetition it replaces
//! `summary.csv` and `run.json` atomically, and `run.json` again at every phase change (its
//! `progress`), with `finished: false` until the runner writes the last ones.
//!
//! While streaming, the writer is the one keeper of the sensor readings: the sampler threads
//! hand theirs over instead of keeping them. After each repetition it settles the windows
//! whose readings are all in and releases the readings only those used ([`crate::settled`]),
//! so memory does not grow with a run's length; [`Writer::finish`] hands back the record it
//! was started on, holding what is left of the readings and the settled results, from which
//! the final summary is exactly the one all the readings give.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::files;
use super::folder::{LatencyRow, Progress, LATENCY_CSV, POWER_CSV, RUN_JSON, SUMMARY_CSV};
use crate::clock::{PhaseLog, RunClock, Slot};
use crate::protocol::Latency;
use crate::protocol::LatencySink;
use crate::record::{BackendResult, RunRecord};
use crate::results::SummaryRow;
use crate::runner::{Kept, RepetitionSink, Stream};
use crate::sampler::{Sample, SampleSink};

/// The longest the latency and power rows stay in memory before they are written and synced.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// How often the writer looks at the phase log for a phase change to put in `run.json`.
const POLL: Duration = Duration::from_millis(100);

/// How long a repetition's summary waits for every sensor's readings past its end (they come
/// in batches) before it is written with what has come.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(2);

/// Where and how a run streams its results.
#[derive(Debug, Clone)]
pub struct StreamTo {
    /// The run folder (created, empty).
    pub dir: PathBuf,
    /// The command line, for `run.json`.
    pub command: Vec<String>,
}

impl StreamTo {
    /// What starts this folder's writer for [`crate::runner::Prepared::execute_streaming`].
    pub fn starter(
        &self,
    ) -> impl Fn(RunRecord, PhaseLog, RunClock) -> Result<Box<dyn Stream>> + '_ {
        move |record, phases, clock| Ok(Box::new(Writer::start(self, record, phases, clock)?))
    }
}

enum Msg {
    Samples {
        sensor: usize,
        batch: Vec<Sample>,
        failure: Option<String>,
        last: bool,
    },
    Latencies {
        slot: Slot,
        engine: String,
        /// 1-based index of the batch's first classification.
        first: usize,
        batch: Vec<Latency>,
    },
    Backend {
        backend: usize,
        result: Box<BackendResult>,
        /// Run-clock time the backend started: its summary waits for readings past it.
        at: f64,
    },
    Repetition {
        backend: usize,
        run: Box<crate::protocol::TimedRun>,
        /// Run-clock time the repetition ended: its summary waits for readings past it.
        at: f64,
    },
}

/// The measuring threads' end of the channel. Sending never blocks; if the writer is gone the
/// batch is dropped (the writer only goes early by panicking, which [`Writer::finish`] raises).
#[derive(Clone)]
pub struct Feed {
    tx: Sender<Msg>,
}

impl SampleSink for Feed {
    fn samples(&self, sensor: usize, batch: Vec<Sample>, failure: Option<String>, last: bool) {
        let _ = self.tx.send(Msg::Samples {
            sensor,
            batch,
            failure,
            last,
        });
    }
}

impl LatencySink for Feed {
    fn latencies(&self, slot: Slot, engine: &str, first: usize, batch: Vec<Latency>) {
        let _ = self.tx.send(Msg::Latencies {
            slot,
            engine: engine.to_string(),
            first,
            batch,
        });
    }
}

impl RepetitionSink for Feed {
    fn backend(&self, backend: usize, result: BackendResult, at: f64) {
        let _ = self.tx.send(Msg::Backend {
            backend,
            result: Box::new(result),
            at,
        });
    }

    fn repetition(&self, backend: usize, run: crate::protocol::TimedRun, at: f64) {
        let _ = self.tx.send(Msg::Repetition {
            backend,
            run: Box::new(run),
            at,
        });
    }
}

impl Stream for Writer {
    fn sample_sink(&self) -> std::sync::Arc<dyn SampleSink> {
        std::sync::Arc::new(self.feed())
    }

    fn latency_sink(&self) -> std::sync::Arc<dyn LatencySink> {
        std::sync::Arc::new(self.feed())
    }

    fn repetition_sink(&self) -> std::sync::Arc<dyn RepetitionSink> {
        std::sync::Arc::new(self.feed())
    }

    fn finish(self: Box<Self>) -> Kept {
        Writer::finish(*self)
    }
}

/// The writer thread.
pub struct Writer {
    feed: Feed,
    thread: JoinHandle<Kept>,
}

impl Writer {
    /// Creates `latency.csv` and `power.csv` in `to.dir`, writes a first `run.json` (nothing
    /// measured, not finished) and starts the thread. `record` is the run so far: rig, start
    /// time, and one log (no readings yet) per sensor, a missing one's saying why; the writer
    /// holds it until [`Writer::finish`] hands it back.
    pub fn start(
        to: &StreamTo,
        record: RunRecord,
        phases: PhaseLog,
        clock: RunClock,
    ) -> Result<Self> {
        let create = |name: &str| -> Result<csv::Writer<std::fs::File>> {
            let path = to.dir.join(name);
            csv::Writer::from_path(&path)
                .with_context(|| format!("cannot write {}", path.display()))
        };
        let mut state = State {
            dir: to.dir.clone(),
            command: to.command.clone(),
            latency: create(LATENCY_CSV)?,
            power: create(POWER_CSV)?,
            latency_rows: 0,
            power_rows: 0,
            last_fresh: vec![f64::NEG_INFINITY; record.sensors.len()],
            // A missing sensor has no readings to come: its windows settle at once.
            done: record.sensors.iter().map(|s| s.missing.is_some()).collect(),
            record,
            phases,
            clock,
            rows: Vec::new(),
            energies: Default::default(),
            pending: None,
            error: None,
        };
        state.write_run_json()?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("joulebench-writer".into())
            .spawn(move || {
                crate::sampler::background_priority();
                state.run(rx)
            })
            .context("cannot start the writer thread")?;
        Ok(Self {
            feed: Feed { tx },
            thread,
        })
    }

    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// Waits for every other [`Feed`] to be dropped (the sampler stopped, the backends done),
    /// writes the last rows and hands back the record.
    pub fn finish(self) -> Kept {
        drop(self.feed);
        match self.thread.join() {
            Ok(kept) => kept,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

struct State {
    dir: PathBuf,
    command: Vec<String>,
    latency: csv::Writer<std::fs::File>,
    power: csv::Writer<std::fs::File>,
    latency_rows: usize,
    power_rows: usize,
    /// Per sensor: the time of its latest fresh reading, and whether its thread has ended.
    last_fresh: Vec<f64>,
    done: Vec<bool>,
    /// The run as far as it got; its sensors hold every reading handed over.
    record: RunRecord,
    phases: PhaseLog,
    clock: RunClock,
    /// The summary rows of the last checkpoint.
    rows: Vec<SummaryRow>,
    /// The readings `record` holds, indexed: each checkpoint adds only what came since.
    energies: crate::summary::Energies,
    /// A repetition's end whose summary waits for readings past it, and since when.
    pending: Option<(f64, Instant)>,
    error: Option<String>,
}

impl State {
    fn run(mut self, rx: Receiver<Msg>) -> Kept {
        let mut next_flush = Instant::now() + FLUSH_EVERY;
        loop {
            let wait = next_flush
                .saturating_duration_since(Instant::now())
                .min(POLL);
            let mut backends_changed = false;
            let mut open = match rx.recv_timeout(wait) {
                Ok(msg) => {
                    backends_changed |= self.take(msg);
                    true
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => false,
            };
            // Everything queued, before the phase log is read: a backend's start is sent
            // before its first phase begins, so run.json never shows the phase without it.
            while open {
                match rx.try_recv() {
                    Ok(msg) => backends_changed |= self.take(msg),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => open = false,
                }
            }
            let spans = self.phases.spans();
            let phase_changed = spans != self.record.phases;
            self.record.phases = spans;
            let now = Instant::now();
            if now >= next_flush || !open {
                self.flush();
                next_flush = now + FLUSH_EVERY;
            }
            if !open {
                break;
            }
            let ready = self.pending.is_some_and(|(at, since)| {
                now.duration_since(since) >= CHECKPOINT_WAIT
                    || self
                        .last_fresh
                        .iter()
                        .zip(&self.done)
                        .all(|(t, done)| *done || *t > at)
            });
            if ready {
                self.pending = None;
                self.flush();
                // Readings up to each sensor's latest fresh one are all in (a sensor whose
                // thread ended has no more to come): its windows before that are final.
                let horizons: Vec<f64> = (self.last_fresh.iter().zip(&self.done))
                    .map(|(t, done)| if *done { f64::INFINITY } else { *t })
                    .collect();
                crate::settled::settle(&mut self.record, &mut self.energies, &horizons);
                self.rows = crate::summary::summarize_with(&self.record, &self.energies);
                let summary = self.dir.join(SUMMARY_CSV);
                let written = files::write_summary(&summary, &self.rows);
                self.note(written);
            }
            if ready || phase_changed || backends_changed {
                let written = self.write_run_json();
                self.note(written);
            }
        }
        Kept {
            record: self.record,
            error: self.error,
        }
    }

    /// Takes one message; true if it changed what `run.json` says about the backends.
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Samples {
                sensor,
                batch,
                failure,
                last,
            } => {
                self.take_samples(sensor, batch, failure, last);
                false
            }
            Msg::Latencies {
                slot,
                engine,
                first,
                batch,
            } => {
                self.write_latencies(slot, &engine, first, &batch);
                false
            }
            Msg::Backend {
                backend,
                result,
                at,
            } => {
                let backends = &mut self.record.backends;
                if backend < backends.len() {
                    backends[backend].repetitions.extend(result.repetitions);
                } else {
                    backends.push(*result);
                }
                self.pending = Some((at, Instant::now()));
                true
            }
            Msg::Repetition { backend, run, at } => {
                if let Some(b) = self.record.backends.get_mut(backend) {
                    b.repetitions.push(*run);
                }
                self.pending = Some((at, Instant::now()));
                true
            }
        }
    }

    /// Takes a batch of `sensor`'s samples: notes its latest fresh reading, whether its thread
    /// has ended (`last`) and its failure, writes the batch's rows to `power.csv` (until a
    /// write fails) and keeps the samples in the record.
    fn take_samples(
        &mut self,
        sensor: usize,
        batch: Vec<Sample>,
        failure: Option<String>,
        last: bool,
    ) {
        if let Some(t) = batch
            .iter()
            .rev()
            .find(|s| matches!(&s.reading, Ok(r) if !r.stale))
            .map(|s| s.t)
        {
            self.last_fresh[sensor] = t;
        }
        self.done[sensor] |= last;
        if failure.is_some() {
            self.record.sensors[sensor].failure = failure;
        }
        if self.error.is_none() {
            let info = &self.record.sensors[sensor].info;
            let mut written = Ok(());
            for s in &batch {
                let row = files::power_row(sensor, info, s, &self.record.phases);
                written = self.power.serialize(row);
                if written.is_err() {
                    break;
                }
            }
            self.power_rows += batch.len();
            self.note_csv(written, POWER_CSV);
        }
        self.record.sensors[sensor].samples.extend(batch);
    }

    /// Writes a batch of a repetition's latencies to `latency.csv`, `first` the 1-based index
    /// of its first classification; nothing once a write has failed.
    fn write_latencies(&mut self, slot: Slot, engine: &str, first: usize, batch: &[Latency]) {
        if self.error.is_some() {
            return;
        }
        let mut written = Ok(());
        for (i, l) in batch.iter().enumerate() {
            written = self.latency.serialize(LatencyRow {
                backend_index: slot.backend,
                repetition: slot.repetition,
                engine,
                inference: first + i,
                start_s: l.start,
                latency_ms: l.seconds * 1e3,
            });
            if written.is_err() {
                break;
            }
        }
        self.latency_rows += batch.len();
        self.note_csv(written, LATENCY_CSV);
    }

    /// Writes the buffered rows and syncs both files: what a power cut would otherwise lose.
    fn flush(&mut self) {
        if self.error.is_some() {
            return;
        }
        for (w, name) in [
            (&mut self.latency, LATENCY_CSV),
            (&mut self.power, POWER_CSV),
        ] {
            let path = self.dir.join(name);
            let synced = w.flush().and_then(|()| w.get_ref().sync_data());
            if let Err(e) = synced {
                self.error = Some(format!("cannot write {}: {e}", path.display()));
                return;
            }
        }
    }

    fn write_run_json(&mut self) -> Result<()> {
        // The counts below are then rows on disk: a later `summarize` of a killed run checks
        // that the files still hold them.
        self.flush();
        let running = self.record.phases.last().filter(|s| s.end.is_infinite());
        let progress = Progress {
            finished: false,
            phase: running.map(|s| s.phase),
            backend: running.and_then(|s| s.backend),
            repetition: running.and_then(|s| s.repetition),
            at_s: self.clock.now(),
            latency_rows: self.latency_rows,
            power_rows: self.power_rows,
            files: None,
        };
        self.energies.update(&self.record);
        files::write_run_json(
            &self.dir.join(RUN_JSON),
            &self.record,
            &self.rows,
            crate::summary::phase_energy_with(&self.record, &self.energies),
            &self.command,
            &progress,
        )
    }

    fn note(&mut self, written: Result<()>) {
        if let (Err(e), None) = (written, &self.error) {
            self.error = Some(format!("{e:#}"));
        }
    }

    fn note_csv(&mut self, written: csv::Result<()>, name: &str) {
        if let (Err(e), None) = (written, &self.error) {
            self.error = Some(format!(
                "cannot write {}: {e}",
                self.dir.join(name).display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::{backend_result, record};
    use crate::sensor::Reading;

    fn samples(from: usize, n: usize) -> Vec<Sample> {
        (from..from + n)
            .map(|i| Sample {
                t: i as f64 * 1e-3,
                reading: Ok(Reading {
                    watts: i as f64,
                    ..Reading::default()
                }),
            })
            .collect()
    }

    fn rows(path: &std::path::Path) -> usize {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().count().saturating_sub(1)
    }

    fn start(dir: &std::path::Path, sensors: usize) -> (Writer, PhaseLog) {
        let to = StreamTo {
            dir: dir.to_path_buf(),
            command: vec!["joulebench".into()],
        };
        let phases = PhaseLog::new();
        let w = Writer::start(&to, record(sensors), phases.clone(), RunClock::start()).unwrap();
        (w, phases)
    }

    #[test]
    fn batches_reach_the_disk_within_a_flush_interval_and_all_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _) = start(dir.path(), 2);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
        assert_eq!(json["finished"], false);
        let feed = writer.feed();
        let sent = Instant::now();
        feed.samples(0, samples(0, 300), None, false);
        feed.samples(1, samples(0, 5), None, false);
        feed.samples(0, samples(300, 200), None, false);
        feed.latencies(
            Slot {
                backend: 0,
                repetition: 1,
            },
            "fake",
            1,
            vec![Latency {
                start: 0.5,
                seconds: 0.01,
            }],
        );
        let power = dir.path().join("power.csv");
        while rows(&power) < 505 {
            assert!(
                sent.elapsed() < FLUSH_EVERY + Duration::from_millis(500),
                "rows not on disk {:?} after they were handed over",
                sent.elapsed()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(rows(&dir.path().join("latency.csv")), 1);
        let latency = std::fs::read_to_string(dir.path().join("latency.csv")).unwrap();
        assert!(latency.contains("0,1,fake,1,0.5,10.0"), "{latency}");
        feed.samples(1, samples(5, 1), Some("gone".into()), true);
        drop(feed);
        let kept = writer.finish();
        assert!(kept.error.is_none());
        // Every sample, per sensor, in the order handed over.
        assert_eq!(kept.record.sensors[0].samples, samples(0, 500));
        assert_eq!(kept.record.sensors[1].samples, samples(0, 6));
        assert_eq!(rows(&power), 506);
    }

    #[test]
    fn a_repetition_rewrites_the_summary_and_a_phase_change_the_progress() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, phases) = start(dir.path(), 0);
        let slot = Slot {
            backend: 0,
            repetition: 1,
        };
        phases.begin(crate::clock::Phase::Warmup, Some(slot), 0.0);
        let json = || -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap()
        };
        let waited = Instant::now();
        while json()["progress"]["phase"] != "warmup" {
            assert!(waited.elapsed() < Duration::from_secs(2), "{}", json());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(json()["progress"]["backend"], 0);
        let summary = dir.path().join("summary.csv");
        assert!(!summary.exists());
        phases.end(0.03);
        writer.feed().backend(0, backend_result(), 0.03);
        // summary.csv is replaced first, then run.json.
        while !summary.exists() || json()["backends"][0]["model_sha256"] != "abc" {
            assert!(waited.elapsed() < Duration::from_secs(3));
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&summary).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().nth(1).unwrap().contains(",ok"), "{text}");
        assert_eq!(json()["finished"], false);
        writer.finish();
    }
}
