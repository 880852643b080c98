//! Rig files: one TOML file per bench setup (see `rigs/` and docs/src/reference/rig-files.md).
//!
//! Every table rejects unknown keys, so a misspelt setting is an error with its line and
//! column rather than a silently ignored default.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// A parsed rig file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rig {
    /// Short name, used in result folder names and in every summary row.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seconds of idle measurement before any backend runs; 0 disables net figures.
    #[serde(default = "default_idle_baseline_s")]
    pub idle_baseline_s: f64,
    #[serde(default)]
    pub protocol: ProtocolSpec,
    pub backends: Vec<BackendSpec>,
    #[serde(default)]
    pub sensors: Vec<SensorTable>,
    /// Rails (sensor `rail` names) whose energies add up to the whole setup's, such as a Pi's
    /// supply and the Coral's separately fed USB line: the summary adds a total row, the sum of
    /// their energies over the same windows. Only rails that do not feed one another.
    #[serde(default)]
    pub total: Vec<String>,
    /// When a window's readings are trusted (see [`crate::validity`]).
    #[serde(default)]
    pub validity: crate::validity::ValiditySpec,
    /// Use this machine's readable meters (RAPL, hwmon, INA3221; see
    /// [`crate::sensor::detect`]) instead of `sensors`, which then serve only as the fallback
    /// where none is readable.
    #[serde(default)]
    pub detect_sensors: bool,
}

fn default_idle_baseline_s() -> f64 {
    2.0
}

/// How many classifications, and the pauses around them. The defaults are the 2019 method.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtocolSpec {
    /// Untimed classifications before the timed run.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// Sleep between warm-up and the timed run, in seconds.
    #[serde(default = "default_settle_s")]
    pub settle_s: f64,
    /// Timed classifications.
    #[serde(default = "default_runs")]
    pub runs: u32,
    /// If set, keep classifying past `runs` until the timed run lasted this long (seconds), so
    /// slow sensors see enough samples.
    #[serde(default)]
    pub min_duration_s: Option<f64>,
    /// MLPerf's names: "single-stream" (batch 1, latency; the 2019 method) or "offline"
    /// (batches as fast as possible, throughput).
    #[serde(default)]
    pub scenario: Scenario,
    /// Times the whole protocol runs on each backend, sensors kept open: with 2 or more the
    /// summary adds an aggregate row with spread and confidence intervals.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Run the protocol once first and range every INA219 from 1.1 × the peak current it saw
    /// (see [`crate::ranging`]).
    #[serde(default)]
    pub ranging: bool,
}

fn default_repeat() -> u32 {
    1
}

