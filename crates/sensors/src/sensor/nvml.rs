//! An NVIDIA GPU's own power and energy readings, through NVML (`nvml-wrapper`, which loads
//! `libnvidia-ml.so.1` at run time, so a machine without the driver builds and runs the rest).
//!
//! Two methods:
//! - the energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver
//!   loaded; Volta and newer): a window's energy is the counter's difference, exact at the
//!   instants it updates, and immune to how the power figure is averaged;
//! - power polling, integrated like any power sensor's readings: the instant power field
//!   (`NVML_FI_DEV_POWER_INSTANT`) where the driver has it, else `nvmlDeviceGetPowerUsage`,
//!   which recent GPUs average over 1 s (on an H200, integrated as if instant it read 14 to
//!   23 % low over 3 s windows), so windows measured by it must be long ([`AVERAGED_WINDOW`]).
//!   Pascal and older (a GTX1080) have no counter.
//!
//! The counter updates only about 11 times a second (seen on an H100), so the sensor measures
//! that rate when it opens, the sampler polls at it, and reads that find the counter unchanged
//! are marked stale: the energy code then uses only the instants where the counter moved.
//!
//! Beside the counter every read also takes the instant power field, so that the summary can
//! integrate it over the same window and say how far the two disagree (the cross-check; it is
//! computed there, not here). The runner also reads each GPU's clocks, power limit,
//! temperature, persistence mode and performance state at the edges of every timed window
//! ([`GpuProbe`]), outside the sampler.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nvml_wrapper::enum_wrappers::device::{
    Clock as ClockDomain, PerformanceState, TemperatureSensor,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::NVML_FI_DEV_POWER_INSTANT;
use nvml_wrapper::{Device, Nvml};

use super::{Crosscheck, Limits, Origin, PowerSensor, Reading, SensorInfo};
use crate::clock::{RunClock, TimeSource};
use crate::sensor::SensorSpec;
use serde::{Deserialize, Serialize};

/// An NVIDIA GPU's state at one edge of a timed window, read through NVML by the runner
/// (outside the window): what moves a GPU's numbers besides the model. A value NVML would not
/// give is `null`, with why in `unreadable`; a rig without an NVML sensor has no GPU states.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GpuState {
    /// The NVML sensor's position in the rig (as in `power.csv`).
    pub sensor_index: usize,
    /// Product name and NVML index.
    pub gpu: String,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    /// The power limit the driver enforces now, watts.
    pub power_limit_w: Option<f64>,
    pub temperature_c: Option<u32>,
    pub persistence_mode: Option<bool>,
    /// `P0` (most performance) to `P15`.
    pub performance_state: Option<String>,
    /// What could not be read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// What reading it took, microseconds.
    pub capture_us: u64,
}

/// How long `open` watches the readings to learn their update rate.
const MEASURE_FOR: f64 = 0.5;
/// Poll interval while measuring: fine enough for rates up to a few hundred hertz.
const MEASURE_POLL: Duration = Duration::from_millis(1);
/// Value changes after which the measurement stops early (8 intervals average well enough).
const ENOUGH_CHANGES: usize = 9;
/// Assumed when the readings barely changed while measuring (NVML's usual rate is ~10 Hz).
const FALLBACK_PERIOD: Duration = Duration::from_millis(100);
/// The sampler never polls faster than this: more reads of a counter add CPU, not accuracy.
const MIN_PERIOD: Duration = Duration::from_millis(10);
/// The shortest window measured by `nvmlDeviceGetPowerUsage` alone. On recent GPUs it is a
/// 1 s mean, which lags a load step by about 0.5 s: over 10 s that shifts at most 5 % of the
/// step's energy, no more than NVML's own ±5 %.
pub const AVERAGED_WINDOW: Duration = Duration::from_secs(10);

/// The process's one NVML handle. It lives as long as the process so that devices can be held
/// as `Device<'static>` inside sensors that the sampler moves into its threads.
static NVML: OnceLock<Nvml> = OnceLock::new();

fn nvml() -> Result<&'static Nvml> {
    if let Some(nvml) = NVML.get() {
        return Ok(nvml);
    }
    let nvml = Nvml::init().map_err(init_error)?;
    // If another thread won the race its handle is kept and this one dropped (NVML counts
    // its initialisations, so the extra shutdown is harmless).
    Ok(NVML.get_or_init(|| nvml))
}

/// How many GPUs NVML sees; an error (one line) where NVML is not available.
pub fn device_count() -> Result<u32> {
    Ok(nvml()?.device_count()?)
}

/// The name of the GPU at NVML index `index` ("NVIDIA H200", say).
pub fn device_name(index: u32) -> Result<String> {
    Ok(nvml()?.device_by_index(index)?.name()?)
}

