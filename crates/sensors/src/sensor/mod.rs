//! Power sensors: anything that reports a rail's voltage, current and power.
//!
//! Each sensor kind lives in its own file behind [`PowerSensor`]; [`open`] builds the ones a
//! rig names. The sampler only sees the trait.

mod error;
pub mod hwmon;
pub mod ina219;
pub mod ina219_sim;
pub mod ina3221;
pub mod limits;
pub mod load;
pub mod nominal;
pub mod nvml;
pub mod rapl;
pub mod rpi_pmic;
pub mod sysfs;

pub use error::ReadError;
pub use limits::{Limits, MIN_BOARD_WATTS};

use std::time::Duration;

use anyhow::{Context, Result};

use crate::clock::{PhaseLog, RunClock};
use serde::{Deserialize, Serialize};

/// One power sensor of the rig.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SensorSpec {
    /// An INA219 on a Linux I2C bus (`/dev/i2c-N`).
    Ina219(ina219::Ina219Spec),
    /// A register-level model of an INA219 on a simulated board's supply.
    Ina219Sim(ina219::Ina219Spec),
    /// An NVIDIA GPU's own power and energy readings, through NVML.
    Nvml(nvml::NvmlSpec),
    /// A fixed wattage (a nameplate or TDP figure), reported as "nominal, not measured".
    Nominal(nominal::NominalSpec),
    /// A RAPL energy counter through Linux powercap.
    Rapl(crate::sensor::rapl::RaplSpec),
    /// A power channel of a Linux hwmon chip.
    Hwmon(crate::sensor::hwmon::HwmonSpec),
    /// A rail of a Jetson's on-board INA3221.
    Ina3221(crate::sensor::ina3221::Ina3221Spec),
    /// A Raspberry Pi 5's PMIC rails through `vcgencmd pmic_read_adc`: the SoC side only.
    RpiPmic(crate::sensor::rpi_pmic::RpiPmicSpec),
}

impl SensorSpec {
    pub fn rail(&self) -> &str {
        match self {
            SensorSpec::Ina219(s) | SensorSpec::Ina219Sim(s) => &s.rail,
            SensorSpec::Nvml(s) => &s.rail,
            SensorSpec::Nominal(s) => &s.rail,
            SensorSpec::Rapl(s) => &s.rail,
            SensorSpec::Hwmon(s) => &s.rail,
            SensorSpec::Ina3221(s) => &s.rail,
            SensorSpec::RpiPmic(s) => &s.rail,
        }
    }

    /// Whether both are INA219s of one kind on one I2C bus (a sensor shares its bus with
    /// itself).
    pub fn shares_bus_with(&self, other: &SensorSpec) -> bool {
        match (self, other) {
            (SensorSpec::Ina219(a), SensorSpec::Ina219(b))
            | (SensorSpec::Ina219Sim(a), SensorSpec::Ina219Sim(b)) => a.i2c_bus == b.i2c_bus,
            _ => false,
        }
    }

    /// The checks of this table that need nothing else of the rig (an INA219's need the
    /// rig's other sensors too, and are made where the rig is validated): what the rig loader
    /// refuses, so `sensors --detect` can offer only tables a rig accepts. The kind's own keys
    /// are checked before the rail, which detection builds from them.
    pub fn validate_alone(&self) -> Result<(), String> {
        self.validate_kind()?;
        check_rail(self.rail())
    }