/// How inferences are issued (MLPerf inference scenarios).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    Deserialize,
    Serialize,
    PartialEq,
    Eq,
    clap::ValueEnum,
    strum::IntoStaticStr,
    strum::VariantArray,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Scenario {
    /// One image at a time, each timed: latency percentiles.
    #[default]
    SingleStream,
    /// Batches of `batch` images back to back: throughput.
    Offline,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

fn default_warmup() -> u32 {
    1
}
fn default_settle_s() -> f64 {
    1.0
}
fn default_runs() -> u32 {
    250
}

impl Default for ProtocolSpec {
    fn default() -> Self {
        Self {
            warmup: default_warmup(),
            settle_s: default_settle_s(),
            runs: default_runs(),
            min_duration_s: None,
            scenario: Scenario::SingleStream,
            repeat: default_repeat(),
            ranging: false,
        }
    }
}

pub use crate::backend::spec::{
    BackendKind, BackendSpec, Device, EdgetpuSpec, Engine, Precision, TfliteSpec, TorchSpec,
    Workload,
};

pub use crate::sensor::nominal::NominalSpec;
pub use crate::sensor::nvml::{NvmlMethod, NvmlSpec};
pub use crate::sensor::{SensorSpec, SensorTable};

pub use crate::sensor::ina219::{
    AdcMode, I2cAdapter, Ina219Spec, NackBurstSpec, SimFaultSpec, SimLoadSpec, VanishSpec,
};

impl Rig {
    /// Reads and validates a rig file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read rig file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("rig file {}", path.display()))
    }

    /// Reads and parses the rig `--rig` names: a path, or the name of a rig found as
    /// [`crate::project::read_rig`] says. Also returns its text and where it came from.
    pub fn find(arg: &str) -> Result<(Self, crate::project::RigSource)> {
        let source = crate::project::read_rig(arg)?;
        let rig = Self::parse(&source.text).with_context(|| source.origin.clone())?;
        Ok((rig, source))
    }

    /// Parses and validates rig TOML; errors name the line and column.
    pub fn parse(text: &str) -> Result<Self> {
        let rig: Rig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim();
            let Some(span) = e.span() else {
                return anyhow::anyhow!("{message}");
            };
            let (start, message) = tagged_table_key(text, &span, message).unwrap_or_else(|| {
                let start = key_in_table(text, span.clone(), message).unwrap_or(span.start);
                (start, message.to_string())
            });
            let (line, col) = line_col(text, start);
            anyhow::anyhow!("line {line}, column {col}: {message}")
        })?;
        rig.validate()?;
        Ok(rig)
    }

    /// Checks the values serde cannot (ranges, required combinations).
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            bail!("name must be non-empty and free of path separators");
        }
        if self.name.len() > MAX_NAME_BYTES {
            bail!(
                "name must be at most {MAX_NAME_BYTES} bytes (it begins the name of each run's \
                 folder, which a file system holds to 255), not {}: give a shorter name",
                self.name.len()
            );
        }
        if self.backends.is_empty() {
            bail!("at least one [[backends]] table is needed");
        }
        check_seconds("idle_baseline_s", self.idle_baseline_s)?;
        self.validity.validate().map_err(anyhow::Error::msg)?;
        let p = &self.protocol;
        if p.runs == 0 {
            bail!("protocol.runs must be at least 1");
        }
        if p.repeat == 0 {
            bail!("protocol.repeat must be at least 1");
        }
        check_count(
            "protocol.runs",
            p.runs,
            MAX_RUNS,
            "each timed latency is kept in memory",
            "for more samples, repeat the protocol (protocol.repeat, --repeat)",
        )?;
        check_count(
            "protocol.warmup",
            p.warmup,
            MAX_WARMUP,
            "a warm-up only has to reach a steady speed",
            "give fewer",
        )?;
        check_count(
            "protocol.repeat",
            p.repeat,
            MAX_REPEAT,
            "more narrows the interval no further to speak of",
            "to measure for longer, run joulebench soak",
        )?;
        check_backend_count(self.backends.len())?;
        check_seconds("protocol.settle_s", p.settle_s)?;
        if let Some(s) = p.min_duration_s {
            check_seconds("protocol.min_duration_s", s)?;
        }
        let offline = p.scenario == Scenario::Offline;
        for (i, b) in self.backends.iter().enumerate() {
            b.validate(offline)
                .map_err(|e| anyhow::anyhow!("backends[{i}] ({}): {e}", b.kind().as_str()))?;
        }
        for (i, s) in self.sensors.iter().enumerate() {
            s.validate_alone()
                .map_err(|e| anyhow::anyhow!("sensors[{i}] ({}): {e}", s.kind()))?;
        }
        self.validate_buses()?;
        self.validate_total()
    }

    /// Two chips on one bus need two addresses; the chips of one simulated bus share its
    /// adapter and clock.
    fn validate_buses(&self) -> Result<()> {
        let chips: Vec<(usize, &'static str, &Ina219Spec)> = self
            .sensors
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.spec {
                SensorSpec::Ina219(spec) | SensorSpec::Ina219Sim(spec) => Some((i, s.kind(), spec)),
                _ => None,
            })
            .collect();
        for (n, &(i, kind, a)) in chips.iter().enumerate() {
            for &(j, other_kind, b) in &chips[..n] {
                if kind != other_kind || a.i2c_bus != b.i2c_bus {
                    continue;
                }
                if a.address == b.address {
                    bail!(
                        "sensors[{i}] and sensors[{j}] are both at address {:#04x} on one bus: \
                         give each INA219 its own address (A0/A1 pins: 0x40 to 0x4f)",
                        a.address
                    );
                }
                if kind == "ina219-sim"
                    && (a.bus_adapter != b.bus_adapter || a.bus_khz != b.bus_khz)
                {
                    bail!(
                        "sensors[{i}] and sensors[{j}] share a simulated bus: give them the same \
                         bus_adapter and bus_khz, or different i2c_bus names"
                    );
                }
            }
        }
        Ok(())
    }

    /// The rails of `total` exist, are distinct, and are measured (or simulated), not nominal.
    fn validate_total(&self) -> Result<()> {
        self.validate_rail_names()?;
        if self.total.is_empty() {
            return Ok(());
        }
        self.validate_total_rails()?;
        self.validate_total_pmic()?;
        self.validate_total_jetson()
    }

    /// Every sensor measures a rail of its own name, which is how `total` names it.
    fn validate_rail_names(&self) -> Result<()> {
        for (i, s) in self.sensors.iter().enumerate() {
            if let Some(j) = self.sensors[..i].iter().position(|o| o.rail() == s.rail()) {
                bail!(
                    "sensors[{i}] and sensors[{j}] both measure rail {:?}: give every sensor its own rail name",
                    s.rail()
                );
            }
        }
        Ok(())
    }

    /// `total` names two or more rails, each once, each a sensor's that measures.
    fn validate_total_rails(&self) -> Result<()> {
        if self.total.len() < 2 {
            bail!(
                "total needs two or more rails to add up, not {:?}",
                self.total
            );
        }
        for (n, rail) in self.total.iter().enumerate() {
            if self.total[..n].contains(rail) {
                bail!("total names rail {rail:?} twice");
            }
            match self
                .sensors
                .iter()
                .find(|s| s.rail() == rail)
                .map(|s| &s.spec)
            {
                None => bail!(
                    "total names rail {rail:?}, which no sensor measures (rails: {})",
                    self.sensors
                        .iter()
                        .map(|s| format!("{:?}", s.rail()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(SensorSpec::Nominal(_)) => bail!(
                    "total names rail {rail:?}, a nominal figure: a total adds measured energies"
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// No two of the total's PMIC tables add up a rail in common, which would count its
    /// energy twice (a table of every rail holds them all).
    fn validate_total_pmic(&self) -> Result<()> {
        let pmic: Vec<&crate::sensor::rpi_pmic::RpiPmicSpec> = self
            .total_sensors()
            .into_iter()
            .filter_map(|i| match &self.sensors[i].spec {
                SensorSpec::RpiPmic(spec) => Some(spec),
                _ => None,
            })
            .collect();
        for (n, a) in pmic.iter().enumerate() {
            if let Some(b) = pmic[..n].iter().find(|b| b.overlaps(a)) {
                bail!(
                    "total adds rail {:?} to {:?}, and both add up the same PMIC rails ({} and \
                     {}): total PMIC tables of distinct rails only",
                    a.rail,
                    b.rail,
                    describe_pmic_rails(a),
                    describe_pmic_rails(b)
                );
            }
        }
        Ok(())
    }

    /// A total holding a Jetson's board input (POM_5V_IN, VDD_IN) adds no other rail of that
    /// board: the input already holds them, and adding them counts their energy twice, a known
    /// mistake of other tools.
    fn validate_total_jetson(&self) -> Result<()> {
        let jetson: Vec<&crate::sensor::ina3221::Ina3221Spec> = self
            .total_sensors()
            .into_iter()
            .filter_map(|i| match &self.sensors[i].spec {
                SensorSpec::Ina3221(spec) => Some(spec),
                _ => None,
            })
            .collect();
        if let Some(input) = jetson
            .iter()
            .find(|s| crate::sensor::ina3221::is_board_input(&s.label))
        {
            if let Some(inner) = jetson
                .iter()
                .find(|s| s.root == input.root && s.label != input.label)
            {
                bail!(
                    "total adds rail {:?} ({}) to {:?} ({}), the board's input, which already \
                     includes it: total the input alone, or only rails that do not feed one another",
                    inner.rail,
                    inner.label,
                    input.rail,
                    input.label
                );
            }
        }
        Ok(())
    }

    /// The sensors of `total`, by index, in the order it names them.
    pub fn total_sensors(&self) -> Vec<usize> {
        self.total
            .iter()
            .filter_map(|rail| self.sensors.iter().position(|s| s.rail() == rail))
            .collect()
    }
}

/// A PMIC table's rails for an error: "VDD_CORE + 3V3_SYS", or "every rail".
fn describe_pmic_rails(spec: &crate::sensor::rpi_pmic::RpiPmicSpec) -> String {
    if spec.rails.is_empty() {
        "every rail".into()
    } else {
        spec.rails.join(" + ")
    }
}

pub use crate::clock::MAX_SECONDS;

// The counts' bounds. Each is far above what a measurement needs, so that it only stops a typo
// or a wrapped -1 (4294967295) before anything is loaded or measured, instead of an
// allocation that aborts or a run that never ends.

/// Timed classifications: each one's latency is kept in memory (16 bytes) and written to
/// latency.csv (about 45 bytes), so a million is 16 MB and 45 MB, which a Raspberry Pi 3's
/// 1 GB still holds.
pub const MAX_RUNS: u32 = 1_000_000;

/// Warm-up classifications keep nothing, so this bound is only against typos: 10^8 is hours at
/// the fastest model seen (19 µs), and 10,000,000 (the crash tests' warm-up that never ends)
/// stays well inside it.
pub const MAX_WARMUP: u32 = 100_000_000;

/// Repetitions of the protocol: each keeps its latencies and adds summary rows; the aggregate's
/// 95 % interval narrows as 1/√n, so beyond 1000 it gains almost nothing, and a longer
/// measurement is a soak (which repeats for a given time instead).
pub const MAX_REPEAT: u32 = 1000;

/// Backends of a rig, a `--batch` sweep's included: every one is opened (its model loaded)
/// before the first is measured. 64 holds a sweep of 11 batches (1 to 1024) on 5 backends.
pub const MAX_BACKENDS: usize = 64;

/// A rig's name, in bytes: it begins each run's folder name (`<name>-<UTC timestamp>-N`, up
/// to 40 bytes more), which Linux file systems hold to 255 bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A count key: at most `max`, for the reason `why`; `fix` says what to do instead.
fn check_count(key: &str, value: u32, max: u32, why: &str, fix: &str) -> Result<()> {
    if value > max {
        bail!("{key} must be at most {max} ({why}), not {value}: {fix}");
    }
    Ok(())
}

/// Refuses more backends than [`MAX_BACKENDS`] (`count`, after any `--batch` sweep).
pub fn check_backend_count(count: usize) -> Result<()> {
    if count > MAX_BACKENDS {
        bail!(
            "the rig has {count} backends (a --batch sweep runs each once per batch), more than \
             the {MAX_BACKENDS} joulebench opens at once: split it into several runs"
        );
    }
    Ok(())
}

/// A duration key: a number of seconds from 0 to [`MAX_SECONDS`]; NaN and infinities refused.
fn check_seconds(key: &str, value: f64) -> Result<()> {
    if !(0.0..=MAX_SECONDS).contains(&value) {
        // 1e300 as written, not as 301 digits.
        let shown = if value.abs() >= 1e9 {
            format!("{value:e}")
        } else {
            value.to_string()
        };
        bail!("{key} must be 0 to {MAX_SECONDS} seconds, not {shown}");
    }
    Ok(())
}

/// Where the key an error names is written, when the error points at a table's header: a
/// `[[backends]]` table is read through its `kind` tag, so serde places an unknown key or a
/// bad value at the table, not at the key. The key is the one in backquotes ("unknown field
/// `thread`") or the message's first word ("device \"gpu\" is not ..."), looked for in the
/// table's lines, up to the next header.
fn key_in_table(text: &str, header: std::ops::Range<usize>, message: &str) -> Option<usize> {
    let key = match message.split_once('`') {
        Some((_, rest)) => rest.split('`').next()?,
        None => message.split_whitespace().next()?,
    };
    if !text.get(header.clone())?.trim_start().starts_with('[') {
        return None;
    }
    let mut lines = text.get(header.end..)?.split_inclusive('\n');
    // The rest of the header's own line.
    let mut offset = header.end + lines.next()?.len();
    for line in lines {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            break;
        }
        let is_key = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key {
            return Some(offset + line.len() - trimmed.len());
        }
        offset += line.len();
    }
    None
}

/// Where the key an error of a `[[sensors]]` or `[[backends]]` table is about is written, and
/// the error with the key's path before it (`sensors[0].shunt_ohms: invalid type: string
/// "0.1", expected f64`). serde reads each table through its `kind` tag, which copies the
/// table aside first and reads the copy after toml has let go of it, so such an error names no
/// key and toml places it at the whole array (`span`: the first table's header, whichever table
/// it came from). The tables are read once more, in order, each straight into its kind's
/// struct ([`SensorSpec::deserialize_kind`], [`BackendSpec::deserialize_kind`]): the first that
/// fails is the one (the array is read in order and stops at the first error), and toml places
/// its error at the key's value, or for an unknown key at its name; both reads take the keys in
/// the same order, so they stop at the same key. None where `span` is no such array's, or
/// where the tables give nothing to place (a table without a known `kind`, which the first read
/// refused at the table itself).
fn tagged_table_key(
    text: &str,
    span: &std::ops::Range<usize>,
    message: &str,
) -> Option<(usize, String)> {
    use toml::de::{DeTable, DeValue, ValueDeserializer};
    type Read = fn(&str, ValueDeserializer<'_>) -> Result<(), toml::de::Error>;
    let arrays: [(&str, Read); 2] = [
        ("sensors", |kind, table| {
            SensorSpec::deserialize_kind(kind, table).map(drop)
        }),
        ("backends", |kind, table| {
            BackendSpec::deserialize_kind(kind, table).map(drop)
        }),
    ];
    let document = DeTable::parse(text).ok()?;
    // A sensor table is read through its common keys ([`SensorTable`]) too, which places
    // the error at the table rather than at the array.
    let (name, read, tables) = arrays.iter().find_map(|(name, read)| {
        let array = document.get_ref().get(*name)?;
        let items = array.get_ref().as_array()?;
        (array.span() == *span || items.iter().any(|t| t.span() == *span))
            .then_some((*name, *read, array))
    })?;
    for (index, table) in tables.get_ref().as_array()?.iter().enumerate() {
        let mut keys = table.get_ref().as_table()?.clone();
        let kind = keys.remove("kind")?;
        // The keys every kind shares are read beside the kind's own ([`SensorTable`]).
        if name == "sensors" {
            keys.remove("optional");
        }
        let direct = toml::Spanned::new(table.span(), DeValue::Table(keys.clone()));
        let Err(error) = read(kind.get_ref().as_str()?, ValueDeserializer::from(direct)) else {
            continue;
        };
        let at = error.span()?;
        let path = format!("{name}[{index}]");
        let (path, start) = if at == table.span() {
            // The table as a whole (a missing key).
            (path, at.start)
        } else {
            key_at(&keys, &at, &path)?
        };
        return Some((start, format!("{path}: {message}")));
    }
    None
}

/// The path of the key in `table` (at any depth, below `path`) whose value lies at `at`, and
/// where its name is written; for a name that lies at `at` (an unknown key, which the message
/// names), the path of the table that holds it.
fn key_at(
    table: &toml::de::DeTable<'_>,
    at: &std::ops::Range<usize>,
    path: &str,
) -> Option<(String, usize)> {
    table.iter().find_map(|(key, value)| {
        let here = format!("{path}.{}", key.get_ref());
        if key.span() == *at {
            Some((path.to_string(), key.span().start))
        } else if value.span() == *at {
            Some((here, key.span().start))
        } else {
            value_at(value, at, &here)
        }
    })
}

/// [`key_at`] inside a value: a table's keys, an array's items.
fn value_at(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    at: &std::ops::Range<usize>,
    path: &str,
) -> Option<(String, usize)> {
    match value.get_ref() {
        toml::de::DeValue::Table(table) => key_at(table, at, path),
        toml::de::DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let here = format!("{path}[{i}]");
            if item.span() == *at {
                Some((here, item.span().start))
            } else {
                value_at(item, at, &here)
            }
        }),
        _ => None,
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each enum's names come from one rule: the rig file's (serde), the command line's (clap)
    /// and the outputs' (`as_str`, strum) agree for every variant.
    #[test]
    fn enum_names_agree_in_rig_files_command_lines_and_outputs() {
        fn agree<T>()
        where
            T: strum::VariantArray + clap::ValueEnum + Serialize + Copy + Into<&'static str>,
        {
            for v in T::VARIANTS {
                let name: &'static str = (*v).into();
                assert_eq!(serde_json::to_value(v).unwrap(), name);
                assert_eq!(v.to_possible_value().unwrap().get_name(), name);
            }
        }
        agree::<Scenario>();
        agree::<Precision>();
        agree::<Engine>();
        agree::<BackendKind>();
        assert_eq!(Scenario::SingleStream.as_str(), "single-stream");
    }

    const MINIMAL: &str = r#"
name = "t"
[[backends]]
kind = "tflite"
model = "mobilenet_v2_1.0_224_quant"
image = "bird.bmp"
"#;

    #[test]
    fn defaults_are_the_2019_method() {
        let rig = Rig::parse(MINIMAL).unwrap();
        assert_eq!(rig.protocol, ProtocolSpec::default());
        assert_eq!(rig.protocol.warmup, 1);
        assert_eq!(rig.protocol.settle_s, 1.0);
        assert_eq!(rig.protocol.runs, 250);
        assert_eq!(rig.backends[0].threads(), 1);
        assert_eq!(
            rig.backends[0].tflite().unwrap().engine,
            None,
            "the engine is chosen at run time"
        );
    }

    /// Each count's bound is accepted and one above it refused, with the key, the bound and
    /// what to do; what the tests rely on (a warm-up of 10,000,000 that never ends, a timed run
    /// of 600 s) stays inside.
    #[test]
    fn counts_are_bounded_where_a_user_can_live_with_them() {
        let protocol = |lines: &str| format!("{MINIMAL}[protocol]\n{lines}\n");
        let torch = |batch: u32| {
            format!(
                "{}[protocol]\nscenario = \"offline\"\n",
                MINIMAL.replace("\"tflite\"", "\"torch\"")
            ) + &format!(
                "[[backends]]\nkind = \"torch\"\nmodel = \"m\"\nimage = \"i\"\nbatch = {batch}\n"
            )
        };
        let tflite =
            |batch: u32| format!("{MINIMAL}batch = {batch}\n[protocol]\nscenario = \"offline\"\n");
        let backends = |n: usize| {
            MINIMAL.to_string() + &MINIMAL[MINIMAL.find("[[backends]]").unwrap()..].repeat(n - 1)
        };
        for accepted in [
            protocol("runs = 1000000\nwarmup = 100000000\nrepeat = 1000"),
            protocol("warmup = 10000000\nmin_duration_s = 600"),
            torch(4096),
            tflite(1024),
            backends(64),
        ] {
            Rig::parse(&accepted).unwrap();
        }
        for (refused, want) in [
            (
                protocol("runs = 1000001"),
                "protocol.runs must be at most 1000000 (each timed latency is kept in memory), \
                 not 1000001: for more samples, repeat the protocol (protocol.repeat, --repeat)",
            ),
            (
                protocol("warmup = 4294967295"),
                "protocol.warmup must be at most 100000000 (a warm-up only has to reach a \
                 steady speed), not 4294967295: give fewer",
            ),
            (
                protocol("repeat = 1001"),
                "protocol.repeat must be at most 1000 (more narrows the interval no further to \
                 speak of), not 1001: to measure for longer, run joulebench soak",
            ),
            (
                torch(4097),
                "backends[1] (torch): batch must be at most 4096 (the batch's input and \
                 activations are allocated when the backend opens), not 4097: give a smaller \
                 batch",
            ),
            (
                tflite(1025),
                "backends[0] (tflite): batch must be at most 1024 (the engine allocates the \
                 batch's input and activations in the machine's memory when the backend opens), \
                 not 1025: give a smaller batch",
            ),
            (tflite(0), "backends[0] (tflite): batch must be at least 1"),
            (
                format!("{MINIMAL}batch = 4\n"),
                "backends[0] (tflite): batch 4 needs protocol.scenario = \"offline\" \
                 (single-stream is batch 1)",
            ),
            (
                backends(65),
                "the rig has 65 backends (a --batch sweep runs each once per batch), more than \
                 the 64 joulebench opens at once: split it into several runs",
            ),
        ] {
            assert_eq!(format!("{:#}", Rig::parse(&refused).unwrap_err()), want);
        }
    }

    #[test]
    fn xnnpack_is_a_litert_setting() {
        let text = format!("{MINIMAL}engine = \"tflite\"\nxnnpack = true\n");
        let err = format!("{:#}", Rig::parse(&text).unwrap_err());
        assert!(err.contains("belong to engine \"litert\""), "{err}");
        let text = format!("{MINIMAL}engine = \"litert\"\nxnnpack = false\n");
        let rig = Rig::parse(&text).unwrap();
        let tflite = rig.backends[0].tflite().unwrap();
        assert_eq!(
            (tflite.engine, tflite.xnnpack),
            (Some(Engine::Litert), Some(false))
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_line_and_column() {
        let text = format!("{MINIMAL}thread = 2\n");
        let err = format!("{:#}", Rig::parse(&text).unwrap_err());
        assert!(err.contains("line 7"), "{err}");
        assert!(err.contains("thread"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn sysfs_sensor_kinds_parse_and_their_own_checks_run() {
        let rig = Rig::parse(&format!(
            "detect_sensors = true\n{MINIMAL}[[sensors]]\nkind = \"rapl\"\nrail = \"p\"\ndomain = \"package-0\"\n\
             [[sensors]]\nkind = \"hwmon\"\nrail = \"h\"\nchip = \"pmbus\"\nchannel = 1\n\
             [[sensors]]\nkind = \"ina3221\"\nrail = \"j\"\nlabel = \"VDD_IN\"\nroot = \"/tmp/x\"\n"
        ))
        .unwrap();
        assert!(rig.detect_sensors);
        let kinds: Vec<_> = rig.sensors.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["rapl", "hwmon", "ina3221"]);
        match &rig.sensors[0].spec {
            SensorSpec::Rapl(s) => assert_eq!(s.root, Path::new("/sys")),
            other => panic!("{other:?}"),
        }
        let bad = |table: &str| {
            let text = format!("{MINIMAL}[[sensors]]\n{table}");
            format!("{:#}", Rig::parse(&text).unwrap_err())
        };
        let e = bad("kind = \"rapl\"\nrail = \"p\"\ndomain = \"core\"\nzone = \"intel-rapl:0\"\n");
        assert_eq!(e, "sensors[0] (rapl): give domain or zone, not both");
        let e = bad("kind = \"hwmon\"\nrail = \"h\"\nchip = \"pmbus\"\n");
        assert_eq!(e, "sensors[0] (hwmon): give label or channel (one of them)");
        let e = bad("kind = \"ina3221\"\nrail = \"j\"\nlabel = \"VDD_IN\"\nperiod_ms = 0\n");
        assert_eq!(e, "sensors[0] (ina3221): period_ms must be at least 1");
        let e = bad("kind = \"rapl\"\nrail = \"p\"\ndomian = \"core\"\n");
        assert!(e.contains("unknown field `domian`"), "{e}");
    }

    /// `optional` is a key of every sensor kind, read beside the kind's own keys: those keep
    /// their checks and their errors' places.
    #[test]
    fn any_sensor_can_be_optional() {
        let rig = Rig::parse(&format!(
            "{MINIMAL}{SIM_SENSOR}optional = true\n[[sensors]]\nkind = \"rapl\"\nrail = \"p\"\n\
             domain = \"package-0\"\n"
        ))
        .unwrap();
        assert_eq!(
            rig.sensors.iter().map(|s| s.optional).collect::<Vec<_>>(),
            [true, false]
        );
        assert_eq!(rig.sensors[0].kind(), "ina219-sim");
        let err = |sensors: &str| {
            format!(
                "{:#}",
                Rig::parse(&format!("{MINIMAL}{sensors}")).unwrap_err()
            )
        };
        // MINIMAL is 6 lines; the sensor table starts on line 7, its sixth key on line 12.
        assert_eq!(
            err(&format!("{SIM_SENSOR}optional = \"yes\"\n")),
            "line 12, column 12: invalid type: string \"yes\", expected a boolean"
        );
        assert_eq!(
            err(&format!(
                "{SIM_SENSOR}optional = true\nbus_khz = \"fast\"\n"
            )),
            "line 13, column 1: sensors[0].bus_khz: invalid type: string \"fast\", expected u32"
        );
        let e = err(&format!("{SIM_SENSOR}optional = true\noptinal = true\n"));
        assert!(
            e.starts_with("line 13, column 1: sensors[0]: unknown field `optinal`"),
            "{e}"
        );
        // A total may name an optional sensor's rail: without it, none is formed.
        let two = format!(
            "{}optional = true\n{}",
            sim_at("Pi", 0x40, ""),
            sim_at("Coral", 0x41, "optional = true\n")
        );
        assert!(with_total(r#"["Pi", "Coral"]"#, &two).is_ok());
    }

    #[test]
    fn real_ina219_needs_a_bus() {
        let text = format!(
            "{MINIMAL}[[sensors]]\nkind = \"ina219\"\nrail = \"5V\"\nshunt_ohms = 0.1\nmax_current_a = 3.2\n"
        );
        let err = format!("{:#}", Rig::parse(&text).unwrap_err());
        assert!(err.contains("i2c_bus is required"), "{err}");
    }

    #[test]
    fn bad_address_is_rejected() {
        let text = format!(
            "{MINIMAL}[[sensors]]\nkind = \"ina219-sim\"\nrail = \"5V\"\naddress = 0x20\nshunt_ohms = 0.1\nmax_current_a = 3.2\n"
        );
        let err = format!("{:#}", Rig::parse(&text).unwrap_err());
        assert!(err.contains("0x20"), "{err}");
    }

    const SIM_SENSOR: &str =
        "[[sensors]]\nkind = \"ina219-sim\"\nrail = \"5V\"\nshunt_ohms = 0.1\nmax_current_a = 3.2\n";

    /// A rig with a top-level `total` and the given sensor tables.
    fn with_total(total: &str, sensors: &str) -> Result<Rig> {
        let body = MINIMAL.replacen("name = \"t\"\n", "", 1);
        Rig::parse(&format!("name = \"t\"\ntotal = {total}\n{body}{sensors}"))
    }

    fn sim_at(rail: &str, address: u8, extra: &str) -> String {
        format!(
            "[[sensors]]\nkind = \"ina219-sim\"\nrail = \"{rail}\"\naddress = {address:#04x}\n\
             shunt_ohms = 0.1\nmax_current_a = 3.2\n{extra}"
        )
    }

    #[test]
    fn a_total_adds_distinct_measured_rails() {
        let two = format!("{}{}", sim_at("Pi", 0x40, ""), sim_at("Coral", 0x41, ""));
        let rig = with_total(r#"["Coral", "Pi"]"#, &two).unwrap();
        assert_eq!(rig.total_sensors(), vec![1, 0]);
        let err =
            |total: &str, sensors: &str| format!("{:#}", with_total(total, sensors).unwrap_err());
        assert!(err(r#"["Pi"]"#, &two).contains("two or more rails"));
        assert!(err(r#"["Pi", "Pi"]"#, &two).contains("names rail \"Pi\" twice"));
        let e = err(r#"["Pi", "GPU"]"#, &two);
        assert!(
            e.contains("\"GPU\", which no sensor measures (rails: \"Pi\", \"Coral\")"),
            "{e}"
        );
        let nominal = format!(
            "{}[[sensors]]\nkind = \"nominal\"\nrail = \"GPU\"\nwatts = 180.0\n",
            sim_at("Pi", 0x40, "")
        );
        assert!(err(r#"["Pi", "GPU"]"#, &nominal).contains("a nominal figure"));
        let same_rail = format!("{}{}", sim_at("Pi", 0x40, ""), sim_at("Pi", 0x41, ""));
        let e = err("[]", &same_rail);
        assert!(e.contains("both measure rail \"Pi\""), "{e}");
    }

    #[test]
    fn a_total_never_adds_a_jetsons_rails_to_its_board_input() {
        let rail = |rail: &str, label: &str| {
            format!("[[sensors]]\nkind = \"ina3221\"\nrail = \"{rail}\"\nlabel = \"{label}\"\n")
        };
        let nano = format!("{}{}", rail("in", "POM_5V_IN"), rail("gpu", "POM_5V_GPU"));
        let e = format!("{:#}", with_total(r#"["in", "gpu"]"#, &nano).unwrap_err());
        assert!(
            e.contains(
                "total adds rail \"gpu\" (POM_5V_GPU) to \"in\" (POM_5V_IN), the board's input"
            ),
            "{e}"
        );
        // Rails inside the module that do not feed one another do add up.
        let inner = format!("{}{}", rail("gpu", "POM_5V_GPU"), rail("cpu", "POM_5V_CPU"));
        assert!(with_total(r#"["gpu", "cpu"]"#, &inner).is_ok());
        // The board input beside an external INA219 on a Coral's own supply adds up too.
        let with_coral = format!("{}{}", rail("in", "VDD_IN"), sim_at("Coral", 0x41, ""));
        assert!(with_total(r#"["in", "Coral"]"#, &with_coral).is_ok());
    }

    #[test]
    fn chips_on_one_bus_need_their_own_addresses_and_one_clock() {
        let e = format!(
            "{:#}",
            with_total(
                "[]",
                &format!("{}{}", sim_at("a", 0x40, ""), sim_at("b", 0x40, ""))
            )
            .unwrap_err()
        );
        assert!(e.contains("both at address 0x40 on one bus"), "{e}");
        // On two buses the same address is fine.
        let two_buses = format!(
            "{}{}",
            sim_at("a", 0x40, ""),
            sim_at("b", 0x40, "i2c_bus = \"other\"\n")
        );
        assert!(with_total("[]", &two_buses).is_ok());
        let clocks = format!(
            "{}{}",
            sim_at("a", 0x40, ""),
            sim_at("b", 0x41, "bus_khz = 400\n")
        );
        let e = format!("{:#}", with_total("[]", &clocks).unwrap_err());
        assert!(e.contains("same bus_adapter and bus_khz"), "{e}");
        let rig = with_total(
            "[]",
            &format!("{}{}", sim_at("a", 0x40, ""), sim_at("b", 0x41, "")),
        )
        .unwrap();
        assert!(rig.sensors[0].shares_bus_with(&rig.sensors[1]));
        let rig = with_total("[]", &two_buses).unwrap();
        assert!(!rig.sensors[0].shares_bus_with(&rig.sensors[1]));
    }

    #[test]
    fn ina219_bus_defaults_to_a_pi_at_100_khz() {
        let rig = Rig::parse(&format!("{MINIMAL}{SIM_SENSOR}")).unwrap();
        let SensorSpec::Ina219Sim(spec) = &rig.sensors[0].spec else {
            panic!("{:?}", rig.sensors[0]);
        };
        assert_eq!((spec.bus_khz, spec.bus_adapter), (100, None));
        let text = format!("{MINIMAL}{SIM_SENSOR}bus_khz = 400\nbus_adapter = \"tegra\"\n");
        let rig = Rig::parse(&text).unwrap();
        let SensorSpec::Ina219Sim(spec) = &rig.sensors[0].spec else {
            panic!("{:?}", rig.sensors[0]);
        };
        assert_eq!(
            (spec.bus_khz, spec.bus_adapter),
            (400, Some(I2cAdapter::Tegra))
        );

        let text = format!("{MINIMAL}{SIM_SENSOR}bus_khz = 1000\n");
        let err = format!("{:#}", Rig::parse(&text).unwrap_err());
        assert!(err.contains("bus_khz must be 100 or 400"), "{err}");
        let text = format!("{MINIMAL}{SIM_SENSOR}bus_adapter = \"i801\"\n");
        assert!(Rig::parse(&text).is_err());
        let real = format!(
            "{MINIMAL}[[sensors]]\nkind = \"ina219\"\nrail = \"5V\"\ni2c_bus = \"/dev/i2c-1\"\n\
             shunt_ohms = 0.1\nmax_current_a = 3.2\nbus_khz = 400\n"
        );
        Rig::parse(&real).unwrap();
        let err = format!(
            "{:#}",
            Rig::parse(&format!("{real}bus_adapter = \"bcm2835\"\n")).unwrap_err()
        );
        assert!(err.contains("belong to kind \"ina219-sim\""), "{err}");
    }

    #[test]
    fn calibration_keys_parse_and_bad_ones_are_one_line_errors() {
        let text = format!(
            "{MINIMAL}{SIM_SENSOR}shunt_correction = 0.99\nreference_uncertainty_pct = 0.1\n\
             [sensors.load]\nactual_shunt_ohms = 0.101\n"
        );
        let rig = Rig::parse(&text).unwrap();
        let SensorSpec::Ina219Sim(spec) = &rig.sensors[0].spec else {
            panic!("{:?}", rig.sensors[0]);
        };
        assert_eq!(spec.shunt_correction, Some(0.99));
        assert_eq!(spec.reference_uncertainty_pct, Some(0.1));
        assert_eq!(spec.load.as_ref().unwrap().actual_shunt_ohms, Some(0.101));
        // Existing rigs: no correction, and the simulated chip measures across shunt_ohms.
        let rig = Rig::parse(&format!("{MINIMAL}{SIM_SENSOR}")).unwrap();
        let SensorSpec::Ina219Sim(spec) = &rig.sensors[0].spec else {
            panic!("{:?}", rig.sensors[0]);
        };
        assert_eq!(
            (spec.shunt_correction, spec.reference_uncertainty_pct),
            (None, None)
        );
        assert_eq!(SimLoadSpec::default().actual_shunt_ohms, None);
        for (extra, want) in [
            (
                "shunt_correction = 0.7\n",
                "sensors[0] (ina219-sim): shunt_correction must be between 0.8 and 1.25, not 0.7: a current \
                 that far off its reference is a wiring fault, not a shunt's tolerance",
            ),
            (
                "reference_uncertainty_pct = 0.1\n",
                "sensors[0] (ina219-sim): reference_uncertainty_pct needs shunt_correction (joulebench \
                 calibrate writes both)",
            ),
            (
                "shunt_correction = 1.01\nreference_uncertainty_pct = 25.0\n",
                "sensors[0] (ina219-sim): reference_uncertainty_pct must be above 0 and at most 20, not 25",
            ),
            (
                "[sensors.load]\nactual_shunt_ohms = 0.0\n",
                "sensors[0] (ina219-sim): load.actual_shunt_ohms must be positive, not 0",
            ),
        ] {
            let err = format!(
                "{:#}",
                Rig::parse(&format!("{MINIMAL}{SIM_SENSOR}{extra}")).unwrap_err()
            );
            assert_eq!(err, want);
        }
    }

    #[test]
    fn sim_faults_parse_and_impossible_values_are_one_line_errors() {
        let faults = "[sensors.faults]\nreset_at_s = 2.5\ncnvr_stuck = true\n\
            nack_burst = { at_s = 1.0, transactions = 5 }\ntimeout_at_s = 3.0\ntimeout_ms = 25\n\
            vanish = { from_s = 4.0, until_s = 4.5 }\n";
        let rig = Rig::parse(&format!("{MINIMAL}{SIM_SENSOR}{faults}")).unwrap();
        let SensorSpec::Ina219Sim(spec) = &rig.sensors[0].spec else {
            panic!("{:?}", rig.sensors[0]);
        };
        let f = spec.faults.as_ref().unwrap();
        assert_eq!(f.reset_at_s, Some(2.5));
        assert!(f.cnvr_stuck);
        assert_eq!(
            f.nack_burst,
            Some(NackBurstSpec {
                at_s: 1.0,
                transactions: 5
            })
        );
        assert_eq!((f.timeout_at_s, f.timeout_ms), (Some(3.0), Some(25.0)));
        assert_eq!(
            f.vanish,
            Some(VanishSpec {
                from_s: 4.0,
                until_s: 4.5
            })
        );
        for (bad, want) in [
            (
                "reset_at_s = -1.0",
                "faults.reset_at_s must be 0 or more seconds",
            ),
            (
                "nack_burst = { at_s = 1.0, transactions = 0 }",
                "transactions must be at least 1",
            ),
            (
                "timeout_ms = 5",
                "faults.timeout_ms needs faults.timeout_at_s",
            ),
            (
                "timeout_at_s = 1.0\ntimeout_ms = 0",
                "faults.timeout_ms must be above 0",
            ),
            (
                "vanish = { from_s = 2.0, until_s = 1.0 }",
                "must be after from_s",
            ),
            (
                "vanish = { from_s = -2.0, until_s = 1.0 }",
                "vanish.from_s must be 0 or more",
            ),
            ("reset_after_s = 1.0", "reset_after_s"),
            ("nack_burst = { at_s = 1.0, count = 2 }", "count"),
        ] {
            let text = format!("{MINIMAL}{SIM_SENSOR}[sensors.faults]\n{bad}\n");
            let err = format!("{:#}", Rig::parse(&text).unwrap_err());
            assert!(err.contains(want), "{bad}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    /// A `[[sensors]]` table is read through its `kind` tag, which loses the key of a bad
    /// value: its error names the key by its path and points at the key's line, in every kind,
    /// a nested table's too (it was placed at `[[sensors]]` and named no key).
    /// A backend table's bad value is placed at its key, in the table it is in: read through
    /// the `kind` tag, toml placed it at the first `[[backends]]` header whichever table it
    /// was in.
    #[test]
    fn backend_type_errors_name_their_key_and_its_line() {
        // MINIMAL is 6 lines (its first is empty); the second backend starts on line 7.
        let second = |line: &str| {
            format!(
                "{:#}",
                Rig::parse(&format!(
                    "{MINIMAL}[[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n{line}\n"
                ))
                .unwrap_err()
            )
        };
        assert_eq!(
            second("threads = \"2\""),
            "line 11, column 1: backends[1].threads: invalid type: string \"2\", expected u32"
        );
        let e = second("thread = 2");
        assert!(
            e.starts_with("line 11, column 1: backends[1]: unknown field `thread`"),
            "{e}"
        );
    }

    #[test]
    fn sensor_type_errors_name_their_key_and_its_line() {
        // MINIMAL is 6 lines; a sensor table starts on line 7, its first key on line 8.
        let err = |sensors: &str| {
            format!(
                "{:#}",
                Rig::parse(&format!("{MINIMAL}{sensors}")).unwrap_err()
            )
        };
        for (sensors, want) in [
            (
                SIM_SENSOR.replace("shunt_ohms = 0.1", "shunt_ohms = \"0.1\""),
                "line 10, column 1: sensors[0].shunt_ohms: invalid type: string \"0.1\", expected f64",
            ),
            (
                format!("{SIM_SENSOR}adc = \"13bit\"\n"),
                "line 12, column 1: sensors[0].adc: unknown variant `13bit`, expected one of `9bit`, \
                 `10bit`, `11bit`, `12bit`, `avg2`, `avg4`, `avg8`, `avg16`, `avg32`, `avg64`, `avg128`",
            ),
            (
                format!("{SIM_SENSOR}    bus_khz = 400.0\n"),
                "line 12, column 5: sensors[0].bus_khz: invalid type: floating point `400.0`, expected u32",
            ),
            (
                format!("{SIM_SENSOR}[sensors.load]\nactual_shunt_ohms = \"x\"\n"),
                "line 13, column 1: sensors[0].load.actual_shunt_ohms: invalid type: string \"x\", \
                 expected f64",
            ),
            (
                format!("{SIM_SENSOR}load.idle_amps = true\n"),
                "line 12, column 6: sensors[0].load.idle_amps: invalid type: boolean `true`, expected f64",
            ),
            (
                format!("{SIM_SENSOR}[sensors.faults]\nnack_burst = {{ at_s = 1.0 }}\n"),
                "line 13, column 1: sensors[0].faults.nack_burst: missing field `transactions`",
            ),
            (
                format!("{SIM_SENSOR}[sensors.faults]\nreset_after_s = 1.0\n"),
                "line 13, column 1: sensors[0].faults: unknown field `reset_after_s`, expected one of \
                 `nack_after_transactions`, `absent`, `reset_at_s`, `cnvr_stuck`, `nack_burst`, \
                 `timeout_at_s`, `timeout_ms`, `vanish`",
            ),
            (
                // The second table's, where the message differs between the two reads (the
                // tag's copy calls a table a map).
                format!("{}{}", sim_at("a", 0x40, ""), sim_at("b", 0x41, "bus_adc = 5\n")),
                "line 19, column 1: sensors[1].bus_adc: invalid type: integer `5`, expected string or map",
            ),
            (
                "[[sensors]]\nkind = \"nominal\"\nrail = \"GPU\"\n".into(),
                "line 7, column 1: sensors[0]: missing field `watts`",
            ),
            (
                // At the second table's header, not the first's.
                format!(
                    "{}[[sensors]]\nkind = \"nominal\"\nrail = \"GPU\"\n",
                    sim_at("a", 0x40, "")
                ),
                "line 13, column 1: sensors[1]: missing field `watts`",
            ),
        ] {
            assert_eq!(err(&sensors), want, "{sensors}");
        }
        // The same written inline, as an array of tables on one line.
        let inline = format!(
            "sensors = [{{ kind = \"nominal\", rail = \"GPU\", watts = \"180\" }}]{MINIMAL}"
        );
        assert_eq!(
            format!("{:#}", Rig::parse(&inline).unwrap_err()),
            "line 1, column 46: sensors[0].watts: invalid type: string \"180\", expected f64"
        );
        // Every kind: a rail that is not a string.
        for (kind, rest) in [
            (
                "ina219",
                "i2c_bus = \"/dev/i2c-1\"\nshunt_ohms = 0.1\nmax_current_a = 3.2\n",
            ),
            ("ina219-sim", "shunt_ohms = 0.1\nmax_current_a = 3.2\n"),
            ("nvml", ""),
            ("nominal", "watts = 180.0\n"),
            ("rapl", "domain = \"package-0\"\n"),
            ("hwmon", "chip = \"pmbus\"\nchannel = 1\n"),
            ("ina3221", "label = \"VDD_IN\"\n"),
        ] {
            let table = format!("[[sensors]]\nkind = \"{kind}\"\nrail = 5\n{rest}");
            assert_eq!(
                err(&table),
                "line 9, column 1: sensors[0].rail: invalid type: integer `5`, expected a string",
                "{kind}"
            );
            Rig::parse(&format!(
                "{MINIMAL}{}",
                table.replace("rail = 5", "rail = \"r\"")
            ))
            .unwrap_or_else(|e| panic!("{kind}: {e:#}"));
        }
    }

    /// A rail is what tells sensors apart (the duplicate check, `total`), and labels their rows:
    /// "A" and "A " were two rails, and a total of them read "A + A".
    #[test]
    fn rails_are_named_on_one_line_without_white_space_at_their_ends() {
        let err = |sensors: &str| format!("{:#}", with_total("[]", sensors).unwrap_err());
        let two = |rail: &str| format!("{}{}", sim_at("A", 0x40, ""), sim_at(rail, 0x41, ""));
        for (sensors, want) in [
            (
                two("A "),
                "sensors[1] (ina219-sim): rail \"A \" has white space at an end, which makes it \
                 another rail than \"A\": write rail = \"A\"",
            ),
            (
                two("\\u00a0A"),
                "sensors[1] (ina219-sim): rail \"\\u{a0}A\" has white space at an end, which makes it \
                 another rail than \"A\": write rail = \"A\"",
            ),
            (
                two("5V\\nUSB"),
                "sensors[1] (ina219-sim): rail \"5V\\nUSB\" holds a control character (a line \
                 break, a tab, ...): write rail = \"5V USB\"",
            ),
            (
                two(""),
                "sensors[1] (ina219-sim): rail \"\" names nothing: name what the sensor measures, \
                 e.g. rail = \"5V supply\"",
            ),
            (
                two("\\t "),
                "sensors[1] (ina219-sim): rail \"\\t \" names nothing: name what the sensor \
                 measures, e.g. rail = \"5V supply\"",
            ),
            (
                "[[sensors]]\nkind = \"nominal\"\nrail = \" GPU\"\nwatts = 180.0\n".into(),
                "sensors[0] (nominal): rail \" GPU\" has white space at an end, which makes it \
                 another rail than \"GPU\": write rail = \"GPU\"",
            ),
        ] {
            assert_eq!(err(&sensors), want, "{sensors}");
        }
        // A total cannot add a rail to itself under another spelling.
        let e = format!(
            "{:#}",
            with_total(r#"["A", "A "]"#, &two("A ")).unwrap_err()
        );
        assert!(e.starts_with("sensors[1] (ina219-sim): rail \"A \""), "{e}");
        // Spaces, punctuation and any script inside a name are fine.
        with_total(
            r#"["A", "Pi 3B+ 5 V | Coral ü"]"#,
            &two("Pi 3B+ 5 V | Coral ü"),
        )
        .unwrap();
    }

    /// A PGA range that cannot hold `max_current_a` across the shunt clips every reading above
    /// its own current: refused at load, naming the keys and the fix (it was accepted, and every
    /// window of the run came out invalid, saturated).
    #[test]
    fn a_shunt_range_must_hold_max_current() {
        let real = "[[sensors]]\nkind = \"ina219\"\nrail = \"5V\"\ni2c_bus = \"/dev/i2c-1\"\n\
                    shunt_ohms = 0.1\nmax_current_a = 3.2\n";
        let parse = |sensors: &str, keys: &str| Rig::parse(&format!("{MINIMAL}{sensors}{keys}\n"));
        for (sensors, kind) in [(SIM_SENSOR, "ina219-sim"), (real, "ina219")] {
            let e = format!("{:#}", parse(sensors, "shunt_range_mv = 40").unwrap_err());
            assert_eq!(
                e,
                format!(
                    "sensors[0] ({kind}): max_current_a = 3.2 A through shunt_ohms = 0.1 Ω is 320 mV, \
                     beyond shunt_range_mv = 40 (a current above 0.4 A would read clipped): set \
                     shunt_range_mv = 320 or leave it out, or use a smaller shunt"
                )
            );
            parse(sensors, "shunt_range_mv = 320").unwrap();
            parse(sensors, "").unwrap();
        }
        let range = |max: &str, mv: u16| {
            parse(
                &SIM_SENSOR.replace("max_current_a = 3.2", &format!("max_current_a = {max}")),
                &format!("shunt_range_mv = {mv}"),
            )
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
        };
        // 0.4 A × 0.1 Ω is 40.000000000000007 mV in floating point: it fits 40 mV.
        range("0.4", 40).unwrap();
        let e = range("1.0", 80).unwrap_err();
        assert!(
            e.ends_with("is 100 mV, beyond shunt_range_mv = 80 (a current above 0.8 A would read \
                         clipped): set shunt_range_mv = 160 or leave it out, or use a smaller shunt"),
            "{e}"
        );
        let e = range("3.3", 320).unwrap_err();
        assert!(
            e.ends_with(
                "is 330 mV, beyond shunt_range_mv = 320 (a current above 3.2 A would read \
                         clipped): use a smaller shunt (no range holds more than 320 mV)"
            ),
            "{e}"
        );
    }

    #[test]
    fn edgetpu_keys_belong_to_their_kind() {
        let edgetpu = MINIMAL.replace("kind = \"tflite\"", "kind = \"edgetpu\"");
        let text = format!(
            "{edgetpu}edgetpu_lib = \"/usr/lib/libedgetpu.so.1\"\ntflite_c_lib = \"/opt/tfl.so\"\nedgetpu_device = \"usb:0\"\nthreads = 2\n"
        );
        let rig = Rig::parse(&text).unwrap();
        let BackendSpec::Edgetpu(b) = &rig.backends[0] else {
            panic!("{:?}", rig.backends[0]);
        };
        assert_eq!(b.edgetpu_device.unwrap().to_string(), "usb:0");
        assert_eq!(b.tflite_c_lib.as_deref(), Some(Path::new("/opt/tfl.so")));
        assert_eq!(b.threads, 2);
        assert!(matches!(
            &Rig::parse(&edgetpu).unwrap().backends[0],
            BackendSpec::Edgetpu(EdgetpuSpec {
                edgetpu_device: None,
                ..
            })
        ));

        let cases = [
            (
                format!("{MINIMAL}edgetpu_device = \"usb\"\n"),
                "unknown field `edgetpu_device`, expected one of `model`, `image`, `threads`, `labels`, `engine`, `xnnpack`, `litert_lib`",
            ),
            (
                format!("{MINIMAL}tflite_c_lib = \"/x.so\"\n"),
                "unknown field `tflite_c_lib`",
            ),
            (
                format!("{edgetpu}xnnpack = true\n"),
                "unknown field `xnnpack`, expected one of `model`, `image`, `threads`, `labels`, `edgetpu_lib`, `tflite_c_lib`, `edgetpu_device`",
            ),
            (
                format!("{edgetpu}device = \"cuda\"\n"),
                "unknown field `device`",
            ),
            (
                format!("{edgetpu}edgetpu_lib = \"\"\n"),
                "edgetpu_lib is empty",
            ),
            (format!("{edgetpu}edgetpu_device = \"tpu:0\"\n"), "line 7"),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", Rig::parse(&text).unwrap_err());
            assert!(err.contains(want), "{want}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let err = format!(
            "{:#}",
            Rig::parse(&format!("{edgetpu}edgetpu_device = \"tpu:0\"\n")).unwrap_err()
        );
        assert!(
            err.contains("is not \"usb\", \"usb:N\", \"pci\" or \"pci:N\""),
            "{err}"
        );
    }

    /// `cuda_graph` is a torch key, and `true` needs a CUDA device; `false` is fine anywhere
    /// a torch backend runs.
    #[test]
    fn cuda_graph_belongs_to_torch_on_cuda() {
        let torch = MINIMAL.replace("kind = \"tflite\"", "kind = \"torch\"");
        let edgetpu = MINIMAL.replace("kind = \"tflite\"", "kind = \"edgetpu\"");
        for (text, want) in [
            (format!("{torch}cuda_graph = false\n"), Some(false)),
            (
                format!("{torch}device = \"cpu\"\ncuda_graph = false\n"),
                Some(false),
            ),
            (
                format!("{torch}device = \"cuda:1\"\ncuda_graph = true\n"),
                Some(true),
            ),
            (format!("{torch}device = \"cuda\"\n"), None),
        ] {
            assert_eq!(
                Rig::parse(&text).unwrap().backends[0]
                    .torch()
                    .unwrap()
                    .cuda_graph,
                want,
                "{text}"
            );
        }
        let cases = [
            (
                format!("{MINIMAL}cuda_graph = false\n"),
                "unknown field `cuda_graph`",
            ),
            (
                format!("{edgetpu}cuda_graph = true\n"),
                "unknown field `cuda_graph`",
            ),
            (
                format!("{torch}cuda_graph = true\n"),
                "cuda_graph = true needs device = \"cuda\" or \"cuda:N\"",
            ),
            (
                format!("{torch}device = \"cpu\"\ncuda_graph = true\n"),
                "cuda_graph = true needs device",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", Rig::parse(&text).unwrap_err());
            assert!(err.contains(want), "{want}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    /// `docs/src/reference/rig.schema.json` is the JSON Schema the spec types give (through
    /// schemars, from the same serde attributes the parser follows), so editors that read it
    /// (Taplo, Even Better TOML) check a rig as it is typed, and it cannot drift from the code.
    /// `JOULEBENCH_UPDATE_DOCS=1 cargo test --lib rig::tests::the_rig_schema` writes it.
    #[test]
    fn the_rig_schema_is_the_one_the_spec_types_give() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference/rig.schema.json");
        let generated = serde_json::to_string_pretty(&schemars::schema_for!(Rig)).unwrap() + "\n";
        if std::env::var_os("JOULEBENCH_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            written == generated,
            "{} is not what the spec types give: run `JOULEBENCH_UPDATE_DOCS=1 cargo test \
             --lib rig::tests::the_rig_schema` and commit it",
            path.display()
        );
        // Every backend and sensor kind is a choice by `kind` that refuses other keys.
        let schema: serde_json::Value = serde_json::from_str(&generated).unwrap();
        for (spec, kinds) in [("BackendSpec", 3), ("SensorTable", 8)] {
            let choices = schema["$defs"][spec]["oneOf"].as_array().unwrap();
            assert_eq!(choices.len(), kinds, "{spec}");
            for choice in choices {
                assert_eq!(choice["additionalProperties"], false, "{choice}");
                assert!(
                    choice["properties"]["kind"]["const"].is_string(),
                    "{choice}"
                );
                // The keys every sensor table shares are in every sensor kind's choice.
                if spec == "SensorTable" {
                    assert_eq!(choice["properties"]["optional"]["type"], "boolean");
                }
            }
        }
    }

    #[test]
    fn committed_rigs_parse() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rigs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Rig::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            }
        }
    }

    /// Rigs generated from the spec structs: every backend kind with its own keys, every sensor
    /// kind, the protocol, the validity table, totals. Values stray outside what `validate`
    /// accepts now and then (a zero, an address off the INA219's range, a batch in
    /// single-stream, two chips at one address, ...), so invalid rigs are generated too.
    mod properties {
        use proptest::collection::vec;
        use proptest::option::of;
        use proptest::prelude::*;

        use std::path::PathBuf;

        use super::*;
        use crate::backend::spec::{Bus, DeviceChoice};
        use crate::sensor::hwmon::HwmonSpec;
        use crate::sensor::ina3221::Ina3221Spec;
        use crate::sensor::rapl::RaplSpec;
        use crate::sensor::rpi_pmic::{fit::CalibrationPoint, RpiPmicSpec};
        use crate::validity::ValiditySpec;

        /// Any text, newlines, quotes, backslashes and control characters included.
        fn text() -> impl Strategy<Value = String> {
            "(?s).{0,12}"
        }

        /// A rail: mostly a name a rail file would give it, now and then any text (empty,
        /// white space at an end, control characters: refused).
        fn rail() -> impl Strategy<Value = String> {
            prop_oneof![9 => "[A-Za-z0-9][A-Za-z0-9 +|._-]{0,10}[A-Za-z0-9]", 1 => text()]
        }

        fn path() -> impl Strategy<Value = PathBuf> {
            text().prop_map(PathBuf::from)
        }

        fn seconds() -> impl Strategy<Value = f64> {
            prop_oneof![9 => 0.0..10.0_f64, 1 => -1.0..0.0_f64]
        }

        fn protocol() -> impl Strategy<Value = ProtocolSpec> {
            // Now and then any count at all, so that the bounds are on both sides.
            (
                prop_oneof![9 => 0u32..4, 1 => any::<u32>()],
                seconds(),
                prop_oneof![9 => 0u32..400, 1 => any::<u32>()],
                of(0.1..60.0_f64),
                prop_oneof![Just(Scenario::SingleStream), Just(Scenario::Offline)],
                prop_oneof![9 => 0u32..4, 1 => any::<u32>()],
                any::<bool>(),
            )
                .prop_map(
                    |(warmup, settle_s, runs, min_duration_s, scenario, repeat, ranging)| {
                        ProtocolSpec {
                            warmup,
                            settle_s,
                            runs,
                            min_duration_s,
                            scenario,
                            repeat,
                            ranging,
                        }
                    },
                )
        }

        fn backend() -> impl Strategy<Value = BackendSpec> {
            let kind = prop_oneof![
                Just(BackendKind::Tflite),
                Just(BackendKind::Torch),
                Just(BackendKind::Edgetpu)
            ];
            let tflite = (
                of(prop_oneof![Just(Engine::Litert), Just(Engine::Tflite)]),
                of(any::<bool>()),
                of(path()),
                of(prop_oneof![9 => 0u32..5, 1 => any::<u32>()]),
            );
            let torch = (
                of(prop_oneof![
                    Just(Device::Cpu),
                    (0u32..4).prop_map(Device::Cuda)
                ]),
                of(prop_oneof![Just(Precision::Fp32), Just(Precision::Fp16)]),
                of(prop_oneof![9 => 0u32..5, 1 => any::<u32>()]),
                of(any::<bool>()),
                of(any::<bool>()),
            );
            let device = (prop_oneof![Just(Bus::Usb), Just(Bus::Pci)], of(0usize..4))
                .prop_map(|(bus, index)| DeviceChoice { bus, index });
            let edgetpu = (of(path()), of(path()), of(device));
            // Another kind's keys cannot be held by a backend of this one: the tagged tables
            // refuse them as unknown keys (tested by hand above).
            (kind, tflite, torch, edgetpu, text(), text(), 0u32..5).prop_map(
                |(kind, tflite, torch, edgetpu, model, image, threads)| {
                    let mut b = BackendSpec::new(
                        kind,
                        Workload {
                            model,
                            image,
                            threads,
                        },
                    );
                    match &mut b {
                        BackendSpec::Tflite(s) => {
                            (s.engine, s.xnnpack, s.litert_lib, s.batch) = tflite
                        }
                        BackendSpec::Torch(s) => {
                            (
                                s.device,
                                s.precision,
                                s.batch,
                                s.cudnn_benchmark,
                                s.cuda_graph,
                            ) = torch
                        }
                        BackendSpec::Edgetpu(s) => {
                            (s.edgetpu_lib, s.tflite_c_lib, s.edgetpu_device) = edgetpu
                        }
                    }
                    b
                },
            )
        }

        fn adc() -> impl Strategy<Value = AdcMode> {
            prop::sample::select(vec![
                AdcMode::Bits9,
                AdcMode::Bits10,
                AdcMode::Bits11,
                AdcMode::Bits12,
                AdcMode::Avg2,
                AdcMode::Avg4,
                AdcMode::Avg8,
                AdcMode::Avg16,
                AdcMode::Avg32,
                AdcMode::Avg64,
                AdcMode::Avg128,
            ])
        }

        fn load() -> impl Strategy<Value = SimLoadSpec> {
            // TOML integers are signed 64-bit: a seed beyond i64::MAX cannot be written in a
            // rig file, so no parsed rig holds one.
            (
                (
                    4.0..6.0_f64,
                    0.0..0.2_f64,
                    0.0..2.0_f64,
                    0.0..2.0_f64,
                    0.0..0.1_f64,
                ),
                0..=i64::MAX as u64,
                of(prop_oneof![9 => 0.01..1.0_f64, 1 => -1.0..=0.0_f64]),
            )
                .prop_map(
                    |(
                        (supply_volts, source_ohms, idle_amps, active_amps, noise_amps),
                        seed,
                        actual_shunt_ohms,
                    )| {
                        SimLoadSpec {
                            supply_volts,
                            source_ohms,
                            idle_amps,
                            active_amps,
                            noise_amps,
                            seed,
                            actual_shunt_ohms,
                        }
                    },
                )
        }

        fn faults() -> impl Strategy<Value = SimFaultSpec> {
            (
                of(0..=i64::MAX as u64),
                any::<bool>(),
                of(seconds()),
                any::<bool>(),
                of((seconds(), 0..=i64::MAX as u64)
                    .prop_map(|(at_s, transactions)| NackBurstSpec { at_s, transactions })),
                of(seconds()),
                of(0.0..2000.0_f64),
                of((seconds(), seconds())
                    .prop_map(|(from_s, until_s)| VanishSpec { from_s, until_s })),
            )
                .prop_map(
                    |(
                        nack_after_transactions,
                        absent,
                        reset_at_s,
                        cnvr_stuck,
                        nack_burst,
                        timeout_at_s,
                        timeout_ms,
                        vanish,
                    )| {
                        SimFaultSpec {
                            nack_after_transactions,
                            absent,
                            reset_at_s,
                            cnvr_stuck,
                            nack_burst,
                            timeout_at_s,
                            timeout_ms,
                            vanish,
                        }
                    },
                )
        }

        /// An INA219 (`sim`: with the simulated board's keys) at 0x40 + `n` or, now and then,
        /// anywhere.
        fn ina219(sim: bool) -> impl Strategy<Value = Ina219Spec> {
            let address = prop_oneof![9 => Just(None::<u8>), 1 => any::<u8>().prop_map(Some)];
            let bus = prop_oneof![Just(PathBuf::from("/dev/i2c-1")), path()];
            (
                (rail(), of(bus), address, 0.001..1.0_f64, 0.0..5.0_f64),
                (of(0.8..1.25_f64), of(0.01..20.0_f64), 0.01..20.0_f64, adc()),
                (
                    prop_oneof![9 => prop::sample::select(vec![16u8, 32]), 1 => any::<u8>()],
                    of(prop::sample::select(vec![40u16, 80, 160, 320, 100])),
                    adc(),
                    prop::bool::weighted(0.1),
                ),
                (
                    of(load()),
                    of(faults()),
                    prop::sample::select(vec![100u32, 400, 1000]),
                    of(prop::sample::select(vec![
                        I2cAdapter::Bcm2835,
                        I2cAdapter::Tegra,
                        I2cAdapter::Permissive,
                    ])),
                ),
            )
                .prop_map(
                    move |(
                        (rail, i2c_bus, address, shunt_ohms, shunt_tolerance_pct),
                        (shunt_correction, reference_uncertainty_pct, max_current_a, adc),
                        (bus_range_v, shunt_range_mv, bus_adc, clipping),
                        (load, faults, bus_khz, bus_adapter),
                    )| {
                        // A range mostly holds max_current_a across the shunt; now and then
                        // it clips, and the rig is refused.
                        let max_current_a = match shunt_range_mv {
                            Some(mv) if !clipping => {
                                max_current_a.min(f64::from(mv) / 1e3 / shunt_ohms)
                            }
                            _ => max_current_a,
                        };
                        let i2c_bus = if sim {
                            i2c_bus
                        } else {
                            i2c_bus.or_else(|| Some("/dev/i2c-1".into()))
                        };
                        Ina219Spec {
                            rail,
                            i2c_bus,
                            address: address.unwrap_or(0x40),
                            shunt_ohms,
                            shunt_tolerance_pct,
                            shunt_correction,
                            reference_uncertainty_pct: reference_uncertainty_pct
                                .filter(|_| shunt_correction.is_some()),
                            max_current_a,
                            adc,
                            bus_adc,
                            bus_range_v,
                            shunt_range_mv,
                            load: load.filter(|_| sim),
                            faults: faults.filter(|_| sim),
                            bus_khz,
                            bus_adapter: bus_adapter.filter(|_| sim),
                        }
                    },
                )
        }

        /// A sysfs root: the default (left out of the TOML) or any other.
        fn root() -> impl Strategy<Value = PathBuf> {
            prop_oneof![Just(PathBuf::from("/sys")), path()]
        }

        fn sensor() -> impl Strategy<Value = SensorSpec> {
            prop_oneof![
                ina219(false).prop_map(SensorSpec::Ina219),
                ina219(true).prop_map(SensorSpec::Ina219Sim),
                (
                    rail(),
                    0u32..8,
                    prop::sample::select(vec![
                        NvmlMethod::Auto,
                        NvmlMethod::EnergyCounter,
                        NvmlMethod::Power
                    ])
                )
                    .prop_map(|(rail, device, method)| SensorSpec::Nvml(
                        NvmlSpec {
                            rail,
                            device,
                            method
                        }
                    )),
                (
                    rail(),
                    prop_oneof![9 => 0.1..500.0_f64, 1 => -1.0..=0.0_f64],
                    text()
                )
                    .prop_map(|(rail, watts, source)| SensorSpec::Nominal(
                        NominalSpec {
                            rail,
                            watts,
                            source
                        }
                    )),
                (
                    rail(),
                    of(text()),
                    of(prop_oneof![Just("intel-rapl:0".to_string()), text()]),
                    root()
                )
                    .prop_map(|(rail, domain, zone, root)| SensorSpec::Rapl(
                        RaplSpec {
                            rail,
                            domain,
                            zone,
                            root
                        }
                    )),
                (
                    rail(),
                    text(),
                    of(0usize..4),
                    of(text()),
                    of(0u32..8),
                    of(0u32..100),
                    root()
                )
                    .prop_map(
                        |(rail, chip, chip_index, label, channel, period_ms, root)| {
                            SensorSpec::Hwmon(HwmonSpec {
                                rail,
                                chip,
                                chip_index,
                                label,
                                channel,
                                period_ms,
                                root,
                            })
                        }
                    ),
                (
                    rail(),
                    prop_oneof![
                        Just("VDD_IN".to_string()),
                        Just("POM_5V_GPU".to_string()),
                        text()
                    ],
                    of(0u32..100),
                    root()
                )
                    .prop_map(
                        |(rail, label, period_ms, root)| SensorSpec::Ina3221(Ina3221Spec {
                            rail,
                            label,
                            period_ms,
                            root
                        })
                    ),
                (
                    rail(),
                    vec(prop_oneof![Just("VDD_CORE".to_string()), text()], 0..3),
                    prop_oneof![Just(PathBuf::from("vcgencmd")), path()],
                    of(0u32..1000),
                    vec(
                        (
                            0.1..10.0_f64,
                            prop_oneof![9 => 0.1..12.0_f64, 1 => -1.0..=0.0_f64],
                            0.0..25.0_f64
                        ),
                        0..3
                    )
                )
                    .prop_map(|(rail, rails, vcgencmd, period_ms, points)| {
                        SensorSpec::RpiPmic(RpiPmicSpec {
                            rail,
                            rails,
                            vcgencmd,
                            period_ms,
                            calibration: points
                                .into_iter()
                                .map(|(pmic_w, reference_w, reference_uncertainty_pct)| {
                                    CalibrationPoint {
                                        pmic_w,
                                        reference_w,
                                        reference_uncertainty_pct,
                                    }
                                })
                                .collect(),
                        })
                    }),
            ]
        }

        /// Gives sensor `i` its own rail name and, for INA219s left at 0x40, its own address;
        /// with `clash`, every sensor the same rail and address instead (invalid with two).
        fn distinct(mut sensors: Vec<SensorSpec>, clash: bool) -> Vec<SensorSpec> {
            for (i, s) in sensors.iter_mut().enumerate() {
                let name = |rail: &mut String| {
                    if clash {
                        *rail = "rail".into();
                    } else {
                        rail.push_str(&format!("#{i}"));
                    }
                };
                match s {
                    SensorSpec::Ina219(spec) | SensorSpec::Ina219Sim(spec) => {
                        name(&mut spec.rail);
                        if spec.address == 0x40 && !clash {
                            spec.address += i as u8;
                        }
                    }
                    SensorSpec::Nvml(spec) => name(&mut spec.rail),
                    SensorSpec::Nominal(spec) => name(&mut spec.rail),
                    SensorSpec::Rapl(spec) => name(&mut spec.rail),
                    SensorSpec::Hwmon(spec) => name(&mut spec.rail),
                    SensorSpec::Ina3221(spec) => name(&mut spec.rail),
                    SensorSpec::RpiPmic(spec) => name(&mut spec.rail),
                }
            }
            sensors
        }

        prop_compose! {
            fn rigs()(
                name in prop_oneof![9 => "[a-z][a-z0-9_.-]{0,12}", 1 => text()],
                description in text(),
                idle_baseline_s in seconds(),
                protocol in protocol(),
                backends in prop_oneof![19 => vec(backend(), 1..3), 1 => Just(Vec::<BackendSpec>::new())],
                sensors in vec(sensor(), 0..5),
                optional in vec(any::<bool>(), 5),
                clash in prop_oneof![19 => Just(false), 1 => Just(true)],
                total in vec(0usize..6, 0..4),
                validity in (prop_oneof![9 => 0.01..=1.0_f64, 1 => 1.0..2.0_f64], 0.01..=1.0_f64),
                detect_sensors in any::<bool>(),
            ) -> Rig {
                let sensors: Vec<SensorTable> = distinct(sensors, clash)
                    .into_iter()
                    .zip(optional)
                    .map(|(spec, optional)| SensorTable { optional, spec })
                    .collect();
                // Totals name the sensors' rails by index (an index past them: a rail no sensor
                // measures).
                let total = total
                    .into_iter()
                    .map(|i| sensors.get(i).map_or_else(|| format!("rail {i}"), |s| s.rail().to_string()))
                    .collect();
                Rig {
                    name,
                    description,
                    idle_baseline_s,
                    protocol,
                    backends,
                    sensors,
                    total,
                    validity: ValiditySpec { min_coverage: validity.0, min_fresh_fraction: validity.1 },
                    detect_sensors,
                }
            }
        }

        proptest! {
            #![proptest_config(crate::proptest_config(256))]

            /// A rig serialised to TOML parses back to the same rig when it is valid, and to
            /// the error `validate` gives when it is not: what a rig file can say, the structs
            /// can, and validation is the same from either side.
            #[test]
            fn prop_rig_parse_validate_serialise_round_trip(rig in rigs()) {
                let text = toml::to_string(&rig).map_err(|e| TestCaseError::fail(format!("cannot serialise {rig:?}: {e}")))?;
                // Each sensor's table reads straight into its kind's struct too, as the
                // loader reads a refused table again to place its error.
                for sensor in &rig.sensors {
                    let mut table = toml::Table::try_from(sensor).unwrap();
                    table.remove("kind");
                    prop_assert_eq!(table.remove("optional").is_some(), sensor.optional);
                    let direct = SensorSpec::deserialize_kind(sensor.kind(), toml::Value::Table(table));
                    prop_assert_eq!(direct.as_ref().ok(), Some(&sensor.spec), "{:?}", direct);
                }
                match (rig.validate(), Rig::parse(&text)) {
                    (Ok(()), Ok(back)) => {
                        prop_assert_eq!(&back, &rig, "{}", text);
                        // And once more: a parsed rig serialises to the same text.
                        prop_assert_eq!(toml::to_string(&back).unwrap(), text);
                    }
                    (Err(want), Err(got)) => prop_assert_eq!(format!("{got:#}"), format!("{want:#}"), "{}", text),
                    (want, got) => prop_assert!(false, "validate: {:?}, parse: {:?}\n{}", want, got.map(|_| ()), text),
                }
            }
        }
    }

    /// Stable-Rust stand-in for the `rig_parser` fuzz target (fuzz/): a fixed number of
    /// arbitrary and mutated rig texts through `Rig::parse`, which must return, never panic.
    mod fuzz_smoke {
        use std::panic::{catch_unwind, AssertUnwindSafe};

        use proptest::prelude::*;

        use super::*;

        /// The committed rigs, the seeds of the mutations.
        fn committed() -> Vec<String> {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rigs");
            let mut texts: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect();
            texts.sort();
            texts
        }

        /// TOML's syntax and values that stress a parser: brackets, quotes, escapes, numbers
        /// past every integer type, special floats, multi-byte characters, line endings.
        const TOKENS: &[&str] = &[
            "=",
            "[",
            "]",
            "[[",
            "]]",
            "{",
            "}",
            ",",
            ".",
            "\"",
            "'",
            "\"\"\"",
            "'''",
            "\\",
            "\\u0000",
            "#",
            "\n",
            "\r\n",
            "\t",
            " ",
            "0x",
            "0o",
            "0b",
            "-",
            "+",
            "_",
            "1e999",
            "nan",
            "-inf",
            "-0",
            "255",
            "256",
            "4294967296",
            "9223372036854775808",
            "18446744073709551616",
            "true",
            "1979-05-27T07:32:00Z",
            "é",
            "🦀",
            "\u{feff}",
            "[[sensors]]\nkind = \"ina219-sim\"\n",
            "[[backends]]\n",
            "[sensors.faults]\n",
            "kind = \"ina219\"",
            "total = [\"a\", \"a\"]",
            "address = 0x",
            "x = ",
        ];

        #[derive(Debug, Clone)]
        enum Edit {
            Insert(f64, usize),
            Delete(f64, usize),
            Byte(f64, u8),
            Truncate(f64),
        }

        fn edits() -> impl Strategy<Value = Vec<Edit>> {
            let at = 0.0..1.0_f64;
            let edit = prop_oneof![
                (at.clone(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
                (at.clone(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
                (at.clone(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
                at.prop_map(Edit::Truncate),
            ];
            proptest::collection::vec(edit, 1..6)
        }

        /// Applies the edits to the bytes; whatever is not UTF-8 afterwards is replaced
        /// (the parser takes text).
        fn mutate(text: &str, edits: &[Edit]) -> String {
            let mut bytes = text.as_bytes().to_vec();
            for edit in edits {
                let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
                match *edit {
                    Edit::Insert(f, t) => {
                        let i = at(f, bytes.len());
                        bytes.splice(i..i, TOKENS[t].bytes());
                    }
                    Edit::Delete(f, n) => {
                        let i = at(f, bytes.len());
                        bytes.drain(i..(i + n).min(bytes.len()));
                    }
                    Edit::Byte(f, b) if !bytes.is_empty() => {
                        let i = at(f, bytes.len() - 1);
                        bytes[i] = b;
                    }
                    Edit::Byte(..) => {}
                    Edit::Truncate(f) => bytes.truncate(at(f, bytes.len())),
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }

        fn parses_without_panic(text: &str) -> Result<(), TestCaseError> {
            let outcome = catch_unwind(AssertUnwindSafe(|| Rig::parse(text).map(|_| ())));
            prop_assert!(outcome.is_ok(), "Rig::parse panicked on {:?}", text);
            Ok(())
        }

        proptest! {
            #![proptest_config(crate::proptest_config(512))]

            #[test]
            fn fuzz_smoke_rig_parser_arbitrary_text(text in prop_oneof!["(?s).{0,300}", any::<String>()]) {
                parses_without_panic(&text)?;
            }

            #[test]
            fn fuzz_smoke_rig_parser_mutated_rigs(which in any::<prop::sample::Index>(), edits in edits()) {
                let rigs = committed();
                let text = mutate(which.get::<String>(&rigs), &edits);
                parses_without_panic(&text)?;
            }
        }
    }
}
