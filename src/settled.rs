//! Window results that can no longer change, so that a long run need not keep every reading.
//!
//! A window (a phase, a timed run) is settled for a sensor once that sensor's readings are in
//! past its end: its energy and validity are then final, and are kept here instead of being
//! integrated again from the readings. The readings that only settled windows used are on
//! disk (`power.csv`) and are released from memory, so an hour-long run holds a few seconds of
//! readings rather than millions ([`crate::output::stream`] settles after each repetition).
//! Every summary computed from the record afterwards is the one its full readings give, to the
//! bit: the settled figures are those same computations, done once.

use crate::record::RunRecord;
use crate::sampler::Sample;
use crate::summary::Energies;

/// Fresh readings kept before the oldest window still open: the counter's edge share reads
/// the update interval before the one holding the edge.
const KEPT_BEFORE: usize = 2;

/// Settles every window of `record` that ends before `horizons[sensor]` for that sensor (the
/// time up to which its readings are all in; infinite once its sampler has stopped), then
/// releases the readings that no window still open needs: those further than
/// `summary::SensorEnergy::reach` before the oldest of them, less `KEPT_BEFORE` fresh ones.
/// `energies` is brought up to date first (the readings handed over since it last was) and
/// left up to date after the release, ready for the checkpoint's summary and `run.json`.
pub fn settle(record: &mut RunRecord, energies: &mut Energies, horizons: &[f64]) {
    energies.update(record);
    let windows: Vec<(f64, f64)> = record
        .phases
        .iter()
        .filter(|s| s.end.is_finite())
        .map(|s| (s.start, s.end))
        .chain(
            record
                .backends
                .iter()
                .flat_map(|b| b.repetitions.iter().filter_map(|r| r.window)),
        )
        .collect();
    // A phase still running is a window whose end is not known yet.
    let open_from = record
        .phases
        .iter()
        .filter(|s| !s.end.is_finite())
        .map(|s| s.start)
        .fold(f64::INFINITY, f64::min);
    let spec = &record.rig.validity;
    let settled = &mut record.settled;
    let sensors = record.sensors.len();
    for (sensor, log) in record.sensors.iter_mut().enumerate() {
        let horizon = horizons.get(sensor).copied().unwrap_or(f64::NEG_INFINITY);
        let energy = energies.sensor(sensor);
        let reach = energy.reach();
        let mut oldest_needed = open_from.min(horizon);
        for &w in &windows {
            if settled.contains(sensor, w) {
                continue;
            }
            if w.1 + reach < horizon {
                settled.insert(sensor, w, energy.checked(w, spec));
            } else {
                oldest_needed = oldest_needed.min(w.0);
            }
        }
        let release = releasable(&log.samples, oldest_needed - reach);
        log.samples.drain(..release);
        settled.release(sensor, sensors, release);
    }
    energies.update(record);
}