/// One actionable line for a failed `nvmlInit`.
fn init_error(e: NvmlError) -> anyhow::Error {
    let msg = match &e {
        NvmlError::LibloadingError(le) => format!(
            "NVML is not available (libnvidia-ml.so.1 could not be loaded: {le}): is the NVIDIA \
             driver installed?"
        ),
        NvmlError::FailedToLoadSymbol(s) => format!(
            "NVML is not available (libnvidia-ml.so.1 lacks {s}): is the NVIDIA driver too old?"
        ),
        NvmlError::DriverNotLoaded => "NVML is not available (the NVIDIA driver is not loaded): \
                                       does `nvidia-smi` see a GPU?"
            .to_string(),
        NvmlError::NoPermission => {
            "NVML is not available (no permission to talk to the NVIDIA driver): check the \
             permissions of /dev/nvidia*"
                .to_string()
        }
        other => format!("NVML could not be initialised: {other}"),
    };
    anyhow::anyhow!(msg.replace('\n', " "))
}

/// The few readings the sensor and the state probe need, behind a trait so that the method
/// selection, the update-rate measurement, the stale marking and the state capture are
/// tested without a GPU.
trait GpuCounters: Send {
    /// Product name and NVML index, for the sensor's detail.
    fn name(&self) -> String;
    /// Energy since the driver loaded, millijoules; an error where the GPU has no counter.
    fn energy_mj(&mut self) -> Result<u64>;
    /// Board power, milliwatts (`nvmlDeviceGetPowerUsage`: a 1 s mean on recent GPUs).
    fn power_mw(&mut self) -> Result<u32>;
    /// Instant board power, milliwatts (`NVML_FI_DEV_POWER_INSTANT`); an error where the
    /// driver or GPU lacks the field.
    fn instant_power_mw(&mut self) -> Result<f64>;
    /// Clocks now, MHz.
    fn sm_clock_mhz(&self) -> Result<u32>;
    fn memory_clock_mhz(&self) -> Result<u32>;
    /// The power limit the driver enforces now, milliwatts.
    fn power_limit_mw(&self) -> Result<u32>;
    /// GPU die temperature, °C.
    fn temperature_c(&self) -> Result<u32>;
    fn persistence_mode(&self) -> Result<bool>;
    /// 0 for P0 (most performance) to 15 for P15.
    fn performance_state(&self) -> Result<u8>;
}

/// A real GPU. `Device` is `Send`, so the handle is kept rather than fetched per read.
struct NvmlGpu {
    device: Device<'static>,
    name: String,
}

impl GpuCounters for NvmlGpu {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn energy_mj(&mut self) -> Result<u64> {
        Ok(self.device.total_energy_consumption()?)
    }

    fn power_mw(&mut self) -> Result<u32> {
        Ok(self.device.power_usage()?)
    }

    fn instant_power_mw(&mut self) -> Result<f64> {
        let values = self
            .device
            .field_values_for(&[FieldId(NVML_FI_DEV_POWER_INSTANT)])?;
        let sample = values
            .into_iter()
            .next()
            .context("NVML returned no field value")??;
        Ok(match sample.value? {
            SampleValue::U32(mw) => f64::from(mw),
            SampleValue::U64(mw) => mw as f64,
            SampleValue::I64(mw) => mw as f64,
            SampleValue::F64(mw) => mw,
        })
    }

    fn sm_clock_mhz(&self) -> Result<u32> {
        Ok(self.device.clock_info(ClockDomain::SM)?)
    }

    fn memory_clock_mhz(&self) -> Result<u32> {
        Ok(self.device.clock_info(ClockDomain::Memory)?)
    }

    fn power_limit_mw(&self) -> Result<u32> {
        Ok(self.device.enforced_power_limit()?)
    }

    fn temperature_c(&self) -> Result<u32> {
        Ok(self.device.temperature(TemperatureSensor::Gpu)?)
    }

    fn persistence_mode(&self) -> Result<bool> {
        Ok(self.device.is_in_persistent_mode()?)
    }

    fn performance_state(&self) -> Result<u8> {
        use PerformanceState as P;
        let p = self.device.performance_state()?;
        let all = [
            P::Zero,
            P::One,
            P::Two,
            P::Three,
            P::Four,
            P::Five,
            P::Six,
            P::Seven,
            P::Eight,
            P::Nine,
            P::Ten,
            P::Eleven,
            P::Twelve,
            P::Thirteen,
            P::Fourteen,
            P::Fifteen,
        ];
        let n = all
            .iter()
            .position(|q| *q == p)
            .context("unknown performance state")?;
        Ok(n as u8)
    }
}

/// Time for the start-up measurement, which also has to wait: the run clock in use, a
/// simulated one in tests.
trait Clock: TimeSource {
    fn sleep(&self, d: Duration);
}

