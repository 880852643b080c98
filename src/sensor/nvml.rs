//! An NVIDIA GPU's own power and energy readings, through NVML (`nvml-wrapper`, which loads
//! `libnvidia-ml.so.1` at run time, so a machine without the driver builds and runs the rest).
//!
//! Two methods:
//! - the energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver
//!   loaded; Volta and newer): a window's energy is the counter's difference, exact at the
//!   instants it updates, and immune to how the power figure is averaged;
//! - power polling (`nvmlDeviceGetPowerUsage`, milliwatts): the only way on Pascal and older
//!   (a GTX1080), integrated like any power sensor's readings.
//!
//! The counter updates only about 11 times a second (seen on an H100), so the sensor measures
//! that rate when it opens, the sampler polls at it, and reads that find the counter unchanged
//! are marked stale: the energy code then uses only the instants where the counter moved.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use super::{Origin, PowerSensor, Reading, SensorInfo};
use crate::clock::{RunClock, TimeSource};
use crate::rig::{NvmlMethod, NvmlSpec};

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

/// The few readings the sensor needs, behind a trait so that the method selection, the
/// update-rate measurement and the stale marking are tested without a GPU.
trait GpuCounters: Send {
    /// Product name and NVML index, for the sensor's detail.
    fn name(&self) -> String;
    /// Energy since the driver loaded, millijoules; an error where the GPU has no counter.
    fn energy_mj(&mut self) -> Result<u64>;
    /// Board power, milliwatts.
    fn power_mw(&mut self) -> Result<u32>;
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
    Power,
}

impl Source {
    fn value(self, gpu: &mut dyn GpuCounters) -> Result<u64> {
        match self {
            Source::Counter => gpu.energy_mj(),
            Source::Power => gpu.power_mw().map(u64::from),
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
    let source = match (spec.method, gpu.energy_mj()) {
        (NvmlMethod::Power, _) | (NvmlMethod::Auto, Err(_)) => Source::Power,
        (_, Ok(_)) => Source::Counter,
        (NvmlMethod::EnergyCounter, Err(e)) => bail!(
            "{name} has no energy counter ({e:#}; NVML has one on Volta and newer GPUs): use \
             method = \"power\" or \"auto\""
        ),
    };
    // Both methods report watts, so power must read too.
    gpu.power_mw()
        .with_context(|| format!("{name}: cannot read power"))?;
    let (measured, last) = measure_period(gpu.as_mut(), source, clock)
        .with_context(|| format!("{name}: reading while measuring the update rate"))?;
    let method = match source {
        Source::Counter => "energy counter",
        Source::Power => "power polling",
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

    fn update_period(&self) -> Duration {
        self.period
    }

    /// NVML documents its power readings as accurate to within ±5 % of the draw
    /// (`nvmlDeviceGetPowerUsage`); it states nothing tighter for the energy counter.
    fn uncertainty(&self) -> Option<f64> {
        Some(0.05)
    }

    fn read(&mut self) -> Result<Reading> {
        // On an H100 this is a 1 s moving average, so it lags load changes; the counter does
        // not, which is why energy comes from the counter wherever there is one.
        let watts = f64::from(self.gpu.power_mw()?) / 1000.0;
        let (energy_j, stale) = match self.source {
            Source::Counter => {
                let mj = self.gpu.energy_mj()?;
                let stale = mj == self.last_mj;
                self.last_mj = mj;
                (Some(mj as f64 / 1000.0), stale)
            }
            // A power figure can repeat for real under a steady load; marking repeats stale
            // would starve the integral, so polled power is always fresh.
            Source::Power => (None, false),
        };
        Ok(Reading {
            watts,
            energy_j,
            stale,
            ..Reading::default()
        })
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
                self.advance(Duration::from_secs_f64(left));
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
            "Fake GPU (NVML index 0), energy counter, updates at 11.1 Hz"
        );
    }

    #[test]
    fn auto_falls_back_to_power_without_a_counter() {
        let (_, mut s) = open_fake(NvmlMethod::Auto, None, Some(0.050)).unwrap();
        assert_eq!(s.source, Source::Power);
        let ms = s.update_period().as_secs_f64() * 1e3;
        assert!((ms - 50.0).abs() < 1.5, "{ms} ms");
        assert!(s
            .info()
            .detail
            .contains("power polling, updates at 20.0 Hz"));
        let r = s.read().unwrap();
        assert!((r.watts - 70.0).abs() < 0.01);
        assert_eq!(
            (r.energy_j, r.stale, r.volts, r.amps),
            (None, false, None, None)
        );
    }

    #[test]
    fn forced_methods() {
        let (_, s) = open_fake(NvmlMethod::Power, Some(0.090), Some(0.050)).unwrap();
        assert_eq!(s.source, Source::Power);
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