/// How many of `samples` (in time order) lie before `cut`, less the [`KEPT_BEFORE`] fresh
/// ones nearest it.
fn releasable(samples: &[Sample], cut: f64) -> usize {
    let before = samples.partition_point(|s| s.t < cut);
    let mut fresh = 0;
    let mut i = before;
    while i > 0 && fresh < KEPT_BEFORE {
        i -= 1;
        if matches!(&samples[i].reading, Ok(r) if !r.stale) {
            fresh += 1;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Phase, PhaseSpan};
    use crate::protocol::{Latency, TimedRun};
    use crate::sensor::{ReadError, Reading};
    use crate::summary::{self, fixtures};

    const REPETITIONS: usize = 3;
    const END: f64 = 1.0 + 3.0 * REPETITIONS as f64 + 0.5;

    /// An idle second, then per repetition: warm-up 0.2 s, settle 1 s, timed 1.7 s.
    fn phases() -> Vec<PhaseSpan> {
        let span = |phase, repetition: Option<usize>, start: f64, end: f64| {
            let slot = repetition.map(|repetition| crate::clock::Slot {
                backend: 0,
                repetition,
            });
            PhaseSpan::new(phase, slot, start, end)
        };
        let mut spans = vec![span(Phase::IdleBaseline, None, 0.0, 1.0)];
        for r in 0..REPETITIONS {
            let at = 1.0 + 3.0 * r as f64;
            spans.push(span(Phase::Warmup, Some(r + 1), at, at + 0.2));
            spans.push(span(Phase::Settle, Some(r + 1), at + 0.2, at + 1.2));
            spans.push(span(Phase::Timed, Some(r + 1), at + 1.2, at + 2.9));
        }
        spans
    }

    fn timed_runs() -> Vec<TimedRun> {
        phases()
            .iter()
            .filter(|s| s.phase == Phase::Timed)
            .map(|s| TimedRun {
                latencies: vec![
                    Latency {
                        start: s.start,
                        seconds: 0.01,
                    };
                    170
                ],
                window: Some((s.start, s.end)),
                batch: 1,
                ..TimedRun::default()
            })
            .collect()
    }

    /// A sensor read every `period` s with a stale read between fresh ones, a failed read
    /// now and then, 2 W idle and 4.5 W timed; with `counter`, an energy counter too.
    fn readings(period: f64, counter: bool) -> Vec<Sample> {
        let spans = phases();
        let watts = |t: f64| {
            let timed = spans
                .iter()
                .any(|s| s.phase == Phase::Timed && (s.start..s.end).contains(&t));
            let level = if timed { 4.5 } else { 2.0 };
            level + 0.01 * (t * 37.0).sin()
        };
        let mut joules = 0.0;
        let mut out = Vec::new();
        let n = (END / period) as usize;
        for i in 0..n {
            let t = i as f64 * period;
            joules += watts(t) * period;
            let fresh = Reading {
                watts: watts(t),
                energy_j: counter.then_some(joules),
                // The counter's cross-check settles with its windows too.
                instant_watts: counter.then_some(watts(t) * 1.02),
                ..Reading::default()
            };
            let reading = if i % 97 == 50 {
                Err(ReadError::Failed("NACK".into()))
            } else {
                Ok(fresh)
            };
            out.push(Sample { t, reading });
            let stale = Reading {
                stale: true,
                instant_watts: counter.then_some(watts(t) * 1.02),
                ..Reading::default()
            };
            out.push(Sample {
                t: t + period / 2.0,
                reading: Ok(stale),
            });
        }
        out
    }

    fn full_record() -> RunRecord {
        let rig = fixtures::rig(&format!("repeat = {REPETITIONS}\nruns = 170"));
        let backend = fixtures::backend(&rig.backends[0], timed_runs());
        let mut logs = vec![
            fixtures::log("power", Duration::from_millis(2), readings(2e-3, false)),
            fixtures::log("counter", Duration::from_millis(90), readings(0.09, true)),
        ];
        logs[1].crosscheck = Some(crate::sensor::Crosscheck::InstantPower);
        let mut record = fixtures::record(rig, vec![backend], logs);
        record.phases = phases();
        record
    }

    /// The record as the writer holds it at `now`: the readings up to it, phases begun by
    /// then (the running one open-ended), repetitions ended by then.
    fn as_of(full: &RunRecord, streamed: &mut RunRecord, now: f64, handed: &mut [usize]) {
        for (s, log) in full.sensors.iter().enumerate() {
            while handed[s] < log.samples.len() && log.samples[handed[s]].t <= now {
                streamed.sensors[s]
                    .samples
                    .push(log.samples[handed[s]].clone());
                handed[s] += 1;
            }
        }
        streamed.phases = full
            .phases
            .iter()
            .filter(|p| p.start <= now)
            .map(|p| PhaseSpan {
                end: if p.end <= now { p.end } else { f64::INFINITY },
                ..p.clone()
            })
            .collect();
        streamed.backends[0].repetitions = full.backends[0]
            .repetitions
            .iter()
            .filter(|r| r.window.is_some_and(|w| w.1 <= now))
            .cloned()
            .collect();
    }

    fn last_fresh(log: &crate::sampler::SensorLog) -> f64 {
        log.samples
            .iter()
            .rev()
            .find(|s| matches!(&s.reading, Ok(r) if !r.stale))
            .map_or(f64::NEG_INFINITY, |s| s.t)
    }

    #[test]
    fn settling_as_the_run_goes_gives_the_summary_of_all_readings_to_the_bit() {
        let full = full_record();
        let full_rows = summary::summarize(&full);
        // The counter's rows carry a cross-check, so its settling is compared too.
        assert!(full_rows
            .iter()
            .filter(|r| r.sensor_index == Some(1))
            .filter(|r| matches!(r.repetition, crate::results::Repetition::One(_)))
            .all(|r| r.instant_vs_counter_pct.is_some()));
        let expected_rows = serde_json::to_string(&full_rows).unwrap();
        let expected_phases = serde_json::to_string(&summary::phase_energy(&full)).unwrap();

        let mut streamed = full_record();
        for log in &mut streamed.sensors {
            log.samples.clear();
        }
        let mut handed = vec![0; full.sensors.len()];
        let mut energies = Energies::default();
        let mut most_held = 0;
        // A checkpoint every 0.3 s, as the writer's come after repetitions and phase changes.
        for step in 1..=(END / 0.3) as usize + 1 {
            as_of(&full, &mut streamed, step as f64 * 0.3, &mut handed);
            let horizons: Vec<f64> = streamed.sensors.iter().map(last_fresh).collect();
            settle(&mut streamed, &mut energies, &horizons);
            most_held = most_held.max(streamed.sensors[0].samples.len());
        }
        as_of(&full, &mut streamed, f64::INFINITY, &mut handed);
        settle(&mut streamed, &mut energies, &[f64::INFINITY; 2]);

        assert_eq!(
            serde_json::to_string(&summary::summarize(&streamed)).unwrap(),
            expected_rows
        );
        assert_eq!(
            serde_json::to_string(&summary::phase_energy(&streamed)).unwrap(),
            expected_phases
        );
        for (s, log) in streamed.sensors.iter().enumerate() {
            assert_eq!(
                log.samples.len() + streamed.settled.released(s),
                full.sensors[s].samples.len()
            );
        }
        // Readings held: the longest stretch a window stays open (the 1.7 s timed phase) plus
        // a checkpoint interval and the reach, at 1000 readings/s: far below the run's 21000.
        let bound = ((1.7 + 0.3 + 0.05) * 1000.0) as usize;
        assert!(
            most_held <= bound,
            "held {most_held} readings, bound {bound}"
        );
        assert!(streamed.settled.released(0) > full.sensors[0].samples.len() / 2);
    }

    #[test]
    fn an_index_kept_up_to_date_gives_what_one_built_anew_gives() {
        let mut full = full_record();
        // A counter that loses count now and then, on and off the seams of the batches.
        for i in [40, 41, 97, 160] {
            full.sensors[1].samples[i].reading = Err(crate::sensor::ReadError::CounterBreak(
                format!("{}reset", crate::sensor::COUNTER_BREAK),
            ));
        }
        let mut streamed = full_record();
        for log in &mut streamed.sensors {
            log.samples.clear();
        }
        let mut handed = vec![0; full.sensors.len()];
        let mut energies = Energies::default();
        for step in 1..=(END / 0.3) as usize + 1 {
            as_of(&full, &mut streamed, step as f64 * 0.3, &mut handed);
            let horizons: Vec<f64> = streamed.sensors.iter().map(last_fresh).collect();
            let mut anew = Energies::default();
            let mut rebuilt = RunRecord {
                sensors: streamed.sensors.clone(),
                phases: streamed.phases.clone(),
                settled: streamed.settled.clone(),
                ..full_record()
            };
            rebuilt.backends = streamed.backends.clone();
            settle(&mut rebuilt, &mut anew, &horizons);
            settle(&mut streamed, &mut energies, &horizons);
            let anew = Energies::of(&rebuilt);
            assert_eq!(
                serde_json::to_string(&summary::summarize_with(&streamed, &energies)).unwrap(),
                serde_json::to_string(&summary::summarize_with(&rebuilt, &anew)).unwrap(),
                "at {} s",
                step as f64 * 0.3
            );
            assert_eq!(
                serde_json::to_string(&summary::phase_energy_with(&streamed, &energies)).unwrap(),
                serde_json::to_string(&summary::phase_energy_with(&rebuilt, &anew)).unwrap(),
            );
        }
    }

    /// A sample of 2 W at `t`.
    fn two_watts(t: f64) -> Sample {
        Sample {
            t,
            reading: Ok(Reading {
                watts: 2.0 + 0.01 * (t * 37.0).sin(),
                ..Reading::default()
            }),
        }
    }

    /// One sensor read every millisecond for `held` readings: an idle baseline to 0.25 s, one
    /// repetition timed from 0.25 s to 0.5 s, and a timed phase open since: no window still
    /// open ends, so every reading from 0.5 s on stays held.
    fn long_open_record(held: usize) -> RunRecord {
        let rig = fixtures::rig("repeat = 2\nruns = 10");
        let run = TimedRun {
            latencies: vec![
                Latency {
                    start: 0.25,
                    seconds: 0.025,
                };
                10
            ],
            window: Some((0.25, 0.5)),
            batch: 1,
            ..TimedRun::default()
        };
        let backend = fixtures::backend(&rig.backends[0], vec![run]);
        let samples = (0..held).map(|i| two_watts(i as f64 * 1e-3)).collect();
        let log = fixtures::log("power", Duration::from_millis(1), samples);
        let mut record = fixtures::record(rig, vec![backend], vec![log]);
        let slot = |repetition| {
            Some(crate::clock::Slot {
                backend: 0,
                repetition,
            })
        };
        record.phases = vec![
            PhaseSpan::new(Phase::IdleBaseline, None, 0.0, 0.25),
            PhaseSpan::new(Phase::Timed, slot(1), 0.25, 0.5),
            PhaseSpan::new(Phase::Timed, slot(2), 0.5, f64::INFINITY),
        ];
        record
    }

    /// The CPU one checkpoint takes (settle, summary, `run.json`'s phase energy), with 1 k and
    /// with 1 M readings held and 1000 new ones handed over before each: the index kept up to
    /// date beside the index built anew three times, as each checkpoint did before. A
    /// measurement, not a check: its figures are in docs/src/measurements.md.
    #[test]
    #[ignore = "a measurement: cargo test --release --lib checkpoint_cost -- --ignored --nocapture"]
    fn checkpoint_cost() {
        const NEW: usize = 1000;
        const CHECKPOINTS: u32 = 20;
        let cost = |held: usize, incremental: bool| -> (usize, f64) {
            let mut record = long_open_record(held);
            let mut energies = Energies::default();
            let horizon = |r: &RunRecord| [r.sensors[0].samples.last().unwrap().t];
            let horizons = horizon(&record);
            settle(&mut record, &mut energies, &horizons);
            let kept = record.sensors[0].samples.len();
            let mut spent = Duration::ZERO;
            for _ in 0..CHECKPOINTS {
                let last = record.sensors[0].samples.last().unwrap().t;
                let new = (1..=NEW).map(|i| two_watts(last + i as f64 * 1e-3));
                record.sensors[0].samples.extend(new);
                let horizons = horizon(&record);
                let start = cpu_time::ThreadTime::now();
                if incremental {
                    settle(&mut record, &mut energies, &horizons);
                    let rows = summary::summarize_with(&record, &energies);
                    energies.update(&record);
                    let phases = summary::phase_energy_with(&record, &energies);
                    std::hint::black_box((rows, phases));
                } else {
                    settle(&mut record, &mut Energies::default(), &horizons);
                    let rows = summary::summarize(&record);
                    let phases = summary::phase_energy(&record);
                    std::hint::black_box((rows, phases));
                }
                spent += start.elapsed();
            }
            (kept, spent.as_secs_f64() * 1e3 / f64::from(CHECKPOINTS))
        };
        println!("CPU per checkpoint, ms ({NEW} new readings each, mean of {CHECKPOINTS}):");
        println!(
            "{:>10}  {:>14}  {:>14}",
            "held", "rebuilt (old)", "kept (new)"
        );
        let mut kept_ms = Vec::new();
        for held in [1_000, 1_000_000] {
            let (n, old) = cost(held, false);
            let (_, new) = cost(held, true);
            println!("{n:>10}  {old:>14.3}  {new:>14.3}");
            kept_ms.push((old, new));
        }
        let (small, large) = (kept_ms[0], kept_ms[1]);
        println!(
            "1 M held / 1 k held: rebuilt {:.1}x, kept {:.2}x",
            large.0 / small.0,
            large.1 / small.1
        );
    }

    #[test]
    fn nothing_settles_before_a_sensors_readings_are_in() {
        let mut record = full_record();
        // The counter sensor's readings stop at 2.5 s: windows ending later wait for it.
        let horizons = [f64::INFINITY, 2.5];
        settle(&mut record, &mut Energies::default(), &horizons);
        let idle = (0.0, 1.0);
        let late = (record.phases[3].start, record.phases[3].end);
        assert!(record.settled.get(1, idle).is_some());
        assert!(record.settled.get(1, late).is_none());
        assert!(record.settled.get(0, late).is_some());
        // What the open windows need is still held.
        let first_kept = record.sensors[1].samples[0].t;
        assert!(first_kept < late.0, "{first_kept}");
    }
}