impl Clock for RunClock {
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Which NVML reading the sensor's energy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Counter,
    /// The instant power field, polled and integrated.
    Instant,
    /// `nvmlDeviceGetPowerUsage` polled and integrated: the last resort (a 1 s mean).
    Averaged,
}

impl Source {
    /// The reading whose changes mark an update. Instant power in whole milliwatts, so that
    /// a change is a change of the reported figure.
    fn value(self, gpu: &mut dyn GpuCounters) -> Result<u64> {
        match self {
            Source::Counter => gpu.energy_mj(),
            Source::Instant => gpu.instant_power_mw().map(|mw| mw.round() as u64),
            Source::Averaged => gpu.power_mw().map(u64::from),
        }
    }
}

/// A GPU read through NVML.
pub struct NvmlSensor {
    gpu: Box<dyn GpuCounters>,
    info: SensorInfo,
    source: Source,
    period: Duration,
    /// The counter at the previous read, to mark unchanged reads stale.
    last_mj: u64,
    /// Whether reads take instant power beside the counter; where not, why not.
    instant: Result<(), String>,
}

impl std::fmt::Debug for NvmlSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSensor")
            .field("info", &self.info)
            .field("source", &self.source)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

/// Opens the GPU a `kind = "nvml"` table names, picks the method and measures its update rate
/// (this takes up to half a second).
pub fn open(spec: &NvmlSpec) -> Result<NvmlSensor> {
    let nvml = nvml()?;
    let device = nvml.device_by_index(spec.device).map_err(|e| {
        let count = nvml
            .device_count()
            .map_or_else(|_| "an unknown number of".into(), |n| n.to_string());
        anyhow::anyhow!("NVML device {}: {e} (NVML sees {count} GPUs)", spec.device)
    })?;
    let name = device.name().unwrap_or_else(|_| "NVIDIA GPU".into());
    let gpu = NvmlGpu {
        device,
        name: format!("{name} (NVML index {})", spec.device),
    };
    open_with(Box::new(gpu), spec, &RunClock::start())
}

fn open_with(
    mut gpu: Box<dyn GpuCounters>,
    spec: &NvmlSpec,
    clock: &dyn Clock,
) -> Result<NvmlSensor> {
    let name = gpu.name();
    let instant = gpu
        .instant_power_mw()
        .map(|_| ())
        .map_err(|e| format!("{e:#}"));
    let source = match (spec.method, gpu.energy_mj(), &instant) {
        (NvmlMethod::Auto | NvmlMethod::EnergyCounter, Ok(_), _) => Source::Counter,
        (NvmlMethod::EnergyCounter, Err(e), _) => bail!(
            "{name} has no energy counter ({e:#}; NVML has one on Volta and newer GPUs): use \
             method = \"power\" or \"auto\""
        ),
        (_, _, Ok(())) => Source::Instant,
        (_, _, Err(_)) => Source::Averaged,
    };
    // The counter and averaged methods report watts from the power figure, so it must read.
    if source != Source::Instant {
        gpu.power_mw()
            .with_context(|| format!("{name}: cannot read power"))?;
    }
    let (measured, last) = measure_period(gpu.as_mut(), source, clock)
        .with_context(|| format!("{name}: reading while measuring the update rate"))?;
    let method = match (source, &instant) {
        (Source::Counter, Ok(())) => {
            "energy counter, instant power read beside it for the cross-check".to_string()
        }
        (Source::Counter, Err(e)) => {
            format!("energy counter, no instant power to cross-check it (NVML_FI_DEV_POWER_INSTANT: {e})")
        }
        (Source::Instant, _) => "instant power polling (NVML_FI_DEV_POWER_INSTANT)".to_string(),
        (Source::Averaged, _) => format!(
            "power polling of nvmlDeviceGetPowerUsage, a mean over up to 1 s: windows of at \
             least {} s",
            AVERAGED_WINDOW.as_secs()
        ),
    };
    let (period, rate) = match measured {
        Some(p) => (
            p.max(MIN_PERIOD),
            format!("updates at {:.1} Hz", 1.0 / p.as_secs_f64()),
        ),
        None => (
            FALLBACK_PERIOD,
            format!(
                "update rate not measured (readings barely changed in {MEASURE_FOR} s), read \
                 at {:.0} Hz",
                1.0 / FALLBACK_PERIOD.as_secs_f64()
            ),
        ),
    };
    Ok(NvmlSensor {
        gpu,
        info: SensorInfo {
            kind: "nvml".into(),
            rail: spec.rail.clone(),
            origin: Origin::Measured,
            detail: format!("{name}, {method}, {rate}"),
        },
        source,
        period,
        last_mj: if source == Source::Counter { last } else { 0 },
        instant,
    })
}

