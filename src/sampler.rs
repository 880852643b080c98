//! The sampler: one thread per sensor, reading at the sensor's own update rate and stamping
//! every reading on the run clock.
//!
//! Readings are kept in the thread and handed back when the sampler stops, so the timed loop
//! on the other core never contends for a lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::RunClock;
#[cfg(test)]
use crate::sensor::Origin;
use crate::sensor::{PowerSensor, Reading, SensorInfo};

/// After this many failed reads in a row a sensor is given up for the rest of the run.
const MAX_CONSECUTIVE_ERRORS: u32 = 20;

/// One read of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Run-clock time of the read (midpoint of the bus transaction), in seconds.
    pub t: f64,
    /// The values, or the error the read returned.
    pub reading: Result<Reading, String>,
}

/// Everything one sensor produced during a run.
#[derive(Debug, Clone)]
pub struct SensorLog {
    pub info: SensorInfo,
    pub update_period: Duration,
    pub samples: Vec<Sample>,
    /// Set when the sensor was given up mid-run (too many failed reads in a row).
    pub failure: Option<String>,
    /// CPU time the sampler thread used.
    pub cpu_time: Duration,
}

/// Running sampler threads.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<SensorLog>>,
}

impl Sampler {
    /// Starts one thread per sensor.
    pub fn start(sensors: Vec<Box<dyn PowerSensor>>, clock: RunClock) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sensors
            .into_iter()
            .map(|sensor| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("joulebench-sampler".into())
                    .spawn(move || sample_until(sensor, clock, &stop))
                    .expect("spawning a thread")
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops every thread and returns the logs, in sensor order.
    pub fn stop(self) -> Vec<SensorLog> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| match t.join() {
                Ok(log) => log,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    }
}

fn sample_until(mut sensor: Box<dyn PowerSensor>, clock: RunClock, stop: &AtomicBool) -> SensorLog {
    let cpu_start = cpu_time::ThreadTime::now();
    let period = sensor.update_period().as_secs_f64();
    // A stale read means we arrived just before the next conversion: poll again soon rather
    // than waiting a whole period and drifting into a beat with the sensor.
    let stale_retry = period / 8.0;
    let mut samples = Vec::new();
    let mut failure = None;
    let mut errors_in_a_row = 0;
    let mut next = clock.now();
    while !stop.load(Ordering::Relaxed) {
        let before = clock.now();
        let reading = sensor.read().map_err(|e| format!("{e:#}"));
        let after = clock.now();
        let stale = matches!(reading, Ok(Reading { stale: true, .. }));
        match &reading {
            Err(e) => {
                errors_in_a_row += 1;
                if errors_in_a_row >= MAX_CONSECUTIVE_ERRORS {
                    failure = Some(format!("{errors_in_a_row} failed reads in a row: {e}"));
                }
            }
            Ok(_) => errors_in_a_row = 0,
        }
        samples.push(Sample {
            t: (before + after) / 2.0,
            reading,
        });
        if failure.is_some() {
            break;
        }
        next = if stale {
            after + stale_retry
        } else {
            // Keep the cadence, but never try to catch up after a stall.
            (next + period).max(after)
        };
        sleep_until(&clock, next, stop);
    }
    SensorLog {
        info: sensor.info().clone(),
        update_period: sensor.update_period(),
        samples,
        failure,
        cpu_time: cpu_start.elapsed(),
    }
}

fn sleep_until(clock: &RunClock, t: f64, stop: &AtomicBool) {
    // Slow sensors (NVML at 10 Hz, say) sleep long: wake up regularly to notice `stop`.
    const SLICE: f64 = 0.02;
    loop {
        let left = t - clock.now();
        if left <= 0.0 || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_secs_f64(left.min(SLICE)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Result;

    struct Counting {
        info: SensorInfo,
        reads: u32,
        fail_after: u32,
    }

    impl PowerSensor for Counting {
        fn info(&self) -> &SensorInfo {
            &self.info
        }
        fn update_period(&self) -> Duration {
            Duration::from_millis(2)
        }
        fn read(&mut self) -> Result<Reading> {
            self.reads += 1;
            if self.reads > self.fail_after {
                anyhow::bail!("no acknowledge");
            }
            Ok(Reading {
                volts: Some(5.0),
                amps: Some(1.0),
                watts: 5.0,
                ..Reading::default()
            })
        }
    }

    fn counting(fail_after: u32) -> Box<dyn PowerSensor> {
        Box::new(Counting {
            info: SensorInfo {
                kind: "test".into(),
                rail: "r".into(),
                origin: Origin::Simulated,
                detail: String::new(),
            },
            reads: 0,
            fail_after,
        })
    }

    #[test]
    fn samples_are_stamped_in_order_at_about_the_sensor_rate() {
        let clock = RunClock::start();
        let sampler = Sampler::start(vec![counting(u32::MAX)], clock);
        std::thread::sleep(Duration::from_millis(200));
        let logs = sampler.stop();
        let samples = &logs[0].samples;
        assert!(samples.windows(2).all(|w| w[0].t < w[1].t));
        // 2 ms period over 200 ms: about 100 reads; generous bounds for a loaded machine.
        assert!((20..=110).contains(&samples.len()), "{}", samples.len());
        assert!(logs[0].failure.is_none());
    }

    #[test]
    fn a_sensor_that_keeps_failing_is_given_up_and_keeps_its_samples() {
        let sampler = Sampler::start(vec![counting(5)], RunClock::start());
        std::thread::sleep(Duration::from_millis(150));
        let logs = sampler.stop();
        let log = &logs[0];
        assert_eq!(log.samples.iter().filter(|s| s.reading.is_ok()).count(), 5);
        let failure = log.failure.as_deref().unwrap();
        assert!(failure.contains("no acknowledge"), "{failure}");
        assert_eq!(log.samples.len(), 5 + MAX_CONSECUTIVE_ERRORS as usize);
    }
}
