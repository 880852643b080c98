//! What a run will do, resolved once before anything opens: the rig file as written, the
//! command line's settings over it, validated, and this machine's meters chosen where the rig
//! asks for them (`detect_sensors`). A ranging pass then sets its INA219s' ranges
//! ([`crate::ranging::range`]), and opening the sensors lengthens its windows for a slow one
//! ([`crate::runner::prepare`]); the runner and everything after it take the plan, and
//! `run.json` records the rig file as written (`rig_file`) beside the plan as run (`rig`,
//! `sensor_choice`, `ranging`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::project::RigSource;
use crate::rig::{
    check_backend_count, BackendKind, BackendSpec, Device, Engine, Precision, Rig, Scenario,
    TfliteSpec, TorchSpec, Workload,
};
use crate::sensor::detect::{self, SensorChoice};
use crate::sensor::ina219::Ranged;

/// Settings given for a run over the rig's own (`joulebench run`'s flags): each that is set
/// replaces the rig's value for every backend, or for the protocol. The flags are these
/// fields (their docs are the `--help` text), so a flag reaches the plan without a copy.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub backends: BackendOverrides,
    pub protocol: ProtocolOverrides,
}

/// The flags that set every backend's workload and engine settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendOverrides {
    /// Model for every backend (manifest name or path).
    #[arg(long)]
    pub model: Option<String>,
    /// Image for every backend (manifest name or path).
    #[arg(long)]
    pub image: Option<String>,
    /// Label file for every tflite or edgetpu backend: the classes of the model, one per
    /// line, line i for output i. A classifier's top-1 is reported and checked only with one.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Threads for every backend.
    #[arg(long)]
    pub threads: Option<u32>,
    // Another kind drops the settings of the old one.
    /// Backend kind for every backend: tflite (int8) or torch (float, libtorch).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Engine for tflite backends (default: litert where its library is found, else tflite).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Device for torch backends: cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<Device>,
    /// Precision for torch backends.
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Images per inference for torch and tflite backends (more than 1 needs --scenario
    /// offline). A list (`1,8,64,256`) runs each backend once per batch and prints inferences
    /// per joule by batch, marking the most efficient.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub batch: Vec<u32>,
    /// single-stream (batch 1, latency; the 2019 method) or offline (batches, throughput).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Run LiteRT without XNNPACK (its builtin kernels).
    #[arg(long)]
    pub no_xnnpack: bool,
    /// Run torch backends eager, without CUDA graphs (`cuda_graph = false`).
    #[arg(long)]
    pub no_cuda_graph: bool,
    /// Run torch backends on eager kernels, without an AOTInductor package (`aoti = false`).
    #[arg(long, conflicts_with = "aoti")]
    pub no_aoti: bool,
    /// Run torch backends as AOTInductor packages, on the CPU too (`aoti = true`).
    #[arg(long)]
    pub aoti: bool,
    /// Keep torch backends' activations channels-last (`channels_last = true`).
    #[arg(long)]
    pub channels_last: bool,
}

/// The flags that set the protocol.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProtocolOverrides {
    /// Timed classifications.
    #[arg(long)]
    pub runs: Option<u32>,
    /// Warm-up classifications.
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Seconds between warm-up and the timed run.
    #[arg(long)]
    pub settle: Option<f64>,
    /// Run the whole protocol this many times per backend (sensors kept open); from 2 on the
    /// summary adds an aggregate row with confidence intervals.
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Run the protocol once first, then range every INA219 from 1.1 × the peak current it
    /// saw (max_current_a, calibration and PGA range) for the measured run.
    #[arg(long)]
    pub ranging: bool,
}