/// Polls the method's reading for up to [`MEASURE_FOR`] and returns the mean interval between
/// its changes (none with fewer than two changes), and the last value read.
fn measure_period(
    gpu: &mut dyn GpuCounters,
    source: Source,
    clock: &dyn Clock,
) -> Result<(Option<Duration>, u64)> {
    let start = clock.now();
    let mut last = source.value(gpu)?;
    let mut changes = Vec::with_capacity(ENOUGH_CHANGES);
    while clock.now() - start < MEASURE_FOR && changes.len() < ENOUGH_CHANGES {
        clock.sleep(MEASURE_POLL);
        let value = source.value(gpu)?;
        if value != last {
            changes.push(clock.now());
            last = value;
        }
    }
    // The first change comes after an unknown part of an interval: measure from it.
    let period = match changes.as_slice() {
        [first, .., end] => Some(Duration::from_secs_f64(
            (end - first) / (changes.len() - 1) as f64,
        )),
        _ => None,
    };
    Ok((period, last))
}

impl PowerSensor for NvmlSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    /// Twice the GPU's enforced power limit: its power overshoots the limit for milliseconds,
    /// never by that much. Without a limit to read, [`Limits::default`].
    fn limits(&self) -> Limits {
        self.gpu.power_limit_mw().map_or_else(
            |_| Limits::default(),
            |mw| Limits {
                max_watts: 2.0 * f64::from(mw) / 1e3,
                max_volts: None,
            },
        )
    }

    fn update_period(&self) -> Duration {
        self.period
    }

    /// NVML documents its power readings as accurate to within ±5 % of the draw
    /// (`nvmlDeviceGetPowerUsage`); it states nothing tighter for the energy counter.
    fn uncertainty(&self) -> Option<f64> {
        Some(0.05)
    }

    fn crosscheck(&self) -> Option<Crosscheck> {
        Some(match (self.source, &self.instant) {
            (Source::Counter, Ok(())) => Crosscheck::InstantPower,
            (Source::Counter, Err(e)) => Crosscheck::Absent(format!(
                "no instant power field on this GPU or driver (NVML_FI_DEV_POWER_INSTANT: {e})"
            )),
            (Source::Instant | Source::Averaged, _) => {
                Crosscheck::Absent("no energy counter read: energy is integrated power".into())
            }
        })
    }

    fn min_window(&self) -> Option<Duration> {
        (self.source == Source::Averaged).then_some(AVERAGED_WINDOW)
    }

    fn read(&mut self) -> Result<Reading> {
        // A power figure can repeat for real under a steady load; marking repeats stale would
        // starve the integral, so polled power is always fresh.
        if self.source == Source::Instant {
            let watts = self.gpu.instant_power_mw()? / 1000.0;
            return Ok(Reading {
                watts,
                instant_watts: Some(watts),
                ..Reading::default()
            });
        }
        // On an H100 this is a 1 s moving average, so it lags load changes; the counter does
        // not, which is why energy comes from the counter wherever there is one.
        let watts = f64::from(self.gpu.power_mw()?) / 1000.0;
        if self.source == Source::Averaged {
            return Ok(Reading {
                watts,
                ..Reading::default()
            });
        }
        let mj = self.gpu.energy_mj()?;
        let stale = mj == self.last_mj;
        self.last_mj = mj;
        // A failed instant read costs the cross-check one point, not the counter its reading.
        let instant_watts = match self.instant {
            Ok(()) => self.gpu.instant_power_mw().ok().map(|mw| mw / 1000.0),
            Err(_) => None,
        };
        Ok(Reading {
            watts,
            energy_j: Some(mj as f64 / 1000.0),
            stale,
            instant_watts,
            ..Reading::default()
        })
    }
}

/// One GPU's state read at the edges of timed windows (clocks, power limit, temperature,
/// persistence mode, performance state), for `run.json`. The runner holds one per NVML sensor,
/// apart from the sensor itself, which lives in its sampler thread.
pub struct GpuProbe {
    gpu: Box<dyn GpuCounters>,
    sensor_index: usize,
}

impl std::fmt::Debug for GpuProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProbe")
            .field("gpu", &self.gpu.name())
            .field("sensor_index", &self.sensor_index)
            .finish()
    }
}

