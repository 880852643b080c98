//! An INA219's `[[sensors]]` table (`kind = "ina219"` and `"ina219-sim"`): the chip, its
//! shunt, its bus and its ADC settings, and for a simulated chip its board's load and the
//! faults it injects, as the rig file gives them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::clock::MAX_SECONDS;

/// An INA219 current/power monitor with its shunt.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ina219Spec {
    /// What the sensor measures, e.g. "5V USB to Pi".
    pub rail: String,
    /// The I2C bus device, e.g. `/dev/i2c-1` (`ina219`: required). For `ina219-sim`, the name
    /// of the simulated bus (default "sim-i2c"): chips that name the same bus share its time.
    #[serde(default)]
    pub i2c_bus: Option<PathBuf>,
    /// 7-bit address set by A0/A1: 0x40 to 0x4F.
    #[serde(default = "default_address")]
    pub address: u8,
    /// Shunt resistance in ohms (0.1 on the common breakout boards).
    pub shunt_ohms: f64,
    /// The shunt's tolerance in percent (1 on the common breakout boards): it usually
    /// dominates the energy's uncertainty.
    #[serde(default = "default_shunt_tolerance_pct")]
    pub shunt_tolerance_pct: f64,
    /// The factor by which this chip's current read low (above 1) or high (below 1) against a
    /// reference, as `joulebench calibrate` measured it; the driver programs the calibration
    /// for a shunt of `shunt_ohms / shunt_correction`. None: 1, uncalibrated.
    #[serde(default)]
    pub shunt_correction: Option<f64>,
    /// How good that calibration's reference is, in percent (needs `shunt_correction`): it
    /// stands in for `shunt_tolerance_pct` in the energy's uncertainty.
    #[serde(default)]
    pub reference_uncertainty_pct: Option<f64>,
    /// Largest current expected, in amperes: sets the current LSB and the PGA range.
    pub max_current_a: f64,
    /// ADC mode of the shunt channel, the one that integrates the current: by default 64
    /// samples averaged, so each conversion is the mean current over its 34 ms and one read
    /// per conversion sees all of it (docs/src/methodology/accuracy.md).
    #[serde(default = "default_shunt_adc")]
    pub adc: AdcMode,
    /// ADC mode of the bus voltage channel: by default one 12-bit sample (0.53 ms), which
    /// keeps the shunt converting 98.5 % of the time at full voltage resolution.
    #[serde(default = "default_bus_adc")]
    pub bus_adc: AdcMode,
    /// Bus voltage range, 16 or 32 V.
    #[serde(default = "default_bus_range_v")]
    pub bus_range_v: u8,
    /// PGA shunt range in mV (40, 80, 160 or 320); by default the smallest that holds
    /// `max_current_a * shunt_ohms`.
    #[serde(default)]
    pub shunt_range_mv: Option<u16>,
    /// The simulated board's draw (`ina219-sim` only).
    #[serde(default)]
    pub load: Option<SimLoadSpec>,
    /// Faults the simulated chip injects (`ina219-sim` only; for testing error handling).
    #[serde(default)]
    pub faults: Option<SimFaultSpec>,
    /// I2C clock in kHz: 100 (standard mode, the Raspberry Pi's default) or 400 (fast mode,
    /// `dtparam=i2c_arm_baudrate=400000` on a Pi). It bounds how often the driver can fetch a
    /// fresh measurement: its four register reads take 1.92 ms at 100 kHz, 0.48 ms at 400 kHz.
    #[serde(default = "default_bus_khz")]
    pub bus_khz: u32,
    /// The Linux I2C adapter driver the simulated bus behaves like (`ina219-sim` only; a real
    /// bus is whatever the kernel drives): "bcm2835" (default), "tegra", "permissive" or
    /// "smbus-only".
    #[serde(default)]
    pub bus_adapter: Option<I2cAdapter>,
}

impl Ina219Spec {
    /// A chip at 0x40 on `shunt_ohms` up to `max_current_a`, every other key at its rig-file
    /// default.
    pub fn new(rail: impl Into<String>, shunt_ohms: f64, max_current_a: f64) -> Self {
        Self {
            rail: rail.into(),
            i2c_bus: None,
            address: default_address(),
            shunt_ohms,
            shunt_tolerance_pct: default_shunt_tolerance_pct(),
            shunt_correction: None,
            reference_uncertainty_pct: None,
            max_current_a,
            adc: default_shunt_adc(),
            bus_adc: default_bus_adc(),
            bus_range_v: default_bus_range_v(),
            shunt_range_mv: None,
            load: None,
            faults: None,
            bus_khz: default_bus_khz(),
            bus_adapter: None,
        }
    }
}