impl Overrides {
    /// `rig` with these settings applied; a setting of one kind given for a backend of
    /// another is refused, naming the backend.
    fn apply(&self, rig: &mut Rig) -> Result<()> {
        for (i, b) in rig.backends.iter_mut().enumerate() {
            self.backends.apply(i, b)?;
        }
        if self.backends.batch.len() > 1 {
            // Checked before the sweep copies every backend once per batch.
            check_backend_count(rig.backends.len().saturating_mul(self.backends.batch.len()))?;
            rig.backends = sweep_batches(&rig.backends, &self.backends.batch);
        }
        let p = &mut rig.protocol;
        p.runs = self.protocol.runs.unwrap_or(p.runs);
        p.warmup = self.protocol.warmup.unwrap_or(p.warmup);
        p.settle_s = self.protocol.settle.unwrap_or(p.settle_s);
        p.scenario = self.backends.scenario.unwrap_or(p.scenario);
        p.repeat = self.protocol.repeat.unwrap_or(p.repeat);
        p.ranging |= self.protocol.ranging;
        Ok(())
    }
}

impl BackendOverrides {
    /// Backend `i`, `b`, with these settings applied (a `--batch` list is swept afterwards,
    /// over the whole rig); a setting of one kind given for a backend of another is refused,
    /// naming the backend.
    fn apply(&self, i: usize, b: &mut BackendSpec) -> Result<()> {
        if let Some(kind) = self.backend.filter(|k| *k != b.kind()) {
            // Settings of the other kind would no longer apply.
            *b = BackendSpec::new(kind, b.workload());
        }
        let Workload {
            model,
            image,
            threads,
        } = b.workload();
        b.set_workload(Workload {
            model: self.model.clone().unwrap_or(model),
            image: self.image.clone().unwrap_or(image),
            threads: self.threads.unwrap_or(threads),
        });
        let refuse = |flags: &[(&str, bool)], owner: &str| match flags.iter().find(|f| f.1) {
            Some((flag, _)) => bail!(
                "backends[{i}] ({}): {flag} applies only to {owner}",
                b.kind().as_str()
            ),
            None => Ok(()),
        };
        let tflite_flags = [
            ("--engine", self.engine.is_some()),
            ("--no-xnnpack", self.no_xnnpack),
        ];
        let torch_flags = [
            ("--device", self.device.is_some()),
            ("--precision", self.precision.is_some()),
        ];
        if !matches!(b, BackendSpec::Tflite(_)) {
            refuse(&tflite_flags, "kind \"tflite\"")?;
        }
        if !matches!(b, BackendSpec::Torch(_)) {
            refuse(&torch_flags, "kind \"torch\"")?;
        }
        if matches!(b, BackendSpec::Torch(_)) {
            // torch runs the manifest's MobileNetV2, whose labels come with it.
            refuse(
                &[("--labels", self.labels.is_some())],
                "kinds \"tflite\" and \"edgetpu\"",
            )?;
        }
        if matches!(b, BackendSpec::Edgetpu(_)) {
            // The Edge TPU's compiled model is fixed at the shapes it was compiled for.
            refuse(
                &[("--batch", !self.batch.is_empty())],
                "kinds \"tflite\" and \"torch\"",
            )?;
        }
        let batch = match self.batch[..] {
            [batch] => Some(batch),
            _ => None,
        };
        match b {
            BackendSpec::Tflite(s) => {
                s.engine = self.engine.or(s.engine);
                if self.no_xnnpack {
                    s.xnnpack = Some(false);
                }
                s.batch = batch.or(s.batch);
                s.labels = self.labels.clone().or(s.labels.take());
            }
            // CUDA graphs, AOTInductor and the layout are left alone on other kinds: a
            // rig of mixed kinds runs with them.
            BackendSpec::Torch(s) => {
                s.device = self.device.or(s.device);
                s.precision = self.precision.or(s.precision);
                s.batch = batch.or(s.batch);
                if self.no_cuda_graph {
                    s.cuda_graph = Some(false);
                }
                if self.no_aoti || self.aoti {
                    s.aoti = Some(self.aoti);
                }
                if self.channels_last {
                    s.channels_last = Some(true);
                }
            }
            BackendSpec::Edgetpu(s) => {
                s.labels = self.labels.clone().or(s.labels.take());
            }
        }
        Ok(())
    }
}