    /// The checks of this kind's own keys.
    fn validate_kind(&self) -> Result<(), String> {
        match self {
            SensorSpec::Ina219(spec) => {
                if spec.i2c_bus.is_none() {
                    return Err("i2c_bus is required, e.g. \"/dev/i2c-1\"".into());
                }
                if spec.load.is_some() || spec.faults.is_some() || spec.bus_adapter.is_some() {
                    return Err("load, faults and bus_adapter belong to kind \"ina219-sim\"".into());
                }
                spec.validate()
            }
            SensorSpec::Ina219Sim(spec) => {
                spec.validate()?;
                spec.load.as_ref().map_or(Ok(()), ina219_sim::check_load)
            }
            SensorSpec::Nvml(_) => Ok(()),
            SensorSpec::Nominal(spec) => spec.check_watts(),
            SensorSpec::Rapl(spec) => spec.validate(),
            SensorSpec::Hwmon(spec) => spec.validate(),
            SensorSpec::Ina3221(spec) => spec.validate(),
            SensorSpec::RpiPmic(spec) => spec.validate(),
        }
    }

    /// Reads a table of kind `kind`, its `kind` key left out, straight into that kind's
    /// struct. `Deserialize` reads a table through its `kind` tag, which first copies the
    /// whole table aside, so a bad value's error names no key and lies nowhere in particular
    /// (serde's "invalid type: string \"0.1\", expected f64", placed at the table); read this
    /// way, the deserializer sees each key, and the rig loader places such an error at its key.
    pub fn deserialize_kind<'de, D>(kind: &str, table: D) -> Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        Ok(match kind {
            "ina219" => SensorSpec::Ina219(Deserialize::deserialize(table)?),
            "ina219-sim" => SensorSpec::Ina219Sim(Deserialize::deserialize(table)?),
            "nvml" => SensorSpec::Nvml(Deserialize::deserialize(table)?),
            "nominal" => SensorSpec::Nominal(Deserialize::deserialize(table)?),
            "rapl" => SensorSpec::Rapl(Deserialize::deserialize(table)?),
            "hwmon" => SensorSpec::Hwmon(Deserialize::deserialize(table)?),
            "ina3221" => SensorSpec::Ina3221(Deserialize::deserialize(table)?),
            "rpi-pmic" => SensorSpec::RpiPmic(Deserialize::deserialize(table)?),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown sensor kind {other:?}"
                )))
            }
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SensorSpec::Ina219(_) => "ina219",
            SensorSpec::Ina219Sim(_) => "ina219-sim",
            SensorSpec::Nvml(_) => "nvml",
            SensorSpec::Nominal(_) => "nominal",
            SensorSpec::Rapl(_) => "rapl",
            SensorSpec::Hwmon(_) => "hwmon",
            SensorSpec::Ina3221(_) => "ina3221",
            SensorSpec::RpiPmic(_) => "rpi-pmic",
        }
    }
}

/// One `[[sensors]]` table of a rig: the keys every kind shares, then its kind's own
/// ([`SensorSpec`], chosen by `kind`). Reads as the spec it holds (`Deref`), so code about a
/// kind's settings never sees the table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SensorTable {
    /// The run goes on without this sensor where it does not open (a second INA219 not wired
    /// in, a board without that rail), and every output says it is missing and why; without
    /// it, a sensor that does not open stops the run before anything is measured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    #[serde(flatten)]
    pub spec: SensorSpec,
}

impl std::ops::Deref for SensorTable {
    type Target = SensorSpec;

    fn deref(&self) -> &SensorSpec {
        &self.spec
    }
}

impl std::ops::DerefMut for SensorTable {
    fn deref_mut(&mut self) -> &mut SensorSpec {
        &mut self.spec
    }
}

impl From<SensorSpec> for SensorTable {
    /// A table that must open.
    fn from(spec: SensorSpec) -> Self {
        Self {
            optional: false,
            spec,
        }
    }
}

/// The common keys' description in the rig schema: each kind's choice there refuses keys it
/// does not list, so `optional` is listed in every one.
const OPTIONAL_DOC: &str = "The run goes on without this sensor where it does not open, and \
    every output says it is missing and why; without it, a sensor that does not open stops the \
    run.";

