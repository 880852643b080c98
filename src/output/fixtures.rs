//! A small run record for the output tests: one tflite backend, sensors that read nothing.

use std::time::Duration;

use crate::protocol::{Latency, TimedRun};
use crate::runner::{BackendResult, RunRecord};
use crate::sensor::{Origin, SensorInfo};

pub fn rig() -> crate::rig::Rig {
    toml::from_str(
        "name = \"t\"\n[protocol]\nruns = 2\n\
         [[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n",
    )
    .unwrap()
}

/// A record of [`rig`] with `sensors` sensors and no backends yet.
pub fn record(sensors: usize) -> RunRecord {
    RunRecord {
        rig: rig(),
        rig_text: String::new(),
        started: chrono::Utc::now(),
        phases: Vec::new(),
        backends: Vec::new(),
        sensors: (0..sensors)
            .map(|i| crate::sampler::SensorLog {
                info: SensorInfo {
                    kind: "test".into(),
                    rail: format!("r{i}"),
                    origin: Origin::Simulated,
                    detail: String::new(),
                },
                update_period: Duration::from_millis(1),
                samples: Vec::new(),
                failure: None,
                uncertainty: None,
                cpu_time: Duration::ZERO,
            })
            .collect(),
        sensor_choice: None,
        ranging: Vec::new(),
        interrupted: false,
    }
}

/// [`rig`]'s backend after one repetition of [`two_classifications`], on a fake engine.
pub fn backend_result() -> BackendResult {
    BackendResult {
        spec: rig().backends[0].clone(),
        engine_note: None,
        model: crate::models::ResolvedModel {
            name: "m".into(),
            path: "m".into(),
            sha256: "abc".into(),
            in_manifest: false,
            labels: None,
            input: None,
            label_offset: 0,
        },
        image: crate::models::ResolvedImage {
            name: "i".into(),
            path: "i".into(),
            sha256: String::new(),
            in_manifest: false,
            top1: Vec::new(),
        },
        engine: crate::backend::EngineInfo {
            engine: "fake".into(),
            version: "0".into(),
            accelerator: "none".into(),
            threads: 1,
        },
        labels: Default::default(),
        runs: vec![two_classifications()],
    }
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
