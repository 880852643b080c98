//! A small run record for the output tests: one tflite backend, sensors that read nothing
//! (built on [`crate::summary::fixtures`]).

use std::time::Duration;

use crate::protocol::{Latency, TimedRun};
use crate::record::{BackendResult, RunRecord};
use crate::summary::fixtures;

pub fn rig() -> crate::rig::Rig {
    fixtures::rig("runs = 2")
}

/// A record of [`rig`] with `sensors` sensors and no backends yet.
pub fn record(sensors: usize) -> RunRecord {
    let logs = (0..sensors)
        .map(|i| fixtures::log(&format!("r{i}"), Duration::from_millis(1), Vec::new()))
        .collect();
    fixtures::record(rig(), Vec::new(), logs)
}

/// [`rig`]'s backend after one repetition of [`two_classifications`], on a fake engine, its
/// model's SHA-256 `abc`.
pub fn backend_result() -> BackendResult {
    let mut result = fixtures::backend(&rig().backends[0], vec![two_classifications()]);
    result.model.sha256 = "abc".into();
    result
}

/// A timed run of two 10 ms classifications in the window 0 to 0.02 s.
pub fn two_classifications() -> TimedRun {
    TimedRun {
        latencies: vec![
            Latency {
                start: 0.0,
                seconds: 0.01,
            };
            2
        ],
        window: Some((0.0, 0.02)),
        batch: 1,
        ..Default::default()
    }
}