impl schemars::JsonSchema for SensorTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SensorTable".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = SensorSpec::json_schema(generator);
        let optional = schemars::json_schema!({
            "description": OPTIONAL_DOC,
            "type": "boolean",
            "default": false,
        })
        .to_value();
        let choices = schema.get_mut("oneOf").and_then(|c| c.as_array_mut());
        for choice in choices.into_iter().flatten() {
            if let Some(keys) = choice.get_mut("properties").and_then(|p| p.as_object_mut()) {
                keys.insert("optional".into(), optional.clone());
            }
        }
        schema
    }
}

/// A rig's sensor that is `optional` and did not open: the run goes on without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// Its kind and rail as its rows would have named them; `detail` says it did not open.
    pub info: SensorInfo,
    /// Why it did not open (one line).
    pub why: String,
}

/// Origin of the numbers a sensor of this kind gives, before it is opened.
fn origin_of(spec: &SensorSpec) -> Origin {
    match spec {
        SensorSpec::Ina219Sim(_) => Origin::Simulated,
        SensorSpec::Nominal(_) => Origin::Nominal,
        _ => Origin::Measured,
    }
}

/// Checks a rail's name. It labels the sensor's rows in every output, and `total` and the
/// check that no two sensors share a rail tell rails apart by it, so it must name something,
/// on one line, with nothing unseen at its ends: "A " would be a rail apart from "A" that
/// reads the same (a total of the two printed "A + A"), and a line break would split the rows
/// it labels. The error is one line with the name to write instead.
pub fn check_rail(rail: &str) -> Result<(), String> {
    let plain: String = rail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let plain = plain.trim();
    if plain.is_empty() {
        return Err(format!(
            "rail {rail:?} names nothing: name what the sensor measures, e.g. rail = \"5V supply\""
        ));
    }
    if rail.contains(char::is_control) {
        return Err(format!(
            "rail {rail:?} holds a control character (a line break, a tab, ...): write rail = {plain:?}"
        ));
    }
    if plain != rail {
        return Err(format!(
            "rail {rail:?} has white space at an end, which makes it another rail than {plain:?}: \
             write rail = {plain:?}"
        ));
    }
    Ok(())
}

/// What a sensor is and where it measures, as it appears in every output row.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorInfo {
    /// The rig's sensor kind, e.g. "ina219" or "ina219-sim".
    pub kind: String,
    /// What the sensor measures, e.g. "5V USB to Pi".
    pub rail: String,
    /// Where the numbers come from; every output says when they are not measured.
    pub origin: Origin,
    /// A one-line description of the settings (calibration, ADC mode, ...).
    pub detail: String,
}

/// Where a sensor's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Read from hardware.
    Measured,
    /// From a model of a sensor on a simulated board: not this machine's watts.
    Simulated,
    /// A fixed figure such as a nameplate or TDP: not measured at all.
    Nominal,
    /// Measured, but only part of what the board draws: a Raspberry Pi 5's PMIC rails, the
    /// SoC side without the 5 V input (which the PMIC has no current for).
    Partial,
}

impl Origin {
    /// How outputs label numbers of this origin ("" for measured ones): every output spells
    /// it from here.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Measured => "",
            Origin::Simulated => "simulated",
            Origin::Nominal => "nominal, not measured",
            Origin::Partial => "partial: SoC rails only, not the board's input",
        }
    }

    /// The one-word mark where space is short (a chart's bar label): "" for measured.
    pub fn mark(self) -> &'static str {
        match self {
            Origin::Measured => "",
            Origin::Simulated => "simulated",
            Origin::Nominal => "nominal",
            Origin::Partial => "partial",
        }
    }

    /// A chart legend's name for watts of this origin.
    pub fn watts(self) -> &'static str {
        match self {
            Origin::Measured => "measured watts",
            Origin::Simulated => "simulated watts",
            Origin::Nominal => "nominal watts, not measured",
            Origin::Partial => "partial watts (SoC rails only)",
        }
    }
}

/// How the message of a read that lost an energy counter's count begins
/// ([`sysfs::CounterError::LostCount`]): the energy between the counter's last change before
/// it and its first after it is unknown, so the summary makes any window that uses it invalid.
/// Only the text: the kind travels as [`ReadError::CounterBreak`].
pub const COUNTER_BREAK: &str = "the energy counter lost count: ";