/// A probe for every `kind = "nvml"` sensor of `sensors`, each given with its index in the
/// rig (none without one; a sensor the run goes on without is left out by the caller).
pub fn probes<'a>(
    sensors: impl IntoIterator<Item = (usize, &'a SensorSpec)>,
) -> Result<Vec<GpuProbe>> {
    sensors
        .into_iter()
        .filter_map(|(i, s)| match s {
            SensorSpec::Nvml(spec) => Some((i, spec)),
            _ => None,
        })
        .map(|(sensor_index, spec)| -> Result<GpuProbe> {
            let device = nvml()?
                .device_by_index(spec.device)
                .with_context(|| format!("NVML device {}", spec.device))?;
            let name = device.name().unwrap_or_else(|_| "NVIDIA GPU".into());
            let gpu = NvmlGpu {
                device,
                name: format!("{name} (NVML index {})", spec.device),
            };
            Ok(GpuProbe {
                gpu: Box::new(gpu),
                sensor_index,
            })
        })
        .collect()
}

impl GpuProbe {
    /// The GPU's state now. A value NVML does not give is left empty, with why in
    /// `unreadable`, never guessed.
    pub fn capture(&self) -> GpuState {
        let started = Instant::now();
        let mut unreadable = Vec::new();
        let mut known = |what: &str, r: Result<u64>| {
            r.map_err(|e| unreadable.push(format!("{what}: {e:#}")))
                .ok()
        };
        let gpu = &self.gpu;
        let sm = known("sm_clock_mhz", gpu.sm_clock_mhz().map(u64::from));
        let mem = known("memory_clock_mhz", gpu.memory_clock_mhz().map(u64::from));
        let limit = known("power_limit_w", gpu.power_limit_mw().map(u64::from));
        let temp = known("temperature_c", gpu.temperature_c().map(u64::from));
        let persistent = known("persistence_mode", gpu.persistence_mode().map(u64::from));
        let pstate = known("performance_state", gpu.performance_state().map(u64::from));
        GpuState {
            sensor_index: self.sensor_index,
            gpu: gpu.name(),
            sm_clock_mhz: sm.map(|v| v as u32),
            memory_clock_mhz: mem.map(|v| v as u32),
            power_limit_w: limit.map(|mw| mw as f64 / 1000.0),
            temperature_c: temp.map(|v| v as u32),
            persistence_mode: persistent.map(|v| v == 1),
            performance_state: pstate.map(|p| format!("P{p}")),
            unreadable,
            capture_us: started.elapsed().as_micros() as u64,
        }
    }
}

/// A probe on a fake GPU, for tests of what records its state.
/// A GPU read through NVML.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlSpec {
    /// What is measured, e.g. "GPU 0 board power".
    pub rail: String,
    /// NVML device index.
    #[serde(default)]
    pub device: u32,
    /// How energy is obtained: "auto" (the energy counter where the GPU has one, Volta and
    /// newer; else power polling), "energy-counter" or "power".
    #[serde(default)]
    pub method: NvmlMethod,
}

/// How an NVML sensor obtains energy.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NvmlMethod {
    #[default]
    Auto,
    /// `nvmlDeviceGetTotalEnergyConsumption`: millijoules since the driver loaded.
    EnergyCounter,
    /// `nvmlDeviceGetPowerUsage` polled and integrated (the only way on Pascal and older).
    Power,
}