fn default_address() -> u8 {
    0x40
}
fn default_bus_khz() -> u32 {
    100
}
fn default_shunt_tolerance_pct() -> f64 {
    1.0
}
/// The INA219 integrates the current itself: 64 averaged shunt samples (34.05 ms) and a
/// 12-bit bus sample (0.532 ms) make a 34.58 ms conversion that covers 98.5 % of the time:
/// 29 conversions a second, each read once, instead of a read every 1.9 ms. Energy sums
/// value × conversion, and a window's edges split the conversions they cut
/// (`energy::integrated`). avg128 would halve the reads again, but a 0.5 s window would hold
/// only 7 conversions, and one lost to a stall would be 14 % of them.
fn default_shunt_adc() -> AdcMode {
    AdcMode::Avg64
}
fn default_bus_adc() -> AdcMode {
    AdcMode::Bits12
}

/// A Linux I2C adapter driver, as far as it decides which transfers reach the bus.
///
/// linux-embedded-hal sends one `I2c::transaction` as one I2C_RDWR ioctl with one message per
/// operation; i2c-dev refuses more than 42 messages (EINVAL), and each adapter adds its own
/// limits. The default is the strictest, the Raspberry Pi's, which this project targets.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    Deserialize,
    Serialize,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::VariantArray,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum I2cAdapter {
    /// Raspberry Pi 0 to 4 (`i2c-bcm2835`): a read message that is not the transfer's last
    /// fails the whole transfer with EOPNOTSUPP; consecutive messages of one direction are not
    /// joined (the driver ignores I2C_M_NOSTART: each starts again with the address).
    #[default]
    Bcm2835,
    /// NVIDIA Jetson (`i2c-tegra`): quirk I2C_AQ_NO_ZERO_LEN (a zero-length message fails with
    /// EOPNOTSUPP), reads of at most 4096 bytes, writes of at most 4084.
    Tegra,
    /// Any transfer shape goes through (beyond i2c-dev's own limits).
    Permissive,
    /// An SMBus-only controller (a PC's `i2c-i801` or `i2c-piix4`, the kernel's `i2c-stub`): no
    /// I2C_FUNC_I2C, so every I2C_RDWR fails with EOPNOTSUPP; the controller runs SMBus word
    /// transfers itself, and reports a NACKed address as ENXIO.
    SmbusOnly,
}

impl I2cAdapter {
    /// The rig file's spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
fn default_bus_range_v() -> u8 {
    32
}

/// INA219 ADC setting (BADC/SADC): one conversion at 9 to 12 bits, or 12-bit averaged.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub enum AdcMode {
    #[serde(rename = "9bit")]
    Bits9,
    #[serde(rename = "10bit")]
    Bits10,
    #[serde(rename = "11bit")]
    Bits11,
    #[serde(rename = "12bit")]
    Bits12,
    #[serde(rename = "avg2")]
    Avg2,
    #[serde(rename = "avg4")]
    Avg4,
    #[serde(rename = "avg8")]
    Avg8,
    #[serde(rename = "avg16")]
    Avg16,
    #[serde(rename = "avg32")]
    Avg32,
    #[serde(rename = "avg64")]
    Avg64,
    #[serde(rename = "avg128")]
    Avg128,
}

/// The simulated board: idle current, plus an active current while the backend computes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimLoadSpec {
    /// Supply voltage at no load.
    #[serde(default = "default_supply_volts")]
    pub supply_volts: f64,
    /// Resistance of the supply and wiring: the bus voltage sags by I x R.
    #[serde(default = "default_source_ohms")]
    pub source_ohms: f64,
    #[serde(default = "default_idle_amps")]
    pub idle_amps: f64,
    /// Extra current while inferring (warm-up and timed phases).
    #[serde(default = "default_active_amps")]
    pub active_amps: f64,
    /// Standard deviation of Gaussian current noise.
    #[serde(default = "default_noise_amps")]
    pub noise_amps: f64,
    /// Seed of the noise, for reproducible simulations.
    #[serde(default)]
    pub seed: u64,
    /// The board's real shunt, which the simulated chip measures across, while the driver
    /// assumes the sensor's `shunt_ohms` (the default): a board to calibrate.
    #[serde(default)]
    pub actual_shunt_ohms: Option<f64>,
}

fn default_supply_volts() -> f64 {
    5.1
}
fn default_source_ohms() -> f64 {
    0.05
}
fn default_idle_amps() -> f64 {
    0.40
}
fn default_active_amps() -> f64 {
    0.35
}
fn default_noise_amps() -> f64 {
    0.01
}