/// One reading of a rail.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// Rail voltage, where the sensor measures it (NVML does not).
    pub volts: Option<f64>,
    /// Rail current, where the sensor measures it.
    pub amps: Option<f64>,
    pub watts: f64,
    /// Cumulative energy counter in joules, for sensors that keep one (NVML on Volta and
    /// newer): energy is then the counter's difference, not an integral of `watts`.
    pub energy_j: Option<f64>,
    /// The sensor flagged an overflow (INA219: OVF, current or power out of range); the
    /// current and power here are computed from the raw shunt and bus voltages instead.
    pub overflow: bool,
    /// No new conversion since the previous read: the values repeat the previous sample.
    pub stale: bool,
    /// The value is clipped at the sensor's range (an INA219 shunt beyond its PGA range): the
    /// true power was higher, so energy from it is only a lower bound and the window is invalid.
    pub saturated: bool,
    /// Seconds from the middle of the interval this value averages to the moment the value
    /// became readable (an INA219 conversion's end): 0 for an instantaneous or counter value.
    /// An `avg128` INA219 reports the mean of 2 × 68 ms that ended before the read; the
    /// sampler stamps the reading this much earlier so energy windows cut it where it belongs.
    pub centre_offset_s: f64,
    /// An instantaneous power figure read beside an energy counter in the same read (NVML's
    /// `NVML_FI_DEV_POWER_INSTANT`), to cross-check the counter with: the summary integrates
    /// these over the window the counter measured (`joulebench::summary`). Unlike `watts`, it
    /// is not marked stale with the counter: every read has a fresh one.
    pub instant_watts: Option<f64>,
}

/// What a sensor offers for checking its energy counter against instant power.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Crosscheck {
    /// Every read carries [`Reading::instant_watts`] beside the counter.
    InstantPower,
    /// The check is expected and cannot be made; why.
    Absent(String),
}

/// CPU time, in nanoseconds, that a sensor's reads spend outside the sampler thread: in the
/// child processes it runs (`rpi-pmic`'s vcgencmd). The sensor adds to it; the sampler adds
/// it to the thread's own time, which is all a thread's CPU clock counts.
pub type HelperCpu = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// A source of power readings, read by the sampler thread.
pub trait PowerSensor: Send {
    fn info(&self) -> &SensorInfo;

    /// How often the sensor produces a fresh reading (an INA219: its conversion time).
    fn update_period(&self) -> Duration;

    /// Reads the latest values. An error is one failed read (a NACK, say); the sampler
    /// records it ([`ReadError::of`]) and goes on.
    fn read(&mut self) -> Result<Reading>;

    /// The relative uncertainty of the energy this sensor reports (0.012 for 1.2 %), from its
    /// datasheet; `None` where there is no such figure (a nominal wattage is not measured).
    fn uncertainty(&self) -> Option<f64> {
        None
    }

    /// What a sensor of this kind and settings can report at all: a reading beyond makes its
    /// window invalid ([`Limits::judge`]). Without a range of its own, [`Limits::default`].
    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// Whether the readings carry instant power to cross-check an energy counter with (NVML):
    /// `None` where no such check applies (most sensors).
    fn crosscheck(&self) -> Option<Crosscheck> {
        None
    }

    /// The shortest window the sensor's figures can measure, where its values are averages
    /// long enough to matter (NVML's power figure without a counter: up to 1 s); the runner
    /// stretches the timed run and the idle baseline to it, and a shorter window is invalid.
    fn min_window(&self) -> Option<Duration> {
        None
    }

    /// Whether each fresh value is the mean over (nearly) its whole update period, read once
    /// per update: an INA219 averaging its shunt for most of each conversion. Its energy is
    /// then the sum of value × period, and a window's edges split the periods they cut, as a
    /// counter's do (`joulebench::summary::SensorEnergy`).
    fn integrates(&self) -> bool {
        false
    }