/// Each backend once per batch of `batches`, in the rig's order (only torch and tflite
/// backends get here: `--batch` is refused on other kinds).
fn sweep_batches(backends: &[BackendSpec], batches: &[u32]) -> Vec<BackendSpec> {
    backends
        .iter()
        .flat_map(|b| {
            batches.iter().map(move |&batch| match b {
                BackendSpec::Torch(s) => BackendSpec::Torch(TorchSpec {
                    batch: Some(batch),
                    ..s.clone()
                }),
                BackendSpec::Tflite(s) => BackendSpec::Tflite(TfliteSpec {
                    batch: Some(batch),
                    ..s.clone()
                }),
                other => other.clone(),
            })
        })
        .collect()
}

/// A rig resolved for one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The rig as it will run: settings applied, validated, sensors chosen, ranges set.
    pub rig: Rig,
    /// The rig file's text exactly as read (a built-in rig's too).
    pub rig_text: String,
    /// "rig file PATH" or "built-in rig NAME", for the run's first line.
    pub origin: String,
    /// What `detect_sensors` decided (`None` for a rig without it); `rig.sensors` is already
    /// the result.
    pub sensor_choice: Option<SensorChoice>,
    /// What a ranging pass set (empty without one).
    pub ranging: Vec<Ranged>,
}

impl Plan {
    /// The rig `arg` names (a file, or a rig's name), with `overrides`, validated, and its
    /// sensors chosen on this machine.
    pub fn resolve(arg: &str, overrides: &Overrides) -> Result<Self> {
        let (mut rig, source) = Rig::find(arg)?;
        overrides
            .apply(&mut rig)
            .and_then(|()| rig.validate())
            .context("command-line settings")?;
        Ok(Self::of(rig, source))
    }

    /// Refuses, before anything opens, a backend given more threads than this machine's
    /// [`usable_cores`]: what a run (not `sensors`, which runs no backend) checks.
    pub fn check_threads(&self) -> Result<()> {
        check_threads(&self.rig.backends, usable_cores())
    }

    /// `rig`, read from `source`, with its sensors chosen on this machine.
    pub fn of(mut rig: Rig, source: RigSource) -> Self {
        let sensor_choice = detect::resolve(&mut rig, &detect::sysfs_root());
        Self {
            rig,
            rig_text: source.text,
            origin: source.origin,
            sensor_choice,
            ranging: Vec::new(),
        }
    }
}