impl Default for SimLoadSpec {
    fn default() -> Self {
        Self {
            supply_volts: default_supply_volts(),
            source_ohms: default_source_ohms(),
            idle_amps: default_idle_amps(),
            active_amps: default_active_amps(),
            noise_amps: default_noise_amps(),
            seed: 0,
            actual_shunt_ohms: None,
        }
    }
}

/// Faults a simulated INA219 injects, to exercise the error paths a real bus produces. Times
/// are seconds on the run clock (from the start of the run).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimFaultSpec {
    /// After this many successful I2C transactions, every further one is NACKed.
    #[serde(default)]
    pub nack_after_transactions: Option<u64>,
    /// The chip answers at no address at all (as if unplugged).
    #[serde(default)]
    pub absent: bool,
    /// A brown-out at this time: every register goes back to its power-on value (configuration
    /// 0x399F, calibration 0) while conversions go on and CNVR keeps setting, so current and
    /// power read 0 until the driver notices and re-initialises the chip.
    #[serde(default)]
    pub reset_at_s: Option<f64>,
    /// CNVR never sets: the driver never sees a fresh conversion, and every read is stale.
    #[serde(default)]
    pub cnvr_stuck: bool,
    /// A burst of NACKs: the first `transactions` transfers from `at_s` on are NACKed.
    #[serde(default)]
    pub nack_burst: Option<NackBurstSpec>,
    /// The first transfer from this time on hangs until the adapter gives up: it fails with
    /// ETIMEDOUT after `timeout_ms`.
    #[serde(default)]
    pub timeout_at_s: Option<f64>,
    /// How long that hung transfer takes, in ms (default 1000: the i2c core's default adapter
    /// timeout, which i2c-bcm2835 and i2c-tegra wait for).
    #[serde(default)]
    pub timeout_ms: Option<f64>,
    /// The chip is gone (unpowered or unplugged: every transfer NACKed) from `from_s` until
    /// `until_s`, and comes back power-cycled, in its reset state.
    #[serde(default)]
    pub vanish: Option<VanishSpec>,
}

/// `faults.nack_burst`: `transactions` NACKed transfers from `at_s` on.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NackBurstSpec {
    pub at_s: f64,
    pub transactions: u64,
}

/// `faults.vanish`: the chip is off the bus during `[from_s, until_s)`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VanishSpec {
    pub from_s: f64,
    pub until_s: f64,
}

impl SimFaultSpec {
    /// Checks the values serde cannot; the error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let time = |key: &str, t: Option<f64>| match t {
            Some(t) if !(t >= 0.0 && t.is_finite()) => {
                Err(format!("faults.{key} must be 0 or more seconds, not {t}"))
            }
            _ => Ok(()),
        };
        time("reset_at_s", self.reset_at_s)?;
        time("timeout_at_s", self.timeout_at_s)?;
        if let Some(burst) = self.nack_burst {
            time("nack_burst.at_s", Some(burst.at_s))?;
            if burst.transactions == 0 {
                return Err("faults.nack_burst.transactions must be at least 1".into());
            }
        }
        if let Some(ms) = self.timeout_ms {
            if self.timeout_at_s.is_none() {
                return Err("faults.timeout_ms needs faults.timeout_at_s".into());
            }
            if !(ms > 0.0 && ms <= MAX_SECONDS * 1e3) {
                return Err(format!(
                    "faults.timeout_ms must be above 0 and at most {} ms, not {ms}",
                    MAX_SECONDS * 1e3
                ));
            }
        }
        if let Some(v) = self.vanish {
            time("vanish.from_s", Some(v.from_s))?;
            time("vanish.until_s", Some(v.until_s))?;
            if v.until_s <= v.from_s {
                return Err(format!(
                    "faults.vanish: until_s ({}) must be after from_s ({})",
                    v.until_s, v.from_s
                ));
            }
        }
        Ok(())
    }
}

/// What the ranging pass did to one INA219.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranged {
    /// The sensor's position in the rig.
    pub sensor_index: usize,
    pub rail: String,
    /// Largest current of any fresh reading during the pass.
    pub peak_amps: f64,
    /// Fresh readings the peak is taken from.
    pub readings: usize,
    /// `max_current_a` as the rig had it, and as the measured run uses it.
    pub max_current_a_before: f64,
    pub max_current_a: f64,
    /// The PGA range the measured run uses (the smallest that holds the new maximum).
    pub shunt_range_mv: u16,
}