    /// Where the sensor counts CPU its reads use outside the sampler thread ([`HelperCpu`]);
    /// `None` for a sensor that reads in the thread itself (most).
    fn helper_cpu(&self) -> Option<HelperCpu> {
        None
    }
}

/// What a sensor may need from the run: the clock, the phases a simulated board's load
/// follows, and the simulated I2C buses its chips share.
#[derive(Debug, Clone)]
pub struct SensorContext {
    pub clock: RunClock,
    pub phases: PhaseLog,
    pub sim_buses: ina219_sim::SimBuses,
}

impl SensorContext {
    pub fn new(clock: RunClock, phases: PhaseLog) -> Self {
        Self {
            clock,
            phases,
            sim_buses: Default::default(),
        }
    }
}

/// Opens every sensor of a rig, in order; an error names the sensor that failed. INA219s that
/// share a bus know it, since they share its time.
pub fn open_all(specs: &[SensorSpec], ctx: &SensorContext) -> Result<Vec<Box<dyn PowerSensor>>> {
    specs
        .iter()
        .map(|spec| {
            let chips = specs
                .iter()
                .filter(|other| other.shares_bus_with(spec))
                .count();
            open_among(spec, ctx, chips as u32)
                .with_context(|| format!("sensor {} ({})", spec.kind(), spec.rail()))
        })
        .collect()
}

/// Opens every sensor of a rig's tables, in order, as [`open_all`] does, except that an
/// `optional` one that does not open is [`Missing`] in its place rather than an error.
pub fn open_tables(
    tables: &[SensorTable],
    ctx: &SensorContext,
) -> Result<Vec<Result<Box<dyn PowerSensor>, Missing>>> {
    tables
        .iter()
        .map(|table| {
            let chips = tables
                .iter()
                .filter(|other| other.shares_bus_with(table))
                .count();
            let label = format!("sensor {} ({})", table.kind(), table.rail());
            match open_among(table, ctx, chips as u32) {
                Ok(sensor) => Ok(Ok(sensor)),
                Err(e) if table.optional => Ok(Err(Missing {
                    info: SensorInfo {
                        kind: table.kind().into(),
                        rail: table.rail().into(),
                        origin: origin_of(table),
                        detail: "optional; did not open".into(),
                    },
                    why: format!("{e:#}").replace('\n', " "),
                })),
                Err(e) => Err(e.context(label)),
            }
        })
        .collect()
}

/// Opens the sensor a rig's `[[sensors]]` table describes, as if alone on its bus.
pub fn open(spec: &SensorSpec, ctx: &SensorContext) -> Result<Box<dyn PowerSensor>> {
    open_among(spec, ctx, 1)
}

/// Opens a sensor that shares its bus with `chips_on_bus - 1` others read at the same time.
fn open_among(
    spec: &SensorSpec,
    ctx: &SensorContext,
    chips_on_bus: u32,
) -> Result<Box<dyn PowerSensor>> {
    match spec {
        SensorSpec::Ina219(s) => Ok(Box::new(ina219::open_linux(s, chips_on_bus)?)),
        SensorSpec::Ina219Sim(s) => Ok(Box::new(ina219_sim::open(s, ctx, chips_on_bus)?)),
        SensorSpec::Nvml(s) => Ok(Box::new(nvml::open(s)?)),
        SensorSpec::Nominal(s) => Ok(Box::new(nominal::open(s)?)),
        SensorSpec::Rapl(s) => Ok(Box::new(rapl::open(s)?)),
        SensorSpec::Hwmon(s) => Ok(Box::new(hwmon::open(s)?)),
        SensorSpec::Ina3221(s) => Ok(Box::new(ina3221::open(s)?)),
        SensorSpec::RpiPmic(s) => Ok(Box::new(rpi_pmic::open(s)?)),
    }
}