/// A probe of a fake GPU that warms by a degree at every read: for the tests of what reads
/// GPU states downstream (the protocol, run.json), which cannot reach this crate's test code.
#[doc(hidden)]
pub fn warming_probe(sensor_index: usize) -> GpuProbe {
    /// Warms by a degree at every state read, so a test can tell a window's start from its
    /// end; has no performance state.
    struct Warming(std::sync::atomic::AtomicU32);
    impl GpuCounters for Warming {
        fn name(&self) -> String {
            "Warming GPU (NVML index 0)".into()
        }
        fn energy_mj(&mut self) -> Result<u64> {
            Ok(0)
        }
        fn power_mw(&mut self) -> Result<u32> {
            Ok(0)
        }
        fn instant_power_mw(&mut self) -> Result<f64> {
            Ok(0.0)
        }
        fn sm_clock_mhz(&self) -> Result<u32> {
            Ok(1755)
        }
        fn memory_clock_mhz(&self) -> Result<u32> {
            Ok(2619)
        }
        fn power_limit_mw(&self) -> Result<u32> {
            Ok(700_000)
        }
        fn temperature_c(&self) -> Result<u32> {
            Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
        }
        fn persistence_mode(&self) -> Result<bool> {
            Ok(false)
        }
        fn performance_state(&self) -> Result<u8> {
            bail!("Not Supported")
        }
    }
    GpuProbe {
        gpu: Box::new(Warming(40.into())),
        sensor_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Simulated time in nanoseconds, shared by the fake GPU and the fake clock.
    #[derive(Debug, Clone, Default)]
    struct FakeTime(Arc<AtomicU64>);

    impl FakeTime {
        fn secs(&self) -> f64 {
            self.0.load(Ordering::Relaxed) as f64 / 1e9
        }
        fn advance(&self, d: Duration) {
            self.0.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    impl TimeSource for FakeTime {
        fn now(&self) -> f64 {
            self.secs()
        }
        fn sleep_until(&self, t: f64) {
            let left = t - self.secs();
            if left > 0.0 {
                // Whole nanoseconds, rounded up: rounded down, `now` could stay a hair short
                // of `t` for ever (the sampler waits until `now >= t`).
                self.0
                    .fetch_add((left * 1e9).ceil() as u64, Ordering::Relaxed);
            }
        }
    }

    impl Clock for FakeTime {
        fn sleep(&self, d: Duration) {
            self.advance(d);
        }
    }

    /// A GPU drawing a constant `watts`, whose counter moves every `counter_every` (none: no
    /// counter, like Pascal) and whose power figure alternates by 1 mW every `power_every`
    /// (none: never changes).
    struct FakeGpu {
        time: FakeTime,
        watts: f64,
        counter_every: Option<f64>,
        power_every: Option<f64>,
        /// The instant power field's reading relative to the true draw (none: no field, like
        /// an old driver); it changes by 1 mW every 7 ms.
        instant_gain: Option<f64>,
        /// Whether NVML gives a performance state.
        pstate: bool,
    }

    impl GpuCounters for FakeGpu {
        fn name(&self) -> String {
            "Fake GPU (NVML index 0)".into()
        }
        fn energy_mj(&mut self) -> Result<u64> {
            let every = self.counter_every.context("Not Supported")?;
            let updated_at = (self.time.secs() / every).floor() * every;
            Ok((self.watts * updated_at * 1000.0).round() as u64)
        }
        fn power_mw(&mut self) -> Result<u32> {
            let wobble = self
                .power_every
                .map_or(0, |every| (self.time.secs() / every) as u32 % 2);
            Ok((self.watts * 1000.0) as u32 + wobble)
        }
        fn instant_power_mw(&mut self) -> Result<f64> {
            let gain = self.instant_gain.context("Not Supported")?;
            let wobble = ((self.time.secs() / 0.007) as u64 % 2) as f64;
            Ok(self.watts * gain * 1000.0 + wobble)
        }
        fn sm_clock_mhz(&self) -> Result<u32> {
            Ok(1980)
        }
        fn memory_clock_mhz(&self) -> Result<u32> {
            Ok(2619)
        }
        fn power_limit_mw(&self) -> Result<u32> {
            Ok(700_000)
        }
        fn temperature_c(&self) -> Result<u32> {
            Ok(41)
        }
        fn persistence_mode(&self) -> Result<bool> {
            Ok(true)
        }
        fn performance_state(&self) -> Result<u8> {
            if self.pstate {
                Ok(0)
            } else {
                bail!("Not Supported")
            }
        }
    }

    fn spec(method: NvmlMethod) -> NvmlSpec {
        NvmlSpec {
            rail: "GPU 0 board power".into(),
            device: 0,
            method,
        }
    }

    fn fake(counter_every: Option<f64>, power_every: Option<f64>) -> (FakeTime, Box<FakeGpu>) {
        let time = FakeTime::default();
        // Polls then fall half a millisecond away from every update instant.
        time.advance(Duration::from_micros(12_345_500));
        let gpu = FakeGpu {
            time: time.clone(),
            watts: 70.0,
            counter_every,
            power_every,
            instant_gain: None,
            pstate: true,
        };
        (time, Box::new(gpu))
    }

    fn open_fake(
        method: NvmlMethod,
        counter_every: Option<f64>,
        power_every: Option<f64>,
    ) -> Result<(FakeTime, NvmlSensor)> {
        let (time, gpu) = fake(counter_every, power_every);
        let sensor = open_with(gpu, &spec(method), &time)?;
        Ok((time, sensor))
    }

    #[test]
    fn auto_uses_the_counter_and_measures_its_rate() {
        let (_, s) = open_fake(NvmlMethod::Auto, Some(0.090), Some(1.0)).unwrap();
        assert_eq!(s.source, Source::Counter);
        let ms = s.update_period().as_secs_f64() * 1e3;
        assert!((ms - 90.0).abs() < 1.5, "{ms} ms");
        assert_eq!(s.info().kind, "nvml");
        assert_eq!(s.info().origin, Origin::Measured);
        assert_eq!(
            s.info().detail,
            "Fake GPU (NVML index 0), energy counter, no instant power to cross-check it \
             (NVML_FI_DEV_POWER_INSTANT: Not Supported), updates at 11.1 Hz"
        );
        assert_eq!(
            s.crosscheck(),
            Some(Crosscheck::Absent(
                "no instant power field on this GPU or driver (NVML_FI_DEV_POWER_INSTANT: \
                 Not Supported)"
                    .into()
            ))
        );
        assert_eq!(s.min_window(), None);
    }

    #[test]
    fn auto_falls_back_to_the_averaged_power_without_a_counter_and_says_so() {
        let (_, mut s) = open_fake(NvmlMethod::Auto, None, Some(0.050)).unwrap();
        assert_eq!(s.source, Source::Averaged);
        let ms = s.update_period().as_secs_f64() * 1e3;
        assert!((ms - 50.0).abs() < 1.5, "{ms} ms");
        assert!(
            s.info().detail.contains(
                "power polling of nvmlDeviceGetPowerUsage, a mean over up to 1 s: windows of \
                 at least 10 s, updates at 20.0 Hz"
            ),
            "{}",
            s.info().detail
        );
        assert_eq!(s.min_window(), Some(AVERAGED_WINDOW));
        assert!(
            matches!(s.crosscheck(), Some(Crosscheck::Absent(why)) if why.contains("no energy counter"))
        );
        let r = s.read().unwrap();
        assert!((r.watts - 70.0).abs() < 0.01);
        assert_eq!(
            (r.energy_j, r.stale, r.volts, r.amps, r.instant_watts),
            (None, false, None, None, None)
        );
    }

    #[test]
    fn the_instant_field_is_read_beside_the_counter() {
        let (time, mut gpu) = fake(Some(0.1), Some(1.0));
        gpu.instant_gain = Some(1.02);
        let mut s = open_with(gpu, &spec(NvmlMethod::Auto), &time).unwrap();
        assert_eq!(s.source, Source::Counter);
        assert_eq!(s.crosscheck(), Some(Crosscheck::InstantPower));
        assert!(
            s.info()
                .detail
                .contains("energy counter, instant power read beside it"),
            "{}",
            s.info().detail
        );
        let r = s.read().unwrap();
        assert!(r.energy_j.is_some());
        // The averaged figure stays in `watts`; the instant one is beside it.
        assert!((r.watts - 70.0).abs() < 0.01);
        let instant = r.instant_watts.unwrap();
        assert!((instant - 71.4).abs() < 0.01, "{instant}");
    }

    #[test]
    fn without_a_counter_the_instant_field_is_integrated_rather_than_the_average() {
        let (time, mut gpu) = fake(None, Some(1.0));
        gpu.instant_gain = Some(1.0);
        let mut s = open_with(gpu, &spec(NvmlMethod::Power), &time).unwrap();
        assert_eq!(s.source, Source::Instant);
        assert_eq!(s.min_window(), None);
        // The field changes every 7 ms in the fake.
        let ms = s.update_period().as_secs_f64() * 1e3;
        assert!((ms - 10.0).abs() < 0.01, "{ms} ms (the floor)");
        assert!(s.info().detail.contains("instant power polling"));
        let r = s.read().unwrap();
        assert_eq!(r.instant_watts, Some(r.watts));
        assert!((r.watts - 70.0).abs() < 0.01);
    }

    /// The cross-check end to end: the fake GPU's counter and instant field read by the
    /// sampler's own loop (in simulated time), integrated by the analysis crate's integrals as
    /// joulebench's summary does (the counter's fresh values; every instant value).
    #[test]
    fn the_summary_finds_the_instant_field_two_percent_above_the_counter() {
        let (time, mut gpu) = fake(Some(0.1), Some(1.0));
        gpu.instant_gain = Some(1.02);
        let s = open_with(gpu, &spec(NvmlMethod::Auto), &time).unwrap();
        let from = time.secs();
        let until = from + 5.0;
        let log = crate::sampler::sample(Box::new(s), &time, move |now| {
            (now >= until).then_some(until)
        });
        assert_eq!(log.crosscheck, Some(Crosscheck::InstantPower));
        use joulebench_analysis::energy::{integrate, integrate_counter, CounterPoint, PowerPoint};
        let readings = || {
            log.samples
                .iter()
                .filter_map(|s| Some((s.t, s.reading.as_ref().ok()?)))
        };
        let counter: Vec<CounterPoint> = readings()
            .filter(|(_, r)| !r.stale)
            .filter_map(|(t, r)| {
                Some(CounterPoint {
                    t,
                    joules: r.energy_j?,
                })
            })
            .collect();
        let instant: Vec<PowerPoint> = readings()
            .filter_map(|(t, r)| {
                Some(PowerPoint {
                    t,
                    watts: r.instant_watts?,
                })
            })
            .collect();
        let max_gap = 3.0 * log.update_period.as_secs_f64();
        let (start, end) = (from + 1.0, from + 4.0);
        let counted = integrate_counter(&counter, start, end, max_gap).unwrap();
        assert!(counted.coverage >= 0.95, "{counted:?}");
        // The counter's stamps are estimates within half a poll step (1.6 ms here) of its
        // updates, which moves each edge share by up to 70 W × 1.6 ms.
        assert!((counted.joules - 210.0).abs() < 0.25, "{}", counted.joules);
        let instant = integrate(&instant, start, end, max_gap).unwrap();
        let pct = (instant.joules - counted.joules) / counted.joules * 100.0;
        assert!((pct - 2.0).abs() < 0.15, "{pct}");
    }

    #[test]
    fn gpu_state_is_read_through_the_trait_and_gaps_say_why() {
        let (_, gpu) = fake(Some(0.1), None);
        let probe = GpuProbe {
            gpu,
            sensor_index: 2,
        };
        let state = probe.capture();
        assert_eq!(state.sensor_index, 2);
        assert_eq!(state.gpu, "Fake GPU (NVML index 0)");
        assert_eq!(
            (
                state.sm_clock_mhz,
                state.memory_clock_mhz,
                state.temperature_c
            ),
            (Some(1980), Some(2619), Some(41))
        );
        assert_eq!(state.power_limit_w, Some(700.0));
        assert_eq!(state.persistence_mode, Some(true));
        assert_eq!(state.performance_state.as_deref(), Some("P0"));
        assert!(state.unreadable.is_empty());

        let (_, mut gpu) = fake(Some(0.1), None);
        gpu.pstate = false;
        let state = GpuProbe {
            gpu,
            sensor_index: 0,
        }
        .capture();
        assert_eq!(state.performance_state, None);
        assert_eq!(state.unreadable, ["performance_state: Not Supported"]);
        // Unknown is null in run.json, never a made-up state.
        let json = serde_json::to_value(&state).unwrap();
        assert!(json["performance_state"].is_null());
        assert_eq!(json["sm_clock_mhz"], 1980);
    }

    #[test]
    fn forced_methods() {
        let (_, s) = open_fake(NvmlMethod::Power, Some(0.090), Some(0.050)).unwrap();
        assert_eq!(s.source, Source::Averaged);
        let (_, s) = open_fake(NvmlMethod::EnergyCounter, Some(0.090), None).unwrap();
        assert_eq!(s.source, Source::Counter);
        let err = open_fake(NvmlMethod::EnergyCounter, None, Some(0.050)).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("Fake GPU (NVML index 0) has no energy counter"),
            "{err}"
        );
        assert!(err.contains("method = \"power\""), "{err}");
    }

    #[test]
    fn unchanging_power_falls_back_to_a_default_rate() {
        let (_, s) = open_fake(NvmlMethod::Auto, None, None).unwrap();
        assert_eq!(s.update_period(), FALLBACK_PERIOD);
        assert!(
            s.info().detail.contains("update rate not measured"),
            "{}",
            s.info().detail
        );
    }

    #[test]
    fn fast_counters_are_not_polled_faster_than_the_floor() {
        let (_, s) = open_fake(NvmlMethod::Auto, Some(0.002), None).unwrap();
        assert_eq!(s.update_period(), MIN_PERIOD);
        assert!(
            s.info().detail.contains("updates at 50"),
            "{}",
            s.info().detail
        );
    }

    #[test]
    fn reads_are_stale_until_the_counter_moves() {
        let (time, mut s) = open_fake(NvmlMethod::Auto, Some(0.090), None).unwrap();
        // Move to just after an update: the first read sees a new value.
        let next = ((time.secs() / 0.090).floor() + 1.0) * 0.090 + 0.001;
        time.advance(Duration::from_secs_f64(next - time.secs()));
        let first = s.read().unwrap();
        assert!(!first.stale);
        time.advance(Duration::from_millis(40));
        let again = s.read().unwrap();
        assert!(again.stale);
        assert_eq!(again.energy_j, first.energy_j);
        time.advance(Duration::from_millis(60));
        let moved = s.read().unwrap();
        assert!(!moved.stale);
        let joules = moved.energy_j.unwrap() - first.energy_j.unwrap();
        assert!((joules - 70.0 * 0.090).abs() < 1e-6, "{joules}");
        assert!((moved.watts - 70.0).abs() < 1e-9);
    }

    #[test]
    fn no_driver_is_one_actionable_line() {
        // Where a driver is installed (the GPU machine) the sensor must simply work.
        match open(&spec(NvmlMethod::Auto)) {
            Ok(mut s) => {
                assert!(s.read().is_ok());
                assert_eq!(s.info().origin, Origin::Measured);
            }
            Err(e) => {
                let e = format!("{e:#}");
                assert!(!e.contains('\n'), "{e}");
                assert!(e.starts_with("NVML is not available ("), "{e}");
                if e.contains("could not be loaded") {
                    assert!(e.contains("libnvidia-ml.so.1"), "{e}");
                    assert!(e.ends_with("is the NVIDIA driver installed?"), "{e}");
                }
            }
        }
    }
}