/// The cores this process may use (its CPU affinity and cgroup quota, as the standard library
/// reads them); 1 where that cannot be told.
pub fn usable_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Refuses a backend on more threads than `cores`. Refused rather than run and recorded:
/// threads beyond the cores take turns on them, so the row would time the scheduler under a
/// thread count that never ran at once (4294967295 was once recorded while one thread ran); a
/// rig written for a larger board is one `--threads` from running.
pub fn check_threads(backends: &[BackendSpec], cores: u32) -> Result<()> {
    for (i, b) in backends.iter().enumerate() {
        if b.threads() > cores {
            bail!(
                "backends[{i}] ({}): threads {} is more than the {cores} cores this machine lets \
                 joulebench use: give at most {cores} (threads in the rig, or --threads {cores})",
                b.kind().as_str(),
                b.threads()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(overrides: &Overrides) -> Result<Plan> {
        Plan::resolve("sim-cpu", overrides)
    }

    #[test]
    fn settings_replace_the_rigs_for_every_backend() {
        let p = plan(&Overrides {
            backends: BackendOverrides {
                threads: Some(3),
                ..BackendOverrides::default()
            },
            protocol: ProtocolOverrides {
                runs: Some(7),
                repeat: Some(2),
                ..ProtocolOverrides::default()
            },
        })
        .unwrap();
        assert_eq!((p.rig.protocol.runs, p.rig.protocol.repeat), (7, 2));
        assert!(p.rig.backends.iter().all(|b| b.threads() == 3));
        // rigs/sim-cpu.toml from a checkout, the built-in one elsewhere.
        assert!(p.rig_text.contains("name = \"sim-cpu\"") && p.origin.contains("sim-cpu"));
        // The file as written is kept; the plan is what runs.
        assert!(!p.rig_text.contains("runs = 7"));
    }

    #[test]
    fn another_backend_kind_drops_the_settings_of_the_old_one() {
        let p = plan(&Overrides {
            backends: BackendOverrides {
                backend: Some(BackendKind::Torch),
                ..BackendOverrides::default()
            },
            ..Overrides::default()
        })
        .unwrap();
        let (written, _) = Rig::find("sim-cpu").unwrap();
        let want: Vec<BackendSpec> = written
            .backends
            .iter()
            .map(|b| BackendSpec::new(BackendKind::Torch, b.workload()))
            .collect();
        assert_eq!(p.rig.backends, want);
    }

    #[test]
    fn a_batch_list_sweeps_every_backend() {
        let p = plan(&Overrides {
            backends: BackendOverrides {
                backend: Some(BackendKind::Torch),
                scenario: Some(Scenario::Offline),
                batch: vec![1, 8, 64],
                ..BackendOverrides::default()
            },
            ..Overrides::default()
        })
        .unwrap();
        let batches: Vec<Option<u32>> = p
            .rig
            .backends
            .iter()
            .map(|b| b.torch().unwrap().batch)
            .collect();
        assert_eq!(batches, [Some(1), Some(8), Some(64)]);
    }

    /// A tflite rig (sim-cpu's) sweeps on its own kind, each backend's other settings kept;
    /// an Edge TPU backend, whose compiled model fixes its shapes, refuses the flag.
    #[test]
    fn a_batch_list_sweeps_tflite_backends_and_edgetpu_refuses_it() {
        let p = plan(&Overrides {
            backends: BackendOverrides {
                scenario: Some(Scenario::Offline),
                batch: vec![1, 4],
                engine: Some(Engine::Tflite),
                ..BackendOverrides::default()
            },
            ..Overrides::default()
        })
        .unwrap();
        let swept: Vec<(Option<u32>, Option<Engine>)> = p
            .rig
            .backends
            .iter()
            .map(|b| {
                let s = b.tflite().unwrap();
                (s.batch, s.engine)
            })
            .collect();
        assert_eq!(
            swept,
            [
                (Some(1), Some(Engine::Tflite)),
                (Some(4), Some(Engine::Tflite))
            ]
        );
        let e = plan(&Overrides {
            backends: BackendOverrides {
                backend: Some(BackendKind::Edgetpu),
                scenario: Some(Scenario::Offline),
                batch: vec![4],
                ..BackendOverrides::default()
            },
            ..Overrides::default()
        })
        .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "command-line settings: backends[0] (edgetpu): --batch applies only to kinds \
             \"tflite\" and \"torch\""
        );
    }

    #[test]
    fn threads_beyond_the_cores_are_refused() {
        let backends = |threads: &[u32]| -> Vec<BackendSpec> {
            threads
                .iter()
                .map(|&threads| {
                    BackendSpec::new(
                        BackendKind::Tflite,
                        Workload {
                            model: "m".into(),
                            image: "i".into(),
                            threads,
                        },
                    )
                })
                .collect()
        };
        check_threads(&backends(&[1, 4]), 4).unwrap();
        let e = check_threads(&backends(&[1, 5]), 4)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "backends[1] (tflite): threads 5 is more than the 4 cores this machine lets \
             joulebench use: give at most 4 (threads in the rig, or --threads 4)"
        );
        assert!(usable_cores() >= 1);
    }

    #[test]
    fn a_batch_sweep_is_bounded_before_it_copies_the_backends() {
        let e = plan(&Overrides {
            backends: BackendOverrides {
                backend: Some(BackendKind::Torch),
                scenario: Some(Scenario::Offline),
                batch: vec![1; crate::rig::MAX_BACKENDS + 1],
                ..BackendOverrides::default()
            },
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("the rig has 65 backends"),
            "{e:#}"
        );
    }

    #[test]
    fn settings_that_conflict_are_refused_in_one_line() {
        let e = format!(
            "{:#}",
            plan(&Overrides {
                backends: BackendOverrides {
                    backend: Some(BackendKind::Torch),
                    engine: Some(Engine::Litert),
                    ..BackendOverrides::default()
                },
                ..Overrides::default()
            })
            .unwrap_err()
        );
        assert!(
            e == "command-line settings: backends[0] (torch): --engine applies only to kind \"tflite\"",
            "{e}"
        );
    }
}
